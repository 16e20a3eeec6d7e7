"""The storage interface the registry is written against (as k8s.io/apiserver/pkg/storage).

Objects are plain dicts; `metadata.resourceVersion` is always the etcd mod revision of the
stored value and is never itself persisted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

Obj = dict[str, Any]

# try_update(current) -> the new object, or None to leave it untouched. It may raise.
TryUpdate = Callable[[Obj], Obj | None | Awaitable[Obj | None]]
# Filter applied to listed and watched objects (selectors, namespaces).
Predicate = Callable[[Obj], bool]


class StorageError(Exception):
    pass


class KeyNotFound(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class KeyExists(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key exists: {key}")
        self.key = key


class VersionConflict(StorageError):
    """A precondition (resourceVersion or uid) did not hold."""

    def __init__(self, key: str, why: str) -> None:
        super().__init__(why)
        self.key = key
        self.why = why


class TooOld(StorageError):
    """The asked-for resourceVersion is older than what is kept (HTTP 410 Expired)."""


class FutureRevision(StorageError):
    """The asked-for revision is newer than the store's (HTTP 504 Timeout upstream)."""


class Unavailable(StorageError):
    """The backing store cannot be reached."""


@dataclass
class Preconditions:
    uid: str | None = None
    resource_version: str | None = None


@dataclass
class ListResult:
    items: list[Obj]
    resource_version: int
    continue_key: str | None = None  # the storage key to resume after
    remaining: int | None = None


@dataclass
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    object: Obj
    revision: int
    prev: Obj | None = field(default=None)


class Storage(Protocol):
    async def create(self, key: str, obj: Obj) -> Obj: ...

    async def get(self, key: str) -> Obj: ...

    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0,
                   start_key: str | None = None,
                   predicate: Predicate | None = None) -> ListResult: ...

    async def guaranteed_update(self, key: str, try_update: TryUpdate, *,
                                preconditions: Preconditions | None = None,
                                current: Obj | None = None) -> Obj: ...

    async def delete(self, key: str, *, preconditions: Preconditions | None = None,
                     validate: Callable[[Obj], None] | None = None) -> Obj: ...

    async def current_revision(self) -> int: ...
