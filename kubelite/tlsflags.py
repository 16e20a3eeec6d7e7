"""The TLS and identity flags each process gets from the cluster PKI (kubelite/pki.py), in
one place for `kubelite up`, the test fixtures and the benchmarks, so every way of starting
a cluster starts the same secure one."""

from __future__ import annotations

from kubelite.pki import Pki

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"


def etcd_flags(pki: Pki) -> list[str]:
    """etcd serves clients over TLS and accepts only certificates of its own CA (which
    only the apiserver's etcd client certificate carries); peers likewise."""
    return ["--cert-file", str(pki.etcd_server_cert), "--key-file", str(pki.etcd_server_key),
            "--client-cert-auth", "--trusted-ca-file", str(pki.etcd_ca_cert),
            "--peer-cert-file", str(pki.etcd_peer_cert),
            "--peer-key-file", str(pki.etcd_peer_key), "--peer-client-cert-auth",
            "--peer-trusted-ca-file", str(pki.etcd_ca_cert)]


def apiserver_flags(pki: Pki, issuer: str = DEFAULT_ISSUER) -> list[str]:
    return ["--tls-cert-file", str(pki.apiserver_cert),
            "--tls-private-key-file", str(pki.apiserver_key),
            "--client-ca-file", str(pki.ca_cert),
            "--etcd-cafile", str(pki.etcd_ca_cert),
            "--etcd-certfile", str(pki.etcd_client_cert),
            "--etcd-keyfile", str(pki.etcd_client_key),
            "--service-account-key-file", str(pki.sa_pub),
            "--service-account-signing-key-file", str(pki.sa_key),
            "--service-account-issuer", issuer,
            "--kubelet-client-certificate", str(pki.kubelet_client_cert),
            "--kubelet-client-key", str(pki.kubelet_client_key),
            "--kubelet-certificate-authority", str(pki.ca_cert)]
