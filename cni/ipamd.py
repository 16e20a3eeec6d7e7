"""ipamd: a node's IP address manager, after aws-vpc-cni's L-IPAMD (`aws-node`).

    python -m cni.ipamd --kubeconfig K --node-name N --instance-type m5.large \\
        [--socket /run/kubelite/N/ipamd.sock] [--data-dir /run/kubelite/N] \\
        [--prefix-delegation] [--vpc-cidr 10.200.0.0/16]

It owns this node's ENIs in the VPC table (`cni.ec2`, through the apiserver) and a warm
pool of their addresses (`cni.datastore`, `cni.warmpool`), and serves `proto/ipamd.proto`
on a unix socket: the CNI plugin asks it for an address on ADD and gives it back on DEL;
the kubelet reads `Status.max_pods` for the node's capacity.

- Start: read the node's ENIs from the VPC table (attaching the primary ENI, device 0, on a
  new node), then the checkpoint file (`<data-dir>/ipam.json`), then pods bound to this node
  whose podIP is one of its addresses but which the checkpoint lacks (so a lost checkpoint
  does not hand a running pod's address to another), then grow the pool to its targets.
- Pool manager (one task): every --pool-monitor-interval, or at once when an ADD finds the
  pool short, attach addresses/prefixes/ENIs or give back surplus ones (`cni.warmpool`).
  Only this task changes ENIs and CIDRs; RPCs only assign and release addresses.
- An ADD that finds no free address waits (up to --assign-timeout) while the pool can still
  grow; when it cannot (ENI limit, max pods, VPC full) it fails at once with
  RESOURCE_EXHAUSTED "failed to assign an IP address to container", as EKS reports it.

Settings take the upstream environment variables, and flags override them: WARM_ENI_TARGET,
WARM_IP_TARGET, MINIMUM_IP_TARGET, WARM_PREFIX_TARGET, ENABLE_PREFIX_DELEGATION, MAX_ENI,
IP_COOLDOWN_PERIOD (seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

from api.durations import parse_duration
from api.errors import StatusError
from api.resources import CATALOGUE
from client.kubeconfig import load_kubeconfig
from client.rest import ApiClient, ApiConnectionError
from cni.datastore import (
    RECOVERED_NETWORK,
    Assignment,
    DataStore,
    DataStoreError,
    IpamKey,
    PodRef,
    load_checkpoint,
    save_checkpoint,
)
from cni.ec2 import Ec2Client, TableRef, TooManyConflicts
from cni.eni import InstanceType, instance_type, max_pods, uses_prefix_delegation
from cni.vpc import (
    DEFAULT_VPC_CIDR,
    AddressLimitExceeded,
    AttachmentLimitExceeded,
    Ec2Error,
    EniRecord,
    InsufficientAddresses,
    gateway_of,
    parse_vpc_cidr,
)
from cni.warmpool import (
    Increase,
    PoolConfig,
    eni_required,
    excess_slots,
    plan_increase,
    pool_too_high,
    pool_too_low,
    should_remove_extra_enis,
)
from proto import ipamd_pb2, ipamd_pb2_grpc

log = logging.getLogger("cni.ipamd")

PODS = CATALOGUE.require("pods")
DEFAULT_NETWORK = "kubelite"
EXHAUSTED_MESSAGE = "failed to assign an IP address to container"
INSUFFICIENT_CIDR_COOLDOWN = 120.0  # upstream insufficientCidrErrorCooldown


class PoolExhausted(Exception):
    """No free address and the pool cannot grow (or did not in time)."""


# --- options ---------------------------------------------------------------------------------


@dataclass
class Options:
    node_name: str
    instance_type: str
    kubeconfig: str | None = None
    socket: Path | None = None  # default /run/kubelite/<node>/ipamd.sock
    data_dir: Path | None = None  # default: the socket's directory
    vpc_cidr: str = DEFAULT_VPC_CIDR
    vpc_table: str = "kube-system/kubelite-vpc-ipam"
    prefix_delegation: bool = False
    warm_eni_target: int = 1
    warm_ip_target: int = 0
    minimum_ip_target: int = 0
    warm_prefix_target: int = 1
    max_eni: int = 0  # 0: the instance type's limit
    ip_cooldown: float = 30.0
    pool_monitor_interval: float = 5.0
    decrease_interval: float = 30.0  # upstream decreaseIPPoolInterval
    eni_min_lifetime: float = 60.0  # upstream minENILifeTime
    assign_timeout: float = 10.0
    recover_from_apiserver: bool = True
    verbosity: int = 0

    @property
    def socket_path(self) -> Path:
        return self.socket or Path("/run/kubelite") / self.node_name / "ipamd.sock"

    @property
    def checkpoint_path(self) -> Path:
        return (self.data_dir or self.socket_path.parent) / "ipam.json"


def _int_env(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise SystemExit(f"{name}={text!r} is not an integer") from None
    return max(value, 0) if name != "MAX_ENI" else value


def _bool_env(env: Mapping[str, str], name: str, default: bool) -> bool:
    text = env.get(name, "").strip().lower()
    if not text:
        return default
    return text in ("1", "true", "yes", "on")


def _seconds(text: str) -> float:
    """A Go duration (`30s`, `500ms`) or a plain number of seconds."""
    try:
        return float(text)
    except ValueError:
        return parse_duration(text)


def parse_args(argv: list[str] | None, env: Mapping[str, str] | None = None,
               prog: str = "python -m cni.ipamd") -> Options:
    env = os.environ if env is None else env
    p = argparse.ArgumentParser(prog=prog, description="kubelite ipamd (the node's VPC IPAM "
                                "daemon, after aws-vpc-cni's L-IPAMD)")
    p.add_argument("--kubeconfig", default=None)
    p.add_argument("--node-name", required=True)
    p.add_argument("--instance-type", required=True, help="e.g. m5.large; sets ENI limits")
    p.add_argument("--socket", type=Path, default=None,
                   help="gRPC unix socket (default /run/kubelite/<node>/ipamd.sock)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="where ipam.json (the checkpoint) lives (default: the socket's dir)")
    p.add_argument("--vpc-cidr", default=env.get("KUBELITE_VPC_CIDR", DEFAULT_VPC_CIDR))
    p.add_argument("--vpc-table", default="kube-system/kubelite-vpc-ipam",
                   help="the ConfigMap holding the VPC's ENI table (namespace/name)")
    p.add_argument("--prefix-delegation", action="store_true",
                   default=_bool_env(env, "ENABLE_PREFIX_DELEGATION", False),
                   help="assign /28 prefixes instead of addresses (ENABLE_PREFIX_DELEGATION)")
    p.add_argument("--warm-eni-target", type=int,
                   default=_int_env(env, "WARM_ENI_TARGET", 1))
    p.add_argument("--warm-ip-target", type=int, default=_int_env(env, "WARM_IP_TARGET", 0))
    p.add_argument("--minimum-ip-target", type=int,
                   default=_int_env(env, "MINIMUM_IP_TARGET", 0))
    p.add_argument("--warm-prefix-target", type=int,
                   default=_int_env(env, "WARM_PREFIX_TARGET", 1))
    p.add_argument("--max-eni", type=int, default=_int_env(env, "MAX_ENI", 0),
                   help="attach at most this many ENIs (<= 0: the instance type's limit)")
    p.add_argument("--ip-cooldown-period", type=_seconds,
                   default=float(_int_env(env, "IP_COOLDOWN_PERIOD", 30)),
                   help="a released address is not reused for this long (30s)")
    p.add_argument("--pool-monitor-interval", type=_seconds, default=5.0)
    p.add_argument("--decrease-pool-interval", type=_seconds, default=30.0)
    p.add_argument("--eni-min-lifetime", type=_seconds, default=60.0,
                   help="a new ENI is not given back before this age")
    p.add_argument("--assign-timeout", type=_seconds, default=10.0,
                   help="how long an ADD waits for the pool to grow")
    p.add_argument("--recover-from-apiserver", type=lambda s: s.lower() in ("1", "true"),
                   default=True, help="backfill assignments from pods' podIP on start")
    p.add_argument("-v", "--v", type=int, default=0, help="log verbosity")
    a = p.parse_args(argv)
    try:
        parse_vpc_cidr(a.vpc_cidr)
        instance_type(a.instance_type)
    except (ValueError, KeyError) as e:
        p.error(str(e.args[0]))
    for name in ("warm_eni_target", "warm_ip_target", "minimum_ip_target", "warm_prefix_target"):
        if getattr(a, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0")
    return Options(
        node_name=a.node_name, instance_type=a.instance_type, kubeconfig=a.kubeconfig,
        socket=a.socket, data_dir=a.data_dir, vpc_cidr=a.vpc_cidr, vpc_table=a.vpc_table,
        prefix_delegation=a.prefix_delegation, warm_eni_target=a.warm_eni_target,
        warm_ip_target=a.warm_ip_target, minimum_ip_target=a.minimum_ip_target,
        warm_prefix_target=a.warm_prefix_target, max_eni=a.max_eni,
        ip_cooldown=a.ip_cooldown_period, pool_monitor_interval=a.pool_monitor_interval,
        decrease_interval=a.decrease_pool_interval, eni_min_lifetime=a.eni_min_lifetime,
        assign_timeout=a.assign_timeout, recover_from_apiserver=a.recover_from_apiserver,
        verbosity=a.v)


def pool_config(itype: InstanceType, opts: Options) -> PoolConfig:
    pd = uses_prefix_delegation(itype, opts.prefix_delegation)
    enis = itype.max_enis if opts.max_eni <= 0 else min(opts.max_eni, itype.max_enis)
    return PoolConfig(
        max_enis=enis,
        slots_per_eni=itype.prefixes_per_eni if pd else itype.secondary_ips_per_eni,
        max_pods=max_pods(itype, pd), prefix_delegation=pd,
        warm_eni_target=opts.warm_eni_target, warm_ip_target=opts.warm_ip_target,
        minimum_ip_target=opts.minimum_ip_target, warm_prefix_target=opts.warm_prefix_target)


# --- the daemon ------------------------------------------------------------------------------


class Ipamd:
    def __init__(self, opts: Options, ec2: Ec2Client, api: ApiClient | None = None) -> None:
        self.opts = opts
        self.node = opts.node_name
        self.ec2 = ec2
        self.api = api
        self.itype = instance_type(opts.instance_type)
        if opts.prefix_delegation and not self.itype.supports_prefix_delegation():
            log.warning("prefix delegation is not supported on non-Nitro instance type %s; "
                        "using secondary IPs", self.itype.name)
        self.cfg = pool_config(self.itype, opts)
        self.vpc = parse_vpc_cidr(opts.vpc_cidr)
        self.gateway = str(gateway_of(self.vpc))
        self.ds = DataStore(cooldown=opts.ip_cooldown)
        self._kick = asyncio.Event()
        self._changed = asyncio.Event()
        self._reconcile_lock = asyncio.Lock()
        self._last_decrease = -1e9
        self._insufficient_until = 0.0

    @property
    def max_pods(self) -> int:
        return self.cfg.max_pods

    # --- start-up ------------------------------------------------------------------------

    async def init(self) -> None:
        enis = await self.ec2.describe_node_enis(self.node)
        if not enis:
            # The instance's own ENI: always there, never given back, no pod addresses yet.
            eni = await self.ec2.create_and_attach_eni(self.node, self.itype.name)
            log.info("attached primary ENI eni=%s node=%s primaryIP=%s", eni.eni_id, self.node,
                     eni.primary_ip)
            enis = [eni]
        for record in enis:
            self._add_record(record)
        data = load_checkpoint(self.opts.checkpoint_path)
        if data is not None:
            restored, dropped = self.ds.restore(data)
            log.info("restored %d assignments from %s node=%s", restored,
                     self.opts.checkpoint_path, self.node)
            for ip in dropped:
                log.warning("checkpoint address %s is no longer on node %s: pod presumed gone",
                            ip, self.node)
        if self.opts.recover_from_apiserver and self.api is not None:
            await self._recover_from_pods()
        self._save()
        await self._drop_other_mode_cidrs()
        await self.reconcile()
        stats = self.ds.stats()
        log.info("ipamd ready node=%s instanceType=%s maxPods=%d enis=%d total=%d assigned=%d "
                 "prefixDelegation=%s", self.node, self.itype.name, self.max_pods, stats.enis,
                 stats.total_ips, stats.assigned_ips, self.cfg.prefix_delegation)

    def _add_record(self, record: EniRecord) -> None:
        self.ds.add_eni(record.eni_id, record.device_number, record.primary_ip,
                        is_primary=record.device_number == 0)
        for ip in record.ips:
            self.ds.add_cidr(record.eni_id, f"{ip}/32", is_prefix=False)
        for prefix in record.prefixes:
            self.ds.add_cidr(record.eni_id, prefix, is_prefix=True)

    async def _recover_from_pods(self) -> None:
        """Backfill addresses of running pods on this node that the checkpoint lacks."""
        assert self.api is not None
        # resourceVersion=0: served from the apiserver's watch cache. A consistent list
        # with a field selector costs about a second there, on every start, and this is
        # only the safety net behind the checkpoint.
        pods = await self.api.list(PODS, field_selector=f"spec.nodeName={self.node}",
                                   resource_version="0")
        held = {a.ip for a in self.ds.assignments()}
        for pod in pods.get("items") or []:
            status, meta = pod.get("status") or {}, pod.get("metadata") or {}
            if status.get("phase") in ("Succeeded", "Failed"):
                continue
            ips = [p.get("ip") for p in status.get("podIPs") or []] or [status.get("podIP")]
            ref = PodRef(str(meta.get("namespace", "")), str(meta.get("name", "")))
            for ip in ips:
                if not ip or ip in held:
                    continue
                key = IpamKey(RECOVERED_NETWORK, str(meta.get("uid") or ref), "")
                if self.ds.mark_assigned(str(ip), key, ref, time.time()):
                    held.add(str(ip))
                    log.warning("recovered address %s of pod %s from the apiserver", ip, ref)

    async def _drop_other_mode_cidrs(self) -> None:
        """After switching prefix delegation on or off, give back idle CIDRs of the old kind."""
        for eni in self.ds.ordered_enis():
            stale = [c.cidr for c in eni.cidrs.values()
                     if c.is_prefix != self.cfg.prefix_delegation
                     and c.cidr in self.ds.freeable_cidrs(eni.eni_id)]
            if stale:
                await self._give_back(eni.eni_id, stale)

    # --- RPC operations ------------------------------------------------------------------

    async def add_network(self, key: IpamKey, pod: PodRef) -> Assignment:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.opts.assign_timeout
        while True:
            assignment = self.ds.assign(key, pod)
            if assignment is not None:
                try:
                    self._save()
                except OSError:
                    self.ds.unassign(key)
                    raise
                if pool_too_low(self.ds.stats(), self.cfg):
                    self._kick.set()
                return assignment
            stats = self.ds.stats()
            remaining = deadline - loop.time()
            if not self._can_grow() or remaining <= 0:
                raise PoolExhausted(
                    f"{EXHAUSTED_MESSAGE} {key.container_id}: no free address on node "
                    f"{self.node} ({self.itype.name}: {stats.enis}/{self.cfg.max_enis} ENIs, "
                    f"{stats.total_ips} addresses, {stats.assigned_ips} assigned, "
                    f"{stats.cooldown_ips} cooling down, max pods {self.max_pods})")
            changed = self._changed
            self._kick.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    def _can_grow(self) -> bool:
        if time.monotonic() < self._insufficient_until:
            return False
        fill = [used for _, used in self.ds.eni_fill()]
        return plan_increase(self.ds.stats(), self.cfg, fill) is not None

    async def del_network(self, key: IpamKey, pod: PodRef) -> Assignment | None:
        released = self.ds.unassign(key)
        if released is None and pod.name:
            recovered = self.ds.recovered_key_for(pod)
            if recovered is not None:
                released = self.ds.unassign(recovered)
        if released is not None:
            self._save()
            self._kick.set()
        return released

    def _save(self) -> None:
        save_checkpoint(self.opts.checkpoint_path, self.ds.checkpoint_data())

    # --- pool manager --------------------------------------------------------------------

    async def run_pool_manager(self) -> None:
        while True:
            try:
                await self.reconcile()
            except (ApiConnectionError, StatusError, TooManyConflicts, Ec2Error,
                    DataStoreError) as e:
                log.warning("pool reconcile failed node=%s: %s", self.node, e)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self.opts.pool_monitor_interval)
            self._kick.clear()

    async def reconcile(self) -> None:
        async with self._reconcile_lock:
            await self._grow()
            stats = self.ds.stats()
            now = time.monotonic()
            if pool_too_high(stats, self.cfg) and now - self._last_decrease >= \
                    self.opts.decrease_interval:
                self._last_decrease = now
                await self._shrink(excess_slots(stats, self.cfg))
            if should_remove_extra_enis(self.ds.stats(), self.cfg):
                await self._free_one_eni()

    async def _grow(self) -> None:
        bound = self.cfg.max_enis * max(self.cfg.slots_per_eni, 1) + 1
        for _ in range(bound):
            if time.monotonic() < self._insufficient_until:
                return
            fill = self.ds.eni_fill()
            step = plan_increase(self.ds.stats(), self.cfg, [used for _, used in fill])
            if step is None:
                return
            try:
                await self._increase(step, fill)
            except InsufficientAddresses as e:
                log.error("VPC has no room node=%s: %s; retrying in %.0fs", self.node, e,
                          INSUFFICIENT_CIDR_COOLDOWN)
                self._insufficient_until = time.monotonic() + INSUFFICIENT_CIDR_COOLDOWN
                self._notify()
                return
            except (AttachmentLimitExceeded, AddressLimitExceeded) as e:
                log.warning("node=%s is out of sync with the VPC table (%s); re-reading",
                            self.node, e)
                await self._resync()
                return
            self._notify()

    async def _increase(self, step: Increase, fill: list[tuple[str, int]]) -> None:
        pd = self.cfg.prefix_delegation
        if step.eni_index is None:
            record = await self.ec2.create_and_attach_eni(
                self.node, self.itype.name, secondary_ips=0 if pd else step.count,
                prefixes=step.count if pd else 0)
            self._add_record(record)
            log.info("attached ENI eni=%s device=%d node=%s %s=%d", record.eni_id,
                     record.device_number, self.node, "prefixes" if pd else "ips", step.count)
            return
        eni_id = fill[step.eni_index][0]
        if pd:
            for prefix in await self.ec2.assign_prefixes(eni_id, step.count):
                self.ds.add_cidr(eni_id, prefix, is_prefix=True)
        else:
            for ip in await self.ec2.assign_private_ips(eni_id, step.count):
                self.ds.add_cidr(eni_id, f"{ip}/32", is_prefix=False)
        log.info("assigned %d %s to eni=%s node=%s", step.count,
                 "prefixes" if pd else "addresses", eni_id, self.node)

    async def _resync(self) -> None:
        """Add CIDRs the VPC table gives this node but the pool lacks (a lost reply)."""
        for record in await self.ec2.describe_node_enis(self.node):
            self._add_record(record)
        self._notify()

    async def _shrink(self, over: int) -> None:
        """Give back up to `over` idle slots (WARM_IP_TARGET / WARM_PREFIX_TARGET surplus)."""
        for eni in reversed(self.ds.ordered_enis()):
            if over <= 0:
                return
            cidrs = [c for c in self.ds.freeable_cidrs(eni.eni_id)][:over]
            if cidrs:
                await self._give_back(eni.eni_id, cidrs)
                over -= len(cidrs)

    async def _give_back(self, eni_id: str, cidrs: list[str]) -> None:
        # Out of the pool first, so no ADD can take them while EC2 is being told.
        removed = self.ds.remove_cidrs(eni_id, cidrs)
        ips = [c.cidr.removesuffix("/32") for c in removed if not c.is_prefix]
        prefixes = [c.cidr for c in removed if c.is_prefix]
        try:
            await self.ec2.unassign(eni_id, ips=ips, prefixes=prefixes)
        except BaseException:
            self.ds.put_back_cidrs(eni_id, removed)
            raise
        log.info("gave back %d addresses and %d prefixes from eni=%s node=%s", len(ips),
                 len(prefixes), eni_id, self.node)

    async def _free_one_eni(self) -> None:
        stats = self.ds.stats()
        for unused in self.ds.unused_enis(self.opts.eni_min_lifetime):
            if eni_required(unused.ips, unused.free_prefixes, stats, self.cfg):
                continue
            eni = self.ds.remove_eni(unused.eni_id)
            if eni is None:
                continue
            try:
                await self.ec2.delete_eni(unused.eni_id)
            except BaseException:
                self.ds.put_back_eni(eni)
                raise
            log.info("freed ENI eni=%s node=%s", unused.eni_id, self.node)
            return

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # --- status ---------------------------------------------------------------------------

    def status(self) -> ipamd_pb2.StatusReply:
        stats = self.ds.stats()
        enis = [ipamd_pb2.EniStatus(
            eni_id=e.eni_id, device_number=e.device_number, primary_ip=e.primary_ip,
            cidrs=sorted(e.cidrs), assigned=sum(c.assigned_count() for c in e.cidrs.values()))
            for e in self.ds.ordered_enis()]
        return ipamd_pb2.StatusReply(
            node_name=self.node, instance_type=self.itype.name, max_pods=self.max_pods,
            prefix_delegation=self.cfg.prefix_delegation, vpc_cidr=str(self.vpc),
            gateway=self.gateway, total_ips=stats.total_ips, assigned_ips=stats.assigned_ips,
            cooldown_ips=stats.cooldown_ips, available_ips=stats.available,
            max_enis=self.cfg.max_enis, enis=enis)


# --- gRPC --------------------------------------------------------------------------------------


class CNIBackend(ipamd_pb2_grpc.CNIBackendServicer):
    def __init__(self, ipamd: Ipamd) -> None:
        self.ipamd = ipamd

    @staticmethod
    def _key(network: str, container_id: str, ifname: str) -> IpamKey:
        return IpamKey(network or DEFAULT_NETWORK, container_id, ifname or "eth0")

    async def AddNetwork(self, request: ipamd_pb2.AddNetworkRequest,
                         context: grpc.aio.ServicerContext) -> ipamd_pb2.AddNetworkReply:
        if not request.container_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "container_id is required")
        key = self._key(request.network_name, request.container_id, request.ifname)
        pod = PodRef(request.k8s_pod_namespace, request.k8s_pod_name)
        try:
            a = await self.ipamd.add_network(key, pod)
        except PoolExhausted as e:
            log.warning("%s pod=%s", e, pod)
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(e))
        except OSError as e:
            await context.abort(grpc.StatusCode.INTERNAL, f"checkpoint: {e}")
        log.info("assigned ip=%s pod=%s container=%s eni=%s node=%s", a.ip, pod,
                 key.container_id, a.eni_id, self.ipamd.node)
        return ipamd_pb2.AddNetworkReply(
            ipv4_addr=a.ip, prefix_length=self.ipamd.vpc.prefixlen, gateway=self.ipamd.gateway,
            eni_id=a.eni_id, device_number=a.device_number, vpc_cidrs=[str(self.ipamd.vpc)])

    async def DelNetwork(self, request: ipamd_pb2.DelNetworkRequest,
                         context: grpc.aio.ServicerContext) -> ipamd_pb2.DelNetworkReply:
        key = self._key(request.network_name, request.container_id, request.ifname)
        pod = PodRef(request.k8s_pod_namespace, request.k8s_pod_name)
        released = await self.ipamd.del_network(key, pod)
        if released is None:
            log.info("nothing to release pod=%s container=%s", pod, key.container_id)
            return ipamd_pb2.DelNetworkReply()
        log.info("released ip=%s pod=%s container=%s eni=%s", released.ip, released.pod,
                 key.container_id, released.eni_id)
        return ipamd_pb2.DelNetworkReply(ipv4_addr=released.ip, eni_id=released.eni_id)

    async def CheckNetwork(self, request: ipamd_pb2.CheckNetworkRequest,
                           context: grpc.aio.ServicerContext) -> ipamd_pb2.CheckNetworkReply:
        found = self.ipamd.ds.lookup(self._key(request.network_name, request.container_id,
                                               request.ifname))
        if found is None:
            await context.abort(grpc.StatusCode.NOT_FOUND,
                                f"no address assigned to container {request.container_id}")
            raise AssertionError("abort() raises")
        return ipamd_pb2.CheckNetworkReply(ipv4_addr=found.ip, eni_id=found.eni_id)

    async def Status(self, request: ipamd_pb2.StatusRequest,
                     context: grpc.aio.ServicerContext) -> ipamd_pb2.StatusReply:
        return self.ipamd.status()


async def serve(ipamd: Ipamd, socket_path: Path) -> grpc.aio.Server:
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        socket_path.unlink()  # left by a previous run
    server = grpc.aio.server()
    ipamd_pb2_grpc.add_CNIBackendServicer_to_server(CNIBackend(ipamd), server)
    server.add_insecure_port(f"unix:{socket_path.resolve()}")
    await server.start()
    return server


async def main_async(opts: Options) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    config = load_kubeconfig(opts.kubeconfig)
    async with ApiClient(config, component="ipamd") as api:
        ec2 = Ec2Client(api, parse_vpc_cidr(opts.vpc_cidr), TableRef.parse(opts.vpc_table))
        ipamd = Ipamd(opts, ec2, api)
        try:
            await ipamd.init()
        except (ApiConnectionError, StatusError, Ec2Error, TooManyConflicts,
                DataStoreError) as e:
            log.error("ipamd init failed node=%s: %s", opts.node_name, e)
            return 1
        server = await serve(ipamd, opts.socket_path)
        log.info("serving on %s", opts.socket_path)
        manager = asyncio.create_task(ipamd.run_pool_manager(), name="ipamd:pool-manager")
        waiter = asyncio.create_task(stop.wait(), name="ipamd:wait-signal")
        await asyncio.wait([manager, waiter], return_when=asyncio.FIRST_COMPLETED)
        code = 0
        if manager.done() and manager.exception() is not None:
            log.error("pool manager failed: %r", manager.exception())
            code = 1
        await server.stop(grace=2)
        for task in (manager, waiter):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(FileNotFoundError):
            opts.socket_path.unlink()
    log.info("ipamd stopped node=%s", opts.node_name)
    return code


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if opts.verbosity >= 4 else logging.INFO,
                        stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(main_async(opts))


if __name__ == "__main__":
    sys.exit(main())
