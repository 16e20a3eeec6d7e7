"""The node's address pool: assignment, cool-down, CIDRs and ENIs to give back, checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from cni.datastore import (
    RECOVERED_NETWORK,
    DataStore,
    DataStoreError,
    InUse,
    IpamKey,
    PodRef,
    load_checkpoint,
    save_checkpoint,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def key(n: int) -> IpamKey:
    return IpamKey("kubelite", f"c{n}", "eth0")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ds(clock: Clock) -> DataStore:
    store = DataStore(cooldown=30, clock=clock)
    store.add_eni("eni-a", 0, "10.200.0.4", is_primary=True)
    store.add_cidr("eni-a", "10.200.0.5/32", is_prefix=False)
    store.add_cidr("eni-a", "10.200.0.6/32", is_prefix=False)
    return store


def test_assign_is_idempotent_per_key(ds: DataStore) -> None:
    a = ds.assign(key(1), PodRef("ns", "p1"))
    assert a is not None and a.ip == "10.200.0.5" and a.eni_id == "eni-a"
    assert ds.assign(key(1), PodRef("ns", "p1")) == a
    b = ds.assign(key(2), PodRef("ns", "p2"))
    assert b is not None and b.ip == "10.200.0.6"
    assert ds.assign(key(3), PodRef("ns", "p3")) is None
    assert ds.stats().assigned_ips == 2 and ds.stats().available == 0


def test_released_address_cools_down(ds: DataStore, clock: Clock) -> None:
    first = ds.assign(key(1), PodRef())
    ds.assign(key(2), PodRef())
    assert first is not None
    released = ds.unassign(key(1))
    assert released is not None and released.ip == first.ip
    assert ds.unassign(key(1)) is None  # a second DEL is a no-op
    assert ds.stats().cooldown_ips == 1
    assert ds.assign(key(3), PodRef()) is None
    clock.now += 30
    again = ds.assign(key(3), PodRef())
    assert again is not None and again.ip == first.ip


def test_least_recently_released_first(ds: DataStore, clock: Clock) -> None:
    ds.add_cidr("eni-a", "10.200.0.7/32", is_prefix=False)
    for n in (1, 2, 3):
        ds.assign(key(n), PodRef())
    ds.unassign(key(2))  # .6 released first
    clock.now += 1
    ds.unassign(key(1))  # then .5
    clock.now += 60
    a = ds.assign(key(4), PodRef())
    assert a is not None and a.ip == "10.200.0.6"


def test_prefixes_fill_before_opening_another(clock: Clock) -> None:
    ds = DataStore(cooldown=30, clock=clock)
    ds.add_eni("eni-a", 0, "10.200.0.4", is_primary=True)
    ds.add_cidr("eni-a", "10.200.255.224/28", is_prefix=True)
    ds.add_cidr("eni-a", "10.200.255.208/28", is_prefix=True)
    first = ds.assign(key(1), PodRef())
    assert first is not None and first.ip == "10.200.255.208"
    second = ds.assign(key(2), PodRef())
    assert second is not None and second.ip == "10.200.255.209"
    stats = ds.stats()
    assert (stats.total_ips, stats.total_prefixes, stats.free_prefixes) == (32, 2, 1)
    assert ds.freeable_cidrs("eni-a") == ["10.200.255.224/28"]
    with pytest.raises(InUse):
        ds.remove_cidrs("eni-a", ["10.200.255.208/28"])


def test_freeable_and_unused_enis(ds: DataStore, clock: Clock) -> None:
    ds.add_eni("eni-b", 1, "10.200.0.8")
    ds.add_cidr("eni-b", "10.200.0.9/32", is_prefix=False)
    assert ds.unused_enis(min_lifetime=60) == []  # too young
    clock.now += 61
    [unused] = ds.unused_enis(min_lifetime=60)  # the primary ENI is never given back
    assert (unused.eni_id, unused.ips) == ("eni-b", 1)
    ds.assign(key(1), PodRef())
    ds.assign(key(2), PodRef())
    b = ds.assign(key(3), PodRef())
    assert b is not None and b.eni_id == "eni-b"
    assert ds.unused_enis(min_lifetime=60) == []
    with pytest.raises(InUse):
        ds.remove_eni("eni-b")
    ds.unassign(key(3))
    assert ds.freeable_cidrs("eni-b") == []  # cooling down
    clock.now += 30
    assert ds.freeable_cidrs("eni-b") == ["10.200.0.9/32"]
    removed = ds.remove_eni("eni-b")
    assert removed is not None and "eni-b" not in ds.enis
    ds.put_back_eni(removed)
    cidrs = ds.remove_cidrs("eni-b", ["10.200.0.9/32"])
    ds.put_back_cidrs("eni-b", cidrs)
    assert ds.stats().total_ips == 3


def test_checkpoint_round_trip(ds: DataStore, clock: Clock, tmp_path: Path) -> None:
    ds.assign(key(1), PodRef("ns", "p1"))
    ds.assign(key(2), PodRef("ns", "p2"))
    ds.unassign(key(2))
    path = tmp_path / "node" / "ipam.json"
    save_checkpoint(path, ds.checkpoint_data())
    data = load_checkpoint(path)
    assert data is not None
    assert data["version"] == "kubelite-ipam/1"
    [entry] = data["allocations"]
    assert entry["containerID"] == "c1" and entry["ipv4"] == "10.200.0.5"
    assert entry["metadata"] == {"k8sPodNamespace": "ns", "k8sPodName": "p1"}

    fresh = DataStore(cooldown=30, clock=clock)
    fresh.add_eni("eni-a", 0, "10.200.0.4", is_primary=True)
    fresh.add_cidr("eni-a", "10.200.0.6/32", is_prefix=False)  # .5 is gone from the node
    restored, dropped = fresh.restore(data)
    assert (restored, dropped) == (0, ["10.200.0.5"])
    assert fresh.stats().cooldown_ips == 1  # .6 still cools down after the restart

    fresh.add_cidr("eni-a", "10.200.0.5/32", is_prefix=False)
    assert fresh.restore(data)[0] == 1
    assert fresh.lookup(key(1)) is not None
    assert fresh.assign(key(9), PodRef()) is None  # .5 taken, .6 cooling


def test_checkpoint_errors(tmp_path: Path) -> None:
    assert load_checkpoint(tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(DataStoreError):
        load_checkpoint(tmp_path / "bad.json")
    with pytest.raises(DataStoreError):
        DataStore().restore({"version": "vpc-cni-ipam/1"})


def test_recovered_assignment_found_by_pod(ds: DataStore) -> None:
    pod = PodRef("ns", "web-0")
    assert ds.mark_assigned("10.200.0.6", IpamKey(RECOVERED_NETWORK, "uid-1", ""), pod, 1.0)
    assert not ds.mark_assigned("10.9.9.9", IpamKey(RECOVERED_NETWORK, "uid-2", ""), pod, 1.0)
    found = ds.recovered_key_for(pod)
    assert found is not None and ds.unassign(found) is not None
    assert ds.recovered_key_for(pod) is None
