"""The RBAC authorizer: rule matching, subjects, role references, caching, and upstream's
Forbidden messages."""

from __future__ import annotations

from typing import Any

import pytest

from api.errors import InternalError, NotFound
from apiserver.auth.attributes import (
    AUTHENTICATED,
    Attributes,
    Decision,
    NonResourceRule,
    ResourceRule,
    UserInfo,
)
from apiserver.auth.rbac import (
    MemorySource,
    RBACAuthorizer,
    aggregate_message,
    forbidden_error,
    forbidden_message,
    go_quote,
    rule_allows,
)

Obj = dict[str, Any]
G = "rbac.authorization.k8s.io"

JANE = UserInfo("jane", groups=("devs", AUTHENTICATED))
BOB = UserInfo("bob", groups=(AUTHENTICATED,))
SA = UserInfo("system:serviceaccount:team:builder",
              groups=("system:serviceaccounts", "system:serviceaccounts:team", AUTHENTICATED))


def res(user: UserInfo, verb: str, resource: str, *, ns: str = "", group: str = "",
        sub: str = "", name: str = "") -> Attributes:
    return Attributes(user=user, verb=verb, resource_request=True, namespace=ns,
                      api_group=group, api_version="v1", resource=resource, subresource=sub,
                      name=name)


def url(user: UserInfo, path: str, verb: str = "get") -> Attributes:
    return Attributes(user=user, verb=verb, resource_request=False, path=path)


def cluster_role(name: str, *rules: Obj) -> Obj:
    return {"kind": "ClusterRole", "metadata": {"name": name}, "rules": list(rules)}


def role(ns: str, name: str, *rules: Obj) -> Obj:
    return {"kind": "Role", "metadata": {"name": name, "namespace": ns}, "rules": list(rules)}


def crb(name: str, role_name: str, *subjects: Obj) -> Obj:
    return {"kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": role_name},
            "subjects": list(subjects)}


def rb(ns: str, name: str, kind: str, role_name: str, *subjects: Obj) -> Obj:
    return {"kind": "RoleBinding", "metadata": {"name": name, "namespace": ns},
            "roleRef": {"apiGroup": G, "kind": kind, "name": role_name},
            "subjects": list(subjects)}


def u(name: str) -> Obj:
    return {"kind": "User", "apiGroup": G, "name": name}


def g(name: str) -> Obj:
    return {"kind": "Group", "apiGroup": G, "name": name}


def sa(name: str, ns: str = "") -> Obj:
    out = {"kind": "ServiceAccount", "name": name}
    if ns:
        out["namespace"] = ns
    return out


def allowed(authz: RBACAuthorizer, attrs: Attributes) -> bool:
    return authz.authorize(attrs)[0] is Decision.ALLOW


# --- rule matching --------------------------------------------------------------------------

POD_READER = {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}


@pytest.mark.parametrize(("rule", "attrs", "expected"), [
    (POD_READER, res(JANE, "get", "pods", ns="a", name="p"), True),
    (POD_READER, res(JANE, "list", "pods", ns="a"), True),
    (POD_READER, res(JANE, "delete", "pods", ns="a", name="p"), False),
    (POD_READER, res(JANE, "get", "pods", group="apps"), False),
    (POD_READER, res(JANE, "get", "pods", sub="log", name="p"), False),
    (POD_READER, res(JANE, "get", "services", name="s"), False),
    # "*" for verbs, groups and resources, each independently.
    ({"verbs": ["*"], "apiGroups": [""], "resources": ["pods"]},
     res(JANE, "deletecollection", "pods"), True),
    ({"verbs": ["get"], "apiGroups": ["*"], "resources": ["deployments"]},
     res(JANE, "get", "deployments", group="apps"), True),
    ({"verbs": ["get"], "apiGroups": ["apps"], "resources": ["*"]},
     res(JANE, "get", "deployments", group="apps", sub="scale"), True),
    # Subresources: exact "pods/log", "*/scale" for any resource, "pods/*" is not a wildcard.
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]},
     res(JANE, "get", "pods", sub="log", name="p"), True),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]},
     res(JANE, "get", "pods", name="p"), False),
    ({"verbs": ["update"], "apiGroups": ["*"], "resources": ["*/scale"]},
     res(JANE, "update", "deployments", group="apps", sub="scale", name="d"), True),
    ({"verbs": ["update"], "apiGroups": ["*"], "resources": ["*/scale"]},
     res(JANE, "update", "deployments", group="apps", name="d"), False),
    ({"verbs": ["update"], "apiGroups": ["*"], "resources": ["*/scale"]},
     res(JANE, "update", "deployments", group="apps", sub="status", name="d"), False),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/*"]},
     res(JANE, "get", "pods", sub="log", name="p"), False),
    # resourceNames: only requests that carry one of the names.
    ({"verbs": ["get", "list", "create"], "apiGroups": [""], "resources": ["configmaps"],
      "resourceNames": ["cfg"]}, res(JANE, "get", "configmaps", name="cfg"), True),
    ({"verbs": ["get", "list", "create"], "apiGroups": [""], "resources": ["configmaps"],
      "resourceNames": ["cfg"]}, res(JANE, "get", "configmaps", name="other"), False),
    ({"verbs": ["get", "list", "create"], "apiGroups": [""], "resources": ["configmaps"],
      "resourceNames": ["cfg"]}, res(JANE, "list", "configmaps"), False),
    ({"verbs": ["get", "list", "create"], "apiGroups": [""], "resources": ["configmaps"],
      "resourceNames": ["cfg"]}, res(JANE, "create", "configmaps"), False),
    # Non-resource URLs: exact, trailing-* prefix, "*"; never for resource requests.
    ({"verbs": ["get"], "nonResourceURLs": ["/healthz"]}, url(JANE, "/healthz"), True),
    ({"verbs": ["get"], "nonResourceURLs": ["/healthz"]}, url(JANE, "/healthz/etcd"), False),
    ({"verbs": ["get"], "nonResourceURLs": ["/healthz/*"]}, url(JANE, "/healthz/etcd"), True),
    ({"verbs": ["get"], "nonResourceURLs": ["/healthz/*"]}, url(JANE, "/healthz"), False),
    ({"verbs": ["get"], "nonResourceURLs": ["/api*"]}, url(JANE, "/apis/apps"), True),
    ({"verbs": ["get"], "nonResourceURLs": ["*"]}, url(JANE, "/anything"), True),
    ({"verbs": ["get"], "nonResourceURLs": ["*"]}, url(JANE, "/anything", "post"), False),
    ({"verbs": ["get"], "nonResourceURLs": ["*"]}, res(JANE, "get", "pods"), False),
    (POD_READER, url(JANE, "/api/v1/pods"), False),
])
def test_rule_matching(rule: Obj, attrs: Attributes, expected: bool) -> None:
    assert rule_allows(attrs, rule) is expected


# --- subjects and bindings --------------------------------------------------------------------

def authorizer(*objects: Obj) -> tuple[RBACAuthorizer, MemorySource]:
    source = MemorySource(objects)
    return RBACAuthorizer(source), source


def test_user_group_and_service_account_subjects() -> None:
    authz, _ = authorizer(
        cluster_role("pod-reader", POD_READER),
        crb("users", "pod-reader", u("jane")),
        crb("groups", "pod-reader", g("readers")),
        crb("accounts", "pod-reader", sa("builder", "team")),
    )
    assert allowed(authz, res(JANE, "list", "pods", ns="x"))
    assert not allowed(authz, res(BOB, "list", "pods", ns="x"))
    assert allowed(authz, res(UserInfo("carol", groups=("readers",)), "list", "pods"))
    assert allowed(authz, res(SA, "get", "pods", ns="other", name="p"))
    # A user named like the account is not the account in another namespace.
    assert not allowed(authz, res(UserInfo("system:serviceaccount:other:builder"), "get",
                                  "pods", name="p"))


def test_service_account_subject_defaults_to_the_binding_namespace() -> None:
    authz, _ = authorizer(
        cluster_role("pod-reader", POD_READER),
        rb("team", "local", "ClusterRole", "pod-reader", sa("builder")),
        # Without a namespace a cluster binding's service account subject matches nobody.
        crb("nowhere", "pod-reader", sa("builder")),
    )
    assert allowed(authz, res(SA, "list", "pods", ns="team"))
    assert not allowed(authz, res(SA, "list", "pods", ns="default"))
    assert not allowed(authz, res(SA, "list", "pods"))


def test_role_binding_grants_only_in_its_namespace() -> None:
    authz, _ = authorizer(
        role("team", "pod-reader", POD_READER),
        rb("team", "read", "Role", "pod-reader", u("jane")),
        cluster_role("secret-reader", {"verbs": ["get"], "apiGroups": [""],
                                       "resources": ["secrets"]}),
        rb("team", "secrets", "ClusterRole", "secret-reader", u("jane")),
    )
    assert allowed(authz, res(JANE, "list", "pods", ns="team"))
    assert not allowed(authz, res(JANE, "list", "pods", ns="other"))
    assert not allowed(authz, res(JANE, "list", "pods"))  # cluster-wide list
    assert allowed(authz, res(JANE, "get", "secrets", ns="team", name="s"))
    assert not allowed(authz, res(JANE, "get", "secrets", ns="other", name="s"))


def test_role_in_another_namespace_is_not_used() -> None:
    authz, _ = authorizer(
        role("other", "pod-reader", POD_READER),
        rb("team", "read", "Role", "pod-reader", u("jane")),
    )
    decision, reason = authz.authorize(res(JANE, "list", "pods", ns="team"))
    assert decision is Decision.NO_OPINION
    assert reason == 'RBAC: role.rbac.authorization.k8s.io "pod-reader" not found'


def test_allow_reason_names_the_binding_role_and_subject() -> None:
    authz, _ = authorizer(
        cluster_role("pod-reader", POD_READER),
        crb("readers", "pod-reader", g("nobody"), g("devs")),
        role("team", "r", POD_READER),
        rb("team", "rb", "Role", "r", sa("builder")),
    )
    assert authz.authorize(res(JANE, "get", "pods", name="p")) == (
        Decision.ALLOW, ('RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole '
                        '"pod-reader" to Group "devs"'))
    assert authz.authorize(res(SA, "get", "pods", ns="team", name="p")) == (
        Decision.ALLOW, ('RBAC: allowed by RoleBinding "rb/team" of Role "r" to ServiceAccount '
                        '"builder/team"'))


def test_denial_has_no_reason_unless_roles_are_missing() -> None:
    authz, source = authorizer(cluster_role("pod-reader", POD_READER),
                               crb("b", "pod-reader", u("jane")))
    assert authz.authorize(res(JANE, "delete", "pods", name="p")) == (Decision.NO_OPINION, "")
    source.put(crb("gone1", "missing-a", u("jane")))
    source.put(crb("gone2", "missing-b", g("devs")))
    source.put(crb("gone3", "missing-a", g(AUTHENTICATED)))
    assert authz.authorize(res(JANE, "delete", "pods", name="p")) == (
        Decision.NO_OPINION,
        ('RBAC: [clusterrole.rbac.authorization.k8s.io "missing-a" not found, '
        'clusterrole.rbac.authorization.k8s.io "missing-b" not found]'))
    # A missing role elsewhere does not stop another binding from allowing.
    assert allowed(authz, res(JANE, "get", "pods", name="p"))


def test_unsupported_role_ref_kind_is_a_resolution_error() -> None:
    binding = crb("odd", "x", u("jane"))
    binding["roleRef"]["kind"] = "Widget"
    authz, _ = authorizer(binding)
    assert authz.authorize(res(JANE, "get", "pods")) == (
        Decision.NO_OPINION, 'RBAC: unsupported role reference kind: "Widget"')


def test_aggregate_message() -> None:
    assert aggregate_message(["a"]) == "a"
    assert aggregate_message(["a", "a"]) == "a"
    assert aggregate_message(["a", "b", "a"]) == "[a, b]"


# --- caching ----------------------------------------------------------------------------------

class CountingSource(MemorySource):
    def __init__(self, objects: list[Obj]) -> None:
        super().__init__(objects)
        self.listings = 0

    def cluster_role_bindings(self) -> list[Obj]:
        self.listings += 1
        return super().cluster_role_bindings()


def test_decisions_are_cached_until_the_generation_changes() -> None:
    source = CountingSource([cluster_role("pod-reader", POD_READER)])
    authz = RBACAuthorizer(source)
    request = res(JANE, "list", "pods", ns="a")
    assert not allowed(authz, request)
    assert not allowed(authz, request)
    assert not allowed(authz, res(JANE, "list", "pods", ns="a"))  # an equal request
    assert source.listings == 1
    source.put(crb("b", "pod-reader", u("jane")))
    assert allowed(authz, request)
    assert source.listings == 2
    source.delete("ClusterRoleBinding", "", "b")
    assert not allowed(authz, request)


def test_rules_are_resolved_once_per_user_and_namespace() -> None:
    source = CountingSource([cluster_role("pod-reader", POD_READER),
                             crb("b", "pod-reader", u("jane"))])
    authz = RBACAuthorizer(source)
    for i in range(50):
        assert allowed(authz, res(JANE, "get", "pods", ns="a", name=f"p{i}"))
    assert not allowed(authz, res(JANE, "delete", "pods", ns="a", name="p"))
    assert source.listings == 1
    # Same name, other groups: another subject.
    assert not allowed(authz, res(UserInfo("jane2"), "get", "pods", ns="a", name="p0"))
    assert source.listings == 2


def test_changing_a_role_changes_decisions() -> None:
    authz, source = authorizer(cluster_role("r", POD_READER), crb("b", "r", u("jane")))
    assert not allowed(authz, res(JANE, "delete", "pods", name="p"))
    source.put(cluster_role("r", {**POD_READER, "verbs": ["delete"]}))
    assert allowed(authz, res(JANE, "delete", "pods", name="p"))
    assert not allowed(authz, res(JANE, "get", "pods", name="p"))


# --- rule resolution ------------------------------------------------------------------------

def test_rules_for_splits_resource_and_non_resource_rules() -> None:
    authz, _ = authorizer(
        cluster_role("r", POD_READER, {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}),
        crb("b", "r", u("jane")),
        role("team", "names", {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"],
                               "resourceNames": ["s1"]}),
        rb("team", "rb", "Role", "names", u("jane")),
        rb("team", "broken", "Role", "missing", u("jane")),
    )
    resource_rules, non_resource, incomplete, error = authz.rules_for(JANE, "team")
    assert resource_rules == [
        ResourceRule(verbs=("get", "list"), api_groups=("",), resources=("pods",)),
        ResourceRule(verbs=("get",), api_groups=("",), resources=("secrets",),
                     resource_names=("s1",)),
    ]
    assert non_resource == [NonResourceRule(verbs=("get",), non_resource_urls=("/healthz",))]
    assert incomplete is False
    assert error == 'role.rbac.authorization.k8s.io "missing" not found'
    cluster_only = authz.rules_for(JANE, "")
    assert len(cluster_only[0]) == 1 and cluster_only[3] == ""


def test_role_ref_rules_raise_not_found_as_the_registry_words_it() -> None:
    authz, _ = authorizer(cluster_role("r", POD_READER), role("team", "x", POD_READER))
    assert authz.role_ref_rules({"kind": "ClusterRole", "name": "r"}, "team") == [POD_READER]
    assert authz.role_ref_rules({"kind": "Role", "name": "x"}, "team") == [POD_READER]
    with pytest.raises(NotFound) as e:
        authz.role_ref_rules({"kind": "Role", "name": "x"}, "other")
    assert e.value.message == 'roles.rbac.authorization.k8s.io "x" not found'
    with pytest.raises(NotFound) as e:
        authz.role_ref_rules({"kind": "ClusterRole", "name": "nope"}, "")
    assert e.value.message == 'clusterroles.rbac.authorization.k8s.io "nope" not found'
    with pytest.raises(InternalError):
        authz.role_ref_rules({"kind": "Widget", "name": "x"}, "")


# --- Forbidden --------------------------------------------------------------------------------

def test_forbidden_messages_match_upstream() -> None:
    x = UserInfo("x")
    assert forbidden_message(res(x, "list", "pods", ns="y"), "") == \
        'User "x" cannot list resource "pods" in API group "" in the namespace "y"'
    assert forbidden_message(res(x, "list", "nodes"), "") == \
        'User "x" cannot list resource "nodes" in API group "" at the cluster scope'
    assert forbidden_message(res(x, "get", "pods", ns="y", sub="log", name="p"), "") == \
        'User "x" cannot get resource "pods/log" in API group "" in the namespace "y"'
    assert forbidden_message(res(x, "create", "deployments", ns="y", group="apps"), "") == \
        'User "x" cannot create resource "deployments" in API group "apps" in the namespace "y"'
    assert forbidden_message(url(x, "/foo"), "") == 'User "x" cannot get path "/foo"'
    assert forbidden_message(url(x, "/foo"), "no relationship found") == \
        'User "x" cannot get path "/foo": no relationship found'


def test_forbidden_error_is_upstreams_status() -> None:
    x = UserInfo("system:serviceaccount:a:b")
    err = forbidden_error(res(x, "list", "pods", ns="y"), "")
    assert err.code == 403 and err.reason == "Forbidden"
    assert err.message == ('pods is forbidden: User "system:serviceaccount:a:b" cannot list '
                           'resource "pods" in API group "" in the namespace "y"')
    assert err.details == {"kind": "pods"}
    err = forbidden_error(res(x, "get", "deployments", ns="y", group="apps", name="d"), "r")
    assert err.message == ('deployments.apps "d" is forbidden: User "system:serviceaccount:a:b" '
                           'cannot get resource "deployments" in API group "apps" in the '
                           'namespace "y": r')
    assert err.details == {"name": "d", "group": "apps", "kind": "deployments"}
    err = forbidden_error(url(x, "/metrics"), "")
    assert err.message == 'forbidden: User "system:serviceaccount:a:b" cannot get path "/metrics"'


def test_go_quote() -> None:
    assert go_quote('a"b\\c\n\x01é') == '"a\\"b\\\\c\\n\\x01é"'
