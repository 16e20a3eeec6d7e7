"""The CRI runtime service against the real dockerd, driven through RuntimeClient over a unix
socket, as the kubelet will: pods whose containers share localhost, labels, exit codes and
reasons, ExecSync, CRI log files, graceful and forced stops, resource limits, the network
hook, re-adoption by a new runtime instance, and images.

Every test runs its own runtime (in-process, on a temporary socket) with a node name of its
own, so it sees only the containers it made even when other runtimes share the dockerd; the
fixture's teardown force-removes every container carrying that node label. Images cannot be
pulled here: sandboxes run `kubelite/busybox:test` with a shell pause command.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from kubelet.runtime import server as srv
from kubelet.runtime.client import RuntimeClient, rpc_code
from kubelet.runtime.docker import DockerClient, DockerError
from proto.cri import api_pb2 as api

pytestmark = pytest.mark.asyncio

IMAGE = "kubelite/busybox:test"
DOCKER_SOCKET = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix(
    "unix://")
POD_IP = "10.88.0.7"
# `sh` as PID 1 ignores SIGTERM unless it traps it; these loop until told otherwise.
TRAPS_TERM = "trap 'echo got TERM; exit 0' TERM; while true; do sleep 0.1; done"
IGNORES_TERM = "while true; do sleep 0.1; done"


@dataclass
class FakeNetwork:
    """Stands in for the CNI plugin: records calls, answers ADD with an address."""

    calls: list[tuple[str, srv.PodNetworkArgs]] = field(default_factory=list)
    netns_existed: list[bool] = field(default_factory=list)
    fail_add: bool = False

    async def __call__(self, command: str, args: srv.PodNetworkArgs) -> Mapping[str, Any]:
        self.calls.append((command, args))
        if command == "ADD":
            self.netns_existed.append(os.path.exists(args.netns))
            if self.fail_add:
                raise RuntimeError("no addresses left in the pool")
            return {"cniVersion": "1.0.0", "ips": [{"address": f"{POD_IP}/24"}]}
        return {}


@dataclass
class Runtime:
    cri: RuntimeClient
    docker: DockerClient
    service: srv.DockerRuntimeService
    network: FakeNetwork
    node: str
    workdir: Path

    def new_service(self) -> srv.DockerRuntimeService:
        """A second runtime instance over the same Docker state (as after a restart)."""
        return make_service(self.docker, self.workdir, self.network, self.node)


def make_service(docker: DockerClient, workdir: Path, network: FakeNetwork,
                 node: str) -> srv.DockerRuntimeService:
    return srv.DockerRuntimeService(docker, root_dir=workdir / "root", network_plugin=network,
                                    sandbox_image=IMAGE, sandbox_command=srv.PAUSE_SHELL_COMMAND,
                                    node_name=node)


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    docker = DockerClient(DOCKER_SOCKET)
    if not await docker.ping():
        await docker.close()
        reason = f"dockerd is not reachable at {DOCKER_SOCKET}"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    try:
        await docker.inspect_image(IMAGE)
    except DockerError:
        await docker.close()
        pytest.fail(f"image {IMAGE} is missing: docker import a busybox rootfs as {IMAGE}")
    # A short path of our own: unix socket paths are limited to 108 bytes.
    workdir = Path(tempfile.mkdtemp(prefix="kubelite-cri-"))
    node = f"cri-test-{uuid.uuid4().hex[:8]}"
    network = FakeNetwork()
    service = make_service(docker, workdir, network, node)
    socket = workdir / "cri.sock"
    server = await srv.start_server(service, f"unix://{socket}")
    cri = RuntimeClient(f"unix://{socket}")
    try:
        yield Runtime(cri, docker, service, network, node, workdir)
    finally:
        await cri.close()
        await server.stop(0)
        await service.close()
        leftovers = await docker.list_containers(filters={"label": [f"{srv.NODE_LABEL}={node}"]})
        await asyncio.gather(*(docker.remove_container(c["Id"], force=True)
                               for c in leftovers))
        await docker.close()
        shutil.rmtree(workdir, ignore_errors=True)


def pod_config(rt: Runtime, name: str, **kw: Any) -> api.PodSandboxConfig:
    uid = str(uuid.uuid4())
    return api.PodSandboxConfig(
        metadata=api.PodSandboxMetadata(name=name, namespace="default", uid=uid),
        hostname=name, log_directory=str(rt.workdir / "pods" / f"default_{name}_{uid}"),
        labels={"app": name, **kw.pop("labels", {})},
        annotations={"kubernetes.io/config.source": "api", **kw.pop("annotations", {})},
        **kw)


def container_config(name: str, script: str, *, attempt: int = 0,
                     resources: api.LinuxContainerResources | None = None,
                     **kw: Any) -> api.ContainerConfig:
    return api.ContainerConfig(
        metadata=api.ContainerMetadata(name=name, attempt=attempt),
        image=api.ImageSpec(image=IMAGE), command=["sh", "-c"], args=[script],
        log_path=f"{name}/{attempt}.log", labels={"io.kubernetes.container.name": name},
        annotations={"io.kubernetes.container.restartCount": str(attempt)},
        # Namespaces as the kubelet asks for an ordinary pod: the pod's network and IPC, a
        # PID namespace of the container's own (so `sh` is PID 1 there).
        linux=api.LinuxContainerConfig(
            resources=resources, security_context=api.LinuxContainerSecurityContext(
                namespace_options=api.NamespaceOption(network=api.POD, pid=api.CONTAINER,
                                                      ipc=api.POD))),
        **kw)


async def run_container(rt: Runtime, sandbox_id: str, pod: api.PodSandboxConfig,
                        config: api.ContainerConfig) -> str:
    cid = await rt.cri.create_container(sandbox_id, config, pod)
    await rt.cri.start_container(cid)
    return cid


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0,
                     what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def exited(rt: Runtime, cid: str) -> api.ContainerStatus:
    async def check() -> api.ContainerStatus | None:
        status = await rt.cri.container_status(cid)
        return status if status.state == api.CONTAINER_EXITED else None
    result: api.ContainerStatus = await eventually(check, what=f"container {cid[:12]} to exit")
    return result


def log_lines(path: str) -> list[tuple[str, str, str, str]]:
    """(time, stream, tag, text) of every line of a CRI log file."""
    pattern = re.compile(r"(\S+) (stdout|stderr) ([PF]) (.*)")
    lines = []
    for line in Path(path).read_text().splitlines():
        m = pattern.fullmatch(line)
        assert m, f"not a CRI log line: {line!r}"
        lines.append((m[1], m[2], m[3], m[4]))
    return lines


async def test_version_and_status(runtime: Runtime) -> None:
    version = await runtime.cri.version()
    assert version.runtime_name == "docker"
    assert version.version == "0.1.0"
    assert re.fullmatch(r"\d+\.\d+", version.runtime_api_version)
    conditions = {c.type: c.status for c in (await runtime.cri.status()).status.conditions}
    assert conditions == {"RuntimeReady": True, "NetworkReady": True}


async def test_pod_containers_share_localhost_and_labels(runtime: Runtime) -> None:
    rt = runtime
    pod = pod_config(rt, "web", dns_config=api.DNSConfig(
        servers=["10.96.0.10"], searches=["default.svc.cluster.local"], options=["ndots:5"]))
    sandbox_id = await rt.cri.run_pod_sandbox(pod)

    # The network hook saw the sandbox's live network namespace and the pod.
    assert [c for c, _ in rt.network.calls] == ["ADD"]
    args = rt.network.calls[0][1]
    assert (args.sandbox_id, args.pod_namespace, args.pod_name, args.pod_uid) == (
        sandbox_id, "default", "web", pod.metadata.uid)
    assert re.fullmatch(r"/proc/\d+/ns/net", args.netns) and rt.network.netns_existed == [True]

    status = (await rt.cri.pod_sandbox_status(sandbox_id)).status
    assert status.state == api.SANDBOX_READY
    assert status.network.ip == POD_IP
    assert status.metadata == pod.metadata
    assert status.labels["app"] == "web"
    assert dict(status.annotations) == dict(pod.annotations)

    server = await run_container(rt, sandbox_id, pod, container_config(
        "server", "echo hello from A > /index.html; exec httpd -f -p 8080 -h /"))
    client = await run_container(rt, sandbox_id, pod, container_config(
        "client", "exec sleep 3600"))

    # B reaches A's server over the pod's shared loopback.
    fetch = ("for i in $(busybox seq 50); do wget -qO- http://127.0.0.1:8080/index.html && exit 0; "
             "sleep 0.1; done; exit 1")
    result = await rt.cri.exec_sync(client, ["sh", "-c", fetch], timeout=10)
    assert (result.exit_code, result.stdout) == (0, b"hello from A\n")
    # ... and shares its hostname and DNS settings.
    result = await rt.cri.exec_sync(client, ["sh", "-c", "hostname; cat /etc/resolv.conf"])
    out = result.stdout.decode()
    assert out.startswith("web\n")
    assert "nameserver 10.96.0.10" in out and "search default.svc.cluster.local" in out
    assert "ndots:5" in out

    # Docker-side naming and labels, as cri-dockerd lays them out.
    sandbox = await rt.docker.inspect_container(sandbox_id)
    assert sandbox["Name"] == f"/k8s_POD_web_default_{pod.metadata.uid}_0"
    labels = sandbox["Config"]["Labels"]
    assert labels["io.kubernetes.pod.name"] == "web"
    assert labels["io.kubernetes.pod.namespace"] == "default"
    assert labels["io.kubernetes.pod.uid"] == pod.metadata.uid
    assert labels["io.kubernetes.container.name"] == "POD"
    assert labels["io.kubernetes.docker.type"] == "podsandbox"
    assert labels["annotation.kubernetes.io/config.source"] == "api"
    assert sandbox["HostConfig"]["NetworkMode"] == "none"
    app = await rt.docker.inspect_container(server)
    assert app["Name"] == f"/k8s_server_web_default_{pod.metadata.uid}_0"
    assert app["HostConfig"]["NetworkMode"] == f"container:{sandbox_id}"
    assert app["HostConfig"]["IpcMode"] == f"container:{sandbox_id}"
    app_labels = app["Config"]["Labels"]
    assert app_labels["io.kubernetes.docker.type"] == "container"
    assert app_labels["io.kubernetes.sandbox.id"] == sandbox_id
    assert app_labels["io.kubernetes.container.name"] == "server"
    assert app_labels["io.kubernetes.pod.name"] == "web"

    # CRI view of the containers: metadata, labels and annotations round-trip.
    listed = await rt.cri.list_containers(sandbox_id=sandbox_id)
    assert {c.metadata.name for c in listed} == {"server", "client"}
    assert all(c.state == api.CONTAINER_RUNNING and c.pod_sandbox_id == sandbox_id
               for c in listed)
    status_c = await rt.cri.container_status(server)
    assert status_c.metadata.name == "server" and status_c.state == api.CONTAINER_RUNNING
    assert dict(status_c.annotations) == {"io.kubernetes.container.restartCount": "0"}
    assert status_c.labels["io.kubernetes.container.name"] == "server"
    assert "io.kubernetes.docker.type" not in status_c.labels
    assert status_c.image.image == IMAGE and status_c.image_ref.startswith("sha256:")
    assert status_c.log_path == os.path.join(pod.log_directory, "server/0.log")
    by_label = await rt.cri.list_containers({"io.kubernetes.container.name": "client"})
    assert [c.id for c in by_label] == [client]
    sandboxes = await rt.cri.list_pod_sandboxes({"app": "web"})
    assert [s.id for s in sandboxes] == [sandbox_id]


async def test_exit_codes_reasons_and_logs(runtime: Runtime) -> None:
    rt = runtime
    pod = pod_config(rt, "batch")
    sandbox_id = await rt.cri.run_pod_sandbox(pod)
    failing = await run_container(rt, sandbox_id, pod, container_config(
        "failing", "echo to stdout; echo to stderr >&2; printf 'no newline'; exit 3"))
    succeeding = await run_container(rt, sandbox_id, pod, container_config("ok", "exit 0"))

    status = await exited(rt, failing)
    assert (status.exit_code, status.reason) == (3, "Error")
    # (Docker may stamp StartedAt a moment after a very short process already finished.)
    assert 0 < status.created_at <= status.started_at and status.finished_at > 0
    status = await exited(rt, succeeding)
    assert (status.exit_code, status.reason) == (0, "Completed")
    assert (await rt.cri.list_containers(sandbox_id=sandbox_id,
                                         state=api.CONTAINER_EXITED)) != []

    # The CRI log file: one line per output line, stream and full/partial tag.
    path = os.path.join(pod.log_directory, "failing/0.log")

    async def three_lines() -> bool:
        return len(Path(path).read_text().splitlines()) >= 3
    await eventually(three_lines, what="the log copier")
    lines = log_lines(path)
    assert sorted((s, t, x) for _, s, t, x in lines) == [
        ("stderr", "F", "to stderr"), ("stdout", "F", "to stdout"),
        ("stdout", "P", "no newline")]
    for stamp, *_ in lines:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", stamp)

    # A command that cannot start: ContainerCannotRun... Docker fails the start itself.
    broken = await rt.cri.create_container(sandbox_id, api.ContainerConfig(
        metadata=api.ContainerMetadata(name="broken"), image=api.ImageSpec(image=IMAGE),
        command=["/no/such/binary"]), pod)
    with pytest.raises(grpc.aio.AioRpcError):
        await rt.cri.start_container(broken)
    status = await rt.cri.container_status(broken)
    assert status.state == api.CONTAINER_EXITED and status.reason == "ContainerCannotRun"
    assert "no/such/binary" in status.message


async def test_exec_sync(runtime: Runtime) -> None:
    rt = runtime
    pod = pod_config(rt, "execs")
    sandbox_id = await rt.cri.run_pod_sandbox(pod)
    cid = await run_container(rt, sandbox_id, pod, container_config("main", "exec sleep 3600"))
    result = await rt.cri.exec_sync(cid, ["sh", "-c", "echo out; echo err >&2; exit 7"])
    assert result == (b"out\n", b"err\n", 7)
    result = await rt.cri.exec_sync(cid, ["cat", "/etc/hostname"])
    assert result.exit_code == 0 and result.stdout == b"execs\n"

    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await rt.cri.exec_sync(cid, ["sleep", "10"], timeout=1)
    assert rpc_code(err.value) == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "timed out" in (err.value.details() or "")
    assert time.monotonic() - started < 5

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await rt.cri.exec_sync("0" * 64, ["true"])
    assert rpc_code(err.value) == grpc.StatusCode.NOT_FOUND

    await rt.cri.stop_container(cid, 0)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await rt.cri.exec_sync(cid, ["true"])
    assert rpc_code(err.value) == grpc.StatusCode.FAILED_PRECONDITION


async def test_stop_sends_sigterm_then_kills(runtime: Runtime) -> None:
    rt = runtime
    pod = pod_config(rt, "stops")
    sandbox_id = await rt.cri.run_pod_sandbox(pod)
    polite = await run_container(rt, sandbox_id, pod, container_config("polite", TRAPS_TERM))
    stubborn = await run_container(rt, sandbox_id, pod,
                                   container_config("stubborn", IGNORES_TERM))
    await asyncio.sleep(0.3)  # let both shells install their traps

    started = time.monotonic()
    await rt.cri.stop_container(polite, 10)
    assert time.monotonic() - started < 5  # it exited on SIGTERM, long before the timeout
    status = await rt.cri.container_status(polite)
    assert (status.state, status.exit_code, status.reason) == (
        api.CONTAINER_EXITED, 0, "Completed")

    started = time.monotonic()
    await rt.cri.stop_container(stubborn, 1)
    elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 5  # the grace period passed, then SIGKILL
    status = await rt.cri.container_status(stubborn)
    assert (status.state, status.exit_code, status.reason) == (
        api.CONTAINER_EXITED, 137, "Error")

    await rt.cri.stop_container(stubborn, 1)  # idempotent

    async def got_term() -> bool:
        return any(x == "got TERM" for *_, x in log_lines(
            os.path.join(pod.log_directory, "polite/0.log")))
    await eventually(got_term, what="the SIGTERM handler's output in the log")


async def test_resource_limits(runtime: Runtime) -> None:
    rt = runtime
    pod = pod_config(rt, "limited")
    sandbox_id = await rt.cri.run_pod_sandbox(pod)
    resources = api.LinuxContainerResources(cpu_period=100_000, cpu_quota=50_000,
                                            cpu_shares=512, memory_limit_in_bytes=64 << 20)
    cid = await run_container(rt, sandbox_id, pod, container_config(
        "main", "exec sleep 3600", resources=resources))
    host = (await rt.docker.inspect_container(cid))["HostConfig"]
    assert (host["CpuPeriod"], host["CpuQuota"], host["CpuShares"], host["Memory"]) == (
        100_000, 50_000, 512, 64 << 20)
    status = await rt.cri.container_status(cid)
    assert status.resources.linux.cpu_quota == 50_000
    assert status.resources.linux.memory_limit_in_bytes == 64 << 20

    await rt.cri.update_container_resources(cid, api.LinuxContainerResources(
        cpu_period=100_000, cpu_quota=150_000, cpu_shares=1024,
        memory_limit_in_bytes=128 << 20))
    host = (await rt.docker.inspect_container(cid))["HostConfig"]
    assert (host["CpuQuota"], host["CpuShares"], host["Memory"]) == (150_000, 1024, 128 << 20)

    stats = await rt.cri.container_stats(cid)
    assert stats.attributes.id == cid and stats.attributes.metadata.name == "main"
    assert stats.memory.working_set_bytes.value > 0
    assert stats.cpu.usage_core_nano_seconds.value > 0
    listed = await rt.cri.list_container_stats(sandbox_id=sandbox_id)
    assert [s.attributes.id for s in listed] == [cid]


async def test_oom_killed(runtime: Runtime) -> None:
    rt = runtime
    pod = pod_config(rt, "hungry")
    sandbox_id = await rt.cri.run_pod_sandbox(pod)
    # A shell variable 4x the limit: the kernel's OOM killer ends it.
    cid = await run_container(rt, sandbox_id, pod, container_config(
        "eater", "x=$(busybox head -c 67108864 /dev/zero | busybox tr '\\0' x); echo survived",
        resources=api.LinuxContainerResources(memory_limit_in_bytes=16 << 20)))
    status = await exited(rt, cid)
    assert status.reason == "OOMKilled"
    assert status.exit_code == 137


async def test_stop_and_remove_pod(runtime: Runtime) -> None:
    rt = runtime
    pod = pod_config(rt, "doomed")
    sandbox_id = await rt.cri.run_pod_sandbox(pod)
    cid = await run_container(rt, sandbox_id, pod, container_config("main", IGNORES_TERM))

    await rt.cri.stop_pod_sandbox(sandbox_id)
    assert [c for c, _ in rt.network.calls] == ["ADD", "DEL"]
    deleted = rt.network.calls[1][1]
    assert deleted.sandbox_id == sandbox_id and deleted.netns.startswith("/proc/")
    assert deleted.prev_result == {"cniVersion": "1.0.0", "ips": [{"address": f"{POD_IP}/24"}]}
    status = (await rt.cri.pod_sandbox_status(sandbox_id)).status
    assert status.state == api.SANDBOX_NOTREADY and status.network.ip == ""
    assert (await rt.cri.container_status(cid)).state == api.CONTAINER_EXITED
    assert await rt.cri.list_pod_sandboxes(state=api.SANDBOX_READY) == []

    await rt.cri.stop_pod_sandbox(sandbox_id)  # idempotent, and no second DEL
    assert [c for c, _ in rt.network.calls] == ["ADD", "DEL"]

    await rt.cri.remove_pod_sandbox(sandbox_id)
    assert await rt.docker.list_containers(
        filters={"label": [f"{srv.NODE_LABEL}={rt.node}"]}) == []
    await rt.cri.remove_pod_sandbox(sandbox_id)  # idempotent
    await rt.cri.remove_container(cid)
    for call in (rt.cri.pod_sandbox_status(sandbox_id), rt.cri.container_status(cid)):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert rpc_code(err.value) == grpc.StatusCode.NOT_FOUND
    assert not srv.SandboxCheckpoint.path(rt.workdir / "root", sandbox_id).exists()


async def test_network_failure_leaves_nothing(runtime: Runtime) -> None:
    rt = runtime
    rt.network.fail_add = True
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await rt.cri.run_pod_sandbox(pod_config(rt, "unlucky"))
    assert "no addresses left in the pool" in (err.value.details() or "")
    assert [c for c, _ in rt.network.calls] == ["ADD", "DEL"]  # released what ADD may hold
    assert await rt.docker.list_containers(
        filters={"label": [f"{srv.NODE_LABEL}={rt.node}"]}) == []


async def test_readoption_by_a_new_runtime(runtime: Runtime) -> None:
    rt = runtime
    pod = pod_config(rt, "survivor")
    sandbox_id = await rt.cri.run_pod_sandbox(pod)
    counter = "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.05; done"
    cid = await run_container(rt, sandbox_id, pod, container_config("counter", counter))
    path = os.path.join(pod.log_directory, "counter/0.log")
    await asyncio.sleep(0.4)

    # The first runtime goes away (its log copier with it); output goes on meanwhile.
    await rt.service.close()
    await asyncio.sleep(0.4)
    second = rt.new_service()
    socket = rt.workdir / "second.sock"
    server = await srv.start_server(second, f"unix://{socket}")
    try:
        async with RuntimeClient(f"unix://{socket}") as cri:
            sandboxes = await cri.list_pod_sandboxes()
            assert [(s.id, s.metadata.name, s.state) for s in sandboxes] == [
                (sandbox_id, "survivor", api.SANDBOX_READY)]
            assert dict(sandboxes[0].annotations) == dict(pod.annotations)
            status = (await cri.pod_sandbox_status(sandbox_id)).status
            assert status.network.ip == POD_IP  # from the checkpoint
            containers = await cri.list_containers()
            assert [(c.id, c.metadata.name, c.state) for c in containers] == [
                (cid, "counter", api.CONTAINER_RUNNING)]
            await asyncio.sleep(0.4)
            await cri.stop_container(cid, 0)
            await cri.stop_pod_sandbox(sandbox_id)
            assert [c for c, _ in rt.network.calls] == ["ADD", "DEL"]

            # Docker's own copy of the log, against which the CRI file is checked.
            docker_lines = b"".join([data async for _, data in rt.docker.container_logs(cid)])
            expected = len(docker_lines.splitlines())

            async def copied_to_the_end() -> bool:
                return len(log_lines(path)) == expected
            await eventually(copied_to_the_end, what="the log copier to catch up")
    finally:
        await server.stop(0)
        await second.close()

    # Every line once and in order, across the hand-over between the two runtimes.
    values = [int(x.split()[1]) for *_, x in log_lines(path)]
    assert len(values) > 10
    assert values == list(range(len(values))), values


async def test_pods_of_another_cluster_are_removed_at_start(runtime: Runtime) -> None:
    """Containers labelled with our node name but unknown to our root directory (another
    `kubelite up` data directory) go before the runtime serves; our own stay."""
    rt = runtime
    pod = pod_config(rt, "leftover")
    sandbox_id = await rt.cri.run_pod_sandbox(pod)
    cid = await run_container(rt, sandbox_id, pod, container_config("c", "sleep 300"))
    other_root = rt.workdir / "other-cluster"
    other = srv.DockerRuntimeService(rt.docker, root_dir=other_root, network_plugin=rt.network,
                                     sandbox_image=IMAGE,
                                     sandbox_command=srv.PAUSE_SHELL_COMMAND, node_name=rt.node)
    try:
        await other.start()
    finally:
        await other.close()
    for container_id in (sandbox_id, cid):
        with pytest.raises(DockerError):
            await rt.docker.inspect_container(container_id)

    # A runtime over our own root directory keeps its pods (re-adoption).
    pod = pod_config(rt, "ours")
    sandbox_id = await rt.cri.run_pod_sandbox(pod)
    again = rt.new_service()
    try:
        await again.start()
    finally:
        await again.close()
    assert (await rt.docker.inspect_container(sandbox_id))["State"]["Running"]


async def test_images(runtime: Runtime) -> None:
    rt = runtime
    image = await rt.cri.image_status(IMAGE)
    assert image is not None and image.id.startswith("sha256:") and IMAGE in image.repo_tags
    assert image.size > 0
    assert any(i.id == image.id for i in await rt.cri.list_images())
    assert [i.id for i in await rt.cri.list_images(IMAGE)] == [image.id]
    assert image.pinned  # it is this runtime's sandbox image
    assert await rt.cri.image_status("kubelite/does-not-exist:1") is None

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await rt.cri.pull_image("127.0.0.1:1/kubelite/nope:1")
    details = err.value.details() or ""
    assert "127.0.0.1:1/kubelite/nope:1" in details and "connection refused" in details
    await rt.cri.remove_image("kubelite/does-not-exist:1")  # absent: nothing to do

    # Creating a container from a missing image says so.
    pod = pod_config(rt, "imageless")
    sandbox_id = await rt.cri.run_pod_sandbox(pod)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await rt.cri.create_container(sandbox_id, api.ContainerConfig(
            metadata=api.ContainerMetadata(name="c"),
            image=api.ImageSpec(image="kubelite/does-not-exist:1")), pod)
    assert rpc_code(err.value) == grpc.StatusCode.NOT_FOUND


async def test_log_rotation_and_tty_logs(runtime: Runtime) -> None:
    rt = runtime
    pod = pod_config(rt, "chatty")
    sandbox_id = await rt.cri.run_pod_sandbox(pod)
    counter = "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.02; done"
    cid = await run_container(rt, sandbox_id, pod, container_config("counter", counter))
    path = Path(pod.log_directory, "counter/0.log")

    async def some_lines(p: Path) -> bool:
        return p.exists() and len(p.read_text().splitlines()) >= 5
    await eventually(lambda: some_lines(path), what="log lines")
    # The kubelet rotates: rename, then ask the runtime to reopen the path.
    rotated = path.with_name("0.log.20240501-100000")
    path.rename(rotated)
    await rt.cri.reopen_container_log(cid)
    await eventually(lambda: some_lines(path), what="log lines in the new file")
    await rt.cri.stop_container(cid, 0)
    await asyncio.sleep(0.2)
    values = [int(x.split()[1]) for p in (rotated, path) for *_, x in log_lines(str(p))]
    assert values == list(range(len(values)))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await rt.cri.reopen_container_log(cid)
    assert rpc_code(err.value) == grpc.StatusCode.FAILED_PRECONDITION

    tty = await run_container(rt, sandbox_id, pod, container_config(
        "tty", "echo on a terminal; echo also stderr >&2", tty=True))
    await exited(rt, tty)
    tty_log = os.path.join(pod.log_directory, "tty/0.log")

    async def two_lines() -> bool:
        return len(log_lines(tty_log)) == 2
    await eventually(two_lines, what="the TTY container's log")
    # A terminal has one stream: everything is stdout (with the terminal's \r\n).
    assert [(s, t, x.rstrip("\r")) for _, s, t, x in log_lines(tty_log)] == [
        ("stdout", "F", "on a terminal"), ("stdout", "F", "also stderr")]
