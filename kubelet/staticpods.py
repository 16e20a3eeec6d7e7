"""Static pods from `--pod-manifest-path`, and their mirror pods in the API (upstream
pkg/kubelet/config/file.go, common.go; pkg/kubelet/pod/mirror_client.go).

The directory is read every few seconds (upstream re-lists every 20 s besides inotify).
Each `*.yaml`, `*.yml` or `*.json` file (dotfiles ignored) holds one Pod. The kubelet runs it
under a UID hashed from the manifest, the node and the file (so an edited manifest is a new
pod, and the same file gives the same UID after a restart), named `<name>-<node>`, in
namespace `default` unless it says otherwise, with `spec.nodeName` set, API defaults
applied, a toleration of every NoExecute taint, and the annotations
`kubernetes.io/config.hash` (= the UID), `kubernetes.io/config.source: file`,
`kubernetes.io/config.seen`.

The mirror pod is the static pod's reflection in the API, so `kubectl get pods` shows it: the
same metadata and spec, annotated `kubernetes.io/config.mirror: <hash>` and owned by the
Node. The kubelet never runs a mirror pod; it recreates one that is deleted or whose hash
is stale, and deletes mirror pods whose static pod is gone. Static pods' statuses are
written to their mirror pods.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import yaml

from api.defaults import apply_defaults
from api.meta import now_rfc3339
from kubelet import labels as L

log = logging.getLogger(__name__)
Obj = dict[str, Any]
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
POLL_PERIOD = 3.0


def static_pod_uid(manifest: Obj, node_name: str, source: str) -> str:
    h = hashlib.md5(usedforsecurity=False)
    h.update(json.dumps(manifest, sort_keys=True, default=str).encode())
    h.update(f"host:{node_name}".encode())
    h.update(f"file:{source}".encode())
    return h.hexdigest()


def static_pod(manifest: Obj, node_name: str, source: str) -> Obj:
    """The pod the kubelet runs for one manifest (raises ValueError for a bad one)."""
    if not isinstance(manifest, dict) or manifest.get("kind", "Pod") != "Pod":
        raise ValueError("a static pod manifest must be one Pod")
    md = manifest.get("metadata") or {}
    if not md.get("name"):
        raise ValueError("the Pod has no metadata.name")
    if not isinstance(manifest.get("spec"), dict) or not manifest["spec"].get("containers"):
        raise ValueError("the Pod has no containers")
    uid = static_pod_uid(manifest, node_name, source)
    pod = copy.deepcopy(manifest)
    pod["apiVersion"], pod["kind"] = "v1", "Pod"
    md = pod.setdefault("metadata", {})
    md["name"] = f"{md['name']}-{node_name}"
    md["namespace"] = md.get("namespace") or "default"
    md["uid"] = uid
    for key in ("resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
                "managedFields", "selfLink"):
        md.pop(key, None)
    annotations = dict(md.get("annotations") or {})
    annotations[L.CONFIG_HASH_ANNOTATION] = uid
    annotations[L.CONFIG_SOURCE_ANNOTATION] = "file"
    annotations[L.CONFIG_SEEN_ANNOTATION] = now_rfc3339()
    md["annotations"] = annotations
    spec = pod["spec"]
    spec["nodeName"] = node_name
    tolerations = list(spec.get("tolerations") or [])
    if {"operator": "Exists", "effect": "NoExecute"} not in tolerations:
        tolerations.append({"operator": "Exists", "effect": "NoExecute"})
    spec["tolerations"] = tolerations
    apply_defaults("pods", pod)
    pod.pop("status", None)
    return pod


def read_manifests(directory: Path, node_name: str) -> tuple[dict[str, Obj], list[str]]:
    """uid -> static pod for every good manifest, and one message per bad file."""
    pods: dict[str, Obj] = {}
    errors: list[str] = []
    if not directory.is_dir():
        return pods, errors
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or path.suffix not in MANIFEST_SUFFIXES \
                or not path.is_file():
            continue
        try:
            manifest = yaml.safe_load(path.read_text())
            pod = static_pod(manifest, node_name, str(path))
        except (OSError, yaml.YAMLError, ValueError) as e:
            errors.append(f"{path}: {e}")
            continue
        pods[pod["metadata"]["uid"]] = pod
    return pods, errors


def mirror_pod(pod: Obj, node_name: str, node_uid: str) -> Obj:
    """The API object mirroring static pod `pod`."""
    md = pod["metadata"]
    annotations = dict(md.get("annotations") or {})
    annotations[L.CONFIG_MIRROR_ANNOTATION] = md["uid"]
    meta: Obj = {"name": md["name"], "namespace": md["namespace"],
                 "labels": dict(md.get("labels") or {}), "annotations": annotations}
    if node_uid:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node_name,
                                    "uid": node_uid, "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": copy.deepcopy(pod["spec"])}


def mirror_hash(pod: Obj) -> str:
    return str(((pod.get("metadata") or {}).get("annotations") or {})
               .get(L.CONFIG_MIRROR_ANNOTATION, ""))
