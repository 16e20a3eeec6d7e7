"""The iptables proxier: applies `rules.build_ruleset` with iptables-restore.

- A partial sync regenerates the rules of the service ports the snapshot says changed
  (`Snapshot.changed_ports_since` the last one synced; every service port, compared with
  its cached inputs, when the snapshot does not know), and writes only the chains whose
  content differs from what it applied last and deletes the chains no longer wanted
  (upstream 1.28's partial sync, at chain granularity). Its cost follows the change, not the
  number of Services (`rules.RuleCache`).
- A full sync (the first one, every --sync-period, and after any failure) regenerates every
  service port's rules, rewrites every chain, deletes stale chains of ours found in the
  kernel, re-ensures the jump rules from the built-in chains and `bridge-nf-call-iptables`.
  After a failed restore (or any failure) nothing is assumed about the kernel: the next sync
  is full.
- Stopping with cleanup removes the jump rules and every chain of ours.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Network
from pathlib import Path

from kube_proxy import netif
from kube_proxy.iptables import Iptables
from kube_proxy.model import Snapshot
from kube_proxy.rules import (
    ChainKey,
    ProxyConfig,
    RuleCache,
    RulesetDiff,
    diff_rulesets,
    full_sync,
    localhost_nodeports,
)

log = logging.getLogger("kube_proxy.iptables")

BRIDGE_NF_CALL_IPTABLES = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
ROUTE_LOCALNET = Path("/proc/sys/net/ipv4/conf/all/route_localnet")


def ensure_bridge_nf_call_iptables(path: Path = BRIDGE_NF_CALL_IPTABLES) -> bool:
    """Pods on a Linux bridge reach each other at layer 2; their replies to DNATed traffic
    must still pass iptables (conntrack) to be un-DNATed. True when we had to turn it on."""
    return ensure_sysctl_on(path)


def ensure_sysctl_on(path: Path) -> bool:
    """Set a 0/1 sysctl to 1; True when we had to. A missing file (module not loaded) or
    one we may not write is left alone (the latter with a warning)."""
    try:
        if path.read_text().strip() == "1":
            return False
        path.write_text("1\n")
        return True
    except FileNotFoundError:
        return False  # br_netfilter is not loaded: bridged frames skip iptables anyway
    except OSError as e:
        log.warning("cannot set %s to 1: %s", path, e)
        return False


def _drifted(partial: Mapping[ChainKey, tuple[str, ...]],
             full: Mapping[ChainKey, tuple[str, ...]]) -> None:
    """Partial syncs reached other rules than a full regeneration: a bug, which the full
    sync repairs; say where."""
    differ = sorted(key for key in partial.keys() | full.keys()
                    if partial.get(key) != full.get(key))
    log.warning("partial syncs had drifted from a full regeneration in %d chains (first: "
                "%s/%s); the full sync rewrites them", len(differ), *differ[0])


class IptablesProxier:
    mode = "iptables"

    def __init__(self, ipt: Iptables, config: ProxyConfig,
                 nodeport_cidrs: Sequence[IPv4Network] = (),
                 userspace_interface: str = netif.DEFAULT_INTERFACE) -> None:
        self.ipt = ipt
        self.config = config
        self.nodeport_cidrs = list(nodeport_cidrs)
        self.userspace_interface = userspace_interface
        self.rules = RuleCache()
        self.last_diff: RulesetDiff | None = None
        self._nodeport_ips: list[str] | None = None
        # The kernel has `rules.chains`, made for the snapshot of this generation; False
        # (after a failure, or before the first sync) means nothing is known: a full sync.
        self._in_sync = False
        self._generation: int | None = None

    @property
    def applied(self) -> Mapping[ChainKey, tuple[str, ...]] | None:
        """What the kernel has in our chains, as far as we know (None: unknown)."""
        return self.rules.chains if self._in_sync else None

    async def start(self) -> None:
        # A userspace-mode leftover would hold the ClusterIPs as local addresses: traffic
        # would be delivered to them instead of being DNATed on the way out.
        try:
            if await netif.delete_link(self.userspace_interface):
                log.info("removed the userspace mode's interface %s", self.userspace_interface)
        except netif.NetifError as e:
            log.warning("cannot remove %s: %s", self.userspace_interface, e)
        self._in_sync = False

    async def _config(self) -> ProxyConfig:
        if not self.nodeport_cidrs:
            return self.config
        local = await netif.local_ipv4_addresses()
        ips = netif.addresses_in(self.nodeport_cidrs, local)
        if ips != self._nodeport_ips:
            self._nodeport_ips = ips
            if ips:
                log.info("NodePorts are served on %s", ", ".join(ips))
            else:
                log.warning("no local address in --nodeport-addresses: NodePorts unreachable")
        return ProxyConfig(self.config.cluster_cidr, self.config.masquerade_all, tuple(ips),
                           self.config.masquerade_mark, self.config.localhost_nodeports)

    async def sync(self, snapshot: Snapshot, full: bool) -> None:
        started = time.monotonic()
        config = await self._config()
        in_sync, self._in_sync = self._in_sync, False  # until this sync has succeeded
        if full or not in_sync:
            partial = None
            if in_sync and config == self.rules.config:
                # What a partial sync would have made, to check it against the full one.
                self.rules.update(snapshot, snapshot.changed_ports_since(self._generation))
                partial = dict(self.rules.chains)
            wanted = self.rules.rebuild(snapshot, config)
            if partial is not None and partial != wanted:
                _drifted(partial, wanted)
            diff = full_sync(wanted, await self.ipt.chains())
        elif config != self.rules.config:  # e.g. a new local address in --nodeport-addresses
            before = self.rules.ordered()
            diff = diff_rulesets(self.rules.rebuild(snapshot, config), before)
        else:
            diff = self.rules.update(snapshot, snapshot.changed_ports_since(self._generation))
        self.last_diff = diff
        if not diff.empty:
            await self.ipt.restore(diff.restore())
        self._in_sync, self._generation = True, snapshot.generation
        if full:
            added = await self.ipt.ensure_jump_rules()
            if added:
                log.info("added jump rules: %s", ", ".join(added))
            if ensure_bridge_nf_call_iptables():
                log.info("set %s to 1", BRIDGE_NF_CALL_IPTABLES)
            if localhost_nodeports(config) and ensure_sysctl_on(ROUTE_LOCALNET):
                # 127.0.0.1:<nodePort> is DNATed to a pod: the packet leaves with a loopback
                # source (masqueraded on the way out), which the kernel allows only then.
                log.info("set %s to 1 (NodePorts on localhost)", ROUTE_LOCALNET)
        log.debug("synced full=%s chains_written=%d chains_deleted=%d rules=%d took=%.1fms",
                  full, len(diff.write), len(diff.delete), self.rules.rule_count,
                  (time.monotonic() - started) * 1000)

    async def stop(self, cleanup: bool) -> None:
        if cleanup:
            deleted = await self.ipt.cleanup()
            log.info("removed our iptables rules (%d chains)", deleted)
        self._in_sync = False
