"""The four RBAC kinds as the API serves them: defaults, validation (upstream's causes),
table columns, OpenAPI schemas, and the aggregation of ClusterRole rules."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from api.defaults import apply_defaults
from api.patch import strategic_merge_patch
from api.resources import CATALOGUE
from api.validation import validate
from apiserver import openapi
from apiserver.tables import to_table
from controller_manager.clusterroleaggregation import aggregated_rules

Obj = dict[str, Any]
G = "rbac.authorization.k8s.io"


def causes(plural: str, obj: Obj, old: Obj | None = None) -> list[tuple[str, str, str]]:
    obj = copy.deepcopy(obj)
    apply_defaults(plural, obj)
    return [(c["field"], c["reason"], c["message"]) for c in validate(plural, obj, old)]


def role(*rules: Obj, ns: str = "default") -> Obj:
    return {"metadata": {"name": "r", "namespace": ns}, "rules": list(rules)}


def cluster_role(*rules: Obj) -> Obj:
    return {"metadata": {"name": "c"}, "rules": list(rules)}


def binding(kind: str, *subjects: Obj, ns: str = "default") -> Obj:
    md: Obj = {"name": "b"}
    if ns:
        md["namespace"] = ns
    return {"metadata": md, "roleRef": {"kind": kind, "name": "view"},
            "subjects": list(subjects)}


# --- defaults ---------------------------------------------------------------------------------

def test_binding_defaults() -> None:
    obj = binding("ClusterRole", {"kind": "User", "name": "u"}, {"kind": "Group", "name": "g"},
                  {"kind": "ServiceAccount", "name": "s"}, {"kind": "Other", "name": "o"},
                  {"kind": "User", "name": "v", "apiGroup": "example.com"})
    apply_defaults("rolebindings", obj)
    assert obj["roleRef"]["apiGroup"] == G
    assert [s.get("apiGroup") for s in obj["subjects"]] == [G, G, "", None, "example.com"]
    broken = {"roleRef": "x", "subjects": [{"kind": ["User"]}, "y"]}
    apply_defaults("clusterrolebindings", broken)  # never raises on odd shapes
    assert broken["subjects"][0] == {"kind": ["User"]}


# --- validation -------------------------------------------------------------------------------

def test_rules_need_verbs_groups_and_resources() -> None:
    assert causes("roles", role({})) == [
        ("rules[0].verbs", "FieldValueRequired",
         "Required value: verbs must contain at least one value"),
        ("rules[0].apiGroups", "FieldValueRequired",
         "Required value: resource rules must supply at least one api group"),
        ("rules[0].resources", "FieldValueRequired",
         "Required value: resource rules must supply at least one resource"),
    ]
    assert causes("roles", role({"verbs": ["get"], "apiGroups": [""], "resources": ["a", "b"],
                                 "resourceNames": ["x"]})) == [
        ("rules[0].resourceNames", "FieldValueRequired",
         "Required value: resource names cannot apply to multiple resources")]


def test_non_resource_urls() -> None:
    urls = {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}
    assert causes("clusterroles", cluster_role(urls)) == []
    assert causes("roles", role(urls)) == [
        ("rules[0].nonResourceURLs", "FieldValueInvalid",
         ('Invalid value: []string{"/healthz"}: namespaced rules cannot apply to non-resource '
         'URLs'))]
    assert causes("clusterroles", cluster_role({**urls, "resources": ["pods"]})) == [
        ("rules[0].nonResourceURLs", "FieldValueInvalid",
         ('Invalid value: []string{"/healthz"}: rules cannot apply to both regular resources '
         'and non-resource URLs'))]


def test_aggregation_rule() -> None:
    obj = cluster_role()
    obj["aggregationRule"] = {"clusterRoleSelectors": []}
    assert causes("clusterroles", obj) == [
        ("aggregationRule.clusterRoleSelectors", "FieldValueRequired",
         ("Required value: at least one clusterRoleSelector required if aggregationRule is "
         "non-nil"))]
    obj["aggregationRule"] = {"clusterRoleSelectors": [
        {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}]}
    assert [c[0] for c in causes("clusterroles", obj)] == [
        "aggregationRule.clusterRoleSelectors[0].matchExpressions[0].operator"]


def test_names_only_need_to_be_path_segments() -> None:
    ok = role({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]})
    ok["metadata"]["name"] = "system:Mixed_Case:x"
    assert causes("roles", ok) == []
    ok["metadata"]["name"] = "a/b%c"
    assert causes("roles", ok) == [
        ("metadata.name", "FieldValueInvalid", 'Invalid value: "a/b%c": may not contain \'/\''),
        ("metadata.name", "FieldValueInvalid", 'Invalid value: "a/b%c": may not contain \'%\'')]
    ok["metadata"]["name"] = ".."
    assert causes("roles", ok) == [
        ("metadata.name", "FieldValueInvalid", 'Invalid value: "..": may not be \'..\'')]


def test_role_ref() -> None:
    obj = binding("Role", ns="")
    obj["roleRef"]["apiGroup"] = "example.com"
    assert causes("clusterrolebindings", obj) == [
        ("roleRef.apiGroup", "FieldValueNotSupported",
         'Unsupported value: "example.com": supported values: "rbac.authorization.k8s.io"'),
        ("roleRef.kind", "FieldValueNotSupported",
         'Unsupported value: "Role": supported values: "ClusterRole"')]
    obj = binding("Widget")
    obj["roleRef"]["name"] = ""
    assert causes("rolebindings", obj) == [
        ("roleRef.kind", "FieldValueNotSupported",
         'Unsupported value: "Widget": supported values: "Role", "ClusterRole"'),
        ("roleRef.name", "FieldValueRequired", "Required value")]
    assert causes("rolebindings", {"metadata": {"name": "b", "namespace": "d"}})[0] == (
        "roleRef.apiGroup", "FieldValueNotSupported",
        'Unsupported value: "": supported values: "rbac.authorization.k8s.io"')


def test_subjects() -> None:
    sa = {"kind": "ServiceAccount", "name": "builder"}
    assert causes("rolebindings", binding("ClusterRole", sa)) == []
    assert causes("clusterrolebindings", binding("ClusterRole", sa, ns="")) == [
        ("subjects[0].namespace", "FieldValueRequired", "Required value")]
    assert causes("rolebindings", binding("ClusterRole", {**sa, "name": "Bad_Name"}))[0][:2] == (
        "subjects[0].name", "FieldValueInvalid")
    assert causes("rolebindings", binding("ClusterRole", {**sa, "apiGroup": G})) == [
        ("subjects[0].apiGroup", "FieldValueNotSupported",
         f'Unsupported value: "{G}": supported values: ""')]
    assert causes("rolebindings", binding("ClusterRole", {"kind": "User", "name": ""})) == [
        ("subjects[0].name", "FieldValueRequired", "Required value"),
        ("subjects[0].name", "FieldValueInvalid",
         'Invalid value: "": user name cannot be empty')]
    assert causes("rolebindings", binding("ClusterRole", {"kind": "Group", "name": "g",
                                                          "apiGroup": "x"})) == [
        ("subjects[0].apiGroup", "FieldValueNotSupported",
         f'Unsupported value: "x": supported values: "{G}"')]
    assert causes("rolebindings", binding("ClusterRole", {"kind": "Robot", "name": "r"})) == [
        ("subjects[0].kind", "FieldValueNotSupported",
         'Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"')]


def test_role_ref_is_immutable() -> None:
    old = binding("ClusterRole")
    apply_defaults("rolebindings", old)
    new = copy.deepcopy(old)
    new["subjects"] = [{"kind": "User", "name": "added"}]
    assert causes("rolebindings", new, old) == []
    new["roleRef"]["name"] = "edit"
    assert causes("rolebindings", new, old) == [
        ("roleRef", "FieldValueInvalid",
         ('Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", '
         'Kind:"ClusterRole", Name:"edit"}: cannot change roleRef'))]


def test_wrong_shapes_are_causes_not_crashes() -> None:
    assert causes("roles", {"metadata": {"name": "r", "namespace": "d"}, "rules": "x"}) == [
        ("rules", "FieldValueInvalid", 'Invalid value: "string": must be a list')]
    found = causes("clusterrolebindings", {"metadata": {"name": "b"}, "roleRef": [],
                                           "subjects": [1]})
    assert ("roleRef", "FieldValueInvalid", 'Invalid value: "array": must be an object') in found
    assert ("subjects[0]", "FieldValueInvalid", 'Invalid value: "number": must be an object') \
        in found


# --- tables -----------------------------------------------------------------------------------

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_role_tables_show_the_creation_date() -> None:
    table = to_table(CATALOGUE.require("clusterroles"),
                     [{"metadata": {"name": "view", "creationTimestamp": "2024-12-31T10:00:00Z"}}],
                     {"resourceVersion": "1"}, now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Created At"]
    assert table["columnDefinitions"][1]["type"] == "date"
    assert table["rows"][0]["cells"] == ["view", "2024-12-31T10:00:00Z"]


def test_binding_tables() -> None:
    obj = {"metadata": {"name": "b", "creationTimestamp": "2025-01-01T11:00:00Z"},
           "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": "view"},
           "subjects": [{"kind": "User", "name": "u1"}, {"kind": "Group", "name": "g"},
                        {"kind": "ServiceAccount", "name": "s", "namespace": "ns"},
                        {"kind": "User", "name": "u2"}]}
    for plural in ("rolebindings", "clusterrolebindings"):
        table = to_table(CATALOGUE.require(plural), [obj], {"resourceVersion": "1"}, now=NOW)
        assert [(c["name"], c["priority"]) for c in table["columnDefinitions"]] == [
            ("Name", 0), ("Role", 0), ("Age", 0), ("Users", 1), ("Groups", 1),
            ("ServiceAccounts", 1)]
        assert table["rows"][0]["cells"] == ["b", "ClusterRole/view", "60m", "u1, u2", "g",
                                             "ns/s"]


# --- OpenAPI ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"])
def test_openapi_schemas(kind: str) -> None:
    doc = openapi.openapi_v3_group_version(CATALOGUE, G, "v1")
    assert doc is not None
    schemas = doc["components"]["schemas"]
    schema = schemas[f"io.k8s.api.rbac.v1.{kind}"]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": G, "kind": kind, "version": "v1"}]
    if kind.endswith("Binding"):
        assert schema["required"] == ["roleRef"]
        subjects = schema["properties"]["subjects"]
        assert subjects["x-kubernetes-list-type"] == "atomic"
        assert "x-kubernetes-patch-strategy" not in subjects
    else:
        rule = schemas["io.k8s.api.rbac.v1.PolicyRule"]
        assert rule["required"] == ["verbs"]
        assert set(rule["properties"]) == {"apiGroups", "nonResourceURLs", "resourceNames",
                                           "resources", "verbs"}


# --- aggregation ------------------------------------------------------------------------------

def labelled(name: str, labels: dict[str, str], *rules: Obj) -> Obj:
    return {"metadata": {"name": name, "labels": labels}, "rules": list(rules)}


R1 = {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}
R2 = {"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}
R3 = {"verbs": ["get"], "nonResourceURLs": ["/x"]}


def test_aggregated_rules_union_in_name_order_without_duplicates() -> None:
    agg = {"metadata": {"name": "agg", "labels": {"a": "true"}},
           "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "true"}},
                                                        {"matchLabels": {"b": "true"}}]},
           "rules": [R3]}
    roles = [agg,
             labelled("zz", {"a": "true"}, R2, {**R1, "resourceNames": []}),
             labelled("aa", {"a": "true", "b": "true"}, R1),
             labelled("mm", {"b": "true"}, R3),
             labelled("other", {"c": "true"}, {"verbs": ["*"], "apiGroups": ["*"],
                                               "resources": ["*"]})]
    # Itself excluded; empty lists equal absent ones; selector order, then name order.
    assert aggregated_rules(agg, roles) == [R1, R2, R3]
    assert aggregated_rules({**agg, "aggregationRule": {"clusterRoleSelectors": []}},
                            roles) == []


def test_strategic_merge_patch_replaces_rbac_lists() -> None:
    stored = {"metadata": {"name": "r", "finalizers": ["a"]}, "rules": [R1, R2]}
    patched = strategic_merge_patch(stored, {"metadata": {"finalizers": ["b"]}, "rules": [R3]},
                                    "ClusterRole")
    assert patched["rules"] == [R3]  # atomic upstream: replaced, not merged
    assert sorted(patched["metadata"]["finalizers"]) == ["a", "b"]  # metadata still merges
