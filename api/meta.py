"""Helpers over plain-dict Kubernetes objects (no second object model)."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

from api.codec import dumps, loads

Obj = dict[str, Any]


def now_rfc3339() -> str:
    """metav1.Time: second precision, UTC, `Z` suffix."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339_micro() -> str:
    """metav1.MicroTime, as Leases and Events use."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str | None) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def new_uid() -> str:
    return str(uuid.uuid4())


def meta(obj: Obj) -> dict[str, Any]:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = {}
        obj["metadata"] = m
    return m


def name_of(obj: Obj) -> str:
    m = obj.get("metadata") or {}
    return str(m.get("name") or "") if isinstance(m, dict) else ""


def namespace_of(obj: Obj) -> str:
    m = obj.get("metadata") or {}
    return str(m.get("namespace") or "") if isinstance(m, dict) else ""


def object_key(obj: Obj) -> str:
    """`namespace/name`, or `name` for cluster-scoped objects (client-go's MetaNamespaceKey)."""
    ns, name = namespace_of(obj), name_of(obj)
    return f"{ns}/{name}" if ns else name


def resource_version(obj: Obj) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def deep_copy(obj: Obj) -> Obj:
    """A deep copy of a JSON tree; a JSON round trip is several times faster than deepcopy."""
    try:
        return loads(dumps(obj))
    except TypeError:
        return copy.deepcopy(obj)
