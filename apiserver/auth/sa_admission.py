"""The ServiceAccount admission plugin (upstream plugin/pkg/admission/serviceaccount), for
pods being created.

Mutating (`admit_pod`): a pod without a service account gets `default`; unless automount is
off (the pod's `automountServiceAccountToken`, else the ServiceAccount's), every container
and init container that has nothing at /var/run/secrets/kubernetes.io/serviceaccount gets
the projected `kube-api-access-<random>` volume mounted there read-only — a bound token, the
cluster CA from the `kube-root-ca.crt` ConfigMap, and the namespace. The ServiceAccount's
imagePullSecrets are copied to a pod that names none. Mirror pods are left alone.

Validating (`validate_pod_service_account`): the service account must exist; mirror pods
may reference no service account, no Secret and no token projection.
"""

from __future__ import annotations

import secrets
from typing import Any

from api.errors import Forbidden

Obj = dict[str, Any]

DEFAULT_SERVICE_ACCOUNT_NAME = "default"
TOKEN_VOLUME_PREFIX = "kube-api-access-"
DEFAULT_API_TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
PROJECTED_DEFAULT_MODE = 0o644  # 420, set explicitly as upstream does
WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS = 60 * 60 + 7
# utilrand's alphabet: no vowels, no look-alikes, so generated names spell nothing.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def generate_name(base: str) -> str:
    """names.SimpleNameGenerator: base + 5 random characters."""
    return base + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))


def token_volume_source() -> Obj:
    """The projected source of the `kube-api-access-*` volume, field for field upstream's."""
    return {
        "defaultMode": PROJECTED_DEFAULT_MODE,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds":
                                     WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS,
                                     "path": "token"}},
            {"configMap": {"name": ROOT_CA_CONFIGMAP,
                           "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ],
    }


def is_mirror_pod(pod: Obj) -> bool:
    return MIRROR_POD_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {})


def should_automount(service_account: Obj | None, pod: Obj) -> bool:
    """The pod's preference wins, then the ServiceAccount's; true by default."""
    pod_pref = (pod.get("spec") or {}).get("automountServiceAccountToken")
    if isinstance(pod_pref, bool):
        return pod_pref
    sa_pref = (service_account or {}).get("automountServiceAccountToken")
    if isinstance(sa_pref, bool):
        return sa_pref
    return True


def _dicts(value: Any) -> list[Obj]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def admit_pod(pod: Obj, service_account: Obj | None) -> None:
    """Mutate a pod being created in place. `service_account` is the ServiceAccount the pod
    will run as (after defaulting its name: look it up with `service_account_name(pod)`),
    None when it does not exist — then only the names are defaulted and the volume added
    as for an account without preference; `validate_pod_service_account` rejects it."""
    spec = pod.get("spec")
    if not isinstance(spec, dict) or is_mirror_pod(pod):
        return
    name = service_account_name(pod)
    spec["serviceAccountName"] = name
    spec["serviceAccount"] = name  # the deprecated alias always mirrors the field
    if should_automount(service_account, pod):
        _mount_service_account_token(spec)
    sa_pull = _dicts((service_account or {}).get("imagePullSecrets"))
    if not spec.get("imagePullSecrets") and sa_pull:
        spec["imagePullSecrets"] = [{"name": s.get("name", "")} for s in sa_pull]


def service_account_name(pod: Obj) -> str:
    """The account a pod runs as: serviceAccountName, else the deprecated serviceAccount
    (v1 conversion: the new field wins), else `default`."""
    spec = pod.get("spec") or {}
    for key in ("serviceAccountName", "serviceAccount"):
        value = spec.get(key)
        if isinstance(value, str) and value:
            return value
    return DEFAULT_SERVICE_ACCOUNT_NAME


def _mount_service_account_token(spec: Obj) -> None:
    volumes = spec.get("volumes")
    if not isinstance(volumes, list):
        volumes = []
    existing = next((v.get("name") for v in _dicts(volumes)
                     if str(v.get("name") or "").startswith(TOKEN_VOLUME_PREFIX)), None)
    volume_name = str(existing) if existing else generate_name(TOKEN_VOLUME_PREFIX)
    needs_volume = False
    # Upstream mounts into init and regular containers; ephemeral containers get no mount.
    for key in ("initContainers", "containers"):
        for container in _dicts(spec.get(key)):
            mounts = container.get("volumeMounts")
            if not isinstance(mounts, list):
                mounts = []
            # Something already mounted at the path (a hand-made token volume) wins.
            if any(m.get("mountPath") == DEFAULT_API_TOKEN_MOUNT_PATH for m in _dicts(mounts)):
                continue
            mounts.append({"name": volume_name, "readOnly": True,
                           "mountPath": DEFAULT_API_TOKEN_MOUNT_PATH})
            container["volumeMounts"] = mounts
            needs_volume = True
    if existing is None and needs_volume:
        volumes.append({"name": volume_name, "projected": token_volume_source()})
        spec["volumes"] = volumes


def _forbidden(pod: Obj, reason: str) -> Forbidden:
    """admission.NewForbidden on a pod: `pods "<name>" is forbidden: <reason>` (the
    generateName when the name is not generated yet)."""
    md = pod.get("metadata") or {}
    name = str(md.get("name") or md.get("generateName") or "Unknown")
    return Forbidden(f'pods "{name}" is forbidden: {reason}',
                     details={"name": name, "kind": "pods"})


def _references_secrets(spec: Obj) -> bool:
    """podutil.VisitPodSecretNames, for the question "any at all?"."""
    if _dicts(spec.get("imagePullSecrets")):
        return True
    containers = [*_dicts(spec.get("initContainers")), *_dicts(spec.get("containers")),
                  *_dicts(spec.get("ephemeralContainers"))]
    for c in containers:
        for env_from in _dicts(c.get("envFrom")):
            if env_from.get("secretRef"):
                return True
        for env in _dicts(c.get("env")):
            if ((env.get("valueFrom") or {}).get("secretKeyRef")):
                return True
    for v in _dicts(spec.get("volumes")):
        if v.get("secret"):
            return True
        for src in _dicts((v.get("projected") or {}).get("sources")):
            if src.get("secret"):
                return True
        for kind in ("azureFile", "cephfs", "cinder", "flexVolume", "rbd", "scaleIO",
                     "iscsi", "storageos", "csi"):
            source = v.get(kind)
            if isinstance(source, dict) and (source.get("secretRef") or
                                             source.get("nodePublishSecretRef") or
                                             source.get("secretName")):
                return True
    return False


def validate_pod_service_account(pod: Obj, service_account: Obj | None) -> None:
    """Reject a pod being created as upstream's validating half: raises Forbidden."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    md = pod.get("metadata") or {}
    ns = str(md.get("namespace") or "")
    if is_mirror_pod(pod):
        if spec.get("serviceAccountName"):
            raise _forbidden(pod, "a mirror pod may not reference service accounts")
        if _references_secrets(spec):
            raise _forbidden(pod, "a mirror pod may not reference secrets")
        for v in _dicts(spec.get("volumes")):
            for src in _dicts((v.get("projected") or {}).get("sources")):
                if src.get("serviceAccountToken"):
                    raise _forbidden(pod, "a mirror pod may not use ServiceAccountToken "
                                          "volume projections")
        return
    name = spec.get("serviceAccountName")
    if not name:
        raise _forbidden(pod, f"no service account specified for pod {ns}/{md.get('name', '')}")
    if service_account is None:
        raise _forbidden(pod, f"error looking up service account {ns}/{name}: "
                              f'serviceaccount "{name}" not found')
