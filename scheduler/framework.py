"""The scheduling framework: plugin interfaces, cycle state, and one scheduling cycle.

Shaped like upstream's `pkg/scheduler/framework` and `schedule_one.go`:

- PreFilter plugins look at the pod once (and may say Skip: "my Filter has nothing to check
  for this pod", which saves a call per node);
- Filter plugins say, node by node, whether the pod may go there; the first plugin to say no
  decides the node's status (and its reason in the FailedScheduling message);
- filtering stops once enough feasible nodes are found (upstream's adaptive
  percentageOfNodesToScore), starting each cycle where the previous one stopped;
- PreScore/Score plugins rank the feasible nodes, each normalised to 0..100 and weighted;
  the best total wins, ties broken at random.

A cycle never awaits: it sees one consistent picture of the cache and is over before any
informer event is applied.
"""

from __future__ import annotations

import abc
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Flag, IntEnum
from typing import Any, ClassVar

from api.selectors import LabelSelector
from scheduler.cache import Cache
from scheduler.types import NodeInfo, PodInfo

MAX_NODE_SCORE = 100
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5
BASE_PERCENTAGE_OF_NODES_TO_SCORE = 50

ERR_NO_NODES_AVAILABLE = "no nodes available to schedule pods"


class Code(IntEnum):
    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2  # another placement of other pods (preemption) might help
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3  # nothing short of a cluster change helps
    SKIP = 4


@dataclass(frozen=True, slots=True)
class Status:
    """A plugin's verdict; Filter plugins return None for "fits" (the common, cheap case)."""

    code: Code
    reasons: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    @property
    def rejected(self) -> bool:
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)


def unschedulable(*reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE, reasons)


def unresolvable(*reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, reasons)


SKIP = Status(Code.SKIP)


class ClusterEvent(Flag):
    """Changes that can make a pod schedulable that was not (upstream framework.ClusterEvent).

    Each plugin names the events that may undo its own rejections; a pod parked as
    unschedulable is retried only on those, so unrelated churn never wakes it.
    """

    NONE = 0
    NODE_ADD = 1
    NODE_ALLOCATABLE = 2
    NODE_LABEL = 4
    NODE_TAINT = 8  # taints, or spec.unschedulable
    ASSIGNED_POD_ADD = 16
    ASSIGNED_POD_UPDATE = 32  # labels, or requests scaled down
    ASSIGNED_POD_DELETE = 64
    NODE_UPDATE = 2 | 4 | 8
    ALL = 127


class CycleState:
    """Per-cycle scratch space plugins share between their PreFilter/Filter/Score calls."""

    __slots__ = ("_data", "skip_filter", "skip_score")

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self.skip_filter: set[str] = set()
        self.skip_score: set[str] = set()

    def write(self, key: str, value: Any) -> None:
        self._data[key] = value

    def read(self, key: str) -> Any:
        return self._data[key]

    def get(self, key: str) -> Any:
        return self._data.get(key)

    def clone(self) -> CycleState:
        """A copy whose plugin states can be changed without touching this one."""
        other = CycleState()
        for key, value in self._data.items():
            clone = getattr(value, "clone", None)
            other._data[key] = clone() if callable(clone) else value
        other.skip_filter = set(self.skip_filter)
        other.skip_score = set(self.skip_score)
        return other


@dataclass(frozen=True)
class Handle:
    """What plugins may consult besides the pod and node at hand (upstream framework.Handle)."""

    cache: Cache
    namespace_labels: Callable[[str], Mapping[str, str] | None] = lambda ns: None
    namespaces_matching: Callable[[LabelSelector], frozenset[str]] = lambda sel: frozenset()


class Plugin(abc.ABC):
    """Base of every plugin; a plugin implements whichever extension points it needs."""

    name: ClassVar[str] = ""

    def __init__(self, handle: Handle) -> None:
        self.handle = handle

    def events(self) -> ClusterEvent:
        """Cluster events that may make a pod this plugin rejected schedulable."""
        return ClusterEvent.NONE


class PreFilterPlugin(Plugin):
    @abc.abstractmethod
    def pre_filter(self, state: CycleState, pod: PodInfo,
                   nodes: Sequence[NodeInfo]) -> Status | None:
        """Prepare for filtering; SKIP means this plugin's Filter has nothing to check."""

    def remove_pod(self, state: CycleState, pod: PodInfo, victim: PodInfo,
                   node: NodeInfo) -> None:
        """Adjust the pre-filter state for `victim` leaving `node` (preemption dry run)."""


class FilterPlugin(Plugin):
    @abc.abstractmethod
    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        """None if `pod` may run on `node`, else why not."""


class PreScorePlugin(Plugin):
    @abc.abstractmethod
    def pre_score(self, state: CycleState, pod: PodInfo,
                  nodes: Sequence[NodeInfo]) -> Status | None:
        """Prepare for scoring the feasible `nodes`; SKIP leaves this plugin out."""


class ScorePlugin(Plugin):
    @abc.abstractmethod
    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        """The node's raw score for `pod` (normalised to 0-100 afterwards)."""

    def score_nodes(self, state: CycleState, pod: PodInfo,
                    nodes: Sequence[NodeInfo]) -> list[int]:
        """Raw scores for all `nodes`; plugins on the hot path override this with a tight
        loop, since one Python call per node and plugin adds up over hundreds of nodes."""
        score = self.score
        return [score(state, pod, node) for node in nodes]

    def normalize(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo],
                  scores: list[int]) -> None:
        """Bring `scores` (in place) into 0..MAX_NODE_SCORE; by default they already are."""


def default_normalize(scores: list[int], reverse: bool = False) -> None:
    """Scale to 0..100 by the highest score, optionally reversed (upstream
    helper.DefaultNormalizeScore): for plugins whose raw score is a count."""
    highest = max(scores, default=0)
    if highest == 0:
        if reverse:
            scores[:] = [MAX_NODE_SCORE] * len(scores)
        return
    for i, s in enumerate(scores):
        s = MAX_NODE_SCORE * s // highest
        scores[i] = MAX_NODE_SCORE - s if reverse else s


@dataclass
class Diagnosis:
    """Why a pod fits nowhere: each node's rejection, and which plugins rejected it."""

    node_to_status: dict[str, Status] = field(default_factory=dict)
    unschedulable_plugins: set[str] = field(default_factory=set)
    pre_filter_msg: str = ""
    post_filter_msg: str = ""


def fit_error_message(num_all_nodes: int, diagnosis: Diagnosis) -> str:
    """Upstream FitError.Error(): "0/3 nodes are available: 1 Insufficient cpu, 2 ...."

    Reasons are counted over nodes and sorted as strings ("10 x" before "2 y", as upstream
    does); a PreFilter rejection replaces the per-node histogram; the PostFilter
    (preemption) verdict follows.
    """
    msg = f"0/{num_all_nodes} nodes are available:"
    if diagnosis.pre_filter_msg:
        msg += f" {diagnosis.pre_filter_msg}."
    else:
        histogram = Counter(reason for status in diagnosis.node_to_status.values()
                            for reason in status.reasons)
        parts = sorted(f"{count} {reason}" for reason, count in histogram.items())
        if parts:
            msg += f" {', '.join(parts)}."
    if diagnosis.post_filter_msg:
        msg += f" {diagnosis.post_filter_msg}"
    return msg


class FitError(Exception):
    """No node fits the pod (or there are no nodes at all)."""

    def __init__(self, pod: PodInfo, num_all_nodes: int, diagnosis: Diagnosis,
                 state: CycleState | None = None) -> None:
        super().__init__()
        self.pod = pod
        self.num_all_nodes = num_all_nodes
        self.diagnosis = diagnosis
        self.state = state

    def __str__(self) -> str:
        if self.num_all_nodes == 0:
            return ERR_NO_NODES_AVAILABLE
        return fit_error_message(self.num_all_nodes, self.diagnosis)


@dataclass(frozen=True, slots=True)
class ScheduleResult:
    node: str
    evaluated_nodes: int
    feasible_nodes: int


def num_feasible_nodes_to_find(num_all_nodes: int, percentage: int = 0) -> int:
    """How many feasible nodes are enough to pick from (upstream numFeasibleNodesToFind).

    With `percentage` 0 it adapts: 50% of small clusters, less of larger ones, never below
    5% nor below 100 nodes. Scoring every node of a big cluster buys little placement
    quality for a lot of time.
    """
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND or percentage >= 100:
        return num_all_nodes
    if percentage <= 0:
        percentage = max(BASE_PERCENTAGE_OF_NODES_TO_SCORE - num_all_nodes // 125,
                         MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    return max(num_all_nodes * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


class Framework:
    """Runs the configured plugins over a pod and the nodes of the cache."""

    def __init__(self, plugins: Sequence[Plugin], weights: Mapping[str, int], *,
                 percentage_of_nodes_to_score: int = 0, rng: random.Random | None = None
                 ) -> None:
        self.plugins = list(plugins)
        self.pre_filter_plugins = [p for p in plugins if isinstance(p, PreFilterPlugin)]
        self.filter_plugins = [p for p in plugins if isinstance(p, FilterPlugin)]
        self.pre_score_plugins = [p for p in plugins if isinstance(p, PreScorePlugin)]
        self.score_plugins = [(p, weights.get(p.name, 1)) for p in plugins
                              if isinstance(p, ScorePlugin) and weights.get(p.name, 1) > 0]
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score
        self._events = {p.name: p.events() for p in plugins}
        self._rng = rng or random.Random()
        self._next_start_node = 0

    def events_of(self, plugin_name: str) -> ClusterEvent:
        return self._events.get(plugin_name, ClusterEvent.ALL)

    # --- one cycle ------------------------------------------------------------------------

    def schedule(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> ScheduleResult:
        """Pick a node for `pod`, or raise FitError saying why none fits."""
        state = CycleState()
        diagnosis = Diagnosis()
        if not nodes:
            raise FitError(pod, 0, diagnosis, state)
        self.run_pre_filter(state, pod, nodes, diagnosis)
        feasible, evaluated = self._find_feasible(state, pod, nodes, diagnosis)
        if not feasible:
            raise FitError(pod, len(nodes), diagnosis, state)
        if len(feasible) == 1:
            return ScheduleResult(feasible[0].name, evaluated, 1)
        totals = self.run_score(state, pod, feasible)
        return ScheduleResult(self._select_host(feasible, totals), evaluated, len(feasible))

    def run_pre_filter(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo],
                       diagnosis: Diagnosis) -> None:
        for plugin in self.pre_filter_plugins:
            status = plugin.pre_filter(state, pod, nodes)
            if status is None:
                continue
            if status.code == Code.SKIP:
                state.skip_filter.add(plugin.name)
            elif status.rejected:
                # Every node is out for the same reason; the message says it once.
                diagnosis.pre_filter_msg = status.message
                diagnosis.unschedulable_plugins.add(plugin.name)
                for node in nodes:
                    diagnosis.node_to_status[node.name] = status
                raise FitError(pod, len(nodes), diagnosis, state)
            else:
                raise RuntimeError(f"{plugin.name} pre-filter: {status.message}")

    def run_filters(self, state: CycleState, pod: PodInfo,
                    node: NodeInfo) -> tuple[str, Status] | None:
        """The first filter plugin that rejects `pod` on `node`, or None if it fits."""
        for plugin in self.filter_plugins:
            if plugin.name in state.skip_filter:
                continue
            status = plugin.filter(state, pod, node)
            if status is not None:
                return plugin.name, status
        return None

    def _find_feasible(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo],
                       diagnosis: Diagnosis) -> tuple[list[NodeInfo], int]:
        active = [p for p in self.filter_plugins if p.name not in state.skip_filter]
        filters = [(p.filter, p.name) for p in active]
        total = len(nodes)
        wanted = num_feasible_nodes_to_find(total, self.percentage_of_nodes_to_score)
        start = self._next_start_node % total
        feasible: list[NodeInfo] = []
        statuses = diagnosis.node_to_status
        rejecting = diagnosis.unschedulable_plugins
        evaluated = 0
        # Hot loop: up to every node times every filter, so it stays plain and local.
        for node in (*nodes[start:], *nodes[:start]):
            evaluated += 1
            for run_filter, name in filters:
                status = run_filter(state, pod, node)
                if status is not None:
                    if status.code == Code.ERROR:
                        raise RuntimeError(f"{name} filter on {node.name}: {status.message}")
                    statuses[node.name] = status
                    rejecting.add(name)
                    break
            else:
                feasible.append(node)
                if len(feasible) >= wanted:
                    break
        self._next_start_node = (start + evaluated) % total
        return feasible, evaluated

    def run_score(self, state: CycleState, pod: PodInfo,
                  nodes: Sequence[NodeInfo]) -> list[int]:
        """Weighted sum of every score plugin's normalised score, per node."""
        for pre in self.pre_score_plugins:
            status = pre.pre_score(state, pod, nodes)
            if status is not None and status.code == Code.SKIP:
                state.skip_score.add(pre.name)
        totals = [0] * len(nodes)
        for scorer, weight in self.score_plugins:
            if scorer.name in state.skip_score:
                continue
            scores = scorer.score_nodes(state, pod, nodes)
            scorer.normalize(state, pod, nodes, scores)
            for i, s in enumerate(scores):
                totals[i] += s * weight
        return totals

    def _select_host(self, nodes: Sequence[NodeInfo], totals: Sequence[int]) -> str:
        """The highest total; among equals one at random (reservoir sampling, as upstream)."""
        best, best_score, ties = nodes[0].name, totals[0], 1
        for node, score in zip(nodes[1:], totals[1:], strict=True):
            if score > best_score:
                best, best_score, ties = node.name, score, 1
            elif score == best_score:
                ties += 1
                if self._rng.randrange(ties) == 0:
                    best = node.name
        return best
