"""Defaulting: fill the fields Kubernetes fills before an object is validated and stored.

One entry point, `apply_defaults(plural, obj)`, mutates a plain-dict object in place with the
v1 defaulting rules of upstream (`pkg/apis/core/v1/defaults.go`, `pkg/apis/apps/v1/defaults.go`,
`pkg/apis/batch/v1/defaults.go`, discovery/v1) plus the few values upstream fills in admission
or in the v1 conversion that clients nevertheless see on every object (Pod `serviceAccountName`
and `priority`, Secret `stringData`, Service `clusterIPs`/`ipFamilies`).

Defaulting never raises: a field of the wrong shape is left alone so validation can report it.
The helpers below only ever descend into dicts and lists they have checked.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Callable, Iterator
from typing import Any

Obj = dict[str, Any]

# Containers of a pod spec that are defaulted alike (ephemeral ones share the Container type).
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")

# Priorities of the two built-in PriorityClasses; other classes are resolved by admission.
_SYSTEM_PRIORITIES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}

_DEFAULT_MODE = 0o644  # 420: configMap/secret/downwardAPI/projected volume file mode
_CLIENT_IP_TIMEOUT = 10800  # seconds: Service sessionAffinityConfig.clientIP default

# Labels the Job registry adds to a Job's pod template (and its selector) after the uid exists.
JOB_CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_JOB_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"


# --- shape-safe helpers -----------------------------------------------------------------------

def _dict(parent: Any, key: str) -> Obj | None:
    """parent[key] if it is a dict, else None (missing or malformed)."""
    if isinstance(parent, dict):
        value = parent.get(key)
        if isinstance(value, dict):
            return value
    return None


def _ensure_dict(parent: Any, key: str) -> Obj | None:
    """parent[key], created as {} when absent or null; None when it has another shape."""
    if not isinstance(parent, dict):
        return None
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
    return value if isinstance(value, dict) else None


def _dicts(parent: Any, key: str) -> Iterator[Obj]:
    """The dict items of the list parent[key], skipping anything malformed."""
    if isinstance(parent, dict):
        items = parent.get(key)
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict):
                    yield item


def _unset(d: Obj, key: str) -> bool:
    return d.get(key) is None


def _default(d: Obj, key: str, value: Any) -> None:
    """Pointer-field semantics: only an absent (or null) field takes the default."""
    if d.get(key) is None:
        d[key] = value


def _default_str(d: Obj, key: str, value: str) -> None:
    """String-field semantics: Go cannot tell "" from unset, so "" takes the default too."""
    if d.get(key) is None or d.get(key) == "":
        d[key] = value


def _default_int(d: Obj, key: str, value: int) -> None:
    """Non-pointer int semantics (probes): 0 means unset."""
    current = d.get(key)
    if current is None or (type(current) is int and current == 0):
        d[key] = value


# --- pod specs --------------------------------------------------------------------------------

def _image_tag(image: str) -> str:
    """The tag of an image reference as the kubelet sees it ("latest" when none and no digest)."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2] if ":" in last else ""
    if not tag and not digest and name:
        return "latest"
    return tag


def _default_http_get(handler: Obj) -> None:
    http_get = _dict(handler, "httpGet")
    if http_get is not None:
        _default_str(http_get, "path", "/")
        _default_str(http_get, "scheme", "HTTP")


def _default_probe(probe: Obj) -> None:
    _default_int(probe, "timeoutSeconds", 1)
    _default_int(probe, "periodSeconds", 10)
    _default_int(probe, "successThreshold", 1)
    _default_int(probe, "failureThreshold", 3)
    _default_http_get(probe)


def _default_field_ref(holder: Obj) -> None:
    field_ref = _dict(holder, "fieldRef")
    if field_ref is not None:
        _default_str(field_ref, "apiVersion", "v1")


def _default_container(container: Obj) -> None:
    image = container.get("image")
    if (image is None or isinstance(image, str)) and container.get("imagePullPolicy") in (None, ""):
        latest = isinstance(image, str) and _image_tag(image) == "latest"
        container["imagePullPolicy"] = "Always" if latest else "IfNotPresent"
    _default_str(container, "terminationMessagePath", "/dev/termination-log")
    _default_str(container, "terminationMessagePolicy", "File")
    _default(container, "resources", {})
    for port in _dicts(container, "ports"):
        _default_str(port, "protocol", "TCP")
    for env in _dicts(container, "env"):
        value_from = _dict(env, "valueFrom")
        if value_from is not None:
            _default_field_ref(value_from)
    for probe_key in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = _dict(container, probe_key)
        if probe is not None:
            _default_probe(probe)
    lifecycle = _dict(container, "lifecycle")
    for hook in ("postStart", "preStop"):
        handler = _dict(lifecycle, hook)
        if handler is not None:
            _default_http_get(handler)


_VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret",
    "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder",
    "cephfs", "flocker", "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume",
    "quobyte", "azureDisk", "photonPersistentDisk", "projected", "portworxVolume", "scaleIO",
    "storageos", "csi", "ephemeral", "image",
)


def _default_volume(volume: Obj) -> None:
    if all(volume.get(source) is None for source in _VOLUME_SOURCES):
        volume["emptyDir"] = {}
    for source in ("configMap", "secret", "downwardAPI", "projected"):
        src = _dict(volume, source)
        if src is not None:
            _default(src, "defaultMode", _DEFAULT_MODE)
    for item in _dicts(_dict(volume, "downwardAPI"), "items"):
        _default_field_ref(item)
    host_path = _dict(volume, "hostPath")
    if host_path is not None:
        _default(host_path, "type", "")
    for projection in _dicts(_dict(volume, "projected"), "sources"):
        token = _dict(projection, "serviceAccountToken")
        if token is not None:
            _default(token, "expirationSeconds", 3600)
        for item in _dicts(_dict(projection, "downwardAPI"), "items"):
            _default_field_ref(item)


def _sync_service_account(spec: Obj) -> None:
    # v1 carries the deprecated `serviceAccount` alongside `serviceAccountName`; upstream's
    # conversion reads either and writes both, so clients always see them equal.
    name, legacy = spec.get("serviceAccountName"), spec.get("serviceAccount")
    if name in (None, "") and isinstance(legacy, str) and legacy:
        spec["serviceAccountName"] = legacy
    name = spec.get("serviceAccountName")
    if isinstance(name, str) and name:
        spec["serviceAccount"] = name


def _default_pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec and everything nested: shared by Pods and pod templates."""
    _default_str(spec, "dnsPolicy", "ClusterFirst")
    # Upstream defaults this for Job templates too; validation then rejects "Always" there.
    _default_str(spec, "restartPolicy", "Always")
    _default(spec, "securityContext", {})
    _default(spec, "terminationGracePeriodSeconds", 30)
    _default_str(spec, "schedulerName", "default-scheduler")
    _sync_service_account(spec)
    for key in _CONTAINER_LISTS:
        for container in _dicts(spec, key):
            _default_container(container)
    for volume in _dicts(spec, "volumes"):
        _default_volume(volume)


def _default_template(obj: Obj) -> None:
    spec = _dict(_dict(obj, "spec"), "template")
    template_spec = _dict(spec, "spec")
    if template_spec is not None:
        _default_pod_spec(template_spec)


def _default_pod(pod: Obj) -> None:
    spec = _dict(pod, "spec")
    if spec is None:
        return
    _default_pod_spec(spec)
    # Fields upstream defaults only on Pods (SetDefaults_Pod) or fills in admission, so that
    # they never appear in the templates of controllers.
    _default(spec, "enableServiceLinks", True)
    # serviceAccountName is the ServiceAccount admission plugin's (apiserver/auth/
    # sa_admission.py), as upstream: static pods and their mirrors must stay without one.
    if spec.get("priority") is None:
        class_name = spec.get("priorityClassName")
        if class_name in (None, ""):
            spec["priority"] = 0
        elif isinstance(class_name, str) and class_name in _SYSTEM_PRIORITIES:
            spec["priority"] = _SYSTEM_PRIORITIES[class_name]
    if spec.get("priority") is not None:
        _default_str(spec, "preemptionPolicy", "PreemptLowerPriority")
    for key in _CONTAINER_LISTS:
        for container in _dicts(spec, key):
            _default_requests_from_limits(container)
    if spec.get("hostNetwork") is True:
        for key in ("initContainers", "containers"):
            for container in _dicts(spec, key):
                for port in _dicts(container, "ports"):
                    host_port = port.get("hostPort")
                    unset = host_port is None or (type(host_port) is int and host_port == 0)
                    if unset and type(port.get("containerPort")) is int:
                        port["hostPort"] = port["containerPort"]


def _default_requests_from_limits(container: Obj) -> None:
    # A container that states only limits gets requests equal to them (Pods only, upstream).
    resources = _dict(container, "resources")
    limits = _dict(resources, "limits")
    if resources is None or not limits:
        return
    requests = _ensure_dict(resources, "requests")
    if requests is None:
        return
    for name, quantity in limits.items():
        if name not in requests:
            requests[name] = quantity


# --- workloads --------------------------------------------------------------------------------

def _default_deployment(obj: Obj) -> None:
    spec = _ensure_dict(obj, "spec")
    if spec is None:
        return
    _default(spec, "replicas", 1)
    strategy = _ensure_dict(spec, "strategy")
    if strategy is not None:
        _default_str(strategy, "type", "RollingUpdate")
        if strategy.get("type") == "RollingUpdate":
            rolling = _ensure_dict(strategy, "rollingUpdate")
            if rolling is not None:
                _default(rolling, "maxUnavailable", "25%")
                _default(rolling, "maxSurge", "25%")
    _default(spec, "revisionHistoryLimit", 10)
    _default(spec, "progressDeadlineSeconds", 600)
    _default_template(obj)


def _default_replicaset(obj: Obj) -> None:
    spec = _ensure_dict(obj, "spec")
    if spec is None:
        return
    _default(spec, "replicas", 1)
    _default_template(obj)


def _default_daemonset(obj: Obj) -> None:
    spec = _ensure_dict(obj, "spec")
    if spec is None:
        return
    strategy = _ensure_dict(spec, "updateStrategy")
    if strategy is not None:
        _default_str(strategy, "type", "RollingUpdate")
        if strategy.get("type") == "RollingUpdate":
            rolling = _ensure_dict(strategy, "rollingUpdate")
            if rolling is not None:
                _default(rolling, "maxUnavailable", 1)
                _default(rolling, "maxSurge", 0)
    _default(spec, "revisionHistoryLimit", 10)
    _default_template(obj)


def _default_job(obj: Obj) -> None:
    spec = _ensure_dict(obj, "spec")
    if spec is None:
        return
    # A non-parallel Job may leave both unset; only then is completions defaulted.
    if _unset(spec, "completions") and _unset(spec, "parallelism"):
        spec["completions"] = 1
    _default(spec, "parallelism", 1)
    if _unset(spec, "backoffLimit"):
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    _default(spec, "completionMode", "NonIndexed")
    _default(spec, "suspend", False)
    if _unset(spec, "podReplacementPolicy"):
        # JobPodReplacementPolicy is on by default since 1.29; a podFailurePolicy needs Failed.
        has_failure_policy = spec.get("podFailurePolicy") is not None
        spec["podReplacementPolicy"] = "Failed" if has_failure_policy else "TerminatingOrFailed"
    for rule in _dicts(_dict(spec, "podFailurePolicy"), "rules"):
        for pattern in _dicts(rule, "onPodConditions"):
            _default_str(pattern, "status", "True")
    _copy_template_labels(obj)
    _default_template(obj)


def _copy_template_labels(obj: Obj) -> None:
    # Upstream: a Job without labels of its own takes its template's labels.
    template = _dict(_dict(obj, "spec"), "template")
    labels = _dict(_dict(template, "metadata"), "labels")
    metadata = _dict(obj, "metadata")
    if labels and metadata is not None and not metadata.get("labels"):
        metadata["labels"] = dict(labels)


def default_job_selector(obj: Obj) -> None:
    """Generate a Job's selector and template labels from its uid (the Job registry's step).

    Call after `metadata.uid` and `metadata.name` are assigned and before validation. Does
    nothing when `spec.manualSelector` is true: then the user owns selector and labels.
    Labels the user already set are kept, so a conflicting value fails validation instead of
    being silently overwritten, as upstream.
    """
    metadata = _dict(obj, "metadata")
    spec = _dict(obj, "spec")
    if metadata is None or spec is None or spec.get("manualSelector") is True:
        return
    uid, name = metadata.get("uid"), metadata.get("name")
    if not isinstance(uid, str) or not uid or not isinstance(name, str):
        return
    template = _ensure_dict(spec, "template")
    template_meta = _ensure_dict(template, "metadata")
    labels = _ensure_dict(template_meta, "labels")
    if labels is not None:
        for key, value in ((JOB_CONTROLLER_UID_LABEL, uid), (LEGACY_JOB_CONTROLLER_UID_LABEL, uid),
                           (JOB_NAME_LABEL, name), (LEGACY_JOB_NAME_LABEL, name)):
            labels.setdefault(key, value)
    selector = _ensure_dict(spec, "selector")
    match_labels = _ensure_dict(selector, "matchLabels")
    if match_labels is not None:
        match_labels.setdefault(JOB_CONTROLLER_UID_LABEL, uid)
    # Upstream re-runs defaulting when the object is read back, so a Job created without
    # labels shows its template's (now generated) labels; do that once here.
    _copy_template_labels(obj)


# --- core kinds -------------------------------------------------------------------------------

def _ip_family(address: Any) -> str | None:
    if not isinstance(address, str):
        return None
    try:
        return "IPv6" if ipaddress.ip_address(address).version == 6 else "IPv4"
    except ValueError:
        return None


def _default_service(obj: Obj) -> None:
    spec = _ensure_dict(obj, "spec")
    if spec is None:
        return
    _default_str(spec, "sessionAffinity", "None")
    affinity = spec.get("sessionAffinity")
    if affinity == "None":
        spec.pop("sessionAffinityConfig", None)
    elif affinity == "ClientIP":
        config = _ensure_dict(spec, "sessionAffinityConfig")
        client_ip = _ensure_dict(config, "clientIP")
        if client_ip is not None:
            _default(client_ip, "timeoutSeconds", _CLIENT_IP_TIMEOUT)
    _default_str(spec, "type", "ClusterIP")
    svc_type = spec.get("type")
    for port in _dicts(spec, "ports"):
        _default_str(port, "protocol", "TCP")
        target = port.get("targetPort")
        if (target is None or target == "" or (type(target) is int and target == 0)) \
                and type(port.get("port")) is int:
            port["targetPort"] = port["port"]
    externally_accessible = svc_type in ("NodePort", "LoadBalancer") or (
        svc_type == "ClusterIP" and bool(spec.get("externalIPs")))
    if externally_accessible:
        _default_str(spec, "externalTrafficPolicy", "Cluster")
    if svc_type in ("ClusterIP", "NodePort", "LoadBalancer"):
        _default(spec, "internalTrafficPolicy", "Cluster")
    if svc_type == "LoadBalancer":
        _default(spec, "allocateLoadBalancerNodePorts", True)
    if svc_type != "ExternalName":
        _default_service_ips(spec)


def _default_service_ips(spec: Obj) -> None:
    # Upstream's Service REST keeps clusterIP and clusterIPs in step and fills the IP family
    # fields before validation; kubelite's cluster is single-stack IPv4 unless an IPv6
    # clusterIP is asked for explicitly.
    cluster_ip, cluster_ips = spec.get("clusterIP"), spec.get("clusterIPs")
    if isinstance(cluster_ip, str) and cluster_ip and cluster_ips is None:
        spec["clusterIPs"] = [cluster_ip]
    elif not cluster_ip and isinstance(cluster_ips, list) and cluster_ips \
            and isinstance(cluster_ips[0], str):
        spec["clusterIP"] = cluster_ips[0]
    cluster_ip = spec.get("clusterIP")
    headless = cluster_ip == "None"
    if _unset(spec, "ipFamilyPolicy"):
        # A headless Service without a selector is served in every family the cluster has.
        selectorless_headless = headless and not spec.get("selector")
        spec["ipFamilyPolicy"] = "RequireDualStack" if selectorless_headless else "SingleStack"
    if _unset(spec, "ipFamilies"):
        families: list[str] = []
        ips = spec.get("clusterIPs")
        if isinstance(ips, list):
            for address in ips:
                family = _ip_family(address)
                if family and family not in families:
                    families.append(family)
        spec["ipFamilies"] = families or ["IPv4"]


def _default_namespace(obj: Obj) -> None:
    metadata = _dict(obj, "metadata")
    name = metadata.get("name") if metadata is not None else None
    if isinstance(name, str) and name:
        labels = _ensure_dict(metadata, "labels")
        if labels is not None:
            labels["kubernetes.io/metadata.name"] = name
    spec = _ensure_dict(obj, "spec")
    if spec is not None:
        _default(spec, "finalizers", ["kubernetes"])
    status = _ensure_dict(obj, "status")
    if status is not None:
        _default_str(status, "phase", "Active")


def _default_secret(obj: Obj) -> None:
    if obj.get("type") is None or obj.get("type") == "":
        obj["type"] = "Opaque"
    # stringData is write-only upstream: the v1 conversion folds it into data (winning over a
    # data key of the same name) and it is never stored or returned.
    string_data = obj.get("stringData")
    if isinstance(string_data, dict) and all(isinstance(v, str) for v in string_data.values()):
        data = _ensure_dict(obj, "data")
        if data is not None:
            for key, value in string_data.items():
                data[key] = base64.b64encode(value.encode()).decode()
            del obj["stringData"]


def _default_node(obj: Obj) -> None:
    spec = _dict(obj, "spec")
    if spec is not None:
        # v1 has both podCIDR and podCIDRs; the conversion keeps them in step.
        cidr, cidrs = spec.get("podCIDR"), spec.get("podCIDRs")
        if isinstance(cidr, str) and cidr and cidrs is None:
            spec["podCIDRs"] = [cidr]
        elif not cidr and isinstance(cidrs, list) and cidrs and isinstance(cidrs[0], str):
            spec["podCIDR"] = cidrs[0]
    status = _dict(obj, "status")
    capacity = _dict(status, "capacity")
    if status is not None and capacity is not None and status.get("allocatable") is None:
        status["allocatable"] = dict(capacity)


def _default_endpoints(obj: Obj) -> None:
    for subset in _dicts(obj, "subsets"):
        for port in _dicts(subset, "ports"):
            _default_str(port, "protocol", "TCP")


def _default_endpointslice(obj: Obj) -> None:
    for port in _dicts(obj, "ports"):
        _default(port, "name", "")
        _default(port, "protocol", "TCP")


_RBAC_GROUP = "rbac.authorization.k8s.io"
# SetDefaults_Subject: users and groups live in the RBAC group, service accounts in core.
_SUBJECT_GROUPS = {"User": _RBAC_GROUP, "Group": _RBAC_GROUP, "ServiceAccount": ""}


def _default_rbac_binding(obj: Obj) -> None:
    """SetDefaults_RoleBinding / _ClusterRoleBinding and SetDefaults_Subject (rbac/v1)."""
    role_ref = _dict(obj, "roleRef")
    if role_ref is not None:
        _default_str(role_ref, "apiGroup", _RBAC_GROUP)
    for subject in _dicts(obj, "subjects"):
        kind = subject.get("kind")
        group = _SUBJECT_GROUPS.get(kind) if isinstance(kind, str) else None
        if group is not None:
            _default_str(subject, "apiGroup", group)


_DEFAULTERS: dict[str, Callable[[Obj], None]] = {
    "pods": _default_pod,
    "deployments": _default_deployment,
    "replicasets": _default_replicaset,
    "daemonsets": _default_daemonset,
    "jobs": _default_job,
    "services": _default_service,
    "namespaces": _default_namespace,
    "secrets": _default_secret,
    "nodes": _default_node,
    "endpoints": _default_endpoints,
    "endpointslices": _default_endpointslice,
    "rolebindings": _default_rbac_binding,
    "clusterrolebindings": _default_rbac_binding,
}


def apply_defaults(plural: str, obj: dict[str, Any]) -> None:
    """Fill upstream's v1 defaults into `obj` (a `plural` object) in place. Never raises."""
    if not isinstance(obj, dict):
        return
    defaulter = _DEFAULTERS.get(plural)
    if defaulter is not None:
        defaulter(obj)
