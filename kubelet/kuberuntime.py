"""Carrying out a pod's actions through the CRI (upstream kuberuntime_manager.go SyncPod,
kuberuntime_container.go startContainer/killContainer, kuberuntime_gc.go).

`sync_pod` reads the pod's runtime state, asks `compute_pod_actions` what to do and does it,
in upstream's order: kill the pod if its sandbox must go, create the sandbox (volumes first;
CNI ADD happens inside RunPodSandbox), kill containers that must restart, start the next
init container or else the app containers that should run. A container start walks the same
steps and failure reasons as upstream: CrashLoopBackOff (back-off), ErrImagePull /
ImagePullBackOff / ErrImageNeverPull (images.py), CreateContainerConfigError (environment,
mounts), CreateContainerError, RunContainerError, PostStartHookError. Those reasons are kept
per container (the reason cache) for the status.

`kill_pod` stops a pod's containers gracefully (preStop hook, then StopContainer with what
is left of the grace period: SIGTERM, SIGKILL at the end), in parallel, then its sandboxes
(CNI DEL). `remove_pod` removes everything of a pod. `garbage_collect` keeps the newest two
containers of each name (the current one and the previous, for `lastState` and `kubectl
logs --previous`) and drops sandboxes nothing refers to any more.

Nothing here keeps state about containers except the back-off and reason caches: the
runtime's labels and annotations are the record (runtimestate.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from kubelet import containers as C
from kubelet import labels as L
from kubelet.backoff import CRASH_LOOP_INITIAL, CRASH_LOOP_MAX, Backoff
from kubelet.envvars import EnvError, Lookup, PodContext, expand_command, resolve_env
from kubelet.handlers import run_action
from kubelet.images import ImageError, ImageManager
from kubelet.podactions import PodActions, compute_pod_actions
from kubelet.runtime.client import RuntimeClient, rpc_code
from kubelet.runtimestate import (
    EXITED,
    RUNNING,
    ContainerRecord,
    PodRuntimeStatus,
    pod_runtime_status,
)
from kubelet.status import Waiting, qos_class
from kubelet.tokenmanager import TokenManager
from kubelet.volumes import (
    HostVolume,
    VolumeError,
    container_mounts,
    pod_dir,
    remove_pod_dir,
    setup_volumes,
)
from proto.cri import api_pb2 as cri

log = logging.getLogger(__name__)
Obj = dict[str, Any]
EventFn = Callable[[Obj, str, str, str], None]  # (pod, type, reason, message)

MIN_GRACE = 2  # upstream minimumGracePeriodInSeconds: avoid needless SIGKILLs
KEEP_PER_CONTAINER = 2  # the current container and the previous one
VOLUME_REFRESH = 60.0  # seconds between refreshes of configMap/secret/downwardAPI volumes
TERMINATION_MESSAGE_MAX = 4096
FALLBACK_LOG_LINES = 80
HOOK_TIMEOUT = 120.0


class SyncError(Exception):
    """The sync did not complete; the worker retries with back-off."""


@dataclass
class NodeFacts:
    """What containers may learn about their node."""

    host_ips: list[str] = field(default_factory=list)
    allocatable: dict[str, str] = field(default_factory=dict)
    machine_memory: int = 0


def term_log_path(root: Path, uid: str, name: str, restart_count: int) -> Path:
    return pod_dir(root, uid) / "containers" / name / f"{restart_count}.termination-log"


def read_cri_log_tail(path: str, lines: int, limit: int) -> str:
    """The last lines of a CRI log file, message text only."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read()
    except OSError:
        return ""
    out: list[str] = []
    for raw in data.splitlines()[-lines:]:
        parts = raw.split(b" ", 3)
        if len(parts) == 4:
            out.append(parts[3].decode(errors="replace") + ("" if parts[2] == b"P" else "\n"))
    text = "".join(out)
    return text[-limit:]


class RuntimeManager:
    def __init__(self, cri: RuntimeClient, *, root_dir: Path, pod_logs_dir: str,
                 dns: C.DnsSettings, images: ImageManager, event: EventFn,
                 probe_verdict: Callable[[str], str | None], get_configmap: Lookup,
                 get_secret: Lookup, services: Callable[[], list[Obj]],
                 node: Callable[[], NodeFacts], wake: Callable[[str, float], None],
                 tokens: TokenManager | None = None) -> None:
        self.cri = cri
        self.root_dir = root_dir
        self.pod_logs_dir = pod_logs_dir
        self.dns = dns
        self.images = images
        self.event = event
        self.probe_verdict = probe_verdict
        self.get_configmap = get_configmap
        self.get_secret = get_secret
        self.services = services
        self.node = node
        self.wake = wake  # wake(uid, after_seconds): sync the pod again later
        self.tokens = tokens  # service-account tokens of projected volumes
        self.backoff = Backoff(CRASH_LOOP_INITIAL, CRASH_LOOP_MAX)
        self.reasons: dict[str, dict[str, Waiting]] = {}  # uid -> container -> reason
        self._volumes: dict[str, tuple[float, dict[str, HostVolume]]] = {}

    # --- state ----------------------------------------------------------------------------

    async def runtime_status(self, uid: str) -> PodRuntimeStatus:
        """The pod's runtime state, exited containers with their termination messages."""
        status = await pod_runtime_status(self.cri, uid)
        for record in status.containers:
            if record.state == EXITED:
                self._termination_message(uid, record)
        return status

    def _termination_message(self, uid: str, record: ContainerRecord) -> None:
        path = term_log_path(self.root_dir, uid, record.name, record.restart_count)
        try:
            text = path.read_bytes()[:TERMINATION_MESSAGE_MAX].decode(errors="replace")
        except OSError:
            text = ""
        policy = record.annotations.get(L.TERMINATION_MESSAGE_POLICY_ANNOTATION, "File")
        if not text and policy == "FallbackToLogsOnError" and record.exit_code != 0:
            text = read_cri_log_tail(record.log_path, FALLBACK_LOG_LINES,
                                     TERMINATION_MESSAGE_MAX)
        if text:
            record.message = text

    def waiting_reasons(self, uid: str) -> dict[str, Waiting]:
        return self.reasons.get(uid, {})

    def _set_reason(self, uid: str, name: str, reason: str, message: str = "") -> None:
        self.reasons.setdefault(uid, {})[name] = Waiting(reason, message)

    def _clear_reason(self, uid: str, name: str) -> None:
        self.reasons.get(uid, {}).pop(name, None)

    def forget(self, uid: str) -> None:
        self.reasons.pop(uid, None)
        self._volumes.pop(uid, None)
        self.backoff.forget_prefix(uid)
        if self.tokens is not None:
            self.tokens.delete_service_account_token(uid)

    # --- sync -----------------------------------------------------------------------------

    async def sync_pod(self, pod: Obj, status: PodRuntimeStatus | None = None
                       ) -> PodActions:
        """One sync from the pod's runtime state (read now unless given); the actions."""
        uid = pod["metadata"]["uid"]
        status = status or await self.runtime_status(uid)
        actions = compute_pod_actions(pod, status, self.probe_verdict)
        if actions.pod_finished:
            return actions  # the worker terminates the pod
        volumes = await self._volumes_for(pod, force=actions.create_sandbox)
        if actions.kill_pod:
            await self.kill_pod(pod, status, message_reason="sandbox changed")
        sandbox_id = actions.sandbox_id
        sandbox_config = C.sandbox_config(pod, actions.attempt, self.pod_logs_dir, self.dns)
        if actions.create_sandbox:
            sandbox_id = await self._create_sandbox(pod, sandbox_config)
        for cid, info in actions.to_kill.items():
            record = next((c for c in status.containers if c.id == cid), None)
            if record is not None and record.state == RUNNING:
                self.event(pod, "Normal", "Killing", info.message)
                await self.kill_container(pod, record, info.container)
        if actions.next_init is not None:
            await self._start(pod, actions.next_init, True, status, sandbox_id,
                              sandbox_config, volumes)
        else:
            for c in actions.to_start:
                await self._start(pod, c, False, status, sandbox_id, sandbox_config, volumes)
        return actions

    async def _volumes_for(self, pod: Obj, force: bool) -> dict[str, HostVolume]:
        uid = pod["metadata"]["uid"]
        cached = self._volumes.get(uid)
        now = time.monotonic()
        if cached is not None and not force and now - cached[0] < VOLUME_REFRESH:
            return cached[1]
        ctx = self._pod_context(pod, None)
        try:
            volumes = await setup_volumes(
                pod, self.root_dir, ctx, self.get_configmap, self.get_secret,
                self.tokens.get_service_account_token if self.tokens is not None else None)
        except VolumeError as e:
            self.event(pod, "Warning", "FailedMount", str(e))
            raise SyncError(str(e)) from e
        self._volumes[uid] = (now, volumes)
        return volumes

    def _pod_context(self, pod: Obj, pod_ips: list[str] | None) -> PodContext:
        node = self.node()
        if pod_ips is None:
            pod_ips = [p["ip"] for p in (pod.get("status") or {}).get("podIPs") or []
                       if isinstance(p, dict) and p.get("ip")]
        if (pod.get("spec") or {}).get("hostNetwork"):
            pod_ips = list(node.host_ips)
        return PodContext(host_ips=list(node.host_ips), pod_ips=pod_ips,
                          node_allocatable=node.allocatable)

    async def _create_sandbox(self, pod: Obj, config: cri.PodSandboxConfig) -> str:
        md = pod["metadata"]
        try:
            sandbox_id = await self.cri.run_pod_sandbox(config)
        except grpc.aio.AioRpcError as e:
            message = f"Failed to create pod sandbox: {_rpc_text(e)}"
            self.event(pod, "Warning", "FailedCreatePodSandBox", message)
            raise SyncError(message) from e
        log.info("sandbox created pod=%s/%s sandbox=%s attempt=%d", md.get("namespace"),
                 md["name"], sandbox_id[:12], config.metadata.attempt)
        ips: list[str] = []
        with contextlib.suppress(grpc.aio.AioRpcError):
            st = (await self.cri.pod_sandbox_status(sandbox_id)).status
            if st.network.ip:
                ips = [st.network.ip, *(a.ip for a in st.network.additional_ips)]
        if not (pod.get("spec") or {}).get("hostNetwork"):
            hosts = pod_dir(self.root_dir, md["uid"]) / "etc-hosts"
            hosts.parent.mkdir(parents=True, exist_ok=True)
            hosts.write_text(C.etc_hosts(pod, ips, self.dns))
        return sandbox_id

    # --- starting -------------------------------------------------------------------------

    def _backoff_key(self, pod: Obj, container: Obj) -> str:
        md = pod["metadata"]
        return f"{md['uid']}_{container['name']}_{L.container_hash(container)}"

    async def _start(self, pod: Obj, container: Obj, init: bool, status: PodRuntimeStatus,
                     sandbox_id: str, sandbox_config: cri.PodSandboxConfig,
                     volumes: dict[str, HostVolume]) -> bool:
        md = pod["metadata"]
        uid, name = md["uid"], container["name"]
        latest = status.latest(name, init)
        if latest is not None and latest.state == EXITED and latest.finished_at:
            key = self._backoff_key(pod, container)
            if self.backoff.in_backoff_since(key, latest.finished_at):
                delay = self.backoff.get(key)
                pod_desc = f"{md['name']}_{md.get('namespace')}({uid})"
                self._set_reason(uid, name, "CrashLoopBackOff",
                                 f"back-off {_duration(delay)} restarting failed "
                                 f"container={name} pod={pod_desc}")
                self.event(pod, "Warning", "BackOff",
                           f"Back-off restarting failed container {name} in pod {pod_desc}")
                self.wake(uid, self.backoff.remaining(key, latest.finished_at) + 0.1)
                return False
            self.backoff.next(key, latest.finished_at)
        restart_count = latest.restart_count + 1 if latest is not None else 0

        def event(type_: str, reason: str, message: str) -> None:
            self.event(pod, type_, reason, message)

        try:
            image_ref = await self.images.ensure(uid, container, event)
        except ImageError as e:
            self._set_reason(uid, name, e.reason, e.message)
            if e.reason in ("ErrImagePull", "ImagePullBackOff"):
                self.wake(uid, self.images.backoff.get(f"{uid}_{container.get('image')}")
                          or 10.0)
            return False
        try:
            config = await self._container_config(pod, container, init, image_ref,
                                                  restart_count, volumes)
        except (EnvError, VolumeError, OSError) as e:
            self._set_reason(uid, name, "CreateContainerConfigError", str(e))
            event("Warning", "Failed", f"Error: {e}")
            self.wake(uid, 10.0)
            return False
        target_name = container.get("targetContainerName")
        target = status.latest(str(target_name), init=False) if target_name else None
        if target is not None and target.state == RUNNING:
            # An ephemeral container aimed at another (kubectl debug --target) shares
            # that container's process namespace.
            ns = config.linux.security_context.namespace_options
            ns.pid, ns.target_id = cri.TARGET, target.id
        try:
            container_id = await self.cri.create_container(sandbox_id, config, sandbox_config)
        except grpc.aio.AioRpcError as e:
            self._set_reason(uid, name, "CreateContainerError", _rpc_text(e))
            event("Warning", "Failed", f"Error: {_rpc_text(e)}")
            self.wake(uid, 10.0)
            return False
        event("Normal", "Created", f"Created container {name}")
        try:
            await self.cri.start_container(container_id)
        except grpc.aio.AioRpcError as e:
            self._set_reason(uid, name, "RunContainerError", _rpc_text(e))
            event("Warning", "Failed", f"Error: {_rpc_text(e)}")
            return False
        event("Normal", "Started", f"Started container {name}")
        self._clear_reason(uid, name)
        post_start = (container.get("lifecycle") or {}).get("postStart")
        if post_start:
            ip = self._pod_ip(pod, status, sandbox_id)
            result = await run_action(self.cri, post_start, container, container_id, ip,
                                      HOOK_TIMEOUT)
            if not result.ok:
                message = f"PostStartHook failed: {result.output}"
                event("Warning", "FailedPostStartHook", message)
                record = ContainerRecord(id=container_id, name=name, sandbox_id=sandbox_id,
                                         state=RUNNING)
                await self.kill_container(pod, record, container, run_pre_stop=False)
                self._set_reason(uid, name, "PostStartHookError", message)
                return False
        return True

    def _pod_ip(self, pod: Obj, status: PodRuntimeStatus, sandbox_id: str) -> str:
        if (pod.get("spec") or {}).get("hostNetwork"):
            hosts = self.node().host_ips
            return hosts[0] if hosts else "127.0.0.1"
        for s in status.sandboxes:
            if s.id == sandbox_id and s.ips:
                return s.ips[0]
        ips = (pod.get("status") or {}).get("podIP")
        return str(ips or "")

    async def _container_config(self, pod: Obj, container: Obj, init: bool, image_ref: str,
                                restart_count: int, volumes: dict[str, HostVolume]
                                ) -> cri.ContainerConfig:
        md = pod["metadata"]
        uid = md["uid"]
        sandbox_ips: list[str] = []
        with contextlib.suppress(grpc.aio.AioRpcError):
            for s in await self.cri.list_pod_sandboxes({L.POD_UID_LABEL: uid},
                                                      state=cri.SANDBOX_READY):
                st = (await self.cri.pod_sandbox_status(s.id)).status
                if st.network.ip:
                    sandbox_ips = [st.network.ip, *(a.ip for a in st.network.additional_ips)]
        ctx = self._pod_context(pod, sandbox_ips)
        result = await resolve_env(pod, container, ctx, get_configmap=self.get_configmap,
                                   get_secret=self.get_secret, services=self.services())
        if result.invalid_keys:
            self.event(pod, "Warning", "InvalidEnvironmentVariableNames",
                       f"Keys [{', '.join(result.invalid_keys)}] from the EnvFrom configMap "
                       f"{md.get('namespace')}/{md['name']} were skipped since they are "
                       f"considered invalid environment variable names.")
        env = result.env
        mounts = container_mounts(container, volumes, dict(env))
        mounted = {m.container_path for m in mounts}
        spec = pod.get("spec") or {}
        hosts = pod_dir(self.root_dir, uid) / "etc-hosts"
        if not spec.get("hostNetwork") and hosts.exists() and "/etc/hosts" not in mounted:
            mounts.append(cri.Mount(container_path="/etc/hosts", host_path=str(hosts)))
        term_path = str(container.get("terminationMessagePath") or "/dev/termination-log")
        if term_path not in mounted:
            host_file = term_log_path(self.root_dir, uid, container["name"], restart_count)
            host_file.parent.mkdir(parents=True, exist_ok=True)
            host_file.write_bytes(b"")
            host_file.chmod(0o666)
            mounts.append(cri.Mount(container_path=term_path, host_path=str(host_file)))
        node = self.node()
        qos = str((pod.get("status") or {}).get("qosClass") or qos_class(pod))
        inputs = C.ContainerInputs(
            image_ref=image_ref, restart_count=restart_count, env=env,
            command=expand_command(list(container.get("command") or []), env),
            args=expand_command(list(container.get("args") or []), env), mounts=mounts,
            qos=qos, machine_memory=node.machine_memory)
        return C.container_config(pod, container, inputs, init)

    # --- stopping -------------------------------------------------------------------------

    async def kill_container(self, pod: Obj | None, record: ContainerRecord,
                             container: Obj | None, *, grace: int | None = None,
                             run_pre_stop: bool = True, pod_ip: str = "") -> None:
        """preStop hook, then StopContainer with the rest of the grace period."""
        if grace is None:
            grace = C.grace_period(pod) if pod is not None else \
                C.annotations_grace(record.annotations)
        pre_stop = ((container or {}).get("lifecycle") or {}).get("preStop") \
            or L.json_annotation(record.annotations, L.PRESTOP_ANNOTATION)
        started = time.monotonic()
        if run_pre_stop and pre_stop and grace > 0:
            ip = pod_ip or (str((pod.get("status") or {}).get("podIP") or "") if pod else "")
            try:
                result = await asyncio.wait_for(
                    run_action(self.cri, pre_stop, container, record.id, ip, grace), grace)
                ok, output = result.ok, result.output
            except TimeoutError:
                ok, output = False, f"did not finish within the grace period ({grace}s)"
            if not ok and pod is not None:
                self.event(pod, "Warning", "FailedPreStopHook",
                           f"PreStopHook failed: {output}")
        remaining = grace - int(time.monotonic() - started)
        timeout = 0 if grace == 0 else max(remaining, MIN_GRACE)
        try:
            await self.cri.stop_container(record.id, timeout)
        except grpc.aio.AioRpcError as e:
            if rpc_code(e) != grpc.StatusCode.NOT_FOUND:
                raise

    async def kill_pod(self, pod: Obj | None, status: PodRuntimeStatus, *,
                       grace: int | None = None, message_reason: str = "") -> None:
        """Stop every running container (in parallel, gracefully), then every sandbox."""
        running = status.running()
        ip = status.pod_ips[0] if status.pod_ips else ""
        jobs: list[Awaitable[None]] = []
        for record in running:
            spec = C.container_spec(pod, record.name)[0] if pod is not None else None
            if pod is not None:
                self.event(pod, "Normal", "Killing", f"Stopping container {record.name}")
            jobs.append(self.kill_container(pod, record, spec, grace=grace, pod_ip=ip))
        results = await asyncio.gather(*jobs, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        for s in status.sandboxes:
            if s.ready:
                try:
                    await self.cri.stop_pod_sandbox(s.id)
                except grpc.aio.AioRpcError as e:
                    if rpc_code(e) != grpc.StatusCode.NOT_FOUND:
                        errors.append(e)
        if errors:
            raise SyncError(f"killing pod {status.namespace}/{status.name}: {errors[0]}")

    async def remove_pod(self, uid: str, status: PodRuntimeStatus | None = None) -> None:
        """Remove every container and sandbox of the pod, and its directories."""
        status = status or await pod_runtime_status(self.cri, uid)
        for record in status.containers:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.cri.remove_container(record.id)
        for s in status.sandboxes:
            await self.cri.remove_pod_sandbox(s.id)
        if status.namespace and status.name:
            shutil.rmtree(os.path.join(self.pod_logs_dir,
                                       f"{status.namespace}_{status.name}_{uid}"),
                          ignore_errors=True)
        remove_pod_dir(self.root_dir, uid)  # unmounts its tmpfs volumes first
        self.forget(uid)

    async def garbage_collect(self, status: PodRuntimeStatus) -> None:
        """Keep the newest KEEP_PER_CONTAINER containers per name; drop sandboxes that are
        not the newest and hold no container any more."""
        removed: set[str] = set()
        seen: dict[tuple[str, bool], int] = {}
        for record in status.containers:  # newest first
            key = (record.name, record.is_init)
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > KEEP_PER_CONTAINER and record.state == EXITED:
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await self.cri.remove_container(record.id)
                    removed.add(record.id)
        used = {c.sandbox_id for c in status.containers if c.id not in removed}
        for s in status.sandboxes[1:]:
            if not s.ready and s.id not in used:
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await self.cri.remove_pod_sandbox(s.id)


def _rpc_text(e: grpc.aio.AioRpcError) -> str:
    code = e.code()
    name = code.name.title().replace("_", "") if code is not None else "Unknown"
    return f"rpc error: code = {name} desc = {e.details()}"


def _duration(seconds: float) -> str:
    """Go's time.Duration formatting for whole seconds and minutes: 10s, 1m20s, 5m0s."""
    total = round(seconds)
    if total < 60:
        return f"{total}s"
    return f"{total // 60}m{total % 60}s"
