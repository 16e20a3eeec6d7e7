"""Upstream's bootstrap RBAC policy (plugin/pkg/auth/authorizer/rbac/bootstrappolicy:
policy.go, controller_policy.go, namespace_policy.go), as plain dicts, and the reconciliation
the apiserver runs over them at every start (pkg/registry/rbac/reconciliation).

Where kubelite differs from upstream, the difference is in one place below, with its reason:
- system:kube-controller-manager: upstream runs each controller under its own service
  account (--use-service-account-credentials) and gives the manager's own identity little
  more than list/watch of everything. kubelite's controller-manager runs every controller
  under system:kube-controller-manager, so that role is upstream's plus the rules of the
  per-controller roles of the controllers kubelite runs (KUBELITE_CONTROLLERS).
- system:kube-dns also lists and watches EndpointSlices: kubelite's DNS add-on reads
  EndpointSlices (as CoreDNS does), where the old kube-dns read Endpoints.
- a binding of the apiserver's kubelet-client identity (kubeadm's certificate name,
  kube-apiserver-kubelet-client) to system:kubelet-api-admin: the apiserver reaches kubelets
  for logs, exec and port-forward with that certificate, which is not in system:masters.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from apiserver.auth.attributes import (
    AUTHENTICATED,
    MASTERS,
    SERVICE_ACCOUNTS_GROUP,
    UNAUTHENTICATED,
)
from apiserver.auth.escalation import covers

Obj = dict[str, Any]

RBAC_GROUP = "rbac.authorization.k8s.io"
API_VERSION = f"{RBAC_GROUP}/v1"
BOOTSTRAP_LABEL = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AUTOUPDATE_ANNOTATION = "rbac.authorization.kubernetes.io/autoupdate"

READ = ("get", "list", "watch")
WRITE = ("create", "update", "patch", "delete", "deletecollection")
READ_WRITE = READ + WRITE
READ_UPDATE = ("get", "list", "watch", "update", "patch")

LEGACY = ""
APPS = "apps"
AUTHENTICATION = "authentication.k8s.io"
AUTHORIZATION = "authorization.k8s.io"
AUTOSCALING = "autoscaling"
BATCH = "batch"
CERTIFICATES = "certificates.k8s.io"
COORDINATION = "coordination.k8s.io"
DISCOVERY = "discovery.k8s.io"
EVENTS = "events.k8s.io"
EXTENSIONS = "extensions"
NETWORKING = "networking.k8s.io"
NODE = "node.k8s.io"
POLICY = "policy"
STORAGE = "storage.k8s.io"

KUBE_SYSTEM = "kube-system"
KUBE_PUBLIC = "kube-public"

KUBE_SCHEDULER_USER = "system:kube-scheduler"
KUBE_CONTROLLER_MANAGER_USER = "system:kube-controller-manager"
KUBE_PROXY_USER = "system:kube-proxy"
MONITORING_GROUP = "system:monitoring"
# kubeadm's name for the apiserver's client certificate towards kubelets.
APISERVER_KUBELET_CLIENT_USER = "kube-apiserver-kubelet-client"
APISERVER_KUBELET_CLIENT_BINDING = "kubelite:kube-apiserver-kubelet-client"

# Upstream controllers (controller_policy.go roles) whose work kubelite's controller-manager
# does, all under its one identity.
KUBELITE_CONTROLLERS = (
    "clusterrole-aggregation-controller", "daemon-set-controller", "deployment-controller",
    "endpoint-controller", "endpointslice-controller", "generic-garbage-collector",
    "job-controller", "namespace-controller", "node-controller", "replicaset-controller",
    "root-ca-cert-publisher", "service-account-controller", "ttl-after-finished-controller",
)


# ---------------------------------------------------------------------------------------------
# builders (rbacv1helpers.NewRule / NewClusterBinding / NewRoleBinding)


def rule(*verbs: str, groups: Iterable[str] = (), resources: Iterable[str] = (),
         names: Iterable[str] = (), urls: Iterable[str] = ()) -> Obj:
    """A PolicyRule with sorted lists, as upstream's PolicyRuleBuilder makes them."""
    out: Obj = {}
    for key, values in (("apiGroups", groups), ("resources", resources),
                        ("resourceNames", names), ("nonResourceURLs", urls)):
        if values:
            out[key] = sorted(values)
    out["verbs"] = sorted(verbs)
    return out


def _events_rule() -> Obj:
    return rule("create", "update", "patch", groups=(LEGACY, EVENTS), resources=("events",))


def _metadata(name: str, namespace: str = "", labels: dict[str, str] | None = None) -> Obj:
    md: Obj = {"name": name}
    if namespace:
        md["namespace"] = namespace
    md["labels"] = {**(labels or {}), **BOOTSTRAP_LABEL}
    md["annotations"] = {AUTOUPDATE_ANNOTATION: "true"}
    return md


def _cluster_role(name: str, rules: list[Obj], labels: dict[str, str] | None = None,
                  aggregate_from: str = "") -> Obj:
    role: Obj = {"apiVersion": API_VERSION, "kind": "ClusterRole",
                 "metadata": _metadata(name, labels=labels)}
    if aggregate_from:
        role["aggregationRule"] = {"clusterRoleSelectors": [
            {"matchLabels": {f"{RBAC_GROUP}/aggregate-to-{aggregate_from}": "true"}}]}
    if rules:
        role["rules"] = rules
    return role


def _role(namespace: str, name: str, rules: list[Obj]) -> Obj:
    return {"apiVersion": API_VERSION, "kind": "Role",
            "metadata": _metadata(name, namespace), "rules": rules}


def user(name: str) -> Obj:
    return {"apiGroup": RBAC_GROUP, "kind": "User", "name": name}


def group(name: str) -> Obj:
    return {"apiGroup": RBAC_GROUP, "kind": "Group", "name": name}


def service_account(namespace: str, name: str) -> Obj:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def _cluster_binding(role: str, subjects: list[Obj], name: str = "") -> Obj:
    binding: Obj = {"apiVersion": API_VERSION, "kind": "ClusterRoleBinding",
                    "metadata": _metadata(name or role),
                    "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role}}
    if subjects:
        binding["subjects"] = subjects
    return binding


def _role_binding(namespace: str, role: str, subjects: list[Obj], name: str = "") -> Obj:
    return {"apiVersion": API_VERSION, "kind": "RoleBinding",
            "metadata": _metadata(name or role, namespace),
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": role},
            "subjects": subjects}


def _aggregate_label(to: str) -> dict[str, str]:
    return {f"{RBAC_GROUP}/aggregate-to-{to}": "true"}


# ---------------------------------------------------------------------------------------------
# cluster roles (policy.go)


def node_rules() -> list[Obj]:
    """NodeRules: the system:node role, which the Node authorizer also applies itself."""
    return [
        # Non-mutating checks of API access.
        rule("create", groups=(AUTHENTICATION,), resources=("tokenreviews",)),
        rule("create", groups=(AUTHORIZATION,),
             resources=("subjectaccessreviews", "localsubjectaccessreviews")),
        # Service environment variables in pods.
        rule(*READ, groups=(LEGACY,), resources=("services",)),
        # Nodes register and report themselves (NodeRestriction limits them to their own).
        rule("create", "get", "list", "watch", groups=(LEGACY,), resources=("nodes",)),
        rule("update", "patch", groups=(LEGACY,), resources=("nodes/status",)),
        rule("update", "patch", groups=(LEGACY,), resources=("nodes",)),
        rule("create", "update", "patch", groups=(LEGACY,), resources=("events",)),
        rule(*READ, groups=(LEGACY,), resources=("pods",)),
        # Mirror pods, pod status and evictions of the node's own pods.
        rule("create", "delete", groups=(LEGACY,), resources=("pods",)),
        rule("update", "patch", groups=(LEGACY,), resources=("pods/status",)),
        rule("create", groups=(LEGACY,), resources=("pods/eviction",)),
        # Volumes and env of its pods (the Node authorizer limits these to its own pods).
        rule(*READ, groups=(LEGACY,), resources=("secrets", "configmaps")),
        rule("get", groups=(LEGACY,),
             resources=("persistentvolumeclaims", "persistentvolumes")),
        rule("get", groups=(LEGACY,), resources=("endpoints",)),
        rule("create", "get", "list", "watch", groups=(CERTIFICATES,),
             resources=("certificatesigningrequests",)),
        rule("get", "create", "update", "patch", "delete", groups=(COORDINATION,),
             resources=("leases",)),
        rule("get", groups=(STORAGE,), resources=("volumeattachments",)),
        rule("create", groups=(LEGACY,), resources=("serviceaccounts/token",)),
        rule("get", "update", "patch", groups=(LEGACY,),
             resources=("persistentvolumeclaims/status",)),
        rule("get", "watch", "list", groups=(STORAGE,), resources=("csidrivers",)),
        rule("get", "create", "update", "patch", "delete", groups=(STORAGE,),
             resources=("csinodes",)),
        rule("get", "list", "watch", groups=(NODE,), resources=("runtimeclasses",)),
    ]


def _aggregate_to_edit_rules() -> list[Obj]:
    return [
        # Read of escalating resources.
        rule(*READ, groups=(LEGACY,), resources=("pods/attach", "pods/proxy", "pods/exec",
                                                 "pods/portforward", "secrets",
                                                 "services/proxy")),
        rule("impersonate", groups=(LEGACY,), resources=("serviceaccounts",)),
        rule(*WRITE, groups=(LEGACY,), resources=("pods", "pods/attach", "pods/proxy",
                                                  "pods/exec", "pods/portforward")),
        rule("create", groups=(LEGACY,), resources=("pods/eviction",)),
        rule(*WRITE, groups=(LEGACY,), resources=(
            "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
            "services", "services/proxy", "persistentvolumeclaims", "configmaps", "secrets",
            "events")),
        rule("create", groups=(LEGACY,), resources=("serviceaccounts/token",)),
        rule(*WRITE, groups=(APPS,), resources=(
            "statefulsets", "statefulsets/scale", "daemonsets", "deployments",
            "deployments/scale", "deployments/rollback", "replicasets", "replicasets/scale")),
        rule(*WRITE, groups=(AUTOSCALING,), resources=("horizontalpodautoscalers",)),
        rule(*WRITE, groups=(BATCH,), resources=("jobs", "cronjobs")),
        rule(*WRITE, groups=(EXTENSIONS,), resources=(
            "daemonsets", "deployments", "deployments/scale", "deployments/rollback",
            "ingresses", "replicasets", "replicasets/scale", "replicationcontrollers/scale",
            "networkpolicies")),
        rule(*WRITE, groups=(POLICY,), resources=("poddisruptionbudgets",)),
        rule(*WRITE, groups=(NETWORKING,), resources=("networkpolicies", "ingresses")),
        rule(*READ_WRITE, groups=(COORDINATION,), resources=("leases",)),
    ]


def _aggregate_to_view_rules() -> list[Obj]:
    return [
        rule(*READ, groups=(LEGACY,), resources=(
            "pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
            "services", "services/status", "endpoints", "persistentvolumeclaims",
            "persistentvolumeclaims/status", "configmaps")),
        rule(*READ, groups=(LEGACY,), resources=(
            "limitranges", "resourcequotas", "bindings", "events", "pods/status",
            "resourcequotas/status", "namespaces/status", "replicationcontrollers/status",
            "pods/log")),
        # Read of namespaces at namespace scope means reading *this* namespace.
        rule(*READ, groups=(LEGACY,), resources=("namespaces",)),
        rule(*READ, groups=(DISCOVERY,), resources=("endpointslices",)),
        rule(*READ, groups=(APPS,), resources=(
            "controllerrevisions", "statefulsets", "statefulsets/status", "statefulsets/scale",
            "daemonsets", "daemonsets/status", "deployments", "deployments/status",
            "deployments/scale", "replicasets", "replicasets/status", "replicasets/scale")),
        rule(*READ, groups=(AUTOSCALING,), resources=("horizontalpodautoscalers",
                                                      "horizontalpodautoscalers/status")),
        rule(*READ, groups=(BATCH,), resources=("jobs", "cronjobs", "cronjobs/status",
                                                "jobs/status")),
        rule(*READ, groups=(EXTENSIONS,), resources=(
            "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
            "deployments/status", "ingresses", "ingresses/status", "replicasets",
            "replicasets/scale", "replicasets/status", "replicationcontrollers/scale",
            "networkpolicies")),
        rule(*READ, groups=(POLICY,), resources=("poddisruptionbudgets",
                                                 "poddisruptionbudgets/status")),
        rule(*READ, groups=(NETWORKING,), resources=("networkpolicies", "ingresses",
                                                     "ingresses/status")),
    ]


def _leader_lease_rules(name: str) -> list[Obj]:
    return [rule("create", groups=(COORDINATION,), resources=("leases",)),
            rule("get", "update", groups=(COORDINATION,), resources=("leases",), names=(name,))]


def _kube_controller_manager_rules() -> list[Obj]:
    upstream = [
        _events_rule(),
        *_leader_lease_rules("kube-controller-manager"),
        # Identities for the controllers (and the token controller's secrets).
        rule("create", groups=(LEGACY,), resources=("secrets", "serviceaccounts")),
        rule("delete", groups=(LEGACY,), resources=("secrets",)),
        rule("get", groups=(LEGACY,), resources=("configmaps", "namespaces", "secrets",
                                                 "serviceaccounts")),
        rule("update", groups=(LEGACY,), resources=("secrets", "serviceaccounts")),
        # Delegated authentication and authorization of its own endpoints.
        rule("create", groups=(AUTHENTICATION,), resources=("tokenreviews",)),
        rule("create", groups=(AUTHORIZATION,), resources=("subjectaccessreviews",)),
        # The shared informers watch everything.
        rule("list", "watch", groups=("*",), resources=("*",)),
        rule("create", groups=(LEGACY,), resources=("serviceaccounts/token",)),
    ]
    # kubelite: one identity does every controller's writes (see the module docstring).
    by_name = {_name(r): r for r in controller_roles()}
    extra = [r for c in KUBELITE_CONTROLLERS for r in by_name[f"system:controller:{c}"]["rules"]]
    return _dedupe([*upstream, *extra])


def _dedupe(rules: list[Obj]) -> list[Obj]:
    out: list[Obj] = []
    for r in rules:
        if r not in out:
            out.append(r)
    return out


def _kube_scheduler_rules() -> list[Obj]:
    return [
        _events_rule(),
        *_leader_lease_rules("kube-scheduler"),
        rule(*READ, groups=(LEGACY,), resources=("nodes",)),
        rule("get", "list", "watch", "delete", groups=(LEGACY,), resources=("pods",)),
        rule("create", groups=(LEGACY,), resources=("pods/binding", "bindings")),
        rule("patch", "update", groups=(LEGACY,), resources=("pods/status",)),
        # Things that pods reference, for scheduling decisions.
        rule(*READ, groups=(LEGACY,), resources=("replicationcontrollers", "services")),
        rule(*READ, groups=(APPS, EXTENSIONS), resources=("replicasets",)),
        rule(*READ, groups=(APPS,), resources=("statefulsets",)),
        rule(*READ, groups=(POLICY,), resources=("poddisruptionbudgets",)),
        rule(*READ, groups=(LEGACY,), resources=("persistentvolumeclaims",
                                                 "persistentvolumes")),
        # Delegated authentication and authorization of its own endpoints.
        rule("create", groups=(AUTHENTICATION,), resources=("tokenreviews",)),
        rule("create", groups=(AUTHORIZATION,), resources=("subjectaccessreviews",)),
        rule(*READ, groups=(STORAGE,), resources=("csinodes",)),
        rule(*READ, groups=(LEGACY,), resources=("namespaces",)),
        rule(*READ, groups=(STORAGE,), resources=("csidrivers",)),
        rule(*READ, groups=(STORAGE,), resources=("csistoragecapacities",)),
    ]


def _approver(signer: str) -> list[Obj]:
    return [rule("approve", groups=(CERTIFICATES,), resources=("signers",), names=(signer,))]


def cluster_roles() -> list[Obj]:
    """ClusterRoles(): upstream's, plus the controller roles of kubelite's controllers."""
    roles = [
        # A "root" role which can do absolutely anything.
        _cluster_role("cluster-admin", [rule("*", groups=("*",), resources=("*",)),
                                        rule("*", urls=("*",))]),
        # Just enough to see whether the server is ready and to discover its APIs.
        _cluster_role("system:discovery", [rule("get", urls=(
            "/livez", "/readyz", "/healthz", "/version", "/version/", "/openapi", "/openapi/*",
            "/api", "/api/*", "/apis", "/apis/*"))]),
        _cluster_role("system:monitoring", [rule("get", urls=(
            "/metrics", "/metrics/slis", "/livez", "/readyz", "/healthz", "/livez/*",
            "/readyz/*", "/healthz/*"))]),
        # What a "normal" user needs to learn about themselves.
        _cluster_role("system:basic-user", [
            rule("create", groups=(AUTHORIZATION,),
                 resources=("selfsubjectaccessreviews", "selfsubjectrulesreviews")),
            rule("create", groups=(AUTHENTICATION,), resources=("selfsubjectreviews",)),
        ]),
        # Insensitive cluster information, for everyone including anonymous.
        _cluster_role("system:public-info-viewer", [rule("get", urls=(
            "/livez", "/readyz", "/healthz", "/version", "/version/"))]),
        # The user-facing roles are aggregated from the system:aggregate-to-* ones below.
        _cluster_role("admin", [], aggregate_from="admin"),
        _cluster_role("edit", [], labels=_aggregate_label("admin"), aggregate_from="edit"),
        _cluster_role("view", [], labels=_aggregate_label("edit"), aggregate_from="view"),
        _cluster_role("system:aggregate-to-admin", [
            rule("create", groups=(AUTHORIZATION,), resources=("localsubjectaccessreviews",)),
            rule(*READ_WRITE, groups=(RBAC_GROUP,), resources=("roles", "rolebindings")),
        ], labels=_aggregate_label("admin")),
        _cluster_role("system:aggregate-to-edit", _aggregate_to_edit_rules(),
                      labels=_aggregate_label("edit")),
        _cluster_role("system:aggregate-to-view", _aggregate_to_view_rules(),
                      labels=_aggregate_label("view")),
        _cluster_role("system:heapster", [
            rule(*READ, groups=(LEGACY,), resources=("events", "pods", "nodes", "namespaces")),
            rule(*READ, groups=(EXTENSIONS,), resources=("deployments",)),
        ]),
        _cluster_role("system:node", node_rules()),
        _cluster_role("system:node-problem-detector", [
            rule("get", groups=(LEGACY,), resources=("nodes",)),
            rule("patch", groups=(LEGACY,), resources=("nodes/status",)),
            _events_rule(),
        ]),
        _cluster_role("system:kubelet-api-admin", [
            # Reading node objects, which kubelet clients use to find the kubelet.
            rule(*READ, groups=(LEGACY,), resources=("nodes",)),
            rule("proxy", groups=(LEGACY,), resources=("nodes",)),
            rule("*", groups=(LEGACY,), resources=("nodes/proxy", "nodes/metrics",
                                                   "nodes/stats", "nodes/log")),
        ]),
        _cluster_role("system:node-bootstrapper", [
            rule("create", "get", "list", "watch", groups=(CERTIFICATES,),
                 resources=("certificatesigningrequests",)),
        ]),
        _cluster_role("system:auth-delegator", [
            rule("create", groups=(AUTHENTICATION,), resources=("tokenreviews",)),
            rule("create", groups=(AUTHORIZATION,), resources=("subjectaccessreviews",)),
        ]),
        _cluster_role("system:kube-aggregator", [
            rule(*READ, groups=(LEGACY,), resources=("services", "endpoints")),
        ]),
        _cluster_role("system:kube-controller-manager", _kube_controller_manager_rules()),
        _cluster_role("system:kube-dns", [
            rule("list", "watch", groups=(LEGACY,), resources=("endpoints", "services")),
            # kubelite's DNS add-on reads EndpointSlices (see the module docstring).
            rule("list", "watch", groups=(DISCOVERY,), resources=("endpointslices",)),
        ]),
        _cluster_role("system:persistent-volume-provisioner", [
            rule("get", "list", "watch", "create", "delete", groups=(LEGACY,),
                 resources=("persistentvolumes",)),
            rule("get", "list", "watch", "update", groups=(LEGACY,),
                 resources=("persistentvolumeclaims",)),
            rule(*READ, groups=(STORAGE,), resources=("storageclasses",)),
            rule("watch", groups=(LEGACY,), resources=("events",)),
            _events_rule(),
        ]),
        _cluster_role("system:certificates.k8s.io:kubelet-serving-approver",
                      _approver("kubernetes.io/kubelet-serving")),
        _cluster_role("system:certificates.k8s.io:kube-apiserver-client-approver",
                      _approver("kubernetes.io/kube-apiserver-client")),
        _cluster_role("system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
                      _approver("kubernetes.io/kube-apiserver-client-kubelet")),
        _cluster_role("system:certificates.k8s.io:legacy-unknown-approver",
                      _approver("kubernetes.io/legacy-unknown")),
        _cluster_role("system:certificates.k8s.io:certificatesigningrequests:nodeclient", [
            rule("create", groups=(CERTIFICATES,),
                 resources=("certificatesigningrequests/nodeclient",))]),
        _cluster_role("system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", [
            rule("create", groups=(CERTIFICATES,),
                 resources=("certificatesigningrequests/selfnodeclient",))]),
        _cluster_role("system:volume-scheduler", [
            rule(*READ_UPDATE, groups=(LEGACY,), resources=("persistentvolumes",)),
            rule(*READ, groups=(STORAGE,), resources=("storageclasses",)),
            rule(*READ_UPDATE, groups=(LEGACY,), resources=("persistentvolumeclaims",)),
        ]),
        _cluster_role("system:kube-scheduler", _kube_scheduler_rules()),
        _cluster_role("system:node-proxier", [
            rule("list", "watch", groups=(LEGACY,), resources=("services", "endpoints")),
            rule(*READ, groups=(LEGACY,), resources=("nodes",)),
            _events_rule(),
            rule("list", "watch", groups=(DISCOVERY,), resources=("endpointslices",)),
        ]),
        _cluster_role("system:service-account-issuer-discovery", [
            rule("get", urls=("/.well-known/openid-configuration", "/openid/v1/jwks"))]),
        # kubelite's ipamd, in the place of EKS's aws-node ClusterRole: the pods of its
        # node (to release addresses of pods that are gone) and nodes.
        _cluster_role(IPAMD_ROLE, [
            rule(*READ, groups=(LEGACY,), resources=("pods", "nodes")),
            _events_rule(),
        ]),
    ]
    return roles + controller_roles()


IPAMD_USER = "kubelite:ipamd"  # every node's ipamd (kubelite/pki.py issues its certificate)
IPAMD_ROLE = "kubelite:ipamd"


def cluster_role_bindings() -> list[Obj]:
    """ClusterRoleBindings(): upstream's, plus the apiserver's kubelet-client binding."""
    return [
        _cluster_binding("cluster-admin", [group(MASTERS)]),
        _cluster_binding("system:monitoring", [group(MONITORING_GROUP)]),
        _cluster_binding("system:discovery", [group(AUTHENTICATED)]),
        _cluster_binding("system:basic-user", [group(AUTHENTICATED)]),
        _cluster_binding("system:public-info-viewer", [group(AUTHENTICATED),
                                                        group(UNAUTHENTICATED)]),
        _cluster_binding("system:node-proxier", [user(KUBE_PROXY_USER)]),
        _cluster_binding("system:kube-controller-manager", [user(KUBE_CONTROLLER_MANAGER_USER)]),
        _cluster_binding("system:kube-dns", [service_account(KUBE_SYSTEM, "kube-dns")]),
        _cluster_binding("system:kube-scheduler", [user(KUBE_SCHEDULER_USER)]),
        _cluster_binding("system:volume-scheduler", [user(KUBE_SCHEDULER_USER)]),
        # Nodes get their rights from the Node authorizer; upstream keeps the binding empty.
        _cluster_binding("system:node", []),
        _cluster_binding("system:service-account-issuer-discovery",
                         [group(SERVICE_ACCOUNTS_GROUP)]),
        _cluster_binding("system:kubelet-api-admin", [user(APISERVER_KUBELET_CLIENT_USER)],
                         name=APISERVER_KUBELET_CLIENT_BINDING),
        _cluster_binding(IPAMD_ROLE, [user(IPAMD_USER)]),
    ] + controller_role_bindings()


# ---------------------------------------------------------------------------------------------
# controller roles (controller_policy.go), for the controllers kubelite runs


def _controller_rules() -> dict[str, list[Obj]]:
    return {
        "clusterrole-aggregation-controller": [
            # Aggregating writes rules its identity may not hold: it needs escalate.
            rule("escalate", "get", "list", "watch", "update", "patch", groups=(RBAC_GROUP,),
                 resources=("clusterroles",)),
        ],
        "daemon-set-controller": [
            rule(*READ, groups=(EXTENSIONS, APPS), resources=("daemonsets",)),
            rule("update", groups=(EXTENSIONS, APPS), resources=("daemonsets/status",)),
            rule("update", groups=(EXTENSIONS, APPS), resources=("daemonsets/finalizers",)),
            rule("list", "watch", groups=(LEGACY,), resources=("nodes",)),
            rule("list", "watch", "create", "delete", "patch", groups=(LEGACY,),
                 resources=("pods",)),
            rule("create", groups=(LEGACY,), resources=("pods/binding",)),
            rule("get", "list", "watch", "create", "delete", "update", "patch", groups=(APPS,),
                 resources=("controllerrevisions",)),
            _events_rule(),
        ],
        "deployment-controller": [
            rule("get", "list", "watch", "update", groups=(EXTENSIONS, APPS),
                 resources=("deployments",)),
            rule("update", groups=(EXTENSIONS, APPS), resources=("deployments/status",)),
            rule("update", groups=(EXTENSIONS, APPS), resources=("deployments/finalizers",)),
            rule("get", "list", "watch", "create", "update", "patch", "delete",
                 groups=(EXTENSIONS, APPS), resources=("replicasets",)),
            # Pods are read for Recreate, updated to adopt orphans.
            rule("get", "list", "watch", "update", groups=(LEGACY,), resources=("pods",)),
            _events_rule(),
        ],
        "endpoint-controller": [
            rule(*READ, groups=(LEGACY,), resources=("services", "pods")),
            rule("get", "list", "create", "update", "delete", "watch", groups=(LEGACY,),
                 resources=("endpoints",)),
            rule("create", groups=(LEGACY,), resources=("endpoints/restricted",)),
            _events_rule(),
        ],
        "endpointslice-controller": [
            rule(*READ, groups=(LEGACY,), resources=("services", "pods", "nodes")),
            # Services' OwnerReferencesPermissionEnforcement needs finalizers update.
            rule("update", groups=(LEGACY,), resources=("services/finalizers",)),
            rule("get", "list", "create", "update", "delete", "watch", groups=(DISCOVERY,),
                 resources=("endpointslices",)),
            _events_rule(),
        ],
        "generic-garbage-collector": [
            # Deletes and updates (for finalizers and owner references) anything.
            rule("get", "list", "watch", "patch", "update", "delete", groups=("*",),
                 resources=("*",)),
            _events_rule(),
        ],
        "job-controller": [
            rule("get", "list", "watch", "update", "patch", groups=(BATCH,),
                 resources=("jobs",)),
            rule("update", groups=(BATCH,), resources=("jobs/status",)),
            rule("update", groups=(BATCH,), resources=("jobs/finalizers",)),
            rule("list", "watch", "create", "delete", "patch", groups=(LEGACY,),
                 resources=("pods",)),
            _events_rule(),
        ],
        "namespace-controller": [
            rule("get", "list", "watch", "delete", groups=(LEGACY,), resources=("namespaces",)),
            rule("update", groups=(LEGACY,), resources=("namespaces/finalize",
                                                        "namespaces/status")),
            rule("get", "list", "delete", "deletecollection", "watch", groups=("*",),
                 resources=("*",)),
        ],
        "node-controller": [
            rule("get", "list", "update", "delete", "patch", "watch", groups=(LEGACY,),
                 resources=("nodes",)),
            rule("patch", "update", groups=(LEGACY,), resources=("nodes/status",)),
            # Marks pods NotReady and evicts them from unreachable nodes.
            rule("patch", "update", groups=(LEGACY,), resources=("pods/status",)),
            rule("list", "watch", "get", "delete", groups=(LEGACY,), resources=("pods",)),
            _events_rule(),
        ],
        "replicaset-controller": [
            rule("get", "list", "watch", "update", groups=(APPS, EXTENSIONS),
                 resources=("replicasets",)),
            rule("update", groups=(APPS, EXTENSIONS), resources=("replicasets/status",)),
            rule("update", groups=(APPS, EXTENSIONS), resources=("replicasets/finalizers",)),
            rule("list", "watch", "patch", "create", "delete", groups=(LEGACY,),
                 resources=("pods",)),
            _events_rule(),
        ],
        "root-ca-cert-publisher": [
            rule("create", "update", groups=(LEGACY,), resources=("configmaps",)),
            _events_rule(),
        ],
        "service-account-controller": [
            rule("create", groups=(LEGACY,), resources=("serviceaccounts",)),
            _events_rule(),
        ],
        "ttl-after-finished-controller": [
            rule("get", "list", "watch", "delete", groups=(BATCH,), resources=("jobs",)),
            _events_rule(),
        ],
    }


def controller_roles() -> list[Obj]:
    return [_cluster_role(f"system:controller:{name}", rules)
            for name, rules in _controller_rules().items()]


def controller_role_bindings() -> list[Obj]:
    """Each controller role bound to its service account in kube-system, as upstream. In
    kubelite nobody uses these accounts; the bindings are kept so the policy reads the same."""
    return [_cluster_binding(f"system:controller:{name}",
                             [service_account(KUBE_SYSTEM, name)])
            for name in _controller_rules()]


# ---------------------------------------------------------------------------------------------
# namespaced roles (namespace_policy.go)


def _leader_locking_rules() -> list[Obj]:
    return [rule("get", "list", "watch", "create", "update", groups=(COORDINATION,),
                 resources=(resource,)) for resource in ("leases", "leasecandidates")]


def roles() -> list[Obj]:
    return [
        # Lets components that delegate authentication read the apiserver's client CA.
        _role(KUBE_SYSTEM, "extension-apiserver-authentication-reader", [
            rule(*READ, groups=(LEGACY,), resources=("configmaps",),
                 names=("extension-apiserver-authentication",))]),
        _role(KUBE_SYSTEM, "system::leader-locking-kube-controller-manager",
              _leader_locking_rules()),
        _role(KUBE_SYSTEM, "system::leader-locking-kube-scheduler", _leader_locking_rules()),
        _role(KUBE_SYSTEM, "system:controller:bootstrap-signer", [
            rule(*READ, groups=(LEGACY,), resources=("secrets",))]),
        _role(KUBE_SYSTEM, "system:controller:cloud-provider", [
            rule("create", "get", "list", "watch", groups=(LEGACY,), resources=("configmaps",))]),
        _role(KUBE_SYSTEM, "system:controller:token-cleaner", [
            rule("delete", "get", "list", "watch", groups=(LEGACY,), resources=("secrets",)),
            _events_rule()]),
        # The simulated EC2 API keeps the VPC's ENIs and addresses in a kube-system
        # ConfigMap (cni/ec2.py); every node's ipamd reads and writes it.
        _role(KUBE_SYSTEM, IPAMD_ROLE, [
            rule("get", "create", "update", groups=(LEGACY,), resources=("configmaps",))]),
        _role(KUBE_PUBLIC, "system:controller:bootstrap-signer", [
            rule(*READ, groups=(LEGACY,), resources=("configmaps",)),
            rule("update", groups=(LEGACY,), resources=("configmaps",), names=("cluster-info",)),
            _events_rule()]),
    ]


def role_bindings() -> list[Obj]:
    return [
        _role_binding(KUBE_SYSTEM, IPAMD_ROLE, [user(IPAMD_USER)]),
        _role_binding(KUBE_SYSTEM, "extension-apiserver-authentication-reader",
                      [user(KUBE_CONTROLLER_MANAGER_USER), user(KUBE_SCHEDULER_USER)],
                      name="system::extension-apiserver-authentication-reader"),
        _role_binding(KUBE_SYSTEM, "system::leader-locking-kube-controller-manager", [
            user(KUBE_CONTROLLER_MANAGER_USER),
            service_account(KUBE_SYSTEM, "kube-controller-manager"),
            service_account(KUBE_SYSTEM, "leader-election-controller")]),
        _role_binding(KUBE_SYSTEM, "system::leader-locking-kube-scheduler", [
            user(KUBE_SCHEDULER_USER), service_account(KUBE_SYSTEM, "kube-scheduler")]),
        _role_binding(KUBE_SYSTEM, "system:controller:bootstrap-signer",
                      [service_account(KUBE_SYSTEM, "bootstrap-signer")]),
        _role_binding(KUBE_SYSTEM, "system:controller:cloud-provider",
                      [service_account(KUBE_SYSTEM, "cloud-provider")]),
        _role_binding(KUBE_SYSTEM, "system:controller:token-cleaner",
                      [service_account(KUBE_SYSTEM, "token-cleaner")]),
        _role_binding(KUBE_PUBLIC, "system:controller:bootstrap-signer",
                      [service_account(KUBE_SYSTEM, "bootstrap-signer")]),
    ]


def bootstrap_objects() -> list[tuple[str, Obj]]:
    """Every bootstrap object as (plural, object), fresh copies, roles before bindings. The
    namespaced ones need kube-system and kube-public to exist."""
    return ([("clusterroles", r) for r in cluster_roles()]
            + [("clusterrolebindings", b) for b in cluster_role_bindings()]
            + [("roles", r) for r in roles()]
            + [("rolebindings", b) for b in role_bindings()])


# ---------------------------------------------------------------------------------------------
# reconciliation (reconcile_role.go, reconcile_rolebindings.go), in its "union" mode


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _map(obj: Obj, key: str) -> dict[str, str]:
    value = (obj.get("metadata") or {}).get(key)
    return dict(value) if isinstance(value, dict) else {}


def _list(obj: Obj, key: str) -> list[Any]:
    value = obj.get(key)
    return list(value) if isinstance(value, list) else []


def _subject_key(subject: Any) -> tuple[str, ...]:
    s = subject if isinstance(subject, dict) else {}
    return tuple(str(s.get(k) or "") for k in ("kind", "apiGroup", "name", "namespace"))


def is_protected(obj: Obj) -> bool:
    """Objects annotated autoupdate=false are left as their owner made them."""
    return _map(obj, "annotations").get(AUTOUPDATE_ANNOTATION) == "false"


def reconcile(existing: Obj, wanted: Obj) -> Obj | None:
    """The updated copy of `existing` that also has everything `wanted` has (labels and
    annotations it lacks, missing rules, aggregation selectors or subjects), or None when
    nothing is missing or the object is protected. Additions made by users are kept; a
    binding whose roleRef differs comes back with wanted's roleRef and must be deleted and
    created again (`needs_recreate`), since roleRef is immutable."""
    if is_protected(existing):
        return None
    result = copy.deepcopy(existing)
    md = result.setdefault("metadata", {})
    changed = False
    for key in ("annotations", "labels"):
        merged = {**_map(wanted, key), **_map(existing, key)}
        if merged != _map(existing, key):
            md[key] = merged
            changed = True
    if wanted.get("kind") in ("Role", "ClusterRole"):
        changed |= _reconcile_rules(result, existing, wanted)
    else:
        changed |= _reconcile_subjects(result, existing, wanted)
    return result if changed else None


def _reconcile_rules(result: Obj, existing: Obj, wanted: Obj) -> bool:
    changed = False
    rules = [r for r in _list(existing, "rules") if isinstance(r, dict)]
    _, missing = covers(rules, [r for r in _list(wanted, "rules") if isinstance(r, dict)])
    if missing:
        result["rules"] = rules + missing
        changed = True
    wanted_aggregation = wanted.get("aggregationRule")
    existing_aggregation = existing.get("aggregationRule")
    if wanted_aggregation is None:
        if existing_aggregation is not None:
            # Not meant to be aggregated at all: the controller would own its rules.
            result.pop("aggregationRule", None)
            changed = True
        return changed
    have = _list(existing_aggregation if isinstance(existing_aggregation, dict) else {},
                 "clusterRoleSelectors")
    absent = [s for s in _list(wanted_aggregation, "clusterRoleSelectors") if s not in have]
    if absent:
        result["aggregationRule"] = {"clusterRoleSelectors": have + absent}
        changed = True
    return changed


def _reconcile_subjects(result: Obj, existing: Obj, wanted: Obj) -> bool:
    changed = False
    if existing.get("roleRef") != wanted.get("roleRef"):
        result["roleRef"] = copy.deepcopy(wanted.get("roleRef"))
        changed = True
    subjects = _list(existing, "subjects")
    have = {_subject_key(s) for s in subjects}
    absent = [copy.deepcopy(s) for s in _list(wanted, "subjects")
              if _subject_key(s) not in have]
    if absent:
        result["subjects"] = subjects + absent
        changed = True
    return changed


def needs_recreate(existing: Obj, reconciled: Obj) -> bool:
    """A reconciled binding whose roleRef changed: delete `existing`, create `reconciled`."""
    return existing.get("roleRef") != reconciled.get("roleRef")
