"""What a sync does (kubelet/podactions.py, upstream computePodActions), the CrashLoopBackOff
back-off (kubelet/backoff.py) and the probe thresholds (kubelet/prober.py)."""

from __future__ import annotations

from typing import Any

import pytest

from kubelet.backoff import Backoff
from kubelet.labels import CONTAINER_HASH_ANNOTATION, container_hash
from kubelet.podactions import compute_pod_actions
from kubelet.prober import LIVENESS, READINESS, STARTUP, ProbeCounter, probe_settings
from kubelet.runtimestate import (
    CREATED,
    EXITED,
    RUNNING,
    ContainerRecord,
    PodRuntimeStatus,
    SandboxRecord,
)


def pod(restart: str = "Always", names: tuple[str, ...] = ("a",),
        inits: tuple[str, ...] = ()) -> dict[str, Any]:
    spec: dict[str, Any] = {"restartPolicy": restart,
                            "containers": [{"name": n, "image": "i"} for n in names]}
    if inits:
        spec["initContainers"] = [{"name": n, "image": "i"} for n in inits]
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": spec}


def rec(p: dict[str, Any], name: str, state: str, exit_code: int = 0, sandbox: str = "s1",
        created: float = 1.0, init: bool = False) -> ContainerRecord:
    specs = p["spec"].get("initContainers" if init else "containers") or []
    spec = next(c for c in specs if c["name"] == name)
    return ContainerRecord(id=f"{name}@{created}", name=name, sandbox_id=sandbox, state=state,
                           created_at=created, exit_code=exit_code,
                           labels={"io.kubelite.container.type": "init" if init else "app"},
                           annotations={CONTAINER_HASH_ANNOTATION: container_hash(spec)})


def status(*containers: ContainerRecord, sandboxes: tuple[SandboxRecord, ...] = (
        SandboxRecord("s1", 0, True),)) -> PodRuntimeStatus:
    return PodRuntimeStatus(uid="u", sandboxes=list(sandboxes),
                            containers=sorted(containers, key=lambda c: -c.created_at))


def names(containers: list[dict[str, Any]]) -> list[str]:
    return [c["name"] for c in containers]


def test_new_pod_creates_sandbox_and_starts_everything() -> None:
    a = compute_pod_actions(pod(names=("a", "b")), PodRuntimeStatus(uid="u"))
    assert a.create_sandbox and a.attempt == 0 and not a.kill_pod
    assert names(a.to_start) == ["a", "b"]


def test_healthy_running_pod_needs_nothing() -> None:
    p = pod()
    a = compute_pod_actions(p, status(rec(p, "a", RUNNING)))
    assert not (a.create_sandbox or a.kill_pod or a.to_start or a.to_kill)


@pytest.mark.parametrize("policy,exit_code,restart", [
    ("Always", 0, True), ("Always", 1, True), ("OnFailure", 1, True),
    ("OnFailure", 0, False), ("Never", 1, False), ("Never", 0, False)])
def test_exited_container_restart_policy(policy: str, exit_code: int, restart: bool) -> None:
    p = pod(policy)
    a = compute_pod_actions(p, status(rec(p, "a", EXITED, exit_code)))
    assert (names(a.to_start) == ["a"]) is restart
    assert a.pod_finished is (not restart)


def test_liveness_failure_kills_and_restarts() -> None:
    p = pod()
    r = rec(p, "a", RUNNING)
    a = compute_pod_actions(p, status(r), lambda cid: LIVENESS if cid == r.id else None)
    assert list(a.to_kill) == [r.id] and "liveness" in a.to_kill[r.id].message
    assert names(a.to_start) == ["a"]
    # restartPolicy Never: killed, not restarted
    p = pod("Never")
    r = rec(p, "a", RUNNING)
    a = compute_pod_actions(p, status(r), lambda _: LIVENESS)
    assert list(a.to_kill) == [r.id] and a.to_start == []


def test_changed_spec_restarts_container() -> None:
    p = pod()
    r = rec(p, "a", RUNNING)
    r.annotations[CONTAINER_HASH_ANNOTATION] = "something-else"
    a = compute_pod_actions(p, status(r))
    assert r.id in a.to_kill and names(a.to_start) == ["a"]


def test_dead_sandbox_gets_a_new_attempt() -> None:
    p = pod()
    a = compute_pod_actions(p, status(rec(p, "a", RUNNING),
                                      sandboxes=(SandboxRecord("s1", 2, False),)))
    assert a.create_sandbox and a.attempt == 3 and a.kill_pod
    assert names(a.to_start) == ["a"]


def test_finished_never_pod_gets_no_new_sandbox() -> None:
    p = pod("Never")
    a = compute_pod_actions(p, status(rec(p, "a", EXITED, 3),
                                      sandboxes=(SandboxRecord("s1", 0, False),)))
    assert not a.create_sandbox and a.pod_finished


def test_two_ready_sandboxes_are_reconciled() -> None:
    a = compute_pod_actions(pod(), status(sandboxes=(SandboxRecord("s2", 1, True),
                                                     SandboxRecord("s1", 0, True))))
    assert a.create_sandbox and a.attempt == 2 and a.kill_pod


def test_init_containers_run_in_order() -> None:
    p = pod(inits=("i1", "i2"))
    a = compute_pod_actions(p, status())
    assert a.next_init is not None and a.next_init["name"] == "i1" and a.to_start == []
    a = compute_pod_actions(p, status(rec(p, "i1", RUNNING, init=True)))
    assert a.next_init is None and a.to_start == []  # wait for it
    a = compute_pod_actions(p, status(rec(p, "i1", EXITED, init=True)))
    assert a.next_init is not None and a.next_init["name"] == "i2"
    done = status(rec(p, "i1", EXITED, init=True), rec(p, "i2", EXITED, init=True,
                                                       created=2.0))
    a = compute_pod_actions(p, done)
    assert a.next_init is None and names(a.to_start) == ["a"]


def test_failed_init_container() -> None:
    p = pod("Always", inits=("i1",))
    a = compute_pod_actions(p, status(rec(p, "i1", EXITED, 1, init=True)))
    assert a.next_init is not None and a.next_init["name"] == "i1"  # retried (back-off)
    p = pod("Never", inits=("i1",))
    a = compute_pod_actions(p, status(rec(p, "i1", EXITED, 1, init=True)))
    assert a.init_failed and a.pod_finished


def test_containers_of_old_sandboxes_do_not_count() -> None:
    p = pod()
    old = rec(p, "a", EXITED, 0, sandbox="s0")
    a = compute_pod_actions(p, status(old, sandboxes=(SandboxRecord("s1", 1, True),
                                                      SandboxRecord("s0", 0, False))))
    assert names(a.to_start) == ["a"]


def test_created_but_never_started_is_replaced() -> None:
    p = pod()
    r = rec(p, "a", CREATED)
    a = compute_pod_actions(p, status(r))
    assert r.id in a.to_kill and names(a.to_start) == ["a"]


# --- back-off -------------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_crash_loop_backoff_doubles_to_five_minutes() -> None:
    clock = Clock()
    b = Backoff(10, 300, clock=clock)
    assert not b.in_backoff_since("k", clock.now)  # first failure: restart at once
    delays = []
    for _ in range(8):
        b.next("k", clock.now)
        delays.append(b.get("k"))
    assert delays == [10, 20, 40, 80, 160, 300, 300, 300]
    finished = clock.now
    clock.now += 299
    assert b.in_backoff_since("k", finished)
    assert b.remaining("k", finished) == pytest.approx(1)
    clock.now += 2
    assert not b.in_backoff_since("k", finished)


def test_backoff_resets_after_quiet_period() -> None:
    clock = Clock()
    b = Backoff(10, 300, clock=clock)
    for _ in range(5):
        b.next("k", clock.now)
    clock.now += 601  # twice the maximum without a failure
    b.next("k", clock.now)
    assert b.get("k") == 10
    clock.now += 601
    b.gc()
    assert b.get("k") == 0


# --- probes ---------------------------------------------------------------------------------

def test_probe_defaults() -> None:
    assert probe_settings({}) == (0.0, 10.0, 1.0, 1, 3)
    assert probe_settings({"periodSeconds": 2, "failureThreshold": 1, "timeoutSeconds": 5,
                           "initialDelaySeconds": 3, "successThreshold": 2}) == \
        (3.0, 2.0, 5.0, 2, 1)


def test_readiness_thresholds() -> None:
    c = ProbeCounter(READINESS, success_threshold=2, failure_threshold=3)
    assert c.result is False  # not ready until proven
    assert not c.observe(True)
    assert c.observe(True) and c.result is True
    assert not c.observe(False) and not c.observe(False)
    assert c.observe(False) and c.result is False
    assert not c.observe(True)  # the success streak starts again
    assert not c.observe(False) and c.result is False


def test_liveness_and_startup_initial_results() -> None:
    live = ProbeCounter(LIVENESS, success_threshold=5, failure_threshold=2)
    assert live.result is True and live.success_threshold == 1  # upstream forces 1
    assert not live.observe(False)
    assert live.observe(False) and live.result is False
    startup = ProbeCounter(STARTUP, 1, 3)
    assert startup.result is None
    assert startup.observe(True) and startup.result is True


def _with_ephemeral(p: dict[str, Any], *names_: str) -> dict[str, Any]:
    p["spec"]["ephemeralContainers"] = [{"name": n, "image": "i"} for n in names_]
    return p


def _ephemeral_rec(name: str, state: str, created: float = 2.0) -> ContainerRecord:
    return ContainerRecord(id=f"{name}@{created}", name=name, sandbox_id="s1", state=state,
                           created_at=created, labels={"io.kubelite.container.type": "app"})


def test_ephemeral_container_starts_once_in_a_running_pod() -> None:
    p = _with_ephemeral(pod(), "debugger")
    a = compute_pod_actions(p, status(rec(p, "a", RUNNING)))
    assert names(a.to_start) == ["debugger"] and not a.kill_pod
    # Once it exists (running or exited, whatever its exit code) it is left alone.
    for state, code in ((RUNNING, 0), (EXITED, 0), (EXITED, 3)):
        record = _ephemeral_rec("debugger", state)
        record.exit_code = code
        a = compute_pod_actions(p, status(rec(p, "a", RUNNING), record))
        assert not (a.to_start or a.to_kill or a.kill_pod), state


def test_ephemeral_container_does_not_keep_a_finished_pod_alive() -> None:
    p = _with_ephemeral(pod(restart="Never"), "debugger")
    a = compute_pod_actions(p, status(rec(p, "a", EXITED), _ephemeral_rec("debugger", RUNNING)))
    assert a.kill_pod and not a.to_start
    # Nor is it started in a pod whose containers are done.
    a = compute_pod_actions(_with_ephemeral(pod(restart="Never"), "late"),
                            status(rec(p, "a", EXITED)))
    assert a.kill_pod and names(a.to_start) == []
