"""The labels and annotations the kubelet puts on sandboxes and containers, and reads back.

They are upstream's (`pkg/kubelet/kuberuntime/labels.go`): labels identify the pod and the
container (and are what the kubelet lists by), annotations carry what the kubelet needs to
know about a container it did not start in this life — its spec hash, restart count, grace
period and preStop hook — so that a restarted kubelet (or one whose pod is gone from the
API) handles it exactly as the one that created it would have.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

Obj = dict[str, Any]

POD_NAME_LABEL = "io.kubernetes.pod.name"
POD_NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
POD_UID_LABEL = "io.kubernetes.pod.uid"
CONTAINER_NAME_LABEL = "io.kubernetes.container.name"
# Not upstream: marks the kubelet's containers of init containers, so that a kubelet whose
# pod is gone from every source can still tell them apart (upstream keeps no such label).
CONTAINER_TYPE_LABEL = "io.kubelite.container.type"
CONTAINER_TYPE_INIT = "init"
CONTAINER_TYPE_APP = "app"

CONTAINER_HASH_ANNOTATION = "io.kubernetes.container.hash"
RESTART_COUNT_ANNOTATION = "io.kubernetes.container.restartCount"
TERMINATION_MESSAGE_PATH_ANNOTATION = "io.kubernetes.container.terminationMessagePath"
TERMINATION_MESSAGE_POLICY_ANNOTATION = "io.kubernetes.container.terminationMessagePolicy"
GRACE_PERIOD_ANNOTATION = "io.kubernetes.pod.terminationGracePeriod"
PRESTOP_ANNOTATION = "io.kubernetes.container.preStopHandler"
PORTS_ANNOTATION = "io.kubernetes.container.ports"

# Static pods (pkg/kubelet/types/pod_update.go).
CONFIG_HASH_ANNOTATION = "kubernetes.io/config.hash"
CONFIG_MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
CONFIG_SOURCE_ANNOTATION = "kubernetes.io/config.source"
CONFIG_SEEN_ANNOTATION = "kubernetes.io/config.seen"


def pod_labels(pod: Obj) -> dict[str, str]:
    """Sandbox labels: the pod's own labels plus the identifying ones."""
    md = pod["metadata"]
    labels = {str(k): str(v) for k, v in (md.get("labels") or {}).items()}
    labels.update({POD_NAME_LABEL: md["name"], POD_NAMESPACE_LABEL: md.get("namespace", ""),
                   POD_UID_LABEL: md["uid"]})
    return labels


def container_labels(pod: Obj, container: Obj, init: bool) -> dict[str, str]:
    md = pod["metadata"]
    return {POD_NAME_LABEL: md["name"], POD_NAMESPACE_LABEL: md.get("namespace", ""),
            POD_UID_LABEL: md["uid"], CONTAINER_NAME_LABEL: container["name"],
            CONTAINER_TYPE_LABEL: CONTAINER_TYPE_INIT if init else CONTAINER_TYPE_APP}


def container_hash(container: Obj) -> str:
    """A stable hash of a container's spec: a changed hash means the container must be
    recreated. Stable across kubelet restarts (sorted JSON), so re-adoption restarts nothing.
    Fields the kubelet may not act on by restarting (resources can be resized in place
    upstream) are still included: kubelite does not resize in place."""
    data = json.dumps(container, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def container_annotations(pod: Obj, container: Obj, restart_count: int) -> dict[str, str]:
    spec = pod.get("spec") or {}
    out = {
        CONTAINER_HASH_ANNOTATION: container_hash(container),
        RESTART_COUNT_ANNOTATION: str(restart_count),
        TERMINATION_MESSAGE_PATH_ANNOTATION: str(container.get("terminationMessagePath")
                                                 or "/dev/termination-log"),
        TERMINATION_MESSAGE_POLICY_ANNOTATION: str(container.get("terminationMessagePolicy")
                                                   or "File"),
    }
    grace = spec.get("terminationGracePeriodSeconds")
    if isinstance(grace, int):
        out[GRACE_PERIOD_ANNOTATION] = str(grace)
    pre_stop = (container.get("lifecycle") or {}).get("preStop")
    if pre_stop:
        out[PRESTOP_ANNOTATION] = json.dumps(pre_stop, sort_keys=True)
    if container.get("ports"):
        out[PORTS_ANNOTATION] = json.dumps(container["ports"], sort_keys=True)
    return out


def int_annotation(annotations: Mapping[str, str], key: str, default: int = 0) -> int:
    try:
        return int(annotations.get(key, default))
    except (TypeError, ValueError):
        return default


def json_annotation(annotations: Mapping[str, str], key: str) -> Any:
    text = annotations.get(key)
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def is_mirror_pod(pod: Obj) -> bool:
    return CONFIG_MIRROR_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {})


def is_static_pod(pod: Obj) -> bool:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return annotations.get(CONFIG_SOURCE_ANNOTATION, "api") not in ("api", "")
