"""NodeRestriction admission (upstream plugin/pkg/admission/noderestriction): what a kubelet
may write, once RBAC and the Node authorizer let it write the kind at all. A node changes
only its own Node and Lease, the status of pods bound to it, deletes only its pods, creates
only mirror pods of its own, and asks for service-account tokens only bound to its pods.
"""

from __future__ import annotations

from typing import Any, Protocol

from api import errors
from apiserver.auth.attributes import UserInfo
from apiserver.auth.node import node_name_of, pod_references

Obj = dict[str, Any]
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
NODE_LEASE_NAMESPACE = "kube-node-lease"


class Lookup(Protocol):
    """The objects the checks compare against (apiserver/security.py's StoreLookup)."""

    async def get_pod(self, namespace: str, name: str) -> Obj | None: ...

    async def get_node(self, name: str) -> Obj | None: ...


def _forbidden(group_resource: str, name: str, message: str) -> errors.Forbidden:
    subject = f'{group_resource} "{name}"' if name else group_resource
    resource, _, group = group_resource.partition(".")
    details = {"name": name, "group": group, "kind": resource} if group else \
        {"name": name, "kind": resource}
    return errors.Forbidden(f"{subject} is forbidden: {message}", details=details)


def _bound_node(pod: Obj | None) -> str:
    return str(((pod or {}).get("spec") or {}).get("nodeName") or "")


async def admit(user: UserInfo | None, operation: str, resource: str, subresource: str,
                namespace: str, name: str, new: Obj | None, old: Obj | None,
                lookup: Lookup) -> None:
    """Raise Forbidden when a node's write goes beyond what is its own.

    operation: CREATE, UPDATE or DELETE; `resource` is the plural of the core kinds this
    plugin guards (pods, nodes, serviceaccounts); other resources pass.
    """
    if user is None:
        return
    node = node_name_of(user)
    if node is None:
        return
    if resource == "pods":
        await _admit_pod(node, operation, subresource, name, new, old, lookup)
    elif resource == "nodes":
        if name != node:
            raise _forbidden("nodes", name, f'node "{node}" is not allowed to modify node '
                                            f'"{name}"')
    elif resource == "serviceaccounts" and subresource == "token":
        await _admit_token(node, namespace, name, new, lookup)
    elif resource == "leases" and namespace == NODE_LEASE_NAMESPACE and name != node:
        raise _forbidden("leases.coordination.k8s.io", name,
                         "can only access node lease with the same name as the requesting "
                         "node")


async def _admit_pod(node: str, operation: str, subresource: str, name: str,
                     new: Obj | None, old: Obj | None, lookup: Lookup) -> None:
    if subresource in ("status", "eviction") or operation == "DELETE":
        if _bound_node(old) != node:
            # upstream's wording, one per operation
            message = {
                "status": f'node "{node}" can only update pod status for pods with '
                          f'spec.nodeName set to itself',
                "eviction": f"node {node} can only evict pods with spec.nodeName set to "
                            f"itself"}.get(subresource, f'node "{node}" can only delete pods '
                                                        f'with spec.nodeName set to itself')
            raise _forbidden("pods", name, message)
        return
    if operation == "CREATE" and not subresource:
        md = (new or {}).get("metadata") or {}
        if MIRROR_ANNOTATION not in (md.get("annotations") or {}):
            raise _forbidden("pods", name, f'pod does not have "{MIRROR_ANNOTATION}" '
                                           f'annotation, node "{node}" can only create mirror '
                                           f'pods')
        if _bound_node(new) != node:
            raise _forbidden("pods", name, f'node "{node}" can only create pods with '
                                           f'spec.nodeName set to itself')
        refs = pod_references(new or {}) - {("serviceaccounts", "default")}
        if any(res != "serviceaccounts" for res, _ in refs):
            raise _forbidden("pods", name, f'node "{node}" can not create pods that reference '
                                           f'secrets, configmaps or persistentvolumeclaims')
        owner = _mirror_owner(node, name, md)
        node_obj = await lookup.get_node(node)
        if node_obj is None:
            raise errors.NotFound.of("nodes", node)
        node_uid = node_obj["metadata"].get("uid")
        if owner.get("uid") != node_uid:
            raise _forbidden("pods", name, f"node {node} UID mismatch: expected "
                                           f"{owner.get('uid')} got {node_uid}")
        return
    raise _forbidden("pods", name, f'node "{node}" can only update pod status')


def _mirror_owner(node: str, name: str, md: Obj) -> Obj:
    """The one owner reference of a node's mirror pod: its Node (upstream's checks)."""
    refs = md.get("ownerReferences") or []
    if not isinstance(refs, list) or len(refs) > 1:
        raise _forbidden("pods", name, f'node "{node}" can only create pods with a single '
                                       f'owner reference set to itself')
    owner = refs[0] if refs and isinstance(refs[0], dict) else {}
    if (owner.get("apiVersion"), owner.get("kind"), owner.get("name")) != ("v1", "Node", node):
        raise _forbidden("pods", name, f'node "{node}" can only create pods with an owner '
                                       f'reference set to itself')
    if owner.get("controller") is not True:
        raise _forbidden("pods", name, f'node "{node}" can only create pods with a controller '
                                       f'owner reference set to itself')
    if owner.get("blockOwnerDeletion") is True:
        raise _forbidden("pods", name, f'node "{node}" must not set blockOwnerDeletion on an '
                                       f'owner reference')
    return owner


async def _admit_token(node: str, namespace: str, name: str, request: Obj | None,
                       lookup: Lookup) -> None:
    ref = ((request or {}).get("spec") or {}).get("boundObjectRef") or {}
    if ref.get("kind") != "Pod":
        raise _forbidden("serviceaccounts", name, "node requested token not bound to a pod")
    if not ref.get("uid"):
        raise _forbidden("serviceaccounts", name, "node requested token with a pod binding "
                                                  "without a uid")
    if ref.get("apiVersion", "v1") != "v1":
        raise _forbidden("serviceaccounts", name, "node requested token with a pod binding "
                                                  "of an unknown apiVersion")
    pod_name = str(ref.get("name") or "")
    pod = await lookup.get_pod(namespace, pod_name)
    if pod is None:
        raise errors.NotFound.of("pods", pod_name)
    if ref["uid"] != pod["metadata"].get("uid"):
        raise _forbidden("serviceaccounts", name, "node requested token with a pod binding "
                                                  "with a uid that does not match")
    if _bound_node(pod) != node:
        raise _forbidden("serviceaccounts", name, "node requested token bound to a pod "
                                                  "scheduled on a different node")
