"""kube-proxy against the real apiserver, programming a private network namespace.

Each kube-proxy runs as `ip netns exec <ns> python -m kube_proxy ...` inside a network
namespace made for this module, so it cannot disturb the host's rules. The apiserver listens
on the host's 127.0.0.1, which the namespace cannot reach: a veth pair with link-local
addresses (169.254.x.y/30) joins the two, and a small relay thread on the host's end
forwards to the apiserver. Inside the namespace:

- `lo` carries the "pods": 10.250.0.2 and 10.250.0.3 (backends, served by the agent) and
  10.250.0.100 / .101 (client source addresses);
- 10.96.0.0/12 (ClusterIPs) routes to an empty bridge, so that un-DNATed packets vanish
  there (a connect then times out) instead of leaving the namespace;
- the agent (one Python process) serves the backends and runs client probes on request:
  each TCP/UDP backend answers "<its address> <the client's address>".

Services are selector-less; the tests write their EndpointSlices. Every process started is
stopped in a fixture teardown, every wait is bounded, and traffic stays inside the namespace.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from api import errors
from api.resources import CATALOGUE, Resource
from client.kubeconfig import load_kubeconfig, write_kubeconfig
from client.rest import ApiClient
from kube_proxy.model import ServicePortName
from kube_proxy.rules import endpoint_chain, service_chain
from tests.conftest import ApiServer

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")
Obj = dict[str, Any]

BACKENDS = ("10.250.0.2", "10.250.0.3")
CLIENT = "10.250.0.100"
CLIENT2 = "10.250.0.101"
POD_CIDR = "10.250.0.0/24"
WAIT = 5.0  # seconds for a change to show in the data path (the target is < 1 s)


def _missing_prerequisite() -> str | None:
    for tool in ("ip", "iptables", "iptables-restore", "iptables-save"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if os.geteuid() != 0:
        return "needs root (network namespaces and iptables)"
    return None


_why = _missing_prerequisite()
if _why:
    print(f"skipping kube-proxy integration tests: {_why}", file=sys.stderr)
pytestmark = [pytest.mark.asyncio,
              pytest.mark.skipif(_why is not None, reason=_why or "")]


def _res(plural: str) -> Resource:
    res = CATALOGUE.by_plural(plural)
    assert res is not None
    return res


NAMESPACES = _res("namespaces")
SERVICES = _res("services")
SLICES = _res("endpointslices")


def run(*argv: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


# --- the relay from the namespace to the apiserver -------------------------------------------


class _Relay(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    target: tuple[str, int]


class _RelayHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, _Relay)
        try:
            upstream = socket.create_connection(server.target, timeout=5)
        except OSError:
            return
        upstream.settimeout(None)
        pump = threading.Thread(target=_pump, args=(upstream, self.request), daemon=True)
        pump.start()
        _pump(self.request, upstream)
        pump.join(timeout=1)
        upstream.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


# --- the agent: backends and client probes inside the namespace --------------------------------

AGENT = r"""
import json, socket, sys, threading

def tcp_backend(addr):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 8080))
    s.listen(256)
    while True:
        c, peer = s.accept()
        try:
            c.sendall(f"{addr} {peer[0]}\n".encode())
        except OSError:
            pass
        c.close()

def udp_backend(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 8053))
    while True:
        _, peer = s.recvfrom(2048)
        s.sendto(f"{addr} {peer[0]}".encode(), peer)

def probe(req):
    udp = req["op"] == "udp"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
    s.settimeout(req.get("timeout", 1.0))
    try:
        if req.get("src"):
            s.bind((req["src"], 0))
        s.connect((req["host"], req["port"]))
        if udp:
            s.send(b"ping")
            return s.recv(2048).decode().strip()
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(1024)
            if not chunk:
                break
            data += chunk
        return data.decode().strip() or "empty"
    except ConnectionRefusedError:
        return "refused"
    except PermissionError:  # a local sender's UDP datagram hit REJECT in OUTPUT
        return "rejected"
    except (socket.timeout, TimeoutError):
        return "timeout"
    except OSError as e:
        return f"error:{e}"
    finally:
        s.close()

for addr in sys.argv[1].split(","):
    threading.Thread(target=tcp_backend, args=(addr,), daemon=True).start()
    threading.Thread(target=udp_backend, args=(addr,), daemon=True).start()
print("ready", flush=True)
for line in sys.stdin:
    req = json.loads(line)
    print(json.dumps([probe(req) for _ in range(req.get("n", 1))]), flush=True)
"""


class Agent:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lock = threading.Lock()

    def probe(self, op: str, host: str, port: int, n: int = 1, src: str = CLIENT,
              timeout: float = 1.0) -> list[str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with self.lock:
            self.proc.stdin.write(json.dumps({"op": op, "host": host, "port": port, "n": n,
                                              "src": src, "timeout": timeout}) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the agent died")
        return list(json.loads(line))

    def tcp(self, host: str, port: int, n: int = 1, src: str = CLIENT) -> list[str]:
        return self.probe("tcp", host, port, n, src)

    def udp(self, host: str, port: int, n: int = 1, src: str = CLIENT) -> list[str]:
        return self.probe("udp", host, port, n, src)


def backends(results: list[str]) -> set[str]:
    """Which backend answered each probe ("refused"/"timeout" pass through)."""
    return {r.split()[0] for r in results}


# --- the namespace -----------------------------------------------------------------------------


@dataclass
class NetNS:
    name: str
    host_ip: str
    ns_ip: str
    kubeconfig: Path
    agent: Agent
    lock_path: Path

    def exec(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("ip", "netns", "exec", self.name, *argv, check=check)

    def iptables_save(self) -> str:
        return self.exec("iptables-save").stdout

    def kube_lines(self) -> list[str]:
        return [line for line in self.iptables_save().splitlines() if "KUBE-" in line]


@pytest.fixture(scope="module")
def netns(apiserver: ApiServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetNS]:
    suffix = uuid.uuid4().hex[:6]
    name, host_if, ns_if = f"klp-test-{suffix}", f"klph{suffix}", f"klpn{suffix}"
    octet3, octet4 = random.randrange(64, 250), random.randrange(0, 64) * 4
    host_ip, ns_ip = f"169.254.{octet3}.{octet4 + 1}", f"169.254.{octet3}.{octet4 + 2}"
    relay: _Relay | None = None
    agent: subprocess.Popen[str] | None = None
    lock_path: Path | None = None
    run("ip", "netns", "add", name)
    try:
        lock_path = Path(f"/run/kubelite/kube-proxy.{os.stat(f'/run/netns/{name}').st_ino}.lock")
        ns = ["ip", "netns", "exec", name]
        run(*ns, "ip", "link", "set", "lo", "up")
        run("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        run("ip", "link", "set", ns_if, "netns", name)
        run("ip", "addr", "add", f"{host_ip}/30", "dev", host_if)
        run("ip", "link", "set", host_if, "up")
        run(*ns, "ip", "addr", "add", f"{ns_ip}/30", "dev", ns_if)
        run(*ns, "ip", "link", "set", ns_if, "up")
        for addr in (*BACKENDS, CLIENT, CLIENT2):
            run(*ns, "ip", "addr", "add", f"{addr}/32", "dev", "lo")
        run(*ns, "ip", "link", "add", "svcnull", "type", "bridge")
        run(*ns, "ip", "link", "set", "svcnull", "up")
        run(*ns, "ip", "route", "add", "10.96.0.0/12", "dev", "svcnull")

        config = load_kubeconfig(apiserver.kubeconfig)
        port = int(config.server.rsplit(":", 1)[1])
        relay = _Relay((host_ip, 0), _RelayHandler)
        relay.target = ("127.0.0.1", port)
        threading.Thread(target=relay.serve_forever, name="apiserver-relay",
                         daemon=True).start()
        kubeconfig = tmp_path_factory.mktemp("kube-proxy") / "kubeconfig"
        # The relay is plain TCP: the apiserver's certificate does not name the relay's
        # address, hence no server verification on the test's own link-local hop; the
        # client still authenticates, as kube-proxy (system:kube-proxy, RBAC
        # system:node-proxier).
        pki = apiserver.pki
        write_kubeconfig(kubeconfig, f"https://{host_ip}:{relay.server_address[1]}",
                         client_cert_data=pki.component_cert("kube-proxy").read_bytes(),
                         client_key_data=pki.component_key("kube-proxy").read_bytes(),
                         insecure=True)

        agent = subprocess.Popen([*ns, sys.executable, "-u", "-c", AGENT, ",".join(BACKENDS)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert agent.stdout is not None and agent.stdout.readline().strip() == "ready"
        yield NetNS(name, host_ip, ns_ip, kubeconfig, Agent(agent), lock_path)
    finally:
        if agent is not None:
            agent.kill()
            agent.wait()
        if relay is not None:
            relay.shutdown()
            relay.server_close()
        run("ip", "netns", "del", name, check=False)
        run("ip", "link", "del", host_if, check=False)
        if lock_path is not None:  # kube-proxy's default lock file for this namespace
            lock_path.unlink(missing_ok=True)
            lock_path.with_name(lock_path.name + ".standby").unlink(missing_ok=True)


# --- kube-proxy processes ----------------------------------------------------------------------


@dataclass
class Proxy:
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_log(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log
            if text in log:
                return log
            if self.proc.poll() is not None:
                raise AssertionError(f"kube-proxy exited ({self.proc.returncode}) before "
                                     f"logging {text!r}:\n{log[-3000:]}")
            await asyncio.sleep(0.05)
        raise AssertionError(f"kube-proxy did not log {text!r} in {timeout}s:\n"
                             f"{self.log[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"kube-proxy ignored signal {sig}:\n{self.log[-3000:]}"
                                     ) from None
        return self.proc.returncode


@dataclass
class Proxies:
    netns: NetNS
    tmp: Path
    started: list[Proxy] = field(default_factory=list)

    def start(self, *flags: str, env: dict[str, str] | None = None) -> Proxy:
        log_path = self.tmp / f"kube-proxy-{len(self.started)}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.netns.name, *(["env", *[
                    f"{k}={v}" for k, v in env.items()]] if env else []),
                 sys.executable, "-m", "kube_proxy", "--kubeconfig",
                 str(self.netns.kubeconfig), "--hostname-override", "node-test",
                 "--cluster-cidr", POD_CIDR, *flags],
                stdout=log, stderr=log, cwd=ROOT)
        proxy = Proxy(proc, log_path)
        self.started.append(proxy)
        return proxy


@pytest.fixture
def proxies(netns: NetNS, tmp_path: Path) -> Iterator[Proxies]:
    p = Proxies(netns, tmp_path)
    try:
        yield p
    finally:
        for proxy in reversed(p.started):
            if proxy.proc.poll() is None:
                proxy.proc.kill()
                proxy.proc.wait()
        # Whatever a test left behind must not leak into the next one.
        netns.exec(sys.executable, "-m", "kube_proxy", "--cleanup", check=False)


# --- API objects -------------------------------------------------------------------------------


@pytest.fixture
async def ns(api: ApiClient) -> str:
    name = f"kp-{uuid.uuid4().hex[:8]}"
    await api.create(NAMESPACES, {"metadata": {"name": name}})
    return name


HTTP = {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}
DNS = {"name": "dns", "port": 53, "targetPort": 8053, "protocol": "UDP"}


async def make_service(api: ApiClient, ns: str, name: str, *, ports: list[Obj] | None = None,
                       **spec: Any) -> Obj:
    body = {"metadata": {"name": name},
            "spec": {"type": "ClusterIP", "ports": ports or [HTTP], **spec}}
    return await api.create(SERVICES, body, ns)


def slice_body(service: str, ready: dict[str, bool], ports: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": f"{service}-manual",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ok}}
                          for ip, ok in ready.items()],
            "ports": ports or [{"name": "http", "port": 8080, "protocol": "TCP"}]}


async def put_slice(api: ApiClient, ns: str, service: str, ready: dict[str, bool],
                    ports: list[Obj] | None = None) -> None:
    body = slice_body(service, ready, ports)
    try:
        current = await api.get(SLICES, f"{service}-manual", ns)
    except errors.NotFound:
        await api.create(SLICES, body, ns)
        return
    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    body["metadata"]["namespace"] = ns
    await api.update(SLICES, body)


async def eventually(probe: Callable[[], T], what: str, timeout: float = WAIT) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = probe()
        if isinstance(last, Awaitable):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                 f"last: {last!r}")
        await asyncio.sleep(0.05)


# --- the iptables mode -------------------------------------------------------------------------


async def test_iptables_mode_clusterip_nodeport_udp_and_endpoint_changes(
        api: ApiClient, ns: str, netns: NetNS, proxies: Proxies) -> None:
    proxy = proxies.start()
    svc = await make_service(api, ns, "web", type="NodePort", ports=[HTTP, DNS])
    cluster_ip = svc["spec"]["clusterIP"]
    node_port = next(p["nodePort"] for p in svc["spec"]["ports"] if p["name"] == "http")
    ports = [{"name": "http", "port": 8080, "protocol": "TCP"},
             {"name": "dns", "port": 8053, "protocol": "UDP"}]
    await put_slice(api, ns, "web", dict.fromkeys(BACKENDS, True), ports)
    agent = netns.agent

    # Spread over both ready endpoints, through the ClusterIP and the NodePort.
    await eventually(lambda: backends(agent.tcp(cluster_ip, 80, n=40)) == set(BACKENDS),
                     "ClusterIP traffic on both backends")
    assert backends(agent.tcp(netns.ns_ip, node_port, n=40)) == set(BACKENDS)
    assert backends(agent.udp(cluster_ip, 53, n=40)) == set(BACKENDS)
    await proxy.wait_log(f"service={ns}/web:http added clusterIP={cluster_ip}:80/TCP")

    # The chains, named as upstream names them.
    http = ServicePortName(ns, "web", "http", "TCP")
    nat = netns.exec("iptables", "-t", "nat", "-S").stdout
    for chain in ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ",
                  service_chain(http), f"KUBE-EXT-{service_chain(http)[9:]}",
                  *(endpoint_chain(http, f"{ip}:8080") for ip in BACKENDS)):
        assert f"-N {chain}" in nat, chain
    assert "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES" \
        in nat
    assert "--dst-type LOCAL -j KUBE-NODEPORTS" in nat
    assert "--probability 0.5" in nat

    # One endpoint not ready: it stops getting traffic, quickly.
    changed = time.monotonic()
    await put_slice(api, ns, "web", {BACKENDS[0]: True, BACKENDS[1]: False}, ports)
    await eventually(lambda: backends(agent.tcp(cluster_ip, 80, n=20)) == {BACKENDS[0]},
                     "the not-ready endpoint to leave the ClusterIP")
    latency = time.monotonic() - changed
    print(f"endpoint change reached the data path in {latency * 1000:.0f} ms")
    assert latency < 2.0, latency
    assert backends(agent.tcp(netns.ns_ip, node_port, n=20)) == {BACKENDS[0]}
    nat = netns.exec("iptables", "-t", "nat", "-S").stdout
    assert f"-N {endpoint_chain(http, f'{BACKENDS[1]}:8080')}" not in nat  # chain deleted

    # No ready endpoint: connections are refused (REJECT in the filter table).
    await put_slice(api, ns, "web", dict.fromkeys(BACKENDS, False), ports)
    await eventually(lambda: agent.tcp(cluster_ip, 80, n=3) == ["refused"] * 3,
                     "connections to a ClusterIP without endpoints refused")
    assert agent.tcp(netns.ns_ip, node_port, n=3) == ["refused"] * 3
    assert agent.udp(cluster_ip, 53)[0] in ("refused", "rejected")
    filt = netns.exec("iptables", "-t", "filter", "-S", "KUBE-SERVICES").stdout
    assert f'"{ns}/web:http has no endpoints"' in filt and "-j REJECT" in filt

    # Back again.
    await put_slice(api, ns, "web", {BACKENDS[1]: True}, ports)
    await eventually(lambda: backends(agent.tcp(cluster_ip, 80, n=10)) == {BACKENDS[1]},
                     "the endpoint to come back")
    assert proxy.stop() == 0
    await api.delete(SERVICES, "web", ns)


def our_rules(netns: NetNS) -> dict[tuple[str, str], list[str]]:
    """Every KUBE-* chain of nat and filter in the namespace's kernel, with its rules."""
    out: dict[tuple[str, str], list[str]] = {}
    for table in ("nat", "filter"):
        for line in netns.exec("iptables-save", "-t", table).stdout.splitlines():
            if line.startswith(":KUBE-"):
                out.setdefault((table, line[1:].split()[0]), [])
            elif line.startswith("-A KUBE-"):
                out.setdefault((table, line.split()[1]), []).append(line)
    return out


SYNCED = re.compile(r"synced full=(\w+) chains_written=(\d+) chains_deleted=(\d+)")


async def test_partial_syncs_leave_the_rules_a_full_sync_makes(
        api: ApiClient, ns: str, netns: NetNS, proxies: Proxies) -> None:
    """Endpoint changes of one Service among several are partial syncs writing a few chains;
    afterwards the kernel holds exactly what a full sync of the same objects writes."""
    proxy = proxies.start("-v", "4")
    for name in ("s1", "s2", "s3"):
        await make_service(api, ns, name, type="NodePort" if name == "s2" else "ClusterIP")
        await put_slice(api, ns, name, {BACKENDS[0]: True})

    def applied(since: int, service: str, eps: str) -> bool:
        """kube-proxy logged (after a sync) the service port with these endpoints."""
        return any(msg.startswith(f"service={ns}/{service}:http ") and
                   msg.endswith(f"endpoints=[{eps}]")
                   for msg in (ln.split(": ", 1)[-1] for ln in proxy.log[since:].splitlines()))

    for name in ("s1", "s2", "s3"):
        await eventually(functools.partial(applied, 0, name, f"{BACKENDS[0]}:8080"),
                         f"{name} programmed")
    for ready in ({BACKENDS[0]: True, BACKENDS[1]: True}, {BACKENDS[1]: True}, {},
                  {BACKENDS[0]: False, BACKENDS[1]: True}):
        since = len(proxy.log)
        await put_slice(api, ns, "s2", ready)
        eps = ",".join(f"{ip}:8080" for ip, ok in ready.items() if ok)
        await eventually(functools.partial(applied, since, "s2", eps),
                         f"kube-proxy to apply endpoints=[{eps}]")
    syncs = [(m.group(1) == "True", int(m.group(2)), int(m.group(3)))
             for m in SYNCED.finditer(proxy.log)]
    full_written = max(written for full, written, _ in syncs if full)
    partial = [(written, deleted) for full, written, deleted in syncs if not full]
    assert len(partial) >= 4 and all(w < full_written for w, _ in partial), syncs
    after_partial = our_rules(netns)
    assert proxy.stop(signal.SIGKILL) != 0  # leaves its rules

    fresh = proxies.start("-v", "4")
    await fresh.wait_log("synced full=True")
    assert our_rules(netns) == after_partial
    assert fresh.stop() == 0


async def test_session_affinity_client_ip(api: ApiClient, ns: str, netns: NetNS,
                                          proxies: Proxies) -> None:
    proxies.start()
    svc = await make_service(api, ns, "sticky", sessionAffinity="ClientIP",
                             sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    plain = await make_service(api, ns, "plain")
    for name in ("sticky", "plain"):
        await put_slice(api, ns, name, dict.fromkeys(BACKENDS, True))
    agent = netns.agent
    await eventually(lambda: backends(agent.tcp(plain["spec"]["clusterIP"], 80, n=40))
                     == set(BACKENDS), "the plain service to spread")
    cluster_ip = svc["spec"]["clusterIP"]
    await eventually(lambda: agent.tcp(cluster_ip, 80)[0] != "timeout", "the sticky service")
    for src in (CLIENT, CLIENT2):
        results = agent.tcp(cluster_ip, 80, n=30, src=src)
        assert len(backends(results)) == 1, (src, results)
    nat = netns.exec("iptables", "-t", "nat", "-S").stdout
    assert "--rcheck --seconds 60 --reap" in nat and "--set" in nat
    await api.delete(SERVICES, "sticky", ns)
    await api.delete(SERVICES, "plain", ns)


async def test_sigterm_removes_every_rule(api: ApiClient, ns: str, netns: NetNS,
                                          proxies: Proxies) -> None:
    proxy = proxies.start("--healthz-bind-address", "127.0.0.1:10256")
    svc = await make_service(api, ns, "bye", type="NodePort")
    await put_slice(api, ns, "bye", {BACKENDS[0]: True})
    await eventually(lambda: netns.agent.tcp(svc["spec"]["clusterIP"], 80) != ["timeout"],
                     "the service to work")
    assert netns.kube_lines()
    health = netns.exec(sys.executable, "-c", (
        "import urllib.request; r = urllib.request.urlopen('http://127.0.0.1:10256/healthz', "
        "timeout=5); print(r.status, r.read().decode())")).stdout
    status, body = health.split(" ", 1)
    assert status == "200" and json.loads(body)["role"] == "programmer", health
    assert proxy.stop(signal.SIGTERM) == 0
    assert "removed our iptables rules" in proxy.log
    assert netns.kube_lines() == []  # no KUBE-* chain, no jump rule, in any table
    assert netns.agent.tcp(svc["spec"]["clusterIP"], 80) == ["timeout"]
    await api.delete(SERVICES, "bye", ns)


async def test_one_programmer_per_kernel_standby_takes_over(
        api: ApiClient, ns: str, netns: NetNS, proxies: Proxies) -> None:
    first = proxies.start()
    await first.wait_log("programming this kernel's rules")
    second = proxies.start()
    await second.wait_log(f"another kube-proxy (pid {first.proc.pid}) programs this kernel's "
                          f"rules; standing by")
    svc = await make_service(api, ns, "ha")
    cluster_ip = svc["spec"]["clusterIP"]
    await put_slice(api, ns, "ha", dict.fromkeys(BACKENDS, True))
    agent = netns.agent
    await eventually(lambda: backends(agent.tcp(cluster_ip, 80, n=30)) == set(BACKENDS),
                     "the service programmed by the first kube-proxy")
    assert "service=" not in second.log  # the standby programs nothing

    # A clean stop with a standby present leaves the rules for it.
    assert first.stop(signal.SIGTERM) == 0
    assert "leaving the rules in place" in first.log
    await second.wait_log("took over programming this kernel's rules")
    assert backends(agent.tcp(cluster_ip, 80, n=20)) == set(BACKENDS)
    await put_slice(api, ns, "ha", {BACKENDS[0]: True, BACKENDS[1]: False})
    await eventually(lambda: backends(agent.tcp(cluster_ip, 80, n=20)) == {BACKENDS[0]},
                     "the second kube-proxy to apply a change")

    # A killed holder releases the lock too: a third one takes over from the second.
    third = proxies.start()
    await third.wait_log(f"another kube-proxy (pid {second.proc.pid})")
    second.stop(signal.SIGKILL)
    await third.wait_log("took over programming this kernel's rules")
    await put_slice(api, ns, "ha", {BACKENDS[1]: True})
    await eventually(lambda: backends(agent.tcp(cluster_ip, 80, n=20)) == {BACKENDS[1]},
                     "the third kube-proxy to apply a change")
    assert third.stop(signal.SIGTERM) == 0
    assert netns.kube_lines() == []

    # Stopped together (as `kubelite up` stops its nodes), the last one out cleans up.
    holder = proxies.start()
    await holder.wait_log("programming this kernel's rules")
    standby = proxies.start()
    await standby.wait_log("standing by")
    await eventually(lambda: backends(agent.tcp(cluster_ip, 80, n=5)) == {BACKENDS[1]},
                     "the rules back")
    for proxy in (holder, standby):
        proxy.proc.send_signal(signal.SIGTERM)
    assert (holder.stop(), standby.stop()) == (0, 0)
    assert netns.kube_lines() == [], holder.log + standby.log
    await api.delete(SERVICES, "ha", ns)


# --- the userspace mode ------------------------------------------------------------------------


async def test_userspace_mode_forwards_and_cleans_up(api: ApiClient, ns: str, netns: NetNS,
                                                     proxies: Proxies) -> None:
    proxy = proxies.start("--proxy-mode", "userspace")
    await proxy.wait_log("ClusterIPs go on interface kl-svc0")
    svc = await make_service(api, ns, "us", type="NodePort", ports=[HTTP, DNS])
    cluster_ip = svc["spec"]["clusterIP"]
    node_port = next(p["nodePort"] for p in svc["spec"]["ports"] if p["name"] == "http")
    ports = [{"name": "http", "port": 8080, "protocol": "TCP"},
             {"name": "dns", "port": 8053, "protocol": "UDP"}]
    await put_slice(api, ns, "us", dict.fromkeys(BACKENDS, True), ports)
    agent = netns.agent
    await eventually(lambda: backends(agent.tcp(cluster_ip, 80, n=10)) == set(BACKENDS),
                     "ClusterIP forwarded to both backends")
    assert backends(agent.tcp(netns.ns_ip, node_port, n=10)) == set(BACKENDS)
    assert backends(agent.udp(cluster_ip, 53, n=10)) == set(BACKENDS)
    addrs = netns.exec("ip", "-4", "addr", "show", "dev", "kl-svc0").stdout
    assert f"{cluster_ip}/32" in addrs
    assert netns.kube_lines() == []  # no iptables in this mode

    await put_slice(api, ns, "us", {BACKENDS[0]: False, BACKENDS[1]: True}, ports)
    await eventually(lambda: backends(agent.tcp(cluster_ip, 80, n=10)) == {BACKENDS[1]},
                     "the not-ready endpoint to be dropped")
    await put_slice(api, ns, "us", dict.fromkeys(BACKENDS, False), ports)
    await eventually(lambda: agent.tcp(cluster_ip, 80, n=2) == ["refused"] * 2,
                     "connections without endpoints refused")
    assert agent.tcp(netns.ns_ip, node_port) == ["refused"]

    assert proxy.stop(signal.SIGTERM) == 0
    r = netns.exec("ip", "link", "show", "dev", "kl-svc0", check=False)
    assert r.returncode != 0, "kl-svc0 should be gone"
    await api.delete(SERVICES, "us", ns)


async def test_falls_back_to_userspace_without_iptables(
        api: ApiClient, ns: str, netns: NetNS, proxies: Proxies, tmp_path: Path) -> None:
    # A PATH with `ip` but no iptables binaries.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    ip_path = shutil.which("ip")
    assert ip_path is not None
    (bindir / "ip").symlink_to(ip_path)
    proxy = proxies.start(env={"PATH": f"{bindir}:/usr/bin:/bin"})
    log = await proxy.wait_log("falling back to the userspace mode")
    assert "iptables cannot be used (iptables, iptables-restore, iptables-save not found)" in log
    svc = await make_service(api, ns, "fb")
    await put_slice(api, ns, "fb", {BACKENDS[0]: True})
    await eventually(lambda: backends(netns.agent.tcp(svc["spec"]["clusterIP"], 80, n=3))
                     == {BACKENDS[0]}, "the fallback mode to forward")
    assert proxy.stop() == 0
    await api.delete(SERVICES, "fb", ns)
