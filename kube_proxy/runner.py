"""When to sync: soon after a change (bursts coalesced), never more often than the minimum
interval, a full sync every period, and a retry after a failure.

Like upstream's BoundedFrequencyRunner, but a change is applied after a short coalescing
delay instead of only at the next interval, which keeps "endpoint changed" to "rules
applied" well under a second while a burst of events (a rollout) costs one sync.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("kube_proxy.runner")

COALESCE_DELAY = 0.01  # seconds to wait for more events of the same burst
RETRY_DELAY = 1.0  # after a failed sync (the retry is a full sync)

SyncFunc = Callable[[bool], Awaitable[None]]  # sync(full); raises on failure


class SyncRunner:
    def __init__(self, sync: SyncFunc, *, period: float, min_interval: float = 0.0,
                 coalesce: float = COALESCE_DELAY, retry: float = RETRY_DELAY) -> None:
        self._sync = sync
        self.period = period
        self.min_interval = min_interval
        self.coalesce = coalesce
        self.retry = retry
        self._wanted = asyncio.Event()
        self._full = True  # the first sync is full
        self._last_start: float | None = None
        self._last_full: float | None = None
        self._retry_handle: asyncio.TimerHandle | None = None
        self.syncs = 0
        self.failures = 0

    def request(self) -> None:
        """Something changed: sync soon (partial)."""
        self._wanted.set()

    def request_full(self) -> None:
        self._full = True
        self._wanted.set()

    async def run(self) -> None:
        try:
            await self._loop()
        finally:
            if self._retry_handle is not None:
                self._retry_handle.cancel()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        self._wanted.set()
        while True:
            timeout = None
            if self.period > 0 and self._last_full is not None:
                # Measured from the last full sync, so a stream of changes cannot starve it.
                timeout = max(0.0, self._last_full + self.period - loop.time())
            try:
                await asyncio.wait_for(self._wanted.wait(), timeout)
                await asyncio.sleep(self.coalesce)
            except TimeoutError:
                pass
            if self.period > 0 and self._last_full is not None and \
                    loop.time() - self._last_full >= self.period:
                self._full = True
            if self._last_start is not None and self.min_interval > 0:
                wait = self._last_start + self.min_interval - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            self._wanted.clear()
            full, self._full = self._full, False
            started = self._last_start = loop.time()
            try:
                await self._sync(full)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.failures += 1
                log.error("sync failed, retrying in %.1fs with a full sync: %s", self.retry, e)
                log.debug("sync failure", exc_info=True)
                self._full = True
                self._retry_handle = loop.call_later(self.retry, self._wanted.set)
                continue
            self.syncs += 1
            if full:
                self._last_full = started
