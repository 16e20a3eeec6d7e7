"""The DNS add-on's objects: a Deployment `kube-dns` running `kubelite dns` and the Service
`kube-dns` at the cluster DNS IP (what the kubelets' `--cluster-dns` points at).

`manifests()` builds them as API objects, so `kubelite up` can create them through the API;
`dns/manifests/kube-dns.yaml` is the same with the defaults, for `kubectl apply -f` (a unit
test keeps the two identical).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

Obj = dict[str, Any]

DEFAULT_CLUSTER_IP = "10.96.0.10"
DEFAULT_IMAGE = "kubelite/kubelite:latest"
DEFAULT_DOMAIN = "cluster.local"
HEALTH_PORT = 8080
NAMESPACE = "kube-system"
NAME = "kube-dns"
APP_LABELS = {"k8s-app": "kube-dns"}
MANIFEST = Path(__file__).with_name("manifests") / "kube-dns.yaml"


def manifests(cluster_ip: str = DEFAULT_CLUSTER_IP, image: str = DEFAULT_IMAGE, *,
              cluster_domain: str = DEFAULT_DOMAIN, replicas: int = 1,
              upstreams: list[str] | None = None) -> list[Obj]:
    """[ServiceAccount, Deployment, Service] of the add-on, in the order to create them.

    `upstreams` (IP[:port]) go to `--upstream`; by default the pod forwards to the nameservers
    of its resolv.conf, which `dnsPolicy: Default` makes the node's.
    """
    labels = {**APP_LABELS, "kubernetes.io/name": "KubeDNS"}
    command = ["kubelite", "dns", "--port", "53", "--cluster-domain", cluster_domain,
               "--health-port", str(HEALTH_PORT)]
    for upstream in upstreams or []:
        command += ["--upstream", upstream]
    deployment: Obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(APP_LABELS)},
            "template": {
                "metadata": {"labels": dict(APP_LABELS)},
                "spec": {
                    # Its own identity, with the least-privilege system:kube-dns role.
                    "serviceAccountName": NAME,
                    # The node's resolver: cluster DNS cannot use itself as its upstream.
                    "dnsPolicy": "Default",
                    "tolerations": [
                        {"key": "CriticalAddonsOnly", "operator": "Exists"},
                        {"key": "node-role.kubernetes.io/control-plane",
                         "effect": "NoSchedule"},
                    ],
                    "containers": [{
                        "name": "dns",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": command,
                        "ports": [
                            {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                            {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                            {"name": "health", "containerPort": HEALTH_PORT,
                             "protocol": "TCP"},
                        ],
                        "resources": {"requests": {"cpu": "100m", "memory": "70Mi"},
                                      "limits": {"memory": "170Mi"}},
                        "readinessProbe": {
                            "httpGet": {"path": "/ready", "port": HEALTH_PORT},
                            "periodSeconds": 2,
                        },
                        "livenessProbe": {
                            "httpGet": {"path": "/health", "port": HEALTH_PORT},
                            "initialDelaySeconds": 10,
                            "periodSeconds": 10,
                            "timeoutSeconds": 5,
                            "failureThreshold": 5,
                        },
                    }],
                },
            },
        },
    }
    service: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": NAME, "namespace": NAMESPACE,
                     "labels": {**labels, "kubernetes.io/cluster-service": "true"}},
        "spec": {
            "selector": dict(APP_LABELS),
            "clusterIP": cluster_ip,
            "ports": [
                {"name": "dns", "port": 53, "targetPort": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "targetPort": 53, "protocol": "TCP"},
            ],
        },
    }
    account: Obj = {"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": NAME, "namespace": NAMESPACE}}
    return [account, deployment, service]
