"""The rbac.authorization.k8s.io/v1 kinds on a real apiserver: CRUD, upstream's validation
causes, roleRef immutability, kubectl's create/get/explain/apply, and the ClusterRole
aggregation controller running in-process."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from api import errors
from api.resources import CATALOGUE
from client.rest import ApiClient
from controller_manager.options import Options
from tests.conftest import ApiServer
from tests.eventually import eventually
from tests.integration.conftest import controllers_running, kubectl

pytestmark = pytest.mark.asyncio

Obj = dict[str, Any]
G = "rbac.authorization.k8s.io"
NAMESPACES = CATALOGUE.require("namespaces")
ROLES = CATALOGUE.require("roles")
CLUSTERROLES = CATALOGUE.require("clusterroles")
ROLEBINDINGS = CATALOGUE.require("rolebindings")
CLUSTERROLEBINDINGS = CATALOGUE.require("clusterrolebindings")


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def ns(api: ApiClient) -> str:
    name = uniq("rbac")
    await api.create(NAMESPACES, {"metadata": {"name": name}})
    return name


POD_READER = {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}


async def test_crud_and_defaults(api: ApiClient, ns: str) -> None:
    role = await api.create(ROLES, {"metadata": {"name": "pod-reader"}, "rules": [POD_READER]},
                            ns)
    assert role["kind"] == "Role" and role["apiVersion"] == f"{G}/v1"
    assert role["rules"] == [POD_READER]
    binding = await api.create(ROLEBINDINGS, {
        "metadata": {"name": "read-pods"},
        "roleRef": {"kind": "Role", "name": "pod-reader"},
        "subjects": [{"kind": "User", "name": "jane"},
                     {"kind": "ServiceAccount", "name": "default", "namespace": ns}]}, ns)
    # SetDefaults_RoleBinding and SetDefaults_Subject.
    assert binding["roleRef"] == {"apiGroup": G, "kind": "Role", "name": "pod-reader"}
    assert binding["subjects"][0]["apiGroup"] == G
    assert binding["subjects"][1].get("apiGroup", "") == ""
    listed = await api.list(ROLEBINDINGS, ns)
    assert listed["kind"] == "RoleBindingList"
    assert [b["metadata"]["name"] for b in listed["items"]] == ["read-pods"]

    name = uniq("system:test")  # colons are fine in RBAC names
    cluster_role = await api.create(CLUSTERROLES, {
        "metadata": {"name": name},
        "rules": [{"nonResourceURLs": ["/healthz/*"], "verbs": ["get"]}]})
    assert (await api.get(CLUSTERROLES, name))["metadata"]["uid"] == \
        cluster_role["metadata"]["uid"]
    crb = await api.create(CLUSTERROLEBINDINGS, {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "Group", "name": "watchers"}]})
    assert crb["subjects"] == [{"kind": "Group", "apiGroup": G, "name": "watchers"}]
    await api.delete(CLUSTERROLEBINDINGS, name)
    await api.delete(CLUSTERROLES, name)
    with pytest.raises(errors.NotFound):
        await api.get(CLUSTERROLES, name)


async def test_validation_causes(api: ApiClient, ns: str) -> None:
    with pytest.raises(errors.Invalid) as e:
        await api.create(ROLES, {"metadata": {"name": "bad"},
                                 "rules": [{"nonResourceURLs": ["/x"], "verbs": ["get"]}]}, ns)
    assert e.value.message == (
        f'Role.{G} "bad" is invalid: rules[0].nonResourceURLs: Invalid value: '
        '[]string{"/x"}: namespaced rules cannot apply to non-resource URLs')
    assert e.value.details is not None
    assert e.value.details["group"] == G and e.value.details["kind"] == "Role"
    with pytest.raises(errors.Invalid) as e:
        await api.create(CLUSTERROLEBINDINGS, {
            "metadata": {"name": uniq("bad")},
            "roleRef": {"kind": "Role", "name": "x"},
            "subjects": [{"kind": "ServiceAccount", "name": "sa"}, {"kind": "Robot",
                                                                    "name": "r"}]})
    assert e.value.details is not None
    assert [(c["field"], c["reason"]) for c in e.value.details["causes"]] == [
        ("roleRef.kind", "FieldValueNotSupported"),
        ("subjects[0].namespace", "FieldValueRequired"),
        ("subjects[1].kind", "FieldValueNotSupported")]


async def test_role_ref_cannot_change(api: ApiClient, ns: str) -> None:
    binding = await api.create(ROLEBINDINGS, {
        "metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "jane"}]}, ns)
    binding["subjects"].append({"kind": "User", "apiGroup": G, "name": "joe"})
    binding = await api.update(ROLEBINDINGS, binding)
    assert len(binding["subjects"]) == 2
    binding["roleRef"]["name"] = "edit"
    with pytest.raises(errors.Invalid) as e:
        await api.update(ROLEBINDINGS, binding)
    assert e.value.message == (
        f'RoleBinding.{G} "b" is invalid: roleRef: Invalid value: rbac.RoleRef{{APIGroup:'
        f'"{G}", Kind:"ClusterRole", Name:"edit"}}: cannot change roleRef')


async def test_kubectl_create_get_explain_apply(apiserver: ApiServer, api: ApiClient,
                                                ns: str) -> None:
    code, out, err = await kubectl(apiserver, "-n", ns, "create", "role", "pod-reader",
                                   "--verb=get,list", "--resource=pods,pods/log")
    assert code == 0, err
    code, out, err = await kubectl(apiserver, "-n", ns, "create", "rolebinding", "rb",
                                   "--clusterrole=view", "--user=jane", "--group=devs",
                                   f"--serviceaccount={ns}:default")
    assert code == 0, err
    role = await api.get(ROLES, "pod-reader", ns)
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods", "pods/log"],
                              "verbs": ["get", "list"]}]
    code, out, err = await kubectl(apiserver, "-n", ns, "get", "rolebinding", "rb", "-o", "wide")
    assert code == 0, err
    header, row = out.splitlines()
    assert header.split() == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    assert row.split()[:2] == ["rb", "ClusterRole/view"]
    assert row.split()[3:] == ["jane", "devs", f"{ns}/default"]
    code, out, err = await kubectl(apiserver, "-n", ns, "get", "roles")
    assert code == 0, err
    assert out.splitlines()[0].split() == ["NAME", "CREATED", "AT"]
    code, out, err = await kubectl(apiserver, "explain", "clusterrole.aggregationRule")
    assert code == 0, err
    assert "clusterRoleSelectors" in out
    for verbs in (["get"], ["get", "watch"]):
        manifest = {"apiVersion": f"{G}/v1", "kind": "Role",
                    "metadata": {"name": "applied", "namespace": ns},
                    "rules": [{**POD_READER, "verbs": verbs}]}
        code, out, err = await kubectl(apiserver, "apply", "-f", "-",
                                       stdin=json.dumps(manifest))
        assert code == 0, err
    assert (await api.get(ROLES, "applied", ns))["rules"][0]["verbs"] == ["get", "watch"]


def aggregation_controller(api: ApiClient) -> contextlib.AbstractAsyncContextManager[None]:
    return controllers_running(api, Options(controllers=["clusterrole-aggregation"],
                                            leader_elect=False),
                               "test-clusterrole-aggregation")


async def test_aggregation_controller(api: ApiClient) -> None:
    label = f"example.com/aggregate-{uuid.uuid4().hex[:8]}"
    aggregate, part_a, part_b = uniq("agg"), uniq("part-a"), uniq("part-b")
    rule_a = {"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get"]}
    rule_b = {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}
    await api.create(CLUSTERROLES, {
        "metadata": {"name": aggregate},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]}})
    await api.create(CLUSTERROLES, {"metadata": {"name": part_a, "labels": {label: "true"}},
                                    "rules": [rule_a]})

    def rules_are(want: list[Obj]) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return list((await api.get(CLUSTERROLES, aggregate)).get("rules") or []) == want
        return check

    async with aggregation_controller(api):
        await eventually(rules_are([rule_a]),
                         what="the labelled role's rules aggregated")
        await api.create(CLUSTERROLES, {"metadata": {"name": part_b, "labels": {label: "true"}},
                                        "rules": [rule_b, rule_a]})
        await eventually(rules_are([rule_a, rule_b]),
                         what="a second role added, without duplicates")
        await api.delete(CLUSTERROLES, part_a)
        await eventually(rules_are([rule_b, rule_a]),
                         what="rules follow the remaining role, in its order")
        await api.patch(CLUSTERROLES, part_b, {"metadata": {"labels": {label: None}}})
        await eventually(rules_are([]),
                         what="no role selected any more")
    for name in (aggregate, part_b):
        await api.delete(CLUSTERROLES, name)


async def test_aggregation_with_match_expressions(api: ApiClient) -> None:
    name = uniq("view-extra")
    aggregate = uniq("my-view")
    label = f"example.com/{aggregate}"
    await api.create(CLUSTERROLES, {
        "metadata": {"name": aggregate},
        "aggregationRule": {"clusterRoleSelectors": [
            {"matchExpressions": [{"key": label, "operator": "Exists"}]}]}})
    rule = {"apiGroups": ["example.com"], "resources": ["gadgets"], "verbs": ["watch"]}
    async with aggregation_controller(api):
        await api.create(CLUSTERROLES, {"metadata": {"name": name, "labels": {label: "x"}},
                                        "rules": [rule]})

        async def aggregated() -> bool:
            return (await api.get(CLUSTERROLES, aggregate)).get("rules") == [rule]
        await eventually(aggregated, what="matchExpressions selectors aggregate too")
    await api.delete(CLUSTERROLES, name)
    await api.delete(CLUSTERROLES, aggregate)

