"""A container's environment, as upstream's `makeEnvironmentVariables` builds it.

Precedence, lowest first: Service variables (`<SVC>_SERVICE_HOST`, ... for the services of
the pod's namespace when `enableServiceLinks`, and always the `kubernetes` service), then
`envFrom` (ConfigMaps and Secrets, each key with the optional prefix), then `env`. `env`
values expand `$(VAR)` from what precedes them (`$$` is a literal `$`, an unknown reference
stays as written); `valueFrom` reads the pod's fields (fieldRef), its resources
(resourceFieldRef), a ConfigMap key or a Secret key. A missing ConfigMap, Secret or key that
is not `optional` is an error: the container waits with CreateContainerConfigError.

Lookups of ConfigMaps and Secrets are injected (the kubelet reads them through the API),
which keeps this module pure and testable.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from api.quantity import parse_quantity

Obj = dict[str, Any]
# (namespace, name) -> the object, or None when it does not exist
Lookup = Callable[[str, str], Awaitable[Obj | None]]

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_FIELD_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class EnvError(Exception):
    """The environment cannot be built (CreateContainerConfigError)."""


@dataclass
class PodContext:
    """What fieldRef and resourceFieldRef may read besides the pod itself."""

    host_ips: list[str] = field(default_factory=list)
    pod_ips: list[str] = field(default_factory=list)
    node_allocatable: Mapping[str, str] = field(default_factory=dict)


@dataclass
class EnvResult:
    env: list[tuple[str, str]]
    invalid_keys: list[str] = field(default_factory=list)  # skipped envFrom keys


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Kubernetes' `$(VAR)` expansion (third_party/forked/golang/expansion)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "$" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end == -1:
                    out.append(text[i:])  # unterminated: kept as written
                    break
                name = text[i + 2:end]
                value = lookup(name) if name else None
                out.append(value if value is not None else text[i:end + 1])
                i = end + 1
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def _service_name(name: str) -> str:
    return name.upper().replace("-", "_")


def service_env(services: list[Obj]) -> dict[str, str]:
    """Docker-link style variables for services with a cluster IP (upstream envvars.go)."""
    env: dict[str, str] = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
        if not ip or ip == "None" or not ports:
            continue
        name = _service_name(svc["metadata"]["name"])
        env[f"{name}_SERVICE_HOST"] = ip
        env[f"{name}_SERVICE_PORT"] = str(ports[0].get("port"))
        for p in ports:
            if p.get("name"):
                env[f"{name}_SERVICE_PORT_{_service_name(p['name'])}"] = str(p.get("port"))
        first = ports[0]
        proto = str(first.get("protocol") or "TCP").lower()
        env[f"{name}_PORT"] = f"{proto}://{ip}:{first.get('port')}"
        for p in ports:
            proto_l = str(p.get("protocol") or "TCP").lower()
            prefix = f"{name}_PORT_{p.get('port')}_{proto_l.upper()}"
            env[prefix] = f"{proto_l}://{ip}:{p.get('port')}"
            env[f"{prefix}_PROTO"] = proto_l
            env[f"{prefix}_PORT"] = str(p.get("port"))
            env[f"{prefix}_ADDR"] = ip
    return env


def services_for_pod(pod: Obj, services: list[Obj]) -> list[Obj]:
    """The services whose variables a pod gets: its namespace's (if enableServiceLinks) and
    the master service `default/kubernetes`; a same-named service of the pod's own
    namespace wins."""
    ns = pod["metadata"].get("namespace", "default")
    links = (pod.get("spec") or {}).get("enableServiceLinks", True) is not False
    chosen: dict[str, Obj] = {}
    for svc in services:
        md = svc.get("metadata") or {}
        if md.get("namespace") == "default" and md.get("name") == "kubernetes":
            chosen.setdefault("kubernetes", svc)
    for svc in services:
        md = svc.get("metadata") or {}
        if links and md.get("namespace") == ns:
            chosen[md.get("name", "")] = svc
    return list(chosen.values())


def field_ref(pod: Obj, path: str, ctx: PodContext) -> str:
    md = pod.get("metadata") or {}
    m = _FIELD_SUBSCRIPT.match(path)
    if m:
        return str((md.get(m[1]) or {}).get(m[2], ""))
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": md.get("name"), "metadata.namespace": md.get("namespace"),
        "metadata.uid": md.get("uid"), "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": ctx.host_ips[0] if ctx.host_ips else "",
        "status.hostIPs": ",".join(ctx.host_ips),
        "status.podIP": ctx.pod_ips[0] if ctx.pod_ips else "",
        "status.podIPs": ",".join(ctx.pod_ips),
    }
    if path in ("metadata.labels", "metadata.annotations"):
        items = md.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    if path not in simple:
        raise EnvError(f"unsupported fieldRef fieldPath {path!r}")
    return str(simple[path] or "")


def resource_field_ref(pod: Obj, container: Obj, ref: Obj, ctx: PodContext) -> str:
    """limits./requests. cpu, memory, ephemeral-storage; with a divisor; a missing limit is
    the node's allocatable (as upstream)."""
    target = container
    if ref.get("containerName"):
        every = [*((pod.get("spec") or {}).get("containers") or []),
                 *((pod.get("spec") or {}).get("initContainers") or [])]
        found = [c for c in every if c.get("name") == ref["containerName"]]
        if not found:
            raise EnvError(f"resourceFieldRef: no container {ref['containerName']!r}")
        target = found[0]
    resource = str(ref.get("resource") or "")
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not name:
        raise EnvError(f"unsupported resourceFieldRef resource {resource!r}")
    resources = target.get("resources") or {}
    value = (resources.get(kind) or {}).get(name)
    if value is None and kind == "limits":
        value = ctx.node_allocatable.get(name)
    if value is None:
        value = "0"
    divisor = parse_quantity(str(ref.get("divisor") or "1"))
    if divisor <= 0:
        raise EnvError(f"resourceFieldRef divisor {ref.get('divisor')!r} must be positive")
    # Whole units of the divisor, rounded up (upstream convertResourceCPUToString and
    # convertResourceMemoryToString).
    return str(max(0, math.ceil(parse_quantity(str(value)) / divisor)))


async def resolve_env(pod: Obj, container: Obj, ctx: PodContext, *,
                      get_configmap: Lookup, get_secret: Lookup,
                      services: list[Obj] | None = None) -> EnvResult:
    ns = pod["metadata"].get("namespace", "default")
    svc_env = service_env(services_for_pod(pod, services or []))
    env: dict[str, str] = {}
    invalid: list[str] = []

    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        if source.get("configMapRef"):
            ref, kind = source["configMapRef"], "configmap"
            obj = await get_configmap(ns, ref.get("name", ""))
            data = dict((obj or {}).get("data") or {})
        elif source.get("secretRef"):
            ref, kind = source["secretRef"], "secret"
            obj = await get_secret(ns, ref.get("name", ""))
            data = {k: _b64(v) for k, v in ((obj or {}).get("data") or {}).items()}
            data.update((obj or {}).get("stringData") or {})
        else:
            continue
        if obj is None:
            if ref.get("optional"):
                continue
            raise EnvError(f'{kind} "{ref.get("name", "")}" not found')
        for key, value in data.items():
            name = prefix + key
            if not _ENV_NAME.match(name):
                invalid.append(name)
                continue
            env[name] = str(value)

    def lookup(name: str) -> str | None:
        return env.get(name, svc_env.get(name))

    for var in container.get("env") or []:
        name = var.get("name")
        if not name:
            continue
        source = var.get("valueFrom")
        if not source:
            env[name] = expand(str(var.get("value") or ""), lookup)
            continue
        if source.get("fieldRef"):
            env[name] = field_ref(pod, str(source["fieldRef"].get("fieldPath", "")), ctx)
        elif source.get("resourceFieldRef"):
            env[name] = resource_field_ref(pod, container, source["resourceFieldRef"], ctx)
        elif source.get("configMapKeyRef"):
            ref = source["configMapKeyRef"]
            obj = await get_configmap(ns, ref.get("name", ""))
            value = _key(obj, ref, "configmap", lambda o: o.get("data") or {})
            if value is not None:
                env[name] = value
        elif source.get("secretKeyRef"):
            ref = source["secretKeyRef"]
            obj = await get_secret(ns, ref.get("name", ""))
            value = _key(obj, ref, "secret",
                         lambda o: {k: _b64(v) for k, v in (o.get("data") or {}).items()})
            if value is not None:
                env[name] = value
    for key, value in svc_env.items():
        env.setdefault(key, value)
    return EnvResult(list(env.items()), invalid)


def _key(obj: Obj | None, ref: Obj, kind: str,
         data_of: Callable[[Obj], Mapping[str, str]]) -> str | None:
    name, key = ref.get("name", ""), ref.get("key", "")
    if obj is None:
        if ref.get("optional"):
            return None
        raise EnvError(f'{kind} "{name}" not found')
    data = data_of(obj)
    if key not in data:
        if ref.get("optional"):
            return None
        raise EnvError(f"couldn't find key {key} in {_kind_title(kind)} "
                       f"{obj['metadata'].get('namespace', '')}/{name}")
    return str(data[key])


def _kind_title(kind: str) -> str:
    return "ConfigMap" if kind == "configmap" else "Secret"


def _b64(value: Any) -> str:
    try:
        return base64.b64decode(str(value)).decode("utf-8", errors="replace")
    except ValueError:
        return str(value)


def expand_command(args: list[str], env: list[tuple[str, str]]) -> list[str]:
    """command/args expand `$(VAR)` from the container's final environment."""
    values = dict(env)
    return [expand(str(a), values.get) for a in args]
