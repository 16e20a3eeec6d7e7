"""Job controller (and the TTL-after-finished controller it starts).

Shaped like upstream's pkg/controller/job (1.32, with JobPodReplacementPolicy, JobManagedBy
and JobSuccessPolicy on, as they are by default there):

- Pods are created from the template with a controllerRef and the finalizer
  `batch.kubernetes.io/job-tracking`. A finished pod is counted in two steps that survive
  crashes and pod deletion: its uid goes to `status.uncountedTerminatedPods` first, then its
  finalizer is removed, then the uid moves into `status.succeeded`/`failed`.
- `parallelism` pods at most run at once, never more than the completions still missing.
  Pods that failed (or were deleted before succeeding, unless podReplacementPolicy=Failed)
  count as failures; replacements are held back by an exponential back-off
  (POD_FAILURE_BACKOFF doubling per failure since the last success, capped at
  MAX_POD_FAILURE_BACKOFF: 10 s and 10 min in upstream's code).
- More than `backoffLimit` failures, or running longer than `activeDeadlineSeconds`, makes
  the Job fail: first the interim condition `FailureTarget` (reason BackoffLimitExceeded or
  DeadlineExceeded) while active pods are deleted, then `Failed` once no pod is terminating
  and every pod is counted. Success likewise goes `SuccessCriteriaMet` (CompletionsReached)
  then `Complete` with `completionTime`.
- `suspend: true` deletes the active pods (not counted as failures) and sets the condition
  Suspended; resuming sets it False and restarts the deadline clock (`startTime`).
- Indexed completion mode: each pod gets an index (annotation, label, JOB_COMPLETION_INDEX,
  hostname) and `status.completedIndexes` lists the succeeded ones.
- Pod failure policies, success policies and backoffLimitPerIndex are not implemented.

The TTLAfterFinishedController deletes a finished Job `ttlSecondsAfterFinished` after its
Complete/Failed condition. Upstream deletes with Foreground propagation; kubelite uses
Background, so the Job goes at once and the garbage collector removes its pods after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from api import errors
from api.meta import deep_copy, now_rfc3339, parse_time, resource_version
from api.resources import CATALOGUE, Resource
from api.selectors import LabelSelector, selector_from_label_selector_object
from client.informer import NAMESPACE_INDEX, Informer, meta_key, namespace_index, split_meta_key
from client.rest import ApiConnectionError
from client.workqueue import WorkQueue, run_workers
from controller_manager.base import Controller, ControllerContext, Obj

log = logging.getLogger(__name__)


def _resource(plural: str) -> Resource:
    res = CATALOGUE.by_plural(plural)
    assert res is not None, plural
    return res


JOBS = _resource("jobs")
PODS = _resource("pods")

JOB_TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX_KEY = "batch.kubernetes.io/job-completion-index"  # annotation and label
JOB_CONTROLLER_NAME = "kubernetes.io/job-controller"  # the only spec.managedBy we act on

# Module constants so tests (and operators) can shrink them; read at use time.
POD_FAILURE_BACKOFF = 10.0
MAX_POD_FAILURE_BACKOFF = 600.0
SYNC_BATCH_PERIOD = 1.0  # pod events are batched: one sync per Job per period
MAX_UNCOUNTED_PODS = 500
MAX_POD_CREATE_DELETE_PER_SYNC = 500
SLOW_START_INITIAL_BATCH = 1
EXPECTATIONS_TIMEOUT = 300.0

COMPLETE, FAILED, SUSPENDED = "Complete", "Failed", "Suspended"
FAILURE_TARGET, SUCCESS_CRITERIA_MET = "FailureTarget", "SuccessCriteriaMet"


# --- small helpers over plain dicts ---------------------------------------------------------

def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _dict(obj.get("metadata"))


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _dict(obj.get("spec"))


def _uid(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("uid") or "")


def _phase(pod: Mapping[str, Any]) -> str:
    return str(_dict(pod.get("status")).get("phase") or "")


def _timestamp(value: Any) -> float | None:
    parsed = parse_time(value) if isinstance(value, str) else None
    return parsed.timestamp() if parsed is not None else None


def _controller_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for ref in _list(_meta(obj).get("ownerReferences")):
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            return ref
    return None


def _is_pod_ready(pod: Mapping[str, Any]) -> bool:
    return any(isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True"
               for c in _list(_dict(pod.get("status")).get("conditions")))


def _has_finalizer(pod: Mapping[str, Any]) -> bool:
    return JOB_TRACKING_FINALIZER in _list(_meta(pod).get("finalizers"))


def _is_active(pod: Mapping[str, Any]) -> bool:
    """controller.FilterActivePods: not finished and not being deleted."""
    return _phase(pod) not in ("Succeeded", "Failed") and not _meta(pod).get("deletionTimestamp")


def _is_terminating(pod: Mapping[str, Any]) -> bool:
    return bool(_meta(pod).get("deletionTimestamp")) and \
        _phase(pod) not in ("Succeeded", "Failed")


def _condition(job: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for cond in _list(_dict(job.get("status")).get("conditions")):
        if isinstance(cond, Mapping) and cond.get("type") == type_:
            return cond
    return None


def _condition_true(job: Mapping[str, Any], type_: str) -> bool:
    cond = _condition(job, type_)
    return cond is not None and cond.get("status") == "True"


def is_job_finished(job: Mapping[str, Any]) -> bool:
    return _condition_true(job, COMPLETE) or _condition_true(job, FAILED)


def _suspended(job: Mapping[str, Any]) -> bool:
    return _spec(job).get("suspend") is True


def _indexed(job: Mapping[str, Any]) -> bool:
    return _spec(job).get("completionMode") == "Indexed"


def _only_replace_failed(job: Mapping[str, Any]) -> bool:
    spec = _spec(job)
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def _is_pod_failed(pod: Mapping[str, Any], job: Mapping[str, Any]) -> bool:
    if _phase(pod) == "Failed":
        return True
    if _only_replace_failed(job):
        return False
    # A pod deleted before it succeeded counts as a failure (it may never reach Failed).
    return bool(_meta(pod).get("deletionTimestamp")) and _phase(pod) != "Succeeded"


def _new_condition(type_: str, status: str, reason: str, message: str) -> Obj:
    now = now_rfc3339()
    return {"type": type_, "status": status, "lastProbeTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message}


def _ensure_condition(status: Obj, type_: str, value: str, reason: str, message: str) -> bool:
    """ensureJobConditionStatus: add or update; never adds a condition as False."""
    conditions = status.setdefault("conditions", [])
    for i, cond in enumerate(conditions):
        if isinstance(cond, Mapping) and cond.get("type") == type_:
            if (cond.get("status"), cond.get("reason"), cond.get("message")) == \
                    (value, reason, message):
                return False
            conditions[i] = _new_condition(type_, value, reason, message)
            return True
    if value == "False":
        if not conditions:
            status.pop("conditions")
        return False
    conditions.append(_new_condition(type_, value, reason, message))
    return True


def _completion_index(pod: Mapping[str, Any]) -> int | None:
    value = _dict(_meta(pod).get("annotations")).get(COMPLETION_INDEX_KEY)
    try:
        index = int(value) if isinstance(value, str) else -1
    except ValueError:
        return None
    return index if index >= 0 else None


def format_indexes(indexes: Iterable[int]) -> str:
    """`1,3-5,7`: the compressed form of status.completedIndexes."""
    out: list[str] = []
    ordered = sorted(set(indexes))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def parse_indexes(text: str, completions: int) -> set[int]:
    out: set[int] = set()
    for part in (text or "").split(","):
        first, _, last = part.partition("-")
        try:
            lo = int(first)
            hi = int(last) if last else lo
        except ValueError:
            continue
        out.update(range(max(lo, 0), min(hi, completions - 1) + 1))
    return out


def _finished_time(pod: Mapping[str, Any]) -> float:
    """When a pod finished: its Ready=False transition, else its containers' latest
    finishedAt, else its deletion or creation time (upstream getFinishedTime)."""
    status = _dict(pod.get("status"))
    for cond in _list(status.get("conditions")):
        if isinstance(cond, Mapping) and cond.get("type") == "Ready" and \
                cond.get("status") == "False" and \
                (t := _timestamp(cond.get("lastTransitionTime"))) is not None:
            return t
    finished = [_timestamp(_dict(_dict(cs.get("state")).get("terminated")).get("finishedAt"))
                for key in ("initContainerStatuses", "containerStatuses")
                for cs in _list(status.get(key)) if isinstance(cs, Mapping)]
    if times := [t for t in finished if t is not None]:
        return max(times)
    for key in ("deletionTimestamp", "creationTimestamp"):
        if (t := _timestamp(_meta(pod).get(key))) is not None:
            return t
    return time.time()


def _active_pods_order(pod: Mapping[str, Any]) -> tuple[Any, ...]:
    """controller.ActivePods: the pods to remove first sort first (unscheduled, pending,
    not ready, ready for less time, more restarts, newer)."""
    status = _dict(pod.get("status"))
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(_phase(pod), 3)
    ready = _is_pod_ready(pod)
    ready_since = 0.0
    for cond in _list(status.get("conditions")):
        if isinstance(cond, Mapping) and cond.get("type") == "Ready":
            ready_since = _timestamp(cond.get("lastTransitionTime")) or 0.0
    restarts = max([int(_dict(cs).get("restartCount") or 0)
                    for cs in _list(status.get("containerStatuses"))] or [0])
    created = _timestamp(_meta(pod).get("creationTimestamp")) or 0.0
    return (bool(_spec(pod).get("nodeName")), phase_rank, ready,
            -ready_since if ready else 0.0, -restarts, -created)


def _ensure_namespace_index(informer: Informer) -> None:
    try:  # shared informers: another controller may have registered the library index
        informer.add_index(NAMESPACE_INDEX, namespace_index)
    except ValueError:
        pass


class _Expectations:
    """client-go's ControllerExpectations: creates/deletes still to be seen in the cache."""

    def __init__(self) -> None:
        self._entries: dict[str, list[float]] = {}  # key -> [adds, dels, since]

    def satisfied(self, key: str) -> bool:
        entry = self._entries.get(key)
        if entry is None or (entry[0] <= 0 and entry[1] <= 0):
            return True
        return time.monotonic() - entry[2] > EXPECTATIONS_TIMEOUT

    def expect(self, key: str, adds: int = 0, dels: int = 0) -> None:
        self._entries[key] = [adds, dels, time.monotonic()]

    def creation_observed(self, key: str) -> None:
        if (entry := self._entries.get(key)) is not None:
            entry[0] -= 1

    def deletion_observed(self, key: str) -> None:
        if (entry := self._entries.get(key)) is not None:
            entry[1] -= 1

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)


@dataclass
class _BackoffRecord:
    """Failures since the last success and when the latest happened (upstream backoffRecord)."""

    failures_after_last_success: int = 0
    last_failure_time: float | None = None

    def remaining(self, now: float) -> float:
        if self.failures_after_last_success == 0 or self.last_failure_time is None:
            return 0.0
        delay = POD_FAILURE_BACKOFF * 2 ** min(self.failures_after_last_success - 1, 32)
        delay = min(delay, MAX_POD_FAILURE_BACKOFF)
        return max(0.0, delay - (now - self.last_failure_time))


@dataclass
class _SyncContext:
    job: Obj
    pods: list[Obj]
    active_pods: list[Obj]
    uncounted_succeeded: set[str]  # the uncounted uids as read at the start of the sync
    uncounted_failed: set[str]
    expected_rm_finalizers: set[str]
    ready: int = 0
    terminating: int = 0
    succeeded: int = 0
    failed: int = 0
    finished_condition: Obj | None = None
    new_backoff: _BackoffRecord = field(default_factory=_BackoffRecord)
    prev_succeeded_indexes: set[int] = field(default_factory=set)
    succeeded_indexes: set[int] = field(default_factory=set)


class _PodControlError(Exception):
    """Some pod creates/deletes failed; the sync is retried with back-off."""


class JobController(Controller):
    name = "job"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.jobs = self.informer(JOBS)
        self.pods = self.informer(PODS)
        _ensure_namespace_index(self.pods)
        self.expectations = _Expectations()
        # Pod uids whose finalizer removal we sent but have not yet seen in the cache: they
        # are counted already and must not be counted again from a stale pod.
        self.finalizer_expectations: dict[str, set[str]] = {}
        self.backoff_records: dict[str, _BackoffRecord] = {}
        # resourceVersion of our last status write per Job: an older cached Job is stale.
        self._written: dict[str, int] = {}
        self.orphan_queue: WorkQueue[str] = WorkQueue(name="job-orphan-pod")
        self._orphan_task: asyncio.Task[None] | None = None
        self.ttl_after_finished = TTLAfterFinishedController(ctx)
        self.jobs.add_handler(self._job_added, self._job_updated, self._job_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    def start(self) -> None:
        super().start()
        self._orphan_task = asyncio.create_task(
            run_workers(self.orphan_queue, self._sync_orphan_pod, 1, "job-orphan-pod"),
            name="controller:job-orphan-pod")
        self.ttl_after_finished.start()

    async def stop(self) -> None:
        await self.ttl_after_finished.stop()
        self.orphan_queue.shut_down()
        if self._orphan_task is not None:
            self._orphan_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._orphan_task
        await super().stop()

    # --- event handlers -------------------------------------------------------------------

    def _resolve(self, namespace: str, ref: Mapping[str, Any]) -> Obj | None:
        if ref.get("kind") != "Job":
            return None
        job = self.jobs.store.get(f"{namespace}/{ref.get('name')}")
        return job if job is not None and _uid(job) == ref.get("uid") else None

    def _jobs_for_orphan(self, pod: Obj) -> list[Obj]:
        namespace = _meta(pod).get("namespace")
        out = []
        labels = dict(_dict(_meta(pod).get("labels")))
        for job in self.jobs.store.list():
            if _meta(job).get("namespace") != namespace:
                continue
            try:
                selector = selector_from_label_selector_object(_spec(job).get("selector"))
            except ValueError:
                continue
            if not selector.is_empty() and selector.matches(labels):
                out.append(job)
        return out

    def _enqueue_batched(self, job: Obj) -> None:
        self.queue.add_after(meta_key(job), SYNC_BATCH_PERIOD)

    def _job_added(self, job: Obj) -> None:
        self.enqueue(job)

    def _job_updated(self, old: Obj, new: Obj) -> None:
        if _meta(old).get("generation") == _meta(new).get("generation"):
            self._enqueue_batched(new)  # status-only change, usually our own write
        else:
            self.enqueue(new)  # spec changed (suspend, parallelism, ...): act at once
        if is_job_finished(new):
            self._cleanup_pod_finalizers(new)  # a backstop: pods left with our finalizer
        start = _timestamp(_dict(new.get("status")).get("startTime"))
        deadline = _spec(new).get("activeDeadlineSeconds")
        if start is not None and isinstance(deadline, int) and \
                deadline != _spec(old).get("activeDeadlineSeconds"):
            self.queue.add_after(meta_key(new), max(0.0, deadline - (time.time() - start)))

    def _job_deleted(self, job: Obj) -> None:
        self.enqueue(job)
        self._cleanup_pod_finalizers(job)

    def _cleanup_pod_finalizers(self, job: Obj) -> None:
        uid = _uid(job)
        for pod in self.pods.store.by_index(NAMESPACE_INDEX, str(_meta(job).get("namespace"))):
            ref = _controller_of(pod)
            if ref is not None and ref.get("uid") == uid and _has_finalizer(pod):
                self.orphan_queue.add(meta_key(pod))

    def _pod_added(self, pod: Obj) -> None:
        if _meta(pod).get("deletionTimestamp"):
            self._pod_deleted_or_deleting(pod, final=False)
            return
        ref = _controller_of(pod)
        if ref is not None:
            job = self._resolve(str(_meta(pod).get("namespace")), ref)
            if job is not None:
                self.expectations.creation_observed(meta_key(job))
                self._enqueue_batched(job)
            return
        if _has_finalizer(pod):
            self.orphan_queue.add(meta_key(pod))
        for job in self._jobs_for_orphan(pod):
            self._enqueue_batched(job)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if _meta(old).get("resourceVersion") == _meta(new).get("resourceVersion"):
            return
        if _meta(new).get("deletionTimestamp"):
            self._pod_deleted_or_deleting(new, final=False)
            return
        namespace = str(_meta(new).get("namespace"))
        finalizer_removed = not _has_finalizer(new)
        old_ref, new_ref = _controller_of(old), _controller_of(new)
        if old_ref != new_ref and old_ref is not None and \
                (old_job := self._resolve(namespace, old_ref)) is not None:
            if finalizer_removed:
                self._finalizer_removal_observed(old_job, new)
            self._enqueue_batched(old_job)
        if new_ref is not None:
            job = self._resolve(namespace, new_ref)
            if job is None:
                return
            if finalizer_removed:
                self._finalizer_removal_observed(job, new)
            self._enqueue_batched(job)
            return
        if _has_finalizer(new):
            self.orphan_queue.add(meta_key(new))
        if _dict(_meta(old).get("labels")) != _dict(_meta(new).get("labels")) or \
                old_ref != new_ref:
            for job in self._jobs_for_orphan(new):
                self._enqueue_batched(job)

    def _pod_deleted(self, pod: Obj) -> None:
        self._pod_deleted_or_deleting(pod, final=True)

    def _pod_deleted_or_deleting(self, pod: Obj, final: bool) -> None:
        ref = _controller_of(pod)
        has_finalizer = _has_finalizer(pod)
        if ref is None:
            if has_finalizer:
                self.orphan_queue.add(meta_key(pod))
            return
        job = self._resolve(str(_meta(pod).get("namespace")), ref)
        if job is None or is_job_finished(job):
            if has_finalizer:
                self.orphan_queue.add(meta_key(pod))  # syncJob will not remove it
            return
        self.expectations.deletion_observed(meta_key(job))
        if final or not has_finalizer:
            self._finalizer_removal_observed(job, pod)
        self._enqueue_batched(job)

    def _finalizer_removal_observed(self, job: Obj, pod: Obj) -> None:
        uids = self.finalizer_expectations.get(meta_key(job))
        if uids is not None:
            uids.discard(_uid(pod))

    # --- orphan pods ----------------------------------------------------------------------

    async def _sync_orphan_pod(self, key: str) -> None:
        """Remove our finalizer from a pod no unfinished Job of ours will count."""
        pod = self.pods.store.get(key)
        if pod is None or not _has_finalizer(pod):
            return
        ref = _controller_of(pod)
        if ref is not None:
            if ref.get("kind") != "Job" or ref.get("apiVersion") != "batch/v1":
                return  # not ours to touch
            job = self._resolve(str(_meta(pod).get("namespace")), ref)
            if job is not None:
                managed_by = _spec(job).get("managedBy")
                if managed_by and managed_by != JOB_CONTROLLER_NAME:
                    return
                if not is_job_finished(job):
                    return  # adopted or still tracked: syncJob removes it after counting
        await self._remove_finalizer(pod)

    # --- sync -----------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        cached = self.jobs.store.get(key)
        if cached is None:
            self.expectations.forget(key)
            self.finalizer_expectations.pop(key, None)
            self.backoff_records.pop(key, None)
            self._written.pop(key, None)
            return
        if resource_version(cached) < self._written.get(key, 0):
            return  # the cache lags our own status write; its event brings us back
        managed_by = _spec(cached).get("managedBy")
        if managed_by and managed_by != JOB_CONTROLLER_NAME:
            return
        if is_job_finished(cached):
            self.backoff_records.pop(key, None)
            return
        mode = _spec(cached).get("completionMode") or "NonIndexed"
        if mode not in ("NonIndexed", "Indexed"):
            self.recorder.event(cached, "Warning", "UnknownCompletionMode",
                                "Skipped Job sync because completion mode is unknown")
            return
        job = deep_copy(cached)
        spec = _spec(job)
        status: Obj = job.setdefault("status", {})
        uncounted = _dict(status.get("uncountedTerminatedPods"))
        status["uncountedTerminatedPods"] = {
            "succeeded": [str(u) for u in _list(uncounted.get("succeeded"))],
            "failed": [str(u) for u in _list(uncounted.get("failed"))]}
        # Read expectations before the pods, so a pod arriving in between is not missed.
        satisfied = self.expectations.satisfied(key)
        pods = await self._claim_pods(job)
        active_pods = [p for p in pods if _is_active(p)]
        ctx = _SyncContext(
            job=job, pods=pods, active_pods=active_pods,
            uncounted_succeeded=set(status["uncountedTerminatedPods"]["succeeded"]),
            uncounted_failed=set(status["uncountedTerminatedPods"]["failed"]),
            expected_rm_finalizers=set(self.finalizer_expectations.get(key, ())),
            ready=sum(1 for p in active_pods if _is_pod_ready(p)),
            terminating=sum(1 for p in pods if _is_terminating(p)))
        active = len(active_pods)
        new_succeeded, new_failed = self._new_finished_pods(ctx)
        ctx.succeeded = int(status.get("succeeded") or 0) + len(new_succeeded) + \
            len(ctx.uncounted_succeeded)
        ctx.failed = int(status.get("failed") or 0) + len(new_failed) + \
            len(ctx.uncounted_failed)
        if not status.get("startTime") and not _suspended(job):
            status["startTime"] = now_rfc3339()
        ctx.new_backoff = self._new_backoff_record(key, new_succeeded, new_failed)

        success = _condition(job, SUCCESS_CRITERIA_MET)
        if success is not None and success.get("status") == "True":
            ctx.finished_condition = dict(success)
        else:
            target = _condition(job, FAILURE_TARGET)
            if target is not None and target.get("status") == "True":
                ctx.finished_condition = _new_condition(FAILED, "True", str(target.get("reason")),
                                                        str(target.get("message")))
        deadline_left = _active_deadline_left(job)
        if ctx.finished_condition is None:
            if ctx.failed > int(spec.get("backoffLimit", 6)) or \
                    _past_backoff_limit_on_failure(job, pods):
                ctx.finished_condition = _new_condition(
                    FAILURE_TARGET, "True", "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit")
            elif deadline_left is not None and deadline_left <= 0:
                ctx.finished_condition = _new_condition(
                    FAILURE_TARGET, "True", "DeadlineExceeded",
                    "Job was active longer than specified deadline")
            elif deadline_left is not None:
                self.queue.add_after(key, deadline_left)

        if _indexed(job):
            completions = int(spec.get("completions") or 0)
            ctx.prev_succeeded_indexes = parse_indexes(str(status.get("completedIndexes") or ""),
                                                       completions)
            ctx.succeeded_indexes = ctx.prev_succeeded_indexes | {
                ix for p in pods if _phase(p) == "Succeeded" and _has_finalizer(p)
                and (ix := _completion_index(p)) is not None and ix < completions}
            ctx.succeeded = len(ctx.succeeded_indexes)

        pod_error: Exception | None = None
        suspend_changed = False
        if ctx.finished_condition is not None:
            deleted_ready, deleted, pod_error = await self._delete_active_pods(job,
                                                                               ctx.active_pods)
            if deleted != active or not satisfied:
                # Pods may be left (or not yet cached): not finished before they are gone.
                ctx.finished_condition = None
            active -= deleted
            ctx.terminating += deleted
            ctx.ready -= deleted_ready
        else:
            manage_called = False
            if satisfied and not _meta(job).get("deletionTimestamp"):
                active, pod_error = await self._manage(key, ctx)
                manage_called = True
            wanted = spec.get("completions")
            if wanted is None:
                # Without completions, one success finishes the Job once the rest is done.
                complete = ctx.succeeded > 0 and active == 0
            else:
                complete = ctx.succeeded >= int(wanted) and active == 0
            if complete:
                ctx.finished_condition = _new_condition(
                    SUCCESS_CRITERIA_MET, "True", "CompletionsReached",
                    "Reached expected number of succeeded pods")
            elif manage_called:
                if _suspended(job):
                    if _ensure_condition(status, SUSPENDED, "True", "JobSuspended",
                                         "Job suspended"):
                        suspend_changed = True
                        self.recorder.event(job, "Normal", "Suspended", "Job suspended")
                elif _ensure_condition(status, SUSPENDED, "False", "JobResumed", "Job resumed"):
                    suspend_changed = True
                    self.recorder.event(job, "Normal", "Resumed", "Job resumed")
                    # activeDeadlineSeconds counts continuous activity: restart its clock.
                    status["startTime"] = now_rfc3339()

        needs_flush = suspend_changed or active != int(status.get("active") or 0) or \
            ctx.ready != status.get("ready") or ctx.terminating != status.get("terminating")
        status["active"] = active
        status["ready"] = ctx.ready
        status["terminating"] = ctx.terminating
        await self._track_status_and_remove_finalizers(key, ctx, needs_flush)
        if pod_error is not None:
            raise pod_error

    def _new_finished_pods(self, ctx: _SyncContext) -> tuple[list[Obj], list[Obj]]:
        """Finished pods still carrying our finalizer and not yet in the uncounted lists."""
        completions = int(_spec(ctx.job).get("completions") or 0)

        def countable(pod: Obj, uncounted: set[str]) -> bool:
            uid = _uid(pod)
            if not _has_finalizer(pod) or uid in uncounted or uid in ctx.expected_rm_finalizers:
                return False
            if _indexed(ctx.job):
                ix = _completion_index(pod)
                return ix is not None and ix < completions
            return True

        succeeded = [p for p in ctx.pods
                     if countable(p, ctx.uncounted_succeeded) and _phase(p) == "Succeeded"]
        failed = [p for p in ctx.pods
                  if countable(p, ctx.uncounted_failed) and _is_pod_failed(p, ctx.job)]
        return succeeded, failed

    def _new_backoff_record(self, key: str, succeeded: list[Obj],
                            failed: list[Obj]) -> _BackoffRecord:
        old = self.backoff_records.get(key, _BackoffRecord())
        record = _BackoffRecord(old.failures_after_last_success, old.last_failure_time)
        failed_times = sorted(_finished_time(p) for p in failed)
        if not succeeded:
            if failed_times:
                record.failures_after_last_success += len(failed_times)
                record.last_failure_time = failed_times[-1]
            return record
        # A success resets the count; only failures after the latest success are kept.
        last_success = max(_finished_time(p) for p in succeeded)
        later = [t for t in failed_times if t > last_success]
        return _BackoffRecord(len(later), later[-1] if later else None)

    async def _manage(self, key: str, ctx: _SyncContext) -> tuple[int, Exception | None]:
        """Create or delete pods towards the wanted number of active ones."""
        job = ctx.job
        spec = _spec(job)
        active = len(ctx.active_pods)
        if _suspended(job):
            to_delete = _active_pods_for_removal(job, ctx.active_pods, active)
            self.expectations.expect(key, dels=len(to_delete))
            removed_ready, removed, err = await self._delete_job_pods(job, key, to_delete)
            ctx.terminating += removed
            ctx.ready -= removed_ready
            return active - removed, err
        parallelism = int(spec.get("parallelism", 1))
        completions = spec.get("completions")
        if completions is None:
            # Once one pod succeeded the Job only waits for the running ones to finish.
            want = active if ctx.succeeded > 0 else parallelism
        else:
            want = max(0, min(int(completions) - ctx.succeeded, parallelism))
        to_delete = _active_pods_for_removal(job, ctx.active_pods, max(0, active - want))
        to_delete = to_delete[:MAX_POD_CREATE_DELETE_PER_SYNC]
        if to_delete:
            # Deleting takes precedence: never create and delete in the same sync.
            self.expectations.expect(key, dels=len(to_delete))
            removed_ready, removed, err = await self._delete_job_pods(job, key, to_delete)
            ctx.terminating += removed
            ctx.ready -= removed_ready
            return active - removed, err
        terminating = ctx.terminating if _only_replace_failed(job) else 0
        diff = want - terminating - active
        if diff <= 0:
            return active, None
        remaining = ctx.new_backoff.remaining(time.time())
        if remaining > 0:
            self.queue.add_after(key, max(remaining, SYNC_BATCH_PERIOD))
            return active, None
        diff = min(diff, MAX_POD_CREATE_DELETE_PER_SYNC)
        indexes: list[int | None] = [None] * diff
        if _indexed(job):
            indexes = list(_first_pending_indexes(ctx, diff, int(completions or 0)))
            diff = len(indexes)
        self.expectations.expect(key, adds=diff)
        failed = 0
        pos, batch = 0, min(diff, SLOW_START_INITIAL_BATCH)
        while pos < diff:
            chunk = indexes[pos:pos + batch]
            results = await asyncio.gather(*(self._create_pod(job, key, ix) for ix in chunk))
            pos += len(chunk)
            failed += results.count(False)
            if not all(results):
                for _ in range(diff - pos):  # skipped: never expect to see them
                    self.expectations.creation_observed(key)
                failed += diff - pos
                break
            batch = min(2 * batch, diff - pos)
        active += diff - failed
        err = _PodControlError(f"job {key}: {failed} pod creations failed") if failed else None
        return active, err

    async def _create_pod(self, job: Obj, key: str, index: int | None) -> bool:
        pod = _pod_from_template(job, index)
        try:
            created = await self.api.create(PODS, pod, str(_meta(job).get("namespace")))
        except (errors.StatusError, ApiConnectionError) as e:
            self.expectations.creation_observed(key)
            self.recorder.event(job, "Warning", "FailedCreate", f"Error creating: {e}")
            self.log.warning("create failed key=%s error=%s", key, e)
            return False
        name = _meta(created).get("name")
        self.log.info("created pod key=%s pod=%s", key, name)
        self.recorder.event(job, "Normal", "SuccessfulCreate", f"Created pod: {name}")
        return True

    async def _delete_job_pods(self, job: Obj, key: str,
                               pods: list[Obj]) -> tuple[int, int, Exception | None]:
        """Delete pods the Job no longer wants (suspend, excess). Their finalizer goes first,
        so they are not counted as failures. Returns (ready deleted, deleted, error)."""
        async def one(pod: Obj) -> bool:
            try:
                if _has_finalizer(pod):
                    await self._remove_finalizer(pod)
                await self._delete_pod(job, pod)
            except errors.NotFound:
                self.expectations.deletion_observed(key)
            except (errors.StatusError, ApiConnectionError) as e:
                self.expectations.deletion_observed(key)
                self.recorder.event(job, "Warning", "FailedDelete", f"Error deleting: {e}")
                return False
            return True

        results = await asyncio.gather(*(one(p) for p in pods))
        deleted = results.count(True)
        ready = sum(1 for p, ok in zip(pods, results, strict=True) if ok and _is_pod_ready(p))
        err = _PodControlError(f"job {key}: {len(pods) - deleted} pod deletions failed") \
            if deleted != len(pods) else None
        return ready, deleted, err

    async def _delete_active_pods(self, job: Obj,
                                  pods: list[Obj]) -> tuple[int, int, Exception | None]:
        """Delete the active pods of a Job that is finishing, keeping their finalizers: they
        are counted (as failed) before the finalizer is removed."""
        async def one(pod: Obj) -> bool:
            try:
                await self._delete_pod(job, pod)
            except errors.NotFound:
                pass
            except (errors.StatusError, ApiConnectionError) as e:
                self.recorder.event(job, "Warning", "FailedDelete", f"Error deleting: {e}")
                return False
            return True

        results = await asyncio.gather(*(one(p) for p in pods))
        deleted = results.count(True)
        ready = sum(1 for p, ok in zip(pods, results, strict=True) if ok and _is_pod_ready(p))
        err = _PodControlError(f"job {meta_key(job)}: {len(pods) - deleted} pod deletions "
                               "failed") if deleted != len(pods) else None
        return ready, deleted, err

    async def _delete_pod(self, job: Obj, pod: Obj) -> None:
        name = str(_meta(pod).get("name"))
        await self.api.delete(PODS, name, str(_meta(pod).get("namespace")))
        self.log.info("deleted pod key=%s pod=%s", meta_key(job), name)
        self.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")

    async def _remove_finalizer(self, pod: Obj) -> None:
        patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": [JOB_TRACKING_FINALIZER]}}
        try:
            await self.api.patch(PODS, str(_meta(pod).get("name")), patch,
                                 str(_meta(pod).get("namespace")), "strategic")
        except errors.NotFound:
            pass

    # --- counting finished pods -------------------------------------------------------------

    async def _track_status_and_remove_finalizers(self, key: str, ctx: _SyncContext,
                                                  needs_flush: bool) -> None:
        """1. put newly finished pods in uncountedTerminatedPods (and write that),
        2. remove their finalizers, 3. move them into the counters, 4. finish the Job when
        nothing is left uncounted or terminating (upstream trackJobStatusAndRemoveFinalizers).
        """
        job = ctx.job
        spec = _spec(job)
        status: Obj = job["status"]
        indexed = _indexed(job)
        completions = int(spec.get("completions") or 0)
        pods = sorted(ctx.pods, key=lambda p: (_completion_index(p) is None,
                                               _completion_index(p) or 0)) \
            if indexed else ctx.pods
        with_finalizer = {_uid(p) for p in pods
                          if _has_finalizer(p) and _uid(p) not in ctx.expected_rm_finalizers}
        if _count_uncounted_without_finalizers(status, with_finalizer):
            needs_flush = True
        uncounted = status["uncountedTerminatedPods"]
        to_remove: list[Obj] = []
        new_indexes: list[int] = []
        reached_max = False
        for pod in pods:
            uid = _uid(pod)
            if not _has_finalizer(pod) or uid in ctx.expected_rm_finalizers:
                continue  # handled in an earlier sync
            failed = _is_pod_failed(pod, job)
            if not (_meta(job).get("deletionTimestamp") or ctx.finished_condition is not None
                    or _phase(pod) == "Succeeded" or failed):
                continue  # still running and the Job goes on: keep tracking it
            to_remove.append(pod)
            ix = _completion_index(pod)
            if _phase(pod) == "Succeeded" and uid not in ctx.uncounted_failed:
                if indexed:
                    if ix is not None and ix < completions and \
                            ix not in ctx.prev_succeeded_indexes:
                        new_indexes.append(ix)
                        needs_flush = True
                elif uid not in ctx.uncounted_succeeded:
                    uncounted["succeeded"].append(uid)
                    needs_flush = True
            elif (failed or (ctx.finished_condition is not None and
                             ctx.finished_condition["type"] != SUCCESS_CRITERIA_MET)) and \
                    uid not in ctx.uncounted_failed and \
                    (not indexed or (ix is not None and ix < completions)):
                # A Job that is failing counts each pod it has not seen finish as failed.
                uncounted["failed"].append(uid)
                needs_flush = True
            if len(new_indexes) + len(uncounted["succeeded"]) + len(uncounted["failed"]) >= \
                    MAX_UNCOUNTED_PODS:
                reached_max = True  # keep status small; the next sync carries on
                break
        if indexed:
            ctx.succeeded_indexes |= set(new_indexes)
            completed = format_indexes(ctx.succeeded_indexes)
            if completed != (status.get("completedIndexes") or ""):
                needs_flush = True
            status["completedIndexes"] = completed
            status["succeeded"] = len(ctx.succeeded_indexes)
        finished = ctx.finished_condition
        if finished is not None and finished["type"] == FAILURE_TARGET:
            # The interim condition is written before any finalizer goes, so the reason
            # survives a crash; Failed follows once every pod is gone and counted.
            status.setdefault("conditions", []).append(finished)
            needs_flush = True
            ctx.finished_condition = _new_condition(FAILED, "True", finished["reason"],
                                                    finished["message"])
        elif finished is not None and finished["type"] == SUCCESS_CRITERIA_MET:
            if _condition(job, SUCCESS_CRITERIA_MET) is None:
                status.setdefault("conditions", []).append(finished)
                needs_flush = True
            ctx.finished_condition = _new_condition(COMPLETE, "True", str(finished["reason"]),
                                                    str(finished["message"]))
        needs_flush = await self._flush_and_remove_finalizers(key, ctx, to_remove,
                                                              with_finalizer, needs_flush)
        job_finished = not reached_max and self._enact_finished(ctx)
        if job_finished or needs_flush:
            await self._write_status(key, ctx)
        if job_finished and ctx.finished_condition is not None:
            self._record_finished(ctx.job, ctx.finished_condition)

    async def _flush_and_remove_finalizers(self, key: str, ctx: _SyncContext,
                                           to_remove: list[Obj], with_finalizer: set[str],
                                           needs_flush: bool) -> bool:
        """Write the uncounted uids, remove finalizers, count the removed ones. Returns
        whether the status has changes left to write."""
        if needs_flush:
            await self._write_status(key, ctx)
            # The failures are in the status now: the back-off can count them.
            self.backoff_records[key] = ctx.new_backoff
            needs_flush = False
        error: Exception | None = None
        if to_remove:
            removed, error = await self._remove_tracking_finalizers(key, to_remove)
            with_finalizer.difference_update(removed)
        if _count_uncounted_without_finalizers(ctx.job["status"], with_finalizer):
            needs_flush = True
        if error is not None:
            if needs_flush:
                await self._write_status(key, ctx)  # keep what progress we made
            raise error
        return needs_flush

    async def _remove_tracking_finalizers(self, key: str,
                                          pods: list[Obj]) -> tuple[set[str],
                                                                    Exception | None]:
        expected = self.finalizer_expectations.setdefault(key, set())
        expected.update(_uid(p) for p in pods)
        failures: list[Exception] = []

        async def one(pod: Obj) -> str | None:
            try:
                await self._remove_finalizer(pod)
            except (errors.StatusError, ApiConnectionError) as e:
                # No update will come for this pod: stop expecting one.
                expected.discard(_uid(pod))
                failures.append(e)
                return None
            return _uid(pod)

        results = await asyncio.gather(*(one(p) for p in pods))
        removed = {uid for uid in results if uid is not None}
        error = _PodControlError(f"job {key}: removing tracking finalizers: {failures[0]}") \
            if failures else None
        return removed, error

    def _enact_finished(self, ctx: _SyncContext) -> bool:
        cond = ctx.finished_condition
        if cond is None:
            return False
        status: Obj = ctx.job["status"]
        uncounted = _dict(status.get("uncountedTerminatedPods"))
        if _list(uncounted.get("succeeded")) or _list(uncounted.get("failed")):
            return False
        if ctx.terminating > 0:
            return False  # upstream 1.31+: terminal only once every pod has stopped
        _ensure_condition(status, cond["type"], "True", cond["reason"], cond["message"])
        if cond["type"] == COMPLETE:
            status["completionTime"] = cond["lastTransitionTime"]
        return True

    def _record_finished(self, job: Obj, cond: Obj) -> None:
        if cond["type"] == COMPLETE:
            completions = _spec(job).get("completions")
            succeeded = int(_dict(job.get("status")).get("succeeded") or 0)
            if completions is not None and succeeded > int(completions):
                self.recorder.event(job, "Warning", "TooManySucceededPods",
                                    "Too many succeeded pods running after completion count "
                                    "reached")
            self.recorder.event(job, "Normal", "Completed", "Job completed")
        else:
            self.recorder.event(job, "Warning", str(cond["reason"]), str(cond["message"]))

    async def _write_status(self, key: str, ctx: _SyncContext) -> None:
        """PUT status with the Job's resourceVersion (a stale Job gets a Conflict)."""
        body = ctx.job
        status: Obj = body["status"]
        for counter in ("active", "succeeded", "failed"):
            if not status.get(counter):
                status.pop(counter, None)  # omitempty upstream
        uncounted = {k: v for k, v in _dict(status.get("uncountedTerminatedPods")).items() if v}
        status["uncountedTerminatedPods"] = uncounted
        written = await self.api.update_status(JOBS, body)
        self._written[key] = resource_version(written)
        written_status: Obj = written.setdefault("status", {})
        written_uncounted = _dict(written_status.get("uncountedTerminatedPods"))
        written_status["uncountedTerminatedPods"] = {
            "succeeded": list(_list(written_uncounted.get("succeeded"))),
            "failed": list(_list(written_uncounted.get("failed")))}
        ctx.job = written

    # --- pods of a Job --------------------------------------------------------------------

    async def _claim_pods(self, job: Obj) -> list[Obj]:
        """The Job's pods: owned ones that match its selector, plus adopted orphans (which get
        our finalizer); owned ones that no longer match are released."""
        md = _meta(job)
        uid = _uid(job)
        try:
            selector = selector_from_label_selector_object(_spec(job).get("selector"))
        except ValueError:
            selector = LabelSelector.match_nothing()
        owned: list[Obj] = []
        orphans: list[Obj] = []
        for pod in self.pods.store.by_index(NAMESPACE_INDEX, str(md.get("namespace"))):
            ref = _controller_of(pod)
            matches = selector.matches(dict(_dict(_meta(pod).get("labels"))))
            if ref is not None:
                if ref.get("uid") != uid:
                    continue
                if matches:
                    owned.append(pod)
                elif not _meta(pod).get("deletionTimestamp"):
                    refs = [r for r in _list(_meta(pod).get("ownerReferences"))
                            if _dict(r).get("uid") != uid]
                    await self._patch_pod_meta(pod, {"ownerReferences": refs})
            elif matches and not _meta(pod).get("deletionTimestamp"):
                orphans.append(pod)
        if orphans and await self._can_adopt(job):
            for pod in orphans:
                pmd = _meta(pod)
                finalizers = list(_list(pmd.get("finalizers")))
                if JOB_TRACKING_FINALIZER not in finalizers:
                    finalizers.append(JOB_TRACKING_FINALIZER)
                adopted = await self._patch_pod_meta(pod, {
                    "ownerReferences": [*_list(pmd.get("ownerReferences")), _job_ref(job)],
                    "finalizers": finalizers})
                if adopted is not None:
                    owned.append(adopted)
        return owned

    async def _can_adopt(self, job: Obj) -> bool:
        md = _meta(job)
        try:
            fresh = await self.api.get(JOBS, str(md.get("name")), str(md.get("namespace")))
        except errors.NotFound:
            return False
        return _uid(fresh) == _uid(job) and not _meta(fresh).get("deletionTimestamp")

    async def _patch_pod_meta(self, pod: Obj, changes: Obj) -> Obj | None:
        md = _meta(pod)
        patch = {"metadata": {**changes, "resourceVersion": md.get("resourceVersion")}}
        try:
            return await self.api.patch(PODS, str(md.get("name")), patch,
                                        str(md.get("namespace")))
        except (errors.NotFound, errors.Conflict):
            return None  # changed meanwhile: its event brings the Job back


def _job_ref(job: Mapping[str, Any]) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "Job", "name": _meta(job).get("name"),
            "uid": _uid(job), "controller": True, "blockOwnerDeletion": True}


def _pod_from_template(job: Mapping[str, Any], index: int | None) -> Obj:
    md = _meta(job)
    template = deep_copy(dict(_dict(_spec(job).get("template"))))
    tmd = _dict(template.get("metadata"))
    spec: Obj = dict(_dict(template.get("spec")))
    labels = dict(_dict(tmd.get("labels")))
    annotations = dict(_dict(tmd.get("annotations")))
    finalizers = [f for f in _list(tmd.get("finalizers")) if f != JOB_TRACKING_FINALIZER]
    finalizers.append(JOB_TRACKING_FINALIZER)
    generate_name = f"{md.get('name')}-"
    if index is not None:
        annotations[COMPLETION_INDEX_KEY] = str(index)
        labels[COMPLETION_INDEX_KEY] = str(index)
        spec["hostname"] = f"{md.get('name')}-{index}"
        generate_name = f"{md.get('name')}-{index}-"
        env_source = {"fieldRef": {"fieldPath":
                                   f"metadata.annotations['{COMPLETION_INDEX_KEY}']"}}
        for key in ("initContainers", "containers"):
            for container in _list(spec.get(key)):
                if isinstance(container, dict):
                    env = [e for e in _list(container.get("env"))
                           if _dict(e).get("name") != "JOB_COMPLETION_INDEX"]
                    env.append({"name": "JOB_COMPLETION_INDEX", "valueFrom": env_source})
                    container["env"] = env
    pod_md: Obj = {"generateName": generate_name, "namespace": md.get("namespace"),
                   "labels": labels, "finalizers": finalizers,
                   "ownerReferences": [_job_ref(job)]}
    if annotations:
        pod_md["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_md, "spec": spec}


def _active_pods_for_removal(job: Mapping[str, Any], pods: list[Obj], at_least: int) -> list[Obj]:
    """Pods to delete: for Indexed Jobs first those with a bad or repeated index, then the
    least advanced ones (unscheduled < pending < running, not ready < ready)."""
    remove: list[Obj] = []
    left = pods
    if _indexed(job):
        completions = int(_spec(job).get("completions") or 0)
        by_index: dict[int, list[Obj]] = {}
        left = []
        for pod in pods:
            ix = _completion_index(pod)
            if ix is None or ix >= completions:
                remove.append(pod)
            else:
                by_index.setdefault(ix, []).append(pod)
        for same in by_index.values():
            same.sort(key=_active_pods_order)
            remove.extend(same[:-1])  # keep the most advanced pod of each index
            left.append(same[-1])
    if len(remove) < at_least:
        remove.extend(sorted(left, key=_active_pods_order)[:at_least - len(remove)])
    return remove


def _first_pending_indexes(ctx: _SyncContext, count: int, completions: int) -> list[int]:
    taken = set(ctx.succeeded_indexes)
    taken.update(ix for p in ctx.active_pods if (ix := _completion_index(p)) is not None)
    return [ix for ix in range(completions) if ix not in taken][:count]


def _count_uncounted_without_finalizers(status: Obj, with_finalizer: set[str]) -> bool:
    """Move uids whose pods lost our finalizer (or vanished) from uncountedTerminatedPods into
    the counters; returns whether anything moved."""
    changed = False
    uncounted = status.setdefault("uncountedTerminatedPods", {})
    for field_name in ("succeeded", "failed"):
        uids = list(_list(uncounted.get(field_name)))
        keep = [u for u in uids if u in with_finalizer]
        uncounted[field_name] = keep
        if len(keep) != len(uids):
            status[field_name] = int(status.get(field_name) or 0) + len(uids) - len(keep)
            changed = True
    return changed


def _past_backoff_limit_on_failure(job: Mapping[str, Any], pods: list[Obj]) -> bool:
    """With restartPolicy OnFailure failures are container restarts inside running pods."""
    template_spec = _spec(_dict(_spec(job).get("template")))
    if template_spec.get("restartPolicy") != "OnFailure":
        return False
    restarts = 0
    for pod in pods:
        if _phase(pod) in ("Running", "Pending"):
            status = _dict(pod.get("status"))
            for key in ("initContainerStatuses", "containerStatuses"):
                restarts += sum(int(_dict(cs).get("restartCount") or 0)
                                for cs in _list(status.get(key)))
    limit = int(_spec(job).get("backoffLimit", 6))
    return restarts > 0 if limit == 0 else restarts >= limit


def _active_deadline_left(job: Mapping[str, Any]) -> float | None:
    """Seconds until activeDeadlineSeconds runs out (<= 0: it has); None without a deadline
    or while suspended (the deadline counts continuous activity)."""
    deadline = _spec(job).get("activeDeadlineSeconds")
    started = _timestamp(_dict(job.get("status")).get("startTime"))
    if not isinstance(deadline, int) or started is None or _suspended(job):
        return None
    return deadline - (time.time() - started)


# --- TTL after finished ---------------------------------------------------------------------

class TTLAfterFinishedController(Controller):
    """Deletes finished Jobs `ttlSecondsAfterFinished` after they finished (upstream's
    ttlafterfinished controller); started and stopped by the JobController."""

    name = "ttl-after-finished"
    workers = 1

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.jobs = self.informer(JOBS)
        self.jobs.add_handler(self._changed, lambda old, new: self._changed(new), None)

    def _changed(self, job: Obj) -> None:
        if not _meta(job).get("deletionTimestamp") and _needs_cleanup(job):
            self.enqueue(job)

    async def sync(self, key: str) -> None:
        job = self.jobs.store.get(key)
        if job is None or not self._expired(key, job):
            return
        # The cache may hold an old TTL: decide on a fresh read before deleting.
        namespace, name = split_meta_key(key)
        try:
            fresh = await self.api.get(JOBS, name, namespace)
        except errors.NotFound:
            return
        if not self._expired(key, fresh):
            return
        try:
            await self.api.delete(JOBS, name, namespace, propagation_policy="Background",
                                  preconditions={"uid": _uid(fresh)})
        except errors.NotFound:
            return
        self.log.info("deleted finished job key=%s ttl=%s", key,
                      _spec(fresh).get("ttlSecondsAfterFinished"))

    def _expired(self, key: str, job: Obj) -> bool:
        """True when the TTL has run out; otherwise look again when it will have."""
        if _meta(job).get("deletionTimestamp") or not _needs_cleanup(job):
            return False
        finished_at = None
        for cond in _list(_dict(job.get("status")).get("conditions")):
            if isinstance(cond, Mapping) and cond.get("type") in (COMPLETE, FAILED) and \
                    cond.get("status") == "True":
                finished_at = _timestamp(cond.get("lastTransitionTime"))
                break
        if finished_at is None:
            self.log.warning("finished job without a finish time key=%s", key)
            return False
        remaining = finished_at + int(_spec(job)["ttlSecondsAfterFinished"]) - time.time()
        if remaining > 0:
            self.queue.add_after(key, remaining)
            return False
        return True


def _needs_cleanup(job: Mapping[str, Any]) -> bool:
    return isinstance(_spec(job).get("ttlSecondsAfterFinished"), int) and is_job_finished(job)
