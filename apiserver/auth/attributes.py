"""Who is asking and what for: upstream's `user.Info` and `authorizer.Attributes`.

Every authenticator produces a `UserInfo`; every authorizer decides on `Attributes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

# Well-known users and groups (k8s.io/apiserver/pkg/authentication/user).
ANONYMOUS = "system:anonymous"
UNAUTHENTICATED = "system:unauthenticated"
AUTHENTICATED = "system:authenticated"
MASTERS = "system:masters"
NODES_GROUP = "system:nodes"
NODE_USER_PREFIX = "system:node:"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"


@dataclass(frozen=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def as_review_user(self) -> dict[str, object]:
        """The `userInfo` of TokenReview/SelfSubjectReview status (empty fields left out)."""
        out: dict[str, object] = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


ANONYMOUS_USER = UserInfo(ANONYMOUS, groups=(UNAUTHENTICATED,))


def service_account_username(namespace: str, name: str) -> str:
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def split_service_account_username(username: str) -> tuple[str, str] | None:
    """("ns", "name") for `system:serviceaccount:ns:name`, else None."""
    if not username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    ns, sep, name = username[len(SERVICE_ACCOUNT_PREFIX):].partition(":")
    if not sep or not ns or not name or ":" in name:
        return None
    return ns, name


@dataclass(frozen=True)
class Attributes:
    """One request as an authorizer sees it (upstream's AttributesRecord).

    For a resource request: verb is the API verb (get, list, watch, create, update, patch,
    delete, deletecollection, or a special one: impersonate, bind, escalate, use);
    api_group "" is the core group. For a non-resource request, `path` is the URL path and
    verb the lower-case HTTP method (get, post, put, patch, delete, head, options).
    """

    user: UserInfo
    verb: str
    resource_request: bool
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""


class Decision(Enum):
    ALLOW = "allow"
    DENY = "deny"
    NO_OPINION = "no-opinion"


class Authorizer(Protocol):
    def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        """The decision and, when not ALLOW, a reason (may be empty)."""
        ...


@dataclass(frozen=True)
class ResourceRule:
    """SelfSubjectRulesReview's resourceRules entry."""

    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class NonResourceRule:
    verbs: tuple[str, ...]
    non_resource_urls: tuple[str, ...] = ()


class RuleResolver(Protocol):
    def rules_for(self, user: UserInfo, namespace: str
                  ) -> tuple[list[ResourceRule], list[NonResourceRule], bool, str]:
        """The rules that apply to `user` in `namespace` (cluster-wide ones included):
        resource rules, non-resource rules, whether the list is incomplete, and an error."""
        ...
