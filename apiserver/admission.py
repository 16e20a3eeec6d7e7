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
