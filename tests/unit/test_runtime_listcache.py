"""The runtime's shared container listing: local filters as dockerd's, one request for
concurrent callers, never a listing older than our own last change."""

from __future__ import annotations

import asyncio

import pytest

from kubelet.runtime.listcache import ContainerListCache, matches

A = {"Id": "abc123", "State": "running", "Labels": {"type": "sandbox", "node": "n1"}}
B = {"Id": "def456", "State": "exited", "Labels": {"type": "container", "node": "n1",
                                                    "sandbox": "abc123"}}


def test_matches_like_docker_filters() -> None:
    assert matches(A, ["type=sandbox", "node=n1"])
    assert not matches(A, ["type=container"])
    assert matches(A, ["type"]) and not matches(A, ["missing"])
    assert matches(B, ids=["def"]) and not matches(B, ids=["abc"])
    assert matches(B, states=["exited", "created"]) and not matches(B, states=["running"])
    assert matches(B)


class Docker:
    def __init__(self) -> None:
        self.items = [A]
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def list(self) -> list[dict]:
        self.calls += 1
        snapshot = list(self.items)
        if self.gate is not None:
            await self.gate.wait()
        return snapshot


async def test_concurrent_callers_share_one_request() -> None:
    docker = Docker()
    docker.gate = asyncio.Event()
    cache = ContainerListCache(docker.list, ttl=10)
    tasks = [asyncio.create_task(cache.matching(["type=sandbox"])) for _ in range(5)]
    await asyncio.sleep(0)
    docker.gate.set()
    results = await asyncio.gather(*tasks)
    assert docker.calls == 1
    assert all(r == [A] for r in results)
    assert await cache.matching() == [A] and docker.calls == 1  # within ttl


async def test_change_forces_a_fresh_listing() -> None:
    docker = Docker()
    cache = ContainerListCache(docker.list, ttl=10)
    assert await cache.matching() == [A]
    docker.items = [A, B]
    cache.invalidate()
    assert await cache.matching() == [A, B]
    assert docker.calls == 2


async def test_listing_started_before_a_change_is_not_reused() -> None:
    docker = Docker()
    docker.gate = asyncio.Event()
    cache = ContainerListCache(docker.list, ttl=10)
    early = asyncio.create_task(cache.matching())
    await asyncio.sleep(0)
    docker.items = [A, B]  # created while the first listing is in flight...
    cache.invalidate()     # ...and reported
    docker.gate.set()
    assert await early == [A]
    assert await cache.matching() == [A, B]
    assert docker.calls == 2


async def test_expires_after_ttl() -> None:
    docker = Docker()
    cache = ContainerListCache(docker.list, ttl=0.05)
    await cache.matching()
    docker.items = [B]
    await asyncio.sleep(0.08)
    assert await cache.matching() == [B]


async def test_errors_reach_every_caller_and_are_not_cached() -> None:
    calls = 0

    async def failing() -> list[dict]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise ConnectionError("dockerd went away")

    cache = ContainerListCache(failing, ttl=10)
    results = await asyncio.gather(cache.matching(), cache.matching(), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    with pytest.raises(ConnectionError):
        await cache.matching()
    assert calls == 2
