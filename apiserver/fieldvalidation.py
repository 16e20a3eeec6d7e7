"""Unknown-field detection and pruning against the OpenAPI schemas.

Upstream decodes into typed structs, so unknown fields are dropped (`fieldValidation=Ignore`
or `Warn`, the default) or rejected (`Strict`, what kubectl sends). kubelite keeps objects as
JSON, so it walks the same schema table the OpenAPI documents are built from. Parts the table
models loosely (`x-kubernetes-preserve-unknown-fields`) are accepted as they are.
"""

from __future__ import annotations

from typing import Any

from api import errors
from api.resources import Resource
from apiserver.openapi import SCHEMAS, schema_name

MODES = ("Ignore", "Warn", "Strict")


def _resolve(schema: dict[str, Any]) -> dict[str, Any] | None:
    seen = 0
    while schema is not None and seen < 8:
        seen += 1
        if "$ref" in schema:
            schema = SCHEMAS.get(schema["$ref"].rsplit("/", 1)[-1])  # type: ignore[assignment]
        elif schema.get("allOf"):
            schema = schema["allOf"][0]
        else:
            return schema
    return schema


def _walk(value: Any, schema: dict[str, Any] | None, path: str, unknown: list[str],
          prune: bool) -> None:
    schema = _resolve(schema) if schema is not None else None
    if schema is None or schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props is not None:
            for key in list(value):
                if key in props:
                    _walk(value[key], props[key], f"{path}.{key}" if path else key, unknown,
                          prune)
                elif not isinstance(extra, dict):
                    unknown.append(f"{path}.{key}" if path else key)
                    if prune:
                        del value[key]
        elif isinstance(extra, dict):
            for key, item in value.items():
                _walk(item, extra, f"{path}[{key}]", unknown, prune)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _walk(item, schema["items"], f"{path}[{i}]", unknown, prune)


def check(resource: Resource, obj: Any, mode: str) -> None:
    """Reject (Strict) or drop (Warn, Ignore) fields the kind does not have."""
    if not isinstance(obj, dict):
        return
    schema = SCHEMAS.get(schema_name(resource.group, resource.version, resource.kind))
    if schema is None:
        return
    unknown: list[str] = []
    _walk(obj, schema, "", unknown, prune=mode != "Strict")
    if unknown and mode == "Strict":
        fields = ", ".join(f'unknown field "{f}"' for f in unknown[:20])
        raise errors.BadRequest(
            f'{resource.kind} in version "{resource.version}" cannot be handled as a '
            f"{resource.kind}: strict decoding error: {fields}")


def mode_of(value: str | None) -> str:
    if not value:
        return "Warn"
    if value not in MODES:
        raise errors.BadRequest(f"fieldValidation must be one of Ignore, Warn, Strict; got "
                                f"{value!r}")
    return value
