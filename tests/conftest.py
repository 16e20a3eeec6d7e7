"""Fixtures that start real processes: etcd on ephemeral ports, and the apiserver on it.

Every process a fixture starts is stopped in its teardown.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubelite.pki import Pki, ensure_control_plane, issue_user
from kubelite.tlsflags import apiserver_flags, etcd_flags

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client_tls(ca_file: str | Path | None = None, cert: str | Path | None = None,
               key: str | Path | None = None) -> ssl.SSLContext:
    """A client TLS context trusting `ca_file`, optionally presenting `cert`/`key`."""
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if cert and key:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen | None = None,
              context: ssl.SSLContext | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as r:
                if r.status == 200:
                    return
        except OSError as e:
            last = e
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer in {timeout}s: {last}")


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class EtcdServer:
    url: str
    proc: subprocess.Popen
    data_dir: str
    pki: Pki  # the cluster PKI this etcd (and the apiservers on it) use


@dataclass
class ApiServer:
    url: str
    proc: subprocess.Popen
    kubeconfig: Path  # the admin's (system:masters)
    log_path: Path
    pki: Pki

    def tls(self, user: str | None = None, groups: tuple[str, ...] = ()) -> ssl.SSLContext:
        """A client context trusting the cluster CA, as the admin or as `user`."""
        if user is None:
            return client_tls(self.pki.ca_cert, self.pki.admin_cert, self.pki.admin_key)
        return user_tls(self.pki, user, groups)

    def user_kubeconfig(self, path: Path, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig for `user` (a certificate from the cluster CA) at `path`."""
        from client.kubeconfig import write_kubeconfig
        cert, key = issue_user(self.pki, user, groups)
        return write_kubeconfig(path, self.url, ca_data=self.pki.ca_cert.read_bytes(),
                                client_cert_data=cert, client_key_data=key, user=user)


def user_tls(pki: Pki, user: str, groups: tuple[str, ...] = ()) -> ssl.SSLContext:
    cert, key = issue_user(pki, user, groups)
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    with tempfile.TemporaryDirectory(prefix="kubelite-user-") as tmp:
        Path(tmp, "c.crt").write_bytes(cert)
        Path(tmp, "c.key").write_bytes(key)
        ctx.load_cert_chain(Path(tmp, "c.crt"), Path(tmp, "c.key"))
    return ctx


def make_pki(directory: str | Path) -> Pki:
    return ensure_control_plane(Path(directory) / "pki", service_ip="10.96.0.1")


def start_etcd(data_dir: str, pki: Pki | None = None) -> EtcdServer:
    etcd = shutil.which("etcd")
    if etcd is None:
        pytest.fail("etcd is not installed: run `make install` (installs etcd-server)")
    pki = pki or make_pki(data_dir)
    cport, pport = free_port(), free_port()
    url = f"https://127.0.0.1:{cport}"
    peer = f"https://127.0.0.1:{pport}"
    log = open(os.path.join(data_dir, "etcd.log"), "wb")  # noqa: SIM115 - closed by the proc
    proc = subprocess.Popen(
        [etcd, "--data-dir", os.path.join(data_dir, "etcd"), "--name", "test",
         "--listen-client-urls", url, "--advertise-client-urls", url,
         "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
         "--initial-cluster", f"test={peer}", *etcd_flags(pki)],
        stdout=log, stderr=log)
    log.close()
    wait_http(url + "/health", proc=proc, context=client_tls(
        pki.etcd_ca_cert, pki.etcd_client_cert, pki.etcd_client_key))
    return EtcdServer(url, proc, data_dir, pki)


def start_apiserver(etcd: EtcdServer, workdir: Path, *extra: str) -> ApiServer:
    port = free_port()
    log_path = workdir / f"apiserver-{port}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed by the proc
    pki = etcd.pki
    proc = subprocess.Popen(
        [sys.executable, "-m", "apiserver", "--etcd-servers", etcd.url,
         "--secure-port", str(port), *apiserver_flags(pki), *extra],
        stdout=log, stderr=log, cwd=ROOT)
    log.close()
    url = f"https://127.0.0.1:{port}"
    admin = client_tls(pki.ca_cert, pki.admin_cert, pki.admin_key)
    try:
        # /readyz includes the default RBAC policy and the system namespaces' informers.
        wait_http(url + "/readyz", proc=proc, context=admin)
    except (OSError, RuntimeError, TimeoutError):
        stop_process(proc)
        raise RuntimeError(f"apiserver did not start:\n{log_path.read_text()[-3000:]}")
    kubeconfig = workdir / f"kubeconfig-{port}"
    from client.kubeconfig import write_kubeconfig
    write_kubeconfig(kubeconfig, url, ca_data=pki.ca_cert.read_bytes(),
                     client_cert_data=pki.admin_cert.read_bytes(),
                     client_key_data=pki.admin_key.read_bytes())
    # System namespaces are created just after readiness; wait for them.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/api/v1/namespaces/kube-node-lease", timeout=2,
                                        context=admin):
                break
        except OSError:
            time.sleep(0.05)
    return ApiServer(url, proc, kubeconfig, log_path, pki)


@pytest.fixture(scope="session")
def etcd_server() -> Iterator[EtcdServer]:
    with tempfile.TemporaryDirectory(prefix="kubelite-etcd-") as d:
        server = start_etcd(d)
        try:
            yield server
        finally:
            stop_process(server.proc)


@pytest.fixture(scope="session")
def apiserver(etcd_server: EtcdServer, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[ApiServer]:
    server = start_apiserver(etcd_server, tmp_path_factory.mktemp("apiserver"))
    try:
        yield server
    finally:
        stop_process(server.proc)
