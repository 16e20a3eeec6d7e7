"""One shared, very short-lived listing of the runtime's Docker containers.

The kubelet lists sandboxes and containers for every pod sync and for every relist, and
dockerd's `GET /containers/json` walks all containers each time: while 30 pods start, these
lists were the largest part of dockerd's CPU per pod. The runtime instead asks dockerd for
all of its own containers at most once per `ttl` (0.1 s), shares one request between
concurrent callers, and filters locally.

A listing never hides our own changes: the Docker client reports every successful
create/start/stop/kill/remove, which starts a new generation, and only a listing fetched
after the last change is reused. Changes made outside the runtime (a container exiting on
its own) show within `ttl`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

Obj = dict[str, Any]


def matches(container: Mapping[str, Any], labels: Iterable[str] = (),
            ids: Iterable[str] = (), states: Iterable[str] = ()) -> bool:
    """Docker's list filters, applied locally: every `key=value` (or bare `key`) label, any
    of the ID prefixes, any of the states."""
    have = container.get("Labels") or {}
    for selector in labels:
        key, sep, value = selector.partition("=")
        if key not in have or (sep and have[key] != value):
            return False
    ids = list(ids)
    if ids and not any(str(container.get("Id", "")).startswith(i) for i in ids):
        return False
    states = list(states)
    return not states or container.get("State") in states


class ContainerListCache:
    def __init__(self, fetch: Callable[[], Awaitable[list[Obj]]], *, ttl: float = 0.1) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._generation = 0
        self._cached: tuple[int, float, list[Obj]] | None = None
        self._inflight: tuple[int, asyncio.Future[list[Obj]]] | None = None

    def invalidate(self) -> None:
        self._generation += 1
        self._cached = None

    async def matching(self, labels: Iterable[str] = (), ids: Iterable[str] = (),
                       states: Iterable[str] = ()) -> list[Obj]:
        labels, ids, states = list(labels), list(ids), list(states)
        return [c for c in await self._all() if matches(c, labels, ids, states)]

    async def _all(self) -> list[Obj]:
        gen = self._generation
        cached = self._cached
        if cached is not None and cached[0] == gen and time.monotonic() - cached[1] < self._ttl:
            return cached[2]
        inflight = self._inflight
        if inflight is not None and inflight[0] == gen and not inflight[1].done():
            try:
                return await asyncio.shield(inflight[1])
            except asyncio.CancelledError:
                if not inflight[1].cancelled():
                    raise  # we were cancelled, not the request we joined
            # the caller that fetched was cancelled: fetch ourselves
        future: asyncio.Future[list[Obj]] = asyncio.get_running_loop().create_future()
        self._inflight = (gen, future)
        started = time.monotonic()
        try:
            items = await self._fetch()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # joined callers see it; nobody else has to
            raise
        future.set_result(items)
        if self._generation == gen:
            self._cached = (gen, started, items)
        return items
