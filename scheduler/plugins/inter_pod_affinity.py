"""InterPodAffinity: pods that want (affinity) or refuse (anti-affinity) to share a topology
domain — a node (`kubernetes.io/hostname`), a zone (`topology.kubernetes.io/zone`), or any
other node label — with pods matching a selector.

Filter (required terms), as upstream's plugin:
- the incoming pod's affinity: every term needs a matching pod in the node's domain (the
  very first pod of a group that matches its own terms may go anywhere with the labels);
- the incoming pod's anti-affinity: no matching pod may be in the node's domain;
- existing pods' anti-affinity: the incoming pod must not enter a domain holding a pod whose
  anti-affinity term matches it — symmetry, so a later pod cannot break an earlier rule.

PreFilter counts matching pods per (topology key, value) once, so Filter is a dict lookup per
node. Score (preferred terms, both directions, plus existing pods' required affinity at
weight 1) sums term weights per domain and normalises min..max to 0..100.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from scheduler.framework import (
    MAX_NODE_SCORE,
    SKIP,
    ClusterEvent,
    CycleState,
    FilterPlugin,
    PreFilterPlugin,
    PreScorePlugin,
    ScorePlugin,
    Status,
    unresolvable,
    unschedulable,
)
from scheduler.types import AffinityTerm, NodeInfo, PodInfo

ERR_REASON_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
ERR_REASON_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_REASON_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"

# Upstream's default InterPodAffinityArgs.hardPodAffinityWeight.
HARD_POD_AFFINITY_WEIGHT = 1

_FILTER_KEY = "PreFilterInterPodAffinity"
_SCORE_KEY = "PreScoreInterPodAffinity"

_REJECT_AFFINITY = unresolvable(ERR_REASON_AFFINITY)
_REJECT_ANTI_AFFINITY = unschedulable(ERR_REASON_ANTI_AFFINITY)
_REJECT_EXISTING = unschedulable(ERR_REASON_EXISTING_ANTI_AFFINITY)

TopologyPair = tuple[str, str]


def _bump(counts: dict[TopologyPair, int], pair: TopologyPair, by: int) -> None:
    value = counts.get(pair, 0) + by
    if value:
        counts[pair] = value
    else:
        counts.pop(pair, None)


class _FilterState:
    """Matching-pod counts per topology pair, for one incoming pod."""

    __slots__ = (
        "affinity",
        "affinity_terms",
        "anti_affinity",
        "anti_affinity_terms",
        "existing_anti_affinity",
        "namespace_labels",
        "pod",
    )

    def __init__(self, pod: PodInfo, namespace_labels: Mapping[str, str] | None,
                 affinity_terms: tuple[AffinityTerm, ...],
                 anti_affinity_terms: tuple[AffinityTerm, ...]) -> None:
        self.pod = pod
        self.namespace_labels = namespace_labels
        self.affinity_terms = affinity_terms
        self.anti_affinity_terms = anti_affinity_terms
        self.existing_anti_affinity: dict[TopologyPair, int] = {}
        self.affinity: dict[TopologyPair, int] = {}
        self.anti_affinity: dict[TopologyPair, int] = {}

    def clone(self) -> _FilterState:
        other = _FilterState(self.pod, self.namespace_labels, self.affinity_terms,
                             self.anti_affinity_terms)
        other.existing_anti_affinity = dict(self.existing_anti_affinity)
        other.affinity = dict(self.affinity)
        other.anti_affinity = dict(self.anti_affinity)
        return other

    def count_existing_anti_affinity(self, existing: PodInfo, node: NodeInfo, by: int) -> None:
        labels = node.labels
        for term in existing.required_anti_affinity:
            if term.topology_key in labels and term.matches(self.pod, self.namespace_labels):
                _bump(self.existing_anti_affinity, (term.topology_key,
                                                    labels[term.topology_key]), by)

    def count_incoming_terms(self, existing: PodInfo, node: NodeInfo, by: int) -> None:
        labels = node.labels
        # The incoming pod's terms have namespace selectors resolved into names already.
        for term in self.affinity_terms:
            if term.topology_key in labels and term.matches(existing, None):
                _bump(self.affinity, (term.topology_key, labels[term.topology_key]), by)
        for term in self.anti_affinity_terms:
            if term.topology_key in labels and term.matches(existing, None):
                _bump(self.anti_affinity, (term.topology_key, labels[term.topology_key]), by)

    def update_with_pod(self, existing: PodInfo, node: NodeInfo, by: int) -> None:
        self.count_existing_anti_affinity(existing, node, by)
        self.count_incoming_terms(existing, node, by)


class InterPodAffinity(PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin):
    name = "InterPodAffinity"

    def events(self) -> ClusterEvent:
        return (ClusterEvent.ASSIGNED_POD_ADD | ClusterEvent.ASSIGNED_POD_UPDATE
                | ClusterEvent.ASSIGNED_POD_DELETE | ClusterEvent.NODE_ADD
                | ClusterEvent.NODE_LABEL)

    def _resolve(self, terms: tuple[AffinityTerm, ...]) -> tuple[AffinityTerm, ...]:
        """Fold a term's namespace selector into its namespace names (upstream
        mergeAffinityTermNamespacesIfNotEmpty), so matching needs no namespace lookups."""
        out = []
        for t in terms:
            if t.namespace_selector is None:
                out.append(t)
            else:
                names = t.namespaces | self.handle.namespaces_matching(t.namespace_selector)
                out.append(AffinityTerm(names, None, t.selector, t.topology_key, t.weight))
        return tuple(out)

    # --- filter ---------------------------------------------------------------------------

    def pre_filter(self, state: CycleState, pod: PodInfo,
                   nodes: Sequence[NodeInfo]) -> Status | None:
        if (not pod.required_affinity and not pod.required_anti_affinity
                and self.handle.cache.pods_with_required_anti_affinity == 0):
            return SKIP
        s = _FilterState(pod, self.handle.namespace_labels(pod.namespace),
                         self._resolve(pod.required_affinity),
                         self._resolve(pod.required_anti_affinity))
        has_terms = bool(s.affinity_terms or s.anti_affinity_terms)
        for node in nodes:
            for existing in node.pods_with_required_anti_affinity.values():
                s.count_existing_anti_affinity(existing, node, 1)
            if has_terms:
                for existing in node.pods.values():
                    s.count_incoming_terms(existing, node, 1)
        if not s.existing_anti_affinity and not has_terms:
            return SKIP
        state.write(_FILTER_KEY, s)
        return None

    def remove_pod(self, state: CycleState, pod: PodInfo, victim: PodInfo,
                   node: NodeInfo) -> None:
        s: _FilterState | None = state.get(_FILTER_KEY)
        if s is not None:
            s.update_with_pod(victim, node, -1)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        s: _FilterState = state.read(_FILTER_KEY)
        labels = node.labels
        if s.affinity_terms and not self._satisfies_affinity(s, labels):
            return _REJECT_AFFINITY
        if s.anti_affinity:
            for term in s.anti_affinity_terms:
                value = labels.get(term.topology_key)
                if value is not None and s.anti_affinity.get((term.topology_key, value), 0) > 0:
                    return _REJECT_ANTI_AFFINITY
        if s.existing_anti_affinity:
            for pair in labels.items():
                if s.existing_anti_affinity.get(pair, 0) > 0:
                    return _REJECT_EXISTING
        return None

    @staticmethod
    def _satisfies_affinity(s: _FilterState, labels: Mapping[str, str]) -> bool:
        pods_exist = True
        for term in s.affinity_terms:
            value = labels.get(term.topology_key)
            if value is None:
                return False  # the node must carry every topology label the terms use
            if s.affinity.get((term.topology_key, value), 0) <= 0:
                pods_exist = False
        if pods_exist:
            return True
        # The first pod of a group with affinity to itself: nothing matches anywhere yet,
        # so let it start the group rather than stay pending forever.
        return not s.affinity and all(t.matches(s.pod, None) for t in s.affinity_terms)

    # --- score ----------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: PodInfo,
                  nodes: Sequence[NodeInfo]) -> Status | None:
        cache = self.handle.cache
        has_constraints = bool(pod.preferred_affinity or pod.preferred_anti_affinity)
        if not has_constraints and cache.pods_with_affinity == 0:
            return SKIP
        ns_labels = self.handle.namespace_labels(pod.namespace)
        preferred = self._resolve(pod.preferred_affinity)
        preferred_anti = self._resolve(pod.preferred_anti_affinity)
        scores: dict[str, dict[str, int]] = {}

        def process(term: AffinityTerm, weight: int, target: PodInfo,
                    target_ns_labels: Mapping[str, str] | None,
                    labels: Mapping[str, str]) -> None:
            value = labels.get(term.topology_key)
            if value is not None and term.matches(target, target_ns_labels):
                by_value = scores.setdefault(term.topology_key, {})
                by_value[value] = by_value.get(value, 0) + weight

        # Every node counts, not only the feasible ones: a domain spans nodes.
        for node in cache.node_list():
            existing_pods = node.pods if has_constraints else node.pods_with_affinity
            labels = node.labels
            if not existing_pods or not labels:
                continue
            for existing in existing_pods.values():
                for t in preferred:
                    process(t, t.weight, existing, None, labels)
                for t in preferred_anti:
                    process(t, -t.weight, existing, None, labels)
                for t in existing.required_affinity:
                    process(t, HARD_POD_AFFINITY_WEIGHT, pod, ns_labels, labels)
                for t in existing.preferred_affinity:
                    process(t, t.weight, pod, ns_labels, labels)
                for t in existing.preferred_anti_affinity:
                    process(t, -t.weight, pod, ns_labels, labels)
        if not scores:
            return SKIP
        state.write(_SCORE_KEY, scores)
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        scores: dict[str, dict[str, int]] = state.read(_SCORE_KEY)
        labels = node.labels
        total = 0
        for key, by_value in scores.items():
            value = labels.get(key)
            if value is not None:
                total += by_value.get(value, 0)
        return total

    def normalize(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo],
                  scores: list[int]) -> None:
        if not scores:
            return
        low, high = min(scores), max(scores)
        spread = high - low
        for i, s in enumerate(scores):
            scores[i] = int(MAX_NODE_SCORE * (s - low) / spread) if spread > 0 else 0
