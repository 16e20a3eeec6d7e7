"""`kubelite up`: the all-in-one cluster in the foreground, each component its own process.

The supervisor starts etcd (unless --etcd-servers is given) and every component that exists,
restarts a component that dies, and on SIGINT/SIGTERM stops them all (newest first) and
exits 0. All state lives under --data-dir, so starting again on the same directory keeps
every object.

Nodes (`--nodes N`, named node-1 ... node-N): per node the CRI runtime service, ipamd, the
kubelet and kube-proxy, each its own process, with their data under `DATA/nodes/<node>/` (static pod
manifests in `DATA/nodes/<node>/manifests`). They need dockerd; without it no node starts
(one line says so). Nodes of one host share dockerd and the VPC bridge, so only one
`kubelite up` with nodes runs per host at a time (a lock in /run/kubelite says which).

With nodes, the apiserver also listens on the VPC gateway address (its advertise address,
the endpoint of the `kubernetes` Service) and the cluster DNS add-on (dns/addon.py: the
`kube-dns` Deployment and Service at --cluster-dns) is created unless --no-dns.

Endpoint access, as EKS (docs/security.md "Endpoint access (EKS modes)"): the public
endpoint is the host's loopback (`DATA/kubeconfig`), open to --public-access-cidrs only; the
private endpoint is the VPC gateway address (`DATA/kubeconfig-private`), used by the nodes,
their kube-proxies and ipamds, and the `kubernetes` Service. Public only: nodes use the public
endpoint and the gateway listener stays for pods, under the same allowlist. Private only: no
loopback listener; `kubelite vpc-shell` is the way in.

Security (docs/security.md): the cluster PKI lives in `DATA/pki/` (made on first start,
reused after); etcd, the apiserver and every kubelet serve TLS only; each component talks to
the apiserver with its own client certificate (kubeconfigs in `DATA/kubeconfigs/`), the
user with the admin's (`DATA/kubeconfig`). Secrets are encrypted in etcd with secretbox
under a key made once in `DATA/pki/encryption-config.yaml`; the audit log goes to
`DATA/logs/audit.log`. A kubelet's serving certificate names the node IP its ipamd hands
out, so each node's ipamd starts before its kubelet.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import fcntl
import hashlib
import ipaddress
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from api.errors import AlreadyExists, StatusError
from api.flags import parse_bool
from api.resources import CATALOGUE
from apiserver.allowlist import allowed, parse_cidrs
from apiserver.audit import ensure_default_policy
from apiserver.storage.encryption import ensure_encryption_config
from client.kubeconfig import ClientConfig, load_kubeconfig
from client.rest import ApiClient, ApiConnectionError
from cni.vpc import gateway_of, parse_vpc_cidr
from dns import addon as dns_addon
from kubelet.network import (
    DEFAULT_BIN_DIR,
    DEFAULT_BRIDGE,
    flush_node_addresses,
    ipamd_status,
    make_netconf,
    primary_ip,
    write_netconf,
)
from kubelite.pki import (
    Pki,
    PkiError,
    ensure_control_plane,
    ensure_node,
    known_nodes,
    write_kubeconfigs,
)
from kubelite.tlsflags import apiserver_flags, etcd_flags

log = logging.getLogger("kubelite.up")

DNS_SERVICE_IP = "10.96.0.10"  # the service range's tenth address, as kubeadm


@dataclass
class Component:
    name: str
    argv: list[str]
    log_path: Path
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0
    env: dict[str, str] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="kubelite up", description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", required=True, help="where etcd data, kubeconfig and logs live")
    p.add_argument("--port", type=int, default=6443, help="apiserver port (default 6443)")
    p.add_argument("--nodes", type=int, default=1, help="number of nodes (kubelets) to run")
    p.add_argument("--etcd-servers", default="", help="use these etcd URLs instead of "
                   "starting one")
    p.add_argument("--instance-type", default="m5.large",
                   help="EC2 instance type the nodes pretend to be (ENI and max-pods limits)")
    p.add_argument("--vpc-cidr", default="10.200.0.0/16", help="the pod network (VPC) CIDR")
    p.add_argument("--docker-endpoint", default="unix:///var/run/docker.sock")
    p.add_argument("--proxy-mode", choices=("iptables", "userspace"), default="iptables",
                   help="kube-proxy's mode on every node (default iptables)")
    p.add_argument("--cluster-dns", default=DNS_SERVICE_IP,
                   help=f"the cluster DNS Service IP (default {DNS_SERVICE_IP})")
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--service-cluster-ip-range", default="10.96.0.0/12",
                   help="Service ClusterIP range; its first address is the kubernetes "
                        "Service, named in the apiserver's certificate")
    p.add_argument("--no-dns", action="store_true",
                   help="do not install the cluster DNS add-on")
    p.add_argument("--endpoint-public-access", type=parse_bool, default=True,
                   metavar="true|false", help="serve the public endpoint on the host's "
                   "loopback (default true, as EKS)")
    p.add_argument("--endpoint-private-access", type=parse_bool, default=False,
                   metavar="true|false", help="serve the private endpoint on the VPC "
                   "gateway for nodes and pods (default false, as EKS; needs root)")
    p.add_argument("--public-access-cidrs", default="0.0.0.0/0", metavar="CIDR[,CIDR]",
                   help="source addresses the public endpoint accepts (default 0.0.0.0/0)")
    for comp in ("kube-apiserver", "kube-scheduler", "kube-controller-manager", "kubelet",
                 "kube-proxy", "ipamd", "runtime"):
        p.add_argument(f"--{comp}-arg", action="append", default=[], metavar="--flag=value",
                       help=f"extra flag for {comp} (repeatable)")
    a = p.parse_args(argv)
    if a.nodes < 0:
        p.error("--nodes must be >= 0")
    if not 1 <= a.port <= 65535:
        p.error("--port must be between 1 and 65535")
    try:
        parse_cidrs(a.public_access_cidrs)
    except ValueError as e:
        p.error(f"--public-access-cidrs: {e}")
    return a


def endpoint_refusal(args: argparse.Namespace) -> str | None:
    """The one line `up` refuses an endpoint combination with, or None when it can run."""
    if not args.endpoint_public_access and not args.endpoint_private_access:
        return ("kubelite up: --endpoint-public-access=false and "
                "--endpoint-private-access=false leave the cluster with no endpoint; "
                "enable at least one")
    if args.endpoint_private_access and os.geteuid() != 0:
        return ("kubelite up: --endpoint-private-access=true needs root (the private "
                "endpoint listens on the VPC bridge)")
    return None


def set_server(src: Path, dst: Path, server: str) -> Path:
    """A copy of kubeconfig `src` at `dst` (mode 0600: it holds a key) naming `server`."""
    doc = yaml.safe_load(src.read_text())
    for cluster in doc.get("clusters") or []:
        cluster["cluster"]["server"] = server
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    return dst


class Supervisor:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data_dir = Path(args.data_dir).resolve()
        self.logs = self.data_dir / "logs"
        self.components: list[Component] = []
        self.stopping = asyncio.Event()
        self.python = sys.executable
        self._node_lock: Any = None
        self.with_nodes = False
        self.advertise_address = ""
        self.internal_port = 0
        self.pki: Pki = Pki(self.data_dir / "pki")

    def _py(self, module: str, *flags: str) -> list[str]:
        return [self.python, "-m", module, *flags]

    # --- nodes ----------------------------------------------------------------------------

    def node_names(self) -> list[str]:
        return [f"node-{i}" for i in range(1, self.args.nodes + 1)]

    def socket_dir(self, node: str) -> Path:
        """Where a node's unix sockets live: under its data dir, unless that path would be
        too long for a socket (108 bytes); then under /run/kubelite."""
        d = self.data_dir / "nodes" / node
        if len(str(d / "ipamd.sock")) < 100:
            return d
        digest = hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:10]
        return Path("/run/kubelite") / digest / node

    def plan_nodes(self, kubeconfigs: dict[str, Path]) -> list[Component]:
        """Per node: the runtime service, ipamd, the kubelet and kube-proxy (in that order).
        Each node's processes use the node's own identity (system:node:<name>)."""
        a = self.args
        comps: list[Component] = []
        for i, node in enumerate(self.node_names()):
            kc = str(kubeconfigs[f"kubelet-{node}"])
            home = self.data_dir / "nodes" / node
            sockets = self.socket_dir(node)
            sockets.mkdir(parents=True, exist_ok=True)
            cri_sock, ipamd_sock = sockets / "cri.sock", sockets / "ipamd.sock"
            conf_dir = home / "cni" / "net.d"
            write_netconf(conf_dir, make_netconf(str(ipamd_sock), bridge=DEFAULT_BRIDGE))
            runtime_flags = ["--listen", f"unix://{cri_sock}", "--root-directory",
                             str(home / "runtime"), "--node-name", node,
                             "--docker-endpoint", a.docker_endpoint, *a.runtime_arg]
            cni = ["--network-plugin", "cni", "--cni-conf-dir", str(conf_dir),
                   "--cni-bin-dir", str(DEFAULT_BIN_DIR)]
            # The runtime execs the CNI plugin for each sandbox (cri-dockerd's flags).
            runtime = self._py("kubelet.runtime", *runtime_flags, *cni)
            comps.append(Component(f"runtime-{node}", runtime, self.logs / f"runtime-{node}.log"))
            comps.append(Component(f"ipamd-{node}", self._py(
                "cni.ipamd", "--kubeconfig", str(kubeconfigs["ipamd"]), "--node-name", node, "--instance-type",
                a.instance_type, "--socket", str(ipamd_sock), "--data-dir", str(home / "ipamd"),
                "--vpc-cidr", a.vpc_cidr, *a.ipamd_arg), self.logs / f"ipamd-{node}.log"))
            port = 10250 + i
            if port_in_use(port):
                port = free_port()
            pki = self.pki
            comps.append(Component(f"kubelet-{node}", self._py(
                "kubelet", "--kubeconfig", kc, "--node-name", node,
                "--tls-cert-file", str(pki.node_serving_cert(node)),
                "--tls-private-key-file", str(pki.node_serving_key(node)),
                "--client-ca-file", str(pki.ca_cert),
                "--container-runtime-endpoint", f"unix://{cri_sock}",
                "--root-dir", str(home / "kubelet"), "--pod-logs-dir", str(home / "logs"),
                "--pod-manifest-path", str(home / "manifests"),
                "--port", str(port), "--instance-type", a.instance_type,
                "--ipamd-socket", str(ipamd_sock), "--docker-endpoint", a.docker_endpoint,
                "--cluster-dns", a.cluster_dns, "--cluster-domain", a.cluster_domain,
                *a.kubelet_arg), self.logs / f"kubelet-{node}.log"))
            # Nodes share this host's kernel: the first kube-proxy programs it, the others
            # stand by (docs/kube-proxy.md).
            comps.append(Component(f"kube-proxy-{node}", self._py(
                "kube_proxy", "--kubeconfig", str(kubeconfigs["kube-proxy"]),
                "--hostname-override", node,
                "--proxy-mode", a.proxy_mode, "--cluster-cidr", a.vpc_cidr,
                *a.kube_proxy_arg), self.logs / f"kube-proxy-{node}.log"))
        return comps

    def nodes_possible(self) -> bool:
        """dockerd reachable, the host lock ours, the VPC bridge up; else say why."""
        if self.args.nodes == 0:
            return False
        docker_sock = self.args.docker_endpoint.removeprefix("unix://")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(docker_sock)
        except OSError:
            print(f"kubelite up: dockerd is not reachable at {docker_sock}: starting no nodes "
                  f"(as root, `make install` installs and starts it)", file=sys.stderr,
                  flush=True)
            return False
        lock_dir = Path("/run/kubelite")
        try:
            lock_dir.mkdir(parents=True, exist_ok=True)
            self._node_lock = (lock_dir / "nodes.lock").open("a+")
            fcntl.flock(self._node_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._node_lock.seek(0)
            owner = self._node_lock.read().strip() or "another kubelite up"
            print(f"kubelite up: nodes of another cluster run on this host ({owner}); stop "
                  f"it or use --nodes 0", file=sys.stderr, flush=True)
            raise SystemExit(1) from None
        except OSError as e:
            print(f"kubelite up: cannot take /run/kubelite/nodes.lock ({e}): starting no "
                  f"nodes", file=sys.stderr, flush=True)
            return False
        self._node_lock.truncate(0)
        self._node_lock.write(f"pid {os.getpid()}, data dir {self.data_dir}\n")
        self._node_lock.flush()
        if os.geteuid() == 0:
            # The VPC bridge, before any node: ipamd's addresses live on it (as aws-node's
            # init container prepares the host). The plugin would also create it lazily.
            self.ensure_vpc_bridge()
            # Node addresses left on the bridge by nodes that did not stop cleanly: ours
            # alone now (we hold the lock), and any of them may be a pod's address soon.
            stale = flush_node_addresses(DEFAULT_BRIDGE)
            if stale:
                log.info("removed stale node addresses from %s: %s", DEFAULT_BRIDGE,
                         ", ".join(stale))
        else:
            print("kubelite up: not root: the VPC bridge and pod network need root",
                  file=sys.stderr, flush=True)
        return True

    def ensure_vpc_bridge(self) -> None:
        """The VPC bridge with the gateway address on it (root only; idempotent)."""
        r = subprocess.run([self.python, "-m", "cni.hostnet", "up", "--bridge",
                            DEFAULT_BRIDGE, "--vpc-cidr", self.args.vpc_cidr],
                           capture_output=True, text=True, check=False, timeout=30)
        if r.returncode != 0:
            print(f"kubelite up: VPC bridge: {r.stderr.strip()}", file=sys.stderr)

    def endpoint_flags(self) -> list[str]:
        """The apiserver's listeners for the endpoint modes (docs/security.md)."""
        a = self.args
        bind = "127.0.0.1" if a.endpoint_public_access else self.advertise_address
        flags = ["--bind-address", bind]
        if self.advertise_address:
            flags += ["--advertise-address", self.advertise_address]
        flags += ["--public-access-cidrs", a.public_access_cidrs,
                  "--endpoint-private-access", str(a.endpoint_private_access).lower()]
        if self.internal_port:
            flags += ["--internal-port", str(self.internal_port)]
        return flags

    def plan(self) -> list[Component]:
        a = self.args
        comps: list[Component] = []
        etcd_servers = a.etcd_servers
        if not etcd_servers:
            etcd_bin = shutil.which("etcd")
            if etcd_bin is None:
                raise SystemExit("kubelite up: etcd is not installed (make install, or "
                                 "apt-get install etcd-server), or pass --etcd-servers")
            client_port, peer_port = free_port(), free_port()
            etcd_servers = f"https://127.0.0.1:{client_port}"
            peer = f"https://127.0.0.1:{peer_port}"
            comps.append(Component("etcd", [
                etcd_bin, "--name", "kubelite", "--data-dir", str(self.data_dir / "etcd"),
                "--listen-client-urls", etcd_servers, "--advertise-client-urls", etcd_servers,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"kubelite={peer}",
                "--quota-backend-bytes", str(4 * 1024 ** 3), *etcd_flags(self.pki),
            ], self.logs / "etcd.log"))
        self.etcd_servers = etcd_servers
        comps.append(Component("apiserver", self._py(
            "apiserver", "--etcd-servers", etcd_servers, "--secure-port", str(a.port),
            *self.endpoint_flags(),
            "--cluster-domain", a.cluster_domain,
            "--service-cluster-ip-range", a.service_cluster_ip_range,
            *apiserver_flags(self.pki, f"https://kubernetes.default.svc.{a.cluster_domain}"),
            # Secrets encrypted in etcd; a --kube-apiserver-arg of its own comes after and wins.
            "--encryption-provider-config",
            str(ensure_encryption_config(self.pki.root / "encryption-config.yaml")),
            # The audit log (docs/security.md): DATA/audit-policy.yaml, kept once edited.
            "--audit-policy-file",
            str(ensure_default_policy(self.data_dir / "audit-policy.yaml")),
            "--audit-log-path", str(self.logs / "audit.log"),
            "--audit-log-maxsize", "100", "--audit-log-maxbackup", "10",
            *a.kube_apiserver_arg), self.logs / "apiserver.log"))
        return comps

    def plan_clients(self, kubeconfigs: dict[str, Path]) -> list[Component]:
        """Components that talk to the apiserver, each as itself; started once it is
        ready."""
        a = self.args
        return [
            Component("controller-manager", self._py(
                "controller_manager", "--kubeconfig",
                str(kubeconfigs["kube-controller-manager"]),
                "--root-ca-file", str(self.pki.ca_cert), *a.kube_controller_manager_arg),
                self.logs / "controller-manager.log"),
            Component("scheduler", self._py(
                "scheduler", "--kubeconfig", str(kubeconfigs["kube-scheduler"]),
                *a.kube_scheduler_arg), self.logs / "scheduler.log"),
        ]

    async def node_ip(self, node: str, timeout: float = 60.0) -> str | None:
        """The node's InternalIP as its ipamd hands it out (the primary address of its
        first ENI), for the kubelet's serving certificate; None if ipamd does not say."""
        socket_path = str(self.socket_dir(node) / "ipamd.sock")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping.is_set():
            status = await ipamd_status(socket_path, timeout=2.0)
            if status is not None and (ip := primary_ip(status)):
                return ip
            await asyncio.sleep(0.2)
        return None

    async def install_dns(self, config: ClientConfig) -> None:
        """The cluster DNS add-on (dns/addon.py), created once: objects that exist are left
        as they are, so a user's edits survive a restart."""
        a = self.args
        async with ApiClient(config, component="kubelite-up") as api:
            for obj in dns_addon.manifests(a.cluster_dns, cluster_domain=a.cluster_domain):
                res = CATALOGUE.by_kind(obj["apiVersion"], obj["kind"])
                assert res is not None, obj["kind"]
                md = obj["metadata"]
                try:
                    await api.create(res, obj, md.get("namespace"))
                    log.info("created %s %s/%s (cluster DNS add-on)", obj["kind"],
                             md.get("namespace"), md["name"])
                except AlreadyExists:
                    pass
                except (StatusError, ApiConnectionError) as e:
                    print(f"kubelite up: DNS add-on {obj['kind']} {md['name']}: {e}",
                          file=sys.stderr, flush=True)

    async def issue_serving_cert(self, node: str, kubelet: Component) -> None:
        """The kubelet's serving certificate names its node IP, which ipamd (started just
        before) chooses; the kubelet then serves on that address only."""
        ip = await self.node_ip(node)
        ips = [ip] if ip else []
        ensure_node(self.pki, node, ips)
        if ip:
            kubelet.argv += ["--address", ip]

    async def start(self, comp: Component) -> None:
        comp.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = comp.log_path.open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **comp.env}
        comp.proc = await asyncio.create_subprocess_exec(
            *comp.argv, stdout=out, stderr=out, stdin=asyncio.subprocess.DEVNULL, env=env,
            start_new_session=True)
        out.close()
        comp.started_at = time.monotonic()
        log.info("started %s (pid %d), log: %s", comp.name, comp.proc.pid, comp.log_path)

    async def watch(self, comp: Component) -> None:
        """Restart a component that exits on its own, with back-off."""
        delay = 1.0
        while not self.stopping.is_set():
            assert comp.proc is not None
            code = await comp.proc.wait()
            if self.stopping.is_set():
                return
            if time.monotonic() - comp.started_at > 60:
                delay = 1.0
            comp.restarts += 1
            print(f"kubelite: {comp.name} exited with {code}; restarting in {delay:.0f}s "
                  f"(see {comp.log_path})", file=sys.stderr, flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            if self.stopping.is_set():
                return
            delay = min(delay * 2, 30.0)
            await self.start(comp)

    async def stop_all(self) -> None:
        """Newest first; the nodes' processes in parallel (kubelets, then their runtimes and
        ipamds), then the control plane one by one."""
        comps = list(reversed(self.components))
        tiers = [[c for c in comps if c.name.startswith(("kubelet-", "kube-proxy-"))],
                 [c for c in comps if c.name.startswith(("runtime-", "ipamd-"))]]
        rest = [c for c in comps if not any(c in t for t in tiers)]
        for tier in [*tiers, *([c] for c in rest)]:
            await asyncio.gather(*(self._stop(c) for c in tier))

    async def _stop(self, comp: Component) -> None:
        proc = comp.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        log.info("stopped %s", comp.name)

    async def wait_ready(self, url: str, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        tls = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        tls.load_cert_chain(self.pki.admin_cert, self.pki.admin_key)
        while time.monotonic() < deadline and not self.stopping.is_set():
            try:
                ok = await asyncio.to_thread(_http_ok, url, tls)
                if ok:
                    return True
            except OSError:
                pass
            await asyncio.sleep(0.2)
        return False

    def endpoints(self) -> tuple[str | None, str | None, str]:
        """(public, private, control-plane) server URLs. The scheduler, controller-manager
        and `up` itself use the private endpoint, else the public one when the allowlist
        admits loopback, else an internal loopback listener outside the allowlist (EKS's
        control plane reaches its apiserver locally, never through the endpoint)."""
        a = self.args
        public = f"https://127.0.0.1:{a.port}" if a.endpoint_public_access else None
        private = None
        if a.endpoint_private_access:
            private = f"https://{self.advertise_address}:{a.port}"
        cidrs = parse_cidrs(a.public_access_cidrs)
        vpc = parse_vpc_cidr(a.vpc_cidr)
        if self.with_nodes and not private and not any(
                n.version == 4 and vpc.subnet_of(n) for n in cidrs):
            print(f"kubelite up: --public-access-cidrs excludes the VPC {vpc}: pods cannot "
                  f"reach the apiserver (turn on --endpoint-private-access)",
                  file=sys.stderr, flush=True)
        if private:
            return public, private, private
        if allowed("127.0.0.1", cidrs):
            assert public is not None
            return public, private, public
        if self.with_nodes:
            print("kubelite up: --public-access-cidrs excludes 127.0.0.1, where the nodes "
                  "reach the public endpoint from: they cannot join (as on EKS, allow them "
                  "or turn on --endpoint-private-access)", file=sys.stderr, flush=True)
        self.internal_port = free_port()
        return public, private, f"https://127.0.0.1:{self.internal_port}"

    def write_user_kubeconfigs(self, kubeconfigs: dict[str, Path], public: str | None,
                               private: str | None, control: str) -> Path:
        """DATA/kubeconfig (public endpoint) and DATA/kubeconfig-private; the control
        plane's kubeconfigs name `control`. Returns the one to tell the user about."""
        for name in ("kube-scheduler", "kube-controller-manager"):
            set_server(kubeconfigs[name], kubeconfigs[name], control)
        admin = kubeconfigs["admin"]
        private_path = self.data_dir / "kubeconfig-private"
        if private:
            set_server(admin, private_path, private)
        else:
            private_path.unlink(missing_ok=True)  # a previous run's, naming no listener
        if public:
            set_server(admin, admin, public)
            return admin
        admin.unlink()  # no public endpoint: the only way in is from the VPC
        return private_path

    async def run(self) -> int:
        a = self.args
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if port_in_use(a.port):
            print(f"kubelite up: port {a.port} is already in use (another cluster?); "
                  f"choose another with --port", file=sys.stderr)
            return 1
        # Nodes first: the host lock and the VPC bridge decide the apiserver's advertise
        # address, which its certificate names.
        self.with_nodes = self.nodes_possible()
        if a.endpoint_private_access and not self.with_nodes:
            self.ensure_vpc_bridge()  # the private endpoint's home (root: endpoint_refusal)
        if (self.with_nodes or a.endpoint_private_access) and os.geteuid() == 0:
            # Pods reach the apiserver through the `kubernetes` Service: its endpoint is the
            # VPC gateway, the host's address on the pod network.
            self.advertise_address = str(gateway_of(parse_vpc_cidr(a.vpc_cidr)))
        public, private, control = self.endpoints()
        try:
            self.pki = ensure_control_plane(
                self.data_dir / "pki", service_ip=kubernetes_service_ip(
                    a.service_cluster_ip_range), cluster_domain=a.cluster_domain,
                advertise_addresses=[self.advertise_address] if self.advertise_address
                else [])
        except PkiError as e:
            print(f"kubelite up: {e}", file=sys.stderr)
            return 1
        self.components = self.plan()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        watchers: list[asyncio.Task[None]] = []
        try:
            for comp in self.components:
                await self.start(comp)
                watchers.append(asyncio.create_task(self.watch(comp),
                                                    name=f"supervise:{comp.name}"))
            if not await self.wait_ready(control + "/readyz"):
                if self.stopping.is_set():
                    return 0
                print(f"kubelite up: the apiserver did not become ready; see {self.logs}",
                      file=sys.stderr)
                return 1
            nodes = self.node_names() if self.with_nodes else []
            known = known_nodes(self.pki)
            for node in nodes:
                # The client certificate now (ipamd needs it before it can name the node's
                # IP); the serving one is reissued for the real IP before the kubelet starts.
                ensure_node(self.pki, node, known.get(node) or ["127.0.0.1"])
            # Nodes (kubelets, kube-proxies, ipamds) use the private endpoint when there is
            # one, else the public one, as EKS nodes do.
            kubeconfigs = write_kubeconfigs(self.data_dir, self.pki, private or control,
                                            nodes)
            kubeconfig = self.write_user_kubeconfigs(kubeconfigs, public, private, control)
            clients = self.plan_clients(kubeconfigs)
            if self.with_nodes:
                clients += self.plan_nodes(kubeconfigs)
                if not a.no_dns:
                    await self.install_dns(dataclasses.replace(
                        load_kubeconfig(kubeconfig), server=control))
            for comp in clients:
                if comp.name.startswith("kubelet-"):
                    await self.issue_serving_cert(comp.name.removeprefix("kubelet-"), comp)
                self.components.append(comp)
                await self.start(comp)
                watchers.append(asyncio.create_task(self.watch(comp),
                                                    name=f"supervise:{comp.name}"))
            (self.data_dir / "cluster.json").write_text(json.dumps(
                {"server": public or private, "privateServer": private,
                 "vpcCidr": a.vpc_cidr, "etcdServers": self.etcd_servers,
                 "pids": {c.name: c.proc.pid for c in self.components if c.proc}}, indent=2))
            print(f"kubelite is ready: export KUBECONFIG={kubeconfig}", flush=True)
            if not public:
                print(f"kubelite: the endpoint is private: run kubectl inside `kubelite "
                      f"vpc-shell --data-dir {self.data_dir}`", flush=True)
            await self.stopping.wait()
            return 0
        finally:
            self.stopping.set()
            for t in watchers:
                t.cancel()
            await self.stop_all()
            if self._node_lock is not None:
                self._node_lock.close()


def kubernetes_service_ip(service_range: str) -> str:
    """The first address of the service range: the `kubernetes` Service's ClusterIP."""
    return str(ipaddress.ip_network(service_range, strict=False).network_address + 1)


def _http_ok(url: str, context: ssl.SSLContext) -> bool:
    with urllib.request.urlopen(url, timeout=2, context=context) as resp:
        return bool(resp.status == 200)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    refusal = endpoint_refusal(args)
    if refusal:
        print(refusal, file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    return asyncio.run(Supervisor(args).run())
