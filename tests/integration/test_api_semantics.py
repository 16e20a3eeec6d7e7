"""REST semantics of the apiserver against a real etcd: CRUD, concurrency, metadata,
selectors, pagination, deletion, subresources and errors."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aiohttp
import pytest

from tests.conftest import ApiServer

pytestmark = pytest.mark.asyncio


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def pod(name: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


class Api:
    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base, self.s = base, session

    async def req(self, method: str, path: str, body: Any = None,
                  ctype: str = "application/json", **params: Any) -> tuple[int, Any]:
        data = None if body is None else (body if isinstance(body, bytes | str)
                                          else json.dumps(body))
        async with self.s.request(method, self.base + path, data=data, params=params or None,
                                  headers={"Content-Type": ctype}) as r:
            text = await r.text()
            try:
                return r.status, json.loads(text)
            except ValueError:
                return r.status, text


@pytest.fixture
async def api(apiserver: ApiServer) -> Any:
    async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=apiserver.tls())) as s:
        yield Api(apiserver.url, s)


@pytest.fixture
async def ns(api: Api) -> Any:
    name = uniq("t")
    code, _ = await api.req("POST", "/api/v1/namespaces",
                            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert code == 201
    yield name


async def test_system_namespaces_exist(api: Api) -> None:
    code, body = await api.req("GET", "/api/v1/namespaces")
    assert code == 200
    names = {i["metadata"]["name"] for i in body["items"]}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names
    assert body["kind"] == "NamespaceList"


async def test_create_get_metadata_and_defaults(api: Api, ns: str) -> None:
    code, created = await api.req("POST", f"/api/v1/namespaces/{ns}/pods", pod("p1"))
    assert code == 201, created
    md = created["metadata"]
    assert md["namespace"] == ns and md["uid"] and md["creationTimestamp"].endswith("Z")
    assert int(md["resourceVersion"]) > 0
    spec = created["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["containers"][0]["imagePullPolicy"] == "Always"
    assert created["status"]["phase"] == "Pending"
    # DefaultTolerationSeconds admission
    assert {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
            "effect": "NoExecute", "tolerationSeconds": 300} in spec["tolerations"]
    assert {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
            "effect": "NoExecute", "tolerationSeconds": 300} in spec["tolerations"]
    code, got = await api.req("GET", f"/api/v1/namespaces/{ns}/pods/p1")
    assert code == 200 and got["metadata"]["uid"] == md["uid"]
    assert got["metadata"]["resourceVersion"] == md["resourceVersion"]


async def test_already_exists_and_not_found(api: Api, ns: str) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}
    assert (await api.req("POST", f"/api/v1/namespaces/{ns}/configmaps", cm))[0] == 201
    code, body = await api.req("POST", f"/api/v1/namespaces/{ns}/configmaps", cm)
    assert code == 409 and body["reason"] == "AlreadyExists"
    assert body["message"] == 'configmaps "a" already exists'
    code, body = await api.req("GET", f"/api/v1/namespaces/{ns}/configmaps/zzz")
    assert code == 404 and body["reason"] == "NotFound" and body["kind"] == "Status"
    assert body["message"] == 'configmaps "zzz" not found'
    code, body = await api.req("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/zzz")
    assert code == 404 and body["message"] == 'deployments.apps "zzz" not found'


async def test_unknown_paths_are_404_with_empty_details(api: Api, ns: str) -> None:
    """Upstream's 404 for what no handler serves carries `details: {}`; kubectl debug
    dereferences it (and panicked without it)."""
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"}}
    assert (await api.req("POST", f"/api/v1/namespaces/{ns}/configmaps", cm))[0] == 201
    for path in (f"/api/v1/namespaces/{ns}/configmaps/d/nosuchsub", "/api/v1/nosuchthings",
                 "/apis/nosuch.group/v1/things"):
        code, body = await api.req("PATCH", path, {}, "application/strategic-merge-patch+json")
        assert code == 404, (path, body)
        assert body["reason"] == "NotFound" and body["details"] == {}, (path, body)
        assert body["message"] == "the server could not find the requested resource"


async def test_ephemeral_containers_subresource(api: Api, ns: str) -> None:
    """pods/ephemeralcontainers adds ephemeral containers (defaulted, validated); they are
    never removed or changed, and the pod itself cannot change them."""
    base = f"/api/v1/namespaces/{ns}/pods"
    assert (await api.req("POST", base, pod("dbg")))[0] == 201
    sub = f"{base}/dbg/ephemeralcontainers"
    code, got = await api.req("GET", sub)
    assert code == 200 and got["kind"] == "Pod" and "ephemeralContainers" not in got["spec"]
    smp = "application/strategic-merge-patch+json"
    debugger = {"name": "debugger", "image": "busybox", "stdin": True, "tty": True}
    code, got = await api.req("PATCH", sub, {"spec": {"ephemeralContainers": [debugger]}}, smp)
    assert code == 200, got
    [eph] = got["spec"]["ephemeralContainers"]
    assert eph["name"] == "debugger" and eph["terminationMessagePolicy"] == "File"
    assert eph["imagePullPolicy"] == "Always"  # defaulted as any container (tag "latest")
    # Removing or changing it: Forbidden.
    code, body = await api.req("PATCH", sub, [{"op": "remove", "path":
                                                "/spec/ephemeralContainers/0"}],
                               "application/json-patch+json")
    assert code == 422 and 'existing ephemeral containers "debugger" may not be removed' \
        in body["message"], body
    code, body = await api.req("PATCH", sub, [{"op": "replace", "path":
                                                "/spec/ephemeralContainers/0/image",
                                                "value": "other"}],
                               "application/json-patch+json")
    assert code == 422 and "may not be changed" in body["message"], body
    # Probes are not allowed on ephemeral containers.
    probed = {"name": "p", "image": "busybox",
              "readinessProbe": {"exec": {"command": ["true"]}}}
    code, body = await api.req("PATCH", sub, {"spec": {"ephemeralContainers": [probed]}}, smp)
    assert code == 422 and "cannot be set for an Ephemeral Container" in body["message"], body
    # Only the subresource writes them: other fields sent to it are ignored, and a label
    # patch of the pod keeps them.
    code, got = await api.req("PATCH", sub, {"metadata": {"labels": {"x": "y"}}}, smp)
    assert code == 200 and "x" not in (got["metadata"].get("labels") or {})
    code, got = await api.req("PATCH", f"{base}/dbg", {"metadata": {"labels": {"x": "y"}}},
                              "application/merge-patch+json")
    assert code == 200 and [c["name"] for c in got["spec"]["ephemeralContainers"]] == [
        "debugger"]


async def test_missing_namespace_is_404(api: Api) -> None:
    code, body = await api.req("POST", "/api/v1/namespaces/does-not-exist/configmaps",
                               {"metadata": {"name": "x"}})
    assert code == 404 and body["message"] == 'namespaces "does-not-exist" not found'


async def test_update_conflict_on_stale_version(api: Api, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    _, cm = await api.req("POST", path, {"metadata": {"name": "c"}, "data": {"a": "1"}})
    stale = json.loads(json.dumps(cm))
    cm["data"]["a"] = "2"
    code, updated = await api.req("PUT", f"{path}/c", cm)
    assert code == 200 and updated["data"]["a"] == "2"
    assert int(updated["metadata"]["resourceVersion"]) > int(stale["metadata"]["resourceVersion"])
    stale["data"]["a"] = "3"
    code, body = await api.req("PUT", f"{path}/c", stale)
    assert code == 409 and body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]


async def test_concurrent_updates_are_serialised(api: Api, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    await api.req("POST", path, {"metadata": {"name": "counter"}, "data": {}})

    async def add(i: int) -> int:
        code, _ = await api.req("PATCH", f"{path}/counter", {"data": {f"k{i}": str(i)}},
                                ctype="application/merge-patch+json")
        return code

    codes = await asyncio.gather(*(add(i) for i in range(20)))
    assert codes == [200] * 20
    _, cm = await api.req("GET", f"{path}/counter")
    assert len(cm["data"]) == 20


async def test_generation_bumps_on_spec_only(api: Api, ns: str) -> None:
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"selector": {"matchLabels": {"app": "d"}},
                    "template": {"metadata": {"labels": {"app": "d"}},
                                 "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}}
    code, created = await api.req("POST", path, dep)
    assert code == 201, created
    assert created["metadata"]["generation"] == 1
    assert created["spec"]["replicas"] == 1
    assert created["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": "25%",
                                                             "maxSurge": "25%"}
    assert created["spec"]["revisionHistoryLimit"] == 10
    _, labelled = await api.req("PATCH", f"{path}/d", {"metadata": {"labels": {"x": "y"}}},
                                ctype="application/merge-patch+json")
    assert labelled["metadata"]["generation"] == 1
    _, scaled = await api.req("PATCH", f"{path}/d", {"spec": {"replicas": 3}},
                              ctype="application/strategic-merge-patch+json")
    assert scaled["metadata"]["generation"] == 2
    # status writes through the main resource are ignored
    _, same = await api.req("PATCH", f"{path}/d", {"status": {"replicas": 9}},
                            ctype="application/merge-patch+json")
    assert "replicas" not in same.get("status", {})
    code, st = await api.req("PATCH", f"{path}/d/status", {"status": {"replicas": 9}},
                             ctype="application/merge-patch+json")
    assert code == 200 and st["status"]["replicas"] == 9 and st["metadata"]["generation"] == 2


async def test_scale_subresource(api: Api, ns: str) -> None:
    path = f"/apis/apps/v1/namespaces/{ns}/replicasets"
    rs = {"metadata": {"name": "r"},
          "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "r"}},
                   "template": {"metadata": {"labels": {"app": "r"}},
                                "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}}
    assert (await api.req("POST", path, rs))[0] == 201
    code, scale = await api.req("GET", f"{path}/r/scale")
    assert code == 200 and scale["kind"] == "Scale" and scale["spec"]["replicas"] == 2
    assert scale["status"]["selector"] == "app=r"
    code, scale = await api.req("PATCH", f"{path}/r/scale", {"spec": {"replicas": 5}},
                                ctype="application/merge-patch+json")
    assert code == 200 and scale["spec"]["replicas"] == 5
    _, got = await api.req("GET", f"{path}/r")
    assert got["spec"]["replicas"] == 5


async def test_validation_names_every_bad_field(api: Api, ns: str) -> None:
    bad = {"metadata": {"name": "Bad_Name"},
           "spec": {"containers": [{"name": "c"}, {"name": "c", "image": "x",
                                                   "ports": [{"containerPort": 70000}]}]}}
    code, body = await api.req("POST", f"/api/v1/namespaces/{ns}/pods", bad)
    assert code == 422 and body["reason"] == "Invalid"
    fields = {c["field"] for c in body["details"]["causes"]}
    assert "metadata.name" in fields
    assert "spec.containers[0].image" in fields
    assert "spec.containers[1].name" in fields
    assert "spec.containers[1].ports[0].containerPort" in fields
    code, _ = await api.req("GET", f"/api/v1/namespaces/{ns}/pods/Bad_Name")
    assert code == 404


async def test_error_codes(api: Api, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    code, body = await api.req("POST", path, "{not json")
    assert code == 400 and body["kind"] == "Status"
    code, body = await api.req("POST", path, {"metadata": {"name": "x"}}, ctype="text/csv")
    assert code == 415
    code, body = await api.req("POST", path, b'{"metadata":{"name":"big"},"data":{"a":"'
                               + b"x" * (3 * 1024 * 1024 + 10) + b'"}}')
    assert code == 413
    code, body = await api.req("GET", "/api/v1/nosuchthings")
    assert code == 404
    code, body = await api.req("PUT", "/api/v1/namespaces")
    assert code == 405
    code, body = await api.req("PATCH", f"{path}/nothing", {"data": {}},
                               ctype="application/merge-patch+json")
    assert code == 404


async def test_label_and_field_selectors(api: Api, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/pods"
    for name, labels in (("a", {"app": "web", "tier": "fe"}), ("b", {"app": "web"}),
                         ("c", {"app": "db"})):
        assert (await api.req("POST", path, pod(name, labels)))[0] == 201

    async def names(**params: str) -> list[str]:
        code, body = await api.req("GET", path, **params)
        assert code == 200, body
        return sorted(i["metadata"]["name"] for i in body["items"])

    assert await names(labelSelector="app=web") == ["a", "b"]
    assert await names(labelSelector="app!=web") == ["c"]
    assert await names(labelSelector="app in (db,web),tier") == ["a"]
    assert await names(labelSelector="!tier") == ["b", "c"]
    assert await names(labelSelector="app notin (web)") == ["c"]
    assert await names(fieldSelector="metadata.name=b") == ["b"]
    assert await names(fieldSelector="spec.nodeName=") == ["a", "b", "c"]
    assert await names(fieldSelector="status.phase=Running") == []
    code, _ = await api.req("GET", path, labelSelector="app in (")
    assert code == 400
    code, _ = await api.req("GET", path, fieldSelector="spec.bogus=1")
    assert code == 400


async def test_pagination_with_continue(api: Api, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    for i in range(7):
        await api.req("POST", path, {"metadata": {"name": f"cm{i}"}})
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        params = {"limit": "3"}
        if token:
            params["continue"] = token
        code, body = await api.req("GET", path, **params)
        assert code == 200
        pages += 1
        seen += [i["metadata"]["name"] for i in body["items"]]
        token = body["metadata"].get("continue", "")
        if not token:
            break
    assert pages == 3 and seen == [f"cm{i}" for i in range(7)]
    code, body = await api.req("GET", path, limit="2", **{"continue": "garbage!"})
    assert code == 400


async def test_all_namespaces_list(api: Api, ns: str) -> None:
    await api.req("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "allns"}})
    code, body = await api.req("GET", "/api/v1/configmaps")
    assert code == 200
    assert any(i["metadata"]["name"] == "allns" and i["metadata"]["namespace"] == ns
               for i in body["items"])


async def test_graceful_pod_deletion_and_finalizers(api: Api, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/pods"
    # Unbound pod: removed at once.
    await api.req("POST", path, pod("unbound"))
    code, _ = await api.req("DELETE", f"{path}/unbound")
    assert code == 200
    assert (await api.req("GET", f"{path}/unbound"))[0] == 404
    # Bound pod: marked, stays until confirmed with grace 0.
    await api.req("POST", path, pod("bound", nodeName="node-1"))
    code, marked = await api.req("DELETE", f"{path}/bound")
    assert code == 202
    assert marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 30
    assert (await api.req("GET", f"{path}/bound"))[0] == 200
    code, _ = await api.req("DELETE", f"{path}/bound", {"gracePeriodSeconds": 0})
    assert code == 200
    assert (await api.req("GET", f"{path}/bound"))[0] == 404
    # Finalizer: stays marked until the finalizer is removed.
    cm_path = f"/api/v1/namespaces/{ns}/configmaps"
    await api.req("POST", cm_path, {"metadata": {"name": "f", "finalizers": ["example.com/x"]}})
    code, marked = await api.req("DELETE", f"{cm_path}/f")
    assert code == 202 and marked["metadata"]["deletionTimestamp"]
    code, _ = await api.req("PATCH", f"{cm_path}/f", {"metadata": {"finalizers": None}},
                            ctype="application/merge-patch+json")
    assert code == 200
    assert (await api.req("GET", f"{cm_path}/f"))[0] == 404


async def test_binding_subresource(api: Api, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/pods"
    await api.req("POST", path, pod("tobind"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "tobind"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-7"}}
    code, _ = await api.req("POST", f"{path}/tobind/binding", binding)
    assert code == 201
    _, got = await api.req("GET", f"{path}/tobind")
    assert got["spec"]["nodeName"] == "node-7"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True"
               for c in got["status"]["conditions"])
    code, _ = await api.req("POST", f"{path}/tobind/binding", binding)
    assert code == 409


async def test_dry_run_persists_nothing(api: Api, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    code, body = await api.req("POST", path + "?dryRun=All", {"metadata": {"name": "dry"}})
    assert code == 201 and body["metadata"]["name"] == "dry"
    assert (await api.req("GET", f"{path}/dry"))[0] == 404
    code, _ = await api.req("POST", path + "?dryRun=Bogus", {"metadata": {"name": "dry"}})
    assert code == 400


async def test_generate_name(api: Api, ns: str) -> None:
    code, body = await api.req("POST", f"/api/v1/namespaces/{ns}/configmaps",
                               {"metadata": {"generateName": "gen-"}})
    assert code == 201
    name = body["metadata"]["name"]
    assert name.startswith("gen-") and len(name) == len("gen-") + 5


async def test_terminating_namespace_refuses_creates(api: Api) -> None:
    name = uniq("term")
    await api.req("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    code, body = await api.req("DELETE", f"/api/v1/namespaces/{name}")
    assert code in (200, 202)
    code, got = await api.req("GET", f"/api/v1/namespaces/{name}")
    assert got["status"]["phase"] == "Terminating"
    code, body = await api.req("POST", f"/api/v1/namespaces/{name}/configmaps",
                               {"metadata": {"name": "x"}})
    assert code == 403 and body["reason"] == "Forbidden"
    assert "being terminated" in body["message"]
    # Updating a terminating namespace does not remove it while spec.finalizers remain.
    code, _ = await api.req("PATCH", f"/api/v1/namespaces/{name}",
                            {"metadata": {"labels": {"x": "y"}}},
                            ctype="application/merge-patch+json")
    assert code == 200
    assert (await api.req("GET", f"/api/v1/namespaces/{name}"))[0] == 200


async def read_events(resp: aiohttp.ClientResponse, n: int, timeout: float = 5.0
                      ) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    async def go() -> None:
        while len(out) < n:
            line = await resp.content.readline()
            if not line:
                return
            out.append(json.loads(line))

    await asyncio.wait_for(go(), timeout)
    return out


async def test_watch_from_resource_version_in_order(api: Api, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    _, listed = await api.req("GET", path)
    rv = listed["metadata"]["resourceVersion"]
    async with api.s.get(api.base + path, params={"watch": "true", "resourceVersion": rv,
                                                  "timeoutSeconds": "10"}) as resp:
        assert resp.status == 200
        await api.req("POST", path, {"metadata": {"name": "w1"}, "data": {"a": "1"}})
        await api.req("PATCH", f"{path}/w1", {"data": {"a": "2"}},
                      ctype="application/merge-patch+json")
        await api.req("DELETE", f"{path}/w1")
        events = await read_events(resp, 3)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3
    assert events[1]["object"]["data"] == {"a": "2"}


async def test_watch_selector_transitions_and_bookmarks(api: Api, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    await api.req("POST", path, {"metadata": {"name": "sel", "labels": {"on": "no"}}})
    _, listed = await api.req("GET", path)
    rv = listed["metadata"]["resourceVersion"]
    async with api.s.get(api.base + path, params={
            "watch": "1", "resourceVersion": rv, "labelSelector": "on=yes",
            "timeoutSeconds": "10"}) as resp:
        await api.req("PATCH", f"{path}/sel", {"metadata": {"labels": {"on": "yes"}}},
                      ctype="application/merge-patch+json")
        await api.req("PATCH", f"{path}/sel", {"metadata": {"labels": {"on": "no"}}},
                      ctype="application/merge-patch+json")
        events = await read_events(resp, 2)
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]


async def test_watch_without_version_sends_current_state(api: Api, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    await api.req("POST", path, {"metadata": {"name": "s1"}})
    await api.req("POST", path, {"metadata": {"name": "s2"}})
    async with api.s.get(api.base + path, params={"watch": "true",
                                                  "timeoutSeconds": "5"}) as resp:
        events = await read_events(resp, 2)
    assert sorted(e["object"]["metadata"]["name"] for e in events) == ["s1", "s2"]
    assert {e["type"] for e in events} == {"ADDED"}


async def test_watch_timeout_ends_stream(api: Api, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    _, listed = await api.req("GET", path)
    async with api.s.get(api.base + path, params={
            "watch": "true", "resourceVersion": listed["metadata"]["resourceVersion"],
            "timeoutSeconds": "1"}) as resp:
        body = await asyncio.wait_for(resp.read(), 5)
    assert body == b""


async def test_watch_too_old_version_is_410(etcd_server: Any, tmp_path: Any) -> None:
    from tests.conftest import start_apiserver, stop_process
    small = start_apiserver(etcd_server, tmp_path, "--default-watch-cache-size=5")
    try:
        async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=small.tls())) as s:
            api = Api(small.url, s)
            name = uniq("old")
            await api.req("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
            path = f"/api/v1/namespaces/{name}/configmaps"
            _, first = await api.req("POST", path, {"metadata": {"name": "c0"}})
            for i in range(1, 12):
                await api.req("POST", path, {"metadata": {"name": f"c{i}"}})
            async with s.get(small.url + path, params={
                    "watch": "true", "timeoutSeconds": "5",
                    "resourceVersion": first["metadata"]["resourceVersion"]}) as resp:
                events = await read_events(resp, 1)
    finally:
        stop_process(small.proc)
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"
    assert "too old resource version" in events[0]["object"]["message"]


async def test_discovery(api: Api) -> None:
    code, body = await api.req("GET", "/api/v1")
    assert code == 200
    by_name = {r["name"]: r for r in body["resources"]}
    assert by_name["pods"]["shortNames"] == ["po"] and "all" in by_name["pods"]["categories"]
    assert by_name["pods/status"]["verbs"] == ["get", "patch", "update"]
    code, groups = await api.req("GET", "/apis")
    names = {g["name"] for g in groups["groups"]}
    assert {"apps", "batch", "coordination.k8s.io", "discovery.k8s.io"} <= names
    code, apps = await api.req("GET", "/apis/apps/v1")
    assert {r["name"] for r in apps["resources"]} >= {"deployments", "deployments/scale"}
    code, version = await api.req("GET", "/version")
    assert version["major"] == "1" and version["minor"] == "32"


def svc(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}], **spec}}


async def test_cluster_ips_are_unique_under_concurrency_and_released(api: Api, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/services"
    results = await asyncio.gather(*(api.req("POST", path, svc(f"s{i}")) for i in range(20)))
    assert [code for code, _ in results] == [201] * 20
    ips = [body["spec"]["clusterIP"] for _, body in results]
    assert len(set(ips)) == 20
    assert all(ip.startswith("10.") for ip in ips)
    # A taken address is refused; a released one can be asked for again.
    code, body = await api.req("POST", path, svc("dup", clusterIP=ips[0]))
    assert code == 422 and "already allocated" in body["message"]
    assert (await api.req("DELETE", f"{path}/s0"))[0] == 200
    code, body = await api.req("POST", path, svc("again", clusterIP=ips[0]))
    assert code == 201 and body["spec"]["clusterIP"] == ips[0]
    code, body = await api.req("POST", path, svc("outside", clusterIP="192.168.77.1"))
    assert code == 422 and "not in the valid range" in body["message"]
    code, body = await api.req("POST", path, svc("headless", clusterIP="None"))
    assert code == 201 and body["spec"]["clusterIP"] == "None"


async def test_node_ports(api: Api, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/services"
    code, body = await api.req("POST", path, svc("np", type="NodePort"))
    assert code == 201
    port = body["spec"]["ports"][0]["nodePort"]
    assert 30000 <= port <= 32767
    code, body = await api.req("POST", path, svc("np2", type="NodePort",
                                                 ports=[{"port": 80, "nodePort": port}]))
    assert code == 422 and "already allocated" in body["message"]
    code, body = await api.req("POST", path, svc("np3", type="NodePort",
                                                 ports=[{"port": 80, "nodePort": 80}]))
    assert code == 422 and "valid range" in body["message"]
    # Switching to ClusterIP gives the port back.
    code, body = await api.req("PATCH", f"{path}/np", {"spec": {"type": "ClusterIP",
                               "ports": [{"port": 80, "nodePort": None}]}},
                               ctype="application/merge-patch+json")
    assert code == 200, body
    code, body = await api.req("POST", path, svc("np4", type="NodePort",
                                                 ports=[{"port": 80, "nodePort": port}]))
    assert code == 201, body


async def test_kubernetes_service_exists(api: Api) -> None:
    code, body = await api.req("GET", "/api/v1/namespaces/default/services/kubernetes")
    assert code == 200
    assert body["spec"]["clusterIP"] == "10.96.0.1"
    assert body["spec"]["ports"][0]["port"] == 443
