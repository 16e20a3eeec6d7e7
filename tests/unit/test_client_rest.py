"""ApiClient against a tiny aiohttp app standing in for the apiserver (only HTTP is faked)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from api import errors
from api.resources import CATALOGUE, Resource
from client.kubeconfig import ClientConfig
from client.rest import ApiClient, ApiConnectionError, RetryPolicy, resource_path


def res(plural: str) -> Resource:
    r = CATALOGUE.by_plural(plural)
    assert r is not None
    return r


PODS, DEPLOYMENTS, NODES, NAMESPACES = (res("pods"), res("deployments"), res("nodes"),
                                        res("namespaces"))
FAST = RetryPolicy(max_attempts=5, initial_delay=0.01, max_delay=0.05, max_total=5.0)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeApi:
    """Records every request; answers from per-(method, path) scripts, else echoes."""

    seen: list[Seen] = field(default_factory=list)
    scripts: dict[tuple[str, str], list[Handler]] = field(default_factory=dict)

    def script(self, method: str, path: str, *handlers: Handler) -> None:
        self.scripts.setdefault((method, path), []).extend(handlers)

    def calls(self, method: str, path: str) -> int:
        return sum(1 for s in self.seen if (s.method, s.path) == (method, path))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body: Any = None
        if raw:
            body = json.loads(raw)
        self.seen.append(Seen(request.method, request.path, dict(request.query),
                              dict(request.headers), body))
        script = self.scripts.get((request.method, request.path))
        if script:
            return await (script.pop(0) if len(script) > 1 else script[0])(request)
        return web.json_response({"echo": True, "body": body}, status=200)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app


def status(code: int, reason: str, message: str = "boom",
           headers: dict[str, str] | None = None) -> Handler:
    async def respond(_: web.Request) -> web.Response:
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                  "code": code, "reason": reason, "message": message},
                                 status=code, headers=headers)
    return respond


def text(code: int, body: str) -> Handler:
    async def respond(_: web.Request) -> web.Response:
        return web.Response(status=code, text=body)
    return respond


def ok(obj: dict[str, Any], code: int = 200) -> Handler:
    async def respond(_: web.Request) -> web.Response:
        return web.json_response(obj, status=code)
    return respond


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeApi, ApiClient]]:
    api = FakeApi()
    async with TestServer(api.app()) as server:
        cfg = ClientConfig(server=str(server.make_url("")).rstrip("/"), token="tok")
        async with ApiClient(cfg, component="tests", retry=FAST) as client:
            yield api, client


# --- paths ------------------------------------------------------------------------------------

@pytest.mark.parametrize("resource, ns, name, sub, expected", [
    (PODS, "default", "web", None, "/api/v1/namespaces/default/pods/web"),
    (PODS, "default", "web", "binding", "/api/v1/namespaces/default/pods/web/binding"),
    (PODS, "default", None, None, "/api/v1/namespaces/default/pods"),
    (PODS, None, None, None, "/api/v1/pods"),
    (DEPLOYMENTS, "prod", "api", "scale", "/apis/apps/v1/namespaces/prod/deployments/api/scale"),
    (DEPLOYMENTS, None, None, None, "/apis/apps/v1/deployments"),
    (NODES, "ignored", "n1", "status", "/api/v1/nodes/n1/status"),
    (NAMESPACES, None, "kube-system", None, "/api/v1/namespaces/kube-system"),
])
def test_resource_path(resource: Resource, ns: str | None, name: str | None, sub: str | None,
                       expected: str) -> None:
    assert resource_path(resource, ns, name, sub) == expected


def test_subresource_needs_name() -> None:
    with pytest.raises(ValueError, match="name"):
        resource_path(PODS, "default", None, "status")


# --- verbs ------------------------------------------------------------------------------------

POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "web", "namespace": "default", "resourceVersion": "7"}}


async def test_verbs_map_to_kubernetes_requests(fake: tuple[FakeApi, ApiClient]) -> None:
    api, client = fake
    await client.get(PODS, "web", "default")
    await client.list(PODS, label_selector="app=web", field_selector="spec.nodeName=n1",
                      limit=50, continue_="tok123", resource_version="0")
    await client.create(PODS, POD, dry_run=True)
    await client.update(PODS, POD)
    await client.update_status(PODS, POD)
    await client.patch(DEPLOYMENTS, "api", {"spec": {"replicas": 3}}, "prod")
    await client.patch(PODS, "web", [{"op": "remove", "path": "/x"}], "default", "json")
    await client.patch(PODS, "web", {"metadata": {}}, "default", "strategic", "status")
    await client.patch(PODS, "web", POD, "default", "apply", force=True)
    await client.delete(PODS, "web", "default", grace_period_seconds=0,
                        propagation_policy="Foreground", preconditions={"uid": "u1"})
    await client.create_subresource(PODS, "web", "binding", {
        "kind": "Binding", "metadata": {"name": "web", "namespace": "default"},
        "target": {"kind": "Node", "name": "n1"}})
    await client.delete(NODES, "n1")

    got = [(s.method, s.path, s.query, s.headers.get("Content-Type"), s.body)
           for s in api.seen]
    pod_path = "/api/v1/namespaces/default/pods/web"
    assert got == [
        ("GET", pod_path, {}, None, None),
        ("GET", "/api/v1/pods", {"labelSelector": "app=web", "fieldSelector": "spec.nodeName=n1",
                                 "limit": "50", "continue": "tok123", "resourceVersion": "0"},
         None, None),
        ("POST", "/api/v1/namespaces/default/pods", {"dryRun": "All"}, "application/json", POD),
        ("PUT", pod_path, {}, "application/json", POD),
        ("PUT", pod_path + "/status", {}, "application/json", POD),
        ("PATCH", "/apis/apps/v1/namespaces/prod/deployments/api", {},
         "application/merge-patch+json", {"spec": {"replicas": 3}}),
        ("PATCH", pod_path, {}, "application/json-patch+json", [{"op": "remove", "path": "/x"}]),
        ("PATCH", pod_path + "/status", {}, "application/strategic-merge-patch+json",
         {"metadata": {}}),
        ("PATCH", pod_path, {"fieldManager": "kubelite-tests", "force": "true"},
         "application/apply-patch+yaml", POD),
        ("DELETE", pod_path, {}, "application/json",
         {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
          "propagationPolicy": "Foreground", "preconditions": {"uid": "u1"}}),
        ("POST", pod_path + "/binding", {}, "application/json", api.seen[10].body),
        ("DELETE", "/api/v1/nodes/n1", {}, None, None),
    ]
    assert api.seen[10].body["target"] == {"kind": "Node", "name": "n1"}
    assert all(s.headers["User-Agent"] == "kubelite/tests" for s in api.seen)
    assert all(s.headers["Authorization"] == "Bearer tok" for s in api.seen)


async def test_namespaced_kinds_need_a_namespace(fake: tuple[FakeApi, ApiClient]) -> None:
    _, client = fake
    with pytest.raises(ValueError, match="namespace"):
        await client.get(PODS, "web")
    with pytest.raises(ValueError, match="namespace"):
        await client.create(PODS, {"metadata": {"name": "x"}})


async def test_raw_request_returns_text_or_json(fake: tuple[FakeApi, ApiClient]) -> None:
    api, client = fake
    api.script("GET", "/api/v1/namespaces/default/pods/web/log", text(200, "line1\nline2\n"))
    assert await client.request("GET", "/api/v1/namespaces/default/pods/web/log",
                                params={"tailLines": "2"}) == "line1\nline2\n"
    assert await client.request("get", "/version") == {"echo": True, "body": None}
    assert api.seen[0].query == {"tailLines": "2"}


# --- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("handler, expected, code, reason", [
    (status(404, "NotFound", 'pods "web" not found'), errors.NotFound, 404, "NotFound"),
    (status(409, "AlreadyExists"), errors.AlreadyExists, 409, "AlreadyExists"),
    (status(409, "Conflict"), errors.Conflict, 409, "Conflict"),
    (status(422, "Invalid"), errors.Invalid, 422, "Invalid"),
    (status(410, "Expired"), errors.Expired, 410, "Expired"),
    (text(403, "forbidden: no"), errors.Forbidden, 403, "Forbidden"),
    (text(500, "<html>oops</html>"), errors.InternalError, 500, "InternalError"),
])
async def test_error_mapping(fake: tuple[FakeApi, ApiClient], handler: Handler,
                             expected: type[errors.StatusError], code: int, reason: str) -> None:
    api, client = fake
    api.script("POST", "/api/v1/namespaces/default/pods", handler)
    with pytest.raises(expected) as caught:
        await client.create(PODS, POD)
    assert (caught.value.code, caught.value.reason) == (code, reason)
    assert caught.value.message
    assert api.calls("POST", "/api/v1/namespaces/default/pods") == 1  # POST: never retried


async def test_get_retried_on_503_then_succeeds(fake: tuple[FakeApi, ApiClient]) -> None:
    api, client = fake
    path = "/api/v1/namespaces/default/pods/web"
    api.script("GET", path, status(503, "ServiceUnavailable"), text(504, "gateway"), ok(POD))
    assert await client.get(PODS, "web", "default") == POD
    assert api.calls("GET", path) == 3


async def test_put_retried_only_with_resource_version(fake: tuple[FakeApi, ApiClient]) -> None:
    api, client = fake
    path = "/api/v1/namespaces/default/pods/web"
    api.script("PUT", path, status(500, "InternalError"), ok(POD))
    assert await client.update(PODS, POD) == POD
    assert api.calls("PUT", path) == 2
    api.scripts.clear()
    api.script("PUT", path, status(500, "InternalError"), ok(POD))
    unconditional = {**POD, "metadata": {"name": "web", "namespace": "default"}}
    with pytest.raises(errors.InternalError):
        await client.update(PODS, unconditional)
    assert api.calls("PUT", path) == 3


async def test_post_not_retried_on_503(fake: tuple[FakeApi, ApiClient]) -> None:
    api, client = fake
    api.script("POST", "/api/v1/namespaces/default/pods", status(503, "ServiceUnavailable"),
               ok(POD, 201))
    with pytest.raises(errors.ServiceUnavailable):
        await client.create(PODS, POD)
    assert api.calls("POST", "/api/v1/namespaces/default/pods") == 1


async def test_retries_are_bounded(fake: tuple[FakeApi, ApiClient]) -> None:
    api, client = fake
    api.script("GET", "/api/v1/nodes/n1", status(503, "ServiceUnavailable"))
    with pytest.raises(errors.ServiceUnavailable):
        await client.get(NODES, "n1")
    assert api.calls("GET", "/api/v1/nodes/n1") == FAST.max_attempts


async def test_429_honours_retry_after(fake: tuple[FakeApi, ApiClient]) -> None:
    api, client = fake
    path = "/api/v1/namespaces/default/pods"
    api.script("POST", path, status(429, "TooManyRequests", headers={"Retry-After": "1"}),
               ok(POD, 201))
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await client.create(PODS, POD) == POD
    assert loop.time() - started >= 0.95  # waited as told, not our 10 ms backoff
    assert api.calls("POST", path) == 2


async def test_retry_after_beyond_total_budget_fails_fast(
        fake: tuple[FakeApi, ApiClient]) -> None:
    api, client = fake
    api.script("GET", "/api/v1/nodes/n1",
               status(429, "TooManyRequests", headers={"Retry-After": "60"}))
    with pytest.raises(errors.TooManyRequests) as caught:
        await asyncio.wait_for(client.get(NODES, "n1"), 2)
    assert caught.value.retry_after == 60
    assert api.calls("GET", "/api/v1/nodes/n1") == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_post_retried_when_connection_refused() -> None:
    """Nothing listens at first; the POST is retried and arrives exactly once."""
    api = FakeApi()
    api.script("POST", "/api/v1/namespaces/default/pods", ok(POD, 201))
    port = _free_port()
    server = TestServer(api.app(), host="127.0.0.1", port=port)
    cfg = ClientConfig(server=f"http://127.0.0.1:{port}")
    policy = RetryPolicy(max_attempts=10, initial_delay=0.05, max_delay=0.1, jitter=0)

    async def start_later() -> None:
        await asyncio.sleep(0.2)
        await server.start_server()

    starter = asyncio.create_task(start_later(), name="start-fake-apiserver")
    try:
        async with ApiClient(cfg, retry=policy) as client:
            assert await client.create(PODS, POD) == POD
        assert api.calls("POST", "/api/v1/namespaces/default/pods") == 1
    finally:
        await starter
        await server.close()


async def test_unreachable_server_raises_connection_error() -> None:
    cfg = ClientConfig(server=f"http://127.0.0.1:{_free_port()}")
    async with ApiClient(cfg, retry=RetryPolicy(max_attempts=2, initial_delay=0.01)) as client:
        with pytest.raises(ApiConnectionError):
            await client.get(NODES, "n1")


# --- watch ------------------------------------------------------------------------------------

def _event(kind: str, name: str, rv: int, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "object": {"kind": "Pod", "apiVersion": "v1", "metadata": {
        "name": name, "namespace": "default", "resourceVersion": str(rv)}, **extra}}


def stream(*chunks: bytes, status_code: int = 200) -> Handler:
    async def respond(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=status_code)
        resp.content_type = "application/json"
        await resp.prepare(request)
        for chunk in chunks:
            await resp.write(chunk)
            await asyncio.sleep(0)  # let each chunk travel on its own
        await resp.write_eof()
        return resp
    return respond


async def test_watch_parses_ndjson_across_chunks(fake: tuple[FakeApi, ApiClient]) -> None:
    api, client = fake
    big = "x" * 300_000  # longer than aiohttp's readline limit
    lines = b"".join(json.dumps(e).encode() + b"\n" for e in (
        _event("ADDED", "a", 11), _event("MODIFIED", "a", 12, spec={"blob": big}),
        {"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "15"}}},
        _event("DELETED", "a", 16)))
    api.script("GET", "/api/v1/namespaces/default/pods",
               stream(lines[:7], lines[7:100], lines[100:200_000], lines[200_000:], b"\n"))
    async with aclosing(client.watch(PODS, "default", resource_version="10",
                                     label_selector="app=web", timeout_seconds=30)) as events:
        got = [(kind, obj["metadata"]["resourceVersion"]) async for kind, obj in events]
    assert got == [("ADDED", "11"), ("MODIFIED", "12"), ("BOOKMARK", "15"), ("DELETED", "16")]
    assert api.seen[0].query == {"watch": "true", "resourceVersion": "10",
                                 "labelSelector": "app=web", "timeoutSeconds": "30",
                                 "allowWatchBookmarks": "true"}


async def test_watch_error_event_raises_expired(fake: tuple[FakeApi, ApiClient]) -> None:
    api, client = fake
    expired = {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
                                           "status": "Failure", "code": 410, "reason": "Expired",
                                           "message": "too old resource version: 1 (5)"}}
    api.script("GET", "/api/v1/pods", stream(json.dumps(_event("ADDED", "a", 6)).encode()
                                             + b"\n" + json.dumps(expired).encode() + b"\n"))
    got: list[str] = []
    with pytest.raises(errors.Expired, match="too old"):
        async for kind, _ in client.watch(PODS, resource_version="1"):
            got.append(kind)
    assert got == ["ADDED"]


async def test_watch_http_410_raises_expired(fake: tuple[FakeApi, ApiClient]) -> None:
    api, client = fake
    api.script("GET", "/api/v1/pods", status(410, "Expired"))
    with pytest.raises(errors.Expired):
        async for _ in client.watch(PODS, resource_version="1"):
            pass
    assert api.calls("GET", "/api/v1/pods") == 1


async def test_watch_malformed_line_is_a_connection_error(
        fake: tuple[FakeApi, ApiClient]) -> None:
    api, client = fake
    api.script("GET", "/api/v1/pods", stream(b'{"type": "ADDED", "obj\n'))
    with pytest.raises(ApiConnectionError, match="malformed"):
        async for _ in client.watch(PODS):
            pass
