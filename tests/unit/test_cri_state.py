"""Docker state, times and HostConfig as CRI container state, reasons and resources; CRI
container settings as Docker's."""

from __future__ import annotations

from typing import Any

import pytest

from kubelet.runtime import server as srv
from proto.cri import api_pb2 as api

T0 = "2024-05-01T10:00:00.000000001Z"
T1 = "2024-05-01T10:00:01.5Z"
T2 = "2024-05-01T10:00:02.123456789Z"
ZERO = "0001-01-01T00:00:00Z"
NS0 = 1714557600 * 10**9 + 1


def test_parse_rfc3339_nano() -> None:
    assert srv.parse_rfc3339_nano(T0) == NS0
    assert srv.parse_rfc3339_nano(T1) == (1714557601 * 10**9) + 500_000_000
    assert srv.parse_rfc3339_nano("2024-05-01T12:00:00+02:00") == 1714557600 * 10**9
    assert srv.parse_rfc3339_nano("2024-05-01T10:00:00.1234567891234Z") % 10**9 == 123456789
    assert srv.parse_rfc3339_nano(ZERO) == 0
    assert srv.parse_rfc3339_nano("") == 0
    with pytest.raises(ValueError):
        srv.parse_rfc3339_nano("yesterday")


def state(**kw: Any) -> dict[str, Any]:
    return {"Running": False, "OOMKilled": False, "ExitCode": 0, "Error": "",
            "StartedAt": ZERO, "FinishedAt": ZERO, **kw}


def test_running() -> None:
    info = srv.container_state_info(state(Running=True, StartedAt=T1), NS0)
    assert (info.state, info.reason, info.started_at, info.finished_at) == (
        api.CONTAINER_RUNNING, "", srv.parse_rfc3339_nano(T1), 0)


@pytest.mark.parametrize(("kw", "reason", "code"), [
    ({"ExitCode": 0}, "Completed", 0),
    ({"ExitCode": 3}, "Error", 3),
    ({"ExitCode": 137}, "Error", 137),
    ({"ExitCode": 137, "OOMKilled": True}, "OOMKilled", 137),
    ({"ExitCode": 0, "OOMKilled": True}, "OOMKilled", 0),  # a child was killed, PID 1 lived
])
def test_exited(kw: dict[str, Any], reason: str, code: int) -> None:
    info = srv.container_state_info(state(StartedAt=T1, FinishedAt=T2, **kw), NS0)
    assert (info.state, info.reason, info.exit_code) == (api.CONTAINER_EXITED, reason, code)
    assert info.started_at == srv.parse_rfc3339_nano(T1)
    assert info.finished_at == srv.parse_rfc3339_nano(T2)


def test_failed_to_start() -> None:
    info = srv.container_state_info(
        state(ExitCode=127, Error='exec: "nope": executable file not found'), NS0)
    assert (info.state, info.reason, info.exit_code) == (
        api.CONTAINER_EXITED, "ContainerCannotRun", 127)
    assert info.started_at == info.finished_at == NS0
    assert "nope" in info.message


def test_created() -> None:
    info = srv.container_state_info(state(), NS0)
    assert (info.state, info.reason, info.started_at) == (api.CONTAINER_CREATED, "", 0)


@pytest.mark.parametrize(("docker", "cri"), [
    ("created", api.CONTAINER_CREATED), ("running", api.CONTAINER_RUNNING),
    ("paused", api.CONTAINER_RUNNING), ("exited", api.CONTAINER_EXITED),
    ("dead", api.CONTAINER_EXITED), ("restarting", api.CONTAINER_UNKNOWN),
    ("removing", api.CONTAINER_UNKNOWN)])
def test_state_from_list(docker: str, cri: int) -> None:
    assert srv.container_state_from_list(docker) == cri


def test_resources_both_ways() -> None:
    r = api.LinuxContainerResources(cpu_period=100_000, cpu_quota=25_000, cpu_shares=256,
                                    memory_limit_in_bytes=1 << 30, oom_score_adj=-997,
                                    cpuset_cpus="0-1")
    docker = srv.docker_resources(r)
    assert docker == {"CpuPeriod": 100_000, "CpuQuota": 25_000, "CpuShares": 256,
                      "Memory": 1 << 30, "MemorySwap": 1 << 30, "CpusetCpus": "0-1",
                      "OomScoreAdj": -997}
    assert "OomScoreAdj" not in srv.docker_resources(r, for_update=True)
    # Read back, the swap limit shows: equal to the memory limit, which means "no swap".
    r.memory_swap_limit_in_bytes = 1 << 30
    assert srv.cri_resources(docker) == r
    assert srv.docker_resources(api.LinuxContainerResources()) == {}


def test_explicit_swap_limit() -> None:
    r = api.LinuxContainerResources(memory_limit_in_bytes=100, memory_swap_limit_in_bytes=300)
    assert srv.docker_resources(r)["MemorySwap"] == 300


def test_unlimited_swap_reads_back_as_unset() -> None:
    assert srv.cri_resources({"MemorySwap": -1}).memory_swap_limit_in_bytes == 0


@pytest.mark.parametrize(("mount", "bind"), [
    (api.Mount(host_path="/h", container_path="/c"), "/h:/c"),
    (api.Mount(host_path="/h", container_path="/c", readonly=True), "/h:/c:ro"),
    (api.Mount(host_path="/h", container_path="/c", readonly=True, selinux_relabel=True,
               propagation=api.PROPAGATION_HOST_TO_CONTAINER), "/h:/c:ro,Z,rslave"),
    (api.Mount(host_path="/h", container_path="/c",
               propagation=api.PROPAGATION_BIDIRECTIONAL), "/h:/c:rshared"),
])
def test_mount_binds(mount: api.Mount, bind: str) -> None:
    assert srv.mount_bind(mount) == bind


def test_mounts_from_docker() -> None:
    [m] = srv.cri_mounts([{"Source": "/h", "Destination": "/c", "RW": False,
                           "Propagation": "rslave"}])
    assert (m.host_path, m.container_path, m.readonly, m.propagation) == (
        "/h", "/c", True, api.PROPAGATION_HOST_TO_CONTAINER)


def test_namespace_modes() -> None:
    assert srv.namespace_mode(api.NODE, "sb") == "host"
    assert srv.namespace_mode(api.POD, "sb") == "container:sb"
    assert srv.namespace_mode(api.CONTAINER, "sb") == ""
    assert srv.namespace_mode(api.TARGET, "sb", "other") == "container:other"


def test_docker_user() -> None:
    sc = api.LinuxContainerSecurityContext
    assert srv.docker_user(sc()) == ""
    assert srv.docker_user(sc(run_as_user=api.Int64Value(value=0))) == "0"
    assert srv.docker_user(sc(run_as_user=api.Int64Value(value=1000),
                              run_as_group=api.Int64Value(value=3000))) == "1000:3000"
    assert srv.docker_user(sc(run_as_username="nginx")) == "nginx"
