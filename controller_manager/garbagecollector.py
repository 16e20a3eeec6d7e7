"""Garbage collector (upstream pkg/controller/garbagecollector): ownerReferences cascade.

Informers on every kind feed a dependency graph (uid -> node; a node knows its owners' refs
and its dependents' uids). An owner referenced before it is observed gets a *virtual* node,
which is checked against the apiserver. Work items go through one queue as
`delete:<uid>` (attempt to delete) and `orphan:<uid>` (orphan dependents).

- Background (the default): when an owner goes, its dependents are queued; a dependent none
  of whose owners exists any more is deleted (propagating by its own finalizers, else in the
  background). Absence is always verified with a live GET that compares uids, never from the
  cache alone, so a stale cache cannot cause a deletion. References to absent owners of an
  object that still has a live owner are removed instead.
- Foreground: an owner with a deletionTimestamp and the `foregroundDeletion` finalizer is
  "deleting dependents": its dependents are deleted (those with dependents of their own in
  the foreground too), and once no dependent with `blockOwnerDeletion: true` remains the
  finalizer is removed, which lets the apiserver delete the owner.
- Orphan: an owner with a deletionTimestamp and the `orphan` finalizer has the
  ownerReferences pointing at it removed from all its dependents, then the finalizer removed.

Known gap, shared with upstream: a dependent created so shortly before its owner's
orphaning or foreground deletion that the graph has not observed it yet is not waited for
(orphaning) or counted as blocking (foreground); it is then collected as an ordinary
dependent of an absent owner.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from api.errors import Conflict, NotFound
from api.resources import CATALOGUE, Resource
from controller_manager.base import Controller, ControllerContext

Obj = dict[str, Any]

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
ABSENT_CACHE_SIZE = 2000
PATCH_ATTEMPTS = 5


def monitored_resources() -> list[Resource]:
    """Every kind that can be listed, watched and deleted: each may be owner or dependent."""
    return [r for r in CATALOGUE.resources
            if all(v in r.verbs for v in ("list", "watch", "delete"))]


def owner_refs(obj: Obj) -> list[Obj]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [r for r in refs if isinstance(r, dict) and r.get("uid")]


def blocks(ref: Obj) -> bool:
    return ref.get("blockOwnerDeletion") is True


@dataclass
class Node:
    """One object in the dependency graph (observed from an informer, or virtual)."""

    uid: str
    resource: Resource | None  # None: an owner of a kind we do not know
    namespace: str  # "" for cluster-scoped objects
    name: str
    observed: bool = False
    owners: list[Obj] = field(default_factory=list)
    dependents: set[str] = field(default_factory=set)
    being_deleted: bool = False
    finalizers: tuple[str, ...] = ()

    @property
    def deleting_dependents(self) -> bool:
        return self.being_deleted and FOREGROUND in self.finalizers

    @property
    def orphaning(self) -> bool:
        return self.being_deleted and ORPHAN in self.finalizers

    def __str__(self) -> str:
        kind = self.resource.kind if self.resource else "?"
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{kind} {where} uid={self.uid}"


class GarbageCollector(Controller):
    name = "garbagecollector"
    workers = 8

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.graph: dict[str, Node] = {}
        # (namespace, uid) verified absent with a live GET; uids are never reused, so this
        # never lies. The namespace is where we looked ("" for cluster-scoped owners): an
        # invalid reference from another namespace must not make a live owner look absent.
        self.absent: OrderedDict[tuple[str, str], None] = OrderedDict()
        for res in monitored_resources():
            self.informer(res).add_handler(on_add=self._on_add(res),
                                           on_update=self._on_update(res),
                                           on_delete=self._removed)

    # -- graph building (informer handlers; synchronous, so never interleaved) ------------

    def _on_add(self, res: Resource) -> Callable[[Obj], None]:
        return lambda obj: self._observed(res, obj)

    def _on_update(self, res: Resource) -> Callable[[Obj, Obj], None]:
        return lambda old, new: self._observed(res, new)

    def _delete_later(self, uid: str) -> None:
        self.queue.add(f"delete:{uid}")

    def _observed(self, res: Resource, obj: Obj) -> None:
        md = obj.get("metadata") or {}
        uid = md.get("uid")
        if not uid:
            return
        node = self.graph.get(uid)
        if node is None or not node.observed:
            if node is None:
                node = Node(uid, res, md.get("namespace") or "", md.get("name") or "")
                self.graph[uid] = node
            node.resource, node.observed = res, True
            node.namespace, node.name = md.get("namespace") or "", md.get("name") or ""
            was_deleting_dependents = was_orphaning = False
        else:
            was_deleting_dependents, was_orphaning = node.deleting_dependents, node.orphaning
        node.being_deleted = bool(md.get("deletionTimestamp"))
        node.finalizers = tuple(md.get("finalizers") or ())
        self._rewire(node, owner_refs(obj))
        if node.orphaning and not was_orphaning:
            self.queue.add(f"orphan:{uid}")
        if node.deleting_dependents and not was_deleting_dependents:
            for dep in node.dependents:
                self._delete_later(dep)
            self._delete_later(uid)

    def _rewire(self, node: Node, refs: list[Obj]) -> None:
        """Point the graph at `node`'s new owners, waking owners that waited on it."""
        old = {r["uid"]: r for r in node.owners}
        new = {r["uid"]: r for r in refs}
        for owner_uid, ref in old.items():
            owner = self.graph.get(owner_uid)
            if owner is None:
                continue
            if owner_uid not in new:
                owner.dependents.discard(node.uid)
                if not owner.observed and not owner.dependents:
                    del self.graph[owner_uid]
                    continue
            # A removed or no longer blocking reference may be what a foreground deletion
            # of the owner was waiting for.
            if owner.deleting_dependents and blocks(ref) and \
                    (owner_uid not in new or not blocks(new[owner_uid])):
                self._delete_later(owner_uid)
        for owner_uid, ref in new.items():
            owner = self.graph.get(owner_uid)
            if owner is None:
                res = CATALOGUE.by_kind(str(ref.get("apiVersion") or ""),
                                        str(ref.get("kind") or ""))
                namespace = node.namespace if res is None or res.namespaced else ""
                owner = Node(owner_uid, res, namespace, str(ref.get("name") or ""))
                self.graph[owner_uid] = owner
                self._delete_later(owner_uid)  # verify the virtual owner exists
            owner.dependents.add(node.uid)
            if owner_uid not in old and owner.deleting_dependents:
                self._delete_later(node.uid)  # born into a foreground deletion
        node.owners = refs

    def _removed(self, obj: Obj) -> None:
        uid = (obj.get("metadata") or {}).get("uid")
        node = self.graph.get(uid) if uid else None
        if node is None or not node.observed:
            return
        del self.graph[node.uid]
        for ref in node.owners:
            owner = self.graph.get(ref["uid"])
            if owner is None:
                continue
            owner.dependents.discard(node.uid)
            if owner.deleting_dependents:
                self._delete_later(owner.uid)
            elif not owner.observed and not owner.dependents:
                del self.graph[owner.uid]
        if node.dependents:
            self._mark_absent(node.namespace, node.uid)
            for dep in node.dependents:
                self._delete_later(dep)

    def _mark_absent(self, namespace: str, uid: str) -> None:
        key = (namespace, uid)
        self.absent[key] = None
        self.absent.move_to_end(key)
        while len(self.absent) > ABSENT_CACHE_SIZE:
            self.absent.popitem(last=False)

    # -- workers ---------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        action, _, uid = key.partition(":")
        node = self.graph.get(uid)
        if node is None:
            return
        if action == "orphan":
            await self._orphan_dependents(node)
        elif not node.observed:
            await self._resolve_virtual(node)
        else:
            await self._attempt_to_delete(node)

    async def _live(self, res: Resource | None, namespace: str, name: str,
                    uid: str) -> Obj | None:
        """The object as the apiserver has it now; None if gone (or replaced: other uid)."""
        if res is None:
            raise LookupError("unknown kind")
        try:
            obj = await self.api.get(res, name, namespace or None)
        except NotFound:
            return None
        return obj if obj["metadata"].get("uid") == uid else None

    async def _resolve_virtual(self, node: Node) -> None:
        """An owner known only from references: if it does not exist, its dependents are
        collected; if it exists, the informer will report it soon."""
        if (node.namespace, node.uid) not in self.absent:
            if node.resource is None:
                self.log.info("owner of unknown kind, dependents kept owner=%s", node)
                return
            if node.resource.namespaced and not node.namespace:
                exists = False  # a cluster-scoped object cannot have a namespaced owner
            else:
                exists = await self._live(node.resource, node.namespace, node.name,
                                          node.uid) is not None
            if exists:
                return
            self._mark_absent(node.namespace, node.uid)
        if self.graph.get(node.uid) is node and not node.observed:
            del self.graph[node.uid]
        for dep in node.dependents:
            self._delete_later(dep)

    async def _attempt_to_delete(self, node: Node) -> None:
        if node.being_deleted and not node.deleting_dependents:
            return  # already going
        latest = await self._live(node.resource, node.namespace, node.name, node.uid)
        if latest is None:
            return  # gone: its delete event updates the graph
        md = latest["metadata"]
        if md.get("deletionTimestamp"):
            if FOREGROUND in (md.get("finalizers") or []):
                await self._process_deleting_dependents(node)
            return
        refs = owner_refs(latest)
        if not refs:
            return
        solid, dangling, waiting = await self._classify(latest, refs)
        if solid:
            if dangling or waiting:
                # Still owned: only drop the references to owners that are gone or going.
                drop = {r["uid"] for r in dangling + waiting}
                await self._patch_owner_refs(node, latest,
                                             [r for r in refs if r["uid"] not in drop])
            return
        fins = md.get("finalizers") or []
        if waiting and node.dependents:
            if any((dep := self.graph.get(d)) is not None and dep.deleting_dependents
                   for d in node.dependents):
                # A dependent waits for us while our owner waits for us: a cycle. Stop
                # blocking the owner so that at least that wait ends.
                waiting_uids = {r["uid"] for r in waiting}
                await self._patch_owner_refs(node, latest, [
                    {**r, "blockOwnerDeletion": False} if r["uid"] in waiting_uids else r
                    for r in refs])
            policy = "Foreground"
        elif ORPHAN in fins:
            policy = "Orphan"
        elif FOREGROUND in fins:
            policy = "Foreground"
        else:
            policy = "Background"
        self.log.info("deleting object with no live owner object=%s policy=%s", node, policy)
        assert node.resource is not None  # observed nodes always know their kind
        try:
            await self.api.delete(node.resource, node.name, node.namespace or None,
                                  propagation_policy=policy,
                                  preconditions={"uid": node.uid})
        except (NotFound, Conflict):
            pass  # already gone, or the name now belongs to another object

    async def _classify(self, dependent: Obj, refs: list[Obj]
                        ) -> tuple[list[Obj], list[Obj], list[Obj]]:
        """Split owner references into solid (owner exists), dangling (owner absent) and
        waiting (owner is deleting its dependents in the foreground)."""
        solid: list[Obj] = []
        dangling: list[Obj] = []
        waiting: list[Obj] = []
        namespace = (dependent.get("metadata") or {}).get("namespace") or ""
        for ref in refs:
            uid = ref["uid"]
            res = CATALOGUE.by_kind(str(ref.get("apiVersion") or ""), str(ref.get("kind") or ""))
            where = namespace if res is None or res.namespaced else ""
            if (where, uid) in self.absent:
                dangling.append(ref)
                continue
            if res is None:
                solid.append(ref)  # cannot verify an unknown kind: never delete on a guess
                continue
            if res.namespaced and not namespace:
                dangling.append(ref)  # a cluster-scoped object cannot have a namespaced owner
                continue
            owner = await self._live(res, where, str(ref.get("name") or ""), uid)
            if owner is None:
                self._mark_absent(where, uid)
                dangling.append(ref)
            elif owner["metadata"].get("deletionTimestamp") and \
                    FOREGROUND in (owner["metadata"].get("finalizers") or []):
                waiting.append(ref)
            else:
                solid.append(ref)
        return solid, dangling, waiting

    async def _process_deleting_dependents(self, node: Node) -> None:
        """Foreground deletion: delete dependents; when none blocks, release the owner."""
        blocking = []
        for dep_uid in node.dependents:
            dep = self.graph.get(dep_uid)
            if dep is None:
                continue
            if any(r["uid"] == node.uid and blocks(r) for r in dep.owners):
                blocking.append(dep)
        if not blocking:
            await self._remove_finalizer(node, FOREGROUND)
            return
        for dep in blocking:
            if not dep.deleting_dependents:
                self._delete_later(dep.uid)

    async def _orphan_dependents(self, node: Node) -> None:
        latest = await self._live(node.resource, node.namespace, node.name, node.uid)
        md = (latest or {}).get("metadata") or {}
        if not md.get("deletionTimestamp") or ORPHAN not in (md.get("finalizers") or []):
            return
        for dep_uid in sorted(node.dependents):
            dep = self.graph.get(dep_uid)
            if dep is None or not dep.observed:
                continue
            for _ in range(PATCH_ATTEMPTS):
                current = await self._live(dep.resource, dep.namespace, dep.name, dep.uid)
                if current is None:
                    break
                refs = owner_refs(current)
                kept = [r for r in refs if r["uid"] != node.uid]
                if len(kept) == len(refs):
                    break
                try:
                    await self._patch_owner_refs(dep, current, kept)
                    break
                except Conflict:
                    continue
            else:
                raise RuntimeError(f"could not orphan {dep}: it keeps changing")
        self.log.info("orphaned dependents owner=%s count=%d", node, len(node.dependents))
        await self._remove_finalizer(node, ORPHAN)

    async def _patch_owner_refs(self, node: Node, current: Obj, refs: list[Obj]) -> None:
        # resourceVersion makes the merge patch a compare-and-swap: no lost update.
        assert node.resource is not None
        await self.api.patch(node.resource, node.name, {"metadata": {
            "ownerReferences": refs or None,
            "resourceVersion": current["metadata"]["resourceVersion"]}},
            node.namespace or None)

    async def _remove_finalizer(self, node: Node, finalizer: str) -> None:
        assert node.resource is not None
        for _ in range(PATCH_ATTEMPTS):
            current = await self._live(node.resource, node.namespace, node.name, node.uid)
            if current is None:
                return
            fins = list(current["metadata"].get("finalizers") or [])
            if finalizer not in fins:
                return
            kept = [f for f in fins if f != finalizer]
            try:
                await self.api.patch(node.resource, node.name, {"metadata": {
                    "finalizers": kept or None,
                    "resourceVersion": current["metadata"]["resourceVersion"]}},
                    node.namespace or None)
                self.log.info("removed finalizer object=%s finalizer=%s", node, finalizer)
                return
            except NotFound:
                return
            except Conflict:
                continue
        raise RuntimeError(f"could not remove finalizer {finalizer} from {node}")
