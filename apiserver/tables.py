"""Server-side `meta.k8s.io/v1 Table` responses for `kubectl get`.

kubectl asks for `application/json;as=Table;v=v1;g=meta.k8s.io` and prints whatever columns
the server returns, so the columns and cell formats here follow the apiserver's built-in
printers (pkg/printers/internalversion). The server always fills every column, including the
priority-1 ones; kubectl hides those unless `-o wide` is given.

Objects are plain dicts read straight from storage. A stored object can be incomplete or
malformed (a half-written status, an older schema), and one bad object must not break a
whole `kubectl get`, so every accessor here tolerates missing or mistyped fields.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from api.resources import Resource

TABLE_API_VERSION = "meta.k8s.io/v1"

Row = dict[str, Any]
Column = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# tolerant accessors


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in _list(value) if isinstance(item, dict)]


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any, default: int = 0) -> int:
    # bool is an int subclass; a JSON `true` in a count field is garbage, not 1.
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return default


def _opt_int(value: Any) -> int | None:
    """An optional integer field (a Go `*int32`): None when absent or not a number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _str_map(value: Any) -> dict[str, str]:
    return {k: v for k, v in _dict(value).items() if isinstance(k, str) and isinstance(v, str)}


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 (metav1.Time / MicroTime) to an aware datetime; None when absent or invalid."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


# ---------------------------------------------------------------------------------------------
# durations


def human_duration(seconds: float) -> str:
    """Go's `duration.HumanDuration`: about two significant figures, "5s", "3m12s", "2d5h"."""
    whole = int(seconds)  # truncates toward zero, as Go's int(d.Seconds()) does
    # A couple of seconds of clock skew between client and server reads as "now".
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 60 * 2:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def since(timestamp: Any, now: datetime) -> str:
    """Age of a timestamp field, "<unknown>" when it is missing, like translateTimestampSince."""
    parsed = parse_time(timestamp)
    if parsed is None:
        return "<unknown>"
    return human_duration((now - parsed).total_seconds())


# ---------------------------------------------------------------------------------------------
# shared cell formats


def format_labels(labels: Any) -> str:
    """labels.FormatLabels: sorted k=v pairs, "<none>" when empty."""
    pairs = _str_map(labels)
    if not pairs:
        return "<none>"
    return ",".join(f"{k}={pairs[k]}" for k in sorted(pairs))


def _selector_string(selector: Any) -> str | None:
    """A LabelSelector as kubectl prints it ("app=web,tier in (a,b)"); None when invalid."""
    if selector is None:
        return ""
    if not isinstance(selector, dict):
        return None
    requirements: list[tuple[str, str]] = []
    for key, value in _dict(selector.get("matchLabels")).items():
        if not isinstance(key, str) or not isinstance(value, str):
            return None
        requirements.append((key, f"{key}={value}"))
    for expr in _list(selector.get("matchExpressions")):
        if not isinstance(expr, dict):
            return None
        key = _str(expr.get("key"))
        operator = _str(expr.get("operator"))
        values = sorted(v for v in _list(expr.get("values")) if isinstance(v, str))
        if not key:
            return None
        if operator == "In":
            requirements.append((key, f"{key} in ({','.join(values)})"))
        elif operator == "NotIn":
            requirements.append((key, f"{key} notin ({','.join(values)})"))
        elif operator == "Exists":
            requirements.append((key, key))
        elif operator == "DoesNotExist":
            requirements.append((key, f"!{key}"))
        else:
            return None
    # The selector library sorts requirements by key; Python's sort is stable like Go's.
    requirements.sort(key=lambda item: item[0])
    return ",".join(text for _, text in requirements)


def format_label_selector(selector: Any) -> str:
    """metav1.FormatLabelSelector: "<none>" for an empty selector, "<error>" for a bad one."""
    text = _selector_string(selector)
    if text is None:
        return "<error>"
    return text or "<none>"


def _container_cells(spec: Any) -> tuple[str, str]:
    containers = _dicts(_dict(spec).get("containers"))
    names = ",".join(_str(c.get("name")) for c in containers)
    images = ",".join(_str(c.get("image")) for c in containers)
    return names, images


def _template_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return _dict(_dict(_dict(obj.get("spec")).get("template")).get("spec"))


def _join_host_port(host: str, port: int) -> str:
    try:
        is_v6 = isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address)
    except ValueError:
        is_v6 = ":" in host
    return f"[{host}]:{port}" if is_v6 else f"{host}:{port}"


def _list_with_more(items: list[str], count: int, limit: int) -> str:
    text = ",".join(items)
    if count > limit:
        return f"{text} + {count - limit} more..."
    return text or "<unset>"


# ---------------------------------------------------------------------------------------------
# column definitions


def _col(name: str, type_: str, description: str, *, fmt: str = "", priority: int = 0) -> Column:
    return {
        "name": name,
        "type": type_,
        "format": fmt,
        "description": description,
        "priority": priority,
    }


_NAME = _col("Name", "string", "Name of the object, unique within its namespace.", fmt="name")
_AGE = _col("Age", "string", "Time since the object was created (metadata.creationTimestamp).")
_CONTAINERS = _col("Containers", "string", "Names of each container in the template.",
                   priority=1)
_IMAGES = _col("Images", "string", "Images referenced by each container in the template.",
               priority=1)
_SELECTOR = _col("Selector", "string", "Label query over the pods this object manages.",
                 priority=1)

POD_COLUMNS = [
    _NAME,
    _col("Ready", "string", "Ready containers out of all regular (and sidecar) containers."),
    _col("Status", "string", "A one-word summary of the pod and its containers."),
    _col("Restarts", "string", "Container restarts, and how long ago the last one was."),
    _AGE,
    _col("IP", "string", "The pod's primary IP address.", priority=1),
    _col("Node", "string", "The node the pod is bound to.", priority=1),
    _col("Nominated Node", "string", "The node preemption made room on, before binding.",
         priority=1),
    _col("Readiness Gates", "string", "Readiness gates whose condition is True, of all gates.",
         priority=1),
]
NAMESPACE_COLUMNS = [_NAME, _col("Status", "string", "The namespace phase."), _AGE]
NODE_COLUMNS = [
    _NAME,
    _col("Status", "string", "Ready, NotReady or Unknown, plus SchedulingDisabled if cordoned."),
    _col("Roles", "string", "Roles taken from node-role.kubernetes.io/<role> labels."),
    _AGE,
    _col("Version", "string", "The kubelet version the node reports."),
    _col("Internal-IP", "string", "The node's first InternalIP address.", priority=1),
    _col("External-IP", "string", "The node's first ExternalIP address.", priority=1),
    _col("OS-Image", "string", "The operating system image the node reports.", priority=1),
    _col("Kernel-Version", "string", "The kernel version the node reports.", priority=1),
    _col("Container-Runtime", "string", "The container runtime and its version.", priority=1),
]
SERVICE_COLUMNS = [
    _NAME,
    _col("Type", "string", "How the service is exposed: ClusterIP, NodePort, LoadBalancer..."),
    _col("Cluster-IP", "string", "The virtual IP of the service inside the cluster."),
    _col("External-IP", "string", "Addresses the service is reachable on from outside."),
    _col("Port(s)", "string", "Service ports as port[:nodePort]/protocol."),
    _AGE,
    _col("Selector", "string", "Label query that picks the pods behind the service.",
         priority=1),
]
ENDPOINTS_COLUMNS = [_NAME, _col("Endpoints", "string", "Ready addresses with their ports."),
                     _AGE]
CONFIGMAP_COLUMNS = [_NAME, _col("Data", "string", "Number of keys in data and binaryData."),
                     _AGE]
SECRET_COLUMNS = [
    _NAME,
    _col("Type", "string", "The secret type, e.g. Opaque."),
    _col("Data", "string", "Number of keys in data."),
    _AGE,
]
SERVICEACCOUNT_COLUMNS = [_NAME, _col("Secrets", "string", "Number of listed secrets."), _AGE]
EVENT_COLUMNS = [
    _col("Last Seen", "string", "Time since the event was last observed."),
    _col("Type", "string", "Normal or Warning."),
    _col("Reason", "string", "Short machine-readable reason for the event."),
    _col("Object", "string", "The object the event is about, as kind/name."),
    _col("Subobject", "string", "The field path inside the object, if any.", priority=1),
    _col("Source", "string", "The component (and host) that reported the event.", priority=1),
    _col("Message", "string", "Human-readable description of the event."),
    _col("First Seen", "string", "Time since the event was first observed.", priority=1),
    _col("Count", "string", "How many times the event has occurred.", priority=1),
    _col("Name", "string", "Name of the event object.", fmt="name", priority=1),
]
DEPLOYMENT_COLUMNS = [
    _NAME,
    _col("Ready", "string", "Ready pods out of desired replicas."),
    _col("Up-to-date", "string", "Pods running the latest pod template."),
    _col("Available", "string", "Pods ready for at least minReadySeconds."),
    _AGE,
    _CONTAINERS,
    _IMAGES,
    _SELECTOR,
]
REPLICASET_COLUMNS = [
    _NAME,
    _col("Desired", "integer", "Replicas asked for in the spec."),
    _col("Current", "integer", "Replicas that currently exist."),
    _col("Ready", "integer", "Replicas whose pods are ready."),
    _AGE,
    _CONTAINERS,
    _IMAGES,
    _SELECTOR,
]
DAEMONSET_COLUMNS = [
    _NAME,
    _col("Desired", "integer", "Nodes that should run the daemon pod."),
    _col("Current", "integer", "Nodes running at least one daemon pod."),
    _col("Ready", "integer", "Nodes whose daemon pod is ready."),
    _col("Up-to-date", "integer", "Nodes running the latest pod template."),
    _col("Available", "integer", "Nodes whose daemon pod has been ready long enough."),
    _col("Node Selector", "string", "The pod template's nodeSelector."),
    _AGE,
    _CONTAINERS,
    _IMAGES,
    _SELECTOR,
]
JOB_COLUMNS = [
    _NAME,
    _col("Status", "string", "Complete, Failed, Running, Suspended or Terminating."),
    _col("Completions", "string", "Succeeded pods out of the completions asked for."),
    _col("Duration", "string", "How long the job ran (or has been running)."),
    _AGE,
    _CONTAINERS,
    _IMAGES,
    _SELECTOR,
]
LEASE_COLUMNS = [_NAME, _col("Holder", "string", "Identity of the current lease holder."), _AGE]
ENDPOINTSLICE_COLUMNS = [
    _NAME,
    _col("AddressType", "string", "IPv4, IPv6 or FQDN."),
    _col("Ports", "string", "Port numbers (or names) the slice carries."),
    _col("Endpoints", "string", "Endpoint addresses in the slice."),
    _AGE,
]
DEFAULT_COLUMNS = [_NAME, _AGE]
# Roles have no printer upstream: the apiserver's default table convertor shows the creation
# time itself, as an RFC 3339 date, not an age.
ROLE_COLUMNS = [_NAME, _col("Created At", "date", "When the object was created "
                                                  "(metadata.creationTimestamp).")]


def _binding_columns(noun: str, role_ref: str) -> list[Column]:
    return [
        _NAME,
        _col("Role", "string", role_ref),
        _AGE,
        _col("Users", "string", f"Users in the {noun}", priority=1),
        _col("Groups", "string", f"Groups in the {noun}", priority=1),
        _col("ServiceAccounts", "string", f"ServiceAccounts in the {noun}", priority=1),
    ]


ROLEBINDING_COLUMNS = _binding_columns(
    "roleBinding", "RoleRef can reference a Role in the current namespace or a ClusterRole in "
                   "the global namespace.")
CLUSTERROLEBINDING_COLUMNS = _binding_columns(
    "clusterRoleBinding", "RoleRef can only reference a ClusterRole in the global namespace.")


# ---------------------------------------------------------------------------------------------
# row cells, one function per kind


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return _dict(obj.get("metadata"))


def _name(obj: dict[str, Any]) -> str:
    return _str(_meta(obj).get("name"))


def _age(obj: dict[str, Any], now: datetime) -> str:
    return since(_meta(obj).get("creationTimestamp"), now)


def _later(current: datetime | None, candidate: Any) -> datetime | None:
    parsed = parse_time(candidate)
    if parsed is None:
        return current
    if current is None or parsed > current:
        return parsed
    return current


def _condition_true(conditions: Any, type_: str) -> bool:
    return any(
        c.get("type") == type_ and c.get("status") == "True" for c in _dicts(conditions)
    )


def pod_cells(pod: dict[str, Any], now: datetime) -> list[Any]:
    """printPod: READY, STATUS reason and RESTARTS exactly as kubectl shows them."""
    spec = _dict(pod.get("spec"))
    status = _dict(pod.get("status"))
    init_specs = _dicts(spec.get("initContainers"))

    total = len(_list(spec.get("containers")))
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None

    phase = _str(status.get("phase"))
    reason = _str(status.get("reason")) or phase
    for condition in _dicts(status.get("conditions")):
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    # Init containers with restartPolicy Always are sidecars: they count as regular
    # containers for READY and their restarts stay visible after initialisation.
    sidecars = {_str(c.get("name")) for c in init_specs if c.get("restartPolicy") == "Always"}
    total += sum(1 for c in init_specs if c.get("restartPolicy") == "Always")

    initializing = False
    for index, cs in enumerate(_dicts(status.get("initContainerStatuses"))):
        count = _int(cs.get("restartCount"))
        finished = _dict(_dict(cs.get("lastState")).get("terminated")).get("finishedAt")
        restarts += count
        last_restart = _later(last_restart, finished)
        is_sidecar = _str(cs.get("name")) in sidecars
        if is_sidecar:
            sidecar_restarts += count
            last_sidecar_restart = _later(last_sidecar_restart, finished)

        state = _dict(cs.get("state"))
        terminated = state.get("terminated")
        waiting = state.get("waiting")
        if isinstance(terminated, dict) and _int(terminated.get("exitCode")) == 0:
            continue
        if is_sidecar and cs.get("started") is True:
            if cs.get("ready") is True:
                ready += 1
            continue
        if isinstance(terminated, dict):
            term_reason = _str(terminated.get("reason"))
            if term_reason:
                reason = "Init:" + term_reason
            elif _int(terminated.get("signal")) != 0:
                reason = f"Init:Signal:{_int(terminated.get('signal'))}"
            else:
                reason = f"Init:ExitCode:{_int(terminated.get('exitCode'))}"
        elif isinstance(waiting, dict) and _str(waiting.get("reason")) not in (
            "",
            "PodInitializing",
        ):
            reason = "Init:" + _str(waiting.get("reason"))
        else:
            reason = f"Init:{index}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(status.get("conditions"), "Initialized"):
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        # Walk backwards so the first container's state wins, as upstream does.
        for cs in reversed(_dicts(status.get("containerStatuses"))):
            restarts += _int(cs.get("restartCount"))
            last_restart = _later(
                last_restart, _dict(_dict(cs.get("lastState")).get("terminated")).get("finishedAt")
            )
            state = _dict(cs.get("state"))
            waiting = state.get("waiting")
            terminated = state.get("terminated")
            if isinstance(waiting, dict) and _str(waiting.get("reason")):
                reason = _str(waiting.get("reason"))
            elif isinstance(terminated, dict) and _str(terminated.get("reason")):
                reason = _str(terminated.get("reason"))
            elif isinstance(terminated, dict):
                if _int(terminated.get("signal")) != 0:
                    reason = f"Signal:{_int(terminated.get('signal'))}"
                else:
                    reason = f"ExitCode:{_int(terminated.get('exitCode'))}"
            elif cs.get("ready") is True and isinstance(state.get("running"), dict):
                has_running = True
                ready += 1
        # A pod whose last container completed but another still runs is not "Completed".
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(status.get("conditions"), "Ready") else "NotReady"

    deleting = _meta(pod).get("deletionTimestamp") is not None
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_text = str(restarts)
    if restarts != 0 and last_restart is not None:
        restarts_text = f"{restarts} ({human_duration((now - last_restart).total_seconds())} ago)"

    pod_ips = _dicts(status.get("podIPs"))
    pod_ip = _str(pod_ips[0].get("ip")) if pod_ips else ""
    gates = _dicts(spec.get("readinessGates"))
    gates_text = "<none>"
    if gates:
        conditions = _dicts(status.get("conditions"))
        passed = 0
        for gate in gates:
            for condition in conditions:
                if condition.get("type") == gate.get("conditionType"):
                    passed += condition.get("status") == "True"
                    break
        gates_text = f"{passed}/{len(gates)}"

    return [
        _name(pod),
        f"{ready}/{total}",
        reason,
        restarts_text,
        _age(pod, now),
        pod_ip or "<none>",
        _str(spec.get("nodeName")) or "<none>",
        _str(status.get("nominatedNodeName")) or "<none>",
        gates_text,
    ]


def _pod_row_conditions(pod: dict[str, Any]) -> list[dict[str, str]]:
    # Upstream marks finished pods so clients can tell them apart without parsing cells.
    phase = _dict(pod.get("status")).get("phase")
    if phase == "Succeeded":
        message = "The pod has completed successfully."
    elif phase == "Failed":
        message = "The pod failed."
    else:
        return []
    return [{"type": "Completed", "status": "True", "reason": str(phase), "message": message}]


def namespace_cells(ns: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(ns), _str(_dict(ns.get("status")).get("phase")), _age(ns, now)]


def _node_roles(labels: dict[str, str]) -> list[str]:
    roles = set()
    for key, value in labels.items():
        if key.startswith("node-role.kubernetes.io/"):
            role = key[len("node-role.kubernetes.io/"):]
            if role:
                roles.add(role)
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return sorted(roles)


def _node_address(status: dict[str, Any], type_: str) -> str:
    for address in _dicts(status.get("addresses")):
        if address.get("type") == type_:
            return _str(address.get("address"))
    return "<none>"


def node_cells(node: dict[str, Any], now: datetime) -> list[Any]:
    status = _dict(node.get("status"))
    states: list[str] = []
    # Only the Ready condition feeds STATUS; the last one of that type wins, as in a Go map.
    ready = None
    for condition in _dicts(status.get("conditions")):
        if condition.get("type") == "Ready":
            ready = condition
    if ready is not None:
        states.append("Ready" if ready.get("status") == "True" else "NotReady")
    else:
        states.append("Unknown")
    if _dict(node.get("spec")).get("unschedulable") is True:
        states.append("SchedulingDisabled")
    info = _dict(status.get("nodeInfo"))
    roles = ",".join(_node_roles(_str_map(_meta(node).get("labels"))))
    return [
        _name(node),
        ",".join(states),
        roles or "<none>",
        _age(node, now),
        _str(info.get("kubeletVersion")),
        _node_address(status, "InternalIP"),
        _node_address(status, "ExternalIP"),
        _str(info.get("osImage")) or "<unknown>",
        _str(info.get("kernelVersion")) or "<unknown>",
        _str(info.get("containerRuntimeVersion")) or "<unknown>",
    ]


def service_ports(ports: Any) -> str:
    """makePortString: "80/TCP,443:30443/TCP"."""
    pieces = []
    for port in _dicts(ports):
        number = _int(port.get("port"))
        protocol = _str(port.get("protocol")) or "TCP"
        node_port = _int(port.get("nodePort"))
        if node_port > 0:
            pieces.append(f"{number}:{node_port}/{protocol}")
        else:
            pieces.append(f"{number}/{protocol}")
    return ",".join(pieces)


def _service_external_ip(spec: dict[str, Any], status: dict[str, Any], type_: str) -> str:
    external = [ip for ip in _list(spec.get("externalIPs")) if isinstance(ip, str)]
    if type_ in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if type_ == "LoadBalancer":
        ingress = set()
        for entry in _dicts(_dict(status.get("loadBalancer")).get("ingress")):
            value = _str(entry.get("ip")) or _str(entry.get("hostname"))
            if value:
                ingress.add(value)
        # The server renders the wide form; kubectl truncates nothing itself.
        results = sorted(ingress) + external
        return ",".join(results) if results else "<pending>"
    if type_ == "ExternalName":
        return _str(spec.get("externalName"))
    return "<unknown>"


def service_cells(svc: dict[str, Any], now: datetime) -> list[Any]:
    spec = _dict(svc.get("spec"))
    # Stored services are defaulted, so an absent type can only mean ClusterIP.
    type_ = _str(spec.get("type")) or "ClusterIP"
    cluster_ips = [ip for ip in _list(spec.get("clusterIPs")) if isinstance(ip, str)]
    cluster_ip = cluster_ips[0] if cluster_ips else _str(spec.get("clusterIP"))
    return [
        _name(svc),
        type_,
        cluster_ip or "<none>",
        _service_external_ip(spec, _dict(svc.get("status")), type_),
        service_ports(spec.get("ports")) or "<none>",
        _age(svc, now),
        format_labels(spec.get("selector")),
    ]


def format_endpoints(subsets: Any) -> str:
    """formatEndpoints: up to three ip:port pairs, then "+ N more..."."""
    subsets = _dicts(subsets)
    if not subsets:
        return "<none>"
    limit = 3
    shown: list[str] = []
    count = 0
    for subset in subsets:
        addresses = [_str(a.get("ip")) for a in _dicts(subset.get("addresses"))]
        ports = _dicts(subset.get("ports"))
        if not ports:
            # Headless services may have addresses without ports.
            count += len(addresses)
            shown.extend(addresses[: max(0, limit - len(shown))])
            continue
        for port in ports:
            count += len(addresses)
            for ip in addresses:
                if len(shown) == limit:
                    break
                shown.append(_join_host_port(ip, _int(port.get("port"))))
    text = ",".join(shown)
    if count > limit:
        return f"{text} + {count - limit} more..."
    return text


def endpoints_cells(ep: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(ep), format_endpoints(ep.get("subsets")), _age(ep, now)]


def configmap_cells(cm: dict[str, Any], now: datetime) -> list[Any]:
    keys = len(_dict(cm.get("data"))) + len(_dict(cm.get("binaryData")))
    return [_name(cm), keys, _age(cm, now)]


def secret_cells(secret: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(secret), _str(secret.get("type")), len(_dict(secret.get("data"))),
            _age(secret, now)]


def serviceaccount_cells(sa: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(sa), len(_list(sa.get("secrets"))), _age(sa, now)]


def event_cells(event: dict[str, Any], now: datetime) -> list[Any]:
    first = since(event.get("firstTimestamp"), now)
    if parse_time(event.get("firstTimestamp")) is None:
        first = since(event.get("eventTime"), now)
    last = since(event.get("lastTimestamp"), now)
    if parse_time(event.get("lastTimestamp")) is None:
        last = first
    count = _int(event.get("count"))
    series = event.get("series")
    if isinstance(series, dict):
        last = since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1  # events from the events.k8s.io API are singletons without a count

    involved = _dict(event.get("involvedObject"))
    kind = _str(involved.get("kind")).lower()
    target = f"{kind}/{_str(involved.get('name'))}" if involved.get("name") else kind
    source = _dict(event.get("source"))
    component = _str(source.get("component")) or _str(event.get("reportingComponent"))
    instance = _str(source.get("host")) or _str(event.get("reportingInstance"))
    return [
        last,
        _str(event.get("type")),
        _str(event.get("reason")),
        target,
        _str(involved.get("fieldPath")),
        f"{component}, {instance}" if instance else component,
        _str(event.get("message")).strip(),
        first,
        count,
        _name(event),
    ]


def _replicas(spec: dict[str, Any]) -> int:
    # Defaulting sets replicas to 1, so an absent value in storage means 1.
    value = _opt_int(spec.get("replicas"))
    return 1 if value is None else value


def deployment_cells(deploy: dict[str, Any], now: datetime) -> list[Any]:
    spec = _dict(deploy.get("spec"))
    status = _dict(deploy.get("status"))
    names, images = _container_cells(_template_spec(deploy))
    # printDeployment prints the raw selector string: "" rather than "<none>" when empty.
    selector = _selector_string(spec.get("selector"))
    return [
        _name(deploy),
        f"{_int(status.get('readyReplicas'))}/{_replicas(spec)}",
        _int(status.get("updatedReplicas")),
        _int(status.get("availableReplicas")),
        _age(deploy, now),
        names,
        images,
        "<invalid>" if selector is None else selector,
    ]


def replicaset_cells(rs: dict[str, Any], now: datetime) -> list[Any]:
    spec = _dict(rs.get("spec"))
    status = _dict(rs.get("status"))
    names, images = _container_cells(_template_spec(rs))
    return [
        _name(rs),
        _replicas(spec),
        _int(status.get("replicas")),
        _int(status.get("readyReplicas")),
        _age(rs, now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


def daemonset_cells(ds: dict[str, Any], now: datetime) -> list[Any]:
    spec = _dict(ds.get("spec"))
    status = _dict(ds.get("status"))
    template_spec = _template_spec(ds)
    names, images = _container_cells(template_spec)
    return [
        _name(ds),
        _int(status.get("desiredNumberScheduled")),
        _int(status.get("currentNumberScheduled")),
        _int(status.get("numberReady")),
        _int(status.get("updatedNumberScheduled")),
        _int(status.get("numberAvailable")),
        format_labels(template_spec.get("nodeSelector")),
        _age(ds, now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


def _job_condition(conditions: Any, type_: str) -> bool:
    # Upstream looks at the first condition of the type only.
    for condition in _dicts(conditions):
        if condition.get("type") == type_:
            return condition.get("status") == "True"
    return False


def job_cells(job: dict[str, Any], now: datetime) -> list[Any]:
    spec = _dict(job.get("spec"))
    status = _dict(job.get("status"))
    succeeded = _int(status.get("succeeded"))
    completions = _opt_int(spec.get("completions"))
    if completions is not None:
        done = f"{succeeded}/{completions}"
    else:
        parallelism = _opt_int(spec.get("parallelism")) or 0
        done = f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"

    started = parse_time(status.get("startTime"))
    finished = parse_time(status.get("completionTime"))
    if started is None:
        duration = ""
    elif finished is None:
        duration = human_duration((now - started).total_seconds())
    else:
        duration = human_duration((finished - started).total_seconds())

    conditions = status.get("conditions")
    if _job_condition(conditions, "Complete"):
        state = "Complete"
    elif _job_condition(conditions, "Failed"):
        state = "Failed"
    elif _meta(job).get("deletionTimestamp") is not None:
        state = "Terminating"
    elif _job_condition(conditions, "Suspended"):
        state = "Suspended"
    elif _job_condition(conditions, "FailureTarget"):
        state = "FailureTarget"
    else:
        state = "Running"

    names, images = _container_cells(_template_spec(job))
    return [
        _name(job),
        state,
        done,
        duration,
        _age(job, now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


def lease_cells(lease: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(lease), _str(_dict(lease.get("spec")).get("holderIdentity")), _age(lease, now)]


def endpointslice_cells(eps: dict[str, Any], now: datetime) -> list[Any]:
    limit = 3
    ports = _dicts(eps.get("ports"))
    port_names = []
    for port in ports[:limit]:
        number = _opt_int(port.get("port"))
        if number is not None:
            port_names.append(str(number))
        elif isinstance(port.get("name"), str):
            port_names.append(port["name"])
        else:
            port_names.append("*")
    addresses = [
        address
        for endpoint in _dicts(eps.get("endpoints"))
        for address in _list(endpoint.get("addresses"))
        if isinstance(address, str)
    ]
    return [
        _name(eps),
        _str(eps.get("addressType")),
        _list_with_more(port_names, len(ports), limit),
        _list_with_more(addresses[:limit], len(addresses), limit),
        _age(eps, now),
    ]


def default_cells(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), _age(obj, now)]


def role_cells(role: dict[str, Any], now: datetime) -> list[Any]:
    created = parse_time(_meta(role).get("creationTimestamp"))
    return [_name(role), created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if created is not None else "<unknown>"]


def binding_cells(binding: dict[str, Any], now: datetime) -> list[Any]:
    """printRoleBinding / printClusterRoleBinding with rbac.SubjectsStrings."""
    ref = _dict(binding.get("roleRef"))
    users: list[str] = []
    groups: list[str] = []
    accounts: list[str] = []
    for subject in _dicts(binding.get("subjects")):
        kind, name = _str(subject.get("kind")), _str(subject.get("name"))
        if kind == "ServiceAccount":
            accounts.append(f"{_str(subject.get('namespace'))}/{name}")
        elif kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
    return [_name(binding), f"{_str(ref.get('kind'))}/{_str(ref.get('name'))}",
            _age(binding, now), ", ".join(users), ", ".join(groups), ", ".join(accounts)]


CellsFn = Callable[[dict[str, Any], datetime], list[Any]]

# (group, kind) -> columns and the function that fills them.
PRINTERS: dict[tuple[str, str], tuple[list[Column], CellsFn]] = {
    ("", "Pod"): (POD_COLUMNS, pod_cells),
    ("", "Namespace"): (NAMESPACE_COLUMNS, namespace_cells),
    ("", "Node"): (NODE_COLUMNS, node_cells),
    ("", "Service"): (SERVICE_COLUMNS, service_cells),
    ("", "Endpoints"): (ENDPOINTS_COLUMNS, endpoints_cells),
    ("", "ConfigMap"): (CONFIGMAP_COLUMNS, configmap_cells),
    ("", "Secret"): (SECRET_COLUMNS, secret_cells),
    ("", "ServiceAccount"): (SERVICEACCOUNT_COLUMNS, serviceaccount_cells),
    ("", "Event"): (EVENT_COLUMNS, event_cells),
    ("apps", "Deployment"): (DEPLOYMENT_COLUMNS, deployment_cells),
    ("apps", "ReplicaSet"): (REPLICASET_COLUMNS, replicaset_cells),
    ("apps", "DaemonSet"): (DAEMONSET_COLUMNS, daemonset_cells),
    ("batch", "Job"): (JOB_COLUMNS, job_cells),
    ("coordination.k8s.io", "Lease"): (LEASE_COLUMNS, lease_cells),
    ("discovery.k8s.io", "EndpointSlice"): (ENDPOINTSLICE_COLUMNS, endpointslice_cells),
    ("rbac.authorization.k8s.io", "Role"): (ROLE_COLUMNS, role_cells),
    ("rbac.authorization.k8s.io", "ClusterRole"): (ROLE_COLUMNS, role_cells),
    ("rbac.authorization.k8s.io", "RoleBinding"): (ROLEBINDING_COLUMNS, binding_cells),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): (CLUSTERROLEBINDING_COLUMNS,
                                                          binding_cells),
}


def columns_for(resource: Resource) -> list[Column]:
    return PRINTERS.get((resource.group, resource.kind), (DEFAULT_COLUMNS, default_cells))[0]


# ---------------------------------------------------------------------------------------------
# the Table itself


def partial_object_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    """The row object for includeObject=Metadata: just the metadata, typed as meta.k8s.io."""
    metadata = dict(_meta(obj))
    # Upstream clears managedFields in Table rows; they are large and nobody prints them.
    metadata.pop("managedFields", None)
    return {"kind": "PartialObjectMetadata", "apiVersion": TABLE_API_VERSION, "metadata": metadata}


def _row_object(obj: dict[str, Any], include_object: str) -> dict[str, Any] | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return partial_object_metadata(obj)


def _safe_cells(fill: CellsFn, obj: dict[str, Any], now: datetime, width: int) -> list[Any]:
    try:
        cells = fill(obj, now)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError):
        # Why: one corrupt object must not fail the whole list for every user; show what
        # we can rather than a 500. The per-kind functions are written not to get here.
        cells = [_name(obj)]
    if len(cells) < width:
        cells = cells + ["<unknown>"] * (width - len(cells))
    return cells[:width]


def to_table(
    resource: Resource,
    objects: list[dict[str, Any]],
    list_metadata: dict[str, Any] | None,
    include_object: str = "Metadata",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Render objects of one resource as a meta.k8s.io/v1 Table.

    `list_metadata` is the ListMeta of a list response; pass None for a single-object GET,
    in which case the table carries that object's resourceVersion, as upstream does.
    `include_object` is the request's includeObject: "Metadata" (default), "Object" or "None".
    """
    now = now or datetime.now(UTC)
    columns, fill = PRINTERS.get((resource.group, resource.kind), (DEFAULT_COLUMNS, default_cells))
    rows: list[Row] = []
    for obj in objects:
        if not isinstance(obj, dict):
            continue
        row: Row = {"cells": _safe_cells(fill, obj, now, len(columns))}
        if resource.group == "" and resource.kind == "Pod":
            conditions = _pod_row_conditions(obj)
            if conditions:
                row["conditions"] = conditions
        row_object = _row_object(obj, include_object)
        if row_object is not None:
            row["object"] = row_object
        rows.append(row)

    metadata: dict[str, Any] = {}
    if list_metadata is not None:
        source = _dict(list_metadata)
        metadata["resourceVersion"] = _str(source.get("resourceVersion"))
        if source.get("continue"):
            metadata["continue"] = _str(source.get("continue"))
        remaining = _opt_int(source.get("remainingItemCount"))
        if remaining is not None:
            metadata["remainingItemCount"] = remaining
    else:
        first = next((o for o in objects if isinstance(o, dict)), {})
        metadata["resourceVersion"] = _str(_meta(first).get("resourceVersion"))

    return {
        "kind": "Table",
        "apiVersion": TABLE_API_VERSION,
        "metadata": metadata,
        "columnDefinitions": [dict(c) for c in columns],
        "rows": rows,
    }
