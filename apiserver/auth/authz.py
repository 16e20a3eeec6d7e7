"""Authorization modes and their union (kube-apiserver's --authorization-mode).

Modes are asked in order; the first that allows or denies decides, as upstream's union
authorizer. Members of system:masters are allowed everything before any mode is asked
(upstream's privileged-group authorizer), so an admin cannot lock itself out with RBAC.
"""

from __future__ import annotations

from collections.abc import Sequence

from apiserver.auth.attributes import MASTERS, Attributes, Authorizer, Decision

MODES = ("AlwaysAllow", "AlwaysDeny", "Node", "RBAC")


class AlwaysAllow:
    def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        return Decision.ALLOW, ""


class AlwaysDeny:
    def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        return Decision.DENY, "Everything is forbidden."


class PrivilegedGroups:
    def __init__(self, groups: Sequence[str] = (MASTERS,)) -> None:
        self.groups = frozenset(groups)

    def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        if self.groups.intersection(attrs.user.groups):
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, ""


class Union:
    def __init__(self, authorizers: Sequence[Authorizer]) -> None:
        self.authorizers = list(authorizers)

    def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        reasons = []
        for authorizer in self.authorizers:
            decision, reason = authorizer.authorize(attrs)
            if decision is not Decision.NO_OPINION:
                return decision, reason
            if reason:
                reasons.append(reason)
        return Decision.NO_OPINION, ", ".join(reasons)

    def allowed(self, attrs: Attributes) -> bool:
        return self.authorize(attrs)[0] is Decision.ALLOW


def parse_modes(text: str) -> list[str]:
    """`Node,RBAC` → ["Node", "RBAC"]; ValueError on an unknown or repeated mode."""
    modes = [m.strip() for m in text.split(",") if m.strip()]
    if not modes:
        raise ValueError("at least one authorization mode must be given")
    for m in modes:
        if m not in MODES:
            raise ValueError(f"unknown authorization mode {m!r} (supported: "
                             f"{', '.join(MODES)})")
    if len(set(modes)) != len(modes):
        raise ValueError(f"authorization mode given twice in {text!r}")
    return modes
