"""Scheduler plugins as pure functions over plain node and pod dicts."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.cache import Cache
from scheduler.framework import SKIP, Code, CycleState, Handle, Plugin
from scheduler.plugins.inter_pod_affinity import (
    ERR_REASON_AFFINITY,
    ERR_REASON_ANTI_AFFINITY,
    ERR_REASON_EXISTING_ANTI_AFFINITY,
    InterPodAffinity,
)
from scheduler.plugins.node_affinity import ERR_REASON_POD, NodeAffinity
from scheduler.plugins.node_name import NodeName
from scheduler.plugins.node_resources_fit import NodeResourcesFit, insufficient_resources
from scheduler.plugins.node_unschedulable import NodeUnschedulable
from scheduler.plugins.selector_spread import SelectorSpread
from scheduler.plugins.taint_toleration import TaintToleration, tolerates_taint
from scheduler.types import NodeInfo, PodInfo, pod_requests

HOST = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"


# --- builders (shared with the other scheduler unit tests) ---------------------------------


def make_node(name: str, cpu: str = "4", memory: str = "16Gi", pods: str = "110", *,
              labels: dict[str, str] | None = None, taints: list[dict[str, Any]] | None = None,
              unschedulable: bool = False, zone: str | None = None,
              extra: dict[str, str] | None = None) -> dict[str, Any]:
    all_labels = {HOST: name, **(labels or {})}
    if zone is not None:
        all_labels[ZONE] = zone
    allocatable = {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": all_labels},
            "spec": spec, "status": {"capacity": allocatable, "allocatable": allocatable}}


def make_pod(name: str, cpu: str | None = None, memory: str | None = None, *,
             namespace: str = "default", labels: dict[str, str] | None = None,
             node: str | None = None, owner: str | None = None, priority: int = 0,
             **spec: Any) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    container: dict[str, Any] = {"name": "c", "image": "busybox"}
    if requests:
        container["resources"] = {"requests": requests}
    md: dict[str, Any] = {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                          "labels": labels or {}}
    if owner:
        md["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                                  "uid": f"uid-{owner}", "controller": True}]
    full_spec: dict[str, Any] = {"containers": [container], "schedulerName": "default-scheduler",
                                 "priority": priority, **spec}
    if node:
        full_spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": full_spec}


def cluster(*nodes: dict[str, Any], pods: tuple[dict[str, Any], ...] = ()) -> Cache:
    cache = Cache()
    for n in nodes:
        cache.add_node(n)
    for p in pods:
        cache.add_pod(p)
    return cache


def info(cache: Cache, name: str) -> NodeInfo:
    node = cache.node(name)
    assert node is not None
    return node


def run_filter(plugin: Plugin, pod: dict[str, Any], node: NodeInfo,
               nodes: list[NodeInfo] | None = None) -> tuple[str, ...] | None:
    """Run pre-filter + filter; None if the pod fits, else the reasons."""
    state = CycleState()
    pi = PodInfo(pod)
    pre = getattr(plugin, "pre_filter", None)
    if pre is not None:
        status = pre(state, pi, nodes if nodes is not None else [node])
        if status is SKIP:
            return None
    status = plugin.filter(state, pi, node)  # type: ignore[attr-defined]
    return None if status is None else status.reasons


def run_scores(plugin: Plugin, pod: dict[str, Any], nodes: list[NodeInfo]) -> list[int] | None:
    """Normalised scores per node, or None if the plugin skips this pod."""
    state = CycleState()
    pi = PodInfo(pod)
    pre = getattr(plugin, "pre_score", None)
    if pre is not None and pre(state, pi, nodes) is SKIP:
        return None
    scores = [plugin.score(state, pi, n) for n in nodes]  # type: ignore[attr-defined]
    plugin.normalize(state, pi, nodes, scores)  # type: ignore[attr-defined]
    return scores


# --- requests ------------------------------------------------------------------------------


def test_pod_requests_sum_containers_and_take_max_with_init_containers() -> None:
    spec = {
        "containers": [{"resources": {"requests": {"cpu": "2", "memory": "1G"}}},
                       {"resources": {"requests": {"cpu": "1", "memory": "1G"}}}],
        "initContainers": [{"resources": {"requests": {"cpu": "2", "memory": "1G"}}},
                           {"resources": {"requests": {"cpu": "2", "memory": "3G"}}}],
    }
    r = pod_requests(spec)
    assert (r.milli_cpu, r.memory) == (3000, 3_000_000_000)  # upstream's worked example


def test_pod_requests_sidecars_overhead_and_extended_resources() -> None:
    spec = {
        "containers": [{"resources": {"requests": {"cpu": "1", "example.com/gpu": "1"}}}],
        "initContainers": [
            {"restartPolicy": "Always", "resources": {"requests": {"cpu": "500m"}}},
            {"resources": {"requests": {"cpu": "2"}}},  # runs next to the sidecar
        ],
        "overhead": {"cpu": "100m", "memory": "10Mi"},
    }
    r = pod_requests(spec)
    assert r.milli_cpu == 2500 + 100  # max(1 + 0.5, 2 + 0.5) + overhead
    assert r.memory == 10 * 1024 * 1024
    assert r.scalars == {"example.com/gpu": 1}


def test_non_zero_requests_default_missing_cpu_and_memory() -> None:
    r = pod_requests({"containers": [{}, {"resources": {"requests": {"cpu": "1"}}}]},
                     non_zero=True)
    assert r.milli_cpu == 100 + 1000
    assert r.memory == 2 * 200 * 1024 * 1024


# --- NodeResourcesFit ----------------------------------------------------------------------


def test_fit_reports_every_insufficient_resource_in_upstream_order() -> None:
    cache = cluster(make_node("n1", cpu="1", memory="1Gi", pods="1",
                              extra={"ephemeral-storage": "1Gi"}),
                    pods=(make_pod("old", "500m", node="n1"),))
    big = make_pod("big", "2", "2Gi")
    big["spec"]["containers"][0]["resources"]["requests"].update(
        {"ephemeral-storage": "2Gi", "example.com/gpu": "1"})
    assert insufficient_resources(PodInfo(big), info(cache, "n1")) == [
        "Too many pods", "Insufficient cpu", "Insufficient memory",
        "Insufficient ephemeral-storage", "Insufficient example.com/gpu"]


def test_fit_counts_bound_and_assumed_pods() -> None:
    cache = cluster(make_node("n1", cpu="2"), pods=(make_pod("a", "1", node="n1"),))
    plugin = NodeResourcesFit(Handle(cache))
    assert run_filter(plugin, make_pod("b", "1"), info(cache, "n1")) is None
    cache.assume_pod(PodInfo(make_pod("b", "1")), "n1")
    assert run_filter(plugin, make_pod("c", "500m"), info(cache, "n1")) == ("Insufficient cpu",)
    cache.forget_pod("default/b")
    assert run_filter(plugin, make_pod("c", "500m"), info(cache, "n1")) is None


def test_fit_pod_without_requests_fits_a_full_node_but_not_past_the_pod_limit() -> None:
    cache = cluster(make_node("n1", cpu="1", pods="2"), pods=(make_pod("a", "1", node="n1"),))
    plugin = NodeResourcesFit(Handle(cache))
    assert run_filter(plugin, make_pod("free"), info(cache, "n1")) is None
    cache.add_pod(make_pod("b", node="n1"))
    assert run_filter(plugin, make_pod("free"), info(cache, "n1")) == ("Too many pods",)


def test_fit_score_prefers_the_emptier_node() -> None:
    cache = cluster(make_node("empty", cpu="4", memory="16Gi"),
                    make_node("busy", cpu="4", memory="16Gi"),
                    pods=(make_pod("x", "2", "8Gi", node="busy"),))
    scores = run_scores(NodeResourcesFit(Handle(cache)), make_pod("p", "1", "4Gi"),
                        [info(cache, "empty"), info(cache, "busy")])
    assert scores == [75, 25]  # (4-1)/4 and (4-3)/4 for cpu and memory alike


# --- NodeUnschedulable, NodeName ------------------------------------------------------------


def test_cordoned_node_rejects_unless_the_pod_tolerates_unschedulable() -> None:
    cache = cluster(make_node("n1", unschedulable=True))
    plugin = NodeUnschedulable(Handle(cache))
    assert run_filter(plugin, make_pod("p"), info(cache, "n1")) == ("node(s) were unschedulable",)
    tolerant = make_pod("ds", tolerations=[{"key": "node.kubernetes.io/unschedulable",
                                            "operator": "Exists", "effect": "NoSchedule"}])
    assert run_filter(plugin, tolerant, info(cache, "n1")) is None


def test_node_name_only_matches_the_named_node() -> None:
    cache = cluster(make_node("n1"), make_node("n2"))
    plugin = NodeName(Handle(cache))
    assert run_filter(plugin, make_pod("p"), info(cache, "n2")) is None  # skipped
    pinned = make_pod("p", nodeName="n1")
    assert run_filter(plugin, pinned, info(cache, "n1")) is None
    assert run_filter(plugin, pinned, info(cache, "n2")) == (
        "node(s) didn't match the requested node name",)


# --- TaintToleration -----------------------------------------------------------------------


@pytest.mark.parametrize(("toleration", "taint", "expected"), [
    ({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"},
     {"key": "k", "value": "v", "effect": "NoSchedule"}, True),
    ({"key": "k", "value": "v"}, {"key": "k", "value": "v", "effect": "NoExecute"}, True),
    ({"key": "k", "value": "other"}, {"key": "k", "value": "v", "effect": "NoSchedule"}, False),
    ({"key": "k", "operator": "Exists"}, {"key": "k", "value": "v", "effect": "NoSchedule"}, True),
    ({"operator": "Exists"}, {"key": "any", "value": "v", "effect": "NoExecute"}, True),
    ({"key": "k", "operator": "Exists", "effect": "NoExecute"},
     {"key": "k", "effect": "NoSchedule"}, False),
    ({"key": "other", "operator": "Exists"}, {"key": "k", "effect": "NoSchedule"}, False),
])
def test_toleration_matching(toleration: dict[str, str], taint: dict[str, str],
                             expected: bool) -> None:
    assert tolerates_taint(toleration, taint) is expected


def test_untolerated_taint_message_names_the_taint() -> None:
    cache = cluster(make_node("n1", taints=[
        {"key": "soft", "value": "x", "effect": "PreferNoSchedule"},
        {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoExecute"}]))
    plugin = TaintToleration(Handle(cache))
    assert run_filter(plugin, make_pod("p"), info(cache, "n1")) == (
        "node(s) had untolerated taint {dedicated: gpu}",)
    partly = make_pod("p", tolerations=[{"key": "dedicated", "operator": "Exists"}])
    assert run_filter(plugin, partly, info(cache, "n1")) == (
        "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",)
    fully = make_pod("p", tolerations=[{"operator": "Exists"}])
    assert run_filter(plugin, fully, info(cache, "n1")) is None


def test_prefer_no_schedule_taints_lower_the_score() -> None:
    soft = {"key": "soft", "value": "x", "effect": "PreferNoSchedule"}
    cache = cluster(make_node("clean"), make_node("one", taints=[soft]),
                    make_node("two", taints=[soft, {**soft, "key": "soft2"}]))
    nodes = [info(cache, n) for n in ("clean", "one", "two")]
    plugin = TaintToleration(Handle(cache))
    assert run_scores(plugin, make_pod("p"), nodes) == [100, 50, 0]
    tolerant = make_pod("p", tolerations=[{"key": "soft", "operator": "Exists"}])
    assert run_scores(plugin, tolerant, nodes) == [100, 100, 0]


# --- NodeAffinity --------------------------------------------------------------------------


def _required(*terms: dict[str, Any]) -> dict[str, Any]:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                             {"nodeSelectorTerms": list(terms)}}}


def test_node_selector_must_match_all_labels() -> None:
    cache = cluster(make_node("n1", labels={"disk": "ssd", "tier": "a"}),
                    make_node("n2", labels={"disk": "hdd"}))
    plugin = NodeAffinity(Handle(cache))
    pod = make_pod("p", nodeSelector={"disk": "ssd", "tier": "a"})
    assert run_filter(plugin, pod, info(cache, "n1")) is None
    assert run_filter(plugin, pod, info(cache, "n2")) == (ERR_REASON_POD,)
    assert run_filter(plugin, make_pod("free"), info(cache, "n2")) is None


@pytest.mark.parametrize(("expression", "fits_n1", "fits_n2"), [
    ({"key": "disk", "operator": "In", "values": ["ssd", "nvme"]}, True, False),
    ({"key": "disk", "operator": "NotIn", "values": ["ssd"]}, False, True),
    ({"key": "gpu", "operator": "Exists"}, True, False),
    ({"key": "gpu", "operator": "DoesNotExist"}, False, True),
    ({"key": "cores", "operator": "Gt", "values": ["8"]}, True, False),
    ({"key": "cores", "operator": "Lt", "values": ["8"]}, False, True),
    ({"key": "cores", "operator": "Gt", "values": ["eight"]}, False, False),
])
def test_required_node_affinity_operators(expression: dict[str, Any], fits_n1: bool,
                                          fits_n2: bool) -> None:
    cache = cluster(make_node("n1", labels={"disk": "ssd", "gpu": "", "cores": "16"}),
                    make_node("n2", labels={"disk": "hdd", "cores": "4"}))
    plugin = NodeAffinity(Handle(cache))
    pod = make_pod("p", affinity=_required({"matchExpressions": [expression]}))
    assert (run_filter(plugin, pod, info(cache, "n1")) is None) is fits_n1
    assert (run_filter(plugin, pod, info(cache, "n2")) is None) is fits_n2


def test_node_affinity_terms_are_ored_fields_match_names_and_empty_terms_match_nothing() -> None:
    cache = cluster(make_node("n1", labels={"a": "1"}), make_node("n2"), make_node("n3"))
    plugin = NodeAffinity(Handle(cache))
    pod = make_pod("p", affinity=_required(
        {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}))
    assert [run_filter(plugin, pod, info(cache, n)) is None for n in ("n1", "n2", "n3")] == [
        True, True, False]
    empty = make_pod("p", affinity=_required({}))
    assert run_filter(plugin, empty, info(cache, "n1")) == (ERR_REASON_POD,)


def test_preferred_node_affinity_scores_by_weight() -> None:
    cache = cluster(make_node("n1", labels={"a": "1", "b": "1"}),
                    make_node("n2", labels={"a": "1"}), make_node("n3"))
    plugin = NodeAffinity(Handle(cache))
    pod = make_pod("p", affinity={"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 30, "preference": {"matchExpressions": [
                {"key": "a", "operator": "Exists"}]}},
            {"weight": 10, "preference": {"matchExpressions": [
                {"key": "b", "operator": "Exists"}]}}]}})
    nodes = [info(cache, n) for n in ("n1", "n2", "n3")]
    assert run_scores(plugin, pod, nodes) == [100, 75, 0]
    assert run_scores(plugin, make_pod("plain"), nodes) is None


# --- InterPodAffinity ----------------------------------------------------------------------


def _anti(topology: str, labels: dict[str, str], *, preferred: int = 0) -> dict[str, Any]:
    term = {"labelSelector": {"matchLabels": labels}, "topologyKey": topology}
    if preferred:
        return {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": preferred, "podAffinityTerm": term}]}}
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}


def _affinity(topology: str, labels: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": labels}, "topologyKey": topology, **extra}]}}


def _interpod_filter(cache: Cache, pod: dict[str, Any]) -> dict[str, tuple[str, ...] | None]:
    plugin = InterPodAffinity(Handle(cache))
    nodes = cache.node_list()
    return {n.name: run_filter(plugin, pod, n, nodes) for n in nodes}


def test_anti_affinity_on_hostname_keeps_replicas_apart() -> None:
    cache = cluster(make_node("n1", zone="a"), make_node("n2", zone="a"),
                    pods=(make_pod("web-0", labels={"app": "web"}, node="n1"),))
    pod = make_pod("web-1", labels={"app": "web"}, affinity=_anti(HOST, {"app": "web"}))
    assert _interpod_filter(cache, pod) == {"n1": (ERR_REASON_ANTI_AFFINITY,), "n2": None}


def test_anti_affinity_on_zone_covers_every_node_of_the_zone() -> None:
    cache = cluster(make_node("n1", zone="a"), make_node("n2", zone="a"),
                    make_node("n3", zone="b"),
                    pods=(make_pod("web-0", labels={"app": "web"}, node="n1"),))
    pod = make_pod("web-1", labels={"app": "web"}, affinity=_anti(ZONE, {"app": "web"}))
    assert _interpod_filter(cache, pod) == {"n1": (ERR_REASON_ANTI_AFFINITY,),
                                            "n2": (ERR_REASON_ANTI_AFFINITY,), "n3": None}


def test_existing_pods_anti_affinity_is_symmetric() -> None:
    loner = make_pod("loner", labels={"app": "db"}, node="n1",
                     affinity=_anti(HOST, {"app": "web"}))
    cache = cluster(make_node("n1"), make_node("n2"), pods=(loner,))
    result = _interpod_filter(cache, make_pod("web", labels={"app": "web"}))
    assert result == {"n1": (ERR_REASON_EXISTING_ANTI_AFFINITY,), "n2": None}
    # A pod the term does not select is not kept out.
    assert _interpod_filter(cache, make_pod("other", labels={"app": "x"})) == {
        "n1": None, "n2": None}


def test_affinity_needs_a_matching_pod_in_the_domain_except_for_the_first_of_a_group() -> None:
    cache = cluster(make_node("n1", zone="a"), make_node("n2", zone="a"),
                    make_node("n3", zone="b"), make_node("bare"))
    # The first pod of a self-affine group may go anywhere that has the topology label.
    first = make_pod("cache-0", labels={"app": "cache"}, affinity=_affinity(ZONE, {"app": "cache"}))
    assert _interpod_filter(cache, first) == {"n1": None, "n2": None, "n3": None,
                                              "bare": (ERR_REASON_AFFINITY,)}
    cache.add_pod(make_pod("cache-0", labels={"app": "cache"}, node="n1"))
    second = make_pod("cache-1", labels={"app": "cache"},
                      affinity=_affinity(ZONE, {"app": "cache"}))
    assert _interpod_filter(cache, second) == {
        "n1": None, "n2": None, "n3": (ERR_REASON_AFFINITY,), "bare": (ERR_REASON_AFFINITY,)}
    # A pod that wants a group it is not part of has to wait for that group.
    follower = make_pod("f", labels={"app": "f"}, affinity=_affinity(ZONE, {"app": "nope"}))
    assert set(_interpod_filter(cache, follower).values()) == {(ERR_REASON_AFFINITY,)}


def test_affinity_terms_respect_namespaces() -> None:
    cache = cluster(make_node("n1"), make_node("n2"),
                    pods=(make_pod("db", namespace="other", labels={"app": "db"}, node="n1"),))
    same_ns = make_pod("web", affinity=_affinity(HOST, {"app": "db"}))
    assert set(_interpod_filter(cache, same_ns).values()) == {(ERR_REASON_AFFINITY,)}
    listed = make_pod("web", affinity=_affinity(HOST, {"app": "db"}, namespaces=["other"]))
    assert _interpod_filter(cache, listed) == {"n1": None, "n2": (ERR_REASON_AFFINITY,)}
    everywhere = make_pod("web", affinity=_affinity(HOST, {"app": "db"}, namespaceSelector={}))
    handle = Handle(cache, namespaces_matching=lambda sel: frozenset({"default", "other"}))
    plugin = InterPodAffinity(handle)
    nodes = cache.node_list()
    assert [run_filter(plugin, everywhere, n, nodes) for n in nodes] == [
        None, (ERR_REASON_AFFINITY,)]


def test_interpod_affinity_skips_pods_without_terms_when_no_pod_has_anti_affinity() -> None:
    cache = cluster(make_node("n1"))
    state = CycleState()
    status = InterPodAffinity(Handle(cache)).pre_filter(state, PodInfo(make_pod("p")),
                                                        cache.node_list())
    assert status is SKIP


def test_preferred_anti_affinity_scores_away_from_matching_pods() -> None:
    cache = cluster(make_node("n1"), make_node("n2"), make_node("n3"),
                    pods=(make_pod("a", labels={"app": "web"}, node="n1"),
                          make_pod("b", labels={"app": "web"}, node="n1"),
                          make_pod("c", labels={"app": "web"}, node="n2")))
    pod = make_pod("d", labels={"app": "web"}, affinity=_anti(HOST, {"app": "web"},
                                                              preferred=10))
    scores = run_scores(InterPodAffinity(Handle(cache)), pod, cache.node_list())
    assert scores == [0, 50, 100]


# --- SelectorSpread ------------------------------------------------------------------------


def test_spread_prefers_nodes_and_zones_with_fewer_siblings() -> None:
    cache = cluster(make_node("a1", zone="a"), make_node("a2", zone="a"),
                    make_node("b1", zone="b"),
                    pods=(make_pod("r0", owner="rs", node="a1"),
                          make_pod("r1", owner="rs", node="a1"),
                          make_pod("x", owner="other", node="b1")))
    nodes = [info(cache, n) for n in ("a1", "a2", "b1")]
    scores = run_scores(SelectorSpread(Handle(cache)), make_pod("r2", owner="rs"), nodes)
    assert scores is not None
    assert scores[2] == 100 and scores[0] == 0  # an empty zone beats an empty node
    assert 0 < scores[1] < scores[2]
    assert run_scores(SelectorSpread(Handle(cache)), make_pod("solo"), nodes) is None


def test_spread_without_zones_uses_node_counts_only() -> None:
    cache = cluster(make_node("n1"), make_node("n2"),
                    pods=(make_pod("r0", owner="rs", node="n1"),))
    scores = run_scores(SelectorSpread(Handle(cache)), make_pod("r1", owner="rs"),
                        [info(cache, "n1"), info(cache, "n2")])
    assert scores == [0, 100]


def test_statuses_of_filters_use_upstream_codes() -> None:
    cache = cluster(make_node("n1", cpu="1", taints=[{"key": "k", "effect": "NoSchedule"}]))
    pi = PodInfo(make_pod("p", "2"))
    taint = TaintToleration(Handle(cache)).filter(CycleState(), pi, info(cache, "n1"))
    fit = NodeResourcesFit(Handle(cache)).filter(CycleState(), pi, info(cache, "n1"))
    assert taint is not None and taint.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert fit is not None and fit.code == Code.UNSCHEDULABLE  # preemption might help
