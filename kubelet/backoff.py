"""Per-key exponential back-off, as upstream's `client-go/util/flowcontrol.Backoff` that the
kubelet uses for CrashLoopBackOff (10 s doubling to 5 min) and ImagePullBackOff.

The key is remembered with its current delay and when it last failed. `in_backoff_since(key,
t)` asks whether something that happened at `t` (a container's finish time) is still inside
the delay; `next(key, t)` records one more failure, doubling the delay — unless the key has
been quiet for twice the maximum, when it starts again from the initial delay (a container
that ran fine for ten minutes is not punished for an old crash loop).

Times are wall-clock seconds (the runtime reports finish times on the wall clock); the clock
is injectable for tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

CRASH_LOOP_INITIAL = 10.0
CRASH_LOOP_MAX = 300.0
IMAGE_PULL_INITIAL = 10.0
IMAGE_PULL_MAX = 300.0


@dataclass
class _Entry:
    delay: float
    last_update: float


class Backoff:
    def __init__(self, initial: float, maximum: float,
                 clock: Callable[[], float] = time.time) -> None:
        if not 0 < initial <= maximum:
            raise ValueError("back-off needs 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        self.clock = clock
        self._entries: dict[str, _Entry] = {}

    def _expired(self, event_time: float, entry: _Entry) -> bool:
        # Quiet for twice the maximum: consider the key healthy again.
        return event_time - entry.last_update > 2 * self.maximum

    def get(self, key: str) -> float:
        """The current delay of `key` (0 if it is not backing off)."""
        entry = self._entries.get(key)
        return entry.delay if entry is not None else 0.0

    def next(self, key: str, event_time: float) -> None:
        """Record a failure of `key` at `event_time`."""
        entry = self._entries.get(key)
        if entry is None or self._expired(event_time, entry):
            entry = _Entry(self.initial, 0.0)
            self._entries[key] = entry
        else:
            entry.delay = min(entry.delay * 2, self.maximum)
        entry.last_update = self.clock()

    def in_backoff_since(self, key: str, event_time: float) -> bool:
        """Whether a failure at `event_time` is still within the current delay."""
        entry = self._entries.get(key)
        if entry is None or self._expired(event_time, entry):
            return False
        return self.clock() - event_time < entry.delay

    def remaining(self, key: str, event_time: float) -> float:
        """Seconds until a failure at `event_time` leaves the delay (0 if it has)."""
        entry = self._entries.get(key)
        if entry is None or self._expired(event_time, entry):
            return 0.0
        return max(0.0, entry.delay - (self.clock() - event_time))

    def reset(self, key: str) -> None:
        self._entries.pop(key, None)

    def gc(self) -> None:
        """Forget keys quiet for twice the maximum (upstream's periodic GC)."""
        now = self.clock()
        for key in [k for k, e in self._entries.items() if now - e.last_update > 2 * self.maximum]:
            del self._entries[key]

    def forget_prefix(self, prefix: str) -> None:
        """Forget every key of one pod (keys start with its uid)."""
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]
