"""The kubelet's pod status computation (kubelet/status.py) and the status manager's pure
helpers: phases, container states, conditions, what is kept from the previous status."""

from __future__ import annotations

from typing import Any

from kubelet.labels import RESTART_COUNT_ANNOTATION
from kubelet.runtimestate import (
    CREATED,
    EXITED,
    RUNNING,
    ContainerRecord,
    PodRuntimeStatus,
    SandboxRecord,
)
from kubelet.status import StatusInputs, Waiting, generate_pod_status, pod_phase
from kubelet.statusmanager import base_status, same_status, status_patch

T0 = 1_700_000_000.0


def pod(restart: str = "Always", containers: tuple[str, ...] = ("app",),
        inits: tuple[str, ...] = (), **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"restartPolicy": restart,
                     "containers": [{"name": n, "image": "img:1", **spec} for n in containers],
                     **({"initContainers": [{"name": n, "image": "img:1"} for n in inits]}
                        if inits else {})},
            "status": {"phase": "Pending", "qosClass": "BestEffort",
                       "conditions": [{"type": "PodScheduled", "status": "True",
                                       "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}


def rec(name: str, state: str, *, id_: str = "", exit_code: int = 0, restarts: int = 0,
        created: float = T0, init: bool = False, sandbox: str = "s1") -> ContainerRecord:
    return ContainerRecord(
        id=id_ or f"{name}-{restarts}", name=name, sandbox_id=sandbox, state=state,
        created_at=created, started_at=created + 1 if state != CREATED else 0,
        finished_at=created + 5 if state == EXITED else 0, exit_code=exit_code,
        reason=("Completed" if exit_code == 0 else "Error") if state == EXITED else "",
        image_ref="sha256:abc",
        labels={"io.kubelite.container.type": "init" if init else "app"},
        annotations={RESTART_COUNT_ANNOTATION: str(restarts)})


def runtime(*containers: ContainerRecord, ready: bool = True,
            ips: tuple[str, ...] = ("10.0.0.5",)) -> PodRuntimeStatus:
    return PodRuntimeStatus(uid="u1", sandboxes=[SandboxRecord("s1", 0, ready,
                                                               ips=list(ips) if ready else [])],
                            containers=sorted(containers, key=lambda c: -c.created_at))


def inputs(**kw: Any) -> StatusInputs:
    return StatusInputs(host_ips=["192.168.0.2"], now=T0 + 100, **kw)


def test_new_pod_is_pending_with_container_creating() -> None:
    status = generate_pod_status(pod(), PodRuntimeStatus(uid="u1"), inputs())
    assert status["phase"] == "Pending"
    cs = status["containerStatuses"][0]
    assert cs["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert cs["ready"] is False and cs["restartCount"] == 0
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["PodReadyToStartContainers"]["status"] == "False"
    assert conds["PodScheduled"]["lastTransitionTime"] == "2024-01-01T00:00:00Z"
    assert "podIP" not in status and status["hostIP"] == "192.168.0.2"
    assert status["qosClass"] == "BestEffort"


def test_running_container_is_ready_without_probe() -> None:
    status = generate_pod_status(pod(), runtime(rec("app", RUNNING)), inputs())
    assert status["phase"] == "Running"
    cs = status["containerStatuses"][0]
    assert cs["ready"] is True and cs["started"] is True
    assert cs["containerID"] == "docker://app-0" and cs["imageID"] == "sha256:abc"
    assert "running" in cs["state"]
    conds = {c["type"]: c["status"] for c in status["conditions"]}
    assert conds == {"PodReadyToStartContainers": "True", "Initialized": "True",
                     "Ready": "True", "ContainersReady": "True", "PodScheduled": "True"}
    assert status["podIP"] == "10.0.0.5" and status["podIPs"] == [{"ip": "10.0.0.5"}]


def test_readiness_probe_gates_ready() -> None:
    p = pod(readinessProbe={"exec": {"command": ["true"]}})
    status = generate_pod_status(p, runtime(rec("app", RUNNING)), inputs())
    assert status["containerStatuses"][0]["ready"] is False  # no result yet: not ready
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "ContainersNotReady"
    assert ready["message"] == "containers with unready status: [app]"
    status = generate_pod_status(p, runtime(rec("app", RUNNING)),
                                 inputs(readiness=lambda cid: cid == "app-0"))
    assert status["containerStatuses"][0]["ready"] is True


def test_startup_probe_gates_started_and_ready() -> None:
    p = pod(startupProbe={"exec": {"command": ["true"]}})
    status = generate_pod_status(p, runtime(rec("app", RUNNING)), inputs())
    cs = status["containerStatuses"][0]
    assert cs["started"] is False and cs["ready"] is False
    status = generate_pod_status(p, runtime(rec("app", RUNNING)),
                                 inputs(started=lambda _: True))
    assert status["containerStatuses"][0]["started"] is True
    assert status["containerStatuses"][0]["ready"] is True


def test_crash_loop_shows_waiting_with_last_state() -> None:
    rt = runtime(rec("app", EXITED, exit_code=1, restarts=3))
    status = generate_pod_status(pod(), rt, inputs(waiting={"app": Waiting(
        "CrashLoopBackOff", "back-off 40s restarting failed container=app")}))
    cs = status["containerStatuses"][0]
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert cs["restartCount"] == 3
    assert status["phase"] == "Running"  # restartPolicy Always: still running


def test_restart_keeps_previous_as_last_state() -> None:
    rt = runtime(rec("app", RUNNING, restarts=1, created=T0 + 10),
                 rec("app", EXITED, exit_code=137, restarts=0, created=T0))
    cs = generate_pod_status(pod(), rt, inputs())["containerStatuses"][0]
    assert cs["restartCount"] == 1
    assert cs["lastState"]["terminated"]["exitCode"] == 137
    assert cs["lastState"]["terminated"]["containerID"] == "docker://app-0"


def test_never_policy_failure_is_failed_with_exit_code() -> None:
    rt = runtime(rec("app", EXITED, exit_code=3), ready=False)
    status = generate_pod_status(pod("Never"), rt, inputs(pod_is_terminal=True))
    assert status["phase"] == "Failed"
    term = status["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 3 and term["reason"] == "Error"


def test_job_success_and_pod_ip_kept_after_sandbox_stopped() -> None:
    p = pod("Never")
    p["status"]["podIP"] = "10.0.0.5"
    p["status"]["podIPs"] = [{"ip": "10.0.0.5"}]
    rt = runtime(rec("app", EXITED, exit_code=0), ready=False)
    status = generate_pod_status(p, rt, inputs(pod_is_terminal=True))
    assert status["phase"] == "Succeeded"
    assert status["podIP"] == "10.0.0.5"
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert ready["reason"] == "PodCompleted"


def test_onfailure_failed_container_keeps_running_phase() -> None:
    rt = runtime(rec("app", EXITED, exit_code=2))
    assert generate_pod_status(pod("OnFailure"), rt, inputs())["phase"] == "Running"


def test_deleted_always_pod_ends_failed_or_succeeded() -> None:
    rt = runtime(rec("app", EXITED, exit_code=143), ready=False)
    assert generate_pod_status(pod(), rt, inputs(pod_is_terminal=True))["phase"] == "Failed"
    rt = runtime(rec("app", EXITED, exit_code=0), ready=False)
    assert generate_pod_status(pod(), rt, inputs(pod_is_terminal=True))["phase"] == "Succeeded"


def test_terminal_phase_is_never_left() -> None:
    p = pod()
    p["status"]["phase"] = "Succeeded"
    assert generate_pod_status(p, runtime(rec("app", RUNNING)), inputs())["phase"] == "Succeeded"


def test_init_containers() -> None:
    p = pod(inits=("i1", "i2"))
    status = generate_pod_status(p, runtime(rec("i1", RUNNING, init=True)), inputs())
    assert status["phase"] == "Pending"
    assert status["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    init = {c["type"]: c for c in status["conditions"]}["Initialized"]
    assert init["status"] == "False"
    assert init["message"] == "containers with incomplete status: [i1 i2]"
    rt = runtime(rec("i1", EXITED, init=True), rec("i2", EXITED, init=True, created=T0 + 1),
                 rec("app", RUNNING, created=T0 + 2))
    status = generate_pod_status(p, rt, inputs())
    assert status["phase"] == "Running"
    assert [s["state"]["terminated"]["reason"] for s in status["initContainerStatuses"]] == \
        ["Completed", "Completed"]
    # A failed init container with restartPolicy Never fails the pod.
    rt = runtime(rec("i1", EXITED, exit_code=1, init=True))
    assert generate_pod_status(pod("Never", inits=("i1",)), rt,
                               inputs(pod_is_terminal=True))["phase"] == "Failed"


def test_pod_phase_counts_unknown_as_pending() -> None:
    assert pod_phase(pod(), [], [{"name": "app", "state": {}}], False) == "Pending"


def test_transition_time_kept_while_status_unchanged() -> None:
    rt = runtime(rec("app", RUNNING))
    first = generate_pod_status(pod(), rt, inputs())
    later = pod()
    later["status"] = first
    second = generate_pod_status(later, rt, StatusInputs(host_ips=["192.168.0.2"],
                                                         now=T0 + 500))
    t1 = {c["type"]: c["lastTransitionTime"] for c in first["conditions"]}
    t2 = {c["type"]: c["lastTransitionTime"] for c in second["conditions"]}
    assert t1 == t2


def test_other_writers_conditions_survive() -> None:
    p = pod()
    p["status"]["conditions"].append({"type": "DisruptionTarget", "status": "True"})
    status = generate_pod_status(p, runtime(rec("app", RUNNING)), inputs())
    assert "DisruptionTarget" in {c["type"] for c in status["conditions"]}


def test_readiness_gate_missing_condition() -> None:
    p = pod()
    p["spec"]["readinessGates"] = [{"conditionType": "example.com/ready"}]
    status = generate_pod_status(p, runtime(rec("app", RUNNING)), inputs())
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "ReadinessGatesNotReady"


def test_base_status_prefers_our_last_decisions() -> None:
    api = {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]}
    latest = {"phase": "Running", "startTime": "2024-01-01T00:00:00Z",
              "conditions": [{"type": "Ready", "status": "True"}]}
    base = base_status(api, latest)
    assert base["startTime"] == "2024-01-01T00:00:00Z"
    assert {c["type"] for c in base["conditions"]} == {"Ready", "PodScheduled"}


def test_status_patch_nulls_dropped_keys_and_compare_ignores_nulls() -> None:
    assert status_patch({"a": 1, "message": "x"}, {"a": 2}) == {"a": 2, "message": None}
    assert same_status({"c": [{"lastProbeTime": None, "s": 1}]}, {"c": [{"s": 1}]})
