"""Fixtures shared by the integration tests (the etcd and apiserver ones are in
tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from client.kubeconfig import load_kubeconfig
from client.rest import ApiClient
from tests.conftest import ApiServer


@pytest.fixture
async def api(apiserver: ApiServer) -> AsyncIterator[ApiClient]:
    """Our REST client on the session's apiserver (a module may define its own `api`)."""
    async with ApiClient(load_kubeconfig(apiserver.kubeconfig), component="test") as client:
        yield client
