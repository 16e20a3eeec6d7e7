"""Fixtures that start real processes: etcd on ephemeral ports, and the apiserver on it.

Every process a fixture starts is stopped in its teardown.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
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


@dataclass
class ApiServer:
    url: str
    proc: subprocess.Popen
    kubeconfig: Path
    log_path: Path


def start_etcd(data_dir: str) -> EtcdServer:
    etcd = shutil.which("etcd")
    if etcd is None:
        pytest.fail("etcd is not installed: run `make install` (installs etcd-server)")
    cport, pport = free_port(), free_port()
    url = f"http://127.0.0.1:{cport}"
    log = open(os.path.join(data_dir, "etcd.log"), "wb")  # noqa: SIM115 - closed by the proc
    proc = subprocess.Popen(
        [etcd, "--data-dir", os.path.join(data_dir, "etcd"), "--name", "test",
         "--listen-client-urls", url, "--advertise-client-urls", url,
         "--listen-peer-urls", f"http://127.0.0.1:{pport}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{pport}",
         "--initial-cluster", f"test=http://127.0.0.1:{pport}"],
        stdout=log, stderr=log)
    log.close()
    wait_http(url + "/health", proc=proc)
    return EtcdServer(url, proc, data_dir)


def start_apiserver(etcd_url: str, workdir: Path, *extra: str) -> ApiServer:
    port = free_port()
    log_path = workdir / f"apiserver-{port}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed by the proc
    proc = subprocess.Popen(
        [sys.executable, "-m", "apiserver", "--etcd-servers", etcd_url,
         "--secure-port", str(port), *extra],
        stdout=log, stderr=log, cwd=ROOT)
    log.close()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/readyz", proc=proc)
    except (OSError, RuntimeError, TimeoutError):
        stop_process(proc)
        raise RuntimeError(f"apiserver did not start:\n{log_path.read_text()[-3000:]}")
    kubeconfig = workdir / f"kubeconfig-{port}"
    from client.kubeconfig import write_kubeconfig
    write_kubeconfig(kubeconfig, url)
    # System namespaces are created just after readiness; wait for them.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/api/v1/namespaces/kube-node-lease", timeout=2):
                break
        except OSError:
            time.sleep(0.05)
    return ApiServer(url, proc, kubeconfig, log_path)


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
    server = start_apiserver(etcd_server.url, tmp_path_factory.mktemp("apiserver"))
    try:
        yield server
    finally:
        stop_process(server.proc)
