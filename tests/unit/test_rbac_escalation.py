"""Escalation prevention: Covers, the message of an escalation, and the role and binding
write checks (escalate, bind, system:masters, aggregation, GC-only updates)."""

from __future__ import annotations

from typing import Any

import pytest

from api.errors import Forbidden, NotFound
from apiserver.auth.attributes import AUTHENTICATED, MASTERS, Attributes, Decision, UserInfo
from apiserver.auth.escalation import (
    breakdown_rule,
    check_binding_write,
    check_role_write,
    compact_rules,
    compact_string,
    confirm_no_escalation,
    covers,
    escalation_message,
)
from apiserver.auth.rbac import MemorySource, RBACAuthorizer

Obj = dict[str, Any]
G = "rbac.authorization.k8s.io"


def r(verbs: list[str], groups: list[str] | None = None, resources: list[str] | None = None,
      names: list[str] | None = None, urls: list[str] | None = None) -> Obj:
    out: Obj = {"verbs": verbs}
    for key, value in (("apiGroups", groups), ("resources", resources),
                       ("resourceNames", names), ("nonResourceURLs", urls)):
        if value is not None:
            out[key] = value
    return out


# --- Covers -----------------------------------------------------------------------------------

def test_breakdown_is_per_group_resource_verb_and_name() -> None:
    rule = r(["get", "list"], ["", "apps"], ["pods"], names=["a", "b"])
    assert len(breakdown_rule(rule)) == 2 * 2 * 2
    assert breakdown_rule(r(["get"], urls=["/a", "/b"])) == [
        {"nonResourceURLs": ["/a"], "verbs": ["get"]},
        {"nonResourceURLs": ["/b"], "verbs": ["get"]}]


@pytest.mark.parametrize(("owner", "wanted", "ok"), [
    ([r(["*"], ["*"], ["*"])], [r(["delete"], ["apps"], ["deployments/scale"])], True),
    ([r(["get"], [""], ["pods"])], [r(["get", "list"], [""], ["pods"])], False),
    # The union of owner rules covers, rule by broken-down rule.
    ([r(["get"], [""], ["pods"]), r(["list"], [""], ["pods"])],
     [r(["get", "list"], [""], ["pods"])], True),
    ([r(["get"], ["*"], ["*/scale"])], [r(["get"], ["apps"], ["deployments/scale"])], True),
    ([r(["get"], ["*"], ["*/scale"])], [r(["get"], ["apps"], ["deployments"])], False),
    # Names: an owner limited to names covers only those names.
    ([r(["get"], [""], ["secrets"])], [r(["get"], [""], ["secrets"], names=["s"])], True),
    ([r(["get"], [""], ["secrets"], names=["s"])], [r(["get"], [""], ["secrets"])], False),
    ([r(["get"], [""], ["secrets"], names=["s", "t"])],
     [r(["get"], [""], ["secrets"], names=["t"])], True),
    ([r(["get"], urls=["/healthz/*"])], [r(["get"], urls=["/healthz/etcd"])], True),
    ([r(["get"], urls=["/healthz/*"])], [r(["get"], urls=["/metrics"])], False),
    ([r(["*"], urls=["*"])], [r(["get", "post"], urls=["/anything"])], True),
])
def test_covers(owner: list[Obj], wanted: list[Obj], ok: bool) -> None:
    assert covers(owner, wanted)[0] is ok
    assert (confirm_no_escalation(owner, wanted) == []) is ok


def test_uncovered_rules_are_the_missing_pieces() -> None:
    missing = confirm_no_escalation([r(["get"], [""], ["pods"])],
                                    [r(["get", "delete"], [""], ["pods", "secrets"])])
    assert missing == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["delete"]},
    ]


def test_compact_rules_and_strings() -> None:
    compacted = compact_rules([
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["delete"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["s"]},
    ])
    assert [compact_string(c) for c in compacted] == [
        '{APIGroups:["apps"], Resources:["deployments"], Verbs:["create" "delete"]}',
        '{APIGroups:[""], Resources:["secrets"], ResourceNames:["s"], Verbs:["get"]}',
    ]
    assert compact_string(r(["get"], urls=["/x"])) == '{NonResourceURLs:["/x"], Verbs:["get"]}'


def test_escalation_message_matches_upstream() -> None:
    user = UserInfo("u", groups=("g1", AUTHENTICATED))
    message = escalation_message(user, [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]},
    ])
    assert message == (
        'user "u" (groups=["g1" "system:authenticated"]) is attempting to grant RBAC '
        'permissions not currently held:\n'
        '{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}\n'
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}')
    assert escalation_message(UserInfo("u"), [r(["get"], urls=["/x"])], ["e1", "e2"]).endswith(
        '{NonResourceURLs:["/x"], Verbs:["get"]}; resolution errors: [[e1, e2]]')


# --- the write checks -----------------------------------------------------------------------

POD_ADMIN = r(["*"], [""], ["pods"])
ROLE_WRITER = r(["create", "update", "get"], [G], ["roles", "rolebindings", "clusterroles",
                                                   "clusterrolebindings"])


def cluster_role(name: str, *rules: Obj) -> Obj:
    return {"apiVersion": f"{G}/v1", "kind": "ClusterRole", "metadata": {"name": name},
            "rules": list(rules)}


def role(ns: str, name: str, *rules: Obj) -> Obj:
    return {"apiVersion": f"{G}/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": ns}, "rules": list(rules)}


def grant(source: MemorySource, name: str, user: str, *rules: Obj, ns: str = "") -> None:
    """Bind a ClusterRole with these rules to `user`, cluster-wide or in `ns`."""
    source.put(cluster_role(f"{name}-role", *rules))
    ref = {"apiGroup": G, "kind": "ClusterRole", "name": f"{name}-role"}
    subjects = [{"kind": "User", "apiGroup": G, "name": user}]
    if ns:
        source.put({"kind": "RoleBinding", "metadata": {"name": name, "namespace": ns},
                    "roleRef": ref, "subjects": subjects})
    else:
        source.put({"kind": "ClusterRoleBinding", "metadata": {"name": name}, "roleRef": ref,
                    "subjects": subjects})


@pytest.fixture
def world() -> tuple[MemorySource, RBACAuthorizer]:
    source = MemorySource()
    grant(source, "writer", "dev", ROLE_WRITER)
    grant(source, "pods", "dev", POD_ADMIN, ns="team")
    return source, RBACAuthorizer(source)


DEV = UserInfo("dev", groups=(AUTHENTICATED,))


def write_role(authz: RBACAuthorizer, user: UserInfo, obj: Obj, ns: str, **kw: Any) -> None:
    check_role_write(user, obj, ns, authz.authorize, authz.policy_rules_for, **kw)


def write_binding(authz: RBACAuthorizer, user: UserInfo, obj: Obj, ns: str,
                  **kw: Any) -> None:
    check_binding_write(user, obj, ns, authz.authorize, authz.policy_rules_for,
                        authz.role_ref_rules, **kw)


def test_a_role_within_what_the_writer_holds_is_allowed(
        world: tuple[MemorySource, RBACAuthorizer]) -> None:
    _, authz = world
    write_role(authz, DEV, role("team", "pod-reader", r(["get", "list"], [""], ["pods"])), "team")


def test_a_role_beyond_what_the_writer_holds_is_forbidden(
        world: tuple[MemorySource, RBACAuthorizer]) -> None:
    _, authz = world
    wanted = role("team", "too-much", r(["get"], [""], ["pods", "secrets"]),
                  r(["list"], [""], ["secrets"]))
    with pytest.raises(Forbidden) as e:
        write_role(authz, DEV, wanted, "team")
    assert e.value.message == (
        'roles.rbac.authorization.k8s.io "too-much" is forbidden: user "dev" '
        '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not '
        'currently held:\n{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}')
    assert e.value.details == {"group": G, "kind": "roles", "name": "too-much"}
    # What is held in one namespace does not count in another.
    with pytest.raises(Forbidden):
        write_role(authz, DEV, role("other", "r", r(["get"], [""], ["pods"])), "other")
    # Nor for a ClusterRole.
    with pytest.raises(Forbidden) as e:
        write_role(authz, DEV, cluster_role("c", r(["get"], [""], ["pods"])), "")
    assert e.value.message.startswith('clusterroles.rbac.authorization.k8s.io "c" is forbidden')


def test_escalate_verb_and_masters_skip_the_check(
        world: tuple[MemorySource, RBACAuthorizer]) -> None:
    source, authz = world
    wanted = role("team", "big", r(["*"], ["*"], ["*"]))
    write_role(authz, UserInfo("root", groups=(MASTERS,)), wanted, "team")
    grant(source, "esc", "dev", r(["escalate"], [G], ["roles"], names=["big"]), ns="team")
    # Upstream checks escalate with the URL's name: none on create, so a named grant only
    # lets the role be updated.
    with pytest.raises(Forbidden):
        write_role(authz, DEV, wanted, "team")
    write_role(authz, DEV, wanted, "team", request_name="big", old_obj=role("team", "big"))
    grant(source, "esc", "dev", r(["escalate"], [G], ["roles"]), ns="team")
    write_role(authz, DEV, wanted, "team")


def test_gc_only_updates_pass(world: tuple[MemorySource, RBACAuthorizer]) -> None:
    _, authz = world
    old = role("team", "big", r(["*"], ["*"], ["*"]))
    old["metadata"]["resourceVersion"] = "5"
    new = role("team", "big", r(["*"], ["*"], ["*"]))
    new["metadata"]["finalizers"] = ["example.com/x"]
    write_role(authz, DEV, new, "team", request_name="big", old_obj=old)
    new["metadata"]["labels"] = {"a": "b"}
    with pytest.raises(Forbidden):
        write_role(authz, DEV, new, "team", request_name="big", old_obj=old)


def test_aggregation_rule_needs_full_authority(
        world: tuple[MemorySource, RBACAuthorizer]) -> None:
    source, authz = world
    aggregated = cluster_role("agg")
    aggregated["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]}
    with pytest.raises(Forbidden) as e:
        write_role(authz, DEV, aggregated, "")
    assert e.value.message == ('clusterroles.rbac.authorization.k8s.io "agg" is forbidden: '
                               'must have cluster-admin privileges to use the aggregationRule')
    # Removing it from a stored role needs the same.
    with pytest.raises(Forbidden):
        write_role(authz, DEV, cluster_role("agg"), "", request_name="agg", old_obj=aggregated)
    grant(source, "admin", "dev", r(["*"], ["*"], ["*"]), r(["*"], urls=["*"]))
    write_role(authz, DEV, aggregated, "")


def binding(kind: str, role_kind: str, role_name: str, ns: str = "") -> Obj:
    md: Obj = {"name": "b"}
    if ns:
        md["namespace"] = ns
    return {"kind": kind, "metadata": md,
            "roleRef": {"apiGroup": G, "kind": role_kind, "name": role_name},
            "subjects": [{"kind": "User", "apiGroup": G, "name": "friend"}]}


def test_binding_a_role_whose_rules_the_writer_holds(
        world: tuple[MemorySource, RBACAuthorizer]) -> None:
    source, authz = world
    source.put(role("team", "pod-reader", r(["get"], [""], ["pods"])))
    write_binding(authz, DEV, binding("RoleBinding", "Role", "pod-reader", "team"), "team")
    source.put(cluster_role("secret-reader", r(["get"], [""], ["secrets"])))
    with pytest.raises(Forbidden) as e:
        write_binding(authz, DEV, binding("RoleBinding", "ClusterRole", "secret-reader", "team"),
                      "team")
    assert e.value.message == (
        'rolebindings.rbac.authorization.k8s.io "b" is forbidden: user "dev" '
        '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not '
        'currently held:\n{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}')
    with pytest.raises(Forbidden) as e:
        write_binding(authz, DEV, binding("ClusterRoleBinding", "ClusterRole", "secret-reader"),
                      "")
    assert e.value.details == {"group": G, "kind": "clusterrolebindings", "name": "b"}


def test_bind_verb_allows_binding_that_role_only(
        world: tuple[MemorySource, RBACAuthorizer]) -> None:
    source, authz = world
    source.put(cluster_role("secret-reader", r(["get"], [""], ["secrets"])))
    source.put(cluster_role("node-admin", r(["*"], [""], ["nodes"])))
    grant(source, "binder", "dev", r(["bind"], [G], ["clusterroles"], names=["secret-reader"]),
          ns="team")
    write_binding(authz, DEV, binding("RoleBinding", "ClusterRole", "secret-reader", "team"),
                  "team")
    with pytest.raises(Forbidden):
        write_binding(authz, DEV, binding("RoleBinding", "ClusterRole", "node-admin", "team"),
                      "team")
    # bind granted in "team" does not reach another namespace or cluster bindings.
    with pytest.raises(Forbidden):
        write_binding(authz, DEV, binding("RoleBinding", "ClusterRole", "secret-reader",
                                          "other"), "other")
    with pytest.raises(Forbidden):
        write_binding(authz, DEV, binding("ClusterRoleBinding", "ClusterRole", "secret-reader"),
                      "")


def test_binding_a_missing_role_is_not_found_unless_bind_allows(
        world: tuple[MemorySource, RBACAuthorizer]) -> None:
    _source, authz = world
    with pytest.raises(NotFound) as e:
        write_binding(authz, DEV, binding("RoleBinding", "Role", "ghost", "team"), "team")
    assert e.value.message == 'roles.rbac.authorization.k8s.io "ghost" not found'
    write_binding(authz, UserInfo("root", groups=(MASTERS,)),
                  binding("RoleBinding", "Role", "ghost", "team"), "team")


def test_checks_use_the_given_authorizer() -> None:
    # The lead's chain (Node, RBAC) decides escalate/bind; a stub proves it is consulted.
    seen: list[Attributes] = []

    def authorize(attrs: Attributes) -> tuple[Decision, str]:
        seen.append(attrs)
        return Decision.ALLOW, ""

    def no_rules(user: UserInfo, ns: str) -> tuple[list[Obj], list[str]]:
        return [], []

    check_role_write(DEV, role("ns", "x", r(["*"], ["*"], ["*"])), "ns", authorize, no_rules)
    check_binding_write(DEV, binding("RoleBinding", "ClusterRole", "admin", "ns"), "ns",
                        authorize, no_rules, lambda ref, ns: [])
    assert [(a.verb, a.resource, a.namespace, a.name, a.api_group) for a in seen] == [
        ("escalate", "roles", "ns", "", G), ("bind", "clusterroles", "ns", "admin", G)]
