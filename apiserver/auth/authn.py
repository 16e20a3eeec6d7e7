"""Authentication: who sent a request (upstream's union of request authenticators).

In order, as kube-apiserver: the TLS client certificate (verified against --client-ca-file
during the handshake: CN is the user, O the groups), then a bearer token (the static
--token-auth-file, then service-account JWTs), then anonymous — but only for the public
health and version endpoints (upstream's AnonymousAuthConfigurableEndpoints). A presented
credential that fails never falls back to anonymous: it is a 401.

Every authenticated user also gets the group system:authenticated.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api import errors
from apiserver.auth.attributes import ANONYMOUS_USER, AUTHENTICATED, UserInfo

log = logging.getLogger(__name__)

# Paths an anonymous caller may reach (and only after RBAC allows system:unauthenticated).
ANONYMOUS_PATHS = ("/healthz", "/livez", "/readyz", "/version")
CERT_CACHE_SIZE = 1024


class TokenInvalid(Exception):
    """A bearer token that an authenticator recognises as its own but rejects."""


# An authenticator of bearer tokens: the user, or None when the token is not its kind.
TokenAuthenticator = Callable[[str], Awaitable[UserInfo | None]]


def unauthorized() -> errors.Unauthorized:
    return errors.Unauthorized("Unauthorized")


def user_from_peercert(peercert: Any) -> UserInfo | None:
    """CN and O of a verified client certificate, as Python's ssl reports the subject."""
    if not isinstance(peercert, dict):
        return None
    name = ""
    groups: list[str] = []
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and not name:
                name = value
            elif key == "organizationName":
                groups.append(value)
    if not name:
        return None
    return UserInfo(name, groups=tuple(groups))


class StaticTokenFile:
    """--token-auth-file: CSV lines `token,user,uid,"group1,group2"` (groups optional)."""

    def __init__(self, path: str | Path) -> None:
        self._users: dict[str, UserInfo] = {}
        with open(path, newline="") as f:
            for lineno, row in enumerate(csv.reader(f), 1):
                if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
                    continue
                if len(row) < 3:
                    raise ValueError(f"{path}:{lineno}: want token,user,uid[,groups]")
                token, user, uid = (c.strip() for c in row[:3])
                groups = tuple(g.strip() for c in row[3:] for g in c.split(",") if g.strip())
                if token in self._users:
                    log.warning("%s:%d: duplicate token, first one kept", path, lineno)
                    continue
                self._users[token] = UserInfo(user, uid=uid, groups=groups)

    async def __call__(self, token: str) -> UserInfo | None:
        return self._users.get(token)


@dataclass
class _Cached:
    user: UserInfo | None
    error: str
    until: float


class TokenCache:
    """Remembers token answers for a few seconds (upstream caches 10 s), keyed by the
    token's hash so no token is kept in memory longer than needed."""

    def __init__(self, ttl: float = 10.0, size: int = 4096) -> None:
        self.ttl, self.size = ttl, size
        self._entries: OrderedDict[bytes, _Cached] = OrderedDict()

    def get(self, token: str) -> _Cached | None:
        key = hashlib.sha256(token.encode()).digest()
        entry = self._entries.get(key)
        if entry is None or entry.until < time.monotonic():
            return None
        return entry

    def put(self, token: str, user: UserInfo | None, error: str = "") -> None:
        key = hashlib.sha256(token.encode()).digest()
        self._entries[key] = _Cached(user, error, time.monotonic() + self.ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


def with_authenticated_group(user: UserInfo) -> UserInfo:
    if AUTHENTICATED in user.groups:
        return user
    return UserInfo(user.name, user.uid, (*user.groups, AUTHENTICATED), user.extra)


class Authenticator:
    def __init__(self, token_authenticators: Sequence[TokenAuthenticator] = (), *,
                 anonymous: bool = True, cache_ttl: float = 10.0) -> None:
        self.token_authenticators = list(token_authenticators)
        self.anonymous = anonymous
        self.cache = TokenCache(cache_ttl)
        self._cert_users: dict[bytes, UserInfo] = {}

    async def authenticate_token(self, token: str) -> UserInfo | None:
        """The user a bearer token stands for; None if no authenticator accepts it."""
        cached = self.cache.get(token)
        if cached is not None:
            return cached.user
        user: UserInfo | None = None
        for authenticate in self.token_authenticators:
            try:
                user = await authenticate(token)
            except TokenInvalid as e:
                log.info("token rejected: %s", e)
                user = None
                break
            if user is not None:
                user = with_authenticated_group(user)
                break
        self.cache.put(token, user)
        return user

    def certificate_user(self, ssl_object: Any) -> UserInfo | None:
        """The user of a verified client certificate, remembered by the certificate's bytes
        (a client sends the same one on every request of its connections)."""
        if ssl_object is None:
            return None
        der = ssl_object.getpeercert(True)
        if not der:
            return None
        found = self._cert_users.get(der)
        if found is None:
            user = user_from_peercert(ssl_object.getpeercert())
            if user is None:
                return None
            found = self._cert_users[der] = with_authenticated_group(user)
            if len(self._cert_users) > CERT_CACHE_SIZE:
                self._cert_users.pop(next(iter(self._cert_users)))
        return found

    async def authenticate(self, ssl_object: Any, authorization: str, path: str) -> UserInfo:
        """The user of a request (its TLS connection's `ssl_object`, its Authorization
        header), or raise 401."""
        user = self.certificate_user(ssl_object)
        if user is not None:
            return user
        if authorization:
            scheme, _, token = authorization.partition(" ")
            token = token.strip()
            if scheme.lower() == "bearer" and token:
                found = await self.authenticate_token(token)
                if found is not None:
                    return found
            raise unauthorized()
        if self.anonymous and path in ANONYMOUS_PATHS or \
                self.anonymous and path.startswith(tuple(p + "/" for p in ANONYMOUS_PATHS)):
            return ANONYMOUS_USER
        raise unauthorized()
