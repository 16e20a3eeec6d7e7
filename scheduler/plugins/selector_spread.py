"""SelectorSpread (a lite PodTopologySpread default): replicas of one controller spread over
nodes and zones.

The score counts, per node, the pods that share the incoming pod's controlling owner
(ReplicaSet, Job, StatefulSet...: the `controller: true` ownerReference) and prefers nodes
with fewer of them; when nodes carry zone labels, zones with fewer such pods weigh in at
two thirds, as upstream's SelectorSpread did. Pods without a controller are not scored.
"""

from __future__ import annotations

from collections.abc import Sequence

from scheduler.framework import (
    MAX_NODE_SCORE,
    SKIP,
    CycleState,
    PreScorePlugin,
    ScorePlugin,
    Status,
)
from scheduler.types import NodeInfo, PodInfo

# How much of the score comes from zone spreading when zones are known (upstream value).
ZONE_WEIGHTING = 2.0 / 3.0


class SelectorSpread(PreScorePlugin, ScorePlugin):
    name = "SelectorSpread"

    def pre_score(self, state: CycleState, pod: PodInfo,
                  nodes: Sequence[NodeInfo]) -> Status | None:
        return None if pod.owner is not None else SKIP

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        assert pod.owner is not None
        return node.owner_counts.get(pod.owner, 0)

    def score_nodes(self, state: CycleState, pod: PodInfo,
                    nodes: Sequence[NodeInfo]) -> list[int]:
        owner = pod.owner
        return [node.owner_counts.get(owner, 0) for node in nodes]  # type: ignore[arg-type]

    def normalize(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo],
                  scores: list[int]) -> None:
        max_by_node = max(scores, default=0)
        by_zone: dict[str, int] = {}
        for node, count in zip(nodes, scores, strict=True):
            if node.zone:
                by_zone[node.zone] = by_zone.get(node.zone, 0) + count
        if max_by_node == 0 and not by_zone:
            scores[:] = [MAX_NODE_SCORE] * len(scores)  # no siblings anywhere: all equal
            return
        max_by_zone = max(by_zone.values(), default=0)
        # A zone's part of the score, worked out once per zone rather than once per node.
        zone_part = {zone: ZONE_WEIGHTING * (MAX_NODE_SCORE * (max_by_zone - count) / max_by_zone
                                             if max_by_zone > 0 else MAX_NODE_SCORE)
                     for zone, count in by_zone.items()}
        per_sibling = MAX_NODE_SCORE / max_by_node if max_by_node > 0 else 0.0
        node_weight = 1.0 - ZONE_WEIGHTING
        for i, (node, count) in enumerate(zip(nodes, scores, strict=True)):
            f = MAX_NODE_SCORE - count * per_sibling  # 100 for no siblings, 0 for the most
            if node.zone:
                f = f * node_weight + zone_part[node.zone]
            scores[i] = int(f)
