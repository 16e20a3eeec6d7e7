"""Flags of the kubelet, named as upstream's."""

from __future__ import annotations

import argparse
import socket
from dataclasses import dataclass, field
from pathlib import Path

from api.durations import parse_duration
from api.flags import parse_bool
from kubelet.auth import AUTHORIZATION_MODES, AUTHZ_WEBHOOK
from kubelet.network import DEFAULT_BRIDGE

DEFAULT_RUNTIME_ENDPOINT = "unix:///var/run/kubelite/cri.sock"


@dataclass
class Options:
    node_name: str
    kubeconfig: str | None = None
    container_runtime_endpoint: str = DEFAULT_RUNTIME_ENDPOINT
    root_dir: Path = Path("/var/lib/kubelet")
    pod_logs_dir: Path | None = None
    pod_manifest_path: Path | None = None
    address: str = ""  # "": the node's IP when known, else 127.0.0.1 (never all addresses)
    port: int = 10250
    instance_type: str = "m5.large"
    zone: str = ""
    region: str = ""
    node_labels: dict[str, str] = field(default_factory=dict)
    node_ip: str = ""
    ipamd_socket: str = ""
    max_pods: int = 0  # 0: ipamd's max pods for the instance type
    vpc_bridge: str = DEFAULT_BRIDGE
    cluster_dns: list[str] = field(default_factory=list)
    cluster_domain: str = "cluster.local"
    resolv_conf: str = "/etc/resolv.conf"
    sync_frequency: float = 10.0
    file_check_frequency: float = 3.0
    docker_endpoint: str = "unix:///var/run/docker.sock"
    verbosity: int = 0
    # The server's TLS, authentication and authorization (kubelet/auth.py).
    tls_cert_file: str = ""
    tls_private_key_file: str = ""
    cert_dir: Path | None = None
    client_ca_file: str = ""
    anonymous_auth: bool = False
    authentication_token_webhook: bool | None = None  # None: on when there is a kubeconfig
    authentication_token_webhook_cache_ttl: float = 120.0
    authorization_mode: str = AUTHZ_WEBHOOK
    authorization_webhook_cache_authorized_ttl: float = 300.0
    authorization_webhook_cache_unauthorized_ttl: float = 30.0

    @property
    def logs_dir(self) -> Path:
        return self.pod_logs_dir or self.root_dir / "pod-logs"

    @property
    def pki_dir(self) -> Path:
        """Where the self-signed serving certificate goes (upstream's --cert-dir)."""
        return self.cert_dir or self.root_dir / "pki"

    @property
    def token_webhook(self) -> bool:
        if self.authentication_token_webhook is not None:
            return self.authentication_token_webhook
        return self.kubeconfig is not None

    @property
    def ipamd_socket_path(self) -> str:
        return self.ipamd_socket or f"/run/kubelite/{self.node_name}/ipamd.sock"


def _labels(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"invalid label {pair!r}: want key=value")
        out[key] = value
    return out


def parse_args(argv: list[str] | None, prog: str = "kubelite kubelet") -> Options:
    p = argparse.ArgumentParser(prog=prog, description="kubelite kubelet: the node agent "
                                "(a CRI client of the runtime service; kubelet flags)")
    p.add_argument("--kubeconfig", default=None)
    p.add_argument("--node-name", "--hostname-override", dest="node_name",
                   default=socket.gethostname().lower(), help="the Node's name")
    p.add_argument("--container-runtime-endpoint", default=DEFAULT_RUNTIME_ENDPOINT)
    p.add_argument("--root-dir", type=Path, default=Path("/var/lib/kubelet"),
                   help="pod directories (volumes, /etc/hosts, termination logs)")
    p.add_argument("--pod-logs-dir", type=Path, default=None,
                   help="container log files (default <root-dir>/pod-logs)")
    p.add_argument("--pod-manifest-path", type=Path, default=None,
                   help="directory of static pod manifests")
    p.add_argument("--file-check-frequency", type=parse_duration, default=3.0)
    p.add_argument("--address", default="",
                   help="IP the kubelet server binds (default: the node's IP when known, "
                        "else 127.0.0.1; upstream's default is 0.0.0.0)")
    p.add_argument("--port", type=int, default=10250,
                   help="the kubelet server's port (0: any free port)")
    p.add_argument("--instance-type", default="m5.large",
                   help="node.kubernetes.io/instance-type (ENI limits come from ipamd)")
    p.add_argument("--zone", default="", help="topology.kubernetes.io/zone "
                   "(default kubelite-zone-a)")
    p.add_argument("--region", default="", help="topology.kubernetes.io/region")
    p.add_argument("--node-labels", type=_labels, default={}, help="k=v,... extra labels")
    p.add_argument("--node-ip", default="", help="InternalIP (default: the primary IP of "
                   "the node's first ENI, from ipamd; 127.0.0.1 without ipamd)")
    p.add_argument("--ipamd-socket", default="",
                   help="ipamd's socket (default /run/kubelite/<node>/ipamd.sock)")
    p.add_argument("--max-pods", type=int, default=0,
                   help="capacity.pods (default: ipamd's max pods for the instance type)")
    p.add_argument("--vpc-bridge", default=DEFAULT_BRIDGE,
                   help="put the node IP on this bridge ('' to leave the host alone)")
    p.add_argument("--cluster-dns", default="", help="comma-separated DNS server IPs")
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--resolv-conf", default="/etc/resolv.conf")
    p.add_argument("--sync-frequency", type=parse_duration, default=10.0,
                   help="how often each pod is synced without a reason")
    p.add_argument("--docker-endpoint", default="unix:///var/run/docker.sock",
                   help="the dockerd the runtime uses (the kubelet server runs exec there)")
    p.add_argument("--tls-cert-file", default="",
                   help="the server's certificate (PEM); without it a self-signed one is made "
                        "in --cert-dir, as upstream's kubelet does")
    p.add_argument("--tls-private-key-file", default="")
    p.add_argument("--cert-dir", type=Path, default=None,
                   help="where the self-signed certificate goes (default <root-dir>/pki)")
    p.add_argument("--client-ca-file", default="",
                   help="CA bundle that signs client certificates (CN = user, O = groups)")
    # Upstream's default is true; kubeadm and EKS set false, and so does kubelite.
    p.add_argument("--anonymous-auth", type=parse_bool, nargs="?", const=True, default=False,
                   help="serve requests without credentials as system:anonymous (default "
                        "false)")
    p.add_argument("--authentication-token-webhook", type=parse_bool, nargs="?", const=True,
                   default=None, help="check bearer tokens with TokenReview (default: true "
                                      "when there is a --kubeconfig)")
    p.add_argument("--authentication-token-webhook-cache-ttl", type=parse_duration,
                   default=120.0)
    p.add_argument("--authorization-mode", default=AUTHZ_WEBHOOK, choices=AUTHORIZATION_MODES,
                   help="Webhook: SubjectAccessReview; AlwaysAllow: any authenticated caller")
    p.add_argument("--authorization-webhook-cache-authorized-ttl", type=parse_duration,
                   default=300.0)
    p.add_argument("--authorization-webhook-cache-unauthorized-ttl", type=parse_duration,
                   default=30.0)
    p.add_argument("-v", "--v", type=int, default=0, help="log verbosity")
    a = p.parse_args(argv)
    if not a.node_name:
        p.error("--node-name is required")
    if bool(a.tls_cert_file) != bool(a.tls_private_key_file):
        p.error("--tls-cert-file and --tls-private-key-file go together")
    if not 0 <= a.port <= 65535:
        p.error("--port must be between 0 and 65535")
    return Options(
        node_name=a.node_name, kubeconfig=a.kubeconfig,
        container_runtime_endpoint=a.container_runtime_endpoint,
        root_dir=a.root_dir.resolve(), pod_logs_dir=a.pod_logs_dir.resolve()
        if a.pod_logs_dir else None,
        pod_manifest_path=a.pod_manifest_path.resolve() if a.pod_manifest_path else None,
        address=a.address, port=a.port, instance_type=a.instance_type, zone=a.zone,
        region=a.region, node_labels=a.node_labels, node_ip=a.node_ip,
        ipamd_socket=a.ipamd_socket, max_pods=a.max_pods, vpc_bridge=a.vpc_bridge,
        cluster_dns=[s.strip() for s in a.cluster_dns.split(",") if s.strip()],
        cluster_domain=a.cluster_domain, resolv_conf=a.resolv_conf,
        sync_frequency=a.sync_frequency, file_check_frequency=a.file_check_frequency,
        docker_endpoint=a.docker_endpoint, verbosity=a.v,
        tls_cert_file=a.tls_cert_file, tls_private_key_file=a.tls_private_key_file,
        cert_dir=a.cert_dir.resolve() if a.cert_dir else None,
        client_ca_file=a.client_ca_file, anonymous_auth=a.anonymous_auth,
        authentication_token_webhook=a.authentication_token_webhook,
        authentication_token_webhook_cache_ttl=a.authentication_token_webhook_cache_ttl,
        authorization_mode=a.authorization_mode,
        authorization_webhook_cache_authorized_ttl=a.authorization_webhook_cache_authorized_ttl,
        authorization_webhook_cache_unauthorized_ttl=(
            a.authorization_webhook_cache_unauthorized_ttl))
