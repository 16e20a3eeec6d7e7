"""The node lifecycle controller against the real apiserver and etcd.

Node objects stand in for kubelets: the test registers them with their conditions and renews
their Leases itself, then goes silent, reports NotReady, or taints them, and watches what
the controller (run in-process, with a 2 s grace period and a 0.5 s monitor period) does to
the nodes and to the pods bound to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest

from api import errors
from api.meta import now_rfc3339, now_rfc3339_micro
from api.resources import CATALOGUE, Resource
from client.kubeconfig import load_kubeconfig
from client.rest import ApiClient
from controller_manager.app import run_controllers
from controller_manager.options import Options
from tests.conftest import ApiServer

pytestmark = pytest.mark.asyncio

GRACE = 2.0
PERIOD = 0.5
RENEW_EVERY = 0.25

UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
NODE_LEASE_NS = "kube-node-lease"

T = TypeVar("T")
Obj = dict[str, Any]


def _res(plural: str) -> Resource:
    res = CATALOGUE.by_plural(plural)
    assert res is not None
    return res


NODES, PODS, LEASES = _res("nodes"), _res("pods"), _res("leases")
NAMESPACES, EVENTS = _res("namespaces"), _res("events")


# --- a kubelet stand-in --------------------------------------------------------------------

def _conditions(ready: str, memory_pressure: str = "False") -> list[Obj]:
    now = now_rfc3339()
    reasons = {"True": "KubeletReady", "False": "KubeletNotReady"}

    def cond(type_: str, status: str, reason: str) -> Obj:
        return {"type": type_, "status": status, "reason": reason, "message": reason,
                "lastHeartbeatTime": now, "lastTransitionTime": now}

    return [cond("Ready", ready, reasons.get(ready, "Unknown")),
            cond("MemoryPressure", memory_pressure, "KubeletMemory"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID")]


class FakeKubelet:
    """Registers a Node with its status and renews its Lease, as a kubelet would."""

    def __init__(self, api: ApiClient, name: str) -> None:
        self.api = api
        self.name = name
        self.last_renew = 0.0  # monotonic time of the last successful renewal
        self._lease: Obj = {}
        self._renewer: asyncio.Task[None] | None = None

    async def register(self, ready: str = "True", *, unschedulable: bool = False,
                       memory_pressure: str = "False") -> None:
        spec: Obj = {"unschedulable": True} if unschedulable else {}
        await self.api.create(NODES, {
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": self.name}, "spec": spec,
            "status": {"conditions": _conditions(ready, memory_pressure)}})
        self._lease = await self.api.create(LEASES, {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": self.name, "namespace": NODE_LEASE_NS},
            "spec": {"holderIdentity": self.name, "leaseDurationSeconds": 40,
                     "renewTime": now_rfc3339_micro()}})
        self.last_renew = time.monotonic()
        self.start_renewing()

    def start_renewing(self) -> None:
        if self._renewer is None:
            self._renewer = asyncio.create_task(self._renew_loop(), name=f"renew:{self.name}")

    async def stop_renewing(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None

    async def _renew_loop(self) -> None:
        while True:
            lease = dict(self._lease)
            lease["spec"] = {**lease["spec"], "renewTime": now_rfc3339_micro()}
            try:
                self._lease = await self.api.update(LEASES, lease)
            except errors.Conflict:
                # A renewal cancelled in flight (stop_renewing) may still have landed.
                self._lease = await self.api.get(LEASES, self.name, NODE_LEASE_NS)
                continue
            self.last_renew = time.monotonic()
            await asyncio.sleep(RENEW_EVERY)

    async def post_status(self, ready: str = "True") -> None:
        for _ in range(10):
            node = await self.api.get(NODES, self.name)
            node["status"]["conditions"] = _conditions(ready)
            try:
                await self.api.update_status(NODES, node)
                return
            except errors.Conflict:
                continue
        raise AssertionError(f"could not post status of {self.name}")

    async def close(self) -> None:
        await self.stop_renewing()
        with contextlib.suppress(errors.NotFound):
            await self.api.delete(NODES, self.name)
        with contextlib.suppress(errors.NotFound):
            await self.api.delete(LEASES, self.name, NODE_LEASE_NS)


# --- fixtures and helpers ------------------------------------------------------------------

class Cluster:
    def __init__(self, api: ApiClient, controllers: asyncio.Task[None], ns: str) -> None:
        self.api = api
        self.controllers = controllers
        self.ns = ns
        self.kubelets: list[FakeKubelet] = []
        self.prefix = f"nlc-{uuid.uuid4().hex[:6]}"

    async def kubelet(self, suffix: str, ready: str = "True", **kw: Any) -> FakeKubelet:
        kubelet = FakeKubelet(self.api, f"{self.prefix}-{suffix}")
        self.kubelets.append(kubelet)
        await kubelet.register(ready, **kw)
        return kubelet

    async def pod(self, name: str, node: str, tolerations: list[Obj] | None = None,
                  *, ready: bool = False) -> Obj:
        spec: Obj = {"nodeName": node, "containers": [{"name": "c", "image": "pause"}]}
        if tolerations is not None:
            spec["tolerations"] = tolerations
        pod = await self.api.create(PODS, {"metadata": {"name": name}, "spec": spec}, self.ns)
        if ready:
            now = now_rfc3339()
            pod["status"]["conditions"] = [{"type": "Ready", "status": "True",
                                            "lastTransitionTime": now}]
            pod["status"]["phase"] = "Running"
            pod = await self.api.update_status(PODS, pod)
        return pod

    async def eventually(self, check: Callable[[], Awaitable[T | None]], timeout: float,
                         what: str) -> T:
        """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            if self.controllers.done():
                self.controllers.result()  # raises what killed the controllers
                raise AssertionError("controllers stopped")
            result = await check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(0.1)

    async def node(self, name: str) -> Obj:
        return await self.api.get(NODES, name)

    async def get_pod(self, name: str) -> Obj:
        return await self.api.get(PODS, name, self.ns)


def taints_of(node: Obj) -> dict[tuple[str, str], Obj]:
    return {(t["key"], t["effect"]): t for t in node.get("spec", {}).get("taints") or []}


def cond_of(obj: Obj, type_: str) -> Obj:
    for cond in obj.get("status", {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return {}


def deleting(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


@pytest.fixture
async def cluster(apiserver: ApiServer) -> AsyncIterator[Cluster]:
    async with ApiClient(load_kubeconfig(apiserver.kubeconfig), component="test") as api:
        ns = f"nlc-{uuid.uuid4().hex[:8]}"
        await api.create(NAMESPACES, {"metadata": {"name": ns}})
        options = Options(controllers=["nodelifecycle"], leader_elect=False,
                          node_monitor_grace_period=GRACE, node_monitor_period=PERIOD)
        controllers = asyncio.create_task(run_controllers(api, options), name="controllers")
        c = Cluster(api, controllers, ns)
        try:
            yield c
        finally:
            controllers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await controllers
            for kubelet in c.kubelets:
                await kubelet.close()
            with contextlib.suppress(errors.NotFound):
                await api.delete(NAMESPACES, ns)


# --- tests ---------------------------------------------------------------------------------

async def test_silent_node_goes_unknown_evicts_by_toleration_and_recovers(
        cluster: Cluster) -> None:
    # A healthy second node keeps the cluster out of "everything is down" mode, in which
    # nothing is evicted.
    await cluster.kubelet("buddy")
    kubelet = await cluster.kubelet("silent")
    name = kubelet.name
    unreachable_for = {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}
    await cluster.pod("two-seconds", name, [{**unreachable_for, "tolerationSeconds": 2}],
                      ready=True)
    await cluster.pod("forever", name, [unreachable_for], ready=True)

    # The Ready heartbeat is never re-posted; the renewed Lease alone keeps the node alive.
    await asyncio.sleep(GRACE + 2 * PERIOD)
    node = await cluster.node(name)
    assert cond_of(node, "Ready")["status"] == "True"
    assert not taints_of(node)

    await kubelet.stop_renewing()
    last_renew = kubelet.last_renew

    async def unreachable() -> Obj | None:
        node = await cluster.node(name)
        return node if cond_of(node, "Ready").get("status") == "Unknown" and \
            (UNREACHABLE, "NoExecute") in taints_of(node) else None

    node = await cluster.eventually(unreachable, GRACE + PERIOD + 3, "node to go unreachable")
    seen_at = time.monotonic()
    assert GRACE <= seen_at - last_renew <= GRACE + PERIOD + 1.0, seen_at - last_renew
    for type_ in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure"):
        cond = cond_of(node, type_)
        assert cond["status"] == "Unknown", cond
        assert cond["reason"] == "NodeStatusUnknown"
        assert cond["message"] == "Kubelet stopped posting node status."
    taints = taints_of(node)
    assert set(taints) == {(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")}
    assert all(t.get("timeAdded") for t in taints.values())

    # The pods on it are no longer Ready (they stop getting Service traffic).
    async def pods_not_ready() -> bool:
        pods = [await cluster.get_pod(n) for n in ("two-seconds", "forever")]
        return all(cond_of(p, "Ready").get("status") == "False" for p in pods)

    await cluster.eventually(pods_not_ready, 3, "pods marked not ready")

    # tolerationSeconds=2: still there well into the toleration, deleted soon after it.
    while time.monotonic() < seen_at + 1.5:
        assert not deleting(await cluster.get_pod("two-seconds")), "evicted too early"
        await asyncio.sleep(0.1)

    async def evicted() -> Obj | None:
        pod = await cluster.get_pod("two-seconds")
        return pod if deleting(pod) else None

    pod = await cluster.eventually(evicted, 3.5, "pod evicted after its tolerationSeconds")
    assert cond_of(pod, "DisruptionTarget").get("reason") == "DeletionByTaintManager"

    async def eviction_event() -> bool:
        events = await cluster.api.list(EVENTS, cluster.ns)
        return any(e.get("reason") == "TaintManagerEviction" and
                   e.get("message") == f"Marking for deletion Pod {cluster.ns}/two-seconds"
                   for e in events["items"])

    await cluster.eventually(eviction_event, 3, "TaintManagerEviction event")
    assert not deleting(await cluster.get_pod("forever"))

    # The kubelet is back: the node is Ready again and the controller lifts its taints.
    await kubelet.post_status("True")
    kubelet.start_renewing()

    async def healthy() -> bool:
        node = await cluster.node(name)
        return cond_of(node, "Ready").get("status") == "True" and not taints_of(node)

    await cluster.eventually(healthy, PERIOD + 3, "taints removed after recovery")
    await asyncio.sleep(2 * PERIOD)
    node = await cluster.node(name)
    assert cond_of(node, "Ready")["status"] == "True" and not taints_of(node)
    assert not deleting(await cluster.get_pod("forever"))


async def test_not_ready_and_unschedulable_node_is_tainted(cluster: Cluster) -> None:
    await cluster.kubelet("buddy")
    kubelet = await cluster.kubelet("sick", "False", unschedulable=True,
                                    memory_pressure="True")
    expected = {(NOT_READY, "NoExecute"), (NOT_READY, "NoSchedule"),
                ("node.kubernetes.io/unschedulable", "NoSchedule"),
                ("node.kubernetes.io/memory-pressure", "NoSchedule")}

    async def tainted() -> Obj | None:
        node = await cluster.node(kubelet.name)
        return node if set(taints_of(node)) == expected else None

    node = await cluster.eventually(tainted, 3, "not-ready taints")
    assert all(t.get("timeAdded") for t in taints_of(node).values())
    # The kubelet keeps renewing its Lease: the node is NotReady, not unreachable.
    assert cond_of(node, "Ready")["status"] == "False"

    await cluster.api.patch(NODES, kubelet.name, {"spec": {"unschedulable": False}})

    async def schedulable_again() -> bool:
        node = await cluster.node(kubelet.name)
        return set(taints_of(node)) == expected - {("node.kubernetes.io/unschedulable",
                                                    "NoSchedule")}

    await cluster.eventually(schedulable_again, 3, "unschedulable taint removed")


async def test_pod_not_tolerating_a_no_execute_taint_is_evicted_at_once(
        cluster: Cluster) -> None:
    kubelet = await cluster.kubelet("maintained")
    await cluster.pod("plain", kubelet.name)
    await cluster.pod("tolerant", kubelet.name, [
        {"key": "example.com/maintenance", "operator": "Exists", "effect": "NoExecute"}])
    await asyncio.sleep(PERIOD)  # let the controller see both pods before the taint

    # A taint put on by hand (no timeAdded), not one of the controller's own.
    await cluster.api.patch(NODES, kubelet.name, {"spec": {"taints": [
        {"key": "example.com/maintenance", "value": "now", "effect": "NoExecute"}]}})
    tainted_at = time.monotonic()

    async def evicted() -> Obj | None:
        pod = await cluster.get_pod("plain")
        return pod if deleting(pod) else None

    await cluster.eventually(evicted, 2, "untolerating pod evicted")
    assert time.monotonic() - tainted_at < 2
    await asyncio.sleep(2 * PERIOD)
    assert not deleting(await cluster.get_pod("tolerant"))
    node = await cluster.node(kubelet.name)
    assert set(taints_of(node)) == {("example.com/maintenance", "NoExecute")}


async def test_no_eviction_taints_while_every_node_is_down(cluster: Cluster) -> None:
    a = await cluster.kubelet("a")
    b = await cluster.kubelet("b")

    # Nodes other tests left behind have no kubelet: wait until the controller has declared
    # them down, so that a and b are the only Ready nodes.
    async def others_down() -> bool:
        nodes = await cluster.api.list(NODES)
        return all(cond_of(n, "Ready").get("status") != "True" for n in nodes["items"]
                   if n["metadata"]["name"] not in (a.name, b.name))

    await cluster.eventually(others_down, GRACE + PERIOD + 3, "leftover nodes down")
    await asyncio.gather(a.stop_renewing(), b.stop_renewing())

    async def both_unknown() -> list[Obj] | None:
        nodes = [await cluster.node(k.name) for k in (a, b)]
        if all((UNREACHABLE, "NoSchedule") in taints_of(n) for n in nodes):
            return nodes
        return None

    nodes = await cluster.eventually(both_unknown, GRACE + PERIOD + 3, "both nodes unknown")
    for _ in range(int(2 * PERIOD / 0.1)):
        for node in nodes:
            assert cond_of(node, "Ready")["status"] == "Unknown"
            assert (UNREACHABLE, "NoExecute") not in taints_of(node), "tainted in disruption"
        await asyncio.sleep(0.1)
        nodes = [await cluster.node(k.name) for k in (a, b)]

    # One node is back, so the cluster is no longer fully down: the other one is tainted.
    await b.post_status("True")
    b.start_renewing()

    async def a_tainted() -> bool:
        return (UNREACHABLE, "NoExecute") in taints_of(await cluster.node(a.name))

    await cluster.eventually(a_tainted, PERIOD + 3, "unreachable NoExecute taint on a")
