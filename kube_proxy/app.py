"""kube-proxy as a process: informers feed a sync runner; the per-kernel lock decides who
programs; a proxier (iptables, or userspace as the fallback) applies snapshots.

    informer event ──▶ dirty Services ──▶ runner.request() ──(≤10 ms burst)──▶ _sync(full)
        partial: SnapshotBuilder.update(the dirty Services)  full: .rebuild(caches)
        proxier.sync(snapshot, full)

Named root tasks: `kube-proxy:programmer` (lock, then the sync loop), the informers', and
the userspace proxier's own; all are cancelled on SIGINT/SIGTERM before the cleanup.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from api.resources import CATALOGUE
from client.informer import Informer, SharedInformerFactory
from client.rest import ApiClient
from kube_proxy import netif
from kube_proxy.healthz import HealthState, make_app
from kube_proxy.iptables import Iptables, IptablesError, probe
from kube_proxy.iptables_proxier import IptablesProxier
from kube_proxy.lock import KernelLock, default_lock_path
from kube_proxy.model import (
    Snapshot,
    SnapshotBuilder,
    describe_changes,
    service_key,
    slice_service_key,
)
from kube_proxy.options import Options
from kube_proxy.proxier import Proxier
from kube_proxy.rules import ProxyConfig
from kube_proxy.runner import SyncRunner
from kube_proxy.userspace import UserspaceProxier

log = logging.getLogger("kube_proxy")

Obj = dict[str, Any]
LOCK_RETRY = 1.0
LAST_OUT_WAIT = 2.0  # how long a stopping standby waits to see whether the holder stops too


SERVICES = CATALOGUE.require("services")
ENDPOINTSLICES = CATALOGUE.require("endpointslices")
# Services and EndpointSlices indexed by the service key (namespace/name) they belong to.
SERVICE_KEY_INDEX = "kube-proxy:service-key"


def _service_keys(svc: Obj) -> list[str]:
    return [service_key(svc)]


def _slice_keys(eps_slice: Obj) -> list[str]:
    key = slice_service_key(eps_slice)
    return [key] if key else []


async def select_proxier(opts: Options) -> Proxier:
    """The proxier for --proxy-mode; iptables falls back to userspace, saying why."""
    ipt = Iptables()
    if opts.proxy_mode == "iptables":
        reason = await probe(ipt)
        if reason is None:
            config = ProxyConfig(cluster_cidr=opts.cluster_cidr,
                                 masquerade_all=opts.masquerade_all,
                                 masquerade_mark=opts.masquerade_mark,
                                 localhost_nodeports=opts.localhost_nodeports)
            return IptablesProxier(ipt, config, opts.nodeport_addresses,
                                   opts.userspace_interface)
        log.warning("iptables cannot be used (%s): falling back to the userspace mode", reason)
    return UserspaceProxier(opts.userspace_interface, opts.nodeport_addresses, ipt)


async def cleanup_all(opts: Options) -> int:
    """`--cleanup`: remove our iptables rules and the userspace interface; 0 on success."""
    code = 0
    ipt = Iptables()
    if ipt.missing():
        log.info("iptables not installed: no rules to remove")
    else:
        try:
            deleted = await ipt.cleanup()
            log.info("removed kube-proxy's iptables rules (%d chains)", deleted)
        except IptablesError as e:
            log.error("cannot remove the iptables rules: %s", e)
            code = 1
    try:
        if await netif.delete_link(opts.userspace_interface):
            log.info("removed interface %s", opts.userspace_interface)
    except netif.NetifError as e:
        log.error("cannot remove interface %s: %s", opts.userspace_interface, e)
        code = 1
    return code


class KubeProxy:
    def __init__(self, opts: Options, api: ApiClient, proxier: Proxier,
                 lock: KernelLock | None = None) -> None:
        self.opts = opts
        self.api = api
        self.proxier = proxier
        self.lock = lock or KernelLock(opts.lock_file or default_lock_path())
        self.factory = SharedInformerFactory(api)
        self.services: Informer = self.factory.informer_for(SERVICES)
        self.slices: Informer = self.factory.informer_for(ENDPOINTSLICES)
        self.services.add_index(SERVICE_KEY_INDEX, _service_keys)
        self.slices.add_index(SERVICE_KEY_INDEX, _slice_keys)
        for informer, keys in ((self.services, _service_keys), (self.slices, _slice_keys)):
            informer.add_handler(*self._handlers(keys))
        self.runner = SyncRunner(self._sync, period=opts.sync_period,
                                 min_interval=opts.min_sync_period)
        self.health = HealthState(mode=proxier.mode)
        self.snapshots = SnapshotBuilder()
        self.last_snapshot: Snapshot | None = None
        self._dirty: set[str] = set()  # service keys changed since the last snapshot
        self._skipped: dict[str, str] = {}

    # --- events -------------------------------------------------------------------------------

    def _changed(self, keys: list[str]) -> None:
        self._dirty.update(keys)
        if self.health.pending_since is None:
            self.health.pending_since = time.time()
        self.runner.request()

    def _handlers(self, keys: Callable[[Obj], list[str]]
                  ) -> tuple[Callable[[Obj], None], Callable[[Obj, Obj], None],
                             Callable[[Obj], None]]:
        """Event handlers marking the Services an object belongs to (a slice whose label
        changed: the old and the new one) as changed."""

        def on_add(obj: Obj) -> None:
            self._changed(keys(obj))

        def on_update(old: Obj, new: Obj) -> None:
            if (old.get("metadata") or {}).get("resourceVersion") != \
                    (new.get("metadata") or {}).get("resourceVersion"):
                self._changed(keys(old) + keys(new))

        def on_delete(obj: Obj) -> None:
            self._changed(keys(obj))

        return on_add, on_update, on_delete

    # --- sync ---------------------------------------------------------------------------------

    def _snapshot(self, full: bool) -> Snapshot:
        """A full sync rebuilds the snapshot from every cached object; a partial one
        recomputes only the Services events named since the last snapshot."""
        dirty, self._dirty = self._dirty, set()
        if full or self.snapshots.snapshot is None:
            return self.snapshots.rebuild(self.services.store.list(), self.slices.store.list())
        return self.snapshots.update(
            (key, next(iter(self.services.store.by_index(SERVICE_KEY_INDEX, key)), None),
             self.slices.store.by_index(SERVICE_KEY_INDEX, key))
            for key in sorted(dirty))

    async def _sync(self, full: bool) -> None:
        pending, self.health.pending_since = self.health.pending_since, None
        try:
            snapshot = self._snapshot(full)
            await self.proxier.sync(snapshot, full)
        except BaseException:
            if self.health.pending_since is None:
                self.health.pending_since = pending or time.time()
            raise
        for key, what in describe_changes(self.last_snapshot, snapshot):
            log.info("service=%s %s", key, what)
        changed = snapshot.changed_services_since(
            self.last_snapshot.generation if self.last_snapshot else None)
        for key in snapshot.skipped if changed is None else sorted(changed):
            reason = snapshot.skipped.get(key)
            if reason and self._skipped.get(key) != reason:
                log.info("skipping service=%s reason=%s", key, reason)
        self._skipped = dict(snapshot.skipped)
        self.last_snapshot = snapshot
        self.health.last_synced = time.time()

    # --- the lock -----------------------------------------------------------------------------

    async def _acquire(self) -> None:
        announced: int | None = -1
        waited = False
        while not self.lock.try_acquire():
            self.lock.stand_by()
            holder = self.lock.holder_pid()
            if holder != announced:
                log.info("another kube-proxy (pid %s) programs this kernel's rules; standing "
                         "by lock=%s", holder if holder is not None else "?", self.lock.path)
                announced = holder
            self.health.role = "standby"
            waited = True
            await asyncio.sleep(LOCK_RETRY)
        if waited:
            log.info("took over programming this kernel's rules lock=%s mode=%s",
                     self.lock.path, self.proxier.mode)
        else:
            log.info("programming this kernel's rules lock=%s mode=%s", self.lock.path,
                     self.proxier.mode)

    async def _program(self) -> None:
        await self._acquire()
        self.health.role = "programmer"
        self.health.pending_since = time.time()  # the first (full) sync is due
        await self.proxier.start()
        await self.factory.wait_for_cache_sync()
        log.info("caches synced services=%d endpointslices=%d", len(self.services.store),
                 len(self.slices.store))
        self.runner.request_full()
        await self.runner.run()

    # --- the process --------------------------------------------------------------------------

    async def _start_health(self) -> web.AppRunner | None:
        if not self.opts.healthz_port:
            return None
        runner = web.AppRunner(make_app(self.health, self.opts.sync_period),
                               access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.opts.healthz_host, self.opts.healthz_port).start()
        except OSError as e:
            log.warning("healthz server not started on %s:%d: %s", self.opts.healthz_host,
                        self.opts.healthz_port, e)
            await runner.cleanup()
            return None
        return runner

    async def run(self, stop: asyncio.Event) -> int:
        log.info("starting node=%s mode=%s pid=%d", self.opts.hostname_override,
                 self.proxier.mode, os.getpid())
        if self.proxier.mode == "iptables" and not self.opts.cluster_cidr and \
                not self.opts.masquerade_all:
            log.info("no --cluster-cidr: ClusterIP traffic from outside the pod network is "
                     "not masqueraded")
        self.factory.start_all()
        health = await self._start_health()
        program = asyncio.create_task(self._program(), name="kube-proxy:programmer")
        waiter = asyncio.create_task(stop.wait(), name="kube-proxy:wait-signal")
        code = 0
        try:
            await asyncio.wait([program, waiter], return_when=asyncio.FIRST_COMPLETED)
            if program.done() and not program.cancelled() and program.exception() is not None:
                log.error("kube-proxy failed: %s", program.exception())
                code = 1
        finally:
            for task in (program, waiter):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.factory.stop_all()
            code = max(code, await self._release())
            if health is not None:
                await health.cleanup()
        log.info("stopped pid=%d", os.getpid())
        return code

    async def _release(self) -> int:
        if not self.lock.held:
            return await self._last_one_out()
        handover = self.lock.standby_present()
        if handover:
            log.info("another kube-proxy stands by: leaving the rules in place for it")
        code = 0
        try:
            await self.proxier.stop(cleanup=not handover)
        except (IptablesError, netif.NetifError, OSError) as e:
            log.error("cleanup failed: %s", e)
            code = 1
        finally:
            self.lock.release()
        return code

    async def _last_one_out(self) -> int:
        """A standby stopping: when the holder has gone too and nobody else waits, the rules
        it left for us would be left for no one, so the last kube-proxy out removes them.
        (`kubelite up` stops every node's kube-proxy at once.) While the holder lives on,
        it keeps its lock and we just leave."""
        self.lock.leave_standby()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LAST_OUT_WAIT
        while not self.lock.try_acquire():
            if loop.time() >= deadline:
                return 0
            await asyncio.sleep(0.1)
        try:
            if self.lock.standby_present():
                return 0
            log.info("last kube-proxy on this kernel: removing the rules left behind")
            return await cleanup_all(self.opts)
        finally:
            self.lock.release()
