"""The apiserver driven by the official `kubernetes` Python client, as a user would drive it.

Every call goes through the generated client (typed models, its own serialisation, its own
choice of patch content type, its own watch decoder), so these tests catch wire-format
details that our own client would paper over: field names, date formats, Status bodies,
list metadata, and the shape of watch events.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from tests.conftest import ApiServer

# Every wait in this file is bounded by one of these.
WATCH_TIMEOUT_SECONDS = 5
CLIENT_TIMEOUT = (5, 10)  # (connect, read) seconds for urllib3


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def status_body(exc: ApiException) -> dict[str, Any]:
    """The metav1.Status an error response carries."""
    assert exc.body, f"error {exc.status} came without a body"
    body = json.loads(exc.body)
    assert body["kind"] == "Status", body
    assert body["apiVersion"] == "v1", body
    assert body["status"] == "Failure", body
    assert body["code"] == exc.status, body
    return body


def expect_error(status: int, reason: str, call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(ApiException) as info:
        call()
    assert info.value.status == status, (info.value.status, info.value.body)
    body = status_body(info.value)
    assert body["reason"] == reason, body
    return body


def raw(resp: Any) -> dict[str, Any]:
    """The JSON of a call made with _preload_content=False (no model deserialisation)."""
    assert 200 <= resp.status < 300, resp.status
    return json.loads(resp.data)


def meta(name: str, **labels: str) -> client.V1ObjectMeta:
    return client.V1ObjectMeta(name=name, labels=labels or None)


def container(name: str = "c", image: str = "busybox:1.36") -> client.V1Container:
    return client.V1Container(name=name, image=image)


def pod_template(labels: dict[str, str], restart_policy: str | None = None
                 ) -> client.V1PodTemplateSpec:
    return client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels=labels),
        spec=client.V1PodSpec(containers=[container()], restart_policy=restart_policy))


def deployment(name: str, replicas: int = 1) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        api_version="apps/v1", kind="Deployment", metadata=meta(name, **labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas, selector=client.V1LabelSelector(match_labels=labels),
            template=pod_template(labels)))


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kube(apiserver: ApiServer) -> Iterator[None]:
    config.load_kube_config(config_file=str(apiserver.kubeconfig))
    # The client waits forever unless a call passes _request_timeout: give every call that
    # does not (all but the watches) a bounded one, so a stuck server fails a test instead
    # of hanging it.
    original = client.rest.RESTClientObject.request

    def bounded(self: Any, method: str, url: str, headers: Any = None, body: Any = None,
                post_params: Any = None, _request_timeout: Any = None) -> Any:
        return original(self, method, url, headers, body, post_params,
                        _request_timeout or CLIENT_TIMEOUT)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(client.rest.RESTClientObject, "request", bounded)
        yield


@pytest.fixture
def v1(kube: None) -> client.CoreV1Api:
    return client.CoreV1Api()


@pytest.fixture
def apps(kube: None) -> client.AppsV1Api:
    return client.AppsV1Api()


@pytest.fixture
def batch(kube: None) -> client.BatchV1Api:
    return client.BatchV1Api()


@pytest.fixture
def coordination(kube: None) -> client.CoordinationV1Api:
    return client.CoordinationV1Api()


@pytest.fixture
def discovery_api(kube: None) -> client.DiscoveryV1Api:
    return client.DiscoveryV1Api()


@pytest.fixture
def ns(v1: client.CoreV1Api) -> Iterator[str]:
    name = uniq("oc")
    v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    try:
        v1.delete_namespace(name)
    except ApiException:
        pass


# -- the wire format this client speaks ---------------------------------------------------------


def test_bodies_without_content_type_are_json(apiserver: ApiServer) -> None:
    """This client (37.x) sends create and replace bodies as JSON with no Content-Type header
    at all. kube-apiserver takes a missing Content-Type as its first serializer, JSON
    (negotiation.NegotiateInputSerializerForMediaType), so every typed create must work."""
    import http.client
    import urllib.parse

    url = urllib.parse.urlsplit(apiserver.url)
    name = uniq("no-ctype")
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name}, "data": {"a": "1"}}).encode()

    def send(method: str, path: str, data: bytes | None) -> tuple[int, bytes]:
        conn = http.client.HTTPSConnection(url.hostname or "127.0.0.1", url.port, timeout=10,
                                           context=apiserver.tls())
        try:
            # exactly the headers the client sends: no Content-Type
            headers = {"Accept": "application/json"}
            if data is not None:
                headers["Content-Length"] = str(len(data))
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    status, answer = send("POST", "/api/v1/namespaces/default/configmaps", body)
    assert status == 201, (status, answer[:400])
    assert json.loads(answer)["data"] == {"a": "1"}
    created = json.loads(answer)
    created["data"] = {"a": "2"}
    status, answer = send("PUT", f"/api/v1/namespaces/default/configmaps/{name}",
                          json.dumps(created).encode())
    assert status == 200, (status, answer[:400])
    send("DELETE", f"/api/v1/namespaces/default/configmaps/{name}", None)


# -- namespaces -------------------------------------------------------------------------------


def test_namespace_create_read_list_delete(v1: client.CoreV1Api) -> None:
    name = uniq("ns")
    created = v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=name, labels={"team": "a"})))
    assert created.metadata.name == name and created.metadata.uid
    assert isinstance(created.metadata.creation_timestamp, dt.datetime)
    assert created.status.phase == "Active"
    assert created.spec.finalizers == ["kubernetes"]
    # Upstream labels every namespace with its own name.
    assert created.metadata.labels == {"team": "a", "kubernetes.io/metadata.name": name}

    got = v1.read_namespace(name)
    assert got.metadata.resource_version == created.metadata.resource_version

    listed = v1.list_namespace(label_selector=f"kubernetes.io/metadata.name={name}")
    assert [n.metadata.name for n in listed.items] == [name]
    assert listed.metadata.resource_version
    everything = {n.metadata.name for n in v1.list_namespace().items}
    assert {"default", "kube-system", "kube-public", "kube-node-lease", name} <= everything

    body = expect_error(409, "AlreadyExists", lambda: v1.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name))))
    assert body["message"] == f'namespaces "{name}" already exists'
    assert body["details"]["name"] == name and body["details"]["kind"] == "namespaces"

    # The namespace has the "kubernetes" finalizer: deletion marks it Terminating.
    deleted = v1.delete_namespace(name)
    assert deleted is not None
    after = v1.read_namespace(name)
    assert after.status.phase == "Terminating"
    assert after.metadata.deletion_timestamp is not None
    body = expect_error(403, "Forbidden", lambda: v1.create_namespaced_config_map(
        name, client.V1ConfigMap(metadata=meta("late"))))
    assert "because it is being terminated" in body["message"]

    body = expect_error(404, "NotFound", lambda: v1.read_namespace(uniq("missing")))
    assert body["message"].startswith('namespaces "missing-')


# -- configmaps: the full CRUD surface ----------------------------------------------------------


def test_configmap_crud_replace_patch_delete(v1: client.CoreV1Api, ns: str) -> None:
    cm = client.V1ConfigMap(metadata=meta("settings", app="web"), data={"a": "1"})
    created = v1.create_namespaced_config_map(ns, cm)
    assert created.kind == "ConfigMap" and created.api_version == "v1"
    assert created.metadata.namespace == ns
    assert created.data == {"a": "1"}
    rv0 = int(created.metadata.resource_version)

    got = v1.read_namespaced_config_map("settings", ns)
    assert got.metadata.uid == created.metadata.uid and got.data == {"a": "1"}

    # replace (PUT) with the version we read
    got.data["b"] = "2"
    replaced = v1.replace_namespaced_config_map("settings", ns, got)
    assert replaced.data == {"a": "1", "b": "2"}
    assert int(replaced.metadata.resource_version) > rv0
    assert replaced.metadata.uid == created.metadata.uid
    assert replaced.metadata.creation_timestamp == created.metadata.creation_timestamp

    # replace with the stale version: 409 Conflict
    got.data["c"] = "3"
    body = expect_error(409, "Conflict",
                        lambda: v1.replace_namespaced_config_map("settings", ns, got))
    assert body["message"].startswith('Operation cannot be fulfilled on configmaps "settings"')
    assert "the object has been modified" in body["message"]

    # A dict body is sent by this client as a strategic merge patch.
    patched = v1.patch_namespaced_config_map(
        "settings", ns, {"metadata": {"labels": {"tier": "fe"}}, "data": {"a": "10"}})
    assert patched.data == {"a": "10", "b": "2"}
    assert patched.metadata.labels == {"app": "web", "tier": "fe"}

    # A list body is a JSON patch (RFC 6902).
    patched = v1.patch_namespaced_config_map("settings", ns, [
        {"op": "test", "path": "/data/b", "value": "2"},
        {"op": "remove", "path": "/data/b"},
        {"op": "add", "path": "/data/z", "value": "26"},
        {"op": "replace", "path": "/metadata/labels/app", "value": "api"},
    ])
    assert patched.data == {"a": "10", "z": "26"}
    assert patched.metadata.labels == {"app": "api", "tier": "fe"}

    # A JSON patch whose `test` fails changes nothing.
    before = v1.read_namespaced_config_map("settings", ns)
    with pytest.raises(ApiException) as info:
        v1.patch_namespaced_config_map("settings", ns, [
            {"op": "replace", "path": "/data/a", "value": "x"},
            {"op": "test", "path": "/data/a", "value": "not-it"}])
    assert info.value.status == 422
    status_body(info.value)
    after = v1.read_namespaced_config_map("settings", ns)
    assert after.data == before.data
    assert after.metadata.resource_version == before.metadata.resource_version

    # An explicit merge patch: null removes a key.
    patched = v1.patch_namespaced_config_map(
        "settings", ns, {"data": {"z": None}}, _content_type="application/merge-patch+json")
    assert patched.data == {"a": "10"}

    # dry run: answers as if written, persists nothing
    dry = v1.patch_namespaced_config_map("settings", ns, {"data": {"dry": "yes"}},
                                         dry_run="All")
    assert dry.data == {"a": "10", "dry": "yes"}
    assert v1.read_namespaced_config_map("settings", ns).data == {"a": "10"}

    # delete returns a Status for configmaps
    deleted = v1.delete_namespaced_config_map("settings", ns)
    assert deleted is not None
    body = expect_error(404, "NotFound", lambda: v1.read_namespaced_config_map("settings", ns))
    assert body["message"] == 'configmaps "settings" not found'
    assert body["details"] == {"name": "settings", "kind": "configmaps"}
    expect_error(404, "NotFound", lambda: v1.delete_namespaced_config_map("settings", ns))
    expect_error(404, "NotFound", lambda: v1.patch_namespaced_config_map(
        "settings", ns, {"data": {"a": "1"}}))


def test_create_conflicts_and_validation(v1: client.CoreV1Api, ns: str) -> None:
    v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=meta("dup")))
    body = expect_error(409, "AlreadyExists", lambda: v1.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=meta("dup"))))
    assert body["message"] == 'configmaps "dup" already exists'

    body = expect_error(422, "Invalid", lambda: v1.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=meta("Not_A_Valid_Name"))))
    assert body["message"].startswith('ConfigMap "Not_A_Valid_Name" is invalid')
    causes = body["details"]["causes"]
    assert any(c["field"] == "metadata.name" for c in causes), causes
    assert body["details"]["name"] == "Not_A_Valid_Name"
    assert body["details"]["kind"] == "ConfigMap"

    body = expect_error(422, "Invalid", lambda: v1.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=meta("badkey"), data={"no/slash": "x"})))
    assert any(c["field"] == "data[no/slash]" for c in body["details"]["causes"]), body

    # A namespace that does not exist.
    body = expect_error(404, "NotFound", lambda: v1.create_namespaced_config_map(
        "no-such-ns-" + uuid.uuid4().hex[:6], client.V1ConfigMap(metadata=meta("x"))))
    assert body["message"].startswith('namespaces "no-such-ns-')

    # Namespaced object with a mismatching metadata.namespace.
    expect_error(400, "BadRequest", lambda: v1.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="other", namespace="default"))))

    # generateName
    made = v1.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="gen-")))
    assert made.metadata.name.startswith("gen-") and len(made.metadata.name) == 9


def test_list_label_field_selectors_and_pages(v1: client.CoreV1Api, ns: str) -> None:
    for i in range(7):
        v1.create_namespaced_config_map(ns, client.V1ConfigMap(
            metadata=meta(f"cm{i}", parity="even" if i % 2 == 0 else "odd", idx=str(i))))
    everything = v1.list_namespaced_config_map(ns)
    assert [c.metadata.name for c in everything.items] == [f"cm{i}" for i in range(7)]
    assert everything.kind == "ConfigMapList" and everything.api_version == "v1"

    def names(**kw: Any) -> list[str]:
        return [c.metadata.name for c in v1.list_namespaced_config_map(ns, **kw).items]

    assert names(label_selector="parity=even") == ["cm0", "cm2", "cm4", "cm6"]
    assert names(label_selector="parity=odd,idx in (1,5)") == ["cm1", "cm5"]
    assert names(label_selector="parity!=odd,idx notin (0,2)") == ["cm4", "cm6"]
    assert names(label_selector="!parity") == []
    assert names(field_selector="metadata.name=cm3") == ["cm3"]
    assert names(field_selector="metadata.name!=cm3", label_selector="parity=odd") \
        == ["cm1", "cm5"]
    assert names(field_selector=f"metadata.namespace={ns}") == [f"cm{i}" for i in range(7)]

    expect_error(400, "BadRequest",
                 lambda: v1.list_namespaced_config_map(ns, label_selector="a in ("))
    expect_error(400, "BadRequest",
                 lambda: v1.list_namespaced_config_map(ns, field_selector="data.a=1"))

    # pages of 3 with the continue token
    seen: list[str] = []
    token: str | None = None
    pages = 0
    first_rv = None
    while True:
        page = v1.list_namespaced_config_map(ns, limit=3, _continue=token)
        pages += 1
        assert len(page.items) <= 3
        seen += [c.metadata.name for c in page.items]
        first_rv = first_rv or page.metadata.resource_version
        assert page.metadata.resource_version == first_rv  # one consistent snapshot
        token = page.metadata._continue
        if not token:
            break
        assert pages < 10
    assert pages == 3 and seen == [f"cm{i}" for i in range(7)]
    # Pages with a label selector
    page = v1.list_namespaced_config_map(ns, limit=2, label_selector="parity=even")
    assert [c.metadata.name for c in page.items] == ["cm0", "cm2"]
    rest = v1.list_namespaced_config_map(ns, limit=2, label_selector="parity=even",
                                         _continue=page.metadata._continue)
    assert [c.metadata.name for c in rest.items] == ["cm4", "cm6"]
    assert not rest.metadata._continue
    expect_error(400, "BadRequest",
                 lambda: v1.list_namespaced_config_map(ns, limit=2, _continue="garbage!"))

    # all-namespaces list sees ours
    across = v1.list_config_map_for_all_namespaces(label_selector="parity=odd,idx=3")
    assert [(c.metadata.namespace, c.metadata.name) for c in across.items] == [(ns, "cm3")]

    # delete collection by label
    v1.delete_collection_namespaced_config_map(ns, label_selector="parity=odd")
    assert names() == ["cm0", "cm2", "cm4", "cm6"]


# -- secrets, service accounts, events --------------------------------------------------------


def test_secret_string_data_and_type(v1: client.CoreV1Api, ns: str) -> None:
    created = v1.create_namespaced_secret(ns, client.V1Secret(
        metadata=meta("creds"), string_data={"user": "admin"},
        data={"raw": base64.b64encode(b"\x00\x01").decode()}))
    assert created.type == "Opaque"
    assert created.string_data is None  # write-only
    assert base64.b64decode(created.data["user"]) == b"admin"
    assert base64.b64decode(created.data["raw"]) == b"\x00\x01"
    got = v1.read_namespaced_secret("creds", ns)
    assert got.data == created.data

    patched = v1.patch_namespaced_secret("creds", ns, {"stringData": {"pw": "s3cret"}})
    assert base64.b64decode(patched.data["pw"]) == b"s3cret"
    assert set(patched.data) == {"user", "raw", "pw"}

    body = expect_error(422, "Invalid", lambda: v1.create_namespaced_secret(ns, client.V1Secret(
        metadata=meta("bad64"), data={"k": "%%% not base64 %%%"})))
    assert body["details"]["kind"] == "Secret"

    tls = v1.create_namespaced_secret(ns, client.V1Secret(
        metadata=meta("tls"), type="kubernetes.io/tls",
        string_data={"tls.crt": "c", "tls.key": "k"}))
    assert tls.type == "kubernetes.io/tls"
    # a tls secret needs both keys
    expect_error(422, "Invalid", lambda: v1.create_namespaced_secret(ns, client.V1Secret(
        metadata=meta("tls2"), type="kubernetes.io/tls", string_data={"tls.crt": "c"})))

    v1.delete_namespaced_secret("creds", ns)
    expect_error(404, "NotFound", lambda: v1.read_namespaced_secret("creds", ns))


def test_service_account(v1: client.CoreV1Api, ns: str) -> None:
    sa = v1.create_namespaced_service_account(ns, client.V1ServiceAccount(
        metadata=meta("builder"), automount_service_account_token=False))
    assert sa.metadata.name == "builder" and sa.automount_service_account_token is False
    patched = v1.patch_namespaced_service_account(
        "builder", ns, {"imagePullSecrets": [{"name": "regcred"}]})
    assert [s.name for s in patched.image_pull_secrets] == ["regcred"]
    listed = v1.list_namespaced_service_account(ns, field_selector="metadata.name=builder")
    assert [s.metadata.name for s in listed.items] == ["builder"]
    v1.delete_namespaced_service_account("builder", ns, _preload_content=False)
    expect_error(404, "NotFound", lambda: v1.read_namespaced_service_account("builder", ns))


def test_events_and_event_field_selectors(v1: client.CoreV1Api, ns: str) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for name, reason, involved in (("e1", "Started", "pod-a"), ("e2", "Killing", "pod-a"),
                                   ("e3", "Started", "pod-b")):
        v1.create_namespaced_event(ns, client.CoreV1Event(
            metadata=meta(name),
            involved_object=client.V1ObjectReference(kind="Pod", name=involved, namespace=ns,
                                                     api_version="v1"),
            reason=reason, message=f"{reason} {involved}", type="Normal", count=1,
            first_timestamp=now, last_timestamp=now,
            source=client.V1EventSource(component="kubelet", host="node-1")))

    def names(selector: str) -> list[str]:
        return sorted(e.metadata.name
                      for e in v1.list_namespaced_event(ns, field_selector=selector).items)

    assert names("involvedObject.name=pod-a") == ["e1", "e2"]
    assert names("reason=Started") == ["e1", "e3"]
    assert names("involvedObject.kind=Pod,involvedObject.name=pod-b") == ["e3"]
    assert names("type=Warning") == []
    got = v1.read_namespaced_event("e1", ns)
    assert got.first_timestamp == now and got.involved_object.name == "pod-a"
    assert got.source.component == "kubelet"
    # the count bump a recorder does
    bumped = v1.patch_namespaced_event("e1", ns, {"count": 2})
    assert bumped.count == 2
    v1.delete_namespaced_event("e1", ns)
    assert names("involvedObject.name=pod-a") == ["e2"]


# -- pods and services ------------------------------------------------------------------------


def test_pod_lifecycle_status_and_binding(v1: client.CoreV1Api, ns: str) -> None:
    pod = client.V1Pod(metadata=meta("web", app="web"),
                       spec=client.V1PodSpec(containers=[client.V1Container(
                           name="c", image="nginx:1.25",
                           ports=[client.V1ContainerPort(container_port=80)])]))
    created = v1.create_namespaced_pod(ns, pod)
    assert created.status.phase == "Pending"
    assert created.spec.restart_policy == "Always"
    assert created.spec.dns_policy == "ClusterFirst"
    assert created.spec.termination_grace_period_seconds == 30
    assert created.spec.containers[0].image_pull_policy == "IfNotPresent"
    assert created.spec.containers[0].ports[0].protocol == "TCP"
    assert created.status.qos_class == "BestEffort"

    unscheduled = v1.list_namespaced_pod(ns, field_selector="spec.nodeName=")
    assert [p.metadata.name for p in unscheduled.items] == ["web"]

    # Binding: the scheduler's call. The response is a Status, not a Binding, so read it raw.
    resp = v1.create_namespaced_pod_binding("web", ns, client.V1Binding(
        metadata=meta("web"), target=client.V1ObjectReference(kind="Node", name="node-1",
                                                              api_version="v1")),
        _preload_content=False)
    assert resp.status == 201
    bound = v1.read_namespaced_pod("web", ns)
    assert bound.spec.node_name == "node-1"
    assert any(c.type == "PodScheduled" and c.status == "True"
               for c in bound.status.conditions)
    assert [p.metadata.name for p in v1.list_namespaced_pod(
        ns, field_selector="spec.nodeName=node-1").items] == ["web"]
    with pytest.raises(ApiException) as info:
        v1.create_namespaced_pod_binding("web", ns, client.V1Binding(
            metadata=meta("web"), target=client.V1ObjectReference(name="node-2")),
            _preload_content=False)
    assert info.value.status == 409 and status_body(info.value)["reason"] == "Conflict"

    # Status, as a kubelet writes it: spec is untouched by a status patch.
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    st = v1.patch_namespaced_pod_status("web", ns, {"status": {
        "phase": "Running", "podIP": "10.0.0.7", "podIPs": [{"ip": "10.0.0.7"}],
        "startTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "spec": {"nodeName": "elsewhere"}}})
    assert st.status.phase == "Running" and st.status.pod_ip == "10.0.0.7"
    assert st.status.start_time == now
    assert st.spec.node_name == "node-1"
    assert v1.read_namespaced_pod_status("web", ns).status.phase == "Running"
    # ...and status in a main-resource patch is ignored.
    same = v1.patch_namespaced_pod("web", ns, {"status": {"phase": "Failed"},
                                               "metadata": {"labels": {"v": "2"}}})
    assert same.status.phase == "Running" and same.metadata.labels == {"app": "web", "v": "2"}
    assert [p.metadata.name for p in v1.list_namespaced_pod(
        ns, field_selector="status.phase=Running").items] == ["web"]

    # Pod spec is immutable apart from images and a few fields.
    body = expect_error(422, "Invalid", lambda: v1.patch_namespaced_pod(
        "web", ns, {"spec": {"restartPolicy": "Never"}}))
    assert body["message"].startswith('Pod "web" is invalid')
    image = v1.patch_namespaced_pod("web", ns, {"spec": {"containers": [
        {"name": "c", "image": "nginx:1.26"}]}})
    assert image.spec.containers[0].image == "nginx:1.26"
    assert image.spec.containers[0].ports[0].container_port == 80  # merged by name

    # A bound pod is deleted gracefully: marked first, gone after grace 0.
    marked = v1.delete_namespaced_pod("web", ns)
    assert marked.metadata.deletion_timestamp is not None
    assert marked.metadata.deletion_grace_period_seconds == 30
    v1.delete_namespaced_pod("web", ns, grace_period_seconds=0)
    expect_error(404, "NotFound", lambda: v1.read_namespaced_pod("web", ns))


def test_pod_validation_names_fields(v1: client.CoreV1Api, ns: str) -> None:
    body = expect_error(422, "Invalid", lambda: v1.create_namespaced_pod(ns, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad"},
        "spec": {"containers": [{"name": "c"}, {"name": "c", "image": "x"}]}}))
    assert body["message"].startswith('Pod "bad" is invalid')
    fields = {c["field"] for c in body["details"]["causes"]}
    assert {"spec.containers[0].image", "spec.containers[1].name"} <= fields
    expect_error(404, "NotFound", lambda: v1.read_namespaced_pod("bad", ns))
    # An unbound pod is removed at once; the client gets the Pod back.
    v1.create_namespaced_pod(ns, client.V1Pod(metadata=meta("gone"),
                                              spec=client.V1PodSpec(containers=[container()])))
    deleted = v1.delete_namespaced_pod("gone", ns)
    assert deleted.metadata.name == "gone"
    expect_error(404, "NotFound", lambda: v1.read_namespaced_pod("gone", ns))


def test_service_defaults_and_patch(v1: client.CoreV1Api, ns: str) -> None:
    svc = v1.create_namespaced_service(ns, client.V1Service(
        metadata=meta("web"), spec=client.V1ServiceSpec(
            selector={"app": "web"},
            ports=[client.V1ServicePort(name="http", port=80)])))
    assert svc.spec.type == "ClusterIP"
    assert svc.spec.session_affinity == "None"
    assert svc.spec.ports[0].protocol == "TCP"
    assert svc.spec.ports[0].target_port == 80
    assert svc.spec.ip_families == ["IPv4"]
    patched = v1.patch_namespaced_service("web", ns, {"spec": {"ports": [
        {"name": "metrics", "port": 9090, "targetPort": "metrics"}]}})
    # strategic merge: ports merge by port number
    assert sorted(p.port for p in patched.spec.ports) == [80, 9090]
    lb = v1.patch_namespaced_service_status("web", ns, {"status": {"loadBalancer": {
        "ingress": [{"ip": "192.0.2.1"}]}}})
    assert lb.status.load_balancer.ingress[0].ip == "192.0.2.1"
    body = expect_error(422, "Invalid", lambda: v1.create_namespaced_service(ns, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "noports"},
        "spec": {"selector": {"a": "b"}, "ports": [{"port": 70000}]}}))
    assert any(c["field"].startswith("spec.ports[0].port") for c in body["details"]["causes"])
    # (what the delete answers is test_delete_answers_like_upstream's business)
    v1.delete_namespaced_service("web", ns, _preload_content=False)
    expect_error(404, "NotFound", lambda: v1.read_namespaced_service("web", ns))


def test_service_gets_a_cluster_ip(v1: client.CoreV1Api, ns: str) -> None:
    """Upstream allocates spec.clusterIP (and clusterIPs) from the service CIDR on create."""
    svc = v1.create_namespaced_service(ns, client.V1Service(
        metadata=meta("ip"), spec=client.V1ServiceSpec(
            selector={"app": "ip"}, ports=[client.V1ServicePort(port=80)])))
    assert svc.spec.cluster_ip and svc.spec.cluster_ip != "None", svc.spec
    assert svc.spec.cluster_ips == [svc.spec.cluster_ip]


# -- nodes (cluster-scoped) -------------------------------------------------------------------


def test_nodes_cluster_scoped(v1: client.CoreV1Api) -> None:
    name = uniq("node")
    created = v1.create_node(client.V1Node(
        metadata=meta(name, **{"kubernetes.io/hostname": name, "pool": "fuzzless"}),
        spec=client.V1NodeSpec(pod_cidr="10.244.1.0/24"),
        status=client.V1NodeStatus(capacity={"cpu": "4", "memory": "8Gi", "pods": "110"})))
    try:
        assert created.metadata.namespace is None
        assert created.status.allocatable == {"cpu": "4", "memory": "8Gi", "pods": "110"}
        assert created.spec.pod_cidrs == ["10.244.1.0/24"]
        listed = v1.list_node(label_selector=f"kubernetes.io/hostname={name}")
        assert [n.metadata.name for n in listed.items] == [name]
        listed = v1.list_node(field_selector=f"metadata.name={name}")
        assert [n.metadata.name for n in listed.items] == [name]

        cordoned = v1.patch_node(name, {"spec": {"unschedulable": True}})
        assert cordoned.spec.unschedulable is True
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        ready = v1.patch_node_status(name, {"status": {"conditions": [{
            "type": "Ready", "status": "True", "reason": "KubeletReady",
            "lastHeartbeatTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lastTransitionTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")}]}})
        assert [(c.type, c.status) for c in ready.status.conditions] == [("Ready", "True")]
        assert ready.status.conditions[0].last_heartbeat_time == now
        assert ready.spec.unschedulable is True

        fresh = v1.read_node(name)
        fresh.metadata.labels["zone"] = "a"
        replaced = v1.replace_node(name, fresh)
        assert replaced.metadata.labels["zone"] == "a"
        expect_error(409, "AlreadyExists", lambda: v1.create_node(
            client.V1Node(metadata=meta(name))))
    finally:
        v1.delete_node(name)
    body = expect_error(404, "NotFound", lambda: v1.read_node(name))
    assert body["message"] == f'nodes "{name}" not found'


# -- apps, batch ------------------------------------------------------------------------------


def test_deployment_scale_and_status(apps: client.AppsV1Api, ns: str) -> None:
    created = apps.create_namespaced_deployment(ns, deployment("web", replicas=2))
    assert created.metadata.generation == 1
    assert created.spec.strategy.type == "RollingUpdate"
    assert created.spec.strategy.rolling_update.max_surge == "25%"
    assert created.spec.revision_history_limit == 10
    assert created.spec.progress_deadline_seconds == 600
    assert created.spec.template.spec.restart_policy == "Always"

    scale = apps.read_namespaced_deployment_scale("web", ns)
    assert scale.kind == "Scale" and scale.api_version == "autoscaling/v1"
    assert scale.spec.replicas == 2 and scale.status.selector == "app=web"

    scaled = apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 5}})
    assert scaled.spec.replicas == 5
    got = apps.read_namespaced_deployment("web", ns)
    assert got.spec.replicas == 5 and got.metadata.generation == 2

    scale = apps.read_namespaced_deployment_scale("web", ns)
    scale.spec.replicas = 3
    replaced = apps.replace_namespaced_deployment_scale("web", ns, scale)
    assert replaced.spec.replicas == 3
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 3
    # a stale scale conflicts
    stale = client.V1Scale(metadata=client.V1ObjectMeta(
        name="web", namespace=ns, resource_version=scale.metadata.resource_version),
        spec=client.V1ScaleSpec(replicas=9))
    expect_error(409, "Conflict",
                 lambda: apps.replace_namespaced_deployment_scale("web", ns, stale))
    expect_error(422, "Invalid", lambda: apps.patch_namespaced_deployment_scale(
        "web", ns, {"spec": {"replicas": -1}}))
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 3

    # status subresource: the controller's write
    st = apps.patch_namespaced_deployment_status("web", ns, {"status": {
        "observedGeneration": 3, "replicas": 3, "readyReplicas": 2, "updatedReplicas": 3,
        "availableReplicas": 2}, "spec": {"replicas": 100}})
    assert st.status.ready_replicas == 2 and st.status.observed_generation == 3
    assert st.spec.replicas == 3  # spec is not written through status
    read_st = apps.read_namespaced_deployment_status("web", ns)
    assert read_st.status.replicas == 3
    # status through the main resource is ignored
    same = apps.patch_namespaced_deployment("web", ns, {"status": {"readyReplicas": 0}})
    assert same.status.ready_replicas == 2

    # an image change bumps the generation; a label change does not
    gen = apps.read_namespaced_deployment("web", ns).metadata.generation
    labelled = apps.patch_namespaced_deployment("web", ns, {"metadata": {"labels": {"x": "y"}}})
    assert labelled.metadata.generation == gen
    rolled = apps.patch_namespaced_deployment("web", ns, {"spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": "busybox:1.37"}]}}}})
    assert rolled.metadata.generation == gen + 1
    assert rolled.spec.template.spec.containers[0].image == "busybox:1.37"

    # selector is immutable
    body = expect_error(422, "Invalid", lambda: apps.patch_namespaced_deployment(
        "web", ns, {"spec": {"selector": {"matchLabels": {"app": "other"}},
                             "template": {"metadata": {"labels": {"app": "other"}}}}}))
    assert any(c["field"] == "spec.selector" for c in body["details"]["causes"]), body

    listed = apps.list_namespaced_deployment(ns, label_selector="app=web")
    assert [d.metadata.name for d in listed.items] == ["web"]
    apps.delete_namespaced_deployment("web", ns, propagation_policy="Background")
    expect_error(404, "NotFound", lambda: apps.read_namespaced_deployment("web", ns))
    body = expect_error(404, "NotFound", lambda: apps.read_namespaced_deployment_scale("web", ns))
    assert body["message"] == 'deployments.apps "web" not found'
    assert body["details"] == {"name": "web", "group": "apps", "kind": "deployments"}


def test_replicaset_scale(apps: client.AppsV1Api, ns: str) -> None:
    labels = {"app": "rs"}
    # Created and read raw: whether the typed model reads back is
    # test_workload_status_deserialises' business.
    apps.create_namespaced_replica_set(ns, client.V1ReplicaSet(
        metadata=meta("rs", **labels), spec=client.V1ReplicaSetSpec(
            replicas=1, selector=client.V1LabelSelector(match_labels=labels),
            template=pod_template(labels))), _preload_content=False)
    scaled = apps.patch_namespaced_replica_set_scale("rs", ns, {"spec": {"replicas": 4}})
    assert scaled.spec.replicas == 4
    assert apps.read_namespaced_replica_set_scale("rs", ns).spec.replicas == 4
    got = raw(apps.read_namespaced_replica_set("rs", ns, _preload_content=False))
    assert got["spec"]["replicas"] == 4 and got["metadata"]["generation"] == 2
    # template labels must match the selector
    body = expect_error(422, "Invalid", lambda: apps.create_namespaced_replica_set(
        ns, client.V1ReplicaSet(metadata=meta("mismatch"), spec=client.V1ReplicaSetSpec(
            selector=client.V1LabelSelector(match_labels={"app": "a"}),
            template=pod_template({"app": "b"})))))
    assert any(c["field"] == "spec.template.metadata.labels"
               for c in body["details"]["causes"]), body
    apps.delete_namespaced_replica_set("rs", ns)
    expect_error(404, "NotFound", lambda: apps.read_namespaced_replica_set_scale("rs", ns))


def test_daemonset_round_trip(apps: client.AppsV1Api, ns: str) -> None:
    labels = {"app": "ds"}
    created = raw(apps.create_namespaced_daemon_set(ns, client.V1DaemonSet(
        metadata=meta("ds", **labels), spec=client.V1DaemonSetSpec(
            selector=client.V1LabelSelector(match_labels=labels),
            template=pod_template(labels))), _preload_content=False))
    strategy = created["spec"]["updateStrategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 1
    assert created["spec"]["revisionHistoryLimit"] == 10
    st = apps.patch_namespaced_daemon_set_status("ds", ns, {"status": {
        "currentNumberScheduled": 2, "desiredNumberScheduled": 2, "numberMisscheduled": 0,
        "numberReady": 1}})
    assert st.status.number_ready == 1
    apps.delete_namespaced_daemon_set("ds", ns)
    expect_error(404, "NotFound", lambda: apps.read_namespaced_daemon_set("ds", ns))


def test_workload_status_deserialises(apps: client.AppsV1Api, ns: str) -> None:
    """ReplicaSetStatus.replicas and DaemonSetStatus' four counters have no `omitempty`
    upstream, so a new object answers e.g. `"status": {"replicas": 0}` and this client's
    models require them: creating and reading must work with the typed API."""
    labels = {"app": "typed"}
    rs = apps.create_namespaced_replica_set(ns, client.V1ReplicaSet(
        metadata=meta("typed", **labels), spec=client.V1ReplicaSetSpec(
            replicas=1, selector=client.V1LabelSelector(match_labels=labels),
            template=pod_template(labels))))
    assert rs.status.replicas == 0
    assert [r.metadata.name for r in apps.list_namespaced_replica_set(ns).items] == ["typed"]
    ds = apps.create_namespaced_daemon_set(ns, client.V1DaemonSet(
        metadata=meta("typed", **labels), spec=client.V1DaemonSetSpec(
            selector=client.V1LabelSelector(match_labels=labels),
            template=pod_template(labels))))
    assert (ds.status.current_number_scheduled, ds.status.desired_number_scheduled,
            ds.status.number_misscheduled, ds.status.number_ready) == (0, 0, 0, 0)
    assert apps.read_namespaced_daemon_set("typed", ns).status.number_ready == 0


def test_delete_answers_like_upstream(v1: client.CoreV1Api, ns: str) -> None:
    """Upstream's pods, services and serviceaccounts stores set ReturnDeletedObject, so
    deleting one answers with the object (this client's delete_namespaced_service is typed
    V1Service); configmaps and most others answer with a success Status."""
    v1.create_namespaced_service(ns, client.V1Service(
        metadata=meta("gone"), spec=client.V1ServiceSpec(
            selector={"app": "gone"}, ports=[client.V1ServicePort(port=80)])))
    v1.create_namespaced_service_account(ns, client.V1ServiceAccount(metadata=meta("gone")))
    v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=meta("gone")))

    status = raw(v1.delete_namespaced_config_map("gone", ns, _preload_content=False))
    assert status["kind"] == "Status" and status["status"] == "Success"
    assert status["details"]["name"] == "gone" and status["details"]["kind"] == "configmaps"

    sa = raw(v1.delete_namespaced_service_account("gone", ns, _preload_content=False))
    assert sa["kind"] == "ServiceAccount" and sa["metadata"]["name"] == "gone", sa
    svc = v1.delete_namespaced_service("gone", ns)
    assert svc.kind == "Service" and svc.metadata.name == "gone"


def test_job_defaults_and_immutability(batch: client.BatchV1Api, ns: str) -> None:
    job = client.V1Job(metadata=meta("once"), spec=client.V1JobSpec(
        template=pod_template({"app": "once"}, restart_policy="Never")))
    created = batch.create_namespaced_job(ns, job)
    uid = created.metadata.uid
    assert created.spec.completions == 1 and created.spec.parallelism == 1
    assert created.spec.backoff_limit == 6
    assert created.spec.completion_mode == "NonIndexed" and created.spec.suspend is False
    assert created.spec.selector.match_labels == {"batch.kubernetes.io/controller-uid": uid}
    tl = created.spec.template.metadata.labels
    assert tl["batch.kubernetes.io/controller-uid"] == uid and tl["job-name"] == "once"
    assert created.metadata.labels == {"app": "once"}

    body = expect_error(422, "Invalid", lambda: batch.create_namespaced_job(ns, client.V1Job(
        metadata=meta("always"), spec=client.V1JobSpec(
            template=pod_template({"app": "always"}, restart_policy="Always")))))
    assert any(c["field"] == "spec.template.spec.restartPolicy"
               for c in body["details"]["causes"]), body

    # suspend may change; the template may not (while not suspended)
    suspended = batch.patch_namespaced_job("once", ns, {"spec": {"suspend": True}})
    assert suspended.spec.suspend is True
    expect_error(422, "Invalid", lambda: batch.patch_namespaced_job(
        "once", ns, {"spec": {"completions": 3, "parallelism": 3,
                              "template": {"spec": {"restartPolicy": "OnFailure"}}}}))

    st = batch.patch_namespaced_job_status("once", ns, {"status": {"active": 1}})
    assert st.status.active == 1
    listed = batch.list_namespaced_job(ns, label_selector="app=once")
    assert [j.metadata.name for j in listed.items] == ["once"]
    batch.delete_namespaced_job("once", ns, propagation_policy="Background")
    expect_error(404, "NotFound", lambda: batch.read_namespaced_job("once", ns))


# -- coordination, discovery ------------------------------------------------------------------


def test_lease_as_leader_election_uses_it(coordination: client.CoordinationV1Api,
                                          ns: str) -> None:
    now = dt.datetime.now(dt.UTC)
    lease = coordination.create_namespaced_lease(ns, client.V1Lease(
        metadata=meta("leader"), spec=client.V1LeaseSpec(
            holder_identity="a", lease_duration_seconds=15, acquire_time=now, renew_time=now,
            lease_transitions=0)))
    assert lease.spec.holder_identity == "a"
    # MicroTime keeps microseconds through the round trip.
    assert lease.spec.renew_time == now
    later = now + dt.timedelta(seconds=2, microseconds=123)
    lease.spec.renew_time = later
    renewed = coordination.replace_namespaced_lease("leader", ns, lease)
    assert renewed.spec.renew_time == later
    # Someone else's take-over from a stale read loses.
    lease.spec.holder_identity = "b"
    expect_error(409, "Conflict",
                 lambda: coordination.replace_namespaced_lease("leader", ns, lease))
    taken = coordination.patch_namespaced_lease("leader", ns, {"spec": {
        "holderIdentity": "b", "leaseTransitions": 1}})
    assert taken.spec.holder_identity == "b" and taken.spec.lease_transitions == 1
    assert [x.metadata.name for x in coordination.list_namespaced_lease(ns).items] == ["leader"]
    coordination.delete_namespaced_lease("leader", ns)
    expect_error(404, "NotFound", lambda: coordination.read_namespaced_lease("leader", ns))
    body = expect_error(422, "Invalid", lambda: coordination.create_namespaced_lease(
        ns, client.V1Lease(metadata=meta("neg"), spec=client.V1LeaseSpec(
            lease_duration_seconds=-1))))
    assert body["details"]["group"] == "coordination.k8s.io"


def test_endpointslices(discovery_api: client.DiscoveryV1Api, ns: str) -> None:
    def slice_(name: str, service: str, ip: str) -> client.V1EndpointSlice:
        return client.V1EndpointSlice(
            metadata=meta(name, **{"kubernetes.io/service-name": service}),
            address_type="IPv4",
            endpoints=[client.V1Endpoint(addresses=[ip], conditions=client.V1EndpointConditions(
                ready=True), node_name="node-1")],
            ports=[client.DiscoveryV1EndpointPort(name="http", port=8080, protocol="TCP")])

    made = discovery_api.create_namespaced_endpoint_slice(ns, slice_("web-abc", "web",
                                                                      "10.0.0.1"))
    assert made.address_type == "IPv4" and made.endpoints[0].addresses == ["10.0.0.1"]
    discovery_api.create_namespaced_endpoint_slice(ns, slice_("db-abc", "db", "10.0.0.2"))
    listed = discovery_api.list_namespaced_endpoint_slice(
        ns, label_selector="kubernetes.io/service-name=web")
    assert [s.metadata.name for s in listed.items] == ["web-abc"]
    patched = discovery_api.patch_namespaced_endpoint_slice("web-abc", ns, [
        {"op": "add", "path": "/endpoints/-", "value": {"addresses": ["10.0.0.3"],
                                                        "conditions": {"ready": False}}}])
    assert [e.addresses[0] for e in patched.endpoints] == ["10.0.0.1", "10.0.0.3"]
    assert patched.endpoints[1].conditions.ready is False
    body = expect_error(422, "Invalid", lambda: discovery_api.create_namespaced_endpoint_slice(
        ns, client.V1EndpointSlice(metadata=meta("bad"), address_type="IPv4",
                                   endpoints=[client.V1Endpoint(addresses=["not-an-ip"])])))
    assert body["details"]["group"] == "discovery.k8s.io"
    # addressType is immutable
    expect_error(422, "Invalid", lambda: discovery_api.patch_namespaced_endpoint_slice(
        "web-abc", ns, {"addressType": "IPv6"}))
    discovery_api.delete_collection_namespaced_endpoint_slice(ns)
    assert discovery_api.list_namespaced_endpoint_slice(ns).items == []


# -- watch ------------------------------------------------------------------------------------


def test_watch_from_resource_version_replays_changes_in_order(v1: client.CoreV1Api,
                                                              ns: str) -> None:
    rv = v1.list_namespaced_config_map(ns).metadata.resource_version
    # The changes happen before the watch starts: watching from `rv` must replay all of them,
    # in order, which makes the test deterministic.
    v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=meta("w"),
                                                           data={"v": "1"}))
    v1.patch_namespaced_config_map("w", ns, {"data": {"v": "2"}})
    v1.delete_namespaced_config_map("w", ns)

    w = watch.Watch()
    events: list[dict[str, Any]] = []
    started = time.monotonic()
    for event in w.stream(v1.list_namespaced_config_map, ns, resource_version=rv,
                          timeout_seconds=WATCH_TIMEOUT_SECONDS,
                          _request_timeout=WATCH_TIMEOUT_SECONDS + 5):
        events.append(event)
        if len(events) == 3:
            w.stop()
    assert time.monotonic() - started < WATCH_TIMEOUT_SECONDS + 5
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    objs = [e["object"] for e in events]
    assert all(isinstance(o, client.V1ConfigMap) for o in objs)
    assert [o.data for o in objs] == [{"v": "1"}, {"v": "2"}, {"v": "2"}]
    rvs = [int(o.metadata.resource_version) for o in objs]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3 and rvs[0] > int(rv)
    assert events[0]["raw_object"]["metadata"]["name"] == "w"
    assert w.resource_version == str(rvs[-1])


def test_watch_sees_changes_made_while_streaming(v1: client.CoreV1Api, ns: str) -> None:
    rv = v1.list_namespaced_config_map(ns).metadata.resource_version
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            time.sleep(0.3)
            v1.create_namespaced_config_map(ns, client.V1ConfigMap(
                metadata=meta("live", side="a")))
            v1.create_namespaced_config_map(ns, client.V1ConfigMap(
                metadata=meta("other", side="b")))
            v1.patch_namespaced_config_map("live", ns, {"data": {"k": "v"}})
            v1.delete_namespaced_config_map("live", ns)
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    thread = threading.Thread(target=writer, name="configmap-writer", daemon=True)
    w = watch.Watch()
    events: list[tuple[str, str]] = []
    thread.start()
    try:
        for event in w.stream(v1.list_namespaced_config_map, ns, resource_version=rv,
                              label_selector="side=a", timeout_seconds=WATCH_TIMEOUT_SECONDS,
                              _request_timeout=WATCH_TIMEOUT_SECONDS + 5):
            events.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                w.stop()
    finally:
        thread.join(10)
    assert not errors, errors
    assert events == [("ADDED", "live"), ("MODIFIED", "live"), ("DELETED", "live")]


def test_watch_ends_at_server_timeout(v1: client.CoreV1Api, ns: str) -> None:
    """timeoutSeconds is the server's: the stream ends cleanly and the generator returns."""
    w = watch.Watch()
    started = time.monotonic()
    got = list(w.stream(v1.list_namespaced_config_map, ns, timeout_seconds=1,
                        _request_timeout=(5, 10)))
    elapsed = time.monotonic() - started
    assert got == []
    assert 0.5 <= elapsed < 5, elapsed


def test_watch_with_client_request_timeout(v1: client.CoreV1Api, ns: str) -> None:
    """_request_timeout is urllib3's read timeout: an idle stream fails on the client side
    within it, while the server would have kept the watch open for much longer."""
    w = watch.Watch()
    started = time.monotonic()
    with pytest.raises((urllib3.exceptions.ReadTimeoutError,
                        urllib3.exceptions.ProtocolError)):
        for _ in w.stream(v1.list_namespaced_config_map, ns, timeout_seconds=60,
                          _request_timeout=1):
            pass
    assert time.monotonic() - started < 5


def test_watch_without_version_starts_with_current_state(v1: client.CoreV1Api,
                                                         ns: str) -> None:
    for name in ("s1", "s2"):
        v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=meta(name)))
    w = watch.Watch()
    names: list[str] = []
    for event in w.stream(v1.list_namespaced_config_map, ns,
                          timeout_seconds=WATCH_TIMEOUT_SECONDS,
                          _request_timeout=WATCH_TIMEOUT_SECONDS + 5):
        assert event["type"] == "ADDED"
        names.append(event["object"].metadata.name)
        if len(names) == 2:
            w.stop()
    assert sorted(names) == ["s1", "s2"]


def test_watch_cluster_scoped_and_deployments(v1: client.CoreV1Api, apps: client.AppsV1Api,
                                              ns: str) -> None:
    rv = apps.list_namespaced_deployment(ns).metadata.resource_version
    apps.create_namespaced_deployment(ns, deployment("wd"))
    apps.patch_namespaced_deployment_scale("wd", ns, {"spec": {"replicas": 2}})
    w = watch.Watch()
    seen: list[tuple[str, int]] = []
    for event in w.stream(apps.list_namespaced_deployment, ns, resource_version=rv,
                          timeout_seconds=WATCH_TIMEOUT_SECONDS,
                          _request_timeout=WATCH_TIMEOUT_SECONDS + 5):
        seen.append((event["type"], event["object"].spec.replicas))
        if len(seen) == 2:
            w.stop()
    assert seen == [("ADDED", 1), ("MODIFIED", 2)]

    # Namespaces are cluster-scoped: watch them with a field selector on the name.
    name = uniq("wns")
    rv = v1.list_namespace().metadata.resource_version
    v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    w = watch.Watch()
    got: list[str] = []
    for event in w.stream(v1.list_namespace, field_selector=f"metadata.name={name}",
                          resource_version=rv, timeout_seconds=WATCH_TIMEOUT_SECONDS,
                          _request_timeout=WATCH_TIMEOUT_SECONDS + 5):
        got.append(event["type"])
        w.stop()
    assert got == ["ADDED"]
    v1.delete_namespace(name)

