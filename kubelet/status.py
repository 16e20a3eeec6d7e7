"""The pod's API status from what the runtime reports (pure).

Upstream's `generateAPIPodStatus` / `convertToAPIContainerStatuses` / `getPhase`
(pkg/kubelet/kubelet_pods.go) and the condition generators (pkg/kubelet/status/generate.go):

- a container status per spec container, from the newest runtime container of that name:
  running / terminated / waiting, `lastState` from the one before, `restartCount` from the
  newest's annotation, `ready` from the readiness probe (or from running, without one),
  `started` from the startup probe;
- a container whose last start failed (back-off, pull error, bad config) shows Waiting with
  that reason (the reason cache) and its last termination;
- the phase from the container states and the restart policy;
- conditions PodReadyToStartContainers, Initialized, ContainersReady, Ready — keeping the
  transition time of a condition whose status did not change, and leaving conditions of
  other writers (PodScheduled, DisruptionTarget, readiness gates) as they are.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubelet.podactions import restart_policy, should_restart
from kubelet.runtimestate import EXITED, RUNNING, ContainerRecord, PodRuntimeStatus

Obj = dict[str, Any]

PENDING, RUNNING_PHASE, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
TERMINAL_PHASES = (SUCCEEDED, FAILED)
KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")
# Condition order as the kubelet writes them (kubectl describe shows them in this order).
_CONDITION_ORDER = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                    "PodScheduled")


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Waiting:
    reason: str
    message: str = ""


@dataclass
class StatusInputs:
    """What, besides the pod and its runtime state, decides the status."""

    host_ips: list[str]
    # container id -> readiness (None: no result yet); startup likewise
    readiness: Callable[[str], bool | None] = lambda _: None
    started: Callable[[str], bool | None] = lambda _: None
    # container name -> why its last start failed (upstream's reasonCache)
    waiting: Mapping[str, Waiting] | None = None
    pod_is_terminal: bool = False  # the kubelet stopped the pod (finished or deleted)
    now: float = 0.0


def _terminated(record: ContainerRecord) -> Obj:
    state: Obj = {"exitCode": record.exit_code, "reason": record.reason or (
        "Completed" if record.exit_code == 0 else "Error"), "containerID": record.container_id}
    if record.message:
        state["message"] = record.message
    if record.started_at:
        state["startedAt"] = rfc3339(record.started_at)
    if record.finished_at:
        state["finishedAt"] = rfc3339(record.finished_at)
    return {"terminated": state}


def container_status(pod: Obj, spec: Obj, records: list[ContainerRecord], init: bool,
                     inputs: StatusInputs, default_waiting: str) -> Obj:
    """The API status of one spec container; `records` newest first (may be empty)."""
    name = spec["name"]
    waiting = (inputs.waiting or {}).get(name)
    out: Obj = {"name": name, "image": spec.get("image", ""), "imageID": "",
                "ready": False, "restartCount": 0, "started": False, "state": {},
                "lastState": {}}
    if not records:
        w = waiting or Waiting(default_waiting)
        out["state"] = {"waiting": _waiting(w)}
        return out
    cur = records[0]
    out["restartCount"] = cur.restart_count
    out["imageID"] = cur.image_ref
    out["containerID"] = cur.container_id
    previous = next((r for r in records[1:] if r.state == EXITED), None)
    if previous is not None:
        out["lastState"] = _terminated(previous)
    if cur.state == RUNNING:
        out["state"] = {"running": {"startedAt": rfc3339(cur.started_at or cur.created_at)}}
        started = inputs.started(cur.id)
        out["started"] = (not spec.get("startupProbe")) if started is None else started
        ready = inputs.readiness(cur.id)
        if ready is None:
            ready = not spec.get("readinessProbe")
        out["ready"] = bool(ready and out["started"] and not init)
        return out
    if cur.state == EXITED:
        restart = not inputs.pod_is_terminal and should_restart(pod, cur)
        if waiting is not None and restart:
            # Waiting to be started again: the crash is its last state.
            out["state"] = {"waiting": _waiting(waiting)}
            out["lastState"] = _terminated(cur)
        else:
            out["state"] = _terminated(cur)
        return out
    # created but never started, or unknown: about to be replaced
    out["state"] = {"waiting": _waiting(waiting or Waiting("ContainerCreating"))}
    return out


def _waiting(w: Waiting) -> Obj:
    return {"reason": w.reason, **({"message": w.message} if w.message else {})}


def pod_phase(pod: Obj, init_statuses: list[Obj], statuses: list[Obj],
              pod_is_terminal: bool) -> str:
    """Upstream getPhase (without restartable init containers)."""
    policy = restart_policy(pod)
    pending_init = failed_init = 0
    for s in init_statuses:
        state, last = s.get("state") or {}, s.get("lastState") or {}
        if "running" in state:
            pending_init += 1
        elif "terminated" in state:
            if state["terminated"].get("exitCode", 0) != 0:
                failed_init += 1
        elif "waiting" in state:
            if "terminated" in last:
                if last["terminated"].get("exitCode", 0) != 0:
                    failed_init += 1
            else:
                pending_init += 1
        else:
            pending_init += 1
    # An init container that failed for good, or one still running, means no app container
    # has a status yet; those are counted below as waiting.
    waiting = running = stopped = succeeded = unknown = 0
    for s in statuses:
        state, last = s.get("state") or {}, s.get("lastState") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"].get("exitCode", 0) == 0:
                succeeded += 1
        elif "waiting" in state:
            if "terminated" in last:
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1
    if failed_init > 0 and policy == "Never":
        return FAILED
    if pending_init > 0 or waiting > 0:
        return PENDING
    if running > 0 and unknown == 0:
        return RUNNING_PHASE
    if running == 0 and stopped > 0 and unknown == 0:
        if pod_is_terminal:
            return SUCCEEDED if stopped == succeeded else FAILED
        if policy == "Always":
            return RUNNING_PHASE
        if stopped == succeeded:
            return SUCCEEDED
        if policy == "Never":
            return FAILED
        return RUNNING_PHASE
    return PENDING


def _condition(type_: str, ok: bool, reason: str = "", message: str = "") -> Obj:
    c: Obj = {"type": type_, "status": "True" if ok else "False", "lastProbeTime": None}
    if not ok or reason:
        if reason:
            c["reason"] = reason
        if message:
            c["message"] = message
    return c


def _names(statuses: list[Obj], pred: Callable[[Obj], bool]) -> list[str]:
    return [s["name"] for s in statuses if pred(s)]


def pod_conditions(pod: Obj, phase: str, sandbox_ready: bool, init_statuses: list[Obj],
                   statuses: list[Obj], existing: list[Obj]) -> list[Obj]:
    """The kubelet's four conditions (transition times filled in by merge_conditions)."""
    out = [_condition("PodReadyToStartContainers", sandbox_ready)]
    incomplete = _names(init_statuses, lambda s: not (
        "terminated" in (s.get("state") or {}) and s["state"]["terminated"].get("exitCode") == 0))
    if phase == SUCCEEDED and not incomplete:
        out.append(_condition("Initialized", True, "PodCompleted"))
    elif incomplete:
        out.append(_condition("Initialized", False, "ContainersNotInitialized",
                              f"containers with incomplete status: [{' '.join(incomplete)}]"))
    else:
        out.append(_condition("Initialized", True))
    unready = _names(statuses, lambda s: not s.get("ready"))
    if phase == SUCCEEDED:
        ready = _condition("ContainersReady", False, "PodCompleted")
    elif incomplete:
        # Upstream: app containers cannot be ready before initialisation completes.
        ready = _condition("ContainersReady", False, "ContainersNotReady",
                           f"containers with unready status: [{' '.join(unready)}]"
                           if unready else "")
    elif unready:
        ready = _condition("ContainersReady", False, "ContainersNotReady",
                           f"containers with unready status: [{' '.join(unready)}]")
    else:
        ready = _condition("ContainersReady", True)
    out.append(ready)
    pod_ready = copy.deepcopy(ready)
    pod_ready["type"] = "Ready"
    if ready["status"] == "True":
        gates = [g.get("conditionType") for g in
                 (pod.get("spec") or {}).get("readinessGates") or [] if isinstance(g, dict)]
        by_type = {c.get("type"): c for c in existing}
        missing = [g for g in gates if g not in by_type]
        false = [g for g in gates if g in by_type and by_type[g].get("status") != "True"]
        if missing:
            pod_ready = _condition("Ready", False, "ReadinessGatesNotReady",
                                   f'corresponding condition of pod readiness gate "{missing[0]}"'
                                   f" does not exist.")
        elif false:
            pod_ready = _condition("Ready", False, "ReadinessGatesNotReady",
                                   f'the status of pod readiness gate "{false[0]}" is not '
                                   f'"True", but False')
    out.append(pod_ready)
    return out


def merge_conditions(mine: list[Obj], existing: list[Obj], now: str) -> list[Obj]:
    """The kubelet's conditions with transition times kept where the status is unchanged,
    plus every condition someone else owns, in upstream's order."""
    old = {c.get("type"): c for c in existing if isinstance(c, dict)}
    merged: dict[str, Obj] = {}
    for c in mine:
        prev = old.get(c["type"])
        c["lastTransitionTime"] = (prev.get("lastTransitionTime") or now) \
            if prev is not None and prev.get("status") == c["status"] else now
        merged[c["type"]] = c
    for type_, c in old.items():
        if type_ not in merged and type_ not in KUBELET_CONDITIONS:
            merged[str(type_)] = c
    order = {t: i for i, t in enumerate(_CONDITION_ORDER)}
    return sorted(merged.values(), key=lambda c: (order.get(c["type"], len(order)),
                                                  c["type"]))


def generate_pod_status(pod: Obj, runtime: PodRuntimeStatus, inputs: StatusInputs) -> Obj:
    """The whole status the kubelet would write for `pod` now."""
    spec = pod.get("spec") or {}
    old = pod.get("status") or {}
    sandbox = runtime.latest_sandbox
    records = runtime.by_name
    inits = spec.get("initContainers") or []
    init_statuses = [container_status(pod, c, records(c["name"], True), True, inputs,
                                      "PodInitializing") for c in inits]
    init_done = all("terminated" in (s.get("state") or {})
                    and s["state"]["terminated"].get("exitCode") == 0 for s in init_statuses)
    statuses = [container_status(pod, c, records(c["name"], False), False, inputs,
                                 "ContainerCreating" if init_done else "PodInitializing")
                for c in spec.get("containers") or []]
    phase = pod_phase(pod, init_statuses, statuses, inputs.pod_is_terminal)
    if old.get("phase") in TERMINAL_PHASES:
        phase = old["phase"]  # a terminal phase is never left (upstream status manager)
    now = rfc3339(inputs.now) if inputs.now else rfc3339(datetime.now(UTC).timestamp())
    existing = [c for c in old.get("conditions") or [] if isinstance(c, dict)]
    sandbox_ready = bool(sandbox is not None and sandbox.ready)
    conditions = merge_conditions(
        pod_conditions(pod, phase, sandbox_ready, init_statuses, statuses, existing),
        existing, now)
    status: Obj = {"phase": phase, "conditions": conditions}
    host_ips = inputs.host_ips
    if host_ips:
        status["hostIP"] = host_ips[0]
        status["hostIPs"] = [{"ip": ip} for ip in host_ips]
    pod_ips = host_ips if spec.get("hostNetwork") else runtime.pod_ips
    if pod_ips:
        status["podIP"] = pod_ips[0]
        status["podIPs"] = [{"ip": ip} for ip in pod_ips]
    elif old.get("podIP"):
        # The sandbox is gone (pod finished or being deleted): keep what was reported.
        status["podIP"] = old["podIP"]
        status["podIPs"] = old.get("podIPs") or [{"ip": old["podIP"]}]
    status["startTime"] = old.get("startTime") or now
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    status["containerStatuses"] = statuses
    ephemeral = [container_status(pod, c, records(c["name"], False), False, inputs,
                                  "ContainerCreating")
                 for c in spec.get("ephemeralContainers") or []]
    for s in ephemeral:
        s["ready"] = False  # ephemeral containers have no probes and are never ready
        s.pop("started", None)
    if ephemeral:
        status["ephemeralContainerStatuses"] = ephemeral
    status["qosClass"] = old.get("qosClass") or qos_class(pod)
    for key in ("nominatedNodeName", "resize", "resourceClaimStatuses"):
        if key in old:
            status[key] = old[key]
    return status


def qos_class(pod: Obj) -> str:
    """Guaranteed / Burstable / BestEffort, for pods the apiserver did not class (static)."""
    spec = pod.get("spec") or {}
    any_set, guaranteed = False, True
    for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and str(req[r]) != str(lim[r])):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
