"""Subresources that are their own kind: pods/binding and <workload>/scale."""

from __future__ import annotations

from typing import Any

from api import errors
from api.meta import now_rfc3339
from apiserver.registry.kinds import validate_binding
from apiserver.registry.store import Store
from apiserver.registry.strategy import Obj


async def bind_pod(pods: Store, namespace: str, name: str, body: Any) -> Obj:
    """POST pods/<name>/binding: set spec.nodeName once, as the scheduler does."""
    if not isinstance(body, dict) or not isinstance(body.get("metadata", {}), dict):
        raise errors.BadRequest("the body of the request must be a Binding object")
    causes = validate_binding(body)
    if causes:
        raise errors.Invalid.of("Binding", name, causes)
    node = body["target"]["name"]
    uid = (body.get("metadata") or {}).get("uid")

    def assign(pod: Obj) -> Obj:
        md, spec = pod["metadata"], pod.setdefault("spec", {})
        if uid and md.get("uid") != uid:
            raise errors.Conflict.of("pods/binding", name, "Precondition failed: UID in "
                                     f"precondition: {uid}, UID in object meta: {md.get('uid')}")
        if md.get("deletionTimestamp"):
            raise errors.Conflict.of("pods/binding", name, f"pod {name} is being deleted, "
                                     "cannot be assigned to a host")
        if spec.get("nodeName"):
            raise errors.Conflict.of("pods/binding", name, f"pod {name} is already assigned "
                                     f"to node \"{spec['nodeName']}\"")
        spec["nodeName"] = node
        status = pod.setdefault("status", {})
        conditions = [c for c in status.get("conditions") or []
                      if isinstance(c, dict) and c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True",
                           "lastProbeTime": None, "lastTransitionTime": now_rfc3339()})
        status["conditions"] = conditions
        return pod

    async with pods._errors(name):
        await pods.storage.guaranteed_update(pods.key(namespace, name), assign)
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "code": 201}


async def evict_pod(pods: Store, namespace: str, name: str, body: Any) -> Obj:
    """POST pods/<name>/eviction: a delete that disruption budgets may refuse (none exist
    here yet, so it always proceeds), honouring the Eviction's deleteOptions."""
    from apiserver.registry.store import DeleteOptions
    if not isinstance(body, dict):
        raise errors.BadRequest("the body of the request must be an Eviction object")
    options = body.get("deleteOptions") or {}
    if not isinstance(options, dict):
        raise errors.BadRequest("Eviction.deleteOptions must be an object")
    grace = options.get("gracePeriodSeconds")
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)):
        raise errors.BadRequest("deleteOptions.gracePeriodSeconds must be an integer")
    await pods.delete(namespace, name, DeleteOptions(grace_period_seconds=grace))
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "code": 201}


def to_scale(obj: Obj) -> Obj:
    md = obj["metadata"]
    selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                        "creationTimestamp") if k in md},
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                   "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items()))},
    }


async def get_scale(store: Store, namespace: str, name: str) -> Obj:
    return to_scale(await store.get(namespace, name))


async def update_scale(store: Store, namespace: str, name: str, body: Any,
                       patch: tuple[str, Any] | None, dry_run: bool) -> Obj:
    """PUT/PATCH <workload>/scale: only spec.replicas reaches the workload."""

    def new_replicas(current: Obj) -> tuple[int, str | None]:
        scale = to_scale(current)
        if patch is not None:
            scale = store._apply_patch(scale, patch, name)
        elif isinstance(body, dict):
            scale = body
        else:
            raise errors.BadRequest("the body of the request must be a JSON object")
        spec, md = scale.get("spec") or {}, scale.get("metadata") or {}
        if not isinstance(spec, dict) or not isinstance(md, dict):
            raise errors.BadRequest("Scale spec and metadata must be objects")
        replicas = spec.get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.Invalid.of("Scale", name, [errors.field_cause(
                "spec.replicas", f"Invalid value: {replicas!r}: must be greater than or equal "
                "to 0")], "autoscaling")
        rv = md.get("resourceVersion")
        return replicas, rv if isinstance(rv, str) else None

    preview: list[Obj] = []

    def apply(current: Obj) -> Obj | None:
        replicas, rv = new_replicas(current)
        if rv and rv != current["metadata"]["resourceVersion"]:
            raise store._conflict(name)
        spec = current.setdefault("spec", {})
        if spec.get("replicas") == replicas:
            return None
        spec["replicas"] = replicas
        current["metadata"]["generation"] = int(current["metadata"].get("generation") or 1) + 1
        if dry_run:
            preview.append(current)
            return None
        return current

    async with store._errors(name):
        result = await store.storage.guaranteed_update(store.key(namespace, name), apply)
    return to_scale(preview[-1] if preview else result)
