"""The Node object: registration, status and heartbeats (upstream kubelet_node_status.go,
nodestatus/setters.go), and the node Lease (pkg/kubelet/nodelease).

- `register` creates the Node (labels, addresses, capacity, nodeInfo, daemon endpoint); when
  it exists already (a restarted kubelet) it reconciles the labels the kubelet owns.
- `run_status_loop` recomputes the status every 10 s and writes it (`nodes/status`, merge
  patch) when something changed, or at least every 40 s so the Ready condition's
  `lastHeartbeatTime` moves (the node lifecycle controller watches it).
- `run_lease_loop` renews `kube-node-lease/<node>` every 10 s (leaseDurationSeconds 40),
  the cheap heartbeat the controller reads first.

Conditions: MemoryPressure (MemAvailable under the 100Mi eviction threshold), DiskPressure
(less than 10% free under the root dir), PIDPressure (less than 10% of pid_max free), Ready
(the runtime's RuntimeReady and NetworkReady conditions, as upstream's runtime state check).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import platform
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from api.errors import AlreadyExists, Conflict, NotFound, StatusError
from api.meta import now_rfc3339, now_rfc3339_micro
from api.quantity import format_quantity
from api.resources import CATALOGUE
from client.rest import ApiClient, ApiConnectionError
from kubelet.runtime.client import RuntimeClient

log = logging.getLogger(__name__)
Obj = dict[str, Any]

NODES = CATALOGUE.require("nodes")
LEASES = CATALOGUE.require("leases")
LEASE_NAMESPACE = "kube-node-lease"
KUBELET_VERSION = "v1.32.0+kubelite"
STATUS_UPDATE_PERIOD = 10.0
STATUS_REPORT_PERIOD = 40.0
LEASE_DURATION = 40
LEASE_RENEW_PERIOD = 10.0
EVICTION_MEMORY = 100 * 1024 * 1024  # memory.available<100Mi, upstream's hard threshold
EVICTION_NODEFS_PERCENT = 10
EVICTION_PID_PERCENT = 10
MAX_NODE_IMAGES = 50
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
         "s390x": "s390x"}


@dataclass
class NodeConfig:
    name: str
    instance_type: str = "m5.large"
    zone: str = ""
    region: str = ""
    internal_ip: str = "127.0.0.1"
    hostname: str = ""
    port: int = 10250
    max_pods: int = 110
    root_dir: str = "/var/lib/kubelet"
    extra_labels: dict[str, str] = field(default_factory=dict)


@dataclass
class MachineInfo:
    cpus: int
    memory: int
    storage: int
    kernel: str
    os_image: str
    machine_id: str
    boot_id: str
    arch: str


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return "Linux"


def meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    for line in _read("/proc/meminfo").splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[name] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    return out


def machine_info(root_dir: str) -> MachineInfo:
    Path(root_dir).mkdir(parents=True, exist_ok=True)
    st = os.statvfs(root_dir)
    return MachineInfo(
        cpus=os.cpu_count() or 1, memory=meminfo().get("MemTotal", 0),
        storage=st.f_blocks * st.f_frsize, kernel=platform.release(), os_image=_os_image(),
        machine_id=_read("/etc/machine-id") or _read("/var/lib/dbus/machine-id"),
        boot_id=_read("/proc/sys/kernel/random/boot_id"),
        arch=_ARCH.get(platform.machine(), platform.machine()))


def default_zone() -> str:
    """Every simulated node sits in one zone unless --zone says otherwise."""
    return "kubelite-zone-a"


def node_labels(cfg: NodeConfig, arch: str) -> dict[str, str]:
    labels = {
        "kubernetes.io/hostname": cfg.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": arch,
        "node.kubernetes.io/instance-type": cfg.instance_type,
        "beta.kubernetes.io/instance-type": cfg.instance_type,
        "topology.kubernetes.io/zone": cfg.zone or default_zone(),
        "failure-domain.beta.kubernetes.io/zone": cfg.zone or default_zone(),
    }
    if cfg.region:
        labels["topology.kubernetes.io/region"] = cfg.region
        labels["failure-domain.beta.kubernetes.io/region"] = cfg.region
    labels.update(cfg.extra_labels)
    return labels


def capacity(machine: MachineInfo, max_pods: int) -> dict[str, str]:
    return {"cpu": str(machine.cpus), "memory": f"{machine.memory // 1024}Ki",
            "pods": str(max_pods), "ephemeral-storage": f"{machine.storage // 1024}Ki",
            "hugepages-1Gi": "0", "hugepages-2Mi": "0"}


def allocatable(machine: MachineInfo, max_pods: int) -> dict[str, str]:
    """Capacity less the hard eviction thresholds (no system/kube reserved)."""
    storage = machine.storage - machine.storage * EVICTION_NODEFS_PERCENT // 100
    return {"cpu": str(machine.cpus),
            "memory": f"{max(0, machine.memory - EVICTION_MEMORY) // 1024}Ki",
            "pods": str(max_pods), "ephemeral-storage": format_quantity(storage),
            "hugepages-1Gi": "0", "hugepages-2Mi": "0"}


@dataclass(frozen=True)
class NodeHealth:
    memory_pressure: bool = False
    disk_pressure: bool = False
    pid_pressure: bool = False
    ready: bool = True
    not_ready_message: str = ""


_CONDITION_TEXT = {
    ("MemoryPressure", False): ("KubeletHasSufficientMemory",
                                "kubelet has sufficient memory available"),
    ("MemoryPressure", True): ("KubeletHasInsufficientMemory",
                               "kubelet has insufficient memory available"),
    ("DiskPressure", False): ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("DiskPressure", True): ("KubeletHasDiskPressure", "kubelet has disk pressure"),
    ("PIDPressure", False): ("KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("PIDPressure", True): ("KubeletHasInsufficientPID",
                            "kubelet has insufficient PID available"),
}


def node_conditions(health: NodeHealth, existing: list[Obj], now: str) -> list[Obj]:
    """MemoryPressure, DiskPressure, PIDPressure, Ready, each with a fresh heartbeat and the
    previous transition time when its status did not change."""
    old = {c.get("type"): c for c in existing if isinstance(c, dict)}
    out: list[Obj] = []
    wanted: list[tuple[str, bool, str, str]] = []
    for type_, value in (("MemoryPressure", health.memory_pressure),
                         ("DiskPressure", health.disk_pressure),
                         ("PIDPressure", health.pid_pressure)):
        reason, message = _CONDITION_TEXT[(type_, value)]
        wanted.append((type_, value, reason, message))
    if health.ready:
        wanted.append(("Ready", True, "KubeletReady", "kubelet is posting ready status"))
    else:
        wanted.append(("Ready", False, "KubeletNotReady", health.not_ready_message))
    for kind, value, reason, message in wanted:
        status = "True" if value else "False"
        prev = old.get(kind)
        transition = prev.get("lastTransitionTime") if prev is not None and \
            prev.get("status") == status and prev.get("lastTransitionTime") else now
        out.append({"type": kind, "status": status, "lastHeartbeatTime": now,
                    "lastTransitionTime": transition, "reason": reason, "message": message})
    mine = {w[0] for w in wanted}
    out.extend(c for t, c in old.items() if t not in mine)  # NetworkUnavailable: not ours
    return out


def node_info(machine: MachineInfo, node_name: str, runtime_version: str) -> Obj:
    # Several simulated nodes share one machine: give each its own system UUID.
    system_uuid = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{machine.machine_id}.{node_name}"))
    return {"machineID": machine.machine_id, "systemUUID": system_uuid,
            "bootID": machine.boot_id, "kernelVersion": machine.kernel,
            "osImage": machine.os_image, "containerRuntimeVersion": runtime_version,
            "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": "",
            "operatingSystem": "linux", "architecture": machine.arch}


def build_node(cfg: NodeConfig, machine: MachineInfo) -> Obj:
    """The Node as first registered (status filled in by `node_status`)."""
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": cfg.name, "labels": node_labels(cfg, machine.arch),
                     "annotations": {
                         "node.alpha.kubernetes.io/ttl": "0",
                         "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
        "spec": {"providerID": f"kubelite://{cfg.zone or default_zone()}/{cfg.name}"},
    }


def node_status(cfg: NodeConfig, machine: MachineInfo, health: NodeHealth,
                runtime_version: str, images: list[Obj], existing: Obj | None,
                now: str) -> Obj:
    conditions = node_conditions(health, ((existing or {}).get("conditions") or []), now)
    return {
        "capacity": capacity(machine, cfg.max_pods),
        "allocatable": allocatable(machine, cfg.max_pods),
        "conditions": conditions,
        "addresses": [{"type": "InternalIP", "address": cfg.internal_ip},
                      {"type": "Hostname", "address": cfg.hostname or cfg.name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": cfg.port}},
        "nodeInfo": node_info(machine, cfg.name, runtime_version),
        "images": images,
    }


def without_heartbeats(status: Obj) -> Obj:
    """The status minus heartbeat times, to tell a real change from a heartbeat."""
    s = copy.deepcopy(status)
    for c in s.get("conditions") or []:
        c.pop("lastHeartbeatTime", None)
    return s


# --- live checks ----------------------------------------------------------------------------

async def runtime_health(cri: RuntimeClient) -> tuple[bool, str]:
    """(ready, why not) from the runtime's Status conditions."""
    try:
        status = await cri.status()
    except grpc.aio.AioRpcError as e:
        return False, f"container runtime is down: {e.details() or e.code()}"
    for cond in status.status.conditions:
        if cond.type in ("RuntimeReady", "NetworkReady") and not cond.status:
            prefix = ("container runtime network not ready" if cond.type == "NetworkReady"
                      else "container runtime not ready")
            return False, (f"{prefix}: {cond.type}=false reason:{cond.reason} "
                           f"message:{cond.message}")
    return True, ""


def pressure(root_dir: str) -> tuple[bool, bool, bool]:
    """(memory, disk, pid) pressure against the default hard eviction thresholds."""
    memory = meminfo().get("MemAvailable", EVICTION_MEMORY * 2) < EVICTION_MEMORY
    try:
        st = os.statvfs(root_dir)
        disk = st.f_bavail * 100 < st.f_blocks * EVICTION_NODEFS_PERCENT
    except OSError:
        disk = False
    try:
        pid_max = int(_read("/proc/sys/kernel/pid_max", "32768"))
        used = sum(1 for e in os.scandir("/proc") if e.name.isdigit())
        pids = (pid_max - used) * 100 < pid_max * EVICTION_PID_PERCENT
    except (OSError, ValueError):
        pids = False
    return memory, disk, pids


async def node_images(cri: RuntimeClient) -> list[Obj]:
    with contextlib.suppress(grpc.aio.AioRpcError):
        images = await cri.list_images()
        ordered = sorted((i for i in images if i.repo_tags or i.repo_digests),
                         key=lambda i: -int(i.size))
        return [{"names": [*i.repo_digests, *i.repo_tags], "sizeBytes": int(i.size)}
                for i in ordered[:MAX_NODE_IMAGES]]
    return []


# --- the loops ------------------------------------------------------------------------------

class NodeStatusManager:
    def __init__(self, api: ApiClient, cri: RuntimeClient, cfg: NodeConfig) -> None:
        self.api = api
        self.cri = cri
        self.cfg = cfg
        self.machine = machine_info(cfg.root_dir)
        self.runtime_version = ""
        self.node_uid = ""
        self.registered = asyncio.Event()
        self._last_report = 0.0
        self._last_status: Obj | None = None
        self._wake = asyncio.Event()

    def poke(self) -> None:
        """Recompute the status now (e.g. after max pods or the node IP changed)."""
        self._wake.set()

    async def _runtime_version(self) -> str:
        if not self.runtime_version:
            with contextlib.suppress(grpc.aio.AioRpcError):
                v = await self.cri.version()
                self.runtime_version = f"{v.runtime_name}://{v.runtime_version}"
        return self.runtime_version or "docker://unknown"

    async def register(self) -> None:
        """Create the Node, or reconcile the existing one; retried until it works."""
        delay = 0.5
        while True:
            try:
                await self._register_once()
                self.registered.set()
                log.info("node registered node=%s ip=%s", self.cfg.name, self.cfg.internal_ip)
                return
            except (StatusError, ApiConnectionError) as e:
                log.warning("registering node %s failed (retrying in %.1fs): %s",
                            self.cfg.name, delay, e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 7.0)

    async def _register_once(self) -> None:
        node = build_node(self.cfg, self.machine)
        try:
            created = await self.api.create(NODES, node)
            self.node_uid = created["metadata"]["uid"]
        except AlreadyExists:
            existing = await self.api.get(NODES, self.cfg.name)
            self.node_uid = existing["metadata"]["uid"]
            labels = existing["metadata"].get("labels") or {}
            wanted = node["metadata"]["labels"]
            if any(labels.get(k) != v for k, v in wanted.items()):
                await self.api.patch(NODES, self.cfg.name, {"metadata": {"labels": wanted}})
        await self.update_status(force=True)

    async def update_status(self, force: bool = False) -> None:
        memory, disk, pids = await asyncio.to_thread(pressure, self.cfg.root_dir)
        ready, why = await runtime_health(self.cri)
        health = NodeHealth(memory, disk, pids, ready, why)
        existing = None
        if self._last_status is None:
            with contextlib.suppress(NotFound):
                existing = (await self.api.get(NODES, self.cfg.name)).get("status")
        else:
            existing = self._last_status
        status = node_status(self.cfg, self.machine, health, await self._runtime_version(),
                             await node_images(self.cri), existing, now_rfc3339())
        due = time.monotonic() - self._last_report >= STATUS_REPORT_PERIOD
        changed = self._last_status is None or \
            without_heartbeats(status) != without_heartbeats(self._last_status)
        if not (force or due or changed):
            return
        try:
            await self.api.patch(NODES, self.cfg.name, {"status": status},
                                 subresource="status")
        except NotFound:
            log.warning("node %s is gone from the API: registering again", self.cfg.name)
            self._last_status = None
            self.registered.clear()
            await self.register()
            return
        self._last_status = status
        self._last_report = time.monotonic()

    async def run_status_loop(self) -> None:
        await self.registered.wait()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), STATUS_UPDATE_PERIOD)
            self._wake.clear()
            try:
                await self.update_status()
            except (StatusError, ApiConnectionError) as e:
                log.warning("node status update failed node=%s: %s", self.cfg.name, e)

    async def run_lease_loop(self) -> None:
        await self.registered.wait()
        lease: Obj | None = None
        while True:
            try:
                lease = await self._renew(lease)
                await asyncio.sleep(LEASE_RENEW_PERIOD)
            except (StatusError, ApiConnectionError) as e:
                log.warning("lease renewal failed node=%s: %s", self.cfg.name, e)
                lease = None
                await asyncio.sleep(1.0)

    async def _renew(self, lease: Obj | None, retry: bool = True) -> Obj:
        if lease is None:
            try:
                lease = await self.api.get(LEASES, self.cfg.name, LEASE_NAMESPACE)
            except NotFound:
                return await self.api.create(LEASES, self._new_lease(), LEASE_NAMESPACE)
        updated = copy.deepcopy(lease)
        spec = updated.setdefault("spec", {})
        spec["holderIdentity"] = self.cfg.name
        spec["leaseDurationSeconds"] = LEASE_DURATION
        spec["renewTime"] = now_rfc3339_micro()
        if self.node_uid and not updated["metadata"].get("ownerReferences"):
            updated["metadata"]["ownerReferences"] = self._owner()
        try:
            return await self.api.update(LEASES, updated)
        except (Conflict, NotFound):
            if not retry:
                raise
            return await self._renew(None, retry=False)  # someone else wrote: read again

    def _owner(self) -> list[Obj]:
        return [{"apiVersion": "v1", "kind": "Node", "name": self.cfg.name,
                 "uid": self.node_uid}]

    def _new_lease(self) -> Obj:
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.cfg.name, "namespace": LEASE_NAMESPACE,
                             **({"ownerReferences": self._owner()} if self.node_uid else {})},
                "spec": {"holderIdentity": self.cfg.name,
                         "leaseDurationSeconds": LEASE_DURATION,
                         "renewTime": now_rfc3339_micro()}}
