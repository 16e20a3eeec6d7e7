"""EndpointSlice, Endpoints, ServiceAccount, Namespace and garbage-collector controllers against
the real apiserver and etcd.

Controllers run in-process (`run_controllers`). There is no kubelet: the tests stand in for
it by writing pod IPs and readiness through `pods/status`, and pods that should linger while
terminating are created already bound (`spec.nodeName`), so a graceful delete only marks
them. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest

from api import errors
from api.resources import CATALOGUE, Resource
from client.rest import ApiClient
from controller_manager.app import run_controllers
from controller_manager.options import Options
from tests.conftest import ApiServer

pytestmark = pytest.mark.asyncio

T = TypeVar("T")
Obj = dict[str, Any]


def _res(plural: str) -> Resource:
    res = CATALOGUE.by_plural(plural)
    assert res is not None
    return res


NAMESPACES = _res("namespaces")
PODS = _res("pods")
SERVICES = _res("services")
ENDPOINTS = _res("endpoints")
SLICES = _res("endpointslices")
CONFIGMAPS = _res("configmaps")
SECRETS = _res("secrets")
SERVICEACCOUNTS = _res("serviceaccounts")

WAIT = 15.0


@pytest.fixture
async def ns(api: ApiClient) -> str:
    name = f"ctl-{uuid.uuid4().hex[:8]}"
    await api.create(NAMESPACES, {"metadata": {"name": name}})
    return name


@contextlib.asynccontextmanager
async def controllers(api: ApiClient, *names: str) -> AsyncIterator[None]:
    task = asyncio.create_task(run_controllers(api, Options(controllers=list(names),
                                                            leader_elect=False)),
                               name="test-controllers")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str,
                     timeout: float = WAIT) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        try:
            last = await probe()
        except AssertionError as e:
            last = e
        else:
            if last:
                return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last: {last!r}")
        await asyncio.sleep(0.05)


async def gone(api: ApiClient, res: Resource, name: str, ns: str | None) -> bool:
    try:
        await api.get(res, name, ns)
    except errors.NotFound:
        return True
    return False


def pod_body(name: str, labels: dict[str, str], ports: list[Obj] | None = None,
             node: str | None = None) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "busybox", "ports": ports or []}]}
    if node:
        spec["nodeName"] = node  # bound: a graceful delete then waits for a kubelet
    return {"metadata": {"name": name, "labels": labels}, "spec": spec}


async def kubelet_status(api: ApiClient, ns: str, name: str, ip: str, ready: bool) -> None:
    """What the kubelet would report: Running, the pod IP, the Ready condition."""
    await api.patch(PODS, name, {"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}},
        ns, subresource="status")


async def slices_of(api: ApiClient, ns: str, svc: str) -> list[Obj]:
    page = await api.list(SLICES, ns, label_selector=f"kubernetes.io/service-name={svc}")
    return list(page["items"])


def endpoints_by_pod(slices: list[Obj]) -> dict[str, tuple[Obj, Obj]]:
    """pod name -> (endpoint, its slice)."""
    out = {}
    for s in slices:
        for ep in s.get("endpoints") or []:
            out[ep["targetRef"]["name"]] = (ep, s)
    return out


# --- EndpointSlice + Endpoints ---------------------------------------------------------------


async def test_slices_and_endpoints_follow_pods(api: ApiClient, ns: str) -> None:
    async with controllers(api, "endpointslice", "endpoints"):
        svc = await api.create(SERVICES, {"metadata": {"name": "web", "labels": {"tier": "fe"}},
                                          "spec": {"selector": {"app": "web"}, "ports": [
                                              {"name": "http", "port": 80,
                                               "targetPort": "http"},
                                              {"name": "metrics", "port": 9090}]}}, ns)
        # No pods yet: one placeholder slice, and Endpoints without subsets.
        placeholder = await eventually(lambda: slices_of(api, ns, "web"), "placeholder slice")
        assert len(placeholder) == 1 and not placeholder[0].get("endpoints")
        md = placeholder[0]["metadata"]
        assert md["name"].startswith("web-") and len(md["name"]) == len("web-") + 5
        assert md["labels"]["endpointslice.kubernetes.io/managed-by"] == \
            "endpointslice-controller.k8s.io"
        assert md["labels"]["tier"] == "fe"
        assert md["ownerReferences"][0]["uid"] == svc["metadata"]["uid"]
        assert md["ownerReferences"][0]["controller"] is True
        await eventually(lambda: api.get(ENDPOINTS, "web", ns), "empty Endpoints")

        # Two pods resolving the named port differently, one unlabelled pod.
        await api.create(PODS, pod_body("a", {"app": "web"}, [
            {"name": "http", "containerPort": 8080}], node="node-a"), ns)
        await api.create(PODS, pod_body("b", {"app": "web"}, [
            {"name": "http", "containerPort": 8081}], node="node-b"), ns)
        await api.create(PODS, pod_body("other", {"app": "db"}), ns)
        await kubelet_status(api, ns, "a", "10.9.0.1", ready=True)
        await kubelet_status(api, ns, "b", "10.9.0.2", ready=False)
        await kubelet_status(api, ns, "other", "10.9.0.3", ready=True)

        async def two_pods() -> dict[str, tuple[Obj, Obj]] | None:
            slices = await slices_of(api, ns, "web")
            eps = endpoints_by_pod(slices)
            return eps if set(eps) == {"a", "b"} and len(slices) == 2 else None

        eps = await eventually(two_pods, "slices with pods a and b (placeholder gone)")
        ep_a, slice_a = eps["a"]
        ep_b, slice_b = eps["b"]
        assert slice_a["metadata"]["name"] != slice_b["metadata"]["name"]  # port sets differ
        assert slice_a["addressType"] == "IPv4"
        assert ep_a["addresses"] == ["10.9.0.1"] and ep_a["nodeName"] == "node-a"
        assert ep_a["conditions"] == {"ready": True, "serving": True, "terminating": False}
        assert ep_b["conditions"] == {"ready": False, "serving": False, "terminating": False}
        assert ep_a["targetRef"]["kind"] == "Pod" and ep_a["targetRef"]["namespace"] == ns
        assert ep_a["targetRef"]["uid"]
        ports_a = {p["name"]: p["port"] for p in slice_a["ports"]}
        assert ports_a == {"http": 8080, "metrics": 9090}
        assert {p["name"]: p["port"] for p in slice_b["ports"]} == {"http": 8081,
                                                                    "metrics": 9090}
        assert all(p["protocol"] == "TCP" for p in slice_a["ports"])

        async def endpoints_match(ready: set[str], not_ready: set[str]) -> Obj | None:
            ep = await api.get(ENDPOINTS, "web", ns)
            have_ready = {a["ip"] for s in ep.get("subsets") or [] for a in
                          s.get("addresses") or []}
            have_not = {a["ip"] for s in ep.get("subsets") or [] for a in
                        s.get("notReadyAddresses") or []}
            return ep if (have_ready, have_not) == (ready, not_ready) else None

        ep = await eventually(lambda: endpoints_match({"10.9.0.1"}, {"10.9.0.2"}),
                              "Endpoints a ready, b not ready")
        assert ep["metadata"]["labels"] == {"tier": "fe"}
        by_ip = {a["ip"]: (a, s) for s in ep["subsets"]
                 for a in (s.get("addresses") or []) + (s.get("notReadyAddresses") or [])}
        address_a, subset_a = by_ip["10.9.0.1"]
        assert address_a["nodeName"] == "node-a" and address_a["targetRef"]["name"] == "a"
        assert {p["name"]: p["port"] for p in subset_a["ports"]} == {"http": 8080,
                                                                     "metrics": 9090}

        # Readiness flips both ways.
        await kubelet_status(api, ns, "b", "10.9.0.2", ready=True)
        await kubelet_status(api, ns, "a", "10.9.0.1", ready=False)

        async def flipped() -> bool:
            eps = endpoints_by_pod(await slices_of(api, ns, "web"))
            return bool(eps.get("b") and eps["b"][0]["conditions"]["ready"] and
                        eps.get("a") and not eps["a"][0]["conditions"]["ready"])

        await eventually(flipped, "b ready, a not ready in slices")
        await eventually(lambda: endpoints_match({"10.9.0.2"}, {"10.9.0.1"}),
                         "Endpoints b ready, a not ready")

        # A terminating (gracefully deleted, bound) pod stays in slices, marked so, and
        # leaves Endpoints at once.
        await api.delete(PODS, "b", ns)

        async def terminating() -> bool:
            eps = endpoints_by_pod(await slices_of(api, ns, "web"))
            return bool(eps.get("b")) and eps["b"][0]["conditions"] == {
                "ready": False, "serving": True, "terminating": True}

        await eventually(terminating, "b terminating in its slice")
        await eventually(lambda: endpoints_match(set(), {"10.9.0.1"}),
                         "Endpoints without terminating b")

        # The kubelet's final delete removes it.
        await api.delete(PODS, "b", ns, grace_period_seconds=0)

        async def only_a() -> bool:
            slices = await slices_of(api, ns, "web")
            return set(endpoints_by_pod(slices)) == {"a"} and len(slices) == 1

        await eventually(only_a, "only a left, in one slice")

        # A pod change that changes no endpoint writes nothing.
        before = [s["metadata"]["resourceVersion"] for s in await slices_of(api, ns, "web")]
        ep_before = (await api.get(ENDPOINTS, "web", ns))["metadata"]["resourceVersion"]
        await api.patch(PODS, "a", {"metadata": {"annotations": {"note": "x"}}}, ns)
        await asyncio.sleep(0.5)
        assert [s["metadata"]["resourceVersion"] for s in await slices_of(api, ns, "web")] \
            == before
        assert (await api.get(ENDPOINTS, "web", ns))["metadata"]["resourceVersion"] == ep_before

        # publishNotReadyAddresses: every pod with an IP is ready.
        await api.create(SERVICES, {"metadata": {"name": "all"}, "spec": {
            "selector": {"app": "web"}, "publishNotReadyAddresses": True,
            "ports": [{"port": 80, "targetPort": 8080}]}}, ns)

        async def all_ready() -> bool:
            eps = endpoints_by_pod(await slices_of(api, ns, "all"))
            return bool(eps.get("a")) and eps["a"][0]["conditions"]["ready"] is True

        await eventually(all_ready, "not-ready a published as ready")
        await eventually(
            lambda: _has_ready_ip(api, ns, "all", "10.9.0.1"), "Endpoints of 'all' list a")

        # A selector-less Service is left alone: nothing is created for it.
        await api.create(SERVICES, {"metadata": {"name": "manual"}, "spec": {
            "ports": [{"port": 80}]}}, ns)
        hand = await api.create(ENDPOINTS, {"metadata": {"name": "manual"}, "subsets": [
            {"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 80}]}]}, ns)
        await api.patch(SERVICES, "all", {"metadata": {"labels": {"touched": "yes"}}}, ns)
        await eventually(lambda: _labelled(api, ns, "all"), "resync after a service change")
        assert await slices_of(api, ns, "manual") == []
        manual = await api.get(ENDPOINTS, "manual", ns)
        assert manual["metadata"]["resourceVersion"] == hand["metadata"]["resourceVersion"]

        # Deleting the Service deletes its slices and Endpoints.
        await api.delete(SERVICES, "web", ns)
        await eventually(lambda: _no_slices(api, ns, "web"), "slices of deleted web gone")
        await eventually(lambda: gone(api, ENDPOINTS, "web", ns), "Endpoints of web gone")


async def _has_ready_ip(api: ApiClient, ns: str, name: str, ip: str) -> bool:
    ep = await api.get(ENDPOINTS, name, ns)
    return any(a["ip"] == ip for s in ep.get("subsets") or [] for a in s.get("addresses") or [])


async def _labelled(api: ApiClient, ns: str, svc: str) -> bool:
    slices = await slices_of(api, ns, svc)
    return bool(slices) and all(s["metadata"]["labels"].get("touched") == "yes"
                                for s in slices)


async def _no_slices(api: ApiClient, ns: str, svc: str) -> bool:
    return not await slices_of(api, ns, svc)


async def test_more_than_100_endpoints_split_into_slices(api: ApiClient, ns: str) -> None:
    count = 105
    async with controllers(api, "endpointslice", "endpoints"):
        await api.create(SERVICES, {"metadata": {"name": "big"}, "spec": {
            "selector": {"app": "big"}, "ports": [{"port": 80}]}}, ns)
        sem = asyncio.Semaphore(32)

        async def make(i: int) -> None:
            async with sem:
                await api.create(PODS, pod_body(f"p{i}", {"app": "big"}), ns)
                await kubelet_status(api, ns, f"p{i}", f"10.8.{i // 200}.{i % 200 + 1}",
                                     ready=True)

        await asyncio.gather(*(make(i) for i in range(count)))

        async def split() -> list[Obj] | None:
            slices = await slices_of(api, ns, "big")
            total = sum(len(s.get("endpoints") or []) for s in slices)
            return slices if total == count else None

        slices = await eventually(split, f"{count} endpoints in slices", timeout=30)
        sizes = sorted(len(s["endpoints"]) for s in slices)
        assert sizes == [5, 100], sizes
        assert len(endpoints_by_pod(slices)) == count  # no endpoint listed twice

        async def all_addresses() -> bool:
            ep = await api.get(ENDPOINTS, "big", ns)
            return sum(len(s.get("addresses") or []) for s in ep.get("subsets") or []) == count

        await eventually(all_addresses, f"{count} addresses in Endpoints", timeout=30)


# --- ServiceAccount --------------------------------------------------------------------------


async def test_default_serviceaccount_created_and_recreated(api: ApiClient, ns: str) -> None:
    async with controllers(api, "serviceaccount"):
        first = await eventually(lambda: _get(api, SERVICEACCOUNTS, "default", ns),
                                 "default ServiceAccount")
        await api.delete(SERVICEACCOUNTS, "default", ns)

        async def recreated() -> Obj | None:
            sa = await _get(api, SERVICEACCOUNTS, "default", ns)
            return sa if sa and sa["metadata"]["uid"] != first["metadata"]["uid"] else None

        await eventually(recreated, "default ServiceAccount recreated")


async def _get(api: ApiClient, res: Resource, name: str, ns: str | None) -> Obj | None:
    try:
        return await api.get(res, name, ns)
    except errors.NotFound:
        return None


# --- Namespace -------------------------------------------------------------------------------


async def test_namespace_deletion_empties_and_removes_it(api: ApiClient, ns: str) -> None:
    async with controllers(api, "namespace", "serviceaccount"):
        await eventually(lambda: _get(api, SERVICEACCOUNTS, "default", ns), "default SA")
        await api.create(CONFIGMAPS, {"metadata": {"name": "plain"}}, ns)
        await api.create(SECRETS, {"metadata": {"name": "s"}, "stringData": {"k": "v"}}, ns)
        await api.create(SERVICES, {"metadata": {"name": "svc"}, "spec": {
            "selector": {"app": "x"}, "ports": [{"port": 80}]}}, ns)
        await api.create(PODS, pod_body("unbound", {"app": "x"}), ns)
        await api.create(CONFIGMAPS, {"metadata": {"name": "held",
                                                   "finalizers": ["example.com/hold"]}}, ns)
        await api.delete(NAMESPACES, ns)

        async def emptied_but_held() -> bool:
            for res, name in ((SECRETS, "s"), (SERVICES, "svc"), (PODS, "unbound"),
                              (CONFIGMAPS, "plain"), (SERVICEACCOUNTS, "default")):
                if not await gone(api, res, name, ns):
                    return False
            return True

        await eventually(emptied_but_held, "content deleted")
        # The held object keeps the namespace Terminating, with its finalizer.
        await asyncio.sleep(1.5)  # longer than the controller's recheck interval
        obj = await api.get(NAMESPACES, ns)
        assert obj["status"]["phase"] == "Terminating"
        assert obj["spec"]["finalizers"] == ["kubernetes"]
        held = await api.get(CONFIGMAPS, "held", ns)
        assert held["metadata"]["deletionTimestamp"]
        with pytest.raises(errors.Forbidden):  # and nothing new gets in
            await api.create(CONFIGMAPS, {"metadata": {"name": "late"}}, ns)
        assert await gone(api, SERVICEACCOUNTS, "default", ns)  # not recreated

        await api.patch(CONFIGMAPS, "held", {"metadata": {"finalizers": None}}, ns)
        await eventually(lambda: gone(api, NAMESPACES, ns, None), "namespace removed")


async def test_kubectl_delete_namespace_wait(api: ApiClient, apiserver: ApiServer,
                                             ns: str) -> None:
    async with controllers(api, "namespace", "serviceaccount", "garbagecollector"):
        await api.create(CONFIGMAPS, {"metadata": {"name": "c"}}, ns)
        await api.create(PODS, pod_body("p", {"app": "p"}), ns)
        proc = await asyncio.create_subprocess_exec(
            "/usr/bin/kubectl", "--kubeconfig", str(apiserver.kubeconfig), "delete", "ns", ns,
            "--wait=true", "--timeout=30s",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 40)
        assert proc.returncode == 0, (out, err)
        assert f'namespace "{ns}" deleted' in out.decode()
        assert await gone(api, NAMESPACES, ns, None)


# --- Garbage collector -----------------------------------------------------------------------


def owned_by(*owners: Obj, block: bool = False) -> list[Obj]:
    refs = []
    for o in owners:
        ref = {"apiVersion": o["apiVersion"], "kind": o["kind"],
               "name": o["metadata"]["name"], "uid": o["metadata"]["uid"]}
        if block:
            ref["blockOwnerDeletion"] = True
        refs.append(ref)
    return refs


async def cm(api: ApiClient, ns: str, name: str, owners: list[Obj] | None = None,
             finalizers: list[str] | None = None) -> Obj:
    md: Obj = {"name": name}
    if owners:
        md["ownerReferences"] = owners
    if finalizers:
        md["finalizers"] = finalizers
    obj = await api.create(CONFIGMAPS, {"metadata": md}, ns)
    obj.setdefault("apiVersion", "v1")
    obj.setdefault("kind", "ConfigMap")
    return obj


async def test_gc_background_deletes_dependents(api: ApiClient, ns: str) -> None:
    async with controllers(api, "garbagecollector"):
        owner = await cm(api, ns, "owner")
        other = await cm(api, ns, "other-owner")
        child = await cm(api, ns, "child", owned_by(owner))
        await cm(api, ns, "grandchild", owned_by(child))
        pod = pod_body("dep-pod", {})
        pod["metadata"]["ownerReferences"] = owned_by(owner)
        await api.create(PODS, pod, ns)
        await cm(api, ns, "shared", owned_by(owner, other))
        # An owner that never existed: its dependent is collected too.
        await cm(api, ns, "orphaned-at-birth", [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "ghost",
            "uid": str(uuid.uuid4())}])
        # Nothing with a live owner is touched meanwhile.
        await asyncio.sleep(0.5)
        assert not await gone(api, CONFIGMAPS, "child", ns)

        await api.delete(CONFIGMAPS, "owner", ns)
        for res, name in ((CONFIGMAPS, "child"), (CONFIGMAPS, "grandchild"),
                          (PODS, "dep-pod"), (CONFIGMAPS, "orphaned-at-birth")):
            await eventually(lambda r=res, n=name: gone(api, r, n, ns), f"{name} collected")

        async def only_live_owner_left() -> bool:
            shared = await api.get(CONFIGMAPS, "shared", ns)
            return [r["uid"] for r in shared["metadata"].get("ownerReferences") or []] == \
                [other["metadata"]["uid"]]

        await eventually(only_live_owner_left, "dangling ref removed from shared dependent")


async def test_gc_foreground_waits_for_blocking_dependents(api: ApiClient, ns: str) -> None:
    async with controllers(api, "garbagecollector"):
        owner = await cm(api, ns, "owner")
        quick = await cm(api, ns, "quick", owned_by(owner, block=True))
        await cm(api, ns, "grandchild", owned_by(quick, block=True))
        await cm(api, ns, "slow", owned_by(owner, block=True), ["example.com/hold"])
        await cm(api, ns, "nonblocking", owned_by(owner))

        await api.delete(CONFIGMAPS, "owner", ns, propagation_policy="Foreground")
        await eventually(lambda: gone(api, CONFIGMAPS, "quick", ns), "quick dependent gone")
        assert await gone(api, CONFIGMAPS, "grandchild", ns)  # foreground all the way down
        await eventually(lambda: gone(api, CONFIGMAPS, "nonblocking", ns),
                         "non-blocking dependent gone")

        async def slow_terminating() -> bool:
            slow = await api.get(CONFIGMAPS, "slow", ns)
            return bool(slow["metadata"].get("deletionTimestamp"))

        await eventually(slow_terminating, "slow dependent marked for deletion")
        await asyncio.sleep(0.5)
        held = await api.get(CONFIGMAPS, "owner", ns)
        assert held["metadata"]["deletionTimestamp"]
        assert held["metadata"]["finalizers"] == ["foregroundDeletion"]

        await api.patch(CONFIGMAPS, "slow", {"metadata": {"finalizers": None}}, ns)
        await eventually(lambda: gone(api, CONFIGMAPS, "slow", ns), "slow dependent gone")
        await eventually(lambda: gone(api, CONFIGMAPS, "owner", ns), "owner released")


async def test_gc_orphan_keeps_dependents(api: ApiClient, ns: str) -> None:
    async with controllers(api, "garbagecollector"):
        owner = await cm(api, ns, "owner")
        other = await cm(api, ns, "other")
        await cm(api, ns, "d1", owned_by(owner))
        await cm(api, ns, "d2", owned_by(owner, other))

        await api.delete(CONFIGMAPS, "owner", ns, propagation_policy="Orphan")
        await eventually(lambda: gone(api, CONFIGMAPS, "owner", ns), "owner deleted")
        d1 = await api.get(CONFIGMAPS, "d1", ns)
        d2 = await api.get(CONFIGMAPS, "d2", ns)
        assert not d1["metadata"].get("ownerReferences")
        assert [r["uid"] for r in d2["metadata"]["ownerReferences"]] == \
            [other["metadata"]["uid"]]
        # And they stay: nothing collects them later.
        await asyncio.sleep(0.5)
        assert not await gone(api, CONFIGMAPS, "d1", ns)

