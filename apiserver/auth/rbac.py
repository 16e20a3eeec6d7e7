"""The RBAC authorizer (upstream plugin/pkg/auth/authorizer/rbac and
pkg/registry/rbac/validation/rule.go): who is bound to which roles, and whether a role's
rules allow a request.

Roles and bindings are plain dicts read from an `RBACSource` (the apiserver's watch caches;
`MemorySource` in tests). Authorizing is on the path of every request, so the work is done
once per generation of the RBAC objects: the rules that apply to a (user, groups, namespace)
are resolved and compiled on first use, and decisions are remembered per request shape until
any Role, ClusterRole or binding changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from api import errors
from apiserver.auth.attributes import (
    Attributes,
    Decision,
    NonResourceRule,
    ResourceRule,
    UserInfo,
    service_account_username,
)

Obj = dict[str, Any]

RBAC_GROUP = "rbac.authorization.k8s.io"
ALL = "*"  # VerbAll, APIGroupAll, ResourceAll and NonResourceAll are all "*"

# Caches are dropped whole when they reach these sizes: names in requests are unbounded
# (every GET of a new pod is a new key), and a stale miss only costs one evaluation.
_MAX_DECISIONS = 65536
_MAX_SUBJECTS = 4096


class RBACSource(Protocol):
    """Read access to the four RBAC kinds, synchronously (a cache, never a network call)."""

    def get_role(self, namespace: str, name: str) -> Obj | None: ...

    def get_cluster_role(self, name: str) -> Obj | None: ...

    def role_bindings(self, namespace: str) -> Iterable[Obj]: ...

    def cluster_role_bindings(self) -> Iterable[Obj]: ...

    def generation(self) -> int:
        """A number that changes whenever any Role, ClusterRole or binding changes."""
        ...


# ---------------------------------------------------------------------------------------------
# Go-style quoting, so messages match upstream's %q byte for byte.


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def go_quote(value: str) -> str:
    """strconv.Quote: what Go's %q prints for a string."""
    out = ['"']
    for ch in value:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def go_quote_list(values: Iterable[str]) -> str:
    """What Go's %q prints for a []string: `["a" "b"]`."""
    return "[" + " ".join(go_quote(v) for v in values) + "]"


def aggregate_message(messages: Iterable[str]) -> str:
    """utilerrors.NewAggregate(...).Error(): one message bare, several deduplicated in []."""
    items = list(messages)
    if len(items) == 1:
        return items[0]
    unique = list(dict.fromkeys(items))
    if len(unique) == 1:
        return unique[0]
    return "[" + ", ".join(unique) + "]"


# ---------------------------------------------------------------------------------------------
# Rules


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A PolicyRule with its lists turned into sets once (VerbMatches, APIGroupMatches,
    ResourceMatches, ResourceNameMatches and NonResourceURLMatches of evaluation_helpers.go)."""

    rule: Obj
    verbs: frozenset[str]
    groups: frozenset[str]
    resources: frozenset[str]
    star_subresources: frozenset[str]  # "x" for every "*/x" entry
    names: frozenset[str]
    urls: frozenset[str]
    url_prefixes: tuple[str, ...]

    @classmethod
    def of(cls, rule: Obj) -> CompiledRule:
        resources = _strs(rule.get("resources"))
        urls = _strs(rule.get("nonResourceURLs"))
        return cls(
            rule=rule,
            verbs=frozenset(_strs(rule.get("verbs"))),
            groups=frozenset(_strs(rule.get("apiGroups"))),
            resources=frozenset(resources),
            star_subresources=frozenset(r[2:] for r in resources if r.startswith("*/")),
            names=frozenset(_strs(rule.get("resourceNames"))),
            urls=frozenset(urls),
            url_prefixes=tuple(u.rstrip("*") for u in urls if u.endswith("*")),
        )

    def allows(self, attrs: Attributes) -> bool:
        if ALL not in self.verbs and attrs.verb not in self.verbs:
            return False
        if not attrs.resource_request:
            path = attrs.path
            return ALL in self.urls or path in self.urls or \
                any(path.startswith(p) for p in self.url_prefixes)
        if ALL not in self.groups and attrs.api_group not in self.groups:
            return False
        if ALL not in self.resources:
            sub = attrs.subresource
            combined = f"{attrs.resource}/{sub}" if sub else attrs.resource
            if combined not in self.resources and not (sub and sub in self.star_subresources):
                return False
        # A rule naming objects never matches a request without a name (list, create).
        return not self.names or attrs.name in self.names


def rule_allows(attrs: Attributes, rule: Obj) -> bool:
    """RuleAllows: whether one PolicyRule dict allows the request."""
    return CompiledRule.of(rule).allows(attrs)


def rules_allow(attrs: Attributes, rules: Iterable[Obj]) -> bool:
    """RulesAllow: whether any of the rules allows the request (the Node authorizer's use)."""
    return any(rule_allows(attrs, r) for r in rules)


# ---------------------------------------------------------------------------------------------
# Subjects and role references


def _meta(obj: Obj) -> Obj:
    md = obj.get("metadata")
    return md if isinstance(md, dict) else {}


def _dicts(value: Any) -> Iterator[Obj]:
    if isinstance(value, list):
        yield from (v for v in value if isinstance(v, dict))


def subject_applies(user: UserInfo, subject: Obj, namespace: str) -> bool:
    """appliesToUser: a ServiceAccount subject without a namespace means the binding's own."""
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        sa_namespace = subject.get("namespace") or namespace
        if not sa_namespace or not isinstance(sa_namespace, str) or not isinstance(name, str):
            return False
        return user.name == service_account_username(sa_namespace, name)
    return False


def _applying_subject(user: UserInfo, binding: Obj, namespace: str) -> Obj | None:
    for subject in _dicts(binding.get("subjects")):
        if subject_applies(user, subject, namespace):
            return subject
    return None


def _describe_subject(subject: Obj, binding_namespace: str) -> str:
    kind, name = str(subject.get("kind") or ""), str(subject.get("name") or "")
    if kind == "ServiceAccount":
        ns = str(subject.get("namespace") or binding_namespace)
        return f"{kind} {go_quote(name + '/' + ns)}"
    return f"{kind} {go_quote(name)}"


def _describe_binding(binding: Obj, subject: Obj, namespace: str) -> str:
    raw_ref = binding.get("roleRef")
    ref: Obj = raw_ref if isinstance(raw_ref, dict) else {}
    name = str(_meta(binding).get("name") or "")
    what = f"{ref.get('kind', '')} {go_quote(str(ref.get('name') or ''))}"
    if namespace:
        return (f"RoleBinding {go_quote(name + '/' + namespace)} of {what} to "
                f"{_describe_subject(subject, namespace)}")
    return f"ClusterRoleBinding {go_quote(name)} of {what} to {_describe_subject(subject, '')}"


def _rules_of(role: Obj) -> list[Obj]:
    return list(_dicts(role.get("rules")))


# ---------------------------------------------------------------------------------------------
# The authorizer


@dataclass(frozen=True, slots=True)
class _Resolved:
    """The rules that apply to one (user, groups, namespace), with where each came from."""

    rules: tuple[tuple[CompiledRule, str], ...]
    errors: tuple[str, ...]


class RBACAuthorizer:
    """Authorizer and RuleResolver over an RBACSource."""

    def __init__(self, source: RBACSource) -> None:
        self.source = source
        self._generation: int | None = None
        self._decisions: dict[tuple[Any, ...], tuple[Decision, str]] = {}
        self._resolved: dict[tuple[str, tuple[str, ...], str], _Resolved] = {}

    # -- caching ------------------------------------------------------------------------------

    def _fresh(self) -> None:
        generation = self.source.generation()
        if generation != self._generation:
            # Any RBAC write may change any decision; the next requests rebuild what they use.
            self._decisions.clear()
            self._resolved.clear()
            self._generation = generation

    def _resolve(self, user: UserInfo, namespace: str) -> _Resolved:
        key = (user.name, user.groups, namespace)
        found = self._resolved.get(key)
        if found is None:
            if len(self._resolved) >= _MAX_SUBJECTS:
                self._resolved.clear()
            found = self._resolved[key] = self._visit(user, namespace)
        return found

    def _visit(self, user: UserInfo, namespace: str) -> _Resolved:
        """VisitRulesFor: cluster role bindings first, then the namespace's role bindings."""
        rules: list[tuple[CompiledRule, str]] = []
        errs: list[str] = []
        scopes: list[tuple[str, Iterable[Obj]]] = [("", self.source.cluster_role_bindings())]
        if namespace:
            scopes.append((namespace, self.source.role_bindings(namespace)))
        for scope, bindings in scopes:
            for binding in bindings:
                subject = _applying_subject(user, binding, scope)
                if subject is None:
                    continue
                ref = binding.get("roleRef")
                try:
                    role_rules = self._ref_rules(ref if isinstance(ref, dict) else {}, scope)
                except LookupError as e:
                    errs.append(str(e.args[0]))
                    continue
                source = _describe_binding(binding, subject, scope)
                rules.extend((CompiledRule.of(r), source) for r in role_rules)
        return _Resolved(tuple(rules), tuple(errs))

    def _ref_rules(self, ref: Obj, namespace: str) -> list[Obj]:
        """GetRoleReferenceRules, with the listers' error messages (LookupError)."""
        kind, name = ref.get("kind"), str(ref.get("name") or "")
        if kind == "Role":
            role = self.source.get_role(namespace, name) if namespace else None
            if role is None:
                raise LookupError(f"role.{RBAC_GROUP} {go_quote(name)} not found")
            return _rules_of(role)
        if kind == "ClusterRole":
            cluster_role = self.source.get_cluster_role(name)
            if cluster_role is None:
                raise LookupError(f"clusterrole.{RBAC_GROUP} {go_quote(name)} not found")
            return _rules_of(cluster_role)
        raise LookupError(f"unsupported role reference kind: {go_quote(str(kind or ''))}")

    # -- Authorizer ---------------------------------------------------------------------------

    def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        self._fresh()
        user = attrs.user
        key = (user.name, user.groups, attrs.verb, attrs.resource_request, attrs.namespace,
               attrs.api_group, attrs.resource, attrs.subresource, attrs.name, attrs.path)
        cached = self._decisions.get(key)
        if cached is not None:
            return cached
        resolved = self._resolve(user, attrs.namespace)
        decision: tuple[Decision, str] = (Decision.NO_OPINION, "")
        for rule, source in resolved.rules:
            if rule.allows(attrs):
                decision = (Decision.ALLOW, f"RBAC: allowed by {source}")
                break
        else:
            if resolved.errors:
                decision = (Decision.NO_OPINION, f"RBAC: {aggregate_message(resolved.errors)}")
        if len(self._decisions) >= _MAX_DECISIONS:
            self._decisions.clear()
        self._decisions[key] = decision
        return decision

    # -- RuleResolver -------------------------------------------------------------------------

    def policy_rules_for(self, user: UserInfo, namespace: str) -> tuple[list[Obj], list[str]]:
        """RulesFor: the PolicyRule dicts that apply to `user` in `namespace` (cluster-wide
        ones included; only those with namespace ""), and the resolution errors met."""
        self._fresh()
        resolved = self._resolve(user, namespace)
        return [rule.rule for rule, _ in resolved.rules], list(resolved.errors)

    def rules_for(self, user: UserInfo, namespace: str
                  ) -> tuple[list[ResourceRule], list[NonResourceRule], bool, str]:
        rules, errs = self.policy_rules_for(user, namespace)
        resource_rules: list[ResourceRule] = []
        non_resource_rules: list[NonResourceRule] = []
        for rule in rules:
            verbs = _strs(rule.get("verbs"))
            if _strs(rule.get("resources")):
                resource_rules.append(ResourceRule(
                    verbs=verbs, api_groups=_strs(rule.get("apiGroups")),
                    resources=_strs(rule.get("resources")),
                    resource_names=_strs(rule.get("resourceNames"))))
            if _strs(rule.get("nonResourceURLs")):
                non_resource_rules.append(NonResourceRule(
                    verbs=verbs, non_resource_urls=_strs(rule.get("nonResourceURLs"))))
        # Upstream's RBAC never calls its list incomplete; resolution errors are reported.
        return resource_rules, non_resource_rules, False, aggregate_message(errs) if errs else ""

    def role_ref_rules(self, role_ref: Obj, namespace: str) -> list[Obj]:
        """The rules of the role a binding in `namespace` ("" for a ClusterRoleBinding)
        refers to; NotFound as the registry words it when the role does not exist."""
        self._fresh()
        kind, name = role_ref.get("kind"), str(role_ref.get("name") or "")
        try:
            return self._ref_rules(role_ref, namespace)
        except LookupError as e:
            if kind in ("Role", "ClusterRole"):
                plural = "roles" if kind == "Role" else "clusterroles"
                raise errors.NotFound.of(f"{plural}.{RBAC_GROUP}", name) from None
            raise errors.InternalError(str(e.args[0])) from None


# ---------------------------------------------------------------------------------------------
# Forbidden


def forbidden_message(attrs: Attributes, reason: str) -> str:
    """responsewriters.forbiddenMessage, with `: <reason>` when an authorizer gave one."""
    username = go_quote(attrs.user.name)
    if not attrs.resource_request:
        message = f"User {username} cannot {attrs.verb} path {go_quote(attrs.path)}"
    else:
        resource = attrs.resource
        if attrs.subresource:
            resource = f"{resource}/{attrs.subresource}"
        message = (f"User {username} cannot {attrs.verb} resource {go_quote(resource)} in API "
                   f"group {go_quote(attrs.api_group)}")
        if attrs.namespace:
            message += f" in the namespace {go_quote(attrs.namespace)}"
        else:
            message += " at the cluster scope"
    return f"{message}: {reason}" if reason else message


def forbidden_error(attrs: Attributes, reason: str) -> errors.Forbidden:
    """The 403 Status upstream's authorization filter writes (apierrors.NewForbidden of the
    requested group-resource and name, wrapping `forbidden_message`)."""
    message = forbidden_message(attrs, reason)
    details: dict[str, Any] = {}
    if attrs.resource_request and attrs.resource:
        qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
        if attrs.name:
            text = f"{qualified} {go_quote(attrs.name)} is forbidden: {message}"
            details["name"] = attrs.name
        else:
            text = f"{qualified} is forbidden: {message}"
        if attrs.api_group:
            details["group"] = attrs.api_group
        details["kind"] = attrs.resource
    else:
        text = f"forbidden: {message}"
    return errors.Forbidden(text, details=details)


# ---------------------------------------------------------------------------------------------
# An in-memory source, for tests and for tools that evaluate policy offline.


_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")


class MemorySource:
    """RBACSource over dicts held here; every put or delete is a new generation."""

    def __init__(self, objects: Iterable[Obj] = ()) -> None:
        self._objects: dict[tuple[str, str, str], Obj] = {}
        self._generation = 0
        for obj in objects:
            self.put(obj)

    @staticmethod
    def _key(kind: str, namespace: str, name: str) -> tuple[str, str, str]:
        if kind not in _KINDS:
            raise ValueError(f"not an RBAC kind: {kind!r}")
        return kind, namespace, name

    def put(self, obj: Obj) -> None:
        md = _meta(obj)
        key = self._key(str(obj.get("kind")), str(md.get("namespace") or ""),
                        str(md.get("name") or ""))
        self._objects[key] = obj
        self._generation += 1

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self._objects.pop(self._key(kind, namespace, name), None)
        self._generation += 1

    def get_role(self, namespace: str, name: str) -> Obj | None:
        return self._objects.get(("Role", namespace, name))

    def get_cluster_role(self, name: str) -> Obj | None:
        return self._objects.get(("ClusterRole", "", name))

    def role_bindings(self, namespace: str) -> list[Obj]:
        return [o for (k, ns, _), o in self._objects.items()
                if k == "RoleBinding" and ns == namespace]

    def cluster_role_bindings(self) -> list[Obj]:
        return [o for (k, _, _), o in self._objects.items() if k == "ClusterRoleBinding"]

    def cluster_roles(self) -> list[Obj]:
        return [o for (k, _, _), o in self._objects.items() if k == "ClusterRole"]

    def generation(self) -> int:
        return self._generation
