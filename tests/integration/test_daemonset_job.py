"""DaemonSet and Job controllers against the real apiserver and etcd.

No scheduler or kubelet runs here: the tests create Node objects themselves and play the
kubelet's part by writing pod status (phase, Ready, container exit codes) through the
`/status` subresource, which is exactly what a kubelet sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from api import errors
from api.meta import now_rfc3339_micro
from api.resources import CATALOGUE
from client.rest import ApiClient
from controller_manager import job as job_controller
from controller_manager.app import run_controllers
from controller_manager.options import Options

pytestmark = pytest.mark.asyncio

NAMESPACES = CATALOGUE.by_plural("namespaces")
NODES = CATALOGUE.by_plural("nodes")
PODS = CATALOGUE.by_plural("pods")
EVENTS = CATALOGUE.by_plural("events")
DAEMONSETS = CATALOGUE.by_plural("daemonsets")
JOBS = CATALOGUE.by_plural("jobs")

Obj = dict[str, Any]
WAIT = 15.0  # upper bound for anything a controller should do promptly
DEFAULT_DS_TOLERATIONS = {
    ("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
}


# --- fixtures and helpers -------------------------------------------------------------------

@pytest.fixture
async def ns(api: ApiClient) -> str:
    name = f"dsj-{uuid.uuid4().hex[:8]}"
    await api.create(NAMESPACES, {"metadata": {"name": name}})
    return name


@pytest.fixture
async def controllers(api: ApiClient, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    # Shrink upstream's 1 s pod-event batching so the tests run quickly.
    monkeypatch.setattr(job_controller, "SYNC_BATCH_PERIOD", 0.05)
    task = asyncio.create_task(run_controllers(
        api, Options(controllers=["daemonset", "job"], leader_elect=False)))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def nodes(api: ApiClient) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """A factory for Node objects that are deleted again after the test."""
    made: list[str] = []

    async def make(prefix: str, labels: dict[str, str] | None = None,
                   taints: list[Obj] | None = None, unschedulable: bool = False) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        spec: Obj = {"taints": taints} if taints else {}
        if unschedulable:
            spec["unschedulable"] = True
        await api.create(NODES, {"metadata": {"name": name, "labels": labels or {}},
                                 "spec": spec})
        made.append(name)
        return name

    yield make
    for name in made:
        with contextlib.suppress(errors.NotFound):
            await api.delete(NODES, name)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = WAIT,
                     what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last={last!r}")


async def pods_of(api: ApiClient, ns: str, owner_uid: str | None = None) -> list[Obj]:
    items = (await api.list(PODS, ns))["items"]
    if owner_uid is None:
        return list(items)
    return [p for p in items
            if any(r.get("uid") == owner_uid and r.get("controller")
                   for r in p["metadata"].get("ownerReferences") or [])]


def target_node(pod: Obj) -> str:
    terms = pod["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert len(terms) == 1 and terms[0]["matchFields"][0]["key"] == "metadata.name"
    return str(terms[0]["matchFields"][0]["values"][0])


def live(pods: list[Obj]) -> list[Obj]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


async def kubelet_status(api: ApiClient, ns: str, pod: str, phase: str, *, ready: bool = False,
                         exit_code: int | None = None) -> None:
    """Write what a kubelet would report for a one-container pod."""
    now = now_rfc3339_micro()
    if phase in ("Succeeded", "Failed"):
        code = exit_code if exit_code is not None else (0 if phase == "Succeeded" else 1)
        state: Obj = {"terminated": {"exitCode": code, "startedAt": now, "finishedAt": now,
                                     "reason": "Completed" if code == 0 else "Error"}}
    elif phase == "Running":
        state = {"running": {"startedAt": now}}
    else:
        state = {"waiting": {"reason": "ContainerCreating"}}
    status = {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                        "lastTransitionTime": now}],
        "containerStatuses": [{"name": "main", "ready": ready, "restartCount": 0,
                               "image": "busybox", "imageID": "", "started": phase == "Running",
                               "state": state}],
    }
    await api.patch(PODS, pod, {"status": status}, ns, subresource="status")


async def events_for(api: ApiClient, ns: str, name: str) -> list[tuple[str, str, str]]:
    items = (await api.list(EVENTS, ns))["items"]
    return [(e.get("type"), e.get("reason"), e.get("message")) for e in items
            if e["involvedObject"].get("name") == name]


async def wait_event(api: ApiClient, ns: str, name: str, reason: str) -> tuple[str, str, str]:
    async def find() -> tuple[str, str, str] | None:
        return next((e for e in await events_for(api, ns, name) if e[1] == reason), None)
    return await eventually(find, what=f"event {reason} for {name}")  # type: ignore[no-any-return]


def condition(obj: Obj, type_: str) -> Obj | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or []
                 if c["type"] == type_), None)


CONTAINER = {"name": "main", "image": "busybox", "command": ["sleep", "3600"]}


def daemonset(name: str, pod_spec: Obj, strategy: Obj | None = None) -> Obj:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": labels},
                     "updateStrategy": strategy or {"type": "RollingUpdate"},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [CONTAINER], **pod_spec}}}}


def job(name: str, **spec: Any) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {**spec, "template": {"spec": {"containers": [CONTAINER],
                                                   "restartPolicy": "Never"}}}}


# --- DaemonSet ------------------------------------------------------------------------------

async def test_daemonset_places_one_pod_per_eligible_node(
        api: ApiClient, ns: str, controllers: None,
        nodes: Callable[..., Awaitable[str]]) -> None:
    group = uuid.uuid4().hex[:8]
    grp = {"dsj-group": group}
    a = await nodes("a", {**grp, "zone": "z1"})
    b = await nodes("b", {**grp, "zone": "z2"})
    c = await nodes("c", grp, taints=[{"key": "dedicated", "value": "gpu",
                                       "effect": "NoSchedule"}])
    d = await nodes("d", grp, unschedulable=True,
                    taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}])
    await nodes("e", {"zone": "z1"})  # not in the group: never eligible
    await nodes("f", grp, taints=[{"key": "evict", "value": "yes", "effect": "NoExecute"}])

    plain = await api.create(DAEMONSETS, daemonset("plain", {"nodeSelector": grp}), ns)
    tolerant = await api.create(DAEMONSETS, daemonset("tolerant", {
        "nodeSelector": grp,
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu",
                         "effect": "NoSchedule"}]}), ns)
    affine = await api.create(DAEMONSETS, daemonset("affine", {"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "dsj-group", "operator": "In", "values": [group]},
                                  {"key": "zone", "operator": "In", "values": ["z1"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [b]}]},
        ]}}}}), ns)

    async def placement(ds: Obj) -> dict[str, int]:
        out: dict[str, int] = {}
        for pod in live(await pods_of(api, ns, ds["metadata"]["uid"])):
            out[target_node(pod)] = out.get(target_node(pod), 0) + 1
        return out

    async def placed(ds: Obj, want: set[str]) -> bool:
        return await placement(ds) == {n: 1 for n in want}

    await eventually(lambda: placed(plain, {a, b, d}), what="plain on a, b, d")
    await eventually(lambda: placed(tolerant, {a, b, c, d}), what="tolerant on a, b, c, d")
    await eventually(lambda: placed(affine, {a, b}), what="affine on a, b")
    # Stable: nothing more is created once every eligible node has its pod.
    await asyncio.sleep(0.5)
    assert await placement(plain) == {a: 1, b: 1, d: 1}

    pod = live(await pods_of(api, ns, plain["metadata"]["uid"]))[0]
    ref = pod["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["controller"]) == ("DaemonSet", "plain", True)
    assert pod["metadata"]["labels"]["app"] == "plain"
    assert pod["metadata"]["labels"]["controller-revision-hash"]
    assert not pod["spec"].get("nodeName")  # the scheduler binds it, guided by the affinity
    tolerations = {(t.get("key"), t.get("effect")) for t in pod["spec"]["tolerations"]}
    assert DEFAULT_DS_TOLERATIONS <= tolerations

    async def status_is(ds: Obj, **want: int) -> Obj | bool:
        fresh = await api.get(DAEMONSETS, ds["metadata"]["name"], ns)
        status = fresh.get("status") or {}
        got = {k: status.get(k, 0) for k in want}
        return fresh if got == want else False

    fresh = await eventually(lambda: status_is(plain, desiredNumberScheduled=3,
                                               currentNumberScheduled=3, numberReady=0,
                                               updatedNumberScheduled=3, numberMisscheduled=0,
                                               numberUnavailable=3), what="plain status")
    assert fresh["status"]["observedGeneration"] == fresh["metadata"]["generation"]

    # The kubelet reports the pods running and ready.
    for pod in live(await pods_of(api, ns, plain["metadata"]["uid"])):
        await kubelet_status(api, ns, pod["metadata"]["name"], "Running", ready=True)
    await eventually(lambda: status_is(plain, desiredNumberScheduled=3, numberReady=3,
                                       numberAvailable=3, numberUnavailable=0),
                     what="plain ready")

    # A new node in the group gets a pod; a node leaving the group loses its pod; a NoExecute
    # taint evicts; a NoSchedule taint only stops new pods (the existing one is misscheduled).
    g = await nodes("g", grp)
    await eventually(lambda: placed(plain, {a, b, d, g}), what="pod on new node g")
    await api.patch(NODES, a, {"metadata": {"labels": {"dsj-group": None}}})
    await api.patch(NODES, b, {"spec": {"taints": [{"key": "evict", "value": "now",
                                                    "effect": "NoExecute"}]}})
    await api.patch(NODES, d, {"spec": {"taints": [
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
        {"key": "maintenance", "effect": "NoSchedule"}]}})
    await eventually(lambda: placed(plain, {d, g}), what="pods left only on d and g")
    await eventually(lambda: status_is(plain, desiredNumberScheduled=1,
                                       currentNumberScheduled=1, numberMisscheduled=1),
                     what="d counted as misscheduled")

    # A failed daemon pod is deleted and replaced.
    on_g = next(p for p in live(await pods_of(api, ns, plain["metadata"]["uid"]))
                if target_node(p) == g)
    await kubelet_status(api, ns, on_g["metadata"]["name"], "Failed")

    async def replaced() -> bool:
        pods = live(await pods_of(api, ns, plain["metadata"]["uid"]))
        names = {p["metadata"]["name"] for p in pods if target_node(p) == g}
        return len(names) == 1 and on_g["metadata"]["name"] not in names

    await eventually(replaced, what="failed pod on g replaced")

    # A matching orphan is adopted, and as the newer of two pods on g it is deleted.
    await api.create(PODS, {"metadata": {"name": "stray", "labels": {"app": "plain"}},
                            "spec": {"containers": [CONTAINER], "affinity": {
                                "nodeAffinity": {
                                    "requiredDuringSchedulingIgnoredDuringExecution": {
                                        "nodeSelectorTerms": [{"matchFields": [{
                                            "key": "metadata.name", "operator": "In",
                                            "values": [g]}]}]}}}}}, ns)

    async def stray_gone() -> bool:
        try:
            await api.get(PODS, "stray", ns)
        except errors.NotFound:
            return True
        return False

    await eventually(stray_gone, what="stray pod adopted and deleted as an extra")
    await asyncio.sleep(0.3)
    assert await placement(plain) == {d: 1, g: 1}
    await wait_event(api, ns, "plain", "FailedDaemonPod")
    created = await wait_event(api, ns, "plain", "SuccessfulCreate")
    assert created[0] == "Normal" and created[2].startswith("Created pod: plain-")
    await wait_event(api, ns, "plain", "SuccessfulDelete")
    for name in ("plain", "tolerant", "affine"):
        await api.delete(DAEMONSETS, name, ns)


async def test_daemonset_rolling_update_respects_max_unavailable(
        api: ApiClient, ns: str, controllers: None,
        nodes: Callable[..., Awaitable[str]]) -> None:
    group = uuid.uuid4().hex[:8]
    names = [await nodes(f"r{i}", {"dsj-group": group}) for i in range(5)]
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "40%"}}  # -> 2
    ds = await api.create(DAEMONSETS, daemonset("roll", {"nodeSelector": {"dsj-group": group}},
                                                strategy), ns)
    uid = ds["metadata"]["uid"]

    # A fake kubelet: every new pod turns ready a little after it appears.
    seen_at: dict[str, float] = {}

    async def kubelet() -> None:
        while True:
            for pod in live(await pods_of(api, ns, uid)):
                name = pod["metadata"]["name"]
                if pod["status"].get("phase") == "Running":
                    continue
                first = seen_at.setdefault(name, time.monotonic())
                if time.monotonic() - first >= 0.4:
                    with contextlib.suppress(errors.NotFound):
                        await kubelet_status(api, ns, name, "Running", ready=True)
            await asyncio.sleep(0.05)

    def ready(pod: Obj) -> bool:
        return any(c["type"] == "Ready" and c["status"] == "True"
                   for c in pod["status"].get("conditions") or [])

    async def by_node() -> dict[str, list[Obj]]:
        out: dict[str, list[Obj]] = {n: [] for n in names}
        for pod in live(await pods_of(api, ns, uid)):
            out.setdefault(target_node(pod), []).append(pod)
        return out

    async def all_ready(hash_: str | None) -> str | bool:
        nodes_pods = await by_node()
        pods = [p for ps in nodes_pods.values() for p in ps]
        if len(pods) != 5 or any(len(ps) != 1 for ps in nodes_pods.values()):
            return False
        hashes = {p["metadata"]["labels"]["controller-revision-hash"] for p in pods}
        if len(hashes) != 1 or (hash_ is not None and hashes != {hash_}) or \
                not all(ready(p) for p in pods):
            return False
        return hashes.pop()

    kubelet_task = asyncio.create_task(kubelet())
    try:
        old_hash = await eventually(lambda: all_ready(None), what="5 ready pods")
        await api.patch(DAEMONSETS, "roll", {"spec": {"template": {"metadata": {
            "annotations": {"rev": "2"}}}}}, ns)

        async def new_hash() -> str | None:
            pods = live(await pods_of(api, ns, uid))
            hashes = {p["metadata"]["labels"]["controller-revision-hash"] for p in pods}
            return next(iter(hashes - {old_hash}), None)

        new = await eventually(new_hash, what="a pod from the new template")
        assert new != old_hash
        max_unavailable = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            nodes_pods = await by_node()
            unavailable = sum(1 for ps in nodes_pods.values() if not any(ready(p) for p in ps))
            max_unavailable = max(max_unavailable, unavailable)
            if await all_ready(new):
                break
            await asyncio.sleep(0.03)
        else:
            raise AssertionError(f"rollout did not finish: {await by_node()}")
        assert 1 <= max_unavailable <= 2, max_unavailable
        fresh = await api.get(DAEMONSETS, "roll", ns)
        assert fresh["status"].get("updatedNumberScheduled") == 5 or await eventually(
            lambda: _status_field(api, ns, "roll", "updatedNumberScheduled", 5))

        # OnDelete: a template change replaces a pod only when someone deletes it.
        await api.patch(DAEMONSETS, "roll", {"spec": {
            "updateStrategy": {"type": "OnDelete", "rollingUpdate": None},
            "template": {"metadata": {"annotations": {"rev": "3"}}}}}, ns)
        await asyncio.sleep(1.0)
        assert await all_ready(new) == new  # untouched
        victim = live(await pods_of(api, ns, uid))[0]
        await api.delete(PODS, victim["metadata"]["name"], ns)

        async def victim_replaced() -> bool:
            pods = live(await pods_of(api, ns, uid))
            hashes = [p["metadata"]["labels"]["controller-revision-hash"] for p in pods]
            return len(pods) == 5 and hashes.count(new) == 4
        await eventually(victim_replaced, what="the deleted pod replaced from the new template")
    finally:
        kubelet_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await kubelet_task
        await api.delete(DAEMONSETS, "roll", ns)


async def _status_field(api: ApiClient, ns: str, name: str, key: str, want: int) -> bool:
    fresh = await api.get(DAEMONSETS, name, ns)
    return bool((fresh.get("status") or {}).get(key) == want)


# --- Job ------------------------------------------------------------------------------------

async def job_pods(api: ApiClient, ns: str, j: Obj) -> list[Obj]:
    return await pods_of(api, ns, j["metadata"]["uid"])


def active(pods: list[Obj]) -> list[Obj]:
    return [p for p in live(pods)
            if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]


async def test_job_runs_completions_with_parallelism(api: ApiClient, ns: str,
                                                     controllers: None) -> None:
    j = await api.create(JOBS, job("work", completions=4, parallelism=2), ns)
    first = await eventually(lambda: _n_active(api, ns, j, 2), what="2 active pods")
    pod = first[0]
    md = pod["metadata"]
    assert "batch.kubernetes.io/job-tracking" in md["finalizers"]
    assert md["labels"]["job-name"] == "work"
    assert md["labels"]["batch.kubernetes.io/controller-uid"] == j["metadata"]["uid"]
    assert md["ownerReferences"][0]["kind"] == "Job"
    await asyncio.sleep(0.5)
    assert len(await job_pods(api, ns, j)) == 2  # parallelism bounds the active pods

    async def status_has(**want: Any) -> Obj | bool:
        fresh = await api.get(JOBS, "work", ns)
        status = fresh.get("status") or {}
        return fresh if all(status.get(k, 0) == v for k, v in want.items()) else False

    await eventually(lambda: status_has(active=2, ready=0), what="active=2")
    await kubelet_status(api, ns, first[0]["metadata"]["name"], "Running", ready=True)
    await eventually(lambda: status_has(active=2, ready=1), what="ready=1")
    for p in first:
        await kubelet_status(api, ns, p["metadata"]["name"], "Succeeded")
    second = await eventually(lambda: _n_active(api, ns, j, 2, total=4), what="2 more pods")
    await eventually(lambda: status_has(succeeded=2, active=2), what="succeeded=2")
    for p in second:
        await kubelet_status(api, ns, p["metadata"]["name"], "Succeeded")

    async def complete() -> Obj | bool:
        fresh = await api.get(JOBS, "work", ns)
        return fresh if condition(fresh, "Complete") else False

    done = await eventually(complete, what="Complete")
    status = done["status"]
    assert status["succeeded"] == 4 and not status.get("failed") and not status.get("active")
    assert status["completionTime"] and status["startTime"]
    types = [c["type"] for c in status["conditions"]]
    assert types == ["SuccessCriteriaMet", "Complete"], types
    assert condition(done, "Complete")["reason"] == "CompletionsReached"  # type: ignore[index]
    assert not (status.get("uncountedTerminatedPods") or {}).get("succeeded")
    pods = await job_pods(api, ns, j)
    assert len(pods) == 4  # counted pods stay (without our finalizer) for their logs
    assert all("batch.kubernetes.io/job-tracking" not in (p["metadata"].get("finalizers") or [])
               for p in pods)
    await wait_event(api, ns, "work", "Completed")
    created = [e for e in await events_for(api, ns, "work") if e[1] == "SuccessfulCreate"]
    assert created and created[0][2].startswith("Created pod: work-")


async def _n_active(api: ApiClient, ns: str, j: Obj, n: int,
                    total: int | None = None) -> list[Obj] | None:
    pods = await job_pods(api, ns, j)
    if total is not None and len(pods) != total:
        return None
    act = active(pods)
    return act if len(act) == n else None


async def test_job_backoff_limit_fails_the_job(api: ApiClient, ns: str, controllers: None,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # 2 s: even with finish times truncated to whole seconds, at least ~1 s must pass.
    monkeypatch.setattr(job_controller, "POD_FAILURE_BACKOFF", 2.0)
    j = await api.create(JOBS, job("flaky", backoffLimit=1), ns)
    [first] = await eventually(lambda: _n_active(api, ns, j, 1), what="first pod")
    await kubelet_status(api, ns, first["metadata"]["name"], "Failed", exit_code=3)
    failed_at = time.monotonic()
    [second] = await eventually(lambda: _n_active(api, ns, j, 1, total=2), what="second pod")
    # The replacement waited for the back-off (2 s after the failure).
    assert time.monotonic() - failed_at >= 0.9
    await kubelet_status(api, ns, second["metadata"]["name"], "Failed", exit_code=3)

    async def failed() -> Obj | bool:
        fresh = await api.get(JOBS, "flaky", ns)
        return fresh if condition(fresh, "Failed") else False

    done = await eventually(failed, what="Failed")
    cond = condition(done, "Failed")
    assert cond is not None and cond["reason"] == "BackoffLimitExceeded"
    assert cond["message"] == "Job has reached the specified backoff limit"
    assert condition(done, "FailureTarget") is not None  # the interim condition came first
    assert done["status"]["failed"] == 2 and not done["status"].get("active")
    assert not done["status"].get("completionTime")
    event = await wait_event(api, ns, "flaky", "BackoffLimitExceeded")
    assert event[0] == "Warning"
    await asyncio.sleep(0.5)
    assert len(await job_pods(api, ns, j)) == 2  # no third attempt


async def test_job_active_deadline(api: ApiClient, ns: str, controllers: None) -> None:
    j = await api.create(JOBS, job("slow", parallelism=2, completions=2,
                                   activeDeadlineSeconds=2), ns)
    pods = await eventually(lambda: _n_active(api, ns, j, 2), what="2 active pods")
    for p in pods:
        # Bound pods are deleted gracefully: they linger until "their kubelet" confirms.
        name = p["metadata"]["name"]
        await api.create_subresource(PODS, name, "binding", {
            "apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": "dsj-node"}}, ns)
        await kubelet_status(api, ns, name, "Running", ready=True)

    async def job_with(type_: str) -> Obj | bool:
        fresh = await api.get(JOBS, "slow", ns)
        return fresh if condition(fresh, type_) else False

    target = await eventually(lambda: job_with("FailureTarget"), timeout=10,
                              what="FailureTarget")
    assert condition(target, "FailureTarget")["reason"] == "DeadlineExceeded"  # type: ignore
    # Failed only once no pod is terminating (upstream 1.31+): the pods still are.
    terminating = await eventually(
        lambda: _terminating(api, ns, "slow", 2), what="status.terminating=2")
    assert not condition(terminating, "Failed")
    pods = await job_pods(api, ns, j)
    assert len(pods) == 2 and all(p["metadata"].get("deletionTimestamp") for p in pods)
    await asyncio.sleep(0.5)
    assert not condition(await api.get(JOBS, "slow", ns), "Failed")
    for p in pods:  # the kubelet has stopped the containers and confirms the deletion
        await api.delete(PODS, p["metadata"]["name"], ns, grace_period_seconds=0)

    done = await eventually(lambda: job_with("Failed"), what="Failed")
    cond = condition(done, "Failed")
    assert cond is not None and cond["reason"] == "DeadlineExceeded"
    assert cond["message"] == "Job was active longer than specified deadline"
    # The running pods were deleted; being deleted before success makes them failures.
    assert done["status"].get("failed") == 2 and not done["status"].get("active")
    assert done["status"].get("terminating") == 0
    assert await eventually(lambda: _gone(api, ns, j), what="pods deleted")
    await wait_event(api, ns, "slow", "DeadlineExceeded")


async def _terminating(api: ApiClient, ns: str, name: str, n: int) -> Obj | bool:
    fresh = await api.get(JOBS, name, ns)
    return fresh if (fresh.get("status") or {}).get("terminating") == n else False


async def _gone(api: ApiClient, ns: str, j: Obj) -> bool:
    return not await job_pods(api, ns, j)


async def test_job_ttl_after_finished_deletes_the_job(api: ApiClient, ns: str,
                                                      controllers: None) -> None:
    j = await api.create(JOBS, job("brief", ttlSecondsAfterFinished=1), ns)
    [pod] = await eventually(lambda: _n_active(api, ns, j, 1), what="pod")
    await kubelet_status(api, ns, pod["metadata"]["name"], "Succeeded")

    async def deleted() -> bool:
        try:
            await api.get(JOBS, "brief", ns)
        except errors.NotFound:
            return True
        return False

    await eventually(deleted, timeout=10, what="job deleted by its TTL")


async def test_job_suspend_and_resume(api: ApiClient, ns: str, controllers: None) -> None:
    j = await api.create(JOBS, job("paused", parallelism=2, completions=4, suspend=True), ns)

    async def suspended(want: str) -> Obj | bool:
        fresh = await api.get(JOBS, "paused", ns)
        cond = condition(fresh, "Suspended")
        return fresh if cond is not None and cond["status"] == want else False

    fresh = await eventually(lambda: suspended("True"), what="Suspended=True")
    cond = condition(fresh, "Suspended")
    assert cond is not None and cond["reason"] == "JobSuspended"
    assert not fresh["status"].get("startTime")
    assert await job_pods(api, ns, j) == []

    await api.patch(JOBS, "paused", {"spec": {"suspend": False}}, ns)
    fresh = await eventually(lambda: suspended("False"), what="resumed")
    assert condition(fresh, "Suspended")["reason"] == "JobResumed"  # type: ignore[index]
    assert fresh["status"].get("startTime")
    pods = await eventually(lambda: _n_active(api, ns, j, 2), what="2 pods after resume")
    await kubelet_status(api, ns, pods[0]["metadata"]["name"], "Running", ready=True)

    await api.patch(JOBS, "paused", {"spec": {"suspend": True}}, ns)
    fresh = await eventually(lambda: suspended("True"), what="suspended again")
    await eventually(lambda: _gone(api, ns, j), what="active pods deleted")
    fresh = await api.get(JOBS, "paused", ns)
    assert not fresh["status"].get("failed")  # suspension is not a failure
    assert not fresh["status"].get("active")
    assert not condition(fresh, "Failed") and not condition(fresh, "Complete")
    await wait_event(api, ns, "paused", "Resumed")
    await wait_event(api, ns, "paused", "Suspended")


async def test_indexed_job(api: ApiClient, ns: str, controllers: None) -> None:
    j = await api.create(JOBS, job("idx", completions=3, parallelism=3,
                                   completionMode="Indexed"), ns)
    pods = await eventually(lambda: _n_active(api, ns, j, 3), what="3 indexed pods")
    by_index = {p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]: p
                for p in pods}
    assert set(by_index) == {"0", "1", "2"}
    assert by_index["1"]["spec"]["hostname"] == "idx-1"
    env = by_index["1"]["spec"]["containers"][0]["env"]
    assert env[-1]["name"] == "JOB_COMPLETION_INDEX"
    await kubelet_status(api, ns, by_index["1"]["metadata"]["name"], "Succeeded")

    async def completed(want: str) -> Obj | bool:
        fresh = await api.get(JOBS, "idx", ns)
        return fresh if (fresh.get("status") or {}).get("completedIndexes") == want else False

    await eventually(lambda: completed("1"), what="completedIndexes=1")
    await kubelet_status(api, ns, by_index["0"]["metadata"]["name"], "Succeeded")
    await kubelet_status(api, ns, by_index["2"]["metadata"]["name"], "Succeeded")
    done = await eventually(lambda: completed("0-2"), what="completedIndexes=0-2")
    done = await eventually(lambda: _complete(api, ns, "idx"), what="indexed Complete")
    assert done["status"]["succeeded"] == 3


async def _complete(api: ApiClient, ns: str, name: str) -> Obj | bool:
    fresh = await api.get(JOBS, name, ns)
    return fresh if condition(fresh, "Complete") else False
