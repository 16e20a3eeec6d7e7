"""TaintToleration: a node's NoSchedule/NoExecute taints keep out pods that do not tolerate
them (Filter); PreferNoSchedule taints only make a node less attractive (Score)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from api.tolerations import toleration_tolerates_taint, tolerations_tolerate_taint
from scheduler.framework import (
    SKIP,
    ClusterEvent,
    CycleState,
    FilterPlugin,
    PreScorePlugin,
    ScorePlugin,
    Status,
    default_normalize,
    unresolvable,
)
from scheduler.types import PREFER_NO_SCHEDULE, NodeInfo, PodInfo

Taint = Mapping[str, Any]
Toleration = Mapping[str, Any]

_STATE_KEY = "PreScoreTaintToleration"


tolerates_taint = toleration_tolerates_taint
tolerates = tolerations_tolerate_taint


def find_untolerated_taint(taints: Iterable[Taint],
                           tolerations: Sequence[Toleration]) -> Taint | None:
    """The first taint none of `tolerations` tolerates."""
    for taint in taints:
        if not tolerates(tolerations, taint):
            return taint
    return None


class TaintToleration(FilterPlugin, PreScorePlugin, ScorePlugin):
    name = "TaintToleration"

    def events(self) -> ClusterEvent:
        return ClusterEvent.NODE_ADD | ClusterEvent.NODE_TAINT

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if not node.no_schedule_taints:
            return None
        taint = find_untolerated_taint(node.no_schedule_taints, pod.tolerations)
        if taint is None:
            return None
        return unresolvable(f"node(s) had untolerated taint "
                            f"{{{taint.get('key') or ''}: {taint.get('value') or ''}}}")

    def pre_score(self, state: CycleState, pod: PodInfo,
                  nodes: Sequence[NodeInfo]) -> Status | None:
        if not any(node.prefer_no_schedule_taints for node in nodes):
            # Every node would score the same: leaving the plugin out cannot change the pick.
            return SKIP
        # Only tolerations that can apply to PreferNoSchedule taints matter for scoring.
        state.write(_STATE_KEY, [t for t in pod.tolerations
                                 if (t.get("effect") or "") in ("", PREFER_NO_SCHEDULE)])
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        if not node.prefer_no_schedule_taints:
            return 0
        tolerations = state.read(_STATE_KEY)
        return sum(1 for taint in node.prefer_no_schedule_taints
                   if not tolerates(tolerations, taint))

    def normalize(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo],
                  scores: list[int]) -> None:
        default_normalize(scores, reverse=True)  # fewer untolerated taints is better
