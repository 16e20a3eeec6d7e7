"""Who may call the kubelet server (kubelet/auth.py), over real TLS: the real server
(kubelet/server.py) with certificates from the cluster PKI (kubelite/pki.py) and a fake
`Reviewer` answering for the apiserver's TokenReview and SubjectAccessReview; the cache and
path rules on their own; and the apiserver's TLS client context for kubelets
(apiserver/proxy.py)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509

from apiserver.proxy import kubelet_ssl_context
from kubelet.auth import (
    ANONYMOUS,
    AUTHENTICATED,
    AUTHZ_ALWAYS_ALLOW,
    AUTHZ_WEBHOOK,
    Attributes,
    Decision,
    ReviewError,
    TokenAuthenticator,
    User,
    WebhookAuthorizer,
    bearer_token,
    build_auth,
    ensure_self_signed,
    is_subpath,
    serving_ssl_context,
    subresources,
)
from kubelet.options import parse_args
from kubelet.runtime.client import RuntimeClient
from kubelet.server import start_kubelet_server
from kubelite.pki import Pki, ensure_control_plane, ensure_node, issue_user

Obj = dict[str, Any]
NODE = "node-a"
ELSEWHERE = "node-b"  # its serving certificate names 10.0.0.5, not 127.0.0.1
APISERVER_USER = "kube-apiserver-kubelet-client"


# --- certificates ------------------------------------------------------------------------------

@dataclass
class Certs:
    pki: Pki
    other: Pki  # another cluster's CA: its certificates mean nothing here
    dir: Path

    def user(self, name: str, groups: tuple[str, ...] = (), *,
             pki: Pki | None = None) -> tuple[Path, Path]:
        cert, key = issue_user(pki or self.pki, name, groups)
        tag = f"{name}-{'other' if pki is self.other else 'ours'}".replace(":", "_")
        cert_path, key_path = self.dir / f"{tag}.crt", self.dir / f"{tag}.key"
        cert_path.write_bytes(cert)
        key_path.write_bytes(key)
        return cert_path, key_path


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    root = tmp_path_factory.mktemp("kubelet-auth")
    pki = ensure_control_plane(root / "pki", service_ip="10.96.0.1")
    ensure_node(pki, NODE, ["127.0.0.1"])
    ensure_node(pki, ELSEWHERE, ["10.0.0.5"])
    other = ensure_control_plane(root / "other", service_ip="10.96.0.1")
    users = root / "users"
    users.mkdir()
    return Certs(pki, other, users)


def client_context(certs: Certs, identity: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=certs.pki.ca_cert)
    if identity is not None:
        ctx.load_cert_chain(*identity)
    return ctx


# --- fakes ---------------------------------------------------------------------------------------

@dataclass
class FakeReviewer:
    """The apiserver's reviews: `tokens` maps a token to its user; `allowed` holds the
    (user, verb, subresource) that SubjectAccessReview allows; `fail` makes both fail."""

    tokens: dict[str, Obj] = field(default_factory=dict)
    allowed: set[tuple[str, str, str]] = field(default_factory=set)
    fail: bool = False
    token_reviews: list[Obj] = field(default_factory=list)
    access_reviews: list[Obj] = field(default_factory=list)
    gate: asyncio.Event | None = None  # token reviews wait for it when set
    asked: asyncio.Event = field(default_factory=asyncio.Event)

    async def token_review(self, review: Obj) -> Obj:
        self.token_reviews.append(review)
        self.asked.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise ReviewError("the apiserver is down")
        user = self.tokens.get(review["spec"]["token"])
        status: Obj = {"authenticated": True, "user": user} if user else \
            {"authenticated": False, "error": "token not valid"}
        return {**review, "status": status}

    async def subject_access_review(self, review: Obj) -> Obj:
        self.access_reviews.append(review)
        if self.fail:
            raise ReviewError("the apiserver is down")
        spec = review["spec"]
        attrs = spec["resourceAttributes"]
        allowed = (spec["user"], attrs["verb"], attrs["subresource"]) in self.allowed
        return {**review, "status": {"allowed": allowed} if allowed else
                {"allowed": False, "reason": "no RBAC rule"}}


class FakeProvider:
    """A kubelet running one pod; nothing here reaches a runtime."""

    node_name = NODE

    @property
    def runtime(self) -> RuntimeClient:
        raise AssertionError("no runtime in this test")

    def list_pods(self) -> list[Obj]:
        return [{"metadata": {"name": "web", "namespace": "default", "uid": "u-1"},
                 "status": {"podIP": "127.0.0.1"}}]

    async def find_container(self, namespace: str, pod: str, container: str) -> str | None:
        return None

    async def previous_container(self, namespace: str, pod: str,
                                 container: str) -> str | None:
        return None


@contextlib.asynccontextmanager
async def kubelet(certs: Certs, reviewer: FakeReviewer, *, anonymous: bool = False,
                  mode: str = AUTHZ_WEBHOOK, token_webhook: bool = True,
                  serving_node: str = NODE) -> AsyncIterator[str]:
    """The real kubelet server on 127.0.0.1 with `serving_node`'s certificate."""
    auth = build_auth(node_name=NODE, reviewer=reviewer, anonymous=anonymous,
                      token_webhook=token_webhook, token_ttl=120, authorization_mode=mode,
                      allowed_ttl=300, denied_ttl=30)
    tls = serving_ssl_context(certs.pki.node_serving_cert(serving_node),
                              certs.pki.node_serving_key(serving_node), certs.pki.ca_cert)
    runner, port = await start_kubelet_server(FakeProvider(), "127.0.0.1", 0, ssl_context=tls,
                                              auth=auth, docker_socket="/nonexistent.sock")
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def call(url: str, ctx: ssl.SSLContext, method: str = "GET",
               headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, \
            session.request(method, url, ssl=ctx, headers=headers) as resp:
        return resp.status, await resp.text()


EXEC = "/exec/default/web/main?command=id&output=1"


# --- authentication ---------------------------------------------------------------------------

async def test_anonymous_exec_and_pods_are_401(certs: Certs) -> None:
    reviewer = FakeReviewer(allowed={(ANONYMOUS, "get", "proxy"), (ANONYMOUS, "create", "proxy")})
    async with kubelet(certs, reviewer) as url:
        for method, path in (("GET", EXEC), ("POST", EXEC), ("GET", "/pods"),
                             ("GET", "/healthz"), ("GET", "/attach/default/web/main"),
                             ("GET", "/containerLogs/default/web/main"),
                             ("GET", "/portForward/default/web?port=80"),
                             ("GET", "/no/such/path")):
            assert await call(url + path, client_context(certs), method) == \
                (401, "Unauthorized"), (method, path)
    assert reviewer.access_reviews == [] and reviewer.token_reviews == []


async def test_a_certificate_from_another_ca_fails_the_handshake(certs: Certs) -> None:
    reviewer = FakeReviewer(allowed={("mallory", "get", "pods")})
    stranger = client_context(certs, certs.user("mallory", pki=certs.other))
    async with kubelet(certs, reviewer) as url:
        with pytest.raises(aiohttp.ClientConnectionError):
            await call(url + "/pods", stranger)
        # The server is none the worse: a good client still gets its answer (401 here).
        assert (await call(url + "/pods", client_context(certs)))[0] == 401
    assert reviewer.access_reviews == []


async def test_x509_user_denied_gets_upstreams_forbidden(certs: Certs) -> None:
    reviewer = FakeReviewer()
    bob = client_context(certs, certs.user("bob", ("devs",)))
    async with kubelet(certs, reviewer) as url:
        assert await call(url + "/pods", bob) == (
            403, "Forbidden (user=bob, verb=get, resource=nodes, subresource(s)=[pods proxy])")
        assert await call(url + EXEC, bob, "POST") == (
            403, "Forbidden (user=bob, verb=create, resource=nodes, subresource(s)=[proxy])")
        assert await call(url + "/stats/summary", bob) == (
            403, "Forbidden (user=bob, verb=get, resource=nodes, subresource(s)=[stats])")
    first = reviewer.access_reviews[0]
    assert first["apiVersion"] == "authorization.k8s.io/v1"
    assert first["kind"] == "SubjectAccessReview"
    assert first["spec"] == {
        "user": "bob", "groups": ["devs", AUTHENTICATED],
        "resourceAttributes": {"verb": "get", "version": "v1", "resource": "nodes",
                               "subresource": "pods", "name": NODE}}
    assert [r["spec"]["resourceAttributes"]["subresource"]
            for r in reviewer.access_reviews] == ["pods", "proxy", "proxy", "stats"]


async def test_x509_user_allowed(certs: Certs) -> None:
    # nodes/proxy alone is enough for /pods (the coarse permission upstream keeps honouring).
    reviewer = FakeReviewer(allowed={("alice", "get", "proxy"), ("alice", "create", "proxy")})
    alice = client_context(certs, certs.user("alice", ("devs",)))
    async with kubelet(certs, reviewer) as url:
        status, body = await call(url + "/pods", alice)
        assert status == 200 and '"PodList"' in body
        # Through to the handler, which has no such pod.
        assert await call(url + "/exec/default/nope/main?command=id&output=1", alice, "POST") == \
            (404, "pod does not exist")
        assert await call(url + "/healthz", alice, "HEAD") == (200, "")
        before = len(reviewer.access_reviews)
        assert (await call(url + "/pods", alice))[0] == 200
        assert len(reviewer.access_reviews) == before, "decisions are cached"


async def test_always_allow_needs_authentication_only(certs: Certs) -> None:
    reviewer = FakeReviewer()
    carol = client_context(certs, certs.user("carol"))
    async with kubelet(certs, reviewer, mode=AUTHZ_ALWAYS_ALLOW) as url:
        assert await call(url + "/healthz", carol) == (200, "ok")
        assert await call(url + "/healthz", client_context(certs)) == (401, "Unauthorized")
    assert reviewer.access_reviews == []


async def test_bearer_token_is_reviewed_once_then_cached(certs: Certs) -> None:
    sa = "system:serviceaccount:monitoring:scraper"
    reviewer = FakeReviewer(
        tokens={"good-token": {"username": sa, "uid": "u-42",
                               "groups": ["system:serviceaccounts"],
                               "extra": {"authentication.kubernetes.io/pod-name": ["p"]}}},
        allowed={(sa, "get", "stats")})
    ctx = client_context(certs)
    good = {"Authorization": "Bearer good-token"}
    async with kubelet(certs, reviewer) as url:
        for _ in range(3):
            assert (await call(url + "/stats/summary", ctx, headers=good))[0] != 401
        assert reviewer.token_reviews == [{
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": "good-token"}}]
        assert reviewer.access_reviews[0]["spec"] == {
            "user": sa, "uid": "u-42", "groups": ["system:serviceaccounts", AUTHENTICATED],
            "extra": {"authentication.kubernetes.io/pod-name": ["p"]},
            "resourceAttributes": {"verb": "get", "version": "v1", "resource": "nodes",
                                   "subresource": "stats", "name": NODE}}
        assert len(reviewer.access_reviews) == 1
        # Not allowed nodes/proxy: exec is forbidden to the same token.
        assert await call(url + EXEC, ctx, "POST", headers=good) == (
            403, f"Forbidden (user={sa}, verb=create, resource=nodes, subresource(s)=[proxy])")

        bad = {"Authorization": "Bearer stolen"}
        for _ in range(2):
            assert await call(url + "/pods", ctx, headers=bad) == (401, "Unauthorized")
        assert [r["spec"]["token"] for r in reviewer.token_reviews] == ["good-token", "stolen"]


async def test_anonymous_auth_only_without_credentials(certs: Certs) -> None:
    reviewer = FakeReviewer(allowed={(ANONYMOUS, "get", "healthz")})
    ctx = client_context(certs)
    async with kubelet(certs, reviewer, anonymous=True) as url:
        assert await call(url + "/healthz", ctx) == (200, "ok")
        assert reviewer.access_reviews[0]["spec"]["groups"] == ["system:unauthenticated"]
        assert await call(url + EXEC, ctx) == (403, ("Forbidden (user=system:anonymous, "
                                                    "verb=get, resource=nodes, "
                                                    "subresource(s)=[proxy])"))
        # A rejected token is a failed login, not a way to become anonymous.
        assert await call(url + "/healthz", ctx, headers={"Authorization": "Bearer x"}) == \
            (401, "Unauthorized")


async def test_tokens_are_ignored_without_the_token_webhook(certs: Certs) -> None:
    reviewer = FakeReviewer(tokens={"t": {"username": "dave"}},
                            allowed={("dave", "get", "healthz")})
    async with kubelet(certs, reviewer, token_webhook=False) as url:
        assert await call(url + "/healthz", client_context(certs),
                          headers={"Authorization": "Bearer t"}) == (401, "Unauthorized")
    assert reviewer.token_reviews == []


async def test_failed_reviews(certs: Certs) -> None:
    reviewer = FakeReviewer(tokens={"t": {"username": "erin"}}, fail=True)
    erin = client_context(certs, certs.user("erin"))
    async with kubelet(certs, reviewer) as url:
        assert await call(url + "/pods", erin) == (
            500, ("Authorization error (user=erin, verb=get, resource=nodes, "
                 "subresource(s)=[pods proxy])"))
        for _ in range(2):
            assert await call(url + "/pods", client_context(certs),
                              headers={"Authorization": "Bearer t"}) == (401, "Unauthorized")
    assert len(reviewer.token_reviews) == 2, "a failed review is not cached"


async def test_port_forward_closes_cleanly_over_tls(certs: Certs) -> None:
    """Bytes both ways through an authorized port-forward; the pod closing its connection
    ends the session with a normal closure."""
    async def shout_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write((await reader.read(100)).upper())
        await writer.drain()
        writer.close()

    pod_side = await asyncio.start_server(shout_once, "127.0.0.1", 0)
    port = pod_side.sockets[0].getsockname()[1]
    reviewer = FakeReviewer(allowed={("ivan", "get", "proxy")})
    ivan = client_context(certs, certs.user("ivan"))
    try:
        async with kubelet(certs, reviewer) as url, aiohttp.ClientSession() as session, \
                session.ws_connect(f"{url}/portForward/default/web?port={port}", ssl=ivan,
                                   protocols=("v4.channel.k8s.io",)) as ws:
            head = port.to_bytes(2, "little")
            assert [await ws.receive_bytes() for _ in range(2)] == [b"\x00" + head,
                                                                    b"\x01" + head]
            await ws.send_bytes(b"\x00hello")
            got = b"".join([msg.data[1:] async for msg in ws])
            assert got == b"HELLO"
            assert (ws.close_code, ws.exception()) == (aiohttp.WSCloseCode.OK, None)
    finally:
        pod_side.close()
        await pod_side.wait_closed()


# --- the parts on their own ----------------------------------------------------------------------

@pytest.mark.parametrize(("path", "want"), [
    ("/pods", ["pods", "proxy"]), ("/pods/", ["pods", "proxy"]),
    ("/runningpods/", ["pods", "proxy"]), ("/healthz", ["healthz", "proxy"]),
    ("/healthz/ping", ["healthz", "proxy"]), ("/configz", ["configz", "proxy"]),
    ("/statusz", ["statusz", "proxy"]),
    ("/stats/summary", ["stats"]), ("/stats", ["stats"]), ("/metrics", ["metrics"]),
    ("/metrics/cadvisor", ["metrics"]), ("/logs/syslog", ["log"]),
    ("/checkpoint/default/p/c", ["checkpoint"]),
    ("/exec/default/p/c", ["proxy"]), ("/attach/default/p/c", ["proxy"]),
    ("/portForward/default/p", ["proxy"]), ("/containerLogs/default/p/c", ["proxy"]),
    ("/run/default/p/c", ["proxy"]), ("/podsx", ["proxy"]), ("/statsx", ["proxy"]),
    ("/", ["proxy"]),
])
def test_path_subresources(path: str, want: list[str]) -> None:
    assert subresources(path) == want


def test_subpath_and_bearer_parsing() -> None:
    assert is_subpath("/stats/summary", "/stats/") and is_subpath("/stats", "/stats/")
    assert not is_subpath("/statsfoo", "/stats/")
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("  bearer abc  ") == "abc"
    assert bearer_token("Bearer a b") == "a"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token("") is None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_token_cache_expires_after_its_ttl() -> None:
    reviewer = FakeReviewer(tokens={"t": {"username": "frank", "groups": ["g"]}})
    clock = Clock()
    tokens = TokenAuthenticator(reviewer, 120, clock=clock)
    assert await tokens.authenticate("t") == User("frank", groups=("g",))
    assert await tokens.authenticate("nope") is None
    clock.now += 119
    await tokens.authenticate("t")
    await tokens.authenticate("nope")
    assert len(reviewer.token_reviews) == 2
    clock.now += 2
    await tokens.authenticate("t")
    await tokens.authenticate("nope")
    assert len(reviewer.token_reviews) == 4


async def test_concurrent_asks_share_one_token_review() -> None:
    gate = asyncio.Event()
    reviewer = FakeReviewer(tokens={"t": {"username": "grace"}}, gate=gate)
    tokens = TokenAuthenticator(reviewer, 120)
    waiting = [asyncio.create_task(tokens.authenticate("t")) for _ in range(5)]
    # The first review starts only after all five asked (tasks run in the order created).
    await reviewer.asked.wait()
    gate.set()
    users = await asyncio.gather(*waiting)
    assert {u.name for u in users if u} == {"grace"} and len(reviewer.token_reviews) == 1


async def test_decision_cache_ttls_differ_for_allowed_and_denied() -> None:
    reviewer = FakeReviewer(allowed={("heidi", "get", "proxy")})
    clock = Clock()
    authz = WebhookAuthorizer(reviewer, 300, 30, clock=clock)
    heidi = User("heidi")
    allowed = Attributes(heidi, "get", "proxy", NODE, "/pods")
    denied = Attributes(heidi, "create", "proxy", NODE, "/exec/a/b/c")
    assert await authz.authorize(allowed) is Decision.ALLOW
    assert await authz.authorize(denied) is Decision.NO_OPINION
    clock.now += 31
    await authz.authorize(allowed)
    await authz.authorize(denied)
    assert len(reviewer.access_reviews) == 3  # the denial was asked again
    clock.now += 270
    await authz.authorize(allowed)
    assert len(reviewer.access_reviews) == 4


def test_self_signed_certificate(tmp_path: Path) -> None:
    cert, key = ensure_self_signed(tmp_path / "pki", NODE, ["10.0.0.7"])
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [NODE]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.7")]
    before = cert.read_bytes(), key.read_bytes()
    assert ensure_self_signed(tmp_path / "pki", NODE, ["10.0.0.7"]) == (cert, key)
    assert (cert.read_bytes(), key.read_bytes()) == before, "kept across restarts"
    serving_ssl_context(cert, key)  # loads


def test_kubelet_flags(tmp_path: Path) -> None:
    opts = parse_args(["--node-name", "n1", "--root-dir", str(tmp_path)])
    assert opts.address == "" and not opts.anonymous_auth and not opts.token_webhook
    assert opts.authorization_mode == AUTHZ_WEBHOOK and opts.pki_dir == tmp_path / "pki"
    assert (opts.authentication_token_webhook_cache_ttl,
            opts.authorization_webhook_cache_authorized_ttl,
            opts.authorization_webhook_cache_unauthorized_ttl) == (120, 300, 30)
    opts = parse_args(["--node-name", "n1", "--kubeconfig", "k", "--anonymous-auth",
                       "--authorization-mode", "AlwaysAllow", "--tls-cert-file", "c",
                       "--tls-private-key-file", "k", "--client-ca-file", "ca",
                       "--authentication-token-webhook-cache-ttl", "10s",
                       "--authorization-webhook-cache-unauthorized-ttl=1m"])
    assert opts.anonymous_auth and opts.token_webhook
    assert opts.authorization_mode == AUTHZ_ALWAYS_ALLOW
    assert (opts.tls_cert_file, opts.tls_private_key_file, opts.client_ca_file) == \
        ("c", "k", "ca")
    assert opts.authentication_token_webhook_cache_ttl == 10
    assert opts.authorization_webhook_cache_unauthorized_ttl == 60
    assert not parse_args(["--node-name", "n1", "--kubeconfig", "k",
                           "--authentication-token-webhook=false"]).token_webhook
    with pytest.raises(SystemExit):
        parse_args(["--node-name", "n1", "--tls-cert-file", "c"])
    with pytest.raises(SystemExit):
        parse_args(["--node-name", "n1", "--authorization-mode", "RBAC"])


# --- the apiserver's side of the hop ------------------------------------------------------------

async def test_apiserver_kubelet_client_context(certs: Certs, tmp_path: Path) -> None:
    pki = certs.pki
    ctx = kubelet_ssl_context(str(pki.kubelet_client_cert), str(pki.kubelet_client_key),
                              str(pki.ca_cert))
    assert kubelet_ssl_context(str(pki.kubelet_client_cert), str(pki.kubelet_client_key),
                               str(pki.ca_cert)) is ctx, "built once per process"
    reviewer = FakeReviewer(allowed={(APISERVER_USER, "get", "proxy")})
    async with kubelet(certs, reviewer) as url:
        status, _ = await call(url + "/pods", ctx)
        assert status == 200
        assert reviewer.access_reviews[0]["spec"]["user"] == APISERVER_USER
    # A kubelet whose certificate does not name the address dialled is not trusted...
    async with kubelet(certs, reviewer, serving_node=ELSEWHERE) as url:
        with pytest.raises(aiohttp.ClientConnectorCertificateError, match="127.0.0.1"):
            await call(url + "/pods", ctx)
    # ... nor one with a certificate of its own making.
    self_signed = ensure_self_signed(tmp_path, NODE, ["127.0.0.1"])
    auth = build_auth(node_name=NODE, reviewer=reviewer, anonymous=False, token_webhook=False,
                      token_ttl=0, authorization_mode=AUTHZ_ALWAYS_ALLOW, allowed_ttl=0,
                      denied_ttl=0)
    runner, port = await start_kubelet_server(
        FakeProvider(), "127.0.0.1", 0, ssl_context=serving_ssl_context(*self_signed),
        auth=auth, docker_socket="/nonexistent.sock")
    try:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await call(f"https://127.0.0.1:{port}/pods", ctx)
    finally:
        await runner.cleanup()
