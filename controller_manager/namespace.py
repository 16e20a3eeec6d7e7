"""Namespace controller (upstream pkg/controller/namespace/deletion): empties a namespace
that is being deleted, then releases it.

A deleted namespace is marked Terminating by the apiserver and kept while its
`spec.finalizers` holds `kubernetes`. For such a namespace this controller

1. deletes every namespaced kind in it (deletecollection, background propagation, so the
   garbage collector takes care of dependents and pods get their normal graceful stop);
2. lists again and, while anything remains, looks again later: after about half the
   longest remaining pod grace period, else soon (logging what remains, and, when
   `report_conditions` is on, recording it in the namespace's status conditions
   NamespaceContentRemaining, NamespaceFinalizersRemaining, ... as upstream does);
3. once the namespace is empty, removes `kubernetes` from `spec.finalizers` through
   `PUT /api/v1/namespaces/<name>/finalize`; the apiserver deletes the namespace when no
   finalizers remain.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from api.errors import Conflict, NotFound, StatusError
from api.meta import deep_copy, now_rfc3339, parse_time
from api.resources import CATALOGUE, Resource
from client.rest import ApiConnectionError, resource_path
from controller_manager.base import Controller, ControllerContext

Obj = dict[str, Any]



def _resource(plural: str) -> Resource:
    res = CATALOGUE.by_plural(plural)
    assert res is not None, plural
    return res


NAMESPACES = _resource("namespaces")
FINALIZER = "kubernetes"
# How soon to look again while content remains and no pod grace period says otherwise.
RECHECK_SECONDS = 1.0
MAX_RECHECK_SECONDS = 15.0

# Condition types upstream maintains during deletion, with their "all is well" state.
OK_CONDITIONS: tuple[tuple[str, str, str], ...] = (
    ("NamespaceDeletionDiscoveryFailure", "ResourcesDiscovered",
     "All resources successfully discovered"),
    ("NamespaceDeletionGroupVersionParsingFailure", "ParsedGroupVersions",
     "All legacy kube types successfully parsed"),
    ("NamespaceDeletionContentFailure", "ContentDeleted",
     "All content successfully deleted, may be waiting on finalization"),
    ("NamespaceContentRemaining", "ContentRemoved", "All content successfully removed"),
    ("NamespaceFinalizersRemaining", "ContentHasNoFinalizers",
     "All content-preserving finalizers finished"),
)


def namespaced_resources() -> list[Resource]:
    """Every namespaced kind that can be listed and deleted (the namespace's content)."""
    return [r for r in CATALOGUE.resources
            if r.namespaced and "list" in r.verbs and "delete" in r.verbs]


class NamespaceController(Controller):
    name = "namespace"
    workers = 4
    # Off because of an apiserver bug: any update of a terminating namespace (status
    # included) deletes it at once when metadata.finalizers is empty, ignoring
    # spec.finalizers, so writing conditions would drop the namespace with its content
    # still in etcd. Upstream deletes during an update only when spec.finalizers is empty
    # too. Turn this on once the apiserver checks spec.finalizers.
    report_conditions = True

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.namespaces = self.informer(NAMESPACES)
        self.namespaces.add_handler(on_add=self._changed,
                                    on_update=lambda old, new: self._changed(new))

    def _changed(self, ns: Obj) -> None:
        if ns["metadata"].get("deletionTimestamp"):
            self.enqueue(ns)

    async def sync(self, key: str) -> None:
        ns = self.namespaces.store.get(key)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return  # our part is done; other finalizers belong to others
        remaining, finalizers, failures, estimate = await self._delete_content(key)
        if self.report_conditions:
            await self._set_conditions(key, remaining, finalizers, failures)
        if failures:
            raise RuntimeError(f"deleting content of namespace {key}: " + "; ".join(failures))
        if remaining:
            delay = min(max(estimate / 2 + 1, RECHECK_SECONDS), MAX_RECHECK_SECONDS)
            self.log.info("namespace content remains namespace=%s remaining=%s "
                          "finalizers=%s recheck=%.1fs", key, remaining, finalizers, delay)
            self.queue.add_after(key, delay)
            return
        await self._finalize(key)

    async def _delete_content(self, namespace: str
                              ) -> tuple[dict[str, int], dict[str, int], list[str], float]:
        """Delete all content once; returns what remains (count per resource and per
        finalizer), failures, and the longest remaining pod grace period in seconds."""
        remaining: dict[str, int] = {}
        finalizers: dict[str, int] = {}
        failures: list[str] = []
        estimate = 0.0
        for res in namespaced_resources():
            try:
                items = await self._list(res, namespace)
                if any(not i["metadata"].get("deletionTimestamp") for i in items):
                    await self._delete_collection(res, namespace)
                    items = await self._list(res, namespace)
            except (StatusError, ApiConnectionError) as e:
                if isinstance(e, NotFound):
                    continue
                failures.append(f"{res.group_resource}: {e}")
                continue
            if not items:
                continue
            remaining[res.group_resource] = len(items)
            for item in items:
                md = item["metadata"]
                for f in md.get("finalizers") or []:
                    finalizers[f] = finalizers.get(f, 0) + 1
                if res.plural == "pods":
                    estimate = max(estimate, _seconds_left(md))
        return remaining, finalizers, failures, estimate

    async def _list(self, res: Resource, namespace: str) -> list[Obj]:
        items: list[Obj] = []
        continue_: str | None = None
        while True:
            page = await self.api.list(res, namespace, limit=500, continue_=continue_)
            items.extend(page.get("items") or [])
            continue_ = (page.get("metadata") or {}).get("continue") or None
            if not continue_:
                return items

    async def _delete_collection(self, res: Resource, namespace: str) -> None:
        if "deletecollection" in res.verbs:
            await self.api.request("DELETE", resource_path(res, namespace), json={
                "kind": "DeleteOptions", "apiVersion": "v1",
                "propagationPolicy": "Background"})
            return
        for item in await self._list(res, namespace):
            try:
                await self.api.delete(res, item["metadata"]["name"], namespace,
                                      propagation_policy="Background")
            except NotFound:
                pass

    async def _set_conditions(self, name: str, remaining: dict[str, int],
                              finalizers: dict[str, int], failures: list[str]) -> None:
        wanted: dict[str, tuple[str, str, str]] = {t: ("False", r, m) for t, r, m in OK_CONDITIONS}
        if failures:
            wanted["NamespaceDeletionContentFailure"] = (
                "True", "ContentDeletionFailed",
                "Failed to delete all resource types, " f"{len(failures)} remaining: "
                + ", ".join(failures))
        if remaining:
            wanted["NamespaceContentRemaining"] = (
                "True", "SomeResourcesRemain", "Some resources are remaining: " + ", ".join(
                    f"{r} has {n} resource instances" for r, n in sorted(remaining.items())))
        if finalizers:
            wanted["NamespaceFinalizersRemaining"] = (
                "True", "SomeFinalizersRemain",
                "Some content in the namespace has finalizers remaining: " + ", ".join(
                    f"{f} in {n} resource instances" for f, n in sorted(finalizers.items())))
        cached = self.namespaces.store.get(name)
        if cached is None:
            return
        old = {c.get("type"): c for c in (cached.get("status") or {}).get("conditions") or []
               if isinstance(c, dict)}
        now = now_rfc3339()
        conditions = []
        for ctype, (status, reason, message) in wanted.items():
            prev = old.get(ctype) or {}
            conditions.append({
                "type": ctype, "status": status, "reason": reason, "message": message,
                "lastTransitionTime": prev.get("lastTransitionTime", now)
                if prev.get("status") == status else now})
        unchanged = [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                     for c in conditions] == [
            {k: v for k, v in (old.get(c["type"]) or {}).items() if k != "lastTransitionTime"}
            for c in conditions]
        if unchanged and len(old) == len(conditions):
            return
        body = deep_copy(cached)
        body.setdefault("status", {})["conditions"] = conditions
        try:
            await self.api.update_status(NAMESPACES, body)
        except (NotFound, Conflict):
            pass  # conditions are informational; the next pass writes them again

    async def _finalize(self, name: str) -> None:
        cached = self.namespaces.store.get(name)
        if cached is None:
            return
        body = deep_copy(cached)
        spec = body.setdefault("spec", {})
        spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != FINALIZER]
        try:
            await self.api.request("PUT", resource_path(NAMESPACES, None, name, "finalize"),
                                   json=body)
        except NotFound:
            return
        self.log.info("finalized namespace namespace=%s", name)


def _seconds_left(md: Obj) -> float:
    deadline = parse_time(md.get("deletionTimestamp"))
    if deadline is None:
        return 0.0
    return max(0.0, (deadline - datetime.now(UTC)).total_seconds())
