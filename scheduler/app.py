"""The scheduler process: informers → cache and queue → one cycle per pod → background bind.

Three pod-and-node informers feed it:
- nodes, into the cache;
- bound pods (`spec.nodeName!=`, not finished), into the cache: they use up node capacity
  whichever scheduler placed them;
- pending pods for this scheduler (`spec.nodeName=`, `spec.schedulerName=<name>`, not
  finished), into the scheduling queue. Pods for other scheduler names never reach it.
Namespaces are watched too, for pod affinity terms with a namespace selector.

The scheduling loop pops a pod, runs the framework over the cache (filters, scores), assumes
the pod onto the chosen node and hands it to the binder; it yields to the event loop between
two pods so watch events and bind answers keep flowing. Every write goes to the apiserver:
bindings, Events, and the pod's PodScheduled condition when it fits nowhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from api.errors import NotFound, StatusError
from api.meta import now_rfc3339
from api.resources import CATALOGUE, Resource
from api.selectors import LabelSelector, escape_field_value
from client.component import run_component
from client.events import EventRecorder
from client.informer import SharedInformerFactory, meta_key
from client.kubeconfig import load_kubeconfig
from client.rest import ApiClient, ApiConnectionError, Obj
from scheduler.binder import Binder
from scheduler.cache import Cache
from scheduler.framework import ClusterEvent, FitError, Framework, Handle
from scheduler.options import Options
from scheduler.plugins import DEFAULT_WEIGHTS, default_plugins
from scheduler.preemption import preemption_message
from scheduler.queue import QueueClosed, QueuedPodInfo, SchedulingQueue
from scheduler.types import PodInfo
from scheduler.types import Resource as Requests

log = logging.getLogger(__name__)

LEASE_NAME = "kube-scheduler"
CLEANUP_ASSUMED_PERIOD = 1.0  # upstream cleanupAssumedPeriod
FLUSH_UNSCHEDULABLE_PERIOD = 30.0  # upstream flushes leftover unschedulable pods every 30 s
EVENT_FLUSH_TIMEOUT = 5.0


def _resource(plural: str) -> Resource:
    res = CATALOGUE.by_plural(plural)
    if res is None:
        raise RuntimeError(f"the resource catalogue has no {plural}")
    return res


PODS = _resource("pods")
NODES = _resource("nodes")
NAMESPACES = _resource("namespaces")

_NOT_FINISHED = "status.phase!=Failed,status.phase!=Succeeded"


def node_update_event(old: Obj, new: Obj) -> ClusterEvent:
    """Which scheduling-relevant parts of a node changed (heartbeats alone change none)."""
    event = ClusterEvent.NONE
    old_status, new_status = old.get("status") or {}, new.get("status") or {}
    if old_status.get("allocatable") != new_status.get("allocatable"):
        event |= ClusterEvent.NODE_ALLOCATABLE
    if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
        event |= ClusterEvent.NODE_LABEL
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    if (old_spec.get("taints") != new_spec.get("taints")
            or bool(old_spec.get("unschedulable")) != bool(new_spec.get("unschedulable"))):
        event |= ClusterEvent.NODE_TAINT
    return event


def _requests_shrank(old: Requests, new: Requests) -> bool:
    return (new.milli_cpu < old.milli_cpu or new.memory < old.memory
            or new.ephemeral_storage < old.ephemeral_storage
            or any(new.scalars.get(k, 0) < v for k, v in old.scalars.items()))


def assigned_pod_update_event(old: PodInfo | None, new: PodInfo) -> ClusterEvent:
    """A bound pod changed in a way that can help a parked pod: its labels (affinity) or
    smaller requests (an in-place scale-down frees room)."""
    if old is None:
        return ClusterEvent.ASSIGNED_POD_ADD
    if old.labels != new.labels or _requests_shrank(old.requests, new.requests):
        return ClusterEvent.ASSIGNED_POD_UPDATE
    return ClusterEvent.NONE


class Scheduler:
    """One scheduler profile (`spec.schedulerName`), wired to an API client."""

    def __init__(self, api: ApiClient, options: Options | None = None) -> None:
        self.options = options or Options()
        self.name = self.options.scheduler_name
        self.api = api
        self.informers = SharedInformerFactory(api)
        self.recorder = EventRecorder(api, self.name)
        self.cache = Cache()
        self._namespaces = self.informers.informer_for(NAMESPACES)
        self._nodes = self.informers.informer_for(NODES)
        self._assigned = self.informers.informer_for(
            PODS, field_selector=f"spec.nodeName!=,{_NOT_FINISHED}")
        self._pending = self.informers.informer_for(
            PODS, field_selector=f"spec.nodeName=,spec.schedulerName="
                                 f"{escape_field_value(self.name)},{_NOT_FINISHED}")
        handle = Handle(self.cache, self._namespace_labels, self._namespaces_matching)
        self.framework = Framework(
            default_plugins(handle), DEFAULT_WEIGHTS,
            percentage_of_nodes_to_score=self.options.percentage_of_nodes_to_score)
        self.queue = SchedulingQueue(self.framework.events_of)
        self.binder = Binder(api, self.cache, self.queue, latest=self._pending.store.get,
                             on_bound=self._on_bound, on_failed=self._on_bind_failed)
        # Like upstream's scheduler_schedule_attempts_total{result}: scheduled,
        # unschedulable, error.
        self.attempts: Counter[str] = Counter()
        self.ready = asyncio.Event()  # set once the caches are synced and scheduling began
        self._tasks: list[asyncio.Task[None]] = []
        self._writes: set[asyncio.Task[None]] = set()

    # --- lifetime -------------------------------------------------------------------------

    async def run(self) -> None:
        """Schedule until cancelled; everything started here is stopped on the way out."""
        self._register_handlers()
        self.informers.start_all()
        try:
            await self.informers.wait_for_cache_sync()
            # The cache must hold every node and bound pod before the first decision.
            for informer in (self._namespaces, self._nodes, self._assigned):
                await informer.wait_handlers_idle()
            log.info("scheduler %s: caches synced (%d nodes, %d bound pods), scheduling",
                     self.name, len(self._nodes.store), len(self._assigned.store))
            self._tasks = [
                asyncio.create_task(self._scheduling_loop(), name="scheduler:loop"),
                asyncio.create_task(self._every(CLEANUP_ASSUMED_PERIOD, self._cleanup_assumed),
                                    name="scheduler:cleanup-assumed"),
                asyncio.create_task(self._every(FLUSH_UNSCHEDULABLE_PERIOD,
                                                self.queue.flush_unschedulable_leftover),
                                    name="scheduler:flush-unschedulable"),
            ]
            self.ready.set()
            await asyncio.gather(*self._tasks)
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        self.queue.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.binder.stop()
        writes = list(self._writes)
        for task in writes:
            task.cancel()
        await asyncio.gather(*writes, return_exceptions=True)
        await self.informers.stop_all()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.recorder.flush(), EVENT_FLUSH_TIMEOUT)

    async def _every(self, period: float, fn: Callable[[], object]) -> None:
        while True:
            await asyncio.sleep(period)
            fn()

    def _cleanup_assumed(self) -> None:
        if self.cache.cleanup_expired():
            self.queue.move_all(ClusterEvent.ASSIGNED_POD_DELETE)

    # --- informer handlers ----------------------------------------------------------------

    def _register_handlers(self) -> None:
        self._nodes.add_handler(self._on_node_add, self._on_node_update, self._on_node_delete)
        self._assigned.add_handler(self._on_assigned_add, self._on_assigned_update,
                                   self._on_assigned_delete)
        self._pending.add_handler(self._on_pending_add, self._on_pending_update,
                                  self._on_pending_delete)

    def _on_node_add(self, node: Obj) -> None:
        self.cache.add_node(node)
        self.queue.move_all(ClusterEvent.NODE_ADD)

    def _on_node_update(self, old: Obj, new: Obj) -> None:
        self.cache.update_node(new)
        event = node_update_event(old, new)
        if event:
            self.queue.move_all(event)

    def _on_node_delete(self, node: Obj) -> None:
        self.cache.remove_node(node)

    def _on_assigned_add(self, pod: Obj) -> None:
        self.cache.add_pod(pod)
        self.queue.move_all(ClusterEvent.ASSIGNED_POD_ADD)

    def _on_assigned_update(self, old: Obj, new: Obj) -> None:
        before = self.cache.pod(meta_key(new))
        self.cache.update_pod(new)
        event = assigned_pod_update_event(before, PodInfo(new))
        if event:
            self.queue.move_all(event)

    def _on_assigned_delete(self, pod: Obj) -> None:
        self.cache.remove_pod(pod)
        self.queue.move_all(ClusterEvent.ASSIGNED_POD_DELETE)

    def _on_pending_add(self, pod: Obj) -> None:
        if self._schedulable(pod):
            self.queue.add(PodInfo(pod))

    def _on_pending_update(self, old: Obj, new: Obj) -> None:
        if self._schedulable(new):
            self.queue.update(PodInfo(new))

    def _on_pending_delete(self, pod: Obj) -> None:
        # Deleted, finished, or bound (it left the `spec.nodeName=` selection).
        self.queue.delete(meta_key(pod))

    def _schedulable(self, pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        if spec.get("schedulerName") != self.name or spec.get("schedulingGates"):
            return False  # gated pods wait until their gates are removed (an update)
        # A pod being bound is assumed: an update to it (or a relist) must not queue it again.
        return not self.cache.is_assumed(meta_key(pod))

    def _namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        ns = self._namespaces.store.get(namespace)
        return ((ns or {}).get("metadata") or {}).get("labels") or {}

    def _namespaces_matching(self, selector: LabelSelector) -> frozenset[str]:
        return frozenset(str(ns["metadata"]["name"]) for ns in self._namespaces.store.list()
                         if selector.matches((ns.get("metadata") or {}).get("labels")))

    # --- scheduling -----------------------------------------------------------------------

    async def _scheduling_loop(self) -> None:
        while True:
            try:
                qpi = await self.queue.pop()
            except QueueClosed:
                return
            try:
                self.schedule_one(qpi)
            except Exception:
                log.exception("scheduling cycle failed pod=%s", qpi.key)
                self.attempts["error"] += 1
                self.queue.add_backoff(qpi)
            # One cycle per turn of the event loop: watch events, bind answers and timers
            # run between two pods, so a long queue cannot starve them.
            await asyncio.sleep(0)

    def schedule_one(self, qpi: QueuedPodInfo) -> None:
        """One scheduling cycle for the popped pod (synchronous: no await inside)."""
        key = qpi.key
        pod = self._pending.store.get(key)
        if (pod is None or (pod.get("metadata") or {}).get("deletionTimestamp")
                or self.cache.pod(key) is not None):
            self.queue.done(key)  # gone, going, or already bound
            return
        if pod is not qpi.pod.pod:
            qpi.pod = PodInfo(pod)  # the store is ahead of the handler: use the latest
        try:
            result = self.framework.schedule(qpi.pod, self.cache.node_list())
        except FitError as e:
            self._unschedulable(qpi, e)
            return
        self.attempts["scheduled"] += 1
        self.cache.assume_pod(qpi.pod, result.node)
        self.binder.bind(qpi, result.node)

    def _unschedulable(self, qpi: QueuedPodInfo, error: FitError) -> None:
        self.attempts["unschedulable"] += 1
        if error.num_all_nodes:
            error.diagnosis.post_filter_msg = preemption_message(self.framework, error,
                                                                 self.cache)
        message = str(error)
        self.queue.add_unschedulable(qpi, error.diagnosis.unschedulable_plugins)
        log.info("unable to schedule pod=%s attempts=%d: %s", qpi.key, qpi.attempts, message)
        self.recorder.event(qpi.pod.pod, "Warning", "FailedScheduling", message)
        self._set_pod_scheduled_false(qpi.pod.pod, "Unschedulable", message)

    def _on_bound(self, qpi: QueuedPodInfo, node: str) -> None:
        pod = qpi.pod
        log.debug("bound pod=%s node=%s attempts=%d", pod.key, node, qpi.attempts)
        self.recorder.event(pod.pod, "Normal", "Scheduled",
                            f"Successfully assigned {pod.namespace}/{pod.name} to {node}")

    def _on_bind_failed(self, qpi: QueuedPodInfo, node: str, error: Exception) -> None:
        self.attempts["error"] += 1
        latest = self._pending.store.get(qpi.key)
        if latest is None:
            return  # gone or bound by someone else: nothing to report on
        message = f"Binding rejected: {error}"
        self.recorder.event(latest, "Warning", "FailedScheduling", message)
        self._set_pod_scheduled_false(latest, "SchedulerError", message)

    def _set_pod_scheduled_false(self, pod: Obj, reason: str, message: str) -> None:
        """Patch the pod's PodScheduled condition, unless it already says exactly this."""
        conditions = (pod.get("status") or {}).get("conditions") or []
        current = next((c for c in conditions if isinstance(c, dict)
                        and c.get("type") == "PodScheduled"), None)
        if (current is not None and current.get("status") == "False"
                and current.get("reason") == reason and current.get("message") == message):
            return
        since = (current.get("lastTransitionTime") if current is not None
                 and current.get("status") == "False" else None) or now_rfc3339()
        patch = {"status": {"conditions": [{
            "type": "PodScheduled", "status": "False", "reason": reason, "message": message,
            "lastProbeTime": None, "lastTransitionTime": since}]}}
        md = pod.get("metadata") or {}
        self._background(self._patch_status(str(md.get("namespace")), str(md.get("name")),
                                            patch), f"status:{meta_key(pod)}")

    async def _patch_status(self, namespace: str, name: str, patch: Obj) -> None:
        try:
            await self.api.patch(PODS, name, patch, namespace, "strategic",
                                 subresource="status")
        except NotFound:
            pass
        except (StatusError, ApiConnectionError) as e:
            log.warning("could not update PodScheduled pod=%s/%s: %s", namespace, name, e)

    def _background(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)


async def run_scheduler(api: ApiClient, options: Options) -> None:
    """The leader's work: a fresh Scheduler per term of leadership."""
    await Scheduler(api, options).run()


async def main_async(options: Options) -> int:
    async with ApiClient(load_kubeconfig(options.kubeconfig), component="scheduler") as api:
        return await run_component(
            api, LEASE_NAME, lambda a: run_scheduler(a, options),
            leader_elect=options.leader_elect, identity=options.identity,
            lease_duration=options.lease_duration, renew_deadline=options.renew_deadline,
            retry_period=options.retry_period)
