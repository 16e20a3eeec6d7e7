"""Flags of the scheduler, named as kube-scheduler's."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from api.durations import parse_duration
from api.flags import parse_bool

DEFAULT_SCHEDULER_NAME = "default-scheduler"


@dataclass
class Options:
    kubeconfig: str | None = None
    leader_elect: bool = True
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    identity: str = ""
    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    # 0 adapts to the cluster size, as upstream's percentageOfNodesToScore default.
    percentage_of_nodes_to_score: int = 0
    verbosity: int = 0


def _percentage(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError("must be between 0 and 100")
    return value


def parse_args(argv: list[str] | None, prog: str = "kubelite scheduler") -> Options:
    p = argparse.ArgumentParser(prog=prog, description="kubelite scheduler (kube-scheduler "
                                "flags)")
    p.add_argument("--kubeconfig", default=None)
    p.add_argument("--leader-elect", type=parse_bool, default=True, nargs="?", const=True)
    p.add_argument("--leader-elect-lease-duration", type=parse_duration, default=15.0)
    p.add_argument("--leader-elect-renew-deadline", type=parse_duration, default=10.0)
    p.add_argument("--leader-elect-retry-period", type=parse_duration, default=2.0)
    p.add_argument("--leader-elect-identity", default="",
                   help="name in the Lease (default: <hostname>_<uuid>)")
    p.add_argument("--scheduler-name", default=DEFAULT_SCHEDULER_NAME,
                   help="schedule pods whose spec.schedulerName is this")
    p.add_argument("--percentage-of-nodes-to-score", type=_percentage, default=0,
                   help="stop filtering once this share of nodes fits (0: adaptive)")
    p.add_argument("-v", "--v", type=int, default=0, help="log verbosity")
    a = p.parse_args(argv)
    if a.leader_elect and a.leader_elect_lease_duration <= a.leader_elect_renew_deadline:
        p.error("--leader-elect-lease-duration must be greater than "
                "--leader-elect-renew-deadline")
    return Options(
        kubeconfig=a.kubeconfig,
        leader_elect=a.leader_elect,
        lease_duration=a.leader_elect_lease_duration,
        renew_deadline=a.leader_elect_renew_deadline,
        retry_period=a.leader_elect_retry_period,
        identity=a.leader_elect_identity,
        scheduler_name=a.scheduler_name,
        percentage_of_nodes_to_score=a.percentage_of_nodes_to_score,
        verbosity=a.v,
    )
