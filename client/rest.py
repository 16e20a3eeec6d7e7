"""Async REST client for the Kubernetes API.

One `ApiClient` owns one aiohttp session (a pooled connector sized for many concurrent
requests and long-lived watches). Methods are generic over a `Resource` descriptor and
take and return plain JSON dicts, as the API serves them.

Failures surface as one of two exception families, never as aiohttp's own:
- `api.errors.StatusError` subclasses (NotFound, Conflict, Expired, ...) for answers from
  the server, rebuilt from the `metav1.Status` body;
- `ApiConnectionError` when no usable answer arrived (refused, reset, timed out, a watch
  stream that broke mid-way).

Retries follow client-go's rules of thumb: a request that certainly never reached the server
(connect failed) is retried for every verb; 429 is retried for every verb because the server
promises it did not process the request; 5xx, resets and timeouts are retried only for
requests that are safe to repeat (GET, DELETE, and PUT carrying a resourceVersion, which the
server turns into a compare-and-swap so a repeat cannot double-apply).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import aiohttp

from api.errors import StatusError
from api.resources import Resource
from client.backoff import Backoff
from client.kubeconfig import ClientConfig, StrPath, load_kubeconfig

log = logging.getLogger(__name__)

Obj = dict[str, Any]
WatchEvent = tuple[str, Obj]
PatchBody = Obj | list[Obj]  # a JSON patch is a list of operations, the others an object
PatchType = Literal["merge", "json", "strategic", "apply"]

PATCH_CONTENT_TYPES: Mapping[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}

_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
# Extra client-side time on top of a watch's server-side timeoutSeconds before we give up on
# a stream that went silent (for example a half-open TCP connection).
_WATCH_GRACE_SECONDS = 30.0
TOKEN_REREAD_SECONDS = 60.0


class ApiConnectionError(Exception):
    """No (complete) answer from the apiserver: connect failure, reset, timeout, cut stream."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on retrying one request: attempts, exponential delays, and total time."""

    max_attempts: int = 5
    initial_delay: float = 0.2
    max_delay: float = 5.0
    jitter: float = 0.5
    max_total: float = 30.0  # seconds from the first attempt, Retry-After waits included

    def backoff(self) -> Backoff:
        return Backoff(self.initial_delay, max(self.initial_delay, self.max_delay),
                       jitter=self.jitter)


NO_RETRY = RetryPolicy(max_attempts=1)


def resource_path(res: Resource, namespace: str | None = None, name: str | None = None,
                  subresource: str | None = None) -> str:
    """The API path of a collection, an object or an object's subresource.

    `/api/v1/...` for the core group, `/apis/<group>/<version>/...` otherwise; a namespaced
    kind without a namespace addresses the collection across all namespaces; a namespace
    given for a cluster-scoped kind is ignored (as kubectl does).
    """
    parts = [f"/api/{res.version}" if not res.group else f"/apis/{res.group}/{res.version}"]
    if res.namespaced and namespace:
        parts += ["namespaces", namespace]
    parts.append(res.plural)
    if name:
        parts.append(name)
    if subresource:
        if not name:
            raise ValueError("a subresource needs an object name")
        parts.append(subresource)
    return "/".join(parts)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    md = obj.get("metadata")
    return md if isinstance(md, Mapping) else {}


def _query(**params: Any) -> dict[str, str]:
    """Query parameters with None dropped and booleans spelled as Kubernetes expects."""
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _retry_after(resp: aiohttp.ClientResponse) -> int | None:
    value = resp.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0, int(value))
    except ValueError:
        return None  # an HTTP-date; rare from apiservers, fall back to our own backoff


async def _status_error(resp: aiohttp.ClientResponse) -> StatusError:
    """Read a failed response (and release it) into the most specific StatusError."""
    async with resp:
        try:
            raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError):
            raw = b""  # the status code alone still tells what happened
    body: Any = None
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        pass
    if not isinstance(body, dict) or not (body.get("kind") == "Status" or "reason" in body):
        text = raw.decode(errors="replace").strip()[:500]
        body = {"code": resp.status, "message": text or f"HTTP {resp.status} {resp.reason}"}
    err = StatusError.from_status(body, resp.status)
    err.retry_after = _retry_after(resp)
    return err


class ApiClient:
    """Async Kubernetes REST client; use as `async with ApiClient(config) as api:`."""

    def __init__(self, config: ClientConfig, *, component: str = "client",
                 retry: RetryPolicy = RetryPolicy(), request_timeout: float = 60.0,
                 connect_timeout: float = 10.0, max_connections: int = 256) -> None:
        self.config = config
        self.user_agent = f"kubelite/{component}"
        self.retry = retry
        self._request_timeout = request_timeout
        self._connect_timeout = connect_timeout
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._token: str | None = None
        self._token_read = 0.0

    @classmethod
    def from_kubeconfig(cls, path: StrPath | None = None, *, context: str | None = None,
                        component: str = "client") -> ApiClient:
        return cls(load_kubeconfig(path, context), component=component)

    # --- lifetime -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._ensure_session()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _file_token(self) -> str:
        """The token of `config.token_file`, read again at most once a minute: the kubelet
        rotates projected service-account tokens in place (client-go re-reads likewise)."""
        now = time.monotonic()
        if self._token is None or now - self._token_read > TOKEN_REREAD_SECONDS:
            assert self.config.token_file is not None
            try:
                self._token = Path(self.config.token_file).read_text().strip()
                self._token_read = now
            except OSError as e:
                if self._token is None:
                    raise ApiConnectionError(f"cannot read the token file "
                                             f"{self.config.token_file}: {e}") from e
                log.warning("cannot reread %s (%s); using the last token",
                            self.config.token_file, e)
        return self._token

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            ssl_ctx = self.config.ssl_context()
            # Watches hold a connection each for minutes, so the pool must be far larger than
            # aiohttp's default of 100, or long-lived watches would starve ordinary requests.
            connector = aiohttp.TCPConnector(limit=self._max_connections,
                                             limit_per_host=self._max_connections,
                                             ssl=ssl_ctx if ssl_ctx is not None else True)
            headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
            if self.config.token and not self.config.token_file:
                headers["Authorization"] = f"Bearer {self.config.token}"
            self._session = aiohttp.ClientSession(
                self.config.server, connector=connector, headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._request_timeout,
                                              sock_connect=self._connect_timeout))
        return self._session

    # --- typed verbs ----------------------------------------------------------------------

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> Obj:
        return await self._obj("GET", resource_path(res, self._ns(res, namespace), name))

    async def list(self, res: Resource, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_: str | None = None,
                   resource_version: str | None = None) -> Obj:
        """One page of a List; `namespace=None` lists a namespaced kind across namespaces."""
        params = _query(labelSelector=label_selector, fieldSelector=field_selector,
                        limit=limit, resourceVersion=resource_version)
        if continue_:
            params["continue"] = continue_
        return await self._obj("GET", resource_path(res, namespace), params=params)

    async def create(self, res: Resource, obj: Obj, namespace: str | None = None, *,
                     dry_run: bool = False, field_manager: str | None = None) -> Obj:
        path = resource_path(res, self._ns(res, namespace, obj))
        params = _query(dryRun="All" if dry_run else None, fieldManager=field_manager)
        return await self._obj("POST", path, params=params, body=obj)

    async def update(self, res: Resource, obj: Obj, *, dry_run: bool = False,
                     field_manager: str | None = None) -> Obj:
        """PUT the whole object; include metadata.resourceVersion to get compare-and-swap."""
        return await self._put(res, obj, None, dry_run, field_manager)

    async def update_status(self, res: Resource, obj: Obj, *,
                            field_manager: str | None = None) -> Obj:
        return await self._put(res, obj, "status", False, field_manager)

    async def patch(self, res: Resource, name: str, patch: PatchBody,
                    namespace: str | None = None, patch_type: PatchType = "merge",
                    subresource: str | None = None, *, field_manager: str | None = None,
                    force: bool | None = None, dry_run: bool = False) -> Obj:
        if patch_type not in PATCH_CONTENT_TYPES:
            raise ValueError(f"unknown patch type {patch_type!r}")
        if patch_type == "apply" and field_manager is None:
            # server-side apply requires a manager; default to this component's identity
            field_manager = self.user_agent.replace("/", "-")
        path = resource_path(res, self._ns(res, namespace), name, subresource)
        params = _query(fieldManager=field_manager, force=force,
                        dryRun="All" if dry_run else None)
        return await self._obj("PATCH", path, params=params, body=patch,
                               content_type=PATCH_CONTENT_TYPES[patch_type])

    async def delete(self, res: Resource, name: str, namespace: str | None = None, *,
                     grace_period_seconds: int | None = None,
                     propagation_policy: str | None = None,
                     preconditions: Mapping[str, str] | None = None,
                     dry_run: bool = False) -> Obj:
        """Delete; returns what the server returns (the object while finalizing, or Status)."""
        options: Obj = {}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        if preconditions:
            options["preconditions"] = dict(preconditions)
        if dry_run:
            options["dryRun"] = ["All"]
        body = {"kind": "DeleteOptions", "apiVersion": "v1", **options} if options else None
        return await self._obj("DELETE", resource_path(res, self._ns(res, namespace), name),
                               body=body)

    async def create_subresource(self, res: Resource, name: str, sub: str, body: Obj,
                                 namespace: str | None = None) -> Obj:
        """POST to a subresource such as pods/binding or pods/eviction."""
        path = resource_path(res, self._ns(res, namespace, body), name, sub)
        return await self._obj("POST", path, body=body)

    async def watch(self, res: Resource, namespace: str | None = None, *,
                    resource_version: str | None = None, label_selector: str | None = None,
                    field_selector: str | None = None, timeout_seconds: int | None = None,
                    allow_bookmarks: bool = True) -> AsyncGenerator[WatchEvent, None]:
        """Stream `(type, object)` pairs until the server ends the watch.

        An ERROR event carrying a Status raises it as a StatusError (a stale
        resourceVersion raises `Expired`). Close the iterator (`contextlib.aclosing`) when
        leaving early so the connection is released at once.
        """
        params = _query(watch=True, resourceVersion=resource_version,
                        labelSelector=label_selector, fieldSelector=field_selector,
                        timeoutSeconds=timeout_seconds,
                        allowWatchBookmarks=True if allow_bookmarks else None)
        total = timeout_seconds + _WATCH_GRACE_SECONDS if timeout_seconds else None
        timeout = aiohttp.ClientTimeout(total=total, sock_connect=self._connect_timeout)
        resp = await self._send("GET", resource_path(res, namespace), params=params,
                                timeout=timeout)
        async with resp:
            pending = bytearray()
            try:
                # Split lines ourselves: StreamReader.readline caps line length, and one
                # event carries a whole object, which may be large.
                async for chunk in resp.content.iter_any():
                    pending += chunk
                    while (end := pending.find(b"\n")) >= 0:
                        line = bytes(pending[:end])
                        del pending[:end + 1]
                        if line.strip():
                            yield _decode_event(line)
            except (aiohttp.ClientError, TimeoutError) as e:
                raise ApiConnectionError(f"watch {res.group_resource} broke: {e!r}") from e
            if pending.strip():
                yield _decode_event(bytes(pending))

    async def request(self, method: str, path: str, params: Mapping[str, str] | None = None,
                      json: Any = None, headers: Mapping[str, str] | None = None) -> Any:
        """Any other call: returns decoded JSON, or text for non-JSON responses."""
        return await self._json(method.upper(), path, params=params, body=json,
                                extra_headers=headers)

    # --- plumbing -------------------------------------------------------------------------

    def _ns(self, res: Resource, namespace: str | None, obj: Obj | None = None) -> str | None:
        if not res.namespaced:
            return None
        ns = namespace or (_meta(obj).get("namespace") if obj is not None else None)
        if not ns:
            raise ValueError(f"{res.kind} is namespaced: a namespace is required")
        return str(ns)

    async def _put(self, res: Resource, obj: Obj, sub: str | None, dry_run: bool,
                   field_manager: str | None) -> Obj:
        md = _meta(obj)
        if not md.get("name"):
            raise ValueError("update needs metadata.name")
        path = resource_path(res, self._ns(res, None, obj), str(md["name"]), sub)
        params = _query(dryRun="All" if dry_run else None, fieldManager=field_manager)
        return await self._obj("PUT", path, params=params, body=obj)

    async def _obj(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                   body: Any = None, content_type: str = "application/json") -> Obj:
        result = await self._json(method, path, params=params, body=body,
                                  content_type=content_type)
        if not isinstance(result, dict):
            raise ApiConnectionError(f"{method} {path}: expected a JSON object, got "
                                     f"{str(result)[:200]!r}")
        return result

    async def _json(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                    body: Any = None, content_type: str = "application/json",
                    extra_headers: Mapping[str, str] | None = None) -> Any:
        resp = await self._send(method, path, params=params, body=body,
                                content_type=content_type, extra_headers=extra_headers)
        async with resp:
            try:
                raw = await resp.read()
            except (aiohttp.ClientError, TimeoutError) as e:
                raise ApiConnectionError(f"{method} {path}: reading response: {e!r}") from e
        if not raw:
            return {}
        if "json" not in (resp.content_type or ""):
            return raw.decode(errors="replace")
        try:
            return json.loads(raw)
        except ValueError as e:
            raise ApiConnectionError(f"{method} {path}: invalid JSON in response") from e

    async def _send(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                    body: Any = None, content_type: str = "application/json",
                    extra_headers: Mapping[str, str] | None = None,
                    timeout: aiohttp.ClientTimeout | None = None) -> aiohttp.ClientResponse:
        """Send with retries; return an open 2xx response (the caller releases it)."""
        session = self._ensure_session()
        data = None if body is None else json.dumps(body).encode()
        headers = dict(extra_headers or {})
        if self.config.token_file:
            headers["Authorization"] = f"Bearer {self._file_token()}"
        if data is not None:
            headers.setdefault("Content-Type", content_type)
        idempotent = method in _IDEMPOTENT_METHODS or (
            method == "PUT" and isinstance(body, Mapping)
            and bool(_meta(body).get("resourceVersion")))
        request_kwargs: dict[str, Any] = {"timeout": timeout} if timeout is not None else {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry.max_total
        backoff = self.retry.backoff()
        attempt = 0
        while True:
            attempt += 1
            wait: float | None = None
            try:
                resp = await session.request(method, path, params=params, data=data,
                                             headers=headers, **request_kwargs)
            except (aiohttp.ClientSSLError, aiohttp.InvalidURL) as e:
                raise ApiConnectionError(f"{method} {path}: {e!r}") from e
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as e:
                # The connection was never made, so the request never left: safe for any verb.
                error: Exception = ApiConnectionError(f"{method} {path}: {e!r}")
                error.__cause__ = e
                retryable = True
            except (aiohttp.ClientError, TimeoutError) as e:
                error = ApiConnectionError(f"{method} {path}: {e!r}")
                error.__cause__ = e
                retryable = idempotent
            else:
                if resp.status < 400:
                    return resp
                status_error = await _status_error(resp)
                error = status_error
                retryable = resp.status == 429 or (idempotent and resp.status in _RETRY_STATUSES)
                if status_error.retry_after is not None:
                    wait = float(status_error.retry_after)
            if not retryable or attempt >= self.retry.max_attempts:
                raise error
            delay = wait if wait is not None else backoff.next()
            if loop.time() + delay > deadline:
                raise error
            log.info("retrying request method=%s path=%s attempt=%d delay=%.3fs error=%s",
                     method, path, attempt, delay, error)
            await asyncio.sleep(delay)


def _decode_event(line: bytes) -> WatchEvent:
    try:
        event = json.loads(line)
        kind, obj = str(event["type"]), event["object"]
    except (ValueError, KeyError, TypeError) as e:
        raise ApiConnectionError(f"malformed watch event: {line[:200]!r}") from e
    if kind == "ERROR":
        status = obj if isinstance(obj, dict) else {}
        raise StatusError.from_status(status, int(status.get("code") or 500))
    if not isinstance(obj, dict):
        raise ApiConnectionError(f"watch event without an object: {line[:200]!r}")
    return kind, obj
