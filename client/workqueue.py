"""A work queue of object keys with client-go's semantics (`util/workqueue`).

- `add` de-duplicates: a key waiting in the queue is queued once however often it is added.
- A key handed out by `get` is "processing" until `done`; it is never handed to a second
  worker meanwhile. Adding it while it is processing marks it dirty, and `done` re-queues it,
  so the latest change is always seen by one more sync.
- `add_after` delays an add (one timer per key, the earliest wins); `add_rate_limited` delays
  by the rate limiter: per-key exponential backoff combined with an overall token bucket.
- After `shut_down`, adds are ignored, keys already queued are still handed out, and `get`
  raises `ShutDown` once the queue is empty.

All methods must be called from the event loop's thread (asyncio, not threads).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)


class ShutDown(Exception):
    """Raised by `WorkQueue.get` once the queue is shut down and drained."""


class RateLimiter(Protocol[K_contra]):
    """How long to wait before retrying an item (client-go `workqueue.RateLimiter`)."""

    def when(self, item: K_contra) -> float:
        """Record one more failure of `item` and return the delay in seconds."""
        ...

    def forget(self, item: K_contra) -> None:
        """Stop tracking `item` (it succeeded)."""
        ...

    def num_requeues(self, item: K_contra) -> int:
        ...


class ItemExponentialFailureRateLimiter(Generic[K]):
    """base * 2^failures per item, capped: 5 ms, 10 ms, 20 ms, ... up to 1000 s by default."""

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[K, int] = {}

    def when(self, item: K) -> float:
        exp = self._failures.get(item, 0)
        self._failures[item] = exp + 1
        if exp >= 64:  # 2**64 * base is far beyond any sane cap; avoid float overflow
            return self.max_delay
        return min(self.max_delay, self.base_delay * 2.0 ** exp)

    def forget(self, item: K) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: K) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter(Generic[K]):
    """An overall token bucket (qps, burst) shared by all items, like golang.org/x/time/rate.

    Each `when` reserves a token; once the bucket is empty, reservations queue up behind
    each other, so a retry storm over many keys is spread out at `qps`.
    """

    def __init__(self, qps: float = 10.0, burst: int = 100,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def when(self, item: K) -> float:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, item: K) -> None:
        """Nothing to forget: the bucket is shared, not per item."""

    def num_requeues(self, item: K) -> int:
        return 0


class MaxOfRateLimiter(Generic[K]):
    """The longest delay of several limiters (every limiter records every failure)."""

    def __init__(self, *limiters: RateLimiter[K]) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self.limiters = limiters

    def when(self, item: K) -> float:
        return max([limiter.when(item) for limiter in self.limiters])

    def forget(self, item: K) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: K) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)


def default_controller_rate_limiter() -> MaxOfRateLimiter[Any]:
    """client-go's DefaultControllerRateLimiter: per-item 5 ms..1000 s, overall 10 qps/100."""
    return MaxOfRateLimiter(ItemExponentialFailureRateLimiter(0.005, 1000.0),
                            BucketRateLimiter(10.0, 100))


class WorkQueue(Generic[K]):
    """De-duplicating, delaying, rate-limited queue of keys for a controller's workers."""

    def __init__(self, name: str = "", rate_limiter: RateLimiter[K] | None = None) -> None:
        self.name = name
        self.rate_limiter: RateLimiter[K] = rate_limiter or default_controller_rate_limiter()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()  # queued, or added again while processing
        self._processing: set[K] = set()
        self._getters: deque[asyncio.Future[None]] = deque()
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._timers: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._shutting_down = False

    def __len__(self) -> int:
        """Keys waiting to be handed out (not counting processing or delayed ones)."""
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def add(self, item: K) -> None:
        if self._shutting_down or item in self._dirty:
            return
        self._dirty.add(item)
        if item in self._processing:
            return  # `done` re-queues it, so two workers never hold the same key
        self._queue.append(item)
        self._wake_one()

    async def get(self) -> K:
        """The next key; the caller must call `done(key)` when finished with it."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            waiter = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                # We were woken and cancelled at once: pass the wake-up on, or a key could
                # sit in the queue while other workers sleep.
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()
                raise
            finally:
                if waiter in self._getters:
                    self._getters.remove(waiter)
        item = self._queue.popleft()
        self._processing.add(item)
        self._dirty.discard(item)
        return item

    def done(self, item: K) -> None:
        self._processing.discard(item)
        if item in self._dirty:
            self._queue.append(item)
            self._wake_one()
        elif not self._processing and not self._queue:
            self._notify_drained()

    def shut_down(self) -> None:
        """Stop accepting keys; waiting getters raise `ShutDown` once the queue is empty."""
        self._shutting_down = True
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        if not self._processing and not self._queue:
            self._notify_drained()

    async def shut_down_with_drain(self) -> None:
        """Shut down, then wait until every queued and processing key is done."""
        self.shut_down()
        if self._processing or self._queue:
            waiter = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(waiter)
            await waiter

    def add_after(self, item: K, delay: float) -> None:
        """Add `item` after `delay` seconds; a pending earlier add for it is kept."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(item)
            return
        loop = asyncio.get_running_loop()
        ready_at = loop.time() + delay
        pending = self._timers.get(item)
        if pending is not None:
            if pending[0] <= ready_at:
                return
            pending[1].cancel()
        self._timers[item] = (ready_at, loop.call_later(delay, self._fire, item))

    def add_rate_limited(self, item: K) -> None:
        """Re-add after the rate limiter's delay for one more failure of `item`."""
        if self._shutting_down:
            return
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: K) -> None:
        """The item succeeded: reset its failure backoff."""
        self.rate_limiter.forget(item)

    def num_requeues(self, item: K) -> int:
        return self.rate_limiter.num_requeues(item)

    def _fire(self, item: K) -> None:
        self._timers.pop(item, None)
        self.add(item)

    def _wake_one(self) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _notify_drained(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


async def run_workers(queue: WorkQueue[K], sync: Callable[[K], Awaitable[None]],
                      workers: int, name: str) -> None:
    """Run `workers` tasks doing get → sync → forget/requeue → done until shutdown.

    A failed sync is logged with its key and retried through the rate limiter; a successful
    one resets the key's backoff. Returns once the queue is shut down and drained; cancelling
    this coroutine cancels every worker and waits for them.
    """
    async with asyncio.TaskGroup() as group:
        for i in range(workers):
            group.create_task(_worker(queue, sync, name), name=f"{name}-worker-{i}")


async def _worker(queue: WorkQueue[K], sync: Callable[[K], Awaitable[None]], name: str) -> None:
    while True:
        try:
            key = await queue.get()
        except ShutDown:
            return
        try:
            await sync(key)
        except Exception:
            log.exception("sync failed queue=%s key=%s requeues=%d", name, key,
                          queue.num_requeues(key))
            queue.add_rate_limited(key)
        else:
            queue.forget(key)
        finally:
            queue.done(key)
        # A sync that never suspends and re-adds its own key must not starve the loop.
        await asyncio.sleep(0)
