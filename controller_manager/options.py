"""Flags of the controller-manager, named as kube-controller-manager's."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from api.durations import parse_duration
from api.flags import parse_bool

ALL_CONTROLLERS = ("replicaset", "deployment", "daemonset", "job", "nodelifecycle",
                   "endpointslice", "endpoints", "serviceaccount", "namespace",
                   "garbagecollector", "root-ca-cert-publisher", "clusterrole-aggregation")


@dataclass
class Options:
    kubeconfig: str | None = None
    controllers: list[str] = field(default_factory=lambda: list(ALL_CONTROLLERS))
    leader_elect: bool = True
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    node_monitor_grace_period: float = 50.0
    node_monitor_period: float = 5.0
    identity: str = ""
    # Published as kube-root-ca.crt in every namespace (default: the kubeconfig's CA).
    root_ca_file: str = ""


def parse_args(argv: list[str] | None, prog: str = "kubelite controller-manager") -> Options:
    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("--kubeconfig", default=None)
    p.add_argument("--controllers", default="*",
                   help="comma-separated controllers to run; * for all, -name to disable one")
    p.add_argument("--leader-elect", type=parse_bool, default=True, nargs="?", const=True)
    p.add_argument("--leader-elect-lease-duration", default="15s")
    p.add_argument("--leader-elect-renew-deadline", default="10s")
    p.add_argument("--leader-elect-retry-period", default="2s")
    p.add_argument("--node-monitor-grace-period", default="50s")
    p.add_argument("--node-monitor-period", default="5s")
    p.add_argument("--leader-elect-identity", default="")
    p.add_argument("--root-ca-file", default="",
                   help="root certificate authority included in service account tokens' "
                   "kube-root-ca.crt ConfigMaps (default: the kubeconfig's CA)")
    p.add_argument("-v", "--v", type=int, default=0)
    a = p.parse_args(argv)
    return Options(
        kubeconfig=a.kubeconfig,
        controllers=select_controllers(a.controllers),
        leader_elect=a.leader_elect,
        lease_duration=parse_duration(a.leader_elect_lease_duration),
        renew_deadline=parse_duration(a.leader_elect_renew_deadline),
        retry_period=parse_duration(a.leader_elect_retry_period),
        node_monitor_grace_period=parse_duration(a.node_monitor_grace_period),
        node_monitor_period=parse_duration(a.node_monitor_period),
        identity=a.leader_elect_identity,
        root_ca_file=a.root_ca_file,
    )


def select_controllers(spec: str) -> list[str]:
    """kube-controller-manager's --controllers: `*`, names, and `-name` exclusions."""
    chosen: list[str] = []
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if "*" in parts or not any(not p.startswith("-") for p in parts):
        chosen = list(ALL_CONTROLLERS)
    for part in parts:
        if part == "*":
            continue
        name = part.lstrip("-")
        if name not in ALL_CONTROLLERS:
            raise SystemExit(f"controller-manager: unknown controller {name!r}; known: "
                             f"{', '.join(ALL_CONTROLLERS)}")
        if part.startswith("-"):
            chosen = [c for c in chosen if c != name]
        elif name not in chosen:
            chosen.append(name)
    return chosen
