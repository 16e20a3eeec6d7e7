"""The cluster zone (dns.records) from in-memory Services and EndpointSlices, and the query
handler (dns.handler) around it: every record kind of the Kubernetes DNS spec, NXDOMAIN vs
NODATA, case-insensitivity, truncation over UDP, error answers; plus the add-on manifest."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from dns.addon import MANIFEST, manifests
from dns.handler import QueryHandler
from dns.records import ClusterState, ClusterZone, reverse_name_ip
from dns.wire import (
    Edns,
    Message,
    Question,
    Rcode,
    Record,
    RRClass,
    RRType,
    Srv,
    decode,
)

Obj = dict[str, Any]
D = "cluster.local"


def service(name: str, ns: str = "default", cluster_ip: str | None = "10.96.0.5", *,
            ips: list[str] | None = None, ports: list[tuple[str, int, str]] | None = None,
            external: str | None = None) -> Obj:
    spec: Obj = {"ports": [{"name": n, "port": p, "protocol": proto}
                           for n, p, proto in (ports or [])]}
    if external is not None:
        spec.update(type="ExternalName", externalName=external)
    else:
        spec.update(type="ClusterIP", clusterIP=cluster_ip)
        if ips is not None:
            spec["clusterIPs"] = ips
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def endpoint_slice(svc: str, endpoints: list[tuple[str, str | None, bool | None]], *,
                   ns: str = "default", ports: list[tuple[str, int, str]] = (),
                   family: str = "IPv4", name: str | None = None) -> Obj:
    eps = []
    for ip, hostname, ready in endpoints:
        ep: Obj = {"addresses": [ip], "conditions": {} if ready is None else {"ready": ready}}
        if hostname:
            ep["hostname"] = hostname
        eps.append(ep)
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name or f"{svc}-abc", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": family, "endpoints": eps,
            "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]}


def headless(name: str, ns: str = "default", **kw: Any) -> Obj:
    return service(name, ns, cluster_ip="None", **kw)


@pytest.fixture
def zone() -> ClusterZone:
    services = [
        service("web", ports=[("http", 80, "TCP"), ("", 81, "TCP"), ("dns", 53, "UDP")]),
        service("v6", ips=["fd00::a"], cluster_ip="fd00::a"),
        service("dual", ips=["10.96.0.7", "fd00::7"], cluster_ip="10.96.0.7"),
        headless("db", ports=[("pg", 5432, "TCP")]),
        headless("empty"),
        service("ext", external="www.Example.com."),
        service("alias", external=f"web.default.svc.{D}"),
        service("kube-dns", "kube-system", cluster_ip="10.96.0.10"),
    ]
    slices = [
        endpoint_slice("db", [("10.1.0.1", "db-0", True), ("10.1.0.2", None, None),
                              ("10.1.0.3", "db-2", False)],
                       ports=[("pg", 5432, "TCP")]),
        endpoint_slice("db", [("fd00::1:1", "db-0", True)], family="IPv6",
                       ports=[("pg", 5432, "TCP")], name="db-v6"),
        endpoint_slice("empty", [("10.1.0.9", "x", False)]),
        endpoint_slice("web", [("10.1.0.50", None, True)], ports=[("http", 8080, "TCP")]),
    ]
    return ClusterZone(ClusterState.from_objects(services, slices), D, ttl=30)


def data(records: list[Record], rtype: int | None = None) -> list[Any]:
    return sorted((r.data for r in records if rtype is None or r.rtype == rtype), key=str)


# --- forward zone -------------------------------------------------------------------------


def test_cluster_ip_service_has_an_a_record(zone: ClusterZone) -> None:
    ans = zone.resolve(f"web.default.svc.{D}", RRType.A)
    assert ans is not None and ans.rcode == Rcode.NOERROR
    assert ans.answers == [Record(f"web.default.svc.{D}", RRType.A, 30, "10.96.0.5")]
    assert ans.authorities == []


def test_ipv6_and_dual_stack_services(zone: ClusterZone) -> None:
    assert data(zone.resolve(f"v6.default.svc.{D}", RRType.AAAA).answers) == ["fd00::a"]
    assert data(zone.resolve(f"dual.default.svc.{D}", RRType.A).answers) == ["10.96.0.7"]
    assert data(zone.resolve(f"dual.default.svc.{D}", RRType.AAAA).answers) == ["fd00::7"]
    assert data(zone.resolve(f"dual.default.svc.{D}", RRType.ANY).answers) == \
        ["10.96.0.7", "fd00::7"]


def test_existing_name_without_that_type_is_nodata_with_soa(zone: ClusterZone) -> None:
    for name, qtype in [(f"v6.default.svc.{D}", RRType.A), (f"web.default.svc.{D}", RRType.MX),
                        (f"svc.{D}", RRType.A), (f"default.svc.{D}", RRType.A),
                        (f"_tcp.web.default.svc.{D}", RRType.SRV),
                        (f"kube-system.svc.{D}", RRType.AAAA), (f"pod.{D}", RRType.A)]:
        ans = zone.resolve(name, qtype)
        assert ans is not None, name
        assert (ans.rcode, ans.answers) == (Rcode.NOERROR, []), name
        assert [r.rtype for r in ans.authorities] == [RRType.SOA], name


def test_missing_names_are_nxdomain_with_soa(zone: ClusterZone) -> None:
    for name in [f"nope.default.svc.{D}", f"nope.svc.{D}", f"web.nope.svc.{D}",
                 f"x.web.default.svc.{D}", f"_sctp.web.default.svc.{D}",
                 f"_nope._tcp.web.default.svc.{D}", f"_http._udp.web.default.svc.{D}",
                 f"a.b.c.d.e.web.default.svc.{D}", f"foo.{D}", f"bad-ip.default.pod.{D}",
                 f"1-2-3-4.default.pod.x.{D}", f"_http._tcp.ext.default.svc.{D}"]:
        ans = zone.resolve(name, RRType.A)
        assert ans is not None, name
        assert ans.rcode == Rcode.NXDOMAIN, name
        assert ans.answers == []
        soa = ans.authorities[0]
        assert soa.rtype == RRType.SOA and soa.name == D and soa.data.minimum == 30


def test_headless_service_answers_ready_endpoints(zone: ClusterZone) -> None:
    name = f"db.default.svc.{D}"
    # not-ready 10.1.0.3 is left out; unset readiness counts as ready
    assert data(zone.resolve(name, RRType.A).answers) == ["10.1.0.1", "10.1.0.2"]
    assert data(zone.resolve(name, RRType.AAAA).answers) == ["fd00::1:1"]


def test_headless_service_without_ready_endpoints_is_nxdomain(zone: ClusterZone) -> None:
    assert zone.resolve(f"empty.default.svc.{D}", RRType.A).rcode == Rcode.NXDOMAIN
    assert zone.resolve(f"x.empty.default.svc.{D}", RRType.A).rcode == Rcode.NXDOMAIN


def test_endpoint_hostname_and_dashed_ip_records(zone: ClusterZone) -> None:
    assert data(zone.resolve(f"db-0.db.default.svc.{D}", RRType.A).answers) == ["10.1.0.1"]
    assert data(zone.resolve(f"db-0.db.default.svc.{D}", RRType.AAAA).answers) == \
        ["fd00::1:1"]
    assert data(zone.resolve(f"10-1-0-2.db.default.svc.{D}", RRType.A).answers) == \
        ["10.1.0.2"]
    # not ready: no name
    assert zone.resolve(f"db-2.db.default.svc.{D}", RRType.A).rcode == Rcode.NXDOMAIN
    # ClusterIP services have no per-endpoint names
    assert zone.resolve(f"10-1-0-50.web.default.svc.{D}", RRType.A).rcode == Rcode.NXDOMAIN


def test_srv_for_a_cluster_ip_service_points_at_the_service(zone: ClusterZone) -> None:
    fqdn = f"web.default.svc.{D}"
    ans = zone.resolve(f"_http._tcp.{fqdn}", RRType.SRV)
    assert ans.answers == [Record(f"_http._tcp.{fqdn}", RRType.SRV, 30, Srv(0, 100, 80, fqdn))]
    assert ans.additionals == [Record(fqdn, RRType.A, 30, "10.96.0.5")]
    udp = zone.resolve(f"_dns._udp.{fqdn}", RRType.SRV)
    assert [r.data.port for r in udp.answers] == [53]
    # An A query on the SRV name: the name exists, no A there.
    nodata = zone.resolve(f"_http._tcp.{fqdn}", RRType.A)
    assert (nodata.rcode, nodata.answers, nodata.additionals) == (Rcode.NOERROR, [], [])


def test_srv_for_a_headless_service_has_one_record_per_ready_endpoint(zone: ClusterZone
                                                                     ) -> None:
    fqdn = f"db.default.svc.{D}"
    ans = zone.resolve(f"_PG._TCP.{fqdn}", RRType.SRV)
    assert sorted(r.data.target for r in ans.answers) == \
        [f"10-1-0-2.{fqdn}", f"db-0.{fqdn}"]
    assert {r.data.port for r in ans.answers} == {5432}
    assert {r.data.weight for r in ans.answers} == {50}
    assert sorted((r.name, r.data) for r in ans.additionals) == [
        (f"10-1-0-2.{fqdn}", "10.1.0.2"), (f"db-0.{fqdn}", "10.1.0.1"),
        (f"db-0.{fqdn}", "fd00::1:1")]


def test_pod_records(zone: ClusterZone) -> None:
    ans = zone.resolve(f"10-244-1-7.default.pod.{D}", RRType.A)
    assert ans.answers == [Record(f"10-244-1-7.default.pod.{D}", RRType.A, 30, "10.244.1.7")]
    six = zone.resolve(f"fd00--1-7.any-ns.pod.{D}", RRType.AAAA)
    assert data(six.answers) == ["fd00::1:7"]
    assert zone.resolve(f"10-244-1-7.default.pod.{D}", RRType.AAAA).authorities
    assert zone.resolve(f"10-244-1-700.default.pod.{D}", RRType.A).rcode == Rcode.NXDOMAIN


def test_external_name_is_a_cname_not_chased_outside(zone: ClusterZone) -> None:
    name = f"ext.default.svc.{D}"
    ans = zone.resolve(name, RRType.A)
    assert ans.answers == [Record(name, RRType.CNAME, 30, "www.Example.com")]
    assert ans.cname_target == "www.example.com"
    assert zone.resolve(name, RRType.CNAME).cname_target is None


def test_cname_into_the_cluster_is_followed(zone: ClusterZone) -> None:
    ans = zone.resolve(f"alias.default.svc.{D}", RRType.A)
    assert [(r.rtype, r.data) for r in ans.answers] == \
        [(RRType.CNAME, f"web.default.svc.{D}"), (RRType.A, "10.96.0.5")]
    assert ans.cname_target is None


def test_cname_loops_end() -> None:
    state = ClusterState.from_objects([service("a", external=f"b.default.svc.{D}"),
                                       service("b", external=f"a.default.svc.{D}")])
    ans = ClusterZone(state, D).resolve(f"a.default.svc.{D}", RRType.A)
    assert 1 < len(ans.answers) <= 10


def test_names_are_case_insensitive(zone: ClusterZone) -> None:
    assert data(zone.resolve("WEB.Default.SVC.Cluster.Local.", RRType.A).answers) == \
        ["10.96.0.5"]
    assert data(zone.resolve(f"DB-0.db.DEFAULT.svc.{D.upper()}", RRType.A).answers) == \
        ["10.1.0.1"]


def test_schema_version_and_apex(zone: ClusterZone) -> None:
    assert zone.resolve(f"dns-version.{D}", RRType.TXT).answers[0].data == (b"1.1.0",)
    apex = zone.resolve(D, RRType.SOA)
    assert [r.rtype for r in apex.answers] == [RRType.SOA]


def test_names_outside_the_zone_are_not_answered(zone: ClusterZone) -> None:
    assert zone.resolve("example.com", RRType.A) is None
    assert zone.resolve("cluster.local.example.com", RRType.A) is None
    assert zone.resolve("xcluster.local", RRType.A) is None
    assert not zone.contains("local")


def test_ptr_for_cluster_ips_and_headless_endpoints(zone: ClusterZone) -> None:
    ans = zone.resolve("5.0.96.10.in-addr.arpa", RRType.PTR)
    assert data(ans.answers) == [f"web.default.svc.{D}"]
    ans = zone.resolve("1.0.1.10.IN-ADDR.ARPA.", RRType.PTR)
    assert data(ans.answers) == [f"db-0.db.default.svc.{D}"]
    v6 = ".".join(reversed("fd00000000000000000000000000000a")) + ".ip6.arpa"
    assert data(zone.resolve(v6, RRType.PTR).answers) == [f"v6.default.svc.{D}"]
    # unknown addresses and endpoints of ClusterIP services: not ours (forwarded)
    assert zone.resolve("9.9.9.9.in-addr.arpa", RRType.PTR) is None
    assert zone.resolve("50.0.1.10.in-addr.arpa", RRType.PTR) is None
    assert reverse_name_ip("1.2.3.in-addr.arpa") is None


def test_zone_follows_the_stores() -> None:
    state = ClusterState()
    zone = ClusterZone(state, D)
    assert zone.resolve(f"late.default.svc.{D}", RRType.A).rcode == Rcode.NXDOMAIN
    serial = zone.soa().data.serial
    state.services.put(service("late", cluster_ip="10.96.0.99"))
    state.changed()
    assert data(zone.resolve(f"late.default.svc.{D}", RRType.A).answers) == ["10.96.0.99"]
    assert zone.soa().data.serial > serial
    state.services.remove("default/late")
    assert zone.resolve(f"late.default.svc.{D}", RRType.A).rcode == Rcode.NXDOMAIN


def test_malformed_objects_do_not_break_the_zone() -> None:
    weird = [{"metadata": {"name": "w", "namespace": "default"}, "spec": None},
             {"metadata": {"name": "x", "namespace": "default"},
              "spec": {"clusterIP": "None", "ports": "nope"}}]
    slices = [{"metadata": {"name": "s", "namespace": "default",
                            "labels": {"kubernetes.io/service-name": "x"}},
               "addressType": "IPv4", "endpoints": [None, {"addresses": ["bogus"]},
                                                    {"addresses": []}], "ports": [None]}]
    zone = ClusterZone(ClusterState.from_objects(weird, slices), D)
    assert zone.resolve(f"w.default.svc.{D}", RRType.A).rcode == Rcode.NOERROR
    assert zone.resolve(f"x.default.svc.{D}", RRType.A).rcode == Rcode.NXDOMAIN


# --- the handler around the zone ----------------------------------------------------------


class StubForwarder:
    def __init__(self, answer: bytes | None) -> None:
        self.answer = answer
        self.queries: list[bytes] = []

    async def forward(self, query: bytes) -> bytes | None:
        self.queries.append(query)
        return self.answer


def query(name: str, qtype: int = RRType.A, *, edns: Edns | None = None, ident: int = 77,
          qclass: int = RRClass.IN, opcode: int = 0) -> bytes:
    return Message(id=ident, rd=True, opcode=opcode, questions=[Question(name, qtype, qclass)],
                   edns=edns).to_wire()


async def ask(handler: QueryHandler, wire: bytes, transport: str = "udp") -> Message:
    raw = await handler.handle(wire, transport)  # type: ignore[arg-type]
    assert raw is not None
    return decode(raw)


async def test_answers_are_authoritative_and_spelt_as_asked(zone: ClusterZone) -> None:
    resp = await ask(QueryHandler(zone), query("Web.DEFAULT.svc.cluster.local"))
    assert resp.id == 77 and resp.qr and resp.aa and resp.rd and not resp.ra
    assert resp.questions == [Question("Web.DEFAULT.svc.cluster.local", RRType.A)]
    assert [(r.name, r.data) for r in resp.answers] == \
        [("Web.DEFAULT.svc.cluster.local", "10.96.0.5")]


async def test_nxdomain_and_nodata_on_the_wire(zone: ClusterZone) -> None:
    handler = QueryHandler(zone)
    nx = await ask(handler, query(f"nope.default.svc.{D}"))
    assert nx.rcode == Rcode.NXDOMAIN and nx.aa and nx.answers == []
    assert nx.authorities[0].rtype == RRType.SOA
    nodata = await ask(handler, query(f"web.default.svc.{D}", RRType.AAAA))
    assert nodata.rcode == Rcode.NOERROR and nodata.answers == []
    assert nodata.authorities[0].rtype == RRType.SOA


async def test_any_query_returns_addresses(zone: ClusterZone) -> None:
    resp = await ask(QueryHandler(zone), query(f"dual.default.svc.{D}", RRType.ANY))
    assert {r.rtype for r in resp.answers} == {RRType.A, RRType.AAAA}


def big_zone(n: int) -> ClusterZone:
    eps = [(f"10.2.{i // 250}.{i % 250 + 1}", f"host-{i}", True) for i in range(n)]
    return ClusterZone(ClusterState.from_objects(
        [headless("big", ports=[("http", 80, "TCP")])],
        [endpoint_slice("big", eps, ports=[("http", 80, "TCP")])]), D)


async def test_udp_answers_over_512_octets_are_truncated(zone: ClusterZone) -> None:
    handler = QueryHandler(big_zone(40))
    name = f"big.default.svc.{D}"
    small = await handler.handle(query(name), "udp")
    assert small is not None and len(small) <= 512
    resp = decode(small)
    assert resp.tc and resp.answers == [] and resp.questions[0].name == name
    full = await ask(handler, query(name), "tcp")
    assert not full.tc and len(full.answers) == 40
    # With EDNS the client may take more (up to its own size).
    edns = await ask(handler, query(name, edns=Edns(udp_size=4096)))
    assert not edns.tc and len(edns.answers) == 40 and edns.edns is not None
    assert edns.edns.udp_size == 1232


async def test_additional_section_is_dropped_before_truncating() -> None:
    handler = QueryHandler(big_zone(8))  # 634 octets with the additionals, 506 without
    resp = await ask(handler, query(f"_http._tcp.big.default.svc.{D}", RRType.SRV))
    assert not resp.tc and len(resp.answers) == 8 and resp.additionals == []
    over_tcp = await ask(handler, query(f"_http._tcp.big.default.svc.{D}", RRType.SRV), "tcp")
    assert len(over_tcp.additionals) == 8


async def test_malformed_queries_get_formerr_and_answers_are_ignored(zone: ClusterZone
                                                                    ) -> None:
    handler = QueryHandler(zone)
    bad = query(f"web.default.svc.{D}")[:-3]
    resp = await ask(handler, bad)
    assert resp.rcode == Rcode.FORMERR and resp.id == 77 and resp.qr
    assert await handler.handle(b"\x01\x02", "udp") is None  # not even a header
    answer = Message(id=1, qr=True, questions=[Question("a", RRType.A)]).to_wire()
    assert await handler.handle(answer, "udp") is None
    two = Message(id=5, questions=[Question("a", 1), Question("b", 1)]).to_wire()
    assert (await ask(handler, two)).rcode == Rcode.FORMERR


async def test_unsupported_requests(zone: ClusterZone) -> None:
    handler = QueryHandler(zone)
    assert (await ask(handler, query("a", opcode=2))).rcode == Rcode.NOTIMP
    badvers = await ask(handler, query("a", edns=Edns(version=1)))
    assert badvers.rcode == Rcode.BADVERS and badvers.edns is not None
    assert (await ask(handler, query(D, RRType.AXFR), "tcp")).rcode == Rcode.REFUSED
    chaos = await ask(handler, query(f"web.default.svc.{D}", qclass=RRClass.CH))
    assert chaos.rcode == Rcode.REFUSED


async def test_not_synced_yet_is_servfail_for_cluster_names(zone: ClusterZone) -> None:
    resp = await ask(QueryHandler(zone, ready=lambda: False), query(f"web.default.svc.{D}"))
    assert resp.rcode == Rcode.SERVFAIL


async def test_outside_names_without_upstream_are_nxdomain(zone: ClusterZone) -> None:
    resp = await ask(QueryHandler(zone), query("example.com"))
    assert resp.rcode == Rcode.NXDOMAIN and not resp.aa and resp.authorities == []


async def test_outside_names_are_forwarded(zone: ClusterZone) -> None:
    upstream = Message(id=77, qr=True, ra=True, questions=[Question("example.com", 1)],
                       answers=[Record("example.com", 1, 60, "192.0.2.1")]).to_wire()
    fwd = StubForwarder(upstream)
    handler = QueryHandler(zone, fwd)  # type: ignore[arg-type]
    wire = query("example.com")
    assert await handler.handle(wire, "udp") == upstream
    assert fwd.queries == [wire]
    local = await ask(handler, query(f"web.default.svc.{D}"))
    assert local.ra and fwd.queries == [wire]  # cluster names never go upstream
    failing = QueryHandler(zone, StubForwarder(None))  # type: ignore[arg-type]
    assert (await ask(failing, query("example.com"))).rcode == Rcode.SERVFAIL


async def test_large_forwarded_answers_are_truncated_for_udp(zone: ClusterZone) -> None:
    records = [Record("big.example.com", 1, 60, f"192.0.2.{i}") for i in range(60)]
    upstream = Message(id=77, qr=True, questions=[Question("big.example.com", 1)],
                       answers=records).to_wire()
    handler = QueryHandler(zone, StubForwarder(upstream))  # type: ignore[arg-type]
    udp = await ask(handler, query("big.example.com"))
    assert udp.tc and udp.answers == [] and udp.id == 77
    assert len((await ask(handler, query("big.example.com"), "tcp")).answers) == 60


async def test_external_name_is_chased_through_the_upstream(zone: ClusterZone) -> None:
    upstream = Message(id=1, qr=True, questions=[Question("www.example.com", 1)],
                       answers=[Record("www.example.com", 1, 60, "192.0.2.80")]).to_wire()
    fwd = StubForwarder(upstream)
    resp = await ask(QueryHandler(zone, fwd), query(f"ext.default.svc.{D}"))  # type: ignore
    assert [(r.rtype, r.data) for r in resp.answers] == \
        [(RRType.CNAME, "www.Example.com"), (RRType.A, "192.0.2.80")]
    assert decode(fwd.queries[0]).questions == [Question("www.example.com", RRType.A)]


# --- the add-on manifest ------------------------------------------------------------------


def test_manifest_file_matches_the_python_objects() -> None:
    assert list(yaml.safe_load_all(MANIFEST.read_text())) == manifests()


def test_manifest_shape() -> None:
    account, deployment, svc = manifests(cluster_ip="10.96.0.53", image="img:1",
                                         upstreams=["1.2.3.4"])
    pod = deployment["spec"]["template"]["spec"]
    # Its own service account, bound to system:kube-dns by the bootstrap policy.
    assert account["kind"] == "ServiceAccount" and account["metadata"]["name"] == "kube-dns"
    assert pod["serviceAccountName"] == "kube-dns"
    container = pod["containers"][0]
    assert pod["dnsPolicy"] == "Default"
    assert container["image"] == "img:1" and container["imagePullPolicy"] == "IfNotPresent"
    assert container["command"][:2] == ["kubelite", "dns"]
    assert container["command"][-2:] == ["--upstream", "1.2.3.4"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert svc["spec"]["clusterIP"] == "10.96.0.53"
    assert [(p["name"], p["protocol"]) for p in svc["spec"]["ports"]] == \
        [("dns", "UDP"), ("dns-tcp", "TCP")]
    assert svc["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"] == \
        {"k8s-app": "kube-dns"}
