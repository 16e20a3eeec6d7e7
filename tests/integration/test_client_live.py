"""The client library against the real apiserver and etcd: REST, informer, leader election."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import pytest

from api import errors
from api.resources import CATALOGUE
from client.informer import Informer
from client.kubeconfig import load_kubeconfig
from client.leaderelection import LeaderElector
from client.rest import ApiClient
from tests.conftest import ApiServer

pytestmark = pytest.mark.asyncio

CONFIGMAPS = CATALOGUE.by_plural("configmaps")
NAMESPACES = CATALOGUE.by_plural("namespaces")
LEASES = CATALOGUE.by_plural("leases")


@pytest.fixture
async def api(apiserver: ApiServer) -> Any:
    async with ApiClient(load_kubeconfig(apiserver.kubeconfig), component="test") as client:
        yield client


@pytest.fixture
async def ns(api: ApiClient) -> str:
    name = f"c-{uuid.uuid4().hex[:8]}"
    await api.create(NAMESPACES, {"metadata": {"name": name}})
    return name


async def test_typed_errors(api: ApiClient, ns: str) -> None:
    with pytest.raises(errors.NotFound):
        await api.get(CONFIGMAPS, "missing", ns)
    await api.create(CONFIGMAPS, {"metadata": {"name": "a"}}, ns)
    with pytest.raises(errors.AlreadyExists):
        await api.create(CONFIGMAPS, {"metadata": {"name": "a"}}, ns)
    with pytest.raises(errors.Invalid) as info:
        await api.create(CONFIGMAPS, {"metadata": {"name": "Not_Valid"}}, ns)
    assert info.value.code == 422


async def test_informer_follows_changes(api: ApiClient, ns: str) -> None:
    await api.create(CONFIGMAPS, {"metadata": {"name": "before"}}, ns)
    seen: list[tuple[str, str]] = []
    informer = Informer(api, CONFIGMAPS, namespace=ns)
    informer.add_handler(
        on_add=lambda o: seen.append(("add", o["metadata"]["name"])),
        on_update=lambda old, new: seen.append(("update", new["metadata"]["name"])),
        on_delete=lambda o: seen.append(("delete", o["metadata"]["name"])),
    )
    informer.start()
    try:
        await asyncio.wait_for(informer.wait_synced(), 10)
        assert informer.store.get(f"{ns}/before") is not None
        await api.create(CONFIGMAPS, {"metadata": {"name": "live"}, "data": {"a": "1"}}, ns)
        await api.patch(CONFIGMAPS, "live", {"data": {"a": "2"}}, ns)
        await api.delete(CONFIGMAPS, "live", ns)

        async def settled() -> None:
            while ("delete", "live") not in seen:
                await asyncio.sleep(0.02)

        await asyncio.wait_for(settled(), 10)
        assert seen == [("add", "before"), ("add", "live"), ("update", "live"),
                        ("delete", "live")]
        assert informer.store.get(f"{ns}/live") is None
    finally:
        await informer.stop()


async def test_leader_election_hands_over(api: ApiClient, ns: str) -> None:
    started: list[str] = []

    def elector(identity: str) -> LeaderElector:
        return LeaderElector(api, ns, "test-lock", identity, lease_duration=2.0,
                             renew_deadline=1.5, retry_period=0.2)

    async def lead(identity: str) -> None:
        started.append(identity)
        await asyncio.Event().wait()

    a, b = elector("a"), elector("b")
    task_a = asyncio.create_task(a.run(lambda: lead("a")))
    await asyncio.sleep(0.5)
    task_b = asyncio.create_task(b.run(lambda: lead("b")))
    try:
        await asyncio.sleep(1.0)
        assert started == ["a"] and a.is_leader and not b.is_leader
        lease = await api.get(LEASES, "test-lock", ns)
        assert lease["spec"]["holderIdentity"] == "a"
        task_a.cancel()  # a clean stop releases the lease, so b takes over at once
        with contextlib.suppress(asyncio.CancelledError):
            await task_a

        async def b_leads() -> None:
            while started != ["a", "b"]:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(b_leads(), 5)
        lease = await api.get(LEASES, "test-lock", ns)
        assert lease["spec"]["holderIdentity"] == "b"
        assert lease["spec"]["leaseTransitions"] >= 1
    finally:
        for t in (task_a, task_b):
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
