"""NodeAffinity: `spec.nodeSelector` and required node affinity decide which nodes a pod may
use (Filter); preferred node affinity terms add their weights to matching nodes (Score).

Node selector terms are ORed; inside a term every `matchExpressions` and `matchFields`
requirement must hold; an empty term matches no node (upstream nodeaffinity semantics).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scheduler.framework import (
    SKIP,
    ClusterEvent,
    CycleState,
    FilterPlugin,
    PreFilterPlugin,
    PreScorePlugin,
    ScorePlugin,
    Status,
    default_normalize,
    unresolvable,
)
from scheduler.types import NodeInfo, PodInfo

ERR_REASON_POD = "node(s) didn't match Pod's node affinity/selector"

_REJECT = unresolvable(ERR_REASON_POD)
_FILTER_KEY = "PreFilterNodeAffinity"
_SCORE_KEY = "PreScoreNodeAffinity"


def _as_int(text: str) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class _Requirement:
    key: str
    operator: str
    values: frozenset[str]
    number: int | None  # the single value of Gt/Lt

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op == "In":
            return self.key in labels and labels[self.key] in self.values
        if op == "NotIn":
            return self.key not in labels or labels[self.key] not in self.values
        if op == "Exists":
            return self.key in labels
        if op == "DoesNotExist":
            return self.key not in labels
        if op in ("Gt", "Lt") and self.number is not None and self.key in labels:
            have = _as_int(labels[self.key])
            if have is None:
                return False
            return have > self.number if op == "Gt" else have < self.number
        return False


def _requirement(expr: Mapping[str, Any]) -> _Requirement:
    values = [str(v) for v in expr.get("values") or []]
    number = _as_int(values[0]) if len(values) == 1 else None
    return _Requirement(str(expr.get("key") or ""), str(expr.get("operator") or ""),
                        frozenset(values), number)


@dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    expressions: tuple[_Requirement, ...]
    fields: tuple[_Requirement, ...]  # only metadata.name is a node field

    def matches(self, node: NodeInfo) -> bool:
        if not self.expressions and not self.fields:
            return False
        labels = node.labels
        if not all(r.matches(labels) for r in self.expressions):
            return False
        if self.fields:
            node_fields = {"metadata.name": node.name}
            return all(r.key == "metadata.name" and r.matches(node_fields)
                       for r in self.fields)
        return True


def node_selector_term(term: Mapping[str, Any]) -> NodeSelectorTerm:
    return NodeSelectorTerm(
        tuple(_requirement(e) for e in term.get("matchExpressions") or []
              if isinstance(e, Mapping)),
        tuple(_requirement(e) for e in term.get("matchFields") or [] if isinstance(e, Mapping)))


@dataclass(frozen=True, slots=True)
class RequiredNodeAffinity:
    """nodeSelector AND (any of the required terms), as upstream GetRequiredNodeAffinity."""

    selector: Mapping[str, str]
    terms: tuple[NodeSelectorTerm, ...] | None  # None: no required node affinity

    def matches(self, node: NodeInfo) -> bool:
        labels = node.labels
        for key, value in self.selector.items():
            if labels.get(key) != value:
                return False
        return self.terms is None or any(t.matches(node) for t in self.terms)


def required_node_affinity(spec: Mapping[str, Any]) -> RequiredNodeAffinity | None:
    selector = spec.get("nodeSelector") or {}
    node_affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    terms = None
    if isinstance(required, Mapping):
        terms = tuple(node_selector_term(t) for t in required.get("nodeSelectorTerms") or []
                      if isinstance(t, Mapping))
    if not selector and terms is None:
        return None
    return RequiredNodeAffinity({str(k): str(v) for k, v in selector.items()}, terms)


def preferred_terms(spec: Mapping[str, Any]) -> list[tuple[int, NodeSelectorTerm]]:
    node_affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    out = []
    for item in node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        if not isinstance(item, Mapping):
            continue
        weight = int(item.get("weight") or 0)
        preference = item.get("preference")
        if weight and isinstance(preference, Mapping):
            out.append((weight, node_selector_term(preference)))
    return out


class NodeAffinity(PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin):
    name = "NodeAffinity"

    def events(self) -> ClusterEvent:
        return ClusterEvent.NODE_ADD | ClusterEvent.NODE_LABEL

    def pre_filter(self, state: CycleState, pod: PodInfo,
                   nodes: Sequence[NodeInfo]) -> Status | None:
        required = required_node_affinity(pod.pod.get("spec") or {})
        if required is None:
            return SKIP
        state.write(_FILTER_KEY, required)
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        required: RequiredNodeAffinity = state.read(_FILTER_KEY)
        return None if required.matches(node) else _REJECT

    def pre_score(self, state: CycleState, pod: PodInfo,
                  nodes: Sequence[NodeInfo]) -> Status | None:
        terms = preferred_terms(pod.pod.get("spec") or {})
        if not terms:
            return SKIP
        state.write(_SCORE_KEY, terms)
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        terms: list[tuple[int, NodeSelectorTerm]] = state.read(_SCORE_KEY)
        return sum(weight for weight, term in terms if term.matches(node))

    def normalize(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo],
                  scores: list[int]) -> None:
        default_normalize(scores)
