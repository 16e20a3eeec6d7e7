"""NodeResourcesFit: the pod's requests must fit in what the node has left (Filter), and
emptier nodes score higher (Score, upstream's LeastAllocated strategy).

"Left" is allocatable minus the requests of every pod on the node, bound or only assumed.
Requests are per pod as upstream sums them (containers added, init containers as a
maximum, sidecars and overhead on top; see scheduler.types.pod_requests).
"""

from __future__ import annotations

from collections.abc import Sequence

from scheduler.framework import (
    MAX_NODE_SCORE,
    ClusterEvent,
    CycleState,
    FilterPlugin,
    ScorePlugin,
    Status,
    unschedulable,
)
from scheduler.types import NodeInfo, PodInfo

# Upstream's default scoring resources and weights: cpu 1, memory 1.
CPU_WEIGHT = 1
MEMORY_WEIGHT = 1

_TOO_MANY_PODS = "Too many pods"


def insufficient_resources(pod: PodInfo, node: NodeInfo) -> list[str]:
    """Every reason the pod does not fit the node, in upstream's order (fitsRequest)."""
    reasons: list[str] = []
    if len(node.pods) + 1 > node.allowed_pods:
        reasons.append(_TOO_MANY_PODS)
    want = pod.requests
    if not (want.milli_cpu or want.memory or want.ephemeral_storage or want.scalars):
        return reasons
    have, used = node.allocatable, node.requested
    if want.milli_cpu > 0 and want.milli_cpu > have.milli_cpu - used.milli_cpu:
        reasons.append("Insufficient cpu")
    if want.memory > 0 and want.memory > have.memory - used.memory:
        reasons.append("Insufficient memory")
    if want.ephemeral_storage > 0 and (
            want.ephemeral_storage > have.ephemeral_storage - used.ephemeral_storage):
        reasons.append("Insufficient ephemeral-storage")
    for name, quantity in want.scalars.items():
        if quantity > 0 and quantity > have.scalars.get(name, 0) - used.scalars.get(name, 0):
            reasons.append(f"Insufficient {name}")
    return reasons


def least_allocated_score(requested: int, allocatable: int) -> int:
    """0..100, higher for more room left (upstream leastRequestedScore)."""
    if allocatable == 0 or requested > allocatable:
        return 0
    return (allocatable - requested) * MAX_NODE_SCORE // allocatable


class NodeResourcesFit(FilterPlugin, ScorePlugin):
    name = "NodeResourcesFit"

    def events(self) -> ClusterEvent:
        return (ClusterEvent.NODE_ADD | ClusterEvent.NODE_ALLOCATABLE
                | ClusterEvent.ASSIGNED_POD_DELETE | ClusterEvent.ASSIGNED_POD_UPDATE)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        # The common case (fits, nothing exotic) answered without building a list.
        want, have, used = pod.requests, node.allocatable, node.requested
        if (len(node.pods) < node.allowed_pods
                and want.milli_cpu <= have.milli_cpu - used.milli_cpu
                and want.memory <= have.memory - used.memory
                and want.ephemeral_storage <= have.ephemeral_storage - used.ephemeral_storage
                and not want.scalars):
            return None
        reasons = insufficient_resources(pod, node)
        return unschedulable(*reasons) if reasons else None

    def score_nodes(self, state: CycleState, pod: PodInfo,
                    nodes: Sequence[NodeInfo]) -> list[int]:
        # `score`, inlined: this runs for every feasible node of every pod.
        want = pod.non_zero_requests
        want_cpu, want_mem = want.milli_cpu, want.memory
        out = []
        for node in nodes:
            have, used = node.allocatable, node.non_zero_requested
            cpu, mem = have.milli_cpu, have.memory
            total = weights = 0
            if cpu:
                req = used.milli_cpu + want_cpu
                total += (cpu - req) * MAX_NODE_SCORE // cpu * CPU_WEIGHT if req <= cpu else 0
                weights += CPU_WEIGHT
            if mem:
                req = used.memory + want_mem
                total += (mem - req) * MAX_NODE_SCORE // mem * MEMORY_WEIGHT if req <= mem else 0
                weights += MEMORY_WEIGHT
            out.append(total // weights if weights else 0)
        return out

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        # Scoring counts pods without requests as small ones (non-zero requests), so that
        # such pods still spread instead of all landing on one node.
        want, used, have = pod.non_zero_requests, node.non_zero_requested, node.allocatable
        total = weights = 0
        if have.milli_cpu:
            total += least_allocated_score(used.milli_cpu + want.milli_cpu,
                                           have.milli_cpu) * CPU_WEIGHT
            weights += CPU_WEIGHT
        if have.memory:
            total += least_allocated_score(used.memory + want.memory, have.memory) * MEMORY_WEIGHT
            weights += MEMORY_WEIGHT
        return total // weights if weights else 0
