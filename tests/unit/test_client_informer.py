"""Informer against a fake apiserver that serves paginated lists and NDJSON watch streams."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from api.resources import CATALOGUE, Resource
from client.informer import (
    NAMESPACE_INDEX,
    Informer,
    SharedInformerFactory,
    Store,
    meta_key,
    namespace_index,
    split_meta_key,
)
from client.kubeconfig import ClientConfig
from client.rest import NO_RETRY, ApiClient

Obj = dict[str, Any]


def _res(plural: str) -> Resource:
    r = CATALOGUE.by_plural(plural)
    assert r is not None
    return r


PODS, NODES = _res("pods"), _res("nodes")


@dataclass
class Entry:
    rv: int
    kind: str
    obj: Obj


class FakeCluster:
    """Pods in memory with an event history; the watch replays history after a version."""

    def __init__(self) -> None:
        self.rv = 100
        self.objects: dict[str, Obj] = {}
        self.history: list[Entry] = []
        self.compacted = 0  # watches from a version below this get 410 Expired
        self.expire_as_http = False  # 410 as an HTTP status instead of an ERROR event
        self.fail_watches = 0  # answer the next N watches with 500
        self.cut_next_watch_after = 0  # drop the connection after N events
        self.lists: list[dict[str, str]] = []
        self.watches: list[dict[str, str]] = []
        self._generation = 0
        self._changed = asyncio.Event()

    # --- changes made by the test ---

    def upsert(self, name: str, ns: str = "default", *, silent: bool = False,
               **fields: Any) -> Obj:
        """Create or update a pod; `silent` changes it with no watch event (lost history)."""
        key = f"{ns}/{name}"
        kind = "MODIFIED" if key in self.objects else "ADDED"
        self.rv += 1
        obj = {"kind": "Pod", "apiVersion": "v1",
               "metadata": {"name": name, "namespace": ns, "resourceVersion": str(self.rv)},
               **fields}
        self.objects[key] = obj
        if not silent:
            self._record(kind, obj)
        return obj

    def delete(self, name: str, ns: str = "default", *, silent: bool = False) -> None:
        obj = copy.deepcopy(self.objects.pop(f"{ns}/{name}"))
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        obj["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
        if not silent:
            self._record("DELETED", obj)

    def bookmark(self) -> None:
        self.rv += 1  # other kinds were written meanwhile
        self._record("BOOKMARK", {"kind": "Pod", "apiVersion": "v1",
                                  "metadata": {"resourceVersion": str(self.rv)}})

    def compact(self) -> None:
        self.compacted = self.rv

    def end_watches(self) -> None:
        self._generation += 1
        self._wake()

    def _record(self, kind: str, obj: Obj) -> None:
        self.history.append(Entry(self.rv, kind, copy.deepcopy(obj)))
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # --- HTTP ---

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/pods", self.handle)
        app.router.add_get("/api/v1/namespaces/{ns}/pods", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") == "true":
            return await self.watch(request)
        return self.list_pods(request)

    def list_pods(self, request: web.Request) -> web.Response:
        q = request.query
        self.lists.append(dict(q))
        ns = request.match_info.get("ns")
        token = q.get("continue")
        snapshot_rv, start = (int(x) for x in token.split(":")) if token else (self.rv, 0)
        keys = sorted(k for k in self.objects if ns is None or k.startswith(f"{ns}/"))
        limit = int(q.get("limit") or len(keys) or 1)
        page = keys[start:start + limit]
        items = []
        for key in page:
            item = copy.deepcopy(self.objects[key])
            del item["kind"], item["apiVersion"]  # as the real API does inside lists
            items.append(item)
        md: Obj = {"resourceVersion": str(snapshot_rv)}
        if start + limit < len(keys):
            md["continue"] = f"{snapshot_rv}:{start + limit}"
        return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": md,
                                  "items": items})

    async def watch(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        self.watches.append(dict(q))
        if self.fail_watches:
            self.fail_watches -= 1
            return web.json_response({"kind": "Status", "code": 500, "reason": "InternalError",
                                      "message": "etcd hiccup"}, status=500)
        since = int(q.get("resourceVersion") or 0)
        if since < self.compacted:
            status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410,
                      "reason": "Expired",
                      "message": f"too old resource version: {since} ({self.compacted})"}
            if self.expire_as_http:
                return web.json_response(status, status=410)
            return await self._stream(request, [{"type": "ERROR", "object": status}])
        resp = web.StreamResponse()
        resp.content_type = "application/json"
        await resp.prepare(request)
        generation, cut_after, sent = self._generation, self.cut_next_watch_after, 0
        self.cut_next_watch_after = 0
        pos = next((i for i, e in enumerate(self.history) if e.rv > since), len(self.history))
        while True:
            changed = self._changed
            while pos < len(self.history):
                entry = self.history[pos]
                pos += 1
                await resp.write(json.dumps({"type": entry.kind, "object": entry.obj}).encode()
                                 + b"\n")
                sent += 1
                if cut_after and sent >= cut_after:
                    assert request.transport is not None
                    request.transport.close()  # a broken connection, not a clean end
                    return resp
            if generation != self._generation or request.transport is None \
                    or request.transport.is_closing():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), 0.05)
        with contextlib.suppress(ConnectionResetError):  # the client may have gone already
            await resp.write_eof()
        return resp

    async def _stream(self, request: web.Request, events: list[Obj]) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_type = "application/json"
        await resp.prepare(request)
        for event in events:
            await resp.write(json.dumps(event).encode() + b"\n")
        await resp.write_eof()
        return resp


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[FakeCluster, ApiClient]]:
    fake = FakeCluster()
    async with TestServer(fake.app()) as server:
        cfg = ClientConfig(server=str(server.make_url("")).rstrip("/"))
        async with ApiClient(cfg, retry=NO_RETRY) as api:
            yield fake, api
            fake.end_watches()


def informer(api: ApiClient, **kwargs: Any) -> Informer:
    kwargs.setdefault("backoff_initial", 0.01)
    kwargs.setdefault("backoff_max", 0.05)
    return Informer(api, PODS, **kwargs)


async def eventually(check: Callable[[], bool], timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


class Recorder:
    """Records handler calls as (event, key, resourceVersion)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.deleted: list[Obj] = []

    @staticmethod
    def _id(obj: Obj) -> tuple[str, str]:
        return meta_key(obj), obj["metadata"]["resourceVersion"]

    def on_add(self, obj: Obj) -> None:
        self.calls.append(("add", *self._id(obj)))

    async def on_update(self, old: Obj, new: Obj) -> None:
        await asyncio.sleep(0)  # coroutine handlers are awaited in order too
        assert meta_key(old) == meta_key(new)
        self.calls.append(("update", *self._id(new)))

    def on_delete(self, obj: Obj) -> None:
        self.deleted.append(obj)
        self.calls.append(("delete", *self._id(obj)))

    def attach(self, inf: Informer) -> Recorder:
        inf.add_handler(self.on_add, self.on_update, self.on_delete)
        return self


# --- store ------------------------------------------------------------------------------------

def _pod(name: str, node: str, ns: str = "default") -> Obj:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"nodeName": node}}


def test_keys() -> None:
    assert meta_key(_pod("a", "n")) == "default/a"
    assert meta_key({"metadata": {"name": "n1"}}) == "n1"
    assert split_meta_key("default/a") == ("default", "a")
    assert split_meta_key("n1") == (None, "n1")


def test_store_indexes_follow_updates_and_deletes() -> None:
    store = Store()
    store.put(_pod("a", "n1"))
    store.add_index("node", lambda o: [o["spec"]["nodeName"]])  # indexes existing objects
    store.add_index(NAMESPACE_INDEX, namespace_index)
    store.put(_pod("b", "n1", ns="other"))
    assert store.index_keys("node", "n1") == ["default/a", "other/b"]
    store.put(_pod("a", "n2"))
    assert store.index_keys("node", "n1") == ["other/b"]
    assert [meta_key(o) for o in store.by_index("node", "n2")] == ["default/a"]
    assert [meta_key(o) for o in store.by_index(NAMESPACE_INDEX, "other")] == ["other/b"]
    assert store.remove("other/b") is not None
    assert store.by_index("node", "n1") == []
    assert store.keys() == ["default/a"] and len(store) == 1 and "default/a" in store
    with pytest.raises(KeyError):
        store.by_index("nope", "x")
    with pytest.raises(ValueError, match="exists"):
        store.add_index("node", lambda o: [])


# --- reflector --------------------------------------------------------------------------------

async def test_list_paginates_then_watches_in_order(
        cluster: tuple[FakeCluster, ApiClient]) -> None:
    fake, api = cluster
    for name in "abcde":
        fake.upsert(name, spec={"nodeName": "n1"})
    inf = informer(api, page_size=2)
    rec = Recorder().attach(inf)
    inf.start()
    await asyncio.wait_for(inf.wait_synced(), 2)
    assert inf.has_synced
    assert [q.get("continue") for q in fake.lists] == [None, "105:2", "105:4"]
    assert all(q["limit"] == "2" for q in fake.lists)
    assert sorted(inf.store.keys()) == [f"default/{n}" for n in "abcde"]
    assert inf.store.get("default/a")["kind"] == "Pod"  # type: ignore[index]

    await eventually(lambda: len(fake.watches) == 1)
    assert fake.watches[0]["resourceVersion"] == "105"
    assert fake.watches[0]["allowWatchBookmarks"] == "true"
    fake.upsert("a", spec={"nodeName": "n2"})
    fake.delete("b")
    fake.upsert("f")
    await eventually(lambda: len(rec.calls) == 8)
    assert rec.calls == [("add", f"default/{n}", str(101 + i)) for i, n in enumerate("abcde")] + [
        ("update", "default/a", "106"), ("delete", "default/b", "107"), ("add", "default/f", "108")]
    # the delete handler gets the object's final state from the DELETED event
    assert rec.deleted[0]["metadata"]["deletionTimestamp"] == "2024-01-01T00:00:00Z"
    assert inf.last_resource_version == "108"
    await inf.stop()


async def test_index_lookup_through_informer(cluster: tuple[FakeCluster, ApiClient]) -> None:
    fake, api = cluster
    fake.upsert("a", spec={"nodeName": "n1"})
    inf = informer(api)
    inf.add_index("node", lambda o: [o.get("spec", {}).get("nodeName", "")])
    inf.start()
    await asyncio.wait_for(inf.wait_synced(), 2)
    await eventually(lambda: len(fake.watches) == 1)
    fake.upsert("b", spec={"nodeName": "n1"})
    fake.upsert("a", spec={"nodeName": "n2"})
    await eventually(lambda: inf.last_resource_version == str(fake.rv))
    assert [meta_key(o) for o in inf.store.by_index("node", "n1")] == ["default/b"]
    assert [meta_key(o) for o in inf.store.by_index("node", "n2")] == ["default/a"]
    await inf.stop()


async def test_rewatch_resumes_from_last_seen_version(
        cluster: tuple[FakeCluster, ApiClient]) -> None:
    fake, api = cluster
    fake.upsert("a")
    inf = informer(api)
    rec = Recorder().attach(inf)
    inf.start()
    await eventually(lambda: len(fake.watches) == 1)
    fake.upsert("b")
    fake.bookmark()  # moves the version past the last pod event
    await eventually(lambda: inf.last_resource_version == str(fake.rv))
    fake.end_watches()  # e.g. the server's timeoutSeconds ran out
    await eventually(lambda: len(fake.watches) == 2)
    assert fake.watches[1]["resourceVersion"] == "103"
    fake.upsert("c")
    await eventually(lambda: len(rec.calls) == 3)
    assert [c[1] for c in rec.calls] == ["default/a", "default/b", "default/c"]
    assert len(fake.lists) == 1  # resumed, never relisted
    await inf.stop()


async def test_broken_stream_backs_off_and_resumes(
        cluster: tuple[FakeCluster, ApiClient]) -> None:
    fake, api = cluster
    inf = informer(api)
    rec = Recorder().attach(inf)
    fake.upsert("a")
    fake.upsert("b")
    fake.fail_watches = 2  # two 500s first
    fake.cut_next_watch_after = 0
    inf.start()
    await eventually(lambda: len(fake.watches) == 3)
    fake.cut_next_watch_after = 1
    fake.end_watches()  # ends the healthy watch; the next one is cut after one event
    await eventually(lambda: len(fake.watches) == 4)
    fake.upsert("c")
    fake.upsert("d")
    await eventually(lambda: len(rec.calls) == 4)
    assert [c[1] for c in rec.calls] == [f"default/{n}" for n in "abcd"]
    assert [w["resourceVersion"] for w in fake.watches] == ["102", "102", "102", "102", "103"]
    assert len(fake.lists) == 1
    await inf.stop()


@pytest.mark.parametrize("expire_as_http", [False, True])
async def test_relist_on_expired_emits_synthetic_events(
        cluster: tuple[FakeCluster, ApiClient], expire_as_http: bool) -> None:
    fake, api = cluster
    fake.expire_as_http = expire_as_http
    fake.upsert("keep")
    fake.upsert("change")
    fake.upsert("gone", spec={"last": "known"})
    inf = informer(api)
    rec = Recorder().attach(inf)
    inf.start()
    await eventually(lambda: len(fake.watches) == 1 and len(rec.calls) == 3)
    # Changes the informer never hears about, then their history is compacted away.
    fake.upsert("change", silent=True)
    fake.delete("gone", silent=True)
    fake.upsert("new", silent=True)
    fake.compact()
    fake.end_watches()
    await eventually(lambda: len(fake.lists) == 2 and len(rec.calls) == 6)
    assert rec.calls[3:] == [("update", "default/change", "104"), ("add", "default/new", "106"),
                             ("delete", "default/gone", "103")]
    assert rec.deleted[0]["spec"] == {"last": "known"}  # last state the cache knew
    assert sorted(inf.store.keys()) == ["default/change", "default/keep", "default/new"]
    await eventually(lambda: len(fake.watches) == 3)
    assert fake.watches[2]["resourceVersion"] == "106"
    await inf.stop()


async def test_handlers_see_same_order_and_late_handler_gets_replay(
        cluster: tuple[FakeCluster, ApiClient]) -> None:
    fake, api = cluster
    fake.upsert("a")
    fake.upsert("b")
    inf = informer(api)
    first = Recorder().attach(inf)
    inf.start()
    await asyncio.wait_for(inf.wait_synced(), 2)
    late = Recorder().attach(inf)  # existing objects are replayed as adds
    fake.upsert("a")
    await eventually(lambda: len(first.calls) == 3 and len(late.calls) == 3)
    await inf.wait_handlers_idle()
    assert late.calls == first.calls == [("add", "default/a", "101"),
                                         ("add", "default/b", "102"),
                                         ("update", "default/a", "103")]
    await inf.stop()


async def test_failing_handler_does_not_stop_delivery(
        cluster: tuple[FakeCluster, ApiClient]) -> None:
    fake, api = cluster
    inf = informer(api)
    seen: list[str] = []

    def flaky(obj: Obj) -> None:
        seen.append(obj["metadata"]["name"])
        if obj["metadata"]["name"] == "a":
            raise RuntimeError("handler bug")

    inf.add_handler(on_add=flaky)
    fake.upsert("a")
    fake.upsert("b")
    inf.start()
    await eventually(lambda: seen == ["a", "b"])
    await inf.stop()


async def test_resync_replays_updates(cluster: tuple[FakeCluster, ApiClient]) -> None:
    fake, api = cluster
    fake.upsert("a")
    inf = informer(api, resync_period=0.05)
    updates: list[tuple[Obj, Obj]] = []
    inf.add_handler(on_update=lambda old, new: updates.append((old, new)))
    inf.start()
    await eventually(lambda: len(updates) >= 2)
    assert all(old is new for old, new in updates)
    await inf.stop()


async def test_stop_cancels_every_task(cluster: tuple[FakeCluster, ApiClient]) -> None:
    _, api = cluster
    inf = informer(api)
    Recorder().attach(inf)
    inf.start()
    await asyncio.wait_for(inf.wait_synced(), 2)
    assert any(t.get_name().startswith("informer:pods") for t in asyncio.all_tasks())
    await asyncio.wait_for(inf.stop(), 1)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("informer:")]


async def test_shared_factory(cluster: tuple[FakeCluster, ApiClient]) -> None:
    fake, api = cluster
    fake.upsert("a", ns="default")
    fake.upsert("b", ns="other")
    factory = SharedInformerFactory(api)
    everywhere = factory.informer_for(PODS)
    assert factory.informer_for(PODS) is everywhere
    in_default = factory.informer_for(PODS, "default")
    assert in_default is not everywhere
    assert factory.informer_for(PODS, label_selector="app=x") is not everywhere
    factory.start_all()
    await factory.wait_for_cache_sync(timeout=2)
    assert sorted(everywhere.store.keys()) == ["default/a", "other/b"]
    assert in_default.store.keys() == ["default/a"]
    assert {"labelSelector": "app=x", "limit": "500"} in fake.lists
    await factory.stop_all()
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("informer:")]
