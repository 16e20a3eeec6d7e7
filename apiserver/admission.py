"""Mutating admission run on create, after defaulting and before validation.

DefaultTolerationSeconds (as upstream's plugin): every pod tolerates the not-ready and
unreachable NoExecute taints for a bounded time, so a node outage evicts its pods after
`--default-not-ready-toleration-seconds` / `--default-unreachable-toleration-seconds`
(300 s) instead of at once.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"


def _tolerates(tolerations: list[Any], key: str) -> bool:
    for t in tolerations:
        if not isinstance(t, dict):
            continue
        effect_ok = t.get("effect") in (None, "", "NoExecute")
        key_ok = t.get("key") == key or (not t.get("key") and t.get("operator") == "Exists")
        if effect_ok and key_ok:
            return True
    return False


def default_toleration_seconds(pod: Obj, not_ready_seconds: int,
                               unreachable_seconds: int) -> None:
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    tolerations = spec.get("tolerations")
    if tolerations is None:
        tolerations = []
    if not isinstance(tolerations, list):
        return  # validation reports it
    for key, seconds in ((NOT_READY, not_ready_seconds), (UNREACHABLE, unreachable_seconds)):
        if not _tolerates(tolerations, key):
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": seconds})
    spec["tolerations"] = tolerations


class Admission:
    """The admission plugins that need to know who asks or to read other objects, run by
    the Store around every write (upstream's admission chain, in its order): ServiceAccount
    (mutating: pods run as an account, with its token mounted), then PodSecurity,
    NodeRestriction and RBAC's escalation check (validating). The user comes from
    `CURRENT_USER`, set by the access filter; internal writes (no user) pass the
    user-dependent checks."""

    def __init__(self, lookup: Any, escalation: Any = None) -> None:
        self.lookup = lookup
        self.escalation = escalation

    async def mutate(self, resource: str, operation: str, obj: Obj) -> None:
        if resource == "pods" and operation == "CREATE" and isinstance(obj.get("spec"), dict):
            # (a malformed spec is validation's to report)
            from apiserver.auth import sa_admission
            ns = str(obj["metadata"].get("namespace") or "")
            sa = await self.lookup.get_service_account(ns, sa_admission.service_account_name(obj))
            sa_admission.admit_pod(obj, sa)
            # A missing account is not refused here (upstream refuses it): the kubelet's
            # token request fails until the account exists, and the pod waits for it.
            if sa is not None or sa_admission.is_mirror_pod(obj):
                sa_admission.validate_pod_service_account(obj, sa)

    async def validate(self, resource: str, operation: str, subresource: str, namespace: str,
                       name: str, new: Obj | None, old: Obj | None) -> None:
        from apiserver.auth import noderestriction, podsecurity
        from apiserver.auth.context import current_user
        # PodSecurity judges every writer, internal ones included (as upstream's plugin).
        await podsecurity.admit(self.lookup, resource, operation, subresource, namespace, name,
                                new, old)
        user = current_user()
        if user is None:
            return
        await noderestriction.admit(user, operation, resource, subresource, namespace, name,
                                    new, old, self.lookup)
        if self.escalation is not None and new is not None and not subresource:
            await self.escalation(user, resource, namespace,
                                  name if operation != "CREATE" else "", new, old)
