"""The DNS server as a real process (`python -m dns`) against the real apiserver and etcd:
Services and EndpointSlices made through the API show up in answers over UDP and TCP within
a bounded poll and disappear when deleted; names outside the cluster go to a fake upstream on
127.0.0.1 (no packet leaves loopback) and their answers are cached for their TTL; without an
upstream they get NXDOMAIN; the health endpoints, SIGTERM, and the add-on manifests against
the apiserver's validation.

There is no controller-manager here: the tests write EndpointSlices themselves, as the
EndpointSlice controller would.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from api.resources import CATALOGUE, Resource
from client.rest import ApiClient
from dns.addon import manifests
from dns.wire import Message, Question, Rcode, RRType, decode, normalize
from tests.conftest import ROOT, ApiServer, free_port, stop_process
from tests.unit.test_dns_forward import FakeUpstream, dns_exchange, dns_query

T = TypeVar("T")
Obj = dict[str, Any]
D = "cluster.local"
POLL = 5.0  # the bound on how long a change may take to show in answers


def _res(plural: str) -> Resource:
    res = CATALOGUE.by_plural(plural)
    assert res is not None
    return res


NAMESPACES, SERVICES, SLICES, DEPLOYMENTS = (
    _res(p) for p in ("namespaces", "services", "endpointslices", "deployments"))


class ThreadedUpstream:
    """A FakeUpstream on its own event loop in a thread, so it outlives each test's loop."""

    def __init__(self, records: dict[str, list[str]], **options: Any) -> None:
        self.fake = FakeUpstream(records, **options)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fake-upstream",
                                       daemon=True)

    def __enter__(self) -> FakeUpstream:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.__aenter__(), self.loop).result(10)
        return self.fake

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.__aexit__(None, None, None),
                                         self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class DnsProcess:
    proc: subprocess.Popen[bytes]
    port: int
    health_port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()[-4000:]


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def start_dns(apiserver: ApiServer, workdir: Path, *extra: str) -> DnsProcess:
    """`python -m dns` on free ports, ready (caches synced); retried when a port that was
    free a moment ago got taken before the server bound it."""
    for _ in range(3):
        port, health = free_port(), free_port()
        log_path = workdir / f"dns-{port}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "dns", "--kubeconfig", str(apiserver.kubeconfig),
                 "--port", str(port), "--bind-address", "127.0.0.1",
                 "--health-port", str(health), "--ttl", "5", "-v", "4", *extra],
                stdout=log, stderr=log, cwd=ROOT)
        dns = DnsProcess(proc, port, health, log_path)
        deadline = time.monotonic() + 20
        while http_status(f"http://127.0.0.1:{health}/ready") != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        else:
            return dns
        stop_process(proc)
        if "cannot serve" not in dns.log():
            break
    raise RuntimeError(f"dns did not become ready:\n{dns.log()}")


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with ThreadedUpstream({"example.com": ["192.0.2.10"],
                           "www.example.org": ["192.0.2.80", "192.0.2.81"]}) as fake:
        yield fake


@pytest.fixture(scope="module")
def dns(apiserver: ApiServer, upstream: FakeUpstream,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsProcess]:
    proc = start_dns(apiserver, tmp_path_factory.mktemp("dns"), "--upstream",
                     f"127.0.0.1:{upstream.port}", "--upstream-timeout", "1")
    try:
        yield proc
    finally:
        stop_process(proc.proc)


@pytest.fixture
async def ns(api: ApiClient) -> str:
    name = f"dns-{uuid.uuid4().hex[:8]}"
    await api.create(NAMESPACES, {"metadata": {"name": name}})
    return name


async def eventually(probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], what: str,
                     timeout: float = POLL) -> T:
    """Poll until `ok(probe())`; fail with the last value after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        last = await probe()
        if ok(last):
            return last
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last}")
        await asyncio.sleep(0.05)


def addresses(msg: Message) -> list[str]:
    return sorted(str(r.data) for r in msg.answers if r.rtype in (RRType.A, RRType.AAAA))


def endpoint_slice(name: str, svc: str, endpoints: list[tuple[str, str | None, bool]],
                   ports: list[Obj]) -> Obj:
    eps = []
    for ip, hostname, ready in endpoints:
        ep: Obj = {"addresses": [ip], "conditions": {"ready": ready}}
        if hostname:
            ep["hostname"] = hostname
        eps.append(ep)
    return {"metadata": {"name": name, "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "endpoints": eps, "ports": ports}


# --- the cluster zone ---------------------------------------------------------------------


async def test_service_appears_and_disappears(dns: DnsProcess, api: ApiClient, ns: str
                                              ) -> None:
    name = f"web.{ns}.svc.{D}"
    before = await dns_query(dns.port, name)
    assert before.rcode == Rcode.NXDOMAIN and before.aa
    svc = await api.create(SERVICES, {"metadata": {"name": "web"}, "spec": {
        "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}}, ns)
    ip = svc["spec"]["clusterIP"]
    for tcp in (False, True):
        got = await eventually(lambda tcp=tcp: dns_query(dns.port, name, tcp=tcp),
                               lambda m: addresses(m) == [ip], f"A {name} (tcp={tcp})")
        assert got.aa and got.answers[0].ttl == 5
    srv = await dns_query(dns.port, f"_http._tcp.{name}", RRType.SRV)
    assert [(r.data.port, r.data.target) for r in srv.answers] == [(80, name)]
    assert [r.data for r in srv.additionals] == [ip]
    nodata = await dns_query(dns.port, name, RRType.AAAA)
    assert nodata.rcode == Rcode.NOERROR and nodata.answers == []
    assert nodata.authorities[0].rtype == RRType.SOA
    ptr_name = ".".join(reversed(ip.split("."))) + ".in-addr.arpa"
    assert [r.data for r in (await dns_query(dns.port, ptr_name, RRType.PTR)).answers] == \
        [name]

    await api.delete(SERVICES, "web", ns)
    await eventually(lambda: dns_query(dns.port, name), lambda m: m.rcode == Rcode.NXDOMAIN,
                     f"NXDOMAIN for deleted {name}")


async def test_headless_service_follows_its_endpoint_slices(dns: DnsProcess, api: ApiClient,
                                                            ns: str) -> None:
    fqdn = f"db.{ns}.svc.{D}"
    await api.create(SERVICES, {"metadata": {"name": "db"}, "spec": {
        "clusterIP": "None", "selector": {"app": "db"},
        "ports": [{"name": "pg", "port": 5432}]}}, ns)
    ports = [{"name": "pg", "port": 5432, "protocol": "TCP"}]
    # A headless Service without ready endpoints does not exist yet.
    assert (await dns_query(dns.port, fqdn)).rcode == Rcode.NXDOMAIN
    await api.create(SLICES, endpoint_slice("db-1", "db", [
        ("10.244.0.11", "db-0", True), ("10.244.0.12", None, True),
        ("10.244.0.13", "db-2", False)], ports), ns)
    await eventually(lambda: dns_query(dns.port, fqdn, tcp=True),
                     lambda m: addresses(m) == ["10.244.0.11", "10.244.0.12"], f"A {fqdn}")
    assert addresses(await dns_query(dns.port, f"db-0.{fqdn}")) == ["10.244.0.11"]
    assert addresses(await dns_query(dns.port, f"10-244-0-12.{fqdn}")) == ["10.244.0.12"]
    srv = await dns_query(dns.port, f"_pg._tcp.{fqdn}", RRType.SRV)
    assert sorted(r.data.target for r in srv.answers) == [f"10-244-0-12.{fqdn}",
                                                           f"db-0.{fqdn}"]
    assert sorted(str(r.data) for r in srv.additionals) == ["10.244.0.11", "10.244.0.12"]

    # db-2 becomes ready, db-0 goes away: answers follow the slice.
    slice_ = await api.get(SLICES, "db-1", ns)
    slice_["endpoints"] = [ep for ep in slice_["endpoints"] if ep.get("hostname") != "db-0"]
    for ep in slice_["endpoints"]:
        ep["conditions"] = {"ready": True}
    await api.update(SLICES, slice_)
    await eventually(lambda: dns_query(dns.port, fqdn),
                     lambda m: addresses(m) == ["10.244.0.12", "10.244.0.13"],
                     f"updated A {fqdn}")
    assert (await dns_query(dns.port, f"db-0.{fqdn}")).rcode == Rcode.NXDOMAIN
    await api.delete(SLICES, "db-1", ns)
    await eventually(lambda: dns_query(dns.port, fqdn), lambda m: m.rcode == Rcode.NXDOMAIN,
                     f"NXDOMAIN for {fqdn} without endpoints")


async def test_external_name_pod_records_and_schema_version(dns: DnsProcess, api: ApiClient,
                                                           ns: str) -> None:
    name = f"ext.{ns}.svc.{D}"
    await api.create(SERVICES, {"metadata": {"name": "ext"}, "spec": {
        "type": "ExternalName", "externalName": "www.example.org"}}, ns)
    got = await eventually(lambda: dns_query(dns.port, name),
                           lambda m: bool(m.answers), f"CNAME {name}")
    assert [(r.rtype, str(r.data)) for r in got.answers] == [
        (RRType.CNAME, "www.example.org"), (RRType.A, "192.0.2.80"), (RRType.A, "192.0.2.81")]
    pod = await dns_query(dns.port, f"10-244-3-4.{ns}.pod.{D}")
    assert addresses(pod) == ["10.244.3.4"] and pod.aa
    txt = await dns_query(dns.port, f"dns-version.{D}", RRType.TXT)
    assert txt.answers[0].data == (b"1.1.0",)


# --- outside the cluster ------------------------------------------------------------------


async def test_names_outside_the_cluster_are_forwarded(dns: DnsProcess,
                                                       upstream: FakeUpstream) -> None:
    for tcp in (False, True):
        got = await dns_query(dns.port, "Example.COM", tcp=tcp)
        assert got.rcode == Rcode.NOERROR and not got.aa and got.ra
        assert addresses(got) == ["192.0.2.10"]
    missing = await dns_query(dns.port, "missing.example.net")
    assert missing.rcode == Rcode.NXDOMAIN and not missing.aa
    seen = [q.questions[0].name for _, q in upstream.queries]
    assert "Example.COM" in seen and "missing.example.net" in seen
    assert not any(name.endswith(D) for name in seen)  # cluster names stay local


async def test_upstream_answers_are_cached_until_their_ttl_runs_out(
        apiserver: ApiServer, tmp_path: Path) -> None:
    ttl = 2  # seconds, in the fake upstream's answers: positive, and the SOA of negative ones
    with ThreadedUpstream({"cached.example.com": ["192.0.2.30"]}, ttl=ttl,
                          soa_ttl=ttl) as up:
        proc = start_dns(apiserver, tmp_path, "--upstream", f"127.0.0.1:{up.port}",
                         "--upstream-timeout", "1")

        def asked(name: str) -> int:
            return sum(normalize(q.questions[0].name) == name for _, q in list(up.queries))

        try:
            start = time.monotonic()
            first = await dns_query(proc.port, "cached.example.com")
            assert addresses(first) == ["192.0.2.30"] and first.answers[0].ttl == ttl
            gone = await dns_query(proc.port, "gone.example.com")
            assert gone.rcode == Rcode.NXDOMAIN and gone.authorities[0].ttl == ttl
            # Again within the TTL, with another ID and spelling, over TCP: from the cache.
            wire = Message(id=0x5151, rd=True,
                           questions=[Question("CACHED.Example.com", RRType.A)]).to_wire()
            hit = decode(await dns_exchange(proc.port, wire, tcp=True))
            again = await dns_query(proc.port, "gone.example.com")
            assert time.monotonic() - start < ttl, "too slow to test within the TTL"
            assert hit.id == 0x5151 and addresses(hit) == ["192.0.2.30"]
            assert hit.answers[0].name == "CACHED.Example.com" and 1 <= hit.answers[0].ttl <= ttl
            assert again.rcode == Rcode.NXDOMAIN
            assert (asked("cached.example.com"), asked("gone.example.com")) == (1, 1)

            await asyncio.sleep(1.2)
            later = await dns_query(proc.port, "cached.example.com")
            if asked("cached.example.com") == 1:  # still cached: the TTL went down
                assert later.answers[0].ttl == 1

            # Once the TTL has run out the next query goes upstream again (and is cached
            # again: exactly one more exchange per name).
            names = ("cached.example.com", "gone.example.com")

            async def probe() -> tuple[int, ...]:
                for name in names:
                    await dns_query(proc.port, name)
                return tuple(asked(name) for name in names)

            await eventually(probe, lambda counts: min(counts) >= 2,
                             "both names asked upstream again", timeout=ttl + POLL)
            fresh = await dns_query(proc.port, "cached.example.com")
            assert fresh.answers[0].ttl >= 1
            assert (asked("cached.example.com"), asked("gone.example.com")) == (2, 2)
            assert "Traceback" not in proc.log(), proc.log()
        finally:
            stop_process(proc.proc)


async def test_without_upstream_outside_names_are_nxdomain_and_sigterm_stops(
        apiserver: ApiServer, tmp_path: Path) -> None:
    proc = start_dns(apiserver, tmp_path, "--upstream", "none")
    try:
        got = await dns_query(proc.port, "example.com")
        assert got.rcode == Rcode.NXDOMAIN and not got.ra
        kube = await dns_query(proc.port, f"kubernetes.default.svc.{D}")
        assert kube.rcode == Rcode.NOERROR and len(addresses(kube)) == 1
        assert http_status(f"http://127.0.0.1:{proc.health_port}/health") == 200
        proc.proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.proc.wait, 10) == 0
        log = proc.log()
        assert "no upstream servers" in log and "stopping" in log
        assert "Traceback" not in log, log
    finally:
        stop_process(proc.proc)


async def test_health_endpoints(dns: DnsProcess) -> None:
    assert http_status(f"http://127.0.0.1:{dns.health_port}/health") == 200
    assert http_status(f"http://127.0.0.1:{dns.health_port}/ready") == 200
    assert http_status(f"http://127.0.0.1:{dns.health_port}/nope") == 404


# --- the add-on manifests -----------------------------------------------------------------


async def test_addon_manifests_pass_the_apiservers_validation(api: ApiClient) -> None:
    _account, deployment, service = manifests()
    created = await api.create(DEPLOYMENTS, deployment, "kube-system", dry_run=True)
    assert created["metadata"]["name"] == "kube-dns"
    svc = await api.create(SERVICES, service, "kube-system", dry_run=True)
    assert svc["spec"]["clusterIP"] == "10.96.0.10"
