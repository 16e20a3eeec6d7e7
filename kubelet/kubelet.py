"""The kubelet: one per node, wiring the parts together (upstream pkg/kubelet/kubelet.go).

```
 apiserver ── pods (spec.nodeName=<node>) ──▶ informer ─┐
 --pod-manifest-path ── static pods ────────────────────┼─▶ pod workers (one per pod)
 relist (PLEG, 1 s) · probes · back-off timers ── wake ─┘      │ sync / terminate / clean up
                                                              ▼
                     kuberuntime.RuntimeManager ── CRI (RuntimeClient) ──▶ runtime service
                                                              │
                     status manager ── pods/status ──▶ apiserver     events ──▶ apiserver
 node status + Lease (nodestatus.py) ──▶ apiserver       kubelet server (:10250, server.py)
```

Named root tasks (`kubelet:*`), all cancelled on shutdown; running containers are left
running, as upstream's kubelet leaves them: a restarted kubelet re-adopts them (their state
is in the runtime) and restarts none that is healthy. Housekeeping (every 2 s, once every
pod source has been read) kills and removes containers of pods that no longer exist, and
keeps mirror pods in step with static pods.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import time
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web

from api.errors import Conflict, NotFound, StatusError
from api.resources import CATALOGUE
from client.events import EventRecorder
from client.informer import Informer
from client.rest import ApiClient, ApiConnectionError
from kubelet import containers as C
from kubelet import labels as L
from kubelet import network
from kubelet.auth import ApiReviewer, build_auth, ensure_self_signed, serving_ssl_context
from kubelet.images import ImageManager
from kubelet.kuberuntime import NodeFacts, RuntimeManager, SyncError
from kubelet.nodestatus import NodeConfig, NodeStatusManager, allocatable
from kubelet.options import Options
from kubelet.podactions import PodActions
from kubelet.podworkers import PodWorkers, is_deleting
from kubelet.prober import ProbeManager, ProbeTarget
from kubelet.runtime.client import RuntimeClient
from kubelet.runtimestate import EXITED, RUNNING, PodRuntimeStatus, RelistEntry, relist
from kubelet.server import start_kubelet_server
from kubelet.staticpods import mirror_hash, mirror_pod, read_manifests
from kubelet.status import StatusInputs, generate_pod_status
from kubelet.statusmanager import StatusManager, base_status
from kubelet.tokenmanager import TokenManager, api_token_requester

log = logging.getLogger(__name__)
Obj = dict[str, Any]

PODS = CATALOGUE.require("pods")
SERVICES = CATALOGUE.require("services")
CONFIGMAPS = CATALOGUE.require("configmaps")
SECRETS = CATALOGUE.require("secrets")
UID_INDEX = "uid"
RELIST_PERIOD = 1.0
HOUSEKEEPING_PERIOD = 2.0
IPAMD_WAIT = 20.0
LOOPBACK = "127.0.0.1"  # where the kubelet server goes when the node IP is not local


def _uid_index(obj: Obj) -> list[str]:
    uid = (obj.get("metadata") or {}).get("uid")
    return [uid] if uid else []


class KubeletProvider:
    """What the kubelet server (server.py) needs from the kubelet."""

    def __init__(self, kubelet: Kubelet) -> None:
        self._kubelet = kubelet
        self.node_name = kubelet.node_name
        self.runtime: RuntimeClient = kubelet.cri

    def list_pods(self) -> list[Obj]:
        return self._kubelet.running_pods()

    async def find_container(self, namespace: str, pod: str, container: str) -> str | None:
        """The running instance, else the newest one that ran."""
        records = self._kubelet.container_records(namespace, pod, container)
        running = [r for r in records if r.state == RUNNING]
        ran = [r for r in records if r.state in (RUNNING, EXITED)]
        chosen = running or ran or records
        return chosen[0].id if chosen else None

    async def previous_container(self, namespace: str, pod: str, container: str
                                 ) -> str | None:
        """The instance before the current one (its `lastState`)."""
        records = self._kubelet.container_records(namespace, pod, container)
        previous = [r for r in records[1:] if r.state == EXITED]
        return previous[0].id if previous else None


class Kubelet:
    def __init__(self, opts: Options, api: ApiClient, cri: RuntimeClient) -> None:
        self.opts = opts
        self.api = api
        self.cri = cri
        self.node_name = opts.node_name
        self.node_cfg = NodeConfig(
            name=opts.node_name, instance_type=opts.instance_type, zone=opts.zone,
            region=opts.region, internal_ip=opts.node_ip or "127.0.0.1", port=opts.port,
            max_pods=opts.max_pods or 110, root_dir=str(opts.root_dir),
            extra_labels=dict(opts.node_labels))
        self.recorder = EventRecorder(api, "kubelet", opts.node_name)
        self.pod_informer = Informer(api, PODS, field_selector=f"spec.nodeName={opts.node_name}")
        self.pod_informer.add_index(UID_INDEX, _uid_index)
        self.svc_informer = Informer(api, SERVICES)
        self.static: dict[str, Obj] = {}
        self.runtime_cache: dict[str, PodRuntimeStatus] = {}
        self.workers = PodWorkers(self, resync=opts.sync_frequency)
        self.images = ImageManager(cri)
        self.probes = ProbeManager(cri, self._probe_target, self.event, self.workers.wake)
        self.statuses = StatusManager(api, self._api_pod)
        self.node_status = NodeStatusManager(api, cri, self.node_cfg)
        self.tokens = TokenManager(api_token_requester(api))
        self.runtime = RuntimeManager(
            cri, root_dir=opts.root_dir, pod_logs_dir=str(opts.logs_dir), dns=self._dns(),
            images=self.images, event=self.event, probe_verdict=self.probes.verdict,
            get_configmap=self._getter(CONFIGMAPS), get_secret=self._getter(SECRETS),
            services=self.svc_informer.store.list, node=self._node_facts,
            wake=self.workers.wake, tokens=self.tokens)
        self._tasks: list[asyncio.Task[Any]] = []
        self._static_read = opts.pod_manifest_path is None
        self._relist: dict[str, RelistEntry] = {}
        self._relisted = False
        self._orphans: dict[str, asyncio.Task[None]] = {}
        self._mirror_busy: set[str] = set()
        self._network_known = False
        self._placed_address = ""
        self._runner: web.AppRunner | None = None

    # --- facts ----------------------------------------------------------------------------

    @property
    def host_ips(self) -> list[str]:
        return [self.node_cfg.internal_ip]

    def _dns(self) -> C.DnsSettings:
        try:
            text = Path(self.opts.resolv_conf).read_text()
        except OSError:
            text = ""
        servers, searches, options = C.parse_resolv_conf(text)
        return C.DnsSettings(cluster_dns=list(self.opts.cluster_dns),
                             cluster_domain=self.opts.cluster_domain, host_servers=servers,
                             host_searches=searches, host_options=options)

    def _node_facts(self) -> NodeFacts:
        machine = self.node_status.machine
        return NodeFacts(host_ips=self.host_ips,
                         allocatable=allocatable(machine, self.node_cfg.max_pods),
                         machine_memory=machine.memory)

    def _getter(self, resource: Any) -> Any:
        async def get(namespace: str, name: str) -> Obj | None:
            try:
                return await self.api.get(resource, name, namespace)
            except NotFound:
                return None
        return get

    # --- pods -----------------------------------------------------------------------------

    def _api_pod(self, uid: str) -> Obj | None:
        """The API object a pod's status goes to (the mirror pod of a static pod)."""
        static = self.static.get(uid)
        if static is not None:
            md = static["metadata"]
            mirror = self.pod_informer.store.get(f"{md['namespace']}/{md['name']}")
            return mirror if mirror is not None and mirror_hash(mirror) == uid else None
        found = self.pod_informer.store.by_index(UID_INDEX, uid)
        return found[0] if found else None

    def event(self, pod: Obj, type_: str, reason: str, message: str) -> None:
        target = pod
        if L.is_static_pod(pod):
            target = self._api_pod(pod["metadata"]["uid"]) or pod
        target = target if target.get("kind") else {**target, "kind": "Pod", "apiVersion": "v1"}
        self.recorder.event(target, type_, reason, message)

    def running_pods(self) -> list[Obj]:
        """The pods this kubelet runs, as API objects with their latest status."""
        out = []
        for pod in self.workers.pods():
            status = self.statuses.latest(pod["metadata"]["uid"]) or pod.get("status") or {}
            out.append({**pod, "kind": "Pod", "apiVersion": "v1", "status": status})
        return out

    def container_records(self, namespace: str, name: str, container: str) -> list[Any]:
        for pod in self.workers.pods():
            md = pod["metadata"]
            if md.get("namespace") == namespace and md.get("name") == name:
                rt = self.runtime_cache.get(md["uid"])
                return rt.by_name(container) if rt is not None else []
        return []

    def _probe_target(self, uid: str, name: str) -> ProbeTarget | None:
        worker = self.workers.get(uid)
        if worker is None or worker.removed:
            return None
        pod = worker.pod
        spec, _ = C.container_spec(pod, name)
        if spec is None:
            return None
        rt = self.runtime_cache.get(uid)
        record = rt.latest(name, init=False) if rt is not None else None
        if (pod.get("spec") or {}).get("hostNetwork"):
            ip = self.host_ips[0]
        else:
            ip = rt.pod_ips[0] if rt is not None and rt.pod_ips else ""
        return ProbeTarget(pod, spec, record, ip)

    def _on_pod(self, pod: Obj, old: Obj | None = None) -> None:
        if L.is_mirror_pod(pod):
            # The API's view of a static pod: never run it; it takes the static pod's status.
            self.statuses.resync(mirror_hash(pod))
            return
        # A change of status only (mostly our own writes) is no reason to sync again
        # (upstream's config source compares pods the same way).
        self.workers.update(pod, wake=old is None or _semantic(old) != _semantic(pod))

    def _on_pod_delete(self, pod: Obj) -> None:
        if L.is_mirror_pod(pod):
            return
        self.workers.remove(pod["metadata"]["uid"], last=pod)

    def _report(self, pod: Obj, rt: PodRuntimeStatus, terminal: bool = False) -> None:
        """Compute the pod's status from its runtime state and hand it to the manager."""
        uid = pod["metadata"]["uid"]
        api_obj = self._api_pod(uid)
        api_status = (api_obj or {}).get("status") if L.is_static_pod(pod) else \
            (api_obj or pod).get("status")
        view = {**pod, "status": base_status(api_status, self.statuses.latest(uid))}
        inputs = StatusInputs(host_ips=self.host_ips, readiness=self.probes.readiness,
                              started=self.probes.started,
                              waiting=self.runtime.waiting_reasons(uid),
                              pod_is_terminal=terminal, now=time.time())
        self.statuses.set_status(uid, generate_pod_status(view, rt, inputs))

    async def _refresh(self, uid: str) -> PodRuntimeStatus:
        rt = await self.runtime.runtime_status(uid)
        self.runtime_cache[uid] = rt
        return rt

    # --- the pod worker's steps (PodHandler) ---------------------------------------------

    async def sync_pod(self, pod: Obj) -> bool:
        uid = pod["metadata"]["uid"]
        self.probes.sync_pod(pod)
        rt = await self._refresh(uid)
        self._report(pod, rt)
        error: SyncError | None = None
        actions: PodActions | None = None
        try:
            actions = await self.runtime.sync_pod(pod, rt)
        except SyncError as e:
            error = e
        if actions is None or not actions.nothing_to_do:
            # Something was started or stopped: report the state it led to. (Most syncs
            # have nothing to do; re-reading the runtime for them would only cost dockerd.)
            rt = await self._refresh(uid)
        self._report(pod, rt)
        if error is not None:
            raise error
        assert actions is not None
        if actions.pod_finished:
            return True
        await self.runtime.garbage_collect(rt)
        return False

    async def terminate_pod(self, pod: Obj, removed: bool) -> None:
        uid = pod["metadata"]["uid"]
        rt = await self._refresh(uid)
        grace = C.grace_period(pod) if (removed or is_deleting(pod)) else None
        md = pod["metadata"]
        log.info("terminating pod %s/%s uid=%s grace=%s", md.get("namespace"), md["name"],
                 uid, grace)
        await self.runtime.kill_pod(pod, rt, grace=grace)
        await self.probes.remove_pod(uid)
        rt = await self._refresh(uid)
        if not removed:
            self._report(pod, rt, terminal=True)
            await self.statuses.sync_now(uid)

    async def terminated_pod(self, pod: Obj, removed: bool) -> bool:
        uid = pod["metadata"]["uid"]
        md = pod["metadata"]
        if removed:
            rt = await self._refresh(uid)
            await self.runtime.remove_pod(uid, rt)
            self.statuses.forget(uid)
            self.runtime_cache.pop(uid, None)
            log.info("pod cleaned up %s/%s uid=%s", md.get("namespace"), md["name"], uid)
            return True
        if is_deleting(pod) and not L.is_static_pod(pod):
            await self.statuses.sync_now(uid)
            # Every container is stopped and the status says so: confirm the deletion.
            with contextlib.suppress(NotFound, Conflict):
                await self.api.delete(PODS, md["name"], md.get("namespace"),
                                      grace_period_seconds=0, preconditions={"uid": uid})
        return False

    # --- static and mirror pods ----------------------------------------------------------

    def _apply_static(self, pods: dict[str, Obj]) -> None:
        for uid in [u for u in self.static if u not in pods]:
            log.info("static pod removed %s uid=%s", self.static[uid]["metadata"]["name"], uid)
            self.workers.remove(uid)
            del self.static[uid]
        for uid, pod in pods.items():
            if uid not in self.static:
                log.info("static pod added %s uid=%s", pod["metadata"]["name"], uid)
                self.static[uid] = pod
                self.workers.update(pod)

    async def _static_loop(self) -> None:
        assert self.opts.pod_manifest_path is not None
        reported: set[str] = set()
        while True:
            pods, errors = await asyncio.to_thread(read_manifests, self.opts.pod_manifest_path,
                                                   self.node_name)
            for e in errors:
                if e not in reported:
                    log.warning("bad static pod manifest: %s", e)
            reported = set(errors)
            self._apply_static(pods)
            self._static_read = True
            await asyncio.sleep(self.opts.file_check_frequency)

    async def _sync_mirror_pods(self) -> None:
        if not self.node_status.node_uid:
            return
        mirrors = {(p["metadata"].get("namespace"), p["metadata"]["name"]): p
                   for p in self.pod_informer.store.list() if L.is_mirror_pod(p)}
        wanted: dict[tuple[str, str], Obj] = {}
        for uid, pod in self.static.items():
            worker = self.workers.get(uid)
            if worker is None or worker.removed:
                continue
            md = pod["metadata"]
            wanted[(md["namespace"], md["name"])] = pod
        for key, pod in wanted.items():
            mirror = mirrors.get(key)
            if mirror is None:
                await self._mirror_call(key, self.api.create(
                    PODS, mirror_pod(pod, self.node_name, self.node_status.node_uid), key[0]))
            elif mirror_hash(mirror) != pod["metadata"]["uid"] or is_deleting(mirror):
                await self._delete_mirror(mirror)
        for key, mirror in mirrors.items():
            if key not in wanted:
                await self._delete_mirror(mirror)

    async def _delete_mirror(self, mirror: Obj) -> None:
        md = mirror["metadata"]
        await self._mirror_call((md["namespace"], md["name"]), self.api.delete(
            PODS, md["name"], md["namespace"], grace_period_seconds=0,
            preconditions={"uid": md["uid"]}))

    async def _mirror_call(self, key: tuple[str, str], call: Any) -> None:
        name = f"{key[0]}/{key[1]}"
        if name in self._mirror_busy:
            call.close()
            return
        self._mirror_busy.add(name)
        try:
            await call
        except (NotFound, Conflict) as e:
            log.debug("mirror pod %s: %s", name, e)
        except StatusError as e:
            if e.reason != "AlreadyExists":
                log.warning("mirror pod %s: %s", name, e)
        except ApiConnectionError as e:
            log.warning("mirror pod %s: %s", name, e)
        finally:
            self._mirror_busy.discard(name)

    # --- relist and housekeeping ---------------------------------------------------------

    async def _relist_loop(self) -> None:
        while True:
            try:
                current = await relist(self.cri)
            except grpc.aio.AioRpcError as e:
                log.warning("relist failed: %s", e.details() or e.code())
                await asyncio.sleep(RELIST_PERIOD)
                continue
            for uid, entry in current.items():
                if self._relist.get(uid) != entry:
                    self.workers.wake(uid)
            for uid in self._relist.keys() - current.keys():
                self.workers.wake(uid)
            self._relist = current
            self._relisted = True
            await asyncio.sleep(RELIST_PERIOD)

    @property
    def sources_ready(self) -> bool:
        return self.pod_informer.has_synced and self._static_read and self._relisted

    async def _housekeeping_loop(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_PERIOD)
            if not self.sources_ready:
                continue
            for uid in set(self._relist) - set(self.workers.workers) - set(self._orphans):
                self._orphans[uid] = asyncio.create_task(self._remove_orphan(uid),
                                                         name=f"kubelet:orphan:{uid}")
            try:
                await self._sync_mirror_pods()
            except Exception:
                log.exception("mirror pod sync failed")
            self.runtime.backoff.gc()
            self.images.backoff.gc()
            self.tokens.cleanup()

    async def _remove_orphan(self, uid: str) -> None:
        """Containers of a pod no source has: stop them as their pod would have been
        stopped (grace period and preStop from their annotations), then remove them."""
        try:
            rt = await self.runtime.runtime_status(uid)
            if rt.is_empty or uid in self.workers.workers:
                return
            log.info("removing orphaned pod %s/%s uid=%s (%d containers)", rt.namespace,
                     rt.name, uid, len(rt.containers))
            await self.runtime.kill_pod(None, rt)
            await self.runtime.remove_pod(uid)
        except (SyncError, grpc.aio.AioRpcError) as e:
            log.warning("removing orphaned pod uid=%s failed: %s", uid, e)
        finally:
            self._orphans.pop(uid, None)

    # --- network and node ----------------------------------------------------------------

    async def _discover_network(self, wait: float) -> bool:
        """Ask ipamd for the node's IP and max pods; False when it does not answer."""
        deadline = time.monotonic() + wait
        socket_path = self.opts.ipamd_socket_path
        while True:
            status = await network.ipamd_status(socket_path)
            if status is not None:
                break
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(1.0)
        ip = self.opts.node_ip or network.primary_ip(status) or self.node_cfg.internal_ip
        self.node_cfg.internal_ip = ip
        if not self.opts.max_pods and status.max_pods > 0:
            self.node_cfg.max_pods = status.max_pods
        if not self.opts.node_ip and self.opts.vpc_bridge:
            placed = await asyncio.to_thread(network.ensure_node_address,
                                             self.opts.vpc_bridge, ip)
            if placed:
                self._placed_address = ip
            else:
                log.info("node address %s is not on bridge %s (no bridge yet?)", ip,
                         self.opts.vpc_bridge)
        self._network_known = True
        log.info("node network from ipamd: ip=%s maxPods=%d vpc=%s", ip,
                 self.node_cfg.max_pods, status.vpc_cidr)
        return True

    async def _network_loop(self) -> None:
        """Keep trying ipamd when it was not there at start; re-place the node address."""
        while True:
            await asyncio.sleep(5.0 if not self._network_known else 30.0)
            before = (self.node_cfg.internal_ip, self.node_cfg.max_pods)
            if await self._discover_network(0) and \
                    before != (self.node_cfg.internal_ip, self.node_cfg.max_pods):
                self.node_status.poke()

    async def _wait_runtime(self) -> None:
        delay = 0.5
        while True:
            try:
                await self.cri.wait_ready(timeout=5.0)
                v = await self.cri.version()
                log.info("container runtime %s %s (CRI %s) at %s", v.runtime_name,
                         v.runtime_version, v.version, self.opts.container_runtime_endpoint)
                return
            except (TimeoutError, grpc.aio.AioRpcError) as e:
                log.warning("waiting for the container runtime at %s: %s",
                            self.opts.container_runtime_endpoint, e or "not answering")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _start_server(self) -> None:
        """The :10250 server (server.py): HTTPS on the node's address only, every caller
        authenticated and authorized (auth.py); its bound port goes into the Node's
        daemonEndpoints."""
        opts = self.opts
        ip = self.node_cfg.internal_ip
        if opts.tls_cert_file:
            cert, key = opts.tls_cert_file, opts.tls_private_key_file
        else:
            paths = await asyncio.to_thread(ensure_self_signed, opts.pki_dir, self.node_name,
                                            [ip])
            cert, key = str(paths[0]), str(paths[1])
        ssl_context = await asyncio.to_thread(serving_ssl_context, cert, key,
                                              opts.client_ca_file)
        auth = build_auth(
            node_name=self.node_name, reviewer=ApiReviewer(self.api),
            anonymous=opts.anonymous_auth, token_webhook=opts.token_webhook,
            token_ttl=opts.authentication_token_webhook_cache_ttl,
            authorization_mode=opts.authorization_mode,
            allowed_ttl=opts.authorization_webhook_cache_authorized_ttl,
            denied_ttl=opts.authorization_webhook_cache_unauthorized_ttl)
        if not (opts.client_ca_file or opts.token_webhook or opts.anonymous_auth):
            log.warning("kubelet server: no --client-ca-file, no token webhook and no "
                        "anonymous auth: every request will be refused")
        provider = KubeletProvider(self)
        docker_socket = opts.docker_endpoint.removeprefix("unix://")
        host = opts.address or ip
        try:
            self._runner, port = await start_kubelet_server(
                provider, host, opts.port, ssl_context=ssl_context, auth=auth,
                docker_socket=docker_socket)
        except OSError as e:
            # The node IP may not be on this host (no VPC bridge): loopback, never 0.0.0.0.
            if opts.address or host == LOOPBACK or e.errno != errno.EADDRNOTAVAIL:
                raise
            log.warning("kubelet server: node address %s is not on this host; serving on %s",
                        host, LOOPBACK)
            self._runner, port = await start_kubelet_server(
                provider, LOOPBACK, opts.port, ssl_context=ssl_context, auth=auth,
                docker_socket=docker_socket)
        self.node_cfg.port = port

    # --- lifetime -------------------------------------------------------------------------

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=f"kubelet:{name}")
        task.add_done_callback(_log_failure)
        self._tasks.append(task)

    async def run(self, stop: asyncio.Event) -> None:
        self.opts.root_dir.mkdir(parents=True, exist_ok=True)
        self.opts.logs_dir.mkdir(parents=True, exist_ok=True)
        await self._wait_runtime()
        if not await self._discover_network(IPAMD_WAIT):
            log.warning("ipamd does not answer at %s: InternalIP %s, max pods %d until it "
                        "does", self.opts.ipamd_socket_path, self.node_cfg.internal_ip,
                        self.node_cfg.max_pods)
        try:
            await self._start_server()
            self._spawn(self._network_loop(), "network")
            self._spawn(self.node_status.register(), "register")
            self._spawn(self.node_status.run_status_loop(), "node-status")
            self._spawn(self.node_status.run_lease_loop(), "lease")
            self._spawn(self.statuses.run(), "status-manager")
            self.pod_informer.add_handler(on_add=self._on_pod,
                                          on_update=lambda old, new: self._on_pod(new, old),
                                          on_delete=self._on_pod_delete)
            self.pod_informer.start()
            self.svc_informer.start()
            if self.opts.pod_manifest_path is not None:
                self.opts.pod_manifest_path.mkdir(parents=True, exist_ok=True)
                self._spawn(self._static_loop(), "static-pods")
            self._spawn(self._relist_loop(), "relist")
            self._spawn(self._housekeeping_loop(), "housekeeping")
            log.info("kubelet running node=%s", self.node_name)
            await stop.wait()
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        tasks = [*self._tasks, *self._orphans.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.probes.stop()
        await self.workers.stop()
        await self.pod_informer.stop()
        await self.svc_informer.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._placed_address:
            await asyncio.to_thread(network.remove_node_address, self.opts.vpc_bridge,
                                    self._placed_address)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.recorder.flush(), 2.0)
        log.info("kubelet stopped node=%s (containers keep running)", self.node_name)


def _semantic(pod: Obj) -> tuple[Any, ...]:
    """What of a pod the kubelet acts on: spec, labels, annotations, deletion."""
    md = pod.get("metadata") or {}
    return (pod.get("spec"), md.get("labels"), md.get("annotations"),
            md.get("deletionTimestamp"), md.get("deletionGracePeriodSeconds"))


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s failed", task.get_name(), exc_info=task.exception())
