"""The Deployment controller (upstream `pkg/controller/deployment`): rolls a Deployment's pod
template out through ReplicaSets, one per template revision.

The new ReplicaSet of a Deployment is the one whose template equals the Deployment's (the
`pod-template-hash` label aside); it is named `<deployment>-<hash>` and its selector and
template carry `pod-template-hash=<hash>`, so revisions never share pods. Every other owned
ReplicaSet is old. One sync of `namespace/name`:

1. claim ReplicaSets (adopt matching orphans, release owned ones that stopped matching);
2. paused, or only `spec.replicas` changed (a scaling event): resize the ReplicaSets, in
   proportion when a rollout is under way, and update status;
3. otherwise roll out: RollingUpdate scales the new ReplicaSet up while the total stays
   within replicas + maxSurge and scales old ones down while availability stays at least
   replicas - maxUnavailable; Recreate scales old ones to 0, waits until no old pod runs,
   then scales the new one up;
4. once complete, delete old ReplicaSets with no replicas beyond revisionHistoryLimit;
5. status: counts, Available and Progressing conditions (progressDeadlineSeconds).

Rollback is not the controller's business: `kubectl rollout undo` (1.32) patches the
Deployment's template back to an old ReplicaSet's; the controller then finds that
ReplicaSet as the new one (same template) and gives it the next revision number.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from api.errors import AlreadyExists, Conflict, NotFound, StatusError
from api.meta import deep_copy, now_rfc3339, parse_time
from api.resources import CATALOGUE
from api.selectors import selector_from_label_selector_object
from client.informer import split_meta_key
from controller_manager.base import Controller, ControllerContext
from controller_manager.podutil import (
    ControllerRefManager,
    controller_ref,
    ensure_namespace_index,
    in_namespace,
    is_terminating,
    new_controller_ref,
    pod_phase,
    uid_of,
)

Obj = dict[str, Any]

DEPLOYMENTS = CATALOGUE.require("deployments")
REPLICASETS = CATALOGUE.require("replicasets")
PODS = CATALOGUE.require("pods")

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Deployment annotations not copied to its ReplicaSets (they are the controller's own).
SKIP_COPY = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS,
                       MAX_REPLICAS})
MAX_REVISION_HISTORY_CHARS = 2000

# Condition reasons, as upstream's deployment/util.
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
FAILED_RS_CREATE = "ReplicaSetCreateError"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"

_INT32_MAX = 2**31 - 1
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # no vowels: hashes never spell words


# --- small accessors -------------------------------------------------------------------------


def spec_replicas(obj: Obj | None) -> int:
    if obj is None:
        return 0
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def _status_int(obj: Obj | None, field_name: str) -> int:
    if obj is None:
        return 0
    return int((obj.get("status") or {}).get(field_name) or 0)


def annotations_of(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def _created(obj: Obj) -> tuple[float, str]:
    when = parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
    return (when.timestamp() if when else 0.0, str(obj["metadata"].get("name") or ""))


def by_creation(rss: Iterable[Obj]) -> list[Obj]:
    """Oldest first; ties by name (upstream's ReplicaSetsByCreationTimestamp)."""
    return sorted(rss, key=_created)


def revision_of(rs: Obj) -> int:
    try:
        return int(annotations_of(rs).get(REVISION) or 0)
    except ValueError:
        return 0


def max_revision(rss: Iterable[Obj]) -> int:
    return max((revision_of(rs) for rs in rss), default=0)


def active(rss: Iterable[Obj | None]) -> list[Obj]:
    """ReplicaSets that should have pods."""
    return [rs for rs in rss if rs is not None and spec_replicas(rs) > 0]


def total_spec(rss: Iterable[Obj | None]) -> int:
    return sum(spec_replicas(rs) for rs in rss if rs is not None)


def total_status(rss: Iterable[Obj | None], field_name: str) -> int:
    return sum(_status_int(rs, field_name) for rs in rss if rs is not None)


def settled_available(rs: Obj | None) -> int:
    """Available replicas the ReplicaSet will have once it matches its spec.

    Right after a scale-down its status may still count pods about to be deleted; as the
    ReplicaSet controller deletes unavailable pods first, min(available, spec) is what stays.
    Using it keeps a lagging status from letting a rollout remove too many available pods.
    """
    if rs is None:
        return 0
    return min(_status_int(rs, "availableReplicas"), spec_replicas(rs))


# --- rolling-update arithmetic ---------------------------------------------------------------


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """An int-or-percent against `total` (upstream's GetScaledValueFromIntOrPercent)."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        fraction = int(text[:-1]) * total / 100
        return math.ceil(fraction) if round_up else math.floor(fraction)
    return int(text)


def resolve_fenceposts(max_surge: Any, max_unavailable: Any, desired: int) -> tuple[int, int]:
    surge = scaled_value(max_surge, desired, True)
    unavailable = scaled_value(max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        # Both round to 0 for small deployments: progress beats a rollout that never moves.
        unavailable = 1
    return surge, unavailable


def is_rolling(d: Obj) -> bool:
    return ((d["spec"].get("strategy") or {}).get("type") or "RollingUpdate") == "RollingUpdate"


def _rolling_params(d: Obj) -> tuple[Any, Any]:
    rolling = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    return rolling.get("maxSurge", "25%"), rolling.get("maxUnavailable", "25%")


def max_surge(d: Obj) -> int:
    if not is_rolling(d):
        return 0
    return resolve_fenceposts(*_rolling_params(d), spec_replicas(d))[0]


def max_unavailable(d: Obj) -> int:
    replicas = spec_replicas(d)
    if not is_rolling(d) or replicas == 0:
        return 0
    return min(resolve_fenceposts(*_rolling_params(d), replicas)[1], replicas)


def pods_at_most(rs: Obj | None) -> int:
    """An upper bound on the pods a ReplicaSet has now.

    After a scale-down its pods go only once the ReplicaSet controller deletes them; until
    its status shows that, count the pods it still reported. Upstream counts spec alone,
    which lets the new ReplicaSet's pods be created before the old ones are deleted and the
    surge be exceeded for a moment.
    """
    if rs is None:
        return 0
    return max(spec_replicas(rs), _status_int(rs, "replicas"))


def new_rs_new_replicas(d: Obj, all_rss: list[Obj | None], new_rs: Obj) -> int:
    """How big the new ReplicaSet may be now."""
    if not is_rolling(d):
        return spec_replicas(d)
    current = sum(pods_at_most(rs) for rs in all_rss)
    max_total = spec_replicas(d) + max_surge(d)
    if current >= max_total:
        return spec_replicas(new_rs)  # at the surge ceiling: cannot grow
    room = min(max_total - current, spec_replicas(d) - spec_replicas(new_rs))
    return spec_replicas(new_rs) + room


def _int_annotation(rs: Obj, key: str) -> int | None:
    raw = annotations_of(rs).get(key)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    """The new ReplicaSet runs the full, available size the Deployment asks for."""
    if rs is None:
        return False
    want = spec_replicas(d)
    return (spec_replicas(rs) == want and _int_annotation(rs, DESIRED_REPLICAS) == want
            and _status_int(rs, "availableReplicas") == want)


def find_active_or_latest(new_rs: Obj | None, old_rss: list[Obj]) -> Obj | None:
    """The only ReplicaSet with replicas, or the newest when none has any; None when several
    have replicas."""
    if new_rs is None and not old_rss:
        return None
    newest_first = list(reversed(by_creation(old_rss)))
    candidates = active([*newest_first, new_rs])
    if not candidates:
        return new_rs if new_rs is not None else newest_first[0]
    if len(candidates) == 1:
        return candidates[0]
    return None


def _round_half_up(x: float) -> int:
    # Go's math.Round (half away from zero); Python's round() is banker's rounding.
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def rs_fraction(rs: Obj, d: Obj) -> int:
    """How many replicas `rs` gains (or loses) when the Deployment is resized, in proportion
    to its share of the size the Deployment had (the max-replicas annotation)."""
    if spec_replicas(d) == 0:
        return -spec_replicas(rs)
    max_now = spec_replicas(d) + max_surge(d)
    before = _int_annotation(rs, MAX_REPLICAS)
    if not before:
        before = _status_int(d, "replicas")
        if before == 0:
            return 0
    return _round_half_up(spec_replicas(rs) * max_now / before) - spec_replicas(rs)


def proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
    if spec_replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = rs_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


# --- templates, hashes, annotations -------------------------------------------------------


def _semantic(value: Any) -> Any:
    """Drop nulls and empty maps/lists: Go decodes them to the same zero values, so templates
    differing only there (kubectl sends `creationTimestamp: null`) are the same template."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            v = _semantic(v)
            if v is None or v == {} or v == []:
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        return [_semantic(v) for v in value]
    return value


def _without_hash(template: Obj | None) -> Any:
    t = deep_copy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return _semantic(t)


def equal_ignore_hash(t1: Obj | None, t2: Obj | None) -> bool:
    return bool(_without_hash(t1) == _without_hash(t2))


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def template_hash(template: Obj, collision_count: int | None = None) -> str:
    """A short, stable, label-safe hash of a pod template (upstream's ComputeHash renders an
    FNV-32a the same way: decimal digits mapped onto a vowel-free alphabet)."""
    data = json.dumps(_without_hash(template), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()
    if collision_count is not None:
        data += int(collision_count).to_bytes(4, "little", signed=False)
    digits = str(_fnv32a(data))
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in digits)


def copy_annotations_to_rs(d: Obj, rs: Obj) -> bool:
    annotations = rs["metadata"].setdefault("annotations", {})
    changed = False
    for k, v in annotations_of(d).items():
        if k in SKIP_COPY or annotations.get(k) == v:
            continue
        annotations[k] = v
        changed = True
    return changed


def set_replicas_annotations(rs: Obj, desired: int, max_replicas: int) -> bool:
    annotations = rs["metadata"].setdefault("annotations", {})
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(max_replicas))):
        if annotations.get(key) != value:
            annotations[key] = value
            changed = True
    return changed


def replicas_annotations_need_update(rs: Obj, desired: int, max_replicas: int) -> bool:
    annotations = annotations_of(rs)
    return (annotations.get(DESIRED_REPLICAS) != str(desired)
            or annotations.get(MAX_REPLICAS) != str(max_replicas))


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: int, exists: bool) -> bool:
    """Copy the Deployment's annotations, raise the revision to `new_revision` (keeping the
    revisions it had before in revision-history) and, for a ReplicaSet about to be created,
    record the sizes it is made for."""
    changed = copy_annotations_to_rs(d, rs)
    annotations = rs["metadata"]["annotations"]
    old_raw = annotations.get(REVISION)
    try:
        old_revision = int(old_raw) if old_raw else 0
    except ValueError:
        return False
    if old_revision < new_revision:
        annotations[REVISION] = str(new_revision)
        changed = True
        if old_raw:
            # Reused (a rollback): remember the revisions this template had.
            history = [r for r in (annotations.get(REVISION_HISTORY) or "").split(",") if r]
            history.append(old_raw)
            while history and len(",".join(history)) > MAX_REVISION_HISTORY_CHARS:
                history.pop(0)
            annotations[REVISION_HISTORY] = ",".join(history)
    if not exists and set_replicas_annotations(rs, spec_replicas(d),
                                               spec_replicas(d) + max_surge(d)):
        changed = True
    return changed


def find_new_rs(d: Obj, rss: list[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template is the Deployment's (several can exist after a
    hash collision; the oldest wins, as upstream)."""
    for rs in by_creation(rss):
        if equal_ignore_hash(rs["spec"].get("template"), d["spec"].get("template")):
            return rs
    return None


# --- conditions and status -------------------------------------------------------------------


def get_condition(status: Obj | None, type_: str) -> Obj | None:
    for cond in (status or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == type_:
            return cond
    return None


def new_condition(type_: str, status: str, reason: str, message: str) -> Obj:
    now = now_rfc3339()
    return {"type": type_, "status": status, "lastUpdateTime": now,
            "lastTransitionTime": now, "reason": reason, "message": message}


def set_condition(status: Obj, cond: Obj) -> None:
    """Upstream's SetDeploymentCondition: same status and reason is no change; same status
    keeps the original transition time."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] and \
            current.get("reason") == cond["reason"]:
        return
    if current is not None and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime")}
    status["conditions"] = [c for c in status.get("conditions") or []
                            if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: Obj, type_: str) -> None:
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != type_]
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)


def has_progress_deadline(d: Obj) -> bool:
    deadline = d["spec"].get("progressDeadlineSeconds")
    return deadline is not None and int(deadline) != _INT32_MAX


def _omit_zero(status: Obj) -> Obj:
    """Go's omitempty: zero counts and empty lists are not written."""
    return {k: v for k, v in status.items() if v not in (0, None, [])}


def normalized_status(status: Any) -> Obj:
    return _omit_zero(dict(status or {}))


def calculate_status(all_rss: list[Obj | None], new_rs: Obj | None, d: Obj) -> Obj:
    rss = [rs for rs in all_rss if rs is not None]
    available = total_status(rss, "availableReplicas")
    unavailable = max(total_spec(rss) - available, 0)
    old = d.get("status") or {}
    status: Obj = {
        "observedGeneration": d["metadata"].get("generation"),
        "replicas": total_status(rss, "replicas"),
        "updatedReplicas": _status_int(new_rs, "replicas"),
        "readyReplicas": total_status(rss, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": unavailable,
        "conditions": [dict(c) for c in old.get("conditions") or [] if isinstance(c, dict)],
    }
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if available >= spec_replicas(d) - max_unavailable(d):
        set_condition(status, new_condition("Available", "True", MIN_AVAILABLE,
                                            "Deployment has minimum availability."))
    else:
        set_condition(status, new_condition("Available", "False", MIN_UNAVAILABLE,
                                            "Deployment does not have minimum availability."))
    return _omit_zero(status)


def deployment_complete(d: Obj, status: Obj) -> bool:
    want = spec_replicas(d)
    return (int(status.get("updatedReplicas") or 0) == want
            and int(status.get("replicas") or 0) == want
            and int(status.get("availableReplicas") or 0) == want
            and int(status.get("observedGeneration") or 0) >= int(
                d["metadata"].get("generation") or 0))


def deployment_progressing(d: Obj, status: Obj) -> bool:
    old = d.get("status") or {}

    def n(s: Obj, k: str) -> int:
        return int(s.get(k) or 0)

    old_old = n(old, "replicas") - n(old, "updatedReplicas")
    new_old = n(status, "replicas") - n(status, "updatedReplicas")
    return (n(status, "updatedReplicas") > n(old, "updatedReplicas") or new_old < old_old
            or n(status, "readyReplicas") > n(old, "readyReplicas")
            or n(status, "availableReplicas") > n(old, "availableReplicas"))


def _deadline_at(d: Obj, cond: Obj) -> float | None:
    since = parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return None
    return since.timestamp() + int(d["spec"]["progressDeadlineSeconds"])


def deployment_timed_out(d: Obj, status: Obj, now: float) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, "Progressing")
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    deadline = _deadline_at(d, cond)
    return deadline is not None and deadline < now


# --- the controller ------------------------------------------------------------------------


@dataclass
class _Sync:
    """One sync's working copy of the Deployment, replaced by the server's answer after each
    write so later writes in the same sync do not conflict with our own earlier ones."""

    key: str
    d: Obj


class DeploymentController(Controller):
    name = "deployment"
    workers = 5

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.deployments = self.informer(DEPLOYMENTS)
        self.replicasets = self.informer(REPLICASETS)
        self.pods = self.informer(PODS)
        for informer in (self.deployments, self.replicasets, self.pods):
            ensure_namespace_index(informer)
        # uid (of a Deployment or ReplicaSet) -> the resourceVersion our last write to it
        # returned. A sync waits until the cache has caught up with our own writes, so it
        # never decides on an object as it was before we changed it (nor trips over the
        # conflict a write from that stale copy would get).
        self._written: dict[str, int] = {}
        self.deployments.add_handler(self.enqueue, lambda old, cur: self.enqueue(cur),
                                     self._deployment_deleted)
        self.replicasets.add_handler(self._rs_added, self._rs_updated, self._rs_deleted)
        self.pods.add_handler(on_delete=self._pod_deleted)

    # --- event handlers ------------------------------------------------------------------

    def _resolve(self, namespace: str, ref: Obj | None) -> Obj | None:
        if ref is None or ref.get("kind") != DEPLOYMENTS.kind:
            return None
        d = self.deployments.store.get(f"{namespace}/{ref.get('name')}")
        if d is None or uid_of(d) != ref.get("uid"):
            return None
        return d

    def _deployments_for_rs(self, rs: Obj) -> list[Obj]:
        labels = rs["metadata"].get("labels") or {}
        if not labels:
            return []
        out = []
        for d in in_namespace(self.deployments, rs["metadata"].get("namespace") or ""):
            try:
                selector = selector_from_label_selector_object(d["spec"].get("selector"))
            except ValueError:
                continue
            if not selector.is_empty() and selector.matches(labels):
                out.append(d)
        return out

    def _deployment_deleted(self, d: Obj) -> None:
        self._written.pop(uid_of(d), None)
        self.enqueue(d)

    def _rs_added(self, rs: Obj) -> None:
        if is_terminating(rs):
            self._rs_deleted(rs)
            return
        ns = rs["metadata"].get("namespace") or ""
        ref = controller_ref(rs)
        if ref is not None:
            d = self._resolve(ns, ref)
            if d is not None:
                self.enqueue(d)
            return
        for d in self._deployments_for_rs(rs):
            self.enqueue(d)

    def _rs_updated(self, old: Obj, cur: Obj) -> None:
        if old["metadata"].get("resourceVersion") == cur["metadata"].get("resourceVersion"):
            return
        ns = cur["metadata"].get("namespace") or ""
        cur_ref, old_ref = controller_ref(cur), controller_ref(old)
        if cur_ref != old_ref and old_ref is not None:
            previous = self._resolve(ns, old_ref)
            if previous is not None:
                self.enqueue(previous)
        if cur_ref is not None:
            d = self._resolve(ns, cur_ref)
            if d is not None:
                self.enqueue(d)
            return
        if cur_ref != old_ref or old["metadata"].get("labels") != cur["metadata"].get("labels"):
            for d in self._deployments_for_rs(cur):
                self.enqueue(d)

    def _rs_deleted(self, rs: Obj) -> None:
        if not is_terminating(rs):
            self._written.pop(uid_of(rs), None)
        d = self._resolve(rs["metadata"].get("namespace") or "", controller_ref(rs))
        if d is not None:
            self.enqueue(d)

    def _pod_deleted(self, pod: Obj) -> None:
        # Recreate waits for the last old pod to go; nothing else about pods matters here.
        ns = pod["metadata"].get("namespace") or ""
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != REPLICASETS.kind:
            return
        rs = self.replicasets.store.get(f"{ns}/{ref.get('name')}")
        if rs is None or uid_of(rs) != ref.get("uid"):
            return
        d = self._resolve(ns, controller_ref(rs))
        if d is not None and not is_rolling(d):
            self.enqueue(d)

    # --- sync ----------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        try:
            await self._sync(key)
        except Conflict as e:
            # Someone (often our own previous write, not yet in the cache) changed the
            # object: try again shortly on fresher data.
            self.log.info("conflict, will retry deployment=%s error=%s", key, e)
            self.queue.add_rate_limited(key)

    async def _sync(self, key: str) -> None:
        cached = self.deployments.store.get(key)
        if cached is None:
            self.log.debug("deployment gone deployment=%s", key)
            return
        if self._is_stale(cached):
            self.log.debug("waiting for cache deployment=%s", key)
            return
        st = _Sync(key, deep_copy(cached))
        d = st.d
        selector_obj = d["spec"].get("selector")
        if not selector_obj or not (selector_obj.get("matchLabels")
                                    or selector_obj.get("matchExpressions")):
            self.recorder.event(d, "Warning", "SelectingAll", "This deployment is selecting "
                                "all pods. A non-empty selector is required.")
            if int((d.get("status") or {}).get("observedGeneration") or 0) < \
                    int(d["metadata"].get("generation") or 0):
                d.setdefault("status", {})["observedGeneration"] = d["metadata"]["generation"]
                await self._write_status(st)
            return
        try:
            selector = selector_from_label_selector_object(selector_obj)
        except ValueError as e:
            self.log.error("invalid selector deployment=%s error=%s", key, e)
            return

        namespace, name = split_meta_key(key)
        assert namespace is not None
        candidates = in_namespace(self.replicasets, namespace)
        manager = ControllerRefManager(self.api, d, DEPLOYMENTS, selector,
                                       lambda: self._fresh(namespace, name))
        rss = await manager.claim(candidates, REPLICASETS)
        stale = [rs["metadata"]["name"] for rs in rss if self._is_stale(rs)]
        if stale:
            # Our own recent writes are not in the cache yet; their events requeue us.
            self.log.debug("waiting for cache deployment=%s replicasets=%s", key, stale)
            return

        if is_terminating(d):
            new_rs, old_rss = await self._all_rss_and_sync_revision(st, rss, create=False)
            await self._sync_status(st, [*old_rss, new_rs], new_rs)
            return
        await self._check_paused_conditions(st)
        if st.d["spec"].get("paused"):
            await self._sync_scale(st, rss)
            return
        if await self._is_scaling_event(st, rss):
            await self._sync_scale(st, rss)
            return
        if is_rolling(st.d):
            await self._rollout_rolling(st, rss)
        else:
            await self._rollout_recreate(st, rss)

    def _is_stale(self, obj: Obj) -> bool:
        """Is the cached `obj` older than our own last write to it?"""
        written = self._written.get(uid_of(obj))
        if written is None:
            return False
        if int(obj["metadata"].get("resourceVersion") or 0) >= written:
            del self._written[uid_of(obj)]
            return False
        return True

    async def _fresh(self, namespace: str, name: str) -> Obj | None:
        try:
            return await self.api.get(DEPLOYMENTS, name, namespace)
        except NotFound:
            return None

    # --- writes ----------------------------------------------------------------------------

    async def _write_status(self, st: _Sync) -> None:
        st.d = await self.api.update_status(DEPLOYMENTS, st.d)
        self._remember_write(st.d)

    def _remember_write(self, obj: Obj) -> None:
        self._written[uid_of(obj)] = int(obj["metadata"]["resourceVersion"])

    async def _write_revision(self, st: _Sync, revision: str) -> None:
        """Record the rollout's revision on the Deployment.

        Upstream writes it together with status through UpdateStatus, whose strategy keeps
        metadata annotations; this apiserver's status subresource keeps the stored metadata,
        so it goes as a metadata-only patch, guarded by our resourceVersion.
        """
        if annotations_of(st.d).get(REVISION) == revision:
            return
        md = st.d["metadata"]
        patch = {"metadata": {"annotations": {REVISION: revision},
                              "resourceVersion": md["resourceVersion"]}}
        fresh = await self.api.patch(DEPLOYMENTS, md["name"], patch, md["namespace"])
        # Keep the status this sync is computing; the patch did not touch it.
        self._remember_write(fresh)
        fresh["status"] = st.d.get("status") or {}
        st.d = fresh

    async def _write_rs(self, rs: Obj) -> Obj:
        updated = await self.api.update(REPLICASETS, rs)
        self._remember_write(updated)
        return updated

    # --- revisions and the new ReplicaSet -------------------------------------------------

    async def _all_rss_and_sync_revision(self, st: _Sync, rss: list[Obj], create: bool
                                         ) -> tuple[Obj | None, list[Obj]]:
        existing_new = find_new_rs(st.d, rss)
        old_rss = [rs for rs in rss if existing_new is None or uid_of(rs) != uid_of(existing_new)]
        new_rs = await self._new_rs(st, existing_new, old_rss, create)
        if new_rs is not None:
            # Later steps of this sync must see what we just wrote, not the cached copy.
            rss[:] = [*old_rss, new_rs]
        return new_rs, old_rss

    async def _new_rs(self, st: _Sync, existing: Obj | None, old_rss: list[Obj],
                      create: bool) -> Obj | None:
        d = st.d
        new_revision = max_revision(old_rss) + 1
        if existing is not None:
            rs = deep_copy(existing)
            annotations_changed = set_new_rs_annotations(d, rs, new_revision, exists=True)
            min_ready = d["spec"].get("minReadySeconds") or 0
            if annotations_changed or (rs["spec"].get("minReadySeconds") or 0) != min_ready:
                rs["spec"]["minReadySeconds"] = min_ready
                # The Deployment's own revision follows on the next sync, from this RS.
                return await self._write_rs(rs)
            await self._write_revision(st, annotations_of(rs).get(REVISION, ""))
            if has_progress_deadline(st.d) and get_condition(st.d.get("status"),
                                                             "Progressing") is None:
                status = st.d.setdefault("status", {})
                set_condition(status, new_condition("Progressing", "True", FOUND_NEW_RS,
                                                    f'Found new replica set "{rs_name(rs)}"'))
                await self._write_status(st)
            return rs
        if not create:
            return None
        return await self._create_new_rs(st, old_rss, new_revision)

    async def _create_new_rs(self, st: _Sync, old_rss: list[Obj], new_revision: int
                             ) -> Obj | None:
        d = st.d
        md = d["metadata"]
        status = d.setdefault("status", {})
        template = deep_copy(d["spec"]["template"])
        pod_hash = template_hash(template, status.get("collisionCount"))
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
        selector = deep_copy(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
        rs: Obj = {
            "apiVersion": REPLICASETS.group_version, "kind": REPLICASETS.kind,
            "metadata": {"name": f"{md['name']}-{pod_hash}", "namespace": md["namespace"],
                         "labels": dict(template["metadata"]["labels"]),
                         "ownerReferences": [new_controller_ref(d, DEPLOYMENTS)],
                         "annotations": {}},
            "spec": {"replicas": 0, "minReadySeconds": d["spec"].get("minReadySeconds") or 0,
                     "selector": selector, "template": template},
        }
        rs["spec"]["replicas"] = new_rs_new_replicas(d, [*old_rss, rs], rs)
        set_new_rs_annotations(d, rs, new_revision, exists=False)
        already_existed = False
        try:
            created = await self.api.create(REPLICASETS, rs, md["namespace"])
        except AlreadyExists:
            already_existed = True
            found = await self._get_rs(md["namespace"], rs["metadata"]["name"])
            ref = controller_ref(found) if found is not None else None
            if found is not None and ref is not None and ref.get("uid") == uid_of(d) and \
                    equal_ignore_hash(d["spec"]["template"], found["spec"].get("template")):
                created = found  # ours, just not in the cache yet
            else:
                # A different template hashed to the same name: bump collisionCount so the
                # next hash differs, and retry from the status update's event.
                status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
                self.log.info("hash collision deployment=%s replicaset=%s collisionCount=%d",
                              st.key, rs["metadata"]["name"], status["collisionCount"])
                await self._write_status(st)
                return None
        except StatusError as e:
            if _namespace_terminating(e):
                raise
            msg = f'Failed to create new replica set "{rs["metadata"]["name"]}": {e}'
            if has_progress_deadline(d):
                set_condition(status, new_condition("Progressing", "False", FAILED_RS_CREATE,
                                                    msg))
                try:
                    await self._write_status(st)
                except StatusError:
                    pass  # the create error is the one to report
            self.recorder.event(d, "Warning", FAILED_RS_CREATE, msg)
            raise
        replicas = spec_replicas(created)
        if not already_existed:
            self._remember_write(created)
            self.log.info("created replicaset deployment=%s replicaset=%s replicas=%d "
                          "revision=%d", st.key, rs_name(created), replicas, new_revision)
            if replicas > 0:
                self.recorder.event(d, "Normal", "ScalingReplicaSet", "Scaled up replica set "
                                    f"{rs_name(created)} from 0 to {replicas}")
        await self._write_revision(st, str(new_revision))
        if not already_existed and has_progress_deadline(st.d):
            set_condition(st.d.setdefault("status", {}), new_condition(
                "Progressing", "True", NEW_RS_CREATED,
                f'Created new replica set "{rs_name(created)}"'))
            await self._write_status(st)
        return created

    async def _get_rs(self, namespace: str, name: str) -> Obj | None:
        try:
            return await self.api.get(REPLICASETS, name, namespace)
        except NotFound:
            return None

    # --- scaling -----------------------------------------------------------------------------

    async def _scale_rs(self, st: _Sync, rs: Obj, new_scale: int, operation: str
                        ) -> tuple[bool, Obj]:
        d = st.d
        size_changes = spec_replicas(rs) != new_scale
        max_replicas = spec_replicas(d) + max_surge(d)
        if not size_changes and not replicas_annotations_need_update(rs, spec_replicas(d),
                                                                      max_replicas):
            return False, rs
        old_scale = spec_replicas(rs)
        copy = deep_copy(rs)
        copy["spec"]["replicas"] = new_scale
        set_replicas_annotations(copy, spec_replicas(d), max_replicas)
        updated = await self._write_rs(copy)
        if size_changes:
            self.log.info("scaled replicaset deployment=%s replicaset=%s from=%d to=%d",
                          st.key, rs_name(rs), old_scale, new_scale)
            self.recorder.event(d, "Normal", "ScalingReplicaSet", f"Scaled {operation} replica "
                                f"set {rs_name(rs)} from {old_scale} to {new_scale}")
        return size_changes, updated

    async def _scale_rs_and_record(self, st: _Sync, rs: Obj, new_scale: int
                                   ) -> tuple[bool, Obj]:
        if spec_replicas(rs) == new_scale:
            return False, rs
        operation = "up" if spec_replicas(rs) < new_scale else "down"
        return await self._scale_rs(st, rs, new_scale, operation)

    async def _is_scaling_event(self, st: _Sync, rss: list[Obj]) -> bool:
        """Did only the size change? Active ReplicaSets remember the size they were made for
        (desired-replicas), so a difference means someone scaled the Deployment."""
        new_rs, old_rss = await self._all_rss_and_sync_revision(st, rss, create=False)
        for rs in active([*old_rss, new_rs]):
            desired = _int_annotation(rs, DESIRED_REPLICAS)
            if desired is not None and desired != spec_replicas(st.d):
                return True
        return False

    async def _sync_scale(self, st: _Sync, rss: list[Obj]) -> None:
        """Upstream's sync(): resize for a scaling event or a paused Deployment."""
        new_rs, old_rss = await self._all_rss_and_sync_revision(st, rss, create=False)
        await self._scale(st, new_rs, old_rss)
        if st.d["spec"].get("paused"):
            await self._cleanup(st, old_rss)
        await self._sync_status(st, [*old_rss, new_rs], new_rs)

    async def _scale(self, st: _Sync, new_rs: Obj | None, old_rss: list[Obj]) -> None:
        d = st.d
        only = find_active_or_latest(new_rs, old_rss)
        if only is not None:
            if spec_replicas(only) != spec_replicas(d):
                await self._scale_rs_and_record(st, only, spec_replicas(d))
            return
        if is_saturated(d, new_rs):
            # The new ReplicaSet carries everything (say, after adopting old ones): the old
            # ones go.
            for rs in active(old_rss):
                await self._scale_rs_and_record(st, rs, 0)
            return
        if not is_rolling(d):
            return
        rss = active([*old_rss, new_rs])
        allowed = spec_replicas(d) + max_surge(d) if spec_replicas(d) > 0 else 0
        to_add = allowed - total_spec(rss)
        # Larger ReplicaSets first; among equals, newer ones grow first and older ones
        # shrink first.
        operation = "up" if to_add > 0 else "down" if to_add < 0 else ""
        rss = by_creation(rss)
        if to_add > 0:
            rss.reverse()
        rss.sort(key=lambda rs: -spec_replicas(rs))  # stable: ties keep the order above
        sizes: dict[str, int] = {}
        added = 0
        for rs in rss:
            if to_add != 0:
                share = proportion(rs, d, to_add, added)
                sizes[rs_name(rs)] = spec_replicas(rs) + share
                added += share
            else:
                sizes[rs_name(rs)] = spec_replicas(rs)
        for i, rs in enumerate(rss):
            if i == 0 and to_add != 0:
                # Rounding leftovers go to the largest ReplicaSet.
                sizes[rs_name(rs)] = max(sizes[rs_name(rs)] + to_add - added, 0)
            await self._scale_rs(st, rs, sizes[rs_name(rs)], operation)

    # --- rolling update ----------------------------------------------------------------------

    async def _rollout_rolling(self, st: _Sync, rss: list[Obj]) -> None:
        new_rs, old_rss = await self._all_rss_and_sync_revision(st, rss, create=True)
        if new_rs is None:
            return  # a hash collision was recorded; its status event brings us back
        all_rss: list[Obj | None] = [*old_rss, new_rs]
        if await self._reconcile_new_rs(st, all_rss, new_rs):
            await self._sync_rollout_status(st, all_rss, new_rs)
            return
        if await self._reconcile_old_rss(st, all_rss, active(old_rss), new_rs):
            await self._sync_rollout_status(st, all_rss, new_rs)
            return
        if deployment_complete(st.d, st.d.get("status") or {}):
            await self._cleanup(st, old_rss)
        await self._sync_rollout_status(st, all_rss, new_rs)

    async def _reconcile_new_rs(self, st: _Sync, all_rss: list[Obj | None],
                                new_rs: Obj) -> bool:
        want = spec_replicas(st.d)
        if spec_replicas(new_rs) == want:
            return False
        if spec_replicas(new_rs) > want:
            scaled, _ = await self._scale_rs_and_record(st, new_rs, want)
            return scaled
        scaled, _ = await self._scale_rs_and_record(
            st, new_rs, new_rs_new_replicas(st.d, all_rss, new_rs))
        return scaled

    async def _reconcile_old_rss(self, st: _Sync, all_rss: list[Obj | None],
                                 old_rss: list[Obj], new_rs: Obj) -> bool:
        if total_spec(old_rss) == 0:
            return False
        d = st.d
        min_available = spec_replicas(d) - max_unavailable(d)
        new_unavailable = max(spec_replicas(new_rs) - settled_available(new_rs), 0)
        max_scaled_down = total_spec(all_rss) - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        # Unhealthy old replicas first: removing them costs no availability, and waiting for
        # them could block the rollout forever.
        old_rss, cleaned = await self._cleanup_unhealthy(st, old_rss, max_scaled_down)
        scaled = await self._scale_down_old_for_rolling(st, [*old_rss, new_rs], old_rss)
        return cleaned + scaled > 0

    async def _cleanup_unhealthy(self, st: _Sync, old_rss: list[Obj], budget: int
                                 ) -> tuple[list[Obj], int]:
        out: list[Obj] = []
        total = 0
        for rs in by_creation(old_rss):
            unhealthy = spec_replicas(rs) - settled_available(rs)
            if total >= budget or spec_replicas(rs) == 0 or unhealthy <= 0:
                out.append(rs)
                continue
            count = min(budget - total, unhealthy)
            _, rs = await self._scale_rs_and_record(st, rs, spec_replicas(rs) - count)
            total += count
            out.append(rs)
        return out, total

    async def _scale_down_old_for_rolling(self, st: _Sync, all_rss: list[Obj | None],
                                          old_rss: list[Obj]) -> int:
        d = st.d
        min_available = spec_replicas(d) - max_unavailable(d)
        available = sum(settled_available(rs) for rs in all_rss)
        if available <= min_available:
            return 0
        budget = available - min_available
        total = 0
        for rs in by_creation(old_rss):
            if total >= budget:
                break
            if spec_replicas(rs) == 0:
                continue
            count = min(spec_replicas(rs), budget - total)
            await self._scale_rs_and_record(st, rs, spec_replicas(rs) - count)
            total += count
        return total

    # --- recreate ------------------------------------------------------------------------------

    async def _rollout_recreate(self, st: _Sync, rss: list[Obj]) -> None:
        # No new ReplicaSet yet: creating it now would scale up before old pods are gone.
        new_rs, old_rss = await self._all_rss_and_sync_revision(st, rss, create=False)
        all_rss: list[Obj | None] = [*old_rss, new_rs]
        scaled_down = False
        for rs in active(old_rss):
            scaled, _ = await self._scale_rs_and_record(st, rs, 0)
            scaled_down = scaled_down or scaled
        if scaled_down:
            await self._sync_rollout_status(st, all_rss, new_rs)
            return
        if self._old_pods_running(st.d["metadata"]["namespace"], new_rs, old_rss):
            await self._sync_rollout_status(st, all_rss, new_rs)
            return
        if new_rs is None:
            new_rs, old_rss = await self._all_rss_and_sync_revision(st, rss, create=True)
            if new_rs is None:
                return
            all_rss = [*old_rss, new_rs]
        await self._scale_rs_and_record(st, new_rs, spec_replicas(st.d))
        if deployment_complete(st.d, st.d.get("status") or {}):
            await self._cleanup(st, old_rss)
        await self._sync_rollout_status(st, all_rss, new_rs)

    def _old_pods_running(self, namespace: str, new_rs: Obj | None, old_rss: list[Obj]
                          ) -> bool:
        if total_status(old_rss, "replicas") > 0:
            return True
        old_uids = {uid_of(rs) for rs in old_rss}
        if new_rs is not None:
            old_uids.discard(uid_of(new_rs))
        for pod in in_namespace(self.pods, namespace):
            if (controller_ref(pod) or {}).get("uid") not in old_uids:
                continue
            # A terminating pod still runs until its kubelet confirms; only finished pods
            # are certainly not running.
            if pod_phase(pod) not in ("Failed", "Succeeded"):
                return True
        return False

    # --- history cleanup -----------------------------------------------------------------------

    async def _cleanup(self, st: _Sync, old_rss: list[Obj]) -> None:
        limit = st.d["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        alive = [rs for rs in old_rss if not is_terminating(rs)]
        surplus = len(alive) - int(limit)
        if surplus <= 0:
            return
        for rs in sorted(alive, key=lambda r: (revision_of(r), _created(r)))[:surplus]:
            if _status_int(rs, "replicas") != 0 or spec_replicas(rs) != 0 or \
                    int(rs["metadata"].get("generation") or 0) > \
                    _status_int(rs, "observedGeneration"):
                continue  # still has (or may have) pods
            self.log.info("deleting old replicaset deployment=%s replicaset=%s revision=%d",
                          st.key, rs_name(rs), revision_of(rs))
            try:
                await self.api.delete(REPLICASETS, rs_name(rs), rs["metadata"]["namespace"],
                                      preconditions={"uid": uid_of(rs)})
            except (NotFound, Conflict):
                continue

    # --- status --------------------------------------------------------------------------------

    async def _check_paused_conditions(self, st: _Sync) -> None:
        d = st.d
        if not has_progress_deadline(d):
            return
        status = d.setdefault("status", {})
        cond = get_condition(status, "Progressing")
        if cond is not None and cond.get("reason") == TIMED_OUT:
            return  # a reported failure is not overwritten by pausing
        paused_recorded = cond is not None and cond.get("reason") == PAUSED
        if d["spec"].get("paused") and not paused_recorded:
            set_condition(status, new_condition("Progressing", "Unknown", PAUSED,
                                                "Deployment is paused"))
        elif not d["spec"].get("paused") and paused_recorded:
            set_condition(status, new_condition("Progressing", "Unknown", RESUMED,
                                                "Deployment is resumed"))
        else:
            return
        await self._write_status(st)

    async def _sync_status(self, st: _Sync, all_rss: list[Obj | None],
                           new_rs: Obj | None) -> None:
        status = calculate_status(all_rss, new_rs, st.d)
        if normalized_status(st.d.get("status")) == status:
            return
        st.d["status"] = status
        await self._write_status(st)

    async def _sync_rollout_status(self, st: _Sync, all_rss: list[Obj | None],
                                   new_rs: Obj | None) -> None:
        d = st.d
        status = calculate_status(all_rss, new_rs, d)
        if not has_progress_deadline(d):
            remove_condition(status, "Progressing")
        current = get_condition(d.get("status"), "Progressing")
        complete_before = (int(status.get("replicas") or 0)
                           == int(status.get("updatedReplicas") or 0)
                           and current is not None and current.get("reason") == NEW_RS_AVAILABLE)
        subject = f'ReplicaSet "{rs_name(new_rs)}"' if new_rs is not None else \
            f'Deployment "{d["metadata"]["name"]}"'
        if has_progress_deadline(d) and not complete_before:
            if deployment_complete(d, status):
                set_condition(status, new_condition("Progressing", "True", NEW_RS_AVAILABLE,
                                                    f"{subject} has successfully progressed."))
            elif deployment_progressing(d, status):
                cond = new_condition("Progressing", "True", RS_UPDATED,
                                     f"{subject} is progressing.")
                # Progress refreshes lastUpdateTime even when the reason stays the same;
                # the deadline counts from there.
                if current is not None:
                    if current.get("status") == "True":
                        cond["lastTransitionTime"] = current.get("lastTransitionTime")
                    remove_condition(status, "Progressing")
                set_condition(status, cond)
            elif deployment_timed_out(d, status, datetime.now(UTC).timestamp()):
                set_condition(status, new_condition("Progressing", "False", TIMED_OUT,
                                                    f"{subject} has timed out progressing."))
        failure = self._replica_failure([new_rs, *all_rss])
        if failure is not None:
            set_condition(status, failure)
        else:
            remove_condition(status, "ReplicaFailure")
        status = _omit_zero(status)
        if normalized_status(d.get("status")) == status:
            self._requeue_stuck(st, status)
            return
        d["status"] = status
        await self._write_status(st)

    def _replica_failure(self, rss: list[Obj | None]) -> Obj | None:
        for rs in rss:
            if rs is None:
                continue
            cond = get_condition(rs.get("status"), "ReplicaFailure")
            if cond is not None:
                return {"type": "ReplicaFailure", "status": cond.get("status", "True"),
                        "lastUpdateTime": cond.get("lastTransitionTime"),
                        "lastTransitionTime": cond.get("lastTransitionTime"),
                        "reason": cond.get("reason", ""), "message": cond.get("message", "")}
        return None

    def _requeue_stuck(self, st: _Sync, status: Obj) -> None:
        """Nothing changed: come back when the progress deadline would pass, as no event
        will mark that moment."""
        d = st.d
        cond = get_condition(d.get("status"), "Progressing")
        if not has_progress_deadline(d) or cond is None:
            return
        if deployment_complete(d, status) or cond.get("reason") == TIMED_OUT:
            return
        deadline = _deadline_at(d, cond)
        if deadline is None:
            return
        # Timestamps have whole seconds and the check is strict: a little past it.
        delay = max(deadline - datetime.now(UTC).timestamp(), 0.0) + 0.1
        self.queue.add_after(st.key, delay)


def rs_name(rs: Obj | None) -> str:
    return str(((rs or {}).get("metadata") or {}).get("name") or "")


def _namespace_terminating(error: StatusError) -> bool:
    causes = (error.details or {}).get("causes") or []
    return any(isinstance(c, dict) and c.get("reason") == "NamespaceTerminating"
               for c in causes)
