"""The audit log, as kube-apiserver's: `--audit-policy-file` says how much of each request to
record, `--audit-log-path` where the audit.k8s.io/v1 Events go, one JSON object a line.

Shape as upstream (k8s.io/apiserver pkg/audit, pkg/audit/policy, pkg/endpoints/filters):
the Policy's first matching rule gives a level (None, Metadata, Request, RequestResponse) and
the stages to leave out; no matching rule means None. Every request gets an audit ID (the
client's `Audit-ID` header, else a UUID) echoed in the `Audit-ID` response header.

The filter sits outside the access filter so it sees denied requests and their final codes;
the access filter leaves who authenticated, who they impersonate and the authorization
decision on the request (apiserver/auth/filters.py). As upstream, a request that fails
authentication is one `ResponseStarted` event with an empty user; a long-running request
(watch, exec, logs, proxy) gets `ResponseStarted` when its headers go out and
`ResponseComplete` when it ends. `RequestReceived` carries upstream's timestamps but is
written when the response is known (or starts, for long-running requests): the policy needs
the user, which is known only once the access filter has run.

Events are serialised on the event loop (orjson, microseconds) and handed to `LogWriter`,
whose thread does every file write and the size-based rotation, so a slow disk never stalls
the loop; the writer is flushed and closed on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import sys
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from pathlib import Path
from typing import IO, Any

import orjson
import yaml
from aiohttp import web

from apiserver.auth.attributes import UserInfo
from apiserver.auth.filters import AUTHENTICATED_USER, AUTHORIZATION_DECISION, IMPERSONATED_USER
from apiserver.auth.requestinfo import RequestInfo, request_info
from apiserver.handlers import REQUEST_BODY
from apiserver.warnings import AUDIT_ANNOTATIONS_KEY

log = logging.getLogger("apiserver.audit")

API_VERSION = "audit.k8s.io/v1"
AUDIT_ID_HEADER = "Audit-ID"

STAGE_REQUEST_RECEIVED = "RequestReceived"
STAGE_RESPONSE_STARTED = "ResponseStarted"
STAGE_RESPONSE_COMPLETE = "ResponseComplete"
STAGE_PANIC = "Panic"
STAGES = (STAGE_REQUEST_RECEIVED, STAGE_RESPONSE_STARTED, STAGE_RESPONSE_COMPLETE, STAGE_PANIC)

DECISION_ANNOTATION = "authorization.k8s.io/decision"
REASON_ANNOTATION = "authorization.k8s.io/reason"

# upstream's BasicLongRunningRequestCheck(verbs {watch, proxy}, subresources {...}).
LONG_RUNNING_VERBS = frozenset({"watch", "proxy"})
LONG_RUNNING_SUBRESOURCES = frozenset({"attach", "exec", "proxy", "log", "portforward"})
USER_AGENT_LIMIT = 1024


class Level(IntEnum):
    """Ordered as upstream's: each level records everything the one before it does."""

    NONE = 0
    METADATA = 1
    REQUEST = 2
    REQUEST_RESPONSE = 3

    @property
    def wire(self) -> str:
        return LEVEL_NAMES[self]


LEVEL_NAMES = ("None", "Metadata", "Request", "RequestResponse")


class PolicyError(ValueError):
    """An audit policy file that cannot be used (the apiserver refuses to start)."""


# ---------------------------------------------------------------------------------------------
# The policy


@dataclass(frozen=True)
class GroupResources:
    group: str = ""
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyRule:
    level: Level
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: frozenset[str] = frozenset()  # the policy's own are merged in
    omit_managed_fields: bool | None = None


@dataclass(frozen=True)
class RequestAuditConfig:
    """What the policy decided for one request."""

    level: Level
    omit_stages: frozenset[str] = frozenset()
    omit_managed_fields: bool = False


@dataclass(frozen=True)
class Policy:
    rules: tuple[PolicyRule, ...]
    omit_stages: frozenset[str] = frozenset()
    omit_managed_fields: bool = False

    def evaluate(self, user: UserInfo | None, info: RequestInfo) -> RequestAuditConfig:
        """The first matching rule's level; None when no rule matches (upstream's default)."""
        for rule in self.rules:
            if rule_matches(rule, user, info):
                managed = self.omit_managed_fields if rule.omit_managed_fields is None \
                    else rule.omit_managed_fields
                return RequestAuditConfig(rule.level, rule.omit_stages, managed)
        return RequestAuditConfig(Level.NONE, self.omit_stages, self.omit_managed_fields)


def rule_matches(rule: PolicyRule, user: UserInfo | None, info: RequestInfo) -> bool:
    if rule.users and (user is None or user.name not in rule.users):
        return False
    if rule.user_groups and (user is None or
                             not any(g in rule.user_groups for g in user.groups)):
        return False
    if rule.verbs and info.verb not in rule.verbs:
        return False
    if rule.namespaces or rule.resources:
        return _matches_resource(rule, info)
    if rule.non_resource_urls:
        return not info.resource_request and \
            any(_path_matches(info.path, spec) for spec in rule.non_resource_urls)
    return True


def _path_matches(path: str, spec: str) -> bool:
    if spec in ("*", path):
        return True
    return spec.endswith("*") and path.startswith(spec.rstrip("*"))


def _matches_resource(rule: PolicyRule, info: RequestInfo) -> bool:
    if not info.resource_request:
        return False
    if rule.namespaces and info.namespace not in rule.namespaces:
        return False  # cluster-scoped resources have the namespace ""
    if not rule.resources:
        return True
    resource, sub = info.resource, info.subresource
    combined = f"{resource}/{sub}" if sub else resource
    for gr in rule.resources:
        if gr.group not in (info.api_group, "*"):
            continue
        if not gr.resources:
            return True
        if gr.resource_names and info.name not in gr.resource_names:
            continue
        for res in gr.resources:
            if res in (combined, "*"):
                return True
            if sub and res.startswith("*/") and res[2:] == sub:
                return True
            if res.endswith("/*") and res[:-2] == resource:
                return True
    return False


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where}: must be a list of strings")
    return tuple(value)


def _stages(value: Any, where: str) -> frozenset[str]:
    stages = _strings(value, where)
    for i, stage in enumerate(stages):
        if stage not in STAGES:
            raise PolicyError(f"{where}[{i}]: Invalid value: {stage!r}: allowed stages are "
                              f"{','.join(STAGES)}")
    return frozenset(stages)


def _level(value: Any, where: str) -> Level:
    if value in (None, ""):
        raise PolicyError(f"{where}: Required value")
    if value not in LEVEL_NAMES:
        raise PolicyError(f"{where}: Unsupported value: {value!r}: supported values: "
                          + ", ".join(f'"{n}"' for n in LEVEL_NAMES))
    return Level(LEVEL_NAMES.index(value))


def _group_resources(value: Any, where: str) -> tuple[GroupResources, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise PolicyError(f"{where}: must be a list")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise PolicyError(f"{where}[{i}]: must be an object")
        group = item.get("group") or ""
        if not isinstance(group, str):
            raise PolicyError(f"{where}[{i}].group: must be a string")
        gr = GroupResources(group, _strings(item.get("resources"), f"{where}[{i}].resources"),
                            _strings(item.get("resourceNames"),
                                     f"{where}[{i}].resourceNames"))
        if gr.resource_names and not gr.resources:
            raise PolicyError(f"{where}[{i}].resourceNames: Invalid value: using "
                              f"resourceNames requires at least one resource")
        out.append(gr)
    return tuple(out)


def _optional_bool(value: Any, where: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise PolicyError(f"{where}: must be true or false")


def parse_policy(doc: Any) -> Policy:
    """An audit.k8s.io/v1 Policy, checked as upstream's validation does."""
    if not isinstance(doc, dict):
        raise PolicyError("the policy is not an object")
    if doc.get("apiVersion") != API_VERSION or doc.get("kind") != "Policy":
        raise PolicyError(f"unknown group version field {doc.get('apiVersion')}, "
                          f"Kind={doc.get('kind')} in policy (want {API_VERSION}, Policy)")
    top_omit = _stages(doc.get("omitStages"), "omitStages")
    top_managed = _optional_bool(doc.get("omitManagedFields"), "omitManagedFields") or False
    raw_rules = doc.get("rules") or []
    if not isinstance(raw_rules, list):
        raise PolicyError("rules: must be a list")
    rules = []
    for i, raw in enumerate(raw_rules):
        where = f"rules[{i}]"
        if not isinstance(raw, dict):
            raise PolicyError(f"{where}: must be an object")
        urls = _strings(raw.get("nonResourceURLs"), f"{where}.nonResourceURLs")
        for j, url in enumerate(urls):
            if url == "*":
                continue
            if not url.startswith("/"):
                raise PolicyError(f"{where}.nonResourceURLs[{j}]: Invalid value: {url!r}: "
                                  f"non-resource URL rules must begin with a '/' character")
            if "*" in url[:-1]:
                raise PolicyError(f"{where}.nonResourceURLs[{j}]: Invalid value: {url!r}: "
                                  f"non-resource URL wildcards '*' must be the final "
                                  f"character of the rule")
        rule = PolicyRule(
            level=_level(raw.get("level"), f"{where}.level"),
            users=_strings(raw.get("users"), f"{where}.users"),
            user_groups=_strings(raw.get("userGroups"), f"{where}.userGroups"),
            verbs=_strings(raw.get("verbs"), f"{where}.verbs"),
            resources=_group_resources(raw.get("resources"), f"{where}.resources"),
            namespaces=_strings(raw.get("namespaces"), f"{where}.namespaces"),
            non_resource_urls=urls,
            omit_stages=top_omit | _stages(raw.get("omitStages"), f"{where}.omitStages"),
            omit_managed_fields=_optional_bool(raw.get("omitManagedFields"),
                                               f"{where}.omitManagedFields"))
        if urls and (rule.resources or rule.namespaces):
            raise PolicyError(f"{where}.nonResourceURLs: Invalid value: rules cannot apply "
                              f"to both regular resources and non-resource URLs")
        rules.append(rule)
    if not rules:
        raise PolicyError("loaded illegal policy with 0 rules")
    return Policy(tuple(rules), top_omit, top_managed)


def load_policy(path: str | Path) -> Policy:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise PolicyError(f"failed to read file path {str(path)!r}: {e}") from e
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise PolicyError(f"failed decoding: {e}: from file {path}") from e
    try:
        return parse_policy(doc)
    except PolicyError as e:
        raise PolicyError(f"{e}: from file {path}") from e


# ---------------------------------------------------------------------------------------------
# Events


def micro_time(t: float) -> str:
    """metav1.MicroTime's JSON form: RFC 3339 in UTC with microseconds."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def user_info(user: UserInfo | None) -> dict[str, Any]:
    """authentication.k8s.io/v1 UserInfo, empty fields left out ({} for no user)."""
    if user is None:
        return {}
    out: dict[str, Any] = {"username": user.name}
    if user.uid:
        out["uid"] = user.uid
    if user.groups:
        out["groups"] = list(user.groups)
    if user.extra:
        out["extra"] = {k: list(v) for k, v in user.extra.items()}
    return out


def source_ips(request: web.Request) -> list[str]:
    """X-Forwarded-For, then X-Real-Ip, then the peer (upstream's utilnet.SourceIPs)."""
    ips: list[str] = []
    headers = request.headers
    for header in (headers.get("X-Forwarded-For"), headers.get("X-Real-Ip")):
        if not header:
            continue
        for part in header.split(","):
            with contextlib.suppress(ValueError):
                ip = str(ipaddress.ip_address(part.strip()))
                if ip not in ips:
                    ips.append(ip)
    remote = request.remote
    if remote and remote not in ips:
        ips.append(remote)
    return ips


def object_ref(info: RequestInfo) -> dict[str, str]:
    ref = {"resource": info.resource, "namespace": info.namespace, "name": info.name,
           "apiGroup": info.api_group, "apiVersion": info.api_version,
           "subresource": info.subresource}
    return {k: v for k, v in ref.items() if v}


def without_managed_fields(obj: Any) -> Any:
    """A shallow copy of `obj` (or of a list's items) without metadata.managedFields."""
    if not isinstance(obj, dict):
        return obj
    out = dict(obj)
    md = out.get("metadata")
    if isinstance(md, dict) and "managedFields" in md:
        out["metadata"] = {k: v for k, v in md.items() if k != "managedFields"}
    items = out.get("items")
    if isinstance(items, list):
        out["items"] = [without_managed_fields(i) for i in items]
    return out


def _json_body(raw: bytes | None) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None  # YAML or protobuf bodies: decoded only when sent as JSON


def _response_body(response: web.StreamResponse | None) -> Any:
    if not isinstance(response, web.Response) or "json" not in response.content_type:
        return None
    body = response.body
    return _json_body(body if isinstance(body, bytes) else None)


def response_status(code: int, body: Any) -> dict[str, Any]:
    """The event's responseStatus: a failure's Status fields, else just the code."""
    out: dict[str, Any] = {"metadata": {}}
    if isinstance(body, dict) and body.get("kind") == "Status":
        for key in ("status", "message", "reason", "details"):
            if body.get(key):
                out[key] = body[key]
    out["code"] = code
    return out


@dataclass
class RequestAudit:
    """One request's audit state (upstream's AuditContext)."""

    audit_id: str
    received: float
    config: RequestAuditConfig | None = None
    info: RequestInfo | None = None
    user: UserInfo | None = None
    long_running: bool = False
    code: int = 0  # once the response started
    received_written: bool = False
    started_written: bool = False
    finished: bool = False
    base: dict[str, Any] = field(default_factory=dict)


REQUEST_AUDIT = web.RequestKey("audit", RequestAudit)


class Sink(ABC):
    """Where serialised events go (a LogWriter, or a list in tests)."""

    @abstractmethod
    def write(self, line: bytes) -> None:
        """Take one event line; never block the event loop."""


class Auditor:
    """Decides each request's level and writes its events to `sink`."""

    def __init__(self, policy: Policy, sink: Sink) -> None:
        self.policy = policy
        self.sink = sink

    def resolve(self, request: web.Request, ctx: RequestAudit) -> RequestAuditConfig:
        """The request's config, decided once the access filter has run (its user)."""
        if ctx.config is None:
            query = request.query
            info = request_info(request.method, request.path, query.get("watch"),
                                query.get("fieldSelector"))
            ctx.info, ctx.user = info, request.get(AUTHENTICATED_USER)
            ctx.long_running = info.verb in LONG_RUNNING_VERBS or \
                info.subresource in LONG_RUNNING_SUBRESOURCES
            ctx.config = self.policy.evaluate(ctx.user, info)
        return ctx.config

    def _base(self, request: web.Request, ctx: RequestAudit) -> dict[str, Any]:
        """The fields every stage's event shares, in upstream's order."""
        if not ctx.base:
            assert ctx.info is not None and ctx.config is not None
            base: dict[str, Any] = {
                "kind": "Event", "apiVersion": API_VERSION, "level": ctx.config.level.wire,
                "auditID": ctx.audit_id, "stage": "", "requestURI": request.raw_path,
                "verb": ctx.info.verb, "user": user_info(ctx.user),
                "sourceIPs": source_ips(request)}
            agent = request.headers.get("User-Agent", "")
            if agent:
                if len(agent) > USER_AGENT_LIMIT:
                    agent = agent[:USER_AGENT_LIMIT] + "...TRUNCATED"
                base["userAgent"] = agent
            if ctx.info.resource_request:
                base["objectRef"] = object_ref(ctx.info)
            ctx.base = base
        return ctx.base

    def _emit(self, ctx: RequestAudit, event: dict[str, Any], stage: str,
              stamp: float) -> None:
        assert ctx.config is not None
        if stage in ctx.config.omit_stages:
            return
        event["stage"] = stage
        event["requestReceivedTimestamp"] = micro_time(ctx.received)
        event["stageTimestamp"] = micro_time(stamp)
        self.sink.write(orjson.dumps(event) + b"\n")

    def _received(self, request: web.Request, ctx: RequestAudit) -> None:
        if not ctx.received_written:
            ctx.received_written = True
            assert ctx.config is not None
            if STAGE_REQUEST_RECEIVED in ctx.config.omit_stages:
                return
            # Upstream writes this stage before authorization: no annotations, no
            # impersonated user, and the request's own timestamp as the stage's.
            self._emit(ctx, dict(self._base(request, ctx)), STAGE_REQUEST_RECEIVED,
                       ctx.received)

    def _later(self, request: web.Request, ctx: RequestAudit,
               status: dict[str, Any]) -> dict[str, Any]:
        """An event of a stage after authorization (impersonation, decision known)."""
        event = dict(self._base(request, ctx))
        impersonated = request.get(IMPERSONATED_USER)
        if impersonated is not None:
            # Upstream's field order: impersonatedUser comes right after user.
            event = {}
            for key, value in self._base(request, ctx).items():
                event[key] = value
                if key == "user":
                    event["impersonatedUser"] = user_info(impersonated)
        event["responseStatus"] = status
        return event

    @staticmethod
    def _annotations(request: web.Request) -> dict[str, str] | None:
        """The authorization decision, and what admission added (Pod Security's)."""
        decision = request.get(AUTHORIZATION_DECISION)
        added = request.get(AUDIT_ANNOTATIONS_KEY)
        if decision is None and not added:
            return None
        out: dict[str, str] = {}
        if decision is not None:
            out[DECISION_ANNOTATION] = decision[0]
            if decision[1]:
                out[REASON_ANNOTATION] = decision[1]
        if added:
            out.update(added)
        return out

    def response_started(self, request: web.Request, ctx: RequestAudit,
                         response: web.StreamResponse) -> None:
        """Headers are going out: a long-running request's ResponseStarted."""
        if ctx.finished or ctx.started_written:
            return
        config = self.resolve(request, ctx)
        ctx.code = response.status
        if config.level is Level.NONE or not ctx.long_running:
            return
        self._received(request, ctx)
        ctx.started_written = True
        event = self._later(request, ctx, response_status(response.status, None))
        annotations = self._annotations(request)
        if annotations:
            event["annotations"] = annotations
        self._emit(ctx, event, STAGE_RESPONSE_STARTED, time.time())

    def finish(self, request: web.Request, ctx: RequestAudit, code: int,
               response: web.StreamResponse | None, panic: BaseException | None = None
               ) -> None:
        """The request is over: its ResponseComplete (or Panic) event."""
        if ctx.finished:
            return
        ctx.finished = True
        config = self.resolve(request, ctx)
        if config.level is Level.NONE:
            return
        now = time.time()
        body = _response_body(response) if code >= 400 or \
            config.level is Level.REQUEST_RESPONSE else None
        if panic is not None:
            status = {"metadata": {}, "status": "Failure", "message":
                      f"APIServer panic'd: {panic!r}", "reason": "InternalError", "code": 500}
        elif code or ctx.code:
            status = response_status(code or ctx.code, body)
        else:
            status = {"metadata": {}, "status": "Success",
                      "message": "Connection closed early", "code": 200}
        if code == 401 and ctx.user is None:
            # Upstream's WithFailedAuthenticationAudit: one ResponseStarted event, no user.
            self._emit(ctx, self._later(request, ctx, status), STAGE_RESPONSE_STARTED, now)
            return
        self._received(request, ctx)
        annotations = self._annotations(request)
        if ctx.long_running and not ctx.started_written:
            ctx.started_written = True
            started = self._later(request, ctx, status)
            if annotations:
                started["annotations"] = annotations
            self._emit(ctx, started, STAGE_RESPONSE_STARTED, now)
        event = self._later(request, ctx, status)
        self._request_object(request, ctx, config, event)
        if config.level is Level.REQUEST_RESPONSE and body is not None:
            event["responseObject"] = without_managed_fields(body) \
                if config.omit_managed_fields else body
        if annotations:
            event["annotations"] = annotations
        self._emit(ctx, event, STAGE_PANIC if panic is not None else STAGE_RESPONSE_COMPLETE,
                   now)

    @staticmethod
    def _request_object(request: web.Request, ctx: RequestAudit, config: RequestAuditConfig,
                        event: dict[str, Any]) -> None:
        """requestObject at Request and above; as upstream's LogRequestObject, a create's or
        update's body also names the object in objectRef at every level."""
        assert ctx.info is not None
        verb = ctx.info.verb
        fills_ref = verb in ("create", "update") and "objectRef" in event
        if config.level < Level.REQUEST and not fills_ref:
            return
        obj = _json_body(request.get(REQUEST_BODY))
        if obj is None:
            return
        if fills_ref and isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
            md, ref = obj["metadata"], dict(event["objectRef"])
            for key in ("namespace", "name", "uid", "resourceVersion"):
                if not ref.get(key) and isinstance(md.get(key), str) and md[key]:
                    ref[key] = md[key]
            event["objectRef"] = {k: ref[k] for k in (
                "resource", "namespace", "name", "uid", "apiGroup", "apiVersion",
                "resourceVersion", "subresource") if ref.get(k)}
        if config.level >= Level.REQUEST:
            event["requestObject"] = without_managed_fields(obj) \
                if config.omit_managed_fields else obj


# ---------------------------------------------------------------------------------------------
# The filter


AUDITOR = web.AppKey("auditor", Auditor)


@web.middleware
async def audit_filter(request: web.Request,
                       handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                       ) -> web.StreamResponse:
    """Outermost: gives the request its audit ID and, with auditing on, records it."""
    ctx = RequestAudit(request.headers.get(AUDIT_ID_HEADER) or str(uuid.uuid4()), time.time())
    request[REQUEST_AUDIT] = ctx
    auditor = request.app.get(AUDITOR)
    if auditor is None:
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as e:
        e.headers.setdefault(AUDIT_ID_HEADER, ctx.audit_id)
        auditor.finish(request, ctx, e.status, None)
        raise
    except (asyncio.CancelledError, ConnectionResetError):
        auditor.finish(request, ctx, 0, None)  # the client went away
        raise
    except Exception as e:
        auditor.finish(request, ctx, 500, None, panic=e)
        raise
    auditor.finish(request, ctx, response.status, response)
    return response


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Every response carries its audit ID; a long-running one records ResponseStarted."""
    ctx = request.get(REQUEST_AUDIT)
    if ctx is None:
        return
    if AUDIT_ID_HEADER not in response.headers:
        response.headers[AUDIT_ID_HEADER] = ctx.audit_id
    auditor = request.app.get(AUDITOR)
    if auditor is not None:
        auditor.response_started(request, ctx, response)


# ---------------------------------------------------------------------------------------------
# The log file


class LogWriter(Sink):
    """Appends lines to a file (or stdout for "-") from a thread of its own.

    `write` only queues (called on the event loop, it never touches the disk nor takes a
    lock): the thread writes what has queued every `interval` seconds, or as soon as
    `batch_lines` are waiting, so a busy apiserver pays one write per batch and the loop
    almost never waits for the GIL. Rotation is by size as upstream's lumberjack does it:
    before a line would take the file past `max_size_mb`, the file is renamed
    `NAME-<UTC time>.EXT` and a new one started; beyond `max_backups` (0: keep all) or
    `max_age_days` (0: any age) old files are removed.
    """

    def __init__(self, path: str, max_size_mb: int = 0, max_backups: int = 0,
                 max_age_days: int = 0, queue_limit: int = 100_000,
                 interval: float = 0.1, batch_lines: int = 2000) -> None:
        self.path = path
        self.max_bytes = max_size_mb * 1024 * 1024
        self.max_backups = max_backups
        self.max_age_days = max_age_days
        self.queue_limit = queue_limit
        self.interval = interval
        self.batch_lines = batch_lines
        self.dropped = 0
        # deque append/popleft are atomic: the loop appends, the thread pops.
        self._pending: deque[bytes] = deque()
        self._queued = 0  # lines accepted (only the loop's thread counts them)
        self._written = 0  # lines handled by the writer thread (under _cond)
        self._closing = False
        self._wake = threading.Event()
        self._cond = threading.Condition()
        self._file: IO[bytes] | None = None
        self._size = 0
        self._last_rotation: datetime | None = None
        if path != "-":
            self._open()  # fail at start, not at the first request
        self._thread = threading.Thread(target=self._run, name="audit-log-writer",
                                        daemon=True)
        self._thread.start()

    def write(self, line: bytes) -> None:
        if self._closing:
            return
        if len(self._pending) >= self.queue_limit:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("audit log %s cannot keep up: %d events dropped", self.path,
                            self.dropped)
            return
        self._pending.append(line)
        self._queued += 1
        if len(self._pending) == self.batch_lines:
            self._wake.set()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued line is written; False on timeout."""
        target = self._queued
        self._wake.set()
        with self._cond:
            return self._cond.wait_for(lambda: self._written >= target, timeout)

    def close(self) -> None:
        """Write what is queued, then stop; later writes are ignored."""
        self._closing = True
        self._wake.set()
        self._thread.join()
        if self._file is not None:
            self._file.close()
            self._file = None

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            closing = self._closing
            batch = [self._pending.popleft() for _ in range(len(self._pending))]
            if batch:
                try:
                    self._write_batch(batch)
                except OSError as e:
                    log.error("writing the audit log %s: %s", self.path, e)
            with self._cond:
                self._written += len(batch)
                self._cond.notify_all()
            if closing and not self._pending:
                return

    def _write_batch(self, batch: list[bytes]) -> None:
        if self.path == "-":
            sys.stdout.buffer.write(b"".join(batch))
            sys.stdout.buffer.flush()
            return
        if self._file is None:
            self._open()
        chunk: list[bytes] = []
        for line in batch:
            if self.max_bytes and self._size + len(line) > self.max_bytes and \
                    (self._size or chunk):
                self._put(chunk)
                chunk = []
                self._rotate()
            chunk.append(line)
            self._size += len(line)
        self._put(chunk)

    def _put(self, chunk: list[bytes]) -> None:
        if chunk and self._file is not None:
            self._file.write(b"".join(chunk))
            self._file.flush()

    def _open(self) -> None:
        target = Path(self.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._file = os.fdopen(fd, "ab")
        self._size = os.fstat(fd).st_size

    def _backup_name(self, stamp: datetime) -> Path:
        target = Path(self.path)
        text = stamp.strftime("%Y-%m-%dT%H-%M-%S.%f")[:-3]
        return target.with_name(f"{target.stem}-{text}{target.suffix}")

    def _rotate(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        # Names sort by age: two rotations in one millisecond get distinct, ordered names.
        stamp = datetime.now(UTC)
        last = self._last_rotation
        if last is not None and stamp < last + timedelta(milliseconds=1):
            stamp = last + timedelta(milliseconds=1)
        backup = self._backup_name(stamp)
        while backup.exists():
            stamp += timedelta(milliseconds=1)
            backup = self._backup_name(stamp)
        self._last_rotation = stamp
        os.replace(self.path, backup)
        self._open()
        self._prune()

    def backups(self) -> list[Path]:
        """The rotated files, newest first."""
        target = Path(self.path)
        prefix, suffix = f"{target.stem}-", target.suffix
        found = [p for p in target.parent.iterdir()
                 if p.name.startswith(prefix) and p.name.endswith(suffix) and
                 p.name != target.name]
        return sorted(found, key=lambda p: p.name, reverse=True)

    def _prune(self) -> None:
        backups = self.backups()
        doomed: set[Path] = set()
        if self.max_backups:
            doomed.update(backups[self.max_backups:])
        if self.max_age_days:
            cutoff = time.time() - self.max_age_days * 86400
            doomed.update(p for p in backups if p.stat().st_mtime < cutoff)
        for path in doomed:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


# ---------------------------------------------------------------------------------------------
# Wiring


@dataclass(frozen=True)
class AuditOptions:
    policy_file: str = ""
    log_path: str = ""
    max_size_mb: int = 0
    max_backups: int = 0
    max_age_days: int = 0


def install(app: web.Application, options: AuditOptions) -> None:
    """Audit IDs on every response; events only with both a policy and a log path (as
    upstream: either alone records nothing)."""
    app.on_response_prepare.append(on_response_prepare)
    if not (options.policy_file and options.log_path):
        return
    policy = load_policy(options.policy_file)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        writer = LogWriter(options.log_path, options.max_size_mb, options.max_backups,
                           options.max_age_days)
        app[AUDITOR] = Auditor(policy, writer)
        log.info("audit log: %s (policy %s)", options.log_path, options.policy_file)
        try:
            yield
        finally:
            await asyncio.to_thread(writer.close)

    app.cleanup_ctx.append(lifetime)


# `kubelite up`'s policy, after upstream's examples: no reads of events and no health
# probes (the noise), every other request at Metadata, RequestReceived left out.
DEFAULT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/livez*", "/readyz*", "/version"]
  - level: None
    verbs: ["get", "list", "watch"]
    resources:
      - group: ""
        resources: ["events"]
      - group: "events.k8s.io"
        resources: ["events"]
  - level: Metadata
"""


def ensure_default_policy(path: Path) -> Path:
    """`path`, holding DEFAULT_POLICY unless it exists already (edits are kept)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(DEFAULT_POLICY)
    return path


def iter_events(path: str | Path) -> Iterable[dict[str, Any]]:
    """The events of one log file (for tests and tools)."""
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield orjson.loads(line)
