"""Helpers shared by controllers that own pods (and by the Deployment controller, which owns
ReplicaSets the same way).

- Pod predicates as upstream's `pkg/api/v1/pod` and `pkg/controller`: active, ready,
  available after `minReadySeconds`.
- Deletion order (`ActivePodsWithRanks`): which pods a controller removes first when it
  scales down.
- Controller references and claiming (`ControllerRefManager`): adopt matching orphans,
  release owned objects that no longer match, never touch what another controller owns.
- Expectations (`UIDTrackingControllerExpectations`): the creations and deletions a
  controller has issued but its informer has not shown yet, so a lagging cache never makes
  it create or delete twice.

Everything works on plain dicts as the informers cache them and never mutates them.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from api.errors import NotFound, StatusError
from api.meta import parse_time
from api.resources import Resource
from api.selectors import LabelSelector
from client.informer import NAMESPACE_INDEX, Informer, namespace_index
from client.rest import ApiClient

log = logging.getLogger(__name__)

Obj = dict[str, Any]

# --- pods ----------------------------------------------------------------------------------


def pod_phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_terminating(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def is_pod_active(pod: Obj) -> bool:
    """Counts towards a controller's replicas: not finished and not being deleted."""
    return pod_phase(pod) not in ("Succeeded", "Failed") and not is_terminating(pod)


def pod_condition(pod: Obj, type_: str) -> Obj | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == type_:
            return cond
    return None


def is_pod_ready(pod: Obj) -> bool:
    cond = pod_condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def pod_ready_since(pod: Obj) -> datetime | None:
    """When the pod last became Ready (None when it is not ready or does not say)."""
    if not is_pod_ready(pod):
        return None
    cond = pod_condition(pod, "Ready")
    return parse_time((cond or {}).get("lastTransitionTime"))


def seconds_until_available(pod: Obj, min_ready_seconds: int,
                            now: datetime | None = None) -> float | None:
    """0 when the pod is available now, the seconds left when it is ready but has not been
    for `min_ready_seconds` yet, None when it is not ready at all."""
    if not is_pod_ready(pod):
        return None
    if min_ready_seconds <= 0:
        return 0.0
    since = pod_ready_since(pod)
    if since is None:
        # Upstream treats a ready pod without a transition time as never available.
        return None
    now = now or datetime.now(UTC)
    left = (since.timestamp() + min_ready_seconds) - now.timestamp()
    # Upstream's test is strict (ready + minReady must be *before* now).
    return 0.0 if left < 0 else max(left, 1e-3)


def is_pod_available(pod: Obj, min_ready_seconds: int, now: datetime | None = None) -> bool:
    return seconds_until_available(pod, min_ready_seconds, now) == 0.0


def max_container_restarts(pod: Obj) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return max([int(s.get("restartCount") or 0) for s in statuses if isinstance(s, dict)],
               default=0)


def _deletion_cost(pod: Obj) -> int:
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(
        "controller.kubernetes.io/pod-deletion-cost")
    try:
        return int(raw) if raw is not None else 0
    except (TypeError, ValueError):
        return 0


_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


def _log_rank_diff(t1: datetime, t2: datetime, now: datetime) -> int:
    # LogarithmicScaleDown: times in the same power-of-two bucket of age count as equal,
    # so among similar pods the choice is spread (by UID) rather than always the newest.
    def rank(t: datetime) -> int:
        age_ns = (now - t).total_seconds() * 1e9
        return int(math.log2(age_ns)) if age_ns > 0 else -1
    return rank(t1) - rank(t2)


def _newer_first(t1: datetime | None, t2: datetime | None, uid1: str, uid2: str,
                 now: datetime) -> int | None:
    """-1/1 when the times decide (missing or newer first), None when they do not."""
    if t1 == t2:
        return None
    if t1 is None or t2 is None:
        return -1 if t1 is None else 1
    diff = _log_rank_diff(t1, t2, now)
    if diff == 0:
        if uid1 == uid2:
            return None
        return -1 if uid1 < uid2 else 1
    return -1 if diff < 0 else 1


def _compare_for_deletion(a: tuple[Obj, int], b: tuple[Obj, int], now: datetime) -> int:
    """Upstream's ActivePodsWithRanks.Less as a cmp: negative when `a` goes first."""
    pa, rank_a = a
    pb, rank_b = b
    node_a = (pa.get("spec") or {}).get("nodeName") or ""
    node_b = (pb.get("spec") or {}).get("nodeName") or ""
    # 1. unscheduled < scheduled
    if node_a != node_b and (not node_a or not node_b):
        return -1 if not node_a else 1
    # 2. Pending < Unknown < Running
    oa, ob = _PHASE_ORDINAL.get(pod_phase(pa), 0), _PHASE_ORDINAL.get(pod_phase(pb), 0)
    if oa != ob:
        return -1 if oa < ob else 1
    # 3. not ready < ready
    ra, rb = is_pod_ready(pa), is_pod_ready(pb)
    if ra != rb:
        return -1 if not ra else 1
    # 4. lower pod-deletion-cost < higher
    ca, cb = _deletion_cost(pa), _deletion_cost(pb)
    if ca != cb:
        return -1 if ca < cb else 1
    # 5. doubled up on a node < alone
    if rank_a != rank_b:
        return -1 if rank_a > rank_b else 1
    uid_a = str((pa.get("metadata") or {}).get("uid") or "")
    uid_b = str((pb.get("metadata") or {}).get("uid") or "")
    # 6. ready for a shorter time < longer
    if ra and rb:
        decided = _newer_first(pod_ready_since(pa), pod_ready_since(pb), uid_a, uid_b, now)
        if decided is not None:
            return decided
    # 7. more restarts < fewer
    xa, xb = max_container_restarts(pa), max_container_restarts(pb)
    if xa != xb:
        return -1 if xa > xb else 1
    # 8. newer < older
    created_a = parse_time((pa.get("metadata") or {}).get("creationTimestamp"))
    created_b = parse_time((pb.get("metadata") or {}).get("creationTimestamp"))
    decided = _newer_first(created_a, created_b, uid_a, uid_b, now)
    return decided or 0


def pods_to_delete(pods: list[Obj], related: Iterable[Obj], count: int,
                   now: datetime | None = None) -> list[Obj]:
    """The `count` pods to remove first: upstream's ranking, where a pod's rank is how many
    active related pods (of the same owner's family) share its node."""
    if count >= len(pods):
        return list(pods)
    on_node: dict[str, int] = {}
    for pod in related:
        if is_pod_active(pod):
            node = (pod.get("spec") or {}).get("nodeName") or ""
            on_node[node] = on_node.get(node, 0) + 1
    ranked = [(p, on_node.get((p.get("spec") or {}).get("nodeName") or "", 0)) for p in pods]
    when = now or datetime.now(UTC)

    def compare(a: tuple[Obj, int], b: tuple[Obj, int]) -> int:
        return _compare_for_deletion(a, b, when)

    ranked.sort(key=functools.cmp_to_key(compare))
    return [p for p, _ in ranked[:count]]


# --- controller references -------------------------------------------------------------------


def controller_ref(obj: Obj) -> Obj | None:
    """The ownerReference with controller=true, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref
    return None


def new_controller_ref(owner: Obj, resource: Resource) -> Obj:
    md = owner["metadata"]
    return {"apiVersion": resource.group_version, "kind": resource.kind, "name": md["name"],
            "uid": md["uid"], "controller": True, "blockOwnerDeletion": True}


def uid_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def ensure_namespace_index(informer: Informer) -> None:
    """Index an informer by namespace; controllers share informers, so it may exist."""
    try:
        informer.add_index(NAMESPACE_INDEX, namespace_index)
    except ValueError:
        pass


def in_namespace(informer: Informer, namespace: str) -> list[Obj]:
    return informer.store.by_index(NAMESPACE_INDEX, namespace)


class ControllerRefManager:
    """Claims objects for one owner, as upstream's BaseControllerRefManager.ClaimObject.

    An object the owner controls and that still matches is kept; one it controls that no
    longer matches is released; a matching orphan is adopted, after one fresh read of the
    owner (`can_adopt`) shows it still exists with the same UID and is not being deleted,
    so a stale cache never makes a dying owner grab objects. Objects controlled by someone
    else are never touched. Writes are strategic merge patches on ownerReferences (merge key
    `uid`), as upstream sends them.
    """

    def __init__(self, api: ApiClient, owner: Obj, owner_resource: Resource,
                 selector: LabelSelector, can_adopt: Callable[[], Awaitable[Obj | None]]) -> None:
        self.api = api
        self.owner = owner
        self.owner_resource = owner_resource
        self.selector = selector
        self._can_adopt = can_adopt
        self._adopt_checked: bool | None = None

    async def _may_adopt(self) -> bool:
        if self._adopt_checked is None:
            fresh = await self._can_adopt()
            self._adopt_checked = bool(
                fresh is not None and uid_of(fresh) == uid_of(self.owner)
                and not is_terminating(fresh))
        return self._adopt_checked

    async def claim(self, objs: Iterable[Obj], resource: Resource) -> list[Obj]:
        """The objects this owner should manage, adopting and releasing as needed."""
        owner_uid = uid_of(self.owner)
        claimed: list[Obj] = []
        first_error: Exception | None = None
        for obj in objs:
            labels = (obj.get("metadata") or {}).get("labels") or {}
            ref = controller_ref(obj)
            try:
                if ref is not None:
                    if ref.get("uid") != owner_uid:
                        continue  # someone else's
                    if self.selector.matches(labels):
                        claimed.append(obj)
                    elif not is_terminating(self.owner):
                        await self._release(obj, resource)
                    continue
                if is_terminating(self.owner) or not self.selector.matches(labels):
                    continue
                if is_terminating(obj):
                    continue  # adopting something that is going away gains nothing
                if not await self._may_adopt():
                    continue
                adopted = await self._adopt(obj, resource)
                if adopted is not None:
                    claimed.append(adopted)
            except StatusError as e:
                # Keep claiming the rest; the caller retries the sync for this error.
                first_error = first_error or e
        if first_error is not None:
            raise first_error
        return claimed

    async def _adopt(self, obj: Obj, resource: Resource) -> Obj | None:
        md = obj["metadata"]
        ref = new_controller_ref(self.owner, self.owner_resource)
        patch = {"metadata": {"ownerReferences": [ref], "uid": md["uid"]}}
        try:
            adopted = await self.api.patch(resource, md["name"], patch, md.get("namespace"),
                                           patch_type="strategic")
        except NotFound:
            return None
        # The uid in the patch is a precondition upstream; check it here as well, so a
        # recreated namesake is not kept as the object we meant.
        if uid_of(adopted) != md["uid"]:
            return None
        log.info("adopted object owner=%s kind=%s key=%s/%s", self._owner_key(),
                 resource.kind, md.get("namespace"), md["name"])
        return adopted

    async def _release(self, obj: Obj, resource: Resource) -> None:
        md = obj["metadata"]
        patch = {"metadata": {"ownerReferences": [{"$patch": "delete",
                                                   "uid": uid_of(self.owner)}],
                              "uid": md["uid"]}}
        try:
            await self.api.patch(resource, md["name"], patch, md.get("namespace"),
                                 patch_type="strategic")
        except NotFound:
            return
        log.info("released object owner=%s kind=%s key=%s/%s", self._owner_key(),
                 resource.kind, md.get("namespace"), md["name"])

    def _owner_key(self) -> str:
        md = self.owner["metadata"]
        return f"{md.get('namespace')}/{md.get('name')}"


# --- expectations ----------------------------------------------------------------------------

# After this long an unfulfilled expectation is given up on (a lost watch event must not
# block a controller forever); upstream's ExpectationsTimeout.
EXPECTATIONS_TIMEOUT = 300.0


@dataclass
class _Expectation:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    stamp: float = field(default_factory=time.monotonic)

    def fulfilled(self) -> bool:
        return self.adds <= 0 and not self.deletes


class Expectations:
    """Creations (a count) and deletions (by pod key) a controller is waiting to observe.

    `satisfied(key)` is False while any are outstanding (and not expired); the controller
    then only refreshes status and waits for its informer to catch up before it creates or
    deletes again.
    """

    def __init__(self, timeout: float = EXPECTATIONS_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self._clock = clock
        self._items: dict[str, _Expectation] = {}

    def satisfied(self, key: str) -> bool:
        exp = self._items.get(key)
        if exp is None:
            return True  # nothing issued (or a fresh process): free to act
        return exp.fulfilled() or self._clock() - exp.stamp > self.timeout

    def expect_creations(self, key: str, count: int) -> None:
        self._items[key] = _Expectation(adds=count, stamp=self._clock())

    def expect_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        self._items[key] = _Expectation(deletes=set(pod_keys), stamp=self._clock())

    def creation_observed(self, key: str) -> None:
        exp = self._items.get(key)
        if exp is not None:
            exp.adds -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        exp = self._items.get(key)
        if exp is not None:
            exp.deletes.discard(pod_key)

    def pending(self, key: str) -> tuple[int, int]:
        exp = self._items.get(key)
        return (max(exp.adds, 0), len(exp.deletes)) if exp is not None else (0, 0)

    def delete(self, key: str) -> None:
        self._items.pop(key, None)
