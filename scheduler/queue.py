"""The scheduling queue (upstream internal/queue/scheduling_queue.go), in three parts:

- the active queue: pods ready to be tried, highest priority first, then oldest first;
- the backoff queue: pods that failed recently and wait 1 s, 2 s, 4 s ... up to 10 s
  (doubling per attempt) before they are tried again; a timer moves them back, no polling;
- the unschedulable set: pods no node fits. They stay parked until a cluster event that
  could change that (a node added, a node's labels/taints/allocatable changed, a bound pod
  deleted...) — and only an event relevant to the plugins that rejected them. A parked pod
  that is woken before its backoff is over goes to the backoff queue, so even a storm of
  relevant events retries a pod at most once per backoff period: there is no hot loop.
  Pods parked for five minutes are retried anyway, as upstream does, in case an event was
  missed.

A popped pod is "in flight" until the scheduler reports back: `done` (bound, or gone),
`add_unschedulable` (no fit) or `add_backoff` (an error, such as a failed bind). If a
relevant event arrives while a pod is in flight, a later `add_unschedulable` sends it to the
backoff queue instead of parking it, so the event is not lost.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from scheduler.framework import ClusterEvent
from scheduler.types import PodInfo

log = logging.getLogger(__name__)

DEFAULT_INITIAL_BACKOFF = 1.0
DEFAULT_MAX_BACKOFF = 10.0
DEFAULT_MAX_UNSCHEDULABLE = 300.0

ACTIVE, BACKOFF, UNSCHEDULABLE, IN_FLIGHT = "active", "backoff", "unschedulable", "in-flight"


class QueueClosed(Exception):
    """`pop` on a closed queue."""


@dataclass(eq=False, slots=True)
class QueuedPodInfo:
    pod: PodInfo
    timestamp: float  # when it last entered the queue: orders the active queue, starts backoff
    attempts: int = 0
    initial_attempt: float | None = None
    unschedulable_plugins: frozenset[str] = frozenset()
    wake_on: ClusterEvent = ClusterEvent.ALL  # events that may make it schedulable
    cycle: int = 0  # the scheduling cycle it was last popped in

    @property
    def key(self) -> str:
        return self.pod.key


def backoff_duration(attempts: int, initial: float = DEFAULT_INITIAL_BACKOFF,
                     maximum: float = DEFAULT_MAX_BACKOFF) -> float:
    """initial * 2^(attempts-1), capped at maximum (upstream calculateBackoffDuration)."""
    duration = initial
    for _ in range(1, attempts):
        if duration >= maximum - duration:
            return maximum
        duration += duration
    return min(duration, maximum)


def _spec_or_labels_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether an update to a parked pod could change its fate (upstream isPodUpdated):
    anything but status and bookkeeping metadata."""
    if old.get("spec") != new.get("spec"):
        return True
    ignored = ("resourceVersion", "generation", "managedFields")
    old_md = {k: v for k, v in (old.get("metadata") or {}).items() if k not in ignored}
    new_md = {k: v for k, v in (new.get("metadata") or {}).items() if k not in ignored}
    return old_md != new_md


class SchedulingQueue:
    """Priority queue of pods to schedule, with backoff and event-driven retries."""

    def __init__(self, events_of: Callable[[str], ClusterEvent] = lambda name: ClusterEvent.ALL,
                 *, initial_backoff: float = DEFAULT_INITIAL_BACKOFF,
                 max_backoff: float = DEFAULT_MAX_BACKOFF,
                 max_unschedulable: float = DEFAULT_MAX_UNSCHEDULABLE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._events_of = events_of
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable = max_unschedulable
        self._clock = clock
        self._pods: dict[str, QueuedPodInfo] = {}
        self._where: dict[str, str] = {}
        # Heaps with lazy deletion: an entry is live only while _entries[key] is it.
        self._active: list[tuple[int, float, int, str]] = []
        self._backoff: list[tuple[float, int, str]] = []
        self._entries: dict[str, tuple[Any, ...]] = {}
        self._unschedulable: dict[str, QueuedPodInfo] = {}
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._closed = False
        self.scheduling_cycle = 0
        self._move_request_cycle = -1

    # --- inspection -----------------------------------------------------------------------

    def __contains__(self, key: object) -> bool:
        return key in self._where

    def __len__(self) -> int:
        return len(self._where)

    def where(self, key: str) -> str | None:
        return self._where.get(key)

    def get(self, key: str) -> QueuedPodInfo | None:
        return self._pods.get(key)

    def counts(self) -> dict[str, int]:
        out = {ACTIVE: 0, BACKOFF: 0, UNSCHEDULABLE: 0, IN_FLIGHT: 0}
        for place in self._where.values():
            out[place] += 1
        return out

    def backoff_duration(self, qpi: QueuedPodInfo) -> float:
        return backoff_duration(qpi.attempts, self.initial_backoff, self.max_backoff)

    def is_backing_off(self, qpi: QueuedPodInfo) -> bool:
        return qpi.timestamp + self.backoff_duration(qpi) > self._clock()

    # --- producers ------------------------------------------------------------------------

    def add(self, pod: PodInfo) -> None:
        """A new pod to schedule (or a known one changed: see `update`)."""
        if self._closed:
            return
        if pod.key in self._where:
            self.update(pod)
            return
        qpi = QueuedPodInfo(pod, self._clock())
        self._pods[pod.key] = qpi
        self._push_active(qpi)

    def update(self, pod: PodInfo) -> None:
        """A queued pod's object changed; a parked pod whose spec changed is retried."""
        if self._closed:
            return
        place = self._where.get(pod.key)
        if place is None:
            self.add(pod)
            return
        qpi = self._pods[pod.key]
        old, qpi.pod = qpi.pod, pod
        if place == ACTIVE and old.priority != pod.priority:
            self._push_active(qpi)  # re-sort; the old heap entry goes stale
        elif place == UNSCHEDULABLE and _spec_or_labels_changed(old.pod, pod.pod):
            self._unpark(qpi)

    def delete(self, key: str) -> None:
        """The pod is gone (deleted, or bound by someone else): forget it wherever it is."""
        self._where.pop(key, None)
        self._pods.pop(key, None)
        self._entries.pop(key, None)
        self._unschedulable.pop(key, None)

    def move_all(self, event: ClusterEvent) -> int:
        """A cluster event happened: retry the parked pods it may help. Returns how many."""
        self._move_request_cycle = self.scheduling_cycle
        if not self._unschedulable:
            return 0
        woken = [qpi for qpi in self._unschedulable.values() if qpi.wake_on & event]
        for qpi in woken:
            self._unpark(qpi)
        if woken:
            log.debug("cluster event %s moved %d unschedulable pods", event, len(woken))
        return len(woken)

    def flush_unschedulable_leftover(self) -> int:
        """Retry pods parked longer than `max_unschedulable` (a safety net for lost events)."""
        now = self._clock()
        stale = [qpi for qpi in self._unschedulable.values()
                 if now - qpi.timestamp >= self.max_unschedulable]
        for qpi in stale:
            self._unpark(qpi)
        return len(stale)

    # --- consumer -------------------------------------------------------------------------

    async def pop(self) -> QueuedPodInfo:
        """The next pod to schedule; waits while there is none. It is then in flight."""
        while True:
            while self._active:
                entry = heapq.heappop(self._active)
                key = entry[-1]
                if self._entries.get(key) is not entry:
                    continue  # superseded or removed
                del self._entries[key]
                qpi = self._pods[key]
                self._where[key] = IN_FLIGHT
                qpi.attempts += 1
                self.scheduling_cycle += 1
                qpi.cycle = self.scheduling_cycle
                if qpi.initial_attempt is None:
                    qpi.initial_attempt = self._clock()
                return qpi
            if self._closed:
                raise QueueClosed()
            self._wakeup.clear()
            await self._wakeup.wait()

    def done(self, key: str) -> None:
        """The in-flight pod is finished with (bound, or not to be scheduled any more)."""
        if self._where.get(key) == IN_FLIGHT:
            del self._where[key]
            del self._pods[key]

    def add_unschedulable(self, qpi: QueuedPodInfo, plugins: Iterable[str]) -> None:
        """No node fits the in-flight pod; park it until an event its rejecters care about."""
        if self._where.get(qpi.key) != IN_FLIGHT:
            return  # deleted while in flight
        qpi.timestamp = self._clock()
        qpi.unschedulable_plugins = frozenset(plugins)
        wake_on = ClusterEvent.NONE
        for name in qpi.unschedulable_plugins:
            wake_on |= self._events_of(name)
        # Rejected by nothing in particular (no nodes at all): any change may help.
        qpi.wake_on = wake_on if qpi.unschedulable_plugins else ClusterEvent.ALL
        if self._move_request_cycle >= qpi.cycle:
            self._push_backoff(qpi)  # something changed while it was being scheduled
        else:
            self._where[qpi.key] = UNSCHEDULABLE
            self._unschedulable[qpi.key] = qpi

    def add_backoff(self, qpi: QueuedPodInfo, pod: PodInfo | None = None) -> None:
        """The in-flight pod failed for a transient reason (such as a failed bind): retry it
        after its backoff, with `pod` as its latest object if given."""
        if self._where.get(qpi.key) != IN_FLIGHT:
            return
        if pod is not None:
            qpi.pod = pod
        qpi.timestamp = self._clock()
        qpi.unschedulable_plugins = frozenset()
        self._push_backoff(qpi)

    def close(self) -> None:
        """Wake `pop` waiters with QueueClosed and stop the backoff timer."""
        self._closed = True
        self._wakeup.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # --- internals ------------------------------------------------------------------------

    def _push_active(self, qpi: QueuedPodInfo) -> None:
        entry = (-qpi.pod.priority, qpi.timestamp, next(self._seq), qpi.key)
        self._entries[qpi.key] = entry
        self._where[qpi.key] = ACTIVE
        heapq.heappush(self._active, entry)
        self._wakeup.set()

    def _push_backoff(self, qpi: QueuedPodInfo) -> None:
        expiry = qpi.timestamp + self.backoff_duration(qpi)
        entry = (expiry, next(self._seq), qpi.key)
        self._entries[qpi.key] = entry
        self._where[qpi.key] = BACKOFF
        heapq.heappush(self._backoff, entry)
        self._arm_timer()

    def _unpark(self, qpi: QueuedPodInfo) -> None:
        self._unschedulable.pop(qpi.key, None)
        if self.is_backing_off(qpi):
            self._push_backoff(qpi)
        else:
            self._push_active(qpi)

    def _arm_timer(self) -> None:
        """Keep one timer, set for the earliest live backoff expiry."""
        while self._backoff and self._entries.get(self._backoff[0][-1]) is not self._backoff[0]:
            heapq.heappop(self._backoff)
        if not self._backoff or self._closed:
            return
        at = self._backoff[0][0]
        if self._timer is not None and self._timer_at <= at:
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer_at = at
        self._timer = loop.call_later(max(0.0, at - self._clock()), self._flush_backoff)

    def _flush_backoff(self) -> None:
        self._timer = None
        self._timer_at = float("inf")
        # A timer may fire a hair early; treating "almost due" as due avoids re-arming a
        # zero-delay timer over and over.
        now = self._clock() + 0.001
        while self._backoff and self._backoff[0][0] <= now:
            entry = heapq.heappop(self._backoff)
            key = entry[-1]
            if self._entries.get(key) is entry:
                self._push_active(self._pods[key])
        self._arm_timer()
