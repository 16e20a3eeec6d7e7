"""What a kind adds to the generic store: how it is prepared, defaulted and validated.

As upstream's RESTCreateStrategy / RESTUpdateStrategy: the generic Store does CRUD once and
calls these hooks; a kind overrides only what differs.
"""

from __future__ import annotations

from typing import Any

from api import defaults, errors, validation
from api.errors import Cause
from api.resources import Resource

Obj = dict[str, Any]

# Top-level fields that are neither spec nor status: a change to them is not a spec change.
_NON_SPEC_FIELDS = ("apiVersion", "kind", "metadata", "status")


def spec_of(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in _NON_SPEC_FIELDS}


class Strategy:
    """Defaults for a kind without spec/status split (ConfigMap, Secret, Lease, ...)."""

    has_status = False  # status is only written through the status subresource
    tracks_generation = False  # metadata.generation counts spec changes
    allow_create_on_update = False
    allow_unconditional_update = True
    return_deleted_object = False

    def __init__(self, resource: Resource) -> None:
        self.resource = resource

    # -- create ---------------------------------------------------------------------------

    def prepare_for_create(self, obj: Obj) -> None:
        if self.has_status:
            obj["status"] = self.initial_status(obj)

    def initial_status(self, obj: Obj) -> Obj:
        return {}

    def default(self, obj: Obj) -> None:
        defaults.apply_defaults(self.resource.plural, obj)

    def admit_create(self, obj: Obj) -> None:
        """Mutating admission on create (after defaults, before validation)."""

    def after_uid(self, obj: Obj) -> None:
        """Defaults that need the object's uid (Job selectors)."""

    def validate(self, obj: Obj) -> list[Cause]:
        return validation.validate(self.resource.plural, obj)

    # -- update ---------------------------------------------------------------------------

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        if self.has_status:
            # The main resource cannot change status; only the status subresource can.
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)

    # Metadata a status write may not change (upstream ResetObjectMetaForStatus); the rest
    # of metadata, and everything but status outside it, comes from the stored object.
    status_locked_metadata: tuple[str, ...] = (
        "labels", "annotations", "finalizers", "ownerReferences")

    def prepare_for_status_update(self, new: Obj, old: Obj) -> Obj:
        """The status subresource changes status (and only the metadata a kind allows)."""
        out = {k: v for k, v in old.items() if k != "status"}
        raw_md = new.get("metadata")
        new_md: Obj = raw_md if isinstance(raw_md, dict) else {}
        md = dict(old["metadata"])
        for key, value in new_md.items():
            if key in ("labels", "annotations", "finalizers", "ownerReferences") and \
                    key not in self.status_locked_metadata:
                md[key] = value
        for key in ("labels", "annotations", "finalizers", "ownerReferences"):
            if key not in self.status_locked_metadata and key not in new_md:
                md.pop(key, None)
        out["metadata"] = md
        if "status" in new:
            out["status"] = new["status"]
        return out

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return validation.validate(self.resource.plural, new, old)

    # Subresources other than status that write part of the object (pods/ephemeralcontainers).
    def prepare_for_subresource_update(self, subresource: str, new: Obj, old: Obj) -> Obj:
        """The stored object with what `subresource` may change taken from `new`."""
        raise errors.MethodNotAllowed("the server does not allow this method on the "
                                      "requested resource")

    def validate_subresource_update(self, subresource: str, new: Obj, old: Obj
                                    ) -> list[Cause]:
        return []

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        return validation.validate_status_update(self.resource.plural, new, old)

    def bumps_generation(self, new: Obj, old: Obj) -> bool:
        return self.tracks_generation and spec_of(new) != spec_of(old)

    # -- allocation (values held outside the object: Service IPs and ports) -----------------

    async def allocate(self, new: Obj, old: Obj | None) -> Any:
        """Claim what `new` needs and `old` does not hold; returns a handle for rollback."""
        return None

    async def release_allocation(self, allocation: Any) -> None:
        """Give back what `allocate` claimed, when the write it was for failed."""

    async def release_replaced(self, old: Obj, new: Obj | None) -> None:
        """After a successful write, give back what `old` held and `new` (None: deleted)
        does not."""

    # -- delete ---------------------------------------------------------------------------

    def may_remove(self, obj: Obj) -> bool:
        """Whether a marked object without metadata.finalizers may go now."""
        return True

    def grace_period(self, obj: Obj, requested: int | None) -> int:
        """Seconds the object lingers, marked, before it is removed (0 = at once)."""
        return 0
