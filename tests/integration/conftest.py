"""Fixtures shared by the integration tests (the etcd and apiserver ones are in
tests/conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator

import pytest

from client.kubeconfig import load_kubeconfig
from client.rest import ApiClient
from controller_manager.app import run_controllers
from controller_manager.options import Options
from tests.conftest import ApiServer


@pytest.fixture
async def api(apiserver: ApiServer) -> AsyncIterator[ApiClient]:
    """Our REST client on the session's apiserver (a module may define its own `api`)."""
    async with ApiClient(load_kubeconfig(apiserver.kubeconfig), component="test") as client:
        yield client


@contextlib.asynccontextmanager
async def controllers_running(api: ApiClient, options: Options, name: str
                              ) -> AsyncIterator[None]:
    """The controller-manager's controllers of `options`, in this process, for a block."""
    task = asyncio.create_task(run_controllers(api, options), name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def kubectl_path() -> str:
    """The kubectl on PATH; a test that needs it is skipped (saying why) without it."""
    found = shutil.which("kubectl")
    if found is None:
        print("\nskipping: kubectl is not installed (optional tool)")
        pytest.skip("kubectl is not installed (optional tool)")
    return found


async def kubectl(apiserver: ApiServer, *args: str, stdin: str | None = None
                  ) -> tuple[int, str, str]:
    """Real kubectl as the admin: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        kubectl_path(), "--kubeconfig", str(apiserver.kubeconfig), *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else None,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    return proc.returncode or 0, out.decode(), err.decode()
