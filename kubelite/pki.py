"""The cluster PKI under `DATA/pki/`: two CAs, every component's certificate, the
service-account key pair, and the kubeconfigs that carry them.

The layout and identities follow kubeadm (`cmd/kubeadm/app/phases/certs`): a cluster CA
("kubernetes") signs the apiserver's serving certificate, its kubelet-client certificate,
the component and admin client certificates and each node's kubelet certificates; a separate
etcd CA ("etcd-ca") signs etcd's server and peer certificates and the apiserver's etcd
client certificate, so nothing signed by the cluster CA can talk to etcd.

`ensure_*` is idempotent: whatever exists and is still good (parses, matches its key, was
signed by our CA, names the right identity, covers the SANs asked for and does not expire
within `RENEW_BEFORE`) is kept byte for byte; anything else is (re)issued with the same CA.
Only what is missing costs a key generation, so the common path (everything present) is a
few file reads and signature checks. CAs and `sa.key` are never replaced implicitly:
replacing them would invalidate every credential handed out, so a broken one is an error.

Files are written atomically (temporary file + rename), private keys created 0600 from the
start (never chmod-ed after the secret is on disk) and directories 0700.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from client.kubeconfig import write_kubeconfig

CA_VALIDITY = dt.timedelta(days=3650)
LEAF_VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)
# Backdate NotBefore so a certificate is usable at once on a host whose clock lags a little.
BACKDATE = dt.timedelta(minutes=5)

CLUSTER_CA = "ca"
ETCD_CA = "etcd-ca"
COMPONENTS = {
    "kube-scheduler": "system:kube-scheduler",
    "kube-controller-manager": "system:kube-controller-manager",
    "kube-proxy": "system:kube-proxy",
    # Every node's ipamd (EKS's aws-node); RBAC role kubelite:ipamd.
    "ipamd": "kubelite:ipamd",
}
ADMIN_USER = "kubernetes-admin"
ADMIN_GROUP = "system:masters"
NODES_GROUP = "system:nodes"
# X.509 (RFC 5280 ub-common-name) caps a CN at 64 characters; cryptography enforces it.
MAX_CN = 64

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Action = Literal["created", "kept", "reissued", "renewed"]
_T = TypeVar("_T")

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")


class PkiError(Exception):
    """The PKI cannot be created or used as asked (a broken CA, a bad name, a missing file)."""


@dataclass(frozen=True)
class Change:
    """What `ensure_*` did with one certificate (or key pair): reported through `report`."""

    name: str
    files: tuple[Path, ...]
    action: Action
    reason: str = ""


Reporter = Callable[[Change], None]


class Expiry(NamedTuple):
    """One row of `check_expiration`; `ca` is "" for a CA itself."""

    name: str
    not_after: dt.datetime
    residual_days: int
    ca: str


@dataclass(frozen=True)
class Pki:
    """Paths of every file of the PKI rooted at `root` (`DATA/pki`)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def apiserver_cert(self) -> Path:
        return self.root / "apiserver.crt"

    @property
    def apiserver_key(self) -> Path:
        return self.root / "apiserver.key"

    @property
    def kubelet_client_cert(self) -> Path:
        """The apiserver's client certificate for calling kubelets."""
        return self.root / "apiserver-kubelet-client.crt"

    @property
    def kubelet_client_key(self) -> Path:
        return self.root / "apiserver-kubelet-client.key"

    @property
    def etcd_client_cert(self) -> Path:
        """The apiserver's client certificate for etcd (signed by the etcd CA)."""
        return self.root / "apiserver-etcd-client.crt"

    @property
    def etcd_client_key(self) -> Path:
        return self.root / "apiserver-etcd-client.key"

    @property
    def etcd_dir(self) -> Path:
        return self.root / "etcd"

    @property
    def etcd_ca_cert(self) -> Path:
        return self.etcd_dir / "ca.crt"

    @property
    def etcd_ca_key(self) -> Path:
        return self.etcd_dir / "ca.key"

    @property
    def etcd_server_cert(self) -> Path:
        return self.etcd_dir / "server.crt"

    @property
    def etcd_server_key(self) -> Path:
        return self.etcd_dir / "server.key"

    @property
    def etcd_peer_cert(self) -> Path:
        return self.etcd_dir / "peer.crt"

    @property
    def etcd_peer_key(self) -> Path:
        return self.etcd_dir / "peer.key"

    @property
    def sa_key(self) -> Path:
        return self.root / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.root / "sa.pub"

    @property
    def admin_cert(self) -> Path:
        return self.root / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.root / "admin.key"

    def component_cert(self, name: str) -> Path:
        """`kube-scheduler`, `kube-controller-manager` or `kube-proxy`."""
        return self.root / f"{_component(name)}.crt"

    def component_key(self, name: str) -> Path:
        return self.root / f"{_component(name)}.key"

    @property
    def nodes_dir(self) -> Path:
        return self.root / "nodes"

    def node_dir(self, node: str) -> Path:
        return self.nodes_dir / _node_name(node)

    def node_client_cert(self, node: str) -> Path:
        return self.node_dir(node) / "kubelet-client.crt"

    def node_client_key(self, node: str) -> Path:
        return self.node_dir(node) / "kubelet-client.key"

    def node_serving_cert(self, node: str) -> Path:
        return self.node_dir(node) / "kubelet.crt"

    def node_serving_key(self, node: str) -> Path:
        return self.node_dir(node) / "kubelet.key"


def _component(name: str) -> str:
    if name not in COMPONENTS:
        raise PkiError(f"unknown component {name!r} (one of {', '.join(COMPONENTS)})")
    return name


def check_node_name(node: str) -> str:
    """`node` itself when it can name a node's certificates, else PkiError."""
    return _node_name(node)


def _node_name(node: str) -> str:
    # The name becomes a directory and a CN: it must be a DNS subdomain, as a Node's name.
    if not _DNS_SUBDOMAIN.fullmatch(node) or len(node) > 253:
        raise PkiError(f"invalid node name {node!r}: must be a lowercase DNS subdomain")
    if len(f"system:node:{node}") > MAX_CN:
        raise PkiError(f"node name {node!r} is too long for a certificate "
                       f"(at most {MAX_CN - len('system:node:')} characters)")
    return node


def parse_ip(value: str) -> IPAddress:
    """An IP address, or PkiError naming the bad value."""
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        raise PkiError(f"invalid IP address {value!r}") from None


def _dns_name(value: str) -> str:
    name = value.strip().lower().rstrip(".")
    if not _DNS_SUBDOMAIN.fullmatch(name) or len(name) > 253:
        raise PkiError(f"invalid DNS name {value!r}")
    return name


# --- certificate specs ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Leaf:
    """What one leaf certificate must be: identity, usages, SANs and the CA that signs it."""

    name: str
    cert: Path
    key: Path
    ca: str
    cn: str
    orgs: tuple[str, ...] = ()
    server: bool = False
    client: bool = False
    dns: tuple[str, ...] = ()
    ips: tuple[IPAddress, ...] = ()
    # A node's serving certificate must name exactly its current IPs: a stale IP would let
    # whoever gets that address later impersonate the kubelet.
    exact_ips: bool = False

    @property
    def ekus(self) -> frozenset[x509.ObjectIdentifier]:
        usages = set()
        if self.server:
            usages.add(ExtendedKeyUsageOID.SERVER_AUTH)
        if self.client:
            usages.add(ExtendedKeyUsageOID.CLIENT_AUTH)
        return frozenset(usages)


@dataclass(frozen=True)
class _Ca:
    name: str
    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes

    def issued(self, cert: x509.Certificate) -> bool:
        try:
            cert.verify_directly_issued_by(self.cert)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True


def _control_plane_leaves(pki: Pki, service_ip: IPAddress, cluster_domain: str,
                          advertise: Sequence[IPAddress], etcd_dns: Sequence[str],
                          etcd_ips: Sequence[IPAddress]) -> list[_Leaf]:
    loopback = ipaddress.ip_address("127.0.0.1")
    api_dns = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
               f"kubernetes.default.svc.{cluster_domain}")
    api_ips = _unique((loopback, service_ip, *advertise))
    etcd_names = _unique(("localhost", *etcd_dns))
    etcd_addrs = _unique((loopback, *etcd_ips))
    leaves = [
        _Leaf("apiserver", pki.apiserver_cert, pki.apiserver_key, CLUSTER_CA, "kube-apiserver",
              server=True, dns=api_dns, ips=api_ips),
        _Leaf("apiserver-kubelet-client", pki.kubelet_client_cert, pki.kubelet_client_key,
              CLUSTER_CA, "kube-apiserver-kubelet-client", client=True),
        _Leaf("apiserver-etcd-client", pki.etcd_client_cert, pki.etcd_client_key, ETCD_CA,
              "kube-apiserver-etcd-client", client=True),
        _Leaf("etcd-server", pki.etcd_server_cert, pki.etcd_server_key, ETCD_CA, "kube-etcd",
              server=True, client=True, dns=etcd_names, ips=etcd_addrs),
        _Leaf("etcd-peer", pki.etcd_peer_cert, pki.etcd_peer_key, ETCD_CA, "kube-etcd-peer",
              server=True, client=True, dns=etcd_names, ips=etcd_addrs),
        _Leaf("admin", pki.admin_cert, pki.admin_key, CLUSTER_CA, ADMIN_USER,
              orgs=(ADMIN_GROUP,), client=True),
    ]
    for component, user in COMPONENTS.items():
        leaves.append(_Leaf(component, pki.component_cert(component),
                            pki.component_key(component), CLUSTER_CA, user, client=True))
    return leaves


def _node_leaves(pki: Pki, node: str, ips: Sequence[IPAddress]) -> list[_Leaf]:
    user = f"system:node:{node}"
    return [
        _Leaf(f"nodes/{node}/kubelet-client", pki.node_client_cert(node),
              pki.node_client_key(node), CLUSTER_CA, user, orgs=(NODES_GROUP,), client=True),
        # The identity a kubelet serving certificate gets from the CSR flow upstream.
        _Leaf(f"nodes/{node}/kubelet", pki.node_serving_cert(node), pki.node_serving_key(node),
              CLUSTER_CA, user, orgs=(NODES_GROUP,), server=True, dns=(node,),
              ips=_unique(ips), exact_ips=True),
    ]


def _unique(items: Sequence[_T]) -> tuple[_T, ...]:
    return tuple(dict.fromkeys(items))


# --- public API -------------------------------------------------------------------------------


def ensure_control_plane(pki_dir: str | os.PathLike[str], *, service_ip: str,
                         cluster_domain: str = "cluster.local",
                         advertise_addresses: Sequence[str] = (),
                         etcd_names: Sequence[str] = (), renew: bool = False,
                         report: Reporter | None = None) -> Pki:
    """Create what is missing of the control plane's PKI and reuse what is still good.

    `service_ip` is the `kubernetes` Service's address (first of the service range);
    `etcd_names` are extra DNS names or IPs for etcd's certificates. With `renew` every leaf
    is reissued with a new key (keeping the SANs it had, as `kubeadm certs renew`); the CAs
    and the service-account key are kept.
    """
    pki = Pki(Path(pki_dir))
    svc = parse_ip(service_ip)
    domain = _dns_name(cluster_domain)
    advertise = [parse_ip(a) for a in advertise_addresses]
    etcd_dns: list[str] = []
    etcd_ips: list[IPAddress] = []
    for name in etcd_names:
        try:
            etcd_ips.append(ipaddress.ip_address(name.strip()))
        except ValueError:
            etcd_dns.append(_dns_name(name))
    leaves = _control_plane_leaves(pki, svc, domain, advertise, etcd_dns, etcd_ips)
    pki.root.parent.mkdir(parents=True, exist_ok=True)
    _private_dir(pki.root)
    with _locked(pki.root):
        _private_dir(pki.etcd_dir)
        cas = {CLUSTER_CA: _ensure_ca(CLUSTER_CA, "kubernetes", pki.ca_cert, pki.ca_key, report),
               ETCD_CA: _ensure_ca(ETCD_CA, "etcd-ca", pki.etcd_ca_cert, pki.etcd_ca_key,
                                   report)}
        _ensure_sa(pki, report)
        now = _now()
        for leaf in leaves:
            _ensure_leaf(leaf, cas[leaf.ca], now, renew, report)
    return pki


def ensure_node(pki: Pki, node: str, node_ips: Sequence[str], renew: bool = False,
                report: Reporter | None = None) -> None:
    """The node's kubelet client certificate (`system:node:<node>` in `system:nodes`) and
    its serving certificate (DNS `<node>` and exactly `node_ips`), signed by the cluster CA,
    which must exist (`ensure_control_plane` first)."""
    _node_name(node)
    ips = [parse_ip(ip) for ip in node_ips]
    if not ips:
        raise PkiError(f"node {node!r} needs at least one IP address for its serving "
                       "certificate")
    leaves = _node_leaves(pki, node, ips)
    with _locked(pki.root):
        ca = _load_ca(CLUSTER_CA, pki.ca_cert, pki.ca_key)
        _private_dir(pki.nodes_dir)
        _private_dir(pki.node_dir(node))
        now = _now()
        for leaf in leaves:
            _ensure_leaf(leaf, ca, now, renew, report)


def known_nodes(pki: Pki) -> dict[str, list[str]]:
    """The nodes that have a directory under `pki/nodes/`, with the IPs their serving
    certificate names (empty when it is missing or unreadable)."""
    nodes: dict[str, list[str]] = {}
    if not pki.nodes_dir.is_dir():
        return nodes
    for d in sorted(pki.nodes_dir.iterdir()):
        if not d.is_dir() or not _DNS_SUBDOMAIN.fullmatch(d.name):
            continue
        ips: list[str] = []
        with contextlib.suppress(OSError, ValueError, PkiError):
            _, san_ips = _sans(_read_cert(d / "kubelet.crt"))
            ips = [str(ip) for ip in san_ips]
        nodes[d.name] = ips
    return nodes


def issue_user(pki: Pki, user: str, groups: Sequence[str], days: int = 365
               ) -> tuple[bytes, bytes]:
    """A client certificate for `user` (CN) in `groups` (O), signed by the cluster CA:
    (certificate PEM, private key PEM). Its validity ends with the CA's at the latest."""
    if not user or len(user) > MAX_CN or any(c < " " for c in user):
        raise PkiError(f"invalid user name {user!r} (1 to {MAX_CN} printable characters)")
    for group in groups:
        if not group or len(group) > MAX_CN or any(c < " " for c in group):
            raise PkiError(f"invalid group name {group!r}")
    if days < 1:
        raise PkiError(f"--days must be at least 1, not {days}")
    ca = _load_ca(CLUSTER_CA, pki.ca_cert, pki.ca_key)
    leaf = _Leaf(f"user {user}", Path(), Path(), CLUSTER_CA, user,
                 orgs=_unique(list(groups)), client=True)
    key = _new_key()
    cert = _sign_leaf(leaf, ca, key, _now(), dt.timedelta(days=days))
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def load_ca_bundle(pki: Pki) -> bytes:
    """The cluster CA certificate (PEM): what clients trust the apiserver and kubelets by."""
    try:
        return pki.ca_cert.read_bytes()
    except OSError as e:
        raise PkiError(f"cannot read the cluster CA {pki.ca_cert}: {e.strerror}") from None


def write_kubeconfigs(data_dir: str | os.PathLike[str], pki: Pki, server: str,
                      nodes: Sequence[str]) -> dict[str, Path]:
    """The admin kubeconfig (`DATA/kubeconfig`) and one per component and node under
    `DATA/kubeconfigs/`, each with the CA and its client certificate and key inline.

    Keys of the result: "admin", "kube-scheduler", "kube-controller-manager", "kube-proxy",
    and "kubelet-<node>" per node.
    """
    if not server.startswith("https://"):
        raise PkiError(f"server {server!r} must be an https:// URL")
    data = Path(data_dir)
    ca = load_ca_bundle(pki)
    entries: list[tuple[str, Path, Path, Path, str]] = [
        ("admin", data / "kubeconfig", pki.admin_cert, pki.admin_key, ADMIN_USER)]
    for component, user in COMPONENTS.items():
        entries.append((component, data / "kubeconfigs" / f"{component}.conf",
                        pki.component_cert(component), pki.component_key(component), user))
    for node in nodes:
        entries.append((f"kubelet-{node}", data / "kubeconfigs" / f"kubelet-{node}.conf",
                        pki.node_client_cert(node), pki.node_client_key(node),
                        f"system:node:{node}"))
    _private_dir(data / "kubeconfigs")
    written: dict[str, Path] = {}
    for name, path, cert, key, user in entries:
        try:
            cert_pem, key_pem = cert.read_bytes(), key.read_bytes()
        except OSError as e:
            raise PkiError(f"cannot write the {name} kubeconfig: {e.filename}: "
                           f"{e.strerror}") from None
        written[name] = write_kubeconfig(path, server, ca_data=ca, client_cert_data=cert_pem,
                                         client_key_data=key_pem, user=user)
    return written


def check_expiration(pki: Pki) -> list[Expiry]:
    """Every certificate present: leaves first (with the CA that signed them), then the CAs
    (with `ca` ""). Missing files are left out; an unreadable one is a PkiError."""
    now = _now()
    rows: list[tuple[str, Path, str]] = [
        ("apiserver", pki.apiserver_cert, CLUSTER_CA),
        ("apiserver-etcd-client", pki.etcd_client_cert, ETCD_CA),
        ("apiserver-kubelet-client", pki.kubelet_client_cert, CLUSTER_CA),
        ("etcd-server", pki.etcd_server_cert, ETCD_CA),
        ("etcd-peer", pki.etcd_peer_cert, ETCD_CA),
        ("admin", pki.admin_cert, CLUSTER_CA),
    ]
    rows += [(c, pki.component_cert(c), CLUSTER_CA) for c in COMPONENTS]
    for node in known_nodes(pki):
        rows.append((f"nodes/{node}/kubelet-client", pki.node_client_cert(node), CLUSTER_CA))
        rows.append((f"nodes/{node}/kubelet", pki.node_serving_cert(node), CLUSTER_CA))
    rows += [(CLUSTER_CA, pki.ca_cert, ""), (ETCD_CA, pki.etcd_ca_cert, "")]
    out: list[Expiry] = []
    for name, path, ca in rows:
        if not path.exists():
            continue
        not_after = _read_cert(path).not_valid_after_utc
        out.append(Expiry(name, not_after, (not_after - now) // dt.timedelta(days=1), ca))
    return out


# --- CAs and the service-account key ------------------------------------------------------------


def _ensure_ca(name: str, cn: str, cert_path: Path, key_path: Path,
               report: Reporter | None) -> _Ca:
    if not cert_path.exists() and not key_path.exists():
        key = _new_key()
        now = _now()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        cert = (x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - BACKDATE)
                .not_valid_after(now + CA_VALIDITY)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(_key_usage(ca=True), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False)
                .sign(key, hashes.SHA256()))
        _write_private(key_path, _key_pem(key))
        _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        _report(report, name, (cert_path, key_path), "created")
        return _Ca(name, cert, key)
    ca = _load_ca(name, cert_path, key_path)
    _report(report, name, (cert_path, key_path), "kept")
    return ca


def _load_ca(name: str, cert_path: Path, key_path: Path) -> _Ca:
    """The CA at these paths, which must exist, match, be a CA and be unexpired."""
    for path in (cert_path, key_path):
        if not path.exists():
            raise PkiError(f"{name}: {path} is missing (create the PKI with `kubelite certs "
                           "create`, or remove the CA's other file to start a new CA)")
    cert = _read_cert(cert_path)
    key = _read_key(key_path)
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise PkiError(f"{name}: {key_path} is neither an ECDSA nor an RSA key")
    if not _matches(cert, key):
        raise PkiError(f"{name}: {key_path} is not the key of {cert_path}")
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise PkiError(f"{name}: {cert_path} is not a CA certificate")
    if cert.not_valid_after_utc <= _now():
        raise PkiError(f"{name}: {cert_path} expired on {cert.not_valid_after_utc:%Y-%m-%d}; "
                       "a new CA means new credentials everywhere: remove the PKI directory "
                       "and create it again")
    return _Ca(name, cert, key)


def _ensure_sa(pki: Pki, report: Reporter | None) -> None:
    if not pki.sa_key.exists():
        # RSA because service-account tokens are RS256 JWTs, as upstream's.
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_private(pki.sa_key, _key_pem(key))
        _write_public(pki.sa_pub, _public_pem(key))
        _report(report, "sa", (pki.sa_key, pki.sa_pub), "created")
        return
    # Our own key, checked when it was made; validating an RSA key costs ~30 ms per load.
    sa = _read_key(pki.sa_key, check_rsa=False)
    if not isinstance(sa, rsa.RSAPrivateKey):
        raise PkiError(f"{pki.sa_key} is not an RSA private key")
    _report(report, "sa", (pki.sa_key,), "kept")
    # The public half is derived, so it can always be rewritten to match the key.
    want = _public_pem(sa)
    try:
        have = pki.sa_pub.read_bytes()
    except FileNotFoundError:
        have = b""
    if have == want:
        _report(report, "sa", (pki.sa_pub,), "kept")
    else:
        _write_public(pki.sa_pub, want)
        _report(report, "sa", (pki.sa_pub,), "created" if not have else "reissued",
                "" if not have else "did not match sa.key")


# --- leaves ---------------------------------------------------------------------------------


def _ensure_leaf(leaf: _Leaf, ca: _Ca, now: dt.datetime, renew: bool,
                 report: Reporter | None) -> None:
    files = (leaf.cert, leaf.key)
    if renew:
        keep_dns: tuple[str, ...] = ()
        keep_ips: tuple[IPAddress, ...] = ()
        if not leaf.exact_ips:
            # As kubeadm's renewal: the new certificate names everything the old one did.
            with contextlib.suppress(OSError, ValueError, PkiError):
                keep_dns, keep_ips = _sans(_read_cert(leaf.cert))
        leaf = _Leaf(leaf.name, leaf.cert, leaf.key, leaf.ca, leaf.cn, leaf.orgs, leaf.server,
                     leaf.client, _unique((*leaf.dns, *keep_dns)),
                     _unique((*leaf.ips, *keep_ips)), leaf.exact_ips)
        _issue(leaf, ca, now)
        _report(report, leaf.name, files, "renewed")
        return
    if not leaf.cert.exists() and not leaf.key.exists():
        _issue(leaf, ca, now)
        _report(report, leaf.name, files, "created")
        return
    problem = _problem(leaf, ca, now)
    if problem is None:
        _report(report, leaf.name, files, "kept")
        return
    _issue(leaf, ca, now)
    _report(report, leaf.name, files, "reissued", problem)


def _problem(leaf: _Leaf, ca: _Ca, now: dt.datetime) -> str | None:
    """Why the files of `leaf` cannot be kept, or None when they can."""
    try:
        if _loose(leaf.key):
            return "its key file is readable by others"
        cert = _read_cert(leaf.cert)
        key = _read_key(leaf.key)
    except FileNotFoundError as e:
        return f"{Path(str(e.filename)).name} is missing"
    except (OSError, PkiError) as e:
        return str(e)
    if not _matches(cert, key):
        return "the key does not match the certificate"
    if not ca.issued(cert):
        return f"not signed by the current {ca.name}"
    not_after = cert.not_valid_after_utc
    # A certificate cut short by its CA's own expiry cannot be improved by reissuing it.
    if not_after - now < RENEW_BEFORE and not_after < ca.cert.not_valid_after_utc:
        return f"expires on {not_after:%Y-%m-%d}"
    if cert.not_valid_before_utc > now:
        return f"not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M}"
    if _subject(cert) != (leaf.cn, leaf.orgs):
        return "its subject is not " + _describe_subject(leaf.cn, leaf.orgs)
    if _ekus(cert) != leaf.ekus:
        return "its extended key usages differ"
    dns, ips = _sans(cert)
    lacking = [f"DNS:{d}" for d in leaf.dns if d not in dns]
    lacking += [f"IP:{ip}" for ip in leaf.ips if ip not in ips]
    if lacking:
        return "it does not name " + ", ".join(lacking)
    if leaf.exact_ips and set(ips) != set(leaf.ips):
        return "its IP addresses " + ", ".join(map(str, ips)) + " changed"
    return None


def _issue(leaf: _Leaf, ca: _Ca, now: dt.datetime) -> None:
    key = _new_key()
    cert = _sign_leaf(leaf, ca, key, now, LEAF_VALIDITY)
    # Key first: a crash in between leaves a key that does not match the old certificate,
    # which the next run notices and repairs.
    _write_private(leaf.key, _key_pem(key))
    _write_public(leaf.cert, cert.public_bytes(serialization.Encoding.PEM))


def _sign_leaf(leaf: _Leaf, ca: _Ca, key: ec.EllipticCurvePrivateKey, now: dt.datetime,
               validity: dt.timedelta) -> x509.Certificate:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in leaf.orgs]
    try:
        subject = x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, leaf.cn)])
    except ValueError as e:
        raise PkiError(f"{leaf.name}: {e}") from None
    try:
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key())
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(ca.cert.subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - BACKDATE)
               .not_valid_after(min(now + validity, ca.cert.not_valid_after_utc))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(_key_usage(ca=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage(sorted(leaf.ekus,
                                                           key=lambda o: o.dotted_string)),
                              critical=False)
               .add_extension(aki, critical=False))
    if leaf.dns or leaf.ips:
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in leaf.dns]
        names += [x509.IPAddress(ip) for ip in leaf.ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca.key, hashes.SHA256())


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    # ECDSA keys sign; they never encipher, so leaves get digitalSignature only.
    return x509.KeyUsage(digital_signature=True, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=ca, crl_sign=ca, encipher_only=False,
                         decipher_only=False)


# --- reading certificates ---------------------------------------------------------------------


def _subject(cert: x509.Certificate) -> tuple[str, tuple[str, ...]]:
    def values(oid: x509.ObjectIdentifier) -> list[str]:
        return [str(a.value) for a in cert.subject.get_attributes_for_oid(oid)]
    cns = values(NameOID.COMMON_NAME)
    return (cns[0] if len(cns) == 1 else "", tuple(values(NameOID.ORGANIZATION_NAME)))


def _describe_subject(cn: str, orgs: Sequence[str]) -> str:
    return f"CN={cn}" + "".join(f", O={o}" for o in orgs)


def _ekus(cert: x509.Certificate) -> frozenset[x509.ObjectIdentifier]:
    try:
        return frozenset(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return frozenset()


def _sans(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[IPAddress, ...]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return (), ()
    ips = tuple(ip for ip in san.get_values_for_type(x509.IPAddress)
                if isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)))
    return tuple(san.get_values_for_type(x509.DNSName)), ips


def _read_cert(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise PkiError(f"{path} is not a PEM certificate") from None


def _read_key(path: Path, *, check_rsa: bool = True) -> PrivateKeyTypes:
    data = path.read_bytes()
    try:
        return serialization.load_pem_private_key(
            data, password=None, unsafe_skip_rsa_key_validation=not check_rsa)
    except (ValueError, TypeError):
        raise PkiError(f"{path} is not an unencrypted PEM private key") from None


def _matches(cert: x509.Certificate, key: PrivateKeyTypes) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return bool(cert.public_key().public_bytes(der, spki) ==
                key.public_key().public_bytes(der, spki))


def _loose(path: Path) -> bool:
    return bool(path.stat().st_mode & 0o077)


# --- keys and files -----------------------------------------------------------------------------


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def _write_private(path: Path, data: bytes) -> None:
    _write_atomic(path, data, 0o600)


def _write_public(path: Path, data: bytes) -> None:
    _write_atomic(path, data, 0o644)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write through a temporary file created with its final `mode`, then rename over
    `path`: readers see the old or the new file, never half of one, and a key is never on
    disk with wider permissions than 0600."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _private_dir(path: Path) -> None:
    try:
        os.mkdir(path, 0o700)
        return
    except FileExistsError:
        pass
    st = path.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise PkiError(f"{path} exists and is not a directory")
    if st.st_mode & 0o077:
        # Tightening a directory exposes nothing; leaving it open would expose the keys.
        os.chmod(path, 0o700)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Serialise PKI writers (say `kubelite up` and `kubelite certs` at once) with a lock on
    the directory itself, so two processes never mint two different CAs."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise PkiError(f"cannot use the PKI directory {directory}: {e.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _report(report: Reporter | None, name: str, files: tuple[Path, ...], action: Action,
            reason: str = "") -> None:
    if report is not None:
        report(Change(name, files, action, reason))


def _now() -> dt.datetime:
    # Whole seconds: X.509 times have no fractions, and comparisons stay exact.
    return dt.datetime.now(dt.UTC).replace(microsecond=0)
