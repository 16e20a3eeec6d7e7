"""JSON encoding used on every hot path (storage values, responses, watch events)."""

from __future__ import annotations

from typing import Any

import orjson


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


DecodeError = orjson.JSONDecodeError
