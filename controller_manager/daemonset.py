"""DaemonSet controller: one daemon pod on every node the DaemonSet's pod template fits.

Shaped like upstream's pkg/controller/daemon (1.32):

- A node is eligible when the template's nodeName (if any), nodeSelector and required node
  affinity match it and every NoSchedule/NoExecute taint is tolerated, counting the
  tolerations the controller adds to every daemon pod (not-ready, unreachable, disk-, memory-
  and pid-pressure, unschedulable; network-unavailable for hostNetwork pods). A node whose
  only untolerated taints are NoSchedule keeps the pods it already has. `spec.unschedulable`
  itself is not looked at: the default toleration of its taint lets daemons run there.
- Pods are not bound by the controller: each gets a required node affinity
  `matchFields metadata.name In [<node>]` and the default scheduler places it, as upstream
  does since ScheduleDaemonSetPods went GA.
- Failed pods are deleted (and so replaced) with a per-node exponential back-off
  (1 s doubling to 15 min); extra pods on a node are deleted, keeping the oldest.
- Rolling updates compare the pod label `controller-revision-hash` with a hash of the
  current template. Upstream stores each template in a ControllerRevision and takes the hash
  from it; kubelite's API has no ControllerRevisions, so the hash is computed from the
  template alone (FNV-32a of its canonical JSON plus `status.collisionCount`, spelled with
  upstream's safe alphabet). Its values therefore differ from a real cluster's, and there
  is no revision history to roll back to.
- Create/delete expectations (client-go's ControllerExpectations) keep a sync working from a
  cache that has not yet seen the controller's own writes from creating duplicates.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from api import errors
from api.meta import deep_copy, parse_time
from api.resources import CATALOGUE, Resource
from api.selectors import LabelSelector, Requirement, selector_from_label_selector_object
from api.tolerations import toleration_tolerates_taint
from client.informer import NAMESPACE_INDEX, Informer, meta_key, namespace_index
from client.rest import ApiConnectionError
from controller_manager.base import Controller, ControllerContext, Obj

log = logging.getLogger(__name__)


def _resource(plural: str) -> Resource:
    res = CATALOGUE.by_plural(plural)
    assert res is not None, plural
    return res


DAEMONSETS = _resource("daemonsets")
PODS = _resource("pods")
NODES = _resource("nodes")

HASH_LABEL = "controller-revision-hash"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"

# Upstream's limits: at most this many creates/deletes per sync, creates in doubling batches.
BURST_REPLICAS = 250
SLOW_START_INITIAL_BATCH = 1
FAILED_POD_BACKOFF_INITIAL = 1.0
FAILED_POD_BACKOFF_MAX = 900.0
EXPECTATIONS_TIMEOUT = 300.0

NO_SCHEDULE, NO_EXECUTE = "NoSchedule", "NoExecute"
# Tolerations every daemon pod gets (upstream AddOrUpdateDaemonPodTolerations): daemons must
# keep running through node trouble that evicts ordinary pods.
DAEMON_TOLERATIONS: tuple[tuple[str, str], ...] = (
    ("node.kubernetes.io/not-ready", NO_EXECUTE),
    ("node.kubernetes.io/unreachable", NO_EXECUTE),
    ("node.kubernetes.io/disk-pressure", NO_SCHEDULE),
    ("node.kubernetes.io/memory-pressure", NO_SCHEDULE),
    ("node.kubernetes.io/pid-pressure", NO_SCHEDULE),
    ("node.kubernetes.io/unschedulable", NO_SCHEDULE),
)
NETWORK_UNAVAILABLE_TOLERATION = ("node.kubernetes.io/network-unavailable", NO_SCHEDULE)

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery rand.SafeEncodeString


# --- small helpers over plain dicts ---------------------------------------------------------

def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _dict(obj.get("metadata"))


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _dict(obj.get("spec"))


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(_dict(_meta(obj).get("labels")))


def _timestamp(value: Any) -> float | None:
    parsed = parse_time(value) if isinstance(value, str) else None
    return parsed.timestamp() if parsed is not None else None


def controller_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for ref in _list(_meta(obj).get("ownerReferences")):
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            return ref
    return None


def controller_ref(owner: Mapping[str, Any], api_version: str, kind: str) -> Obj:
    md = _meta(owner)
    return {"apiVersion": api_version, "kind": kind, "name": md.get("name"),
            "uid": md.get("uid"), "controller": True, "blockOwnerDeletion": True}


def _pod_ready_condition(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for cond in _list(_dict(pod.get("status")).get("conditions")):
        if isinstance(cond, Mapping) and cond.get("type") == "Ready":
            return cond
    return None


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    cond = _pod_ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def is_pod_available(pod: Mapping[str, Any], min_ready_seconds: int, now: float) -> bool:
    """Ready for at least minReadySeconds (podutil.IsPodAvailable)."""
    cond = _pod_ready_condition(pod)
    if cond is None or cond.get("status") != "True":
        return False
    if min_ready_seconds <= 0:
        return True
    since = _timestamp(cond.get("lastTransitionTime"))
    return since is not None and since + min_ready_seconds <= now


def ensure_namespace_index(informer: Informer) -> None:
    # Shared informers: another controller may have registered the same library index.
    try:
        informer.add_index(NAMESPACE_INDEX, namespace_index)
    except ValueError:
        pass


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: an int, or a percentage of `total`."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.endswith("%"):
        try:
            percent = int(value[:-1])
        except ValueError:
            raise ValueError(f"invalid value for IntOrString: invalid value {value!r}") from None
        scaled = percent * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    raise ValueError(f"invalid value for IntOrString: invalid type: {value!r}")


class Expectations:
    """client-go's ControllerExpectations: how many creates/deletes a controller still waits
    to see in its informer before trusting the cache again; forgotten after 5 minutes so a
    lost event cannot stall an object forever."""

    @dataclass
    class _Entry:
        adds: int
        dels: int
        at: float

    def __init__(self, timeout: float = EXPECTATIONS_TIMEOUT) -> None:
        self.timeout = timeout
        self._entries: dict[str, Expectations._Entry] = {}

    def satisfied(self, key: str) -> bool:
        entry = self._entries.get(key)
        if entry is None or (entry.adds <= 0 and entry.dels <= 0):
            return True
        return time.monotonic() - entry.at > self.timeout

    def expect(self, key: str, adds: int = 0, dels: int = 0) -> None:
        self._entries[key] = Expectations._Entry(adds, dels, time.monotonic())

    def creation_observed(self, key: str) -> None:
        if (entry := self._entries.get(key)) is not None:
            entry.adds -= 1

    def deletion_observed(self, key: str) -> None:
        if (entry := self._entries.get(key)) is not None:
            entry.dels -= 1

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)


@dataclass
class _FailedPodBackoff:
    """flowcontrol.Backoff keyed by DaemonSet+node: doubling delays between deleting failed
    daemon pods, so a kubelet that keeps rejecting a pod is not hot-looped."""

    initial: float
    cap: float
    _entries: dict[str, tuple[float, float]] = field(default_factory=dict)  # delay, last

    def in_backoff(self, key: str, now: float) -> bool:
        entry = self._entries.get(key)
        return entry is not None and now - entry[1] < entry[0]

    def delay(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry[0] if entry is not None else 0.0

    def next(self, key: str, now: float) -> None:
        entry = self._entries.get(key)
        if entry is None or now - entry[1] > 2 * self.cap:
            delay = self.initial
        else:
            delay = min(entry[0] * 2, self.cap)
        self._entries[key] = (delay, now)
        if len(self._entries) > 1000:  # occasional GC of long-idle entries
            self._entries = {k: v for k, v in self._entries.items() if now - v[1] <= 2 * self.cap}


# --- scheduling predicates ------------------------------------------------------------------

_NODE_SELECTOR_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists",
                            "DoesNotExist": "!", "Gt": "gt", "Lt": "lt"}


def _requirement_matches(req: Mapping[str, Any], values: Mapping[str, str],
                         field_ops: bool = False) -> bool:
    operator = req.get("operator")
    if field_ops and operator not in ("In", "NotIn"):
        return False  # only In/NotIn are defined for matchFields
    op = _NODE_SELECTOR_OPERATORS.get(str(operator))
    if op is None:
        return False
    vals = tuple(str(v) for v in _list(req.get("values")))
    return Requirement(str(req.get("key", "")), op, vals).matches(values)


def _node_selector_term_matches(term: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    expressions = _list(term.get("matchExpressions"))
    fields = _list(term.get("matchFields"))
    if not expressions and not fields:
        return False  # an empty term selects no node (upstream)
    labels = _labels(node)
    node_fields = {"metadata.name": str(_meta(node).get("name", ""))}
    return all(isinstance(r, Mapping) and _requirement_matches(r, labels) for r in expressions) \
        and all(isinstance(r, Mapping) and _requirement_matches(r, node_fields, True)
                for r in fields)


def fits_node_affinity(pod_spec: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """nodeSelector and required node affinity (terms ORed, requirements ANDed)."""
    labels = _labels(node)
    for key, value in _dict(pod_spec.get("nodeSelector")).items():
        if labels.get(key) != value:
            return False
    required = _dict(_dict(_dict(pod_spec.get("affinity")).get("nodeAffinity")).get(
        "requiredDuringSchedulingIgnoredDuringExecution"))
    if not required:
        return True
    return any(isinstance(t, Mapping) and _node_selector_term_matches(t, node)
               for t in _list(required.get("nodeSelectorTerms")))


tolerates = toleration_tolerates_taint


def daemon_tolerations(pod_spec: Mapping[str, Any]) -> list[Obj]:
    """The template's tolerations with the daemon defaults added or updated in place."""
    out = [dict(t) for t in _list(pod_spec.get("tolerations")) if isinstance(t, Mapping)]
    wanted = list(DAEMON_TOLERATIONS)
    if pod_spec.get("hostNetwork") is True:
        wanted.append(NETWORK_UNAVAILABLE_TOLERATION)
    for key, effect in wanted:
        new = {"key": key, "operator": "Exists", "effect": effect}
        for i, old in enumerate(out):
            # AddOrUpdateTolerationInPodSpec: same key/operator/value/effect is replaced.
            if (old.get("key"), old.get("operator") or "Equal", old.get("value") or "",
                    old.get("effect")) == (key, "Exists", "", effect):
                out[i] = new
                break
        else:
            out.append(new)
    return out


def node_should_run(node: Mapping[str, Any], ds: Mapping[str, Any]) -> tuple[bool, bool]:
    """(should run a daemon pod here, may keep an existing one): NodeShouldRunDaemonPod."""
    pod_spec = _spec(_dict(_spec(ds).get("template")))
    node_name = _meta(node).get("name")
    if pod_spec.get("nodeName") and pod_spec.get("nodeName") != node_name:
        return False, False
    if not fits_node_affinity(pod_spec, node):
        return False, False
    tolerations = daemon_tolerations(pod_spec)
    untolerated = [t for t in _list(_spec(node).get("taints"))
                   if isinstance(t, Mapping) and t.get("effect") in (NO_SCHEDULE, NO_EXECUTE)
                   and not any(tolerates(tol, t) for tol in tolerations)]
    if untolerated:
        # Only an untolerated NoExecute taint evicts pods that are already there.
        return False, not any(t.get("effect") == NO_EXECUTE for t in untolerated)
    return True, True


def target_node_name(pod: Mapping[str, Any]) -> str | None:
    """The node a daemon pod is for: spec.nodeName, else its metadata.name node affinity."""
    spec = _spec(pod)
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = _dict(_dict(_dict(spec.get("affinity")).get("nodeAffinity")).get(
        "requiredDuringSchedulingIgnoredDuringExecution"))
    for term in _list(required.get("nodeSelectorTerms")):
        for req in _list(_dict(term).get("matchFields")):
            req = _dict(req)
            values = _list(req.get("values"))
            if req.get("key") == "metadata.name" and req.get("operator") == "In" and \
                    len(values) == 1:
                return str(values[0])
    return None


def node_name_affinity(affinity: Any, node_name: str) -> Obj:
    """ReplaceDaemonSetPodNodeNameNodeAffinity: the required node selector becomes exactly
    `metadata.name In [node]` (eligibility was already checked against the template)."""
    out: Obj = dict(affinity) if isinstance(affinity, Mapping) else {}
    node_affinity = dict(_dict(out.get("nodeAffinity")))
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}]}
    out["nodeAffinity"] = node_affinity
    return out


def template_hash(ds: Mapping[str, Any]) -> str:
    """controller.ComputeHash in spirit: FNV-32a over the template (+ collisionCount)."""
    data = json.dumps(_spec(ds).get("template"), sort_keys=True, separators=(",", ":"))
    collisions = _dict(ds.get("status")).get("collisionCount")
    if isinstance(collisions, int):
        data += str(collisions)
    h = 0x811C9DC5
    for byte in data.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in str(h))


def is_pod_updated(pod: Mapping[str, Any], hash_: str, generation: str | None) -> bool:
    labels = _labels(pod)
    return labels.get(HASH_LABEL) == hash_ or (
        generation is not None and labels.get(TEMPLATE_GENERATION_LABEL) == generation)


def _template_generation(ds: Mapping[str, Any]) -> str | None:
    value = _dict(_meta(ds).get("annotations")).get(TEMPLATE_GENERATION_ANNOTATION)
    return str(value) if value else None


def new_daemon_pod(ds: Mapping[str, Any], node_name: str, hash_: str) -> Obj:
    """The pod for one node: the template, labelled with the hash, pinned by affinity."""
    md = _meta(ds)
    template = deep_copy(dict(_dict(_spec(ds).get("template"))))
    tmd = _dict(template.get("metadata"))
    spec: Obj = dict(_dict(template.get("spec")))
    labels = dict(_dict(tmd.get("labels")))
    labels[HASH_LABEL] = hash_
    if (generation := _template_generation(ds)) is not None:
        labels[TEMPLATE_GENERATION_LABEL] = generation
    spec["tolerations"] = daemon_tolerations(spec)
    spec["affinity"] = node_name_affinity(spec.get("affinity"), node_name)
    pod_md: Obj = {"generateName": f"{md.get('name')}-", "namespace": md.get("namespace"),
                   "labels": labels,
                   "ownerReferences": [controller_ref(ds, "apps/v1", "DaemonSet")]}
    for key in ("annotations", "finalizers"):
        if tmd.get(key):
            pod_md[key] = tmd[key]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_md, "spec": spec}


def _creation_order(pod: Mapping[str, Any]) -> tuple[bool, float, str]:
    """podByCreationTimestampAndPhase: scheduled pods first, then oldest, then by name."""
    created = _timestamp(_meta(pod).get("creationTimestamp")) or 0.0
    return (not _spec(pod).get("nodeName"), created, str(_meta(pod).get("name", "")))


def _is_deleting(pod: Mapping[str, Any]) -> bool:
    return bool(_meta(pod).get("deletionTimestamp"))


def _phase(pod: Mapping[str, Any]) -> str:
    return str(_dict(pod.get("status")).get("phase") or "")


# --- the controller -------------------------------------------------------------------------

class DaemonSetController(Controller):
    name = "daemonset"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.daemonsets = self.informer(DAEMONSETS)
        self.pods = self.informer(PODS)
        self.nodes = self.informer(NODES)
        ensure_namespace_index(self.pods)
        self.expectations = Expectations()
        self.failed_pods_backoff = _FailedPodBackoff(FAILED_POD_BACKOFF_INITIAL,
                                                     FAILED_POD_BACKOFF_MAX)
        self.daemonsets.add_handler(self.enqueue, lambda old, new: self.enqueue(new),
                                    self.enqueue)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.nodes.add_handler(self._node_added, self._node_updated, self._node_deleted)

    # --- event handlers -------------------------------------------------------------------

    def _resolve(self, namespace: str, ref: Mapping[str, Any]) -> Obj | None:
        if ref.get("kind") != "DaemonSet":
            return None
        ds = self.daemonsets.store.get(f"{namespace}/{ref.get('name')}")
        if ds is None or _meta(ds).get("uid") != ref.get("uid"):
            return None
        return ds

    def _daemonsets_for_orphan(self, pod: Obj) -> list[Obj]:
        namespace = _meta(pod).get("namespace")
        out = []
        for ds in self.daemonsets.store.list():
            if _meta(ds).get("namespace") != namespace:
                continue
            try:
                selector = selector_from_label_selector_object(_spec(ds).get("selector"))
            except ValueError:
                continue
            if not selector.is_empty() and selector.matches(_labels(pod)):
                out.append(ds)
        return out

    def _pod_added(self, pod: Obj) -> None:
        if _is_deleting(pod):
            # Seen for the first time already deleting (a relist): not a creation.
            self._pod_deleted(pod)
            return
        ref = controller_of(pod)
        if ref is not None:
            ds = self._resolve(str(_meta(pod).get("namespace")), ref)
            if ds is not None:
                self.expectations.creation_observed(meta_key(ds))
                self.enqueue(ds)
            return
        for ds in self._daemonsets_for_orphan(pod):
            self.enqueue(ds)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if _meta(old).get("resourceVersion") == _meta(new).get("resourceVersion"):
            return
        if _is_deleting(new):
            # A graceful delete: act now, not once the kubelet has finished the pod.
            self._pod_deleted(new)
            return
        namespace = str(_meta(new).get("namespace"))
        old_ref, new_ref = controller_of(old), controller_of(new)
        if old_ref != new_ref and old_ref is not None and \
                (old_ds := self._resolve(namespace, old_ref)) is not None:
            self.enqueue(old_ds)
        if new_ref is not None:
            ds = self._resolve(namespace, new_ref)
            if ds is None:
                return
            self.enqueue(ds)
            min_ready = int(_spec(ds).get("minReadySeconds") or 0)
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(new):
                # Available only minReadySeconds after turning ready: look again then.
                self.queue.add_after(meta_key(ds), min_ready + 1)
            return
        if _labels(old) != _labels(new) or old_ref != new_ref:
            for ds in self._daemonsets_for_orphan(new):
                self.enqueue(ds)

    def _pod_deleted(self, pod: Obj) -> None:
        ref = controller_of(pod)
        if ref is None:
            return
        ds = self._resolve(str(_meta(pod).get("namespace")), ref)
        if ds is None:
            return
        self.expectations.deletion_observed(meta_key(ds))
        self.enqueue(ds)

    def _node_added(self, node: Obj) -> None:
        for ds in self.daemonsets.store.list():
            if node_should_run(node, ds)[0]:
                self.enqueue(ds)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        # Heartbeats change only status; only labels, taints and the like change placement.
        if _labels(old) == _labels(new) and old.get("spec") == new.get("spec"):
            return
        for ds in self.daemonsets.store.list():
            if node_should_run(old, ds) != node_should_run(new, ds):
                self.enqueue(ds)

    def _node_deleted(self, node: Obj) -> None:
        # Unscheduled pods aimed at a vanished node are ours to delete; status changes too.
        for ds in self.daemonsets.store.list():
            self.enqueue(ds)

    # --- sync -----------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        ds = self.daemonsets.store.get(key)
        if ds is None:
            self.expectations.forget(key)
            return
        if _meta(ds).get("deletionTimestamp"):
            return  # the garbage collector removes the pods
        try:
            selector = selector_from_label_selector_object(_spec(ds).get("selector"))
        except ValueError as e:
            self.log.warning("invalid selector key=%s error=%s", key, e)
            return
        if selector.is_empty():
            self.recorder.event(ds, "Warning", "SelectingAll",
                                "This daemon set is selecting all pods. A non-empty selector "
                                "is required.")
            return
        nodes = self.nodes.store.list()
        hash_ = template_hash(ds)
        claimed = await self._claim_pods(ds, selector)
        if not self.expectations.satisfied(key):
            # Our last creates/deletes are not all in the cache yet: only report status.
            await self._update_status(ds, nodes, _by_node(claimed, False), hash_, observe=False)
            return
        await self._manage(ds, nodes, _by_node(claimed, True), hash_)
        strategy = _dict(_spec(ds).get("updateStrategy"))
        if self.expectations.satisfied(key) and \
                (strategy.get("type") or "RollingUpdate") == "RollingUpdate":
            await self._rolling_update(ds, nodes, _by_node(self._owned_pods(ds), False), hash_)
        await self._update_status(ds, nodes, _by_node(self._owned_pods(ds), False), hash_,
                                  observe=True)

    def _owned_pods(self, ds: Obj) -> list[Obj]:
        uid = _meta(ds).get("uid")
        return [p for p in self.pods.store.by_index(NAMESPACE_INDEX,
                                                     str(_meta(ds).get("namespace")))
                if (ref := controller_of(p)) is not None and ref.get("uid") == uid]

    async def _claim_pods(self, ds: Obj, selector: LabelSelector) -> list[Obj]:
        """Owned pods that still match; adopt matching orphans, release non-matching ones
        (PodControllerRefManager.ClaimPods)."""
        md = _meta(ds)
        uid = md.get("uid")
        owned: list[Obj] = []
        orphans: list[Obj] = []
        for pod in self.pods.store.by_index(NAMESPACE_INDEX, str(md.get("namespace"))):
            ref = controller_of(pod)
            matches = selector.matches(_labels(pod))
            if ref is not None:
                if ref.get("uid") != uid:
                    continue
                if matches:
                    owned.append(pod)
                elif not _is_deleting(pod):
                    await self._release(pod, str(uid))
            elif matches and not _is_deleting(pod):
                orphans.append(pod)
        if orphans and await self._can_adopt(ds):
            for pod in orphans:
                adopted = await _patch_owner_refs(
                    self, pod, [*_list(_meta(pod).get("ownerReferences")),
                                controller_ref(ds, "apps/v1", "DaemonSet")])
                if adopted is not None:
                    owned.append(adopted)
        return owned

    async def _can_adopt(self, ds: Obj) -> bool:
        # A quorum read: never adopt for a DaemonSet that is being (or was) deleted.
        md = _meta(ds)
        try:
            fresh = await self.api.get(DAEMONSETS, str(md.get("name")), str(md.get("namespace")))
        except errors.NotFound:
            return False
        fmd = _meta(fresh)
        return fmd.get("uid") == md.get("uid") and not fmd.get("deletionTimestamp")

    async def _release(self, pod: Obj, uid: str) -> None:
        refs = [r for r in _list(_meta(pod).get("ownerReferences"))
                if not (isinstance(r, Mapping) and r.get("uid") == uid)]
        await _patch_owner_refs(self, pod, refs)

    async def _manage(self, ds: Obj, nodes: list[Obj], node_to_pods: dict[str, list[Obj]],
                      hash_: str) -> None:
        to_create: list[str] = []
        to_delete: list[Obj] = []
        for node in nodes:
            create, delete = self._pods_should_be_on_node(ds, node, node_to_pods, hash_)
            if create:
                to_create.append(str(_meta(node).get("name")))
            to_delete.extend(delete)
        # Pods aimed at nodes that no longer exist would never be scheduled; nothing else
        # (pod GC works on bound pods only) would remove them.
        existing = {_meta(n).get("name") for n in nodes}
        for node_name, pods in node_to_pods.items():
            if node_name not in existing:
                to_delete.extend(p for p in pods
                                 if not _spec(p).get("nodeName") and not _is_deleting(p))
        await self._sync_nodes(ds, to_delete, to_create, hash_)

    def _pods_should_be_on_node(self, ds: Obj, node: Obj, node_to_pods: dict[str, list[Obj]],
                                hash_: str) -> tuple[bool, list[Obj]]:
        """(create a pod on this node?, pods on it to delete)."""
        should_run, should_continue = node_should_run(node, ds)
        node_name = str(_meta(node).get("name"))
        pods = node_to_pods.get(node_name)
        if should_run and pods is None:
            return True, []
        if not should_continue:
            return False, [p for p in pods or [] if not _is_deleting(p)]
        delete: list[Obj] = []
        running: list[Obj] = []
        key = meta_key(ds)
        for pod in pods or []:
            if _is_deleting(pod):
                continue
            if _phase(pod) == "Failed":
                backoff_key = f"{_meta(ds).get('uid')}/" \
                              f"{_dict(ds.get('status')).get('observedGeneration', 0)}/{node_name}"
                now = time.monotonic()
                if self.failed_pods_backoff.in_backoff(backoff_key, now):
                    self.queue.add_after(key, self.failed_pods_backoff.delay(backoff_key))
                    continue
                self.failed_pods_backoff.next(backoff_key, now)
                self.recorder.event(ds, "Warning", "FailedDaemonPod",
                                    f"Found failed daemon pod {_meta(pod).get('namespace')}/"
                                    f"{_meta(pod).get('name')} on node {node_name}, will try "
                                    "to kill it")
                delete.append(pod)
            else:
                running.append(pod)
        running.sort(key=_creation_order)
        if not _allows_surge(ds):
            return False, delete + running[1:]
        # With surge an old and a new pod may share a node while the new one starts.
        generation = _template_generation(ds)
        oldest_new = oldest_old = None
        for pod in running:
            if is_pod_updated(pod, hash_, generation):
                if oldest_new is None:
                    oldest_new = pod
                    continue
            elif oldest_old is None:
                oldest_old = pod
                continue
            delete.append(pod)
        if oldest_new is not None and oldest_old is not None:
            min_ready = int(_spec(ds).get("minReadySeconds") or 0)
            if not is_pod_ready(oldest_old) or \
                    is_pod_available(oldest_new, min_ready, time.time()):
                delete.append(oldest_old)
        return False, delete

    async def _sync_nodes(self, ds: Obj, to_delete: list[Obj], to_create: list[str],
                          hash_: str) -> None:
        key = meta_key(ds)
        to_create = to_create[:BURST_REPLICAS]
        to_delete = to_delete[:BURST_REPLICAS]
        self.expectations.expect(key, adds=len(to_create), dels=len(to_delete))
        failures = 0
        # Slow start: batches of 1, 2, 4, ...; one failing batch skips the rest (quota
        # exhausted, namespace terminating, ...) instead of spamming the apiserver.
        pos, batch = 0, min(len(to_create), SLOW_START_INITIAL_BATCH)
        while pos < len(to_create):
            chunk = to_create[pos:pos + batch]
            results = await asyncio.gather(*(self._create_pod(ds, n, hash_) for n in chunk))
            pos += len(chunk)
            if not all(results):
                failures += results.count(False)
                for _ in range(len(to_create) - pos):
                    self.expectations.creation_observed(key)
                break
            batch = min(2 * batch, len(to_create) - pos)
        results = await asyncio.gather(*(self._delete_pod(ds, p) for p in to_delete))
        failures += results.count(False)
        if failures:
            raise RuntimeError(f"daemonset {key}: {failures} pod create/delete failed")

    async def _create_pod(self, ds: Obj, node_name: str, hash_: str) -> bool:
        key = meta_key(ds)
        try:
            pod = await self.api.create(PODS, new_daemon_pod(ds, node_name, hash_),
                                        str(_meta(ds).get("namespace")))
        except (errors.StatusError, ApiConnectionError) as e:
            self.expectations.creation_observed(key)
            self.recorder.event(ds, "Warning", "FailedCreate", f"Error creating: {e}")
            self.log.warning("create failed key=%s node=%s error=%s", key, node_name, e)
            return False
        name = _meta(pod).get("name")
        self.log.info("created pod key=%s pod=%s node=%s", key, name, node_name)
        self.recorder.event(ds, "Normal", "SuccessfulCreate", f"Created pod: {name}")
        return True

    async def _delete_pod(self, ds: Obj, pod: Obj) -> bool:
        key, name = meta_key(ds), str(_meta(pod).get("name"))
        try:
            await self.api.delete(PODS, name, str(_meta(pod).get("namespace")))
        except errors.NotFound:
            self.expectations.deletion_observed(key)
            return True
        except (errors.StatusError, ApiConnectionError) as e:
            self.expectations.deletion_observed(key)
            self.recorder.event(ds, "Warning", "FailedDelete", f"Error deleting: {e}")
            self.log.warning("delete failed key=%s pod=%s error=%s", key, name, e)
            return False
        self.log.info("deleted pod key=%s pod=%s", key, name)
        self.recorder.event(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
        return True

    # --- rolling update -------------------------------------------------------------------

    def _desired_counts(self, ds: Obj, nodes: list[Obj],
                        node_to_pods: dict[str, list[Obj]]) -> tuple[int, int]:
        """(maxSurge, maxUnavailable) scaled to the nodes that should run a pod; every
        such node gets an entry in node_to_pods, so a missing pod counts as unavailable."""
        desired = 0
        for node in nodes:
            if node_should_run(node, ds)[0]:
                desired += 1
                node_to_pods.setdefault(str(_meta(node).get("name")), [])
        rolling = _dict(_dict(_spec(ds).get("updateStrategy")).get("rollingUpdate"))
        max_unavailable = scaled_value(rolling.get("maxUnavailable", 1), desired, True)
        max_surge = scaled_value(rolling.get("maxSurge") or 0, desired, True)
        if desired > 0 and max_unavailable == 0 and max_surge == 0:
            max_unavailable = 1  # an impossible configuration: fall back to the default
        return max_surge, max_unavailable

    async def _rolling_update(self, ds: Obj, nodes: list[Obj],
                              node_to_pods: dict[str, list[Obj]], hash_: str) -> None:
        max_surge, max_unavailable = self._desired_counts(ds, nodes, node_to_pods)
        min_ready = int(_spec(ds).get("minReadySeconds") or 0)
        generation = _template_generation(ds)
        now = time.time()
        if max_surge == 0:
            # Delete old pods while at most maxUnavailable nodes lack an available pod;
            # the manage loop then creates their replacements from the new template.
            unavailable = 0
            allowed: list[Obj] = []
            candidates: list[Obj] = []
            for node_name in sorted(node_to_pods):
                found = _find_updated_pods(node_to_pods[node_name], hash_, generation)
                if found is None:
                    unavailable += 1
                    continue
                new, old = found
                if (new is None) == (old is None):
                    unavailable += 1  # nothing yet, or mid-replacement: manage handles it
                elif new is not None:
                    if not is_pod_available(new, min_ready, now):
                        unavailable += 1
                elif old is not None:
                    if not is_pod_available(old, min_ready, now):
                        allowed.append(old)  # already unavailable: replacing costs nothing
                        unavailable += 1
                    elif unavailable < max_unavailable:
                        candidates.append(old)
            remaining = max(0, min(max_unavailable - unavailable, len(candidates)))
            await self._sync_nodes(ds, allowed + candidates[:remaining], [], hash_)
            return
        # Surge: start a new pod next to an old one, delete the old once the new is available.
        surge = 0
        new_nodes_allowed: list[str] = []
        new_nodes_candidates: list[str] = []
        old_to_delete: list[Obj] = []
        node_by_name = {str(_meta(n).get("name")): n for n in nodes}
        for node_name in sorted(node_to_pods):
            found = _find_updated_pods(node_to_pods[node_name], hash_, generation)
            if found is None:
                surge += 1
                continue
            new, old = found
            if old is None:
                continue
            if new is None:
                if not is_pod_available(old, min_ready, now):
                    node = node_by_name.get(node_name)
                    if node is None or not node_should_run(node, ds)[0]:
                        old_to_delete.append(old)
                    else:
                        new_nodes_allowed.append(node_name)
                elif surge < max_surge:
                    new_nodes_candidates.append(node_name)
            elif not is_pod_available(new, min_ready, now):
                surge += 1
            else:
                old_to_delete.append(old)
        remaining = max(0, min(max_surge - surge, len(new_nodes_candidates)))
        await self._sync_nodes(ds, old_to_delete,
                               new_nodes_allowed + new_nodes_candidates[:remaining], hash_)

    # --- status ---------------------------------------------------------------------------

    async def _update_status(self, ds: Obj, nodes: list[Obj],
                             node_to_pods: dict[str, list[Obj]], hash_: str,
                             observe: bool) -> None:
        desired = current = misscheduled = ready = available = updated = 0
        min_ready = int(_spec(ds).get("minReadySeconds") or 0)
        generation = _template_generation(ds)
        now = time.time()
        for node in nodes:
            should_run, _ = node_should_run(node, ds)
            pods = node_to_pods.get(str(_meta(node).get("name"))) or []
            if not should_run:
                if pods:
                    misscheduled += 1
                continue
            desired += 1
            if not pods:
                continue
            current += 1
            pod = min(pods, key=_creation_order)
            if is_pod_ready(pod):
                ready += 1
                if is_pod_available(pod, min_ready, now):
                    available += 1
            if is_pod_updated(pod, hash_, generation):
                updated += 1
        old_status = dict(_dict(ds.get("status")))
        status = dict(old_status)
        status.update(currentNumberScheduled=current, numberMisscheduled=misscheduled,
                      desiredNumberScheduled=desired, numberReady=ready)
        # omitempty fields in upstream's JSON: absent when zero.
        for field_name, value in (("updatedNumberScheduled", updated),
                                  ("numberAvailable", available),
                                  ("numberUnavailable", desired - available)):
            if value:
                status[field_name] = value
            else:
                status.pop(field_name, None)
        if observe:
            status["observedGeneration"] = _meta(ds).get("generation")
        if status != old_status:
            await self._write_status(ds, status)
        if min_ready > 0 and ready != available:
            self.queue.add_after(meta_key(ds), min_ready)

    async def _write_status(self, ds: Obj, status: Obj) -> None:
        body = deep_copy(ds)
        body["status"] = status
        try:
            await self.api.update_status(DAEMONSETS, body)
        except errors.Conflict:
            # One retry on a fresh read, as upstream's storeDaemonSetStatus.
            md = _meta(ds)
            fresh = await self.api.get(DAEMONSETS, str(md.get("name")), str(md.get("namespace")))
            if _meta(fresh).get("uid") != md.get("uid"):
                return
            fresh["status"] = {**_dict(fresh.get("status")), **status}
            await self.api.update_status(DAEMONSETS, fresh)


def _allows_surge(ds: Mapping[str, Any]) -> bool:
    strategy = _dict(_spec(ds).get("updateStrategy"))
    if (strategy.get("type") or "RollingUpdate") != "RollingUpdate":
        return False
    try:
        return scaled_value(_dict(strategy.get("rollingUpdate")).get("maxSurge") or 0, 1,
                            True) != 0
    except ValueError:
        return False


def _by_node(pods: list[Obj], include_deleted_terminal: bool) -> dict[str, list[Obj]]:
    """Pods by the node they are for. A finished pod that is being deleted matters to the
    manage loop (it still occupies the node) but not to status or rolling updates."""
    out: dict[str, list[Obj]] = {}
    for pod in pods:
        if not include_deleted_terminal and _is_deleting(pod) and \
                _phase(pod) in ("Succeeded", "Failed"):
            continue
        node = target_node_name(pod)
        if node is not None:
            out.setdefault(node, []).append(pod)
    return out


def _find_updated_pods(pods: list[Obj], hash_: str,
                       generation: str | None) -> tuple[Obj | None, Obj | None] | None:
    """(new pod, old pod) on a node, ignoring deleting ones; None if either is repeated."""
    new = old = None
    for pod in pods:
        if _is_deleting(pod):
            continue
        if is_pod_updated(pod, hash_, generation):
            if new is not None:
                return None
            new = pod
        else:
            if old is not None:
                return None
            old = pod
    return new, old


async def _patch_owner_refs(controller: Controller, pod: Obj,
                            refs: list[Any]) -> Obj | None:
    """Set a pod's ownerReferences with a compare-and-swap on its resourceVersion; None when
    the pod changed or vanished meanwhile (its next event brings us back)."""
    md = _meta(pod)
    patch = {"metadata": {"ownerReferences": refs, "resourceVersion": md.get("resourceVersion")}}
    try:
        return await controller.api.patch(PODS, str(md.get("name")), patch,
                                          str(md.get("namespace")))
    except (errors.NotFound, errors.Conflict):
        return None
