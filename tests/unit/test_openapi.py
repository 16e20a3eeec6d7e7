"""OpenAPI documents: shape, reference integrity, and the lookups kubectl 1.32 performs.

Several tests re-enact, in Python, the exact walk kubectl does over the v3 documents
(client-go's QueryParamVerifierV3, apply's patcher, strategicpatch.PatchMetaFromOpenAPIV3 and
explain's template), so a schema change that would silently push kubectl onto its OpenAPI v2
fallback fails here.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from api.resources import CATALOGUE, Catalogue, Resource
from apiserver import openapi
from apiserver.openapi import (
    OpenAPIDocuments,
    etag,
    openapi_v2,
    openapi_v3_group_version,
    openapi_v3_index,
    schema_name,
    serialize,
)

GROUP_VERSIONS = sorted({(r.group, r.version) for r in CATALOGUE.resources})


@pytest.fixture(scope="module")
def v3_docs() -> dict[tuple[str, str], dict[str, Any]]:
    docs = {}
    for group, version in GROUP_VERSIONS:
        doc = openapi_v3_group_version(CATALOGUE, group, version)
        assert doc is not None
        docs[(group, version)] = doc
    return docs


@pytest.fixture(scope="module")
def v2_doc() -> dict[str, Any]:
    return openapi_v2(CATALOGUE)


def gvk(resource: Resource, kind: str | None = None) -> dict[str, str]:
    return {"group": resource.group, "kind": kind or resource.kind, "version": resource.version}


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict in a document, depth first."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


# --- kubectl's lookups, re-enacted ------------------------------------------------------------


def resolve_v3(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """strategicpatch's resolve(): take allOf[0], then follow a components $ref."""
    if schema.get("allOf"):
        schema = schema["allOf"][0]
    ref = schema.get("$ref")
    if ref:
        schema = schemas[ref.removeprefix("#/components/schemas/")]
    return schema


def supports_field_validation(doc: dict[str, Any], want: dict[str, str]) -> bool:
    """cli-runtime supportsQueryParamV3: the first PATCH op for the GVK decides."""
    for item in doc["paths"].values():
        op = item.get("patch")
        if op is None or op.get("x-kubernetes-group-version-kind") != want:
            continue
        return any(p.get("name") == "fieldValidation" for p in op.get("parameters", []))
    return False


def supports_strategic_merge(doc: dict[str, Any], want: dict[str, str]) -> bool:
    """kubectl apply gvkSupportsPatchOpenAPIV3."""
    for item in doc["paths"].values():
        op = item.get("patch")
        if op is None or op.get("x-kubernetes-group-version-kind") != want:
            continue
        content = op.get("requestBody", {}).get("content") or {}
        return "application/strategic-merge-patch+json" in content
    return False


def kind_schema(doc: dict[str, Any], want: dict[str, str]) -> dict[str, Any] | None:
    """apply's gvkMatchesArray / explain's `contains`: the GVK list must hold it exactly."""
    for schema in doc["components"]["schemas"].values():
        if want in schema.get("x-kubernetes-group-version-kind", []):
            return schema
    return None


def patch_meta_walk(value: Any, schema: dict[str, Any], schemas: dict[str, Any],
                    path: str = "") -> list[str]:
    """Walk a manifest the way CreateThreeWayMergePatch looks up patch metadata.

    Maps inside maps and lists of maps under merge-keyed lists are looked up field by field
    (LookupPatchMetadataForStruct / ForSlice); a missing property there makes kubectl print
    "warning: error calculating patch from openapi v3 spec" and fall back. Returns the paths
    that would fail.
    """
    failures: list[str] = []
    if not isinstance(value, dict):
        return failures
    for key, child in value.items():
        if not isinstance(child, (dict, list)):
            continue
        properties = schema.get("properties") or {}
        if key not in properties:
            if schema.get("additionalProperties") is None:
                failures.append(f"{path}.{key}")
            continue
        field = properties[key]
        if isinstance(child, dict):
            failures += patch_meta_walk(child, resolve_v3(field, schemas), schemas,
                                        f"{path}.{key}")
        elif field.get("x-kubernetes-patch-merge-key"):
            items = resolve_v3(field["items"], schemas)
            for index, element in enumerate(child):
                failures += patch_meta_walk(element, items, schemas, f"{path}.{key}[{index}]")
    return failures


def explain_gvk(doc: dict[str, Any], resource: Resource) -> dict[str, str] | None:
    """explain's template: the GVK of the first operation on the resource's paths."""
    prefix = f"/apis/{resource.group}" if resource.group else "/api"
    base = f"{prefix}/{resource.version}"
    candidates = [
        f"{base}/{resource.plural}",
        f"{base}/{resource.plural}/{{name}}",
        f"{base}/namespaces/{{namespace}}/{resource.plural}",
        f"{base}/namespaces/{{namespace}}/{resource.plural}/{{name}}",
    ]
    for path in candidates:
        item = doc["paths"].get(path)
        for method in ("get", "post", "put", "patch", "delete"):
            if item and method in item and item[method].get("x-kubernetes-group-version-kind"):
                return item[method]["x-kubernetes-group-version-kind"]
    return None


def explain_field(doc: dict[str, Any], resource: Resource, dotted: str) -> dict[str, Any]:
    """Follow a field path like explain does (properties, then items, allOf, $ref)."""
    schemas = doc["components"]["schemas"]
    schema = kind_schema(doc, gvk(resource))
    assert schema is not None
    for field in dotted.split("."):
        while "properties" not in schema or field not in schema["properties"]:
            if "items" in schema:
                schema = schema["items"]
            elif schema.get("allOf"):
                schema = schema["allOf"][0]
            elif "$ref" in schema:
                schema = resolve_v3(schema, schemas)
            else:
                raise AssertionError(f"explain cannot find {field} in {dotted}")
        schema = schema["properties"][field]
    return schema


# --- documents --------------------------------------------------------------------------------


def test_v3_index_lists_every_group_version_with_its_hash(
    v3_docs: dict[tuple[str, str], dict[str, Any]],
) -> None:
    index = openapi_v3_index(CATALOGUE)
    expected = {"api/v1", "apis/apps/v1", "apis/batch/v1", "apis/coordination.k8s.io/v1",
                "apis/discovery.k8s.io/v1", "apis/rbac.authorization.k8s.io/v1",
                "apis/authentication.k8s.io/v1", "apis/authorization.k8s.io/v1"}
    assert set(index["paths"]) == expected
    for (group, version), doc in v3_docs.items():
        key = openapi.group_version_path(group, version)
        url = index["paths"][key]["serverRelativeURL"]
        assert url == f"/openapi/v3/{key}?hash={etag(doc)}"
        assert openapi.parse_group_version_path(key) == (group, version)


def test_unknown_group_version_has_no_document() -> None:
    assert openapi_v3_group_version(CATALOGUE, "example.com", "v1") is None
    assert openapi_v3_group_version(CATALOGUE, "", "v2") is None
    assert openapi.parse_group_version_path("apis/apps") is None
    assert openapi.parse_group_version_path("version") is None


def test_v3_document_shape(v3_docs: dict[tuple[str, str], dict[str, Any]]) -> None:
    for doc in v3_docs.values():
        assert doc["openapi"].startswith("3.0")
        assert set(doc) >= {"openapi", "info", "paths", "components"}
        for path, item in doc["paths"].items():
            assert path.startswith(("/api/", "/apis/"))
            for param in item["parameters"]:
                assert set(param) >= {"name", "in", "schema"}
            for method in ("get", "put", "post", "patch", "delete"):
                if method in item:
                    op = item[method]
                    assert op["responses"]["200"]["content"]["application/json"]["schema"]
                    assert op["x-kubernetes-action"]
                    assert set(op["x-kubernetes-group-version-kind"]) == {"group", "version",
                                                                          "kind"}


def test_every_catalogue_kind_has_a_schema_with_its_gvk(
    v3_docs: dict[tuple[str, str], dict[str, Any]], v2_doc: dict[str, Any],
) -> None:
    for resource in CATALOGUE.resources:
        doc = v3_docs[(resource.group, resource.version)]
        # Reviews are create-only: no list kind, as upstream.
        kinds = (resource.kind, resource.list_kind) if resource.stored else (resource.kind,)
        for kind in kinds:
            name = schema_name(resource.group, resource.version, kind)
            want = [gvk(resource, kind)]
            assert doc["components"]["schemas"][name]["x-kubernetes-group-version-kind"] == want
            assert v2_doc["definitions"][name]["x-kubernetes-group-version-kind"] == want
        assert kind_schema(doc, gvk(resource)) is doc["components"]["schemas"][
            schema_name(resource.group, resource.version, resource.kind)]


def test_every_ref_resolves_inside_its_document(
    v3_docs: dict[tuple[str, str], dict[str, Any]], v2_doc: dict[str, Any],
) -> None:
    for doc in v3_docs.values():
        schemas = doc["components"]["schemas"]
        refs = [n["$ref"] for n in walk(doc) if isinstance(n.get("$ref"), str)]
        assert refs
        for ref in refs:
            assert ref.startswith("#/components/schemas/"), ref
            assert ref.removeprefix("#/components/schemas/") in schemas, ref
    definitions = v2_doc["definitions"]
    for node in walk(v2_doc):
        if isinstance(node.get("$ref"), str):
            assert node["$ref"].removeprefix("#/definitions/") in definitions, node["$ref"]
            assert node["$ref"].startswith("#/definitions/")


def test_documents_carry_no_unreferenced_schemas(
    v3_docs: dict[tuple[str, str], dict[str, Any]],
) -> None:
    # Each group-version carries only what its paths reach, like upstream's documents.
    apps = v3_docs[("apps", "v1")]["components"]["schemas"]
    assert "io.k8s.api.core.v1.PodSpec" in apps
    assert "io.k8s.api.core.v1.Node" not in apps
    assert "io.k8s.api.autoscaling.v1.Scale" in apps


def test_v2_is_a_swagger_document(v2_doc: dict[str, Any]) -> None:
    assert v2_doc["swagger"] == "2.0"
    assert set(v2_doc) >= {"swagger", "info", "paths", "definitions"}
    assert {"title", "version"} <= set(v2_doc["info"])
    for node in walk(v2_doc):
        assert "oneOf" not in node and "allOf" not in node and "requestBody" not in node
        assert not any(key.startswith("_") for key in node)
    for path, item in v2_doc["paths"].items():
        for param in item["parameters"]:
            assert param["in"] in ("path", "query") and "type" in param
        for method, op in item.items():
            if method == "parameters":
                continue
            assert method in ("get", "put", "post", "patch", "delete")
            assert op["consumes"] and op["produces"] and op["responses"]["200"]["schema"]
            for param in op.get("parameters", []):
                if param["in"] == "body":
                    assert param["name"] == "body" and "$ref" in param["schema"]
                else:
                    assert "type" in param and "schema" not in param
            if method == "patch":
                assert "application/strategic-merge-patch+json" in op["consumes"], path
    # The same schema table feeds both versions.
    assert v2_doc["definitions"]["io.k8s.apimachinery.pkg.api.resource.Quantity"]["type"] == (
        "string")
    assert json.loads(json.dumps(v2_doc)) == v2_doc


def test_quantity_and_int_or_string_differ_only_where_the_versions_do(
    v3_docs: dict[tuple[str, str], dict[str, Any]], v2_doc: dict[str, Any],
) -> None:
    v3 = v3_docs[("", "v1")]["components"]["schemas"]
    quantity = v3["io.k8s.apimachinery.pkg.api.resource.Quantity"]
    assert quantity["oneOf"] == [{"type": "string"}, {"type": "number"}]
    assert "type" not in quantity
    int_or_string = v2_doc["definitions"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert (int_or_string["type"], int_or_string["format"]) == ("string", "int-or-string")
    for doc in v3_docs.values():
        assert not any(key.startswith("_") for node in walk(doc) for key in node)


# --- what kubectl looks up --------------------------------------------------------------------


def test_kubectl_detects_server_side_field_validation_for_every_kind(
    v3_docs: dict[tuple[str, str], dict[str, Any]],
) -> None:
    for resource in (r for r in CATALOGUE.resources if r.stored):  # reviews: POST only
        doc = v3_docs[(resource.group, resource.version)]
        assert supports_field_validation(doc, gvk(resource)), resource.kind
        assert supports_strategic_merge(doc, gvk(resource)), resource.kind
        for method in ("post", "put", "patch"):
            ops = [item[method] for item in doc["paths"].values()
                   if method in item
                   and item[method]["x-kubernetes-group-version-kind"] == gvk(resource)]
            for op in ops:
                names = {p["name"] for p in op["parameters"]}
                assert {"dryRun", "fieldManager", "fieldValidation"} <= names, op["operationId"]


def test_field_validation_probe_can_fail() -> None:
    # The re-enactment must be able to say no, or the test above proves nothing.
    doc = openapi_v3_group_version(CATALOGUE, "", "v1")
    assert doc is not None
    for item in doc["paths"].values():
        if "patch" in item:
            item["patch"]["parameters"] = [p for p in item["patch"]["parameters"]
                                           if p["name"] != "fieldValidation"]
    assert not supports_field_validation(doc, {"group": "", "kind": "Pod", "version": "v1"})


def test_explain_finds_every_resource(v3_docs: dict[tuple[str, str], dict[str, Any]]) -> None:
    for resource in CATALOGUE.resources:
        doc = v3_docs[(resource.group, resource.version)]
        found = explain_gvk(doc, resource)
        assert found == gvk(resource), resource.plural
        schema = kind_schema(doc, found)
        assert schema is not None
        assert schema["description"]


def test_explain_pods_spec_containers(v3_docs: dict[tuple[str, str], dict[str, Any]]) -> None:
    pods = CATALOGUE.by_plural("pods")
    assert pods is not None
    doc = v3_docs[("", "v1")]
    field = explain_field(doc, pods, "spec.containers")
    assert field["type"] == "array" and field["description"]
    container = resolve_v3(field["items"], doc["components"]["schemas"])
    assert {"name", "image", "ports", "env", "resources", "volumeMounts"} <= set(
        container["properties"])
    assert container["required"] == ["name"]
    for dotted in ("spec.containers.env.valueFrom.secretKeyRef.key",
                   "spec.volumes.configMap.items.path",
                   ("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                   ".nodeSelectorTerms.matchExpressions.operator"),
                   "status.containerStatuses.state.waiting.reason",
                   "metadata.ownerReferences.uid"):
        assert explain_field(doc, pods, dotted)["description"], dotted
    deployments = CATALOGUE.by_plural("deployments")
    assert deployments is not None
    apps = v3_docs[("apps", "v1")]
    strategy = explain_field(apps, deployments, "spec.template.spec.containers.ports")
    assert strategy["x-kubernetes-patch-merge-key"] == "containerPort"


@pytest.mark.parametrize(
    ("kind_name", "field", "merge_key", "strategy"),
    [
        ("io.k8s.api.core.v1.PodSpec", "containers", "name", "merge"),
        ("io.k8s.api.core.v1.PodSpec", "initContainers", "name", "merge"),
        ("io.k8s.api.core.v1.PodSpec", "volumes", "name", "merge,retainKeys"),
        ("io.k8s.api.core.v1.PodSpec", "imagePullSecrets", "name", "merge"),
        ("io.k8s.api.core.v1.Container", "env", "name", "merge"),
        ("io.k8s.api.core.v1.Container", "ports", "containerPort", "merge"),
        ("io.k8s.api.core.v1.Container", "volumeMounts", "mountPath", "merge"),
        ("io.k8s.api.core.v1.ServiceSpec", "ports", "port", "merge"),
        ("io.k8s.api.core.v1.PodStatus", "conditions", "type", "merge"),
        ("io.k8s.api.core.v1.NodeStatus", "conditions", "type", "merge"),
        ("io.k8s.api.core.v1.NodeStatus", "addresses", "type", "merge"),
        ("io.k8s.api.apps.v1.DeploymentStatus", "conditions", "type", "merge"),
        ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "ownerReferences", "uid", "merge"),
        ("io.k8s.api.core.v1.PodSpec", "tolerations", None, None),
        ("io.k8s.api.core.v1.NodeSpec", "taints", None, None),
    ],
)
def test_patch_metadata_on_lists(
    v3_docs: dict[tuple[str, str], dict[str, Any]],
    kind_name: str, field: str, merge_key: str | None, strategy: str | None,
) -> None:
    for doc in v3_docs.values():
        schemas = doc["components"]["schemas"]
        if kind_name in schemas:
            prop = schemas[kind_name]["properties"][field]
            assert prop.get("x-kubernetes-patch-merge-key") == merge_key
            assert prop.get("x-kubernetes-patch-strategy") == strategy
            return
    raise AssertionError(f"{kind_name} is in no document")


def test_deployment_strategy_retains_keys(
    v3_docs: dict[tuple[str, str], dict[str, Any]],
) -> None:
    spec = v3_docs[("apps", "v1")]["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"]
    strategy = spec["properties"]["strategy"]
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"
    assert strategy["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.apps.v1."
                                          "DeploymentStrategy"}]


TYPICAL_DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"a": "b"},
                 "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "1"}]},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "nodeSelector": {"disk": "ssd"},
                "securityContext": {"runAsNonRoot": True,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "affinity": {"podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [{
                        "weight": 100,
                        "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                            "labelSelector": {"matchLabels": {"app": "web"}}},
                    }]}},
                "tolerations": [{"key": "k", "operator": "Exists"}],
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                                               "whenUnsatisfiable": "ScheduleAnyway",
                                               "labelSelector": {"matchLabels": {"a": "b"}}}],
                "volumes": [
                    {"name": "cfg", "configMap": {"name": "cfg",
                                                  "items": [{"key": "a", "path": "a"}]}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                    {"name": "sec", "secret": {"secretName": "s"}},
                    {"name": "data", "persistentVolumeClaim": {"claimName": "d"}},
                    {"name": "token", "projected": {"sources": [
                        {"serviceAccountToken": {"path": "t"}}]}},
                ],
                "initContainers": [{"name": "init", "image": "busybox",
                                    "command": ["sh", "-c", "true"]}],
                "containers": [{
                    "name": "nginx",
                    "image": "nginx:1.27",
                    "ports": [{"containerPort": 80, "name": "http"}],
                    "env": [{"name": "A", "value": "1"},
                            {"name": "POD", "valueFrom": {"fieldRef": {
                                "fieldPath": "metadata.name"}}},
                            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s",
                                                                          "key": "pw"}}}],
                    "envFrom": [{"configMapRef": {"name": "cfg"}}],
                    "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}},
                    "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
                    "livenessProbe": {"exec": {"command": ["true"]}},
                    "startupProbe": {"tcpSocket": {"port": 80}},
                    "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
                    "securityContext": {"capabilities": {"drop": ["ALL"]},
                                        "allowPrivilegeEscalation": False},
                    "volumeMounts": [{"name": "cfg", "mountPath": "/etc/web"}],
                }],
            },
        },
    },
}


def test_typical_manifests_need_no_fallback_when_patching(
    v3_docs: dict[tuple[str, str], dict[str, Any]],
) -> None:
    deployments = CATALOGUE.by_plural("deployments")
    assert deployments is not None
    apps = v3_docs[("apps", "v1")]
    schema = kind_schema(apps, gvk(deployments))
    assert schema is not None
    assert patch_meta_walk(TYPICAL_DEPLOYMENT, schema, apps["components"]["schemas"]) == []

    core = v3_docs[("", "v1")]
    service = {"metadata": {"name": "s"}, "spec": {"selector": {"app": "web"},
                                                   "ports": [{"port": 80, "targetPort": 8080}],
                                                   "sessionAffinityConfig": {
                                                       "clientIP": {"timeoutSeconds": 10}}}}
    svc_schema = kind_schema(core, {"group": "", "kind": "Service", "version": "v1"})
    assert svc_schema is not None
    assert patch_meta_walk(service, svc_schema, core["components"]["schemas"]) == []


def test_patch_meta_walk_reports_unknown_fields(
    v3_docs: dict[tuple[str, str], dict[str, Any]],
) -> None:
    apps = v3_docs[("apps", "v1")]
    schema = kind_schema(apps, {"group": "apps", "kind": "Deployment", "version": "v1"})
    assert schema is not None
    bogus = {"spec": {"template": {"spec": {"containers": [{"name": "c", "bogus": {"x": 1}}]}}}}
    assert patch_meta_walk(bogus, schema, apps["components"]["schemas"]) == [
        ".spec.template.spec.containers[0].bogus"]


# --- fidelity to the real API -----------------------------------------------------------------


def _upstream_model(name: str) -> Any:
    """The official Python client's model class for a schema name, when it has one."""
    models = importlib.import_module("kubernetes.client.models")
    parts = name.split(".")
    kind, version = parts[-1], parts[-2]
    package = parts[-3]
    prefixes = [f"{package.capitalize()}{version.capitalize()}", version.capitalize()]
    if package in ("apimachinery", "meta", "resource", "intstr"):
        prefixes = [version.capitalize()]
    for prefix in prefixes:
        model = getattr(models, f"{prefix}{kind}", None)
        if model is not None:
            return model
    return None


def test_field_names_match_the_kubernetes_api() -> None:
    pytest.importorskip("kubernetes.client.models")
    checked = 0
    for name, schema in openapi.SCHEMAS.items():
        model = _upstream_model(name)
        if model is None or "properties" not in schema:
            continue
        known = set(model.attribute_map.values())
        unknown = set(schema["properties"]) - known
        assert not unknown, f"{name}: {sorted(unknown)} are not fields of {model.__name__}"
        checked += 1
    assert checked > 80


def test_every_schema_and_field_has_a_description() -> None:
    for name, schema in openapi.SCHEMAS.items():
        assert schema.get("description"), name
        for field, prop in (schema.get("properties") or {}).items():
            assert prop.get("description"), f"{name}.{field}"


# --- caching and extension --------------------------------------------------------------------


def test_etag_is_stable_and_served_bytes_match() -> None:
    docs = OpenAPIDocuments(CATALOGUE)
    body, tag = docs.v3_group_version("apps", "v1") or (b"", "")
    assert body == serialize(openapi_v3_group_version(CATALOGUE, "apps", "v1") or {})
    assert tag == etag(body) == etag(json.loads(body))
    assert len(tag) == 128 and tag == tag.upper()
    assert docs.v3_group_version("apps", "v1") is docs.v3_group_version("apps", "v1")
    assert docs.v3_path("apis/apps/v1") == (body, tag)
    assert docs.v3_path("apis/nope/v1") is None
    index = json.loads(docs.v3_index()[0])
    assert index["paths"]["apis/apps/v1"]["serverRelativeURL"].endswith(f"hash={tag}")
    v2_body, v2_tag = docs.v2()
    assert json.loads(v2_body)["swagger"] == "2.0" and v2_tag == etag(v2_body)


def test_a_new_kind_without_a_written_schema_still_works() -> None:
    widget = Resource("example.com", "v1", "Widget", "widgets", True, ("wd",))
    catalogue = Catalogue((*CATALOGUE.resources, widget))
    doc = openapi_v3_group_version(catalogue, "example.com", "v1")
    assert doc is not None
    want = {"group": "example.com", "kind": "Widget", "version": "v1"}
    schema = kind_schema(doc, want)
    assert schema is not None
    assert schema["properties"]["spec"]["x-kubernetes-preserve-unknown-fields"] is True
    assert supports_field_validation(doc, want)
    assert explain_gvk(doc, widget) == want
    assert "apis/example.com/v1" in openapi_v3_index(catalogue)["paths"]


def _python_type_matches(prop: dict[str, Any], upstream: str) -> bool:
    """Does a property's schema agree with the Python client's declared type?"""
    if prop.get("x-kubernetes-preserve-unknown-fields"):
        return upstream == "object" or upstream[:1].isupper()  # a struct we keep loose
    ref = prop.get("$ref")
    if ref == openapi.QUANTITY:
        return upstream == "str"
    if ref == openapi.INT_OR_STRING:
        return upstream == "object"
    if ref in (openapi.TIME, openapi.MICRO_TIME):
        return upstream == "datetime"
    if ref == openapi.META + "FieldsV1":
        return upstream == "object"
    if ref:
        model = _upstream_model(ref)
        return model is not None and model.__name__ == upstream
    kind = prop.get("type")
    # Client releases spell containers list[X] / dict(str, X) or List[X] / Dict[str, X].
    if kind == "array":
        return upstream[:5].lower() == "list[" and _python_type_matches(prop["items"],
                                                                        upstream[5:-1])
    if kind == "object" and "additionalProperties" in prop:
        return upstream[:10].lower() in ("dict(str, ", "dict[str, ") and _python_type_matches(
            prop["additionalProperties"], upstream[10:-1])
    if kind == "string" and prop.get("format") == "byte":
        return upstream == "bytes"
    return {"string": "str", "integer": "int", "boolean": "bool"}.get(str(kind)) == upstream


def test_field_types_match_the_kubernetes_api() -> None:
    pytest.importorskip("kubernetes.client.models")
    mismatches = []
    for name, schema in openapi.SCHEMAS.items():
        model = _upstream_model(name)
        if model is None:
            continue
        attribute_of = {json_name: attr for attr, json_name in model.attribute_map.items()}
        for field, prop in (schema.get("properties") or {}).items():
            upstream = model.openapi_types[attribute_of[field]]
            if not _python_type_matches(prop, upstream):
                mismatches.append(f"{name}.{field}: {upstream}")
        for field in schema.get("required", []):
            assert field in schema["properties"], f"{name} requires unknown {field}"
    assert not mismatches


def test_type_check_can_fail() -> None:
    assert not _python_type_matches({"type": "string"}, "int")
    assert not _python_type_matches({"$ref": "io.k8s.api.core.v1.Probe"}, "V1Container")
    assert _python_type_matches({"type": "array", "items": {"$ref": "io.k8s.api.core.v1.Probe"}},
                                "list[V1Probe]")
