"""Service-account tokens (upstream pkg/serviceaccount and the serviceaccounts/token
subresource): signed JWTs that name a ServiceAccount, optionally bound to a Pod, Secret or
Node, with an audience and an expiry.

- `TokenIssuer` signs tokens with `--service-account-signing-key-file` (RS256 for an RSA
  key, ES256/384/512 for an EC key; header `kid` = base64url(SHA-256(DER public key))).
- `TokenAuthenticator` verifies bearer tokens against `--service-account-key-file` keys:
  signature, issuer, audience, time (60 s leeway), then that the ServiceAccount and the bound
  object still exist with the same UIDs. Legacy Secret-based tokens (issuer
  `kubernetes/serviceaccount`) must still match their Secret's `data.token`.
- `token_request` is POST .../serviceaccounts/<name>/token (authentication.k8s.io/v1
  TokenRequest).
- `openid_configuration` and `jwks` are the issuer discovery documents.

Objects stay plain API dicts; reads go through a `ServiceAccountTokenGetter` the apiserver
supplies, so this module knows nothing about storage.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from api.errors import BadRequest, Conflict, Invalid, NotFound, field_cause
from api.meta import parse_time
from apiserver.auth.attributes import (
    SERVICE_ACCOUNTS_GROUP,
    UserInfo,
    service_account_username,
    split_service_account_username,
)
from apiserver.auth.authn import TokenInvalid

Obj = dict[str, Any]
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

__all__ = [
    "AuthResult", "BoundObject", "ObjectRef", "ServiceAccountTokenGetter", "TokenAuthenticator",
    "TokenInvalid", "TokenIssuer", "jwks", "key_id", "load_private_key", "load_public_keys",
    "openid_configuration", "token_request",
]

LEGACY_ISSUER = "kubernetes/serviceaccount"
# go-jose's jwt.DefaultLeeway: clock skew tolerated on exp/nbf/iat, and how long a deleted
# object's tokens keep working after its deletionTimestamp.
LEEWAY_SECONDS = 60
# The admission plugin asks for 3607 s; a pod-bound token with exactly that expiry is
# issued for a year and only warned about after 3607 s (--service-account-extend-token-
# expiration), so old clients that never re-read the file keep working.
WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS = 60 * 60 + 7
EXPIRATION_EXTENSION_SECONDS = 24 * 365 * 60 * 60
DEFAULT_EXPIRATION_SECONDS = 60 * 60
MIN_EXPIRATION_SECONDS = 10 * 60
MAX_EXPIRATION_SECONDS = 1 << 32

# user.Info extra keys (k8s.io/apiserver/pkg/authentication/serviceaccount and user).
POD_NAME_KEY = "authentication.kubernetes.io/pod-name"
POD_UID_KEY = "authentication.kubernetes.io/pod-uid"
NODE_NAME_KEY = "authentication.kubernetes.io/node-name"
NODE_UID_KEY = "authentication.kubernetes.io/node-uid"
CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id"
# A legacy token Secret the LegacyServiceAccountTokenCleanUp controller has invalidated.
LEGACY_TOKEN_INVALID_SINCE_LABEL = "kubernetes.io/legacy-token-invalid-since"

TOKEN_REQUEST_API_VERSION = "authentication.k8s.io/v1"
OPENID_CONFIG_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/openid/v1/jwks"
# Both discovery documents are served with `Cache-Control: public, max-age=3600`; the JWKS
# with content type application/jwk-set+json.
DISCOVERY_MAX_AGE_SECONDS = 3600
JWKS_CONTENT_TYPE = "application/jwk-set+json"

_RSA_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
_EC_ALGS = {"secp256r1": ("ES256", "P-256", 32), "secp384r1": ("ES384", "P-384", 48),
            "secp521r1": ("ES512", "P-521", 66)}


# --- keys -----------------------------------------------------------------------------------

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)


def _public_of(key: object) -> PublicKey | None:
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return key.public_key()
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return key
    return None


def load_public_keys(pem: bytes) -> list[PublicKey]:
    """Every RSA or ECDSA public key in a PEM file (upstream keyutil.ParsePublicKeysPEM):
    public keys, private keys (their public half) and certificates (their key)."""
    keys: list[PublicKey] = []
    for m in _PEM_BLOCK.finditer(pem):
        label, block = m.group(1).decode(), m.group(0)
        loaded: object
        try:
            if label == "CERTIFICATE":
                loaded = x509.load_pem_x509_certificate(block).public_key()
            elif label in ("PUBLIC KEY", "RSA PUBLIC KEY"):
                loaded = serialization.load_pem_public_key(block)
            elif label in ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"):
                loaded = serialization.load_pem_private_key(block, password=None)
            else:
                continue  # e.g. "EC PARAMETERS" next to an EC key
        except ValueError as e:
            raise ValueError(f"invalid {label} PEM block: {e}") from e
        public = _public_of(loaded)
        if public is not None:
            keys.append(public)
    if not keys:
        raise ValueError("data does not contain any valid RSA or ECDSA public keys")
    return keys


def load_private_key(pem: bytes) -> PrivateKey:
    """The signing key (--service-account-signing-key-file): RSA or ECDSA, unencrypted."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except ValueError as e:
        raise ValueError(f"error reading private key: {e}") from e
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise TypeError("the service account signing key must be an RSA or ECDSA key")
    return key


def key_id(public_key: PublicKey) -> str:
    """Upstream's keyIDFromPublicKey: not reversible, stable across restarts."""
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return _b64url(hashlib.sha256(der).digest())


def _algorithm(public_key: PublicKey) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RS256"
    curve = _EC_ALGS.get(public_key.curve.name)
    if curve is None:
        raise ValueError("unknown private key curve, must be 256, 384, or 521")
    return curve[0]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- claims ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ObjectRef:
    name: str
    uid: str = ""

    def claim(self) -> dict[str, str]:
        out = {"name": self.name}
        if self.uid:
            out["uid"] = self.uid
        return out


@dataclass(frozen=True)
class BoundObject:
    """What a token is bound to: a Pod (with the Node it runs on, when known), a Secret, or
    a Node alone."""

    pod: ObjectRef | None = None
    secret: ObjectRef | None = None
    node: ObjectRef | None = None

    def __post_init__(self) -> None:
        if self.secret is not None and (self.pod is not None or self.node is not None):
            raise ValueError("internal error, token can only be bound to one object type")


class TokenIssuer:
    """Signs service-account tokens (upstream JWTTokenGenerator + Claims)."""

    def __init__(self, signing_key_pem: bytes, issuer: str) -> None:
        if not issuer:
            raise ValueError("a service account issuer is required")
        self.issuer = issuer
        self._key = load_private_key(signing_key_pem)
        self.public_key: PublicKey = self._key.public_key()
        self.algorithm = _algorithm(self.public_key)
        self.key_id = key_id(self.public_key)

    def issue(self, namespace: str, sa_name: str, sa_uid: str, audiences: Sequence[str],
              expiration_seconds: int, bound: BoundObject | None = None,
              now: float | None = None, warn_after_seconds: int = 0) -> tuple[str, datetime]:
        """A signed token and its expiry (the `exp` claim)."""
        issued = int(time.time() if now is None else now)
        exp = issued + int(expiration_seconds)
        k8s: Obj = {"namespace": namespace,
                    "serviceaccount": ObjectRef(sa_name, sa_uid).claim()}
        if bound is not None:
            if bound.pod is not None:
                k8s["pod"] = bound.pod.claim()
            if bound.secret is not None:
                k8s["secret"] = bound.secret.claim()
            if bound.node is not None:
                k8s["node"] = bound.node.claim()
        if warn_after_seconds:
            k8s["warnafter"] = issued + int(warn_after_seconds)
        claims: Obj = {
            "aud": list(audiences), "exp": exp, "iat": issued, "iss": self.issuer,
            "jti": str(uuid.uuid4()), "kubernetes.io": k8s, "nbf": issued,
            "sub": service_account_username(namespace, sa_name),
        }
        token = jwt.encode(claims, self._key, algorithm=self.algorithm,
                           headers={"kid": self.key_id, "typ": None})
        return token, datetime.fromtimestamp(exp, UTC)

    def issue_legacy(self, sa: Obj, secret_name: str) -> str:
        """A non-expiring Secret-based token (the old tokens controller's; kept so that
        legacy tokens can be tested and minted for `kubernetes.io/service-account-token`
        Secrets)."""
        md = sa.get("metadata") or {}
        ns, name = str(md.get("namespace") or ""), str(md.get("name") or "")
        claims = {
            "iss": LEGACY_ISSUER, "sub": service_account_username(ns, name),
            "kubernetes.io/serviceaccount/namespace": ns,
            "kubernetes.io/serviceaccount/secret.name": secret_name,
            "kubernetes.io/serviceaccount/service-account.name": name,
            "kubernetes.io/serviceaccount/service-account.uid": str(md.get("uid") or ""),
        }
        return jwt.encode(claims, self._key, algorithm=self.algorithm,
                          headers={"kid": self.key_id, "typ": None})


# --- authentication -------------------------------------------------------------------------

class ServiceAccountTokenGetter(Protocol):
    """Live reads of the objects a token names; None when the object does not exist."""

    async def get_service_account(self, namespace: str, name: str) -> Obj | None: ...

    async def get_pod(self, namespace: str, name: str) -> Obj | None: ...

    async def get_secret(self, namespace: str, name: str) -> Obj | None: ...

    async def get_node(self, name: str) -> Obj | None: ...


@dataclass(frozen=True)
class AuthResult:
    user: UserInfo
    audiences: tuple[str, ...] = ()


@dataclass
class _ServiceAccountInfo:
    namespace: str
    name: str
    uid: str
    pod_name: str = ""
    pod_uid: str = ""
    node_name: str = ""
    node_uid: str = ""
    credential_id: str = ""

    def user_info(self) -> UserInfo:
        """Upstream ServiceAccountInfo.UserInfo()."""
        extra: dict[str, tuple[str, ...]] = {}
        if self.pod_name and self.pod_uid:
            extra[POD_NAME_KEY] = (self.pod_name,)
            extra[POD_UID_KEY] = (self.pod_uid,)
        if self.credential_id:
            extra[CREDENTIAL_ID_KEY] = (self.credential_id,)
        if self.node_name:
            extra[NODE_NAME_KEY] = (self.node_name,)
            if self.node_uid:
                extra[NODE_UID_KEY] = (self.node_uid,)
        return UserInfo(service_account_username(self.namespace, self.name), uid=self.uid,
                        groups=group_names(self.namespace), extra=extra)


def group_names(namespace: str) -> tuple[str, ...]:
    return (SERVICE_ACCOUNTS_GROUP, f"{SERVICE_ACCOUNTS_GROUP}:{namespace}")


def _go_quote_list(values: Iterable[str]) -> str:
    """Go's %q of a []string: ["a" "b"]."""
    return "[" + " ".join(json.dumps(v) for v in values) + "]"


def _deleted_before(obj: Obj, cutoff: float) -> bool:
    when = parse_time((obj.get("metadata") or {}).get("deletionTimestamp"))
    return when is not None and when.timestamp() < cutoff


def _uid(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def _ref(value: Any) -> ObjectRef | None:
    if not isinstance(value, dict):
        return None
    return ObjectRef(str(value.get("name") or ""), str(value.get("uid") or ""))


class TokenAuthenticator:
    """Bearer tokens signed by one of our keys (upstream JWTTokenAuthenticator with the
    bound-token and the legacy validators).

    `await authenticate(token)` returns None when the token is not a JWT from one of our
    issuers (another authenticator may know it), an `AuthResult` when it is valid, and
    raises `TokenInvalid` when it is ours but bad. Calling the object is the same, returning
    just the user, so it can sit in the apiserver's chain of token authenticators.
    """

    def __init__(self, public_keys_pem: Sequence[bytes], issuers: Sequence[str],
                 api_audiences: Sequence[str] | None, lookup: ServiceAccountTokenGetter, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._keys: list[tuple[str, PublicKey]] = []
        for pem in public_keys_pem:
            self._keys.extend((key_id(k), k) for k in load_public_keys(pem))
        if not self._keys:
            raise ValueError("no service account verification keys")
        self.issuers = frozenset(issuers)
        # --api-audiences defaults to the first --service-account-issuer.
        self.api_audiences = tuple(api_audiences) if api_audiences else tuple(issuers[:1])
        self.lookup = lookup
        self._clock = clock

    async def __call__(self, token: str) -> UserInfo | None:
        result = await self.authenticate(token)
        return result.user if result is not None else None

    def _claimed_issuer(self, token: str) -> str | None:
        """The unverified `iss`, when the token looks like one of ours (hasCorrectIssuer)."""
        if token.strip().startswith("{"):
            return None
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            payload = json.loads(_b64url_decode(parts[1]))
        except (ValueError, binascii.Error):
            return None
        iss = payload.get("iss") if isinstance(payload, dict) else None
        if not isinstance(iss, str):
            return None
        if iss in self.issuers or iss == LEGACY_ISSUER:
            return iss
        return None

    def _verify(self, token: str) -> Obj:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenInvalid("token is not a valid JWS") from None
        kid = header.get("kid") if isinstance(header.get("kid"), str) else ""
        keys = [k for i, k in self._keys if not kid or i == kid]
        if not keys:
            raise TokenInvalid("invalid signature, no keys found")
        errors: list[str] = []
        for key in keys:
            if isinstance(key, rsa.RSAPublicKey):
                algs = list(_RSA_ALGS)
            else:
                algs = [_EC_ALGS[key.curve.name][0]] if key.curve.name in _EC_ALGS else []
            try:
                # Times and audience are checked below, with upstream's rules and messages.
                claims = jwt.decode(token, key, algorithms=algs, options={
                    "verify_signature": True, "verify_exp": False, "verify_nbf": False,
                    "verify_iat": False, "verify_aud": False, "verify_iss": False})
            except jwt.PyJWTError as e:
                errors.append(str(e) or type(e).__name__)
                continue
            if not isinstance(claims, dict):
                raise TokenInvalid("token claims are not an object")
            return claims
        raise TokenInvalid("; ".join(errors) or "invalid signature")

    async def authenticate(self, token: str, audiences: Sequence[str] | None = None
                           ) -> AuthResult | None:
        """`audiences`: what the caller wants the token to be good for (a TokenReview's
        spec.audiences); the apiserver's own audiences when not given."""
        if self._claimed_issuer(token) is None:
            return None
        claims = self._verify(token)
        iss = claims.get("iss")
        if not isinstance(iss, str) or (iss not in self.issuers and iss != LEGACY_ISSUER):
            raise TokenInvalid(f"token issuer {json.dumps(iss)} is invalid")
        aud = claims.get("aud")
        token_auds = [aud] if isinstance(aud, str) else \
            [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []
        if not token_auds:
            token_auds = list(self.api_audiences)  # legacy tokens: the apiserver's only
        requested = list(audiences) if audiences else list(self.api_audiences)
        matched = tuple(a for a in token_auds if a in requested)
        if not matched and self.api_audiences:
            raise TokenInvalid(f"token audiences {_go_quote_list(token_auds)} is invalid for "
                               f"the target audiences {_go_quote_list(requested)}")
        if iss == LEGACY_ISSUER:
            info = await self._validate_legacy(token, claims)
        else:
            info = await self._validate_bound(claims)
        return AuthResult(info.user_info(), matched)

    def _check_times(self, claims: Obj, now: float) -> None:
        def num(name: str) -> float | None:
            value = claims.get(name)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TokenInvalid("service account token claims could not be validated "
                                   "due to unexpected validation error")
            return float(value)

        nbf, exp, iat = num("nbf"), num("exp"), num("iat")
        if nbf is not None and now + LEEWAY_SECONDS < nbf:
            raise TokenInvalid("service account token is not valid yet")
        if exp is not None and now - LEEWAY_SECONDS > exp:
            raise TokenInvalid("service account token has expired")
        if iat is not None and now + LEEWAY_SECONDS < iat:
            raise TokenInvalid("service account token claims could not be validated due to "
                               "unexpected validation error")

    async def _validate_bound(self, claims: Obj) -> _ServiceAccountInfo:
        """Upstream's claims.go validator."""
        now = float(self._clock())
        self._check_times(claims, now)
        private = claims.get("kubernetes.io")
        if not isinstance(private, dict):
            private = {}
        namespace = str(private.get("namespace") or "")
        saref = _ref(private.get("serviceaccount")) or ObjectRef("")
        podref, secref, noderef = (_ref(private.get(k)) for k in ("pod", "secret", "node"))
        # Objects deleted more than the leeway ago no longer vouch for their tokens.
        cutoff = now - LEEWAY_SECONDS

        sa = await self.lookup.get_service_account(namespace, saref.name)
        if sa is None:
            raise TokenInvalid(f'serviceaccounts "{saref.name}" not found')
        if _uid(sa) != saref.uid:
            raise TokenInvalid(f"service account UID ({_uid(sa)}) does not match claim "
                               f"({saref.uid})")
        if _deleted_before(sa, cutoff):
            raise TokenInvalid(f"service account {namespace}/{saref.name} has been deleted")

        if secref is not None:
            secret = await self.lookup.get_secret(namespace, secref.name)
            if secret is None or _deleted_before(secret, cutoff):
                raise TokenInvalid("service account token has been invalidated")
            if _uid(secret) != secref.uid:
                raise TokenInvalid(f"secret UID ({_uid(secret)}) does not match service "
                                   f"account secret ref claim ({secref.uid})")

        info = _ServiceAccountInfo(namespace, saref.name, saref.uid)
        if podref is not None:
            pod = await self.lookup.get_pod(namespace, podref.name)
            if pod is None or _deleted_before(pod, cutoff):
                raise TokenInvalid("service account token has been invalidated")
            if _uid(pod) != podref.uid:
                raise TokenInvalid(f"pod UID ({_uid(pod)}) does not match service account "
                                   f"pod ref claim ({podref.uid})")
            info.pod_name, info.pod_uid = podref.name, podref.uid

        if noderef is not None:
            if podref is None:
                # A token bound to a Node alone lives as long as that Node.
                node = await self.lookup.get_node(noderef.name)
                if node is None or _deleted_before(node, cutoff):
                    raise TokenInvalid("service account token has been invalidated")
                if _uid(node) != noderef.uid:
                    raise TokenInvalid(f"node UID ({_uid(node)}) does not match service "
                                       f"account node ref claim ({noderef.uid})")
            # For a pod-bound token the node is informational: the pod check covers it.
            info.node_name, info.node_uid = noderef.name, noderef.uid

        jti = claims.get("jti")
        if isinstance(jti, str) and jti:
            info.credential_id = f"JTI={jti}"
        return info

    async def _validate_legacy(self, token: str, claims: Obj) -> _ServiceAccountInfo:
        """Upstream's legacy.go validator (with --service-account-lookup, the default)."""
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise TokenInvalid("sub claim is missing")

        def claim(key: str, what: str) -> str:
            value = claims.get(f"kubernetes.io/serviceaccount/{key}")
            if not isinstance(value, str) or not value:
                raise TokenInvalid(f"{what} claim is missing")
            return value

        namespace = claim("namespace", "namespace")
        secret_name = claim("secret.name", "secretName")
        sa_name = claim("service-account.name", "serviceAccountName")
        sa_uid = claim("service-account.uid", "serviceAccountUID")
        if split_service_account_username(sub) != (namespace, sa_name):
            raise TokenInvalid("sub claim is invalid")

        secret = await self.lookup.get_secret(namespace, secret_name)
        if secret is None or (secret.get("metadata") or {}).get("deletionTimestamp"):
            raise TokenInvalid("token has been invalidated")
        labels = (secret.get("metadata") or {}).get("labels") or {}
        if labels.get(LEGACY_TOKEN_INVALID_SINCE_LABEL):
            raise TokenInvalid("token has been invalidated")
        stored = (secret.get("data") or {}).get("token") or ""
        try:
            stored_bytes = base64.b64decode(str(stored), validate=True)
        except (ValueError, binascii.Error):
            stored_bytes = b""
        if not hmac.compare_digest(stored_bytes, token.encode()):
            raise TokenInvalid("token does not match server's copy")

        sa = await self.lookup.get_service_account(namespace, sa_name)
        if sa is None:
            raise TokenInvalid(f'serviceaccounts "{sa_name}" not found')
        if (sa.get("metadata") or {}).get("deletionTimestamp"):
            raise TokenInvalid(f"service account {namespace}/{sa_name} has been deleted")
        if _uid(sa) != sa_uid:
            raise TokenInvalid(f"service account UID ({_uid(sa)}) does not match claim "
                               f"({sa_uid})")
        return _ServiceAccountInfo(namespace, sa_name, sa_uid)


# --- POST serviceaccounts/<name>/token --------------------------------------------------------

def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _group_version_kind_text(api_version: str, kind: str) -> str:
    """Go's schema.GroupVersionKind.String(): `/v1, Kind=Pod`, `apps/v1, Kind=Deployment`."""
    group, sep, version = api_version.rpartition("/")
    if not sep:
        group, version = "", api_version
    return f"{group}/{version}, Kind={kind}"


@dataclass
class _Spec:
    audiences: list[str]
    expiration_seconds: int
    bound_ref: Obj | None = None
    raw: Obj = field(default_factory=dict)


def _parse_spec(body: Obj) -> _Spec:
    spec = body.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise BadRequest("TokenRequest.spec must be an object")
    auds = spec.get("audiences")
    if auds is None:
        auds = []
    if not isinstance(auds, list) or not all(isinstance(a, str) for a in auds):
        raise BadRequest("TokenRequest.spec.audiences must be a list of strings")
    exp = spec.get("expirationSeconds")
    if exp is None:
        exp = DEFAULT_EXPIRATION_SECONDS
    if isinstance(exp, bool) or not isinstance(exp, int):
        raise BadRequest("TokenRequest.spec.expirationSeconds must be an integer")
    ref = spec.get("boundObjectRef")
    if ref is not None and not isinstance(ref, dict):
        raise BadRequest("TokenRequest.spec.boundObjectRef must be an object")
    return _Spec(list(auds), exp, ref, spec)


async def token_request(service_account: Obj, body: Obj, *, issuer: TokenIssuer,
                        lookup: ServiceAccountTokenGetter, api_audiences: Sequence[str],
                        max_expiration_seconds: int = 0, extend_expiration: bool = True,
                        now: float | None = None, warnings: list[str] | None = None) -> Obj:
    """Create a TokenRequest for `service_account` (already read: a missing one is the
    caller's 404); the TokenRequest to return, with status.token.

    `max_expiration_seconds` is --service-account-max-token-expiration (0: none);
    `extend_expiration` is --service-account-extend-token-expiration. A shortened expiry is
    reported in `warnings` (upstream's Warning header). Raises Invalid, BadRequest, NotFound
    or Conflict with upstream's messages.
    """
    sa_md = service_account.get("metadata") or {}
    name, namespace = str(sa_md.get("name") or ""), str(sa_md.get("namespace") or "")
    req_md = body.get("metadata") or {}
    if not isinstance(req_md, dict):
        raise BadRequest("TokenRequest.metadata must be an object")
    if req_md.get("name") and req_md["name"] != name:
        raise Invalid.of("TokenRequest", name, [field_cause(
            "metadata.name", f"Invalid value: {json.dumps(req_md['name'])}: must match the "
            "service account name if specified")], group="authentication.k8s.io")
    if req_md.get("namespace") and req_md["namespace"] != namespace:
        raise Invalid.of("TokenRequest", name, [field_cause(
            "metadata.namespace", f"Invalid value: {json.dumps(req_md['namespace'])}: must "
            "match the service account namespace if specified")],
            group="authentication.k8s.io")

    spec = _parse_spec(body)
    if not spec.audiences:
        spec.audiences = list(api_audiences)
    now_s = int(time.time() if now is None else now)

    causes = []
    if spec.expiration_seconds < MIN_EXPIRATION_SECONDS:
        causes.append(field_cause("spec.expirationSeconds",
                                  f"Invalid value: {spec.expiration_seconds}: may not specify "
                                  "a duration less than 10 minutes"))
    if spec.expiration_seconds > MAX_EXPIRATION_SECONDS:
        causes.append(field_cause("spec.expirationSeconds",
                                  f"Invalid value: {spec.expiration_seconds}: may not specify "
                                  "a duration larger than 2^32 seconds"))
    if causes:
        raise Invalid.of("TokenRequest", "", causes, group="authentication.k8s.io")

    bound: BoundObject | None = None
    pod_bound = False
    ref = spec.bound_ref
    if ref is not None:
        kind, ref_name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        api_version = str(ref.get("apiVersion") or "")
        group = api_version.rpartition("/")[0]
        uid = ""
        if group == "" and kind == "Pod":
            pod = await lookup.get_pod(namespace, ref_name)
            if pod is None:
                raise NotFound.of("pods", ref_name)
            if (pod.get("spec") or {}).get("serviceAccountName") != name:
                raise BadRequest(f"cannot bind token for serviceaccount {json.dumps(name)} "
                                 "to pod running with different serviceaccount name.")
            uid = _uid(pod)
            node_ref: ObjectRef | None = None
            node_name = str((pod.get("spec") or {}).get("nodeName") or "")
            if node_name:
                # A Node that is gone still leaves its name in the claims.
                node = await lookup.get_node(node_name)
                node_ref = ObjectRef(node_name, _uid(node) if node is not None else "")
            bound = BoundObject(pod=ObjectRef(ref_name, uid), node=node_ref)
            pod_bound = True
        elif group == "" and kind == "Node":
            node = await lookup.get_node(ref_name)
            if node is None:
                raise NotFound.of("nodes", ref_name)
            uid = _uid(node)
            bound = BoundObject(node=ObjectRef(ref_name, uid))
        elif group == "" and kind == "Secret":
            secret = await lookup.get_secret(namespace, ref_name)
            if secret is None:
                raise NotFound.of("secrets", ref_name)
            uid = _uid(secret)
            bound = BoundObject(secret=ObjectRef(ref_name, uid))
        else:
            raise BadRequest("cannot bind token to object of type "
                             f"{_group_version_kind_text(api_version, kind)}")
        if ref.get("uid") and ref["uid"] != uid:
            raise Conflict.of(kind, ref_name, f"the UID in the bound object reference "
                              f"({ref['uid']}) does not match the UID in record. The object "
                              "might have been deleted and then recreated")

    if 0 < max_expiration_seconds < spec.expiration_seconds:
        if warnings is not None:
            warnings.append(f"requested expiration of {spec.expiration_seconds} seconds "
                            f"shortened to {max_expiration_seconds} seconds")
        spec.expiration_seconds = max_expiration_seconds

    # The safe roll-out of bound tokens: a pod-bound token asked for with the admission
    # plugin's 3607 s and the apiserver's own audiences is valid for a year but flagged
    # (warnafter) once the requested time is up.
    exp, warn_after = spec.expiration_seconds, 0
    if (extend_expiration and pod_bound
            and spec.expiration_seconds == WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS
            and set(spec.audiences) <= set(api_audiences)):
        warn_after, exp = exp, EXPIRATION_EXTENSION_SECONDS

    token, _ = issuer.issue(namespace, name, _uid(service_account), spec.audiences, exp,
                            bound, now=now_s, warn_after_seconds=warn_after)
    out_spec: Obj = {"audiences": spec.audiences,
                     "expirationSeconds": spec.expiration_seconds}
    if ref is not None:
        out_spec["boundObjectRef"] = dict(ref)
    return {
        "kind": "TokenRequest", "apiVersion": TOKEN_REQUEST_API_VERSION,
        "metadata": {"name": name, "namespace": namespace,
                     "creationTimestamp": _rfc3339(datetime.fromtimestamp(now_s, UTC))},
        "spec": out_spec,
        "status": {"token": token, "expirationTimestamp": _rfc3339(
            datetime.fromtimestamp(now_s + spec.expiration_seconds, UTC))},
    }


# --- issuer discovery -----------------------------------------------------------------------

def _public_keys(public_keys_pem: Iterable[bytes]) -> list[PublicKey]:
    keys: list[PublicKey] = []
    for pem in public_keys_pem:
        keys.extend(load_public_keys(pem))
    return keys


def openid_configuration(issuer: str, jwks_uri: str,
                         public_keys_pem: Iterable[bytes] | None = None) -> Obj:
    """`/.well-known/openid-configuration` (upstream NewOpenIDMetadata). The issuer and the
    JWKS URI must be https URLs (the OIDC spec); raises ValueError otherwise, and the
    apiserver then serves neither document, as upstream."""
    if not issuer:
        raise ValueError("empty issuer URL")
    for what, url in (("issuer URL", issuer), ("jwks_uri", jwks_uri)):
        parts = urlsplit(url)
        if parts.scheme != "https":
            raise ValueError(f"{what} {url!r} is not https")
        if parts.query or parts.fragment:
            raise ValueError(f"{what} {url!r} has a query or fragment")
    algs = sorted({_algorithm(k) for k in _public_keys(public_keys_pem)}) \
        if public_keys_pem is not None else ["RS256"]
    return {
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "response_types_supported": ["id_token"],  # Kubernetes only issues ID tokens
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
    }


def default_jwks_uri(external_address: str) -> str:
    """--service-account-jwks-uri's default: the apiserver's external address."""
    return f"https://{external_address}{JWKS_PATH}"


def _int_bytes(value: int, length: int = 0) -> bytes:
    size = max(length, (value.bit_length() + 7) // 8 or 1)
    return value.to_bytes(size, "big")


def jwk(public_key: PublicKey) -> Obj:
    """One JSON Web Key as go-jose writes a public key."""
    out: Obj = {"use": "sig", "kid": key_id(public_key), "alg": _algorithm(public_key)}
    if isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        out.update(kty="RSA", n=_b64url(_int_bytes(numbers.n)),
                   e=_b64url(_int_bytes(numbers.e)))
    else:
        _, crv, size = _EC_ALGS[public_key.curve.name]
        point = public_key.public_numbers()
        out.update(kty="EC", crv=crv, x=_b64url(_int_bytes(point.x, size)),
                   y=_b64url(_int_bytes(point.y, size)))
    return out


def jwks(public_keys_pem: Iterable[bytes]) -> Obj:
    """`/openid/v1/jwks`: every verification key (--service-account-key-file)."""
    return {"keys": [jwk(k) for k in _public_keys(public_keys_pem)]}
