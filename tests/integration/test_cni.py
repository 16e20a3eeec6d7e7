"""The pod network end to end on this machine: ipamd processes ("nodes") against the
session's apiserver, the CNI plugin run as the kubelet runs it (environment + stdin), and
real network namespaces and veths on a VPC bridge of this module's own.

Everything is named with a per-run tag (bridge `kl-t<tag>`, namespaces `kl-t-<tag>-*`, VPC
table `kube-system/kl-vpc-<tag>`) and removed in the module's teardown, also on failure.
Without permission for `ip netns` the module is skipped, with the reason printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from client.kubeconfig import load_kubeconfig
from client.rest import ApiClient
from cni import hostnet
from cni.datastore import IpamKey, PodRef
from cni.ec2 import Ec2Client, TableRef
from cni.ipamd import Ipamd, Options
from cni.vpc import VpcTable
from proto import ipamd_pb2, ipamd_pb2_grpc
from tests.conftest import ROOT, ApiServer, stop_process

PLUGIN = ROOT / "cni" / "kubelite-cni"
COOLDOWN = 3.0  # long enough that a loaded machine still sees the address cooling


# --- environment ----------------------------------------------------------------------------


def _netns_unsupported() -> str | None:
    if shutil.which("ip") is None or shutil.which("nsenter") is None:
        return "iproute2 (ip) and nsenter are needed"
    probe = f"kl-t-probe-{secrets.token_hex(2)}"
    proc = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        return f"`ip netns add` is not permitted here: {proc.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


def _free_vpc_cidr() -> str:
    routes = json.loads(subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"],
                                       capture_output=True, text=True, check=False).stdout
                        or "[]")
    taken = []
    for r in routes:
        dst = r.get("dst", "")
        if dst and dst != "default":
            with contextlib.suppress(ValueError):
                taken.append(ipaddress.ip_network(dst if "/" in dst else f"{dst}/32",
                                                  strict=False))
    for second in range(213, 250):
        cand = ipaddress.ip_network(f"10.{second}.0.0/16")
        if not any(cand.overlaps(t) for t in taken):
            return str(cand)
    # Not a missing tool: a machine whose routes cover all of these is a failure to see.
    pytest.fail("no free 10.x.0.0/16 (x in 213..249) for the test VPC: every one overlaps a "
                "route on this machine")


@dataclass
class Node:
    """One ipamd process."""

    name: str
    instance_type: str
    workdir: Path
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.workdir / "ipamd.sock"

    @property
    def log(self) -> Path:
        return self.workdir / "ipamd.log"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cni.ipamd", "--node-name", self.name,
                 "--instance-type", self.instance_type, "--socket", str(self.socket),
                 "--data-dir", str(self.workdir), *self.args],
                cwd=ROOT, stdout=log, stderr=log)

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"ipamd {self.name} exited {self.proc.returncode}:\n"
                                   f"{self.log.read_text()[-3000:]}")
            if self.socket.exists():
                with contextlib.suppress(grpc.RpcError):
                    self.status()
                    return
            time.sleep(0.05)
        raise TimeoutError(f"ipamd {self.name} not ready:\n{self.log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            if sig == signal.SIGKILL:
                self.proc.kill()
                self.proc.wait()
            else:
                stop_process(self.proc)

    def _stub(self) -> tuple[grpc.Channel, ipamd_pb2_grpc.CNIBackendStub]:
        channel = grpc.insecure_channel(f"unix:{self.socket}")
        return channel, ipamd_pb2_grpc.CNIBackendStub(channel)

    def status(self) -> ipamd_pb2.StatusReply:
        channel, stub = self._stub()
        with channel:
            reply: ipamd_pb2.StatusReply = stub.Status(ipamd_pb2.StatusRequest(), timeout=5)
            return reply

    def add(self, container_id: str) -> str:
        channel, stub = self._stub()
        with channel:
            reply = stub.AddNetwork(ipamd_pb2.AddNetworkRequest(
                container_id=container_id, ifname="eth0", network_name="kubelite",
                k8s_pod_namespace="default", k8s_pod_name=container_id), timeout=30)
            return str(reply.ipv4_addr)


@dataclass
class Env:
    tag: str
    bridge: str
    cidr: str
    table: str
    kubeconfig: Path
    apiserver_url: str
    tls: ssl.SSLContext  # the admin's client context
    tmp: Path
    nodes: list[Node] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)

    def node(self, name: str, instance_type: str, *extra: str, start: bool = True) -> Node:
        node = Node(f"{name}-{self.tag}", instance_type, self.tmp / name, [
            "--kubeconfig", str(self.kubeconfig), "--vpc-cidr", self.cidr,
            "--vpc-table", self.table, "--pool-monitor-interval", "0.1",
            "--ip-cooldown-period", str(COOLDOWN), "--decrease-pool-interval", "0.5",
            "--assign-timeout", "10", *extra])
        self.nodes.append(node)
        if start:
            node.start()
            node.wait_ready()
        return node

    def netns(self, short: str) -> str:
        """A new network namespace; returns its path (what CNI_NETNS carries)."""
        name = f"kl-t-{self.tag}-{short}"
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        self.namespaces.append(name)
        return f"/var/run/netns/{name}"

    def cni(self, command: str, node: Node, container_id: str, netns: str = "",
            prev_result: dict[str, Any] | None = None) -> tuple[int, dict[str, Any] | None]:
        conf: dict[str, Any] = {"cniVersion": "1.0.0", "name": "kubelite",
                                "type": "kubelite-cni", "ipamdSocket": str(node.socket),
                                "bridge": self.bridge, "mtu": 1500,
                                "dns": {"nameservers": ["10.96.0.10"]}}
        if prev_result is not None:
            conf["prevResult"] = prev_result
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
               "CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": netns,
               "CNI_IFNAME": "eth0", "CNI_PATH": str(PLUGIN.parent),
               "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;"
                           f"K8S_POD_NAME={container_id}",
               "KUBELITE_PYTHON": sys.executable}
        proc = subprocess.run([str(PLUGIN)], input=json.dumps(conf), env=env,
                              capture_output=True, text=True, timeout=60, check=False)
        out = json.loads(proc.stdout) if proc.stdout.strip() else None
        if proc.returncode != 0 and (out is None or "code" not in out):
            raise AssertionError(f"plugin failed without a CNI error: {proc.stderr}")
        return proc.returncode, out


def _teardown(env: Env) -> None:
    for node in env.nodes:
        node.stop()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                            check=False).stdout
    ours = {line.split()[0] for line in listed.splitlines()
            if line.startswith(f"kl-t-{env.tag}")}
    for name in sorted(ours | set(env.namespaces)):
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    ports = json.loads(subprocess.run(["ip", "-j", "link", "show", "master", env.bridge],
                                      capture_output=True, text=True, check=False).stdout
                       or "[]")
    for port in ports:
        hostnet.delete_link(port["ifname"])
    hostnet.teardown_bridge(env.bridge)
    ns, _, name = env.table.partition("/")
    req = urllib.request.Request(f"{env.apiserver_url}/api/v1/namespaces/{ns}/configmaps/{name}",
                                 method="DELETE")
    with contextlib.suppress(OSError):
        urllib.request.urlopen(req, timeout=5, context=env.tls).close()


@pytest.fixture(scope="module")
def env(apiserver: ApiServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    reason = _netns_unsupported()
    if reason is not None:
        print(f"\nskipping the CNI integration tests: {reason}")
        pytest.skip(reason)
    tag = secrets.token_hex(3)
    e = Env(tag=tag, bridge=f"kl-t{tag}", cidr=_free_vpc_cidr(),
            table=f"kube-system/kl-vpc-{tag}", kubeconfig=apiserver.kubeconfig,
            apiserver_url=apiserver.url, tls=apiserver.tls(),
            tmp=tmp_path_factory.mktemp("cni"))
    try:
        yield e
    finally:
        _teardown(e)


def _in_netns(netns: str, *argv: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nsenter", f"--net={netns}", *argv], capture_output=True, text=True,
                          timeout=20, check=False, **kw)


PEER_SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7777)); s.listen(4); s.settimeout(15)
print("ready", flush=True)
for _ in range(int(sys.argv[1])):
    conn, peer = s.accept()
    print(peer[0], flush=True)
    conn.close()
"""


# --- tests ------------------------------------------------------------------------------------


def test_pods_on_two_nodes_talk_directly(env: Env) -> None:
    node_a = env.node("a", "m5.large")
    node_b = env.node("b", "m5.large")
    assert node_a.status().max_pods == 29
    ns_a, ns_b = env.netns("a"), env.netns("b")

    rc, res_a = env.cni("ADD", node_a, "pod-a", ns_a)
    assert rc == 0, res_a
    rc, res_b = env.cni("ADD", node_b, "pod-b", ns_b)
    assert rc == 0, res_b
    assert res_a is not None and res_b is not None
    vpc = ipaddress.ip_network(env.cidr)
    gateway = str(vpc.network_address + 1)
    for res, ns in ((res_a, ns_a), (res_b, ns_b)):
        assert res["cniVersion"] == "1.0.0"
        [ip] = res["ips"]
        assert ip["gateway"] == gateway and ip["address"].endswith(f"/{vpc.prefixlen}")
        assert ipaddress.ip_address(ip["address"].split("/")[0]) in vpc
        assert res["interfaces"][ip["interface"]] == {
            "name": "eth0", "mac": res["interfaces"][1]["mac"], "sandbox": ns}
        assert res["interfaces"][0]["name"].startswith("kl")
        assert res["routes"] == [{"dst": "0.0.0.0/0", "gw": gateway}]
        assert res["dns"] == {"nameservers": ["10.96.0.10"]}
        assert ip["address"] in _in_netns(ns, "ip", "-4", "addr", "show", "eth0").stdout
        assert f"default via {gateway}" in _in_netns(ns, "ip", "route").stdout
    ip_a = res_a["ips"][0]["address"].split("/")[0]
    ip_b = res_b["ips"][0]["address"].split("/")[0]
    # each address belongs to an ENI of the node that assigned it
    assert any(f"{ip_a}/32" in e.cidrs for e in node_a.status().enis)
    assert any(f"{ip_b}/32" in e.cidrs for e in node_b.status().enis)

    # pod a → pod b directly: b sees a's own address (no NAT); the host reaches b via the bridge
    server = subprocess.Popen(["nsenter", f"--net={ns_b}", sys.executable, "-c", PEER_SERVER,
                               "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"
        client = _in_netns(ns_a, sys.executable, "-c",
                           f"import socket; socket.create_connection(('{ip_b}', 7777), "
                           f"timeout=5).close()")
        assert client.returncode == 0, client.stderr
        assert server.stdout.readline().strip() == ip_a
        socket.create_connection((ip_b, 7777), 5).close()
        assert server.stdout.readline().strip() == gateway
    finally:
        server.kill()
        server.wait()
    if shutil.which("ping"):
        ping = _in_netns(ns_a, "ping", "-c1", "-W1", ip_b)
        assert ping.returncode == 0, ping.stdout + ping.stderr

    # CHECK against the ADD result
    assert env.cni("CHECK", node_a, "pod-a", ns_a, prev_result=res_a) == (0, None)
    rc, err = env.cni("CHECK", node_a, "pod-a", ns_a, prev_result=res_b)
    assert rc == 1 and err is not None and err["code"] == 103

    # DEL removes the veth and releases the address; DEL again, or without the netns, is fine
    host_veth = res_a["interfaces"][0]["name"]
    assert env.cni("DEL", node_a, "pod-a", ns_a) == (0, None)
    status = node_a.status()
    assert status.assigned_ips == 0 and status.cooldown_ips == 1
    assert hostnet.link(host_veth) is None
    assert hostnet.link("eth0", netns=ns_a) is None
    assert env.cni("DEL", node_a, "pod-a", ns_a) == (0, None)
    subprocess.run(["ip", "netns", "del", os.path.basename(ns_b)], check=True)
    assert env.cni("DEL", node_b, "pod-b", "") == (0, None)
    time.sleep(COOLDOWN + 0.1)
    assert node_a.status().cooldown_ips == 0


def _egress_rules_of(bridge: str) -> list[str]:
    tag = f"{hostnet.RULE_COMMENT}-egress:{bridge}"
    lines = []
    for table in ("nat", "filter"):
        out = subprocess.run(["iptables", "-w", "5", "-t", table, "-S"], capture_output=True,
                             text=True, check=False).stdout
        lines += [line for line in out.splitlines() if tag in line]
    return lines


def test_pods_reach_outside_the_vpc_through_the_host(env: Env) -> None:
    if shutil.which("iptables") is None:
        print("\nskipping the egress test: iptables is not installed")
        pytest.skip("iptables is not installed")
    node = env.node("e", "m5.large")
    pod_ns, outside_ns = env.netns("e"), env.netns("x")
    rc, res = env.cni("ADD", node, "pod-e", pod_ns)
    assert rc == 0, res
    # "Outside": a namespace of ours behind a veth of the host, in a range that is not the VPC.
    third = secrets.randbelow(200) + 1
    host_addr, outside_addr = f"198.18.{third}.1", f"198.18.{third}.2"
    host_if = f"klx{env.tag}"
    subprocess.run(["ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0",
                    "netns", outside_ns], check=True, capture_output=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{host_addr}/30", "dev", host_if], check=True)
        subprocess.run(["ip", "link", "set", host_if, "up"], check=True)
        for cmd in (["ip", "addr", "add", f"{outside_addr}/30", "dev", "eth0"],
                    ["ip", "link", "set", "eth0", "up"], ["ip", "link", "set", "lo", "up"]):
            assert _in_netns(outside_ns, *cmd).returncode == 0
        server = subprocess.Popen(["nsenter", f"--net={outside_ns}", sys.executable, "-c",
                                   PEER_SERVER, "1"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            assert server.stdout.readline().strip() == "ready"
            client = _in_netns(pod_ns, sys.executable, "-c",
                               f"import socket; socket.create_connection(('{outside_addr}', "
                               f"7777), timeout=5).close()")
            assert client.returncode == 0, client.stderr
            # The outside sees the host's address, not the pod's: masqueraded.
            assert server.stdout.readline().strip() == host_addr
        finally:
            server.kill()
            server.wait()
    finally:
        hostnet.delete_link(host_if)
    # Three tagged rules; found and removed by their comment, and put back.
    assert len(_egress_rules_of(env.bridge)) == 3
    assert hostnet.remove_egress_rules(env.bridge) == 3
    assert _egress_rules_of(env.bridge) == []
    vpc = ipaddress.ip_network(env.cidr)
    assert hostnet.ensure_egress(env.bridge, f"{vpc.network_address + 1}/{vpc.prefixlen}")
    assert len(_egress_rules_of(env.bridge)) == 3
    assert env.cni("DEL", node, "pod-e", pod_ns) == (0, None)


def test_exhausted_pool_and_cooldown(env: Env) -> None:
    node = env.node("tiny", "t3.micro")  # 2 ENIs × 1 secondary address
    assert node.status().max_pods == 4
    netns = [env.netns(f"t{i}") for i in range(3)]
    rc, first = env.cni("ADD", node, "tiny-1", netns[0])
    assert rc == 0 and first is not None
    assert env.cni("ADD", node, "tiny-2", netns[1])[0] == 0
    assert len(node.status().enis) == 2

    rc, err = env.cni("ADD", node, "tiny-3", netns[2])
    assert rc == 1 and err is not None
    assert err["code"] == 11
    assert err["msg"] == "failed to assign an IP address to container"
    assert "2/2 ENIs" in err["details"]
    assert hostnet.link("eth0", netns=netns[2]) is None  # nothing half-made

    # a released address is reused only after the cool-down
    assert env.cni("DEL", node, "tiny-1", netns[0]) == (0, None)
    rc, err = env.cni("ADD", node, "tiny-3", netns[2])
    assert rc == 1 and err is not None and "1 cooling down" in err["details"]
    time.sleep(COOLDOWN + 0.1)
    rc, third = env.cni("ADD", node, "tiny-3", netns[2])
    assert rc == 0 and third is not None
    assert third["ips"][0]["address"] == first["ips"][0]["address"]
    for cid, ns in (("tiny-2", netns[1]), ("tiny-3", netns[2])):
        assert env.cni("DEL", node, cid, ns) == (0, None)


def test_two_nodes_starting_together_never_share_an_address(env: Env) -> None:
    # Small steps (WARM_IP_TARGET=2) make both nodes write the VPC table often, at once.
    nodes = [env.node(n, "m5.large", "--warm-ip-target", "2", "--warm-eni-target", "0",
                      start=False) for n in ("c1", "c2")]
    for node in nodes:
        node.start()
    for node in nodes:
        node.wait_ready()
    jobs = [(node, f"{node.name}-pod-{i}") for i in range(20) for node in nodes]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        ips = list(pool.map(lambda job: job[0].add(job[1]), jobs))
    assert len(set(ips)) == 40, sorted(ips)

    table = asyncio.run(_read_table(env))
    owners: dict[int, str] = {}
    for eni in table.enis.values():
        for addr in eni.addresses():
            assert addr not in owners, f"{addr} in {owners.get(addr)} and {eni.eni_id}"
            owners[addr] = eni.eni_id
    for (node, _), ip in zip(jobs, ips, strict=True):
        owner = table.owner_of(ip)
        assert owner is not None and owner.node == node.name
    for node in nodes:
        status = node.status()
        assert status.assigned_ips == 20 and len(status.enis) == 3


async def _read_table(env: Env) -> VpcTable:
    async with ApiClient(load_kubeconfig(env.kubeconfig), component="test") as api:
        return await Ec2Client(api, ipaddress.IPv4Network(env.cidr),
                               TableRef.parse(env.table)).table()


@pytest.mark.asyncio
async def test_table_compare_and_swap_under_contention(env: Env) -> None:
    cidr = ipaddress.IPv4Network(env.cidr)
    async with ApiClient(load_kubeconfig(env.kubeconfig), component="test") as api:
        clients = [Ec2Client(api, cidr, TableRef.parse(env.table)) for _ in range(8)]

        async def grab(i: int, client: Ec2Client) -> list[str]:
            eni = await client.create_and_attach_eni(f"cas-{i}-{env.tag}", "m5.large",
                                                     secondary_ips=4)
            more = await client.assign_private_ips(eni.eni_id, 5)
            return [eni.primary_ip, *eni.ips, *more]

        results = await asyncio.gather(*(grab(i, c) for i, c in enumerate(clients)))
        ips = [ip for r in results for ip in r]
        assert len(ips) == 80 and len(set(ips)) == 80
        assert sum(c.conflicts for c in clients) > 0  # the races did happen, and were redone
        table = await clients[0].table()
        for i, got in enumerate(results):
            [eni] = table.node_enis(f"cas-{i}-{env.tag}")
            assert sorted([eni.primary_ip, *eni.ips]) == sorted(got)
            await clients[0].delete_eni(eni.eni_id)


def test_ipamd_restart_keeps_assignments(env: Env) -> None:
    node = env.node("r", "m5.large")
    ns = env.netns("r1")
    rc, res = env.cni("ADD", node, "keep-1", ns)
    assert rc == 0 and res is not None
    kept = {res["ips"][0]["address"].split("/")[0]}
    kept |= {node.add(f"keep-{i}") for i in range(2, 5)}
    enis_before = [e.eni_id for e in node.status().enis]

    node.stop(signal.SIGKILL)  # a crash: no chance to write anything more
    node.start()
    node.wait_ready()
    status = node.status()
    assert status.assigned_ips == 4
    assert [e.eni_id for e in status.enis][:len(enis_before)] == enis_before
    assert node.add("keep-2") in kept  # a repeated ADD gets its own address back
    fresh = {node.add(f"new-{i}") for i in range(6)}
    assert not fresh & kept

    # DEL of a container from before the restart releases its address
    assert env.cni("DEL", node, "keep-1", ns) == (0, None)
    assert node.status().assigned_ips == 3 + 6

    # a lost checkpoint: addresses of pods the apiserver knows on this node are recovered
    node.stop()
    (node.workdir / "ipam.json").unlink()
    pod_ip = min(kept - {res["ips"][0]["address"].split("/")[0]})
    asyncio.run(_bound_pod(env, node.name, "recovered", pod_ip))
    try:
        node.start()
        node.wait_ready()
        assert node.status().assigned_ips == 1
        assert pod_ip not in {node.add(f"after-{i}") for i in range(9)}
    finally:
        asyncio.run(_delete_pod(env, "recovered"))


async def _bound_pod(env: Env, node: str, name: str, ip: str) -> None:
    from api.resources import CATALOGUE
    pods = CATALOGUE.require("pods")
    async with ApiClient(load_kubeconfig(env.kubeconfig), component="test") as api:
        pod = await api.create(pods, {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{name}-{env.tag}", "namespace": "default"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "pause"}]}},
            "default")
        pod["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}
        await api.update_status(pods, pod)


async def _delete_pod(env: Env, name: str) -> None:
    from api.resources import CATALOGUE
    async with ApiClient(load_kubeconfig(env.kubeconfig), component="test") as api:
        with contextlib.suppress(Exception):
            await api.delete(CATALOGUE.require("pods"), f"{name}-{env.tag}", "default",
                             grace_period_seconds=0)


@pytest.mark.asyncio
async def test_pool_shrinks_and_gives_back_enis(env: Env, tmp_path: Path) -> None:
    """ipamd in-process: grow to WARM_IP_TARGET, then give back surplus addresses and unused
    ENIs once pods leave and the cool-down is over; the same with /28 prefixes."""
    cidr = ipaddress.IPv4Network(env.cidr)
    async with ApiClient(load_kubeconfig(env.kubeconfig), component="test") as api:
        ec2 = Ec2Client(api, cidr, TableRef.parse(env.table))
        opts = Options(node_name=f"shrink-{env.tag}", instance_type="t3.small",
                       data_dir=tmp_path / "shrink", vpc_cidr=env.cidr, warm_ip_target=2,
                       ip_cooldown=0.2, decrease_interval=0, eni_min_lifetime=0,
                       assign_timeout=5)
        ipamd = Ipamd(opts, ec2, api)
        await ipamd.init()
        assert ipamd.ds.stats().total_ips == 2  # WARM_IP_TARGET from an empty primary ENI
        keys = [IpamKey("kubelite", f"s{i}", "eth0") for i in range(7)]
        for key in keys:
            await ipamd.add_network(key, PodRef("default", key.container_id))
            await ipamd.reconcile()
        stats = ipamd.ds.stats()
        assert (stats.assigned_ips, stats.available, stats.enis) == (7, 2, 3)
        for key in keys:
            await ipamd.del_network(key, PodRef())
        await asyncio.sleep(0.3)
        for _ in range(4):  # one ENI is given back per pass, as upstream does
            await ipamd.reconcile()
        stats = ipamd.ds.stats()
        assert (stats.total_ips, stats.enis) == (2, 1)
        [eni] = (await ec2.table()).node_enis(opts.node_name)
        assert eni.device_number == 0 and len(eni.ips) == 2  # the table agrees

        pd_opts = Options(node_name=f"pd-{env.tag}", instance_type="m5.large",
                          data_dir=tmp_path / "pd", vpc_cidr=env.cidr, prefix_delegation=True,
                          ip_cooldown=0.2, decrease_interval=0)
        pd = Ipamd(pd_opts, ec2, api)
        await pd.init()
        assert pd.max_pods == 110
        [pd_eni] = (await ec2.table()).node_enis(pd_opts.node_name)
        assert len(pd_eni.prefixes) == 1 and pd_eni.prefixes[0].endswith("/28")
        got = [await pd.add_network(IpamKey("kubelite", f"p{i}", "eth0"), PodRef())
               for i in range(3)]
        prefix = ipaddress.IPv4Network(pd_eni.prefixes[0])
        assert all(ipaddress.IPv4Address(a.ip) in prefix for a in got)
        await pd.reconcile()
        assert pd.ds.stats().total_prefixes == 2  # WARM_PREFIX_TARGET=1: a whole free /28
        for eni_id in [e.eni_id for e in ipamd.ds.ordered_enis()] + \
                [e.eni_id for e in pd.ds.ordered_enis()]:
            await ec2.delete_eni(eni_id)
