"""The ReplicaSet controller (upstream `pkg/controller/replicaset`): keeps `spec.replicas`
active pods for each ReplicaSet and reports how many there are, ready and available.

One sync of `namespace/name`:
1. claim the pods in the namespace: adopt matching orphans, release owned pods that no
   longer match (ControllerRefManager);
2. when no earlier creations or deletions are still unobserved (expectations), create the
   missing pods in slow-start batches (1, 2, 4, ...) or delete the surplus, least valuable
   first (unscheduled, pending, not ready, newest ...);
3. write status (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas,
   observedGeneration, the ReplicaFailure condition) and come back when a ready pod is due
   to become available after minReadySeconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from api.errors import Conflict, NotFound, StatusError
from api.meta import deep_copy, now_rfc3339
from api.resources import CATALOGUE
from api.selectors import LabelSelector, selector_from_label_selector_object
from client.informer import meta_key, split_meta_key
from client.rest import ApiConnectionError
from controller_manager.base import Controller, ControllerContext
from controller_manager.podutil import (
    ControllerRefManager,
    Expectations,
    controller_ref,
    ensure_namespace_index,
    in_namespace,
    is_pod_active,
    is_pod_ready,
    is_terminating,
    new_controller_ref,
    pods_to_delete,
    seconds_until_available,
    uid_of,
)

Obj = dict[str, Any]

PODS = CATALOGUE.require("pods")
REPLICASETS = CATALOGUE.require("replicasets")

# At most this many pods are created or deleted in one sync (upstream's BurstReplicas), so
# one huge ReplicaSet cannot monopolise the apiserver.
BURST_REPLICAS = 500
# The first creation batch; batches double while they succeed (upstream's slow start), so a
# template every create fails for costs one request, not hundreds.
SLOW_START_INITIAL_BATCH = 1


class ReplicaSetController(Controller):
    name = "replicaset"
    workers = 5

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.expectations = Expectations()
        self.replicasets = self.informer(REPLICASETS)
        self.pods = self.informer(PODS)
        ensure_namespace_index(self.replicasets)
        ensure_namespace_index(self.pods)
        self.replicasets.add_handler(self._rs_added, self._rs_updated, self._rs_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    # --- event handlers ------------------------------------------------------------------

    def _rs_added(self, rs: Obj) -> None:
        self.enqueue(rs)

    def _rs_updated(self, old: Obj, cur: Obj) -> None:
        self.enqueue(cur)

    def _rs_deleted(self, rs: Obj) -> None:
        key = meta_key(rs)
        self.expectations.delete(key)
        self.queue.add(key)

    def _owner_of(self, pod: Obj, ref: Obj | None = None) -> Obj | None:
        """The ReplicaSet a pod's controllerRef names, if we know it under that UID."""
        ref = ref if ref is not None else controller_ref(pod)
        if ref is None or ref.get("kind") != REPLICASETS.kind:
            return None
        ns = pod["metadata"].get("namespace")
        rs = self.replicasets.store.get(f"{ns}/{ref.get('name')}")
        if rs is None or uid_of(rs) != ref.get("uid"):
            return None
        return rs

    def _matching_replicasets(self, pod: Obj) -> list[Obj]:
        """ReplicaSets whose selector matches an orphan pod (candidates to adopt it)."""
        labels = pod["metadata"].get("labels") or {}
        if not labels:
            return []
        out = []
        for rs in in_namespace(self.replicasets, pod["metadata"].get("namespace") or ""):
            try:
                selector = selector_from_label_selector_object(rs["spec"].get("selector"))
            except ValueError:
                continue
            if not selector.is_empty() and selector.matches(labels):
                out.append(rs)
        return out

    def _pod_added(self, pod: Obj) -> None:
        if is_terminating(pod):
            # A restarted controller can first see a pod already being deleted: that is a
            # deletion to observe, not a creation.
            self._pod_deleted(pod)
            return
        rs = self._owner_of(pod)
        if rs is not None:
            key = meta_key(rs)
            self.expectations.creation_observed(key)
            self.queue.add(key)
            return
        if controller_ref(pod) is None:
            for candidate in self._matching_replicasets(pod):
                self.enqueue(candidate)

    def _pod_updated(self, old: Obj, cur: Obj) -> None:
        if old["metadata"].get("resourceVersion") == cur["metadata"].get("resourceVersion"):
            return
        labels_changed = old["metadata"].get("labels") != cur["metadata"].get("labels")
        if is_terminating(cur):
            # Graceful deletion shows up as an update; count it as the deletion we expect.
            self._pod_deleted(cur)
            if labels_changed:
                self._pod_deleted(old)
            return
        cur_ref, old_ref = controller_ref(cur), controller_ref(old)
        ref_changed = cur_ref != old_ref
        if ref_changed and old_ref is not None:
            previous = self._owner_of(old, old_ref)
            if previous is not None:
                self.enqueue(previous)
        if cur_ref is not None:
            rs = self._owner_of(cur, cur_ref)
            if rs is not None:
                self.enqueue(rs)
            return
        if labels_changed or ref_changed:
            for candidate in self._matching_replicasets(cur):
                self.enqueue(candidate)

    def _pod_deleted(self, pod: Obj) -> None:
        rs = self._owner_of(pod)
        if rs is None:
            return
        key = meta_key(rs)
        self.expectations.deletion_observed(key, meta_key(pod))
        self.queue.add(key)

    # --- sync ----------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        cached = self.replicasets.store.get(key)
        if cached is None:
            self.expectations.delete(key)
            self.log.debug("replicaset gone replicaset=%s", key)
            return
        namespace, name = split_meta_key(key)
        assert namespace is not None
        needs_sync = self.expectations.satisfied(key)
        try:
            selector = selector_from_label_selector_object(cached["spec"].get("selector"))
        except ValueError as e:
            # Validation keeps these out; a bad selector is not worth retrying.
            self.log.error("invalid selector replicaset=%s error=%s", key, e)
            return
        pods = [p for p in in_namespace(self.pods, namespace) if is_pod_active(p)]
        manager = ControllerRefManager(self.api, cached, REPLICASETS, selector,
                                       lambda: self._fresh(namespace, name))
        pods = await manager.claim(pods, PODS)

        manage_error: Exception | None = None
        if needs_sync and not is_terminating(cached):
            try:
                await self._manage_replicas(key, cached, pods)
            except (StatusError, ApiConnectionError) as e:
                manage_error = e
        else:
            adds, deletes = self.expectations.pending(key)
            self.log.debug("waiting for expectations replicaset=%s creates=%d deletes=%d",
                           key, adds, deletes)

        rs = deep_copy(cached)
        status, next_available = calculate_status(rs, pods, selector, manage_error)
        await self._update_status(rs, status)
        if manage_error is None and next_available is not None:
            # A ready pod turns available once it has been ready for minReadySeconds; no
            # event marks that moment, so come back for it.
            self.queue.add_after(key, next_available + 0.05)
        if manage_error is not None:
            raise manage_error

    async def _fresh(self, namespace: str, name: str) -> Obj | None:
        try:
            return await self.api.get(REPLICASETS, name, namespace)
        except NotFound:
            return None

    async def _manage_replicas(self, key: str, rs: Obj, pods: list[Obj]) -> None:
        want = int(rs["spec"].get("replicas", 1))
        diff = len(pods) - want
        if diff < 0:
            await self._create_pods(key, rs, min(-diff, BURST_REPLICAS))
        elif diff > 0:
            await self._delete_pods(key, rs, pods, min(diff, BURST_REPLICAS))

    async def _create_pods(self, key: str, rs: Obj, count: int) -> None:
        # Expect them all before the first request: their watch events can beat our replies.
        self.expectations.expect_creations(key, count)
        self.log.info("creating pods replicaset=%s need=%d", key, count)
        created, error = await self._slow_start(count, lambda: self._create_one(key, rs))
        skipped = count - created
        if skipped > 0:
            # Pods never attempted (or failed) will not show up: stop waiting for them.
            self.log.info("slow-start skipped pods replicaset=%s skipped=%d", key, skipped)
            for _ in range(skipped):
                self.expectations.creation_observed(key)
        if error is not None:
            raise error

    async def _slow_start(self, count: int, fn: Callable[[], Awaitable[None]]
                          ) -> tuple[int, Exception | None]:
        """Run `fn` count times in doubling batches; stop after the first failing batch."""
        done = 0
        remaining = count
        batch = min(remaining, SLOW_START_INITIAL_BATCH)
        while batch > 0:
            results = await asyncio.gather(*(fn() for _ in range(batch)),
                                           return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            done += batch - len(errors)
            if errors:
                first = errors[0]
                if not isinstance(first, Exception):
                    raise first
                return done, first
            remaining -= batch
            batch = min(2 * batch, remaining)
        return done, None

    async def _create_one(self, key: str, rs: Obj) -> None:
        pod = pod_from_template(rs)
        try:
            created = await self.api.create(PODS, pod, rs["metadata"]["namespace"])
        except StatusError as e:
            if _namespace_terminating(e):
                # Every create will fail until the namespace is gone: nothing to report,
                # and nothing will show up to observe.
                self.expectations.creation_observed(key)
                return
            self.recorder.event(rs, "Warning", "FailedCreate", f"Error creating: {e}")
            raise
        name = created["metadata"]["name"]
        self.log.info("created pod replicaset=%s pod=%s", key, name)
        self.recorder.event(rs, "Normal", "SuccessfulCreate", f"Created pod: {name}")

    async def _delete_pods(self, key: str, rs: Obj, pods: list[Obj], count: int) -> None:
        related = self._related_pods(rs, pods)
        doomed = pods_to_delete(pods, related, count)
        self.expectations.expect_deletions(key, [meta_key(p) for p in doomed])
        self.log.info("deleting pods replicaset=%s surplus=%d pods=%s", key, count,
                      ",".join(p["metadata"]["name"] for p in doomed))
        results = await asyncio.gather(*(self._delete_one(key, rs, p) for p in doomed),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _delete_one(self, key: str, rs: Obj, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        try:
            await self.api.delete(PODS, name, pod["metadata"]["namespace"],
                                  preconditions={"uid": uid_of(pod)})
        except NotFound:
            # Already gone; its delete event may never reach us, so observe it here.
            self.expectations.deletion_observed(key, meta_key(pod))
            return
        except (StatusError, ApiConnectionError) as e:
            self.expectations.deletion_observed(key, meta_key(pod))
            if isinstance(e, Conflict):
                return  # a different pod now has that name: ours is gone
            self.recorder.event(rs, "Warning", "FailedDelete", f"Error deleting: {e}")
            raise
        self.log.info("deleted pod replicaset=%s pod=%s", key, name)
        self.recorder.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")

    def _related_pods(self, rs: Obj, pods: list[Obj]) -> list[Obj]:
        """Pods of every ReplicaSet sharing this one's owner (a Deployment's revisions):
        upstream ranks a pod sharing a node with many of them as first to go."""
        owner = controller_ref(rs)
        if owner is None:
            return pods
        siblings = {uid_of(other) for other in in_namespace(self.replicasets,
                                                             rs["metadata"]["namespace"])
                    if (controller_ref(other) or {}).get("uid") == owner.get("uid")}
        return [p for p in in_namespace(self.pods, rs["metadata"]["namespace"])
                if (controller_ref(p) or {}).get("uid") in siblings]

    async def _update_status(self, rs: Obj, status: Obj) -> None:
        generation = rs["metadata"].get("generation")
        if generation is not None:
            status["observedGeneration"] = generation
        if _normalized(rs.get("status")) == _normalized(status):
            return
        key = meta_key(rs)
        rs["status"] = status
        try:
            await self.api.update_status(REPLICASETS, rs)
        except Conflict:
            # Our cached copy is stale: one retry on a fresh read, as upstream does.
            fresh = await self.api.get(REPLICASETS, rs["metadata"]["name"],
                                       rs["metadata"]["namespace"])
            if uid_of(fresh) != uid_of(rs):
                return
            generation = fresh["metadata"].get("generation")
            if generation is not None:
                status["observedGeneration"] = generation
            fresh["status"] = status
            await self.api.update_status(REPLICASETS, fresh)
        except NotFound:
            return
        self.log.debug("updated status replicaset=%s replicas=%s ready=%s available=%s",
                       key, status.get("replicas"), status.get("readyReplicas"),
                       status.get("availableReplicas"))


def pod_from_template(rs: Obj) -> Obj:
    """A new pod for `rs` (upstream's GetPodFromTemplate)."""
    template = rs["spec"].get("template") or {}
    tmd = template.get("metadata") or {}
    md: Obj = {
        "generateName": f"{rs['metadata']['name']}-",
        "namespace": rs["metadata"]["namespace"],
        "labels": dict(tmd.get("labels") or {}),
        "ownerReferences": [new_controller_ref(rs, REPLICASETS)],
    }
    if tmd.get("annotations"):
        md["annotations"] = dict(tmd["annotations"])
    if tmd.get("finalizers"):
        md["finalizers"] = list(tmd["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md,
            "spec": deep_copy(template.get("spec") or {})}


def calculate_status(rs: Obj, pods: list[Obj], selector: LabelSelector,
                     manage_error: Exception | None) -> tuple[Obj, float | None]:
    """The status for `rs` given its active pods, and the seconds until the next ready pod
    becomes available (None when none is waiting)."""
    template_labels = ((rs["spec"].get("template") or {}).get("metadata") or {}).get(
        "labels") or {}
    min_ready = int(rs["spec"].get("minReadySeconds") or 0)
    now = datetime.now(UTC)
    fully_labeled = ready = available = 0
    next_available: float | None = None
    for pod in pods:
        labels = pod["metadata"].get("labels") or {}
        if all(labels.get(k) == v for k, v in template_labels.items()):
            fully_labeled += 1
        if is_pod_ready(pod):
            ready += 1
            left = seconds_until_available(pod, min_ready, now)
            if left == 0.0:
                available += 1
            elif left is not None:
                next_available = left if next_available is None else min(next_available, left)
    old = rs.get("status") or {}
    conditions = [c for c in old.get("conditions") or [] if isinstance(c, dict)]
    failure = next((c for c in conditions if c.get("type") == "ReplicaFailure"), None)
    if manage_error is not None and failure is None:
        want = int(rs["spec"].get("replicas", 1))
        reason = "FailedCreate" if len(pods) < want else "FailedDelete"
        now_s = now_rfc3339()
        conditions.append({"type": "ReplicaFailure", "status": "True",
                           "lastTransitionTime": now_s, "reason": reason,
                           "message": str(manage_error)})
    elif manage_error is None and failure is not None:
        conditions = [c for c in conditions if c.get("type") != "ReplicaFailure"]
    # Go's omitempty: zero counts are left out; `replicas` is always written.
    status: Obj = {"replicas": len(pods)}
    for field_name, value in (("fullyLabeledReplicas", fully_labeled),
                              ("readyReplicas", ready), ("availableReplicas", available)):
        if value:
            status[field_name] = value
    if conditions:
        status["conditions"] = conditions
    return status, next_available


def _normalized(status: Any) -> Obj:
    status = dict(status or {})
    for k in ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas",
              "observedGeneration"):
        if not status.get(k):
            status.pop(k, None)
    if not status.get("conditions"):
        status.pop("conditions", None)
    return status


def _namespace_terminating(error: StatusError) -> bool:
    causes = (error.details or {}).get("causes") or []
    return any(isinstance(c, dict) and c.get("reason") == "NamespaceTerminating"
               for c in causes)
