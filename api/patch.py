"""The three PATCH bodies Kubernetes accepts, applied to plain JSON dicts.

- `json_merge_patch`: RFC 7386 (`application/merge-patch+json`).
- `json_patch`: RFC 6902 (`application/json-patch+json`).
- `strategic_merge_patch`: Kubernetes' strategic merge patch
  (`application/strategic-merge-patch+json`), what `kubectl apply` and `kubectl patch` send.

Strategic merge needs to know, per field, whether a list is merged (and by which key) or
replaced. Upstream reads that from Go struct tags (`patchStrategy`, `patchMergeKey`); here the
same facts are a small table keyed by type name, so a PodSpec is described once and reused by
Pods and by every pod template.

None of the functions mutate their inputs; they work on a private copy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any


class PatchError(ValueError):
    """The patch cannot be applied: malformed, or (JSON patch) a failed operation or test."""


def _copy(value: Any) -> Any:
    # JSON values are only dicts, lists and immutable scalars: a narrow deep copy is enough
    # and much cheaper than copy.deepcopy on large objects.
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------
# RFC 7386 JSON merge patch


def json_merge_patch(original: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch: objects merge recursively, null deletes, else replace."""
    if not isinstance(patch, dict):
        return _copy(patch)
    target = _copy(original) if isinstance(original, dict) else {}
    return _merge_patch_into(target, patch)


def _merge_patch_into(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    # `target` is already a private copy, so it is updated in place.
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            current = target.get(key)
            target[key] = _merge_patch_into(current if isinstance(current, dict) else {}, value)
        else:
            target[key] = _copy(value)
    return target


# --------------------------------------------------------------------------------------------
# RFC 6902 JSON patch

_JSON_PATCH_OPS = frozenset({"add", "remove", "replace", "move", "copy", "test"})
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")
_BAD_ESCAPE = re.compile(r"~(?![01])")


def json_patch(original: Any, ops: Any) -> Any:
    """Apply an RFC 6902 patch (a list of operations) to a copy of `original`.

    Any malformed operation, missing target or failed `test` raises PatchError; the whole
    patch is then rejected, as RFC 6902 requires.
    """
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = _copy(original)
    for index, op in enumerate(ops):
        try:
            doc = _apply_json_op(doc, op)
        except PatchError as exc:
            raise PatchError(f"operation {index}: {exc}") from None
    return doc


def _apply_json_op(doc: Any, op: Any) -> Any:
    if not isinstance(op, dict):
        raise PatchError("an operation must be an object")
    name = op.get("op")
    if not isinstance(name, str) or name not in _JSON_PATCH_OPS:
        raise PatchError(f"unknown or missing op {name!r}")
    path = _parse_pointer(op.get("path"), "path")
    if name in ("add", "replace", "test") and "value" not in op:
        raise PatchError(f"{name} needs a 'value'")
    if name == "add":
        return _pointer_add(doc, path, _copy(op["value"]))
    if name == "remove":
        return _pointer_remove(doc, path)[0]
    if name == "replace":
        return _pointer_replace(doc, path, _copy(op["value"]))
    if name == "test":
        if not _json_equal(_pointer_get(doc, path), op["value"]):
            raise PatchError(f"test failed at {op['path']!r}")
        return doc
    source = _parse_pointer(op.get("from"), "from")
    if name == "copy":
        return _pointer_add(doc, path, _copy(_pointer_get(doc, source)))
    # move
    if path[: len(source)] == source and len(path) > len(source):
        raise PatchError("cannot move a value into one of its own children")
    if path == source:
        _pointer_get(doc, source)
        return doc
    doc, value = _pointer_remove(doc, source)
    return _pointer_add(doc, path, value)


def _parse_pointer(pointer: Any, field: str) -> list[str]:
    if not isinstance(pointer, str):
        raise PatchError(f"'{field}' must be a JSON pointer string")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"JSON pointer {pointer!r} must start with '/'")
    tokens = pointer[1:].split("/")
    for token in tokens:
        if _BAD_ESCAPE.search(token):
            raise PatchError(f"JSON pointer {pointer!r} has an invalid '~' escape")
    # ~1 before ~0, so that "~01" decodes to "~1" and not to "/" (RFC 6901 §4).
    return [t.replace("~1", "/").replace("~0", "~") for t in tokens]


def _array_index(token: str, length: int, *, for_insert: bool) -> int:
    if token == "-" and for_insert:
        return length
    if not _ARRAY_INDEX.fullmatch(token):
        raise PatchError(f"{token!r} is not a valid array index")
    index = int(token)
    if index > length or (index == length and not for_insert):
        raise PatchError(f"array index {index} is out of range")
    return index


def _child(container: Any, token: str) -> Any:
    if isinstance(container, dict):
        if token not in container:
            raise PatchError(f"member {token!r} does not exist")
        return container[token]
    if isinstance(container, list):
        return container[_array_index(token, len(container), for_insert=False)]
    raise PatchError(f"cannot descend into a scalar with {token!r}")


def _pointer_get(doc: Any, path: list[str]) -> Any:
    for token in path:
        doc = _child(doc, token)
    return doc


def _pointer_add(doc: Any, path: list[str], value: Any) -> Any:
    if not path:
        return value
    parent = _pointer_get(doc, path[:-1])
    last = path[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(last, len(parent), for_insert=True), value)
    else:
        raise PatchError(f"cannot add {last!r} to a scalar")
    return doc


def _pointer_replace(doc: Any, path: list[str], value: Any) -> Any:
    if not path:
        return value
    parent = _pointer_get(doc, path[:-1])
    last = path[-1]
    if isinstance(parent, dict):
        if last not in parent:  # unlike add, replace needs an existing target
            raise PatchError(f"member {last!r} does not exist")
        parent[last] = value
    elif isinstance(parent, list):
        parent[_array_index(last, len(parent), for_insert=False)] = value
    else:
        raise PatchError(f"cannot replace {last!r} in a scalar")
    return doc


def _pointer_remove(doc: Any, path: list[str]) -> tuple[Any, Any]:
    """Remove the target; return the document and the removed value."""
    if not path:
        raise PatchError("cannot remove the whole document")
    parent = _pointer_get(doc, path[:-1])
    last = path[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"member {last!r} does not exist")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_array_index(last, len(parent), for_insert=False))
    raise PatchError(f"cannot remove {last!r} from a scalar")


def _json_equal(a: Any, b: Any) -> bool:
    # JSON equality, not Python's: true is not 1, but 1 and 1.0 are the same number.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


# --------------------------------------------------------------------------------------------
# Strategic merge patch: patch metadata


@dataclass(frozen=True)
class _Field:
    """What upstream's struct tags say about one field."""

    type: str | None = None  # schema type of the value, or of each element of a list
    merge: bool = False  # patchStrategy "merge": the list is merged, not replaced
    key: str | None = None  # patchMergeKey: identifies elements of a merged list of objects


_NO_META = _Field()


def _obj(type_name: str) -> _Field:
    return _Field(type=type_name)


def _merge(key: str | None = None, element: str | None = None) -> _Field:
    return _Field(type=element, merge=True, key=key)


# Lists not listed here (tolerations, taints, containerStatuses, envFrom, Endpoints subsets,
# EndpointSlice endpoints, ...) carry no patch strategy upstream, so a patch replaces them.
_CONDITIONS = _merge("type")
_META = {"metadata": _obj("ObjectMeta")}

_SCHEMA: dict[str, dict[str, _Field]] = {
    "ObjectMeta": {
        "finalizers": _merge(),
        "ownerReferences": _merge("uid"),
    },
    "PodTemplateSpec": {**_META, "spec": _obj("PodSpec")},
    "PodSpec": {
        "volumes": _merge("name"),  # also retainKeys upstream: handled by the $retainKeys directive
        "initContainers": _merge("name", "Container"),
        "containers": _merge("name", "Container"),
        "ephemeralContainers": _merge("name", "Container"),
        "imagePullSecrets": _merge("name"),
        "hostAliases": _merge("ip"),
        "topologySpreadConstraints": _merge("topologyKey"),
        "schedulingGates": _merge("name"),
        "resourceClaims": _merge("name"),
    },
    "Container": {
        "ports": _merge("containerPort"),
        "env": _merge("name"),
        "volumeMounts": _merge("mountPath"),
        "volumeDevices": _merge("devicePath"),
    },
    "PodStatus": {
        "conditions": _CONDITIONS,
        "podIPs": _merge("ip"),
        "hostIPs": _merge("ip"),
        "resourceClaimStatuses": _merge("name"),
    },
    "ServiceSpec": {"ports": _merge("port")},
    "ServiceStatus": {"conditions": _CONDITIONS},
    "NodeSpec": {"podCIDRs": _merge()},
    "NodeStatus": {"conditions": _CONDITIONS, "addresses": _merge("type")},
    "NamespaceStatus": {"conditions": _CONDITIONS},
    "WorkloadSpec": {"template": _obj("PodTemplateSpec")},
    "WorkloadStatus": {"conditions": _CONDITIONS},
    # kinds
    "Pod": {**_META, "spec": _obj("PodSpec"), "status": _obj("PodStatus")},
    "Service": {**_META, "spec": _obj("ServiceSpec"), "status": _obj("ServiceStatus")},
    "Node": {**_META, "spec": _obj("NodeSpec"), "status": _obj("NodeStatus")},
    "Namespace": {**_META, "status": _obj("NamespaceStatus")},
    "ServiceAccount": {**_META, "secrets": _merge("name")},
}
# Deployment, ReplicaSet, DaemonSet and Job differ in their scalar fields, but for patching
# their spec is "a pod template" and their status "conditions by type".
for _kind in ("Deployment", "ReplicaSet", "DaemonSet", "Job"):
    _SCHEMA[_kind] = {**_META, "spec": _obj("WorkloadSpec"), "status": _obj("WorkloadStatus")}
# Kinds whose only patch metadata is in their ObjectMeta (RBAC's rules, subjects and
# clusterRoleSelectors are atomic lists upstream: a patch replaces them).
_RBAC_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
for _kind in ("ConfigMap", "Secret", "Endpoints", "EndpointSlice", "Event", "Lease",
              *_RBAC_KINDS):
    _SCHEMA[_kind] = dict(_META)

STRATEGIC_MERGE_KINDS = frozenset({
    "Pod", "Deployment", "ReplicaSet", "DaemonSet", "Job", "Service", "Node", "Namespace",
    "ConfigMap", "Secret", "ServiceAccount", "Endpoints", "EndpointSlice", "Event", "Lease",
    *_RBAC_KINDS,
})


def supports_strategic_merge(kind: str) -> bool:
    """Whether `strategic_merge_patch` knows `kind` (the apiserver answers 415 otherwise)."""
    return kind in STRATEGIC_MERGE_KINDS


def _field(type_name: str | None, name: str) -> _Field:
    if type_name is None:
        return _NO_META
    return _SCHEMA.get(type_name, {}).get(name, _NO_META)


# --------------------------------------------------------------------------------------------
# Strategic merge patch: the merge

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVES = "$deleteFromPrimitiveList/"
_MISSING = object()

Identity = Callable[[Any], Hashable | None]


def strategic_merge_patch(original: dict[str, Any], patch: dict[str, Any],
                          kind: str) -> dict[str, Any]:
    """Apply a strategic merge patch to an object of `kind`, returning the merged object.

    Follows upstream's apply path (k8s.io/apimachinery strategicpatch with
    MergeParallelList and IgnoreUnmatchedNulls), including `$patch`, `$retainKeys`,
    `$setElementOrder/<list>` and `$deleteFromPrimitiveList/<list>` directives.
    """
    if kind not in STRATEGIC_MERGE_KINDS:
        raise PatchError(f"strategic merge patch is not supported for kind {kind!r}")
    if not isinstance(original, dict):
        raise PatchError("the object to patch must be a JSON object")
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    return _merge_map(_copy(original), _copy(patch), kind)


def _merge_map(original: dict[str, Any], patch: dict[str, Any],
               type_name: str | None) -> dict[str, Any]:
    # Both arguments are private copies owned by this merge, so they are updated in place.
    if _DIRECTIVE in patch:
        directive = patch.pop(_DIRECTIVE)
        if directive == "delete":
            return {}
        if directive == "replace":
            # The patch's content is the whole map; merging it into {} still honours any
            # directives nested below.
            return _merge_map({}, patch, type_name)
        if directive != "merge":  # "merge" is the default, so it only needs to be removed
            raise PatchError(f"invalid $patch directive {directive!r} in a map")

    _apply_retain_keys(original, patch)
    _apply_element_orders(original, patch, type_name)

    deletions = [k for k in patch if k.startswith(_DELETE_PRIMITIVES)]
    for directive_key in deletions:
        name = directive_key[len(_DELETE_PRIMITIVES):]
        to_delete = patch.pop(directive_key)
        if not name or not isinstance(to_delete, list):
            raise PatchError(f"{directive_key} must name a field and hold a list")
        current = original.get(name)
        if isinstance(current, list):
            original[name] = _delete_from_primitive_list(current, to_delete)

    for name, value in patch.items():
        if value is None:
            original.pop(name, None)
            continue
        current = original.get(name, _MISSING)
        if (isinstance(value, dict) and value.get(_DIRECTIVE) == "delete"
                and not isinstance(current, dict)):
            original.pop(name, None)  # upstream drops the field rather than leaving {}
            continue
        original[name] = _merge_value(current, value, _field(type_name, name), name)
    return original


def _merge_value(current: Any, value: Any, field: _Field, name: str) -> Any:
    if field.merge and not isinstance(value, list):
        raise PatchError(f"{name!r} must be a list, got {type(value).__name__}")
    if isinstance(value, dict):
        return _merge_map(current if isinstance(current, dict) else {}, value, field.type)
    if isinstance(value, list):
        return _merge_list(current if isinstance(current, list) else [], value, field, name)
    return value


def _merge_list(current: list[Any], patch: list[Any], field: _Field, name: str) -> list[Any]:
    if not field.merge:
        # An atomic list: the patch replaces it wholesale (directives and nulls cleaned out).
        return _clean_list(patch, field.type)
    if field.key is None:
        return _merge_primitive_list(current, patch, name)
    return _merge_keyed_list(current, patch, field.key, field.type, name)


def _clean_list(items: list[Any], type_name: str | None) -> list[Any]:
    result = []
    for item in items:
        if isinstance(item, dict):
            if item.get(_DIRECTIVE) == "delete":
                continue
            result.append(_merge_map({}, item, type_name))
        else:
            result.append(item)
    return result


def _scalar_id(value: Any) -> tuple[str, Any]:
    # Go compares JSON scalars with ==: true is not 1, while 1 and 1.0 are the same float64.
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    if value is None:
        return ("null", None)
    raise PatchError(f"expected a scalar, got {type(value).__name__}")


def _merge_primitive_list(current: list[Any], patch: list[Any], name: str) -> list[Any]:
    for item in (*current, *patch):
        if isinstance(item, dict | list):
            raise PatchError(f"{name!r} is a list of scalars; cannot merge {item!r}")
    merged: list[Any] = []
    seen: set[Hashable] = set()
    for item in (*current, *patch):
        if _scalar_id(item) not in seen:
            seen.add(_scalar_id(item))
            merged.append(item)
    return _order_merged(merged, patch, current, _scalar_id)


def _delete_from_primitive_list(current: list[Any], to_delete: list[Any]) -> list[Any]:
    doomed = {_scalar_id(item) for item in to_delete}
    return [item for item in current
            if isinstance(item, dict | list) or _scalar_id(item) not in doomed]


def _key_identity(key: str) -> Identity:
    def identity(item: Any) -> Hashable | None:
        if isinstance(item, dict) and key in item:
            return _scalar_id(item[key])
        return None  # an element without its key never matches anything

    return identity


def _merge_keyed_list(current: list[Any], patch: list[Any], key: str, type_name: str | None,
                      name: str) -> list[Any]:
    identity = _key_identity(key)
    if any(not isinstance(item, dict) for item in current):
        raise PatchError(f"{name!r} is merged by {key!r} but holds a non-object element")

    plain: list[dict[str, Any]] = []
    replace = False
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"elements of {name!r} must be objects, got {item!r}")
        if _DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[_DIRECTIVE]
        if directive == "delete":
            if key not in item:
                raise PatchError(f"$patch: delete in {name!r} needs the merge key {key!r}")
            doomed = identity(item)
            current = [c for c in current if identity(c) != doomed]
        elif directive == "replace":
            replace = True  # keep scanning: the other directives still have to be dropped
        elif directive == "merge":
            # Merging is what a merge list does anyway; a bare marker element is a no-op.
            rest = {k: v for k, v in item.items() if k != _DIRECTIVE}
            if rest:
                plain.append(rest)
        else:
            raise PatchError(f"invalid $patch directive {directive!r} in {name!r}")

    for item in plain:
        if key not in item:
            raise PatchError(f"an element of {name!r} is missing its merge key {key!r}")
    if replace:
        return _clean_list(plain, type_name)

    server_order = list(current)
    merged = list(current)
    for item in plain:
        wanted = identity(item)
        for index, existing in enumerate(merged):
            if identity(existing) == wanted:
                merged[index] = _merge_map(existing, item, type_name)
                break
        else:
            merged.append(_merge_map({}, item, type_name))
    return _order_merged(merged, plain, server_order, identity)


def _order_merged(merged: list[Any], patch_order: list[Any], server_order: list[Any],
                  identity: Identity) -> list[Any]:
    """Order a merged list the way upstream does (normalizeElementOrder).

    Elements named in the patch keep the patch's relative order, server-only elements keep
    the live order, and the two runs are interleaved using the live order where both sides
    are known; an element the server has never seen goes before the server-only ones.
    """
    in_patch = {identity(item) for item in patch_order} - {None}
    from_patch = [m for m in merged if identity(m) in in_patch]
    server_only = [m for m in merged if identity(m) not in in_patch]
    return _interleave(_sorted_by(from_patch, patch_order, identity),
                       _sorted_by(server_only, server_order, identity), server_order, identity)


def _positions(order: list[Any], identity: Identity) -> dict[Hashable, int]:
    positions: dict[Hashable, int] = {}
    for index, item in enumerate(order):
        ident = identity(item)
        if ident is not None:
            positions.setdefault(ident, index)
    return positions


def _sorted_by(items: list[Any], order: list[Any], identity: Identity) -> list[Any]:
    positions = _positions(order, identity)
    return sorted(items, key=lambda item: positions.get(identity(item), len(order)))


def _interleave(from_patch: list[Any], server_only: list[Any], server_order: list[Any],
                identity: Identity) -> list[Any]:
    live = _positions(server_order, identity)
    result: list[Any] = []
    i = j = 0
    while i < len(server_only) and j < len(from_patch):
        left = live.get(identity(server_only[i]))
        right = live.get(identity(from_patch[j]))
        if left is not None and right is not None and left < right:
            result.append(server_only[i])
            i += 1
        else:
            result.append(from_patch[j])
            j += 1
    return result + from_patch[j:] + server_only[i:]


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    """`$retainKeys`: drop every key of the live map not listed (used for union types)."""
    if _RETAIN_KEYS not in patch:
        return
    retain = patch.pop(_RETAIN_KEYS)
    if not isinstance(retain, list) or not all(isinstance(k, str) for k in retain):
        raise PatchError("$retainKeys must be a list of field names")
    keep = set(retain)
    for name, value in patch.items():
        if value is None or name.startswith((_DELETE_PRIMITIVES, _SET_ORDER)):
            continue
        if name not in keep:
            raise PatchError(f"field {name!r} is in the patch but not in $retainKeys")
    for name in [k for k in original if k not in keep]:
        del original[name]


def _apply_element_orders(original: dict[str, Any], patch: dict[str, Any],
                          type_name: str | None) -> None:
    """`$setElementOrder/<list>`: merge that list now and put it in the order given.

    kubectl apply sends the full desired order (as merge keys) so that the result matches
    the manifest even though the patch itself holds only the changed elements.
    """
    for directive_key in [k for k in patch if k.startswith(_SET_ORDER)]:
        order = patch.pop(directive_key)
        name = directive_key[len(_SET_ORDER):]
        if not name or not isinstance(order, list):
            raise PatchError(f"{directive_key} must name a field and hold a list")
        field = _field(type_name, name)
        if not field.merge:
            continue  # an atomic list is replaced by the patch as sent: nothing to order
        if name in patch and patch[name] is None:
            continue  # the list is being deleted
        raw_patch = patch.pop(name, None)
        raw_live = original.get(name)
        if raw_patch is not None and not isinstance(raw_patch, list):
            raise PatchError(f"{name!r} must be a list")
        patch_list: list[Any] | None = raw_patch
        live: list[Any] = raw_live if isinstance(raw_live, list) else []
        if patch_list is None and not isinstance(raw_live, list):
            continue

        identity: Identity = _scalar_id if field.key is None else _key_identity(field.key)
        order_ids = [identity(item) for item in order]
        if None in order_ids:
            raise PatchError(f"{directive_key} elements need the merge key {field.key!r}")
        if patch_list is not None:
            _check_order_covers_patch(patch_list, order_ids, identity, directive_key)

        merged = live if patch_list is None else _merge_list(live, patch_list, field, name)
        wanted = set(order_ids)
        from_patch = [m for m in merged if identity(m) in wanted]
        server_only = [m for m in merged if identity(m) not in wanted]
        original[name] = _interleave(_sorted_by(from_patch, order, identity),
                                     _sorted_by(server_only, live, identity), live, identity)


def _check_order_covers_patch(patch_list: list[Any], order_ids: list[Hashable | None],
                              identity: Identity, directive_key: str) -> None:
    # The patch's own elements must appear in $setElementOrder, in the same relative order.
    remaining = iter(order_ids)
    for item in patch_list:
        if isinstance(item, dict) and _DIRECTIVE in item:
            continue
        ident = identity(item)
        if ident is None:
            raise PatchError(f"{directive_key}: a patch element is missing its merge key")
        if not any(ident == candidate for candidate in remaining):
            raise PatchError(f"the order of the patch list does not match {directive_key}")
