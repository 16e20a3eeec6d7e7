"""The audit log's parts without etcd: policy parsing and matching (upstream's checker
cases), the events a small aiohttp app produces through the filter, and the writer's
rotation."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api import errors
from apiserver import audit
from apiserver.audit import Level, LogWriter, PolicyError, parse_policy
from apiserver.auth.attributes import UserInfo
from apiserver.auth.filters import AUTHENTICATED_USER, AUTHORIZATION_DECISION, IMPERSONATED_USER
from apiserver.auth.requestinfo import request_info
from apiserver.handlers import read_body

ALICE = UserInfo("alice", "u-1", ("devs", "system:authenticated"))


def policy(text: str) -> audit.Policy:
    return parse_policy(yaml.safe_load(text))


def level(p: audit.Policy, user: UserInfo | None, method: str, path: str) -> str:
    path, _, query = path.partition("?")
    watch = "true" if "watch=" in query else None
    return p.evaluate(user, request_info(method, path, watch)).level.wire


# --- the policy -------------------------------------------------------------------------------


def test_policy_refuses_what_upstream_refuses() -> None:
    bad = {
        "kind: Policy\napiVersion: audit.k8s.io/v1beta1\nrules: [{level: Metadata}]":
            "unknown group version",
        "kind: Policy\napiVersion: audit.k8s.io/v1\nrules: []": "0 rules",
        "kind: Policy\napiVersion: audit.k8s.io/v1\nrules: [{level: Everything}]":
            r"rules\[0\].level: Unsupported value",
        "kind: Policy\napiVersion: audit.k8s.io/v1\nrules: [{verbs: [get]}]":
            r"rules\[0\].level: Required value",
        "kind: Policy\napiVersion: audit.k8s.io/v1\nrules: [{level: None, "
        "nonResourceURLs: [healthz]}]": "must begin with a '/'",
        "kind: Policy\napiVersion: audit.k8s.io/v1\nrules: [{level: None, "
        "nonResourceURLs: ['/a*/b']}]": "must be the final character",
        "kind: Policy\napiVersion: audit.k8s.io/v1\nrules: [{level: None, "
        "nonResourceURLs: ['/x'], namespaces: [a]}]": "both regular resources",
        "kind: Policy\napiVersion: audit.k8s.io/v1\nrules: [{level: None, "
        "resources: [{resourceNames: [x]}]}]": "requires at least one resource",
        "kind: Policy\napiVersion: audit.k8s.io/v1\nomitStages: [Done]\nrules: "
        "[{level: None}]": r"omitStages\[0\]: Invalid value",
    }
    for text, message in bad.items():
        with pytest.raises(PolicyError, match=message):
            policy(text)


def test_load_policy_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("kind: Policy\napiVersion: audit.k8s.io/v1\nrules: []\n")
    with pytest.raises(PolicyError, match=f"0 rules: from file {re.escape(str(path))}"):
        audit.load_policy(path)
    with pytest.raises(PolicyError, match="failed to read"):
        audit.load_policy(tmp_path / "missing.yaml")


def test_first_matching_rule_wins_and_no_match_is_none() -> None:
    p = policy("""
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    users: ["system:kube-proxy"]
    verbs: ["watch"]
  - level: RequestResponse
    userGroups: ["devs"]
    resources: [{group: "", resources: ["secrets"]}]
  - level: Request
    namespaces: ["kube-system"]
  - level: Metadata
    resources: [{group: "apps"}]
  - level: Metadata
    nonResourceURLs: ["/metrics", "/logs/*"]
""")
    proxy = UserInfo("system:kube-proxy")
    assert level(p, proxy, "GET", "/api/v1/services?watch=1") == "None"
    assert level(p, proxy, "GET", "/api/v1/watch/services") == "None"
    assert level(p, ALICE, "GET", "/api/v1/namespaces/a/secrets/s") == "RequestResponse"
    # A user outside the group falls through; a 401 has no user and matches no user rule.
    assert level(p, UserInfo("bob"), "GET", "/api/v1/namespaces/a/secrets/s") == "None"
    assert level(p, None, "GET", "/api/v1/namespaces/a/secrets/s") == "None"
    assert level(p, None, "GET", "/api/v1/namespaces/kube-system/pods") == "Request"
    assert level(p, None, "POST", "/apis/apps/v1/namespaces/a/deployments") == "Metadata"
    assert level(p, None, "POST", "/apis/batch/v1/namespaces/a/jobs") == "None"
    assert level(p, None, "GET", "/metrics") == "Metadata"
    assert level(p, None, "GET", "/logs/kube.log") == "Metadata"
    assert level(p, None, "GET", "/logs") == "None"
    # A resource rule never matches a non-resource request and the other way round.
    assert level(p, None, "GET", "/apis/apps") == "None"


def test_resource_patterns() -> None:
    p = policy("""
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
omitManagedFields: true
rules:
  - level: None
    resources: [{group: "", resources: ["pods/log"]}]
  - level: Request
    resources: [{group: "", resources: ["*/status"]}]
  - level: RequestResponse
    resources: [{group: "", resources: ["configmaps"], resourceNames: ["special"]}]
    omitStages: [ResponseComplete]
    omitManagedFields: false
  - level: Metadata
    resources: [{group: "*", resources: ["nodes/*"]}]
""")
    pods = "/api/v1/namespaces/a/pods/p"
    assert level(p, None, "GET", pods + "/log") == "None"
    assert level(p, None, "PUT", pods + "/status") == "Request"
    assert level(p, None, "PUT", "/api/v1/nodes/n/status") == "Request"
    assert level(p, None, "GET", "/api/v1/nodes/n/proxy") == "Metadata"
    # As upstream's checker, "nodes/*" matches the resource itself too.
    assert level(p, None, "GET", "/api/v1/nodes/n") == "Metadata"
    assert level(p, None, "GET", "/api/v1/namespaces/a/services/s") == "None"
    assert level(p, None, "GET", pods) == "None"
    special = p.evaluate(None, request_info("GET", "/api/v1/namespaces/a/configmaps/special"))
    assert special == audit.RequestAuditConfig(
        Level.REQUEST_RESPONSE, frozenset({"RequestReceived", "ResponseComplete"}), False)
    other = p.evaluate(None, request_info("PUT", pods + "/status"))
    assert other.omit_managed_fields is True and other.omit_stages == {"RequestReceived"}
    assert level(p, None, "GET", "/api/v1/namespaces/a/configmaps/plain") == "None"


def test_default_policy_is_quiet_about_probes_and_event_reads() -> None:
    p = policy(audit.DEFAULT_POLICY)
    assert level(p, None, "GET", "/readyz") == "None"
    assert level(p, None, "GET", "/livez/etcd") == "None"
    assert level(p, ALICE, "GET", "/api/v1/namespaces/a/events?watch=true") == "None"
    assert level(p, ALICE, "POST", "/api/v1/namespaces/a/events") == "Metadata"
    assert level(p, ALICE, "GET", "/api/v1/namespaces/a/pods") == "Metadata"
    assert level(p, ALICE, "GET", "/openapi/v2") == "Metadata"


# --- events through the filter ----------------------------------------------------------------


class ListSink(audit.Sink):
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def write(self, line: bytes) -> None:
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        self.events.append(orjson.loads(line))


@web.middleware
async def fake_access(request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                      ) -> web.StreamResponse:
    """Stands for access_filter: X-User authenticates, X-As impersonates, X-Deny forbids."""
    name = request.headers.get("X-User")
    if name is None:
        raise errors.StatusError("Unauthorized", code=401, reason="Unauthorized")
    request[AUTHENTICATED_USER] = UserInfo(name, groups=("system:authenticated",))
    if "X-As" in request.headers:
        request[IMPERSONATED_USER] = UserInfo(request.headers["X-As"])
    if "X-Deny" in request.headers:
        request[AUTHORIZATION_DECISION] = ("forbid", "")
        raise errors.StatusError(f'configmaps is forbidden: User "{name}" cannot create',
                                 code=403, reason="Forbidden",
                                 details={"kind": "configmaps"})
    request[AUTHORIZATION_DECISION] = ("allow", "RBAC: allowed by ClusterRoleBinding \"x\"")
    return await handler(request)


@web.middleware
async def statuses(request: web.Request,
                   handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                   ) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.StatusError as e:
        return web.json_response(e.status(), status=e.code)


async def create(request: web.Request) -> web.Response:
    body = orjson.loads(await read_body(request))
    body["metadata"]["uid"] = "uid-1"
    body["metadata"]["managedFields"] = [{"manager": "test"}]
    return web.json_response(body, status=201)


async def watch(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    await resp.prepare(request)
    await resp.write(b'{"type":"ADDED"}\n')
    return resp


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def moved(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("/elsewhere")


POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    nonResourceURLs: ["/healthz"]
  - level: RequestResponse
    namespaces: ["full"]
    omitManagedFields: true
  - level: Request
    resources: [{group: "", resources: ["configmaps"]}]
  - level: Metadata
"""


@pytest.fixture
async def served() -> AsyncIterator[tuple[TestClient[web.Request, web.Application], ListSink]]:
    sink = ListSink()
    app = web.Application(middlewares=[audit.audit_filter, statuses, fake_access])
    app.on_response_prepare.append(audit.on_response_prepare)
    app[audit.AUDITOR] = audit.Auditor(policy(POLICY), sink)
    app.router.add_post("/api/v1/namespaces/{ns}/configmaps", create)
    app.router.add_get("/api/v1/namespaces/{ns}/configmaps", watch)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/moved", moved)
    async with TestClient(TestServer(app)) as client:
        yield client, sink


CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm1"},
      "data": {"k": "v"}}


async def test_request_level_records_the_request_object(served: Any) -> None:
    client, sink = served
    resp = await client.post("/api/v1/namespaces/a/configmaps", json=CM,
                             headers={"X-User": "alice", "User-Agent": "kubectl/v1.30"})
    assert resp.status == 201
    received, complete = sink.events
    assert resp.headers["Audit-ID"] == complete["auditID"] == received["auditID"]
    assert re.fullmatch(r"[0-9a-f-]{36}", complete["auditID"])
    assert received["stage"] == "RequestReceived"
    assert received["stageTimestamp"] == received["requestReceivedTimestamp"]
    assert "annotations" not in received and "responseStatus" not in received
    assert "requestObject" not in received
    assert complete["stage"] == "ResponseComplete"
    assert {k: complete[k] for k in ("kind", "apiVersion", "level", "requestURI", "verb",
                                     "user", "sourceIPs", "userAgent", "objectRef",
                                     "responseStatus", "requestObject", "annotations")} == {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Request",
        "requestURI": "/api/v1/namespaces/a/configmaps", "verb": "create",
        "user": {"username": "alice", "groups": ["system:authenticated"]},
        "sourceIPs": ["127.0.0.1"], "userAgent": "kubectl/v1.30",
        # The create's body names the object, as upstream's LogRequestObject does.
        "objectRef": {"resource": "configmaps", "namespace": "a", "name": "cm1",
                      "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201},
        "requestObject": CM,
        "annotations": {"authorization.k8s.io/decision": "allow",
                        "authorization.k8s.io/reason":
                            "RBAC: allowed by ClusterRoleBinding \"x\""}}
    assert "responseObject" not in complete
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", complete["stageTimestamp"])
    assert list(complete)[:5] == ["kind", "apiVersion", "level", "auditID", "stage"]


async def test_request_response_records_the_response_without_managed_fields(
        served: Any) -> None:
    client, sink = served
    resp = await client.post("/api/v1/namespaces/full/configmaps", json=CM,
                             headers={"X-User": "alice", "Audit-ID": "mine-1",
                                      "X-Forwarded-For": "10.0.0.7, 10.0.0.8"})
    assert resp.status == 201 and resp.headers["Audit-ID"] == "mine-1"
    complete = sink.events[-1]
    assert complete["auditID"] == "mine-1"
    assert complete["level"] == "RequestResponse"
    assert complete["sourceIPs"] == ["10.0.0.7", "10.0.0.8", "127.0.0.1"]
    assert complete["responseObject"]["metadata"] == {"name": "cm1", "uid": "uid-1"}
    assert complete["requestObject"] == CM


async def test_denied_and_unauthenticated_requests_are_recorded(served: Any) -> None:
    client, sink = served
    resp = await client.post("/api/v1/namespaces/a/configmaps", json=CM,
                             headers={"X-User": "mallory", "X-Deny": "1"})
    assert resp.status == 403
    received, complete = sink.events
    assert received["stage"] == "RequestReceived" and "annotations" not in received
    assert complete["stage"] == "ResponseComplete"
    assert complete["user"]["username"] == "mallory" and complete["verb"] == "create"
    assert complete["objectRef"]["resource"] == "configmaps"
    assert complete["responseStatus"] == {
        "metadata": {}, "status": "Failure",
        "message": 'configmaps is forbidden: User "mallory" cannot create',
        "reason": "Forbidden", "details": {"kind": "configmaps"}, "code": 403}
    assert complete["annotations"] == {"authorization.k8s.io/decision": "forbid"}
    sink.events.clear()
    resp = await client.get("/api/v1/namespaces/a/configmaps?watch=1")
    assert resp.status == 401
    # Upstream's failed-authentication event: ResponseStarted only, an empty user.
    (event,) = sink.events
    assert event["stage"] == "ResponseStarted" and event["user"] == {}
    assert event["verb"] == "watch"
    assert event["responseStatus"]["code"] == 401
    assert event["responseStatus"]["reason"] == "Unauthorized"
    assert resp.headers["Audit-ID"] == event["auditID"]


async def test_watch_records_response_started_then_complete(served: Any) -> None:
    client, sink = served
    resp = await client.get("/api/v1/namespaces/a/configmaps?watch=true",
                            headers={"X-User": "bob", "X-As": "carol"})
    assert await resp.read() == b'{"type":"ADDED"}\n'
    assert [e["stage"] for e in sink.events] == ["RequestReceived", "ResponseStarted",
                                                 "ResponseComplete"]
    received, started, complete = sink.events
    assert resp.headers["Audit-ID"] == started["auditID"]
    assert "impersonatedUser" not in received
    assert started["impersonatedUser"] == {"username": "carol"}
    assert list(started).index("impersonatedUser") == list(started).index("user") + 1
    assert started["responseStatus"] == complete["responseStatus"] == {"metadata": {},
                                                                        "code": 200}


async def test_none_level_and_redirects(served: Any) -> None:
    client, sink = served
    resp = await client.get("/healthz", headers={"X-User": "alice"})
    assert resp.status == 200 and resp.headers["Audit-ID"]
    assert sink.events == []
    resp = await client.get("/moved", headers={"X-User": "alice"}, allow_redirects=False)
    assert resp.status == 301 and resp.headers["Audit-ID"]
    assert [e["stage"] for e in sink.events] == ["RequestReceived", "ResponseComplete"]
    assert sink.events[-1]["responseStatus"] == {"metadata": {}, "code": 301}
    assert sink.events[-1]["verb"] == "get" and "objectRef" not in sink.events[-1]


async def test_no_auditor_still_gives_audit_ids() -> None:
    app = web.Application(middlewares=[audit.audit_filter])
    app.on_response_prepare.append(audit.on_response_prepare)
    app.router.add_get("/healthz", healthz)
    async with TestClient(TestServer(app)) as client:
        one = await client.get("/healthz")
        two = await client.get("/healthz")
        assert one.headers["Audit-ID"] != two.headers["Audit-ID"]


# --- the writer -------------------------------------------------------------------------------


def test_writer_rotates_by_size_and_keeps_max_backups(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "audit.log"
    writer = LogWriter(str(path), max_size_mb=1, max_backups=2)
    writer.max_bytes = 100  # a megabyte is too slow for a unit test
    assert path.exists() and path.stat().st_mode & 0o777 == 0o600
    lines = [f'{{"n":{i:03d},"pad":"{"x" * 20}"}}\n'.encode() for i in range(12)]
    for line in lines:
        writer.write(line)
    assert writer.flush(5)
    writer.close()
    backups = sorted(tmp_path.joinpath("logs").glob("audit-*.log"))
    assert len(backups) == 2
    for backup in backups:
        assert re.fullmatch(r"audit-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}\.log", backup.name)
    kept = b"".join(b.read_bytes() for b in backups) + path.read_bytes()
    # Every file stays under the limit; the oldest lines went with the pruned backups.
    assert all(f.stat().st_size <= 100 for f in [*backups, path])
    assert kept == b"".join(lines[-len(kept) // len(lines[0]):])
    assert path.read_bytes().endswith(lines[-1])


def test_writer_appends_across_restarts_and_ignores_writes_after_close(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(b'{"old":1}\n')
    writer = LogWriter(str(path))
    writer.write(b'{"new":1}\n')
    writer.close()
    writer.write(b'{"late":1}\n')  # after close: ignored, no error
    assert path.read_bytes() == b'{"old":1}\n{"new":1}\n'
    assert [e for e in audit.iter_events(path)] == [{"old": 1}, {"new": 1}]


def test_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from apiserver.options import parse_args
    good = tmp_path / "policy.yaml"
    good.write_text(audit.DEFAULT_POLICY)
    opts = parse_args(["--audit-policy-file", str(good), "--audit-log-path", "-",
                       "--audit-log-maxsize", "5", "--audit-log-maxbackup", "3"])
    assert (opts.audit_policy_file, opts.audit_log_path, opts.audit_log_maxsize,
            opts.audit_log_maxbackup, opts.audit_log_maxage) == (str(good), "-", 5, 3, 0)
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: All}]\n")
    with pytest.raises(SystemExit):
        parse_args(["--audit-policy-file", str(bad)])
    assert "--audit-policy-file: rules[0].level: Unsupported value" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--audit-log-maxsize", "-1"])
