"""One worker task per pod (upstream pkg/kubelet/pod_workers.go), named `pod:<ns>/<name>`.

A worker owns everything the kubelet does to its pod, so two syncs of one pod never run at
once, and walks upstream's three states:

- syncing: `sync_pod` until the pod is finished (every container done and not to be
  restarted), has a deletionTimestamp, or is gone from its source;
- terminating: `terminate_pod` stops the containers (grace period, preStop) and the sandbox
  (CNI DEL) and reports the final status;
- terminated: `terminated_pod` confirms a deletion to the apiserver or, once the pod is gone
  from its source, removes its containers and sandboxes; then the worker ends.

A worker sleeps until it is woken — by a new version of its pod, by the relist noticing a
container change, by a probe result, by a back-off timer — or until its resync period
(10 s, jittered) passes. A failed step is retried with back-off (1 s doubling to 10 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc

from api.errors import StatusError
from client.rest import ApiConnectionError
from kubelet.kuberuntime import SyncError

log = logging.getLogger(__name__)
Obj = dict[str, Any]

SYNCING, TERMINATING, TERMINATED = "syncing", "terminating", "terminated"
RESYNC = 10.0
ERROR_BACKOFF_INITIAL = 1.0
ERROR_BACKOFF_MAX = 10.0


class PodHandler(Protocol):
    async def sync_pod(self, pod: Obj) -> bool:
        """One sync; True when the pod is finished and must be terminated."""

    async def terminate_pod(self, pod: Obj, removed: bool) -> None:
        """Stop everything of the pod (gracefully) and report its final status."""

    async def terminated_pod(self, pod: Obj, removed: bool) -> bool:
        """After termination; True when the pod is completely cleaned up (worker ends)."""


@dataclass
class PodWorker:
    uid: str
    pod: Obj
    removed: bool = False
    state: str = SYNCING
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    timer: asyncio.TimerHandle | None = None
    failures: int = 0
    # The same UID came back (a static pod's manifest restored) while this worker was
    # cleaning up: a fresh worker starts it once this one is done.
    readd: Obj | None = None


def is_deleting(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def is_terminal_phase(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _name(pod: Obj) -> str:
    md = pod.get("metadata") or {}
    return f"{md.get('namespace', '')}/{md.get('name', '')}"


class PodWorkers:
    def __init__(self, handler: PodHandler, resync: float = RESYNC) -> None:
        self.handler = handler
        self.resync = resync
        self.workers: dict[str, PodWorker] = {}

    def update(self, pod: Obj, wake: bool = True) -> None:
        """A new version of a pod from its source (API or static); `wake=False` when
        nothing the kubelet acts on changed."""
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if worker is None:
            worker = PodWorker(uid, pod)
            self.workers[uid] = worker
            worker.task = asyncio.create_task(self._run(worker), name=f"pod:{_name(pod)}")
        elif worker.removed:
            worker.readd = pod
        else:
            worker.pod = pod
        if wake:
            worker.wake.set()

    def remove(self, uid: str, last: Obj | None = None) -> None:
        """The pod is gone from its source: terminate it and clean up."""
        worker = self.workers.get(uid)
        if worker is None:
            return
        if last is not None:
            worker.pod = last
        worker.removed = True
        worker.wake.set()

    def wake(self, uid: str, after: float = 0.0) -> None:
        worker = self.workers.get(uid)
        if worker is None:
            return
        if after <= 0:
            worker.wake.set()
            return
        if worker.timer is not None:
            worker.timer.cancel()
        worker.timer = asyncio.get_running_loop().call_later(after, worker.wake.set)

    def pods(self) -> list[Obj]:
        return [w.pod for w in self.workers.values() if not w.removed]

    def get(self, uid: str) -> PodWorker | None:
        return self.workers.get(uid)

    async def stop(self) -> None:
        tasks = [w.task for w in self.workers.values() if w.task is not None]
        for w in self.workers.values():
            if w.timer is not None:
                w.timer.cancel()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.workers.clear()

    async def _sleep(self, worker: PodWorker, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(worker.wake.wait(), delay)
        worker.wake.clear()

    async def _run(self, worker: PodWorker) -> None:
        delay = 0.0
        try:
            while True:
                if delay:
                    await self._sleep(worker, delay)
                delay = random.uniform(self.resync * 0.9, self.resync * 1.1)
                worker.wake.clear()
                try:
                    if await self._step(worker):
                        return
                    worker.failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    worker.failures += 1
                    delay = min(ERROR_BACKOFF_INITIAL * 2 ** (worker.failures - 1),
                                ERROR_BACKOFF_MAX)
                    level = logging.INFO if worker.failures < 3 else logging.WARNING
                    log.log(level, "pod %s (%s) %s failed (retry in %.0fs): %s",
                            _name(worker.pod), worker.uid, worker.state, delay, e,
                            exc_info=not _expected(e))
        finally:
            if worker.timer is not None:
                worker.timer.cancel()
            if self.workers.get(worker.uid) is worker:
                del self.workers[worker.uid]
                task = asyncio.current_task()
                if worker.readd is not None and not (task and task.cancelling()):
                    self.update(worker.readd)

    async def _step(self, worker: PodWorker) -> bool:
        if worker.state == SYNCING:
            pod = worker.pod
            done = worker.removed or is_deleting(pod) or is_terminal_phase(pod)
            if not done and not await self.handler.sync_pod(pod):
                return False
            worker.state = TERMINATING
        if worker.state == TERMINATING:
            await self.handler.terminate_pod(worker.pod, worker.removed)
            worker.state = TERMINATED
        return await self.handler.terminated_pod(worker.pod, worker.removed)


def _expected(e: Exception) -> bool:
    """Errors that are part of normal operation (no traceback in the log)."""
    return isinstance(e, SyncError | grpc.aio.AioRpcError | StatusError | ApiConnectionError)
