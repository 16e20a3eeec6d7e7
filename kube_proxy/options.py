"""Flags of kube-proxy, named as upstream's (`--proxy-mode`, `--hostname-override`, ...).

A bad flag is one line on stderr and exit status 2 (no usage dump, no traceback).
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import NoReturn

from api.durations import parse_duration
from api.flags import parse_bool
from kube_proxy import netif

MODES = ("iptables", "userspace")
DEFAULT_HEALTHZ_PORT = 10256


@dataclass
class Options:
    kubeconfig: str | None = None
    hostname_override: str = ""
    proxy_mode: str = "iptables"
    cluster_cidr: str = ""
    nodeport_addresses: list[IPv4Network] = field(default_factory=list)
    masquerade_all: bool = False
    localhost_nodeports: bool = True
    masquerade_bit: int = 14
    sync_period: float = 30.0
    min_sync_period: float = 0.0
    cleanup: bool = False
    healthz_host: str = ""
    healthz_port: int = 0  # 0: no health server
    lock_file: Path | None = None
    userspace_interface: str = netif.DEFAULT_INTERFACE
    verbosity: int = 0

    @property
    def masquerade_mark(self) -> str:
        return f"{1 << self.masquerade_bit:#x}"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _duration(text: str) -> float:
    value = parse_duration(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (negative)")
    return value


def _cidrs(text: str) -> list[IPv4Network]:
    try:
        return netif.parse_cidrs(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"invalid CIDR list {text!r}: {e}") from None


def _healthz(text: str, port_flag: int | None) -> tuple[str, int]:
    """`--healthz-bind-address ip[:port]` combined with the older `--healthz-port`."""
    host, port = text, port_flag
    if text.count(":") == 1:
        host, _, port_text = text.partition(":")
        if not port_text.isdigit():
            raise ValueError(f"invalid --healthz-bind-address {text!r}")
        port = int(port_text) if port_flag is None else port_flag
    if host:
        ipaddress.ip_address(host)  # ValueError when it is not an IP
    elif port:
        host = "0.0.0.0"
    if port is None:
        port = DEFAULT_HEALTHZ_PORT if host else 0
    if not 0 <= port <= 65535:
        raise ValueError(f"healthz port {port} out of range")
    return host, port


def parse_args(argv: list[str] | None, prog: str = "kubelite proxy") -> Options:
    p = _Parser(prog=prog, description="kubelite kube-proxy: programs the node's data path "
                "so that Service ClusterIPs and NodePorts reach ready endpoints")
    p.add_argument("--kubeconfig", default=None)
    p.add_argument("--hostname-override", default="",
                   help="this node's name (default: the hostname)")
    p.add_argument("--proxy-mode", default="iptables",
                   help="iptables (default) or userspace; iptables falls back to userspace "
                   "when it cannot be used")
    p.add_argument("--cluster-cidr", default="",
                   help="the pod network; ClusterIP traffic from outside it is masqueraded")
    p.add_argument("--nodeport-addresses", type=_cidrs, default=[],
                   help="comma-separated CIDRs: serve NodePorts only on local addresses in "
                   "them (default: every local address)")
    p.add_argument("--iptables-localhost-nodeports", dest="localhost_nodeports", type=parse_bool,
                   nargs="?", const=True, default=True,
                   help="iptables mode: NodePorts also answer on 127.0.0.1 (sets "
                        "route_localnet; default true)")
    p.add_argument("--masquerade-all", type=parse_bool, nargs="?", const=True, default=False,
                   help="masquerade all traffic to ClusterIPs")
    p.add_argument("--iptables-masquerade-bit", type=int, default=14,
                   help="the fwmark bit marking packets to masquerade (default 14: 0x4000)")
    p.add_argument("--sync-period", "--iptables-sync-period", dest="sync_period",
                   type=_duration, default=30.0, help="full resync period (default 30s)")
    p.add_argument("--min-sync-period", "--iptables-min-sync-period", dest="min_sync_period",
                   type=_duration, default=0.0,
                   help="minimum time between syncs (default 0: changes apply at once, "
                   "bursts are coalesced over 50ms)")
    p.add_argument("--cleanup", type=parse_bool, nargs="?", const=True, default=False,
                   help="remove every rule and interface kube-proxy made, then exit")
    p.add_argument("--healthz-bind-address", default="",
                   help="ip[:port] for the /healthz server (default: none)")
    p.add_argument("--healthz-port", type=int, default=None,
                   help="port of the /healthz server (0: none)")
    p.add_argument("--lock-file", type=Path, default=None,
                   help="the per-kernel programmer lock (default "
                   "/run/kubelite/kube-proxy.<netns inode>.lock)")
    p.add_argument("--userspace-interface", default=netif.DEFAULT_INTERFACE,
                   help="where the userspace mode puts ClusterIPs (default kl-svc0)")
    p.add_argument("-v", "--v", type=int, default=0, help="log verbosity (4+: debug)")
    a = p.parse_args(argv)

    mode = a.proxy_mode or "iptables"
    if mode not in MODES:
        p.error(f"--proxy-mode {mode!r} is not supported (use {' or '.join(MODES)})")
    cluster_cidr = ""
    if a.cluster_cidr:
        try:
            nets = netif.parse_cidrs(a.cluster_cidr)
        except ValueError as e:
            p.error(f"--cluster-cidr: {e}")
        cluster_cidr = str(nets[0]) if nets else ""
    if not 0 <= a.iptables_masquerade_bit <= 31:
        p.error("--iptables-masquerade-bit must be between 0 and 31")
    try:
        healthz_host, healthz_port = _healthz(a.healthz_bind_address, a.healthz_port)
    except ValueError as e:
        p.error(str(e))
    if not 0 < len(a.userspace_interface) <= 15:
        p.error("--userspace-interface must be 1..15 characters")
    hostname = a.hostname_override.strip().lower() or socket.gethostname().lower()
    return Options(
        kubeconfig=a.kubeconfig, hostname_override=hostname, proxy_mode=mode,
        cluster_cidr=cluster_cidr, nodeport_addresses=a.nodeport_addresses,
        masquerade_all=a.masquerade_all, localhost_nodeports=a.localhost_nodeports,
        masquerade_bit=a.iptables_masquerade_bit,
        sync_period=a.sync_period, min_sync_period=a.min_sync_period, cleanup=a.cleanup,
        healthz_host=healthz_host, healthz_port=healthz_port, lock_file=a.lock_file,
        userspace_interface=a.userspace_interface, verbosity=a.v)


if __name__ == "__main__":  # pragma: no cover - handy for checking flag parsing by hand
    print(parse_args(sys.argv[1:]))
