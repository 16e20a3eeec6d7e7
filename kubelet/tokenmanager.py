"""Service-account tokens for pods (upstream pkg/kubelet/token/token_manager.go).

The kubelet asks the apiserver for a token per projected `serviceAccountToken` source
(`POST /api/v1/namespaces/<ns>/serviceaccounts/<sa>/token`, bound to the pod) and keeps the
answer, keyed by what was asked: service account, namespace, audiences, expiry and bound
object. A cached token is handed out until it is older than 80% of its lifetime or older
than 24 hours (each less a random jitter of up to 10 s, so pods do not renew in lock-step);
then a new one is requested. If that fails, the old one is still used while it has not
expired. The volume refresh (kuberuntime's VOLUME_REFRESH) asks again every minute, so a
renewed token reaches the pod's file within a minute of being due.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from api.meta import parse_time
from api.resources import CATALOGUE
from client.rest import ApiClient

log = logging.getLogger(__name__)
Obj = dict[str, Any]

SERVICEACCOUNTS = CATALOGUE.require("serviceaccounts")
MAX_TTL = 24 * 60 * 60.0
MAX_JITTER = 10.0

# (namespace, service account name, TokenRequest) -> the TokenRequest with its status:
# TokenRequester asks the apiserver; TokenGetter (TokenManager.get_service_account_token)
# answers from the cache when it can.
TokenRequester = Callable[[str, str, Obj], Awaitable[Obj]]
TokenGetter = Callable[[str, str, Obj], Awaitable[Obj]]


class TokenError(Exception):
    """No token could be had (the volume cannot be set up)."""


def api_token_requester(api: ApiClient) -> TokenRequester:
    """TokenRequests through the API (the kubelet's own credentials; the Node authorizer
    lets it ask only for pods bound to its node)."""
    async def request(namespace: str, name: str, tr: Obj) -> Obj:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", **tr}
        return await api.create_subresource(SERVICEACCOUNTS, name, "token", body, namespace)
    return request


def cache_key(namespace: str, name: str, tr: Obj) -> str:
    """What was asked, never the token itself (keys are safe to log)."""
    spec = tr.get("spec") or {}
    ref = spec.get("boundObjectRef") or {}
    return json.dumps([name, namespace, list(spec.get("audiences") or []),
                       int(spec.get("expirationSeconds") or 0),
                       [ref.get("apiVersion", ""), ref.get("kind", ""), ref.get("name", ""),
                        ref.get("uid", "")]], separators=(",", ":"))


def _expiry(tr: Obj) -> float | None:
    when = parse_time((tr.get("status") or {}).get("expirationTimestamp"))
    return when.timestamp() if when is not None else None


class TokenManager:
    def __init__(self, request: TokenRequester, *, clock: Callable[[], float] = time.time,
                 jitter: Callable[[], float] | None = None) -> None:
        self._request = request
        self._clock = clock
        self._jitter = jitter or (lambda: random.uniform(0.0, MAX_JITTER))
        self._cache: dict[str, Obj] = {}

    async def get_service_account_token(self, namespace: str, name: str, tr: Obj) -> Obj:
        """The cached TokenRequest for this request, renewed when due."""
        key = cache_key(namespace, name, tr)
        cached = self._cache.get(key)
        if cached is not None and not self.requires_refresh(cached):
            return cached
        try:
            fresh = await self._request(namespace, name, tr)
            if not (fresh.get("status") or {}).get("token") or _expiry(fresh) is None:
                raise TokenError("the TokenRequest came back without a token or expiry")
        except Exception as e:  # any failure: keep a token that still works
            if cached is None:
                raise TokenError(f"failed to fetch token: {e}") from e
            if self.expired(cached):
                raise TokenError(f"token {key} expired and refresh failed: {e}") from e
            log.error("couldn't update token cacheKey=%s: %s", key, e)
            return cached
        # Remember the lifetime asked for when the answer does not say.
        spec = fresh.setdefault("spec", {})
        if not spec.get("expirationSeconds"):
            spec["expirationSeconds"] = (tr.get("spec") or {}).get("expirationSeconds")
        self._cache[key] = fresh
        return fresh

    def delete_service_account_token(self, pod_uid: str) -> None:
        """Forget every token bound to a pod that is gone."""
        for key in [k for k, tr in self._cache.items()
                    if ((tr.get("spec") or {}).get("boundObjectRef") or {}).get("uid")
                    == pod_uid]:
            del self._cache[key]

    def cleanup(self) -> None:
        """Drop expired tokens (upstream does this every minute)."""
        for key in [k for k, tr in self._cache.items() if self.expired(tr)]:
            del self._cache[key]

    def expired(self, tr: Obj) -> bool:
        exp = _expiry(tr)
        return exp is None or self._clock() > exp

    def requires_refresh(self, tr: Obj) -> bool:
        """Older than 24 h, or within 20% of its lifetime of expiring (less a jitter)."""
        seconds = (tr.get("spec") or {}).get("expirationSeconds")
        exp = _expiry(tr)
        if not isinstance(seconds, int) or seconds <= 0 or exp is None:
            log.error("expiration seconds was not set for a token request; not refreshing")
            return False
        now = self._clock()
        issued = exp - seconds
        jitter = self._jitter()
        if now > issued + MAX_TTL - jitter:
            return True
        return now > exp - seconds * 20 // 100 - jitter

    @property
    def cached(self) -> int:
        """How many tokens are held (no __len__: an empty manager must stay truthy)."""
        return len(self._cache)
