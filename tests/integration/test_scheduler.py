"""The scheduler against the real apiserver and etcd, with Node objects made by the tests (no
kubelets): binding, FailedScheduling text, retry on a new node without a hot loop, cordon,
taints, node selectors and affinity, pod anti-affinity, zone spreading, scheduler names, and
leader failover between two scheduler processes.

The apiserver is the session's shared one. Nodes are cluster-wide, so the module starts by
removing any Node left by earlier test modules (nothing runs on them: there are no kubelets)
and every test deletes its own nodes and pods; in-process schedulers get a scheduler name of
their own so pending pods of other tests are never theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from api import errors
from api.resources import CATALOGUE, Resource
from client.kubeconfig import load_kubeconfig
from client.rest import ApiClient
from scheduler.app import Scheduler
from scheduler.options import Options
from tests.conftest import ROOT, ApiServer

pytestmark = pytest.mark.asyncio



def _resource(plural: str) -> Resource:
    res = CATALOGUE.by_plural(plural)
    assert res is not None
    return res


PODS, NODES, NAMESPACES, EVENTS, LEASES = (
    _resource(p) for p in ("pods", "nodes", "namespaces", "events", "leases"))

HOST = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
TAINT = {"key": "key", "value": "value", "effect": "NoSchedule"}

Obj = dict[str, Any]


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0,
                     interval: float = 0.05, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


@pytest.fixture(scope="module", autouse=True)
def _no_foreign_nodes(apiserver: ApiServer) -> None:
    """Node counts appear in FailedScheduling messages: start from a cluster without nodes."""

    async def clear() -> None:
        async with ApiClient(load_kubeconfig(apiserver.kubeconfig)) as api:
            for node in (await api.list(NODES)).get("items") or []:
                with contextlib.suppress(errors.NotFound):
                    await api.delete(NODES, node["metadata"]["name"])

    asyncio.run(clear())


@pytest.fixture
async def api(apiserver: ApiServer) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(apiserver.kubeconfig), component="test") as client:
        yield client


class Cluster:
    """Per-test namespace, nodes and pods, removed afterwards."""

    def __init__(self, api: ApiClient, ns: str, scheduler_name: str) -> None:
        self.api = api
        self.ns = ns
        self.scheduler_name = scheduler_name
        self.prefix = ns[-6:]
        self.nodes: list[str] = []

    def node_name(self, short: str) -> str:
        return f"{self.prefix}-{short}"

    async def node(self, short: str, cpu: str = "4", memory: str = "16Gi", pods: str = "110",
                   *, labels: dict[str, str] | None = None, zone: str | None = None,
                   taints: list[Obj] | None = None, unschedulable: bool = False) -> str:
        name = self.node_name(short)
        all_labels = {HOST: name, **(labels or {})}
        if zone:
            all_labels[ZONE] = zone
        resources = {"cpu": cpu, "memory": memory, "pods": pods}
        spec: Obj = {"taints": taints} if taints else {}
        if unschedulable:
            spec["unschedulable"] = True
        await self.api.create(NODES, {
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": all_labels},
            "spec": spec, "status": {"capacity": resources, "allocatable": resources}})
        self.nodes.append(name)
        return name

    async def pod(self, name: str, cpu: str | None = None, *, labels: dict[str, str] | None = None,
                  owner: str | None = None, scheduler_name: str | None = "",
                  **spec: Any) -> Obj:
        container: Obj = {"name": "c", "image": "busybox"}
        if cpu:
            container["resources"] = {"requests": {"cpu": cpu, "memory": "64Mi"}}
        md: Obj = {"name": name, "labels": labels or {}}
        if owner:
            md["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                      "name": owner, "uid": f"{self.ns}-{owner}",
                                      "controller": True}]
        body_spec: Obj = {"containers": [container], **spec}
        if scheduler_name == "":
            scheduler_name = self.scheduler_name
        if scheduler_name is not None:
            body_spec["schedulerName"] = scheduler_name
        return await self.api.create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": md,
                                            "spec": body_spec}, self.ns)

    async def node_of(self, pod: str) -> str:
        got = await self.api.get(PODS, pod, self.ns)
        return str(got["spec"].get("nodeName") or "")

    async def wait_bound(self, *pods: str, timeout: float = 10.0) -> dict[str, str]:
        async def bound() -> dict[str, str] | None:
            placed = {p: await self.node_of(p) for p in pods}
            return placed if all(placed.values()) else None

        return dict(await eventually(bound, timeout, what=f"{pods} to be bound"))

    async def events(self, pod: str, reason: str) -> list[Obj]:
        got = await self.api.list(EVENTS, self.ns,
                                  field_selector=f"involvedObject.name={pod},reason={reason}")
        return list(got.get("items") or [])

    async def wait_event(self, pod: str, reason: str, timeout: float = 10.0) -> Obj:
        async def found() -> list[Obj]:
            return await self.events(pod, reason)

        return (await eventually(found, timeout, what=f"{reason} event for {pod}"))[0]

    async def cleanup(self) -> None:
        for pod in (await self.api.list(PODS, self.ns)).get("items") or []:
            with contextlib.suppress(errors.NotFound):
                await self.api.delete(PODS, pod["metadata"]["name"], self.ns,
                                      grace_period_seconds=0)
        for name in self.nodes:
            with contextlib.suppress(errors.NotFound):
                await self.api.delete(NODES, name)


@pytest.fixture
async def cluster(api: ApiClient) -> AsyncIterator[Cluster]:
    ns = f"sched-{uuid.uuid4().hex[:8]}"
    await api.create(NAMESPACES, {"metadata": {"name": ns}})
    c = Cluster(api, ns, scheduler_name=f"test-{ns}")
    try:
        yield c
    finally:
        await c.cleanup()


@contextlib.asynccontextmanager
async def running_scheduler(apiserver: ApiServer, name: str) -> AsyncIterator[Scheduler]:
    """A scheduler in this process (no leader election), stopped on the way out."""
    async with ApiClient(load_kubeconfig(apiserver.kubeconfig), component="scheduler") as api:
        sched = Scheduler(api, Options(leader_elect=False, scheduler_name=name))
        task = asyncio.create_task(sched.run(), name="test-scheduler")
        try:
            ready = asyncio.create_task(sched.ready.wait())
            await asyncio.wait({task, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                task.result()  # surface the failure
            assert sched.ready.is_set(), "scheduler did not sync in 10s"
            yield sched
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)


# --- tests ---------------------------------------------------------------------------------


async def test_pods_bind_to_fitting_nodes(apiserver: ApiServer, cluster: Cluster) -> None:
    small = await cluster.node("small", cpu="1")
    big = await cluster.node("big", cpu="8")
    async with running_scheduler(apiserver, cluster.scheduler_name):
        for i in range(3):
            await cluster.pod(f"p{i}", cpu="2")
        placed = await cluster.wait_bound("p0", "p1", "p2")
        assert set(placed.values()) == {big}
        assert small not in placed.values()
        event = await cluster.wait_event("p0", "Scheduled")
        assert event["type"] == "Normal"
        assert event["message"] == f"Successfully assigned {cluster.ns}/p0 to {big}"
        assert event["source"]["component"] == cluster.scheduler_name
        pod = await cluster.api.get(PODS, "p0", cluster.ns)
        scheduled = [c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled"]
        assert scheduled[0]["status"] == "True"


async def test_insufficient_cpu_then_a_new_node_without_hot_loop(apiserver: ApiServer,
                                                                  cluster: Cluster) -> None:
    await cluster.node("small", cpu="1")
    await cluster.node("t1", taints=[TAINT])
    await cluster.node("t2", taints=[TAINT])
    expected = ("0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint "
                "{key: value}. preemption: 0/3 nodes are available: 1 No preemption victims "
                "found for incoming pod, 2 Preemption is not helpful for scheduling.")
    async with running_scheduler(apiserver, cluster.scheduler_name) as sched:
        await cluster.pod("hungry", cpu="2")
        event = await cluster.wait_event("hungry", "FailedScheduling")
        assert event["type"] == "Warning"
        assert event["message"] == expected

        async def condition() -> Obj | None:
            pod = await cluster.api.get(PODS, "hungry", cluster.ns)
            for c in (pod.get("status") or {}).get("conditions") or []:
                if c["type"] == "PodScheduled" and c["status"] == "False":
                    return dict(c)
            return None

        cond = await eventually(condition, what="PodScheduled=False")
        assert (cond["reason"], cond["message"]) == ("Unschedulable", expected)

        # Parked, not spinning: still one attempt a while later, and one event.
        await asyncio.sleep(3)
        assert sched.attempts["unschedulable"] == 1
        assert (await cluster.events("hungry", "FailedScheduling"))[0].get("count", 1) == 1

        big = await cluster.node("big", cpu="4")
        assert (await cluster.wait_bound("hungry")) == {"hungry": big}
        assert sched.attempts == {"unschedulable": 1, "scheduled": 1}


async def test_cordoned_node_takes_no_new_pods(apiserver: ApiServer, cluster: Cluster) -> None:
    cordoned = await cluster.node("cordoned", unschedulable=True)
    open_node = await cluster.node("open")
    async with running_scheduler(apiserver, cluster.scheduler_name):
        for i in range(3):
            await cluster.pod(f"p{i}", cpu="100m")
        assert set((await cluster.wait_bound("p0", "p1", "p2")).values()) == {open_node}
        # A pod tolerating the cordon (as DaemonSet pods do) may still go there.
        await cluster.pod("ds", nodeSelector={HOST: cordoned}, tolerations=[
            {"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
             "effect": "NoSchedule"}])
        assert (await cluster.wait_bound("ds")) == {"ds": cordoned}


async def test_taints_and_tolerations(apiserver: ApiServer, cluster: Cluster) -> None:
    gpu = await cluster.node("gpu", taints=[{"key": "dedicated", "value": "gpu",
                                             "effect": "NoSchedule"}])
    soft = await cluster.node("soft", taints=[{"key": "spot", "effect": "PreferNoSchedule"}])
    plain = await cluster.node("plain")
    async with running_scheduler(apiserver, cluster.scheduler_name):
        for i in range(4):
            await cluster.pod(f"any{i}", cpu="100m")
        placed = await cluster.wait_bound(*(f"any{i}" for i in range(4)))
        assert gpu not in placed.values()
        # PreferNoSchedule only discourages: with room on the plain node, it is avoided.
        assert soft not in placed.values()
        await cluster.pod("trainer", tolerations=[{"key": "dedicated", "operator": "Equal",
                                                   "value": "gpu", "effect": "NoSchedule"}],
                          nodeSelector={HOST: gpu})
        assert (await cluster.wait_bound("trainer")) == {"trainer": gpu}
        assert plain in placed.values()


async def test_node_selector_and_node_affinity(apiserver: ApiServer, cluster: Cluster) -> None:
    ssd = await cluster.node("ssd", labels={"disk": "ssd"}, zone="a")
    hdd = await cluster.node("hdd", labels={"disk": "hdd"}, zone="b")
    other = await cluster.node("other", zone="c")
    async with running_scheduler(apiserver, cluster.scheduler_name):
        await cluster.pod("selector", nodeSelector={"disk": "ssd"})
        await cluster.pod("required", affinity={"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["hdd"]}]}]}}})
        await cluster.pod("by-name", affinity={"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In",
                                  "values": [other]}]}]}}})
        await cluster.pod("preferred", affinity={"nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "preference": {"matchExpressions": [
                    {"key": ZONE, "operator": "In", "values": ["b"]}]}}]}})
        assert await cluster.wait_bound("selector", "required", "by-name", "preferred") == {
            "selector": ssd, "required": hdd, "by-name": other, "preferred": hdd}
        await cluster.pod("nowhere", nodeSelector={"disk": "tape"})
        event = await cluster.wait_event("nowhere", "FailedScheduling")
        assert event["message"] == (
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. "
            "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")


async def test_pod_anti_affinity_spreads_replicas_over_hostnames(apiserver: ApiServer,
                                                                  cluster: Cluster) -> None:
    nodes = {await cluster.node(f"n{i}") for i in range(3)}
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": HOST}]}}
    async with running_scheduler(apiserver, cluster.scheduler_name):
        for i in range(3):
            await cluster.pod(f"web-{i}", cpu="100m", labels={"app": "web"}, affinity=anti)
        placed = await cluster.wait_bound("web-0", "web-1", "web-2")
        assert set(placed.values()) == nodes  # one per hostname
        await cluster.pod("web-3", cpu="100m", labels={"app": "web"}, affinity=anti)
        event = await cluster.wait_event("web-3", "FailedScheduling")
        assert event["message"] == (
            "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. "
            "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming "
            "pod.")
        # A pod with affinity to the group joins one of its nodes.
        await cluster.pod("sidecar", affinity={"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": HOST}]}})
        assert (await cluster.wait_bound("sidecar"))["sidecar"] in nodes


async def test_replicas_spread_over_zones(apiserver: ApiServer, cluster: Cluster) -> None:
    zone_of = {}
    for zone in ("a", "b"):
        for i in range(2):
            zone_of[await cluster.node(f"{zone}{i}", zone=zone)] = zone
    async with running_scheduler(apiserver, cluster.scheduler_name):
        for i in range(4):
            await cluster.pod(f"rs-{i}", cpu="500m", owner="rs")
            await cluster.wait_bound(f"rs-{i}")  # one at a time: each sees the last
        placed = await cluster.wait_bound(*(f"rs-{i}" for i in range(4)))
        assert sorted(zone_of[n] for n in placed.values()) == ["a", "a", "b", "b"]
        assert len(set(placed.values())) == 4
        # Required anti-affinity per zone: one per zone, the third has nowhere to go.
        anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "zonal"}}, "topologyKey": ZONE}]}}
        for i in range(3):
            await cluster.pod(f"zonal-{i}", labels={"app": "zonal"}, affinity=anti)
        placed = await cluster.wait_bound("zonal-0", "zonal-1")
        assert {zone_of[n] for n in placed.values()} == {"a", "b"}
        event = await cluster.wait_event("zonal-2", "FailedScheduling")
        assert event["message"].startswith(
            "0/4 nodes are available: 4 node(s) didn't match pod anti-affinity rules.")
        assert not await cluster.node_of("zonal-2")


async def test_pods_for_other_scheduler_names_are_left_alone(apiserver: ApiServer,
                                                              cluster: Cluster) -> None:
    # As "default-scheduler" this scheduler also places pending pods other test modules left
    # in the shared apiserver, so its node has room for them all.
    node = await cluster.node("n", cpu="1000", memory="4000Gi", pods="100000")
    async with running_scheduler(apiserver, "default-scheduler"):
        await cluster.pod("mine", scheduler_name=None, nodeSelector={HOST: node})
        await cluster.pod("theirs", scheduler_name="my-custom-scheduler")
        assert (await cluster.wait_bound("mine", timeout=30.0)) == {"mine": node}
        await asyncio.sleep(1.0)
        assert await cluster.node_of("theirs") == ""
        assert await cluster.events("theirs", "FailedScheduling") == []
        theirs = await cluster.api.get(PODS, "theirs", cluster.ns)
        assert not (theirs.get("status") or {}).get("conditions")


# --- leader election between processes -----------------------------------------------------


def _start_scheduler(apiserver: ApiServer, identity: str, name: str,
                     log_dir: str) -> subprocess.Popen[bytes]:
    log = open(os.path.join(log_dir, f"{identity}.log"), "wb")  # noqa: SIM115 - closed below
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "scheduler", "--kubeconfig", str(apiserver.kubeconfig),
             "--leader-elect-lease-duration=2s", "--leader-elect-renew-deadline=1.5s",
             "--leader-elect-retry-period=0.3s", f"--leader-elect-identity={identity}",
             f"--scheduler-name={name}"],
            stdout=log, stderr=log, cwd=ROOT)
    finally:
        log.close()


async def test_leader_failover_between_processes(apiserver: ApiServer, cluster: Cluster,
                                                 tmp_path: Any) -> None:
    node = await cluster.node("n")
    procs = {ident: _start_scheduler(apiserver, ident, cluster.scheduler_name, str(tmp_path))
             for ident in (f"{cluster.ns}-a", f"{cluster.ns}-b")}

    async def holder() -> str:
        try:
            lease = await cluster.api.get(LEASES, "kube-scheduler", "kube-system")
        except errors.NotFound:
            return ""
        ident = str((lease.get("spec") or {}).get("holderIdentity") or "")
        return ident if ident in procs else ""

    try:
        leader = await eventually(holder, 15, what="a scheduler to take the lease")
        await cluster.pod("before")
        assert (await cluster.wait_bound("before")) == {"before": node}

        procs[leader].send_signal(signal.SIGKILL)
        procs[leader].wait(5)
        standby = next(ident for ident in procs if ident != leader)

        async def standby_leads() -> bool:
            return await holder() == standby

        await eventually(standby_leads, 15, what="the standby to take over the lease")
        await cluster.pod("after")
        assert (await cluster.wait_bound("after", timeout=15)) == {"after": node}
        assert procs[standby].poll() is None
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
