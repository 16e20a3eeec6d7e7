"""The ReplicaSet and Deployment controllers against the real apiserver and etcd.

There is no scheduler or kubelet here: a test that needs pods to run plays the kubelet
itself (`FakeKubelet` writes Running/Ready through pods/status, as a kubelet would) and,
where placement matters, the scheduler (`bind`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Self, TypeVar

import pytest

from api import errors
from api.meta import now_rfc3339
from api.resources import CATALOGUE
from client.informer import Informer, meta_key
from client.rest import ApiClient
from controller_manager.app import run_controllers
from controller_manager.deployment import template_hash
from controller_manager.options import Options
from tests.conftest import ApiServer

pytestmark = pytest.mark.asyncio

PODS = CATALOGUE.require("pods")
REPLICASETS = CATALOGUE.require("replicasets")
DEPLOYMENTS = CATALOGUE.require("deployments")
NAMESPACES = CATALOGUE.require("namespaces")
EVENTS = CATALOGUE.require("events")

KUBECTL = "/usr/bin/kubectl"
WAIT = 20.0
IMAGE_A = "registry.example/web:1"
IMAGE_B = "registry.example/web:2"
IMAGE_C = "registry.example/web:3"
REVISION = "deployment.kubernetes.io/revision"

Obj = dict[str, Any]
T = TypeVar("T")


# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture
async def ns(api: ApiClient) -> str:
    name = f"rsd-{uuid.uuid4().hex[:8]}"
    await api.create(NAMESPACES, {"metadata": {"name": name}})
    return name


@contextlib.asynccontextmanager
async def controllers(api: ApiClient) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(run_controllers(
        api, Options(controllers=["replicaset", "deployment"], leader_elect=False)),
        name="test-controllers")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_for(what: str, check: Callable[[], Awaitable[T | None]],
                   timeout: float = WAIT) -> T:
    """Poll `check` until it returns something truthy; fail with `what` and the last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        await asyncio.sleep(0.05)


def labels_of(obj: Obj) -> dict[str, str]:
    return obj["metadata"].get("labels") or {}


def is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def image_of(obj: Obj) -> str:
    spec = obj["spec"]["template"]["spec"] if obj.get("kind") != "Pod" and \
        "template" in obj["spec"] else obj["spec"]
    return str(spec["containers"][0]["image"])


def controller_uid(obj: Obj) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref["uid"])
    return None


async def pods_in(api: ApiClient, ns: str, active_only: bool = True) -> list[Obj]:
    items = (await api.list(PODS, ns))["items"]
    if active_only:
        items = [p for p in items if not p["metadata"].get("deletionTimestamp")]
    return items


async def pod_names_become(api: ApiClient, ns: str, want: set[str]) -> None:
    async def settled() -> set[str] | None:
        got = {p["metadata"]["name"] for p in await pods_in(api, ns)}
        return got if got == want else None

    await wait_for(f"exactly pods {sorted(want)}", settled)


async def pod_count_is(api: ApiClient, ns: str, n: int) -> bool:
    return len(await pods_in(api, ns)) == n


async def replicasets_in(api: ApiClient, ns: str) -> list[Obj]:
    return list((await api.list(REPLICASETS, ns))["items"])


async def mark_ready(api: ApiClient, pod: Obj, ready: bool = True, phase: str = "Running"
                     ) -> None:
    """What a kubelet reports once the pod's containers run (and pass readiness)."""
    now = now_rfc3339()
    flag = "True" if ready else "False"
    status = {
        "phase": phase,
        "startTime": now,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
            {"type": "Ready", "status": flag, "lastTransitionTime": now},
        ],
        "containerStatuses": [
            {"name": c["name"], "image": c["image"], "imageID": "", "ready": ready,
             "started": phase == "Running", "restartCount": 0,
             "state": {"running": {"startedAt": now}} if phase == "Running"
             else {"waiting": {"reason": "ContainerCreating"}}}
            for c in pod["spec"]["containers"]],
    }
    await api.patch(PODS, pod["metadata"]["name"], {"status": status},
                    pod["metadata"]["namespace"], subresource="status")


async def bind(api: ApiClient, pod: Obj, node: str) -> None:
    """What the scheduler does."""
    await api.create_subresource(PODS, pod["metadata"]["name"], "binding", {
        "apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node}},
        pod["metadata"]["namespace"])


class FakeKubelet:
    """Stands in for the kubelets of a cluster: makes new pods Running and Ready after
    `delay` seconds, for the images it is told to run (all when `images` is None).

    With `node`, it also plays the scheduler (binds each new pod there first) and, since
    deleting a bound pod is graceful, confirms each pod's termination `stop_delay` seconds
    after its deletion starts, as a kubelet does once the containers stopped.
    """

    def __init__(self, api: ApiClient, ns: str, delay: float = 0.2,
                 images: set[str] | None = None, node: str | None = None,
                 stop_delay: float = 0.5) -> None:
        self.api = api
        self.delay = delay
        self.images = images
        self.node = node
        self.stop_delay = stop_delay
        self.informer = Informer(api, PODS, namespace=ns)
        self.informer.add_handler(self._seen, lambda old, new: self._seen(new))
        self._handled: set[str] = set()
        self._stopping: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _seen(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        if pod["metadata"].get("deletionTimestamp"):
            if pod["spec"].get("nodeName") and uid not in self._stopping:
                self._stopping.add(uid)
                self._spawn(self._stop(pod))
            return
        if uid in self._handled or is_ready(pod):
            return
        if self.images is not None and image_of(pod) not in self.images:
            return
        self._handled.add(uid)
        self._spawn(self._run(pod))

    async def _run(self, pod: Obj) -> None:
        await asyncio.sleep(self.delay)
        with contextlib.suppress(errors.NotFound, errors.Conflict):
            if self.node and not pod["spec"].get("nodeName"):
                await bind(self.api, pod, self.node)
            await mark_ready(self.api, pod)

    async def _stop(self, pod: Obj) -> None:
        await asyncio.sleep(self.stop_delay)
        with contextlib.suppress(errors.NotFound, errors.Conflict):
            await self.api.delete(PODS, pod["metadata"]["name"], pod["metadata"]["namespace"],
                                  grace_period_seconds=0,
                                  preconditions={"uid": pod["metadata"]["uid"]})

    def allow(self, image: str) -> None:
        assert self.images is not None
        self.images.add(image)
        for pod in self.informer.store.list():
            self._seen(pod)

    async def __aenter__(self) -> Self:
        self.informer.start()
        await asyncio.wait_for(self.informer.wait_synced(), WAIT)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.informer.stop()


def template(app: str, image: str) -> Obj:
    return {"metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": "web", "image": image}]}}


def deployment(name: str, image: str, replicas: int, **spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": template(name, image), **spec}}


def replicaset(name: str, replicas: int, **spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": template(name, IMAGE_A), **spec}}


async def set_image(api: ApiClient, ns: str, name: str, image: str) -> None:
    await api.patch(DEPLOYMENTS, name, {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": image}]}}}}, ns, patch_type="strategic")


def condition(obj: Obj, type_: str) -> Obj | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond
    return None


async def rolled_out(api: ApiClient, ns: str, name: str) -> Obj | None:
    """The Deployment once its latest spec is fully rolled out (kubectl's criteria)."""
    d = await api.get(DEPLOYMENTS, name, ns)
    st = d.get("status") or {}
    want = d["spec"]["replicas"]
    progressing = condition(d, "Progressing") or {}
    if st.get("observedGeneration", 0) >= d["metadata"]["generation"] and \
            st.get("updatedReplicas", 0) == want and st.get("replicas", 0) == want and \
            st.get("availableReplicas", 0) == want and \
            progressing.get("reason") == "NewReplicaSetAvailable":
        return d
    return None


async def kubectl(apiserver: ApiServer, *args: str, timeout: float = 30.0) -> tuple[int, str]:
    # Asynchronously, so the in-process controllers keep running meanwhile.
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, "--kubeconfig", str(apiserver.kubeconfig), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode()


async def events_for(api: ApiClient, ns: str, name: str, reason: str) -> list[str]:
    items = (await api.list(EVENTS, ns))["items"]
    return [e["message"] for e in items
            if e["involvedObject"].get("name") == name and e.get("reason") == reason]


class Invariants:
    """Replays every watch event of pods and ReplicaSets in a namespace and checks, in each
    state observed, what a rolling update promises."""

    def __init__(self, api: ApiClient, ns: str, replicas: int, surge: int,
                 unavailable: int) -> None:
        self.max_total = replicas + surge
        self.min_ready = replicas - unavailable
        self.pods: dict[str, Obj] = {}
        self.rss: dict[str, Obj] = {}
        self.violations: list[str] = []
        self.peak_pods = 0
        self.low_ready = replicas
        self.peak_rs_total = 0
        self.images_seen_together = False  # among pods not being deleted
        self.images_overlap = False  # among all pods, terminating ones included
        self.armed = False  # the initial list replays pod by pod: judge only what follows
        self.progressing: list[str] = []  # Progressing reasons, in the order written
        self.pod_informer = Informer(api, PODS, namespace=ns)
        self.rs_informer = Informer(api, REPLICASETS, namespace=ns)
        self.d_informer = Informer(api, DEPLOYMENTS, namespace=ns)
        self.d_informer.add_handler(lambda o: self._deployment(o),
                                    lambda _, o: self._deployment(o))
        self.pod_informer.add_handler(lambda o: self._pod(o), lambda _, o: self._pod(o),
                                      lambda o: self._pod(o, gone=True))
        self.rs_informer.add_handler(lambda o: self._rs(o), lambda _, o: self._rs(o),
                                     lambda o: self._rs(o, gone=True))

    def _pod(self, pod: Obj, gone: bool = False) -> None:
        key = meta_key(pod)
        if gone:
            self.pods.pop(key, None)
        else:
            self.pods[key] = pod
        if not self.armed:
            return
        live = [p for p in self.pods.values() if not p["metadata"].get("deletionTimestamp")]
        ready = sum(1 for p in live if is_ready(p))
        self.peak_pods = max(self.peak_pods, len(live))
        self.low_ready = min(self.low_ready, ready)
        if len({image_of(p) for p in live}) > 1:
            self.images_seen_together = True
        if len({image_of(p) for p in self.pods.values()}) > 1:
            self.images_overlap = True
        if len(live) > self.max_total:
            self.violations.append(f"{len(live)} pods > {self.max_total}: "
                                   f"{sorted(p['metadata']['name'] for p in live)}")
        if ready < self.min_ready:
            self.violations.append(f"only {ready} ready pods < {self.min_ready}")

    def _deployment(self, d: Obj) -> None:
        reason = (condition(d, "Progressing") or {}).get("reason")
        if self.armed and reason and (not self.progressing or self.progressing[-1] != reason):
            self.progressing.append(reason)

    def _rs(self, rs: Obj, gone: bool = False) -> None:
        key = meta_key(rs)
        if gone:
            self.rss.pop(key, None)
        else:
            self.rss[key] = rs
        if not self.armed:
            return
        total = sum(int(r["spec"].get("replicas") or 0) for r in self.rss.values())
        self.peak_rs_total = max(self.peak_rs_total, total)
        if total > self.max_total:
            self.violations.append(f"replicasets want {total} > {self.max_total}")

    async def __aenter__(self) -> Self:
        informers = (self.pod_informer, self.rs_informer, self.d_informer)
        for informer in informers:
            informer.start()
        await asyncio.wait_for(asyncio.gather(*(i.wait_synced() for i in informers)), WAIT)
        for informer in informers:
            await informer.wait_handlers_idle()
        self.armed = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        for informer in (self.pod_informer, self.rs_informer, self.d_informer):
            await informer.wait_handlers_idle()
            await informer.stop()


# --- ReplicaSet ------------------------------------------------------------------------------


async def test_replicaset_creates_scales_and_picks_pods_to_delete(api: ApiClient,
                                                                   ns: str) -> None:
    async with controllers(api):
        rs = await api.create(REPLICASETS, replicaset("web", 4), ns)

        async def four_pods() -> list[Obj]:
            pods = await pods_in(api, ns)
            return pods if len(pods) == 4 else []

        pods = await wait_for("4 pods", four_pods)
        for pod in pods:
            md = pod["metadata"]
            assert md["generateName"] == "web-" and md["name"].startswith("web-")
            assert labels_of(pod) == {"app": "web"}
            assert md["ownerReferences"] == [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                "uid": rs["metadata"]["uid"], "controller": True,
                "blockOwnerDeletion": True}]
            assert image_of(pod) == IMAGE_A
        # No over-creation while the cache catches up.
        await asyncio.sleep(0.5)
        assert len(await pods_in(api, ns)) == 4

        # Give the four pods distinct states, as a scheduler and kubelets would.
        ready_pod, unready_pod, pending_pod, unscheduled_pod = pods
        for pod in (ready_pod, unready_pod, pending_pod):
            await bind(api, pod, "node-1")
        await mark_ready(api, ready_pod)
        await mark_ready(api, unready_pod, ready=False)

        async def status_is(**want: int) -> Obj | None:
            cur = await api.get(REPLICASETS, "web", ns)
            st = cur.get("status") or {}
            ok = all(st.get(k, 0) == v for k, v in want.items()) and \
                st.get("observedGeneration") == cur["metadata"]["generation"]
            return cur if ok else None

        await wait_for("status with 1 ready of 4",
                       lambda: status_is(replicas=4, readyReplicas=1, availableReplicas=1,
                                         fullyLabeledReplicas=4))

        async def scale_to(n: int) -> None:
            await api.patch(REPLICASETS, "web", {"spec": {"replicas": n}}, ns,
                            subresource="scale")

        expected = {p["metadata"]["name"] for p in pods}
        # Unscheduled goes first, then pending, then not ready; the ready one stays.
        for n, victim in ((3, unscheduled_pod), (2, pending_pod), (1, unready_pod)):
            await scale_to(n)
            expected.discard(victim["metadata"]["name"])
            await pod_names_become(api, ns, set(expected))

        # Bound pods are deleted gracefully: they linger, terminating, and do not count.
        terminating = await api.get(PODS, pending_pod["metadata"]["name"], ns)
        assert terminating["metadata"].get("deletionTimestamp")
        await wait_for("status of 1 ready replica",
                       lambda: status_is(replicas=1, readyReplicas=1, availableReplicas=1))

        # Scaling up a lot at once: every state the watch shows stays within spec, although
        # the controller's cache lags behind its own creations (expectations).
        async with Invariants(api, ns, replicas=40, surge=0, unavailable=40) as seen:
            await scale_to(40)
            await wait_for("40 pods", lambda: pod_count_is(api, ns, 40))
            await asyncio.sleep(0.5)
        assert not seen.violations, seen.violations[:3]
        assert seen.peak_pods == 40
        created = await events_for(api, ns, "web", "SuccessfulCreate")
        deleted = await events_for(api, ns, "web", "SuccessfulDelete")
        assert any(m.startswith("Created pod: web-") for m in created)
        assert f"Deleted pod: {unscheduled_pod['metadata']['name']}" in deleted


async def test_replicaset_adopts_orphans_and_releases_mismatches(api: ApiClient,
                                                                 ns: str) -> None:
    orphan = await api.create(PODS, {"metadata": {"name": "orphan", "labels": {"app": "web"}},
                                     "spec": template("web", IMAGE_A)["spec"]}, ns)
    foreign = await api.create(PODS, {
        "metadata": {"name": "foreign", "labels": {"app": "web"}, "ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "other",
            "uid": str(uuid.uuid4()), "controller": True}]},
        "spec": template("web", IMAGE_A)["spec"]}, ns)
    async with controllers(api):
        rs = await api.create(REPLICASETS, replicaset("web", 2), ns)
        uid = rs["metadata"]["uid"]

        async def owned() -> list[Obj]:
            pods = [p for p in await pods_in(api, ns) if controller_uid(p) == uid]
            return pods if len(pods) == 2 else []

        pods = await wait_for("2 owned pods", owned)
        names = {p["metadata"]["name"] for p in pods}
        assert "orphan" in names, "the matching orphan should have been adopted"
        assert len(await pods_in(api, ns)) == 3  # orphan + one new + the foreign one
        still_foreign = await api.get(PODS, "foreign", ns)
        assert controller_uid(still_foreign) == controller_uid(foreign)

        # Relabel an owned pod out of the selector: released, and replaced.
        await api.patch(PODS, "orphan", {"metadata": {"labels": {"app": "elsewhere"}}}, ns)

        async def released() -> Obj | None:
            pod = await api.get(PODS, "orphan", ns)
            return pod if not pod["metadata"].get("ownerReferences") else None

        await wait_for("orphan released", released)
        await wait_for("a replacement pod", owned)
        assert orphan["metadata"]["uid"] == (await api.get(PODS, "orphan", ns))["metadata"]["uid"]


async def test_replicaset_available_after_min_ready_seconds(api: ApiClient, ns: str) -> None:
    async with controllers(api), FakeKubelet(api, ns, delay=0.0):
        await api.create(REPLICASETS, replicaset("slow", 2, minReadySeconds=3), ns)

        async def ready_status() -> Obj | None:
            st = (await api.get(REPLICASETS, "slow", ns)).get("status") or {}
            return st if st.get("readyReplicas") == 2 else None

        st = await wait_for("2 ready replicas", ready_status)
        assert st.get("availableReplicas", 0) == 0, st
        assert st["replicas"] == 2 and st["fullyLabeledReplicas"] == 2

        async def available() -> Obj | None:
            s = (await api.get(REPLICASETS, "slow", ns)).get("status") or {}
            return s if s.get("availableReplicas") == 2 else None

        # Nothing changes on the pods any more: only the controller's own requeue after the
        # remaining minReadySeconds can bring this.
        await wait_for("2 available replicas", available, timeout=6)


async def test_replicaset_reports_create_failures(api: ApiClient, ns: str) -> None:
    # Template finalizers are not validated on the ReplicaSet but are on each pod (as
    # upstream), so every pod create fails.
    bad = replicaset("bad", 3)
    bad["spec"]["template"]["metadata"]["finalizers"] = ["Not Valid!"]
    broken = deployment("broken", IMAGE_A, 2)
    broken["spec"]["template"]["metadata"]["finalizers"] = ["Not Valid!"]
    async with controllers(api):
        await api.create(REPLICASETS, bad, ns)
        await api.create(DEPLOYMENTS, broken, ns)

        async def failure(res: Any, name: str) -> Obj | None:
            return condition(await api.get(res, name, ns), "ReplicaFailure")

        cond = await wait_for("ReplicaFailure on the ReplicaSet",
                              lambda: failure(REPLICASETS, "bad"))
        assert cond["status"] == "True" and cond["reason"] == "FailedCreate"
        assert "is invalid" in cond["message"]
        failed = await events_for(api, ns, "bad", "FailedCreate")
        assert failed and all(m.startswith("Error creating: ") for m in failed)
        cond = await wait_for("ReplicaFailure copied to the Deployment",
                              lambda: failure(DEPLOYMENTS, "broken"))
        assert cond["reason"] == "FailedCreate"

        await api.patch(REPLICASETS, "bad", {"spec": {"template": {"metadata": {
            "finalizers": None}}}}, ns)

        async def recovered() -> Obj | None:
            rs = await api.get(REPLICASETS, "bad", ns)
            ok = condition(rs, "ReplicaFailure") is None and rs["status"]["replicas"] == 3
            return rs if ok else None

        await wait_for("3 pods and no ReplicaFailure", recovered)
        assert len([p for p in await pods_in(api, ns)
                    if p["metadata"]["name"].startswith("bad-")]) == 3
        # No garbage collector runs here: remove the broken objects by hand, or the
        # controllers of later tests (which watch all namespaces) keep retrying them.
        await api.delete(DEPLOYMENTS, "broken", ns)
        for rs in await replicasets_in(api, ns):
            if rs["metadata"]["name"].startswith("broken-"):
                await api.delete(REPLICASETS, rs["metadata"]["name"], ns)


# --- Deployment ------------------------------------------------------------------------------


async def test_deployment_creates_hashed_replicaset_and_rolls_out(
        api: ApiClient, ns: str, apiserver: ApiServer) -> None:
    async with controllers(api), FakeKubelet(api, ns):
        d = await api.create(DEPLOYMENTS, deployment("web", IMAGE_A, 3), ns)
        done = await wait_for("rollout", lambda: rolled_out(api, ns, "web"))
        rss = await replicasets_in(api, ns)
        assert len(rss) == 1
        rs = rss[0]
        pod_hash = labels_of(rs)["pod-template-hash"]
        assert pod_hash == template_hash(d["spec"]["template"])
        assert rs["metadata"]["name"] == f"web-{pod_hash}"
        assert rs["spec"]["selector"]["matchLabels"] == {"app": "web",
                                                         "pod-template-hash": pod_hash}
        assert labels_of(rs["spec"]["template"]) == {"app": "web", "pod-template-hash": pod_hash}
        assert controller_uid(rs) == d["metadata"]["uid"]
        annotations = rs["metadata"]["annotations"]
        assert annotations[REVISION] == "1"
        assert annotations["deployment.kubernetes.io/desired-replicas"] == "3"
        assert annotations["deployment.kubernetes.io/max-replicas"] == "4"  # 3 + ceil(25%)
        assert done["metadata"]["annotations"][REVISION] == "1"
        pods = await pods_in(api, ns)
        assert len(pods) == 3
        assert all(labels_of(p)["pod-template-hash"] == pod_hash for p in pods)
        st = done["status"]
        assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"],
                st["availableReplicas"]) == (3, 3, 3, 3)
        assert st.get("unavailableReplicas", 0) == 0
        assert st["observedGeneration"] == done["metadata"]["generation"]
        available = condition(done, "Available")
        assert available and available["status"] == "True"
        assert available["reason"] == "MinimumReplicasAvailable"
        progressing = condition(done, "Progressing")
        assert progressing and progressing["status"] == "True"
        assert progressing["message"] == f'ReplicaSet "web-{pod_hash}" has successfully progressed.'
        code, out = await kubectl(apiserver, "-n", ns, "rollout", "status", "deployment/web",
                                  "--timeout=20s")
        assert code == 0, out
        assert 'deployment "web" successfully rolled out' in out
        scaled = await events_for(api, ns, "web", "ScalingReplicaSet")
        assert f"Scaled up replica set web-{pod_hash} from 0 to 3" in scaled


async def test_deployment_adopts_and_releases_replicasets(api: ApiClient, ns: str) -> None:
    # A ReplicaSet left by an earlier Deployment of the same template (say, deleted with
    # --cascade=orphan): the new Deployment adopts it and keeps using it.
    leftover = replicaset("web", 2)
    leftover["metadata"]["name"] = "web-leftover"
    for labels in (leftover["spec"]["selector"]["matchLabels"],
                   leftover["spec"]["template"]["metadata"]["labels"]):
        labels["pod-template-hash"] = "leftover"
    leftover["metadata"]["labels"] = {"app": "web", "pod-template-hash": "leftover"}
    async with controllers(api), FakeKubelet(api, ns, delay=0.05):
        rs = await api.create(REPLICASETS, leftover, ns)
        await wait_for("leftover pods", lambda: pod_count_is(api, ns, 2))
        d = await api.create(DEPLOYMENTS, deployment("web", IMAGE_A, 2), ns)
        done = await wait_for("rollout", lambda: rolled_out(api, ns, "web"))
        rss = await replicasets_in(api, ns)
        assert [r["metadata"]["uid"] for r in rss] == [rs["metadata"]["uid"]], \
            "the adopted ReplicaSet has the template: no new one is needed"
        assert controller_uid(rss[0]) == d["metadata"]["uid"]
        assert rss[0]["metadata"]["annotations"][REVISION] == "1"
        assert done["metadata"]["annotations"][REVISION] == "1"

        # Relabelled out of the Deployment's selector: released, and replaced by a new one.
        await api.patch(REPLICASETS, "web-leftover",
                        {"metadata": {"labels": {"app": "gone"}}}, ns)

        async def released() -> list[Obj]:
            rss = await replicasets_in(api, ns)
            mine = [r for r in rss if controller_uid(r) == d["metadata"]["uid"]]
            orphan = [r for r in rss if r["metadata"]["name"] == "web-leftover" and
                      not r["metadata"].get("ownerReferences")]
            return mine if orphan and len(mine) == 1 and mine[0]["metadata"]["name"] != \
                "web-leftover" else []

        (replacement,) = await wait_for("released and replaced", released)
        assert labels_of(replacement)["pod-template-hash"] == \
            template_hash(d["spec"]["template"])
        await wait_for("rollout on the replacement", lambda: rolled_out(api, ns, "web"))


async def test_rolling_update_honours_surge_and_unavailability(
        api: ApiClient, ns: str, apiserver: ApiServer) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}
    async with controllers(api), FakeKubelet(api, ns, delay=0.3):
        await api.create(DEPLOYMENTS, deployment("web", IMAGE_A, 4, strategy=strategy), ns)
        await wait_for("first rollout", lambda: rolled_out(api, ns, "web"))
        async with Invariants(api, ns, replicas=4, surge=1, unavailable=1) as seen:
            await set_image(api, ns, "web", IMAGE_B)
            code, out = await kubectl(apiserver, "-n", ns, "rollout", "status",
                                      "deployment/web", "--timeout=20s")
            assert code == 0, out
            done = await wait_for("second rollout", lambda: rolled_out(api, ns, "web"))
        assert not seen.violations, seen.violations[:5]
        assert seen.images_seen_together, "old and new pods should overlap in a rolling update"
        # (The first is the spec change itself, written by the user, not the controller.)
        assert seen.progressing == ["NewReplicaSetAvailable", "NewReplicaSetCreated",
                                    "ReplicaSetUpdated", "NewReplicaSetAvailable"]
        assert seen.peak_rs_total == 5, "the surge allowance should be used"
        assert seen.low_ready >= 3
        pods = await pods_in(api, ns)
        assert len(pods) == 4 and {image_of(p) for p in pods} == {IMAGE_B}
        assert done["metadata"]["annotations"][REVISION] == "2"
        rss = {image_of(rs): rs for rs in await replicasets_in(api, ns)}
        assert rss[IMAGE_A]["spec"]["replicas"] == 0
        assert rss[IMAGE_B]["spec"]["replicas"] == 4
        assert rss[IMAGE_B]["metadata"]["annotations"][REVISION] == "2"
        scaled = await events_for(api, ns, "web", "ScalingReplicaSet")
        old_name = rss[IMAGE_A]["metadata"]["name"]
        assert any(m.startswith(f"Scaled down replica set {old_name} from ") for m in scaled)


async def test_recreate_never_runs_old_and_new_together(api: ApiClient, ns: str) -> None:
    # Pods are bound, so deleted ones linger terminating until the "kubelet" confirms.
    async with controllers(api), FakeKubelet(api, ns, delay=0.1, node="node-1",
                                             stop_delay=0.7):
        await api.create(DEPLOYMENTS, deployment("web", IMAGE_A, 3,
                                                 strategy={"type": "Recreate"}), ns)
        await wait_for("first rollout", lambda: rolled_out(api, ns, "web"))
        async with Invariants(api, ns, replicas=3, surge=0, unavailable=3) as seen:
            await set_image(api, ns, "web", IMAGE_B)

            async def terminating_old() -> list[Obj]:
                return [p for p in await pods_in(api, ns, active_only=False)
                        if p["metadata"].get("deletionTimestamp")]

            await wait_for("old pods terminating", terminating_old)
            # While they terminate, the new ReplicaSet must not exist yet.
            assert {image_of(rs) for rs in await replicasets_in(api, ns)} == {IMAGE_A}
            await wait_for("recreated", lambda: rolled_out(api, ns, "web"))
        assert not seen.images_overlap, "Recreate must not start new pods before old ones end"
        assert not seen.violations, seen.violations[:5]
        assert seen.low_ready == 0  # it did go down to zero in between
        pods = await pods_in(api, ns, active_only=False)
        assert len(pods) == 3 and {image_of(p) for p in pods} == {IMAGE_B}


async def test_rollout_undo_reuses_the_old_replicaset(
        api: ApiClient, ns: str, apiserver: ApiServer) -> None:
    async with controllers(api), FakeKubelet(api, ns, delay=0.05):
        await api.create(DEPLOYMENTS, deployment("web", IMAGE_A, 2), ns)
        await wait_for("revision 1", lambda: rolled_out(api, ns, "web"))
        first = (await replicasets_in(api, ns))[0]
        await set_image(api, ns, "web", IMAGE_B)

        async def revision(n: str) -> Obj | None:
            d = await rolled_out(api, ns, "web")
            return d if d and d["metadata"]["annotations"].get(REVISION) == n else None

        await wait_for("revision 2", lambda: revision("2"))
        # kubectl 1.32 patches the Deployment's template back to the old ReplicaSet's.
        code, out = await kubectl(apiserver, "-n", ns, "rollout", "undo", "deployment/web")
        assert code == 0, out
        await wait_for("revision 3", lambda: revision("3"))
        rss = {rs["metadata"]["uid"]: rs for rs in await replicasets_in(api, ns)}
        assert len(rss) == 2, "the old ReplicaSet should be reused, not a new one made"
        back = rss[first["metadata"]["uid"]]
        assert back["metadata"]["name"] == first["metadata"]["name"]
        assert back["spec"]["replicas"] == 2
        assert back["metadata"]["annotations"][REVISION] == "3"
        assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
        assert {image_of(p) for p in await pods_in(api, ns)} == {IMAGE_A}
        code, out = await kubectl(apiserver, "-n", ns, "rollout", "history", "deployment/web")
        assert code == 0 and "3" in out and "2" in out, out


async def test_pause_and_resume(api: ApiClient, ns: str, apiserver: ApiServer) -> None:
    async with controllers(api), FakeKubelet(api, ns, delay=0.05):
        await api.create(DEPLOYMENTS, deployment("web", IMAGE_A, 2), ns)
        await wait_for("first rollout", lambda: rolled_out(api, ns, "web"))
        await api.patch(DEPLOYMENTS, "web", {"spec": {"paused": True}}, ns)

        async def paused() -> Obj | None:
            d = await api.get(DEPLOYMENTS, "web", ns)
            cond = condition(d, "Progressing") or {}
            return d if cond.get("reason") == "DeploymentPaused" and \
                cond.get("status") == "Unknown" else None

        await wait_for("Progressing=DeploymentPaused", paused)
        await set_image(api, ns, "web", IMAGE_B)
        await api.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 3}}, ns)

        async def observed() -> Obj | None:
            d = await api.get(DEPLOYMENTS, "web", ns)
            st = d.get("status") or {}
            ok = st.get("observedGeneration") == d["metadata"]["generation"] and \
                st.get("replicas") == 3 and st.get("availableReplicas") == 3
            return d if ok else None

        # Scaling still works while paused; the template change does not roll out.
        d = await wait_for("paused status with 3 replicas", observed)
        assert (condition(d, "Progressing") or {}).get("reason") == "DeploymentPaused"
        await asyncio.sleep(0.5)
        assert len(await replicasets_in(api, ns)) == 1
        assert {image_of(p) for p in await pods_in(api, ns)} == {IMAGE_A}

        await api.patch(DEPLOYMENTS, "web", {"spec": {"paused": False}}, ns)
        done = await wait_for("rollout after resume", lambda: rolled_out(api, ns, "web"))
        assert done["metadata"]["annotations"][REVISION] == "2"
        assert {image_of(p) for p in await pods_in(api, ns)} == {IMAGE_B}
        code, out = await kubectl(apiserver, "-n", ns, "rollout", "status", "deployment/web",
                                  "--timeout=20s")
        assert code == 0, out


async def test_revision_history_limit_deletes_oldest(api: ApiClient, ns: str) -> None:
    async with controllers(api), FakeKubelet(api, ns, delay=0.0):
        await api.create(DEPLOYMENTS, deployment("web", IMAGE_A, 1, revisionHistoryLimit=1),
                         ns)
        await wait_for("revision 1", lambda: rolled_out(api, ns, "web"))
        for revision, image in (("2", IMAGE_B), ("3", IMAGE_C)):
            await set_image(api, ns, "web", image)

            async def at(rev: str = revision) -> Obj | None:
                d = await rolled_out(api, ns, "web")
                return d if d and d["metadata"]["annotations"].get(REVISION) == rev else None

            await wait_for(f"revision {revision}", at)

        async def trimmed() -> list[Obj]:
            rss = await replicasets_in(api, ns)
            return rss if len(rss) == 2 else []

        rss = await wait_for("history trimmed to one old ReplicaSet", trimmed)
        revisions = sorted(rs["metadata"]["annotations"][REVISION] for rs in rss)
        assert revisions == ["2", "3"]
        assert {image_of(rs) for rs in rss} == {IMAGE_B, IMAGE_C}


async def test_scaling_mid_rollout_is_proportional(api: ApiClient, ns: str) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}
    # Pods of the new image never become ready: the rollout stalls half-way.
    async with controllers(api), FakeKubelet(api, ns, delay=0.0, images={IMAGE_A}):
        await api.create(DEPLOYMENTS, deployment("web", IMAGE_A, 10, strategy=strategy), ns)
        await wait_for("first rollout", lambda: rolled_out(api, ns, "web"))
        await set_image(api, ns, "web", IMAGE_B)

        async def sizes(want: dict[str, int]) -> dict[str, int] | None:
            got = {image_of(rs): rs["spec"]["replicas"] for rs in await replicasets_in(api, ns)}
            return got if got == want else None

        # 10 + 3 surge: new gets 3 then 5 as 2 old ones may go (10 - 2 unavailable).
        await wait_for("stalled at 8 old / 5 new", lambda: sizes({IMAGE_A: 8, IMAGE_B: 5}))
        await asyncio.sleep(0.3)
        assert await sizes({IMAGE_A: 8, IMAGE_B: 5})
        await api.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 20}}, ns)
        # 23 allowed now: 8 -> round(8*23/13)=14 and 5 -> round(5*23/13)=9.
        await wait_for("proportional 14 / 9", lambda: sizes({IMAGE_A: 14, IMAGE_B: 9}))
        for rs in await replicasets_in(api, ns):
            annotations = rs["metadata"]["annotations"]
            assert annotations["deployment.kubernetes.io/desired-replicas"] == "20"
            assert annotations["deployment.kubernetes.io/max-replicas"] == "23"


async def test_controller_restart_mid_rollout_finishes(api: ApiClient, ns: str) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    async with FakeKubelet(api, ns, delay=0.3):
        async with controllers(api):
            await api.create(DEPLOYMENTS, deployment("web", IMAGE_A, 5, strategy=strategy), ns)
            await wait_for("first rollout", lambda: rolled_out(api, ns, "web"))
        async with Invariants(api, ns, replicas=5, surge=1, unavailable=0) as seen:
            async with controllers(api):
                await set_image(api, ns, "web", IMAGE_B)

                async def midway() -> bool:
                    pods = await pods_in(api, ns)
                    new = [p for p in pods if image_of(p) == IMAGE_B and is_ready(p)]
                    old = [p for p in pods if image_of(p) == IMAGE_A]
                    return len(new) >= 2 and len(old) >= 2

                await wait_for("rollout half done", midway)
            # The controllers are gone; the cluster keeps running without them a moment.
            await asyncio.sleep(0.5)
            async with controllers(api):
                done = await wait_for("rollout after restart", lambda: rolled_out(api, ns, "web"))
        assert not seen.violations, seen.violations[:5]
        assert done["metadata"]["annotations"][REVISION] == "2"
        assert len(await replicasets_in(api, ns)) == 2
        pods = await pods_in(api, ns)
        assert len(pods) == 5 and {image_of(p) for p in pods} == {IMAGE_B}


async def test_progress_deadline_exceeded(api: ApiClient, ns: str,
                                          apiserver: ApiServer) -> None:
    # No kubelet: nothing ever becomes ready.
    async with controllers(api):
        await api.create(DEPLOYMENTS, deployment("stuck", IMAGE_A, 1,
                                                 progressDeadlineSeconds=2), ns)

        async def timed_out() -> Obj | None:
            d = await api.get(DEPLOYMENTS, "stuck", ns)
            cond = condition(d, "Progressing") or {}
            return d if cond.get("reason") == "ProgressDeadlineExceeded" else None

        d = await wait_for("ProgressDeadlineExceeded", timed_out, timeout=8)
        cond = condition(d, "Progressing")
        assert cond and cond["status"] == "False"
        assert cond["message"].endswith("has timed out progressing.")
        available = condition(d, "Available") or {}
        assert available.get("status") == "False"
        assert available.get("reason") == "MinimumReplicasUnavailable"
        code, out = await kubectl(apiserver, "-n", ns, "rollout", "status", "deployment/stuck",
                                  "--timeout=10s")
        assert code != 0
        assert "exceeded its progress deadline" in out, out
