"""The Node authorizer (upstream plugin/pkg/auth/authorizer/node): a kubelet, identified as
`system:node:<name>` in group `system:nodes`, may read a Secret, ConfigMap, PVC or PV only
when a pod bound to its node refers to it, may ask for a service-account token only for a
service account such a pod runs as, and may touch only its own Lease. Everything else it
may do is the fixed set of node rules (the `system:node` role), checked by `rules_allow`.
Which object a node may write (its own Node, its pods' status) is NodeRestriction's part
(apiserver/auth/noderestriction.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from apiserver.auth.attributes import NODE_USER_PREFIX, NODES_GROUP, Attributes, Decision, UserInfo

Obj = dict[str, Any]
NODE_LEASE_NAMESPACE = "kube-node-lease"
_GRAPH_RESOURCES = ("secrets", "configmaps", "persistentvolumeclaims", "persistentvolumes")


def node_name_of(user: UserInfo) -> str | None:
    """The node a kubelet's identity names, or None for any other user."""
    if NODES_GROUP not in user.groups or not user.name.startswith(NODE_USER_PREFIX):
        return None
    return user.name[len(NODE_USER_PREFIX):] or None


def pod_references(pod: Obj) -> set[tuple[str, str]]:
    """(resource, name) of every Secret, ConfigMap, PVC and ServiceAccount a pod uses."""
    spec = pod.get("spec") or {}
    refs: set[tuple[str, str]] = set()
    refs.add(("serviceaccounts", spec.get("serviceAccountName") or "default"))
    for s in spec.get("imagePullSecrets") or []:
        if isinstance(s, dict) and s.get("name"):
            refs.add(("secrets", s["name"]))
    for v in spec.get("volumes") or []:
        if not isinstance(v, dict):
            continue
        if (v.get("secret") or {}).get("secretName"):
            refs.add(("secrets", v["secret"]["secretName"]))
        if (v.get("configMap") or {}).get("name"):
            refs.add(("configmaps", v["configMap"]["name"]))
        if (v.get("persistentVolumeClaim") or {}).get("claimName"):
            refs.add(("persistentvolumeclaims", v["persistentVolumeClaim"]["claimName"]))
        for src in (v.get("projected") or {}).get("sources") or []:
            if not isinstance(src, dict):
                continue
            if (src.get("secret") or {}).get("name"):
                refs.add(("secrets", src["secret"]["name"]))
            if (src.get("configMap") or {}).get("name"):
                refs.add(("configmaps", src["configMap"]["name"]))
    containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or []),
                  *(spec.get("ephemeralContainers") or [])]
    for c in containers:
        if not isinstance(c, dict):
            continue
        for env in c.get("env") or []:
            source = (env or {}).get("valueFrom") or {}
            if (source.get("secretKeyRef") or {}).get("name"):
                refs.add(("secrets", source["secretKeyRef"]["name"]))
            if (source.get("configMapKeyRef") or {}).get("name"):
                refs.add(("configmaps", source["configMapKeyRef"]["name"]))
        for env_from in c.get("envFrom") or []:
            if ((env_from or {}).get("secretRef") or {}).get("name"):
                refs.add(("secrets", env_from["secretRef"]["name"]))
            if ((env_from or {}).get("configMapRef") or {}).get("name"):
                refs.add(("configmaps", env_from["configMapRef"]["name"]))
    return refs


class NodeGraph:
    """Which objects each node's pods refer to, computed from the pod cache and kept until
    the cache moves on (`revision()` changes)."""

    def __init__(self, pods: Callable[[], Iterable[Obj]], revision: Callable[[], int]) -> None:
        self._pods, self._revision = pods, revision
        self._seen = -1
        self._by_node: dict[str, set[tuple[str, str, str]]] = {}

    def references(self, node: str) -> set[tuple[str, str, str]]:
        """(resource, namespace, name) the pods bound to `node` use."""
        rev = self._revision()
        if rev != self._seen:
            by_node: dict[str, set[tuple[str, str, str]]] = {}
            for pod in self._pods():
                bound = (pod.get("spec") or {}).get("nodeName")
                if not bound:
                    continue
                ns = pod["metadata"].get("namespace", "")
                refs = by_node.setdefault(bound, set())
                refs.update((res, ns, name) for res, name in pod_references(pod))
            self._by_node, self._seen = by_node, rev
        return self._by_node.get(node, set())


class NodeAuthorizer:
    def __init__(self, graph: NodeGraph, rules_allow: Callable[[Attributes], bool]) -> None:
        self.graph = graph
        self.rules_allow = rules_allow

    def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        node = node_name_of(attrs.user)
        if node is None:
            return Decision.NO_OPINION, ""
        if attrs.resource_request:
            if attrs.api_group == "" and attrs.resource in _GRAPH_RESOURCES:
                return self._read_referenced(node, attrs)
            if attrs.api_group == "" and attrs.resource == "serviceaccounts" and \
                    attrs.subresource == "token":
                return self._create_token(node, attrs)
            if attrs.api_group == "coordination.k8s.io" and attrs.resource == "leases":
                return self._lease(node, attrs)
        if self.rules_allow(attrs):
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, ""

    def _related(self, node: str, resource: str, namespace: str, name: str) -> bool:
        return (resource, namespace, name) in self.graph.references(node)

    def _read_referenced(self, node: str, attrs: Attributes) -> tuple[Decision, str]:
        # Refusals are NoOpinion, as upstream: RBAC may still grant what the graph does not.
        if attrs.verb not in ("get", "list", "watch"):
            return Decision.NO_OPINION, "can only read resources of this type"
        if attrs.subresource:
            return Decision.NO_OPINION, f"cannot read subresource {attrs.subresource}"
        if not attrs.name:
            return Decision.NO_OPINION, "No Object name found"
        if self._related(node, attrs.resource, attrs.namespace, attrs.name):
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, (f"no relationship found between node '{node}' and this "
                                     "object")

    def _create_token(self, node: str, attrs: Attributes) -> tuple[Decision, str]:
        if attrs.verb != "create" or not attrs.name:
            return Decision.NO_OPINION, "can only create tokens for individual service accounts"
        if self._related(node, "serviceaccounts", attrs.namespace, attrs.name):
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, (f"no relationship found between node '{node}' and this "
                                     "object")

    def _lease(self, node: str, attrs: Attributes) -> tuple[Decision, str]:
        if attrs.verb not in ("get", "create", "update", "patch", "delete"):
            return Decision.NO_OPINION, ("can only get, create, update, patch, or delete a "
                                         "node lease")
        if attrs.namespace != NODE_LEASE_NAMESPACE:
            return Decision.NO_OPINION, (f'can only access leases in the '
                                         f'"{NODE_LEASE_NAMESPACE}" system namespace')
        if attrs.verb != "create" and attrs.name != node:
            return Decision.NO_OPINION, ("can only access node lease with the same name as "
                                         "the requesting node")
        return Decision.ALLOW, ""
