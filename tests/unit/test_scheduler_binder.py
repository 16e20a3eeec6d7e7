"""The binder (with a fake apiserver boundary) and which informer changes wake parked pods."""

from __future__ import annotations

import asyncio
from typing import Any

from api.errors import Conflict, StatusError
from scheduler.app import assigned_pod_update_event, node_update_event
from scheduler.binder import Binder
from scheduler.cache import Cache
from scheduler.framework import ClusterEvent
from scheduler.queue import BACKOFF, QueuedPodInfo, SchedulingQueue
from scheduler.types import PodInfo
from tests.unit.test_scheduler_plugins import make_node, make_pod


class FakeApi:
    """Answers pods/binding; `fail` maps pod name to the error to raise."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.fail: dict[str, Exception] = {}
        self.gate = asyncio.Event()
        self.gate.set()

    async def create_subresource(self, res: Any, name: str, sub: str, body: dict[str, Any],
                                 namespace: str | None = None) -> dict[str, Any]:
        await self.gate.wait()
        self.calls.append((name, sub, body))
        if name in self.fail:
            raise self.fail[name]
        return {"kind": "Status", "status": "Success"}


class Harness:
    def __init__(self) -> None:
        self.api = FakeApi()
        self.cache = Cache()
        self.cache.add_node(make_node("n1", cpu="2"))
        self.queue = SchedulingQueue(initial_backoff=0.05)
        self.pending: dict[str, dict[str, Any]] = {}
        self.bound: list[tuple[str, str]] = []
        self.failed: list[tuple[str, str]] = []
        self.binder = Binder(self.api, self.cache, self.queue,  # type: ignore[arg-type]
                             latest=self.pending.get,
                             on_bound=lambda q, n: self.bound.append((q.key, n)),
                             on_failed=lambda q, n, e: self.failed.append((q.key, str(e))))

    async def schedule(self, name: str, cpu: str = "1") -> QueuedPodInfo:
        pod = make_pod(name, cpu)
        self.pending[f"default/{name}"] = pod
        self.queue.add(PodInfo(pod))
        qpi = await asyncio.wait_for(self.queue.pop(), 1)
        self.cache.assume_pod(qpi.pod, "n1")
        self.binder.bind(qpi, "n1")
        return qpi

    async def settle(self) -> None:
        while self.binder.in_flight:
            await asyncio.sleep(0.001)

    def requested_cpu(self) -> int:
        node = self.cache.node("n1")
        assert node is not None
        return node.requested.milli_cpu


async def test_successful_bind_posts_a_binding_and_settles() -> None:
    h = Harness()
    await h.schedule("p")
    await h.settle()
    name, sub, body = h.api.calls[0]
    assert (name, sub) == ("p", "binding")
    assert body["target"] == {"apiVersion": "v1", "kind": "Node", "name": "n1"}
    assert body["metadata"]["uid"] == "uid-p"
    assert h.bound == [("default/p", "n1")]
    assert "default/p" not in h.queue
    assert h.cache.is_assumed("default/p")  # until the informer confirms it
    assert h.requested_cpu() == 1000


async def test_binds_do_not_block_the_next_decision() -> None:
    h = Harness()
    h.api.gate.clear()  # the apiserver is slow to answer
    await h.schedule("a")
    await h.schedule("b")  # decided while a's bind is still in flight
    assert h.binder.in_flight == 2 and h.requested_cpu() == 2000
    h.api.gate.set()
    await h.settle()
    assert sorted(h.bound) == [("default/a", "n1"), ("default/b", "n1")]


async def test_transient_failure_forgets_the_assumption_and_retries_with_backoff() -> None:
    h = Harness()
    h.api.fail["p"] = StatusError("etcdserver: request timed out", code=500)
    await h.schedule("p")
    await h.settle()
    assert h.requested_cpu() == 0 and not h.cache.is_assumed("default/p")
    assert h.queue.where("default/p") == BACKOFF
    assert h.failed and h.failed[0][0] == "default/p"
    del h.api.fail["p"]
    retry = await asyncio.wait_for(h.queue.pop(), 1)
    assert retry.key == "default/p" and retry.attempts == 2


async def test_conflict_or_vanished_pod_is_not_retried() -> None:
    h = Harness()
    h.api.fail["taken"] = Conflict("pod taken is already assigned to node \"n9\"")
    await h.schedule("taken")
    h.api.fail["gone"] = StatusError("boom", code=500)
    qpi = await h.schedule("gone")
    del h.pending[qpi.key]  # deleted while binding
    await h.settle()
    assert len(h.queue) == 0
    assert h.requested_cpu() == 0


async def test_recreated_pod_with_the_same_name_is_queued_afresh() -> None:
    h = Harness()
    h.api.fail["p"] = Conflict("Precondition failed: UID in precondition: uid-p")
    await h.schedule("p")
    newer = make_pod("p", "1")
    newer["metadata"]["uid"] = "uid-p-2"
    h.pending["default/p"] = newer
    await h.settle()
    again = await asyncio.wait_for(h.queue.pop(), 1)
    assert again.pod.uid == "uid-p-2" and again.attempts == 1


def test_node_updates_name_what_changed() -> None:
    node = make_node("n1")
    heartbeat = {**node, "status": {**node["status"], "conditions": [{"type": "Ready"}]}}
    assert node_update_event(node, heartbeat) == ClusterEvent.NONE
    bigger = make_node("n1", cpu="8")
    assert node_update_event(node, bigger) == ClusterEvent.NODE_ALLOCATABLE
    labelled = make_node("n1", labels={"disk": "ssd"})
    assert node_update_event(node, labelled) == ClusterEvent.NODE_LABEL
    cordoned = make_node("n1", unschedulable=True)
    assert node_update_event(node, cordoned) == ClusterEvent.NODE_TAINT
    tainted = make_node("n1", taints=[{"key": "k", "effect": "NoSchedule"}])
    assert node_update_event(node, tainted) == ClusterEvent.NODE_TAINT


def test_assigned_pod_updates_that_may_help() -> None:
    before = PodInfo(make_pod("p", "1", node="n1", labels={"a": "1"}))
    assert assigned_pod_update_event(None, before) == ClusterEvent.ASSIGNED_POD_ADD
    same = PodInfo(make_pod("p", "1", node="n1", labels={"a": "1"}))
    assert assigned_pod_update_event(before, same) == ClusterEvent.NONE
    relabelled = PodInfo(make_pod("p", "1", node="n1", labels={"a": "2"}))
    assert assigned_pod_update_event(before, relabelled) == ClusterEvent.ASSIGNED_POD_UPDATE
    shrunk = PodInfo(make_pod("p", "500m", node="n1", labels={"a": "1"}))
    assert assigned_pod_update_event(before, shrunk) == ClusterEvent.ASSIGNED_POD_UPDATE
    grown = PodInfo(make_pod("p", "2", node="n1", labels={"a": "1"}))
    assert assigned_pod_update_event(before, grown) == ClusterEvent.NONE
