"""The path "kubectl → apiserver → kubelet → container" with every hop real: real kubectl
1.32 against the real apiserver (etcd-backed), which proxies pods/log and pods/exec to the
kubelet server (kubelet/server.py) running in this process over a real CRI runtime on a
temporary socket and the real dockerd.

The kubelet around the server is a small real one written here (`SmallKubelet`): it runs the
pods it is given through `RuntimeClient` (sandbox, then busybox containers) and answers the
server's questions from what it started. Its Node object points the apiserver at the server
(InternalIP 127.0.0.1, daemonEndpoints.kubeletEndpoint.Port). Every container carries this
module's node label and is removed at the end; the Node and Pods are deleted.

The server is secured as a real node's: HTTPS with the node's serving certificate from the
cluster PKI (SANs: its name and 127.0.0.1), client certificates verified against the cluster
CA, bearer tokens and authorization asked of the real apiserver (TokenReview,
SubjectAccessReview) with the node's own credentials. The apiserver dials it with its
kubelet-client certificate, which the default RBAC policy binds to system:kubelet-api-admin.

Skipped, with the reason printed, only when dockerd is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import re
import shutil
import ssl
import struct
import tempfile
import termios
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from client.kubeconfig import load_kubeconfig, write_kubeconfig
from client.rest import ApiClient
from kubelet.auth import AUTHZ_WEBHOOK, ApiReviewer, build_auth, serving_ssl_context
from kubelet.runtime import server as srv
from kubelet.runtime.client import RuntimeClient
from kubelet.runtime.docker import DockerClient, DockerError
from kubelet.server import start_kubelet_server
from kubelite.pki import ensure_node
from proto.cri import api_pb2 as api
from tests.conftest import ApiServer, client_tls, free_port

pytestmark = pytest.mark.asyncio(loop_scope="module")

IMAGE = "kubelite/busybox:test"
DOCKER_SOCKET = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix(
    "unix://")
KUBECTL = shutil.which("kubectl")
NS = "default"
# Prints three lines (one on stderr), then a tick every 0.2 s; exits at once on TERM.
TICKER = ("trap 'exit 0' TERM; echo first; echo second; echo third >&2; i=0; "
          "while true; do i=$((i+1)); echo tick $i; sleep 0.2; done")
Obj = dict[str, Any]


# --- a small real kubelet ----------------------------------------------------------------------

@dataclass
class SmallKubelet:
    """Runs pods through the CRI and answers the kubelet server from what it started:
    `find_container` is the newest instance, `previous_container` the one before it."""

    node_name: str
    runtime: RuntimeClient
    workdir: Path
    pods: dict[tuple[str, str], Obj] = field(default_factory=dict)
    sandboxes: dict[tuple[str, str], tuple[str, api.PodSandboxConfig]] = field(
        default_factory=dict)
    instances: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)

    def list_pods(self) -> list[Obj]:
        return list(self.pods.values())

    async def find_container(self, namespace: str, pod: str, container: str) -> str | None:
        ids = self.instances.get((namespace, pod, container)) or []
        return ids[-1] if ids else None

    async def previous_container(self, namespace: str, pod: str,
                                 container: str) -> str | None:
        ids = self.instances.get((namespace, pod, container)) or []
        return ids[-2] if len(ids) > 1 else None

    async def run_pod(self, pod: Obj, scripts: dict[str, str]) -> None:
        md = pod["metadata"]
        ns, name, uid = md["namespace"], md["name"], md["uid"]
        labels = {"io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": ns,
                  "io.kubernetes.pod.uid": uid}
        config = api.PodSandboxConfig(
            metadata=api.PodSandboxMetadata(name=name, namespace=ns, uid=uid),
            hostname=name, log_directory=str(self.workdir / "pods" / f"{ns}_{name}_{uid}"),
            labels=labels)
        sandbox_id = await self.runtime.run_pod_sandbox(config)
        self.sandboxes[(ns, name)] = (sandbox_id, config)
        self.pods[(ns, name)] = pod
        for container, script in scripts.items():
            await self.start_container(ns, name, container, script)

    async def start_container(self, ns: str, pod: str, container: str, script: str) -> str:
        sandbox_id, sandbox = self.sandboxes[(ns, pod)]
        attempt = len(self.instances.get((ns, pod, container)) or [])
        config = api.ContainerConfig(
            metadata=api.ContainerMetadata(name=container, attempt=attempt),
            image=api.ImageSpec(image=IMAGE), command=["sh", "-c"], args=[script],
            log_path=f"{container}/{attempt}.log",
            labels={**sandbox.labels, "io.kubernetes.container.name": container},
            linux=api.LinuxContainerConfig(
                security_context=api.LinuxContainerSecurityContext(
                    namespace_options=api.NamespaceOption(network=api.POD, pid=api.CONTAINER,
                                                          ipc=api.POD))))
        cid = await self.runtime.create_container(sandbox_id, config, sandbox)
        await self.runtime.start_container(cid)
        self.instances.setdefault((ns, pod, container), []).append(cid)
        return cid

    async def restart(self, ns: str, pod: str, container: str, script: str) -> None:
        """What the kubelet does when a container dies under restartPolicy Always."""
        current = await self.find_container(ns, pod, container)
        assert current is not None
        await self.runtime.stop_container(current, 0)
        await self.start_container(ns, pod, container, script)


# --- the cluster: apiserver + runtime + kubelet server --------------------------------------------

@dataclass
class Cluster:
    api: aiohttp.ClientSession  # as the cluster admin (to the apiserver and the kubelet)
    api_url: str
    kubeconfig: Path
    kubelet: SmallKubelet
    kubelet_url: str
    node: str
    server: ApiServer
    created: list[str] = field(default_factory=list)  # pod names

    def tls(self, user: str | None = None, groups: tuple[str, ...] = ()) -> ssl.SSLContext:
        """A client context for the kubelet: the admin's certificate, `user`'s, or none
        (`user=""`); it trusts the cluster CA."""
        if user == "":
            return client_tls(self.server.pki.ca_cert)
        return self.server.tls(user, groups)

    async def kubelet_get(self, path: str, ctx: ssl.SSLContext,
                          headers: dict[str, str] | None = None) -> tuple[int, str]:
        async with aiohttp.ClientSession() as session, \
                session.get(self.kubelet_url + path, ssl=ctx, headers=headers) as resp:
            return resp.status, await resp.text()

    async def pod(self, name: str, scripts: dict[str, str], *, node: str | None = None,
                  start: bool = True) -> Obj:
        """Create the Pod. Bound to our node (`node=None`), it is run and reported Running
        as a kubelet would, or with `start=False` known to the kubelet but still waiting to
        start; `node=""` leaves it unscheduled, another name binds it elsewhere."""
        spec: Obj = {"containers": [{"name": c, "image": IMAGE} for c in scripts]}
        if node != "":
            spec["nodeName"] = node or self.node
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
                "spec": spec}
        pod = await self.call("POST", f"/api/v1/namespaces/{NS}/pods", body, expect=201)
        self.created.append(name)
        if node is not None:
            return pod
        if start:
            await self.kubelet.run_pod(pod, scripts)
        state = {"running": {}} if start else {"waiting": {"reason": "ContainerCreating"}}
        status = {"status": {"phase": "Running" if start else "Pending", "containerStatuses": [
            {"name": c, "ready": start, "restartCount": 0, "image": IMAGE, "imageID": "",
             "state": state} for c in scripts]}}
        pod = await self.call("PATCH", f"/api/v1/namespaces/{NS}/pods/{name}/status", status,
                              content_type="application/merge-patch+json")
        self.kubelet.pods[(NS, name)] = pod
        return pod

    async def call(self, method: str, path: str, body: Any = None, *, expect: int = 200,
                   content_type: str = "application/json") -> Obj:
        async with self.api.request(method, self.api_url + path, json=body,
                                    headers={"Content-Type": content_type}) as resp:
            data = await resp.json(content_type=None)
            assert resp.status == expect, (resp.status, data)
            return dict(data)

    async def raw(self, path: str) -> tuple[int, Any]:
        async with self.api.get(self.api_url + path) as resp:
            text = await resp.text()
            try:
                return resp.status, await resp.json(content_type=None)
            except ValueError:
                return resp.status, text


STATS_READER = "kls-stats-reader"  # a user RBAC lets read nodes/stats and nothing else


def rbac_objects(prefix: str) -> list[tuple[str, Obj]]:
    """A ClusterRole reading nodes/stats, bound to STATS_READER: (collection path, object)."""
    rbac = "rbac.authorization.k8s.io"
    name = f"{prefix}-stats-reader"
    role = {"apiVersion": f"{rbac}/v1", "kind": "ClusterRole", "metadata": {"name": name},
            "rules": [{"apiGroups": [""], "resources": ["nodes/stats"], "verbs": ["get"]}]}
    binding = {"apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": name},
               "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": name},
               "subjects": [{"apiGroup": rbac, "kind": "User", "name": STATS_READER}]}
    return [(f"/apis/{rbac}/v1/clusterroles", role),
            (f"/apis/{rbac}/v1/clusterrolebindings", binding)]


def node_object(name: str, port: int) -> Obj:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                                     {"type": "Hostname", "address": name}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(apiserver: ApiServer) -> AsyncIterator[Cluster]:
    if KUBECTL is None:
        print("SKIP: kubectl is not installed (optional tool)")
        pytest.skip("kubectl is not installed")
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
    workdir = Path(tempfile.mkdtemp(prefix="kubelite-kls-"))  # short: unix socket paths
    node = f"kls-{uuid.uuid4().hex[:8]}"
    service = srv.DockerRuntimeService(docker, root_dir=workdir / "root", sandbox_image=IMAGE,
                                       sandbox_command=srv.PAUSE_SHELL_COMMAND,
                                       node_name=node)
    await service.start()
    grpc_server = await srv.start_server(service, f"unix://{workdir / 'cri.sock'}")
    cri = RuntimeClient(f"unix://{workdir / 'cri.sock'}")
    kubelet = SmallKubelet(node, cri, workdir)
    # The node's credentials and serving certificate, as `kubelite up` gives a node.
    pki = apiserver.pki
    await asyncio.to_thread(ensure_node, pki, node, ["127.0.0.1"])
    node_kubeconfig = write_kubeconfig(
        workdir / "kubelet.kubeconfig", apiserver.url, ca_data=pki.ca_cert.read_bytes(),
        client_cert_data=pki.node_client_cert(node).read_bytes(),
        client_key_data=pki.node_client_key(node).read_bytes(), user=f"system:node:{node}")
    node_api = ApiClient(load_kubeconfig(node_kubeconfig), component="kubelet")
    auth = build_auth(node_name=node, reviewer=ApiReviewer(node_api), anonymous=False,
                      token_webhook=True, token_ttl=120, authorization_mode=AUTHZ_WEBHOOK,
                      allowed_ttl=300, denied_ttl=30)
    tls = serving_ssl_context(pki.node_serving_cert(node), pki.node_serving_key(node),
                              pki.ca_cert)
    runner, port = await start_kubelet_server(kubelet, "127.0.0.1", 0, ssl_context=tls,
                                              auth=auth, docker_socket=DOCKER_SOCKET)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=apiserver.tls()))
    c = Cluster(session, apiserver.url, apiserver.kubeconfig, kubelet,
                f"https://127.0.0.1:{port}", node, apiserver)
    rbac = rbac_objects(node)
    try:
        for path, obj in rbac:
            await c.call("POST", path, obj, expect=201)
        await c.call("POST", "/api/v1/nodes", node_object(node, port), expect=201)
        yield c
    finally:
        for name in c.created:
            with contextlib.suppress(Exception):
                await session.delete(f"{apiserver.url}/api/v1/namespaces/{NS}/pods/{name}",
                                     params={"gracePeriodSeconds": "0"})
        for name in (node, f"{node}-gone", f"{node}-localhost"):
            with contextlib.suppress(Exception):
                await session.delete(f"{apiserver.url}/api/v1/nodes/{name}")
        for path, obj in rbac:
            with contextlib.suppress(Exception):
                await session.delete(f"{apiserver.url}{path}/{obj['metadata']['name']}")
        await session.close()
        await runner.cleanup()
        await node_api.close()
        await cri.close()
        await grpc_server.stop(0)
        await service.close()
        leftovers = await docker.list_containers(filters={"label": [f"{srv.NODE_LABEL}={node}"]})
        await asyncio.gather(*(docker.remove_container(x["Id"], force=True)
                               for x in leftovers))
        await docker.close()
        shutil.rmtree(workdir, ignore_errors=True)


# --- kubectl ------------------------------------------------------------------------------

@dataclass
class Result:
    code: int
    out: str
    err: str


async def kubectl(c: Cluster, *args: str, input: bytes | None = None,
                  timeout: float = 20) -> Result:
    assert KUBECTL is not None
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, *args, stdin=asyncio.subprocess.PIPE if input is not None else None,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "KUBECONFIG": str(c.kubeconfig)})
    try:
        out, err = await asyncio.wait_for(proc.communicate(input), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def wait_for_log(c: Cluster, pod: str, text: str, timeout: float = 10) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await kubectl(c, "logs", pod)
        if result.code == 0 and text in result.out:
            return result.out
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{text!r} not in the log of {pod}: {result}")
        await asyncio.sleep(0.1)


STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z ")


# --- logs ----------------------------------------------------------------------------------------

async def test_logs_tail_timestamps_limit(cluster: Cluster) -> None:
    c = cluster
    await c.pod("ticker", {"main": TICKER})
    out = await wait_for_log(c, "ticker", "tick 3")
    lines = out.splitlines()
    # stdout in order; stderr too, though Docker may put it a line or two later (it reads
    # the two pipes separately).
    assert "third" in lines, out
    assert [line for line in lines if line != "third"][:5] == [
        "first", "second", "tick 1", "tick 2", "tick 3"], out

    tail = await kubectl(c, "logs", "ticker", "--tail=2")
    assert tail.code == 0, tail
    assert len(tail.out.splitlines()) == 2 and tail.out.startswith("tick ")

    stamped = await kubectl(c, "logs", "ticker", "--timestamps", "--tail=3")
    assert stamped.code == 0, stamped
    assert len(stamped.out.splitlines()) == 3
    assert all(STAMP.match(line) for line in stamped.out.splitlines()), stamped.out

    limited = await kubectl(c, "logs", "ticker", "--limit-bytes=8")
    assert limited.code == 0 and limited.out == out[:8], limited

    hour = await kubectl(c, "logs", "ticker", "--since=1h")  # sinceSeconds
    assert hour.code == 0 and hour.out.startswith(out), hour
    await wait_for_log(c, "ticker", "tick 8")  # 1.6 s after "first"
    stamped = await kubectl(c, "logs", "ticker", "--timestamps")
    stamp = next(line.split()[0] for line in stamped.out.splitlines()
                 if line.endswith(" tick 8"))
    # sinceTime travels with second precision; still well after "first".
    recent = await kubectl(c, "logs", "ticker", f"--since-time={stamp}")
    assert recent.code == 0 and "first" not in recent.out and "tick 8" in recent.out, recent
    # The container is named, as kubectl does when the pod has several.
    named = await kubectl(c, "logs", "ticker", "-c", "main", "--tail=1")
    assert named.code == 0 and named.out.startswith("tick "), named


async def test_logs_follow_streams_until_stopped(cluster: Cluster) -> None:
    c = cluster
    await c.pod("follow", {"main": TICKER})
    await wait_for_log(c, "follow", "tick 3")
    assert KUBECTL is not None
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, "logs", "-f", "follow", "--tail=1", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "KUBECONFIG": str(c.kubeconfig)})
    try:
        assert proc.stdout is not None
        seen: list[int] = []
        async with asyncio.timeout(10):
            while len(seen) < 4:
                line = (await proc.stdout.readline()).decode()
                assert line, "kubectl logs -f ended early"
                if line.startswith("tick "):
                    seen.append(int(line.split()[1]))
        # New lines arrived while we watched, in order, none lost.
        assert seen == list(range(seen[0], seen[0] + 4)), seen
    finally:
        proc.kill()
        await proc.wait()


async def test_logs_follow_ends_when_the_container_exits(cluster: Cluster) -> None:
    c = cluster
    await c.pod("brief", {"main": "echo one; sleep 1; echo two; sleep 0.5; exit 0"})
    result = await kubectl(c, "logs", "-f", "brief", timeout=15)
    assert result.code == 0, result
    assert result.out == "one\ntwo\n"


async def test_logs_previous_after_a_restart(cluster: Cluster) -> None:
    c = cluster
    await c.pod("restarts", {"main": "trap 'exit 0' TERM; echo run zero; "
                                     "while true; do sleep 0.1; done"})
    await wait_for_log(c, "restarts", "run zero")
    none = await kubectl(c, "logs", "restarts", "--previous")
    assert none.code == 1
    assert ('Error from server (BadRequest): previous terminated container "main" in pod '
            '"restarts" not found') in none.err

    await c.kubelet.restart(NS, "restarts", "main", "trap 'exit 0' TERM; echo run one; "
                                                   "while true; do sleep 0.1; done")
    await wait_for_log(c, "restarts", "run one")
    previous = await kubectl(c, "logs", "restarts", "-p")
    assert previous.code == 0 and previous.out == "run zero\n", previous
    current = await kubectl(c, "logs", "restarts")
    assert current.out == "run one\n"


async def test_log_errors(cluster: Cluster) -> None:
    c = cluster
    await c.pod("two", {"a": "sleep 30", "b": "sleep 30"})
    code, body = await c.raw(f"/api/v1/namespaces/{NS}/pods/two/log")
    assert code == 400
    assert body["message"] == "a container name must be specified for pod two, choose one " \
                              "of: [a b]"
    unknown = await kubectl(c, "logs", "two", "-c", "nope")
    assert unknown.code == 1
    assert "container nope is not valid for pod two" in unknown.err
    missing = await kubectl(c, "logs", "no-such-pod")
    assert 'pods "no-such-pod" not found' in missing.err

    await c.pod("creating", {"main": "true"}, start=False)
    waiting = await kubectl(c, "logs", "creating")
    assert waiting.code == 1
    assert ('Error from server (BadRequest): container "main" in pod "creating" is waiting '
            "to start: ContainerCreating") in waiting.err

    await c.pod("pending", {"main": "true"}, node="")
    code, body = await c.raw(f"/api/v1/namespaces/{NS}/pods/pending/log")
    assert (code, body["message"]) == (400, 'pod "pending" does not have a host assigned')

    # A node whose kubelet does not answer.
    gone = f"{c.node}-gone"
    port = free_port()
    await c.call("POST", "/api/v1/nodes", node_object(gone, port), expect=201)
    await c.pod("stranded", {"main": "true"}, node=gone)
    code, body = await c.raw(f"/api/v1/namespaces/{NS}/pods/stranded/log")
    assert code == 503, body
    assert body["message"] == (f'Get "https://127.0.0.1:{port}/containerLogs/{NS}/stranded/'
                               f'main": dial tcp 127.0.0.1:{port}: connect: connection refused')
    code, body = await c.raw(f"/api/v1/namespaces/{NS}/pods/two/log?container=a&limitBytes=0")
    assert code == 422 and "limitBytes" in body["message"], body


# --- exec ----------------------------------------------------------------------------------------

async def test_exec_output_and_exit_codes(cluster: Cluster) -> None:
    c = cluster
    await c.pod("shell", {"main": "trap 'exit 0' TERM; while true; do sleep 0.1; done"})
    hi = await kubectl(c, "exec", "shell", "--", "echo", "hi")
    assert (hi.code, hi.out) == (0, "hi\n"), hi

    both = await kubectl(c, "exec", "shell", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert both.code == 3, both
    assert both.out == "out\n"
    assert "err\n" in both.err and "command terminated with exit code 3" in both.err

    missing = await kubectl(c, "exec", "shell", "--", "no-such-command")
    assert missing.code == 126 and "executable file not found" in missing.out + missing.err

    # Output larger than one message, in order.
    big = await kubectl(c, "exec", "shell", "--", "sh", "-c", "seq 1 20000")
    assert big.code == 0 and big.out.splitlines() == [str(i) for i in range(1, 20001)]


async def test_exec_stdin(cluster: Cluster) -> None:
    c = cluster
    await c.pod("stdin", {"main": "trap 'exit 0' TERM; while true; do sleep 0.1; done"})
    cat = await kubectl(c, "exec", "-i", "stdin", "--", "cat", input=b"hello\nworld\n")
    assert (cat.code, cat.out) == (0, "hello\nworld\n"), cat
    # stdin reaches EOF (v5 close signal), so the command can finish and report.
    wc = await kubectl(c, "exec", "-i", "stdin", "--", "sh", "-c", "wc -l; exit 4",
                       input=b"a\nb\nc\n")
    assert wc.code == 4 and wc.out.strip() == "3", wc


async def test_exec_tty(cluster: Cluster) -> None:
    c = cluster
    await c.pod("tty", {"main": "trap 'exit 0' TERM; while true; do sleep 0.1; done"})
    assert KUBECTL is not None
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, "exec", "-it", "tty", "--", "sh", stdin=slave, stdout=slave, stderr=slave,
        env={**os.environ, "KUBECONFIG": str(c.kubeconfig), "TERM": "xterm"})
    os.close(slave)
    loop = asyncio.get_running_loop()
    received = bytearray()
    got_data = asyncio.Event()

    def readable() -> None:
        try:
            data = os.read(master, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(master)
        received.extend(data)
        got_data.set()

    loop.add_reader(master, readable)

    async def until(pattern: bytes) -> None:
        async with asyncio.timeout(10):
            while pattern not in received:
                got_data.clear()
                await got_data.wait()

    try:
        await until(b"# ")  # the shell's prompt, through a terminal
        os.write(master, b"tty; stty size; echo $((6*7))\r")
        await until(b"42")
        os.write(master, b"exit 7\r")
        async with asyncio.timeout(10):
            code = await proc.wait()
        text = received.decode(errors="replace")
        assert "/dev/pts/" in text, text
        assert "33 111" in text, text  # the initial size went through the resize channel
        assert code == 7, text
    finally:
        loop.remove_reader(master)
        os.close(master)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_exec_errors(cluster: Cluster) -> None:
    c = cluster
    await c.pod("done", {"main": "exit 0"})
    status = await c.kubelet.runtime.container_status(
        (await c.kubelet.find_container(NS, "done", "main")) or "")
    for _ in range(50):
        if status.state == api.CONTAINER_EXITED:
            break
        await asyncio.sleep(0.1)
        status = await c.kubelet.runtime.container_status(status.id)
    # WebSocket refused by the kubelet, then kubectl's SPDY fallback refused the same way.
    result = await kubectl(c, "exec", "done", "--", "true")
    assert result.code == 1
    assert 'error: unable to upgrade connection: container not found ("main")' in result.err

    unknown = await kubectl(c, "exec", "done", "-c", "nope", "--", "true")
    assert unknown.code == 1 and "container nope is not valid for pod done" in unknown.err


# --- the kubelet's own endpoints ---------------------------------------------------------------

async def test_healthz_pods_and_stats(cluster: Cluster) -> None:
    c = cluster
    pod = await c.pod("stats", {"main": "trap 'exit 0' TERM; while true; do sleep 0.1; done"})
    admin = c.tls()
    assert await c.kubelet_get("/healthz", admin) == (200, "ok")
    async with c.api.get(c.kubelet_url + "/pods") as resp:
        pods = await resp.json()
    assert pods["kind"] == "PodList"
    assert "stats" in {p["metadata"]["name"] for p in pods["items"]}
    async with c.api.get(c.kubelet_url + "/stats/summary") as resp:
        summary = await resp.json()
    assert summary["node"]["nodeName"] == c.node
    entry = next(p for p in summary["pods"] if p["podRef"]["name"] == "stats")
    assert entry["podRef"]["uid"] == pod["metadata"]["uid"]
    (container,) = entry["containers"]
    assert container["name"] == "main" and "startTime" in container
    assert container["memory"]["workingSetBytes"] > 0
    assert container["cpu"]["usageCoreNanoSeconds"] > 0
    assert summary["node"]["memory"]["workingSetBytes"] >= container["memory"][
        "workingSetBytes"]
    # Plain-text errors, as upstream's kubelet.
    async with c.api.get(c.kubelet_url + f"/containerLogs/{NS}/nope/main") as resp:
        assert (resp.status, await resp.text()) == (404, 'pod "nope" does not exist')
    async with c.api.get(c.kubelet_url + f"/containerLogs/{NS}/stats/nope") as resp:
        assert resp.status == 404
        assert await resp.text() == 'container "nope" not found in pod "stats"'


# --- who may call the kubelet ----------------------------------------------------------------

async def test_kubelet_refuses_callers_without_credentials(cluster: Cluster) -> None:
    c = cluster
    await c.pod("guarded", {"main": "trap 'exit 0' TERM; while true; do sleep 0.1; done"})
    nobody = c.tls("")  # trusts the kubelet, presents no certificate
    exec_path = f"/exec/{NS}/guarded/main?command=id&output=1"
    assert await c.kubelet_get(exec_path, nobody) == (401, "Unauthorized")
    assert await c.kubelet_get("/pods", nobody) == (401, "Unauthorized")
    assert await c.kubelet_get(f"/containerLogs/{NS}/guarded/main", nobody) == \
        (401, "Unauthorized")
    # The WebSocket exec kubectl would open is refused before its upgrade.
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(c.kubelet_url + exec_path, ssl=nobody,
                                     protocols=("v5.channel.k8s.io",))
        assert refused.value.status == 401
    # A token the apiserver does not know (a real TokenReview says so).
    assert await c.kubelet_get("/pods", nobody, headers={"Authorization": "Bearer nope"}) == \
        (401, "Unauthorized")


async def test_kubelet_authorizes_through_subject_access_review(cluster: Cluster) -> None:
    c = cluster
    reader = c.tls(STATS_READER)
    status, body = await c.kubelet_get("/stats/summary", reader)
    assert status == 200 and c.node in body
    assert await c.kubelet_get("/pods", reader) == (
        403, (f"Forbidden (user={STATS_READER}, verb=get, resource=nodes, "
             "subresource(s)=[pods proxy])"))
    assert await c.kubelet_get(f"/exec/{NS}/any/main?command=id", reader) == (
        403, (f"Forbidden (user={STATS_READER}, verb=get, resource=nodes, "
             "subresource(s)=[proxy])"))


async def test_apiserver_verifies_the_kubelets_certificate(cluster: Cluster) -> None:
    c = cluster
    # A Node reached as "localhost": the kubelet's certificate names its node name and
    # 127.0.0.1, not that, so the apiserver must not talk to it.
    port = int(c.kubelet_url.rsplit(":", 1)[1])
    wrong = f"{c.node}-localhost"
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": wrong},
            "status": {"addresses": [{"type": "Hostname", "address": "localhost"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}
    await c.call("POST", "/api/v1/nodes", node, expect=201)
    await c.pod("misdirected", {"main": "true"}, node=wrong)
    code, body = await c.raw(f"/api/v1/namespaces/{NS}/pods/misdirected/log")
    assert code == 500, body
    assert body["message"].startswith(
        f'Get "https://localhost:{port}/containerLogs/{NS}/misdirected/main": tls: failed to '
        "verify certificate: "), body
    assert "localhost" in body["message"], body
