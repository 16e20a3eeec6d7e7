"""The resource catalogue: every kind the API serves, described as data.

Adding a kind means adding one `Resource` here and (optionally) a strategy in
apiserver/registry; discovery, routing, storage keys and OpenAPI all read this table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
REVIEW_VERBS = ("create",)


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # subresource name -> kind served there ("status" serves the main kind)
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    singular: str = field(default="")

    @property
    def stored(self) -> bool:
        """False for the reviews: answered from the request, nothing kept in etcd."""
        return "get" in self.verbs

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def group_resource(self) -> str:
        """`pods`, `deployments.apps`: the name used in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def storage_prefix(self) -> str:
        return f"/registry/{self.storage_name}/"

    @property
    def storage_name(self) -> str:
        # The contract (DESIGN §2) is /registry/<resource>/...: the plain plural for every kind.
        return self.plural

    def storage_key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"/registry/{self.storage_name}/{namespace}/{name}"
        return f"/registry/{self.storage_name}/{name}"

    def storage_list_prefix(self, namespace: str | None) -> str:
        if self.namespaced and namespace:
            return f"/registry/{self.storage_name}/{namespace}/"
        return self.storage_prefix()


_ALL = "all"

RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "Namespace", "namespaces", False, ("ns",), (), ("status", "finalize"),
             ("create", "delete", "get", "list", "patch", "update", "watch")),
    Resource("", "v1", "Pod", "pods", True, ("po",), (_ALL,),
             ("status", "binding", "log", "exec", "attach", "eviction", "ephemeralcontainers",
              "proxy", "portforward")),
    Resource("", "v1", "Node", "nodes", False, ("no",), (), ("status",)),
    Resource("", "v1", "Service", "services", True, ("svc",), (_ALL,), ("status", "proxy"),
             ("create", "delete", "deletecollection", "get", "list", "patch", "update",
              "watch")),
    Resource("", "v1", "Endpoints", "endpoints", True, ("ep",), (), (), singular="endpoints"),
    Resource("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    Resource("", "v1", "Secret", "secrets", True),
    Resource("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",), (), ("token",)),
    Resource("", "v1", "Event", "events", True, ("ev",)),
    Resource("apps", "v1", "Deployment", "deployments", True, ("deploy",), (_ALL,),
             ("status", "scale")),
    Resource("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), (_ALL,),
             ("status", "scale")),
    Resource("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), (_ALL,), ("status",)),
    Resource("batch", "v1", "Job", "jobs", True, (), (_ALL,), ("status",)),
    Resource("coordination.k8s.io", "v1", "Lease", "leases", True),
    Resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
    Resource("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    Resource("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings",
             False),
    Resource("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    Resource("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    # Reviews: create-only, answered from the request and never stored (REVIEW_VERBS).
    Resource("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", False,
             verbs=REVIEW_VERBS),
    Resource("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False,
             verbs=REVIEW_VERBS),
    Resource("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews",
             False, verbs=REVIEW_VERBS),
    Resource("authorization.k8s.io", "v1", "SelfSubjectAccessReview",
             "selfsubjectaccessreviews", False, verbs=REVIEW_VERBS),
    Resource("authorization.k8s.io", "v1", "LocalSubjectAccessReview",
             "localsubjectaccessreviews", True, verbs=REVIEW_VERBS),
    Resource("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews",
             False, verbs=REVIEW_VERBS),
)

# Subresources that are served as their own kind.
SUBRESOURCE_KINDS: dict[str, tuple[str, str]] = {
    # name -> (group/version, kind)
    "scale": ("autoscaling/v1", "Scale"),
    "binding": ("v1", "Binding"),
    "eviction": ("policy/v1", "Eviction"),
    "token": ("authentication.k8s.io/v1", "TokenRequest"),
}


class Catalogue:
    """Lookup tables over RESOURCES."""

    def __init__(self, resources: tuple[Resource, ...] = RESOURCES) -> None:
        self.resources = resources
        self._by_gvr = {(r.group, r.version, r.plural): r for r in resources}
        self._by_gvk = {(r.group, r.version, r.kind): r for r in resources}

    def lookup(self, group: str, version: str, plural: str) -> Resource | None:
        return self._by_gvr.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> Resource | None:
        group, _, version = api_version.rpartition("/")
        return self._by_gvk.get((group, version, kind))

    def by_plural(self, plural: str) -> Resource | None:
        for r in self.resources:
            if r.plural == plural:
                return r
        return None

    def require(self, plural: str) -> Resource:
        """The resource with this plural; for names fixed in code (KeyError if absent)."""
        found = self.by_plural(plural)
        if found is None:
            raise KeyError(plural)
        return found

    def groups(self) -> dict[str, list[str]]:
        """Non-core group name -> versions, in catalogue order."""
        out: dict[str, list[str]] = {}
        for r in self.resources:
            if r.group and r.version not in out.setdefault(r.group, []):
                out[r.group].append(r.version)
        return out

    def in_group_version(self, group: str, version: str) -> list[Resource]:
        return [r for r in self.resources if r.group == group and r.version == version]


CATALOGUE = Catalogue()
