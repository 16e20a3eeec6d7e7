"""Service-account tokens: issuing, authenticating (bound and legacy), TokenRequest and
the issuer discovery documents (apiserver/auth/serviceaccount.py)."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from api import errors
from apiserver.auth import serviceaccount as sa_tokens
from apiserver.auth.serviceaccount import (
    BoundObject,
    ObjectRef,
    TokenAuthenticator,
    TokenInvalid,
    TokenIssuer,
    jwks,
    key_id,
    openid_configuration,
    token_request,
)

Obj = dict[str, Any]
ISSUER = "https://kubernetes.default.svc.cluster.local"
NOW = 1_800_000_000.0


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def issuer(rsa_key: rsa.RSAPrivateKey) -> TokenIssuer:
    return TokenIssuer(_pem(rsa_key), ISSUER)


def _obj(name: str, uid: str, ns: str = "team", **extra: Any) -> Obj:
    md: Obj = {"name": name, "uid": uid}
    if ns:
        md["namespace"] = ns
    md.update(extra.pop("metadata", {}))
    return {"metadata": md, **extra}


@dataclass
class FakeLookup:
    """The ServiceAccountTokenGetter the apiserver supplies, over plain dicts."""

    sas: dict[tuple[str, str], Obj] = field(default_factory=dict)
    pods: dict[tuple[str, str], Obj] = field(default_factory=dict)
    secrets: dict[tuple[str, str], Obj] = field(default_factory=dict)
    nodes: dict[str, Obj] = field(default_factory=dict)

    async def get_service_account(self, namespace: str, name: str) -> Obj | None:
        return self.sas.get((namespace, name))

    async def get_pod(self, namespace: str, name: str) -> Obj | None:
        return self.pods.get((namespace, name))

    async def get_secret(self, namespace: str, name: str) -> Obj | None:
        return self.secrets.get((namespace, name))

    async def get_node(self, name: str) -> Obj | None:
        return self.nodes.get(name)


@pytest.fixture
def lookup() -> FakeLookup:
    return FakeLookup(
        sas={("team", "builder"): _obj("builder", "sa-1")},
        pods={("team", "web-0"): _obj("web-0", "pod-1", spec={
            "serviceAccountName": "builder", "nodeName": "node-a"})},
        secrets={("team", "s1"): _obj("s1", "sec-1")},
        nodes={"node-a": _obj("node-a", "node-1", ns="")})


def _authn(rsa_key: rsa.RSAPrivateKey, lookup: FakeLookup, now: float = NOW,
           audiences: list[str] | None = None) -> TokenAuthenticator:
    return TokenAuthenticator([_public_pem(rsa_key)], [ISSUER], audiences, lookup,
                              clock=lambda: now)


def _claims(token: str) -> Obj:
    return jwt.decode(token, options={"verify_signature": False})


# --- issuing --------------------------------------------------------------------------------

def test_key_id_is_base64url_sha256_of_der(rsa_key: rsa.RSAPrivateKey) -> None:
    der = rsa_key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(der)
    expected = base64.urlsafe_b64encode(digest.finalize()).rstrip(b"=").decode()
    assert key_id(rsa_key.public_key()) == expected
    assert "=" not in expected and len(expected) == 43


def test_issue_has_upstream_claims_and_header(issuer: TokenIssuer,
                                              rsa_key: rsa.RSAPrivateKey) -> None:
    token, exp = issuer.issue("team", "builder", "sa-1", ["api"], 3600,
                              BoundObject(pod=ObjectRef("web-0", "pod-1"),
                                          node=ObjectRef("node-a", "node-1")), now=NOW)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "RS256", "kid": key_id(rsa_key.public_key())}
    c = jwt.decode(token, rsa_key.public_key(), algorithms=["RS256"], audience="api",
                   options={"verify_exp": False, "verify_nbf": False, "verify_iat": False})
    assert c["iss"] == ISSUER
    assert c["sub"] == "system:serviceaccount:team:builder"
    assert c["aud"] == ["api"]
    assert c["iat"] == c["nbf"] == int(NOW) and c["exp"] == int(NOW) + 3600
    assert exp.timestamp() == int(NOW) + 3600
    assert len(c["jti"]) == 36
    assert c["kubernetes.io"] == {
        "namespace": "team", "serviceaccount": {"name": "builder", "uid": "sa-1"},
        "pod": {"name": "web-0", "uid": "pod-1"}, "node": {"name": "node-a", "uid": "node-1"}}
    assert "warnafter" not in c["kubernetes.io"]


def test_every_token_has_its_own_jti(issuer: TokenIssuer) -> None:
    a, _ = issuer.issue("team", "builder", "sa-1", ["api"], 600, None, now=NOW)
    b, _ = issuer.issue("team", "builder", "sa-1", ["api"], 600, None, now=NOW)
    assert _claims(a)["jti"] != _claims(b)["jti"]


def test_ec_key_signs_es256(ec_key: ec.EllipticCurvePrivateKey) -> None:
    issuer = TokenIssuer(_pem(ec_key), ISSUER)
    token, _ = issuer.issue("team", "builder", "sa-1", ["api"], 600, None, now=NOW)
    assert jwt.get_unverified_header(token)["alg"] == "ES256"


def test_bound_object_is_one_kind_only() -> None:
    with pytest.raises(ValueError, match="one object type"):
        BoundObject(secret=ObjectRef("s"), pod=ObjectRef("p"))


# --- authenticating -------------------------------------------------------------------------

async def test_valid_pod_bound_token(issuer: TokenIssuer, rsa_key: rsa.RSAPrivateKey,
                                     lookup: FakeLookup) -> None:
    token, _ = issuer.issue("team", "builder", "sa-1", [ISSUER], 3600,
                            BoundObject(pod=ObjectRef("web-0", "pod-1"),
                                        node=ObjectRef("node-a", "node-1")), now=NOW)
    result = await _authn(rsa_key, lookup).authenticate(token)
    assert result is not None
    user = result.user
    assert user.name == "system:serviceaccount:team:builder"
    assert user.uid == "sa-1"
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:team")
    jti = _claims(token)["jti"]
    assert dict(user.extra) == {
        "authentication.kubernetes.io/pod-name": ("web-0",),
        "authentication.kubernetes.io/pod-uid": ("pod-1",),
        "authentication.kubernetes.io/node-name": ("node-a",),
        "authentication.kubernetes.io/node-uid": ("node-1",),
        "authentication.kubernetes.io/credential-id": (f"JTI={jti}",)}
    assert result.audiences == (ISSUER,)
    # As a member of the apiserver's chain, the object is called with the token alone.
    assert await _authn(rsa_key, lookup)(token) == user


async def test_not_ours_returns_none(issuer: TokenIssuer, rsa_key: rsa.RSAPrivateKey,
                                     other_key: rsa.RSAPrivateKey, lookup: FakeLookup) -> None:
    authn = _authn(rsa_key, lookup)
    assert await authn.authenticate("31ada4fd-adec-460c-809a-9e56ceb75269") is None
    assert await authn.authenticate("a.b.c") is None
    assert await authn.authenticate('{"iss": "x"}') is None
    foreign = TokenIssuer(_pem(other_key), "https://elsewhere.example")
    token, _ = foreign.issue("team", "builder", "sa-1", [ISSUER], 600, None, now=NOW)
    assert await authn.authenticate(token) is None


async def test_our_issuer_but_wrong_key_is_invalid(other_key: rsa.RSAPrivateKey,
                                                   rsa_key: rsa.RSAPrivateKey,
                                                   lookup: FakeLookup) -> None:
    forged = TokenIssuer(_pem(other_key), ISSUER)
    token, _ = forged.issue("team", "builder", "sa-1", [ISSUER], 600, None, now=NOW)
    with pytest.raises(TokenInvalid, match="no keys found"):
        await _authn(rsa_key, lookup).authenticate(token)
    # Without a kid every key is tried, and none verifies it.
    claims = _claims(token)
    unkeyed = jwt.encode(claims, other_key, algorithm="RS256", headers={"typ": None})
    with pytest.raises(TokenInvalid):
        await _authn(rsa_key, lookup).authenticate(unkeyed)


async def test_token_without_kid_verifies_against_all_keys(
        rsa_key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey, lookup: FakeLookup) -> None:
    issuer = TokenIssuer(_pem(rsa_key), ISSUER)
    token, _ = issuer.issue("team", "builder", "sa-1", [ISSUER], 600, None, now=NOW)
    unkeyed = jwt.encode(_claims(token), rsa_key, algorithm="RS256", headers={"typ": None})
    authn = TokenAuthenticator([_public_pem(other_key), _public_pem(rsa_key)], [ISSUER],
                               None, lookup, clock=lambda: NOW)
    assert await authn.authenticate(unkeyed) is not None


async def test_unsigned_token_is_rejected(issuer: TokenIssuer, rsa_key: rsa.RSAPrivateKey,
                                          lookup: FakeLookup) -> None:
    token, _ = issuer.issue("team", "builder", "sa-1", [ISSUER], 600, None, now=NOW)
    none_alg = jwt.encode(_claims(token), "", algorithm="none")
    with pytest.raises(TokenInvalid):
        await _authn(rsa_key, lookup).authenticate(none_alg)


@pytest.mark.parametrize(("offset", "error"), [
    (3600 + 59, None),  # within the 60 s leeway
    (3600 + 61, "service account token has expired"),
    (-61, "service account token is not valid yet"),
])
async def test_expiry_and_not_before_with_leeway(issuer: TokenIssuer, rsa_key: rsa.RSAPrivateKey,
                                                 lookup: FakeLookup, offset: float,
                                                 error: str | None) -> None:
    token, _ = issuer.issue("team", "builder", "sa-1", [ISSUER], 3600, None, now=NOW)
    authn = _authn(rsa_key, lookup, now=NOW + offset)
    if error is None:
        assert await authn.authenticate(token) is not None
    else:
        with pytest.raises(TokenInvalid, match=error):
            await authn.authenticate(token)


async def test_audience_must_intersect(issuer: TokenIssuer, rsa_key: rsa.RSAPrivateKey,
                                       lookup: FakeLookup) -> None:
    token, _ = issuer.issue("team", "builder", "sa-1", ["vault"], 600, None, now=NOW)
    with pytest.raises(TokenInvalid, match=r'token audiences \["vault"\] is invalid for the '
                                           r'target audiences \["https://kubernetes'):
        await _authn(rsa_key, lookup).authenticate(token)
    # A TokenReview may ask for the token's own audience.
    result = await _authn(rsa_key, lookup).authenticate(token, audiences=["vault", "x"])
    assert result is not None and result.audiences == ("vault",)
    # --api-audiences replaces the issuer default.
    authn = _authn(rsa_key, lookup, audiences=["vault"])
    assert authn.api_audiences == ("vault",)
    assert await authn.authenticate(token) is not None


async def test_deleted_or_replaced_pod_invalidates(issuer: TokenIssuer,
                                                   rsa_key: rsa.RSAPrivateKey,
                                                   lookup: FakeLookup) -> None:
    token, _ = issuer.issue("team", "builder", "sa-1", [ISSUER], 3600,
                            BoundObject(pod=ObjectRef("web-0", "pod-1")), now=NOW)
    authn = _authn(rsa_key, lookup)
    pod = lookup.pods[("team", "web-0")]
    # Being deleted, but the deletion is newer than the leeway: still valid (upstream).
    pod["metadata"]["deletionTimestamp"] = _rfc3339(NOW - 30)
    assert await authn.authenticate(token) is not None
    pod["metadata"]["deletionTimestamp"] = _rfc3339(NOW - 61)
    with pytest.raises(TokenInvalid, match="service account token has been invalidated"):
        await authn.authenticate(token)
    del pod["metadata"]["deletionTimestamp"]
    pod["metadata"]["uid"] = "pod-2"
    with pytest.raises(TokenInvalid, match=r"pod UID \(pod-2\) does not match"):
        await authn.authenticate(token)
    del lookup.pods[("team", "web-0")]
    with pytest.raises(TokenInvalid, match="service account token has been invalidated"):
        await authn.authenticate(token)


async def test_service_account_must_still_exist(issuer: TokenIssuer,
                                                rsa_key: rsa.RSAPrivateKey,
                                                lookup: FakeLookup) -> None:
    token, _ = issuer.issue("team", "builder", "sa-1", [ISSUER], 3600, None, now=NOW)
    authn = _authn(rsa_key, lookup)
    lookup.sas[("team", "builder")]["metadata"]["uid"] = "sa-2"
    with pytest.raises(TokenInvalid, match=r"service account UID \(sa-2\) does not match "
                                           r"claim \(sa-1\)"):
        await authn.authenticate(token)
    del lookup.sas[("team", "builder")]
    with pytest.raises(TokenInvalid, match='serviceaccounts "builder" not found'):
        await authn.authenticate(token)


async def test_secret_and_node_bound_tokens(issuer: TokenIssuer, rsa_key: rsa.RSAPrivateKey,
                                            lookup: FakeLookup) -> None:
    authn = _authn(rsa_key, lookup)
    secret_token, _ = issuer.issue("team", "builder", "sa-1", [ISSUER], 3600,
                                   BoundObject(secret=ObjectRef("s1", "sec-1")), now=NOW)
    node_token, _ = issuer.issue("team", "builder", "sa-1", [ISSUER], 3600,
                                 BoundObject(node=ObjectRef("node-a", "node-1")), now=NOW)
    assert await authn.authenticate(secret_token) is not None
    result = await authn.authenticate(node_token)
    assert result is not None
    assert result.user.extra["authentication.kubernetes.io/node-name"] == ("node-a",)
    assert "authentication.kubernetes.io/pod-name" not in result.user.extra
    lookup.secrets[("team", "s1")]["metadata"]["uid"] = "sec-2"
    with pytest.raises(TokenInvalid, match="secret UID"):
        await authn.authenticate(secret_token)
    del lookup.nodes["node-a"]
    with pytest.raises(TokenInvalid, match="invalidated"):
        await authn.authenticate(node_token)


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


# --- legacy Secret-based tokens -------------------------------------------------------------

async def test_legacy_token_matches_its_secret(issuer: TokenIssuer, rsa_key: rsa.RSAPrivateKey,
                                               lookup: FakeLookup) -> None:
    sa = lookup.sas[("team", "builder")]
    token = issuer.issue_legacy(sa, "builder-token")
    assert _claims(token)["iss"] == "kubernetes/serviceaccount"
    secret = _obj("builder-token", "sec-9", type="kubernetes.io/service-account-token",
                  data={"token": base64.b64encode(token.encode()).decode()})
    lookup.secrets[("team", "builder-token")] = secret
    authn = _authn(rsa_key, lookup)
    result = await authn.authenticate(token)
    assert result is not None
    assert result.user.name == "system:serviceaccount:team:builder"
    assert result.user.uid == "sa-1" and not result.user.extra

    secret["data"]["token"] = base64.b64encode(b"something else").decode()
    with pytest.raises(TokenInvalid, match="token does not match server's copy"):
        await authn.authenticate(token)
    secret["data"]["token"] = base64.b64encode(token.encode()).decode()
    secret["metadata"]["labels"] = {"kubernetes.io/legacy-token-invalid-since": "2024-01-01"}
    with pytest.raises(TokenInvalid, match="token has been invalidated"):
        await authn.authenticate(token)
    del lookup.secrets[("team", "builder-token")]
    with pytest.raises(TokenInvalid, match="token has been invalidated"):
        await authn.authenticate(token)


async def test_legacy_token_with_inconsistent_subject(rsa_key: rsa.RSAPrivateKey,
                                                      lookup: FakeLookup) -> None:
    claims = {"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:team:other",
              "kubernetes.io/serviceaccount/namespace": "team",
              "kubernetes.io/serviceaccount/secret.name": "t",
              "kubernetes.io/serviceaccount/service-account.name": "builder",
              "kubernetes.io/serviceaccount/service-account.uid": "sa-1"}
    token = jwt.encode(claims, rsa_key, algorithm="RS256",
                       headers={"kid": key_id(rsa_key.public_key())})
    with pytest.raises(TokenInvalid, match="sub claim is invalid"):
        await _authn(rsa_key, lookup).authenticate(token)


# --- TokenRequest ---------------------------------------------------------------------------

async def _request(issuer: TokenIssuer, lookup: FakeLookup, spec: Obj, *,
                   max_exp: int = 0, warnings: list[str] | None = None,
                   metadata: Obj | None = None) -> Obj:
    body: Obj = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                 "spec": spec}
    if metadata is not None:
        body["metadata"] = metadata
    return await token_request(lookup.sas[("team", "builder")], body, issuer=issuer,
                               lookup=lookup, api_audiences=[ISSUER],
                               max_expiration_seconds=max_exp, now=NOW, warnings=warnings)


async def test_token_request_defaults(issuer: TokenIssuer, rsa_key: rsa.RSAPrivateKey,
                                      lookup: FakeLookup) -> None:
    out = await _request(issuer, lookup, {})
    assert out["kind"] == "TokenRequest" and out["apiVersion"] == "authentication.k8s.io/v1"
    assert out["metadata"]["name"] == "builder" and out["metadata"]["namespace"] == "team"
    assert out["spec"] == {"audiences": [ISSUER], "expirationSeconds": 3600}
    assert out["status"]["expirationTimestamp"] == _rfc3339(NOW + 3600)
    claims = _claims(out["status"]["token"])
    assert claims["aud"] == [ISSUER] and claims["exp"] == int(NOW) + 3600
    assert await _authn(rsa_key, lookup).authenticate(out["status"]["token"]) is not None


async def test_token_request_too_short_is_invalid(issuer: TokenIssuer,
                                                  lookup: FakeLookup) -> None:
    with pytest.raises(errors.Invalid) as err:
        await _request(issuer, lookup, {"expirationSeconds": 599})
    assert err.value.code == 422
    assert err.value.message == (
        'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid '
        "value: 599: may not specify a duration less than 10 minutes")


async def test_token_request_name_must_match(issuer: TokenIssuer, lookup: FakeLookup) -> None:
    with pytest.raises(errors.Invalid, match="must match the service account name"):
        await _request(issuer, lookup, {}, metadata={"name": "someone-else"})


async def test_token_request_max_expiration(issuer: TokenIssuer, lookup: FakeLookup) -> None:
    warnings: list[str] = []
    out = await _request(issuer, lookup, {"expirationSeconds": 7200}, max_exp=4000,
                         warnings=warnings)
    assert out["spec"]["expirationSeconds"] == 4000
    assert _claims(out["status"]["token"])["exp"] == int(NOW) + 4000
    assert warnings == ["requested expiration of 7200 seconds shortened to 4000 seconds"]


async def test_token_request_bound_to_pod(issuer: TokenIssuer, lookup: FakeLookup) -> None:
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "web-0", "uid": "pod-1"}
    out = await _request(issuer, lookup, {"audiences": ["vault"], "expirationSeconds": 600,
                                          "boundObjectRef": ref})
    assert out["spec"]["boundObjectRef"] == ref
    private = _claims(out["status"]["token"])["kubernetes.io"]
    assert private["pod"] == {"name": "web-0", "uid": "pod-1"}
    assert private["node"] == {"name": "node-a", "uid": "node-1"}
    # A node that is gone still leaves its name.
    del lookup.nodes["node-a"]
    out = await _request(issuer, lookup, {"boundObjectRef": ref})
    assert _claims(out["status"]["token"])["kubernetes.io"]["node"] == {"name": "node-a"}


async def test_token_request_extends_the_admission_default(issuer: TokenIssuer,
                                                           lookup: FakeLookup) -> None:
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "web-0"}
    out = await _request(issuer, lookup, {"expirationSeconds": 3607, "boundObjectRef": ref})
    claims = _claims(out["status"]["token"])
    assert claims["exp"] == int(NOW) + 365 * 24 * 3600
    assert claims["kubernetes.io"]["warnafter"] == int(NOW) + 3607
    assert out["status"]["expirationTimestamp"] == _rfc3339(NOW + 3607)
    # Not for other audiences, nor for unbound tokens.
    out = await _request(issuer, lookup, {"expirationSeconds": 3607, "audiences": ["vault"],
                                          "boundObjectRef": ref})
    assert _claims(out["status"]["token"])["exp"] == int(NOW) + 3607
    out = await _request(issuer, lookup, {"expirationSeconds": 3607})
    assert _claims(out["status"]["token"])["exp"] == int(NOW) + 3607


async def test_token_request_binding_errors(issuer: TokenIssuer, lookup: FakeLookup) -> None:
    lookup.pods[("team", "other")] = _obj("other", "pod-9", spec={
        "serviceAccountName": "default"})
    with pytest.raises(errors.BadRequest) as bad:
        await _request(issuer, lookup, {"boundObjectRef": {
            "kind": "Pod", "apiVersion": "v1", "name": "other"}})
    assert bad.value.message == ('cannot bind token for serviceaccount "builder" to pod '
                                 "running with different serviceaccount name.")
    with pytest.raises(errors.NotFound, match='pods "ghost" not found'):
        await _request(issuer, lookup, {"boundObjectRef": {
            "kind": "Pod", "apiVersion": "v1", "name": "ghost"}})
    with pytest.raises(errors.Conflict) as conflict:
        await _request(issuer, lookup, {"boundObjectRef": {
            "kind": "Pod", "apiVersion": "v1", "name": "web-0", "uid": "stale"}})
    assert conflict.value.message.startswith(
        'Operation cannot be fulfilled on Pod "web-0": the UID in the bound object reference '
        "(stale) does not match the UID in record.")
    with pytest.raises(errors.BadRequest) as bad:
        await _request(issuer, lookup, {"boundObjectRef": {
            "kind": "ConfigMap", "apiVersion": "v1", "name": "x"}})
    assert bad.value.message == "cannot bind token to object of type /v1, Kind=ConfigMap"
    with pytest.raises(errors.BadRequest, match="apps/v1, Kind=Deployment"):
        await _request(issuer, lookup, {"boundObjectRef": {
            "kind": "Deployment", "apiVersion": "apps/v1", "name": "x"}})


async def test_token_request_bound_to_secret(issuer: TokenIssuer, lookup: FakeLookup) -> None:
    out = await _request(issuer, lookup, {"boundObjectRef": {
        "kind": "Secret", "apiVersion": "v1", "name": "s1"}})
    private = _claims(out["status"]["token"])["kubernetes.io"]
    assert private["secret"] == {"name": "s1", "uid": "sec-1"} and "pod" not in private


# --- discovery ------------------------------------------------------------------------------

def test_openid_configuration(rsa_key: rsa.RSAPrivateKey,
                              ec_key: ec.EllipticCurvePrivateKey) -> None:
    doc = openid_configuration(ISSUER, "https://10.0.0.1:6443/openid/v1/jwks",
                               [_public_pem(rsa_key)])
    assert doc == {
        "issuer": ISSUER, "jwks_uri": "https://10.0.0.1:6443/openid/v1/jwks",
        "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"]}
    both = openid_configuration(ISSUER, "https://x/openid/v1/jwks",
                                [_public_pem(rsa_key), _pem(ec_key)])
    assert both["id_token_signing_alg_values_supported"] == ["ES256", "RS256"]
    with pytest.raises(ValueError, match="not https"):
        openid_configuration("http://insecure", "https://x/openid/v1/jwks")


def test_jwks_verifies_our_tokens(issuer: TokenIssuer, rsa_key: rsa.RSAPrivateKey,
                                  ec_key: ec.EllipticCurvePrivateKey) -> None:
    doc = jwks([_public_pem(rsa_key) + _pem(ec_key)])
    rsa_jwk, ec_jwk = doc["keys"]
    assert rsa_jwk["kty"] == "RSA" and rsa_jwk["use"] == "sig" and rsa_jwk["alg"] == "RS256"
    assert rsa_jwk["e"] == "AQAB" and rsa_jwk["kid"] == key_id(rsa_key.public_key())
    assert ec_jwk["kty"] == "EC" and ec_jwk["crv"] == "P-256" and ec_jwk["alg"] == "ES256"
    assert set(rsa_jwk) == {"use", "kty", "kid", "alg", "n", "e"}
    # A relying party with only the JWKS can verify a token.
    token, _ = issuer.issue("team", "builder", "sa-1", ["vault"], 600, None)
    key = jwt.PyJWK(rsa_jwk).key
    claims = jwt.decode(token, key, algorithms=["RS256"], audience="vault", issuer=ISSUER)
    assert claims["sub"] == "system:serviceaccount:team:builder"
    ec_issuer = TokenIssuer(_pem(ec_key), ISSUER)
    token, _ = ec_issuer.issue("team", "builder", "sa-1", ["vault"], 600, None)
    assert jwt.decode(token, jwt.PyJWK(ec_jwk).key, algorithms=["ES256"], audience="vault")


def test_key_files_accept_certificates_and_private_keys(rsa_key: rsa.RSAPrivateKey) -> None:
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.x509.oid import NameOID
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sa")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(rsa_key.public_key()).serial_number(1)
            .not_valid_before(datetime.now(UTC)).not_valid_after(
                datetime.now(UTC) + timedelta(days=1))
            .sign(rsa_key, hashes.SHA256()))
    for pem in (cert.public_bytes(serialization.Encoding.PEM), _pem(rsa_key),
                _public_pem(rsa_key)):
        keys = sa_tokens.load_public_keys(pem)
        assert [key_id(k) for k in keys] == [key_id(rsa_key.public_key())]
    with pytest.raises(ValueError, match="does not contain any valid"):
        sa_tokens.load_public_keys(b"not a key")
    assert json.dumps(jwks([_pem(rsa_key)]))  # serialisable as served
