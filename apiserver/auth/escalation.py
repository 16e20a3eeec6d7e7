"""RBAC escalation prevention (upstream pkg/registry/rbac: escalation_check.go, the
policybased role and binding storages, validation/policy_comparator.go and policy_compact.go).

Whoever may write Roles or bindings could otherwise grant themselves anything. So a role may
only be written by someone who already holds every rule in it (or has the `escalate` verb on
it), and a binding only by someone who holds every rule of the role it refers to (or has the
`bind` verb on that role). The checks run in the create and update paths of the four kinds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from api import errors
from apiserver.auth.attributes import MASTERS, Attributes, Decision, UserInfo
from apiserver.auth.rbac import ALL, RBAC_GROUP, aggregate_message, go_quote, go_quote_list

Obj = dict[str, Any]

AuthorizeFn = Callable[[Attributes], tuple[Decision, str]]
# (user, namespace) -> (the PolicyRules that user holds there, resolution errors):
# RBACAuthorizer.policy_rules_for.
RulesForFn = Callable[[UserInfo, str], tuple[list[Obj], list[str]]]
# (roleRef, binding namespace) -> the referenced role's rules, raising NotFound:
# RBACAuthorizer.role_ref_rules.
RoleRulesFn = Callable[[Obj, str], list[Obj]]

_RULE_FIELDS = ("apiGroups", "resources", "nonResourceURLs", "resourceNames", "verbs")

# To set an aggregationRule, which can gather anything, one must hold everything.
FULL_AUTHORITY: tuple[Obj, ...] = (
    {"verbs": [ALL], "apiGroups": [ALL], "resources": [ALL]},
    {"verbs": [ALL], "nonResourceURLs": [ALL]},
)


def _strs(rule: Obj, key: str) -> list[str]:
    value = rule.get(key)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


# ---------------------------------------------------------------------------------------------
# Covers


def breakdown_rule(rule: Obj) -> list[Obj]:
    """BreakdownRule: one rule per (group, resource, verb[, name]) and per (url, verb)."""
    out: list[Obj] = []
    verbs, names = _strs(rule, "verbs"), _strs(rule, "resourceNames")
    for group in _strs(rule, "apiGroups"):
        for resource in _strs(rule, "resources"):
            for verb in verbs:
                base = {"apiGroups": [group], "resources": [resource], "verbs": [verb]}
                if names:
                    out.extend({**base, "resourceNames": [n]} for n in names)
                else:
                    out.append(base)
    for url in _strs(rule, "nonResourceURLs"):
        out.extend({"nonResourceURLs": [url], "verbs": [verb]} for verb in verbs)
    return out


def _resources_cover(owner: list[str], wanted: list[str]) -> bool:
    if ALL in owner or set(wanted) <= set(owner):
        return True
    for path in wanted:
        if path in owner:
            continue
        if "/" not in path:
            return False
        # pods/log is covered by */log.
        if "*/" + path.split("/", 1)[1] not in owner:
            return False
    return True


def _url_covers(owner: str, wanted: str) -> bool:
    return owner == wanted or (owner.endswith("*") and wanted.startswith(owner.rstrip("*")))


def _rule_covers(owner: Obj, sub: Obj) -> bool:
    """ruleCovers: whether one owner rule covers one broken-down rule."""
    owner_verbs, owner_groups = _strs(owner, "verbs"), _strs(owner, "apiGroups")
    verbs_ok = ALL in owner_verbs or set(_strs(sub, "verbs")) <= set(owner_verbs)
    groups_ok = ALL in owner_groups or set(_strs(sub, "apiGroups")) <= set(owner_groups)
    resources_ok = _resources_cover(_strs(owner, "resources"), _strs(sub, "resources"))
    owner_urls = _strs(owner, "nonResourceURLs")
    urls_ok = all(any(_url_covers(o, u) for o in owner_urls)
                  for u in _strs(sub, "nonResourceURLs"))
    owner_names, sub_names = _strs(owner, "resourceNames"), _strs(sub, "resourceNames")
    # An owner limited to names covers only requests limited to those names.
    names_ok = not owner_names or (bool(sub_names) and set(sub_names) <= set(owner_names))
    return verbs_ok and groups_ok and resources_ok and urls_ok and names_ok


def covers(owner_rules: Iterable[Obj], servant_rules: Iterable[Obj]) -> tuple[bool, list[Obj]]:
    """Covers: whether the owner's rules allow everything the servant's do, and the
    broken-down servant rules that no owner rule covers."""
    owners = list(owner_rules)
    uncovered = [sub for rule in servant_rules for sub in breakdown_rule(rule)
                 if not any(_rule_covers(owner, sub) for owner in owners)]
    return not uncovered, uncovered


def confirm_no_escalation(owner_rules: Iterable[Obj], requested_rules: Iterable[Obj]
                          ) -> list[Obj]:
    """The requested rules (broken down) that the owner does not hold; empty when none."""
    return covers(owner_rules, requested_rules)[1]


# ---------------------------------------------------------------------------------------------
# Messages


def compact_rules(rules: Iterable[Obj]) -> list[Obj]:
    """CompactRules: rules of one group and one resource (and nothing else) that differ only
    in their verbs become one rule with all the verbs."""
    out: list[Obj] = []
    simple: dict[tuple[str, str], Obj] = {}
    for rule in rules:
        groups, resources = _strs(rule, "apiGroups"), _strs(rule, "resources")
        is_simple = (len(groups) == 1 and len(resources) == 1
                     and not _strs(rule, "resourceNames") and not _strs(rule, "nonResourceURLs"))
        if not is_simple:
            out.append(rule)
            continue
        key = (groups[0], resources[0])
        if key in simple:
            simple[key]["verbs"].extend(_strs(rule, "verbs"))
        else:
            merged = {"apiGroups": groups, "resources": resources, "verbs": _strs(rule, "verbs")}
            simple[key] = merged
            out.append(merged)
    return out


def compact_string(rule: Obj) -> str:
    """rbacv1helpers.CompactString: `{APIGroups:["apps"], Resources:["x"], Verbs:["get"]}`."""
    labels = {"apiGroups": "APIGroups", "resources": "Resources",
              "nonResourceURLs": "NonResourceURLs", "resourceNames": "ResourceNames",
              "verbs": "Verbs"}
    parts = [f"{labels[key]}:{go_quote_list(_strs(rule, key))}"
             for key in _RULE_FIELDS if _strs(rule, key)]
    return "{" + ", ".join(parts) + "}"


def escalation_message(user: UserInfo, uncovered: Iterable[Obj],
                       resolution_errors: Iterable[str] = ()) -> str:
    """ConfirmNoEscalation's error text."""
    missing = sorted({compact_string(r) for r in compact_rules(uncovered)})
    message = (f"user {go_quote(user.name)} (groups={go_quote_list(user.groups)}) is attempting "
               "to grant RBAC permissions not currently held:\n" + "\n".join(missing))
    errs = list(resolution_errors)
    if errs:
        # Upstream prints a one-element []error holding the resolver's aggregate error.
        message += f"; resolution errors: [{aggregate_message(errs)}]"
    return message


def _forbidden(plural: str, name: str, why: str) -> errors.Forbidden:
    """apierrors.NewForbidden for a `plural`.rbac.authorization.k8s.io object."""
    qualified = f"{plural}.{RBAC_GROUP}"
    subject = f"{qualified} {go_quote(name)}" if name else qualified
    details: dict[str, Any] = {"group": RBAC_GROUP, "kind": plural}
    if name:
        details["name"] = name
    return errors.Forbidden(f"{subject} is forbidden: {why}", details=details)


# ---------------------------------------------------------------------------------------------
# The checks the create and update paths run


def escalation_allowed(user: UserInfo) -> bool:
    """EscalationAllowed: system:masters is every loopback client and the cluster's admins;
    it may write any role or binding (it holds everything through cluster-admin anyway)."""
    return MASTERS in user.groups


def is_only_mutating_gc_fields(new: Obj, old: Obj) -> bool:
    """IsOnlyMutatingGCFields: a write that only changes finalizers or ownerReferences is the
    garbage collector's, and must go through whoever's rules the role holds."""
    def stripped(obj: Obj) -> Obj:
        md = obj.get("metadata")
        md = {k: v for k, v in (md if isinstance(md, dict) else {}).items()
              if k not in ("ownerReferences", "finalizers", "selfLink", "resourceVersion",
                           "managedFields", "generation")}
        return {**obj, "metadata": md}
    return stripped(new) == stripped(old)


def _name(obj: Obj) -> str:
    md = obj.get("metadata")
    return str(md.get("name") or "") if isinstance(md, dict) else ""


def _has_aggregation(role: Obj | None) -> bool:
    aggregation = (role or {}).get("aggregationRule")
    return isinstance(aggregation, dict) and bool(aggregation.get("clusterRoleSelectors"))


def check_role_write(user: UserInfo, role_obj: Obj, namespace: str, authorize: AuthorizeFn,
                     rules_for: RulesForFn, *, request_name: str = "",
                     old_obj: Obj | None = None) -> None:
    """Raise Forbidden unless `user` may write this Role or ClusterRole.

    `namespace` is the request's ("" for a ClusterRole); `request_name` is the name in the
    URL ("" on create, as upstream, so a name-limited `escalate` grant cannot create);
    `old_obj` is the stored object on update.
    """
    cluster = role_obj.get("kind") == "ClusterRole" or (not role_obj.get("kind") and
                                                        not namespace)
    plural = "clusterroles" if cluster else "roles"
    scope = "" if cluster else namespace
    if escalation_allowed(user):
        return
    escalate = Attributes(user=user, verb="escalate", resource_request=True, namespace=scope,
                          api_group=RBAC_GROUP, api_version="*", resource=plural,
                          name=request_name)
    if authorize(escalate)[0] is Decision.ALLOW:
        return
    if old_obj is not None and is_only_mutating_gc_fields(role_obj, old_obj):
        return
    owner, resolution_errors = rules_for(user, scope)
    uncovered = confirm_no_escalation(owner, [r for r in role_obj.get("rules") or []
                                              if isinstance(r, dict)])
    name = _name(role_obj)
    if uncovered:
        raise _forbidden(plural, name, escalation_message(user, uncovered, resolution_errors))
    if cluster and (_has_aggregation(role_obj) or _has_aggregation(old_obj)) and \
            confirm_no_escalation(owner, FULL_AUTHORITY):
        raise _forbidden(plural, name, "must have cluster-admin privileges to use the "
                                       "aggregationRule")


def check_binding_write(user: UserInfo, binding_obj: Obj, namespace: str,
                        authorize: AuthorizeFn, rules_for: RulesForFn,
                        get_role_rules: RoleRulesFn, *, old_obj: Obj | None = None) -> None:
    """Raise Forbidden unless `user` may write this RoleBinding or ClusterRoleBinding: they
    have `bind` on the referenced role, or already hold all of its rules. `namespace` is the
    binding's ("" for a ClusterRoleBinding). NotFound from `get_role_rules` propagates."""
    cluster = binding_obj.get("kind") == "ClusterRoleBinding" or (
        not binding_obj.get("kind") and not namespace)
    plural = "clusterrolebindings" if cluster else "rolebindings"
    scope = "" if cluster else namespace
    if escalation_allowed(user):
        return
    if old_obj is not None and is_only_mutating_gc_fields(binding_obj, old_obj):
        return
    raw_ref = binding_obj.get("roleRef")
    ref: Obj = raw_ref if isinstance(raw_ref, dict) else {}
    kind = ref.get("kind")
    if kind in ("Role", "ClusterRole"):
        # BindingAuthorized: checked in the binding's namespace, so `bind` may be delegated
        # for one namespace only.
        bind = Attributes(user=user, verb="bind", resource_request=True, namespace=scope,
                          api_group=str(ref.get("apiGroup") or ""),
                          resource="roles" if kind == "Role" else "clusterroles",
                          name=str(ref.get("name") or ""))
        if authorize(bind)[0] is Decision.ALLOW:
            return
    role_rules = get_role_rules(ref, scope)
    owner, resolution_errors = rules_for(user, scope)
    uncovered = confirm_no_escalation(owner, role_rules)
    if uncovered:
        raise _forbidden(plural, _name(binding_obj),
                         escalation_message(user, uncovered, resolution_errors))
