"""WorkQueue: client-go semantics (dedup, one worker per key, delays, rate limits, shutdown)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import pytest

from client.workqueue import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    ShutDown,
    WorkQueue,
    default_controller_rate_limiter,
    run_workers,
)


async def _not_ready(aw: asyncio.Task[str], wait: float = 0.02) -> bool:
    await asyncio.sleep(wait)
    return not aw.done()


async def test_add_deduplicates_and_keeps_order() -> None:
    q: WorkQueue[str] = WorkQueue("t")
    for key in ("a", "b", "a", "c", "b"):
        q.add(key)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]


async def test_key_being_processed_is_not_handed_out_again() -> None:
    q: WorkQueue[str] = WorkQueue("t")
    q.add("a")
    assert await q.get() == "a"
    q.add("a")
    q.add("a")
    assert len(q) == 0  # dirty, but parked until done()
    second = asyncio.create_task(q.get())
    assert await _not_ready(second)
    q.done("a")
    assert await asyncio.wait_for(second, 1) == "a"
    q.done("a")
    assert len(q) == 0


async def test_done_without_readd_does_not_requeue() -> None:
    q: WorkQueue[str] = WorkQueue("t")
    q.add("a")
    await q.get()
    q.done("a")
    assert len(q) == 0


async def test_cancelled_getter_passes_its_wakeup_on() -> None:
    q: WorkQueue[str] = WorkQueue("t")
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0)  # both are waiting now
    q.add("a")  # wakes `first` ...
    first.cancel()  # ... which is cancelled before it can run
    assert await asyncio.wait_for(second, 1) == "a"
    assert first.cancelled()


async def test_add_after_delays_and_earliest_wins() -> None:
    q: WorkQueue[str] = WorkQueue("t")
    loop = asyncio.get_running_loop()
    started = loop.time()
    q.add_after("a", 5.0)
    q.add_after("a", 0.05)  # earlier: replaces the pending 5 s timer
    q.add_after("b", 0.05)
    q.add_after("b", 5.0)  # later: ignored, the 50 ms timer stays
    q.add_after("now", 0)
    assert len(q) == 1
    assert await q.get() == "now"
    got = {await asyncio.wait_for(q.get(), 1), await asyncio.wait_for(q.get(), 1)}
    assert got == {"a", "b"}
    assert 0.04 <= loop.time() - started < 1.0
    q.shut_down()


def test_item_exponential_backoff_grows_and_caps() -> None:
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(
        0.005, 0.1)
    delays = [limiter.when("a") for _ in range(7)]
    assert delays == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08, 0.1, 0.1])
    assert limiter.when("b") == pytest.approx(0.005)  # per item
    assert limiter.num_requeues("a") == 7
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == pytest.approx(0.005)
    for _ in range(2000):  # far past float range for 2**n: still the cap
        limiter.when("c")
    assert limiter.when("c") == 0.1


def test_bucket_limits_overall_rate() -> None:
    now = [100.0]
    bucket: BucketRateLimiter[str] = BucketRateLimiter(qps=2.0, burst=2, clock=lambda: now[0])
    assert [bucket.when(k) for k in "abcd"] == pytest.approx([0.0, 0.0, 0.5, 1.0])
    now[0] += 10.0  # the bucket refills, but never beyond burst
    assert [bucket.when(k) for k in "abc"] == pytest.approx([0.0, 0.0, 0.5])


def test_max_of_limiters_and_default() -> None:
    now = [0.0]
    limiter: MaxOfRateLimiter[str] = MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(0.005, 1000.0),
        BucketRateLimiter(qps=1.0, burst=1, clock=lambda: now[0]))
    assert limiter.when("a") == pytest.approx(0.005)  # bucket has a token: item delay wins
    assert limiter.when("a") == pytest.approx(1.0)  # bucket empty: bucket delay wins
    assert limiter.num_requeues("a") == 2
    default = default_controller_rate_limiter()
    assert [default.when("x") for _ in range(3)] == pytest.approx([0.005, 0.01, 0.02])


async def test_add_rate_limited_backs_off_per_key() -> None:
    q: WorkQueue[str] = WorkQueue("t", ItemExponentialFailureRateLimiter(0.02, 1.0))
    loop = asyncio.get_running_loop()
    waits = []
    for _ in range(3):
        started = loop.time()
        q.add_rate_limited("a")
        assert len(q) == 0
        key = await asyncio.wait_for(q.get(), 1)
        waits.append(loop.time() - started)
        q.done(key)
    assert q.num_requeues("a") == 3
    assert waits[0] >= 0.015 and waits[1] >= 0.035 and waits[2] >= 0.075
    q.forget("a")
    assert q.num_requeues("a") == 0


async def test_shutdown_drains_queue_then_raises_and_ignores_adds() -> None:
    q: WorkQueue[str] = WorkQueue("t")
    q.add("a")
    q.add_after("later", 0.01)
    q.shut_down()
    q.add("b")
    q.add_rate_limited("c")
    assert await q.get() == "a"  # queued before shutdown: still handed out
    with pytest.raises(ShutDown):
        await q.get()
    await asyncio.sleep(0.03)
    assert len(q) == 0  # the pending timer was cancelled


async def test_shutdown_wakes_waiting_getters() -> None:
    q: WorkQueue[str] = WorkQueue("t")
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    q.shut_down()
    for task in getters:
        with pytest.raises(ShutDown):
            await asyncio.wait_for(task, 1)


async def test_shut_down_with_drain_waits_for_processing() -> None:
    q: WorkQueue[str] = WorkQueue("t")
    q.add("a")
    key = await q.get()
    drained = asyncio.create_task(q.shut_down_with_drain())
    await asyncio.sleep(0.01)
    assert not drained.done()
    q.done(key)
    await asyncio.wait_for(drained, 1)


async def test_workers_never_sync_one_key_concurrently() -> None:
    q: WorkQueue[str] = WorkQueue("t")
    active: set[str] = set()
    overlaps: list[str] = []
    synced: Counter[str] = Counter()

    async def sync(key: str) -> None:
        if key in active:
            overlaps.append(key)
        active.add(key)
        if synced[key] == 0:
            q.add(key)  # re-added while processing: must run again, after this one
        await asyncio.sleep(0.005)
        synced[key] += 1
        active.discard(key)

    for key in "abcd":
        q.add(key)
    workers = asyncio.create_task(run_workers(q, sync, 4, "test"), name="test-workers")
    for _ in range(5):
        for key in "abcd":
            q.add(key)
        await asyncio.sleep(0.002)
    await asyncio.wait_for(q.shut_down_with_drain(), 2)
    await asyncio.wait_for(workers, 1)
    assert overlaps == []
    assert all(synced[key] >= 2 for key in "abcd")


async def test_run_workers_retries_failures_and_forgets_successes() -> None:
    q: WorkQueue[str] = WorkQueue("t", ItemExponentialFailureRateLimiter(0.001, 0.01))
    attempts: Counter[str] = Counter()
    succeeded = asyncio.Event()

    async def sync(key: str) -> None:
        attempts[key] += 1
        if attempts[key] < 3:
            raise RuntimeError("transient")
        succeeded.set()

    q.add("ns/web")
    workers = asyncio.create_task(run_workers(q, sync, 2, "retry"), name="retry-workers")
    await asyncio.wait_for(succeeded.wait(), 1)
    await asyncio.sleep(0)
    assert attempts["ns/web"] == 3
    assert q.num_requeues("ns/web") == 0  # forgotten after success
    workers.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await workers
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("retry-worker")]


async def test_run_workers_names_tasks_and_cancels_cleanly() -> None:
    q: WorkQueue[str] = WorkQueue("t")
    blocked = asyncio.Event()

    async def sync(_: str) -> None:
        blocked.set()
        await asyncio.sleep(30)

    q.add("a")
    workers = asyncio.create_task(run_workers(q, sync, 3, "named"), name="named-workers")
    await asyncio.wait_for(blocked.wait(), 1)
    names = sorted(t.get_name() for t in asyncio.all_tasks() if "named-worker-" in t.get_name())
    assert names == ["named-worker-0", "named-worker-1", "named-worker-2"]
    workers.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(workers, 1)
    q.add("a")  # `done` ran for the cancelled sync, so the key is queued again
    assert len(q) == 1
