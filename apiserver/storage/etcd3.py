"""A small asyncio client for the etcd v3 gRPC API (KV, Watch, Lease, Maintenance).

Built on grpc.aio and the stubs generated from proto/etcd. Several endpoints are handed to
gRPC as one target so that its pick-first balancer fails over when a member goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import grpc

from proto.etcd import kv_pb2, rpc_pb2, rpc_pb2_grpc

log = logging.getLogger(__name__)

KeyValue = kv_pb2.KeyValue
Event = kv_pb2.Event


class EtcdError(Exception):
    """etcd could not be reached or refused a request."""


class Compacted(EtcdError):
    """The requested revision has been compacted away."""

    def __init__(self, compact_revision: int) -> None:
        super().__init__(f"required revision has been compacted (compact revision "
                         f"{compact_revision})")
        self.compact_revision = compact_revision


def prefix_end(prefix: bytes) -> bytes:
    """The range_end that makes a range cover every key starting with prefix."""
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\x00"


def grpc_target(endpoints: Sequence[str]) -> str:
    """`https://127.0.0.1:2379,https://127.0.0.1:22379` -> a gRPC multi-address target."""
    hosts = []
    schemes = set()
    for ep in endpoints:
        u = urlparse(ep if "://" in ep else "http://" + ep)
        if u.scheme not in ("http", "https"):
            raise ValueError(f"unsupported etcd endpoint scheme {u.scheme!r} (http or https)")
        schemes.add(u.scheme)
        hosts.append(f"{u.hostname}:{u.port or 2379}")
    if len(schemes) > 1:
        raise ValueError("etcd endpoints mix http and https")
    if len(hosts) == 1:
        return hosts[0]
    return "ipv4:" + ",".join(hosts)


@dataclass
class WatchBatch:
    """One etcd WatchResponse, reduced to what the watch cache needs."""

    revision: int
    events: list[Event]
    progress: bool  # an empty response carrying only the current revision


@dataclass(frozen=True)
class EtcdTLS:
    """The apiserver's etcd client credentials (--etcd-cafile, --etcd-certfile,
    --etcd-keyfile): etcd verifies the client certificate, we verify etcd's."""

    ca_file: str
    cert_file: str
    key_file: str

    def credentials(self) -> grpc.ChannelCredentials:
        with open(self.ca_file, "rb") as ca, open(self.cert_file, "rb") as cert, \
                open(self.key_file, "rb") as key:
            return grpc.ssl_channel_credentials(ca.read(), key.read(), cert.read())


class Etcd:
    def __init__(self, endpoints: Sequence[str], *, timeout: float = 10.0,
                 tls: EtcdTLS | None = None) -> None:
        self.endpoints = list(endpoints)
        self.timeout = timeout
        target = grpc_target(self.endpoints)
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", 256 * 1024 * 1024),
            ("grpc.max_send_message_length", 16 * 1024 * 1024),
            ("grpc.keepalive_time_ms", 30_000)]
        if any(ep.startswith("https://") for ep in self.endpoints):
            if tls is None:
                raise ValueError("https etcd endpoints need --etcd-cafile, --etcd-certfile "
                                 "and --etcd-keyfile")
            # A multi-address target has no single host name: check etcd's certificate
            # against the first endpoint's host (every member's certificate names it).
            host = urlparse(self.endpoints[0]).hostname or "localhost"
            options.append(("grpc.ssl_target_name_override", host))
            self._channel = grpc.aio.secure_channel(target, tls.credentials(), options=options)
        else:
            self._channel = grpc.aio.insecure_channel(target, options=options)
        self.kv = rpc_pb2_grpc.KVStub(self._channel)
        self._watch = rpc_pb2_grpc.WatchStub(self._channel)
        self._lease = rpc_pb2_grpc.LeaseStub(self._channel)
        self._maintenance = rpc_pb2_grpc.MaintenanceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, fn, request):  # type: ignore[no-untyped-def]
        try:
            return await fn(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as e:
            if "compacted" in (e.details() or ""):
                raise Compacted(0) from e
            raise EtcdError(f"etcd: {e.code().name}: {e.details()}") from e

    async def status(self) -> rpc_pb2.StatusResponse:
        return await self._call(self._maintenance.Status, rpc_pb2.StatusRequest())

    async def get(self, key: bytes) -> tuple[KeyValue | None, int]:
        r = await self._call(self.kv.Range, rpc_pb2.RangeRequest(key=key))
        return (r.kvs[0] if r.kvs else None), r.header.revision

    async def range(self, key: bytes, range_end: bytes, *, revision: int = 0, limit: int = 0,
                    count_only: bool = False, keys_only: bool = False) -> rpc_pb2.RangeResponse:
        req = rpc_pb2.RangeRequest(key=key, range_end=range_end, revision=revision,
                                   limit=limit, count_only=count_only, keys_only=keys_only)
        return await self._call(self.kv.Range, req)

    async def current_revision(self) -> int:
        # A count-only range over a key nobody writes is the cheapest way to read the header.
        r = await self._call(self.kv.Range, rpc_pb2.RangeRequest(key=b"\x00", count_only=True))
        return int(r.header.revision)

    async def put(self, key: bytes, value: bytes, lease: int = 0) -> int:
        r = await self._call(self.kv.Put, rpc_pb2.PutRequest(key=key, value=value, lease=lease))
        return int(r.header.revision)

    async def txn(self, compare: list[rpc_pb2.Compare], success: list[rpc_pb2.RequestOp],
                  failure: list[rpc_pb2.RequestOp]) -> rpc_pb2.TxnResponse:
        return await self._call(self.kv.Txn, rpc_pb2.TxnRequest(
            compare=compare, success=success, failure=failure))

    async def create(self, key: bytes, value: bytes, lease: int = 0) -> tuple[bool, int]:
        """Put only if the key does not exist. Returns (created, revision)."""
        r = await self.txn(
            [rpc_pb2.Compare(key=key, target=rpc_pb2.Compare.MOD,
                             result=rpc_pb2.Compare.EQUAL, mod_revision=0)],
            [rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=value,
                                                              lease=lease))],
            [],
        )
        return r.succeeded, int(r.header.revision)

    async def compare_and_put(self, key: bytes, value: bytes, mod_revision: int,
                              lease: int = 0) -> tuple[bool, int, KeyValue | None]:
        """Put if the key is still at mod_revision; on failure returns the current value."""
        r = await self.txn(
            [rpc_pb2.Compare(key=key, target=rpc_pb2.Compare.MOD,
                             result=rpc_pb2.Compare.EQUAL, mod_revision=mod_revision)],
            [rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=value,
                                                              lease=lease))],
            [rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=key))],
        )
        if r.succeeded:
            return True, int(r.header.revision), None
        kvs = r.responses[0].response_range.kvs
        return False, int(r.header.revision), (kvs[0] if kvs else None)

    async def compare_and_delete(self, key: bytes, mod_revision: int
                                 ) -> tuple[bool, int, KeyValue | None]:
        r = await self.txn(
            [rpc_pb2.Compare(key=key, target=rpc_pb2.Compare.MOD,
                             result=rpc_pb2.Compare.EQUAL, mod_revision=mod_revision)],
            [rpc_pb2.RequestOp(request_delete_range=rpc_pb2.DeleteRangeRequest(key=key))],
            [rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=key))],
        )
        if r.succeeded:
            return True, int(r.header.revision), None
        kvs = r.responses[0].response_range.kvs
        return False, int(r.header.revision), (kvs[0] if kvs else None)

    async def delete_prefix(self, prefix: bytes) -> int:
        r = await self._call(self.kv.DeleteRange, rpc_pb2.DeleteRangeRequest(
            key=prefix, range_end=prefix_end(prefix)))
        return int(r.deleted)

    async def compact(self, revision: int) -> None:
        await self._call(self.kv.Compact, rpc_pb2.CompactionRequest(revision=revision))

    async def lease_grant(self, ttl: int) -> int:
        r = await self._call(self._lease.LeaseGrant, rpc_pb2.LeaseGrantRequest(TTL=ttl))
        return int(r.ID)


    async def watch(self, key: bytes, range_end: bytes, start_revision: int,
                    progress_every: float = 1.0,
                    progress_now: asyncio.Event | None = None) -> AsyncIterator[WatchBatch]:
        """Yield batches of events from start_revision on, plus progress notifications.

        Progress requests are sent every `progress_every` seconds, and at once whenever
        `progress_now` is set, so that an idle resource still learns the store's current
        revision (used for bookmarks and consistent lists).
        Raises Compacted when start_revision is no longer kept.
        """
        requests: asyncio.Queue[rpc_pb2.WatchRequest | None] = asyncio.Queue()
        await requests.put(rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(
            key=key, range_end=range_end, start_revision=start_revision, prev_kv=True)))

        async def request_stream() -> AsyncIterator[rpc_pb2.WatchRequest]:
            while True:
                req = await requests.get()
                if req is None:
                    return
                yield req

        trigger = progress_now or asyncio.Event()

        async def ask_progress() -> None:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(trigger.wait(), progress_every)
                trigger.clear()
                await requests.put(rpc_pb2.WatchRequest(
                    progress_request=rpc_pb2.WatchProgressRequest()))

        call = self._watch.Watch(request_stream())
        ticker = asyncio.create_task(ask_progress(), name="etcd-watch-progress")
        try:
            async for resp in call:
                if resp.compact_revision:
                    raise Compacted(int(resp.compact_revision))
                if resp.canceled:
                    raise EtcdError(f"etcd watch canceled: {resp.cancel_reason}")
                if resp.created and not resp.events:
                    continue
                yield WatchBatch(int(resp.header.revision), list(resp.events),
                                 progress=not resp.events)
        except grpc.aio.AioRpcError as e:
            raise EtcdError(f"etcd watch: {e.code().name}: {e.details()}") from e
        finally:
            ticker.cancel()
            await requests.put(None)
            call.cancel()


class LeaseManager:
    """Leases for objects that expire (Events, --event-ttl), shared by the writes of a short
    window as upstream's etcd3 lease manager does: one lease per event would make etcd track
    as many leases as events. A lease is reused while it outlives the asked TTL by no more
    than the reuse window (5% of the TTL, at most a minute) and carries under 1000 objects;
    a new one is granted with the window added, so no object expires before its TTL."""

    def __init__(self, etcd: Etcd, *, reuse_seconds: int = 60, reuse_percent: float = 0.05,
                 max_objects: int = 1000, clock: Callable[[], float] = time.monotonic) -> None:
        self.etcd = etcd
        self.reuse_seconds = reuse_seconds
        self.reuse_percent = reuse_percent
        self.max_objects = max_objects
        self.clock = clock
        self._lock = asyncio.Lock()
        self._lease = 0
        self._expires = 0.0
        self._attached = 0

    def reuse_window(self, ttl: int) -> int:
        return min(int(self.reuse_percent * ttl), self.reuse_seconds)

    async def get(self, ttl: int) -> int:
        """A lease id that keeps an object at least `ttl` seconds (and at most the reuse
        window longer)."""
        async with self._lock:
            now = self.clock()
            window = self.reuse_window(ttl)
            lasts_long_enough = now + ttl < self._expires
            not_too_long = now + ttl + window > self._expires
            if self._lease and lasts_long_enough and not_too_long \
                    and self._attached < self.max_objects:
                self._attached += 1
                return self._lease
            self._lease = await self.etcd.lease_grant(ttl + window)
            self._expires = now + ttl + window
            self._attached = 1
            return self._lease
