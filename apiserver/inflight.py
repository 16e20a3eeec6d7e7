"""The max-in-flight filter (--max-requests-inflight, --max-mutating-requests-inflight).

As upstream's WithMaxInFlightLimit: read-only requests (verbs get, list, watch) and mutating
ones each have a number of slots; a request that finds its kind's slots all taken is not
queued but answered at once with 429 and `Retry-After: 1`, so a flood costs the server
little and clients back off. Long-running requests (watches, proxy, exec, attach,
portforward, log) would hold a slot for minutes and are not counted. Members of
system:masters are served even when the slots are taken, as upstream, so an administrator
can still act on an overloaded cluster. A limit of 0 disables that kind's limit.

A slot is held while the handler runs (a streamed answer, being long-running, holds none).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from api import errors
from apiserver.auth.filters import REQUEST_USER
from apiserver.auth.requestinfo import RequestInfo, request_info
from apiserver.options import ApiServerOptions

READ_ONLY_VERBS = frozenset({"get", "list", "watch"})
LONG_RUNNING_VERBS = frozenset({"watch", "proxy"})
LONG_RUNNING_SUBRESOURCES = frozenset({"attach", "exec", "proxy", "log", "portforward"})
SYSTEM_MASTERS = "system:masters"
TOO_MANY = "Too many requests, please try again later."
RETRY_AFTER_SECONDS = 1

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Slots:
    """A number of requests that may be served at once. Plain counting is enough: every
    request runs on the one event loop, and a full bucket refuses rather than waits."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    def take(self) -> bool:
        if self.in_use >= self.limit:
            return False
        self.in_use += 1
        return True

    def release(self) -> None:
        self.in_use -= 1


@dataclass
class InflightLimits:
    read_only: Slots | None  # None: no limit
    mutating: Slots | None

    @classmethod
    def of(cls, options: ApiServerOptions) -> InflightLimits:
        def slots(limit: int) -> Slots | None:
            return Slots(limit) if limit > 0 else None
        return cls(slots(options.max_requests_inflight),
                   slots(options.max_mutating_requests_inflight))

    def bucket(self, info: RequestInfo) -> Slots | None:
        """The slots `info` counts against, or None when it is not limited."""
        if is_long_running(info):
            return None
        return self.read_only if info.verb in READ_ONLY_VERBS else self.mutating


INFLIGHT = web.AppKey("inflight", InflightLimits)


def is_long_running(info: RequestInfo) -> bool:
    """upstream's BasicLongRunningRequestCheck with kube-apiserver's verbs and
    subresources."""
    if info.verb in LONG_RUNNING_VERBS:
        return True
    return info.resource_request and info.subresource in LONG_RUNNING_SUBRESOURCES


def _exempt(request: web.Request) -> bool:
    user = request.get(REQUEST_USER)
    return user is not None and SYSTEM_MASTERS in user.groups


@web.middleware
async def inflight_filter(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Runs after authentication (the user decides the exemption)."""
    limits = request.app.get(INFLIGHT)
    if limits is None:
        return await handler(request)
    query = request.query
    bucket = limits.bucket(request_info(request.method, request.path, query.get("watch"),
                                        query.get("fieldSelector")))
    if bucket is None:
        return await handler(request)
    if not bucket.take():
        if _exempt(request):
            return await handler(request)
        raise errors.TooManyRequests(TOO_MANY, retry_after=RETRY_AFTER_SECONDS)
    try:
        return await handler(request)
    finally:
        bucket.release()
