"""What the scheduler knows about pods and nodes, digested once (upstream framework/types.go).

Scheduling a pod looks at hundreds of nodes, so nothing on that path may parse a quantity or
a label selector: a `PodInfo` holds a pod's requests, tolerations and affinity terms already
parsed, and a `NodeInfo` holds a node's allocatable resources, taints and the running totals
of the pods placed on it. Both keep a reference to the informer's dict they came from and
never change it (informer objects are shared and read-only).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from api.quantity import int_value, milli_value
from api.selectors import LabelSelector, selector_from_label_selector_object

Obj = dict[str, Any]

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL_STORAGE = "ephemeral-storage"
PODS = "pods"

HOSTNAME_LABEL = "kubernetes.io/hostname"
ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"

# Upstream's defaults for a container that requests nothing, used only for scoring, so that
# many "free" pods do not all pile onto one node (schedutil.DefaultMilliCPURequest et al.).
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024

NO_SCHEDULE = "NoSchedule"
NO_EXECUTE = "NoExecute"
PREFER_NO_SCHEDULE = "PreferNoSchedule"


@lru_cache(maxsize=8192)
def _milli(q: str | float) -> int:
    return milli_value(q)


@lru_cache(maxsize=8192)
def _value(q: str | float) -> int:
    return int_value(q)


def _quantity(q: Any, milli: bool) -> int:
    """A quantity as an int (millis for cpu); malformed values count as zero."""
    if isinstance(q, bool) or not isinstance(q, (str, int, float)):
        return 0
    try:
        return _milli(q) if milli else _value(q)
    except (ValueError, TypeError):
        return 0


def is_scalar_resource(name: str) -> bool:
    """Extended (domain-prefixed) resources and hugepages are counted like cpu and memory."""
    return "/" in name or name.startswith("hugepages-")


class Resource:
    """An amount of each schedulable resource: cpu in millicores, the rest in units."""

    __slots__ = ("ephemeral_storage", "memory", "milli_cpu", "scalars")

    def __init__(self, milli_cpu: int = 0, memory: int = 0, ephemeral_storage: int = 0,
                 scalars: dict[str, int] | None = None) -> None:
        self.milli_cpu = milli_cpu
        self.memory = memory
        self.ephemeral_storage = ephemeral_storage
        self.scalars: dict[str, int] = scalars if scalars is not None else {}

    @classmethod
    def from_list(cls, resources: Mapping[str, Any] | None) -> Resource:
        """From a ResourceList (`{"cpu": "500m", "memory": "1Gi", ...}`)."""
        r = cls()
        for name, q in (resources or {}).items():
            if name == CPU:
                r.milli_cpu = _quantity(q, True)
            elif name == MEMORY:
                r.memory = _quantity(q, False)
            elif name == EPHEMERAL_STORAGE:
                r.ephemeral_storage = _quantity(q, False)
            elif is_scalar_resource(name):
                r.scalars[name] = _quantity(q, False)
        return r

    def copy(self) -> Resource:
        return Resource(self.milli_cpu, self.memory, self.ephemeral_storage, dict(self.scalars))

    def add(self, other: Resource, sign: int = 1) -> None:
        self.milli_cpu += sign * other.milli_cpu
        self.memory += sign * other.memory
        self.ephemeral_storage += sign * other.ephemeral_storage
        for name, q in other.scalars.items():
            self.scalars[name] = self.scalars.get(name, 0) + sign * q

    def set_max(self, other: Resource) -> None:
        self.milli_cpu = max(self.milli_cpu, other.milli_cpu)
        self.memory = max(self.memory, other.memory)
        self.ephemeral_storage = max(self.ephemeral_storage, other.ephemeral_storage)
        for name, q in other.scalars.items():
            self.scalars[name] = max(self.scalars.get(name, 0), q)

    def is_zero(self) -> bool:
        return not (self.milli_cpu or self.memory or self.ephemeral_storage
                    or any(self.scalars.values()))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Resource):
            return NotImplemented
        return (self.milli_cpu, self.memory, self.ephemeral_storage,
                {k: v for k, v in self.scalars.items() if v}) == (
            other.milli_cpu, other.memory, other.ephemeral_storage,
            {k: v for k, v in other.scalars.items() if v})

    def __repr__(self) -> str:
        return (f"Resource(milli_cpu={self.milli_cpu}, memory={self.memory}, "
                f"ephemeral_storage={self.ephemeral_storage}, scalars={self.scalars})")


def _container_requests(container: Mapping[str, Any], non_zero: bool) -> Resource:
    r = Resource.from_list((container.get("resources") or {}).get("requests"))
    if non_zero:
        # Only for scoring: a container without a cpu/memory request counts as a small one.
        if not r.milli_cpu:
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST
        if not r.memory:
            r.memory = DEFAULT_MEMORY_REQUEST
    return r


def pod_requests(spec: Mapping[str, Any], non_zero: bool = False) -> Resource:
    """What a pod needs from its node, as upstream resourcehelper.PodRequests.

    Regular containers run together, so their requests add up. Init containers run one at a
    time before them, so the pod needs the larger of "all regular containers" and "the
    biggest init container". Sidecars (init containers with restartPolicy Always) keep
    running: they add to the regular containers and to every init container started after
    them. Pod overhead comes on top.
    """
    total = Resource()
    for c in spec.get("containers") or []:
        total.add(_container_requests(c, non_zero))
    sidecars = Resource()
    init_max = Resource()
    for c in spec.get("initContainers") or []:
        req = _container_requests(c, non_zero)
        if c.get("restartPolicy") == "Always":
            total.add(req)
            sidecars.add(req)
            running = sidecars.copy()
        else:
            running = req
            running.add(sidecars)
        init_max.set_max(running)
    total.set_max(init_max)
    overhead = spec.get("overhead")
    if overhead:
        total.add(Resource.from_list(overhead))
    return total


@dataclass(frozen=True, slots=True)
class AffinityTerm:
    """One pod (anti-)affinity term: which pods (namespaces + labels) in which topology."""

    namespaces: frozenset[str]
    namespace_selector: LabelSelector | None  # None: only `namespaces` count
    selector: LabelSelector
    topology_key: str
    weight: int = 0

    def matches(self, pod: PodInfo, namespace_labels: Mapping[str, str] | None) -> bool:
        """Whether `pod` is one of the pods this term is about."""
        if pod.namespace not in self.namespaces and (
                self.namespace_selector is None
                or not self.namespace_selector.matches(namespace_labels)):
            return False
        return self.selector.matches(pod.labels)


def _selector(obj: Any) -> LabelSelector:
    try:
        return selector_from_label_selector_object(obj if isinstance(obj, Mapping) else None)
    except ValueError:
        # The apiserver validates selectors; one that still fails to parse selects nothing.
        return LabelSelector.match_nothing()


def affinity_term(term: Mapping[str, Any], namespace: str, weight: int = 0) -> AffinityTerm:
    """Parse a PodAffinityTerm of a pod in `namespace` (upstream newAffinityTerm)."""
    names = frozenset(str(n) for n in term.get("namespaces") or [])
    ns_selector_obj = term.get("namespaceSelector")
    if not names and ns_selector_obj is None:
        names = frozenset((namespace,))  # neither given: the pod's own namespace
    ns_selector = _selector(ns_selector_obj) if ns_selector_obj is not None else None
    return AffinityTerm(names, ns_selector, _selector(term.get("labelSelector")),
                        str(term.get("topologyKey") or ""), weight)


def _terms(items: Any, namespace: str) -> tuple[AffinityTerm, ...]:
    return tuple(affinity_term(t, namespace) for t in items or [] if isinstance(t, Mapping))


def _weighted_terms(items: Any, namespace: str) -> tuple[AffinityTerm, ...]:
    out = []
    for t in items or []:
        if isinstance(t, Mapping) and isinstance(t.get("podAffinityTerm"), Mapping):
            weight = int(t.get("weight") or 0)
            if weight:
                out.append(affinity_term(t["podAffinityTerm"], namespace, weight))
    return tuple(out)


def controller_owner(md: Mapping[str, Any]) -> str | None:
    """The uid of the pod's controlling owner (ReplicaSet, Job, ...), if it has one."""
    for ref in md.get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("controller") and ref.get("uid"):
            return str(ref["uid"])
    return None


class PodInfo:
    """A pod plus everything scheduling needs from it, parsed once."""

    __slots__ = (
        "has_affinity",
        "key",
        "labels",
        "name",
        "namespace",
        "node_name",
        "non_zero_requests",
        "owner",
        "pod",
        "preferred_affinity",
        "preferred_anti_affinity",
        "priority",
        "requests",
        "required_affinity",
        "required_anti_affinity",
        "tolerations",
        "uid",
    )

    def __init__(self, pod: Obj, node_name: str | None = None) -> None:
        md = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        self.pod = pod
        self.namespace = str(md.get("namespace") or "")
        self.name = str(md.get("name") or "")
        self.key = f"{self.namespace}/{self.name}"
        self.uid = str(md.get("uid") or "")
        self.labels: Mapping[str, str] = md.get("labels") or {}
        self.priority = int(spec.get("priority") or 0)
        # An assumed pod is placed before the apiserver says so: the node is given here.
        self.node_name = node_name if node_name is not None else str(spec.get("nodeName") or "")
        self.requests = pod_requests(spec)
        self.non_zero_requests = pod_requests(spec, non_zero=True)
        owner = controller_owner(md)
        self.owner = (self.namespace, owner) if owner else None
        self.tolerations: list[Mapping[str, Any]] = [
            t for t in spec.get("tolerations") or [] if isinstance(t, Mapping)]
        affinity = spec.get("affinity") or {}
        pod_affinity = affinity.get("podAffinity")
        anti = affinity.get("podAntiAffinity")
        self.has_affinity = bool(pod_affinity is not None or anti is not None)
        pod_affinity, anti = pod_affinity or {}, anti or {}
        ns = self.namespace
        self.required_affinity = _terms(
            pod_affinity.get("requiredDuringSchedulingIgnoredDuringExecution"), ns)
        self.required_anti_affinity = _terms(
            anti.get("requiredDuringSchedulingIgnoredDuringExecution"), ns)
        self.preferred_affinity = _weighted_terms(
            pod_affinity.get("preferredDuringSchedulingIgnoredDuringExecution"), ns)
        self.preferred_anti_affinity = _weighted_terms(
            anti.get("preferredDuringSchedulingIgnoredDuringExecution"), ns)

    def with_node(self, node_name: str) -> PodInfo:
        """The same pod placed on `node_name` (for assuming it before the bind lands)."""
        clone = object.__new__(PodInfo)
        for slot in PodInfo.__slots__:
            setattr(clone, slot, getattr(self, slot))
        clone.node_name = node_name
        return clone

    def __repr__(self) -> str:
        return f"PodInfo({self.key} on {self.node_name or '-'})"


def zone_key(labels: Mapping[str, str]) -> str:
    """The failure zone of a node, as upstream utilnode.GetZoneKey ("" when it has none)."""
    region = labels.get(REGION_LABEL, "")
    zone = labels.get(ZONE_LABEL, "")
    if not region and not zone:
        return ""
    return f"{region}:\x00:{zone}"


class NodeInfo:
    """A node plus the pods placed on it (bound and assumed) and their summed requests."""

    __slots__ = (
        "allocatable",
        "allowed_pods",
        "generation",
        "labels",
        "name",
        "no_schedule_taints",
        "node",
        "non_zero_requested",
        "owner_counts",
        "pods",
        "pods_with_affinity",
        "pods_with_required_anti_affinity",
        "prefer_no_schedule_taints",
        "requested",
        "taints",
        "unschedulable",
        "zone",
    )

    def __init__(self, name: str, node: Obj | None = None) -> None:
        self.name = name
        self.node: Obj | None = None
        self.labels: Mapping[str, str] = {}
        self.unschedulable = False
        self.taints: list[Mapping[str, Any]] = []
        self.no_schedule_taints: list[Mapping[str, Any]] = []
        self.prefer_no_schedule_taints: list[Mapping[str, Any]] = []
        self.allocatable = Resource()
        self.allowed_pods = 0
        self.zone = ""
        self.requested = Resource()
        self.non_zero_requested = Resource()
        self.pods: dict[str, PodInfo] = {}
        self.pods_with_affinity: dict[str, PodInfo] = {}
        self.pods_with_required_anti_affinity: dict[str, PodInfo] = {}
        self.owner_counts: dict[tuple[str, str], int] = {}
        self.generation = 0
        if node is not None:
            self.set_node(node)

    def set_node(self, node: Obj) -> None:
        md = node.get("metadata") or {}
        spec = node.get("spec") or {}
        status = node.get("status") or {}
        self.node = node
        self.labels = md.get("labels") or {}
        self.unschedulable = bool(spec.get("unschedulable"))
        self.taints = [t for t in spec.get("taints") or [] if isinstance(t, Mapping)]
        self.no_schedule_taints = [t for t in self.taints
                                   if t.get("effect") in (NO_SCHEDULE, NO_EXECUTE)]
        self.prefer_no_schedule_taints = [t for t in self.taints
                                          if t.get("effect") == PREFER_NO_SCHEDULE]
        allocatable = status.get("allocatable") or status.get("capacity") or {}
        self.allocatable = Resource.from_list(allocatable)
        self.allowed_pods = _quantity(allocatable.get(PODS, 0), False)
        self.zone = zone_key(self.labels)
        self.generation += 1

    def clear_node(self) -> None:
        self.node = None
        self.generation += 1

    def add_pod(self, pod: PodInfo) -> None:
        self.pods[pod.key] = pod
        if pod.has_affinity:
            self.pods_with_affinity[pod.key] = pod
        if pod.required_anti_affinity:
            self.pods_with_required_anti_affinity[pod.key] = pod
        self._account(pod, 1)

    def remove_pod(self, key: str) -> PodInfo | None:
        pod = self.pods.pop(key, None)
        if pod is None:
            return None
        self.pods_with_affinity.pop(key, None)
        self.pods_with_required_anti_affinity.pop(key, None)
        self._account(pod, -1)
        return pod

    def _account(self, pod: PodInfo, sign: int) -> None:
        self.requested.add(pod.requests, sign)
        self.non_zero_requested.add(pod.non_zero_requests, sign)
        if pod.owner is not None:
            count = self.owner_counts.get(pod.owner, 0) + sign
            if count > 0:
                self.owner_counts[pod.owner] = count
            else:
                self.owner_counts.pop(pod.owner, None)
        self.generation += 1

    def without_pods(self, keys: Iterable[str]) -> NodeInfo:
        """A copy of this node with some pods taken off (for a preemption dry run)."""
        clone = NodeInfo(self.name)
        if self.node is not None:
            clone.set_node(self.node)
        drop = set(keys)
        for key, pod in self.pods.items():
            if key not in drop:
                clone.add_pod(pod)
        return clone

    def __repr__(self) -> str:
        return f"NodeInfo({self.name}, pods={len(self.pods)}, requested={self.requested})"
