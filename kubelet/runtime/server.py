"""The CRI runtime service, backed by Docker: what cri-dockerd is to a real kubelet.

A pod is a sandbox ("pause") container that holds the pod's network, IPC and (optionally)
PID namespaces; the pod's containers join them (`NetworkMode: container:<sandbox>`).
Everything the runtime knows lives in Docker — container names and labels say which pod and
container a Docker container is — so a restarted runtime lists the same pods (re-adoption).
The one thing Docker labels cannot hold, because it is only known after the container
started, is the pod's network (its IPs, and whether the network plugin still has to tear it
down): that is a small JSON checkpoint per sandbox under `root_dir`, as cri-dockerd keeps.

Container logs are copied by one task per running container from Docker into the CRI log
file `<log_directory>/<log_path>` in the CRI format (`<RFC3339Nano> <stream> <P|F> <text>`),
which the kubelet reads for `kubectl logs`. See docs/runtime.md for the decisions.

Module layout: pure translation helpers (names, labels, states, resources, log lines) first,
then the network hook and checkpoint types, the log copier, the servicer, and serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

import grpc

from kubelet.runtime import docker as d
from kubelet.runtime.listcache import ContainerListCache
from proto.cri import api_pb2 as api
from proto.cri import api_pb2_grpc as api_grpc

log = logging.getLogger(__name__)

Obj = dict[str, Any]

CRI_API_VERSION = "0.1.0"  # what upstream runtimes answer in VersionResponse.version
RUNTIME_NAME = "docker"
DEFAULT_SANDBOX_IMAGE = "kubelite/pause:3.9"
# A pause process for images without /pause (busybox): sleep, wake up only to exit on TERM.
PAUSE_SHELL_COMMAND = ("sh", "-c",
                       'trap "exit 0" TERM INT; while true; do sleep 3600 & wait $!; done')
SANDBOX_STOP_GRACE = 10  # seconds; a pause process exits on SIGTERM at once
GRPC_MAX_MESSAGE = 64 * 1024 * 1024  # ExecSync may carry 16 MiB per stream

# Label keys. The first three are cri-dockerd's internal ones, the pod/container ones are
# the kubelet's well-known labels, `io.kubelite.*` are ours; internal keys are not shown back
# as CRI labels.
CONTAINER_TYPE_LABEL = "io.kubernetes.docker.type"
CONTAINER_TYPE_SANDBOX = "podsandbox"
CONTAINER_TYPE_CONTAINER = "container"
SANDBOX_ID_LABEL = "io.kubernetes.sandbox.id"
LOG_PATH_LABEL = "io.kubernetes.container.logpath"
POD_NAME_LABEL = "io.kubernetes.pod.name"
POD_NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
POD_UID_LABEL = "io.kubernetes.pod.uid"
CONTAINER_NAME_LABEL = "io.kubernetes.container.name"
NODE_LABEL = "io.kubelite.node"
RUNTIME_HANDLER_LABEL = "io.kubelite.runtime-handler"
INTERNAL_LABELS = frozenset({CONTAINER_TYPE_LABEL, SANDBOX_ID_LABEL, LOG_PATH_LABEL,
                             NODE_LABEL, RUNTIME_HANDLER_LABEL})
# Docker has no annotations, so (like cri-dockerd) they are labels with this prefix.
ANNOTATION_PREFIX = "annotation."

KUBE_PREFIX = "k8s"
SANDBOX_CONTAINER_NAME = "POD"


# --- names and labels -------------------------------------------------------------------

def sandbox_name(md: api.PodSandboxMetadata) -> str:
    """`k8s_POD_<pod>_<namespace>_<uid>_<attempt>`: Docker refuses a second container with
    the same name, which makes RunPodSandbox idempotent per attempt (as in cri-dockerd)."""
    return "_".join([KUBE_PREFIX, SANDBOX_CONTAINER_NAME, md.name, md.namespace, md.uid,
                     str(md.attempt)])


def container_name(pod: api.PodSandboxMetadata, md: api.ContainerMetadata) -> str:
    """`k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`."""
    return "_".join([KUBE_PREFIX, md.name, pod.name, pod.namespace, pod.uid, str(md.attempt)])


def _name_parts(name: str) -> list[str]:
    parts = name.removeprefix("/").split("_")
    # Seven parts: cri-dockerd appends a random suffix when Docker's name index is wedged.
    if len(parts) not in (6, 7) or parts[0] != KUBE_PREFIX or not parts[5].isdigit():
        raise ValueError(f"not a Kubernetes container name: {name!r}")
    return parts


def parse_sandbox_name(name: str) -> api.PodSandboxMetadata:
    parts = _name_parts(name)
    return api.PodSandboxMetadata(name=parts[2], namespace=parts[3], uid=parts[4],
                                  attempt=int(parts[5]))


def parse_container_name(name: str) -> api.ContainerMetadata:
    parts = _name_parts(name)
    return api.ContainerMetadata(name=parts[1], attempt=int(parts[5]))


def make_labels(labels: Mapping[str, str], annotations: Mapping[str, str]) -> dict[str, str]:
    """CRI labels and annotations as one Docker label map (annotations prefixed)."""
    merged = dict(labels)
    for key, value in annotations.items():
        merged[ANNOTATION_PREFIX + key] = value
    return merged


def extract_labels(docker_labels: Mapping[str, str] | None
                   ) -> tuple[dict[str, str], dict[str, str]]:
    """The inverse of make_labels, dropping the runtime's internal keys."""
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    for key, value in (docker_labels or {}).items():
        if key in INTERNAL_LABELS:
            continue
        if key.startswith(ANNOTATION_PREFIX):
            annotations[key[len(ANNOTATION_PREFIX):]] = value
        else:
            labels[key] = value
    return labels, annotations


# --- times and states -------------------------------------------------------------------

_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


def parse_rfc3339_nano(value: str | None) -> int:
    """Docker's RFC 3339 time (nanosecond fraction) as nanoseconds since the epoch; Go's
    zero time (`0001-01-01T00:00:00Z`, "never") is 0."""
    if not value or value.startswith("0001-01-01"):
        return 0
    m = _RFC3339.fullmatch(value)
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {value!r}")
    zone = "+00:00" if m[3] == "Z" else m[3]
    seconds = int(datetime.fromisoformat(m[1] + zone).timestamp())
    return seconds * 1_000_000_000 + int((m[2] or "")[:9].ljust(9, "0"))


@dataclass(frozen=True)
class StateInfo:
    state: api.ContainerState
    reason: str = ""
    message: str = ""
    exit_code: int = 0
    started_at: int = 0
    finished_at: int = 0


def container_state_info(state: Mapping[str, Any], created_at: int) -> StateInfo:
    """Docker's `State` (from inspect) as CRI state, reason and times, as cri-dockerd does:
    finished -> EXITED with OOMKilled / Completed / Error; never started but with an exit
    code -> EXITED, ContainerCannotRun; otherwise CREATED."""
    started = parse_rfc3339_nano(state.get("StartedAt"))
    finished = parse_rfc3339_nano(state.get("FinishedAt"))
    exit_code = int(state.get("ExitCode") or 0)
    if state.get("Running"):
        return StateInfo(api.CONTAINER_RUNNING, started_at=started)
    message = str(state.get("Error") or "")
    if finished:
        if state.get("OOMKilled"):
            reason = "OOMKilled"  # an app may exit 0 after handling the OOM kill of a child
        elif exit_code == 0:
            reason = "Completed"
        else:
            reason = "Error"
        return StateInfo(api.CONTAINER_EXITED, reason, message, exit_code, started, finished)
    if exit_code != 0:
        # Failed to start (bad command, missing mount): report the creation time as start and
        # end rather than "never", so the kubelet sees a finished container.
        return StateInfo(api.CONTAINER_EXITED, "ContainerCannotRun", message, exit_code,
                         created_at, created_at)
    return StateInfo(api.CONTAINER_CREATED, message=message)


def container_state_from_list(docker_state: str) -> api.ContainerState:
    """`State` of a `GET /containers/json` entry as a CRI ContainerState."""
    return {
        "created": api.CONTAINER_CREATED,
        "running": api.CONTAINER_RUNNING,
        "paused": api.CONTAINER_RUNNING,  # still alive; the CRI has no paused state
        "exited": api.CONTAINER_EXITED,
        "dead": api.CONTAINER_EXITED,
    }.get(docker_state, api.CONTAINER_UNKNOWN)


# --- container configuration --------------------------------------------------------------

def docker_resources(r: api.LinuxContainerResources, *, for_update: bool = False) -> Obj:
    """CRI Linux resources as Docker HostConfig resource fields (only the ones set)."""
    out: Obj = {}
    if r.cpu_period:
        out["CpuPeriod"] = r.cpu_period
    if r.cpu_quota:
        out["CpuQuota"] = r.cpu_quota
    if r.cpu_shares:
        out["CpuShares"] = r.cpu_shares
    if r.memory_limit_in_bytes:
        out["Memory"] = r.memory_limit_in_bytes
        # Without an explicit swap limit, no swap: the kubelet's NoSwap default. (Docker's
        # own default would be twice the memory limit.)
        out["MemorySwap"] = r.memory_swap_limit_in_bytes or r.memory_limit_in_bytes
    if r.cpuset_cpus:
        out["CpusetCpus"] = r.cpuset_cpus
    if r.cpuset_mems:
        out["CpusetMems"] = r.cpuset_mems
    if r.oom_score_adj and not for_update:  # not a resource Docker can change later
        out["OomScoreAdj"] = r.oom_score_adj
    return out


def cri_resources(host_config: Mapping[str, Any]) -> api.LinuxContainerResources:
    return api.LinuxContainerResources(
        cpu_period=int(host_config.get("CpuPeriod") or 0),
        cpu_quota=int(host_config.get("CpuQuota") or 0),
        cpu_shares=int(host_config.get("CpuShares") or 0),
        memory_limit_in_bytes=int(host_config.get("Memory") or 0),
        memory_swap_limit_in_bytes=max(0, int(host_config.get("MemorySwap") or 0)),
        oom_score_adj=int(host_config.get("OomScoreAdj") or 0),
        cpuset_cpus=str(host_config.get("CpusetCpus") or ""),
        cpuset_mems=str(host_config.get("CpusetMems") or ""))


_PROPAGATION_OPTION = {
    api.PROPAGATION_PRIVATE: "",  # Docker's default, rprivate
    api.PROPAGATION_HOST_TO_CONTAINER: "rslave",
    api.PROPAGATION_BIDIRECTIONAL: "rshared",
}
_PROPAGATION_FROM_DOCKER = {"rshared": api.PROPAGATION_BIDIRECTIONAL,
                            "shared": api.PROPAGATION_BIDIRECTIONAL,
                            "rslave": api.PROPAGATION_HOST_TO_CONTAINER,
                            "slave": api.PROPAGATION_HOST_TO_CONTAINER}


def mount_bind(m: api.Mount) -> str:
    """A CRI mount as a Docker bind: `host:container[:ro,Z,rslave]`."""
    options = []
    if m.readonly:
        options.append("ro")
    if m.selinux_relabel:
        options.append("Z")
    if propagation := _PROPAGATION_OPTION.get(m.propagation, ""):
        options.append(propagation)
    bind = f"{m.host_path}:{m.container_path}"
    return f"{bind}:{','.join(options)}" if options else bind


def cri_mounts(docker_mounts: Sequence[Mapping[str, Any]]) -> list[api.Mount]:
    return [api.Mount(container_path=str(m.get("Destination", "")),
                      host_path=str(m.get("Source", "")), readonly=not m.get("RW", True),
                      propagation=_PROPAGATION_FROM_DOCKER.get(
                          str(m.get("Propagation", "")), api.PROPAGATION_PRIVATE))
            for m in docker_mounts]


def docker_user(sc: api.LinuxContainerSecurityContext) -> str:
    """`uid[:gid]` or `name[:gid]` for Docker's `User`, "" for the image's default."""
    if sc.HasField("run_as_user"):
        user = str(sc.run_as_user.value)
    elif sc.run_as_username:
        user = sc.run_as_username
    else:
        return ""
    if sc.HasField("run_as_group"):
        user += f":{sc.run_as_group.value}"
    return user


def namespace_mode(mode: api.NamespaceMode, sandbox_id: str, target_id: str = "") -> str:
    """A CRI namespace mode as Docker's `PidMode` / `IpcMode` for a pod's container."""
    if mode == api.NODE:
        return "host"
    if mode == api.POD:
        return f"container:{sandbox_id}"
    if mode == api.TARGET and target_id:
        return f"container:{target_id}"
    return ""  # CONTAINER: a namespace of its own


def sandbox_ips(result: Mapping[str, Any]) -> list[str]:
    """Pod IPs from a CNI ADD result: `ips[].address` (CNI >= 0.3), or `ip4`/`ip6` (0.2)."""
    addresses: list[str] = []
    for entry in result.get("ips") or []:
        if isinstance(entry, Mapping) and entry.get("address"):
            addresses.append(str(entry["address"]))
    for key in ("ip4", "ip6"):
        entry = result.get(key)
        if isinstance(entry, Mapping) and entry.get("ip"):
            addresses.append(str(entry["ip"]))
    return [address.split("/", 1)[0] for address in addresses]


# --- log lines ----------------------------------------------------------------------------

def cri_log_lines(stream: str, message: bytes) -> list[tuple[int, bytes]]:
    """One Docker log message read with `timestamps=1` (`<time> <text>`) as CRI log lines,
    each with its time in nanoseconds. Text without a final newline was cut by Docker (a
    line longer than 16 KiB, or output without one at exit): it becomes a partial (P)
    line, completed by the next; a whole line is F."""
    stamp, sep, text = message.partition(b" ")
    if not sep:
        return []
    try:
        ns = parse_rfc3339_nano(stamp.decode())
    except (ValueError, UnicodeDecodeError):
        return []
    prefix = stamp + b" " + stream.encode() + b" "
    pieces = text.split(b"\n")
    lines = [(ns, prefix + b"F " + piece + b"\n") for piece in pieces[:-1]]
    if pieces[-1]:
        lines.append((ns, prefix + b"P " + pieces[-1] + b"\n"))
    return lines


class TtyLineBuffer:
    """A TTY container's log arrives as one raw byte stream (no frames); cut it back into
    `<time> <text>\\n` messages for cri_log_lines."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[bytes]:
        *lines, self._pending = (self._pending + data).split(b"\n")
        return [line + b"\n" for line in lines]

    def flush(self) -> list[bytes]:
        rest, self._pending = self._pending, b""
        return [rest] if rest else []


def last_log_timestamp(path: str) -> int:
    """The time of the last complete line of a CRI log file, 0 if none."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 65536))
            tail = f.read()
    except OSError:
        return 0
    for line in reversed(tail.split(b"\n")[:-1]):  # [:-1]: text after the last newline
        stamp = line.split(b" ", 1)[0]
        try:
            return parse_rfc3339_nano(stamp.decode())
        except (ValueError, UnicodeDecodeError):
            continue
    return 0


# --- the network hook ---------------------------------------------------------------------

@dataclass(frozen=True)
class PodNetworkArgs:
    """What a network plugin (CNI) needs to attach or detach a pod: the CNI_* variables."""

    sandbox_id: str            # CNI_CONTAINERID
    netns: str                 # CNI_NETNS: /proc/<pause pid>/ns/net; "" when it is gone
    pod_namespace: str         # K8S_POD_NAMESPACE in CNI_ARGS, and so on
    pod_name: str
    pod_uid: str
    port_mappings: tuple[Mapping[str, Any], ...] = ()  # CNI `portMappings` capability args
    annotations: Mapping[str, str] = field(default_factory=dict)
    prev_result: Mapping[str, Any] | None = None  # for DEL: what ADD answered (`prevResult`)


# `await plugin("ADD" | "DEL", args)` -> the CNI result (for ADD: `{"ips": [...], ...}`).
# The kubelet wires this to the CNI plugin's exec; an exception fails the sandbox.
NetworkPlugin = Callable[[str, PodNetworkArgs], Awaitable[Mapping[str, Any]]]

_PROTOCOL_NAMES = {api.TCP: "tcp", api.UDP: "udp", api.SCTP: "sctp"}


def cni_port_mappings(mappings: Sequence[api.PortMapping]) -> list[Obj]:
    """hostPort mappings in the CNI `portMappings` runtime-config shape."""
    return [{"hostPort": m.host_port, "containerPort": m.container_port,
             "protocol": _PROTOCOL_NAMES.get(m.protocol, "tcp"), "hostIP": m.host_ip}
            for m in mappings if m.host_port > 0]


@dataclass
class SandboxCheckpoint:
    """Per-sandbox state Docker labels cannot hold, kept in `<root>/sandboxes/<id>.json`."""

    sandbox_id: str
    pod_namespace: str
    pod_name: str
    pod_uid: str
    host_network: bool = False
    port_mappings: list[Obj] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)
    network_ready: bool = False  # ADD succeeded and no DEL yet: StopPodSandbox must DEL
    ips: list[str] = field(default_factory=list)
    result: Obj | None = None  # the ADD result, handed back to DEL as prevResult

    @staticmethod
    def path(root: Path, sandbox_id: str) -> Path:
        return root / "sandboxes" / f"{sandbox_id}.json"

    def save(self, root: Path) -> None:
        target = self.path(root, self.sandbox_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(self)))
        tmp.replace(target)  # atomic: a crash leaves the old or the new checkpoint

    @classmethod
    def load(cls, root: Path, sandbox_id: str) -> SandboxCheckpoint | None:
        try:
            data = json.loads(cls.path(root, sandbox_id).read_text())
        except FileNotFoundError:
            return None
        except ValueError:
            log.warning("sandbox %s: unreadable checkpoint, ignoring it", sandbox_id)
            return None
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def delete(cls, root: Path, sandbox_id: str) -> None:
        cls.path(root, sandbox_id).unlink(missing_ok=True)

    def network_args(self, netns: str) -> PodNetworkArgs:
        return PodNetworkArgs(self.sandbox_id, netns, self.pod_namespace, self.pod_name,
                              self.pod_uid, tuple(self.port_mappings), dict(self.annotations),
                              self.result)


# --- log copier ---------------------------------------------------------------------------

class ContainerLogCopier:
    """Follows one container's Docker log and appends it to its CRI log file until the
    container exits. Started after StartContainer, and again for running containers when the
    runtime starts (resuming after the last line already in the file)."""

    def __init__(self, docker: d.DockerClient, container_id: str, path: str, *,
                 tty: bool) -> None:
        self.docker = docker
        self.container_id = container_id
        self.path = path
        self.tty = tty
        self.task: asyncio.Task[None] | None = None
        self._file: BinaryIO | None = None
        self._written = 0  # time (ns) of the newest line in the file

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(),
                                        name=f"cri-log-copier:{self.container_id[:12]}")

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def reopen(self) -> None:
        """After the kubelet renamed (rotated) the file: continue in a new one at `path`."""
        if self._file is not None:
            self._file.close()
            self._file = open(self.path, "ab")  # noqa: SIM115 - closed by _run

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _run(self) -> None:
        # Resuming after a runtime restart: skip what the file already has.
        self._written = last_log_timestamp(self.path)
        self._file = await asyncio.to_thread(open, self.path, "ab")  # closed below
        try:
            await self._copy(follow=True)
            # dockerd may end a follow stream as the container exits before its last,
            # unterminated message is read (seen with json-file on 20.10); one plain read
            # from where we are picks it up.
            await self._copy(follow=False)
        except d.NotFound:
            pass  # removed while we followed it
        except d.DockerError as e:
            log.warning("container %s: copying logs to %s stopped: %s",
                        self.container_id[:12], self.path, e)
        finally:
            if self._file is not None:
                self._file.close()
                self._file = None

    async def _copy(self, *, follow: bool) -> None:
        after = self._written
        # Docker's `since` is inclusive: ask from the last written time and drop what is not
        # newer (a second message in exactly the same nanosecond would be lost; rare).
        since = f"{after // 1_000_000_000}.{after % 1_000_000_000:09d}" if after else None
        tty_lines = TtyLineBuffer() if self.tty else None
        stream = self.docker.container_logs(self.container_id, tty=self.tty, follow=follow,
                                            timestamps=True, since=since)
        async with aclosing(stream):
            async for name, data in stream:
                self._write(name, tty_lines.feed(data) if tty_lines else [data], after)
        if tty_lines is not None:
            self._write("stdout", tty_lines.flush(), after)

    def _write(self, stream: str, messages: list[bytes], after: int) -> None:
        assert self._file is not None
        for message in messages:
            for ns, line in cri_log_lines(stream, message):
                if ns > after:
                    self._file.write(line)
                    self._written = max(self._written, ns)
        self._file.flush()


# --- the service --------------------------------------------------------------------------

class CRIError(Exception):
    """Answer the RPC with this gRPC status code and message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_RPC = TypeVar("_RPC", bound=Callable[..., Awaitable[Any]])


def _docker_status(e: d.DockerError) -> grpc.StatusCode:
    if isinstance(e, d.NotFound):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(e, d.Conflict):
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(e, d.DockerUnavailable):
        return grpc.StatusCode.UNAVAILABLE
    return grpc.StatusCode.UNKNOWN


def _rpc(method: _RPC) -> _RPC:
    """Turn CRIError and DockerError into gRPC statuses; log unexpected failures."""

    @functools.wraps(method)
    async def handler(self: DockerRuntimeService, request: Any,
                      context: grpc.aio.ServicerContext) -> Any:
        try:
            return await method(self, request, context)
        except CRIError as e:
            code, message = e.code, e.message
        except d.DockerError as e:
            code, message = _docker_status(e), str(e)
        except Exception as e:
            log.exception("%s failed", method.__name__)
            code, message = grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}"
        log.debug("%s: %s %s", method.__name__, code.name, message)
        await context.abort(code, message)

    return cast(_RPC, handler)


class DockerRuntimeService(api_grpc.RuntimeServiceServicer, api_grpc.ImageServiceServicer):
    """CRI RuntimeService and ImageService on Docker. Call `start()` before serving (it
    resumes log copying for adopted containers) and `close()` after."""

    def __init__(self, docker: d.DockerClient, *, root_dir: str | os.PathLike[str],
                 network_plugin: NetworkPlugin | None = None,
                 sandbox_image: str = DEFAULT_SANDBOX_IMAGE,
                 sandbox_command: Sequence[str] | None = None,
                 node_name: str = "") -> None:
        self.docker = docker
        self.root_dir = Path(root_dir)
        self.network_plugin = network_plugin
        self.sandbox_image = sandbox_image
        self.sandbox_command = list(sandbox_command) if sandbox_command else None
        # Several runtimes can share one dockerd (`kubelite up --nodes N`): each one only
        # sees the containers labelled with its node name.
        self.node_name = node_name
        self._copiers: dict[str, ContainerLogCopier] = {}
        # CNI forbids two operations on one container at once: Stop and Remove of the same
        # sandbox (a kubelet retry racing the original call) take turns.
        self._sandbox_locks: dict[str, asyncio.Lock] = {}
        self._cpu_samples: dict[str, tuple[int, int]] = {}  # id -> (time ns, usage ns)
        owned = [CONTAINER_TYPE_LABEL] + ([f"{NODE_LABEL}={node_name}"] if node_name else [])
        self.containers = ContainerListCache(
            lambda: docker.list_containers(filters={"label": owned}))
        docker.on_container_change(self.containers.invalidate)

    # --- lifetime -------------------------------------------------------------------------

    async def start(self) -> None:
        self.root_dir.mkdir(parents=True, exist_ok=True)
        await self._remove_foreign_pods()
        for c in await self.docker.list_containers(
                filters={"label": self._owned_filter(CONTAINER_TYPE_CONTAINER)}):
            path = (c.get("Labels") or {}).get(LOG_PATH_LABEL)
            if not path or not os.path.exists(path):
                continue
            # Exited containers only need the tail they may have written while we were
            # down, and only when the file shows where we stopped.
            if c.get("State") == "running" or last_log_timestamp(path):
                await self._copy_logs(c["Id"], path)

    async def _remove_foreign_pods(self) -> None:
        """Remove sandboxes labelled with our node name that have no checkpoint in our root
        directory, with their containers. Every sandbox we make has one from the moment it
        exists, so these belong to another cluster that used the same node name (`kubelite
        up` on another data directory, stopped without deleting its pods): their addresses
        came from that cluster's ipamd, ours may give them out again, and two pods with one
        address on the VPC bridge would take each other's traffic."""
        if not self.node_name:
            return  # without a node label we cannot tell whose containers they are
        owned = await self.docker.list_containers(filters={"label": [
            CONTAINER_TYPE_LABEL, f"{NODE_LABEL}={self.node_name}"]})
        foreign = {c["Id"] for c in owned
                   if (c.get("Labels") or {}).get(CONTAINER_TYPE_LABEL) == CONTAINER_TYPE_SANDBOX
                   and SandboxCheckpoint.load(self.root_dir, c["Id"]) is None}
        if not foreign:
            return
        doomed = [c["Id"] for c in owned if c["Id"] in foreign
                  or (c.get("Labels") or {}).get(SANDBOX_ID_LABEL) in foreign]
        log.warning("removing %d sandbox(es) and their containers (%d in all) labelled for node "
                    "%s but unknown to %s: left by another cluster", len(foreign), len(doomed),
                    self.node_name, self.root_dir)
        await asyncio.gather(*(self._ignore_missing(self.docker.remove_container(cid, force=True))
                               for cid in doomed))

    async def close(self) -> None:
        copiers, self._copiers = list(self._copiers.values()), {}
        await asyncio.gather(*(c.stop() for c in copiers))

    # --- helpers --------------------------------------------------------------------------

    def _owned_filter(self, container_type: str, *extra: str) -> list[str]:
        labels = [f"{CONTAINER_TYPE_LABEL}={container_type}", *extra]
        if self.node_name:
            labels.append(f"{NODE_LABEL}={self.node_name}")
        return labels

    def _owned_labels(self, container_type: str) -> dict[str, str]:
        labels = {CONTAINER_TYPE_LABEL: container_type}
        if self.node_name:
            labels[NODE_LABEL] = self.node_name
        return labels

    def _is_owned(self, info: Mapping[str, Any], container_type: str) -> bool:
        labels = (info.get("Config") or {}).get("Labels") or {}
        return (labels.get(CONTAINER_TYPE_LABEL) == container_type
                and (not self.node_name or labels.get(NODE_LABEL) == self.node_name))

    async def _inspect(self, container_id: str, container_type: str) -> Obj:
        """Inspect a sandbox or a container of ours; NOT_FOUND for anything else."""
        what = "sandbox" if container_type == CONTAINER_TYPE_SANDBOX else "container"
        if not container_id:
            raise CRIError(grpc.StatusCode.INVALID_ARGUMENT, f"{what} ID is empty")
        try:
            info = await self.docker.inspect_container(container_id)
        except d.NotFound:
            raise CRIError(grpc.StatusCode.NOT_FOUND, f"{what} {container_id} not found"
                           ) from None
        if not self._is_owned(info, container_type):
            raise CRIError(grpc.StatusCode.NOT_FOUND, f"{what} {container_id} not found")
        return info

    async def _ensure_image(self, image: str) -> None:
        try:
            await self.docker.inspect_image(image)
        except d.NotFound:
            try:
                await self.docker.pull_image(image)
            except d.DockerError as e:
                raise CRIError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"sandbox image {image!r} is not present and could not be "
                               f"pulled: {e}") from e

    async def _copy_logs(self, container_id: str, path: str) -> None:
        old = self._copiers.get(container_id)
        if old is not None and old.running:
            return
        info = await self.docker.inspect_container(container_id)
        copier = ContainerLogCopier(self.docker, container_id, path,
                                    tty=bool((info.get("Config") or {}).get("Tty")))
        copier.start()
        assert copier.task is not None
        self._copiers[container_id] = copier
        copier.task.add_done_callback(lambda _: self._forget_copier(copier))

    def _forget_copier(self, copier: ContainerLogCopier) -> None:
        if self._copiers.get(copier.container_id) is copier:
            del self._copiers[copier.container_id]

    async def _image_name_and_id(self, image_id: str, configured: str) -> tuple[str, str]:
        """The name to show for a container's image and its ID; the configured reference
        when the image is gone."""
        try:
            image = await self.docker.inspect_image(image_id)
        except d.NotFound:
            return configured, image_id
        tags = [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]
        # The name the container was created with, when it still names this image (an
        # image can carry several tags); else its first tag, as cri-dockerd.
        for wanted in (configured, f"{configured}:latest"):
            if wanted in tags:
                return wanted, str(image.get("Id") or image_id)
        return (tags[0] if tags else configured), str(image.get("Id") or image_id)

    # --- version and status ---------------------------------------------------------------

    @_rpc
    async def Version(self, request: api.VersionRequest,
                      context: grpc.aio.ServicerContext) -> api.VersionResponse:
        v = await self.docker.version()
        return api.VersionResponse(version=CRI_API_VERSION, runtime_name=RUNTIME_NAME,
                                   runtime_version=str(v.get("Version", "")),
                                   runtime_api_version=self.docker.api_version
                                   or str(v.get("ApiVersion", "")))

    @_rpc
    async def Status(self, request: api.StatusRequest,
                     context: grpc.aio.ServicerContext) -> api.StatusResponse:
        docker_up = await self.docker.ping()
        runtime = api.RuntimeCondition(type="RuntimeReady", status=docker_up)
        if not docker_up:
            runtime.reason = "DockerDaemonNotReady"
            runtime.message = f"dockerd at {self.docker.socket_path} does not answer"
        network = api.RuntimeCondition(type="NetworkReady",
                                       status=self.network_plugin is not None)
        if self.network_plugin is None:
            network.reason = "NetworkPluginNotReady"
            network.message = "no network plugin configured: pods only get a loopback"
        return api.StatusResponse(status=api.RuntimeStatus(conditions=[runtime, network]))

    # --- sandboxes ------------------------------------------------------------------------

    @_rpc
    async def RunPodSandbox(self, request: api.RunPodSandboxRequest,
                            context: grpc.aio.ServicerContext) -> api.RunPodSandboxResponse:
        config = request.config
        md = config.metadata
        if not (md.name and md.namespace and md.uid):
            raise CRIError(grpc.StatusCode.INVALID_ARGUMENT,
                           "sandbox metadata needs name, namespace and uid")
        ns = config.linux.security_context.namespace_options
        host_network = ns.network == api.NODE
        await self._ensure_image(self.sandbox_image)

        labels = make_labels(config.labels, config.annotations)
        labels.update(self._owned_labels(CONTAINER_TYPE_SANDBOX))
        labels.update({POD_NAME_LABEL: md.name, POD_NAMESPACE_LABEL: md.namespace,
                       POD_UID_LABEL: md.uid, CONTAINER_NAME_LABEL: SANDBOX_CONTAINER_NAME})
        host_config: Obj = {
            # The pod gets an empty network namespace; the network plugin fills it in.
            "NetworkMode": "host" if host_network else "none",
            # "shareable" so the pod's containers may join the sandbox's IPC namespace.
            "IpcMode": "host" if ns.ipc == api.NODE else "shareable",
            "PidMode": "host" if ns.pid == api.NODE else "",
        }
        if config.linux.cgroup_parent:
            host_config["CgroupParent"] = config.linux.cgroup_parent
        if config.linux.sysctls:
            host_config["Sysctls"] = dict(config.linux.sysctls)
        if config.HasField("dns_config"):
            # Containers that join the sandbox's network share its /etc/resolv.conf.
            host_config["Dns"] = list(config.dns_config.servers)
            host_config["DnsSearch"] = list(config.dns_config.searches)
            host_config["DnsOptions"] = list(config.dns_config.options)
        if request.runtime_handler:
            host_config["Runtime"] = request.runtime_handler
            labels[RUNTIME_HANDLER_LABEL] = request.runtime_handler
        body: Obj = {"Image": self.sandbox_image, "Labels": labels, "HostConfig": host_config}
        if config.hostname and not host_network:
            body["Hostname"] = config.hostname
        if self.sandbox_command:
            body["Entrypoint"] = self.sandbox_command
            body["Cmd"] = []

        name = sandbox_name(md)
        try:
            sandbox_id = await self.docker.create_container(name, body)
        except d.Conflict as e:
            raise CRIError(grpc.StatusCode.ALREADY_EXISTS,
                           f"sandbox {name} already exists: {e}") from e
        checkpoint = SandboxCheckpoint(sandbox_id, md.namespace, md.name, md.uid,
                                       host_network=host_network,
                                       port_mappings=cni_port_mappings(config.port_mappings),
                                       annotations=dict(config.annotations))
        # Saved before the network exists, so a crash after ADD still knows to DEL.
        checkpoint.save(self.root_dir)
        netns = ""
        try:
            await self.docker.start_container(sandbox_id)
            if not host_network and self.network_plugin is not None:
                info = await self.docker.inspect_container(sandbox_id)
                netns = f"/proc/{info['State']['Pid']}/ns/net"
                checkpoint.network_ready = True  # from here on, a failure must DEL
                checkpoint.save(self.root_dir)
                result = await self.network_plugin("ADD", checkpoint.network_args(netns))
                checkpoint.ips = sandbox_ips(result)
                checkpoint.result = dict(result)
                checkpoint.save(self.root_dir)
        except BaseException as e:
            log.warning("pod %s/%s: sandbox %s failed to start: %s", md.namespace, md.name,
                        sandbox_id[:12], e)
            with contextlib.suppress(Exception):
                await self._teardown_network(checkpoint, netns)
            with contextlib.suppress(Exception):
                await self.docker.remove_container(sandbox_id, force=True)
            SandboxCheckpoint.delete(self.root_dir, sandbox_id)
            if isinstance(e, Exception) and not isinstance(e, CRIError | d.DockerError):
                raise CRIError(grpc.StatusCode.UNKNOWN,
                               f"set up the network of pod {md.namespace}/{md.name}: {e}"
                               ) from e
            raise
        log.info("pod %s/%s: sandbox %s ready, ips %s", md.namespace, md.name,
                 sandbox_id[:12], checkpoint.ips)
        return api.RunPodSandboxResponse(pod_sandbox_id=sandbox_id)

    async def _teardown_network(self, checkpoint: SandboxCheckpoint, netns: str) -> None:
        if not checkpoint.network_ready or self.network_plugin is None:
            return
        await self.network_plugin("DEL", checkpoint.network_args(netns))
        checkpoint.network_ready = False
        checkpoint.ips = []
        checkpoint.result = None
        checkpoint.save(self.root_dir)

    async def _sandbox_containers(self, sandbox_id: str) -> list[Obj]:
        return await self.containers.matching(self._owned_filter(
            CONTAINER_TYPE_CONTAINER, f"{SANDBOX_ID_LABEL}={sandbox_id}"))

    async def _stop_sandbox(self, sandbox_id: str) -> None:
        if not sandbox_id:
            raise CRIError(grpc.StatusCode.INVALID_ARGUMENT, "sandbox ID is empty")
        try:
            info: Obj | None = await self._inspect(sandbox_id, CONTAINER_TYPE_SANDBOX)
        except CRIError:
            info = None  # already removed: only the network may be left to release
        checkpoint = SandboxCheckpoint.load(self.root_dir, sandbox_id)
        if checkpoint is not None:
            pid = int(((info or {}).get("State") or {}).get("Pid") or 0)
            try:
                # CNI DEL while the namespace still exists; a failure leaves the sandbox
                # running so that the kubelet's retry can release the address.
                await self._teardown_network(checkpoint, f"/proc/{pid}/ns/net" if pid else "")
            except Exception as e:
                raise CRIError(grpc.StatusCode.UNKNOWN,
                               f"tear down the network of pod {checkpoint.pod_namespace}/"
                               f"{checkpoint.pod_name}: {e}") from e
        # The CRI says remaining containers are forcibly terminated: the kubelet has already
        # stopped them with their grace periods.
        running = [c["Id"] for c in await self._sandbox_containers(sandbox_id)
                   if c.get("State") == "running"]
        await asyncio.gather(*(self._ignore_missing(self.docker.stop_container(cid, 0))
                               for cid in running))
        if info is not None:
            await self._ignore_missing(self.docker.stop_container(sandbox_id,
                                                                  SANDBOX_STOP_GRACE))

    @staticmethod
    async def _ignore_missing(call: Awaitable[Any]) -> None:
        with contextlib.suppress(d.NotFound):
            await call

    def _sandbox_lock(self, sandbox_id: str) -> asyncio.Lock:
        return self._sandbox_locks.setdefault(sandbox_id, asyncio.Lock())

    @_rpc
    async def StopPodSandbox(self, request: api.StopPodSandboxRequest,
                             context: grpc.aio.ServicerContext) -> api.StopPodSandboxResponse:
        async with self._sandbox_lock(request.pod_sandbox_id):
            await self._stop_sandbox(request.pod_sandbox_id)
        return api.StopPodSandboxResponse()

    @_rpc
    async def RemovePodSandbox(self, request: api.RemovePodSandboxRequest,
                               context: grpc.aio.ServicerContext
                               ) -> api.RemovePodSandboxResponse:
        sandbox_id = request.pod_sandbox_id
        async with self._sandbox_lock(sandbox_id):
            await self._stop_sandbox(sandbox_id)  # idempotent; releases the network if needed
            for c in await self._sandbox_containers(sandbox_id):
                await self._remove_container(c["Id"])
            with contextlib.suppress(CRIError):
                await self._inspect(sandbox_id, CONTAINER_TYPE_SANDBOX)
                await self._ignore_missing(self.docker.remove_container(sandbox_id,
                                                                        force=True))
            SandboxCheckpoint.delete(self.root_dir, sandbox_id)
        self._sandbox_locks.pop(sandbox_id, None)
        return api.RemovePodSandboxResponse()

    @_rpc
    async def PodSandboxStatus(self, request: api.PodSandboxStatusRequest,
                               context: grpc.aio.ServicerContext
                               ) -> api.PodSandboxStatusResponse:
        info = await self._inspect(request.pod_sandbox_id, CONTAINER_TYPE_SANDBOX)
        config, host = info.get("Config") or {}, info.get("HostConfig") or {}
        docker_labels = config.get("Labels") or {}
        labels, annotations = extract_labels(docker_labels)
        ready = bool((info.get("State") or {}).get("Running"))
        checkpoint = SandboxCheckpoint.load(self.root_dir, info["Id"])
        ips = checkpoint.ips if checkpoint is not None and ready else []
        status = api.PodSandboxStatus(
            id=info["Id"], metadata=parse_sandbox_name(info.get("Name", "")),
            state=api.SANDBOX_READY if ready else api.SANDBOX_NOTREADY,
            created_at=parse_rfc3339_nano(info.get("Created")),
            network=api.PodSandboxNetworkStatus(
                ip=ips[0] if ips else "",
                additional_ips=[api.PodIP(ip=ip) for ip in ips[1:]]),
            linux=api.LinuxPodSandboxStatus(namespaces=api.Namespace(
                options=api.NamespaceOption(
                    network=api.NODE if host.get("NetworkMode") == "host" else api.POD,
                    pid=api.NODE if host.get("PidMode") == "host" else api.POD,
                    ipc=api.NODE if host.get("IpcMode") == "host" else api.POD))),
            labels=labels, annotations=annotations,
            runtime_handler=docker_labels.get(RUNTIME_HANDLER_LABEL, ""))
        response = api.PodSandboxStatusResponse(status=status, timestamp=time.time_ns())
        if request.verbose:
            pid = int((info.get("State") or {}).get("Pid") or 0)
            response.info["info"] = json.dumps({
                "pid": pid, "netns": f"/proc/{pid}/ns/net" if pid else "",
                "image": config.get("Image"),
                "checkpoint": dataclasses.asdict(checkpoint) if checkpoint else None})
        return response

    @_rpc
    async def ListPodSandbox(self, request: api.ListPodSandboxRequest,
                             context: grpc.aio.ServicerContext) -> api.ListPodSandboxResponse:
        f = request.filter
        wanted = self._owned_filter(
            CONTAINER_TYPE_SANDBOX, *(f"{k}={v}" for k, v in f.label_selector.items()))
        items = []
        for c in await self.containers.matching(wanted, ids=[f.id] if f.id else []):
            try:
                metadata = parse_sandbox_name((c.get("Names") or [""])[0])
            except ValueError:
                continue  # labelled like ours but not named like ours: not ours
            state = api.SANDBOX_READY if c.get("State") == "running" else api.SANDBOX_NOTREADY
            if f.HasField("state") and f.state.state != state:
                continue
            docker_labels = c.get("Labels") or {}
            labels, annotations = extract_labels(docker_labels)
            items.append(api.PodSandbox(
                id=c["Id"], metadata=metadata, state=state,
                created_at=int(c.get("Created") or 0) * 1_000_000_000,
                labels=labels, annotations=annotations,
                runtime_handler=docker_labels.get(RUNTIME_HANDLER_LABEL, "")))
        return api.ListPodSandboxResponse(items=items)

    # --- containers -----------------------------------------------------------------------

    @_rpc
    async def CreateContainer(self, request: api.CreateContainerRequest,
                              context: grpc.aio.ServicerContext
                              ) -> api.CreateContainerResponse:
        config, sandbox_config = request.config, request.sandbox_config
        if not config.metadata.name:
            raise CRIError(grpc.StatusCode.INVALID_ARGUMENT, "container metadata needs a name")
        if not config.image.image:
            raise CRIError(grpc.StatusCode.INVALID_ARGUMENT, "container config has no image")
        sandbox_id = request.pod_sandbox_id
        sandbox = await self._inspect(sandbox_id, CONTAINER_TYPE_SANDBOX)
        sandbox_id = sandbox["Id"]
        pod = (sandbox_config.metadata if sandbox_config.metadata.name
               else parse_sandbox_name(sandbox.get("Name", "")))
        handler = ((sandbox.get("Config") or {}).get("Labels") or {}).get(
            RUNTIME_HANDLER_LABEL, "")

        log_path = ""
        if config.log_path and sandbox_config.log_directory:
            log_path = os.path.join(sandbox_config.log_directory, config.log_path)
            # The kubelet reads this file for `kubectl logs`, even before the first line.
            os.makedirs(os.path.dirname(log_path), exist_ok=True)
            Path(log_path).touch()

        labels = make_labels(config.labels, config.annotations)
        labels.update(self._owned_labels(CONTAINER_TYPE_CONTAINER))
        labels.update({SANDBOX_ID_LABEL: sandbox_id, POD_NAME_LABEL: pod.name,
                       POD_NAMESPACE_LABEL: pod.namespace, POD_UID_LABEL: pod.uid,
                       CONTAINER_NAME_LABEL: config.metadata.name})
        if log_path:
            labels[LOG_PATH_LABEL] = log_path
        if handler:
            labels[RUNTIME_HANDLER_LABEL] = handler

        sc = config.linux.security_context
        ns = sc.namespace_options
        host_config: Obj = {
            # Always the sandbox's network: with hostNetwork the sandbox has the node's.
            "NetworkMode": f"container:{sandbox_id}",
            "IpcMode": namespace_mode(ns.ipc, sandbox_id),
            "PidMode": namespace_mode(ns.pid, sandbox_id, ns.target_id),
            "Binds": [mount_bind(m) for m in config.mounts],
            "Devices": [{"PathOnHost": dev.host_path, "PathInContainer": dev.container_path,
                         "CgroupPermissions": dev.permissions or "rwm"}
                        for dev in config.devices],
            "Privileged": sc.privileged,
            "ReadonlyRootfs": sc.readonly_rootfs,
            "CapAdd": list(sc.capabilities.add_capabilities) or None,
            "CapDrop": list(sc.capabilities.drop_capabilities) or None,
            "GroupAdd": [str(g) for g in sc.supplemental_groups] or None,
            "SecurityOpt": ["no-new-privileges"] if sc.no_new_privs else None,
            # Docker keeps its own copy for `docker logs` and for the copier to read; bound
            # it, since the CRI log file is the one that is kept.
            "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m",
                                                          "max-file": "2"}},
            **docker_resources(config.linux.resources),
        }
        if sandbox_config.linux.cgroup_parent:
            host_config["CgroupParent"] = sandbox_config.linux.cgroup_parent
        if not sc.privileged:
            # Empty lists from the kubelet mean "the runtime's defaults" (proto3 cannot tell
            # unset from empty), which is what Docker does when the field is absent.
            if sc.masked_paths:
                host_config["MaskedPaths"] = list(sc.masked_paths)
            if sc.readonly_paths:
                host_config["ReadonlyPaths"] = list(sc.readonly_paths)
        if handler:
            host_config["Runtime"] = handler
        body: Obj = {
            "Image": config.image.image,
            "Env": [f"{kv.key}={kv.value}" for kv in config.envs],
            "WorkingDir": config.working_dir,
            "Labels": labels,
            "User": docker_user(sc),
            "OpenStdin": config.stdin, "StdinOnce": config.stdin_once, "Tty": config.tty,
            "HostConfig": {k: v for k, v in host_config.items() if v is not None},
        }
        # Kubernetes' command is Docker's entrypoint and its args Docker's cmd; Docker
        # ignores the image's cmd once an entrypoint is given, which is Kubernetes' rule.
        if config.command:
            body["Entrypoint"] = list(config.command)
        if config.args:
            body["Cmd"] = list(config.args)

        name = container_name(pod, config.metadata)
        try:
            container_id = await self.docker.create_container(name, body)
        except d.Conflict as e:
            raise CRIError(grpc.StatusCode.ALREADY_EXISTS,
                           f"container {name} already exists: {e}") from e
        except d.NotFound as e:
            raise CRIError(grpc.StatusCode.NOT_FOUND,
                           f"create container {name}: {e} (pull the image first)") from e
        log.info("pod %s/%s: created container %s (%s)", pod.namespace, pod.name,
                 config.metadata.name, container_id[:12])
        return api.CreateContainerResponse(container_id=container_id)

    @_rpc
    async def StartContainer(self, request: api.StartContainerRequest,
                             context: grpc.aio.ServicerContext) -> api.StartContainerResponse:
        info = await self._inspect(request.container_id, CONTAINER_TYPE_CONTAINER)
        await self.docker.start_container(info["Id"])
        log_path = ((info.get("Config") or {}).get("Labels") or {}).get(LOG_PATH_LABEL)
        if log_path:
            await self._copy_logs(info["Id"], log_path)
        return api.StartContainerResponse()

    @_rpc
    async def StopContainer(self, request: api.StopContainerRequest,
                            context: grpc.aio.ServicerContext) -> api.StopContainerResponse:
        info = await self._inspect(request.container_id, CONTAINER_TYPE_CONTAINER)
        await self.docker.stop_container(info["Id"], int(request.timeout))
        return api.StopContainerResponse()

    async def _remove_container(self, container_id: str) -> None:
        copier = self._copiers.pop(container_id, None)
        if copier is not None:
            await copier.stop()
        self._cpu_samples.pop(container_id, None)
        await self._ignore_missing(self.docker.remove_container(container_id, force=True))

    @_rpc
    async def RemoveContainer(self, request: api.RemoveContainerRequest,
                              context: grpc.aio.ServicerContext
                              ) -> api.RemoveContainerResponse:
        try:
            info = await self._inspect(request.container_id, CONTAINER_TYPE_CONTAINER)
        except CRIError as e:
            if e.code == grpc.StatusCode.NOT_FOUND:
                return api.RemoveContainerResponse()  # idempotent
            raise
        await self._remove_container(info["Id"])
        return api.RemoveContainerResponse()

    @_rpc
    async def ListContainers(self, request: api.ListContainersRequest,
                             context: grpc.aio.ServicerContext) -> api.ListContainersResponse:
        f = request.filter
        extra = [f"{k}={v}" for k, v in f.label_selector.items()]
        if f.pod_sandbox_id:
            extra.append(f"{SANDBOX_ID_LABEL}={f.pod_sandbox_id}")
        containers = []
        for c in await self.containers.matching(self._owned_filter(CONTAINER_TYPE_CONTAINER, *extra),
                                            ids=[f.id] if f.id else []):
            try:
                metadata = parse_container_name((c.get("Names") or [""])[0])
            except ValueError:
                continue
            state = container_state_from_list(str(c.get("State", "")))
            if f.HasField("state") and f.state.state != state:
                continue
            docker_labels = c.get("Labels") or {}
            labels, annotations = extract_labels(docker_labels)
            image_id = str(c.get("ImageID") or "")
            containers.append(api.Container(
                id=c["Id"], pod_sandbox_id=docker_labels.get(SANDBOX_ID_LABEL, ""),
                metadata=metadata, image=api.ImageSpec(image=str(c.get("Image") or "")),
                image_ref=image_id, image_id=image_id, state=state,
                created_at=int(c.get("Created") or 0) * 1_000_000_000,
                labels=labels, annotations=annotations))
        return api.ListContainersResponse(containers=containers)

    @_rpc
    async def ContainerStatus(self, request: api.ContainerStatusRequest,
                              context: grpc.aio.ServicerContext
                              ) -> api.ContainerStatusResponse:
        info = await self._inspect(request.container_id, CONTAINER_TYPE_CONTAINER)
        config, host = info.get("Config") or {}, info.get("HostConfig") or {}
        created = parse_rfc3339_nano(info.get("Created"))
        s = container_state_info(info.get("State") or {}, created)
        docker_labels = config.get("Labels") or {}
        labels, annotations = extract_labels(docker_labels)
        image_name, image_id = await self._image_name_and_id(str(info.get("Image") or ""),
                                                             str(config.get("Image") or ""))
        status = api.ContainerStatus(
            id=info["Id"], metadata=parse_container_name(info.get("Name", "")),
            state=s.state, created_at=created, started_at=s.started_at,
            finished_at=s.finished_at, exit_code=s.exit_code, reason=s.reason,
            message=s.message, image=api.ImageSpec(image=image_name), image_ref=image_id,
            image_id=image_id, labels=labels, annotations=annotations,
            mounts=cri_mounts(info.get("Mounts") or []),
            log_path=docker_labels.get(LOG_PATH_LABEL, ""),
            resources=api.ContainerResources(linux=cri_resources(host)))
        response = api.ContainerStatusResponse(status=status)
        if request.verbose:
            response.info["info"] = json.dumps({
                "pid": (info.get("State") or {}).get("Pid", 0),
                "sandboxID": docker_labels.get(SANDBOX_ID_LABEL, ""),
                "config": {k: config.get(k) for k in ("Entrypoint", "Cmd", "Env", "User",
                                                       "WorkingDir", "Tty")},
                "hostConfig": {k: host.get(k) for k in ("NetworkMode", "PidMode", "IpcMode",
                                                         "Binds", "Privileged")}})
        return response

    @_rpc
    async def UpdateContainerResources(self, request: api.UpdateContainerResourcesRequest,
                                       context: grpc.aio.ServicerContext
                                       ) -> api.UpdateContainerResourcesResponse:
        info = await self._inspect(request.container_id, CONTAINER_TYPE_CONTAINER)
        resources = docker_resources(request.linux, for_update=True)
        if resources:
            await self.docker.update_container(info["Id"], resources)
        return api.UpdateContainerResourcesResponse()

    @_rpc
    async def ReopenContainerLog(self, request: api.ReopenContainerLogRequest,
                                 context: grpc.aio.ServicerContext
                                 ) -> api.ReopenContainerLogResponse:
        info = await self._inspect(request.container_id, CONTAINER_TYPE_CONTAINER)
        copier = self._copiers.get(info["Id"])
        if copier is None or not copier.running:
            raise CRIError(grpc.StatusCode.FAILED_PRECONDITION,
                           f"container {request.container_id} is not running")
        copier.reopen()
        return api.ReopenContainerLogResponse()

    # --- exec -----------------------------------------------------------------------------

    @_rpc
    async def ExecSync(self, request: api.ExecSyncRequest,
                       context: grpc.aio.ServicerContext) -> api.ExecSyncResponse:
        if not request.cmd:
            raise CRIError(grpc.StatusCode.INVALID_ARGUMENT, "no command to run")
        info = await self._inspect(request.container_id, CONTAINER_TYPE_CONTAINER)
        try:
            async with asyncio.timeout(request.timeout or None):
                result = await self.docker.exec_run(info["Id"], list(request.cmd))
        except TimeoutError:
            # Docker cannot kill an exec'd process: it runs on, as under cri-dockerd.
            raise CRIError(grpc.StatusCode.DEADLINE_EXCEEDED,
                           f"command {list(request.cmd)} timed out after "
                           f"{request.timeout}s") from None
        return api.ExecSyncResponse(stdout=result.stdout, stderr=result.stderr,
                                    exit_code=result.exit_code)

    _STREAMING = ("kubelite's runtime serves no streaming endpoint: the kubelet runs "
                  "exec/attach/port-forward itself (docs/runtime.md)")

    async def Exec(self, request: api.ExecRequest,
                   context: grpc.aio.ServicerContext) -> api.ExecResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, self._STREAMING)
        raise AssertionError("unreachable")

    async def Attach(self, request: api.AttachRequest,
                     context: grpc.aio.ServicerContext) -> api.AttachResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, self._STREAMING)
        raise AssertionError("unreachable")

    async def PortForward(self, request: api.PortForwardRequest,
                          context: grpc.aio.ServicerContext) -> api.PortForwardResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, self._STREAMING)
        raise AssertionError("unreachable")

    # --- stats ----------------------------------------------------------------------------

    def _container_stats(self, container_id: str, name: str, docker_labels: Mapping[str, str],
                         sample: Mapping[str, Any]) -> api.ContainerStats:
        labels, annotations = extract_labels(docker_labels)
        try:
            now = parse_rfc3339_nano(sample.get("read")) or time.time_ns()
        except ValueError:
            now = time.time_ns()
        usage = int(((sample.get("cpu_stats") or {}).get("cpu_usage") or {})
                    .get("total_usage") or 0)
        cpu = api.CpuUsage(timestamp=now,
                           usage_core_nano_seconds=api.UInt64Value(value=usage))
        previous = self._cpu_samples.get(container_id)
        if previous is not None and now > previous[0] and usage >= previous[1]:
            # Average cores over the time since our last sample, as cri-dockerd computes it.
            cores = (usage - previous[1]) * 1_000_000_000 // (now - previous[0])
            cpu.usage_nano_cores.value = cores
        self._cpu_samples[container_id] = (now, usage)

        mem = sample.get("memory_stats") or {}
        detail = mem.get("stats") or {}
        used = int(mem.get("usage") or 0)
        # cgroup v1 names first, then v2's.
        inactive = int(detail.get("total_inactive_file", detail.get("inactive_file", 0)))
        working_set = max(0, used - inactive)
        memory = api.MemoryUsage(
            timestamp=now, working_set_bytes=api.UInt64Value(value=working_set),
            usage_bytes=api.UInt64Value(value=used),
            rss_bytes=api.UInt64Value(value=int(detail.get("total_rss",
                                                           detail.get("anon", 0)))),
            page_faults=api.UInt64Value(value=int(detail.get("total_pgfault",
                                                             detail.get("pgfault", 0)))),
            major_page_faults=api.UInt64Value(value=int(detail.get(
                "total_pgmajfault", detail.get("pgmajfault", 0)))))
        if mem.get("limit"):
            memory.available_bytes.value = max(0, int(mem["limit"]) - working_set)
        return api.ContainerStats(
            attributes=api.ContainerAttributes(id=container_id,
                                               metadata=parse_container_name(name),
                                               labels=labels, annotations=annotations),
            cpu=cpu, memory=memory)

    @_rpc
    async def ContainerStats(self, request: api.ContainerStatsRequest,
                             context: grpc.aio.ServicerContext) -> api.ContainerStatsResponse:
        info = await self._inspect(request.container_id, CONTAINER_TYPE_CONTAINER)
        sample = await self.docker.container_stats(info["Id"])
        return api.ContainerStatsResponse(stats=self._container_stats(
            info["Id"], info.get("Name", ""), (info.get("Config") or {}).get("Labels") or {},
            sample))

    @_rpc
    async def ListContainerStats(self, request: api.ListContainerStatsRequest,
                                 context: grpc.aio.ServicerContext
                                 ) -> api.ListContainerStatsResponse:
        f = request.filter
        extra = [f"{k}={v}" for k, v in f.label_selector.items()]
        if f.pod_sandbox_id:
            extra.append(f"{SANDBOX_ID_LABEL}={f.pod_sandbox_id}")
        containers = await self.containers.matching(
            self._owned_filter(CONTAINER_TYPE_CONTAINER, *extra), ids=[f.id] if f.id else [],
            states=["running"])

        async def one(c: Obj) -> api.ContainerStats | None:
            try:
                sample = await self.docker.container_stats(c["Id"])
                return self._container_stats(c["Id"], (c.get("Names") or [""])[0],
                                             c.get("Labels") or {}, sample)
            except (d.NotFound, ValueError):
                return None  # gone meanwhile, or not named like ours

        stats = await asyncio.gather(*(one(c) for c in containers))
        return api.ListContainerStatsResponse(stats=[s for s in stats if s is not None])

    # --- images ---------------------------------------------------------------------------

    def _cri_image(self, image: Mapping[str, Any], *, with_user: bool) -> api.Image:
        tags = [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]
        digests = [t for t in image.get("RepoDigests") or [] if t != "<none>@<none>"]
        result = api.Image(id=str(image["Id"]), repo_tags=tags, repo_digests=digests,
                           size=int(image.get("Size") or 0),
                           spec=api.ImageSpec(image=str(image["Id"])),
                           pinned=self.sandbox_image in tags)  # never GC the pause image
        if with_user:
            user = str((image.get("Config") or {}).get("User") or "").split(":", 1)[0]
            if user.isdigit():
                result.uid.value = int(user)
            elif user:
                result.username = user
        return result

    @_rpc
    async def ListImages(self, request: api.ListImagesRequest,
                         context: grpc.aio.ServicerContext) -> api.ListImagesResponse:
        ref = request.filter.image.image
        images = await self.docker.list_images(filters={"reference": [ref]} if ref else None)
        return api.ListImagesResponse(images=[self._cri_image(i, with_user=False)
                                              for i in images])

    @_rpc
    async def ImageStatus(self, request: api.ImageStatusRequest,
                          context: grpc.aio.ServicerContext) -> api.ImageStatusResponse:
        if not request.image.image:
            raise CRIError(grpc.StatusCode.INVALID_ARGUMENT, "no image given")
        try:
            image = await self.docker.inspect_image(request.image.image)
        except d.NotFound:
            return api.ImageStatusResponse()  # absent: `image` stays unset, as the CRI says
        response = api.ImageStatusResponse(image=self._cri_image(image, with_user=True))
        if request.verbose:
            response.info["info"] = json.dumps({"config": image.get("Config"),
                                                "created": image.get("Created")})
        return response

    @_rpc
    async def PullImage(self, request: api.PullImageRequest,
                        context: grpc.aio.ServicerContext) -> api.PullImageResponse:
        ref = request.image.image
        if not ref:
            raise CRIError(grpc.StatusCode.INVALID_ARGUMENT, "no image given")
        a = request.auth
        auth = {k: v for k, v in {
            "username": a.username, "password": a.password, "auth": a.auth,
            "serveraddress": a.server_address, "identitytoken": a.identity_token,
            "registrytoken": a.registry_token}.items() if v}
        try:
            await self.docker.pull_image(ref, auth=auth or None)
            image = await self.docker.inspect_image(ref)
        except d.DockerError as e:
            raise CRIError(_docker_status(e), f"pull image {ref!r}: {e}") from e
        log.info("pulled image %s (%s)", ref, image.get("Id"))
        return api.PullImageResponse(image_ref=str(image["Id"]))

    @_rpc
    async def RemoveImage(self, request: api.RemoveImageRequest,
                          context: grpc.aio.ServicerContext) -> api.RemoveImageResponse:
        ref = request.image.image
        if not ref:
            raise CRIError(grpc.StatusCode.INVALID_ARGUMENT, "no image given")
        try:
            image = await self.docker.inspect_image(ref)
            # By ID and forced: the CRI removes the image with all its tags.
            await self.docker.remove_image(str(image["Id"]), force=True)
        except d.NotFound:
            pass  # idempotent
        except d.Conflict as e:
            raise CRIError(grpc.StatusCode.FAILED_PRECONDITION,
                           f"remove image {ref!r}: {e}") from e
        return api.RemoveImageResponse()


# --- serving ------------------------------------------------------------------------------

def socket_path_of(endpoint: str) -> str:
    """`unix:///run/x.sock`, `unix:/run/x.sock` or a bare path -> the path."""
    for prefix in ("unix://", "unix:"):
        if endpoint.startswith(prefix):
            return endpoint[len(prefix):]
    return endpoint


async def start_server(service: DockerRuntimeService, endpoint: str) -> grpc.aio.Server:
    """Serve `service` on a unix socket (replacing a stale socket file) and return the
    started server; stop it with `await server.stop(grace)`, then `await service.close()`."""
    path = socket_path_of(endpoint)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # left by a runtime that did not exit cleanly
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", GRPC_MAX_MESSAGE),
                                      ("grpc.max_send_message_length", GRPC_MAX_MESSAGE)])
    api_grpc.add_RuntimeServiceServicer_to_server(service, server)
    api_grpc.add_ImageServiceServicer_to_server(service, server)
    if server.add_insecure_port(f"unix://{os.path.abspath(path)}") == 0:
        raise OSError(f"cannot listen on unix socket {path}")
    await service.start()
    await server.start()
    log.info("CRI runtime service listening on unix://%s", os.path.abspath(path))
    return server


async def serve(endpoint: str, *, stop: asyncio.Event, docker_socket: str = d.DEFAULT_SOCKET,
                root_dir: str | os.PathLike[str], sandbox_image: str = DEFAULT_SANDBOX_IMAGE,
                sandbox_command: Sequence[str] | None = None, node_name: str = "",
                network_plugin: NetworkPlugin | None = None, grace: float = 5.0) -> None:
    """Run the runtime service until `stop` is set, then shut down cleanly: stop taking
    RPCs (letting running ones finish for `grace` seconds), stop the log copiers, close the
    Docker client and remove the socket."""
    async with d.DockerClient(docker_socket) as docker:
        await docker.negotiate()  # fail early, and clearly, when dockerd is not there
        service = DockerRuntimeService(docker, root_dir=root_dir,
                                       network_plugin=network_plugin,
                                       sandbox_image=sandbox_image,
                                       sandbox_command=sandbox_command, node_name=node_name)
        server = await start_server(service, endpoint)
        try:
            await stop.wait()
        finally:
            await server.stop(grace)
            await service.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(socket_path_of(endpoint))
            log.info("CRI runtime service stopped")
