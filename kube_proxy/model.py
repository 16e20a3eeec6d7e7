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

A Service and its slices make one `ServiceState` (`service_state`), which depends on nothing
else. `SnapshotBuilder` keeps one per Service: a full `rebuild` computes every one, an
`update` recomputes only the Services it is told changed (and skips one whose Service and
slices still have the resourceVersions it was computed from). The snapshot it returns says
which service ports changed since the previous one (`Snapshot.changed_ports_since`), so the
consumers can look at those only.
"""

from __future__ import annotations

import ipaddress
import itertools
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


_generations = itertools.count(1)


def _next_generation() -> int:
    return next(_generations)


@dataclass(frozen=True)
class SnapshotDelta:
    """What changed from the snapshot of generation `base` to the one carrying this."""

    base: int
    services: frozenset[str] = frozenset()  # service keys whose state changed
    ports: frozenset[ServicePortName] = frozenset()  # their service ports, before and after


@dataclass(frozen=True)
class Snapshot:
    """Every service port this proxy handles, with all of its endpoints (unfiltered)."""

    services: Mapping[ServicePortName, ServicePort] = field(default_factory=dict)
    endpoints: Mapping[ServicePortName, tuple[Endpoint, ...]] = field(default_factory=dict)
    skipped: Mapping[str, str] = field(default_factory=dict)  # service key -> why
    # Unique per snapshot (a process-wide counter); not part of the content.
    generation: int = field(default_factory=_next_generation, compare=False)
    delta: SnapshotDelta | None = field(default=None, compare=False, repr=False)

    def usable_endpoints(self, name: ServicePortName) -> list[Endpoint]:
        return select_endpoints(self.endpoints.get(name, ()))

    def changed_ports_since(self, generation: int | None
                            ) -> frozenset[ServicePortName] | None:
        """The service ports that may differ from the snapshot of `generation` (every other
        one is equal in both); None when unknown (not derived from that snapshot)."""
        delta = self._delta_since(generation)
        return None if delta is None else delta.ports

    def changed_services_since(self, generation: int | None) -> frozenset[str] | None:
        """As `changed_ports_since`, as service keys (for what is per Service: `skipped`)."""
        delta = self._delta_since(generation)
        return None if delta is None else delta.services

    def _delta_since(self, generation: int | None) -> SnapshotDelta | None:
        if generation is None:
            return None
        if generation == self.generation:
            return SnapshotDelta(generation)
        if self.delta is None or self.delta.base != generation:
            return None
        return self.delta


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


def service_key(svc: Obj) -> str:
    """`namespace/name` of a Service: the key of its `ServiceState` and of `skipped`."""
    md = _meta(svc)
    return f"{md.get('namespace') or 'default'}/{md.get('name')}"


def slice_service_key(eps_slice: Obj) -> str:
    """`namespace/service` of the Service an EndpointSlice belongs to (its
    kubernetes.io/service-name label); '' when it has none."""
    md = _meta(eps_slice)
    service = (md.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return f"{md.get('namespace') or 'default'}/{service}" if service else ""


def _resource_version(obj: Obj) -> str:
    return str(_meta(obj).get("resourceVersion") or "")


def _slice_name(eps_slice: Obj) -> str:
    return str(_meta(eps_slice).get("name") or "")


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


def _merge(into: dict[tuple[str, int], Endpoint], endpoints: Iterable[Endpoint]) -> None:
    """An ip:port in two slices counts once: the first copy, unless a later one is ready
    and it is not."""
    for ep in endpoints:
        have = into.get((ep.ip, ep.port))
        if have is None or (ep.ready and not have.ready):
            into[(ep.ip, ep.port)] = ep


def _slice_order(eps_slice: Obj) -> tuple[str, str]:
    md = _meta(eps_slice)
    return str(md.get("namespace") or "default"), str(md.get("name") or "")


def build_snapshot(services: Iterable[Obj], slices: Iterable[Obj]) -> Snapshot:
    """The snapshot for the informers' current Services and EndpointSlices, from scratch.

    Slices are merged in the order of their names, so the result does not depend on the
    order the caches list them in."""
    ports: dict[ServicePortName, ServicePort] = {}
    skipped: dict[str, str] = {}
    for svc in services:
        found, reason = service_ports(svc)
        for sp in found:
            ports[sp.name] = sp
        if reason:
            skipped[service_key(svc)] = reason
    merged: dict[ServicePortName, dict[tuple[str, int], Endpoint]] = {}
    for eps_slice in sorted(slices, key=_slice_order):
        _, by_port = slice_endpoints(eps_slice)
        for spn, eps in by_port.items():
            if spn in ports:
                _merge(merged.setdefault(spn, {}), eps)
    endpoints = {spn: tuple(sorted(eps.values(), key=_ip_sort_key))
                 for spn, eps in merged.items()}
    return Snapshot(ports, endpoints, skipped)


@dataclass(frozen=True)
class ServiceState:
    """What one Service, with its EndpointSlices, puts into a snapshot."""

    ports: tuple[ServicePort, ...] = ()
    # Per service port that some slice names (possibly with no endpoint), in port order.
    endpoints: tuple[tuple[ServicePortName, tuple[Endpoint, ...]], ...] = ()
    skipped: str | None = None

    @property
    def port_names(self) -> frozenset[ServicePortName]:
        return frozenset(sp.name for sp in self.ports)


def service_state(svc: Obj, slices: Iterable[Obj]) -> ServiceState:
    """The state of one Service from its object and its slices (those whose
    kubernetes.io/service-name label names it), as `build_snapshot` computes it."""
    found, reason = service_ports(svc)
    names = {sp.name for sp in found}
    merged: dict[ServicePortName, dict[tuple[str, int], Endpoint]] = {}
    for eps_slice in sorted(slices, key=_slice_order):
        _, by_port = slice_endpoints(eps_slice)
        for spn, eps in by_port.items():
            if spn in names:
                _merge(merged.setdefault(spn, {}), eps)
    endpoints = tuple((sp.name, tuple(sorted(merged[sp.name].values(), key=_ip_sort_key)))
                      for sp in found if sp.name in merged)
    return ServiceState(tuple(found), endpoints, reason)


# The resourceVersions a ServiceState was computed from: the Service's, and (name, version)
# of each of its slices, by name.
Versions = tuple[str, tuple[tuple[str, str], ...]]


def _versions(svc: Obj, slices: Sequence[Obj]) -> Versions | None:
    """None when an object has no resourceVersion (then nothing can be skipped)."""
    versions = sorted((_slice_name(s), _resource_version(s)) for s in slices)
    rv = _resource_version(svc)
    if not rv or not all(v for _, v in versions):
        return None
    return rv, tuple(versions)


class SnapshotBuilder:
    """Snapshots kept up to date per Service.

    `rebuild` computes every Service's state from all the objects; `update` recomputes only
    the Services it is given, each with its current object (None: deleted) and its current
    slices. Both return a new, immutable `Snapshot` equal to `build_snapshot` of the same
    objects; `update`'s says which services and service ports changed (`SnapshotDelta`).
    A Service whose object and slices have the resourceVersions its state was computed from
    is not recomputed."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None
        self._states: dict[str, ServiceState] = {}
        self._versions: dict[str, Versions] = {}
        self._services: dict[ServicePortName, ServicePort] = {}
        self._endpoints: dict[ServicePortName, tuple[Endpoint, ...]] = {}
        self._skipped: dict[str, str] = {}

    def rebuild(self, services: Iterable[Obj], slices: Iterable[Obj]) -> Snapshot:
        by_service: dict[str, list[Obj]] = {}
        for eps_slice in slices:
            key = slice_service_key(eps_slice)
            if key:
                by_service.setdefault(key, []).append(eps_slice)
        self._states.clear()
        self._versions.clear()
        self._services.clear()
        self._endpoints.clear()
        self._skipped.clear()
        for svc in services:
            key = service_key(svc)
            mine = by_service.get(key, [])
            self._put(key, service_state(svc, mine), _versions(svc, mine))
        self.snapshot = Snapshot(dict(self._services), dict(self._endpoints),
                                 dict(self._skipped))
        return self.snapshot

    def update(self, changed: Iterable[tuple[str, Obj | None, Sequence[Obj]]]) -> Snapshot:
        """(service key, its Service or None, its slices) for each Service that may have
        changed since the last snapshot; `rebuild` must have been called once."""
        if self.snapshot is None:
            raise RuntimeError("SnapshotBuilder.update before the first rebuild")
        keys: set[str] = set()
        ports: set[ServicePortName] = set()
        for key, svc, slices in changed:
            versions = None if svc is None else _versions(svc, slices)
            if versions is not None and self._versions.get(key) == versions:
                continue  # the very objects its state was computed from
            old = self._states.get(key)
            new = None if svc is None else service_state(svc, slices)
            if old is not None:
                self._drop(key, old)
            if new is not None:
                self._put(key, new, versions)
            if new != old:
                keys.add(key)
                for state in (old, new):
                    if state is not None:
                        ports.update(state.port_names)
        self.snapshot = Snapshot(
            dict(self._services), dict(self._endpoints), dict(self._skipped),
            delta=SnapshotDelta(self.snapshot.generation, frozenset(keys), frozenset(ports)))
        return self.snapshot

    def _put(self, key: str, state: ServiceState, versions: Versions | None) -> None:
        self._states[key] = state
        if versions is None:
            self._versions.pop(key, None)
        else:
            self._versions[key] = versions
        for sp in state.ports:
            self._services[sp.name] = sp
        self._endpoints.update(state.endpoints)
        if state.skipped:
            self._skipped[key] = state.skipped

    def _drop(self, key: str, state: ServiceState) -> None:
        del self._states[key]
        self._versions.pop(key, None)
        for sp in state.ports:
            self._services.pop(sp.name, None)
        for name, _ in state.endpoints:
            self._endpoints.pop(name, None)
        self._skipped.pop(key, None)


def describe_changes(old: Snapshot | None, new: Snapshot) -> list[tuple[str, str]]:
    """(service port, what changed) for each service port whose programming changes."""
    old_services: Mapping[ServicePortName, ServicePort] = old.services if old else {}
    changed = new.changed_ports_since(old.generation) if old else None
    names = set(old_services) | set(new.services) if changed is None else changed
    out: list[tuple[str, str]] = []
    for spn in sorted(names):
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
