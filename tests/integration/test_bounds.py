"""Abuse bounds on a real apiserver (docs/security.md "Abuse bounds"): the in-flight limits
answer a flood with 429 while watches and system:masters still get through, a YAML alias
bomb is refused unexpanded, the proxy will not dial loopback or link-local addresses, and
Events vanish after --event-ttl through etcd leases.

Requests are held open without any sleep in the server: a mutating request whose body is
only partly sent keeps its handler waiting for the rest, and a list whose client does not
read keeps the server writing into a full socket. Everything is on loopback, and every
flood has a fixed size and every wait a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.conftest import ApiServer, EtcdServer, start_apiserver, stop_process
from tests.eventually import eventually

Obj = dict[str, Any]
LIMIT = 4
BURST = 24
FLOODER = "flooder"  # an ordinary user; the admin is in system:masters
TOO_MANY = "Too many requests, please try again later."
EVENT_TTL = 5


@pytest.fixture(scope="module")
def server(etcd_server: EtcdServer, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[ApiServer]:
    srv = start_apiserver(etcd_server, tmp_path_factory.mktemp("bounds"),
                          f"--max-requests-inflight={LIMIT}",
                          f"--max-mutating-requests-inflight={LIMIT}",
                          f"--event-ttl={EVENT_TTL}s")
    try:
        yield srv
    finally:
        stop_process(srv.proc)


@contextlib.asynccontextmanager
async def session(tls: ssl.SSLContext) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=tls, limit=0),
            timeout=aiohttp.ClientTimeout(total=30)) as s:
        yield s


async def call(s: aiohttp.ClientSession, server: ApiServer, method: str, path: str,
               body: Any = None, ctype: str = "application/json"
               ) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    async with s.request(method, server.url + path, data=data,
                         headers={"Content-Type": ctype}) as r:
        raw = await r.read()
        try:
            parsed: Any = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")
        return r.status, parsed, r.headers


@pytest.fixture(scope="module")
def namespace() -> str:
    return f"bounds-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def admin(server: ApiServer, namespace: str) -> AsyncIterator[aiohttp.ClientSession]:
    async with session(server.tls()) as s:
        code, _, _ = await call(s, server, "GET", f"/api/v1/namespaces/{namespace}")
        if code == 404:
            code, body, _ = await call(s, server, "POST", "/api/v1/namespaces",
                                       {"metadata": {"name": namespace}})
            assert code == 201, body
        binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": f"{namespace}-flooder"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                               "name": "cluster-admin"},
                   "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                                 "name": FLOODER}]}
        await call(s, server, "POST",
                   "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding)
        yield s


async def open_raw(server: ApiServer, tls: ssl.SSLContext
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TLS connection with a tiny receive buffer, so an unread answer stalls its sender."""
    u = urlsplit(server.url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (u.hostname, u.port))
    return await asyncio.wait_for(asyncio.open_connection(
        sock=sock, ssl=tls, server_hostname=u.hostname, limit=4096), 10)


def request_head(server: ApiServer, method: str, path: str, length: int | None = None) -> bytes:
    u = urlsplit(server.url)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {u.hostname}:{u.port}",
             "Content-Type: application/json", "Accept: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def assert_too_many(code: int, body: Any, headers: Any) -> None:
    assert code == 429, body
    assert headers.get("Retry-After") == "1"
    assert body["kind"] == "Status" and body["reason"] == "TooManyRequests"
    assert body["message"] == TOO_MANY


async def watch_opens(s: aiohttp.ClientSession, server: ApiServer, path: str) -> int:
    """The status of a watch, read as soon as its headers arrive (it stays open)."""
    async with s.get(server.url + path + "?watch=true&timeoutSeconds=30") as r:
        return r.status


async def test_mutating_flood_gets_429_while_watches_and_masters_pass(
        server: ApiServer, admin: aiohttp.ClientSession, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    cm = {"metadata": {"generateName": "flood-"}}
    flooder_tls = server.tls(FLOODER)
    held: list[asyncio.StreamWriter] = []
    try:
        # LIMIT creates whose bodies never finish: each handler waits for the rest.
        for _ in range(LIMIT):
            _, writer = await open_raw(server, flooder_tls)
            writer.write(request_head(server, "POST", path, length=1000) + b'{"metadata":')
            await writer.drain()
            held.append(writer)
        async with session(flooder_tls) as flooder:
            async def refused() -> tuple[int, Any, Any] | None:
                answer = await call(flooder, server, "POST", path, cm)
                return answer if answer[0] == 429 else None
            assert_too_many(*await eventually(refused, timeout=10, what="a 429"))
            # Reads have their own slots; watches are not counted at all.
            code, body, _ = await call(flooder, server, "GET", path)
            assert code == 200, body
            assert await watch_opens(flooder, server, path) == 200
            # system:masters is served beyond the limit, as upstream.
            code, body, _ = await call(admin, server, "POST", path, cm)
            assert code == 201, body
            for writer in held:
                writer.close()
            held.clear()

            async def served() -> bool:
                return (await call(flooder, server, "POST", path, cm))[0] == 201
            await eventually(served, timeout=10, what="a create after the flood")
    finally:
        for writer in held:
            writer.close()


async def test_read_only_flood_gets_429_but_watches_do_not(
        server: ApiServer, admin: aiohttp.ClientSession, namespace: str) -> None:
    # Paginated lists are read from etcd: while one waits for etcd, the others of a burst
    # arrive, so a burst of BURST concurrent lists holds more than LIMIT slots at once.
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    listing = path + "?limit=1"
    flooder_tls = server.tls(FLOODER)
    async with session(flooder_tls) as flooder:
        async def burst() -> list[tuple[int, Any, Any]]:
            return await asyncio.gather(*(call(flooder, server, "GET", listing)
                                          for _ in range(BURST)))
        await burst()  # opens the connections, so the next bursts arrive together

        async def refused() -> tuple[int, Any, Any] | None:
            answers = await burst()
            assert {code for code, _, _ in answers} <= {200, 429}
            return next((a for a in answers if a[0] == 429), None)
        assert_too_many(*await eventually(refused, timeout=10, what="a 429"))
        # Watches beyond the limit are not refused: LIMIT + 2 open at once, then a burst.
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(LIMIT + 2):
                r = await stack.enter_async_context(
                    flooder.get(server.url + path + "?watch=true&timeoutSeconds=30"))
                assert r.status == 200
            answers = await burst()
            assert [a for a in answers if a[0] == 200], "lists still served beside watches"
        # Once the burst is over, an ordinary read is served.
        code, body, _ = await call(flooder, server, "GET", listing)
        assert code == 200, body


def billion_laughs() -> bytes:
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: lol}",
             'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 10) + "]")
        prev = name
    lines.append(f"data: {{k: *{prev}}}")
    return ("\n".join(lines) + "\n").encode()


async def test_yaml_alias_bomb_is_a_quick_400(
        server: ApiServer, admin: aiohttp.ClientSession, namespace: str) -> None:
    body = billion_laughs()
    assert len(body) < 1024
    started = time.monotonic()
    code, status, _ = await call(admin, server, "POST",
                                 f"/api/v1/namespaces/{namespace}/configmaps", body,
                                 ctype="application/yaml")
    assert time.monotonic() - started < 5
    assert code == 400, status
    assert status["reason"] == "BadRequest"
    assert "aliases expand it to more than" in status["message"]
    # Anchors and aliases within bounds are still YAML.
    fine = (b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: aliased}\n"
            b"data: &d {a: b}\nbinaryData: {}\n")
    code, created, _ = await call(admin, server, "POST",
                                  f"/api/v1/namespaces/{namespace}/configmaps", fine,
                                  ctype="application/yaml")
    assert code == 201, created
    assert created["data"] == {"a": "b"}


@pytest.mark.parametrize("ip", ["127.0.0.1", "169.254.169.254"])
async def test_pod_proxy_refuses_loopback_and_link_local(
        server: ApiServer, admin: aiohttp.ClientSession, namespace: str, ip: str) -> None:
    name = "target-" + ip.replace(".", "-")
    pods = f"/api/v1/namespaces/{namespace}/pods"
    code, pod, _ = await call(admin, server, "POST", pods, {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    assert code == 201, pod
    pod["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}
    code, pod, _ = await call(admin, server, "PUT", f"{pods}/{name}/status", pod)
    assert code == 200, pod
    assert pod["status"]["podIP"] == ip
    for target in (name, f"{name}:8080"):
        code, status, _ = await call(admin, server, "GET", f"{pods}/{target}/proxy/metadata")
        assert code == 400, status
        assert status["reason"] == "BadRequest"
        assert status["message"] == "address not allowed"


@pytest.mark.parametrize("ip", ["127.0.0.1", "169.254.169.254"])
async def test_endpoints_refuse_loopback_and_link_local(
        server: ApiServer, admin: aiohttp.ClientSession, namespace: str, ip: str) -> None:
    suffix = ip.replace(".", "-")
    code, status, _ = await call(
        admin, server, "POST", f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices",
        {"metadata": {"name": f"s-{suffix}", "labels": {"kubernetes.io/service-name": "s"}},
         "addressType": "IPv4", "endpoints": [{"addresses": [ip]}],
         "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]})
    assert code == 422, status
    wanted = "loopback" if ip.startswith("127.") else "link-local"
    assert wanted in status["message"]
    assert status["details"]["causes"][0]["field"] == "endpoints[0].addresses[0]"
    code, status, _ = await call(
        admin, server, "POST", f"/api/v1/namespaces/{namespace}/endpoints",
        {"metadata": {"name": f"e-{suffix}"},
         "subsets": [{"addresses": [{"ip": ip}], "ports": [{"port": 80}]}]})
    assert code == 422, status
    assert wanted in status["message"]


async def test_events_expire_after_event_ttl(
        server: ApiServer, admin: aiohttp.ClientSession, namespace: str) -> None:
    events = f"/api/v1/namespaces/{namespace}/events"
    names = []
    for i in range(3):  # several events of the same moment share one lease
        code, ev, _ = await call(admin, server, "POST", events, {
            "metadata": {"name": f"ev-{uuid.uuid4().hex[:6]}-{i}"},
            "involvedObject": {"kind": "Pod", "namespace": namespace, "name": "p"},
            "reason": "Testing", "message": "expires", "type": "Normal"})
        assert code == 201, ev
        names.append(ev["metadata"]["name"])
    code, keeper, _ = await call(admin, server, "POST",
                                 f"/api/v1/namespaces/{namespace}/configmaps",
                                 {"metadata": {"generateName": "keeper-"}})
    assert code == 201, keeper
    created = time.monotonic()
    code, _, _ = await call(admin, server, "GET", f"{events}/{names[0]}")
    assert code == 200

    async def all_gone() -> bool:
        codes = [(await call(admin, server, "GET", f"{events}/{n}"))[0] for n in names]
        return codes == [404, 404, 404]
    await eventually(all_gone, timeout=EVENT_TTL + 15, what="the events to expire")
    assert time.monotonic() - created >= EVENT_TTL - 1.5
    # The watch cache saw the deletions too, and other kinds have no lease.
    code, listed, _ = await call(admin, server, "GET", events)
    assert code == 200 and not [e for e in listed["items"] if e["metadata"]["name"] in names]
    code, _, _ = await call(admin, server, "GET",
                            f"/api/v1/namespaces/{namespace}/configmaps/"
                            f"{keeper['metadata']['name']}")
    assert code == 200
