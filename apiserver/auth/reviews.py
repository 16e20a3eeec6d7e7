"""The review kinds: questions to the apiserver's own authenticator and authorizer, answered
from the request and never stored (upstream's tokenreview, subjectaccessreview,
selfsubjectaccessreview, localsubjectaccessreview, selfsubjectrulesreview and
selfsubjectreview registries).

kubectl auth can-i (SelfSubjectAccessReview, --list: SelfSubjectRulesReview), kubectl auth
whoami (SelfSubjectReview) and the kubelets (TokenReview, SubjectAccessReview for callers of
their own API) use them.
"""

from __future__ import annotations

from typing import Any

from api import errors
from api.errors import Cause, field_cause
from api.resources import Resource
from apiserver.auth.attributes import (
    Attributes,
    Decision,
    RuleResolver,
    UserInfo,
)
from apiserver.auth.authn import Authenticator
from apiserver.auth.authz import Union

Obj = dict[str, Any]


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(v) for v in value if isinstance(v, str))


def _user_of_spec(spec: Obj) -> UserInfo:
    extra = spec.get("extra") if isinstance(spec.get("extra"), dict) else {}
    return UserInfo(str(spec.get("user") or ""), str(spec.get("uid") or ""),
                    _strings(spec.get("groups")),
                    {str(k): _strings(v) for k, v in (extra or {}).items()})


def _invalid(kind: str, causes: list[Cause]) -> errors.Invalid:
    return errors.Invalid.of(kind, "", causes)


def _attributes(kind: str, spec: Obj, user: UserInfo, namespace: str | None) -> Attributes:
    resource = spec.get("resourceAttributes")
    non_resource = spec.get("nonResourceAttributes")
    if bool(resource) == bool(non_resource):
        raise _invalid(kind, [field_cause(
            "spec.resourceAttributes", "Invalid value: \"null\": exactly one of "
            "nonResourceAttributes or resourceAttributes must be specified")])
    if resource:
        if not isinstance(resource, dict):
            raise errors.BadRequest("spec.resourceAttributes must be an object")
        ns = str(resource.get("namespace") or "")
        if namespace is not None and ns != namespace:
            raise _invalid(kind, [field_cause(
                "spec.resourceAttributes.namespace",
                f'Invalid value: "{ns}": must match metadata.namespace')])
        return Attributes(user, str(resource.get("verb") or ""), True, namespace=ns,
                          api_group=str(resource.get("group") or ""),
                          api_version=str(resource.get("version") or ""),
                          resource=str(resource.get("resource") or ""),
                          subresource=str(resource.get("subresource") or ""),
                          name=str(resource.get("name") or ""))
    if not isinstance(non_resource, dict):
        raise errors.BadRequest("spec.nonResourceAttributes must be an object")
    return Attributes(user, str(non_resource.get("verb") or ""), False,
                      path=str(non_resource.get("path") or ""))


def _access_status(authorizer: Union, attrs: Attributes) -> Obj:
    decision, reason = authorizer.authorize(attrs)
    status: Obj = {"allowed": decision is Decision.ALLOW}
    if decision is Decision.DENY:
        status["denied"] = True
    if reason:
        status["reason"] = reason
    return status


def _answer(body: Obj, res: Resource, status: Obj) -> Obj:
    raw_md = body.get("metadata")
    metadata: Obj = dict(raw_md) if isinstance(raw_md, dict) else {}
    metadata.setdefault("creationTimestamp", None)
    return {"kind": res.kind, "apiVersion": res.api_version, "metadata": metadata,
            "spec": body.get("spec") or {}, "status": status}


def _rule(rule: Any, fields: dict[str, str]) -> Obj:
    out: Obj = {}
    for attr, key in fields.items():
        value = list(getattr(rule, attr))
        if value or key == "verbs":
            out[key] = value
    return out


async def review(res: Resource, body: Any, namespace: str | None, requester: UserInfo,
                 authenticator: Authenticator, authorizer: Union,
                 rules: RuleResolver | None) -> Obj:
    """The answered review object for a POST of `body` to the `res` collection."""
    if not isinstance(body, dict):
        raise errors.BadRequest(f"the body of a {res.kind} must be an object")
    kind = body.get("kind")
    if kind not in (None, res.kind):
        raise errors.BadRequest(f"expected kind {res.kind}, got {kind}")
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    spec = spec or {}
    plural = res.plural
    if plural == "tokenreviews":
        token = spec.get("token")
        if not isinstance(token, str) or not token:
            raise _invalid(res.kind, [field_cause("spec.token", "Required value")])
        user = await authenticator.authenticate_token(token)
        if user is None:
            return _answer(body, res, {"authenticated": False, "user": {},
                                       "error": "token is invalid or has expired"})
        status: Obj = {"authenticated": True, "user": user.as_review_user()}
        audiences = _strings(spec.get("audiences"))
        if audiences:
            status["audiences"] = list(audiences)
        return _answer(body, res, status)
    if plural == "selfsubjectreviews":
        return _answer(body, res, {"userInfo": requester.as_review_user()})
    if plural in ("subjectaccessreviews", "localsubjectaccessreviews"):
        subject = _user_of_spec(spec)
        if not subject.name and not subject.groups:
            raise _invalid(res.kind, [field_cause(
                "spec.user", 'Invalid value: "": at least one of user or group must be '
                'specified')])
        attrs = _attributes(res.kind, spec, subject,
                            namespace if plural == "localsubjectaccessreviews" else None)
        return _answer(body, res, _access_status(authorizer, attrs))
    if plural == "selfsubjectaccessreviews":
        return _answer(body, res, _access_status(
            authorizer, _attributes(res.kind, spec, requester, None)))
    if plural == "selfsubjectrulesreviews":
        ns = str(spec.get("namespace") or "")
        if rules is None:
            return _answer(body, res, {"resourceRules": [], "nonResourceRules": [],
                                       "incomplete": True,
                                       "evaluationError": "no rule resolver (RBAC is off)"})
        resource_rules, non_resource_rules, incomplete, error = rules.rules_for(requester, ns)
        status = {
            "resourceRules": [_rule(r, {"verbs": "verbs", "api_groups": "apiGroups",
                                        "resources": "resources",
                                        "resource_names": "resourceNames"})
                              for r in resource_rules],
            "nonResourceRules": [_rule(r, {"verbs": "verbs",
                                           "non_resource_urls": "nonResourceURLs"})
                                 for r in non_resource_rules],
            "incomplete": incomplete}
        if error:
            status["evaluationError"] = error
        return _answer(body, res, status)
    raise errors.MethodNotAllowed("the server does not allow this method on the requested "
                                  "resource")
