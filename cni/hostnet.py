"""The host side of the pod network: the VPC bridge and the `ip` commands the plugin runs.

The VPC is a plain Linux bridge (`kl-vpc0` by default) holding the VPC router's address
(the CIDR's first host, e.g. 10.200.0.1/16). Every pod's veth is a port of it, whatever its
node, so pods on different nodes share one L2 segment and reach each other without NAT,
as ENIs in one VPC subnet do; the host reaches every pod through the bridge address.

When br_netfilter is loaded with `bridge-nf-call-iptables=1` (Docker loads it, and sets the
FORWARD policy to DROP), frames between two ports of a bridge traverse iptables' FORWARD
chain and would be dropped; like Docker does for each of its bridges, we accept traffic
from the bridge to the same bridge, with one rule tagged with a comment so it can be found
and removed again.

Traffic from pods to addresses outside the VPC (another host, the DNS add-on's upstream
resolvers) leaves through the host with the host's address, as the AWS VPC CNI SNATs to the
node's primary IP: a MASQUERADE rule for the VPC CIDR and FORWARD accepts both ways (tagged
`kubelite-vpc-egress:<bridge>`), and IP forwarding on.

Commands inside a pod's network namespace run as `nsenter --net=<CNI_NETNS> ip ...`, which
takes any namespace path (`/var/run/netns/<name>` or `/proc/<pid>/ns/net`).

`python -m cni.hostnet up --bridge kl-vpc0 --vpc-cidr 10.200.0.0/16` creates the bridge
(the plugin also does on its first ADD); `python -m cni.hostnet down --bridge kl-vpc0`
removes it and the rule.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


def _log_info(msg: str, *args: object) -> None:
    # logging is imported only when there is something to say: the CNI plugin imports this
    # module on every pod ADD.
    import logging
    logging.getLogger(__name__).info(msg, *args)


DEFAULT_BRIDGE = "kl-vpc0"
DEFAULT_MTU = 1500
HOST_VETH_PREFIX = "kl"
LOCK_DIR = Path("/run/lock")
RULE_COMMENT = "kubelite-vpc"
BRIDGE_NF_SYSCTL = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")


class NetlinkError(Exception):
    """An `ip` (or iptables) command failed."""

    def __init__(self, argv: Sequence[str], stderr: str) -> None:
        super().__init__(f"{' '.join(argv)}: {stderr.strip()}")
        self.argv = list(argv)
        self.stderr = stderr

    @property
    def not_found(self) -> bool:
        text = self.stderr.lower()
        return "cannot find device" in text or "does not exist" in text

    @property
    def exists(self) -> bool:
        return "file exists" in self.stderr.lower()


def _run(argv: Sequence[str], stdin: str | None = None) -> str:
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise NetlinkError(argv, proc.stderr or proc.stdout)
    return proc.stdout


def ip(*args: str, netns: str | None = None, stdin: str | None = None) -> str:
    """Run `ip ARGS`, inside the network namespace at path `netns` when given."""
    argv = ["ip", *args]
    if netns is not None:
        argv = ["nsenter", f"--net={netns}", *argv]
    return _run(argv, stdin)


def ip_batch(lines: Sequence[str], netns: str | None = None) -> None:
    """Several `ip` commands in one process; stops at the first that fails."""
    ip("-batch", "-", netns=netns, stdin="\n".join(lines) + "\n")


def link(name: str, netns: str | None = None) -> dict[str, Any] | None:
    """`ip -j -d link show dev NAME`, or None when there is no such link."""
    try:
        out = ip("-j", "-d", "link", "show", "dev", name, netns=netns)
    except NetlinkError as e:
        if e.not_found:
            return None
        raise
    links = json.loads(out or "[]")
    return links[0] if links else None


def addresses(name: str, netns: str | None = None) -> list[str]:
    """The IPv4 addresses of a link as `a.b.c.d/len`."""
    try:
        out = ip("-j", "-4", "addr", "show", "dev", name, netns=netns)
    except NetlinkError as e:
        if e.not_found:
            return []
        raise
    result = []
    for entry in json.loads(out or "[]"):
        for info in entry.get("addr_info") or []:
            result.append(f"{info['local']}/{info['prefixlen']}")
    return result


def routes(netns: str | None = None) -> list[dict[str, Any]]:
    return list(json.loads(ip("-j", "-4", "route", "show", netns=netns) or "[]"))


def delete_link(name: str, netns: str | None = None) -> bool:
    """Delete a link; False when it was already gone."""
    try:
        ip("link", "del", "dev", name, netns=netns)
        return True
    except NetlinkError as e:
        if e.not_found:
            return False
        raise


def host_veth_name(network: str, container_id: str, ifname: str) -> str:
    """`kl` + 11 hex digits: unique per (network, container, ifname), under IFNAMSIZ."""
    digest = hashlib.sha1(f"{network}/{container_id}/{ifname}".encode()).hexdigest()
    return HOST_VETH_PREFIX + digest[:11]


# --- the VPC bridge -------------------------------------------------------------------------


@contextlib.contextmanager
def _bridge_lock(bridge: str) -> Iterator[None]:
    """Serialise bridge setup between concurrent plugin runs (several nodes share it)."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOCK_DIR / f"kubelite-{bridge}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def bridge_ready(bridge: str, gateway_cidr: str) -> bool:
    """The bridge exists, is up and holds the gateway address (one `ip` run: the plugin
    asks this on every ADD)."""
    try:
        out = ip("-j", "-d", "-4", "addr", "show", "dev", bridge)
    except NetlinkError as e:
        if e.not_found:
            return False
        raise
    for entry in json.loads(out or "[]"):
        held = {f"{a['local']}/{a['prefixlen']}" for a in entry.get("addr_info") or []}
        return ("UP" in (entry.get("flags") or []) and gateway_cidr in held
                and (entry.get("linkinfo") or {}).get("info_kind") == "bridge")
    return False


def ensure_bridge(bridge: str, gateway_cidr: str, mtu: int = DEFAULT_MTU) -> None:
    """Create the VPC bridge with the gateway address, up, with the FORWARD rule; idempotent."""
    if bridge_ready(bridge, gateway_cidr):
        return
    with _bridge_lock(bridge):
        info = link(bridge)
        if info is None:
            _log_info("creating VPC bridge %s with %s", bridge, gateway_cidr)
            ip("link", "add", "name", bridge, "mtu", str(mtu), "type", "bridge")
        elif (info.get("linkinfo") or {}).get("info_kind") != "bridge":
            raise NetlinkError(["ip", "link", "show", bridge], f"{bridge} is not a bridge")
        if gateway_cidr not in addresses(bridge):
            try:
                ip("addr", "add", gateway_cidr, "dev", bridge)
            except NetlinkError as e:
                if not e.exists:
                    raise
        ip("link", "set", "dev", bridge, "up")
        ensure_forward_rule(bridge)
        ensure_egress(bridge, gateway_cidr)


def _bridge_nf_active() -> bool:
    try:
        return BRIDGE_NF_SYSCTL.read_text().strip() == "1"
    except OSError:
        return False  # br_netfilter not loaded: bridged frames skip iptables


def _rule(bridge: str) -> list[str]:
    return ["FORWARD", "-i", bridge, "-o", bridge, "-m", "comment", "--comment",
            f"{RULE_COMMENT}:{bridge}", "-j", "ACCEPT"]


def ensure_forward_rule(bridge: str) -> bool:
    """Accept bridge-to-bridge forwarding when iptables sees bridged frames; True if added."""
    iptables = shutil.which("iptables")
    if iptables is None or not _bridge_nf_active():
        return False
    return _ensure_rule(iptables, "filter", _rule(bridge))


def _ensure_rule(iptables: str, table: str, rule: list[str]) -> bool:
    """Insert `rule` (chain first) unless `-C` finds it; True if it was inserted."""
    try:
        _run([iptables, "-w", "5", "-t", table, "-C", *rule])
        return False
    except NetlinkError:
        _run([iptables, "-w", "5", "-t", table, "-I", *rule])
        return True


def remove_forward_rules(bridge: str) -> int:
    iptables = shutil.which("iptables")
    if iptables is None:
        return 0
    removed = 0
    while removed < 100:
        try:
            _run([iptables, "-w", "5", "-D", *_rule(bridge)])
        except NetlinkError:
            break
        removed += 1
    return removed


def _egress_rules(bridge: str, cidr: str) -> list[tuple[str, list[str]]]:
    """(table, rule) for traffic from pods to anything outside the VPC: masqueraded to
    the host's address on the way out (as the AWS VPC CNI SNATs to the node's primary IP),
    and forwarded both ways despite Docker's FORWARD policy DROP."""
    tag = ["-m", "comment", "--comment", f"{RULE_COMMENT}-egress:{bridge}"]
    return [
        ("nat", ["POSTROUTING", "-s", cidr, "!", "-d", cidr, "!", "-o", bridge, *tag,
                 "-j", "MASQUERADE"]),
        ("filter", ["FORWARD", "-i", bridge, "!", "-o", bridge, *tag, "-j", "ACCEPT"]),
        ("filter", ["FORWARD", "-o", bridge, "-m", "conntrack", "--ctstate",
                    "RELATED,ESTABLISHED", *tag, "-j", "ACCEPT"]),
    ]


def ensure_egress(bridge: str, gateway_cidr: str) -> bool:
    """Let pods reach addresses outside the VPC (other hosts, DNS upstreams) through the
    host, with its address; True if a rule was added. Needs iptables and IP forwarding."""
    iptables = shutil.which("iptables")
    if iptables is None:
        return False
    import ipaddress  # only here: the plugin imports this module on every ADD

    cidr = str(ipaddress.ip_interface(gateway_cidr).network)
    forwarding = Path("/proc/sys/net/ipv4/ip_forward")
    with contextlib.suppress(OSError):
        if forwarding.read_text().strip() != "1":
            forwarding.write_text("1\n")
    added = [_ensure_rule(iptables, table, rule) for table, rule in _egress_rules(bridge, cidr)]
    return any(added)


def remove_egress_rules(bridge: str) -> int:
    """Delete the egress rules of `bridge`, found by their comment (whatever the CIDR)."""
    iptables = shutil.which("iptables")
    if iptables is None:
        return 0
    import shlex

    tag = f"{RULE_COMMENT}-egress:{bridge}"
    removed = 0
    for table, chain in (("nat", "POSTROUTING"), ("filter", "FORWARD")):
        try:
            listing = _run([iptables, "-w", "5", "-t", table, "-S", chain])
        except NetlinkError:
            continue
        for line in listing.splitlines():
            words = shlex.split(line)
            if words[:1] == ["-A"] and tag in words:
                with contextlib.suppress(NetlinkError):
                    _run([iptables, "-w", "5", "-t", table, "-D", *words[1:]])
                    removed += 1
    return removed


def teardown_bridge(bridge: str) -> None:
    """Remove the bridge and its rules (pods' veths on it go down with their namespaces)."""
    with _bridge_lock(bridge):
        remove_forward_rules(bridge)
        remove_egress_rules(bridge)
        delete_link(bridge)
    with contextlib.suppress(FileNotFoundError):
        (LOCK_DIR / f"kubelite-{bridge}.lock").unlink()


# --- a pod's veth ---------------------------------------------------------------------------


def random_mac() -> str:
    """A random unicast, locally administered MAC (what the kernel picks for a veth)."""
    octets = bytearray(os.urandom(6))
    octets[0] = (octets[0] & 0xFC) | 0x02
    return ":".join(f"{b:02x}" for b in octets)


def link_exists(name: str) -> bool:
    """A link of that name in the host namespace (sysfs: no process to start)."""
    return os.path.exists(f"/sys/class/net/{name}")


def setup_pod_veth(*, host_if: str, netns: str, ifname: str, bridge: str, address: str,
                   gateway: str, mtu: int) -> tuple[str, str]:
    """Create the veth pair, its container end in `netns` named `ifname` with `address`
    (CIDR form) and a default route via `gateway`; returns (host MAC, container MAC).

    Two `ip -batch` runs (host side, then inside the namespace) with MACs chosen here, so
    nothing has to be read back. The host end is a hairpin bridge port, so a pod can reach
    itself through a Service address (kube-proxy DNATs the packet back out of that port)."""
    if link_exists(host_if):
        delete_link(host_if)  # left over from an ADD that failed half-way
    host_mac, cont_mac = random_mac(), random_mac()
    try:
        ip_batch([(f"link add {host_if} mtu {mtu} address {host_mac} type veth peer name "
                   f"{ifname} mtu {mtu} address {cont_mac} netns {netns}"),
                  f"link set dev {host_if} master {bridge}",
                  f"link set dev {host_if} type bridge_slave hairpin on",
                  f"link set dev {host_if} up"])
        ip_batch(["link set dev lo up",
                  f"addr add {address} dev {ifname}",
                  f"link set dev {ifname} up",
                  f"route replace default via {gateway} dev {ifname}"], netns=netns)
    except BaseException:
        if link_exists(host_if):
            delete_link(host_if)
        raise
    return host_mac, cont_mac


def main(argv: list[str] | None = None) -> int:
    # Imported here: the plugin imports this module on every pod ADD and needs neither.
    import argparse

    from cni.vpc import DEFAULT_VPC_CIDR, gateway_of, parse_vpc_cidr

    p = argparse.ArgumentParser(prog="python -m cni.hostnet",
                                description="create or remove the VPC bridge")
    p.add_argument("action", choices=("up", "down"))
    p.add_argument("--bridge", default=DEFAULT_BRIDGE)
    p.add_argument("--vpc-cidr", default=os.environ.get("KUBELITE_VPC_CIDR", DEFAULT_VPC_CIDR))
    p.add_argument("--mtu", type=int, default=DEFAULT_MTU)
    a = p.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if a.action == "up":
            cidr = parse_vpc_cidr(a.vpc_cidr)
            gateway_cidr = f"{gateway_of(cidr)}/{cidr.prefixlen}"
            ensure_bridge(a.bridge, gateway_cidr, a.mtu)
            # Also for a bridge made by an earlier version, which had no egress rules.
            ensure_forward_rule(a.bridge)
            ensure_egress(a.bridge, gateway_cidr)
        else:
            teardown_bridge(a.bridge)
    except (NetlinkError, ValueError, OSError) as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
