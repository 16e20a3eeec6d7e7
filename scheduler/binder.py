"""Binding: `POST pods/<name>/binding` for a pod the scheduler has placed.

Binds run as their own tasks, concurrently with the next scheduling cycles: the scheduler
never waits for the apiserver's answer before deciding the next pod (the cache already holds
the pod as assumed, so later decisions account for it). A bounded number are in flight at
once. When a bind fails, the assumption is forgotten — its room on the node is free again —
and the pod goes back to the queue with backoff, unless it is gone or someone else bound it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from api.errors import Conflict, NotFound
from api.resources import CATALOGUE, Resource
from client.rest import ApiClient, Obj
from scheduler.cache import Cache
from scheduler.framework import ClusterEvent
from scheduler.queue import QueuedPodInfo, SchedulingQueue
from scheduler.types import PodInfo

log = logging.getLogger(__name__)


def _pods() -> Resource:
    res = CATALOGUE.by_plural("pods")
    if res is None:
        raise RuntimeError("the resource catalogue has no pods")
    return res


PODS = _pods()

BoundCallback = Callable[[QueuedPodInfo, str], None]
FailedCallback = Callable[[QueuedPodInfo, str, Exception], None]


def binding(pod: PodInfo, node: str) -> Obj:
    """The Binding object; the uid makes the apiserver refuse a same-named newer pod."""
    return {"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}


class Binder:
    """Sends binds in the background and settles the cache and queue with the outcome."""

    def __init__(self, api: ApiClient, cache: Cache, queue: SchedulingQueue, *,
                 latest: Callable[[str], Obj | None], on_bound: BoundCallback,
                 on_failed: FailedCallback, max_in_flight: int = 128) -> None:
        self._api = api
        self._cache = cache
        self._queue = queue
        self._latest = latest  # the pod as the pending-pods informer has it now, or None
        self._on_bound = on_bound
        self._on_failed = on_failed
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def bind(self, qpi: QueuedPodInfo, node: str) -> None:
        """Start binding the (already assumed) pod to `node`; returns at once."""
        task = asyncio.create_task(self._bind(qpi, node), name=f"bind:{qpi.key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _bind(self, qpi: QueuedPodInfo, node: str) -> None:
        pod = qpi.pod
        try:
            async with self._slots:
                await self._api.create_subresource(PODS, pod.name, "binding",
                                                   binding(pod, node), pod.namespace)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure must undo the assumption
            self._undo(qpi, node, e)
            return
        self._cache.finish_binding(qpi.key)
        self._queue.done(qpi.key)
        self._on_bound(qpi, node)

    def _undo(self, qpi: QueuedPodInfo, node: str, error: Exception) -> None:
        log.warning("binding failed pod=%s node=%s error=%s", qpi.key, node, error)
        self._cache.forget_pod(qpi.key)
        # The forgotten pod's room is free again, just as if a bound pod had been deleted.
        self._queue.move_all(ClusterEvent.ASSIGNED_POD_DELETE)
        latest = self._latest(qpi.key)
        if latest is not None and (latest.get("metadata") or {}).get("uid") != qpi.pod.uid:
            # Deleted and re-created under the same name: the new pod is a new pod.
            self._queue.done(qpi.key)
            self._queue.add(PodInfo(latest))
        elif latest is None or isinstance(error, (NotFound, Conflict)):
            # Deleted, being deleted, or bound by someone else: nothing left to schedule.
            self._queue.done(qpi.key)
        else:
            self._queue.add_backoff(qpi, PodInfo(latest))
        self._on_failed(qpi, node, error)

    async def stop(self) -> None:
        """Cancel binds still in flight and wait for them."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
