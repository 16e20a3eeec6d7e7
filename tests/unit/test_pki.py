"""The cluster PKI (kubelite/pki.py): identities, SANs, usages, file modes, reuse and renewal,
and a real TLS handshake with the certificates it makes."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from client.kubeconfig import load_kubeconfig
from kubelite import pki as pkilib
from kubelite.pki import Change, Pki, PkiError

SERVER = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT = ExtendedKeyUsageOID.CLIENT_AUTH
SERVICE_IP = "10.96.0.1"


@pytest.fixture(autouse=True)
def _umask() -> Iterator[None]:
    # Modes are asserted exactly; a test runner's umask must not decide them.
    old = os.umask(0o022)
    yield
    os.umask(old)


def make(root: Path, *, nodes: dict[str, list[str]] | None = None, **kw: Any) -> Pki:
    kw.setdefault("service_ip", SERVICE_IP)
    pki = pkilib.ensure_control_plane(root / "pki", **kw)
    for node, ips in (nodes or {"node-1": ["10.0.0.2"]}).items():
        pkilib.ensure_node(pki, node, ips)
    return pki


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """One PKI for the tests that only read it."""
    old = os.umask(0o022)
    try:
        return make(tmp_path_factory.mktemp("data"), advertise_addresses=["192.168.7.1"],
                    etcd_names=["etcd.internal", "10.1.1.1"],
                    nodes={"node-1": ["10.0.0.2"], "node-2": ["10.0.0.3", "fd00::3"]})
    finally:
        os.umask(old)


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def subject(c: x509.Certificate) -> tuple[str, list[str]]:
    cn = [str(a.value) for a in c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = [str(a.value) for a in c.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert len(cn) == 1
    return cn[0], orgs


def ekus(c: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def sans(c: x509.Certificate) -> tuple[set[str], set[str]]:
    san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (set(san.get_values_for_type(x509.DNSName)),
            {str(ip) for ip in san.get_values_for_type(x509.IPAddress)})


def leaves(pki: Pki) -> list[tuple[Path, Path, str, list[str], set[x509.ObjectIdentifier], Path]]:
    """(cert, key, CN, O, EKUs, CA cert) of every leaf the layout promises."""
    rows = [
        (pki.apiserver_cert, pki.apiserver_key, "kube-apiserver", [], {SERVER}, pki.ca_cert),
        (pki.kubelet_client_cert, pki.kubelet_client_key, "kube-apiserver-kubelet-client", [],
         {CLIENT}, pki.ca_cert),
        (pki.etcd_client_cert, pki.etcd_client_key, "kube-apiserver-etcd-client", [],
         {CLIENT}, pki.etcd_ca_cert),
        (pki.etcd_server_cert, pki.etcd_server_key, "kube-etcd", [], {SERVER, CLIENT},
         pki.etcd_ca_cert),
        (pki.etcd_peer_cert, pki.etcd_peer_key, "kube-etcd-peer", [], {SERVER, CLIENT},
         pki.etcd_ca_cert),
        (pki.admin_cert, pki.admin_key, "kubernetes-admin", ["system:masters"], {CLIENT},
         pki.ca_cert),
    ]
    for comp, user in pkilib.COMPONENTS.items():
        rows.append((pki.component_cert(comp), pki.component_key(comp), user, [],
                     {CLIENT}, pki.ca_cert))
    for node in pkilib.known_nodes(pki):
        rows.append((pki.node_client_cert(node), pki.node_client_key(node),
                     f"system:node:{node}", ["system:nodes"], {CLIENT}, pki.ca_cert))
        rows.append((pki.node_serving_cert(node), pki.node_serving_key(node),
                     f"system:node:{node}", ["system:nodes"], {SERVER}, pki.ca_cert))
    return rows


# --- what the certificates say ----------------------------------------------------------------


def test_layout_paths(cluster: Pki) -> None:
    r = cluster.root
    expected = {
        "ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "apiserver-kubelet-client.crt",
        "apiserver-kubelet-client.key", "apiserver-etcd-client.crt",
        "apiserver-etcd-client.key", "etcd/ca.crt", "etcd/ca.key", "etcd/server.crt",
        "etcd/server.key", "etcd/peer.crt", "etcd/peer.key", "sa.key", "sa.pub", "admin.crt",
        "admin.key", "kube-scheduler.crt", "kube-scheduler.key", "kube-controller-manager.crt",
        "kube-controller-manager.key", "kube-proxy.crt", "kube-proxy.key", "ipamd.crt",
        "ipamd.key",
        "nodes/node-1/kubelet-client.crt", "nodes/node-1/kubelet-client.key",
        "nodes/node-1/kubelet.crt", "nodes/node-1/kubelet.key",
        "nodes/node-2/kubelet-client.crt", "nodes/node-2/kubelet-client.key",
        "nodes/node-2/kubelet.crt", "nodes/node-2/kubelet.key",
    }
    assert {str(p.relative_to(r)) for p in snapshot(r)} == expected
    assert cluster.etcd_client_cert == r / "apiserver-etcd-client.crt"
    assert cluster.node_serving_key("node-1") == r / "nodes/node-1/kubelet.key"
    with pytest.raises(PkiError):
        cluster.component_cert("kube-etcd")


def test_every_leaf_is_signed_by_its_ca_and_names_its_identity(cluster: Pki) -> None:
    cas = {p: cert(p) for p in (cluster.ca_cert, cluster.etcd_ca_cert)}
    rows = leaves(cluster)
    assert len(rows) == 14
    for crt, key, cn, orgs, usages, ca_path in rows:
        c = cert(crt)
        c.verify_directly_issued_by(cas[ca_path])
        other = next(ca for p, ca in cas.items() if p != ca_path)
        with pytest.raises(Exception):  # noqa: B017 - ValueError or InvalidSignature
            c.verify_directly_issued_by(other)
        assert subject(c) == (cn, orgs), crt
        assert ekus(c) == usages, crt
        assert not c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        private = serialization.load_pem_private_key(key.read_bytes(), None)
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        assert private.curve.name == "secp256r1"
        assert private.public_key() == c.public_key(), key
        life = c.not_valid_after_utc - c.not_valid_before_utc
        assert dt.timedelta(days=365) <= life <= dt.timedelta(days=365, minutes=10), crt


def test_cas(cluster: Pki) -> None:
    for path, cn in ((cluster.ca_cert, "kubernetes"), (cluster.etcd_ca_cert, "etcd-ca")):
        c = cert(path)
        assert subject(c) == (cn, [])
        assert c.issuer == c.subject
        c.verify_directly_issued_by(c)
        bc = c.extensions.get_extension_for_class(x509.BasicConstraints)
        assert bc.critical and bc.value.ca
        assert c.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
        life = c.not_valid_after_utc - c.not_valid_before_utc
        assert dt.timedelta(days=3650) <= life <= dt.timedelta(days=3650, minutes=10)
    assert cert(cluster.ca_cert).public_key() != cert(cluster.etcd_ca_cert).public_key()
    assert pkilib.load_ca_bundle(cluster) == cluster.ca_cert.read_bytes()


def test_apiserver_sans_and_server_verification(cluster: Pki) -> None:
    c = cert(cluster.apiserver_cert)
    assert sans(c) == ({"localhost", "kubernetes", "kubernetes.default",
                        "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
                       {"127.0.0.1", SERVICE_IP, "192.168.7.1"})
    store = Store([cert(cluster.ca_cert)])
    for name in (x509.DNSName("kubernetes.default.svc.cluster.local"),
                 x509.IPAddress(ipaddress.ip_address(SERVICE_IP)),
                 x509.IPAddress(ipaddress.ip_address("192.168.7.1"))):
        PolicyBuilder().store(store).build_server_verifier(name).verify(c, [])
    with pytest.raises(Exception):  # noqa: B017 - VerificationError: wrong name
        (PolicyBuilder().store(store).build_server_verifier(x509.DNSName("evil.example"))
         .verify(c, []))
    with pytest.raises(Exception):  # noqa: B017 - VerificationError: wrong CA
        (PolicyBuilder().store(Store([cert(cluster.etcd_ca_cert)]))
         .build_server_verifier(x509.DNSName("kubernetes")).verify(c, []))


def test_cluster_domain_is_used(tmp_path: Path) -> None:
    pki = pkilib.ensure_control_plane(tmp_path / "pki", service_ip="10.0.0.1",
                                      cluster_domain="corp.example")
    dns, ips = sans(cert(pki.apiserver_cert))
    assert "kubernetes.default.svc.corp.example" in dns
    assert "kubernetes.default.svc.cluster.local" not in dns
    assert ips == {"127.0.0.1", "10.0.0.1"}


def test_etcd_and_node_sans(cluster: Pki) -> None:
    for path in (cluster.etcd_server_cert, cluster.etcd_peer_cert):
        assert sans(cert(path)) == ({"localhost", "etcd.internal"}, {"127.0.0.1", "10.1.1.1"})
    assert sans(cert(cluster.node_serving_cert("node-1"))) == ({"node-1"}, {"10.0.0.2"})
    assert sans(cert(cluster.node_serving_cert("node-2"))) == ({"node-2"},
                                                              {"10.0.0.3", "fd00::3"})
    assert pkilib.known_nodes(cluster) == {"node-1": ["10.0.0.2"],
                                           "node-2": ["10.0.0.3", "fd00::3"]}


def test_service_account_key_pair(cluster: Pki) -> None:
    key_pem, pub_pem = cluster.sa_key.read_bytes(), cluster.sa_pub.read_bytes()
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8
    assert pub_pem.startswith(b"-----BEGIN PUBLIC KEY-----")  # SubjectPublicKeyInfo
    key = serialization.load_pem_private_key(key_pem, None)
    pub = serialization.load_pem_public_key(pub_pem)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert key.public_key() == pub


def test_modes(cluster: Pki) -> None:
    files = snapshot(cluster.root)
    keys = [p for p in files if p.suffix == ".key"]
    assert len(keys) == 17
    for p in files:
        want = 0o600 if p.suffix == ".key" else 0o644
        assert stat.S_IMODE(p.stat().st_mode) == want, p
    dirs = [cluster.root, *(p for p in cluster.root.rglob("*") if p.is_dir())]
    assert len(dirs) == 5  # pki, etcd, nodes, nodes/node-1, nodes/node-2
    for d in dirs:
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d


def test_open_pki_directory_is_tightened(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir(mode=0o755)
    pki = make(tmp_path)
    assert stat.S_IMODE(pki.root.stat().st_mode) == 0o700


# --- reuse, repair and renewal ----------------------------------------------------------------


def test_second_call_reuses_everything_without_generating_keys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pki = make(tmp_path, advertise_addresses=["192.168.7.1"])
    before = snapshot(pki.root)

    def no_keygen(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a key was generated although everything exists")
    monkeypatch.setattr(ec, "generate_private_key", no_keygen)
    monkeypatch.setattr(rsa, "generate_private_key", no_keygen)
    changes: list[Change] = []
    again = pkilib.ensure_control_plane(pki.root, service_ip=SERVICE_IP,
                                        advertise_addresses=["192.168.7.1"],
                                        report=changes.append)
    pkilib.ensure_node(again, "node-1", ["10.0.0.2"], report=changes.append)
    assert again == pki
    assert snapshot(pki.root) == before
    assert {c.action for c in changes} == {"kept"}
    assert len(changes) == 2 + 2 + 10 + 2  # CAs, sa.key + sa.pub, leaves, node


def test_first_call_reports_created(tmp_path: Path) -> None:
    changes: list[Change] = []
    pkilib.ensure_control_plane(tmp_path / "pki", service_ip=SERVICE_IP, report=changes.append)
    assert {c.action for c in changes} == {"created"}
    reported = {f for c in changes for f in c.files}
    assert reported == set(snapshot(tmp_path / "pki"))
    assert not list(tmp_path.rglob("*.tmp"))


def test_renew_replaces_leaves_and_keeps_cas_sa_and_sans(tmp_path: Path) -> None:
    pki = make(tmp_path, advertise_addresses=["192.168.7.1"])
    before = snapshot(pki.root)
    changes: list[Change] = []
    # Renewing without the advertise address still names it, as kubeadm's renewal does.
    pkilib.ensure_control_plane(pki.root, service_ip=SERVICE_IP, renew=True,
                                report=changes.append)
    pkilib.ensure_node(pki, "node-1", ["10.0.0.2"], renew=True, report=changes.append)
    after = snapshot(pki.root)
    kept = {pki.ca_cert, pki.ca_key, pki.etcd_ca_cert, pki.etcd_ca_key, pki.sa_key, pki.sa_pub}
    for path in before:
        if path in kept:
            assert after[path] == before[path], path
        else:
            assert after[path] != before[path], path
    assert {c.name for c in changes if c.action == "renewed"} == {
        "apiserver", "apiserver-kubelet-client", "apiserver-etcd-client", "etcd-server",
        "etcd-peer", "admin", "kube-scheduler", "kube-controller-manager", "kube-proxy",
        "ipamd", "nodes/node-1/kubelet-client", "nodes/node-1/kubelet"}
    assert "192.168.7.1" in sans(cert(pki.apiserver_cert))[1]
    for crt, _, cn, orgs, _, ca in leaves(pki):
        cert(crt).verify_directly_issued_by(cert(ca))
        assert subject(cert(crt)) == (cn, orgs)


def test_node_ip_change_reissues_only_the_serving_cert(tmp_path: Path) -> None:
    pki = make(tmp_path, nodes={"node-1": ["10.0.0.2", "10.0.0.9"]})
    before = snapshot(pki.root)
    changes: list[Change] = []
    pkilib.ensure_node(pki, "node-1", ["10.0.0.2"], report=changes.append)
    after = snapshot(pki.root)
    assert [(c.name, c.action) for c in changes] == [
        ("nodes/node-1/kubelet-client", "kept"), ("nodes/node-1/kubelet", "reissued")]
    assert sans(cert(pki.node_serving_cert("node-1")))[1] == {"10.0.0.2"}
    changed = {p for p in before if before[p] != after[p]}
    assert changed == {pki.node_serving_cert("node-1"), pki.node_serving_key("node-1")}


def test_new_advertise_address_reissues_only_the_apiserver(tmp_path: Path) -> None:
    pki = make(tmp_path)
    before = snapshot(pki.root)
    changes: list[Change] = []
    pkilib.ensure_control_plane(pki.root, service_ip=SERVICE_IP,
                                advertise_addresses=["172.16.0.5"], report=changes.append)
    assert [c.name for c in changes if c.action != "kept"] == ["apiserver"]
    assert "IP:172.16.0.5" in next(c.reason for c in changes if c.name == "apiserver")
    after = snapshot(pki.root)
    assert {p for p in before if before[p] != after[p]} == {pki.apiserver_cert,
                                                              pki.apiserver_key}


def test_broken_leaves_are_repaired(tmp_path: Path) -> None:
    pki = make(tmp_path)
    pki.admin_cert.write_bytes(b"garbage")
    pki.component_key("kube-scheduler").unlink()
    other = pkilib.issue_user(pki, "kubernetes-admin", ["system:masters"])
    pki.kubelet_client_key.write_bytes(other[1])  # a key that does not match its cert
    changes: list[Change] = []
    pkilib.ensure_control_plane(pki.root, service_ip=SERVICE_IP, report=changes.append)
    reissued = {c.name: c.reason for c in changes if c.action == "reissued"}
    assert set(reissued) == {"admin", "kube-scheduler", "apiserver-kubelet-client"}
    assert "not a PEM certificate" in reissued["admin"]
    assert "missing" in reissued["kube-scheduler"]
    assert "does not match" in reissued["apiserver-kubelet-client"]
    for crt, key, cn, orgs, _, ca in leaves(pki):
        c = cert(crt)
        c.verify_directly_issued_by(cert(ca))
        assert serialization.load_pem_private_key(key.read_bytes(), None).public_key() == \
            c.public_key()


def test_frozen_pki_object(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    with pytest.raises(AttributeError):
        pki.root = Path("/")  # type: ignore[misc]


def test_a_loose_leaf_key_is_replaced(tmp_path: Path) -> None:
    pki = make(tmp_path)
    os.chmod(pki.admin_key, 0o644)
    changes: list[Change] = []
    pkilib.ensure_control_plane(pki.root, service_ip=SERVICE_IP, report=changes.append)
    assert [(c.name, c.action) for c in changes if c.action != "kept"] == [
        ("admin", "reissued")]
    assert stat.S_IMODE(pki.admin_key.stat().st_mode) == 0o600


def test_a_new_ca_reissues_every_leaf_it_signs(tmp_path: Path) -> None:
    pki = make(tmp_path)
    pki.ca_cert.unlink()
    pki.ca_key.unlink()
    changes: list[Change] = []
    pkilib.ensure_control_plane(pki.root, service_ip=SERVICE_IP, report=changes.append)
    pkilib.ensure_node(pki, "node-1", ["10.0.0.2"], report=changes.append)
    actions = {c.name: c.action for c in changes}
    assert actions["ca"] == "created" and actions["etcd-ca"] == "kept"
    for name in ("apiserver", "admin", "kube-proxy", "nodes/node-1/kubelet"):
        assert actions[name] == "reissued", name
        assert "not signed by the current ca" in next(c.reason for c in changes
                                                      if c.name == name)
    for name in ("etcd-server", "etcd-peer", "apiserver-etcd-client"):
        assert actions[name] == "kept", name


def test_leaves_close_to_expiry_are_reissued(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pki = make(tmp_path)
    real_now = pkilib._now
    later = real_now() + dt.timedelta(days=340)  # 25 days before the leaves expire
    monkeypatch.setattr(pkilib, "_now", lambda: later)
    changes: list[Change] = []
    pkilib.ensure_control_plane(pki.root, service_ip=SERVICE_IP, report=changes.append)
    reissued = [c for c in changes if c.action == "reissued"]
    assert len(reissued) == 10
    assert all(c.reason.startswith("expires on") for c in reissued)
    assert cert(pki.admin_cert).not_valid_after_utc > later + dt.timedelta(days=364)


def test_sa_pub_is_rederived_from_sa_key(tmp_path: Path) -> None:
    pki = make(tmp_path)
    key, pub = pki.sa_key.read_bytes(), pki.sa_pub.read_bytes()
    pki.sa_pub.unlink()
    make(tmp_path)
    assert pki.sa_key.read_bytes() == key and pki.sa_pub.read_bytes() == pub


@pytest.mark.parametrize(("damage", "message"), [
    ("key-missing", "ca.key is missing"),
    ("key-mismatch", "is not the key of"),
    ("not-a-ca", "is not a CA certificate"),
])
def test_a_broken_ca_is_an_error_not_a_silent_new_ca(tmp_path: Path, damage: str,
                                                     message: str) -> None:
    pki = make(tmp_path)
    if damage == "key-missing":
        pki.ca_key.unlink()
    elif damage == "key-mismatch":
        pki.ca_key.write_bytes(pki.admin_key.read_bytes())
    else:
        pki.ca_cert.write_bytes(pki.admin_cert.read_bytes())
        pki.ca_key.write_bytes(pki.admin_key.read_bytes())
    before = snapshot(pki.root)
    with pytest.raises(PkiError, match=message):
        pkilib.ensure_control_plane(pki.root, service_ip=SERVICE_IP)
    assert snapshot(pki.root) == before


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="invalid IP"):
        pkilib.ensure_control_plane(tmp_path / "pki", service_ip="10.96.0")
    with pytest.raises(PkiError, match="invalid IP"):
        pkilib.ensure_control_plane(tmp_path / "pki", service_ip=SERVICE_IP,
                                    advertise_addresses=["nope"])
    assert not (tmp_path / "pki").exists()  # nothing written on bad input
    with pytest.raises(PkiError, match="cluster CA|missing|cannot use"):
        pkilib.ensure_node(Pki(tmp_path / "pki"), "node-1", ["10.0.0.1"])
    pki = make(tmp_path)
    for node in ("Node-1", "../x", "a/b", "", "n" * 60):
        with pytest.raises(PkiError):
            pkilib.ensure_node(pki, node, ["10.0.0.1"])
    with pytest.raises(PkiError, match="at least one IP"):
        pkilib.ensure_node(pki, "node-9", [])
    with pytest.raises(PkiError):
        pkilib.issue_user(pki, "", [])
    with pytest.raises(PkiError):
        pkilib.issue_user(pki, "jane", [], days=0)


# --- users, kubeconfigs, expiry ---------------------------------------------------------------


def test_issue_user(cluster: Pki) -> None:
    crt_pem, key_pem = pkilib.issue_user(cluster, "jane", ["dev", "qa"], days=30)
    c = x509.load_pem_x509_certificate(crt_pem)
    c.verify_directly_issued_by(cert(cluster.ca_cert))
    assert subject(c) == ("jane", ["dev", "qa"])
    assert ekus(c) == {CLIENT}
    assert serialization.load_pem_private_key(key_pem, None).public_key() == c.public_key()
    life = c.not_valid_after_utc - c.not_valid_before_utc
    assert dt.timedelta(days=30) <= life <= dt.timedelta(days=30, minutes=10)


def test_write_kubeconfigs(cluster: Pki, tmp_path: Path) -> None:
    server = "https://127.0.0.1:16443"
    paths = pkilib.write_kubeconfigs(tmp_path, cluster, server, ["node-1", "node-2"])
    assert paths == {
        "admin": tmp_path / "kubeconfig",
        "kube-scheduler": tmp_path / "kubeconfigs/kube-scheduler.conf",
        "kube-controller-manager": tmp_path / "kubeconfigs/kube-controller-manager.conf",
        "kube-proxy": tmp_path / "kubeconfigs/kube-proxy.conf",
        "ipamd": tmp_path / "kubeconfigs/ipamd.conf",
        "kubelet-node-1": tmp_path / "kubeconfigs/kubelet-node-1.conf",
        "kubelet-node-2": tmp_path / "kubeconfigs/kubelet-node-2.conf",
    }
    want = {"admin": ("kubernetes-admin", ["system:masters"]),
            "kube-scheduler": ("system:kube-scheduler", []),
            "kube-controller-manager": ("system:kube-controller-manager", []),
            "kube-proxy": ("system:kube-proxy", []),
            "ipamd": ("kubelite:ipamd", []),
            "kubelet-node-1": ("system:node:node-1", ["system:nodes"]),
            "kubelet-node-2": ("system:node:node-2", ["system:nodes"])}
    for name, path in paths.items():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert b"insecure-skip-tls-verify" not in path.read_bytes()
        cfg = load_kubeconfig(path)
        assert cfg.server == server and not cfg.insecure
        assert cfg.ca_data == cluster.ca_cert.read_bytes()
        assert cfg.client_cert_data is not None and cfg.client_key_data is not None
        c = x509.load_pem_x509_certificate(cfg.client_cert_data)
        assert subject(c) == want[name]
        key = serialization.load_pem_private_key(cfg.client_key_data, None)
        assert key.public_key() == c.public_key()
    assert stat.S_IMODE((tmp_path / "kubeconfigs").stat().st_mode) == 0o700
    with pytest.raises(PkiError, match="https"):
        pkilib.write_kubeconfigs(tmp_path, cluster, "http://127.0.0.1:8080", [])
    with pytest.raises(PkiError, match="node-3"):
        pkilib.write_kubeconfigs(tmp_path, cluster, server, ["node-3"])


def test_check_expiration(cluster: Pki) -> None:
    rows = pkilib.check_expiration(cluster)
    by_name = {r.name: r for r in rows}
    assert list(by_name) == [
        "apiserver", "apiserver-etcd-client", "apiserver-kubelet-client", "etcd-server",
        "etcd-peer", "admin", "kube-scheduler", "kube-controller-manager", "kube-proxy",
        "ipamd", "nodes/node-1/kubelet-client", "nodes/node-1/kubelet",
        "nodes/node-2/kubelet-client",
        "nodes/node-2/kubelet", "ca", "etcd-ca"]
    assert by_name["apiserver"].ca == "ca"
    assert by_name["etcd-server"].ca == "etcd-ca"
    assert by_name["apiserver-etcd-client"].ca == "etcd-ca"
    assert by_name["ca"].ca == "" and by_name["etcd-ca"].ca == ""
    assert by_name["admin"].residual_days in (364, 365)
    assert by_name["ca"].residual_days in (3649, 3650)
    assert by_name["admin"].not_after == cert(cluster.admin_cert).not_valid_after_utc
    name, not_after, days, ca = rows[0]  # a plain tuple for callers that unpack it
    assert (name, ca) == ("apiserver", "ca") and isinstance(not_after, dt.datetime)
    assert isinstance(days, int)


# --- TLS with the real thing ------------------------------------------------------------------


def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext,
               server_hostname: str) -> dict[str, Any]:
    """One TLS handshake over 127.0.0.1; the peer certificate the server saw."""
    seen: dict[str, Any] = {}
    errors: list[BaseException] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    seen.update(tls.getpeercert() or {})
                    tls.sendall(b"ok")
            except (OSError, ssl.SSLError) as e:
                errors.append(e)

        thread = threading.Thread(target=serve, name="tls-server")
        thread.start()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                    client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
                assert tls.recv(2) == b"ok"
        finally:
            thread.join(10)
    if errors:
        raise errors[0]
    return seen


def _server_ctx(pki: Pki) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.apiserver_cert, pki.apiserver_key)
    ctx.load_verify_locations(pki.ca_cert)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def test_tls_round_trip_with_admin_kubeconfig(cluster: Pki, tmp_path: Path) -> None:
    pkilib.write_kubeconfigs(tmp_path, cluster, "https://127.0.0.1:6443", ["node-2"])
    client_ctx = load_kubeconfig(tmp_path / "kubeconfig").ssl_context()
    assert client_ctx is not None and client_ctx.check_hostname
    peer = _handshake(_server_ctx(cluster), client_ctx, "127.0.0.1")
    assert peer["subject"] == ((("organizationName", "system:masters"),),
                               (("commonName", "kubernetes-admin"),))
    # The same apiserver certificate verifies by DNS name too.
    node_ctx = load_kubeconfig(tmp_path / "kubeconfigs/kubelet-node-2.conf").ssl_context()
    assert node_ctx is not None
    peer = _handshake(_server_ctx(cluster), node_ctx, "kubernetes.default.svc")
    assert peer["subject"] == ((("organizationName", "system:nodes"),),
                               (("commonName", "system:node:node-2"),))


def test_tls_rejects_the_wrong_ca_and_the_wrong_name(cluster: Pki) -> None:
    wrong_ca = ssl.create_default_context(cafile=str(cluster.etcd_ca_cert))
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(_server_ctx(cluster), wrong_ca, "127.0.0.1")
    right_ca = ssl.create_default_context(cafile=str(cluster.ca_cert))
    right_ca.load_cert_chain(cluster.admin_cert, cluster.admin_key)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(_server_ctx(cluster), right_ca, "10.9.9.9")
