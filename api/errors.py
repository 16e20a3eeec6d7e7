"""Kubernetes `Status` errors, shared by the apiserver (raising) and clients (parsing)."""

from __future__ import annotations

from typing import Any

Cause = dict[str, str]


class StatusError(Exception):
    """An error that is a metav1.Status: `code`, `reason`, `message`, optional details."""

    code = 500
    reason = "InternalError"

    def __init__(self, message: str, *, code: int | None = None, reason: str | None = None,
                 details: dict[str, Any] | None = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if reason is not None:
            self.reason = reason
        self.details = details
        self.retry_after = retry_after

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body

    @classmethod
    def from_status(cls, body: dict[str, Any], http_code: int) -> StatusError:
        """Rebuild the most specific error class from a Status body (client side)."""
        code = int(body.get("code") or http_code)
        reason = str(body.get("reason") or "")
        message = str(body.get("message") or f"HTTP {http_code}")
        for klass in _ALL_ERRORS:
            if klass.reason == reason and reason:
                return klass(message, code=code, details=body.get("details"))
        for klass in _ALL_ERRORS:
            if klass.code == code:
                return klass(message, code=code, reason=reason or klass.reason,
                             details=body.get("details"))
        return StatusError(message, code=code, reason=reason or "Unknown",
                           details=body.get("details"))


def _details(resource: str | None, name: str | None, **extra: Any) -> dict[str, Any]:
    group, _, kind = (resource or "").partition(".")
    d: dict[str, Any] = {}
    if name:
        d["name"] = name
    if kind:
        d["group"] = kind
    if group:
        d["kind"] = group
    d.update(extra)
    return d


class BadRequest(StatusError):
    code, reason = 400, "BadRequest"


class Unauthorized(StatusError):
    code, reason = 401, "Unauthorized"


class Forbidden(StatusError):
    code, reason = 403, "Forbidden"


class NotFound(StatusError):
    code, reason = 404, "NotFound"

    @classmethod
    def of(cls, resource: str, name: str) -> NotFound:
        """resource is the group-resource, e.g. `pods` or `deployments.apps`."""
        return cls(f'{resource} "{name}" not found', details=_details(resource, name))


class MethodNotAllowed(StatusError):
    code, reason = 405, "MethodNotAllowed"


class AlreadyExists(StatusError):
    code, reason = 409, "AlreadyExists"

    @classmethod
    def of(cls, resource: str, name: str) -> AlreadyExists:
        return cls(f'{resource} "{name}" already exists', details=_details(resource, name))


class Conflict(StatusError):
    code, reason = 409, "Conflict"

    @classmethod
    def of(cls, resource: str, name: str, why: str) -> Conflict:
        return cls(f'Operation cannot be fulfilled on {resource} "{name}": {why}',
                   details=_details(resource, name))


class Gone(StatusError):
    code, reason = 410, "Gone"


class Expired(StatusError):
    code, reason = 410, "Expired"


class RequestEntityTooLarge(StatusError):
    code, reason = 413, "RequestEntityTooLarge"


class UnsupportedMediaType(StatusError):
    code, reason = 415, "UnsupportedMediaType"


class Invalid(StatusError):
    code, reason = 422, "Invalid"

    @classmethod
    def of(cls, kind: str, name: str, causes: list[Cause], group: str = "") -> Invalid:
        parts = [f"{c['field']}: {c['message']}" if c.get("field") else c["message"]
                 for c in causes]
        joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
        details: dict[str, Any] = {"name": name, "kind": kind, "causes": causes}
        if group:
            details["group"] = group
        return cls(f'{kind}{"." + group if group else ""} "{name}" is invalid: {joined}',
                   details=details)


class TooManyRequests(StatusError):
    code, reason = 429, "TooManyRequests"


class InternalError(StatusError):
    code, reason = 500, "InternalError"


class ServiceUnavailable(StatusError):
    code, reason = 503, "ServiceUnavailable"


class Timeout(StatusError):
    code, reason = 504, "Timeout"


_ALL_ERRORS: tuple[type[StatusError], ...] = (
    BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, AlreadyExists, Conflict,
    Expired, Gone, RequestEntityTooLarge, UnsupportedMediaType, Invalid, TooManyRequests,
    InternalError, ServiceUnavailable, Timeout,
)


def field_cause(field: str, message: str, reason: str = "FieldValueInvalid") -> Cause:
    """One entry of details.causes, as upstream: reason, message, field."""
    return {"reason": reason, "message": message, "field": field}


def resource_not_found() -> NotFound:
    """The 404 for a path no resource or subresource serves. Upstream's carries empty
    `details`, and clients rely on it: kubectl debug tells "ephemeral containers are
    disabled" from a missing pod by `details.name` being empty (and dereferences details)."""
    return NotFound("the server could not find the requested resource", details={})
