"""The cluster zone: the records that exist under the cluster domain, computed on demand from
Services and EndpointSlices (the Kubernetes DNS-based service discovery spec, schema 1.1.0).

    dns-version.<domain>                        TXT "1.1.0"
    <svc>.<ns>.svc.<domain>                     A/AAAA of the ClusterIPs; for a headless
                                                Service A/AAAA of every ready endpoint;
                                                CNAME <externalName> for ExternalName
    <host>.<svc>.<ns>.svc.<domain>              A/AAAA of the ready endpoints of a headless
                                                Service whose hostname (or, without one, its
                                                dashed IP: 10-1-2-3) is <host>
    _<port>._<proto>.<svc>.<ns>.svc.<domain>    SRV per named port: to <svc>.<ns>.svc... for a
                                                ClusterIP Service, to <host>.<svc>... per ready
                                                endpoint when headless; targets' A/AAAA go to
                                                the additional section
    <a-b-c-d>.<ns>.pod.<domain>                 A a.b.c.d (any well-formed IP, as CoreDNS's
                                                "pods insecure"; IPv6 with ':' written '-')
    <reversed-ip>.in-addr.arpa / .ip6.arpa      PTR for ClusterIPs and headless endpoints

The zone is read straight from the informers' stores on every query, so an answer reflects
the cache at that instant and nothing needs rebuilding when objects change. Names that do
not exist get NXDOMAIN; names that exist without records of the asked type (including
empty non-terminals like `<ns>.svc.<domain>` and `_tcp.<svc>...`) get NODATA; both carry the
zone's SOA in the authority section so resolvers can cache the negative answer (RFC 2308).
A headless Service with no ready endpoint does not exist, as the spec says.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from client.informer import NAMESPACE_INDEX, Store, namespace_index
from dns.wire import Rcode, Record, RRType, Soa, Srv, normalize, split_name

Obj = dict[str, Any]
IP = ipaddress.IPv4Address | ipaddress.IPv6Address

SCHEMA_VERSION = "1.1.0"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
CLUSTER_IP_INDEX = "clusterIP"
SERVICE_INDEX = "service"
ADDRESS_INDEX = "address"
MAX_CNAME_CHAIN = 8


# --- reading Services and EndpointSlices ----------------------------------------------------


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def parse_ip(text: object) -> IP | None:
    if not isinstance(text, str):
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_external_name(svc: Obj) -> bool:
    return _spec(svc).get("type") == "ExternalName"


def is_headless(svc: Obj) -> bool:
    return not is_external_name(svc) and _spec(svc).get("clusterIP") == "None"


def cluster_ips(svc: Obj) -> list[IP]:
    """The Service's ClusterIPs (spec.clusterIPs, else spec.clusterIP); none when headless."""
    if is_external_name(svc) or is_headless(svc):
        return []
    spec = _spec(svc)
    raw = spec.get("clusterIPs") or [spec.get("clusterIP")]
    return _unique(ip for ip in map(parse_ip, raw if isinstance(raw, list) else []) if ip)


def dashed(ip: IP) -> str:
    """The label an address gets when an endpoint has no hostname: 10-1-2-3, fd00--1."""
    return str(ip).replace(".", "-").replace(":", "-")


def ip_from_dashed(label: str) -> IP | None:
    if label.count("-") == 3:
        v4 = parse_ip(label.replace("-", "."))
        if v4 is not None:
            return v4
    v6 = parse_ip(label.replace("-", ":"))
    return v6 if isinstance(v6, ipaddress.IPv6Address) else None


@dataclass(frozen=True)
class Endpoint:
    host: str  # the endpoint's hostname label, or its dashed IP
    ip: IP


def ready_endpoints(slice_: Obj) -> list[Endpoint]:
    """Endpoints of one slice whose `conditions.ready` is not false (unset means ready)."""
    if slice_.get("addressType") not in ("IPv4", "IPv6"):
        return []  # FQDN slices name hosts, not addresses
    out: list[Endpoint] = []
    for ep in slice_.get("endpoints") or []:
        if not isinstance(ep, dict):
            continue
        conditions = ep.get("conditions") or {}
        if isinstance(conditions, dict) and conditions.get("ready") is False:
            continue
        addresses = ep.get("addresses") or []
        # Addresses of one endpoint are fungible; consumers may use the first (API docs).
        ip = parse_ip(addresses[0]) if isinstance(addresses, list) and addresses else None
        if ip is None:
            continue
        hostname = ep.get("hostname")
        host = hostname.lower() if isinstance(hostname, str) and hostname else dashed(ip)
        out.append(Endpoint(host, ip))
    return out


def slice_ports(slice_: Obj) -> list[tuple[str, str, int]]:
    """(name, protocol, port) of the slice's named ports, lower-cased."""
    out: list[tuple[str, str, int]] = []
    for port in slice_.get("ports") or []:
        if not isinstance(port, dict):
            continue
        name, number = port.get("name"), port.get("port")
        if isinstance(name, str) and name and isinstance(number, int):
            out.append((name.lower(), str(port.get("protocol") or "TCP").lower(), number))
    return out


def service_ports(svc: Obj) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    for port in _spec(svc).get("ports") or []:
        if not isinstance(port, dict):
            continue
        name, number = port.get("name"), port.get("port")
        if isinstance(name, str) and name and isinstance(number, int):
            out.append((name.lower(), str(port.get("protocol") or "TCP").lower(), number))
    return out


def _unique(items: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(items))


def _cluster_ip_index(svc: Obj) -> list[str]:
    return [str(ip) for ip in cluster_ips(svc)]


def _service_index(slice_: Obj) -> list[str]:
    md = slice_.get("metadata") or {}
    name = (md.get("labels") or {}).get(SERVICE_NAME_LABEL)
    ns = md.get("namespace")
    return [f"{ns}/{name}"] if isinstance(name, str) and name and ns else []


def _address_index(slice_: Obj) -> list[str]:
    return _unique(str(ep.ip) for ep in ready_endpoints(slice_))


def _ensure_index(store: Store, name: str, fn: Any) -> None:
    try:
        store.add_index(name, fn)
    except ValueError:
        pass  # already there (a store shared with another user of the same index)


class ClusterState:
    """Read access to the Services and EndpointSlices stores, with the indexes DNS needs.

    The stores are the informers' own (or, in tests, plain `Store`s filled by hand).
    `serial` is the SOA serial: it moves whenever `changed()` is called, so secondaries and
    caches can tell the zone changed.
    """

    def __init__(self, services: Store | None = None, slices: Store | None = None) -> None:
        self.services = services if services is not None else Store()
        self.slices = slices if slices is not None else Store()
        _ensure_index(self.services, NAMESPACE_INDEX, namespace_index)
        _ensure_index(self.services, CLUSTER_IP_INDEX, _cluster_ip_index)
        _ensure_index(self.slices, SERVICE_INDEX, _service_index)
        _ensure_index(self.slices, ADDRESS_INDEX, _address_index)
        self.serial = int(time.time()) & 0xFFFFFFFF

    @classmethod
    def from_objects(cls, services: Iterable[Obj] = (), slices: Iterable[Obj] = ()
                     ) -> ClusterState:
        state = cls()
        for svc in services:
            state.services.put(svc)
        for slice_ in slices:
            state.slices.put(slice_)
        return state

    def changed(self, *_: object) -> None:
        """An informer handler: the zone changed, move the SOA serial forward."""
        self.serial = max(self.serial + 1, int(time.time())) & 0xFFFFFFFF

    def service(self, namespace: str, name: str) -> Obj | None:
        return self.services.get(f"{namespace}/{name}")

    def slices_of(self, namespace: str, name: str) -> list[Obj]:
        return self.slices.by_index(SERVICE_INDEX, f"{namespace}/{name}")

    def has_namespace(self, namespace: str) -> bool:
        return bool(self.services.index_keys(NAMESPACE_INDEX, namespace))

    def services_with_ip(self, ip: IP) -> list[Obj]:
        return self.services.by_index(CLUSTER_IP_INDEX, str(ip))

    def slices_with_address(self, ip: IP) -> list[Obj]:
        return self.slices.by_index(ADDRESS_INDEX, str(ip))


# --- answers -------------------------------------------------------------------------------


@dataclass
class Answer:
    """What the zone says about one question (the handler turns it into a response)."""

    rcode: int = Rcode.NOERROR
    answers: list[Record] = field(default_factory=list)
    authorities: list[Record] = field(default_factory=list)
    additionals: list[Record] = field(default_factory=list)
    # The answer ends in a CNAME to a name outside the zone; a recursive server resolves it.
    cname_target: str | None = None


@dataclass
class _Node:
    """The records owned by one existing name (empty: an empty non-terminal)."""

    records: list[Record] = field(default_factory=list)
    additionals: list[Record] = field(default_factory=list)


class ClusterZone:
    """Authoritative answers for `<domain>` and the reverse names of cluster IPs."""

    def __init__(self, state: ClusterState, domain: str = "cluster.local", ttl: int = 30
                 ) -> None:
        self.state = state
        self.domain = normalize(domain)
        self.ttl = ttl
        labels = _labels(self.domain)
        if not labels:
            raise ValueError(f"invalid cluster domain {domain!r}")
        self._domain_labels = labels

    # --- public ---------------------------------------------------------------------------

    def contains(self, name: str) -> bool:
        """True for the domain itself and every name under it."""
        labels = _labels(normalize(name))
        n = len(self._domain_labels)
        return labels is not None and len(labels) >= n and labels[len(labels) - n:] == \
            self._domain_labels

    def soa(self) -> Record:
        d = self.domain
        return Record(d, RRType.SOA, self.ttl,
                      Soa(f"ns.dns.{d}", f"hostmaster.{d}", self.state.serial, 7200, 1800,
                          86400, self.ttl))

    def resolve(self, qname: str, qtype: int) -> Answer | None:
        """The zone's answer, or None when the name is not the zone's (forward it)."""
        name = normalize(qname)
        if self.contains(name):
            return self._resolve_in_zone(name, qtype, 0)
        if qtype in (RRType.PTR, RRType.ANY):
            ptrs = self._ptr_records(name)
            if ptrs:
                return Answer(answers=ptrs)
        return None

    # --- forward zone ---------------------------------------------------------------------

    def _resolve_in_zone(self, name: str, qtype: int, depth: int) -> Answer:
        node = self._node(name)
        if node is None:
            return Answer(Rcode.NXDOMAIN, authorities=[self.soa()])
        cnames = [r for r in node.records if r.rtype == RRType.CNAME]
        if cnames and qtype not in (RRType.CNAME, RRType.ANY):
            target = normalize(str(cnames[0].data))
            if self.contains(target) and depth < MAX_CNAME_CHAIN:
                rest = self._resolve_in_zone(target, qtype, depth + 1)
                return Answer(rest.rcode, cnames + rest.answers, rest.authorities,
                              rest.additionals, rest.cname_target)
            return Answer(answers=cnames, cname_target=None if self.contains(target)
                          else target)
        matching = node.records if qtype == RRType.ANY else \
            [r for r in node.records if r.rtype == qtype]
        if not matching:
            return Answer(authorities=[self.soa()])  # NODATA
        extra = node.additionals if any(r.rtype == RRType.SRV for r in matching) else []
        return Answer(answers=matching, additionals=extra)

    def _node(self, name: str) -> _Node | None:
        labels = _labels(name)
        assert labels is not None
        rel = labels[:len(labels) - len(self._domain_labels)]
        rel.reverse()  # from the domain outwards: svc, <ns>, <svc>, ...
        if not rel:
            return _Node([self.soa()])
        if rel == ["dns-version"]:
            return _Node([Record(name, RRType.TXT, self.ttl, (SCHEMA_VERSION.encode(),))])
        if rel[0] == "svc":
            return self._svc_node(name, rel[1:])
        if rel[0] == "pod":
            return self._pod_node(name, rel[1:])
        return None

    def _svc_node(self, name: str, rel: list[str]) -> _Node | None:
        if not rel:
            return _Node()  # svc.<domain>
        ns = rel[0]
        if len(rel) == 1:
            return _Node() if self.state.has_namespace(ns) else None
        svc = self.state.service(ns, rel[1])
        if svc is None:
            return None
        fqdn = f"{rel[1]}.{ns}.svc.{self.domain}"
        endpoints = self._endpoints(ns, rel[1]) if is_headless(svc) else []
        if is_headless(svc) and not endpoints:
            return None  # the spec: a headless Service without ready endpoints is NXDOMAIN
        if len(rel) == 2:
            return self._service_records(svc, name, endpoints)
        if len(rel) == 3:
            return self._below_service(svc, ns, rel[1], rel[2], name, endpoints)
        if len(rel) == 4:
            return self._srv(svc, ns, rel[1], rel[2], rel[3], name, fqdn)
        return None

    def _endpoints(self, ns: str, name: str) -> list[Endpoint]:
        return _unique(ep for s in self.state.slices_of(ns, name) for ep in ready_endpoints(s))

    def _address_records(self, owner: str, ips: Iterable[IP]) -> list[Record]:
        return [Record(owner, RRType.A if ip.version == 4 else RRType.AAAA, self.ttl, str(ip))
                for ip in _unique(ips)]

    def _service_records(self, svc: Obj, owner: str, endpoints: list[Endpoint]) -> _Node:
        if is_external_name(svc):
            target = str(_spec(svc).get("externalName") or "").rstrip(".")
            return _Node([Record(owner, RRType.CNAME, self.ttl, target)] if target else [])
        if is_headless(svc):
            return _Node(self._address_records(owner, (ep.ip for ep in endpoints)))
        return _Node(self._address_records(owner, cluster_ips(svc)))

    def _below_service(self, svc: Obj, ns: str, name: str, label: str, owner: str,
                       endpoints: list[Endpoint]) -> _Node | None:
        if is_external_name(svc):
            return None
        if label.startswith("_"):
            # `_tcp.<svc>...`: exists (with no records) when a named port has that protocol.
            protocols = {proto for _, proto, _ in self._named_ports(svc, ns, name)}
            return _Node() if label[1:] in protocols else None
        if not is_headless(svc):
            return None
        ips = [ep.ip for ep in endpoints if ep.host == label]
        return _Node(self._address_records(owner, ips)) if ips else None

    def _named_ports(self, svc: Obj, ns: str, name: str) -> list[tuple[str, str, int]]:
        if is_headless(svc):
            return _unique(p for s in self.state.slices_of(ns, name) for p in slice_ports(s))
        return service_ports(svc)

    def _srv(self, svc: Obj, ns: str, name: str, proto_label: str, port_label: str,
             owner: str, fqdn: str) -> _Node | None:
        if is_external_name(svc) or not (proto_label.startswith("_") and
                                          port_label.startswith("_")):
            return None
        proto, port_name = proto_label[1:], port_label[1:]
        targets: list[tuple[int, str, IP | None]] = []  # (port, target name, target address)
        if is_headless(svc):
            for slice_ in self.state.slices_of(ns, name):
                numbers = [n for pname, pproto, n in slice_ports(slice_)
                           if pname == port_name and pproto == proto]
                for number in numbers:
                    for ep in ready_endpoints(slice_):
                        targets.append((number, f"{ep.host}.{fqdn}", ep.ip))
        else:
            for pname, pproto, number in service_ports(svc):
                if pname == port_name and pproto == proto:
                    targets.append((number, fqdn, None))
        if not targets:
            return None
        # One SRV per (port, target): a dual-stack endpoint is one target with two addresses.
        srvs = _unique((port, target) for port, target, _ in targets)
        weight = max(1, 100 // len(srvs))
        records = [Record(owner, RRType.SRV, self.ttl, Srv(0, weight, port, target))
                   for port, target in srvs]
        extra: list[Record] = []
        for _, target, ip in targets:
            extra += self._address_records(target, cluster_ips(svc) if ip is None else [ip])
        return _Node(records, _unique(extra))

    def _pod_node(self, name: str, rel: list[str]) -> _Node | None:
        if len(rel) <= 1:
            return _Node()  # pod.<domain>, <ns>.pod.<domain>
        if len(rel) == 2:
            ip = ip_from_dashed(rel[1])
            return _Node(self._address_records(name, [ip])) if ip is not None else None
        return None

    # --- reverse zones --------------------------------------------------------------------

    def _ptr_records(self, name: str) -> list[Record]:
        ip = reverse_name_ip(name)
        if ip is None:
            return []
        targets: list[str] = []
        for owner in self.state.services_with_ip(ip):
            md = owner["metadata"]
            targets.append(f"{md['name']}.{md.get('namespace')}.svc.{self.domain}")
        for slice_ in self.state.slices_with_address(ip):
            svc_keys = _service_index(slice_)
            if not svc_keys:
                continue
            ns, _, svc_name = svc_keys[0].partition("/")
            svc = self.state.service(ns, svc_name)
            if svc is None or not is_headless(svc):
                continue
            targets += [f"{ep.host}.{svc_name}.{ns}.svc.{self.domain}"
                        for ep in ready_endpoints(slice_) if ep.ip == ip]
        return [Record(name, RRType.PTR, self.ttl, t) for t in _unique(targets)]


def _labels(name: str) -> list[str] | None:
    try:
        return [label.decode("latin-1").lower() for label in split_name(name)]
    except ValueError:
        return None


def reverse_name_ip(name: str) -> IP | None:
    """The address a reverse-lookup name stands for (d.c.b.a.in-addr.arpa, nibbles.ip6.arpa)."""
    labels = _labels(name)
    if labels is None:
        return None
    if labels[-2:] == ["in-addr", "arpa"] and len(labels) == 6:
        return parse_ip(".".join(reversed(labels[:4])))
    if labels[-2:] == ["ip6", "arpa"] and len(labels) == 34:
        nibbles = list(reversed(labels[:32]))
        if not all(len(n) == 1 and n in "0123456789abcdef" for n in nibbles):
            return None
        groups = ["".join(nibbles[i:i + 4]) for i in range(0, 32, 4)]
        return parse_ip(":".join(groups))
    return None

