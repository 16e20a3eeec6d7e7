"""Warm-pool decisions as pure functions, checked against the example tables of
amazon-vpc-cni-k8s (docs/eni-and-ip-target.md, docs/prefix-and-ip-target.md): pods arrive
one by one and the pool is grown after each, as ipamd's pool manager does."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cni.eni import instance_type, max_pods
from cni.warmpool import (
    PoolConfig,
    PoolStats,
    eni_required,
    excess_slots,
    plan_increase,
    pool_too_high,
    pool_too_low,
    should_remove_extra_enis,
    target_state,
)


def config(name: str, pd: bool = False, **targets: int) -> PoolConfig:
    it = instance_type(name)
    return PoolConfig(max_enis=it.max_enis, slots_per_eni=it.ipv4_per_eni - 1,
                      max_pods=max_pods(it, pd), prefix_delegation=pd, **targets)


class SimPool:
    """ENIs as lists of slots; a slot's number is how many of its addresses pods use."""

    def __init__(self, cfg: PoolConfig) -> None:
        self.cfg = cfg
        self.enis: list[list[int]] = [[]]  # the primary ENI, without secondary slots yet
        self.settle()

    def stats(self) -> PoolStats:
        slots = [s for eni in self.enis for s in eni]
        total = len(slots) * self.cfg.addresses_per_slot
        pd = self.cfg.prefix_delegation
        return PoolStats(total_ips=total, assigned_ips=sum(slots),
                         total_prefixes=len(slots) if pd else 0,
                         free_prefixes=sum(1 for s in slots if s == 0) if pd else 0,
                         enis=len(self.enis))

    def settle(self) -> None:
        for _ in range(1000):
            step = plan_increase(self.stats(), self.cfg, [len(e) for e in self.enis])
            if step is None:
                return
            assert step.count > 0
            if step.eni_index is None:
                self.enis.append([0] * step.count)
            else:
                self.enis[step.eni_index].extend([0] * step.count)
        raise AssertionError("the pool never settled")

    def add_pod(self) -> None:
        per = self.cfg.addresses_per_slot
        # ipamd fills slots already in use first, then the lowest free one
        candidates = [(s == 0, i, j) for i, eni in enumerate(self.enis)
                      for j, s in enumerate(eni) if s < per]
        assert candidates, "no free address"
        _, i, j = min(candidates)
        self.enis[i][j] += 1
        self.settle()

    def run(self, pods: int) -> SimPool:
        for _ in range(pods):
            self.add_pod()
        return self

    @property
    def shape(self) -> tuple[int, int, list[int]]:
        """(ENIs, addresses attached, slots per ENI)"""
        return (len(self.enis), self.stats().total_ips, [len(e) for e in self.enis])


# docs/eni-and-ip-target.md: (targets, pods, ENIs, attached secondary IPs, unused IPs)
@pytest.mark.parametrize(("name", "targets", "pods", "enis", "ips", "unused"), [
    ("t3.small", {"warm_eni_target": 1}, 0, 1, 3, 3),
    ("t3.small", {"warm_eni_target": 1}, 5, 3, 9, 4),
    ("t3.small", {"warm_eni_target": 1}, 9, 3, 9, 0),
    ("t3.small", {"warm_ip_target": 1, "minimum_ip_target": 1}, 0, 1, 1, 1),
    ("t3.small", {"warm_ip_target": 1, "minimum_ip_target": 1}, 5, 2, 6, 1),
    ("t3.small", {"warm_ip_target": 1, "minimum_ip_target": 1}, 9, 3, 9, 0),
    ("t3.small", {"warm_ip_target": 2, "minimum_ip_target": 5}, 0, 2, 5, 5),
    ("t3.small", {"warm_ip_target": 2, "minimum_ip_target": 5}, 5, 3, 7, 2),
    ("t3.small", {"warm_ip_target": 2, "minimum_ip_target": 5}, 9, 3, 9, 0),
    ("p3dn.24xlarge", {"warm_eni_target": 1}, 0, 1, 49, 49),
    ("p3dn.24xlarge", {"warm_eni_target": 1}, 3, 2, 98, 95),
    ("p3dn.24xlarge", {"warm_eni_target": 1}, 95, 3, 147, 52),
    ("p3dn.24xlarge", {"warm_ip_target": 5, "minimum_ip_target": 10}, 0, 1, 10, 10),
    ("p3dn.24xlarge", {"warm_ip_target": 5, "minimum_ip_target": 10}, 7, 1, 12, 5),
    ("p3dn.24xlarge", {"warm_ip_target": 5, "minimum_ip_target": 10}, 15, 1, 20, 5),
    ("p3dn.24xlarge", {"warm_ip_target": 5, "minimum_ip_target": 10}, 45, 2, 50, 5),
])
def test_secondary_ip_examples(name: str, targets: dict[str, int], pods: int, enis: int,
                               ips: int, unused: int) -> None:
    pool = SimPool(config(name, False, **targets)).run(pods)
    assert pool.shape[:2] == (enis, ips)
    assert pool.stats().available == unused


def test_min_ip_target_splits_over_enis_as_documented() -> None:
    # "t3.small, WARM_IP_TARGET=2, MINIMUM_IP_TARGET=5, 5 pods: 3 ENIs with 3,3,1 IPs"
    assert SimPool(config("t3.small", warm_ip_target=2, minimum_ip_target=5)).run(5).shape[2] \
        == [3, 3, 1]
    assert SimPool(config("p3dn.24xlarge", warm_ip_target=5, minimum_ip_target=10)
                   ).run(45).shape[2] == [49, 1]


# docs/prefix-and-ip-target.md (the rows that follow upstream's arithmetic):
# (targets, pods, ENIs, attached prefixes, prefixes per ENI)
@pytest.mark.parametrize(("targets", "pods", "enis", "prefixes", "per_eni"), [
    ({"warm_prefix_target": 1}, 0, 1, 1, [1]),
    ({"warm_prefix_target": 1}, 5, 1, 2, [2]),
    ({"warm_prefix_target": 1}, 16, 1, 2, [2]),
    ({"warm_prefix_target": 1}, 17, 1, 3, [3]),
    ({"warm_prefix_target": 1}, 58, 2, 5, [3, 2]),
    ({"warm_ip_target": 1, "minimum_ip_target": 1}, 0, 1, 1, [1]),
    ({"warm_ip_target": 1, "minimum_ip_target": 1}, 5, 1, 1, [1]),
    ({"warm_ip_target": 1, "minimum_ip_target": 1}, 17, 1, 2, [2]),
    ({"warm_ip_target": 1, "minimum_ip_target": 1}, 58, 2, 4, [3, 1]),
])
def test_prefix_delegation_examples(targets: dict[str, int], pods: int, enis: int,
                                    prefixes: int, per_eni: list[int]) -> None:
    pool = SimPool(config("t3.small", True, **targets)).run(pods)
    assert pool.shape[0] == enis
    assert pool.stats().total_prefixes == prefixes
    assert pool.shape[2] == per_eni


def test_pool_never_exceeds_max_pods() -> None:
    cfg = config("t3.micro")  # 2 ENIs × 1 secondary address, max pods 4
    pool = SimPool(cfg).run(2)
    assert pool.shape == (2, 2, [1, 1])
    assert plan_increase(pool.stats(), cfg, [1, 1]) is None  # every ENI full, none to attach
    tiny = replace(cfg, max_pods=1)
    assert not pool_too_low(PoolStats(total_ips=1, assigned_ips=1, enis=1), tiny)


def test_warm_eni_target_zero_grows_only_when_empty() -> None:
    cfg = config("m5.large", warm_eni_target=0)
    assert pool_too_low(PoolStats(enis=1), cfg)
    assert not pool_too_low(PoolStats(total_ips=1, enis=1), cfg)


def test_target_state_short_and_over() -> None:
    cfg = config("m5.large", warm_ip_target=2, minimum_ip_target=5)
    assert target_state(PoolStats(total_ips=9, assigned_ips=2), cfg) == (0, 4)  # 7 free, keep 5
    assert target_state(PoolStats(total_ips=3, assigned_ips=2), cfg) == (2, 0)  # floor of 5
    assert target_state(PoolStats(total_ips=3, assigned_ips=3), cfg) == (2, 0)
    # addresses cooling down are not available, but are not "over" either
    assert target_state(PoolStats(total_ips=9, assigned_ips=2, cooldown_ips=5), cfg) == (0, 0)
    assert target_state(PoolStats(), config("m5.large")) == (0, 0)


def test_prefix_target_state_rounds_to_prefixes() -> None:
    cfg = config("m5.large", pd=True, warm_ip_target=16, minimum_ip_target=20)
    short, _ = target_state(PoolStats(total_ips=16, assigned_ips=1, total_prefixes=1), cfg)
    assert short == 1  # 20 - 16 = 4 addresses short → one more /28
    over = target_state(PoolStats(total_ips=64, assigned_ips=1, total_prefixes=4,
                                  free_prefixes=3), cfg)[1]
    assert over == 2  # keep ceil((1+16)/16) = 2 prefixes


def test_shrinking_needs_ip_or_prefix_targets() -> None:
    eni_target = config("m5.large")
    lots_free = PoolStats(total_ips=27, assigned_ips=0, enis=3)
    assert not pool_too_high(lots_free, eni_target)  # WARM_ENI_TARGET frees whole ENIs only
    assert excess_slots(lots_free, config("m5.large", warm_ip_target=3)) == 24
    pd = config("m5.large", pd=True, warm_prefix_target=1)
    assert excess_slots(PoolStats(total_ips=48, total_prefixes=3, free_prefixes=3), pd) == 2


def test_freeing_enis() -> None:
    cfg = config("t3.small", warm_eni_target=1)
    stats = PoolStats(total_ips=9, assigned_ips=2, enis=3)  # 7 free ≥ (1 + 1) × 3
    assert should_remove_extra_enis(stats, cfg)
    assert not eni_required(3, 0, stats, cfg)  # 4 would stay free ≥ 3
    assert eni_required(3, 0, PoolStats(total_ips=9, assigned_ips=4, enis=3), cfg)
    assert not should_remove_extra_enis(PoolStats(total_ips=9, assigned_ips=4, enis=3), cfg)
    ip_cfg = config("t3.small", warm_ip_target=2, minimum_ip_target=5)
    assert should_remove_extra_enis(stats, ip_cfg)
    assert eni_required(3, 0, PoolStats(total_ips=6, assigned_ips=1, enis=2), ip_cfg)  # min 5
    assert not eni_required(3, 0, PoolStats(total_ips=9, assigned_ips=1, enis=3), ip_cfg)
