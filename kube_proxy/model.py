"""Services and EndpointSlices reduced to what a proxier programs (pure functions).

The shape follows upstream's pkg/proxy (ServicePortName, the EndpointSlice cache and
CategorizeEndpoints in topology.go):

- One `ServicePort` per (service, port); its name is `namespace/name:portname` (just
  `namespace/name` for an unnamed port) plus the protocol.
- Skipped services: ExternalName, headless (`clusterIP: None`), no ClusterIP yet, IPv6-only,
  and services labelled `service.kubernetes.io/service-proxy-name` (they belong to another
  proxy). SCTP ports are skipped (with a reason the caller logs once).
- Endpoints come from EndpointSlices labelled `kubernetes.io/service-name` in the service's
  namespace, address type IPv4, matched to service ports by port name and protocol. An
  endpoint's `ready` is true unless the condition says false; `serving` defaults to `ready`;
  `terminating` defaults to false. The same ip:port in two slices counts once, ready winning.
- `select_endpoints`: the ready endpoints; when there are none, the serving terminating
  ones (upstream's ProxyTerminatingEndpoints), so connections drain instead of failing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SERVICE_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds, the API default of clientIP.timeoutSeconds
SUPPORTED_PROTOCOLS = ("TCP", "UDP")


@dataclass(frozen=True, order=True)
class ServicePortName:
    """One port of one service, as upstream's proxy.ServicePortName."""

    namespace: str
    name: str
    port: str  # the port's name; '' for a service with one unnamed port
    protocol: str = "TCP"

    @property
    def service_key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def __str__(self) -> str:
        return f"{self.service_key}:{self.port}" if self.port else self.service_key


@dataclass(frozen=True)
class ServicePort:
    name: ServicePortName
    cluster_ip: str
    port: int
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()
    affinity_timeout: int | None = None  # seconds when sessionAffinity is ClientIP

    @property
    def protocol(self) -> str:
        return self.name.protocol


@dataclass(frozen=True, order=True)
class Endpoint:
    ip: str
    port: int
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node_name: str = ""

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class Snapshot:
    """Every service port this proxy handles, with all of its endpoints (unfiltered)."""

    services: Mapping[ServicePortName, ServicePort] = field(default_factory=dict)
    endpoints: Mapping[ServicePortName, tuple[Endpoint, ...]] = field(default_factory=dict)
    skipped: Mapping[str, str] = field(default_factory=dict)  # service key -> why

    def usable_endpoints(self, name: ServicePortName) -> list[Endpoint]:
        return select_endpoints(self.endpoints.get(name, ()))


def select_endpoints(endpoints: Iterable[Endpoint]) -> list[Endpoint]:
    """Ready endpoints; when none is ready, the serving terminating ones."""
    endpoints = list(endpoints)
    ready = [ep for ep in endpoints if ep.ready]
    if ready:
        return ready
    return [ep for ep in endpoints if ep.serving and ep.terminating]


def _ipv4(text: object) -> str | None:
    if not isinstance(text, str):
        return None
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    return str(addr) if addr.version == 4 else None


def _meta(obj: Obj) -> Obj:
    md = obj.get("metadata")
    return md if isinstance(md, dict) else {}


def _cluster_ipv4(spec: Obj) -> str | None:
    candidates = list(spec.get("clusterIPs") or []) + [spec.get("clusterIP")]
    for ip in candidates:
        v4 = _ipv4(ip)
        if v4 is not None:
            return v4
    return None


def _affinity_timeout(spec: Obj) -> int | None:
    if spec.get("sessionAffinity") != "ClientIP":
        return None
    config = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
    timeout = config.get("timeoutSeconds")
    return timeout if isinstance(timeout, int) and timeout > 0 else DEFAULT_AFFINITY_TIMEOUT


def service_ports(svc: Obj) -> tuple[list[ServicePort], str | None]:
    """The service's ports this proxy programs, and why (some of) it is skipped, if so."""
    md, spec = _meta(svc), svc.get("spec") or {}
    namespace, name = str(md.get("namespace") or "default"), str(md.get("name") or "")
    if SERVICE_PROXY_NAME_LABEL in (md.get("labels") or {}):
        return [], "handled by another proxy (service.kubernetes.io/service-proxy-name)"
    if spec.get("type") == "ExternalName":
        return [], "ExternalName"
    cluster_ip = spec.get("clusterIP")
    if cluster_ip == "None":
        return [], "headless"
    v4 = _cluster_ipv4(spec)
    if v4 is None:
        return [], "no IPv4 clusterIP" if cluster_ip else "no clusterIP yet"
    external = tuple(ip for ip in map(_ipv4, spec.get("externalIPs") or []) if ip)
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    lb_ips = tuple(ip for ip in (_ipv4(i.get("ip")) for i in ingress if isinstance(i, dict))
                   if ip)
    affinity = _affinity_timeout(spec)
    out: list[ServicePort] = []
    skipped: list[str] = []
    for port in spec.get("ports") or []:
        if not isinstance(port, dict) or not isinstance(port.get("port"), int):
            continue
        protocol = str(port.get("protocol") or "TCP")
        port_name = ServicePortName(namespace, name, str(port.get("name") or ""), protocol)
        if protocol not in SUPPORTED_PROTOCOLS:
            skipped.append(f"port {port_name} ({protocol} is not supported)")
            continue
        node_port = port.get("nodePort")
        out.append(ServicePort(port_name, v4, port["port"],
                               node_port if isinstance(node_port, int) else 0,
                               external, lb_ips, affinity))
    return out, "; ".join(skipped) or None


def slice_endpoints(eps_slice: Obj) -> tuple[str, dict[ServicePortName, list[Endpoint]]]:
    """The service key a slice belongs to ('' if none) and its endpoints per service port."""
    md = _meta(eps_slice)
    service = (md.get("labels") or {}).get(SERVICE_NAME_LABEL)
    if not service or eps_slice.get("addressType", "IPv4") != "IPv4":
        return "", {}
    namespace = str(md.get("namespace") or "default")
    out: dict[ServicePortName, list[Endpoint]] = {}
    for port in eps_slice.get("ports") or []:
        if not isinstance(port, dict) or not isinstance(port.get("port"), int):
            continue
        spn = ServicePortName(namespace, service, str(port.get("name") or ""),
                              str(port.get("protocol") or "TCP"))
        eps = out.setdefault(spn, [])
        for endpoint in eps_slice.get("endpoints") or []:
            if not isinstance(endpoint, dict):
                continue
            addresses = endpoint.get("addresses") or []
            ip = _ipv4(addresses[0]) if addresses else None
            if ip is None:
                continue  # upstream, too, uses only the first address
            cond = endpoint.get("conditions") or {}
            ready = cond.get("ready") is not False
            serving = ready if cond.get("serving") is None else bool(cond.get("serving"))
            eps.append(Endpoint(ip, port["port"], ready, serving,
                                cond.get("terminating") is True,
                                str(endpoint.get("nodeName") or "")))
    return f"{namespace}/{service}", out


def _ip_sort_key(ep: Endpoint) -> tuple[int, int]:
    return int(ipaddress.IPv4Address(ep.ip)), ep.port


def build_snapshot(services: Iterable[Obj], slices: Iterable[Obj]) -> Snapshot:
    """The snapshot for the informers' current Services and EndpointSlices."""
    ports: dict[ServicePortName, ServicePort] = {}
    skipped: dict[str, str] = {}
    for svc in services:
        md = _meta(svc)
        found, reason = service_ports(svc)
        for sp in found:
            ports[sp.name] = sp
        if reason:
            skipped[f"{md.get('namespace') or 'default'}/{md.get('name')}"] = reason
    merged: dict[ServicePortName, dict[tuple[str, int], Endpoint]] = {}
    for eps_slice in slices:
        _, by_port = slice_endpoints(eps_slice)
        for spn, eps in by_port.items():
            if spn not in ports:
                continue
            into = merged.setdefault(spn, {})
            for ep in eps:
                have = into.get((ep.ip, ep.port))
                if have is None or (ep.ready and not have.ready):
                    into[(ep.ip, ep.port)] = ep
    endpoints = {spn: tuple(sorted(eps.values(), key=_ip_sort_key))
                 for spn, eps in merged.items()}
    return Snapshot(ports, endpoints, skipped)


def describe_changes(old: Snapshot | None, new: Snapshot) -> list[tuple[str, str]]:
    """(service port, what changed) for each service port whose programming changes."""
    old_services: Mapping[ServicePortName, ServicePort] = old.services if old else {}
    out: list[tuple[str, str]] = []
    for spn in sorted(set(old_services) | set(new.services)):
        before, after = old_services.get(spn), new.services.get(spn)
        if after is None:
            out.append((str(spn), "removed"))
            continue
        eps = _addresses(new.usable_endpoints(spn))
        if before is None:
            out.append((str(spn), f"added {_describe(after)} endpoints={eps}"))
            continue
        assert old is not None
        old_eps = _addresses(old.usable_endpoints(spn))
        if before != after or old_eps != eps:
            out.append((str(spn), f"updated {_describe(after)} endpoints={eps}"))
    return out


def _describe(sp: ServicePort) -> str:
    text = f"clusterIP={sp.cluster_ip}:{sp.port}/{sp.protocol}"
    if sp.node_port:
        text += f" nodePort={sp.node_port}"
    if sp.affinity_timeout is not None:
        text += f" affinity=ClientIP/{sp.affinity_timeout}s"
    return text


def _addresses(endpoints: Sequence[Endpoint]) -> str:
    return "[" + ",".join(ep.address for ep in endpoints) + "]"
