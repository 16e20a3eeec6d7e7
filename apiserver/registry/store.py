"""The generic registry store: CRUD, watch and subresources once, for every kind.

Mirrors k8s.io/apiserver's generic registry Store: a kind brings a Strategy; storage is the
one interface with guaranteed_update; errors leave here as Kubernetes Status errors.
"""

from __future__ import annotations

import base64
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from api import errors, selectors
from api.codec import DecodeError, dumps, loads
from api.meta import deep_copy, new_uid, now_rfc3339
from api.patch import PatchError, json_merge_patch, json_patch, strategic_merge_patch
from api.resources import Resource
from apiserver import fieldvalidation
from apiserver.registry.strategy import Obj, Strategy

if TYPE_CHECKING:
    from apiserver.admission import Admission
from apiserver.storage.cacher import CachedStorage, Cacher, Watcher
from apiserver.storage.etcd_store import check_preconditions
from apiserver.storage.interface import (
    FutureRevision,
    KeyExists,
    KeyNotFound,
    Preconditions,
    TooOld,
    Unavailable,
    VersionConflict,
)

log = logging.getLogger(__name__)

# How a namespaced create learns whether its namespace exists and is not terminating.
NamespaceLookup = Callable[[str], Awaitable[Obj | None]]

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
}


@dataclass
class ListOptions:
    label_selector: str = ""
    field_selector: str = ""
    limit: int = 0
    continue_: str = ""
    resource_version: str = ""
    resource_version_match: str = ""


@dataclass
class DeleteOptions:
    grace_period_seconds: int | None = None
    propagation_policy: str | None = None  # Orphan, Background, Foreground
    preconditions: Preconditions | None = None
    dry_run: bool = False


def _continue_token(rev: int, start_key: str) -> str:
    raw = dumps({"v": "meta.k8s.io/v1", "rv": rev, "start": start_key})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_continue(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = loads(raw)
        rev, start = int(data["rv"]), str(data["start"])
        if data.get("v") != "meta.k8s.io/v1" or not 0 < rev < 2 ** 63 or ".." in start:
            raise ValueError
        return rev, start
    except (ValueError, KeyError, TypeError, DecodeError) as e:
        raise errors.BadRequest(f"invalid continue token: {token!r}") from e


def _rfc3339_in(seconds: int) -> str:
    # A huge grace period is capped at a century: it means "never", and datetime has limits.
    seconds = min(seconds, 100 * 365 * 86400)
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    def __init__(self, resource: Resource, strategy: Strategy, storage: CachedStorage,
                 cacher: Cacher, namespace_lookup: NamespaceLookup) -> None:
        self.resource = resource
        self.strategy = strategy
        self.storage = storage
        self.cacher = cacher
        self.namespace_lookup = namespace_lookup
        # Admission that depends on the user or other objects (apiserver/admission.py);
        # None runs none (stores in unit tests).
        self.admission: Admission | None = None

    # -- helpers --------------------------------------------------------------------------

    def key(self, namespace: str | None, name: str) -> str:
        return self.resource.storage_key(namespace, name)

    @asynccontextmanager
    async def _errors(self, name: str) -> AsyncIterator[None]:
        """Translate storage errors into Status errors naming this resource."""
        gr = self.resource.group_resource
        try:
            yield
        except KeyNotFound as e:
            raise errors.NotFound.of(gr, name) from e
        except KeyExists as e:
            raise errors.AlreadyExists.of(gr, name) from e
        except VersionConflict as e:
            raise errors.Conflict.of(gr, name, e.why) from e
        except TooOld as e:
            raise errors.Expired(str(e)) from e
        except FutureRevision as e:
            raise errors.Timeout(f"Too large resource version: {e}", details={
                "causes": [{"reason": "ResourceVersionTooLarge",
                            "message": "Too large resource version"}],
                "retryAfterSeconds": 1}) from e
        except TimeoutError as e:
            raise errors.Timeout(str(e), details={
                "causes": [{"reason": "ResourceVersionTooLarge",
                            "message": "Too large resource version"}],
                "retryAfterSeconds": 1}) from e
        except Unavailable as e:
            raise errors.ServiceUnavailable(str(e)) from e

    def _conflict(self, name: str) -> errors.Conflict:
        return errors.Conflict.of(self.resource.group_resource, name,
                                  "the object has been modified; please apply your changes "
                                  "to the latest version and try again")

    def _invalid(self, name: str, causes: list[errors.Cause]) -> errors.Invalid:
        return errors.Invalid.of(self.resource.kind, name, causes, self.resource.group)

    def _check_type(self, obj: Any) -> Obj:
        if not isinstance(obj, dict):
            raise errors.BadRequest("the body of the request must be a JSON object")
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if api_version is not None and api_version != self.resource.api_version:
            raise errors.BadRequest(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({self.resource.api_version})")
        if kind is not None and kind != self.resource.kind:
            raise errors.BadRequest(f"the kind in the data ({kind}) does not match the "
                                    f"expected kind ({self.resource.kind})")
        obj["apiVersion"], obj["kind"] = self.resource.api_version, self.resource.kind
        md = obj.get("metadata")
        if md is None:
            obj["metadata"] = md = {}
        if not isinstance(md, dict):
            raise errors.BadRequest("metadata must be an object")
        return obj

    def _check_namespace(self, obj: Obj, namespace: str | None) -> None:
        md = obj["metadata"]
        if not self.resource.namespaced:
            md.pop("namespace", None)
            return
        body_ns = md.get("namespace")
        if body_ns and body_ns != namespace:
            raise errors.BadRequest("the namespace of the provided object does not match the "
                                    "namespace sent on the request")
        md["namespace"] = namespace

    async def _admit_namespace(self, namespace: str | None, name: str) -> None:
        if not self.resource.namespaced or not namespace:
            return
        ns = await self.namespace_lookup(namespace)
        if ns is None:
            raise errors.NotFound.of("namespaces", namespace)
        if (ns.get("status") or {}).get("phase") == "Terminating" or \
                ns["metadata"].get("deletionTimestamp"):
            raise errors.Forbidden(
                f"{self.resource.group_resource} \"{name}\" is forbidden: unable to "
                f"create new content in namespace {namespace} because it is being terminated",
                details={"causes": [{"reason": "NamespaceTerminating",
                                     "message": f"namespace {namespace} is being terminated",
                                     "field": "metadata.namespace"}]})

    # -- create ---------------------------------------------------------------------------

    async def create(self, namespace: str | None, body: Any, *, dry_run: bool = False,
                     field_validation: str = "Warn") -> Obj:
        obj = self._check_type(body)
        fieldvalidation.check(self.resource, obj, field_validation)
        self._check_namespace(obj, namespace)
        md = obj["metadata"]
        if md.get("resourceVersion"):
            raise errors.BadRequest("resourceVersion should not be set on objects to be created")
        if not md.get("name") and isinstance(md.get("generateName"), str) and md["generateName"]:
            md["name"] = md["generateName"][:58] + "".join(
                random.choice(_NAME_CHARS) for _ in range(5))
        name = str(md.get("name") or "")
        for k in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            md.pop(k, None)
        md["uid"] = new_uid()
        md["creationTimestamp"] = now_rfc3339()
        if self.strategy.tracks_generation:
            md["generation"] = 1
        else:
            md.pop("generation", None)
        self.strategy.prepare_for_create(obj)
        self.strategy.default(obj)
        self.strategy.after_uid(obj)
        self.strategy.admit_create(obj)
        if self.admission is not None:
            await self.admission.mutate(self.resource.plural, "CREATE", obj)
        causes = self.strategy.validate(obj)
        if causes:
            raise self._invalid(name, causes)
        await self._admit_namespace(namespace, name)
        if self.admission is not None:
            await self.admission.validate(self.resource.plural, "CREATE", "",
                                          namespace or "", name, obj, None)
        if dry_run:
            return obj
        allocation = await self.strategy.allocate(obj, None)
        try:
            async with self._errors(name):
                return await self.storage.create(self.key(namespace, name), obj)
        except BaseException:
            await self.strategy.release_allocation(allocation)
            raise

    # -- read -----------------------------------------------------------------------------

    async def get(self, namespace: str | None, name: str) -> Obj:
        async with self._errors(name):
            return await self.storage.get(self.key(namespace, name))

    def predicate(self, opts: ListOptions) -> Callable[[Obj], bool] | None:
        label = selectors.parse_label_selector(opts.label_selector or "")
        field = selectors.parse_field_selector(opts.field_selector or "")
        selectors.validate_field_selector(self.resource.plural, field)
        if label.is_empty() and not field.requirements:
            return None
        plural = self.resource.plural

        def matches(obj: Obj) -> bool:
            md = obj.get("metadata") or {}
            if not label.is_empty() and not label.matches(md.get("labels") or {}):
                return False
            return not field.requirements or field.matches(selectors.field_set(plural, obj))

        return matches

    def _list_prefix(self, namespace: str | None) -> str:
        return self.resource.storage_list_prefix(namespace)

    async def list(self, namespace: str | None, opts: ListOptions) -> Obj:
        pred = self.predicate(opts)
        prefix = self._list_prefix(namespace)
        async with self._errors(""):
            if opts.continue_:
                rev, start = _parse_continue(opts.continue_)
                try:
                    result = await self.storage.list(prefix, revision=rev, limit=opts.limit,
                                                     start_key=prefix + start, predicate=pred)
                except TooOld as e:
                    raise errors.Expired(
                        "The provided continue parameter is too old to display a consistent "
                        "list result. You can start a new list without the continue "
                        "parameter.") from e
            elif opts.limit or opts.resource_version_match == "Exact":
                rev = 0
                if opts.resource_version_match == "Exact":
                    rev = _parse_rv(opts.resource_version)
                result = await self.storage.list(prefix, revision=rev, limit=opts.limit,
                                                 predicate=pred)
            else:
                # RV "0" may be served as the cache has it; otherwise the cache first catches
                # up with etcd's current revision, so the list is as fresh as a quorum read.
                rv = opts.resource_version
                if rv and rv != "0":
                    await self.cacher.wait_for_revision(_parse_rv(rv))
                result = await self.cacher.list(prefix, pred, consistent=not rv)
        list_meta: Obj = {"resourceVersion": str(result.resource_version)}
        if result.continue_key:
            list_meta["continue"] = _continue_token(result.resource_version,
                                                    result.continue_key[len(prefix):])
        return {"kind": self.resource.list_kind, "apiVersion": self.resource.api_version,
                "metadata": list_meta, "items": result.items}

    async def watch(self, namespace: str | None, opts: ListOptions) -> Watcher:
        pred = self.predicate(opts)
        rv = opts.resource_version
        start = _parse_rv(rv) if rv and rv != "0" else None
        try:
            return await self.cacher.watch(self._list_prefix(namespace), start, pred)
        except TooOld as e:
            raise errors.Expired(str(e)) from e
        except TimeoutError as e:
            raise errors.Timeout(str(e)) from e

    # -- update ---------------------------------------------------------------------------

    def _finish_update(self, new: Obj, old: Obj) -> None:
        """Keep what a client may not change and bump generation on spec changes."""
        md, old_md = new["metadata"], old["metadata"]
        for k in ("uid", "creationTimestamp", "deletionTimestamp",
                  "deletionGracePeriodSeconds", "namespace", "name", "generation"):
            if k in old_md:
                md[k] = old_md[k]
            else:
                md.pop(k, None)
        if self.strategy.bumps_generation(new, old):
            md["generation"] = int(old_md.get("generation") or 1) + 1
        elif not self.strategy.tracks_generation:
            md.pop("generation", None)

    async def update(self, namespace: str | None, name: str, body: Any, *,
                     dry_run: bool = False, subresource: str | None = None,
                     patch: tuple[str, Any] | None = None,
                     field_validation: str = "Warn") -> tuple[Obj, bool]:
        """PUT (or PATCH when `patch` is given). Returns (object, created)."""
        if patch is None:
            obj = self._check_type(body)
            fieldvalidation.check(self.resource, obj, field_validation)
            self._check_namespace(obj, namespace)
            body_name = obj["metadata"].get("name")
            if body_name != name:
                raise errors.BadRequest(f"the name of the object ({body_name}) does not match "
                                        f"the name on the URL ({name})")
        key = self.key(namespace, name)
        written: list[Obj] = []
        allocations: list[Any] = []
        replaced: list[Obj] = []

        async def try_update(current: Obj) -> Obj | None:
            # A retried attempt first gives back what the previous attempt claimed.
            while allocations:
                await self.strategy.release_allocation(allocations.pop())
            old = deep_copy(current)
            if patch is not None:
                new = self._apply_patch(current, patch, name)
                self._check_type(new)
                fieldvalidation.check(self.resource, new, field_validation)
                self._check_namespace(new, namespace)
            else:
                new = deep_copy(obj)
            sent_uid = new["metadata"].get("uid")
            if sent_uid and sent_uid != old["metadata"].get("uid"):
                raise errors.Conflict.of(
                    self.resource.group_resource, name,
                    f"Precondition failed: UID in precondition: {sent_uid}, UID in object "
                    f"meta: {old['metadata'].get('uid')}")
            user_rv = new["metadata"].get("resourceVersion")
            if user_rv and user_rv != old["metadata"].get("resourceVersion"):
                raise self._conflict(name)
            if not user_rv and not self.strategy.allow_unconditional_update:
                raise self._invalid(name, [errors.field_cause(
                    "metadata.resourceVersion", "Invalid value: 0x0: must be specified for an "
                    "update")])
            if subresource == "status":
                new = self.strategy.prepare_for_status_update(new, old)
                self.strategy.default(new)
                causes = self.strategy.validate_status_update(new, old)
            elif subresource is not None:
                new = self.strategy.prepare_for_subresource_update(subresource, new, old)
                self.strategy.default(new)
                causes = self.strategy.validate_subresource_update(subresource, new, old)
            else:
                self._finish_update(new, old)
                self.strategy.prepare_for_update(new, old)
                self.strategy.default(new)
                causes = self.strategy.validate_update(new, old)
            if causes:
                raise self._invalid(name, causes)
            if self.admission is not None:
                await self.admission.validate(self.resource.plural, "UPDATE",
                                              subresource or "", namespace or "", name, new,
                                              old)
            written.append(new)
            if dry_run:
                return None
            allocations.append(await self.strategy.allocate(new, old))
            replaced[:] = [old]
            return new

        try:
            async with self._errors(name):
                result = await self.storage.guaranteed_update(key, try_update)
        except BaseException as e:
            while allocations:
                await self.strategy.release_allocation(allocations.pop())
            if not isinstance(e, errors.NotFound):
                raise
            result = None
        if replaced and result is not None and result is written[-1]:
            await self.strategy.release_replaced(replaced[0], result)
        if result is None:
            if patch is None and self.strategy.allow_create_on_update and not subresource:
                body["metadata"].pop("resourceVersion", None)
                return await self.create(namespace, body, dry_run=dry_run,
                                         field_validation=field_validation), True
            raise errors.NotFound.of(self.resource.group_resource, name)
        if dry_run:
            return written[-1], False
        return await self._maybe_finalize(namespace, name, result), False

    def _apply_patch(self, current: Obj, patch: tuple[str, Any], name: str) -> Obj:
        patch_type, body = patch
        try:
            if patch_type == "json":
                out = json_patch(current, body)
            elif patch_type == "merge":
                if not isinstance(body, dict):
                    raise PatchError("the merge patch must be a JSON object")
                out = json_merge_patch(current, body)
            else:
                if not isinstance(body, dict):
                    raise PatchError("the strategic merge patch must be a JSON object")
                out = strategic_merge_patch(current, body, self.resource.kind)
        except PatchError as e:
            if patch_type == "json":
                raise errors.Invalid(
                    f"the server rejected our request due to an error in our request: {e}"
                ) from e
            raise errors.BadRequest(str(e)) from e
        if not isinstance(out, dict):
            raise errors.BadRequest("the patch must produce a JSON object")
        if not isinstance(out.get("metadata", {}), dict):
            raise errors.BadRequest("metadata must be an object")
        if out.get("metadata", {}).get("resourceVersion") is None:
            out.setdefault("metadata", {})["resourceVersion"] = \
                current["metadata"]["resourceVersion"]
        return out

    async def patch(self, namespace: str | None, name: str, patch_type: str, body: Any, *,
                    dry_run: bool = False, subresource: str | None = None,
                    field_validation: str = "Warn") -> Obj:
        obj, _ = await self.update(namespace, name, None, dry_run=dry_run,
                                   subresource=subresource, patch=(patch_type, body),
                                   field_validation=field_validation)
        return obj

    async def _maybe_finalize(self, namespace: str | None, name: str, obj: Obj) -> Obj:
        """An object marked for deletion goes once its last finalizer is gone."""
        md = obj["metadata"]
        if md.get("deletionTimestamp") and not md.get("finalizers") and \
                not md.get("deletionGracePeriodSeconds") and self.strategy.may_remove(obj):
            try:
                async with self._errors(name):
                    deleted = await self.storage.delete(
                        self.key(namespace, name),
                        preconditions=Preconditions(uid=md.get("uid"),
                                                    resource_version=md["resourceVersion"]))
            except (errors.NotFound, errors.Conflict):
                return obj
            await self.strategy.release_replaced(deleted, None)
            return deleted
        return obj

    # -- delete ---------------------------------------------------------------------------

    async def delete(self, namespace: str | None, name: str,
                     opts: DeleteOptions) -> tuple[Obj, bool]:
        """Returns (object, deleted_now). A pending deletion returns (marked object, False)."""
        key = self.key(namespace, name)
        async with self._errors(name):
            current = await self.storage.get(key)
        async with self._errors(name):
            check_preconditions(key, current, opts.preconditions)
        if self.admission is not None:
            await self.admission.validate(self.resource.plural, "DELETE", "", namespace or "",
                                          name, None, current)
        md = current["metadata"]
        grace = self.strategy.grace_period(current, opts.grace_period_seconds)
        finalizers = list(md.get("finalizers") or [])
        policy = opts.propagation_policy
        if policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        elif policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if self.resource.plural == "namespaces":
            return await self._delete_namespace(name, current, opts)
        if not finalizers and grace == 0:
            if opts.dry_run:
                return current, True
            async with self._errors(name):
                deleted = await self.storage.delete(
                    key, preconditions=Preconditions(uid=md.get("uid")),
                    validate=lambda o: check_preconditions(key, o, opts.preconditions))
            await self.strategy.release_replaced(deleted, None)
            return deleted, True

        def mark(obj: Obj) -> Obj | None:
            m = obj["metadata"]
            if opts.preconditions:
                check_preconditions(key, obj, opts.preconditions)
            existing = m.get("deletionGracePeriodSeconds")
            if m.get("deletionTimestamp") and (existing is None or grace >= existing):
                if set(finalizers) <= set(m.get("finalizers") or []):
                    return None
            elif grace > 0 or not m.get("deletionTimestamp"):
                m["deletionTimestamp"] = _rfc3339_in(grace)
                m["deletionGracePeriodSeconds"] = grace
            if grace == 0:
                m["deletionGracePeriodSeconds"] = 0
            fins = list(m.get("finalizers") or [])
            for f in finalizers:
                if f not in fins:
                    fins.append(f)
            if fins:
                m["finalizers"] = fins
            return obj

        if opts.dry_run:
            return mark(deep_copy(current)) or current, False
        async with self._errors(name):
            marked = await self.storage.guaranteed_update(key, mark)
        result = await self._maybe_finalize(namespace, name, marked)
        return result, result is not marked

    async def _delete_namespace(self, name: str, current: Obj,
                                opts: DeleteOptions) -> tuple[Obj, bool]:
        """A namespace is marked Terminating; the namespace controller empties it, then
        finalizes it. With no spec.finalizers left it goes at once."""
        key = self.key(None, name)
        if not (current.get("spec") or {}).get("finalizers") and \
                not current["metadata"].get("finalizers"):
            if opts.dry_run:
                return current, True
            async with self._errors(name):
                return await self.storage.delete(key), True

        def mark(obj: Obj) -> Obj | None:
            m = obj["metadata"]
            if m.get("deletionTimestamp") and (obj.get("status") or {}).get("phase") == \
                    "Terminating":
                return None
            m.setdefault("deletionTimestamp", now_rfc3339())
            m["deletionGracePeriodSeconds"] = 0
            obj.setdefault("status", {})["phase"] = "Terminating"
            return obj

        if opts.dry_run:
            return mark(deep_copy(current)) or current, False
        async with self._errors(name):
            return await self.storage.guaranteed_update(key, mark), False

    async def finalize_namespace(self, name: str, body: Any) -> Obj:
        """PUT namespaces/<name>/finalize: replace spec.finalizers; delete when done."""
        spec = body.get("spec") if isinstance(body, dict) else None
        fins = (spec or {}).get("finalizers") if isinstance(spec or {}, dict) else None
        if not isinstance(spec or {}, dict) or not isinstance(fins or [], list) or \
                not all(isinstance(f, str) and f for f in fins or []):
            raise errors.Invalid.of("Namespace", name, [errors.field_cause(
                "spec.finalizers", "Invalid value: must be a list of finalizer names")])
        fins = fins or []
        key = self.key(None, name)

        def set_finalizers(obj: Obj) -> Obj:
            obj.setdefault("spec", {})["finalizers"] = list(fins)
            return obj

        async with self._errors(name):
            obj = await self.storage.guaranteed_update(key, set_finalizers)
        md = obj["metadata"]
        if md.get("deletionTimestamp") and not fins and not md.get("finalizers"):
            async with self._errors(name):
                await self.storage.delete(key, preconditions=Preconditions(uid=md.get("uid")))
        return obj

    async def delete_collection(self, namespace: str | None, list_opts: ListOptions,
                                opts: DeleteOptions) -> Obj:
        listed = await self.list(namespace, ListOptions(
            label_selector=list_opts.label_selector, field_selector=list_opts.field_selector))
        items = []
        for obj in listed["items"]:
            md = obj["metadata"]
            try:
                result, _ = await self.delete(md.get("namespace"), md["name"], opts)
                items.append(result)
            except errors.NotFound:
                continue
        return {"kind": self.resource.list_kind, "apiVersion": self.resource.api_version,
                "metadata": {"resourceVersion": listed["metadata"]["resourceVersion"]},
                "items": items}


def _parse_rv(rv: str) -> int:
    try:
        value = int(rv)
        if not 0 <= value < 2 ** 63:
            raise ValueError
        return value
    except (TypeError, ValueError) as e:
        raise errors.BadRequest(f"invalid resource version: {rv!r}") from e
