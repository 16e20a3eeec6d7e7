"""Command-line flags of the apiserver, named as kube-apiserver's."""

from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass, field

from api.durations import parse_duration


@dataclass
class ApiServerOptions:
    etcd_servers: list[str] = field(default_factory=lambda: ["http://127.0.0.1:2379"])
    bind_address: str = "127.0.0.1"
    secure_port: int = 6443
    min_request_timeout: int = 1800
    etcd_compaction_interval: float = 300.0
    advertise_address: str = "127.0.0.1"
    default_watch_cache_size: int = 10_000
    default_not_ready_toleration_seconds: int = 300
    service_cluster_ip_range: str = "10.96.0.0/12"
    service_node_port_range: str = "30000-32767"
    default_unreachable_toleration_seconds: int = 300


def parse_args(argv: list[str] | None = None) -> ApiServerOptions:
    p = argparse.ArgumentParser(prog="kubelite apiserver",
                                description="kubelite API server (kube-apiserver flags)")
    p.add_argument("--etcd-servers", default="http://127.0.0.1:2379",
                   help="comma-separated etcd client URLs")
    p.add_argument("--bind-address", default="127.0.0.1")
    p.add_argument("--secure-port", type=int, default=6443,
                   help="port to serve on (plain HTTP until TLS lands)")
    p.add_argument("--advertise-address", default=None)
    p.add_argument("--min-request-timeout", type=int, default=1800,
                   help="default watch timeout in seconds")
    p.add_argument("--etcd-compaction-interval", default="5m",
                   help="how often to compact etcd history (0 disables), e.g. 5m, 300s")
    p.add_argument("--default-watch-cache-size", type=int, default=10_000,
                   help="events kept per resource for watchers to resume from")
    p.add_argument("--default-not-ready-toleration-seconds", type=int, default=300)
    p.add_argument("--default-unreachable-toleration-seconds", type=int, default=300)
    p.add_argument("--service-cluster-ip-range", default="10.96.0.0/12",
                   help="CIDR from which Service ClusterIPs are allocated")
    p.add_argument("--service-node-port-range", default="30000-32767",
                   help="port range for NodePort Services")
    p.add_argument("-v", "--v", type=int, default=0, help="log verbosity")
    a = p.parse_args(argv)
    return ApiServerOptions(
        etcd_servers=[s.strip() for s in a.etcd_servers.split(",") if s.strip()],
        bind_address=a.bind_address,
        secure_port=a.secure_port,
        min_request_timeout=a.min_request_timeout,
        etcd_compaction_interval=parse_duration(a.etcd_compaction_interval),
        advertise_address=a.advertise_address or a.bind_address,
        default_watch_cache_size=max(a.default_watch_cache_size, 1),
        default_not_ready_toleration_seconds=a.default_not_ready_toleration_seconds,
        default_unreachable_toleration_seconds=a.default_unreachable_toleration_seconds,
        service_cluster_ip_range=_cidr(p, a.service_cluster_ip_range),
        service_node_port_range=_port_range(p, a.service_node_port_range),
    )


def _cidr(p: argparse.ArgumentParser, text: str) -> str:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        p.error(f"--service-cluster-ip-range: invalid CIDR {text!r}")
    if net.num_addresses < 16:
        p.error("--service-cluster-ip-range: the range needs at least 16 addresses")
    return str(net)


def _port_range(p: argparse.ArgumentParser, text: str) -> str:
    lo, _, hi = text.partition("-")
    try:
        low, high = int(lo), int(hi or lo)
    except ValueError:
        p.error(f"--service-node-port-range: invalid range {text!r}")
    if not 1 <= low <= high <= 65535:
        p.error(f"--service-node-port-range: invalid range {text!r}")
    return f"{low}-{high}"
