"""Node lifecycle: notice nodes that stopped reporting, taint sick nodes, evict by taint.

As upstream's `pkg/controller/nodelifecycle` plus `pkg/controller/tainteviction`:

- A node shows it is alive two ways: its kubelet renews the Lease named after it in
  `kube-node-lease`, and posts the Ready condition's `lastHeartbeatTime`. The controller
  remembers *when it saw* either change (its own monotonic clock, so a kubelet's clock skew
  does not matter). Every `node_monitor_period` each node is checked; one silent for longer
  than `node_monitor_grace_period` gets every health condition set to Unknown.
- From the conditions follow taints: Ready=False → `not-ready`, Ready=Unknown →
  `unreachable`, both as NoExecute (evicting) and as NoSchedule, plus the pressure and
  `unschedulable` NoSchedule taints (upstream's TaintNodesByCondition).
- When the controller itself turns a Ready node Unknown it marks the node's pods not Ready,
  so Services stop sending them traffic before they are evicted.
- `NoExecuteTaintManager` deletes pods on NoExecute-tainted nodes that do not tolerate the
  taints, at once or after their `tolerationSeconds`.

Not carried over from upstream: per-zone eviction rate limits and the partial-disruption
mode; only the "every node is down" mode is kept (see `_fully_disrupted`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

from api.errors import Conflict, NotFound
from api.meta import deep_copy, name_of, namespace_of, now_rfc3339, parse_time
from api.resources import CATALOGUE, Resource
from api.tolerations import toleration_tolerates_taint
from client.informer import Informer, meta_key
from controller_manager.base import Controller, ControllerContext

Obj = dict[str, Any]


def _resource(plural: str) -> Resource:
    res = CATALOGUE.by_plural(plural)
    assert res is not None, plural
    return res


NODES = _resource("nodes")
PODS = _resource("pods")
LEASES = _resource("leases")

NODE_LEASE_NAMESPACE = "kube-node-lease"

NO_EXECUTE = "NoExecute"
NO_SCHEDULE = "NoSchedule"
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"

# Conditions the controller turns Unknown for a silent node. NetworkUnavailable is left
# alone, as upstream does: the network plugin, not the kubelet, owns it.
HEALTH_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")

# Ready status -> the NoExecute taint that mirrors it (upstream's taint-based eviction).
READY_NO_EXECUTE = {"False": TAINT_NOT_READY, "Unknown": TAINT_UNREACHABLE}

# condition type -> status -> NoSchedule taint key (upstream's TaintNodesByCondition).
CONDITION_NO_SCHEDULE: dict[str, dict[str, str]] = {
    "Ready": {"False": TAINT_NOT_READY, "Unknown": TAINT_UNREACHABLE},
    "MemoryPressure": {"True": "node.kubernetes.io/memory-pressure"},
    "DiskPressure": {"True": "node.kubernetes.io/disk-pressure"},
    "NetworkUnavailable": {"True": "node.kubernetes.io/network-unavailable"},
    "PIDPressure": {"True": "node.kubernetes.io/pid-pressure"},
}

# Every (key, effect) this controller owns: it adds and removes these, and no other taint.
MANAGED_TAINTS: frozenset[tuple[str, str]] = frozenset(
    {(key, NO_EXECUTE) for key in READY_NO_EXECUTE.values()}
    | {(key, NO_SCHEDULE) for by_status in CONDITION_NO_SCHEDULE.values()
       for key in by_status.values()}
    | {(TAINT_UNSCHEDULABLE, NO_SCHEDULE)})

# Nodes with this label do not count when deciding whether the whole cluster is down.
LABEL_EXCLUDE_DISRUPTION = "node.kubernetes.io/exclude-disruption"

POD_NODE_INDEX = "spec.nodeName"


# --- helpers over plain objects ------------------------------------------------------------

def condition(obj: Obj, type_: str) -> Obj | None:
    """The status condition of `type_`, or None."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == type_:
            return cond
    return None


def ready_status(node: Obj) -> str | None:
    cond = condition(node, "Ready")
    return str(cond.get("status")) if cond is not None else None


def no_execute_taints(node: Obj | None) -> list[Obj]:
    if node is None:
        return []
    return [t for t in (node.get("spec") or {}).get("taints") or []
            if isinstance(t, dict) and t.get("effect") == NO_EXECUTE]


# Whether one toleration matches one taint.
tolerates = toleration_tolerates_taint


def _node_name_index(pod: Obj) -> list[str]:
    node = (pod.get("spec") or {}).get("nodeName")
    return [node] if node else []


def ensure_pod_node_index(pods: Informer) -> None:
    """Index the shared pod cache by node; both controllers here (and maybe others) ask."""
    with contextlib.suppress(ValueError):  # already registered on the shared informer
        pods.add_index(POD_NODE_INDEX, _node_name_index)


# --- node health ---------------------------------------------------------------------------

@dataclass
class _NodeHealth:
    """What the controller last saw of a node, and when (its own monotonic clock)."""

    probe: float  # when we last saw a sign of life: a new heartbeat or lease renewal
    heartbeat: str | None = None  # the Ready condition's lastHeartbeatTime, as last seen
    renew_time: str | None = None  # the Lease's spec.renewTime, as last seen


class NodeLifecycleController(Controller):
    """Keyed by node name; `sync` checks one node's health, conditions, taints and pods."""

    name = "nodelifecycle"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.grace_period = float(ctx.options.node_monitor_grace_period)
        self.monitor_period = float(ctx.options.node_monitor_period)
        self.nodes = self.informer(NODES)
        self.pods = self.informer(PODS)
        self.leases = ctx.informers.informer_for(LEASES, NODE_LEASE_NAMESPACE)
        ensure_pod_node_index(self.pods)
        self._health: dict[str, _NodeHealth] = {}
        # Nodes whose pods must be marked not Ready at their next sync (kept until it worked).
        self._pods_to_mark: set[str] = set()
        # Nodes that were Ready, and not overdue, at the last health pass: while none is
        # left, nothing is evicted (see `_fully_disrupted`).
        self._ready_at_pass: set[str] = set()
        self._monitor: asyncio.Task[None] | None = None
        self.nodes.add_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new),
                               on_delete=self.enqueue)
        self.leases.add_handler(on_add=self._on_lease,
                                on_update=lambda _old, new: self._on_lease(new))
        self.pods.add_handler(on_add=lambda pod: self._on_pod(None, pod), on_update=self._on_pod)
        self.taint_manager = NoExecuteTaintManager(ctx)

    # --- lifetime -------------------------------------------------------------------------

    def start(self) -> None:
        # One pass before the workers run, so no sync mistakes an unassessed cluster for a
        # fully disrupted one (which would strip NoExecute taints and reset their clocks).
        self._health_pass()
        super().start()
        self.taint_manager.start()
        self._monitor = asyncio.create_task(self._monitor_loop(),
                                            name=f"controller:{self.name}:monitor")

    async def stop(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        await self.taint_manager.stop()
        await super().stop()

    async def _monitor_loop(self) -> None:
        # Silence produces no events, so health is checked on a clock, not only on changes.
        while True:
            await asyncio.sleep(self.monitor_period)
            self._health_pass()

    def _health_pass(self) -> None:
        """Observe every node, note which will still be Ready after this pass, and queue all.

        Deciding disruption for the whole pass first (as upstream's monitorNodeHealth does)
        keeps nodes that go silent together from being judged one by one, where the first
        would still see the others as Ready and be tainted for eviction.
        """
        now = asyncio.get_running_loop().time()
        ready: set[str] = set()
        for node in self.nodes.store.list():
            name = name_of(node)
            health = self._observe(name, node, now)
            labels = (node.get("metadata") or {}).get("labels") or {}
            if ready_status(node) == "True" and now - health.probe <= self.grace_period \
                    and LABEL_EXCLUDE_DISRUPTION not in labels:
                ready.add(name)
        if ready and not self._ready_at_pass:
            self._leave_full_disruption(now)
        self._ready_at_pass = ready
        self.enqueue_keys(self.nodes.store.keys())

    # --- event handlers (record and enqueue only) -----------------------------------------

    def _on_lease(self, lease: Obj) -> None:
        # Observed here, as it arrives, so "renewed within the grace period" is measured
        # from when we saw the renewal, not from the renewTime the kubelet's clock wrote.
        renew = (lease.get("spec") or {}).get("renewTime")
        now = asyncio.get_running_loop().time()
        health = self._health.get(name_of(lease))
        if health is None:
            self._health[name_of(lease)] = _NodeHealth(probe=now, renew_time=renew)
        elif renew != health.renew_time:
            health.renew_time = renew
            health.probe = now

    def _on_pod(self, old: Obj | None, pod: Obj) -> None:
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            return
        if old is not None and (old.get("spec") or {}).get("nodeName") == node_name:
            return
        # A pod that lands on a node that is not Ready is not Ready either (upstream's
        # processPod); the node's sync marks it.
        node = self.nodes.store.get(node_name)
        if node is not None and ready_status(node) not in (None, "True"):
            self._pods_to_mark.add(node_name)
            self.queue.add(node_name)

    def _leave_full_disruption(self, now: float) -> None:
        # While every node looked down, the likelier culprit was our view of them; give all
        # nodes a fresh grace period instead of declaring them dead together (upstream too).
        for health in self._health.values():
            health.probe = now

    # --- sync -----------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        try:
            await self._sync_node(key)
        except Conflict as e:
            # Expected, not an error: our cache lagged behind a write (often our own status
            # write, echoed before our taint write). Retry on the newer cache.
            self.log.debug("node changed meanwhile, retrying node=%s: %s", key, e)
            self.queue.add_rate_limited(key)

    async def _sync_node(self, key: str) -> None:
        node = self.nodes.store.get(key)
        if node is None:
            self._health.pop(key, None)
            self._pods_to_mark.discard(key)
            return
        now = asyncio.get_running_loop().time()
        health = self._observe(key, node, now)
        if now - health.probe > self.grace_period:
            node = await self._post_unknown(node)
        await self._reconcile_taints(node)
        if key in self._pods_to_mark:
            if ready_status(node) not in (None, "True"):
                await self._mark_pods_not_ready(key)
            self._pods_to_mark.discard(key)

    def _observe(self, key: str, node: Obj, now: float) -> _NodeHealth:
        ready = condition(node, "Ready")
        heartbeat = ready.get("lastHeartbeatTime") if ready is not None else None
        health = self._health.get(key)
        if health is None:
            # First sight (or a controller restart): the node gets a full grace period.
            health = self._health[key] = _NodeHealth(probe=now, heartbeat=heartbeat)
        elif heartbeat != health.heartbeat:
            health.heartbeat = heartbeat
            health.probe = now
        return health

    async def _post_unknown(self, node: Obj) -> Obj:
        """Set the health conditions Unknown (via /status); returns the node as now stored."""
        name = name_of(node)
        updated = deep_copy(node)
        status = updated.setdefault("status", {})
        conditions = status.get("conditions") or []
        status["conditions"] = conditions
        now = now_rfc3339()
        changed = False
        for type_ in HEALTH_CONDITIONS:
            cond = condition(updated, type_)
            if cond is None:
                conditions.append({
                    "type": type_, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                    "message": "Kubelet never posted node status.",
                    "lastHeartbeatTime": (updated.get("metadata") or {}).get("creationTimestamp"),
                    "lastTransitionTime": now})
                changed = True
            elif cond.get("status") != "Unknown":
                # lastHeartbeatTime stays: it is the kubelet's, and a new one from it is what
                # tells us the node is back.
                cond.update(status="Unknown", reason="NodeStatusUnknown",
                            message="Kubelet stopped posting node status.",
                            lastTransitionTime=now)
                changed = True
        if not changed:
            return node
        # Compare-and-swap on the cached resourceVersion: if the kubelet just posted, the
        # write fails with Conflict and the retry sees its fresh heartbeat.
        stored = await self.api.update_status(NODES, updated)
        self.log.info("node stopped posting status node=%s grace=%.1fs", name,
                      self.grace_period)
        if ready_status(node) == "True":
            self.recorder.event(node, "Normal", "NodeNotReady",
                                f"Node {name} status is now: NodeNotReady")
            self._pods_to_mark.add(name)
        return stored

    def _fully_disrupted(self, node: Obj) -> bool:
        """Every node is not Ready: evicting would empty the cluster for nothing, so upstream
        stops NoExecute tainting (its "master disruption mode") until some node is back."""
        if ready_status(node) == "True":
            return False
        # A node counts as Ready if it was at the last pass and still is in the cache.
        name = name_of(node)
        return not any(other != name and ready_status(self.nodes.store.get(other) or {}) == "True"
                       for other in self._ready_at_pass)

    def desired_taints(self, node: Obj) -> set[tuple[str, str]]:
        """The managed (key, effect) pairs the node should carry, from its conditions."""
        desired: set[tuple[str, str]] = set()
        conditions = {c.get("type"): c.get("status")
                      for c in (node.get("status") or {}).get("conditions") or []
                      if isinstance(c, dict)}
        no_execute = READY_NO_EXECUTE.get(str(conditions.get("Ready")))
        if no_execute is not None and not self._fully_disrupted(node):
            desired.add((no_execute, NO_EXECUTE))
        for type_, by_status in CONDITION_NO_SCHEDULE.items():
            key = by_status.get(str(conditions.get(type_)))
            if key is not None:
                desired.add((key, NO_SCHEDULE))
        if (node.get("spec") or {}).get("unschedulable"):
            desired.add((TAINT_UNSCHEDULABLE, NO_SCHEDULE))
        return desired

    async def _reconcile_taints(self, node: Obj) -> None:
        desired = self.desired_taints(node)
        existing = [t for t in (node.get("spec") or {}).get("taints") or []
                    if isinstance(t, dict)]
        present = {(t.get("key"), t.get("effect")) for t in existing}
        stale = [t for t in existing
                 if (t.get("key"), t.get("effect")) in MANAGED_TAINTS
                 and (t.get("key"), t.get("effect")) not in desired]
        missing = sorted(desired - present)
        if not stale and not missing:
            return
        updated = deep_copy(node)
        spec = updated.setdefault("spec", {})
        now = now_rfc3339()
        # Taints the controller does not own (a user's, a kubelet's) are kept untouched;
        # timeAdded is what the taint manager counts tolerationSeconds from.
        taints = [t for t in spec.get("taints") or []
                  if not isinstance(t, dict)
                  or (t.get("key"), t.get("effect")) not in MANAGED_TAINTS
                  or (t.get("key"), t.get("effect")) in desired]
        taints += [{"key": key, "effect": effect, "timeAdded": now} for key, effect in missing]
        if taints:
            spec["taints"] = taints
        else:
            spec.pop("taints", None)
        await self.api.update(NODES, updated)
        self.log.info("node taints updated node=%s added=%s removed=%s", name_of(node),
                      [f"{k}:{e}" for k, e in missing],
                      [f"{t.get('key')}:{t.get('effect')}" for t in stale])

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        """Pods' Ready condition → False (upstream's MarkPodsNotReady); raises at the end if
        any write failed, so the node is retried."""
        failed: list[Exception] = []
        for pod in self.pods.store.by_index(POD_NODE_INDEX, node_name):
            ready = condition(pod, "Ready")
            if ready is None or ready.get("status") == "False":
                continue
            updated = deep_copy(pod)
            cond = condition(updated, "Ready")
            assert cond is not None
            cond.update(status="False", lastTransitionTime=now_rfc3339())
            try:
                await self.api.update_status(PODS, updated)
            except NotFound:
                continue
            except Conflict as e:
                failed.append(e)
                continue
            self.log.info("marked pod not ready pod=%s node=%s", meta_key(pod), node_name)
            self.recorder.event(pod, "Warning", "NodeNotReady", "Node is not ready")
        if failed:
            self._pods_to_mark.add(node_name)
            raise failed[0]


# --- taint-based eviction ------------------------------------------------------------------

class NoExecuteTaintManager(Controller):
    """Keyed by pod: deletes pods that do not (or no longer) tolerate their node's NoExecute
    taints. Started by NodeLifecycleController, as upstream runs it from there."""

    name = "tainteviction"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.nodes = self.informer(NODES)
        self.pods = self.informer(PODS)
        ensure_pod_node_index(self.pods)
        # pod key -> wall-clock deadline of a pending eviction; only to report cancellations.
        self._scheduled: dict[str, float] = {}
        # node -> (key, value, effect) -> when we first saw a NoExecute taint that carries
        # no timeAdded (added by hand without one): the fallback start of its count.
        self._first_seen: dict[str, dict[tuple[str, str, str], float]] = {}
        self.pods.add_handler(on_add=self._on_pod_add, on_update=self._on_pod_update,
                              on_delete=self._on_pod_delete)
        self.nodes.add_handler(on_add=lambda node: self._on_node(None, node),
                               on_update=self._on_node,
                               on_delete=lambda node: self._on_node(node, None))

    # --- event handlers -------------------------------------------------------------------

    def _on_pod_add(self, pod: Obj) -> None:
        if (pod.get("spec") or {}).get("nodeName"):
            self.enqueue(pod)

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
        if not new_spec.get("nodeName"):
            return
        if old_spec.get("nodeName") != new_spec.get("nodeName") or \
                old_spec.get("tolerations") != new_spec.get("tolerations"):
            self.enqueue(new)

    def _on_pod_delete(self, pod: Obj) -> None:
        self.enqueue(pod)  # its sync finds it gone and forgets any pending eviction

    def _on_node(self, old: Obj | None, new: Obj | None) -> None:
        node = new if new is not None else old
        assert node is not None
        name = name_of(node)
        taints = no_execute_taints(new)
        if new is None:
            self._first_seen.pop(name, None)
        else:
            seen = self._first_seen.setdefault(name, {})
            current = {_taint_id(t) for t in taints}
            for gone in [t for t in seen if t not in current]:
                del seen[gone]
            for t in taints:
                if not t.get("timeAdded"):
                    seen.setdefault(_taint_id(t), time.time())
        if old is not None and new is not None and no_execute_taints(old) == taints:
            return
        self.enqueue_keys(self.pods.store.index_keys(POD_NODE_INDEX, name))

    # --- sync -----------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        try:
            await self._sync_pod(key)
        except Conflict as e:
            # The cached pod was stale (the kubelet or MarkPodsNotReady wrote it): retry.
            self.log.debug("pod changed meanwhile, retrying pod=%s: %s", key, e)
            self.queue.add_rate_limited(key)

    async def _sync_pod(self, key: str) -> None:
        pod = self.pods.store.get(key)
        if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
            self._scheduled.pop(key, None)  # gone or already going: nothing to cancel
            return
        node_name = (pod.get("spec") or {}).get("nodeName")
        taints = no_execute_taints(self.nodes.store.get(node_name) if node_name else None)
        deadline = self.eviction_deadline(pod, str(node_name or ""), taints)
        if deadline is None:
            self._cancel(key, pod)
            return
        remaining = deadline - time.time()
        if remaining > 0:
            self._scheduled[key] = deadline
            # Level-triggered: when the timer fires, sync decides again from the cache, so
            # a taint removed meanwhile simply means no eviction.
            self.queue.add_after(key, remaining)
            return
        await self._evict(pod)

    def eviction_deadline(self, pod: Obj, node_name: str, taints: list[Obj]) -> float | None:
        """Wall-clock time at which the pod must go (past = now), or None to let it stay."""
        tolerations = [t for t in (pod.get("spec") or {}).get("tolerations") or []
                       if isinstance(t, dict)]
        deadline: float | None = None
        for taint in taints:
            match = next((t for t in tolerations if tolerates(t, taint)), None)
            if match is None:
                return 0.0
            seconds = match.get("tolerationSeconds")
            if seconds is None:
                continue  # tolerated for ever
            if int(seconds) <= 0:
                return 0.0
            # Counted from the taint's timeAdded (upstream counts from when its taint
            # manager noticed, which a controller restart resets).
            at = self._taint_start(node_name, taint) + int(seconds)
            deadline = at if deadline is None else min(deadline, at)
        return deadline

    def _taint_start(self, node_name: str, taint: Obj) -> float:
        added = taint.get("timeAdded")
        parsed = parse_time(added) if isinstance(added, str) else None
        if parsed is None:
            return self._first_seen.get(node_name, {}).get(_taint_id(taint), time.time())
        start = parsed.timestamp()
        if "." not in str(added):
            # metav1.Time keeps whole seconds: the taint may have come up to 1 s after the
            # stamp, and a pod must never leave earlier than its toleration promises.
            start += 1.0
        return start

    def _cancel(self, key: str, pod: Obj) -> None:
        if self._scheduled.pop(key, None) is not None:
            self.recorder.event(pod, "Normal", "TaintManagerEviction",
                                f"Cancelling deletion of Pod {key}")

    async def _evict(self, pod: Obj) -> None:
        key, ns, name = meta_key(pod), namespace_of(pod), name_of(pod)
        disruption = condition(pod, "DisruptionTarget")
        if disruption is None or disruption.get("status") != "True":
            # Say why the pod goes, for whoever watches it (upstream's DisruptionTarget).
            updated = deep_copy(pod)
            status = updated.setdefault("status", {})
            conditions = [c for c in status.get("conditions") or []
                          if not (isinstance(c, dict) and c.get("type") == "DisruptionTarget")]
            conditions.append({"type": "DisruptionTarget", "status": "True",
                               "reason": "DeletionByTaintManager",
                               "message": "Taint manager: deleting due to NoExecute taint",
                               "lastTransitionTime": now_rfc3339()})
            status["conditions"] = conditions
            try:
                await self.api.update_status(PODS, updated)
            except NotFound:
                self._scheduled.pop(key, None)
                return
        self.recorder.event(pod, "Normal", "TaintManagerEviction",
                            f"Marking for deletion Pod {key}")
        uid = (pod.get("metadata") or {}).get("uid")
        try:
            # An ordinary (graceful) delete, as upstream: the kubelet, if it is still there,
            # stops the containers before the pod goes.
            await self.api.delete(PODS, name, ns, preconditions={"uid": uid} if uid else None)
        except NotFound:
            pass
        except Conflict:
            pass  # uid precondition: a new pod by that name; its own add event covers it
        self._scheduled.pop(key, None)
        self.log.info("evicted pod by taint pod=%s node=%s", key,
                      (pod.get("spec") or {}).get("nodeName"))


def _taint_id(taint: Obj) -> tuple[str, str, str]:
    return (str(taint.get("key") or ""), str(taint.get("value") or ""),
            str(taint.get("effect") or ""))
