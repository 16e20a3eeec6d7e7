"""The audit log of a real apiserver (`--audit-policy-file`, `--audit-log-path`): what a
client's requests leave in the file, denied and unauthenticated ones included, and rotation.

Events are written by the apiserver's writer thread, so each check waits for its event with
`eventually` (keyed by the `Audit-ID` the response carries).
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.conftest import ApiServer, EtcdServer, client_tls, start_apiserver, stop_process
from tests.eventually import eventually

Obj = dict[str, Any]

POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/livez*", "/readyz*"]
  - level: None
    namespaces: ["quiet"]
  - level: RequestResponse
    namespaces: ["full"]
    omitManagedFields: true
  - level: Request
    resources: [{group: "", resources: ["configmaps"]}]
  - level: Metadata
"""


@pytest.fixture(scope="module")
def audited(etcd_server: EtcdServer, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[ApiServer, Path]]:
    work = tmp_path_factory.mktemp("audit")
    (work / "policy.yaml").write_text(POLICY)
    log = work / "audit.log"
    server = start_apiserver(etcd_server, work, "--audit-policy-file", str(work / "policy.yaml"),
                             "--audit-log-path", str(log))
    try:
        yield server, log
    finally:
        stop_process(server.proc)


def events(*paths: Path) -> list[Obj]:
    out = []
    for path in paths:
        if path.exists():
            out += [orjson.loads(line) for line in path.read_bytes().splitlines() if line]
    return out


async def request(server: ApiServer, method: str, path: str, tls: ssl.SSLContext,
                  body: Obj | None = None, headers: dict[str, str] | None = None
                  ) -> tuple[int, Any, str]:
    async with aiohttp.ClientSession() as session, session.request(
            method, server.url + path, json=body, ssl=tls, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers["Audit-ID"]


async def event_of(log: Path, audit_id: str, stage: str = "ResponseComplete") -> Obj:
    async def found() -> Obj | None:
        return next((e for e in events(log) if e["auditID"] == audit_id and
                     e["stage"] == stage), None)
    event: Obj = await eventually(found, what=f"the {stage} event of {audit_id}")
    return event


def namespace(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def configmap(name: str, data: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": data or {"k": "v"}}


async def ensure_namespace(server: ApiServer, name: str) -> None:
    code, _, _ = await request(server, "POST", "/api/v1/namespaces", server.tls(),
                               namespace(name))
    assert code in (201, 409)


async def test_denied_request_is_recorded_with_user_verb_resource_and_code(
        audited: tuple[ApiServer, Path]) -> None:
    server, log = audited
    user = f"nobody-{uuid.uuid4().hex[:6]}"
    code, body, audit_id = await request(
        server, "POST", "/api/v1/namespaces/default/configmaps",
        server.tls(user, ("team",)), configmap("denied"))
    assert code == 403, body
    event = await event_of(log, audit_id)
    assert event["user"] == {"username": user, "groups": ["team", "system:authenticated"]}
    assert event["verb"] == "create"
    # Refused before its body was read: as upstream, the object is not named.
    assert event["objectRef"] == {"resource": "configmaps", "namespace": "default",
                                  "apiVersion": "v1"}
    assert event["responseStatus"] == {"metadata": {}, "status": "Failure",
                                       "message": body["message"], "reason": "Forbidden",
                                       "details": body["details"], "code": 403}
    assert event["annotations"]["authorization.k8s.io/decision"] == "forbid"
    assert event["level"] == "Request" and event["sourceIPs"] == ["127.0.0.1"]


async def test_unauthenticated_request_is_recorded(audited: tuple[ApiServer, Path]) -> None:
    server, log = audited
    code, body, audit_id = await request(
        server, "GET", "/api/v1/namespaces/default/pods", client_tls(server.pki.ca_cert),
        headers={"Authorization": "Bearer not-a-token"})
    assert code == 401, body
    event = await event_of(log, audit_id, "ResponseStarted")
    assert event["user"] == {} and event["verb"] == "list"
    assert event["objectRef"] == {"resource": "pods", "namespace": "default",
                                  "apiVersion": "v1"}
    assert event["responseStatus"] == {"metadata": {}, "status": "Failure",
                                       "message": "Unauthorized", "reason": "Unauthorized",
                                       "code": 401}
    assert "annotations" not in event
    assert not [e for e in events(log) if e["auditID"] == audit_id and
                e["stage"] == "ResponseComplete"]


async def test_levels_decide_what_is_recorded(audited: tuple[ApiServer, Path]) -> None:
    server, log = audited
    admin = server.tls()
    for ns in ("quiet", "full"):
        await ensure_namespace(server, ns)
    name = f"cm-{uuid.uuid4().hex[:6]}"
    # Request: the request object, not the response.
    code, created, audit_id = await request(
        server, "POST", "/api/v1/namespaces/default/configmaps", admin, configmap(name))
    assert code == 201, created
    event = await event_of(log, audit_id)
    assert event["level"] == "Request"
    assert event["requestObject"] == configmap(name)
    assert "responseObject" not in event
    assert event["objectRef"]["name"] == name
    assert event["user"]["username"] == "kubernetes-admin"
    assert "system:masters" in event["user"]["groups"]
    assert event["annotations"]["authorization.k8s.io/decision"] == "allow"
    assert event["responseStatus"] == {"metadata": {}, "code": 201}
    # RequestResponse: the response too, without managedFields (omitManagedFields).
    managed = configmap(name)
    managed["metadata"]["managedFields"] = [{"manager": "test", "operation": "Update",
                                             "apiVersion": "v1", "fieldsType": "FieldsV1",
                                             "fieldsV1": {"f:data": {}}}]
    code, created, audit_id = await request(
        server, "POST", "/api/v1/namespaces/full/configmaps", admin, managed)
    assert code == 201, created
    event = await event_of(log, audit_id)
    assert event["level"] == "RequestResponse"
    assert event["requestObject"] == configmap(name)
    assert event["responseObject"]["metadata"]["uid"] == created["metadata"]["uid"]
    assert "managedFields" not in event["responseObject"]["metadata"]
    # Metadata: neither object.
    code, _, audit_id = await request(server, "GET", "/api/v1/namespaces/default/pods",
                                      admin)
    assert code == 200
    event = await event_of(log, audit_id)
    assert event["level"] == "Metadata" and event["verb"] == "list"
    assert "requestObject" not in event and "responseObject" not in event
    # None: nothing at all, while a later request is recorded (so the writer has caught up).
    code, _, quiet_id = await request(
        server, "POST", "/api/v1/namespaces/quiet/configmaps", admin, configmap(name))
    assert code == 201
    code, _, after_id = await request(server, "GET", "/api/v1/namespaces/default", admin)
    assert code == 200
    await event_of(log, after_id)
    assert not [e for e in events(log) if e["auditID"] == quiet_id]
    assert not [e for e in events(log) if e["requestURI"].startswith("/readyz")]
    assert not [e for e in events(log) if e["stage"] == "RequestReceived"]


async def test_rotation_by_size(etcd_server: EtcdServer, tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY)
    log = tmp_path / "logs" / "audit.log"
    server = start_apiserver(etcd_server, tmp_path, "--audit-policy-file",
                             str(tmp_path / "policy.yaml"), "--audit-log-path", str(log),
                             "--audit-log-maxsize", "1", "--audit-log-maxbackup", "2")
    try:
        await ensure_namespace(server, "full")
        # At RequestResponse each create records its ~300 KB body twice: four of them pass
        # 1 MB twice over.
        big = "x" * 300_000
        ids = []
        for _ in range(4):
            code, _, audit_id = await request(
                server, "POST", "/api/v1/namespaces/full/configmaps", server.tls(),
                configmap(f"big-{uuid.uuid4().hex[:6]}", {"big": big}))
            assert code == 201
            ids.append(audit_id)

        def backups() -> list[Path]:
            return sorted(log.parent.glob("audit-*.log"))

        async def rotated() -> list[Path]:
            found = backups()
            complete = {e["auditID"] for e in events(*found, log)}
            return found if len(found) == 2 and ids[-1] in complete else []
        await eventually(rotated, what="two rotated audit logs")
        for path in [*backups(), log]:
            assert path.stat().st_size <= 1024 * 1024
            assert path.stat().st_mode & 0o777 == 0o600
        # The oldest file went (maxbackup 2); the newest events are all there, whole.
        kept = {e["auditID"] for e in events(*backups(), log)}
        assert set(ids[-2:]) <= kept
    finally:
        stop_process(server.proc)
