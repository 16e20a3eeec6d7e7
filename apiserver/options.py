"""Command-line flags of the apiserver, named as kube-apiserver's."""

from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass, field

from api.durations import parse_duration
from api.flags import parse_bool
from apiserver.allowlist import EVERYWHERE, IpNetwork, parse_cidrs
from apiserver.auth.authz import parse_modes
from apiserver.storage.encryption import EncryptionConfigError, load_encryption_config


@dataclass
class ApiServerOptions:
    etcd_servers: list[str] = field(default_factory=lambda: ["http://127.0.0.1:2379"])
    bind_address: str = "127.0.0.1"
    secure_port: int = 6443
    min_request_timeout: int = 1800
    etcd_compaction_interval: float = 300.0
    advertise_address: str = "127.0.0.1"
    default_watch_cache_size: int = 10_000
    default_not_ready_toleration_seconds: int = 300
    service_cluster_ip_range: str = "10.96.0.0/12"
    service_node_port_range: str = "30000-32767"
    default_unreachable_toleration_seconds: int = 300
    # Abuse bounds (security.md "Abuse bounds"); 0 disables a limit.
    max_requests_inflight: int = 400
    max_mutating_requests_inflight: int = 200
    event_ttl: float = 3600.0
    # Serving and authentication (security.md).
    tls_cert_file: str = ""
    tls_private_key_file: str = ""
    cert_dir: str = ""
    client_ca_file: str = ""
    token_auth_file: str = ""
    anonymous_auth: bool = True
    authorization_mode: list[str] = field(default_factory=lambda: ["Node", "RBAC"])
    service_account_key_files: list[str] = field(default_factory=list)
    service_account_signing_key_file: str = ""
    service_account_issuer: list[str] = field(default_factory=list)
    api_audiences: list[str] = field(default_factory=list)
    service_account_max_token_expiration: float = 0.0
    etcd_cafile: str = ""
    etcd_certfile: str = ""
    etcd_keyfile: str = ""
    cluster_domain: str = "cluster.local"
    # The apiserver's client side of the kubelet hop (apiserver/proxy.py).
    kubelet_client_certificate: str = ""
    kubelet_client_key: str = ""
    kubelet_certificate_authority: str = ""
    # The audit log (apiserver/audit.py): events only with both a policy and a path.
    audit_policy_file: str = ""
    audit_log_path: str = ""
    audit_log_maxsize: int = 0  # MB before rotation; 0: never rotate
    audit_log_maxbackup: int = 0  # rotated files kept; 0: all
    audit_log_maxage: int = 0  # days rotated files are kept; 0: any age
    # Encryption at rest: an EncryptionConfiguration file (apiserver/storage/encryption.py).
    encryption_provider_config: str = ""
    # Endpoint access, as EKS (kubelite's own flags; docs/security.md "Endpoint access").
    public_access_cidrs: list[IpNetwork] = field(
        default_factory=lambda: parse_cidrs(EVERYWHERE))
    endpoint_private_access: bool = False
    internal_port: int = 0


def parse_args(argv: list[str] | None = None) -> ApiServerOptions:
    p = argparse.ArgumentParser(prog="kubelite apiserver",
                                description="kubelite API server (kube-apiserver flags)")
    p.add_argument("--etcd-servers", default="http://127.0.0.1:2379",
                   help="comma-separated etcd client URLs")
    p.add_argument("--bind-address", default="127.0.0.1")
    p.add_argument("--secure-port", type=int, default=6443,
                   help="port to serve on (plain HTTP until TLS lands)")
    p.add_argument("--advertise-address", default=None)
    p.add_argument("--min-request-timeout", type=int, default=1800,
                   help="default watch timeout in seconds")
    p.add_argument("--etcd-compaction-interval", default="5m",
                   help="how often to compact etcd history (0 disables), e.g. 5m, 300s")
    p.add_argument("--default-watch-cache-size", type=int, default=10_000,
                   help="events kept per resource for watchers to resume from")
    p.add_argument("--default-not-ready-toleration-seconds", type=int, default=300)
    p.add_argument("--default-unreachable-toleration-seconds", type=int, default=300)
    p.add_argument("--service-cluster-ip-range", default="10.96.0.0/12",
                   help="CIDR from which Service ClusterIPs are allocated")
    p.add_argument("--service-node-port-range", default="30000-32767",
                   help="port range for NodePort Services")
    p.add_argument("--tls-cert-file", default="",
                   help="serving certificate (PEM); without it a self-signed one is made in "
                        "--cert-dir, as kube-apiserver does")
    p.add_argument("--tls-private-key-file", default="")
    p.add_argument("--cert-dir", default="/var/run/kubernetes",
                   help="where the self-signed serving certificate goes")
    p.add_argument("--client-ca-file", default="",
                   help="CA bundle that signs client certificates (CN = user, O = groups)")
    p.add_argument("--token-auth-file", default="",
                   help="static tokens, CSV: token,user,uid,\"group1,group2\"")
    p.add_argument("--anonymous-auth", default="true",
                   help="let unauthenticated requests reach /healthz, /livez, /readyz and "
                        "/version as system:anonymous (default true)")
    p.add_argument("--authorization-mode", default="Node,RBAC",
                   help="ordered authorizers: AlwaysAllow, AlwaysDeny, Node, RBAC")
    p.add_argument("--service-account-key-file", action="append", default=[],
                   help="PEM public (or private) key that verifies service-account tokens "
                        "(repeatable)")
    p.add_argument("--service-account-signing-key-file", default="",
                   help="PEM private key that signs service-account tokens")
    p.add_argument("--service-account-issuer", action="append", default=[],
                   help="the tokens' iss; the first one issues, all are accepted")
    p.add_argument("--api-audiences", default="",
                   help="audiences the API accepts in tokens (default: the issuer)")
    p.add_argument("--service-account-max-token-expiration", default="0",
                   help="the longest a TokenRequest may ask for (0: no cap), e.g. 48h")
    p.add_argument("--etcd-cafile", default="")
    p.add_argument("--etcd-certfile", default="")
    p.add_argument("--etcd-keyfile", default="")
    p.add_argument("--kubelet-client-certificate", default="",
                   help="client certificate the apiserver presents to kubelets")
    p.add_argument("--kubelet-client-key", default="")
    p.add_argument("--kubelet-certificate-authority", default="",
                   help="CA bundle that verifies kubelets' serving certificates (default: "
                        "the system's trusted CAs)")
    p.add_argument("--cluster-domain", default="cluster.local",
                   help="DNS domain of the cluster (for the self-signed certificate's names)")
    p.add_argument("--max-requests-inflight", type=int, default=400,
                   help="read-only requests served at once before 429 (0: no limit)")
    p.add_argument("--max-mutating-requests-inflight", type=int, default=200,
                   help="mutating requests served at once before 429 (0: no limit)")
    p.add_argument("--event-ttl", default="1h",
                   help="how long Events are kept (etcd leases), e.g. 1h, 5s")
    p.add_argument("--encryption-provider-config", default="",
                   help="EncryptionConfiguration file: how resources (secrets) are encrypted "
                        "in etcd")
    p.add_argument("--audit-policy-file", default="",
                   help="audit.k8s.io/v1 Policy: which requests are recorded, how much")
    p.add_argument("--audit-log-path", default="",
                   help="file the audit events are appended to as JSON lines ('-': stdout)")
    p.add_argument("--audit-log-maxsize", type=int, default=0,
                   help="megabytes an audit log file reaches before it is rotated (0: never)")
    p.add_argument("--audit-log-maxbackup", type=int, default=0,
                   help="rotated audit log files to keep (0: all)")
    p.add_argument("--audit-log-maxage", type=int, default=0,
                   help="days to keep rotated audit log files (0: any age)")
    p.add_argument("--public-access-cidrs", default=EVERYWHERE,
                   help="kubelite's own: source CIDRs the public endpoint accepts; other "
                        "peers are dropped before TLS (default: everyone)")
    p.add_argument("--endpoint-private-access", default="false",
                   help="kubelite's own: the listener on --advertise-address is the private "
                        "endpoint (no allowlist) rather than part of the public one")
    p.add_argument("--internal-port", type=int, default=0,
                   help="kubelite's own: also serve on 127.0.0.1:PORT, outside the "
                        "allowlist, for the control plane's own clients (0: no)")
    p.add_argument("-v", "--v", type=int, default=0, help="log verbosity")
    a = p.parse_args(argv)
    try:
        modes = parse_modes(a.authorization_mode)
        anonymous = parse_bool(a.anonymous_auth)
        private_access = parse_bool(a.endpoint_private_access)
    except (ValueError, argparse.ArgumentTypeError) as e:
        p.error(str(e))
    if bool(a.tls_cert_file) != bool(a.tls_private_key_file):
        p.error("--tls-cert-file and --tls-private-key-file go together")
    if a.service_account_signing_key_file and not a.service_account_issuer:
        p.error("--service-account-issuer is required with "
                "--service-account-signing-key-file")
    if bool(a.kubelet_client_certificate) != bool(a.kubelet_client_key):
        p.error("--kubelet-client-certificate and --kubelet-client-key go together")
    etcd_tls = (a.etcd_cafile, a.etcd_certfile, a.etcd_keyfile)
    if any(etcd_tls) and not all(etcd_tls):
        p.error("--etcd-cafile, --etcd-certfile and --etcd-keyfile go together")
    if a.encryption_provider_config:
        try:
            load_encryption_config(a.encryption_provider_config)
        except EncryptionConfigError as e:
            p.error(f"--encryption-provider-config: {e}")
    _check_audit(p, a)
    try:
        public_cidrs = parse_cidrs(a.public_access_cidrs)
    except ValueError as e:
        p.error(f"--public-access-cidrs: {e}")
    if not 0 <= a.internal_port <= 65535:
        p.error("--internal-port: must be between 0 and 65535")
    return ApiServerOptions(
        etcd_servers=[s.strip() for s in a.etcd_servers.split(",") if s.strip()],
        bind_address=a.bind_address,
        secure_port=a.secure_port,
        min_request_timeout=a.min_request_timeout,
        etcd_compaction_interval=parse_duration(a.etcd_compaction_interval),
        advertise_address=a.advertise_address or a.bind_address,
        default_watch_cache_size=max(a.default_watch_cache_size, 1),
        default_not_ready_toleration_seconds=a.default_not_ready_toleration_seconds,
        default_unreachable_toleration_seconds=a.default_unreachable_toleration_seconds,
        service_cluster_ip_range=_cidr(p, a.service_cluster_ip_range),
        service_node_port_range=_port_range(p, a.service_node_port_range),
        tls_cert_file=a.tls_cert_file,
        tls_private_key_file=a.tls_private_key_file,
        cert_dir=a.cert_dir,
        client_ca_file=a.client_ca_file,
        token_auth_file=a.token_auth_file,
        anonymous_auth=anonymous,
        authorization_mode=modes,
        service_account_key_files=a.service_account_key_file,
        service_account_signing_key_file=a.service_account_signing_key_file,
        service_account_issuer=a.service_account_issuer,
        api_audiences=[x.strip() for x in a.api_audiences.split(",") if x.strip()]
        or a.service_account_issuer[:1],
        service_account_max_token_expiration=parse_duration(
            a.service_account_max_token_expiration),
        etcd_cafile=a.etcd_cafile,
        etcd_certfile=a.etcd_certfile,
        etcd_keyfile=a.etcd_keyfile,
        cluster_domain=a.cluster_domain,
        kubelet_client_certificate=a.kubelet_client_certificate,
        kubelet_client_key=a.kubelet_client_key,
        kubelet_certificate_authority=a.kubelet_certificate_authority,
        audit_policy_file=a.audit_policy_file,
        audit_log_path=a.audit_log_path,
        audit_log_maxsize=a.audit_log_maxsize,
        audit_log_maxbackup=a.audit_log_maxbackup,
        audit_log_maxage=a.audit_log_maxage,
        encryption_provider_config=a.encryption_provider_config,
        max_requests_inflight=_non_negative(p, "--max-requests-inflight",
                                            a.max_requests_inflight),
        max_mutating_requests_inflight=_non_negative(p, "--max-mutating-requests-inflight",
                                                     a.max_mutating_requests_inflight),
        event_ttl=_event_ttl(p, a.event_ttl),
        public_access_cidrs=public_cidrs,
        endpoint_private_access=private_access,
        internal_port=a.internal_port,
    )


def _non_negative(p: argparse.ArgumentParser, flag: str, value: int) -> int:
    if value < 0:
        p.error(f"{flag}: must be 0 or more")
    return value


def _event_ttl(p: argparse.ArgumentParser, text: str) -> float:
    try:
        ttl = parse_duration(text)
    except (ValueError, argparse.ArgumentTypeError):
        p.error(f"--event-ttl: invalid duration {text!r}")
    if ttl < 1:
        # etcd leases count whole seconds; a zero TTL would keep events forever.
        p.error("--event-ttl: must be at least 1s")
    return ttl


def _check_audit(p: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    from apiserver.audit import PolicyError, load_policy  # imports the handlers: only here
    for flag in ("audit_log_maxsize", "audit_log_maxbackup", "audit_log_maxage"):
        if getattr(a, flag) < 0:
            p.error(f"--{flag.replace('_', '-')}: must be 0 or more")
    if a.audit_policy_file:
        try:
            load_policy(a.audit_policy_file)
        except PolicyError as e:
            p.error(f"--audit-policy-file: {e}")


def _cidr(p: argparse.ArgumentParser, text: str) -> str:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        p.error(f"--service-cluster-ip-range: invalid CIDR {text!r}")
    if net.num_addresses < 16:
        p.error("--service-cluster-ip-range: the range needs at least 16 addresses")
    return str(net)


def _port_range(p: argparse.ArgumentParser, text: str) -> str:
    lo, _, hi = text.partition("-")
    try:
        low, high = int(lo), int(hi or lo)
    except ValueError:
        p.error(f"--service-node-port-range: invalid range {text!r}")
    if not 1 <= low <= high <= 65535:
        p.error(f"--service-node-port-range: invalid range {text!r}")
    return f"{low}-{high}"
