"""Exponential backoff and jitter, shaped like apimachinery's `wait.Backoff` and `wait.Jitter`.

Shared by request retries (rest.py), the reflector (informer.py) and leader election, so
every loop in a component backs off the same way.
"""

from __future__ import annotations

import random


def jittered(duration: float, max_factor: float, rng: random.Random | None = None) -> float:
    """`duration` plus a random extra of up to `max_factor * duration` (wait.Jitter).

    Jitter spreads out clients that failed together so they do not retry in lockstep.
    """
    if max_factor <= 0:
        return duration
    return duration + (rng or random).random() * max_factor * duration


class Backoff:
    """Delays that grow by `factor` from `initial` up to `cap`, each with optional jitter.

    Not shared between loops: each loop owns one and calls `reset()` after a success.
    """

    def __init__(self, initial: float, cap: float, factor: float = 2.0, jitter: float = 0.0,
                 rng: random.Random | None = None) -> None:
        if initial <= 0 or cap < initial or factor < 1:
            raise ValueError("backoff needs 0 < initial <= cap and factor >= 1")
        self.initial = initial
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self._rng = rng
        self._current = initial
        self.failures = 0

    def next(self) -> float:
        """The delay to wait after one more failure."""
        delay = self._current
        self._current = min(self.cap, self._current * self.factor)
        self.failures += 1
        return jittered(delay, self.jitter, self._rng)

    def reset(self) -> None:
        self._current = self.initial
        self.failures = 0
