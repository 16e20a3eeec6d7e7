"""A whole cluster started with `kubelite up`, as a user would, for real kubectl and the
official client. Stopped (SIGTERM) at the end of the session."""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port

KUBECTL = shutil.which("kubectl")


@dataclass
class Cluster:
    data_dir: Path
    kubeconfig: Path
    server: str
    proc: subprocess.Popen
    output: Path

    def tls(self) -> ssl.SSLContext:
        """The admin's client TLS context, from the cluster's PKI."""
        pki = self.data_dir / "pki"
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(pki / "admin.crt", pki / "admin.key")
        return ctx

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        if KUBECTL is None:
            print("\nskipping: kubectl is not installed (optional tool)")
            pytest.skip("kubectl is not installed (optional tool): skipping kubectl tests")
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        result = subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True,
                                env=env, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result


def start_cluster(data_dir: Path, *extra: str, timeout: float = 60) -> Cluster:
    """`kubelite up` on `data_dir`; without nodes unless `extra` asks for them (nodes share
    the host's dockerd and VPC bridge: one cluster with nodes at a time, test_pods.py's)."""
    if not any(a.startswith("--nodes") for a in extra):
        extra = ("--nodes", "0", *extra)
    port = free_port()
    output = data_dir / f"up-{port}.out"
    out = output.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubelite", "up", "--data-dir", str(data_dir),
         "--port", str(port), *extra],
        stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    out.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = output.read_text(errors="replace")
        if "kubelite is ready: export KUBECONFIG=" in text:
            return Cluster(data_dir, data_dir / "kubeconfig", f"https://127.0.0.1:{port}",
                           proc, output)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    stop_cluster_proc(proc)
    raise RuntimeError(f"kubelite up did not become ready:\n{output.read_text()[-4000:]}")


def stop_cluster_proc(proc: subprocess.Popen, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return int(proc.returncode)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    with tempfile.TemporaryDirectory(prefix="kubelite-e2e-") as d:
        # Without the root-ca-cert-publisher: these tests count the ConfigMaps of fresh
        # namespaces, where it would add kube-root-ca.crt (it is tested on its own, and runs
        # in the clusters with nodes, whose pods need it).
        c = start_cluster(Path(d), "--kube-controller-manager-arg=--controllers=*,"
                                   "-root-ca-cert-publisher")
        try:
            yield c
        finally:
            stop_cluster_proc(c.proc)


def remove_node_leftovers(c: Cluster, nodes: tuple[str, ...] = ("node-1", "node-2")) -> None:
    """After `stop_cluster_proc`: what a stopped cluster's nodes leave on purpose for the
    next start to re-adopt (docs/kubelet.md) — the pods' containers, and their pod
    directories with the tmpfs mounts of secret and token volumes — removed the way the
    kubelet removes a deleted pod's, so the temporary data dir can go."""
    from kubelet.volumes import remove_pod_dir

    for node in nodes:
        r = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=io.kubelite.node={node}"],
                           capture_output=True, text=True, timeout=60, check=False)
        if r.stdout.split():
            subprocess.run(["docker", "rm", "-f", *r.stdout.split()], capture_output=True,
                           timeout=120, check=False)
        root = c.data_dir / "nodes" / node / "kubelet"
        for pod in sorted((root / "pods").glob("*")) if (root / "pods").is_dir() else []:
            remove_pod_dir(root, pod.name)
