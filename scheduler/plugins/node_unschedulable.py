"""NodeUnschedulable: a cordoned node (`spec.unschedulable`) takes no new pods, unless the
pod tolerates the `node.kubernetes.io/unschedulable:NoSchedule` taint (as DaemonSet pods
do)."""

from __future__ import annotations

from scheduler.framework import (
    ClusterEvent,
    CycleState,
    FilterPlugin,
    Status,
    unresolvable,
)
from scheduler.plugins.taint_toleration import tolerates
from scheduler.types import NO_SCHEDULE, NodeInfo, PodInfo

UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": NO_SCHEDULE}
ERR_REASON_UNSCHEDULABLE = "node(s) were unschedulable"

_REJECT = unresolvable(ERR_REASON_UNSCHEDULABLE)


class NodeUnschedulable(FilterPlugin):
    name = "NodeUnschedulable"

    def events(self) -> ClusterEvent:
        return ClusterEvent.NODE_ADD | ClusterEvent.NODE_TAINT

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if not node.unschedulable or tolerates(pod.tolerations, UNSCHEDULABLE_TAINT):
            return None
        return _REJECT
