"""The one wait helper of the test suites: poll a condition until it holds, never sleep on
a guess. New tests use this; older modules' local copies move here as they are touched."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20.0,
                     what: str = "condition", interval: float = 0.05) -> Any:
    """Await `check()` until it returns something truthy and return that; exceptions count
    as not yet. Fails with the last value (or exception) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await check()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - a failing probe is "not yet"
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                 f"last={last!r}")
        await asyncio.sleep(interval)


def eventually_sync(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition",
                    interval: float = 0.05) -> Any:
    """`eventually` for plain functions (subprocesses, kubectl)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
            if last:
                return last
        except Exception as e:  # noqa: BLE001
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                 f"last={last!r}")
        time.sleep(interval)
