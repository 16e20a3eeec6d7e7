"""Services end to end: `kubelite up --nodes 2` with kube-proxy (iptables) and the DNS add-on
on real Docker, driven by real kubectl; traffic goes from inside pods (busybox wget and
nslookup) and from the host to a node address on the VPC bridge.

One cluster for the module; each test has its own namespace. The last test stops the
cluster and checks that kube-proxy took its iptables rules away. Skipped, with the reason
printed, only when dockerd or kubectl is missing. Every wait is bounded.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import Cluster, remove_node_leftovers, start_cluster, stop_cluster_proc
from tests.e2e.test_pods import (
    apply,
    bare_pod,
    container,
    docker_available,
    dump_diagnostics,
    is_ready,
    kjson,
    nodes_ready,
    wait_pods,
    wait_until,
)

DNS_IP = "10.96.0.10"
# Every web pod serves its own name, so a reply says which endpoint answered.
WEB = ["sh", "-c", ("mkdir -p /tmp/www && hostname > /tmp/www/index.html && "
       "exec httpd -f -p 8080 -h /tmp/www")]


@pytest.fixture(scope="module")
def svc_cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    reason = docker_available()
    if reason is not None:
        print(f"\nskipping service e2e tests: {reason}")
        pytest.skip(reason)
    subprocess.run(["bash", str(ROOT / "hack" / "images.sh")], check=True, timeout=600)
    with tempfile.TemporaryDirectory(prefix="kubelite-svc-") as d:
        c = start_cluster(Path(d), "--nodes", "2")
        failed_before = request.session.testsfailed
        try:
            wait_until(lambda: nodes_ready(c), 60, "both nodes Ready")
            wait_pods(c, "kube-system", "k8s-app=kube-dns",
                      lambda ps: bool(ps) and all(map(is_ready, ps)), 120,
                      "the cluster DNS pod to be ready")
            yield c
        finally:
            if request.session.testsfailed > failed_before:
                dump_diagnostics(c)
            stop_cluster_proc(c.proc)
            remove_node_leftovers(c)


@pytest.fixture
def ns(svc_cluster: Cluster) -> Iterator[str]:
    name = f"svc-{uuid.uuid4().hex[:6]}"
    svc_cluster.kubectl("create", "namespace", name)
    yield name
    svc_cluster.kubectl("delete", "namespace", name, "--timeout=90s", check=False, timeout=100)


def web_deployment(replicas: int, **pod_spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                         "terminationGracePeriodSeconds": 1,
                         "containers": [container("httpd", WEB, ports=[
                             {"name": "http", "containerPort": 8080}],
                             readinessProbe={"httpGet": {"path": "/", "port": 8080},
                                             "periodSeconds": 1})],
                         **pod_spec}}}}


def service(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": "web"},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}], **spec}}


def client_pod() -> dict[str, Any]:
    return bare_pod("client", container("sh", ["sleep", "3600"]))


def in_pod(c: Cluster, ns: str, script: str, pod: str = "client", check: bool = True
           ) -> subprocess.CompletedProcess[str]:
    return c.kubectl("exec", "-n", ns, pod, "--", "sh", "-c", script, check=check, timeout=60)


def fetch_many(c: Cluster, ns: str, url: str, count: int) -> list[str]:
    """`count` GETs from the client pod, one connection each; the answering pods' names
    (failed requests show as empty strings). `timeout`, because busybox 1.35's `wget -T`
    crashes (SIGSEGV) in Debian's static build."""
    out = in_pod(c, ns, f"for i in $(seq {count}); do timeout 3 wget -qO- {url} || echo; done").stdout
    return [line.strip() for line in out.splitlines()]


def ready_web_pods(c: Cluster, ns: str, count: int) -> list[dict[str, Any]]:
    return wait_pods(c, ns, "app=web", lambda ps: len(ps) == count and all(map(is_ready, ps)),
                     90, f"{count} ready web pods")


def wait_client(c: Cluster, ns: str) -> None:
    wait_until(lambda: is_ready(kjson(c, "get", "pod", "-n", ns, "client")), 60,
               "the client pod to be ready")


def test_clusterip_by_ip_fqdn_and_short_name_spreads_and_follows_scaling(
        svc_cluster: Cluster, ns: str) -> None:
    c = svc_cluster
    apply(c, ns, web_deployment(3), service("web"), client_pod())
    names = {p["metadata"]["name"] for p in ready_web_pods(c, ns, 3)}
    wait_client(c, ns)
    svc = kjson(c, "get", "service", "-n", ns, "web")
    ip = svc["spec"]["clusterIP"]
    assert ip.startswith("10.")
    # The pod's resolv.conf points at the cluster DNS with the Kubernetes search path.
    resolv = in_pod(c, ns, "cat /etc/resolv.conf").stdout
    assert f"nameserver {DNS_IP}" in resolv
    assert f"search {ns}.svc.cluster.local svc.cluster.local cluster.local" in resolv
    for url in (f"http://{ip}/", f"http://web.{ns}.svc.cluster.local/", "http://web/"):
        answers = wait_until(lambda url=url: [a for a in fetch_many(c, ns, url, 1) if a], 20,
                             f"an answer from {url}")
        assert answers[0] in names, (url, answers)
    # Connections spread over the replicas (all 30 on one of 3 would be (1/3)^29).
    answers = fetch_many(c, ns, f"http://{ip}/", 30)
    assert set(answers) <= names and len(set(answers)) >= 2, answers

    # Scaling down takes the removed endpoints off the data path.
    c.kubectl("scale", "-n", ns, "deployment/web", "--replicas=1")
    left = {p["metadata"]["name"] for p in wait_pods(
        c, ns, "app=web", lambda ps: len(ps) == 1 and is_ready(ps[0]), 60, "one web pod")}
    wait_until(lambda: set(fetch_many(c, ns, f"http://{ip}/", 10)) == left, 20,
               "traffic to reach only the remaining pod")


def test_not_ready_pod_gets_no_traffic(svc_cluster: Cluster, ns: str) -> None:
    c = svc_cluster
    gated = container("httpd", WEB, ports=[{"name": "http", "containerPort": 8080}],
                      readinessProbe={"exec": {"command": ["test", "-f", "/tmp/ready"]},
                                      "periodSeconds": 1})
    apply(c, ns, web_deployment(1), service("web"), client_pod(),
          {**bare_pod("gated", gated), "metadata": {"name": "gated", "labels": {"app": "web"}}})
    ready_names = wait_pods(c, ns, "app=web", lambda ps: len(ps) == 2 and any(map(is_ready, ps)),
                            90, "the web pods")
    wait_client(c, ns)
    ip = kjson(c, "get", "service", "-n", ns, "web")["spec"]["clusterIP"]
    web = next(p["metadata"]["name"] for p in ready_names if p["metadata"]["name"] != "gated")
    wait_until(lambda: set(fetch_many(c, ns, f"http://{ip}/", 1)) == {web}, 20,
               "the ready pod to answer")
    answers = fetch_many(c, ns, f"http://{ip}/", 20)
    assert set(answers) == {web}, answers
    # Once ready, it gets its share.
    in_pod(c, ns, "touch /tmp/ready", pod="gated")
    wait_until(lambda: "gated" in fetch_many(c, ns, f"http://{ip}/", 10), 20,
               "the pod that became ready to get traffic")


def test_nodeport_answers_from_the_host(svc_cluster: Cluster, ns: str) -> None:
    c = svc_cluster
    apply(c, ns, web_deployment(1), service("web", type="NodePort"))
    names = {p["metadata"]["name"] for p in ready_web_pods(c, ns, 1)}
    port = kjson(c, "get", "service", "-n", ns, "web")["spec"]["ports"][0]["nodePort"]
    assert 30000 <= port <= 32767

    def get(ip: str) -> str | None:
        try:
            with urllib.request.urlopen(f"http://{ip}:{port}/", timeout=3) as resp:
                return resp.read().decode().strip()
        except OSError:
            return None

    for node in ("node-1", "node-2"):
        addresses = kjson(c, "get", "node", node)["status"]["addresses"]
        node_ip = next(a["address"] for a in addresses if a["type"] == "InternalIP")
        assert wait_until(lambda ip=node_ip: get(ip), 20,
                          f"NodePort {port} on {node} ({node_ip})") in names
    # And on localhost, as upstream's iptables mode (route_localnet).
    assert wait_until(lambda: get("127.0.0.1"), 20, f"NodePort {port} on 127.0.0.1") in names


def test_apiserver_proxies_to_pods_and_services(svc_cluster: Cluster, ns: str) -> None:
    """pods/proxy and services/proxy (what `kubectl proxy` users open): through the
    apiserver to a pod's port, or to a ready endpoint of a Service's port."""
    c = svc_cluster
    apply(c, ns, web_deployment(2), service("web"),
          {**service("empty"), "spec": {"selector": {"app": "nothing"},
                                        "ports": [{"port": 80}]}})
    names = {p["metadata"]["name"] for p in ready_web_pods(c, ns, 2)}
    base = f"{c.server}/api/v1/namespaces/{ns}"

    def get(path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(base + path, timeout=10, context=c.tls()) as resp:
                return resp.status, resp.read().decode().strip()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def ok(path: str) -> str | None:
        code, body = get(path)
        return body if code == 200 else None

    for path in ("/services/web:http/proxy/", "/services/web/proxy/index.html",
                 "/services/http:web:80/proxy/"):
        body = wait_until(lambda path=path: ok(path), 20, f"an answer through {path}")
        assert body in names, (path, body)
    pod = min(names)
    assert get(f"/pods/{pod}:8080/proxy/") == (200, pod)
    assert get(f"/pods/{pod}:http/proxy/") == (200, pod)  # a named container port
    code, body = get("/services/empty/proxy/")
    assert code == 503 and 'no endpoints available for service \\"empty\\"' in body, body
    # kubectl reaches it too.
    out = c.kubectl("get", "--raw", f"/api/v1/namespaces/{ns}/services/web:http/proxy/")
    assert out.stdout.strip() in names


def nslookup_addresses(text: str) -> set[str]:
    """The IPv4 answers of busybox nslookup (after the server's own address lines)."""
    _, _, answers = text.partition("Name:")
    return set(re.findall(r"Address(?: \d+)?:\s*(\d+\.\d+\.\d+\.\d+)\b", answers))


def test_dns_headless_pod_records_and_nxdomain(svc_cluster: Cluster, ns: str) -> None:
    c = svc_cluster
    apply(c, ns, web_deployment(2), service("web"), service("web-headless", clusterIP="None"),
          client_pod())
    running = ready_web_pods(c, ns, 2)
    wait_client(c, ns)
    pod_ips = {p["status"]["podIP"] for p in running}
    ip = kjson(c, "get", "service", "-n", ns, "web")["spec"]["clusterIP"]

    last: dict[str, str] = {}

    def lookup(name: str) -> set[str]:
        r = in_pod(c, ns, f"nslookup {name} {DNS_IP}", check=False)
        last[name] = f"rc={r.returncode} {r.stdout!r} {r.stderr!r}"
        return nslookup_addresses(r.stdout) if r.returncode == 0 else set()

    def answers(name: str, expected: set[str]) -> bool:
        assert lookup(name) == expected, last[name]
        return True

    wait_until(lambda: answers(f"web.{ns}.svc.cluster.local", {ip}), 20,
               "the ClusterIP Service's A record")
    wait_until(lambda: answers(f"web-headless.{ns}.svc.cluster.local", pod_ips), 20,
               "the headless Service's pod addresses")
    a_pod_ip = min(pod_ips)
    assert lookup(f"{a_pod_ip.replace('.', '-')}.{ns}.pod.cluster.local") == {a_pod_ip}
    missing = in_pod(c, ns, f"nslookup nope.{ns}.svc.cluster.local {DNS_IP}", check=False)
    assert missing.returncode != 0
    assert "NXDOMAIN" in missing.stdout + missing.stderr


def kube_chains() -> list[str]:
    out = subprocess.run(["iptables", "-w", "5", "-t", "nat", "-S"], capture_output=True,
                         text=True, check=False, timeout=30).stdout
    return [line for line in out.splitlines() if "KUBE-" in line]


def test_kube_proxy_rules_exist_and_go_away_on_stop(svc_cluster: Cluster, ns: str) -> None:
    c = svc_cluster
    apply(c, ns, web_deployment(1), service("web"))
    ready_web_pods(c, ns, 1)
    ip = kjson(c, "get", "service", "-n", ns, "web")["spec"]["clusterIP"]
    rules = wait_until(lambda: [r for r in kube_chains() if ip in r], 20,
                       f"a KUBE-SERVICES rule for {ip}")
    assert any(r.startswith("-A KUBE-SERVICES") and "KUBE-SVC-" in r for r in rules), rules
    chains = "\n".join(kube_chains())
    for name in ("-N KUBE-SERVICES", "-N KUBE-NODEPORTS", "-N KUBE-POSTROUTING", "KUBE-SEP-"):
        assert name in chains, name
    # The last test: stop the cluster; the kube-proxies take their rules with them.
    assert stop_cluster_proc(c.proc) == 0
    assert kube_chains() == []
