"""What the runtime has of one pod: its sandboxes and containers, newest first.

The kubelet keeps no state of its own about containers (upstream's `kubecontainer.PodStatus`
is rebuilt from the runtime on every sync): everything — which attempt a sandbox is, how
often a container restarted, which spec it was made from — is read back from the runtime's
labels and annotations (see labels.py). That is what makes a restarted kubelet re-adopt the
running containers instead of starting them again.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import grpc

from kubelet import labels as L
from kubelet.runtime.client import RuntimeClient, rpc_code
from proto.cri import api_pb2 as cri

RUNNING = "running"
EXITED = "exited"
CREATED = "created"
UNKNOWN = "unknown"

_STATE_NAMES = {cri.CONTAINER_CREATED: CREATED, cri.CONTAINER_RUNNING: RUNNING,
                cri.CONTAINER_EXITED: EXITED, cri.CONTAINER_UNKNOWN: UNKNOWN}


@dataclass
class ContainerRecord:
    """One runtime container (any attempt) of a pod."""

    id: str
    name: str
    sandbox_id: str
    state: str
    attempt: int = 0
    created_at: float = 0.0  # wall-clock seconds; 0 = unknown
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int = 0
    reason: str = ""
    message: str = ""
    image: str = ""
    image_ref: str = ""
    log_path: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        return self.annotations.get(L.CONTAINER_HASH_ANNOTATION, "")

    @property
    def restart_count(self) -> int:
        return L.int_annotation(self.annotations, L.RESTART_COUNT_ANNOTATION)

    @property
    def is_init(self) -> bool:
        return self.labels.get(L.CONTAINER_TYPE_LABEL) == L.CONTAINER_TYPE_INIT

    @property
    def container_id(self) -> str:
        """The `containerID` of a container status: `docker://<id>`."""
        return f"docker://{self.id}"


@dataclass
class SandboxRecord:
    id: str
    attempt: int
    ready: bool
    created_at: float = 0.0
    ips: list[str] = field(default_factory=list)
    host_network: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class PodRuntimeStatus:
    uid: str
    name: str = ""
    namespace: str = ""
    sandboxes: list[SandboxRecord] = field(default_factory=list)  # newest first
    containers: list[ContainerRecord] = field(default_factory=list)  # newest first

    @property
    def latest_sandbox(self) -> SandboxRecord | None:
        return self.sandboxes[0] if self.sandboxes else None

    @property
    def pod_ips(self) -> list[str]:
        sandbox = self.latest_sandbox
        return list(sandbox.ips) if sandbox is not None and sandbox.ready else []

    def by_name(self, name: str, init: bool | None = None) -> list[ContainerRecord]:
        """Every container of that name, newest first."""
        return [c for c in self.containers
                if c.name == name and (init is None or c.is_init == init)]

    def latest(self, name: str, init: bool | None = None) -> ContainerRecord | None:
        found = self.by_name(name, init)
        return found[0] if found else None

    def running(self) -> list[ContainerRecord]:
        return [c for c in self.containers if c.state == RUNNING]

    @property
    def is_empty(self) -> bool:
        return not self.sandboxes and not self.containers


def _seconds(ns: int) -> float:
    return ns / 1e9 if ns > 0 else 0.0


def container_record(status: cri.ContainerStatus, sandbox_id: str) -> ContainerRecord:
    return ContainerRecord(
        id=status.id, name=status.metadata.name, sandbox_id=sandbox_id,
        state=_STATE_NAMES.get(status.state, UNKNOWN), attempt=status.metadata.attempt,
        created_at=_seconds(status.created_at), started_at=_seconds(status.started_at),
        finished_at=_seconds(status.finished_at), exit_code=status.exit_code,
        reason=status.reason, message=status.message, image=status.image.image,
        image_ref=status.image_ref or status.image_id, log_path=status.log_path,
        labels=dict(status.labels), annotations=dict(status.annotations))


async def _container_status(client: RuntimeClient, item: cri.Container
                            ) -> ContainerRecord | None:
    try:
        status = await client.container_status(item.id)
    except grpc.aio.AioRpcError as e:
        if rpc_code(e) == grpc.StatusCode.NOT_FOUND:
            return None  # removed meanwhile
        raise
    return container_record(status, item.pod_sandbox_id)


async def _sandbox_record(client: RuntimeClient, item: cri.PodSandbox) -> SandboxRecord | None:
    ready = item.state == cri.SANDBOX_READY
    ips: list[str] = []
    host_network = False
    if ready:
        try:
            status = (await client.pod_sandbox_status(item.id)).status
        except grpc.aio.AioRpcError as e:
            if rpc_code(e) == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        ready = status.state == cri.SANDBOX_READY
        if status.network.ip:
            ips = [status.network.ip, *(ip.ip for ip in status.network.additional_ips)]
        host_network = status.linux.namespaces.options.network == cri.NODE
    return SandboxRecord(id=item.id, attempt=item.metadata.attempt, ready=ready,
                         created_at=_seconds(item.created_at), ips=ips,
                         host_network=host_network, labels=dict(item.labels),
                         annotations=dict(item.annotations))


async def pod_runtime_status(client: RuntimeClient, uid: str) -> PodRuntimeStatus:
    """Everything the runtime has for pod `uid`, with full container statuses."""
    selector = {L.POD_UID_LABEL: uid}
    sandboxes, containers = await asyncio.gather(
        client.list_pod_sandboxes(selector), client.list_containers(selector))
    result = PodRuntimeStatus(uid=uid)
    for s in sandboxes:
        result.name = result.name or s.metadata.name
        result.namespace = result.namespace or s.metadata.namespace
    sandbox_records = await asyncio.gather(*(_sandbox_record(client, s) for s in sandboxes))
    container_records = await asyncio.gather(*(_container_status(client, c)
                                               for c in containers))
    result.sandboxes = sorted((s for s in sandbox_records if s is not None),
                              key=lambda s: (s.attempt, s.created_at), reverse=True)
    result.containers = sorted((c for c in container_records if c is not None),
                               key=lambda c: (c.created_at, c.attempt), reverse=True)
    for c in result.containers:
        result.name = result.name or c.labels.get(L.POD_NAME_LABEL, "")
        result.namespace = result.namespace or c.labels.get(L.POD_NAMESPACE_LABEL, "")
    return result


@dataclass(frozen=True)
class RelistEntry:
    """What the relist (PLEG) compares: per pod, its containers' and sandboxes' states."""

    states: frozenset[tuple[str, str]]


async def relist(client: RuntimeClient) -> dict[str, RelistEntry]:
    """One cheap listing of every sandbox and container of this node, by pod uid."""
    sandboxes, containers = await asyncio.gather(client.list_pod_sandboxes(),
                                                 client.list_containers())
    by_pod: dict[str, set[tuple[str, str]]] = {}
    for s in sandboxes:
        uid = s.labels.get(L.POD_UID_LABEL) or s.metadata.uid
        by_pod.setdefault(uid, set()).add((s.id, "sandbox-ready" if s.state == cri.SANDBOX_READY
                                           else "sandbox-notready"))
    for c in containers:
        uid = c.labels.get(L.POD_UID_LABEL, "")
        if uid:
            by_pod.setdefault(uid, set()).add((c.id, _STATE_NAMES.get(c.state, UNKNOWN)))
    return {uid: RelistEntry(frozenset(states)) for uid, states in by_pod.items()}


async def pod_identity(client: RuntimeClient) -> dict[str, tuple[str, str]]:
    """uid -> (namespace, name) for every pod the runtime holds anything of."""
    out: dict[str, tuple[str, str]] = {}
    with contextlib.suppress(grpc.aio.AioRpcError):
        for s in await client.list_pod_sandboxes():
            out[s.metadata.uid] = (s.metadata.namespace, s.metadata.name)
        for c in await client.list_containers():
            uid = c.labels.get(L.POD_UID_LABEL, "")
            if uid and uid not in out:
                out[uid] = (c.labels.get(L.POD_NAMESPACE_LABEL, ""),
                            c.labels.get(L.POD_NAME_LABEL, ""))
    return out
