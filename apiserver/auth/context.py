"""The user of the request being served, for code below the handlers (admission in the
registry) that has no request object: set once by the authentication middleware, read-only
after. A ContextVar follows the request's task, so concurrent requests never see each
other's user."""

from __future__ import annotations

from contextvars import ContextVar

from apiserver.auth.attributes import UserInfo

CURRENT_USER: ContextVar[UserInfo | None] = ContextVar("kubelite_current_user", default=None)


def current_user() -> UserInfo | None:
    return CURRENT_USER.get()
