"""Endpoint choice for the userspace proxier: round-robin, with ClientIP session affinity.

Like upstream's userspace round-robin load balancer: each service port cycles through its
endpoints; with affinity a client IP keeps its endpoint while it keeps coming back within
the timeout and the endpoint stays. Updating the endpoints keeps the affinities of the
endpoints that remain. Pure (the clock is injected), so it is unit-tested directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K")


@dataclass
class _Affinity:
    address: str
    last_used: float


@dataclass
class _State:
    endpoints: list[tuple[str, int]] = field(default_factory=list)
    next_index: int = 0
    affinity_timeout: float | None = None
    affinity: dict[str, _Affinity] = field(default_factory=dict)


def _address(ep: tuple[str, int]) -> str:
    return f"{ep[0]}:{ep[1]}"


class LoadBalancer(Generic[K]):
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._services: dict[K, _State] = {}

    def update(self, key: K, endpoints: Sequence[tuple[str, int]],
               affinity_timeout: float | None = None) -> None:
        state = self._services.setdefault(key, _State())
        state.endpoints = list(endpoints)
        if state.endpoints:
            state.next_index %= len(state.endpoints)
        else:
            state.next_index = 0
        state.affinity_timeout = affinity_timeout
        if affinity_timeout is None:
            state.affinity.clear()
        else:
            remaining = {_address(ep) for ep in state.endpoints}
            state.affinity = {ip: a for ip, a in state.affinity.items()
                              if a.address in remaining}

    def remove(self, key: K) -> None:
        self._services.pop(key, None)

    def keys(self) -> list[K]:
        return list(self._services)

    def endpoints(self, key: K) -> list[tuple[str, int]]:
        state = self._services.get(key)
        return list(state.endpoints) if state else []

    def pick(self, key: K, client_ip: str,
             exclude: Collection[tuple[str, int]] = ()) -> tuple[str, int] | None:
        """The endpoint for a new connection from `client_ip`, or None when there is none
        (outside `exclude`: endpoints that already failed for this connection)."""
        state = self._services.get(key)
        if state is None:
            return None
        candidates = [ep for ep in state.endpoints if ep not in exclude]
        if not candidates:
            return None
        now = self._clock()
        if state.affinity_timeout is not None:
            sticky = state.affinity.get(client_ip)
            if sticky is not None and now - sticky.last_used <= state.affinity_timeout:
                for ep in candidates:
                    if _address(ep) == sticky.address:
                        sticky.last_used = now
                        return ep
        chosen = None
        for _ in range(len(state.endpoints)):
            ep = state.endpoints[state.next_index]
            state.next_index = (state.next_index + 1) % len(state.endpoints)
            if ep not in exclude:
                chosen = ep
                break
        assert chosen is not None
        if state.affinity_timeout is not None:
            state.affinity[client_ip] = _Affinity(_address(chosen), now)
        return chosen
