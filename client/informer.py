"""Informers: a reflector keeping an indexed cache in step with the apiserver, plus handlers.

Shaped like client-go's `tools/cache` (Reflector, Indexer, SharedIndexInformer):

- The reflector lists (paginated, `limit`/`continue`) and then watches from the list's
  resourceVersion with bookmarks. When a watch ends it resumes from the last resourceVersion
  it saw (from events or bookmarks). When the server says that version is gone (410 Expired,
  as an HTTP status or an ERROR event) it lists again and turns the difference between the
  cache and the new list into synthetic add/update/delete notifications. Connection errors
  are retried with backoff (0.8 s doubling to 30 s, jittered).
- Every handler gets its own queue and task (client-go's processorListener), so a slow
  handler does not stall the watch or other handlers, yet each handler sees the events in
  the order they happened. A handler added to a running informer first receives an add for
  every cached object.

Cached objects are shared and read-only: the store hands out the very dicts it holds (no
copies on the hot path). Consumers must not mutate them; deep-copy before changing one
(`copy.deepcopy(obj)`), as client-go's `obj.DeepCopy()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from api.errors import StatusError
from api.resources import Resource
from client.backoff import Backoff, jittered
from client.rest import ApiClient, ApiConnectionError, Obj

log = logging.getLogger(__name__)

IndexFunc = Callable[[Obj], list[str]]
KeyFunc = Callable[[Obj], str]
AddHandler = Callable[[Obj], Awaitable[None] | None]
UpdateHandler = Callable[[Obj, Obj], Awaitable[None] | None]
DeleteHandler = Callable[[Obj], Awaitable[None] | None]

ObjList = list[Obj]  # module-level aliases: inside Store, `list` names the method
KeyList = list[str]

NAMESPACE_INDEX = "namespace"


def meta_key(obj: Obj) -> str:
    """`namespace/name` for namespaced objects, `name` for cluster-scoped ones."""
    md = obj["metadata"]
    ns = md.get("namespace")
    return f"{ns}/{md['name']}" if ns else str(md["name"])


def split_meta_key(key: str) -> tuple[str | None, str]:
    """The inverse of `meta_key`: (namespace or None, name)."""
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else (None, ns)


def namespace_index(obj: Obj) -> list[str]:
    """Index function by namespace (client-go's MetaNamespaceIndexFunc)."""
    ns = obj.get("metadata", {}).get("namespace")
    return [ns] if ns else []


def resource_version(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("resourceVersion") or "")


class Store:
    """An indexed cache of objects by key, for one event loop (no locking needed).

    Only the informer writes it (`put`, `remove`); everyone else reads. Returned objects
    are the cached ones themselves: treat them as read-only.
    """

    def __init__(self, key_func: KeyFunc = meta_key) -> None:
        self.key_func = key_func
        self._items: dict[str, Obj] = {}
        self._indexers: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: str) -> Obj | None:
        return self._items.get(key)

    def list(self) -> ObjList:
        return [*self._items.values()]

    def keys(self) -> KeyList:
        return [*self._items]

    def add_index(self, name: str, fn: IndexFunc) -> None:
        """Register an index; existing objects are indexed at once."""
        if name in self._indexers:
            raise ValueError(f"index {name!r} already exists")
        self._indexers[name] = fn
        self._indices[name] = {}
        for key, obj in self._items.items():
            self._index_one(name, key, obj)

    def by_index(self, name: str, value: str) -> ObjList:
        return [self._items[key] for key in self.index_keys(name, value)]

    def index_keys(self, name: str, value: str) -> KeyList:
        if name not in self._indices:
            raise KeyError(f"no index named {name!r}")
        return sorted(self._indices[name].get(value, ()))

    def put(self, obj: Obj) -> Obj | None:
        """Insert or replace; returns the previous object under the same key."""
        key = self.key_func(obj)
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        for name in self._indexers:
            self._index_one(name, key, obj)
        return old

    def remove(self, key: str) -> Obj | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def _index_one(self, name: str, key: str, obj: Obj) -> None:
        index = self._indices[name]
        for value in self._indexers[name](obj):
            index.setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: Obj) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            for value in fn(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]


@dataclass(frozen=True)
class _Notification:
    kind: Literal["add", "update", "delete"]
    obj: Obj
    old: Obj | None = None


class _Listener:
    """One handler with its own ordered queue and task."""

    def __init__(self, name: str, on_add: AddHandler | None, on_update: UpdateHandler | None,
                 on_delete: DeleteHandler | None) -> None:
        self.name = name
        self.on_add = on_add
        self.on_update = on_update
        self.on_delete = on_delete
        self.pending: asyncio.Queue[_Notification] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.create_task(self._run(), name=self.name)

    async def _run(self) -> None:
        while True:
            note = await self.pending.get()
            try:
                result: Awaitable[None] | None = None
                if note.kind == "add" and self.on_add is not None:
                    result = self.on_add(note.obj)
                elif note.kind == "update" and self.on_update is not None:
                    assert note.old is not None
                    result = self.on_update(note.old, note.obj)
                elif note.kind == "delete" and self.on_delete is not None:
                    result = self.on_delete(note.obj)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                # A handler bug must not stop the deliveries to this handler.
                log.exception("event handler failed handler=%s event=%s key=%s", self.name,
                              note.kind, _safe_key(note.obj))
            finally:
                self.pending.task_done()


def _safe_key(obj: Obj) -> str:
    try:
        return meta_key(obj)
    except (KeyError, TypeError, AttributeError):
        return "?"


class Informer:
    """List+watch one resource (optionally one namespace and selectors) into a Store."""

    def __init__(self, api: ApiClient, resource: Resource, namespace: str | None = None, *,
                 label_selector: str | None = None, field_selector: str | None = None,
                 resync_period: float | None = None, page_size: int = 500,
                 watch_timeout: float = 300.0, backoff_initial: float = 0.8,
                 backoff_max: float = 30.0) -> None:
        self.api = api
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self.page_size = page_size
        # Watches are re-opened every watch_timeout..2*watch_timeout seconds (client-go uses
        # 5..10 min) so that many informers do not reconnect in lockstep.
        self.watch_timeout = watch_timeout
        self.store = Store()
        self.name = "informer:" + resource.group_resource + (f"/{namespace}" if namespace else "")
        self.last_resource_version = ""
        self._backoff = Backoff(backoff_initial, backoff_max, jitter=1.0)
        self._listeners: list[_Listener] = []
        self._synced = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

    # --- public ---------------------------------------------------------------------------

    @property
    def has_synced(self) -> bool:
        """True once the first list is in the store."""
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    def add_index(self, name: str, fn: IndexFunc) -> None:
        self.store.add_index(name, fn)

    def add_handler(self, on_add: AddHandler | None = None,
                    on_update: UpdateHandler | None = None,
                    on_delete: DeleteHandler | None = None) -> None:
        """Register callbacks (plain functions or coroutine functions).

        `on_update(old, new)`; `on_delete(obj)` gets the object's final state (for a delete
        noticed only by a relist: the last state the cache knew).
        """
        listener = _Listener(f"{self.name}:handler-{len(self._listeners)}", on_add, on_update,
                             on_delete)
        # Queue the replay before linking the listener in, with no await in between, so the
        # replay is exactly the state the following events apply to.
        for obj in self.store.list():
            listener.pending.put_nowait(_Notification("add", obj))
        self._listeners.append(listener)
        if self._started:
            listener.start()

    def start(self) -> None:
        """Start the reflector (and handler tasks); needs a running event loop."""
        if self._started:
            return
        self._started = True
        for listener in self._listeners:
            listener.start()
        self._tasks.append(asyncio.create_task(self._reflect(), name=self.name))
        if self.resync_period:
            self._tasks.append(asyncio.create_task(self._resync_loop(),
                                                   name=f"{self.name}:resync"))

    async def stop(self) -> None:
        """Cancel the reflector and handler tasks and wait for them to finish."""
        tasks = self._tasks + [lst.task for lst in self._listeners if lst.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for listener in self._listeners:
            listener.task = None
        self._started = False

    async def wait_handlers_idle(self) -> None:
        """Wait until every handler has processed every notification queued so far."""
        for listener in list(self._listeners):
            await listener.pending.join()

    # --- reflector ------------------------------------------------------------------------

    async def _reflect(self) -> None:
        while True:
            try:
                await self._list_and_replace()
            except (StatusError, ApiConnectionError) as e:
                await self._sleep_backoff("list", e)
                continue
            except Exception as e:
                log.exception("list failed unexpectedly informer=%s", self.name)
                await self._sleep_backoff("list", e)
                continue
            self._synced.set()
            await self._watch_until_expired()

    async def _list_and_replace(self) -> None:
        items: list[Obj] = []
        continue_token: str | None = None
        list_rv = ""
        while True:
            page = await self.api.list(self.resource, self.namespace,
                                       label_selector=self.label_selector,
                                       field_selector=self.field_selector,
                                       limit=self.page_size, continue_=continue_token)
            for item in page.get("items") or []:
                # List items come without kind/apiVersion; fill them so cached objects look
                # the same whether they came from a list or a watch event.
                item.setdefault("kind", self.resource.kind)
                item.setdefault("apiVersion", self.resource.group_version)
                items.append(item)
            md = page.get("metadata") or {}
            list_rv = str(md.get("resourceVersion") or list_rv)
            continue_token = md.get("continue") or None
            if not continue_token:
                break
        self._replace(items)
        self.last_resource_version = list_rv
        self._backoff.reset()
        log.debug("listed informer=%s items=%d resourceVersion=%s", self.name, len(items),
                  list_rv)

    def _replace(self, items: Iterable[Obj]) -> None:
        """Make the store equal the list, notifying the differences."""
        seen: set[str] = set()
        for obj in items:
            key = self.store.key_func(obj)
            seen.add(key)
            old = self.store.put(obj)
            if old is None:
                self._notify(_Notification("add", obj))
            elif resource_version(old) != resource_version(obj):
                self._notify(_Notification("update", obj, old))
        cached = self.store.keys()
        for key in [k for k in cached if k not in seen]:
            gone = self.store.remove(key)
            if gone is not None:
                self._notify(_Notification("delete", gone))

    async def _watch_until_expired(self) -> None:
        """Watch, re-watching from the last resourceVersion, until a relist is needed."""
        loop = asyncio.get_running_loop()
        while True:
            started, events = loop.time(), 0
            timeout = int(jittered(self.watch_timeout, 1.0)) or 1
            try:
                stream = self.api.watch(self.resource, self.namespace,
                                        resource_version=self.last_resource_version,
                                        label_selector=self.label_selector,
                                        field_selector=self.field_selector,
                                        timeout_seconds=timeout, allow_bookmarks=True)
                async with contextlib.aclosing(stream):
                    async for kind, obj in stream:
                        events += 1
                        self._apply(kind, obj)
            except StatusError as e:
                if e.code == 410:  # Expired / Gone: our resourceVersion was compacted away
                    log.info("watch expired, relisting informer=%s resourceVersion=%s",
                             self.name, self.last_resource_version)
                    return
                await self._sleep_backoff("watch", e)
                continue
            except ApiConnectionError as e:
                await self._sleep_backoff("watch", e)
                continue
            except Exception as e:
                log.exception("watch failed unexpectedly informer=%s", self.name)
                await self._sleep_backoff("watch", e)
                continue
            if events:
                self._backoff.reset()
            elif loop.time() - started < 1.0:
                # A server that closes watches at once would otherwise make us spin.
                await self._sleep_backoff("watch", None)

    def _apply(self, kind: str, obj: Obj) -> None:
        rv = resource_version(obj)
        if kind in ("ADDED", "MODIFIED"):
            old = self.store.put(obj)
            if old is None:
                self._notify(_Notification("add", obj))
            else:
                self._notify(_Notification("update", obj, old))
        elif kind == "DELETED":
            # Unknown objects are not announced: no handler ever saw them added.
            if self.store.remove(self.store.key_func(obj)) is not None:
                self._notify(_Notification("delete", obj))
        elif kind != "BOOKMARK":
            log.warning("unknown watch event type informer=%s type=%s", self.name, kind)
            return
        if rv:
            self.last_resource_version = rv

    def _notify(self, note: _Notification) -> None:
        for listener in self._listeners:
            listener.pending.put_nowait(note)

    async def _sleep_backoff(self, what: str, error: Exception | None) -> None:
        delay = self._backoff.next()
        log.warning("%s failed informer=%s retry_in=%.2fs error=%s", what, self.name, delay,
                    error)
        await asyncio.sleep(delay)

    async def _resync_loop(self) -> None:
        assert self.resync_period
        await self._synced.wait()
        while True:
            await asyncio.sleep(self.resync_period)
            for obj in self.store.list():
                self._notify(_Notification("update", obj, obj))


@dataclass(frozen=True)
class _InformerKey:
    resource: Resource
    namespace: str | None
    label_selector: str | None
    field_selector: str | None


class SharedInformerFactory:
    """One informer per (resource, namespace, selectors), shared by a component's controllers."""

    def __init__(self, api: ApiClient, *, resync_period: float | None = None) -> None:
        self.api = api
        self.resync_period = resync_period
        self._informers: dict[_InformerKey, Informer] = {}

    def informer_for(self, resource: Resource, namespace: str | None = None, *,
                     label_selector: str | None = None,
                     field_selector: str | None = None) -> Informer:
        key = _InformerKey(resource, namespace, label_selector, field_selector)
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(self.api, resource, namespace, label_selector=label_selector,
                                field_selector=field_selector,
                                resync_period=self.resync_period)
            self._informers[key] = informer
        return informer

    @property
    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    def start_all(self) -> None:
        """Start every informer not yet started (call again after adding informers)."""
        for informer in self._informers.values():
            informer.start()

    async def wait_for_cache_sync(self, timeout: float | None = None) -> None:
        """Wait until every informer has synced; raises TimeoutError after `timeout`."""
        waits = [inf.wait_synced() for inf in self._informers.values()]
        await asyncio.wait_for(asyncio.gather(*waits), timeout)

    async def stop_all(self) -> None:
        await asyncio.gather(*(inf.stop() for inf in self._informers.values()))
