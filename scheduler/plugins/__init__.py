"""The default plugin set, in upstream's order (filters run in this order; the first to
reject a node names the reason) with upstream's default score weights."""

from __future__ import annotations

from scheduler.framework import Handle, Plugin
from scheduler.plugins.inter_pod_affinity import InterPodAffinity
from scheduler.plugins.node_affinity import NodeAffinity
from scheduler.plugins.node_name import NodeName
from scheduler.plugins.node_resources_fit import NodeResourcesFit
from scheduler.plugins.node_unschedulable import NodeUnschedulable
from scheduler.plugins.selector_spread import SelectorSpread
from scheduler.plugins.taint_toleration import TaintToleration

PLUGIN_CLASSES: tuple[type[Plugin], ...] = (
    NodeUnschedulable,
    NodeName,
    TaintToleration,
    NodeAffinity,
    NodeResourcesFit,
    InterPodAffinity,
    SelectorSpread,
)

# Upstream 1.32 default weights; SelectorSpread stands in for PodTopologySpread's (2).
DEFAULT_WEIGHTS: dict[str, int] = {
    "TaintToleration": 3,
    "NodeAffinity": 2,
    "NodeResourcesFit": 1,
    "InterPodAffinity": 2,
    "SelectorSpread": 2,
}


def default_plugins(handle: Handle) -> list[Plugin]:
    return [cls(handle) for cls in PLUGIN_CLASSES]


__all__ = ["DEFAULT_WEIGHTS", "PLUGIN_CLASSES", "default_plugins"]
