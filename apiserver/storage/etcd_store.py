"""Storage on etcd: JSON values, resourceVersion = mod revision, compare-and-swap updates."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable

from api.codec import dumps, loads
from api.meta import deep_copy
from apiserver.storage.encryption import StorageTransformers
from apiserver.storage.etcd3 import (
    Compacted,
    Etcd,
    EtcdError,
    KeyValue,
    LeaseManager,
    prefix_end,
)
from apiserver.storage.interface import (
    FutureRevision,
    KeyExists,
    KeyNotFound,
    ListResult,
    Obj,
    Preconditions,
    Predicate,
    TooOld,
    TryUpdate,
    Unavailable,
    VersionConflict,
)

log = logging.getLogger(__name__)


def _encode(obj: Obj) -> bytes:
    md = obj.get("metadata")
    if isinstance(md, dict) and "resourceVersion" in md:
        # resourceVersion is derived from the store, never persisted.
        md = dict(md)
        del md["resourceVersion"]
        obj = {**obj, "metadata": md}
    return dumps(obj)


def decode(kv: KeyValue, value: bytes | None = None) -> Obj:
    """The object stored in `kv`; `value`: its bytes once decrypted, when they were."""
    obj: Obj = loads(kv.value if value is None else value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
    return obj


def check_preconditions(key: str, obj: Obj, pre: Preconditions | None) -> None:
    if pre is None:
        return
    md = obj.get("metadata") or {}
    if pre.uid is not None and md.get("uid") != pre.uid:
        raise VersionConflict(key, f"Precondition failed: UID in precondition: {pre.uid}, "
                                   f"UID in object meta: {md.get('uid', '')}")
    if pre.resource_version is not None and md.get("resourceVersion") != pre.resource_version:
        raise VersionConflict(
            key, f"Precondition failed: ResourceVersion in precondition: "
                 f"{pre.resource_version}, ResourceVersion in object meta: "
                 f"{md.get('resourceVersion', '')}")


def same_content(a: Obj, b: Obj) -> bool:
    """Equal apart from resourceVersion: such an update is skipped (no new revision)."""
    return _encode(a) == _encode(b)


WRITTEN_LIMIT = 20_000


class EtcdStorage:
    def __init__(self, etcd: Etcd, transformers: StorageTransformers | None = None) -> None:
        self.etcd = etcd
        # Encryption at rest (--encryption-provider-config): only the bytes in etcd change.
        self.transformers = transformers or StorageTransformers({})
        # Objects this process wrote, by key, until the watch cache sees their event: the
        # cache takes them instead of decoding the same bytes again.
        self.written: dict[str, tuple[int, Obj]] = {}
        # Leases of objects that expire (Events): see LeaseManager.
        self.leases = LeaseManager(etcd)

    def _remember(self, key: str, revision: int, obj: Obj) -> None:
        if len(self.written) >= WRITTEN_LIMIT:
            self.written.clear()
        self.written[key] = (revision, obj)

    def take_written(self, key: str, revision: int) -> Obj | None:
        entry = self.written.get(key)
        if entry is None or entry[0] != revision:
            return None
        del self.written[key]
        return entry[1]

    def encode(self, key: str, obj: Obj) -> bytes:
        data = _encode(obj)
        t = self.transformers.for_key(key)
        return data if t is None else t.to_storage(data, key)

    def decode(self, kv: KeyValue) -> Obj:
        t = self.transformers.for_key(kv.key.decode())
        if t is None:
            return decode(kv)
        return decode(kv, t.from_storage(kv.value, kv.key.decode())[0])

    async def _stale(self, key: str, revision: int) -> bool:
        """Whether the value stored at `revision` was written by a provider other than the
        first (an old key): then an update rewrites it even when the object is unchanged,
        which is how secrets move to a new key (`kubectl replace` of every one)."""
        t = self.transformers.for_key(key)
        if t is None:
            return False
        kv, _ = await self._guard(self.etcd.get(key.encode()))
        if kv is None or int(kv.mod_revision) != revision:
            return False
        return t.from_storage(kv.value, key)[1]

    async def _guard(self, coro):  # type: ignore[no-untyped-def]
        try:
            return await coro
        except Compacted as e:
            raise TooOld(str(e)) from e
        except EtcdError as e:
            if "future revision" in str(e):
                raise FutureRevision(str(e)) from e
            raise Unavailable(str(e)) from e

    async def _lease(self, ttl: int) -> int:
        """The etcd lease for an object that expires after `ttl` seconds (0: none)."""
        return int(await self._guard(self.leases.get(ttl))) if ttl > 0 else 0

    async def create(self, key: str, obj: Obj, *, ttl: int = 0) -> Obj:
        """`ttl` > 0: etcd deletes the object that many seconds later (a lease)."""
        lease = await self._lease(ttl)
        created, rev = await self._guard(self.etcd.create(key.encode(), self.encode(key, obj),
                                                          lease=lease))
        if not created:
            raise KeyExists(key)
        obj.setdefault("metadata", {})["resourceVersion"] = str(rev)
        self._remember(key, rev, obj)
        return obj

    async def get(self, key: str) -> Obj:
        kv, _ = await self._guard(self.etcd.get(key.encode()))
        if kv is None:
            raise KeyNotFound(key)
        return self.decode(kv)

    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0,
                   start_key: str | None = None,
                   predicate: Predicate | None = None) -> ListResult:
        end = prefix_end(prefix.encode())
        start = (start_key or prefix).encode()
        items: list[Obj] = []
        read_rev = revision
        while True:
            # When filtering, ask for more than the page needs so a selective list over many
            # objects takes few round trips.
            want = 0 if not limit else (limit - len(items)) * (1 if predicate is None else 4)
            r = await self._guard(self.etcd.range(start, end, revision=read_rev, limit=want))
            # Every page of a paginated list is read at the first page's revision.
            read_rev = read_rev or int(r.header.revision)
            for i, kv in enumerate(r.kvs):
                obj = self.decode(kv)
                if predicate is None or predicate(obj):
                    items.append(obj)
                if limit and len(items) >= limit:
                    more = r.more or i < len(r.kvs) - 1
                    return ListResult(items, read_rev,
                                      continue_key=kv.key.decode() + "\x00" if more else None)
            if not r.more or not r.kvs:
                return ListResult(items, read_rev)
            start = r.kvs[-1].key + b"\x00"

    async def guaranteed_update(self, key: str, try_update: TryUpdate, *,
                                preconditions: Preconditions | None = None,
                                current: Obj | None = None, ttl: int = 0) -> Obj:
        """Apply try_update to the latest object until the compare-and-swap wins.

        `current` is a hint (the watch cache's copy). If it is stale and the update or a
        precondition fails on it, the object is read again from etcd before giving up.
        """
        bkey = key.encode()
        fresh = current is None
        if current is None:
            current = await self.get(key)
        for _ in range(100):
            try:
                check_preconditions(key, current, preconditions)
                result = try_update(deep_copy(current))
                if inspect.isawaitable(result):
                    result = await result
            except Exception:
                if fresh:
                    raise
                current, fresh = await self.get(key), True
                continue
            rev = int(current["metadata"]["resourceVersion"])
            if result is None or (same_content(result, current) and
                                  not await self._stale(key, rev)):
                return current
            # An expiring object's clock restarts at each write, as upstream's TTLFunc.
            lease = await self._lease(ttl)
            ok, new_rev, latest = await self._guard(
                self.etcd.compare_and_put(bkey, self.encode(key, result), rev, lease=lease))
            if ok:
                result.setdefault("metadata", {})["resourceVersion"] = str(new_rev)
                self._remember(key, new_rev, result)
                return result
            if latest is None:
                raise KeyNotFound(key)
            current, fresh = self.decode(latest), True
        raise Unavailable(f"too many conflicts updating {key}")

    async def delete(self, key: str, *, preconditions: Preconditions | None = None,
                     validate: Callable[[Obj], None] | None = None,
                     current: Obj | None = None) -> Obj:
        bkey = key.encode()
        fresh = current is None
        if current is None:
            current = await self.get(key)
        for _ in range(100):
            try:
                check_preconditions(key, current, preconditions)
                if validate is not None:
                    validate(current)
            except Exception:
                if fresh:
                    raise
                current, fresh = await self.get(key), True
                continue
            rev = int(current["metadata"]["resourceVersion"])
            ok, _, latest = await self._guard(self.etcd.compare_and_delete(bkey, rev))
            if ok:
                return current
            if latest is None:
                raise KeyNotFound(key)
            current, fresh = self.decode(latest), True
        raise Unavailable(f"too many conflicts deleting {key}")

    async def current_revision(self) -> int:
        return int(await self._guard(self.etcd.current_revision()))
