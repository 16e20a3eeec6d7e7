"""kube-proxy's pure parts: Services and EndpointSlices to a snapshot, the snapshot to iptables
chains (names, probabilities, affinity, REJECT, NodePorts, masquerade), and the per-chain diff
written on a change."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from kube_proxy.model import (
    Endpoint,
    ServicePortName,
    build_snapshot,
    describe_changes,
    select_endpoints,
)
from kube_proxy.rules import (
    FILTER,
    JUMP_RULES,
    NAT,
    ProxyConfig,
    build_ruleset,
    cleanup,
    diff_rulesets,
    endpoint_chain,
    external_chain,
    full_sync,
    parse_chains,
    port_proto_hash,
    probability,
    service_chain,
)

Obj = dict[str, Any]


def svc(name: str, ns: str = "ns1", *, cluster_ip: str = "10.96.0.10",
        ports: list[Obj] | None = None, **spec: Any) -> Obj:
    body: Obj = {"clusterIP": cluster_ip, "clusterIPs": [cluster_ip] if cluster_ip else [],
                 "type": "ClusterIP",
                 "ports": ports if ports is not None else
                 [{"name": "p80", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    body.update(spec)
    return {"metadata": {"name": name, "namespace": ns}, "spec": body}


def eps(service: str, endpoints: list[tuple[str, Obj]], ns: str = "ns1",
        ports: list[Obj] | None = None, name: str | None = None,
        address_type: str = "IPv4") -> Obj:
    return {"metadata": {"name": name or f"{service}-abc", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": address_type,
            "endpoints": [{"addresses": [ip], "conditions": cond} for ip, cond in endpoints],
            "ports": ports if ports is not None else
            [{"name": "p80", "port": 8080, "protocol": "TCP"}]}


READY: Obj = {"ready": True}
NOT_READY: Obj = {"ready": False}
TERMINATING_SERVING: Obj = {"ready": False, "serving": True, "terminating": True}
TERMINATING_NOT_SERVING: Obj = {"ready": False, "serving": False, "terminating": True}

P80 = ServicePortName("ns1", "svc1", "p80", "TCP")


def rules_of(services: list[Obj], slices: list[Obj], config: ProxyConfig | None = None
             ) -> dict[tuple[str, str], tuple[str, ...]]:
    return build_ruleset(build_snapshot(services, slices), config or ProxyConfig()).frozen()


def all_lines(chains: dict[tuple[str, str], tuple[str, ...]]) -> list[str]:
    return [line for rules in chains.values() for line in rules]


# --- chain names ------------------------------------------------------------------------------


def test_chain_names_match_upstream_hashes() -> None:
    # Expected values from upstream kube-proxy's iptables proxier tests
    # (ns1/svc1:p80 TCP, endpoint 10.180.0.1:80; ns2/svc2:p80 TCP).
    assert service_chain(P80) == "KUBE-SVC-XPGD46QRK7WJZT7O"
    assert endpoint_chain(P80, "10.180.0.1:80") == "KUBE-SEP-SXIVWICOYRO3J4NJ"
    assert service_chain(ServicePortName("ns2", "svc2", "p80")) == "KUBE-SVC-GNZBNJ2PO5MGZ6GT"
    assert external_chain(ServicePortName("ns2", "svc2", "p80")) == "KUBE-EXT-GNZBNJ2PO5MGZ6GT"


def test_chain_names_format_and_stability() -> None:
    names = {service_chain(ServicePortName("ns", f"s{i}", "", proto))
             for i in range(50) for proto in ("TCP", "UDP")}
    assert len(names) == 100
    for name in names:
        assert re.fullmatch(r"KUBE-SVC-[A-Z2-7]{16}", name), name
        assert len(name) <= 28  # iptables' chain name limit
    assert port_proto_hash("a/b:c", "tcp") == port_proto_hash("a/b:c", "tcp")
    assert service_chain(ServicePortName("a", "b", "c", "TCP")) != \
        service_chain(ServicePortName("a", "b", "c", "UDP"))
    assert str(ServicePortName("a", "b", "", "TCP")) == "a/b"
    assert str(ServicePortName("a", "b", "http", "TCP")) == "a/b:http"


# --- endpoint selection -----------------------------------------------------------------------


def test_not_ready_endpoints_excluded_and_terminating_fallback() -> None:
    ready, not_ready = Endpoint("10.0.0.1", 80), Endpoint("10.0.0.2", 80, ready=False,
                                                           serving=False)
    term = Endpoint("10.0.0.3", 80, ready=False, serving=True, terminating=True)
    term_dead = Endpoint("10.0.0.4", 80, ready=False, serving=False, terminating=True)
    assert select_endpoints([ready, not_ready, term]) == [ready]
    assert select_endpoints([not_ready, term, term_dead]) == [term]
    assert select_endpoints([not_ready, term_dead]) == []


def test_snapshot_conditions_defaults_dedup_and_port_matching() -> None:
    slices = [
        eps("svc1", [("10.1.0.3", READY), ("10.1.0.2", {}), ("10.1.0.4", NOT_READY)]),
        # the same endpoint not ready in a second slice: the ready copy wins
        eps("svc1", [("10.1.0.3", NOT_READY)], name="svc1-second"),
        # a port name the service does not have, another namespace, an IPv6 slice
        eps("svc1", [("10.1.0.9", READY)], ports=[{"name": "other", "port": 1}],
            name="svc1-other"),
        eps("svc1", [("10.1.0.8", READY)], ns="ns2"),
        eps("svc1", [("fd00::1", READY)], address_type="IPv6", name="svc1-v6"),
    ]
    snap = build_snapshot([svc("svc1")], slices)
    assert [ep.address for ep in snap.usable_endpoints(P80)] == ["10.1.0.2:8080",
                                                                 "10.1.0.3:8080"]
    assert len(snap.endpoints[P80]) == 3  # the not-ready one is known, just not used


def test_skipped_services() -> None:
    services = [
        svc("headless", cluster_ip="None"),
        svc("external", cluster_ip="", type="ExternalName", externalName="example.com"),
        svc("pending", cluster_ip=""),
        svc("sctp", ports=[{"name": "s", "port": 9, "protocol": "SCTP"},
                           {"name": "t", "port": 10, "protocol": "TCP"}]),
        {**svc("other-proxy"), "metadata": {
            "name": "other-proxy", "namespace": "ns1",
            "labels": {"service.kubernetes.io/service-proxy-name": "foo"}}},
    ]
    snap = build_snapshot(services, [])
    assert set(snap.services) == {ServicePortName("ns1", "sctp", "t", "TCP")}
    assert snap.skipped["ns1/headless"] == "headless"
    assert snap.skipped["ns1/external"] == "ExternalName"
    assert "SCTP" in snap.skipped["ns1/sctp"]
    assert set(snap.skipped) == {"ns1/headless", "ns1/external", "ns1/pending", "ns1/sctp",
                                 "ns1/other-proxy"}
    chains = rules_of(services, [eps("headless", [("10.1.0.1", READY)])])
    assert not any("headless" in line or "external" in line for line in all_lines(chains))


# --- the rules --------------------------------------------------------------------------------


def test_one_endpoint_matches_upstream_text() -> None:
    chains = rules_of([svc("svc1", cluster_ip="172.30.0.41", ports=[
        {"name": "p80", "port": 80, "protocol": "TCP"}])],
        [eps("svc1", [("10.180.0.1", READY)], ports=[{"name": "p80", "port": 80}])],
        ProxyConfig(cluster_cidr="10.0.0.0/24"))
    assert chains[(NAT, "KUBE-SERVICES")] == (
        ('-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp '
        '-d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O'),
        ('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must '
        'be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS'),
    )
    assert chains[(NAT, "KUBE-SVC-XPGD46QRK7WJZT7O")] == (
        ('-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp '
        '-p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/24 -j KUBE-MARK-MASQ'),
        ('-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" '
        '-j KUBE-SEP-SXIVWICOYRO3J4NJ'),
    )
    assert chains[(NAT, "KUBE-SEP-SXIVWICOYRO3J4NJ")] == (
        ("-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 "
        "-j KUBE-MARK-MASQ"),
        ("-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp "
        "-j DNAT --to-destination 10.180.0.1:80"),
    )
    assert chains[(NAT, "KUBE-MARK-MASQ")] == ("-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",)
    assert chains[(NAT, "KUBE-POSTROUTING")] == (
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
        ('-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
        "-j MASQUERADE"),
    )
    assert chains[(FILTER, "KUBE-SERVICES")] == ()


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_probabilities(n: int) -> None:
    ips = [f"10.1.0.{i + 1}" for i in range(n)]
    chains = rules_of([svc("svc1")], [eps("svc1", [(ip, READY) for ip in ips])])
    lines = chains[(NAT, service_chain(P80))]
    jumps = [line for line in lines if "KUBE-SEP-" in line]
    assert len(jumps) == n
    expected = [f"{1 / (n - i):0.10f}" for i in range(n - 1)]
    got = [m.group(1) for line in jumps
           if (m := re.search(r"--probability (\S+)", line))]
    assert got == expected
    assert "statistic" not in jumps[-1]
    for ip, line in zip(ips, jumps, strict=True):
        assert f"-j {endpoint_chain(P80, ip + ':8080')}" in line
    if n == 2:
        assert got == ["0.5000000000"]
    if n == 4:
        assert got == ["0.2500000000", "0.3333333333", "0.5000000000"]
    assert probability(3) == "0.3333333333"


def test_random_chain_spreads_uniformly() -> None:
    """Walking the probability chain picks each of n endpoints with probability 1/n."""
    n = 4
    chains = rules_of([svc("svc1")], [eps("svc1", [(f"10.1.0.{i}", READY)
                                                   for i in range(1, n + 1)])])
    jumps = [line for line in chains[(NAT, service_chain(P80))] if "KUBE-SEP-" in line]
    chance = [1.0]
    for line in jumps:
        m = re.search(r"--probability (\S+)", line)
        chance.append(float(m.group(1)) if m else 1.0)
    remaining, shares = 1.0, []
    for p in chance[1:]:
        shares.append(remaining * p)
        remaining *= 1 - p
    assert shares == pytest.approx([1 / n] * n, abs=1e-9)


def test_session_affinity_rules() -> None:
    service = svc("svc1", sessionAffinity="ClientIP",
                  sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}})
    chains = rules_of([service], [eps("svc1", [("10.1.0.1", READY), ("10.1.0.2", READY)])])
    sep1, sep2 = (endpoint_chain(P80, f"10.1.0.{i}:8080") for i in (1, 2))
    lines = chains[(NAT, service_chain(P80))]
    assert lines[0] == (f'-A {service_chain(P80)} -m comment --comment '
                        f'"ns1/svc1:p80 -> 10.1.0.1:8080" -m recent --name {sep1} --rcheck '
                        f'--seconds 600 --reap -j {sep1}')
    assert f"-m recent --name {sep2} --rcheck --seconds 600 --reap -j {sep2}" in lines[1]
    assert "--probability 0.5000000000" in lines[2]
    assert chains[(NAT, sep1)][1] == (
        f"-A {sep1} -m comment --comment ns1/svc1:p80 -m recent --name {sep1} --set "
        f"-m tcp -p tcp -j DNAT --to-destination 10.1.0.1:8080")
    # Default timeout when the config is missing.
    chains = rules_of([svc("svc1", sessionAffinity="ClientIP")],
                      [eps("svc1", [("10.1.0.1", READY)])])
    assert "--seconds 10800 --reap" in chains[(NAT, service_chain(P80))][0]


def test_no_endpoints_rejects_in_filter_table() -> None:
    service = svc("svc1", type="NodePort", externalIPs=["192.168.99.1"], ports=[
        {"name": "p80", "port": 80, "protocol": "TCP", "nodePort": 30080}])
    chains = rules_of([service], [eps("svc1", [("10.1.0.1", NOT_READY)])])
    assert chains[(FILTER, "KUBE-SERVICES")] == (
        ('-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp -p tcp '
        '-d 10.96.0.10 --dport 80 -j REJECT'),)
    assert chains[(FILTER, "KUBE-EXTERNAL-SERVICES")] == (
        ('-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns1/svc1:p80 has no endpoints" '
        '-m tcp -p tcp -d 192.168.99.1 --dport 80 -j REJECT'),
        ('-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns1/svc1:p80 has no endpoints" '
        '-m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j REJECT'),
    )
    assert (NAT, service_chain(P80)) not in chains
    assert not any("ns1/svc1" in line for line in chains[(NAT, "KUBE-SERVICES")])
    assert chains[(NAT, "KUBE-NODEPORTS")] == ()


def test_terminating_endpoints_used_only_without_ready_ones() -> None:
    slices = [eps("svc1", [("10.1.0.1", TERMINATING_SERVING),
                           ("10.1.0.2", TERMINATING_NOT_SERVING)])]
    chains = rules_of([svc("svc1")], slices)
    dnat = [line for line in all_lines(chains) if "-j DNAT" in line]
    assert dnat == [(f"-A {endpoint_chain(P80, '10.1.0.1:8080')} -m comment --comment "
                    f"ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.1.0.1:8080")]
    slices = [eps("svc1", [("10.1.0.1", TERMINATING_SERVING), ("10.1.0.3", READY)])]
    dnat = [line for line in all_lines(rules_of([svc("svc1")], slices)) if "-j DNAT" in line]
    assert len(dnat) == 1 and dnat[0].endswith("10.1.0.3:8080")


def test_nodeport_and_external_ips() -> None:
    ext = ServicePortName("ns2", "svc2", "p80")
    service = svc("svc2", ns="ns2", type="NodePort", externalIPs=["192.168.99.22"], ports=[
        {"name": "p80", "port": 80, "protocol": "TCP", "nodePort": 3001}])
    chains = rules_of([service], [eps("svc2", [("10.180.0.2", READY)], ns="ns2",
                                      ports=[{"name": "p80", "port": 80}])])
    assert chains[(NAT, "KUBE-NODEPORTS")] == (
        ("-A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 "
        "-j KUBE-EXT-GNZBNJ2PO5MGZ6GT"),)
    assert chains[(NAT, external_chain(ext))] == (
        ('-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade traffic for '
        'ns2/svc2:p80 external destinations" -j KUBE-MARK-MASQ'),
        "-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -j KUBE-SVC-GNZBNJ2PO5MGZ6GT",
    )
    services_chain = chains[(NAT, "KUBE-SERVICES")]
    assert services_chain[1] == (
        '-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 external IP" -m tcp -p tcp '
        '-d 192.168.99.22 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT')
    assert "KUBE-NODEPORTS" in services_chain[-1]  # always the last rule


def test_nodeport_addresses_and_udp() -> None:
    service = svc("svc1", type="NodePort", ports=[
        {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}])
    spn = ServicePortName("ns1", "svc1", "dns", "UDP")
    slices = [eps("svc1", [("10.1.0.1", READY)],
                  ports=[{"name": "dns", "port": 5353, "protocol": "UDP"}])]
    chains = rules_of([service], slices, ProxyConfig(nodeport_ips=("192.0.2.2", "10.0.0.1")))
    assert chains[(NAT, "KUBE-SERVICES")][-2:] == tuple(
        f'-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this '
        f'must be the last rule in this chain" -d {ip} -j KUBE-NODEPORTS'
        for ip in ("192.0.2.2", "10.0.0.1"))
    assert "-m udp -p udp --dport 30053" in chains[(NAT, "KUBE-NODEPORTS")][0]
    assert chains[(NAT, endpoint_chain(spn, "10.1.0.1:5353"))][1].endswith(
        "-m udp -p udp -j DNAT --to-destination 10.1.0.1:5353")
    assert service_chain(spn).startswith("KUBE-SVC-")


def test_masquerade_all_and_no_cluster_cidr() -> None:
    slices = [eps("svc1", [("10.1.0.1", READY)])]
    lines = rules_of([svc("svc1")], slices, ProxyConfig(masquerade_all=True))[
        (NAT, service_chain(P80))]
    assert lines[0].endswith("-d 10.96.0.10 --dport 80 -j KUBE-MARK-MASQ")
    assert "! -s" not in lines[0]
    lines = rules_of([svc("svc1")], slices)[(NAT, service_chain(P80))]
    assert not any("KUBE-MARK-MASQ" in line for line in lines)


def test_every_jump_target_is_a_chain_we_declare() -> None:
    services = [svc("svc1"), svc("svc2", cluster_ip="10.96.0.11", type="NodePort", ports=[
        {"name": "p80", "port": 80, "nodePort": 30001}], sessionAffinity="ClientIP")]
    slices = [eps("svc1", [("10.1.0.1", READY), ("10.1.0.2", READY)]),
              eps("svc2", [("10.1.0.3", READY)])]
    chains = rules_of(services, slices)
    builtin = {"ACCEPT", "REJECT", "DROP", "RETURN", "MARK", "DNAT", "MASQUERADE"}
    for (table, chain), lines in chains.items():
        for line in lines:
            assert line.startswith(f"-A {chain} ")
            target = line.rsplit(" -j ", 1)[1].split()[0]
            assert target in builtin or (table, target) in chains, line
    for jump in JUMP_RULES:
        assert (jump.table, jump.target) in chains


# --- diffs ------------------------------------------------------------------------------------


def test_diff_rewrites_only_changed_chains_and_deletes_removed() -> None:
    services = [svc("svc1"), svc("svc2", cluster_ip="10.96.0.11")]
    p2 = ServicePortName("ns1", "svc2", "p80")
    before = rules_of(services, [eps("svc1", [("10.1.0.1", READY), ("10.1.0.2", READY)]),
                                 eps("svc2", [("10.1.0.9", READY)])])
    # svc1 loses an endpoint; svc2 is untouched.
    after = rules_of(services, [eps("svc1", [("10.1.0.1", READY), ("10.1.0.2", NOT_READY)]),
                                eps("svc2", [("10.1.0.9", READY)])])
    diff = diff_rulesets(after, before)
    assert set(diff.write) == {(NAT, service_chain(P80))}
    assert diff.delete == ((NAT, endpoint_chain(P80, "10.1.0.2:8080")),)
    text = diff.restore()
    assert text.startswith("*nat\n")
    assert f":{service_chain(P80)} - [0:0]" in text
    assert f"-X {endpoint_chain(P80, '10.1.0.2:8080')}" in text
    assert service_chain(p2) not in text and "*filter" not in text
    assert text.endswith("COMMIT\n")
    # The declaration (flush) comes before the rules, the delete after them.
    lines = text.splitlines()
    assert lines.index(f"-X {endpoint_chain(P80, '10.1.0.2:8080')}") > max(
        i for i, line in enumerate(lines) if line.startswith("-A "))

    # Nothing changed: nothing to write.
    assert diff_rulesets(after, after).empty
    assert diff_rulesets(after, after).restore() == ""

    # All endpoints gone: the service's chains go, KUBE-SERVICES changes in both tables.
    gone = rules_of(services, [eps("svc2", [("10.1.0.9", READY)])])
    diff = diff_rulesets(gone, after)
    assert set(diff.write) == {(NAT, "KUBE-SERVICES"), (FILTER, "KUBE-SERVICES")}
    assert set(diff.delete) == {(NAT, service_chain(P80)),
                                (NAT, endpoint_chain(P80, "10.1.0.1:8080"))}
    assert diff.restore().index("*filter") < diff.restore().index("*nat")


def test_full_sync_and_cleanup_delete_only_our_stale_chains() -> None:
    wanted = rules_of([svc("svc1")], [eps("svc1", [("10.1.0.1", READY)])])
    existing = {(NAT, "PREROUTING"), (NAT, "DOCKER"), (NAT, "KUBE-SVC-AAAAAAAAAAAAAAAA"),
                (NAT, "KUBE-SEP-BBBBBBBBBBBBBBBB"), (NAT, "KUBE-SERVICES"),
                (FILTER, "DOCKER-USER"), (FILTER, "KUBE-FORWARD"), (NAT, "KUBE-MARK-DROP")}
    diff = full_sync(wanted, existing)
    assert set(diff.write) == set(wanted)
    assert set(diff.delete) == {(NAT, "KUBE-SVC-AAAAAAAAAAAAAAAA"),
                                (NAT, "KUBE-SEP-BBBBBBBBBBBBBBBB")}
    gone = cleanup(existing | set(wanted))
    assert not gone.write
    deleted = {chain for _, chain in gone.delete}
    assert "DOCKER" not in deleted and "DOCKER-USER" not in deleted
    assert "KUBE-MARK-DROP" not in deleted  # not ours (kubelet's, upstream)
    assert {"KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ",
            "KUBE-FORWARD", "KUBE-EXTERNAL-SERVICES", service_chain(P80)} <= deleted
    text = gone.restore()
    # Each chain is declared (flushed) once and deleted once, per table.
    declared = Counter(line[1:].split()[0] for line in text.splitlines() if line[0] == ":")
    removed = Counter(line.split()[1] for line in text.splitlines() if line.startswith("-X"))
    assert declared == removed
    assert declared["KUBE-SERVICES"] == 2  # nat and filter
    assert "-X DOCKER" not in text


def test_parse_chains_from_iptables_save() -> None:
    out = ("# Generated by iptables-save\n*nat\n:PREROUTING ACCEPT [0:0]\n"
           ":KUBE-SERVICES - [0:0]\n:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]\n"
           "-A PREROUTING -j KUBE-SERVICES\nCOMMIT\n")
    assert parse_chains(NAT, out) == {(NAT, "PREROUTING"), (NAT, "KUBE-SERVICES"),
                                      (NAT, "KUBE-SVC-XPGD46QRK7WJZT7O")}


def test_describe_changes() -> None:
    old = build_snapshot([svc("svc1")], [eps("svc1", [("10.1.0.1", READY)])])
    new = build_snapshot([svc("svc1"), svc("svc2", cluster_ip="10.96.0.11")],
                         [eps("svc1", [("10.1.0.1", READY), ("10.1.0.2", READY)])])
    changes = dict(describe_changes(old, new))
    assert changes["ns1/svc1:p80"].startswith("updated ")
    assert "endpoints=[10.1.0.1:8080,10.1.0.2:8080]" in changes["ns1/svc1:p80"]
    assert changes["ns1/svc2:p80"].startswith("added ")
    assert dict(describe_changes(new, old))["ns1/svc2:p80"] == "removed"
    assert describe_changes(new, new) == []


def test_localhost_nodeports_firewall() -> None:
    """NodePorts on 127.0.0.1 need route_localnet; remote packets to 127.0.0.0/8 are then
    dropped unless DNATed, as upstream's KUBE-FIREWALL does (CVE-2020-8558)."""
    drop = ('-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment '
            '"block incoming localnet connections" -m conntrack ! --ctstate '
            'RELATED,ESTABLISHED,DNAT -j DROP')
    assert rules_of([svc("svc1")], [])[(FILTER, "KUBE-FIREWALL")] == (drop,)
    off = ProxyConfig(localhost_nodeports=False)
    assert rules_of([svc("svc1")], [], off)[(FILTER, "KUBE-FIREWALL")] == ()
    # Served on chosen addresses only: 127.0.0.1 is not one of them.
    chosen = ProxyConfig(nodeport_ips=("10.200.0.4",))
    assert rules_of([svc("svc1")], [], chosen)[(FILTER, "KUBE-FIREWALL")] == ()
    jumps = {(j.table, j.chain) for j in JUMP_RULES if j.target == "KUBE-FIREWALL"}
    assert jumps == {(FILTER, "INPUT"), (FILTER, "OUTPUT")}
