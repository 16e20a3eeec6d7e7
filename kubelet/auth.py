"""Who may call the kubelet's server (:10250), decided as upstream's kubelet does in webhook
mode (`pkg/kubelet/server/auth.go`, `InstallAuthFilter` in `pkg/kubelet/server/server.go`,
and the delegating authenticator and authorizer of k8s.io/apiserver it builds on).

**Authentication**, the first that knows the caller wins:

1. x509: the client certificate the TLS handshake verified against `--client-ca-file`
   (CN = user, O = groups). The server asks for a certificate but does not require one; a
   certificate from any other CA fails the handshake itself, before a byte of HTTP.
2. a bearer token (`Authorization: Bearer <token>`), sent to the apiserver in a TokenReview
   (`--authentication-token-webhook`). Answers, rejections included, are kept for
   `--authentication-token-webhook-cache-ttl` under the token's SHA-256 (the token itself is
   never a key); a review that failed is not kept.
3. anonymous (`system:anonymous` in `system:unauthenticated`), only with `--anonymous-auth`
   and only for a request that presented no credentials: a rejected token is 401, never
   anonymous.

Anything else is 401 `Unauthorized` (plain text, as upstream). Authenticated users also get
the group `system:authenticated`.

**Authorization** turns the request into attributes on this node's Node object: the verb
from the method (GET and HEAD get, POST create, PUT update, PATCH patch, DELETE delete),
resource `nodes`, API group "", the node's name, and the subresource from the path:
`/stats/*` stats, `/metrics*` metrics, `/logs/*` log, `/checkpoint/*` checkpoint, anything
else proxy (exec, attach, portForward, containerLogs, run ...). As upstream with
KubeletFineGrainedAuthz (on by default since 1.33), `/pods` and `/runningpods/` first try
`pods`, `/healthz` `healthz`, `/configz` `configz` and `/statusz` `statusz`, then `proxy`:
either one allows. `--authorization-mode=Webhook` asks a SubjectAccessReview per attribute
set (allowed kept 5m, anything else 30s); `AlwaysAllow` lets every authenticated caller in.
Denied: 403 `Forbidden (user=<u>, verb=<v>, resource=nodes, subresource(s)=[<s> ...])`; a
review that could not be made: 500 `Authorization error (...)` with the same fields.

The reviews go through `Reviewer`: `ApiReviewer` posts them with the kubelet's own
`ApiClient`; tests give a fake.

**TLS**: `serving_ssl_context` serves `--tls-cert-file`; without one the kubelet makes a
self-signed certificate in its cert dir (`kubelet.crt`/`kubelet.key`, key 0600) and keeps
it across restarts, as upstream's kubelet does. Callers that verify the kubelet (the
apiserver with `--kubelet-certificate-authority`) will not trust it: production nodes get a
certificate from the cluster CA.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import hashlib
import ipaddress
import json
import logging
import os
import secrets
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from api.errors import StatusError
from client.rest import ApiClient, ApiConnectionError

log = logging.getLogger(__name__)

Obj = dict[str, Any]

TOKEN_REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
SUBJECT_ACCESS_REVIEW_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
REVIEW_TIMEOUT = 10.0  # s; upstream's webhook timeouts
CACHE_SIZE = 4096  # entries per cache (least recently used go first)

ANONYMOUS = "system:anonymous"
UNAUTHENTICATED = "system:unauthenticated"
AUTHENTICATED = "system:authenticated"

AUTHZ_WEBHOOK = "Webhook"
AUTHZ_ALWAYS_ALLOW = "AlwaysAllow"
AUTHORIZATION_MODES = (AUTHZ_WEBHOOK, AUTHZ_ALWAYS_ALLOW)

SELF_SIGNED_VALIDITY = dt.timedelta(days=365)


# --- identities and attributes ---------------------------------------------------------------

@dataclass(frozen=True)
class User:
    """upstream's user.Info."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


ANONYMOUS_USER = User(ANONYMOUS, groups=(UNAUTHENTICATED,))


def _with_authenticated_group(user: User) -> User:
    """upstream's AuthenticatedGroupAdder."""
    if AUTHENTICATED in user.groups or UNAUTHENTICATED in user.groups:
        return user
    return User(user.name, user.uid, (*user.groups, AUTHENTICATED), user.extra)


@dataclass(frozen=True)
class Attributes:
    """One way a request may be allowed: a verb on a subresource of this node's Node."""

    user: User
    verb: str
    subresource: str
    name: str  # the node
    path: str

    resource = "nodes"


_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
          "DELETE": "delete"}

# Paths whose attributes upstream sets more precisely than `proxy` (pkg/kubelet/server).
_FINE_GRAINED = (("/pods", "pods"), ("/healthz", "healthz"), ("/configz", "configz"),
                 ("/statusz", "statusz"), ("/runningpods/", "pods"))
_COARSE = (("/stats/", "stats"), ("/metrics", "metrics"), ("/logs/", "log"),
           ("/checkpoint/", "checkpoint"))


def is_subpath(path: str, prefix: str) -> bool:
    """`path` is `prefix` or below it (upstream's isSubpath: one trailing slash ignored)."""
    prefix = prefix.removesuffix("/")
    return path == prefix or (path.startswith(prefix) and path[len(prefix)] == "/")


def subresources(path: str) -> list[str]:
    """The subresources a request for `path` may be allowed by, in the order tried."""
    out = [sub for prefix, sub in _FINE_GRAINED if is_subpath(path, prefix)][:1]
    out.append(next((sub for prefix, sub in _COARSE if is_subpath(path, prefix)), "proxy"))
    return out


def request_attributes(user: User, method: str, path: str, node_name: str) -> list[Attributes]:
    verb = _VERBS.get(method.upper(), "")  # upstream leaves other methods without a verb
    return [Attributes(user, verb, sub, node_name, path) for sub in subresources(path)]


def _describe(attrs: Sequence[Attributes]) -> str:
    """`user=.., verb=.., resource=nodes, subresource(s)=[a b]`, as upstream's messages."""
    first = attrs[0]
    subs = " ".join(a.subresource for a in attrs)
    return (f"user={first.user.name}, verb={first.verb}, resource={first.resource}, "
            f"subresource(s)=[{subs}]")


# --- the reviews -----------------------------------------------------------------------------

class ReviewError(Exception):
    """A TokenReview or SubjectAccessReview could not be made or answered nonsense."""


class Reviewer(Protocol):
    """Where the kubelet sends its reviews: each takes the review object (apiVersion, kind,
    spec) and returns the answered one (with status). Failures raise ReviewError."""

    async def token_review(self, review: Obj) -> Obj: ...

    async def subject_access_review(self, review: Obj) -> Obj: ...


class ApiReviewer:
    """Reviews created through the kubelet's ApiClient (its own credentials)."""

    def __init__(self, api: ApiClient, timeout: float = REVIEW_TIMEOUT) -> None:
        self._api = api
        self._timeout = timeout

    async def token_review(self, review: Obj) -> Obj:
        return await self._create(TOKEN_REVIEW_PATH, review)

    async def subject_access_review(self, review: Obj) -> Obj:
        return await self._create(SUBJECT_ACCESS_REVIEW_PATH, review)

    async def _create(self, path: str, review: Obj) -> Obj:
        try:
            answer = await asyncio.wait_for(self._api.request("POST", path, json=review),
                                            self._timeout)
        except (StatusError, ApiConnectionError, TimeoutError) as e:
            raise ReviewError(f"POST {path}: {e}") from e
        if not isinstance(answer, dict):
            raise ReviewError(f"POST {path}: the answer is not an object")
        return answer


# --- a small cache ---------------------------------------------------------------------------

V = TypeVar("V")


class ReviewCache(Generic[V]):
    """Answers kept for a time that depends on the answer, least recently used dropped past
    `max_size`. Concurrent asks for one key share one review (upstream's singleflight), so a
    burst of requests with a new token costs one TokenReview. Failed reviews are not kept."""

    def __init__(self, ttl_for: Callable[[V], float], *, max_size: int = CACHE_SIZE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_for = ttl_for
        self._max_size = max_size
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._loading: dict[str, asyncio.Task[V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str, load: Callable[[], Awaitable[V]]) -> V:
        entry = self._entries.get(key)
        if entry is not None:
            if entry[0] > self._clock():
                self._entries.move_to_end(key)
                return entry[1]
            del self._entries[key]
        task = self._loading.get(key)
        if task is None:
            task = asyncio.create_task(self._load(key, load),
                                       name=f"kubelet-auth-review:{key[:12]}")
            # Retrieved even when every asker has gone, so a failure is not reported twice.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._loading[key] = task
        # Shielded: one caller that leaves does not cancel the review the others wait for.
        return await asyncio.shield(task)

    async def _load(self, key: str, load: Callable[[], Awaitable[V]]) -> V:
        try:
            value = await load()
        finally:
            self._loading.pop(key, None)
        ttl = self._ttl_for(value)
        if ttl > 0:
            self._entries[key] = (self._clock() + ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_size:
                self._entries.popitem(last=False)
        return value


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- authentication --------------------------------------------------------------------------

class AuthenticationError(Exception):
    """Credentials were presented and are not good (or could not be checked): 401."""


def _peer_user(peercert: Any) -> User | None:
    """CN and O of a verified client certificate (`ssl` decoded form), None without one."""
    if not peercert:
        return None
    cns: list[str] = []
    orgs: list[str] = []
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                cns.append(str(value))
            elif key == "organizationName":
                orgs.append(str(value))
    if not cns or not cns[0]:
        return None  # upstream: a certificate without a CN names nobody
    return User(cns[0], groups=tuple(orgs))


def bearer_token(header: str) -> str | None:
    """The token of `Authorization: Bearer <token>` (upstream's parsing), else None."""
    parts = header.strip().split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
        return None
    return parts[1]


class TokenAuthenticator:
    """Bearer tokens through TokenReview, cached per token hash (upstream's webhook token
    authenticator behind its cache: successes and rejections alike for `ttl`)."""

    def __init__(self, reviewer: Reviewer, ttl: float, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._reviewer = reviewer
        self._cache: ReviewCache[User | None] = ReviewCache(lambda _: ttl, clock=clock)

    async def authenticate(self, token: str) -> User | None:
        """The token's user, None when the apiserver rejects it (ReviewError if it could
        not be asked)."""
        return await self._cache.get(_digest(token), lambda: self._review(token))

    async def _review(self, token: str) -> User | None:
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                  "spec": {"token": token}}
        answer = await self._reviewer.token_review(review)
        status = answer.get("status") or {}
        if not isinstance(status, dict) or not status.get("authenticated"):
            return None
        info = status.get("user") or {}
        if not isinstance(info, dict) or not info.get("username"):
            raise ReviewError("TokenReview: authenticated without a username")
        extra = info.get("extra") or {}
        return User(str(info["username"]), str(info.get("uid") or ""),
                    tuple(str(g) for g in info.get("groups") or ()),
                    {str(k): tuple(str(v) for v in vs or ()) for k, vs in extra.items()}
                    if isinstance(extra, dict) else {})


class Authenticator:
    """x509, then bearer token (when `tokens` is given), then anonymous (when allowed)."""

    def __init__(self, tokens: TokenAuthenticator | None, anonymous: bool) -> None:
        self.tokens = tokens
        self.anonymous = anonymous

    async def authenticate(self, request: web.Request) -> User | None:
        """The caller, or None when nothing identifies it and anonymous is off; raises
        AuthenticationError for credentials that are not good."""
        transport = request.transport
        user = _peer_user(transport.get_extra_info("peercert") if transport else None)
        if user is not None:
            return _with_authenticated_group(user)
        token = bearer_token(request.headers.get("Authorization", ""))
        if token is not None and self.tokens is not None:
            try:
                user = await self.tokens.authenticate(token)
            except ReviewError as e:
                raise AuthenticationError(f"token review failed: {e}") from e
            if user is None:
                raise AuthenticationError("invalid bearer token")
            return _with_authenticated_group(user)
        return ANONYMOUS_USER if self.anonymous else None


# --- authorization ---------------------------------------------------------------------------

class Decision(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"
    NO_OPINION = "no-opinion"


class Authorizer(Protocol):
    async def authorize(self, attrs: Attributes) -> Decision: ...


class AlwaysAllow:
    async def authorize(self, attrs: Attributes) -> Decision:
        return Decision.ALLOW


class WebhookAuthorizer:
    """SubjectAccessReview per attribute set, answers cached: allowed for `allowed_ttl`,
    denied or no opinion for `denied_ttl` (upstream's webhook authorizer)."""

    def __init__(self, reviewer: Reviewer, allowed_ttl: float, denied_ttl: float, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._reviewer = reviewer
        self._cache: ReviewCache[Decision] = ReviewCache(
            lambda d: allowed_ttl if d is Decision.ALLOW else denied_ttl, clock=clock)

    async def authorize(self, attrs: Attributes) -> Decision:
        review = subject_access_review(attrs)
        key = _digest(json.dumps(review["spec"], sort_keys=True))
        return await self._cache.get(key, lambda: self._review(review))

    async def _review(self, review: Obj) -> Decision:
        answer = await self._reviewer.subject_access_review(review)
        status = answer.get("status") or {}
        if not isinstance(status, dict):
            raise ReviewError("SubjectAccessReview: status is not an object")
        if status.get("allowed"):
            return Decision.ALLOW
        return Decision.DENY if status.get("denied") else Decision.NO_OPINION


def subject_access_review(attrs: Attributes) -> Obj:
    """The SubjectAccessReview that asks about `attrs` (empty fields left out, as upstream's
    omitempty)."""
    user = attrs.user
    spec: Obj = {"user": user.name}
    if user.uid:
        spec["uid"] = user.uid
    if user.groups:
        spec["groups"] = list(user.groups)
    if user.extra:
        spec["extra"] = {k: list(v) for k, v in user.extra.items()}
    resource: Obj = {"verb": attrs.verb, "version": "v1", "resource": attrs.resource,
                     "subresource": attrs.subresource, "name": attrs.name}
    spec["resourceAttributes"] = {k: v for k, v in resource.items() if v}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": spec}


# --- the filter ------------------------------------------------------------------------------

@dataclass
class KubeletAuth:
    """Everything the server's filter needs: who, whether, and for which node."""

    authenticator: Authenticator
    authorizer: Authorizer
    node_name: str

    async def check(self, request: web.Request) -> web.Response | None:
        """None to let the request through, else the refusal to answer with."""
        try:
            user = await self.authenticator.authenticate(request)
        except AuthenticationError as e:
            log.info("kubelet server: %s %s from %s: %s", request.method, request.path,
                     request.remote, e)
            user = None
        if user is None:
            return web.Response(status=401, text="Unauthorized")
        attrs = request_attributes(user, request.method, request.path, self.node_name)
        for attr in attrs:
            try:
                decision = await self.authorizer.authorize(attr)
            except ReviewError as e:
                log.error("kubelet server: authorization error (%s): %s", _describe(attrs), e)
                return web.Response(status=500, text=f"Authorization error ({_describe(attrs)})")
            if decision is Decision.ALLOW:
                return None
        log.info("kubelet server: forbidden (%s) %s", _describe(attrs), request.path)
        return web.Response(status=403, text=f"Forbidden ({_describe(attrs)})")


def auth_middleware(auth: KubeletAuth) -> Middleware:
    """The aiohttp middleware that puts `auth` in front of every route (and of 404s, so an
    anonymous caller learns nothing about which paths exist)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        refusal = await auth.check(request)
        if refusal is not None:
            return refusal
        return await handler(request)
    return middleware


def build_auth(*, node_name: str, reviewer: Reviewer | None, anonymous: bool,
               token_webhook: bool, token_ttl: float, authorization_mode: str,
               allowed_ttl: float, denied_ttl: float) -> KubeletAuth:
    """The kubelet's authentication and authorization from its flags. `reviewer` is needed
    for the token webhook and for Webhook authorization."""
    tokens = None
    if token_webhook:
        if reviewer is None:
            raise ValueError("--authentication-token-webhook needs an apiserver to ask")
        tokens = TokenAuthenticator(reviewer, token_ttl)
    authorizer: Authorizer
    if authorization_mode == AUTHZ_ALWAYS_ALLOW:
        authorizer = AlwaysAllow()
    elif authorization_mode == AUTHZ_WEBHOOK:
        if reviewer is None:
            raise ValueError("--authorization-mode=Webhook needs an apiserver to ask")
        authorizer = WebhookAuthorizer(reviewer, allowed_ttl, denied_ttl)
    else:
        raise ValueError(f"unknown --authorization-mode {authorization_mode!r} "
                         f"(one of {', '.join(AUTHORIZATION_MODES)})")
    return KubeletAuth(Authenticator(tokens, anonymous), authorizer, node_name)


# --- TLS -------------------------------------------------------------------------------------

def serving_ssl_context(cert_file: str | os.PathLike[str], key_file: str | os.PathLike[str],
                        client_ca_file: str | os.PathLike[str] = "") -> ssl.SSLContext:
    """The server's TLS: its certificate, and with `client_ca_file` client certificates
    asked for (not required: tokens are the other way in) and verified against that CA
    bundle only, never the system's."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    if client_ca_file:
        ctx.load_verify_locations(cafile=client_ca_file)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def ensure_self_signed(cert_dir: Path, node_name: str,
                       node_ips: Sequence[str]) -> tuple[Path, Path]:
    """`<cert_dir>/kubelet.crt` and `kubelet.key`: kept when both exist, else a new
    self-signed certificate for the node's name and IPs (upstream's kubelet without
    --tls-cert-file). The key is 0600 from its first byte on disk."""
    cert, key = cert_dir / "kubelet.crt", cert_dir / "kubelet.key"
    if cert.exists() and key.exists():
        return cert, key
    cert_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    private = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                            f"{node_name}@{int(now.timestamp())}"[:64])])
    names: list[x509.GeneralName] = [x509.DNSName(node_name)]
    for ip in dict.fromkeys(node_ips):
        names.append(x509.IPAddress(ipaddress.ip_address(ip)))
    certificate = (x509.CertificateBuilder()
                   .subject_name(subject).issuer_name(subject)
                   .public_key(private.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + SELF_SIGNED_VALIDITY)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                                  critical=False)
                   .add_extension(x509.SubjectAlternativeName(names), critical=False)
                   .sign(private, hashes.SHA256()))
    _write_atomic(key, private.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()), 0o600)
    _write_atomic(cert, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    log.info("kubelet server: self-signed serving certificate %s for %s %s", cert, node_name,
             list(node_ips))
    return cert, key


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
