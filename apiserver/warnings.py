"""Per-request warnings (HTTP `Warning: 299 - "..."` headers, which kubectl and client-go
print) and audit annotations, collected by code deep below the handlers (admission).

A middleware opens a fresh collection for each request (aiohttp serves the requests of one
keep-alive connection in one task, so the context variables are reset after every request
rather than relying on task-local copies), and a response-prepare signal writes the headers:
some layers send their response before the middlewares return. The annotations are also left on the request
(`audit_annotations(request)`) for the audit log, which reads them after the handler.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from aiohttp import web

_WARNINGS: ContextVar[list[str] | None] = ContextVar("kubelite_warnings", default=None)
_ANNOTATIONS: ContextVar[dict[str, str] | None] = ContextVar("kubelite_audit_annotations",
                                                             default=None)
WARNINGS_KEY: web.RequestKey[list[str]] = web.RequestKey("warnings", list)
AUDIT_ANNOTATIONS_KEY: web.RequestKey[dict[str, str]] = web.RequestKey("audit_annotations", dict)

# Upstream (apiserver/pkg/warning) drops warnings past these sizes rather than send
# headers a proxy would refuse.
MAX_WARNING_LENGTH = 4 * 1024


def add_warning(text: str) -> None:
    """A warning for the client of the current request (dropped outside a request)."""
    collected = _WARNINGS.get()
    if collected is not None and text and text not in collected:
        collected.append(text)


def add_audit_annotation(key: str, value: str) -> None:
    """An annotation for the current request's audit event (dropped outside a request);
    the first value for a key stays, as upstream's admission attributes."""
    annotations = _ANNOTATIONS.get()
    if annotations is not None:
        annotations.setdefault(key, value)


def current_warnings() -> list[str]:
    return list(_WARNINGS.get() or [])


def current_audit_annotations() -> dict[str, str]:
    return dict(_ANNOTATIONS.get() or {})


def audit_annotations(request: web.Request) -> dict[str, str]:
    """The audit annotations admission recorded for `request` (after its handler ran)."""
    return dict(request.get(AUDIT_ANNOTATIONS_KEY) or {})


def warning_header(text: str) -> str:
    """`299 - "<text>"` with the text quoted as Go's strconv.Quote would (kubectl unquotes
    it): backslashes and double quotes escaped, control characters dropped."""
    text = text[:MAX_WARNING_LENGTH]
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(ch for ch in escaped if ch.isprintable())
    return f'299 - "{escaped}"'


@web.middleware
async def collect(request: web.Request, handler: Any) -> web.StreamResponse:
    """Opens the request's collections; `on_response_prepare` turns the warnings into
    headers when the response is sent, whichever layer sends it."""
    collected: list[str] = []
    annotations: dict[str, str] = {}
    request[WARNINGS_KEY] = collected
    request[AUDIT_ANNOTATIONS_KEY] = annotations
    warnings_token = _WARNINGS.set(collected)
    annotations_token = _ANNOTATIONS.set(annotations)
    try:
        return await handler(request)
    finally:
        _WARNINGS.reset(warnings_token)
        _ANNOTATIONS.reset(annotations_token)


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """aiohttp's on_response_prepare signal: the headers are still open here."""
    for text in request.get(WARNINGS_KEY) or []:
        response.headers.add("Warning", warning_header(text))
