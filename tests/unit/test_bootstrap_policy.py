"""The bootstrap policy, evaluated by the RBAC authorizer: each component may do what it
does and no more; every object is valid and marked; reconciliation adds, never removes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from api.defaults import apply_defaults
from api.validation import validate
from apiserver.auth import bootstrap_policy as bp
from apiserver.auth.attributes import (
    ANONYMOUS_USER,
    AUTHENTICATED,
    MASTERS,
    Attributes,
    Decision,
    UserInfo,
    service_account_username,
)
from apiserver.auth.escalation import covers
from apiserver.auth.rbac import MemorySource, RBACAuthorizer
from controller_manager.clusterroleaggregation import aggregated_rules

Obj = dict[str, Any]


def aggregate(source: MemorySource) -> None:
    """What the aggregation controller does, to a fixed point (admin aggregates edit, which
    aggregates view)."""
    changed = True
    while changed:
        changed = False
        for role in source.cluster_roles():
            if role.get("aggregationRule") is None:
                continue
            rules = aggregated_rules(role, source.cluster_roles())
            if rules != role.get("rules", []):
                source.put({**role, "rules": rules})
                changed = True


@pytest.fixture(scope="module")
def authz() -> RBACAuthorizer:
    source = MemorySource(obj for _, obj in bp.bootstrap_objects())
    aggregate(source)
    return RBACAuthorizer(source)


def can(authz: RBACAuthorizer, user: UserInfo, verb: str, resource: str, *, ns: str = "",
        group: str = "", sub: str = "", name: str = "") -> bool:
    attrs = Attributes(user=user, verb=verb, resource_request=True, namespace=ns,
                       api_group=group, resource=resource, subresource=sub, name=name)
    return authz.authorize(attrs)[0] is Decision.ALLOW


def can_get_path(authz: RBACAuthorizer, user: UserInfo, path: str) -> bool:
    attrs = Attributes(user=user, verb="get", resource_request=False, path=path)
    return authz.authorize(attrs)[0] is Decision.ALLOW


def bound(authz: RBACAuthorizer, role: str, ns: str) -> UserInfo:
    """A user bound to ClusterRole `role` in namespace `ns` (as `kubectl create rolebinding`
    would do)."""
    source = authz.source
    assert isinstance(source, MemorySource)
    name = f"user-of-{role}"
    source.put({"kind": "RoleBinding", "metadata": {"name": name, "namespace": ns},
                "roleRef": {"apiGroup": bp.RBAC_GROUP, "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "User", "apiGroup": bp.RBAC_GROUP, "name": name}]})
    return UserInfo(name, groups=(AUTHENTICATED,))


SCHEDULER = UserInfo("system:kube-scheduler", groups=(AUTHENTICATED,))
KCM = UserInfo("system:kube-controller-manager", groups=(AUTHENTICATED,))
PROXY = UserInfo("system:kube-proxy", groups=(AUTHENTICATED,))
DNS = UserInfo(service_account_username("kube-system", "kube-dns"),
               groups=("system:serviceaccounts", "system:serviceaccounts:kube-system",
                       AUTHENTICATED))
NOBODY = UserInfo("nobody", groups=(AUTHENTICATED,))


def test_every_object_is_valid_and_marked() -> None:
    objects = bp.bootstrap_objects()
    seen: set[tuple[str, str, str]] = set()
    for plural, obj in objects:
        md = obj["metadata"]
        assert md["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults", md["name"]
        assert md["annotations"][bp.AUTOUPDATE_ANNOTATION] == "true", md["name"]
        key = (plural, md.get("namespace", ""), md["name"])
        assert key not in seen, key
        seen.add(key)
        defaulted = copy.deepcopy(obj)
        apply_defaults(plural, defaulted)
        assert validate(plural, defaulted) == [], (plural, md["name"])
    plurals = [p for p, _ in objects]
    # Roles come before the bindings that refer to them.
    assert plurals.index("clusterrolebindings") > max(
        i for i, p in enumerate(plurals) if p == "clusterroles")
    assert bp.bootstrap_objects() is not objects and bp.bootstrap_objects() == objects


def test_the_named_roles_and_bindings_exist() -> None:
    names = {(p, o["metadata"]["name"]) for p, o in bp.bootstrap_objects()}
    for role in ("cluster-admin", "admin", "edit", "view", "system:aggregate-to-admin",
                 "system:aggregate-to-edit", "system:aggregate-to-view", "system:basic-user",
                 "system:discovery", "system:public-info-viewer", "system:monitoring",
                 "system:auth-delegator", "system:kube-scheduler",
                 "system:kube-controller-manager", "system:volume-scheduler", "system:node",
                 "system:node-proxier", "system:kube-dns", "system:kubelet-api-admin",
                 "system:node-bootstrapper", "system:controller:clusterrole-aggregation-controller"):
        assert ("clusterroles", role) in names, role
    for binding in ("cluster-admin", "system:basic-user", "system:discovery",
                    "system:public-info-viewer", "system:kube-scheduler",
                    "system:volume-scheduler", "system:kube-controller-manager",
                    "system:node-proxier", "system:monitoring", "system:kube-dns",
                    bp.APISERVER_KUBELET_CLIENT_BINDING):
        assert ("clusterrolebindings", binding) in names, binding
    for role in ("extension-apiserver-authentication-reader",
                 "system::leader-locking-kube-controller-manager",
                 "system::leader-locking-kube-scheduler", "system:controller:bootstrap-signer"):
        assert ("roles", role) in names, role
        assert ("rolebindings", role) in names or ("rolebindings", "system::" + role) in names


def test_masters_can_do_anything(authz: RBACAuthorizer) -> None:
    root = UserInfo("admin", groups=(MASTERS, AUTHENTICATED))
    assert can(authz, root, "delete", "nodes", name="n")
    assert can(authz, root, "escalate", "clusterroles", group=bp.RBAC_GROUP)
    assert can_get_path(authz, root, "/debug/pprof")
    assert not can(authz, NOBODY, "delete", "nodes", name="n")


def test_anonymous_and_authenticated_non_resource_access(authz: RBACAuthorizer) -> None:
    for path in ("/healthz", "/livez", "/readyz", "/version"):
        assert can_get_path(authz, ANONYMOUS_USER, path), path
    for path in ("/api", "/apis/apps/v1", "/openapi/v3", "/metrics"):
        assert not can_get_path(authz, ANONYMOUS_USER, path), path
    assert can_get_path(authz, NOBODY, "/apis/apps/v1")
    assert not can_get_path(authz, NOBODY, "/metrics")
    monitor = UserInfo("prometheus", groups=("system:monitoring", AUTHENTICATED))
    assert can_get_path(authz, monitor, "/metrics")
    assert can(authz, NOBODY, "create", "selfsubjectaccessreviews", group="authorization.k8s.io")
    assert can(authz, NOBODY, "create", "selfsubjectrulesreviews", group="authorization.k8s.io")
    assert can(authz, NOBODY, "create", "selfsubjectreviews", group="authentication.k8s.io")
    assert not can(authz, ANONYMOUS_USER, "create", "selfsubjectaccessreviews",
                   group="authorization.k8s.io")
    assert not can(authz, NOBODY, "list", "pods", ns="default")
    account = UserInfo(service_account_username("default", "default"),
                       groups=("system:serviceaccounts", AUTHENTICATED))
    assert can_get_path(authz, account, "/openid/v1/jwks")


def test_scheduler(authz: RBACAuthorizer) -> None:
    assert can(authz, SCHEDULER, "create", "pods", sub="binding", ns="default", name="p")
    assert can(authz, SCHEDULER, "patch", "pods", sub="status", ns="default", name="p")
    for resource in ("pods", "nodes", "namespaces", "services"):
        assert can(authz, SCHEDULER, "watch", resource), resource
    assert can(authz, SCHEDULER, "update", "leases", group="coordination.k8s.io",
               ns="kube-system", name="kube-scheduler")
    assert can(authz, SCHEDULER, "create", "events", ns="default")
    assert not can(authz, SCHEDULER, "update", "leases", group="coordination.k8s.io",
                   ns="default", name="kube-scheduler-x")
    assert not can(authz, SCHEDULER, "create", "pods", ns="default")
    assert not can(authz, SCHEDULER, "get", "secrets", ns="default", name="s")


def test_kube_proxy(authz: RBACAuthorizer) -> None:
    assert can(authz, PROXY, "list", "endpointslices", group="discovery.k8s.io")
    assert can(authz, PROXY, "watch", "services")
    assert can(authz, PROXY, "get", "nodes", name="n")
    assert not can(authz, PROXY, "get", "services", ns="default", name="s")
    assert not can(authz, PROXY, "list", "secrets")


def test_dns_addon(authz: RBACAuthorizer) -> None:
    assert can(authz, DNS, "list", "services")
    assert can(authz, DNS, "watch", "endpointslices", group="discovery.k8s.io")
    assert not can(authz, DNS, "list", "secrets")
    assert not can(authz, DNS, "create", "services", ns="kube-system")


@pytest.mark.parametrize(("verb", "resource", "group", "sub", "ns", "name"), [
    # Informers.
    ("list", "secrets", "", "", "", ""), ("watch", "endpointslices", "discovery.k8s.io", "", "",
                                          ""),
    # ReplicaSet, Deployment, DaemonSet and Job controllers.
    ("create", "pods", "", "", "ns", ""), ("delete", "pods", "", "", "ns", "p"),
    ("patch", "pods", "", "", "ns", "p"),
    ("update", "replicasets", "apps", "status", "ns", "rs"),
    ("create", "replicasets", "apps", "", "ns", ""),
    ("patch", "deployments", "apps", "", "ns", "d"),
    ("update", "deployments", "apps", "status", "ns", "d"),
    ("update", "daemonsets", "apps", "status", "ns", "ds"),
    ("update", "jobs", "batch", "status", "ns", "j"), ("delete", "jobs", "batch", "", "ns", "j"),
    # Endpoints, EndpointSlices, ServiceAccounts, the root CA publisher.
    ("create", "endpoints", "", "", "ns", ""), ("update", "endpoints", "", "", "ns", "e"),
    ("create", "endpointslices", "discovery.k8s.io", "", "ns", ""),
    ("delete", "endpointslices", "discovery.k8s.io", "", "ns", "s"),
    ("create", "serviceaccounts", "", "", "ns", ""),
    ("create", "configmaps", "", "", "ns", ""), ("update", "configmaps", "", "", "ns", "c"),
    # Namespace controller.
    ("update", "namespaces", "", "finalize", "", "ns"),
    ("update", "namespaces", "", "status", "", "ns"),
    ("deletecollection", "configmaps", "", "", "ns", ""),
    # Node lifecycle.
    ("update", "nodes", "", "", "", "n"), ("update", "nodes", "", "status", "", "n"),
    ("update", "pods", "", "status", "ns", "p"),
    # Garbage collector: anything.
    ("delete", "widgets", "example.com", "", "ns", "w"),
    ("patch", "roles", "rbac.authorization.k8s.io", "", "ns", "r"),
    # Aggregation controller (writes rules it does not hold).
    ("update", "clusterroles", "rbac.authorization.k8s.io", "", "", "admin"),
    ("escalate", "clusterroles", "rbac.authorization.k8s.io", "", "", "admin"),
    # Events, leader election.
    ("create", "events", "", "", "ns", ""), ("patch", "events", "", "", "ns", "e"),
    ("update", "leases", "coordination.k8s.io", "", "kube-system", "kube-controller-manager"),
    ("create", "leases", "coordination.k8s.io", "", "kube-system", ""),
])
def test_controller_manager_can_do_what_its_controllers_do(
        authz: RBACAuthorizer, verb: str, resource: str, group: str, sub: str, ns: str,
        name: str) -> None:
    assert can(authz, KCM, verb, resource, group=group, sub=sub, ns=ns, name=name)


def test_controller_manager_cannot_do_everything(authz: RBACAuthorizer) -> None:
    assert not can(authz, KCM, "create", "clusterrolebindings", group=bp.RBAC_GROUP)
    assert not can(authz, KCM, "create", "pods", sub="exec", ns="ns", name="p")
    assert not can(authz, KCM, "create", "deployments", group="apps", ns="ns")
    assert not can(authz, KCM, "bind", "clusterroles", group=bp.RBAC_GROUP, name="cluster-admin")


def test_controller_manager_role_extends_upstreams() -> None:
    roles = {o["metadata"]["name"]: o for p, o in bp.bootstrap_objects() if p == "clusterroles"}
    kcm = roles["system:kube-controller-manager"]["rules"]
    for controller in bp.KUBELITE_CONTROLLERS:
        assert covers(kcm, roles[f"system:controller:{controller}"]["rules"])[0], controller
    upstream_core = [bp.rule("list", "watch", groups=("*",), resources=("*",)),
                     bp.rule("create", groups=("",), resources=("serviceaccounts/token",))]
    assert covers(kcm, upstream_core)[0]


def test_user_facing_roles(authz: RBACAuthorizer) -> None:
    viewer, editor, admin = (bound(authz, r, "team") for r in ("view", "edit", "admin"))
    assert can(authz, viewer, "list", "pods", ns="team")
    assert can(authz, viewer, "get", "pods", sub="log", ns="team", name="p")
    assert can(authz, viewer, "get", "deployments", group="apps", ns="team", name="d")
    assert not can(authz, viewer, "get", "secrets", ns="team", name="s")
    assert not can(authz, viewer, "list", "secrets", ns="team")
    assert not can(authz, viewer, "create", "pods", ns="team")
    assert not can(authz, viewer, "list", "roles", group=bp.RBAC_GROUP, ns="team")
    assert not can(authz, viewer, "list", "pods", ns="other")

    assert can(authz, editor, "get", "secrets", ns="team", name="s")
    assert can(authz, editor, "create", "pods", sub="exec", ns="team", name="p")
    assert can(authz, editor, "update", "deployments", group="apps", sub="scale", ns="team",
               name="d")
    assert not can(authz, editor, "create", "rolebindings", group=bp.RBAC_GROUP, ns="team")
    assert not can(authz, editor, "update", "pods", sub="status", ns="team", name="p")

    assert can(authz, admin, "create", "rolebindings", group=bp.RBAC_GROUP, ns="team")
    assert can(authz, admin, "list", "secrets", ns="team")
    assert not can(authz, admin, "create", "clusterroles", group=bp.RBAC_GROUP)
    assert not can(authz, admin, "delete", "namespaces", name="team")


def test_kubelet_api_admin_is_the_apiservers_kubelet_client(authz: RBACAuthorizer) -> None:
    client = UserInfo(bp.APISERVER_KUBELET_CLIENT_USER, groups=(AUTHENTICATED,))
    for sub in ("proxy", "log", "stats", "metrics"):
        assert can(authz, client, "create", "nodes", sub=sub, name="n"), sub
    assert not can(authz, client, "get", "secrets", ns="default", name="s")
    assert not can(authz, NOBODY, "get", "nodes", sub="proxy", name="n")


def test_nodes_get_nothing_from_rbac(authz: RBACAuthorizer) -> None:
    node = UserInfo("system:node:n1", groups=("system:nodes", AUTHENTICATED))
    assert not can(authz, node, "get", "secrets", ns="default", name="s")
    # The Node authorizer applies the rules itself.
    rules = bp.node_rules()
    assert covers(rules, [bp.rule("create", groups=("",), resources=("serviceaccounts/token",)),
                          bp.rule("patch", groups=("",), resources=("pods/status",))])[0]


# --- reconciliation -------------------------------------------------------------------------

def wanted(name: str, plural: str = "clusterroles") -> Obj:
    for found, obj in bp.bootstrap_objects():
        if obj["metadata"]["name"] == name and found == plural:
            return obj
    raise KeyError(name)


def test_reconcile_is_none_when_nothing_is_missing() -> None:
    role = wanted("system:kube-scheduler")
    stored = copy.deepcopy(role)
    stored["metadata"].update(uid="u", resourceVersion="7")
    stored["rules"].append(bp.rule("get", groups=("",), resources=("configmaps",)))
    assert bp.reconcile(stored, role) is None


def test_reconcile_adds_missing_rules_and_keeps_user_additions() -> None:
    role = wanted("system:kube-scheduler")
    stored = copy.deepcopy(role)
    user_rule = bp.rule("get", groups=("",), resources=("configmaps",))
    stored["rules"] = [r for r in stored["rules"] if "pods/binding" not in r.get("resources", ())]
    stored["rules"].append(user_rule)
    stored["metadata"]["labels"] = {"kubernetes.io/bootstrapping": "mine", "extra": "x"}
    result = bp.reconcile(stored, role)
    assert result is not None
    assert user_rule in result["rules"]
    assert covers(result["rules"], role["rules"])[0]
    assert not covers(stored["rules"], role["rules"])[0]
    # Labels and annotations: wanted ones added, the user's values kept.
    assert result["metadata"]["labels"] == {"kubernetes.io/bootstrapping": "mine", "extra": "x"}
    assert result["metadata"]["annotations"] == {bp.AUTOUPDATE_ANNOTATION: "true"}
    assert stored["rules"][-1] == user_rule  # the input is not changed


def test_reconcile_leaves_protected_objects_alone() -> None:
    role = wanted("system:kube-scheduler")
    stored = copy.deepcopy(role)
    stored["rules"] = []
    stored["metadata"]["annotations"][bp.AUTOUPDATE_ANNOTATION] = "false"
    assert bp.reconcile(stored, role) is None


def test_reconcile_aggregation_selectors() -> None:
    view = wanted("view")
    stored = copy.deepcopy(view)
    stored["rules"] = [bp.rule("get", groups=("",), resources=("pods",))]  # aggregated
    stored["aggregationRule"]["clusterRoleSelectors"].append({"matchLabels": {"mine": "true"}})
    assert bp.reconcile(stored, view) is None
    stored["aggregationRule"]["clusterRoleSelectors"] = [{"matchLabels": {"mine": "true"}}]
    result = bp.reconcile(stored, view)
    assert result is not None
    assert result["aggregationRule"]["clusterRoleSelectors"] == [
        {"matchLabels": {"mine": "true"}},
        {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}]
    plain = wanted("system:basic-user")
    stored = copy.deepcopy(plain)
    stored["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]}
    result = bp.reconcile(stored, plain)
    assert result is not None and "aggregationRule" not in result


def test_reconcile_bindings() -> None:
    binding = wanted("system:public-info-viewer", "clusterrolebindings")
    stored = copy.deepcopy(binding)
    apply_defaults("clusterrolebindings", stored)
    assert bp.reconcile(stored, binding) is None
    extra = {"kind": "User", "apiGroup": bp.RBAC_GROUP, "name": "someone"}
    stored["subjects"] = [extra, stored["subjects"][0]]
    result = bp.reconcile(stored, binding)
    assert result is not None
    assert result["subjects"] == [extra, *binding["subjects"]]
    assert not bp.needs_recreate(stored, result)
    stored["roleRef"] = {**stored["roleRef"], "name": "other"}
    result = bp.reconcile(stored, binding)
    assert result is not None and bp.needs_recreate(stored, result)
    assert result["roleRef"]["name"] == "system:public-info-viewer"
