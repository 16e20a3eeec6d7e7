"""The request filter that runs before every handler: authenticate, impersonate, authorize
(upstream's WithAuthentication → WithImpersonation → WithAuthorization chain).

A request that fails authentication gets 401, one that is not allowed 403 with upstream's
message; only then does a handler see it, with the user in `CURRENT_USER` for admission.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from api import errors
from apiserver.auth.attributes import (
    ANONYMOUS,
    AUTHENTICATED,
    SERVICE_ACCOUNTS_GROUP,
    UNAUTHENTICATED,
    Attributes,
    Decision,
    RuleResolver,
    UserInfo,
    split_service_account_username,
)
from apiserver.auth.authn import Authenticator
from apiserver.auth.authz import Union
from apiserver.auth.context import CURRENT_USER
from apiserver.auth.rbac import forbidden_error
from apiserver.auth.requestinfo import request_info

IMPERSONATE_USER = "Impersonate-User"
IMPERSONATE_UID = "Impersonate-Uid"
IMPERSONATE_GROUP = "Impersonate-Group"
IMPERSONATE_EXTRA = "Impersonate-Extra-"

REQUEST_USER = web.RequestKey("user", UserInfo)
# For the audit log (apiserver/audit.py), which sits outside this filter and records denied
# requests too: who authenticated, who they act as, and the decision ("allow"|"forbid", reason).
AUTHENTICATED_USER = web.RequestKey("authenticated_user", UserInfo)
IMPERSONATED_USER = web.RequestKey("impersonated_user", UserInfo)
AUTHORIZATION_DECISION = web.RequestKey("authorization_decision", tuple[str, str])


@dataclass
class AccessControl:
    """What the filter needs: who (authenticator) and may they (authorizer)."""

    authenticator: Authenticator
    authorizer: Union
    rules: RuleResolver | None = None  # SelfSubjectRulesReview's source (RBAC)


ACCESS_CONTROL = web.AppKey("access_control", AccessControl)


def _impersonation_requests(headers: Any) -> tuple[str, str, list[str], dict[str, list[str]]]:
    user = headers.get(IMPERSONATE_USER, "")
    uid = headers.get(IMPERSONATE_UID, "")
    groups = list(headers.getall(IMPERSONATE_GROUP, []))
    extra: dict[str, list[str]] = {}
    for key in headers:
        if key.lower().startswith(IMPERSONATE_EXTRA.lower()):
            name = unquote(key[len(IMPERSONATE_EXTRA):]).lower()
            extra.setdefault(name, []).extend(headers.getall(key))
    return user, uid, groups, extra


def impersonate(headers: Any, actor: UserInfo, authorizer: Union) -> UserInfo | None:
    """The user asked for in Impersonate-* headers, once `actor` may impersonate every
    part of it; None when no impersonation is asked."""
    user, uid, groups, extra = _impersonation_requests(headers)
    if not user:
        if uid or groups or extra:
            raise errors.BadRequest(f"requested impersonation of uid, groups or extra "
                                    f"without impersonating a user ({IMPERSONATE_USER})")
        return None
    checks: list[Attributes] = []
    sa = split_service_account_username(user)
    if sa is not None:
        checks.append(Attributes(actor, "impersonate", True, namespace=sa[0],
                                 resource="serviceaccounts", name=sa[1]))
    else:
        checks.append(Attributes(actor, "impersonate", True, resource="users", name=user))
    checks += [Attributes(actor, "impersonate", True, resource="groups", name=g)
               for g in groups]
    if uid:
        checks.append(Attributes(actor, "impersonate", True, api_group="authentication.k8s.io",
                                 resource="uids", name=uid))
    for key, values in extra.items():
        checks += [Attributes(actor, "impersonate", True, api_group="authentication.k8s.io",
                              resource="userextras", subresource=key, name=v) for v in values]
    for attrs in checks:
        decision, reason = authorizer.authorize(attrs)
        if decision is not Decision.ALLOW:
            raise forbidden_error(attrs, reason)
    if sa is not None and not groups:
        groups = [SERVICE_ACCOUNTS_GROUP, f"{SERVICE_ACCOUNTS_GROUP}:{sa[0]}"]
    implied = UNAUTHENTICATED if user == ANONYMOUS else AUTHENTICATED
    if implied not in groups:
        groups.append(implied)
    return UserInfo(user, uid, tuple(groups), {k: tuple(v) for k, v in extra.items()})


@web.middleware
async def access_filter(request: web.Request,
                        handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                        ) -> web.StreamResponse:
    control = request.app[ACCESS_CONTROL]
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    user = await control.authenticator.authenticate(
        ssl_object, request.headers.get("Authorization", ""), request.path)
    request[AUTHENTICATED_USER] = user
    impersonated = impersonate(request.headers, user, control.authorizer)
    if impersonated is not None:
        request[IMPERSONATED_USER] = impersonated
        user = impersonated
    query = request.query
    info = request_info(request.method, request.path, query.get("watch"),
                        query.get("fieldSelector"))
    attrs = info.attributes(user)
    decision, reason = control.authorizer.authorize(attrs)
    request[AUTHORIZATION_DECISION] = ("allow" if decision is Decision.ALLOW else "forbid",
                                       reason)
    if decision is not Decision.ALLOW:
        raise forbidden_error(attrs, reason)
    request[REQUEST_USER] = user
    token = CURRENT_USER.set(user)
    try:
        return await handler(request)
    finally:
        CURRENT_USER.reset(token)
