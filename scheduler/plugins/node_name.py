"""NodeName: a pod that names its node (`spec.nodeName`) fits only that node.

The scheduler only sees pods without a node name, so this mostly matters for the preemption
dry run and for completeness with upstream's default plugin set."""

from __future__ import annotations

from collections.abc import Sequence

from scheduler.framework import (
    SKIP,
    ClusterEvent,
    CycleState,
    FilterPlugin,
    PreFilterPlugin,
    Status,
    unresolvable,
)
from scheduler.types import NodeInfo, PodInfo

ERR_REASON = "node(s) didn't match the requested node name"

_REJECT = unresolvable(ERR_REASON)


class NodeName(PreFilterPlugin, FilterPlugin):
    name = "NodeName"

    def events(self) -> ClusterEvent:
        return ClusterEvent.NODE_ADD

    def pre_filter(self, state: CycleState, pod: PodInfo,
                   nodes: Sequence[NodeInfo]) -> Status | None:
        return None if (pod.pod.get("spec") or {}).get("nodeName") else SKIP

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        wanted = (pod.pod.get("spec") or {}).get("nodeName")
        return None if not wanted or wanted == node.name else _REJECT
