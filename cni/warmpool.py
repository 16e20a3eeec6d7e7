"""Warm-pool decisions, as pure functions of the pool's numbers (after aws-vpc-cni's ipamd).

ipamd keeps more addresses attached than pods use, so a new pod gets one at once instead of
waiting for an EC2 call. How many is set by:

- WARM_ENI_TARGET (default 1): keep a whole ENI's worth of addresses free. The pool is "too
  low" while available < WARM_ENI_TARGET × addresses-per-ENI; it is never shrunk by address,
  only a whole unused ENI is given back, once available ≥ (WARM_ENI_TARGET + 1) × per-ENI.
- WARM_IP_TARGET / MINIMUM_IP_TARGET: when either is set they replace WARM_ENI_TARGET.
  Keep WARM_IP_TARGET addresses free and at least MINIMUM_IP_TARGET attached in total;
  "short" and "over" say how many to add or give back.
- WARM_PREFIX_TARGET (prefix delegation only, default 1): keep that many whole /28 prefixes
  without any assigned address. WARM_IP_TARGET/MINIMUM_IP_TARGET override it; with them the
  shortfall is rounded up to whole prefixes.

Counts are in "slots": secondary addresses in secondary-IP mode, /28 prefixes with prefix
delegation. A new slot goes to an ENI that has room first; only when every ENI is full is
a new ENI attached (up to the instance type's limit, or MAX_ENI).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cni.eni import IPS_PER_PREFIX


def div_ceil(x: int, y: int) -> int:
    return -(-x // y)


@dataclass(frozen=True)
class PoolConfig:
    max_enis: int
    slots_per_eni: int  # secondary addresses, or prefixes with prefix delegation
    max_pods: int
    prefix_delegation: bool = False
    warm_eni_target: int = 1
    warm_ip_target: int = 0
    minimum_ip_target: int = 0
    warm_prefix_target: int = 1

    @property
    def addresses_per_slot(self) -> int:
        return IPS_PER_PREFIX if self.prefix_delegation else 1

    @property
    def addresses_per_eni(self) -> int:
        return self.slots_per_eni * self.addresses_per_slot

    @property
    def warm_ip_targets_defined(self) -> bool:
        return self.warm_ip_target > 0 or self.minimum_ip_target > 0

    @property
    def warm_prefix_target_defined(self) -> bool:
        return self.prefix_delegation and not self.warm_ip_targets_defined


@dataclass(frozen=True)
class PoolStats:
    total_ips: int = 0
    assigned_ips: int = 0
    cooldown_ips: int = 0  # unassigned but not reusable yet
    total_prefixes: int = 0
    free_prefixes: int = 0  # prefixes with no assigned and no cooling address
    enis: int = 0

    @property
    def available(self) -> int:
        return self.total_ips - self.assigned_ips - self.cooldown_ips


def target_state(stats: PoolStats, cfg: PoolConfig) -> tuple[int, int]:
    """(short, over) against WARM_IP_TARGET/MINIMUM_IP_TARGET, in slots; (0, 0) when unset."""
    if not cfg.warm_ip_targets_defined:
        return 0, 0
    available = stats.available
    short = max(cfg.warm_ip_target - available, 0, cfg.minimum_ip_target - stats.total_ips)
    over = max(min(max(available - cfg.warm_ip_target, 0),
                   stats.total_ips - cfg.minimum_ip_target), 0)
    if not cfg.prefix_delegation:
        return short, over
    # Whole prefixes: short rounds up; only prefixes with nothing assigned can go back, and
    # only while enough remain for the assigned addresses plus the targets.
    needed_for_warm = div_ceil(stats.assigned_ips + cfg.warm_ip_target, IPS_PER_PREFIX)
    needed_for_min = div_ceil(cfg.minimum_ip_target, IPS_PER_PREFIX)
    over_prefixes = max(min(stats.free_prefixes, stats.total_prefixes - needed_for_warm), 0)
    over_prefixes = max(min(over_prefixes, stats.total_prefixes - needed_for_min), 0)
    return div_ceil(short, IPS_PER_PREFIX), over_prefixes


def pool_too_low(stats: PoolStats, cfg: PoolConfig) -> bool:
    if stats.total_ips >= cfg.max_pods:
        return False  # never attach more addresses than the node may run pods
    if cfg.warm_ip_targets_defined:
        return target_state(stats, cfg)[0] > 0
    if cfg.prefix_delegation:
        target, per = cfg.warm_prefix_target, IPS_PER_PREFIX
    else:
        target, per = cfg.warm_eni_target, cfg.addresses_per_eni
    available = stats.available
    return available < target * per or (target == 0 and available == 0)


def excess_slots(stats: PoolStats, cfg: PoolConfig) -> int:
    """How many slots (addresses or prefixes) could be given back; 0 under WARM_ENI_TARGET."""
    if cfg.warm_ip_targets_defined:
        return target_state(stats, cfg)[1]
    if cfg.warm_prefix_target_defined:
        return max(stats.free_prefixes - cfg.warm_prefix_target, 0)
    return 0


def pool_too_high(stats: PoolStats, cfg: PoolConfig) -> bool:
    return excess_slots(stats, cfg) > 0


def slots_to_add(stats: PoolStats, cfg: PoolConfig) -> int:
    """How many slots one increase asks for (before the per-ENI room is applied)."""
    if cfg.warm_ip_targets_defined:
        return target_state(stats, cfg)[0]
    if cfg.prefix_delegation:
        return max(1, cfg.warm_prefix_target - stats.free_prefixes)
    return cfg.slots_per_eni  # WARM_ENI_TARGET: fill ENIs whole


@dataclass(frozen=True)
class Increase:
    """Add `count` slots to the ENI at `eni_index` (in `eni_fill` order), or, when
    `eni_index` is None, attach a new ENI with `count` slots."""

    eni_index: int | None
    count: int


def plan_increase(stats: PoolStats, cfg: PoolConfig, eni_fill: Sequence[int]) -> Increase | None:
    """The next step to grow the pool; `eni_fill` is the slots used on each attached ENI.

    None when the pool is not low, nothing is short, or every ENI is full and no more may
    be attached.
    """
    if not pool_too_low(stats, cfg):
        return None
    want = slots_to_add(stats, cfg)
    if want <= 0:
        return None
    for index, used in enumerate(eni_fill):
        if used < cfg.slots_per_eni:
            return Increase(index, min(cfg.slots_per_eni - used, want))
    if len(eni_fill) >= cfg.max_enis:
        return None
    return Increase(None, min(want, cfg.slots_per_eni))


def should_remove_extra_enis(stats: PoolStats, cfg: PoolConfig) -> bool:
    """Whether to look for an unused ENI to give back (the caller checks each ENI)."""
    if cfg.warm_ip_targets_defined:
        return True  # eni_required() decides per ENI
    target = cfg.warm_prefix_target if cfg.prefix_delegation else cfg.warm_eni_target
    # The +1: giving back one ENI must not take the pool below its target.
    return stats.available >= (target + 1) * cfg.addresses_per_eni


def eni_required(eni_ips: int, eni_free_prefixes: int, stats: PoolStats,
                 cfg: PoolConfig) -> bool:
    """Whether the pool needs this unused ENI (holding `eni_ips` addresses) to stay on target."""
    if cfg.warm_ip_targets_defined:
        if stats.available - eni_ips < cfg.warm_ip_target:
            return True
        return stats.total_ips - eni_ips < cfg.minimum_ip_target
    if cfg.prefix_delegation:
        return stats.free_prefixes - eni_free_prefixes < cfg.warm_prefix_target
    return stats.available - eni_ips < cfg.warm_eni_target * cfg.addresses_per_eni
