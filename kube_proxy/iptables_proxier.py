"""The iptables proxier: applies `rules.build_ruleset` with iptables-restore.

- A partial sync writes only the chains whose content differs from what it applied last and
  deletes the chains no longer wanted (upstream 1.28's partial sync, at chain granularity).
- A full sync (the first one, every --sync-period, and after any failure) rewrites every
  chain, deletes stale chains of ours found in the kernel, re-ensures the jump rules from
  the built-in chains and `bridge-nf-call-iptables`. After a failed restore nothing is
  assumed about the kernel: the next sync is full.
- Stopping with cleanup removes the jump rules and every chain of ours.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from ipaddress import IPv4Network
from pathlib import Path

from kube_proxy import netif
from kube_proxy.iptables import Iptables
from kube_proxy.model import Snapshot
from kube_proxy.rules import (
    ChainKey,
    ProxyConfig,
    RulesetDiff,
    build_ruleset,
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


class IptablesProxier:
    mode = "iptables"

    def __init__(self, ipt: Iptables, config: ProxyConfig,
                 nodeport_cidrs: Sequence[IPv4Network] = (),
                 userspace_interface: str = netif.DEFAULT_INTERFACE) -> None:
        self.ipt = ipt
        self.config = config
        self.nodeport_cidrs = list(nodeport_cidrs)
        self.userspace_interface = userspace_interface
        self.applied: dict[ChainKey, tuple[str, ...]] | None = None
        self.last_diff: RulesetDiff | None = None
        self._nodeport_ips: list[str] | None = None

    async def start(self) -> None:
        # A userspace-mode leftover would hold the ClusterIPs as local addresses: traffic
        # would be delivered to them instead of being DNATed on the way out.
        try:
            if await netif.delete_link(self.userspace_interface):
                log.info("removed the userspace mode's interface %s", self.userspace_interface)
        except netif.NetifError as e:
            log.warning("cannot remove %s: %s", self.userspace_interface, e)
        self.applied = None

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
        wanted = build_ruleset(snapshot, config).frozen()
        if full or self.applied is None:
            diff = full_sync(wanted, await self.ipt.chains())
        else:
            diff = diff_rulesets(wanted, self.applied)
        self.last_diff = diff
        if not diff.empty:
            self.applied = None  # unknown until the restore succeeds
            await self.ipt.restore(diff.restore())
        self.applied = wanted
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
                  full, len(diff.write), len(diff.delete),
                  sum(len(r) for r in wanted.values()), (time.monotonic() - started) * 1000)

    async def stop(self, cleanup: bool) -> None:
        if cleanup:
            deleted = await self.ipt.cleanup()
            log.info("removed our iptables rules (%d chains)", deleted)
        self.applied = None
