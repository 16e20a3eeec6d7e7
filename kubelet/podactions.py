"""What one sync must do to bring a pod's runtime state to its spec (pure).

Upstream's `computePodActions` (pkg/kubelet/kuberuntime/kuberuntime_manager.go), in the same
order of questions:

1. Does the pod need a (new) sandbox? None yet, the latest one is not ready, or more than
   one is ready. A pod that may not restart (`Never`, or `OnFailure` with every container
   succeeded) gets no second sandbox: it is finished.
2. Init containers run one at a time, in order, each to success, before any app container.
   A failed one is run again (with back-off) unless the policy is `Never`: then the pod fails.
3. App containers: start those that are not running and should be (restart policy); kill
   and restart running ones whose spec changed or whose liveness/startup probe failed.
   When nothing runs and nothing is to start, the pod is done: kill it (stop the sandbox).

Only containers of the current sandbox count for "is it running / did it succeed"; a new
sandbox starts every container afresh (restart counts carry on, from the newest container
of each name in any sandbox).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubelet.labels import container_hash
from kubelet.runtimestate import (
    CREATED,
    EXITED,
    RUNNING,
    UNKNOWN,
    ContainerRecord,
    PodRuntimeStatus,
)

Obj = dict[str, Any]
# container id -> "liveness" / "startup" when that probe says the container must be restarted
ProbeVerdict = Callable[[str], str | None]


@dataclass
class KillInfo:
    container: Obj | None  # the spec, when the pod still has it (preStop hook, grace)
    name: str
    message: str  # why, for the Killing event
    reason: str = ""  # "liveness" | "startup" | "spec" | "unknown" | ""


@dataclass
class PodActions:
    create_sandbox: bool = False
    sandbox_id: str = ""  # the current sandbox (the one to kill when create_sandbox)
    attempt: int = 0  # of the sandbox to create
    kill_pod: bool = False
    next_init: Obj | None = None
    init_failed: bool = False
    to_start: list[Obj] = field(default_factory=list)
    to_kill: dict[str, KillInfo] = field(default_factory=dict)

    @property
    def nothing_to_do(self) -> bool:
        return not (self.create_sandbox or self.kill_pod or self.next_init is not None
                    or self.init_failed or self.to_start or self.to_kill)

    @property
    def pod_finished(self) -> bool:
        """Nothing is to run any more: the pod is terminal (its phase says which)."""
        return self.kill_pod and not self.create_sandbox


def restart_policy(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("restartPolicy") or "Always")


def should_restart(pod: Obj, record: ContainerRecord | None) -> bool:
    """Upstream ShouldContainerBeRestarted, for a container that is not running."""
    if record is None or record.state in (CREATED, UNKNOWN):
        return True
    policy = restart_policy(pod)
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return record.exit_code != 0
    return True


def current_containers(status: PodRuntimeStatus, sandbox_id: str) -> PodRuntimeStatus:
    """The same pod status restricted to one sandbox's containers."""
    return PodRuntimeStatus(uid=status.uid, name=status.name, namespace=status.namespace,
                            sandboxes=status.sandboxes,
                            containers=[c for c in status.containers
                                        if c.sandbox_id == sandbox_id])


def _sandbox_changed(status: PodRuntimeStatus) -> tuple[bool, int, str]:
    latest = status.latest_sandbox
    if latest is None:
        return True, 0, ""
    ready = [s for s in status.sandboxes if s.ready]
    if len(ready) > 1 or not latest.ready:
        return True, latest.attempt + 1, latest.id
    return False, latest.attempt, latest.id


def _all_succeeded(pod: Obj, current: PodRuntimeStatus) -> bool:
    for c in (pod.get("spec") or {}).get("containers") or []:
        record = current.latest(c["name"], init=False)
        if record is None or record.state != EXITED or record.exit_code != 0:
            return False
    return True


def compute_pod_actions(pod: Obj, status: PodRuntimeStatus,
                        probe_verdict: ProbeVerdict = lambda _: None) -> PodActions:
    spec = pod.get("spec") or {}
    policy = restart_policy(pod)
    actions = PodActions()
    create, attempt, sandbox_id = _sandbox_changed(status)
    actions.sandbox_id, actions.attempt = sandbox_id, attempt
    if create:
        everything = status.containers
        if attempt != 0 and everything and (
                policy == "Never"
                or (policy == "OnFailure" and _all_succeeded(
                    pod, current_containers(status, sandbox_id)))):
            # Finished once: no new sandbox for a pod that must not run again.
            actions.kill_pod = True
            return actions
        actions.create_sandbox = True
        actions.kill_pod = bool(status.sandboxes or status.containers)
        inits = spec.get("initContainers") or []
        if inits:
            actions.next_init = inits[0]
        else:
            current = current_containers(status, sandbox_id)
            for c in spec.get("containers") or []:
                record = current.latest(c["name"], init=False)
                if policy == "OnFailure" and record is not None and \
                        record.state == EXITED and record.exit_code == 0:
                    continue
                actions.to_start.append(c)
        return actions

    current = current_containers(status, sandbox_id)
    if not _init_containers(pod, current, actions):
        return actions  # still initialising (or failed)

    keep = 0
    for c in spec.get("containers") or []:
        record = current.latest(c["name"], init=False)
        if record is None or record.state != RUNNING:
            if record is not None and record.state in (CREATED, UNKNOWN):
                actions.to_kill[record.id] = KillInfo(c, c["name"],
                                                      f"Container {c['name']} is in state "
                                                      f"{record.state}", "unknown")
            if should_restart(pod, record):
                actions.to_start.append(c)
            continue
        verdict = probe_verdict(record.id)
        if record.hash and record.hash != container_hash(c):
            message = f"Container {c['name']} definition changed, will be restarted"
            restart, reason = True, "spec"
        elif verdict is not None:
            message = f"Container {c['name']} failed {verdict} probe, will be restarted"
            restart, reason = policy != "Never", verdict
        else:
            keep += 1
            continue
        actions.to_kill[record.id] = KillInfo(c, c["name"], message, reason)
        if restart:
            actions.to_start.append(c)
    if keep == 0 and not actions.to_start:
        actions.kill_pod = True
        return actions
    # Ephemeral containers (kubectl debug) start once, in the running pod, and are never
    # restarted; they do not keep a pod alive.
    for c in spec.get("ephemeralContainers") or []:
        if current.latest(c["name"], init=False) is None:
            actions.to_start.append(c)
    return actions


def _init_containers(pod: Obj, current: PodRuntimeStatus, actions: PodActions) -> bool:
    """Fill in the init container step; True when every init container has succeeded."""
    inits = (pod.get("spec") or {}).get("initContainers") or []
    for c in inits:
        record = current.latest(c["name"], init=True)
        if record is None:
            actions.next_init = c
            return False
        if record.state == EXITED and record.exit_code == 0:
            continue
        if record.state == RUNNING:
            return False  # wait for it
        if record.state == EXITED:
            if restart_policy(pod) == "Never":
                actions.init_failed = True
                actions.kill_pod = True
                return False
        else:  # created but never started, or unknown: replace it
            actions.to_kill[record.id] = KillInfo(c, c["name"],
                                                  f"Init container {c['name']} is in state "
                                                  f"{record.state}", "unknown")
        actions.next_init = c
        return False
    return True
