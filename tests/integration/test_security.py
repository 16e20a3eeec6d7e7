"""Authentication, authorization and NodeRestriction on a real apiserver, as a client sees
them: every answer is compared with upstream's Status (code, reason, message, details).

Negative cases come first in each test. Identities are client certificates from the
cluster CA (`apiserver.tls(user, groups)`), a static token file (a second apiserver), and
service-account JWTs (TokenRequest, or signed here with the cluster's sa.key).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import json
import re
import shutil
import socket
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from api.resources import CATALOGUE
from client.rest import ApiClient
from tests.conftest import ApiServer, EtcdServer, client_tls, start_apiserver, stop_process
from tests.eventually import eventually

Obj = dict[str, Any]
RBAC = "rbac.authorization.k8s.io"
ISSUER = "https://kubernetes.default.svc.cluster.local"
NAMESPACES = CATALOGUE.require("namespaces")
SERVICEACCOUNTS = CATALOGUE.require("serviceaccounts")
PODS = CATALOGUE.require("pods")
SECRETS = CATALOGUE.require("secrets")
NODES = CATALOGUE.require("nodes")
ROLES = CATALOGUE.require("roles")
ROLEBINDINGS = CATALOGUE.require("rolebindings")
CLUSTERROLES = CATALOGUE.require("clusterroles")
CLUSTERROLEBINDINGS = CATALOGUE.require("clusterrolebindings")
LEASES = CATALOGUE.require("leases")

SSR = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SAR = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
MERGE = "application/merge-patch+json"
# A token answer is cached for 10 s (as upstream), so an invalidated token that was used
# just before keeps working that long.
TOKEN_CACHE_WAIT = 30.0


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def status(code: int, reason: str, message: str, details: Obj | None = None) -> Obj:
    """A metav1.Status as the apiserver writes a failure."""
    body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                 "message": message, "reason": reason, "code": code}
    if details is not None:
        body["details"] = details
    return body


UNAUTHORIZED = status(401, "Unauthorized", "Unauthorized")


def forbidden(message: str, kind: str, name: str = "", group: str = "") -> Obj:
    details: Obj = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = kind
    return status(403, "Forbidden", message, details)


class Raw:
    """Plain HTTPS requests as one identity: a TLS context (a client certificate, or just
    the cluster CA) and optionally a bearer token; answers are (HTTP status, JSON or text)."""

    def __init__(self, base: str, ctx: ssl.SSLContext, token: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.base, self.ctx, self.token = base, ctx, token
        self.headers = dict(headers or {})

    async def __call__(self, method: str, path: str, body: Any = None,
                       content_type: str = "application/json",
                       headers: dict[str, str] | None = None) -> tuple[int, Any]:
        hdrs = {"Accept": "application/json", **self.headers, **(headers or {})}
        if self.token is not None:
            hdrs["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = content_type
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.ctx)) as s, \
                s.request(method, self.base + path, data=data, headers=hdrs) as resp:
            text = await resp.text()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text

    async def whoami(self) -> tuple[int, Any]:
        return await self("POST", SSR, {"apiVersion": "authentication.k8s.io/v1",
                                        "kind": "SelfSubjectReview"})


def as_user(apiserver: ApiServer, user: str, groups: tuple[str, ...] = ()) -> Raw:
    return Raw(apiserver.url, apiserver.tls(user, groups))


def with_token(apiserver: ApiServer, token: str | None) -> Raw:
    return Raw(apiserver.url, client_tls(apiserver.pki.ca_cert), token)


def ns_path(ns: str, plural: str, name: str = "", sub: str = "") -> str:
    path = f"/api/v1/namespaces/{ns}/{plural}"
    if name:
        path += f"/{name}"
    if sub:
        path += f"/{sub}"
    return path


def pod(name: str, sa: str = "", node: str = "", **spec: Any) -> Obj:
    body: Obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                 "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}
    if sa:
        body["spec"]["serviceAccountName"] = sa
    if node:
        body["spec"]["nodeName"] = node
    return body


def token_request(audiences: list[str] | None = None, expiration: int | None = None,
                  bound_pod: Obj | None = None) -> Obj:
    spec: Obj = {}
    if audiences is not None:
        spec["audiences"] = audiences
    if expiration is not None:
        spec["expirationSeconds"] = expiration
    if bound_pod is not None:
        spec["boundObjectRef"] = {"apiVersion": "v1", "kind": "Pod",
                                  "name": bound_pod["metadata"]["name"],
                                  "uid": bound_pod["metadata"]["uid"]}
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}


async def request_token(api: ApiClient, ns: str, sa: str, body: Obj) -> str:
    answer = await api.create_subresource(SERVICEACCOUNTS, sa, "token", body, ns)
    return str(answer["status"]["token"])


def sa_user(ns: str, sa: str, uid: str, extra: Obj | None = None) -> Obj:
    info: Obj = {"username": f"system:serviceaccount:{ns}:{sa}", "uid": uid,
                 "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}",
                            "system:authenticated"]}
    if extra:
        info["extra"] = extra
    return info


def user_info(answer: Obj) -> Obj:
    """SelfSubjectReview's userInfo without the per-token credential id."""
    info = dict(answer["status"]["userInfo"])
    extra = {k: v for k, v in (info.pop("extra", None) or {}).items()
             if k != "authentication.kubernetes.io/credential-id"}
    if extra:
        info["extra"] = extra
    return info


@pytest.fixture
async def ns(api: ApiClient) -> str:
    name = uniq("sec")
    await api.create(NAMESPACES, {"metadata": {"name": name}})
    return name


# ---------------------------------------------------------------------------------------------
# Authentication


async def test_anonymous_reaches_only_the_public_endpoints(apiserver: ApiServer) -> None:
    anonymous = with_token(apiserver, None)
    assert await anonymous("GET", "/api/v1/namespaces") == (401, UNAUTHORIZED)
    assert await anonymous("GET", "/api") == (401, UNAUTHORIZED)
    assert await anonymous("GET", "/apis") == (401, UNAUTHORIZED)
    assert await anonymous("GET", "/metrics") == (401, UNAUTHORIZED)
    for path in ("/healthz", "/readyz", "/livez"):
        code, body = await anonymous("GET", path)
        assert (code, body) == (200, "ok"), path
    code, version = await anonymous("GET", "/version")
    assert code == 200 and "gitVersion" in version
    # A credential that fails is a 401, never a fall back to anonymous.
    assert await with_token(apiserver, "not-a-token")("GET", "/healthz") == (401, UNAUTHORIZED)


def _throwaway_client_cert(tmp: Path) -> tuple[Path, Path]:
    """A CA of our own (not the cluster's) and a client certificate it signed."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mallory"),
                                     x509.NameAttribute(NameOID.ORGANIZATION_NAME,
                                                        "system:masters")]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = tmp / "mallory.crt", tmp / "mallory.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _https_get(url: str, ctx: ssl.SSLContext) -> bytes:
    """GET over a raw TLS socket: the handshake and the first read, nothing hidden."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=parts.hostname) as tls:
        tls.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                    "Connection: close\r\n\r\n".encode())
        out = b""
        while chunk := tls.recv(65536):
            out += chunk
        return out


async def test_client_certificate_of_another_ca_fails_the_handshake(
        apiserver: ApiServer, tmp_path: Path) -> None:
    cert, key = _throwaway_client_cert(tmp_path)
    # TLS 1.2: the server's verdict on the client certificate is part of the handshake.
    tls12 = client_tls(apiserver.pki.ca_cert, cert, key)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        await asyncio.to_thread(_https_get, apiserver.url + "/api/v1/namespaces", tls12)
    # TLS 1.3: the client's side of the handshake ends first; the server then drops the
    # connection instead of answering.
    tls13 = client_tls(apiserver.pki.ca_cert, cert, key)
    try:
        answer = await asyncio.to_thread(_https_get, apiserver.url + "/api/v1/namespaces",
                                         tls13)
    except (ssl.SSLError, ConnectionResetError):
        answer = b""
    assert answer == b""
    with pytest.raises(aiohttp.ClientError):
        await Raw(apiserver.url, tls13)("GET", "/api/v1/namespaces")
    # The same request with the cluster's admin certificate answers.
    code, _ = await Raw(apiserver.url, apiserver.tls())("GET", "/api/v1/namespaces")
    assert code == 200


async def test_bad_bearer_token(apiserver: ApiServer) -> None:
    for token in ("not-a-token", "a.b.c", "Zm9v.YmFy.YmF6"):
        assert await with_token(apiserver, token)("GET", "/api/v1/namespaces") == \
            (401, UNAUTHORIZED), token
    code, _ = await Raw(apiserver.url, client_tls(apiserver.pki.ca_cert),
                        headers={"Authorization": "Basic Ym9iOnNlY3JldA=="})(
        "GET", "/api/v1/namespaces")
    assert code == 401


@pytest.fixture
def token_apiserver(etcd_server: EtcdServer, tmp_path: Path) -> Iterator[ApiServer]:
    """A second apiserver on the session's etcd with a --token-auth-file."""
    tokens = tmp_path / "tokens.csv"
    tokens.write_text('tok123,tokuser,uid1,"g1,g2"\n')
    server = start_apiserver(etcd_server, tmp_path, "--token-auth-file", str(tokens))
    try:
        yield server
    finally:
        stop_process(server.proc)


async def test_static_token_file(token_apiserver: ApiServer) -> None:
    assert await with_token(token_apiserver, "tok124").whoami() == (401, UNAUTHORIZED)
    code, answer = await with_token(token_apiserver, "tok123").whoami()
    assert code == 201, answer
    assert answer["kind"] == "SelfSubjectReview"
    assert answer["apiVersion"] == "authentication.k8s.io/v1"
    assert answer["status"]["userInfo"] == {
        "username": "tokuser", "uid": "uid1", "groups": ["g1", "g2", "system:authenticated"]}
    # Authenticated, but tokuser has no RBAC grants.
    code, body = await with_token(token_apiserver, "tok123")("GET", "/api/v1/namespaces")
    assert (code, body) == (403, forbidden(
        'namespaces is forbidden: User "tokuser" cannot list resource "namespaces" in API '
        'group "" at the cluster scope', "namespaces"))


async def test_client_certificate_identity(apiserver: ApiServer) -> None:
    code, answer = await as_user(apiserver, "alice", ("dev", "ops")).whoami()
    assert code == 201, answer
    assert answer["status"]["userInfo"] == {
        "username": "alice", "groups": ["dev", "ops", "system:authenticated"]}


# ---------------------------------------------------------------------------------------------
# Service-account tokens


@pytest.fixture
async def robot(api: ApiClient, ns: str) -> tuple[str, str, str]:
    """(namespace, ServiceAccount name, its uid)."""
    sa = await api.create(SERVICEACCOUNTS, {"metadata": {"name": "robot"}}, ns)
    return ns, "robot", sa["metadata"]["uid"]


async def test_token_request_validation(api: ApiClient, apiserver: ApiServer,
                                        robot: tuple[str, str, str]) -> None:
    ns, sa, _ = robot
    admin = Raw(apiserver.url, apiserver.tls())
    code, body = await admin("POST", ns_path(ns, "serviceaccounts", sa, "token"),
                             token_request(expiration=599))
    assert code == 422, body
    assert body["reason"] == "Invalid"
    assert body["message"] == (
        'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid '
        'value: 599: may not specify a duration less than 10 minutes')
    code, body = await admin("POST", ns_path(ns, "serviceaccounts", "nobody", "token"),
                             token_request())
    assert (code, body) == (404, status(404, "NotFound", 'serviceaccounts "nobody" not found',
                                        {"name": "nobody", "kind": "serviceaccounts"}))


async def test_service_account_token(api: ApiClient, apiserver: ApiServer,
                                     robot: tuple[str, str, str]) -> None:
    ns, sa, uid = robot
    other = await request_token(api, ns, sa, token_request(audiences=["other"]))
    assert await with_token(apiserver, other).whoami() == (401, UNAUTHORIZED)

    answer = await api.create_subresource(SERVICEACCOUNTS, sa, "token", token_request(), ns)
    assert answer["kind"] == "TokenRequest"
    assert answer["spec"]["audiences"] == [ISSUER]
    assert answer["spec"]["expirationSeconds"] == 3600
    token = answer["status"]["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == ISSUER and claims["aud"] == [ISSUER]
    assert claims["sub"] == f"system:serviceaccount:{ns}:{sa}"
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["kubernetes.io"] == {"namespace": ns,
                                       "serviceaccount": {"name": sa, "uid": uid}}
    code, review = await with_token(apiserver, token).whoami()
    assert code == 201, review
    assert user_info(review) == sa_user(ns, sa, uid)
    assert review["status"]["userInfo"]["extra"][
        "authentication.kubernetes.io/credential-id"] == [f"JTI={claims['jti']}"]
    # Authenticated as the account, which may do nothing more than basic-user.
    code, body = await with_token(apiserver, token)("GET", ns_path(ns, "pods"))
    assert (code, body) == (403, forbidden(
        f'pods is forbidden: User "system:serviceaccount:{ns}:{sa}" cannot list resource '
        f'"pods" in API group "" in the namespace "{ns}"', "pods"))


def _kid(public_pem: bytes) -> str:
    key = serialization.load_pem_public_key(public_pem)
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def _sign(private_pem: bytes, ns: str, sa: str, uid: str, exp: int, iat: int) -> str:
    claims = {"aud": [ISSUER], "exp": exp, "iat": iat, "nbf": iat, "iss": ISSUER,
              "jti": str(uuid.uuid4()), "sub": f"system:serviceaccount:{ns}:{sa}",
              "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": sa, "uid": uid}}}
    key = serialization.load_pem_private_key(private_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": _kid(public)})


async def test_self_signed_tokens_expired_and_foreign_key(
        apiserver: ApiServer, robot: tuple[str, str, str]) -> None:
    ns, sa, uid = robot
    now = int(time.time())
    sa_key = apiserver.pki.sa_key.read_bytes()
    expired = _sign(sa_key, ns, sa, uid, exp=now - 3600, iat=now - 7200)
    assert await with_token(apiserver, expired).whoami() == (401, UNAUTHORIZED)
    foreign_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    foreign = _sign(foreign_key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()),
                    ns, sa, uid, exp=now + 3600, iat=now)
    assert await with_token(apiserver, foreign).whoami() == (401, UNAUTHORIZED)
    wrong_uid = _sign(sa_key, ns, sa, str(uuid.uuid4()), exp=now + 3600, iat=now)
    assert await with_token(apiserver, wrong_uid).whoami() == (401, UNAUTHORIZED)
    # The same claims, still valid: the shape is right, so the 401s were for the reasons.
    valid = _sign(sa_key, ns, sa, uid, exp=now + 3600, iat=now)
    code, review = await with_token(apiserver, valid).whoami()
    assert code == 201, review
    assert user_info(review) == sa_user(ns, sa, uid)


async def _rejected(apiserver: ApiServer, token: str) -> bool:
    return await with_token(apiserver, token).whoami() == (401, UNAUTHORIZED)


async def test_pod_bound_token_dies_with_the_pod(api: ApiClient, apiserver: ApiServer,
                                                 robot: tuple[str, str, str]) -> None:
    ns, sa, uid = robot
    created = await api.create(PODS, pod("holder", sa=sa), ns)
    token = await request_token(api, ns, sa, token_request(bound_pod=created))
    claims = jwt.decode(token, options={"verify_signature": False})
    pod_uid = created["metadata"]["uid"]
    assert claims["kubernetes.io"]["pod"] == {"name": "holder", "uid": pod_uid}
    code, review = await with_token(apiserver, token).whoami()
    assert code == 201, review
    assert user_info(review) == sa_user(ns, sa, uid, extra={
        "authentication.kubernetes.io/pod-name": ["holder"],
        "authentication.kubernetes.io/pod-uid": [pod_uid]})
    await api.delete(PODS, "holder", ns, grace_period_seconds=0)
    await eventually(lambda: _rejected(apiserver, token), timeout=TOKEN_CACHE_WAIT,
                     what="the pod-bound token rejected once its pod is gone")


async def test_token_dies_with_its_service_account(api: ApiClient, apiserver: ApiServer,
                                                   robot: tuple[str, str, str]) -> None:
    ns, sa, uid = robot
    token = await request_token(api, ns, sa, token_request())
    code, review = await with_token(apiserver, token).whoami()
    assert code == 201 and user_info(review) == sa_user(ns, sa, uid), review
    await api.delete(SERVICEACCOUNTS, sa, ns)
    await eventually(lambda: _rejected(apiserver, token), timeout=TOKEN_CACHE_WAIT,
                     what="the token rejected once its ServiceAccount is gone")
    # A new account of the same name has another uid: the old token stays dead.
    await api.create(SERVICEACCOUNTS, {"metadata": {"name": sa}}, ns)
    assert await _rejected(apiserver, token)


# ---------------------------------------------------------------------------------------------
# RBAC


async def grant(api: ApiClient, ns: str, user: str, rules: list[Obj], name: str = "") -> str:
    name = name or uniq("grant")
    await api.create(ROLES, {"metadata": {"name": name}, "rules": rules}, ns)
    await api.create(ROLEBINDINGS, {
        "metadata": {"name": name}, "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": name},
        "subjects": [{"apiGroup": RBAC, "kind": "User", "name": user}]}, ns)
    return name


POD_READER = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}


async def test_rbac_denies_then_allows(api: ApiClient, apiserver: ApiServer, ns: str) -> None:
    bob = as_user(apiserver, "bob")
    assert await bob("GET", ns_path("default", "pods")) == (403, forbidden(
        'pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the '
        'namespace "default"', "pods"))
    assert await bob("GET", ns_path("default", "secrets", "x")) == (403, forbidden(
        'secrets "x" is forbidden: User "bob" cannot get resource "secrets" in API group "" '
        'in the namespace "default"', "secrets", name="x"))
    assert await bob("GET", ns_path(ns, "pods")) == (403, forbidden(
        f'pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the '
        f'namespace "{ns}"', "pods"))
    assert await bob("GET", "/api/v1/nodes") == (403, forbidden(
        'nodes is forbidden: User "bob" cannot list resource "nodes" in API group "" at the '
        'cluster scope', "nodes"))
    assert await bob("POST", f"/apis/{RBAC}/v1/namespaces/{ns}/roles",
                     {"metadata": {"name": "r"}, "rules": []}) == (403, forbidden(
        f'roles.{RBAC} is forbidden: User "bob" cannot create resource "roles" in API group '
        f'"{RBAC}" in the namespace "{ns}"', "roles", group=RBAC))

    await grant(api, ns, "bob", [POD_READER])

    async def lists() -> bool:
        code, body = await bob("GET", ns_path(ns, "pods"))
        return code == 200 and body["kind"] == "PodList"
    await eventually(lists, what="bob's new Role taking effect")
    await api.create(PODS, pod("p"), ns)
    code, got = await bob("GET", ns_path(ns, "pods", "p"))
    assert code == 200 and got["metadata"]["name"] == "p"
    # Only what the Role says, only where it is bound.
    assert await bob("DELETE", ns_path(ns, "pods", "p")) == (403, forbidden(
        f'pods "p" is forbidden: User "bob" cannot delete resource "pods" in API group "" in '
        f'the namespace "{ns}"', "pods", name="p"))
    assert await bob("GET", ns_path(ns, "pods", "p", "log")) == (403, forbidden(
        f'pods "p" is forbidden: User "bob" cannot get resource "pods/log" in API group "" in '
        f'the namespace "{ns}"', "pods", name="p"))
    assert (await bob("GET", ns_path("default", "pods")))[0] == 403


async def test_rbac_escalation_prevention(api: ApiClient, apiserver: ApiServer,
                                          ns: str) -> None:
    bob = as_user(apiserver, "bob")
    writer = await grant(api, ns, "bob", [
        {"apiGroups": [RBAC], "resources": ["roles"], "verbs": ["create"]}])
    sneaky = {"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": {"name": "sneaky"},
              "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}
    roles = f"/apis/{RBAC}/v1/namespaces/{ns}/roles"
    denied = (403, forbidden(
        f'roles.{RBAC} "sneaky" is forbidden: user "bob" (groups=["system:authenticated"]) '
        'is attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}', "roles", name="sneaky",
        group=RBAC))

    async def refused_for_escalation() -> bool:
        return await bob("POST", roles, sneaky) == denied
    await eventually(refused_for_escalation, what="bob may create roles, but not escalate")
    # A role holding nothing bob lacks is fine.
    code, body = await bob("POST", roles, {"metadata": {"name": "harmless"}, "rules": [
        {"apiGroups": [RBAC], "resources": ["roles"], "verbs": ["create"]}]})
    assert code == 201, body

    await api.patch(ROLES, writer, {"rules": [
        {"apiGroups": [RBAC], "resources": ["roles"], "verbs": ["create", "escalate"]}]}, ns)

    async def created() -> bool:
        code, body = await bob("POST", roles, sneaky)
        return code == 201 and body["rules"] == sneaky["rules"]
    await eventually(created, what="bob with `escalate` creating the role")
    # Granting is not holding: bob still cannot read secrets.
    assert (await bob("GET", ns_path(ns, "secrets", "x")))[0] == 403


async def test_access_reviews(api: ApiClient, apiserver: ApiServer, ns: str) -> None:
    bob = as_user(apiserver, "bob")
    admin = Raw(apiserver.url, apiserver.tls())
    await grant(api, ns, "bob", [POD_READER])

    def ssar(verb: str, resource: str, namespace: str) -> Obj:
        return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {"namespace": namespace, "verb": verb,
                                                "resource": resource}}}

    async def may_list() -> bool:
        code, body = await bob("POST", SSAR, ssar("list", "pods", ns))
        return code == 201 and body["status"]["allowed"] is True
    await eventually(may_list, what="SelfSubjectAccessReview seeing bob's Role")
    code, body = await bob("POST", SSAR, ssar("list", "secrets", ns))
    assert code == 201 and body["status"] == {"allowed": False}, body
    code, body = await bob("POST", SSAR, ssar("list", "pods", "default"))
    assert code == 201 and body["status"] == {"allowed": False}, body

    # SubjectAccessReview: only for those allowed to create it (not bob).
    sar: Obj = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
           "spec": {"user": "bob", "resourceAttributes": {"namespace": ns, "verb": "get",
                                                          "resource": "pods"}}}
    assert await bob("POST", SAR, sar) == (403, forbidden(
        'subjectaccessreviews.authorization.k8s.io is forbidden: User "bob" cannot create '
        'resource "subjectaccessreviews" in API group "authorization.k8s.io" at the cluster '
        'scope', "subjectaccessreviews", group="authorization.k8s.io"))
    code, body = await admin("POST", SAR, sar)
    assert code == 201 and body["status"]["allowed"] is True, body
    assert body["spec"]["user"] == "bob"
    sar["spec"]["resourceAttributes"]["verb"] = "delete"
    code, body = await admin("POST", SAR, sar)
    assert code == 201 and body["status"] == {"allowed": False}, body

    # Impersonation needs the `impersonate` verb.
    assert await bob("GET", ns_path(ns, "pods"), headers={"Impersonate-User": "alice"}) == \
        (403, forbidden('users "alice" is forbidden: User "bob" cannot impersonate resource '
                        '"users" in API group "" at the cluster scope', "users",
                        name="alice"))
    # The admin may: as bob, bob's rights.
    code, body = await admin("GET", ns_path(ns, "pods"), headers={"Impersonate-User": "bob"})
    assert code == 200, body
    code, body = await admin("GET", ns_path("default", "pods"),
                             headers={"Impersonate-User": "bob"})
    assert code == 403, body
    code, body = await admin("POST", SSR, {"kind": "SelfSubjectReview"}, headers={
        "Impersonate-User": "bob", "Impersonate-Group": "devs"})
    assert code == 201
    assert body["status"]["userInfo"] == {"username": "bob",
                                          "groups": ["devs", "system:authenticated"]}


def kubectl_path() -> str:
    path = shutil.which("kubectl")
    if path is None:
        print("kubectl is not installed: the kubectl cases need it (optional tool)")
        pytest.skip("kubectl is not installed")
    return path


async def kubectl(kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        kubectl_path(), "--kubeconfig", str(kubeconfig), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_kubectl_auth(api: ApiClient, apiserver: ApiServer, ns: str,
                            tmp_path: Path) -> None:
    kubectl_path()
    bob_conf = apiserver.user_kubeconfig(tmp_path / "bob.conf", "bob")
    code, out, err = await kubectl(apiserver.kubeconfig, "auth", "can-i", "list", "pods",
                                   "--as", "bob", "-n", ns)
    assert (code, out.strip()) == (1, "no"), err
    await grant(api, ns, "bob", [POD_READER])

    async def yes() -> bool:
        code, out, _ = await kubectl(apiserver.kubeconfig, "auth", "can-i", "list", "pods",
                                     "--as", "bob", "-n", ns)
        return (code, out.strip()) == (0, "yes")
    await eventually(yes, what="kubectl auth can-i --as bob seeing the Role")
    code, out, err = await kubectl(apiserver.kubeconfig, "auth", "can-i", "list", "pods",
                                   "--as", "bob", "-n", "default")
    assert (code, out.strip()) == (1, "no"), err
    code, out, err = await kubectl(bob_conf, "auth", "can-i", "delete", "pods", "-n", ns)
    assert (code, out.strip()) == (1, "no"), err

    code, out, err = await kubectl(bob_conf, "auth", "can-i", "--list", "-n", ns)
    assert code == 0, err
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"]
    assert ["pods", "[]", "[]", "[get", "list]"] in rows, out
    # system:basic-user's rules are part of everyone's list.
    assert ["selfsubjectaccessreviews.authorization.k8s.io", "[]", "[]", "[create]"] in rows

    code, out, err = await kubectl(bob_conf, "auth", "whoami", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["status"]["userInfo"] == {
        "username": "bob", "groups": ["system:authenticated"]}

    code, out, err = await kubectl(bob_conf, "get", "pods", "-n", ns, "--as", "alice")
    assert code == 1
    assert 'users "alice" is forbidden: User "bob" cannot impersonate resource "users" in ' \
           'API group "" at the cluster scope' in err
    code, out, err = await kubectl(bob_conf, "get", "secrets", "-n", ns)
    assert code == 1
    assert err.strip() == (f'Error from server (Forbidden): secrets is forbidden: User "bob" '
                           f'cannot list resource "secrets" in API group "" in the namespace '
                           f'"{ns}"')


# ---------------------------------------------------------------------------------------------
# Node authorizer and NodeRestriction


@dataclass
class NodeWorld:
    ns: str
    a: str  # node names
    b: str
    pa: Obj  # the pods as created
    pb: Obj


@pytest.fixture
async def nodes(api: ApiClient, ns: str) -> AsyncIterator[NodeWorld]:
    """Nodes a and b; in `ns` the account `runner`, Secrets s-a, s-b and other, a pod p-a
    on node a mounting s-a and a pod p-b on node b mounting s-b (both run as `runner`)."""
    suffix = uuid.uuid4().hex[:6]
    a, b = f"node-a-{suffix}", f"node-b-{suffix}"
    for name in (a, b):
        await api.create(NODES, {"metadata": {"name": name}})
    await api.create(SERVICEACCOUNTS, {"metadata": {"name": "runner"}}, ns)
    for name in ("s-a", "s-b", "other"):
        await api.create(SECRETS, {"metadata": {"name": name}, "data": {"k": "dg=="}}, ns)
    pa = await api.create(PODS, pod("p-a", sa="runner", node=a, volumes=[
        {"name": "s", "secret": {"secretName": "s-a"}}]), ns)
    pb = await api.create(PODS, pod("p-b", sa="runner", node=b, volumes=[
        {"name": "s", "secret": {"secretName": "s-b"}}]), ns)
    try:
        yield NodeWorld(ns, a, b, pa, pb)
    finally:
        for name in (a, b):
            await api.delete(NODES, name)


async def test_node_authorizer_and_node_restriction(apiserver: ApiServer,
                                                    nodes: NodeWorld) -> None:
    ns, a, b = nodes.ns, nodes.a, nodes.b
    node_a = as_user(apiserver, f"system:node:{a}", ("system:nodes",))
    user = f"system:node:{a}"

    # Secrets: only those a pod on the node uses.
    async def reads_own_secret() -> bool:
        code, body = await node_a("GET", ns_path(ns, "secrets", "s-a"))
        return code == 200 and body["metadata"]["name"] == "s-a"
    await eventually(reads_own_secret, what="node a reading the Secret its pod mounts")
    for secret in ("other", "s-b"):
        assert await node_a("GET", ns_path(ns, "secrets", secret)) == (403, forbidden(
            f'secrets "{secret}" is forbidden: User "{user}" cannot get resource "secrets" in '
            f'API group "" in the namespace "{ns}": no relationship found between node '
            f"'{a}' and this object", "secrets", name=secret))

    # Pod status: only of its own pods.
    assert await node_a("PATCH", ns_path(ns, "pods", "p-b", "status"),
                        {"status": {"message": "from a"}}, MERGE) == (403, forbidden(
        f'pods "p-b" is forbidden: node "{a}" can only update pod status for pods with '
        'spec.nodeName set to itself', "pods", name="p-b"))
    code, body = await node_a("PATCH", ns_path(ns, "pods", "p-a", "status"),
                              {"status": {"message": "from a"}}, MERGE)
    assert code == 200, body
    assert body["status"]["message"] == "from a"

    # Deleting: only its own pods.
    assert await node_a("DELETE", ns_path(ns, "pods", "p-b")) == (403, forbidden(
        f'pods "p-b" is forbidden: node "{a}" can only delete pods with spec.nodeName set to '
        'itself', "pods", name="p-b"))

    # Nodes: only its own.
    assert await node_a("PATCH", f"/api/v1/nodes/{b}/status",
                        {"status": {"conditions": []}}, MERGE) == (403, forbidden(
        f'nodes "{b}" is forbidden: node "{a}" is not allowed to modify node "{b}"', "nodes",
        name=b))
    code, body = await node_a("PATCH", f"/api/v1/nodes/{a}/status", {"status": {
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "kubelet is posting ready status"}]}}, MERGE)
    assert code == 200, body
    assert [c["type"] for c in body["status"]["conditions"]] == ["Ready"]

    # Pods: only mirror pods.
    assert await node_a("POST", ns_path(ns, "pods"), pod("rogue", node=a)) == (403, forbidden(
        'pods "rogue" is forbidden: pod does not have "kubernetes.io/config.mirror" '
        f'annotation, node "{a}" can only create mirror pods', "pods", name="rogue"))

    # Tokens: for its pods' account, bound to one of its pods.
    assert await node_a("POST", ns_path(ns, "serviceaccounts", "runner", "token"),
                        token_request(bound_pod=nodes.pb)) == (403, forbidden(
        'serviceaccounts "runner" is forbidden: node requested token bound to a pod scheduled '
        'on a different node', "serviceaccounts", name="runner"))
    code, body = await node_a("POST", ns_path(ns, "serviceaccounts", "default", "token"),
                              token_request())
    assert (code, body) == (403, forbidden(
        f'serviceaccounts "default" is forbidden: User "{user}" cannot create resource '
        f'"serviceaccounts/token" in API group "" in the namespace "{ns}": no relationship '
        f"found between node '{a}' and this object", "serviceaccounts", name="default"))
    code, body = await node_a("POST", ns_path(ns, "serviceaccounts", "runner", "token"),
                              token_request(bound_pod=nodes.pa))
    assert code == 201, body
    claims = jwt.decode(body["status"]["token"], options={"verify_signature": False})
    assert claims["kubernetes.io"]["pod"] == {"name": "p-a",
                                              "uid": nodes.pa["metadata"]["uid"]}
    assert claims["kubernetes.io"]["node"]["name"] == a

    # Leases: only its own, in kube-node-lease.
    lease = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{b}"
    assert await node_a("GET", lease) == (403, forbidden(
        f'leases.coordination.k8s.io "{b}" is forbidden: User "{user}" cannot get resource '
        '"leases" in API group "coordination.k8s.io" in the namespace "kube-node-lease": can '
        'only access node lease with the same name as the requesting node', "leases",
        name=b, group="coordination.k8s.io"))
    code, body = await node_a("POST", "/apis/coordination.k8s.io/v1/namespaces/"
                                      "kube-node-lease/leases", {
        "metadata": {"name": a}, "spec": {"holderIdentity": a, "leaseDurationSeconds": 40}})
    assert code == 201, body
    code, body = await node_a("GET", f"/apis/coordination.k8s.io/v1/namespaces/"
                                     f"kube-node-lease/leases/{a}")
    assert code == 200 and body["spec"]["holderIdentity"] == a

    # Node b sees the mirror image of all of this.
    node_b = as_user(apiserver, f"system:node:{b}", ("system:nodes",))
    assert (await node_b("GET", ns_path(ns, "secrets", "s-a")))[0] == 403
    code, body = await node_b("GET", ns_path(ns, "secrets", "s-b"))
    assert code == 200, body
    assert (await node_b("DELETE", ns_path(ns, "pods", "p-a")))[0] == 403


NODE_LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
MIRROR = "kubernetes.io/config.mirror"
SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


async def test_node_creates_only_its_own_lease(apiserver: ApiServer, nodes: NodeWorld) -> None:
    a, b = nodes.a, nodes.b
    node_a = as_user(apiserver, f"system:node:{a}", ("system:nodes",))

    def lease(name: str) -> Obj:
        return {"metadata": {"name": name},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": 40}}
    # The Node authorizer lets a node create any lease (the name is not known to it):
    # NodeRestriction refuses another node's.
    assert await node_a("POST", NODE_LEASES, lease(b)) == (403, forbidden(
        f'leases.coordination.k8s.io "{b}" is forbidden: can only access node lease with the '
        'same name as the requesting node', "leases", name=b, group="coordination.k8s.io"))
    code, body = await node_a("POST", NODE_LEASES, lease(a))
    assert code == 201, body
    assert body["metadata"]["name"] == a and body["spec"]["holderIdentity"] == a
    assert (await node_a("DELETE", f"{NODE_LEASES}/{a}"))[0] == 200


def mirror_pod(name: str, node: str = "", owners: list[Obj] | None = None) -> Obj:
    body = pod(name, node=node)
    body["metadata"]["annotations"] = {MIRROR: "hash"}
    if owners is not None:
        body["metadata"]["ownerReferences"] = owners
    return body


def node_owner(node: Obj) -> Obj:
    return {"apiVersion": "v1", "kind": "Node", "name": node["metadata"]["name"],
            "uid": node["metadata"]["uid"], "controller": True}


def token_volumes(spec: Obj) -> list[Obj]:
    return [v for v in spec.get("volumes") or [] if v["name"].startswith("kube-api-access-")]


async def test_service_account_admission_of_pods(api: ApiClient, apiserver: ApiServer,
                                                 ns: str) -> None:
    admin = Raw(apiserver.url, apiserver.tls())
    # A mirror pod stays without an account and without a token.
    code, body = await admin("POST", ns_path(ns, "pods"), mirror_pod("static-web"))
    assert code == 201, body
    assert "serviceAccountName" not in body["spec"], body["spec"]
    assert "serviceAccount" not in body["spec"]
    assert token_volumes(body["spec"]) == []
    assert all("volumeMounts" not in c for c in body["spec"]["containers"])
    # ... and may not name one.
    assert await admin("POST", ns_path(ns, "pods"), {
        **mirror_pod("static-sa"), "spec": {**pod("x")["spec"], "serviceAccountName": "default"}
    }) == (403, forbidden('pods "static-sa" is forbidden: a mirror pod may not reference '
                          'service accounts', "pods", name="static-sa"))

    # Any other pod runs as `default`, its token mounted into every container.
    await api.create(SERVICEACCOUNTS, {"metadata": {"name": "default"}}, ns)
    code, body = await admin("POST", ns_path(ns, "pods"), pod(
        "web", initContainers=[{"name": "init", "image": "busybox"}],
        containers=[{"name": "c1", "image": "busybox"}, {"name": "c2", "image": "busybox"}]))
    assert code == 201, body
    spec = body["spec"]
    assert spec["serviceAccountName"] == "default" and spec["serviceAccount"] == "default"
    [volume] = token_volumes(spec)
    assert re.fullmatch(r"kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}", volume["name"])
    assert volume["projected"] == {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt",
                                                              "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
            "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}
    for c in (*spec["initContainers"], *spec["containers"]):
        assert c["volumeMounts"] == [{"name": volume["name"], "readOnly": True,
                                      "mountPath": SA_MOUNT}], c["name"]

    # automountServiceAccountToken: false — the account, but no token.
    code, body = await admin("POST", ns_path(ns, "pods"),
                             pod("quiet", automountServiceAccountToken=False))
    assert code == 201, body
    assert body["spec"]["serviceAccountName"] == "default"
    assert "volumes" not in body["spec"] or token_volumes(body["spec"]) == []
    assert all("volumeMounts" not in c for c in body["spec"]["containers"])


async def test_node_creates_mirror_pods_it_owns(api: ApiClient, apiserver: ApiServer,
                                                nodes: NodeWorld) -> None:
    ns, a = nodes.ns, nodes.a
    node_a = as_user(apiserver, f"system:node:{a}", ("system:nodes",))
    node_obj_a, node_obj_b = await api.get(NODES, a), await api.get(NODES, nodes.b)

    code, body = await node_a("POST", ns_path(ns, "pods"),
                              mirror_pod("m-b", a, [node_owner(node_obj_b)]))
    assert (code, body) == (403, forbidden(
        f'pods "m-b" is forbidden: node "{a}" can only create pods with an owner reference '
        'set to itself', "pods", name="m-b"))
    # (two controller references would be validation's 422, before admission)
    code, body = await node_a("POST", ns_path(ns, "pods"), mirror_pod(
        "m-two", a, [node_owner(node_obj_a), {**node_owner(node_obj_b), "controller": False}]))
    assert (code, body) == (403, forbidden(
        f'pods "m-two" is forbidden: node "{a}" can only create pods with a single owner '
        'reference set to itself', "pods", name="m-two"))

    code, body = await node_a("POST", ns_path(ns, "pods"), mirror_pod("m-none", a, []))
    assert (code, body) == (403, forbidden(
        f'pods "m-none" is forbidden: node "{a}" can only create pods with an owner '
        'reference set to itself', "pods", name="m-none"))
    stale = {**node_owner(node_obj_a), "uid": str(uuid.uuid4())}  # a deleted, recreated node
    code, body = await node_a("POST", ns_path(ns, "pods"), mirror_pod("m-stale", a, [stale]))
    assert (code, body) == (403, forbidden(
        f'pods "m-stale" is forbidden: node {a} UID mismatch: expected {stale["uid"]} got '
        f'{node_obj_a["metadata"]["uid"]}', "pods", name="m-stale"))

    code, body = await node_a("POST", ns_path(ns, "pods"),
                              mirror_pod("m-a", a, [node_owner(node_obj_a)]))
    assert code == 201, body
    assert body["metadata"]["ownerReferences"] == [node_owner(node_obj_a)]
    assert body["spec"]["nodeName"] == a
    assert "serviceAccountName" not in body["spec"] and token_volumes(body["spec"]) == []


async def test_node_token_request_binding(apiserver: ApiServer, nodes: NodeWorld) -> None:
    ns, a = nodes.ns, nodes.a
    node_a = as_user(apiserver, f"system:node:{a}", ("system:nodes",))
    path = ns_path(ns, "serviceaccounts", "runner", "token")

    def bound(name: str, uid: str) -> Obj:
        body = token_request()
        body["spec"]["boundObjectRef"] = {"apiVersion": "v1", "kind": "Pod", "name": name}
        if uid:
            body["spec"]["boundObjectRef"]["uid"] = uid
        return body

    async def authorized() -> bool:  # the graph sees p-a (and so `runner`) for node a
        return (await node_a("POST", path, bound("p-a", nodes.pa["metadata"]["uid"])))[0] \
            == 201
    await eventually(authorized, what="node a asking a token for its pod's account")
    assert await node_a("POST", path, bound("p-a", "")) == (403, forbidden(
        'serviceaccounts "runner" is forbidden: node requested token with a pod binding '
        'without a uid', "serviceaccounts", name="runner"))
    assert await node_a("POST", path, bound("ghost", str(uuid.uuid4()))) == (404, status(
        404, "NotFound", 'pods "ghost" not found', {"name": "ghost", "kind": "pods"}))


async def test_node_authorizer_leaves_the_rest_to_rbac(api: ApiClient, apiserver: ApiServer,
                                                       nodes: NodeWorld) -> None:
    ns, a, b = nodes.ns, nodes.a, nodes.b
    node_a = as_user(apiserver, f"system:node:{a}", ("system:nodes",))
    admin = Raw(apiserver.url, apiserver.tls())

    def sar(node: str) -> Obj:
        return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"user": f"system:node:{node}",
                         "groups": ["system:nodes", "system:authenticated"],
                         "resourceAttributes": {"namespace": ns, "verb": "get",
                                                "resource": "secrets", "name": "other"}}}

    def no_opinion(node: str) -> Obj:
        # NoOpinion, not Deny: allowed false with the Node authorizer's reason, no `denied`.
        return {"allowed": False,
                "reason": f"no relationship found between node '{node}' and this object"}

    code, body = await admin("POST", SAR, sar(a))
    assert code == 201 and body["status"] == no_opinion(a), body

    name = uniq("node-secret-reader")
    await api.create(CLUSTERROLES, {"metadata": {"name": name}, "rules": [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]})
    try:
        await api.create(CLUSTERROLEBINDINGS, {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": RBAC, "kind": "User", "name": f"system:node:{a}"}]})

        async def reads_other() -> bool:
            code, body = await node_a("GET", ns_path(ns, "secrets", "other"))
            return code == 200 and body["metadata"]["name"] == "other"
        await eventually(reads_other, what="RBAC granting node a what its graph does not")
        code, body = await admin("POST", SAR, sar(a))
        assert code == 201 and body["status"]["allowed"] is True, body
        assert "denied" not in body["status"]
        code, body = await admin("POST", SAR, sar(b))
        assert code == 201 and body["status"] == no_opinion(b), body
        node_b = as_user(apiserver, f"system:node:{b}", ("system:nodes",))
        assert (await node_b("GET", ns_path(ns, "secrets", "other")))[0] == 403
    finally:
        await api.delete(CLUSTERROLEBINDINGS, name)
        await api.delete(CLUSTERROLES, name)
