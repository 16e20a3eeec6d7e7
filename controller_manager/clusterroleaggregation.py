"""ClusterRole aggregation controller (upstream pkg/controller/clusterroleaggregation): a
ClusterRole with an aggregationRule gets as its rules the union of the rules of every
ClusterRole its selectors match, in name order, without duplicates. This is how `admin`,
`edit` and `view` pick up what `system:aggregate-to-*` roles (and users' own labelled roles)
contribute.

Keys are ClusterRole names. Any ClusterRole change may change any aggregate (the dependency
graph is not known and the set of roles is small), so every change enqueues every aggregated
role, as upstream does.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from api.errors import Conflict, NotFound
from api.resources import CATALOGUE
from api.selectors import label_selector_object_matches
from controller_manager.base import Controller, ControllerContext

Obj = dict[str, Any]

CLUSTERROLES = CATALOGUE.require("clusterroles")

_RULE_FIELDS = ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs")


def _normal(rule: Any) -> Obj:
    """A rule as semantic equality sees it: empty and absent lists are the same."""
    if not isinstance(rule, dict):
        return {}
    return {k: rule[k] for k in _RULE_FIELDS if rule.get(k)}


def _name(role: Obj) -> str:
    return str((role.get("metadata") or {}).get("name") or "")


def _labels(role: Obj) -> dict[str, str]:
    labels = (role.get("metadata") or {}).get("labels")
    return labels if isinstance(labels, dict) else {}


def aggregated_rules(role: Obj, cluster_roles: Iterable[Obj]) -> list[Obj]:
    """The rules `role`'s aggregationRule selects: for each selector in order, the rules of
    the matching ClusterRoles (itself excluded) sorted by name, first occurrence kept."""
    aggregation = role.get("aggregationRule")
    selectors = aggregation.get("clusterRoleSelectors") if isinstance(aggregation, dict) \
        else None
    candidates = sorted((r for r in cluster_roles if _name(r) != _name(role)), key=_name)
    out: list[Obj] = []
    seen: list[Obj] = []
    for selector in selectors if isinstance(selectors, list) else ():
        if not isinstance(selector, dict):
            continue
        for other in candidates:
            if not label_selector_object_matches(selector, _labels(other)):
                continue
            for rule in other.get("rules") or ():
                normal = _normal(rule)
                if normal and normal not in seen:
                    seen.append(normal)
                    out.append(copy.deepcopy(normal))
    return out


class ClusterRoleAggregationController(Controller):
    name = "clusterrole-aggregation"
    workers = 1  # one writer: aggregates of aggregates settle in order, without conflicts

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.roles = self.informer(CLUSTERROLES)
        self.roles.add_handler(on_add=lambda _: self._enqueue_aggregated(),
                               on_update=lambda _old, _new: self._enqueue_aggregated(),
                               on_delete=lambda _: self._enqueue_aggregated())

    def _enqueue_aggregated(self) -> None:
        for role in self.roles.store.list():
            if role.get("aggregationRule") is not None:
                self.enqueue(role)

    async def sync(self, key: str) -> None:
        role = self.roles.store.get(key)
        if role is None or role.get("aggregationRule") is None:
            return
        rules = aggregated_rules(role, self.roles.store.list())
        if rules == [_normal(r) for r in role.get("rules") or ()]:
            return
        updated = copy.deepcopy(role)
        updated["rules"] = rules
        try:
            await self.api.update(CLUSTERROLES, updated)
        except NotFound:
            return  # deleted meanwhile: nothing to aggregate into
        except Conflict:
            # Our cache was behind; the watch event of that change enqueues it again.
            self.log.info("clusterrole changed while aggregating name=%s", key)
            return
        self.log.info("aggregated clusterrole name=%s rules=%d", key, len(rules))
