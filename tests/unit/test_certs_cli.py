"""`kubelite certs` run as a real command: create, renew, check-expiration, user kubeconfigs,
and its one-line errors."""

from __future__ import annotations

import base64
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = Path(__file__).resolve().parents[2]


def certs(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubelite", "certs", *map(str, args)],
                          check=False, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def names(c: x509.Certificate) -> tuple[list[str], list[str]]:
    return ([str(a.value) for a in c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)],
            [str(a.value) for a in c.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory after one `kubelite certs create` with a node."""
    d = tmp_path_factory.mktemp("data")
    r = certs("create", "--data-dir", d, "--node", "node-1=10.0.0.2",
              "--advertise-address", "192.168.7.1", "--server", "https://127.0.0.1:16443")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    lines = r.stdout.splitlines()
    created = {line.split()[2] for line in lines if line.startswith("[certs] created ")}
    assert str(d / "pki/ca.key") in created
    assert str(d / "pki/nodes/node-1/kubelet.crt") in created
    # Every file of the PKI, one line each.
    assert created == {str(p) for p in (d / "pki").rglob("*") if p.is_file()}
    assert len(created) == 30
    wrote = {line.split()[2] for line in lines if line.startswith("[kubeconfig] wrote ")}
    assert wrote == {str(d / "kubeconfig"), str(d / "kubeconfigs/kube-scheduler.conf"),
                     str(d / "kubeconfigs/kube-controller-manager.conf"),
                     str(d / "kubeconfigs/kube-proxy.conf"),
                     str(d / "kubeconfigs/ipamd.conf"),
                     str(d / "kubeconfigs/kubelet-node-1.conf")}
    return d


def test_create_writes_the_pki_and_kubeconfigs(data: Path) -> None:
    assert stat.S_IMODE((data / "pki").stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "pki/apiserver.key").stat().st_mode) == 0o600
    api = load(data / "pki/apiserver.crt")
    api.verify_directly_issued_by(load(data / "pki/ca.crt"))
    ips = api.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in ips.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1", "10.96.0.1", "192.168.7.1"}
    kc = yaml.safe_load((data / "kubeconfig").read_text())
    assert kc["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:16443"
    assert base64.b64decode(kc["clusters"][0]["cluster"]["certificate-authority-data"]) == \
        (data / "pki/ca.crt").read_bytes()
    admin = x509.load_pem_x509_certificate(
        base64.b64decode(kc["users"][0]["user"]["client-certificate-data"]))
    assert names(admin) == (["kubernetes-admin"], ["system:masters"])


def test_create_again_keeps_everything(data: Path) -> None:
    before = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    r = certs("create", "--data-dir", data, "--advertise-address", "192.168.7.1")
    assert r.returncode == 0, r.stderr
    actions = {line.split()[1] for line in r.stdout.splitlines()}
    assert actions == {"kept"}
    # The node is remembered from its certificates, the server from the admin kubeconfig.
    assert f"[certs] kept {data / 'pki/nodes/node-1/kubelet.crt'}" in r.stdout
    assert f"[kubeconfig] kept {data / 'kubeconfig'}" in r.stdout
    assert {p: p.read_bytes() for p in data.rglob("*") if p.is_file()} == before


def test_check_expiration_table(data: Path) -> None:
    r = certs("check-expiration", "--data-dir", data)
    assert r.returncode == 0, r.stderr
    leaves, cas = r.stdout.split("\n\n")
    rows = [re.split(r"\s{3,}", line) for line in leaves.splitlines()]
    assert rows[0] == ["CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY"]
    table = {row[0]: row[1:] for row in rows[1:]}
    assert set(table) == {
        "apiserver", "apiserver-etcd-client", "apiserver-kubelet-client", "etcd-server",
        "etcd-peer", "admin", "kube-scheduler", "kube-controller-manager", "kube-proxy",
        "ipamd", "nodes/node-1/kubelet-client", "nodes/node-1/kubelet"}
    expires, residual, ca = table["apiserver"]
    assert re.fullmatch(r"[A-Z][a-z]{2} \d\d, \d{4} \d\d:\d\d UTC", expires)
    assert residual in ("364d", "365d")
    assert ca == "ca" and table["etcd-server"][2] == "etcd-ca"
    ca_rows = [re.split(r"\s{3,}", line) for line in cas.splitlines()]
    assert ca_rows[0] == ["CERTIFICATE AUTHORITY", "EXPIRES", "RESIDUAL TIME"]
    assert [(row[0], row[2]) for row in ca_rows[1:]] == [("ca", "9y"), ("etcd-ca", "9y")]


def test_kubeconfig_for_a_new_user(data: Path, tmp_path: Path) -> None:
    r = certs("kubeconfig", "--data-dir", data, "--user", "jane", "--group", "dev",
              "--group", "qa", "--days", "7")
    assert r.returncode == 0, r.stderr
    kc = yaml.safe_load(r.stdout)
    assert kc["current-context"] == "kubelite"
    assert kc["users"][0]["name"] == "jane"
    assert kc["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:16443"
    user = kc["users"][0]["user"]
    c = x509.load_pem_x509_certificate(base64.b64decode(user["client-certificate-data"]))
    c.verify_directly_issued_by(load(data / "pki/ca.crt"))
    assert names(c) == (["jane"], ["dev", "qa"])
    eku = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert 7 * 86400 <= (c.not_valid_after_utc - c.not_valid_before_utc).total_seconds() \
        <= 7 * 86400 + 600
    key = serialization.load_pem_private_key(base64.b64decode(user["client-key-data"]), None)
    assert key.public_key() == c.public_key()

    out = tmp_path / "jane.conf"
    r = certs("kubeconfig", "--data-dir", data, "--user", "bob", "-o", out,
              "--server", "https://10.0.0.1:6443")
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    kc = yaml.safe_load(out.read_text())
    assert kc["clusters"][0]["cluster"]["server"] == "https://10.0.0.1:6443"
    c = x509.load_pem_x509_certificate(
        base64.b64decode(kc["users"][0]["user"]["client-certificate-data"]))
    assert names(c) == (["bob"], [])


def test_renew_reissues_leaves_and_keeps_the_ca(tmp_path: Path) -> None:
    assert certs("create", "--data-dir", tmp_path, "--node", "n1=10.0.0.5").returncode == 0
    ca, admin = (tmp_path / "pki/ca.crt").read_bytes(), (tmp_path / "pki/admin.crt").read_bytes()
    kubeconfig = (tmp_path / "kubeconfig").read_bytes()
    r = certs("renew", "--data-dir", tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"[certs] renewed {tmp_path / 'pki/admin.crt'}" in r.stdout
    assert f"[certs] renewed {tmp_path / 'pki/nodes/n1/kubelet.crt'}" in r.stdout
    assert "pki/ca.crt" not in r.stdout
    assert (tmp_path / "pki/ca.crt").read_bytes() == ca
    assert (tmp_path / "pki/admin.crt").read_bytes() != admin
    assert (tmp_path / "kubeconfig").read_bytes() != kubeconfig  # carries the new cert
    assert load(tmp_path / "pki/nodes/n1/kubelet.crt").extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == ["n1"]


def test_renew_without_a_pki_is_an_error(tmp_path: Path) -> None:
    r = certs("renew", "--data-dir", tmp_path)
    assert r.returncode == 1
    ca = tmp_path / "pki/ca.crt"
    want = f"kubelite certs: error: no cluster CA at {ca}: run `kubelite certs create` first"
    assert r.stderr.splitlines() == [want]
    assert not (tmp_path / "pki").exists()


@pytest.mark.parametrize(("args", "code", "message"), [
    (["create", "--data-dir", "{missing}"], 1, "data directory .* does not exist"),
    (["create", "--data-dir", "{tmp}", "--advertise-address", "1.2.3"], 2,
     "invalid IP address '1.2.3'"),
    (["create", "--data-dir", "{tmp}", "--node", "node-1=10.0.0.300"], 2,
     "invalid IP address"),
    (["create", "--data-dir", "{tmp}", "--node", "Node_1=10.0.0.1"], 2, "invalid node name"),
    (["create", "--data-dir", "{tmp}", "--service-cluster-ip-range", "10.96.0.0/99"], 2,
     "invalid CIDR"),
    (["create", "--data-dir", "{tmp}", "--server", "http://127.0.0.1:8080"], 2,
     "not an https:// URL"),
    (["frobnicate", "--data-dir", "{tmp}"], 2, "invalid choice: 'frobnicate'"),
    ([], 2, "required: command"),
    (["kubeconfig", "--data-dir", "{tmp}", "--user", "jane"], 1, "no cluster CA"),
    (["kubeconfig", "--data-dir", "{tmp}"], 2, "required: --user"),
    (["check-expiration", "--data-dir", "{tmp}"], 1, "no cluster PKI"),
])
def test_errors_are_one_line(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    argv = [a.format(tmp=tmp_path, missing=tmp_path / "nope") for a in args]
    r = certs(*argv)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert len(r.stderr.splitlines()) == 1, r.stderr
    assert r.stderr.startswith("kubelite certs")
    assert re.search(message, r.stderr), r.stderr
    assert r.stdout == ""
    assert not (tmp_path / "pki").exists()


def test_kubelite_usage_lists_certs() -> None:
    r = subprocess.run([sys.executable, "-m", "kubelite", "--help"], check=False, cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    assert re.search(r"^  certs ", r.stdout, re.MULTILINE)
