"""The parts of the abuse bounds that need no server: lease sharing, proxyable addresses,
which requests count against the in-flight limits."""

from __future__ import annotations

from typing import Any

import pytest

from api import errors
from apiserver.auth.requestinfo import request_info
from apiserver.httpproxy import check_proxyable
from apiserver.inflight import InflightLimits, Slots, is_long_running
from apiserver.options import ApiServerOptions, parse_args
from apiserver.storage.etcd3 import LeaseManager


class FakeEtcd:
    def __init__(self) -> None:
        self.granted: list[int] = []

    async def lease_grant(self, ttl: int) -> int:
        self.granted.append(ttl)
        return len(self.granted)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_leases_are_shared_within_the_reuse_window() -> None:
    etcd, clock = FakeEtcd(), Clock()
    leases = LeaseManager(etcd, clock=clock)  # type: ignore[arg-type]
    first = await leases.get(3600)
    assert etcd.granted == [3600 + 60]  # the window (5% of an hour, capped at 60 s) added
    clock.now += 59
    assert await leases.get(3600) == first  # still outlives the TTL
    clock.now += 2
    assert await leases.get(3600) != first  # would expire before this object's TTL
    assert etcd.granted == [3660, 3660]


async def test_short_ttls_get_their_own_lease_and_the_count_is_bounded() -> None:
    etcd, clock = FakeEtcd(), Clock()
    short = LeaseManager(etcd, clock=clock)  # type: ignore[arg-type]
    await short.get(5)
    await short.get(5)
    assert etcd.granted == [5, 5]  # 5% of 5 s rounds to no window
    etcd2 = FakeEtcd()
    few = LeaseManager(etcd2, clock=clock, max_objects=3)  # type: ignore[arg-type]
    ids = []
    for _ in range(7):
        clock.now += 0.01
        ids.append(await few.get(3600))
    assert ids == [1, 1, 1, 2, 2, 2, 3]


@pytest.mark.parametrize("address", ["127.0.0.1", "127.1.2.3", "::1", "169.254.169.254",
                                     "fe80::1", "0.0.0.0", "::", "224.0.0.1",
                                     "255.255.255.255", "::ffff:127.0.0.1", "not-an-ip"])
def test_unproxyable_addresses(address: str) -> None:
    with pytest.raises(errors.BadRequest, match="^address not allowed$"):
        check_proxyable(address)


@pytest.mark.parametrize("address", ["10.244.1.5", "192.168.0.1", "8.8.8.8", "fd00::5"])
def test_proxyable_addresses(address: str) -> None:
    check_proxyable(address)


@pytest.mark.parametrize(("method", "path", "watch", "long"), [
    ("GET", "/api/v1/namespaces/d/pods", "true", True),
    ("GET", "/api/v1/watch/namespaces/d/pods", None, True),
    ("GET", "/api/v1/namespaces/d/pods/p/log", None, True),
    ("POST", "/api/v1/namespaces/d/pods/p/exec", None, True),
    ("GET", "/api/v1/namespaces/d/services/s/proxy/x", None, True),
    ("GET", "/api/v1/namespaces/d/pods", None, False),
    ("POST", "/api/v1/namespaces/d/configmaps", None, False),
    ("GET", "/healthz", None, False),
])
def test_long_running(method: str, path: str, watch: str | None, long: bool) -> None:
    assert is_long_running(request_info(method, path, watch)) is long


def test_buckets_and_zero_disables() -> None:
    limits = InflightLimits.of(ApiServerOptions(max_requests_inflight=2,
                                                max_mutating_requests_inflight=0))
    assert limits.bucket(request_info("POST", "/api/v1/namespaces/d/configmaps")) is None
    reads = limits.bucket(request_info("GET", "/api/v1/namespaces/d/configmaps"))
    assert reads is limits.read_only and isinstance(reads, Slots)
    assert [reads.take(), reads.take(), reads.take()] == [True, True, False]
    reads.release()
    assert reads.take()


def test_flags() -> None:
    opts = parse_args(["--max-requests-inflight=4", "--max-mutating-requests-inflight=0",
                       "--event-ttl=5s"])
    assert (opts.max_requests_inflight, opts.max_mutating_requests_inflight,
            opts.event_ttl) == (4, 0, 5.0)
    defaults: Any = parse_args([])
    assert (defaults.max_requests_inflight, defaults.max_mutating_requests_inflight,
            defaults.event_ttl) == (400, 200, 3600.0)
    with pytest.raises(SystemExit):
        parse_args(["--event-ttl=0"])
