"""The scheduling queue: ordering, backoff, parking until a relevant event, no hot loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from scheduler.framework import ClusterEvent
from scheduler.queue import (
    ACTIVE,
    BACKOFF,
    IN_FLIGHT,
    UNSCHEDULABLE,
    QueueClosed,
    QueuedPodInfo,
    SchedulingQueue,
    backoff_duration,
)
from scheduler.types import PodInfo
from tests.unit.test_scheduler_plugins import make_pod

EVENTS = {
    "NodeResourcesFit": ClusterEvent.NODE_ADD | ClusterEvent.NODE_ALLOCATABLE
    | ClusterEvent.ASSIGNED_POD_DELETE,
    "TaintToleration": ClusterEvent.NODE_ADD | ClusterEvent.NODE_TAINT,
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pod(name: str, priority: int = 0, **kwargs: Any) -> PodInfo:
    return PodInfo(make_pod(name, priority=priority, **kwargs))


def queue(clock: FakeClock | None = None, **kwargs: Any) -> SchedulingQueue:
    events = lambda name: EVENTS.get(name, ClusterEvent.ALL)
    if clock is None:
        return SchedulingQueue(events, **kwargs)
    return SchedulingQueue(events, clock=clock, **kwargs)


async def pop(q: SchedulingQueue, timeout: float = 1.0) -> QueuedPodInfo:
    return await asyncio.wait_for(q.pop(), timeout)


async def nothing_to_pop(q: SchedulingQueue, wait: float = 0.05) -> bool:
    try:
        await asyncio.wait_for(q.pop(), wait)
    except TimeoutError:
        return True
    return False


def test_backoff_doubles_from_one_to_ten_seconds() -> None:
    assert [backoff_duration(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert backoff_duration(100) == 10


async def test_active_queue_orders_by_priority_then_age() -> None:
    clock = FakeClock()
    q = queue(clock)
    for name, priority in (("low-old", 0), ("high", 10), ("low-new", 0), ("mid", 5)):
        q.add(pod(name, priority))
        clock.now += 1
    assert [(await pop(q)).pod.name for _ in range(4)] == ["high", "mid", "low-old", "low-new"]


async def test_adding_twice_keeps_one_entry_and_pop_waits() -> None:
    q = queue()
    q.add(pod("a"))
    q.add(pod("a"))
    first = await pop(q)
    assert first.key == "default/a" and first.attempts == 1
    assert q.where("default/a") == IN_FLIGHT
    assert await nothing_to_pop(q)
    q.done("default/a")
    assert "default/a" not in q


async def test_unschedulable_pod_is_parked_until_a_relevant_event() -> None:
    clock = FakeClock()
    q = queue(clock)
    q.add(pod("p"))
    qpi = await pop(q)
    q.add_unschedulable(qpi, {"NodeResourcesFit"})
    assert q.where("default/p") == UNSCHEDULABLE
    # No hot loop: nothing to do however long we wait.
    clock.now += 60
    assert await nothing_to_pop(q)
    # Events its rejecting plugin does not care about leave it parked.
    assert q.move_all(ClusterEvent.NODE_TAINT | ClusterEvent.NODE_LABEL) == 0
    assert q.move_all(ClusterEvent.ASSIGNED_POD_ADD) == 0
    assert q.where("default/p") == UNSCHEDULABLE
    # A new node may fit it: retried (backoff long over, so straight to active).
    assert q.move_all(ClusterEvent.NODE_ADD) == 1
    again = await pop(q)
    assert again is qpi and again.attempts == 2


async def test_event_storm_retries_a_pod_at_most_once_per_backoff() -> None:
    q = queue(initial_backoff=0.2, max_backoff=0.2)
    q.add(pod("p"))
    attempts = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 0.7

    async def storm() -> None:
        while loop.time() < deadline:
            q.move_all(ClusterEvent.NODE_ADD)
            await asyncio.sleep(0.005)

    stormer = asyncio.create_task(storm())
    try:
        while loop.time() < deadline:
            try:
                qpi = await asyncio.wait_for(q.pop(), deadline - loop.time())
            except TimeoutError:
                break
            attempts += 1
            q.add_unschedulable(qpi, {"NodeResourcesFit"})
    finally:
        await stormer
    # One attempt at once, then one per 0.2 s backoff: 4 or so in 0.7 s, never hundreds.
    assert 2 <= attempts <= 5


async def test_woken_pod_still_backing_off_waits_in_the_backoff_queue() -> None:
    q = queue(initial_backoff=0.1, max_backoff=1.0)
    q.add(pod("p"))
    qpi = await pop(q)
    q.add_unschedulable(qpi, {"TaintToleration"})
    q.move_all(ClusterEvent.NODE_TAINT)
    assert q.where("default/p") == BACKOFF
    assert await nothing_to_pop(q, 0.03)
    assert (await pop(q, 0.5)) is qpi  # the timer moves it once its 0.1 s are over


async def test_pod_rejected_by_no_plugin_wakes_on_any_event() -> None:
    clock = FakeClock()
    q = queue(clock)
    q.add(pod("p"))
    qpi = await pop(q)
    q.add_unschedulable(qpi, set())  # e.g. there were no nodes at all
    clock.now += 5
    assert q.move_all(ClusterEvent.NODE_LABEL) == 1
    assert q.where("default/p") == ACTIVE


async def test_event_while_in_flight_sends_the_failure_to_backoff_not_parking() -> None:
    clock = FakeClock()
    q = queue(clock)
    q.add(pod("p"))
    qpi = await pop(q)
    q.move_all(ClusterEvent.NODE_ADD)  # arrives while the pod is being scheduled
    q.add_unschedulable(qpi, {"NodeResourcesFit"})
    assert q.where("default/p") == BACKOFF


async def test_errors_go_to_backoff_with_the_latest_object() -> None:
    q = queue(initial_backoff=0.05)
    q.add(pod("p"))
    qpi = await pop(q)
    newer = pod("p", labels={"v": "2"})
    q.add_backoff(qpi, newer)
    assert q.where("default/p") == BACKOFF
    again = await pop(q, 0.5)
    assert again.pod is newer and again.attempts == 2


async def test_update_of_parked_pod_retries_only_when_spec_or_labels_change() -> None:
    clock = FakeClock()
    q = queue(clock)
    original = make_pod("p")
    q.add(PodInfo(original))
    qpi = await pop(q)
    q.add_unschedulable(qpi, {"TaintToleration"})
    clock.now += 30
    # The scheduler's own status write (PodScheduled=False) must not wake it.
    status_only = {**original, "metadata": {**original["metadata"], "resourceVersion": "9"},
                   "status": {"conditions": [{"type": "PodScheduled", "status": "False"}]}}
    q.update(PodInfo(status_only))
    assert q.where("default/p") == UNSCHEDULABLE
    tolerant = {**original, "spec": {**original["spec"], "tolerations": [
        {"operator": "Exists"}]}}
    q.update(PodInfo(tolerant))
    assert q.where("default/p") == ACTIVE
    assert (await pop(q)).pod.tolerations == [{"operator": "Exists"}]


async def test_delete_removes_the_pod_wherever_it_is() -> None:
    q = queue()
    q.add(pod("a"))
    q.add(pod("b"))
    q.delete("default/a")
    assert (await pop(q)).key == "default/b"
    q.delete("default/b")  # in flight: a later failure report is ignored
    q.add_unschedulable(QueuedPodInfo(pod("b"), 0.0), {"NodeResourcesFit"})
    assert len(q) == 0


async def test_leftover_unschedulable_pods_are_retried_after_five_minutes() -> None:
    clock = FakeClock()
    q = queue(clock)
    q.add(pod("p"))
    q.add_unschedulable(await pop(q), {"NodeResourcesFit"})
    clock.now += 299
    assert q.flush_unschedulable_leftover() == 0
    clock.now += 2
    assert q.flush_unschedulable_leftover() == 1
    assert q.where("default/p") == ACTIVE


async def test_close_wakes_waiters() -> None:
    q = queue()
    waiter = asyncio.create_task(q.pop())
    await asyncio.sleep(0)
    q.close()
    with pytest.raises(QueueClosed):
        await asyncio.wait_for(waiter, 1)


async def test_counts() -> None:
    q = queue()
    for name in ("a", "b", "c"):
        q.add(pod(name))
    a = await pop(q)
    b = await pop(q)
    q.add_unschedulable(a, {"NodeResourcesFit"})
    assert q.counts() == {ACTIVE: 1, BACKOFF: 0, UNSCHEDULABLE: 1, IN_FLIGHT: 1}
    q.done(b.key)
    assert len(q) == 2
