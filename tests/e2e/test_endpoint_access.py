"""Endpoint access, as EKS, on a real `kubelite up` (no nodes): a public allowlist that
leaves the user out, and a private-only cluster reached through `kubelite vpc-shell`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import KUBECTL, Cluster, start_cluster, stop_cluster_proc


def _need_kubectl() -> str:
    if KUBECTL is None:
        print("\nskipping: kubectl is not installed (optional tool)")
        pytest.skip("kubectl is not installed (optional tool)")
    return KUBECTL


def _kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_need_kubectl(), "--request-timeout=10s", *args],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "KUBECONFIG": str(kubeconfig)})


def test_public_allowlist_refuses_the_user_but_the_control_plane_runs(tmp_path: Path) -> None:
    _need_kubectl()
    c = start_cluster(tmp_path, "--public-access-cidrs=127.0.0.2/32")
    try:
        r = _kubectl(c.kubeconfig, "get", "ns")
        assert r.returncode != 0, r.stdout
        # Closed before TLS: kubectl never sees a certificate or an HTTP status.
        assert "x509" not in r.stderr and "Forbidden" not in r.stderr, r.stderr
        assert "refused a connection from 127.0.0.1" in \
            (tmp_path / "logs" / "apiserver.log").read_text()
    finally:
        assert stop_cluster_proc(c.proc) == 0


def test_private_only_is_reached_from_the_vpc_shell(tmp_path: Path) -> None:
    _need_kubectl()
    if os.geteuid() != 0:
        print("\nskipping: the private endpoint and vpc-shell need root")
        pytest.skip("the private endpoint and vpc-shell need root")
    c: Cluster = start_cluster(tmp_path, "--endpoint-public-access=false",
                               "--endpoint-private-access=true")
    try:
        private = tmp_path / "kubeconfig-private"
        assert private.exists() and not (tmp_path / "kubeconfig").exists()
        # No loopback listener: the host's users are outside.
        port = int(c.server.rsplit(":", 1)[1])
        with pytest.raises(ConnectionRefusedError), socket.create_connection(
                ("127.0.0.1", port), timeout=5):
            pass
        r = subprocess.run([sys.executable, "-m", "kubelite", "vpc-shell", "--data-dir",
                            str(tmp_path), "--", _need_kubectl(), "get", "ns", "-o", "name"],
                           capture_output=True, text=True, timeout=120, check=False,
                           cwd=ROOT)
        assert r.returncode == 0, r.stderr
        assert "namespace/default" in r.stdout
        # The namespace went away with the command.
        assert "kubelite-vpc-shell" not in subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    finally:
        assert stop_cluster_proc(c.proc) == 0


def test_both_endpoints_off_is_refused(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "kubelite", "up", "--data-dir", str(tmp_path),
                        "--nodes", "0", "--endpoint-public-access=false",
                        "--endpoint-private-access=false"],
                       capture_output=True, text=True, timeout=60, check=False, cwd=ROOT)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "no endpoint" in r.stderr
