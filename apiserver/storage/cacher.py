"""The watch cache: one etcd watch per resource, fanned out to any number of watchers.

As upstream's Cacher it wraps the etcd storage: writes go straight to etcd; watches, and
lists that can be served from memory, come from a copy of the resource kept current by a
single etcd watch. A bounded history of recent events lets a watcher resume from any
resourceVersion still in the window; older ones get 410 Expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from apiserver.storage.etcd3 import Compacted, EtcdError, prefix_end
from apiserver.storage.etcd_store import EtcdStorage
from apiserver.storage.interface import (
    ListResult,
    Obj,
    Preconditions,
    Predicate,
    TooOld,
    TryUpdate,
    Unavailable,
)

log = logging.getLogger(__name__)

HISTORY_SIZE = 10_000
WATCHER_QUEUE_LIMIT = 50_000


@dataclass
class CacheEvent:
    type: str  # ADDED, MODIFIED, DELETED
    key: str
    object: Obj  # for DELETED: the last state, carrying the deletion's resourceVersion
    prev: Obj | None
    revision: int


class WatchClosed(Exception):
    """The watcher fell too far behind, or the cache was reset; the client must re-watch."""


@dataclass(eq=False)  # identity-hashed: watchers live in a set
class Watcher:
    prefix: str
    predicate: Predicate | None
    cacher: Cacher
    queue: asyncio.Queue[tuple[str, Obj] | None] = field(default_factory=asyncio.Queue)
    closed_reason: str | None = None

    async def next(self, timeout: float) -> tuple[str, Obj] | None:
        """The next event, or None after `timeout` seconds without one."""
        try:
            item = await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None
        if item is None:
            raise WatchClosed(self.closed_reason or "closed")
        return item

    def bookmark(self) -> tuple[str, Obj]:
        return "BOOKMARK", {"metadata": {"resourceVersion": str(self.cacher.revision)}}

    def stop(self) -> None:
        self.cacher.watchers.discard(self)

    def offer(self, ev: CacheEvent) -> None:
        if not ev.key.startswith(self.prefix) or self.closed_reason:
            return
        pred = self.predicate
        if pred is None:
            self._put(ev.type, ev.object)
            return
        if ev.type == "ADDED":
            if pred(ev.object):
                self._put("ADDED", ev.object)
        elif ev.type == "DELETED":
            if pred(ev.object):
                self._put("DELETED", ev.object)
        else:
            new_ok = pred(ev.object)
            old_ok = ev.prev is not None and pred(ev.prev)
            # An object entering or leaving the selection looks like an add or a delete.
            if new_ok and old_ok:
                self._put("MODIFIED", ev.object)
            elif new_ok:
                self._put("ADDED", ev.object)
            elif old_ok:
                self._put("DELETED", ev.object)

    def _put(self, type_: str, obj: Obj) -> None:
        if self.queue.qsize() >= WATCHER_QUEUE_LIMIT:
            self.close("watcher too slow")
            return
        self.queue.put_nowait((type_, obj))

    def close(self, reason: str) -> None:
        if not self.closed_reason:
            self.closed_reason = reason
            self.queue.put_nowait(None)


class Cacher:
    """Watch cache for one resource (one etcd key prefix)."""

    def __init__(self, storage: EtcdStorage, prefix: str, resource: str,
                 history_size: int = HISTORY_SIZE) -> None:
        self.storage = storage
        self.prefix = prefix
        self.resource = resource
        self.objects: dict[str, Obj] = {}
        self.history: deque[CacheEvent] = deque(maxlen=history_size)
        self.revision = 0  # every change up to this revision is in `objects`
        self.oldest = 0  # the oldest revision a watcher may resume from
        self.watchers: set[Watcher] = set()
        self._ready = asyncio.Event()
        self._advanced = asyncio.Condition()
        self._progress_now = asyncio.Event()  # ask etcd for its revision without waiting
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"watch-cache:{self.resource}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for w in list(self.watchers):
            w.close("apiserver shutting down")

    async def wait_ready(self, timeout: float = 30.0) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def _run(self) -> None:
        delay = 0.1
        while True:
            try:
                await self._relist()
                self._ready.set()
                delay = 0.1
                await self._follow()
            except asyncio.CancelledError:
                raise
            except (Compacted, TooOld) as e:
                log.warning("watch cache %s: %s; relisting", self.resource, e)
                self._reset("watch cache relisted after compaction")
            except (EtcdError, Unavailable) as e:
                log.warning("watch cache %s: %s; retrying in %.1fs", self.resource, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                # Try to continue from where we were; _follow raises Compacted if we cannot.
                if self._ready.is_set():
                    try:
                        await self._follow()
                    except (Compacted, TooOld):
                        self._reset("watch cache relisted after compaction")
                    except (EtcdError, Unavailable):
                        pass
            except Exception:
                log.exception("watch cache %s failed; relisting", self.resource)
                self._reset("watch cache failed")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _reset(self, reason: str) -> None:
        for w in list(self.watchers):
            w.close(reason)
        self.watchers.clear()
        self._ready.clear()

    async def _relist(self) -> None:
        result = await self.storage.list(self.prefix)
        self.objects = {self._key_of(o): o for o in result.items}
        self.history.clear()
        self.revision = result.resource_version
        self.oldest = result.resource_version

    def _key_of(self, obj: Obj) -> str:
        md = obj["metadata"]
        ns = md.get("namespace")
        return f"{self.prefix}{ns}/{md['name']}" if ns else f"{self.prefix}{md['name']}"

    async def _follow(self) -> None:
        bprefix = self.prefix.encode()
        async for batch in self.storage.etcd.watch(bprefix, prefix_end(bprefix),
                                                   self.revision + 1,
                                                   progress_now=self._progress_now):
            for ev in batch.events:
                key = ev.kv.key.decode()
                rev = int(ev.kv.mod_revision)
                prev = self.objects.get(key)
                if ev.type == ev.PUT:
                    obj = self.storage.take_written(key, rev) or self.storage.decode(ev.kv)
                    self.objects[key] = obj
                    ce = CacheEvent("ADDED" if prev is None else "MODIFIED", key, obj, prev, rev)
                else:
                    self.objects.pop(key, None)
                    if prev is None:
                        continue
                    gone = {**prev, "metadata": {**prev["metadata"],
                                                 "resourceVersion": str(rev)}}
                    ce = CacheEvent("DELETED", key, gone, prev, rev)
                if len(self.history) == self.history.maxlen:
                    self.oldest = self.history[0].revision
                self.history.append(ce)
                self.revision = rev
                for w in list(self.watchers):
                    w.offer(ce)
            if batch.progress:
                # Only a progress notification promises nothing older is still on its way
                # (an event batch's header may run ahead while etcd catches a watcher up).
                self.revision = max(self.revision, batch.revision)
            async with self._advanced:
                self._advanced.notify_all()

    # -- reads ----------------------------------------------------------------------------

    async def wait_for_revision(self, revision: int, timeout: float = 3.0) -> None:
        """Wait until the cache has seen everything up to `revision` (504 if it cannot)."""
        await self.wait_ready()
        if self.revision >= revision:
            return
        deadline = time.monotonic() + timeout
        # Writes to other resources move etcd's revision too; a progress notification tells
        # this cache it has seen everything up to there.
        self._progress_now.set()
        async with self._advanced:
            while self.revision < revision:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"Too large resource version: {revision}, current: "
                                       f"{self.revision}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._advanced.wait(), left)

    async def list(self, prefix: str, predicate: Predicate | None, *,
                   consistent: bool) -> ListResult:
        """List from memory; `consistent` first waits for etcd's current revision."""
        if consistent:
            await self.wait_for_revision(await self.storage.current_revision())
        else:
            await self.wait_ready()
        rev = self.revision
        keys = sorted(k for k in self.objects if k.startswith(prefix))
        objs = self.objects
        if predicate is None:
            items = [objs[k] for k in keys]
        else:
            items = [o for o in (objs[k] for k in keys) if predicate(o)]
        return ListResult(items, rev)

    def get_cached(self, key: str) -> Obj | None:
        return self.objects.get(key)

    async def watch(self, prefix: str, revision: int | None,
                    predicate: Predicate | None) -> Watcher:
        """A registered watcher fed with events after `revision`; with None, the current
        state first as ADDED events. The caller must `close_watch` it."""
        if revision:
            await self.wait_for_revision(revision)
        else:
            await self.wait_ready()
        w = Watcher(prefix, predicate, self)
        # Replaying and registering happen without awaiting in between, so no event is
        # missed or delivered twice.
        if not revision:
            for key in sorted(self.objects):
                if key.startswith(prefix):
                    obj = self.objects[key]
                    if predicate is None or predicate(obj):
                        w.queue.put_nowait(("ADDED", obj))
        else:
            if revision < self.oldest:
                raise TooOld(f"too old resource version: {revision} ({self.oldest + 1})")
            for ev in self.history:
                if ev.revision > revision:
                    w.offer(ev)
        self.watchers.add(w)
        return w


class CachedStorage:
    """Storage for one resource: etcd for writes and exact reads, the cache for the rest."""

    def __init__(self, storage: EtcdStorage, cacher: Cacher, *, ttl: int = 0) -> None:
        self.etcd_storage = storage
        self.cacher = cacher
        # Seconds every written object lives before etcd deletes it (Events: --event-ttl).
        self.ttl = ttl

    async def create(self, key: str, obj: Obj) -> Obj:
        return await self.etcd_storage.create(key, obj, ttl=self.ttl)

    async def get(self, key: str) -> Obj:
        return await self.etcd_storage.get(key)

    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0,
                   start_key: str | None = None,
                   predicate: Predicate | None = None) -> ListResult:
        return await self.etcd_storage.list(prefix, revision=revision, limit=limit,
                                            start_key=start_key, predicate=predicate)

    async def guaranteed_update(self, key: str, try_update: TryUpdate, *,
                                preconditions: Preconditions | None = None,
                                current: Obj | None = None) -> Obj:
        return await self.etcd_storage.guaranteed_update(
            key, try_update, preconditions=preconditions,
            current=current if current is not None else self.cacher.get_cached(key),
            ttl=self.ttl)

    async def delete(self, key: str, *, preconditions: Preconditions | None = None,
                     validate: Callable[[Obj], None] | None = None) -> Obj:
        return await self.etcd_storage.delete(key, preconditions=preconditions,
                                              validate=validate,
                                              current=self.cacher.get_cached(key))

    async def current_revision(self) -> int:
        return await self.etcd_storage.current_revision()
