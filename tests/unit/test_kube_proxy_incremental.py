"""kube-proxy's incremental syncs: for random sequences of Service and EndpointSlice adds,
updates and deletes, the incrementally kept snapshot and rules equal a fresh `build_snapshot`
and `build_ruleset`, the diff equals `diff_rulesets` of two full generations (order and
restore text alike), and a partial sync writes only the changed Services' chains and the
shared chains they touch. Seeded random generators: every run checks the same sequences."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from kube_proxy.app import KubeProxy, _service_keys, _slice_keys
from kube_proxy.iptables_proxier import IptablesProxier
from kube_proxy.lock import KernelLock
from kube_proxy.model import (
    ServicePortName,
    Snapshot,
    SnapshotBuilder,
    build_snapshot,
    describe_changes,
    service_key,
    slice_service_key,
)
from kube_proxy.options import parse_args
from kube_proxy.rules import (
    BASE_CHAINS,
    FILTER,
    NAT,
    SHARED_CHAINS,
    ChainKey,
    ProxyConfig,
    RuleCache,
    Ruleset,
    RulesetDiff,
    build_ruleset,
    diff_rulesets,
    endpoint_chain,
    is_our_chain,
    service_chain,
    service_port_rules,
)
from tests.unit.test_kube_proxy_parts import FakeIptables
from tests.unit.test_kube_proxy_rules import READY, eps, svc

Obj = dict[str, Any]
Chains = dict[ChainKey, tuple[str, ...]]

NAMESPACES = ("ns1", "ns2")
NAMES = ("a", "b", "c", "d", "e")
SLICE_SUFFIXES = ("x", "y")
PORTS = (("http", "TCP", 80, 8080), ("dns", "UDP", 53, 5353), ("dns-tcp", "TCP", 53, 5353),
         ("sctp", "SCTP", 9, 9999))
IPS = tuple(f"10.1.0.{i}" for i in range(1, 7))
CONFIGS = (ProxyConfig(cluster_cidr="10.200.0.0/16"),
           ProxyConfig(masquerade_all=True, nodeport_ips=("192.0.2.1", "192.0.2.2")),
           ProxyConfig(localhost_nodeports=False, masquerade_mark="0x8000"))


class Cluster:
    """Random Services and EndpointSlices, as an informer's caches hold them."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.services: dict[str, Obj] = {}
        self.slices: dict[str, Obj] = {}
        self.version = 0

    def _rv(self) -> str:
        self.version += 1
        return str(self.version)

    def service(self, ns: str, name: str) -> Obj:
        rng = self.rng
        ports = rng.sample(PORTS, rng.choice((1, 1, 2, 3)))
        cluster_ip = f"10.96.{NAMES.index(name)}.{rng.randrange(1, 4)}"
        spec: Obj = {"type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                     "ports": [{"name": "" if len(ports) == 1 and rng.random() < 0.4 else pname,
                                "port": port, "targetPort": target, "protocol": proto}
                               for pname, proto, port, target in ports]}
        md: Obj = {"name": name, "namespace": ns, "resourceVersion": self._rv()}
        body: Obj = {"metadata": md, "spec": spec}
        roll = rng.random()
        if roll < 0.05:
            spec.update(type="ExternalName", externalName="example.com", clusterIP="",
                        clusterIPs=[])
        elif roll < 0.10:
            spec.update(clusterIP="None", clusterIPs=["None"])
        elif roll < 0.13:
            spec.update(clusterIP="fd00::1", clusterIPs=["fd00::1"])
        elif roll < 0.16:
            md["labels"] = {"service.kubernetes.io/service-proxy-name": "other"}
        if rng.random() < 0.3:
            spec["type"] = "NodePort"
            for i, port in enumerate(spec["ports"]):
                if rng.random() < 0.8:
                    port["nodePort"] = 30000 + 10 * NAMES.index(name) + i
        if rng.random() < 0.2:
            spec["externalIPs"] = rng.sample(("198.51.100.1", "198.51.100.2", "fd00::2"),
                                             rng.randrange(1, 3))
        if rng.random() < 0.1:
            body["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}]}}
        if rng.random() < 0.2:
            spec["sessionAffinity"] = "ClientIP"
            if rng.random() < 0.5:
                spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 60}}
        return body

    def slice(self, ns: str, name: str) -> Obj:
        rng = self.rng
        service = name.split("-")[0]
        labels: Obj = {"kubernetes.io/service-name": service}
        roll = rng.random()
        if roll < 0.08:
            labels["kubernetes.io/service-name"] = rng.choice(NAMES)  # the label moves
        elif roll < 0.12:
            labels = {}
        conditions = [READY, READY, READY, {"ready": False}, {},
                      {"ready": False, "serving": True, "terminating": True},
                      {"ready": False, "serving": False, "terminating": True},
                      {"ready": True, "terminating": True}]
        ports = [(p["name"], p["protocol"], p["targetPort"]) for p in
                 self.services.get(f"{ns}/{service}", {}).get("spec", {}).get("ports", [])]
        if not ports or rng.random() < 0.3:  # ports the service does not have, often
            ports = [(pname, proto, target)
                     for pname, proto, _, target in rng.sample(PORTS, rng.randrange(0, 3))]
        return {"metadata": {"name": name, "namespace": ns, "labels": labels,
                             "resourceVersion": self._rv()},
                "addressType": "IPv6" if rng.random() < 0.05 else "IPv4",
                "endpoints": [{"addresses": [ip], "conditions": dict(rng.choice(conditions)),
                               "nodeName": rng.choice(("n1", "n2"))}
                              for ip in rng.sample(IPS, rng.randrange(0, 5))],
                "ports": [{"name": pname, "port": target, "protocol": proto}
                          for pname, proto, target in ports]}

    def step(self) -> list[tuple[Obj | None, Obj | None, bool]]:
        """One random add, update or delete: [(old, new, is_service)]."""
        rng = self.rng
        ns = rng.choice(NAMESPACES)
        if rng.random() < 0.35:
            key = f"{ns}/{rng.choice(NAMES)}"
            old = self.services.get(key)
            if old is not None and rng.random() < 0.25:
                del self.services[key]
                return [(old, None, True)]
            if old is not None and rng.random() < 0.15:  # same content, new version
                new = {**old, "metadata": {**old["metadata"], "resourceVersion": self._rv()}}
            else:
                new = self.service(ns, key.split("/")[1])
            self.services[key] = new
            return [(old, new, True)]
        name = f"{rng.choice(NAMES)}-{rng.choice(SLICE_SUFFIXES)}"
        key = f"{ns}/{name}"
        old = self.slices.get(key)
        if old is not None and rng.random() < 0.25:
            del self.slices[key]
            return [(old, None, False)]
        new = self.slice(ns, name)
        self.slices[key] = new
        return [(old, new, False)]

    def slices_of(self, key: str) -> list[Obj]:
        return [s for s in self.slices.values() if slice_service_key(s) == key]

    def service_of(self, key: str) -> Obj | None:
        return next((s for s in self.services.values() if service_key(s) == key), None)

    def fresh(self) -> Snapshot:
        return build_snapshot(list(self.services.values()), list(self.slices.values()))


def dirty_keys(changes: Iterable[tuple[Obj | None, Obj | None, bool]]) -> set[str]:
    """The service keys the app's event handlers mark for these changes."""
    out: set[str] = set()
    for old, new, is_service in changes:
        keys = _service_keys if is_service else _slice_keys
        for obj in (old, new):
            if obj is not None:
                out.update(keys(obj))
    return out


def owners(chains: Iterable[ChainKey], *rulesets: Ruleset) -> set[str]:
    """The service ports (as strings) owning these per-service chains."""
    out = set()
    for key in chains:
        found = [rs.owners[key] for rs in rulesets if key in rs.owners]
        assert found, f"{key} is neither shared nor any service port's"
        out.add(found[0])
    return out


# --- the snapshot and the rules, incrementally -------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_incremental_snapshot_and_rules_equal_a_full_generation(seed: int) -> None:
    rng = random.Random(seed)
    cluster = Cluster(rng)
    config = CONFIGS[seed % len(CONFIGS)]
    for _ in range(6):
        cluster.step()
    builder, cache = SnapshotBuilder(), RuleCache()
    snapshot = builder.rebuild(cluster.services.values(), cluster.slices.values())
    assert snapshot == cluster.fresh()
    previous = build_ruleset(snapshot, config)
    assert list(cache.rebuild(snapshot, config).items()) == list(previous.frozen().items())
    partial_writes = 0
    for _ in range(80):
        changes = [change for _ in range(rng.choice((1, 1, 1, 2, 4)))
                   for change in cluster.step()]
        dirty = dirty_keys(changes)
        last = snapshot
        snapshot = builder.update((key, cluster.service_of(key), cluster.slices_of(key))
                                  for key in sorted(dirty))
        fresh = cluster.fresh()
        assert snapshot == fresh
        assert describe_changes(last, snapshot) == describe_changes(last, fresh)
        changed = snapshot.changed_ports_since(last.generation)
        assert changed is not None
        assert {f"{p.namespace}/{p.name}" for p in changed} <= dirty

        diff = cache.update(snapshot, changed)
        wanted = build_ruleset(fresh, config)
        expected = diff_rulesets(wanted.frozen(), previous.frozen())
        assert list(cache.ordered().items()) == list(wanted.frozen().items())
        assert cache.chains == wanted.frozen()
        assert cache.rule_count == sum(map(len, wanted.chains.values()))
        assert list(diff.write.items()) == list(expected.write.items())
        assert diff.delete == expected.delete
        assert diff.restore() == expected.restore()
        # Only the changed services' chains, and the shared chains.
        per_service = [key for key in [*diff.write, *diff.delete] if key not in SHARED_CHAINS]
        assert {o.split(":")[0] for o in owners(per_service, wanted, previous)} <= dirty
        assert set(diff.write) - set(per_service) <= set(SHARED_CHAINS)
        partial_writes += bool(per_service)
        previous = wanted
    assert partial_writes > 20  # the sequences do change rules


def test_update_without_a_delta_compares_every_service_port() -> None:
    """A snapshot that does not know what changed (e.g. from build_snapshot): every service
    port's inputs are compared, still only the changed ones regenerated and written."""
    services = [svc(f"s{i}", cluster_ip=f"10.96.0.{i + 1}") for i in range(5)]
    before = build_snapshot(services, [eps(f"s{i}", [("10.1.0.1", READY)]) for i in range(5)])
    after = build_snapshot(services, [eps(f"s{i}", [(f"10.1.0.{1 + (i == 3)}", READY)])
                                      for i in range(5)])
    cache = RuleCache()
    cache.rebuild(before, ProxyConfig())
    assert after.changed_ports_since(before.generation) is None
    diff = cache.update(after)
    old, new = build_ruleset(before, ProxyConfig()), build_ruleset(after, ProxyConfig())
    assert diff == diff_rulesets(new.frozen(), old.frozen())
    assert owners([*diff.write, *diff.delete], new, old) == {"ns1/s3:p80"}
    assert cache.update(after).empty


def test_snapshot_builder_skips_unchanged_versions_and_reports_deltas() -> None:
    s1 = {**svc("svc1"), "metadata": {"name": "svc1", "namespace": "ns1",
                                      "resourceVersion": "5"}}
    sl = {**eps("svc1", [("10.1.0.1", READY)]),
          "metadata": {"name": "svc1-abc", "namespace": "ns1", "resourceVersion": "6",
                       "labels": {"kubernetes.io/service-name": "svc1"}}}
    builder = SnapshotBuilder()
    first = builder.rebuild([s1], [sl])
    same = builder.update([("ns1/svc1", s1, [sl])])
    assert same == first and same.delta is not None and not same.delta.services
    assert same.changed_ports_since(first.generation) == frozenset()
    assert same.changed_ports_since(same.generation) == frozenset()
    assert same.changed_ports_since(None) is None
    gone = builder.update([("ns1/svc1", None, [sl])])
    p80 = ServicePortName("ns1", "svc1", "p80")
    assert gone.changed_ports_since(same.generation) == {p80}
    assert gone.changed_services_since(same.generation) == {"ns1/svc1"}
    assert gone.changed_ports_since(first.generation) is None  # not derived from it
    assert not gone.services and not gone.endpoints
    assert first.services  # earlier snapshots are not changed
    with pytest.raises(RuntimeError):
        SnapshotBuilder().update([])


def test_service_port_rules_touch_only_shared_base_chains() -> None:
    snapshot = build_snapshot(
        [svc("svc1", type="NodePort", externalIPs=["198.51.100.1"],
             ports=[{"name": "p80", "port": 80, "protocol": "TCP", "nodePort": 30080}]),
         svc("svc2", cluster_ip="10.96.0.11", type="NodePort", externalIPs=["198.51.100.2"],
             ports=[{"name": "p80", "port": 80, "protocol": "TCP", "nodePort": 30081}])],
        [eps("svc1", [("10.1.0.1", READY)])])
    for name, sp in snapshot.services.items():
        piece = service_port_rules(sp, snapshot.usable_endpoints(name), ProxyConfig())
        assert set(piece.shared) <= set(SHARED_CHAINS)
        assert not any(chain in BASE_CHAINS[table] for table, chain in piece.chains)
        assert all(is_our_chain(*key) for key in piece.chains)
    assert set(SHARED_CHAINS) <= {(t, c) for t, chains in BASE_CHAINS.items() for c in chains}


# --- through the app and the proxier -----------------------------------------------------------


def kernel_chains(fake: FakeIptables) -> Chains:
    return {key: tuple(rules) for key, rules in fake.kernel.items() if is_our_chain(*key)}


def declared(restore: str) -> set[ChainKey]:
    table, out = "", set()
    for line in restore.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            out.add((table, line[1:].split()[0]))
    return out


@pytest.mark.parametrize("seed", range(4))
async def test_app_partial_syncs_keep_the_kernel_equal_to_a_full_generation(
        seed: int, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The app's event handlers, snapshot builder and the proxier's partial syncs against a
    fake iptables: after every sync the kernel holds exactly the full ruleset; a restore
    declares only chains of the Services the events named, plus shared chains; periodic
    full syncs find no drift."""
    rng = random.Random(1000 + seed)
    cluster = Cluster(rng)
    fake = FakeIptables()
    config = ProxyConfig(cluster_cidr="10.200.0.0/16")
    proxier = IptablesProxier(fake, config)  # type: ignore[arg-type]
    kp = KubeProxy(parse_args([]), None, proxier,  # type: ignore[arg-type]
                   KernelLock(tmp_path / "lock"))
    handlers = {True: kp._handlers(_service_keys), False: kp._handlers(_slice_keys)}
    for _ in range(8):
        cluster.step()
    for obj in cluster.services.values():
        kp.services.store.put(obj)
    for obj in cluster.slices.values():
        kp.slices.store.put(obj)
    await kp._sync(True)
    previous = build_ruleset(cluster.fresh(), config)
    assert kernel_chains(fake) == previous.frozen()
    caplog.set_level(logging.WARNING, logger="kube_proxy")
    partial = 0
    for step in range(60):
        changes = cluster.step()
        for old, new, is_service in changes:
            informer = kp.services if is_service else kp.slices
            on_add, on_update, on_delete = handlers[is_service]
            if new is None:
                assert old is not None
                informer.store.remove(f"{old['metadata']['namespace']}/"
                                      f"{old['metadata']['name']}")
                on_delete(old)
            else:
                informer.store.put(new)
                if old is None:
                    on_add(new)
                else:
                    on_update(old, new)
        dirty = set(kp._dirty)
        restores = len(fake.restores)
        full = step % 20 == 19
        await kp._sync(full)
        wanted = build_ruleset(cluster.fresh(), config)
        assert kernel_chains(fake) == wanted.frozen()
        if not full and len(fake.restores) > restores:
            per_service = declared(fake.restores[-1]) - set(SHARED_CHAINS)
            assert all(key[1].startswith(("KUBE-SVC-", "KUBE-SEP-", "KUBE-EXT-"))
                       for key in per_service)
            assert {o.split(":")[0] for o in owners(per_service, wanted, previous)} <= dirty
            partial += 1
        previous = wanted
    assert partial > 10
    assert not [r for r in caplog.records if "drifted" in r.getMessage()]


async def test_partial_sync_writes_one_service_among_many() -> None:
    """With 50 Services, moving one Service's endpoint rewrites its KUBE-SVC chain, adds and
    deletes one KUBE-SEP chain: nothing else is generated anew or written."""
    fake = FakeIptables()
    proxier = IptablesProxier(fake, ProxyConfig())  # type: ignore[arg-type]
    services = [svc(f"s{i:02d}", cluster_ip=f"10.96.1.{i + 1}") for i in range(50)]
    slices = [eps(f"s{i:02d}", [("10.1.0.1", READY)]) for i in range(50)]
    builder = SnapshotBuilder()
    await proxier.sync(builder.rebuild(services, slices), full=True)
    slices[17] = eps("s17", [("10.1.0.2", READY)])
    snapshot = builder.update([("ns1/s17", services[17], [slices[17]])])
    await proxier.sync(snapshot, full=False)
    text = fake.restores[-1]
    p17 = ServicePortName("ns1", "s17", "p80")
    assert declared(text) == {(NAT, service_chain(p17)),
                              (NAT, endpoint_chain(p17, "10.1.0.2:8080")),
                              (NAT, endpoint_chain(p17, "10.1.0.1:8080"))}
    assert f"-X {endpoint_chain(p17, '10.1.0.1:8080')}" in text
    assert "*filter" not in text
    # No endpoints any more: the shared chains of both tables change, the service's go.
    slices[17] = eps("s17", [])
    await proxier.sync(builder.update([("ns1/s17", services[17], [slices[17]])]), full=False)
    text = fake.restores[-1]
    assert declared(text) == {(NAT, "KUBE-SERVICES"), (FILTER, "KUBE-SERVICES"),
                              (NAT, service_chain(p17)),
                              (NAT, endpoint_chain(p17, "10.1.0.2:8080"))}
    assert kernel_chains(fake) == build_ruleset(build_snapshot(services, slices),
                                                ProxyConfig()).frozen()
    assert isinstance(proxier.last_diff, RulesetDiff)
