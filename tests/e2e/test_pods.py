"""Pods really running: `kubelite up --nodes 2` on real Docker, driven by real kubectl.

One cluster for the module (started by `nodes_cluster`), with its own namespace per test.
Skipped, with the reason printed, only when dockerd is not reachable. Images come from
`hack/images.sh` (run by the fixture; fast when the images exist). Every wait is bounded.
The tests run in file order and the last one restarts the whole cluster on the same data
directory.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from tests.conftest import ROOT
from tests.e2e.conftest import (
    KUBECTL,
    Cluster,
    remove_node_leftovers,
    start_cluster,
    stop_cluster_proc,
)

IMAGE = "kubelite/busybox:latest"
DOCKER_SOCKET = "/var/run/docker.sock"
T = TypeVar("T")


def docker_available() -> str | None:
    """Why the tests cannot run, or None."""
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(DOCKER_SOCKET)
    except OSError as e:
        return f"dockerd is not reachable at {DOCKER_SOCKET} ({e})"
    if KUBECTL is None:
        return "kubectl is not installed"
    return None


def dump_diagnostics(c: Cluster) -> None:
    """After a failure: what the cluster looked like, and its logs kept in /tmp."""
    keep = Path(tempfile.gettempdir()) / "kubelite-pods-last"
    shutil.rmtree(keep, ignore_errors=True)
    shutil.copytree(c.data_dir / "logs", keep, dirs_exist_ok=True)
    for args in (("get", "nodes", "-o", "wide"), ("get", "pods", "-A", "-o", "wide"),
                 ("get", "events", "-A")):
        r = c.kubectl(*args, check=False)
        print(f"$ kubectl {' '.join(args)}\n{r.stdout}{r.stderr}")
    print(f"component logs kept in {keep}")


@pytest.fixture(scope="module")
def nodes_cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    reason = docker_available()
    if reason is not None:
        print(f"\nskipping pod e2e tests: {reason}")
        pytest.skip(reason)
    subprocess.run(["bash", str(ROOT / "hack" / "images.sh")], check=True, timeout=300)
    with tempfile.TemporaryDirectory(prefix="kubelite-pods-") as d:
        data = Path(d)
        # Short cool-down and a one-ENI pool: the exhaustion test fills node-2 quickly.
        # No DNS add-on: its pod would take one of the few addresses the exhaustion test
        # counts on (tests/e2e/test_services.py covers it).
        c = start_cluster(data, "--nodes", "2", "--ipamd-arg=--ip-cooldown-period=2s",
                          "--ipamd-arg=--max-eni=1", "--no-dns")
        failed_before = request.session.testsfailed
        try:
            wait_until(lambda: nodes_ready(c), 60, "both nodes Ready")
            yield c
        finally:
            if request.session.testsfailed > failed_before:
                dump_diagnostics(c)
            stop_cluster_proc(c.proc)  # the restart test replaces c.proc
            remove_node_leftovers(c)


# --- helpers --------------------------------------------------------------------------------

def wait_until(fn: Callable[[], T | None], timeout: float, what: str,
               interval: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except AssertionError as e:
            last = e
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def docker(*args: str, check: bool = True) -> str:
    r = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60,
                       check=False)
    if check and r.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {r.stderr}")
    return r.stdout


def kjson(c: Cluster, *args: str) -> dict[str, Any]:
    return json.loads(c.kubectl(*args, "-o", "json").stdout)


def nodes_ready(c: Cluster) -> bool:
    nodes = kjson(c, "get", "nodes")["items"]
    ready = [n for n in nodes for cond in n["status"].get("conditions", [])
             if cond["type"] == "Ready" and cond["status"] == "True"]
    return len(ready) == 2


def apply(c: Cluster, ns: str, *objects: dict[str, Any]) -> None:
    c.kubectl("apply", "-n", ns, "-f", "-", input="\n---\n".join(yaml.safe_dump(o)
                                                                  for o in objects))


def get_pod(c: Cluster, ns: str, name: str) -> dict[str, Any]:
    return kjson(c, "get", "pod", "-n", ns, name)


def pods(c: Cluster, ns: str, selector: str) -> list[dict[str, Any]]:
    return list(kjson(c, "get", "pods", "-n", ns, "-l", selector)["items"])


Pred = Callable[[dict[str, Any]], bool]


def wait_pod(c: Cluster, ns: str, name: str, pred: Pred, timeout: float,
             what: str) -> dict[str, Any]:
    """The pod once `pred` holds for it."""
    def check() -> dict[str, Any] | None:
        p = get_pod(c, ns, name)
        return p if pred(p) else None
    return wait_until(check, timeout, f"{ns}/{name}: {what}")


def wait_pods(c: Cluster, ns: str, selector: str, pred: Callable[[list[dict[str, Any]]], bool],
              timeout: float, what: str) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        ps = pods(c, ns, selector)
        return ps if pred(ps) else None
    return wait_until(check, timeout, what)


def phase(p: dict[str, Any]) -> str:
    return str(p.get("status", {}).get("phase", ""))


def is_ready(p: dict[str, Any]) -> bool:
    return any(cond["type"] == "Ready" and cond["status"] == "True"
               for cond in p.get("status", {}).get("conditions", []))


def cstatus(p: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    statuses = p.get("status", {}).get("containerStatuses") or [{}]
    return next((s for s in statuses if name is None or s.get("name") == name), {})


def events(c: Cluster, ns: str, name: str) -> list[dict[str, Any]]:
    return list(kjson(c, "get", "events", "-n", ns, "--field-selector",
                      f"involvedObject.name={name}")["items"])


def pod_containers(uid: str) -> list[str]:
    return docker("ps", "-aq", "--filter", f"label=io.kubernetes.pod.uid={uid}").split()


def ipamd(c: Cluster, node: str) -> Any:
    from kubelet.network import ipamd_status
    status = asyncio.run(ipamd_status(str(c.data_dir / "nodes" / node / "ipamd.sock")))
    assert status is not None, f"ipamd of {node} does not answer"
    return status


def ipamd_assigned(c: Cluster, node: str) -> int:
    return int(ipamd(c, node).assigned_ips)


def container(name: str, command: list[str], **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": IMAGE, "command": command, **extra}


def bare_pod(name: str, *containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 2, "containers": list(containers),
                     **spec}}


HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/var/www"]


@pytest.fixture
def ns(nodes_cluster: Cluster) -> Iterator[str]:
    name = f"pods-{uuid.uuid4().hex[:6]}"
    nodes_cluster.kubectl("create", "namespace", name)
    yield name
    # Wait, so the next test starts with this one's addresses back in the pools.
    nodes_cluster.kubectl("delete", "namespace", name, "--timeout=90s", check=False,
                          timeout=100)


# --- tests ----------------------------------------------------------------------------------

def test_deployment_runs_on_both_nodes_and_pods_reach_each_other(nodes_cluster: Cluster,
                                                                  ns: str) -> None:
    c = nodes_cluster
    apply(c, ns, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                     "terminationGracePeriodSeconds": 2,
                     "affinity": {"podAntiAffinity": {
                         "requiredDuringSchedulingIgnoredDuringExecution": [{
                             "labelSelector": {"matchLabels": {"app": "web"}},
                             "topologyKey": "kubernetes.io/hostname"}]}},
                     "containers": [container("httpd", HTTPD, ports=[{"containerPort": 8080}],
                                              readinessProbe={"httpGet": {"path": "/",
                                                                          "port": 8080},
                                                              "periodSeconds": 1})]}}}})
    running = wait_pods(c, ns, "app=web", lambda ps: len(ps) == 2 and all(map(is_ready, ps)),
                        60, "2 ready web pods")
    assert {p["spec"]["nodeName"] for p in running} == {"node-1", "node-2"}
    for p in running:
        st = p["status"]
        assert st["phase"] == "Running" and st["podIP"] and st["podIP"] != st["hostIP"]
        assert st["podIPs"] == [{"ip": st["podIP"]}]
        cs = cstatus(p)
        assert cs["containerID"].startswith("docker://") and cs["imageID"].startswith("sha256:")
        assert cs["ready"] and cs["started"] and cs["restartCount"] == 0
        assert {cond["type"] for cond in st["conditions"]} >= {
            "PodScheduled", "Initialized", "ContainersReady", "Ready",
            "PodReadyToStartContainers"}
    node = kjson(c, "get", "node", running[0]["spec"]["nodeName"])
    assert running[0]["status"]["hostIP"] == next(
        a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    # Across nodes, by pod IP, without NAT: each pod fetches the other's page.
    a, b = running
    for src, dst in ((a, b), (b, a)):
        out = c.kubectl("exec", "-n", ns, src["metadata"]["name"], "--", "wget", "-qO-",
                        f"http://{dst['status']['podIP']}:8080/", timeout=30).stdout
        assert "kubelite busybox image" in out
    reasons = {e["reason"] for e in events(c, ns, a["metadata"]["name"])}
    assert {"Scheduled", "Pulling", "Created", "Started"} <= reasons

    # A container killed behind the kubelet's back is restarted (restartCount 1).
    victim = a["metadata"]["name"]
    docker("kill", cstatus(a)["containerID"].removeprefix("docker://"))
    restarted = wait_pod(c, ns, victim, lambda p: cstatus(p).get("restartCount") == 1
                         and is_ready(p), 30, "the killed container restarted")
    last = cstatus(restarted)["lastState"]["terminated"]
    assert last["exitCode"] == 137 and last["reason"] == "Error"

    # Deleting a pod stops and removes its containers and gives its address back.
    before = {n: ipamd_assigned(c, n) for n in ("node-1", "node-2")}
    c.kubectl("scale", "-n", ns, "deployment/web", "--replicas=1")
    left = wait_pods(c, ns, "app=web", lambda ps: len(ps) == 1, 60,
                     "the scaled-down pod to be deleted")
    gone = next(p for p in running if p["metadata"]["uid"] != left[0]["metadata"]["uid"])
    uid, node_name = gone["metadata"]["uid"], gone["spec"]["nodeName"]
    wait_until(lambda: not pod_containers(uid), 20, "its containers to be removed")
    wait_until(lambda: ipamd_assigned(c, node_name) < before[node_name], 20,
               "its IP to be released")


def test_probes_restart_and_gate_readiness(nodes_cluster: Cluster, ns: str) -> None:
    c = nodes_cluster
    script = "touch /tmp/alive; trap 'exit 0' TERM; while true; do sleep 1; done"
    apply(c, ns, bare_pod("probed", container(
        "main", ["sh", "-c", script],
        livenessProbe={"exec": {"command": ["test", "-f", "/tmp/alive"]},
                       "periodSeconds": 1, "failureThreshold": 2},
        readinessProbe={"exec": {"command": ["test", "-f", "/tmp/ready"]},
                        "periodSeconds": 1})))
    wait_pod(c, ns, "probed", lambda p: "running" in cstatus(p).get("state", {}), 30,
             "running")
    time.sleep(2)
    p = get_pod(c, ns, "probed")
    assert not is_ready(p) and cstatus(p)["ready"] is False
    c.kubectl("exec", "-n", ns, "probed", "--", "touch", "/tmp/ready")
    wait_until(lambda: is_ready(get_pod(c, ns, "probed")), 15, "readiness to pass")
    c.kubectl("exec", "-n", ns, "probed", "--", "rm", "/tmp/ready")
    wait_until(lambda: not is_ready(get_pod(c, ns, "probed")), 15, "readiness to fail")
    # Liveness failure: killed and started again (a new container: not ready until probed).
    c.kubectl("exec", "-n", ns, "probed", "--", "rm", "/tmp/alive")
    p = wait_pod(c, ns, "probed", lambda p: cstatus(p).get("restartCount", 0) >= 1
                 and "running" in cstatus(p)["state"], 30, "the liveness restart")
    assert cstatus(p)["lastState"]["terminated"]["exitCode"] == 0  # exited on SIGTERM
    evs = {(e["reason"], e["message"].split(":")[0]) for e in events(c, ns, "probed")}
    assert ("Unhealthy", "Liveness probe failed") in evs
    assert ("Unhealthy", "Readiness probe failed") in evs
    assert any(r == "Killing" and "failed liveness probe" in m for r, m in
               ((e["reason"], e["message"]) for e in events(c, ns, "probed")))


def test_job_succeeds_and_failing_pod_fails_with_exit_code(nodes_cluster: Cluster,
                                                          ns: str) -> None:
    c = nodes_cluster
    apply(c, ns, {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "hello"},
                  "spec": {"backoffLimit": 0, "template": {"spec": {
                      "restartPolicy": "Never",
                      "containers": [container("main", ["sh", "-c", "echo hello job"])]}}}},
          bare_pod("fails", container("main", ["sh", "-c", "exit 3"]), restartPolicy="Never"),
          bare_pod("init", container("main", ["cat", "/work/msg"],
                                     volumeMounts=[{"name": "w", "mountPath": "/work"}]),
                   restartPolicy="Never",
                   initContainers=[container("prepare", ["sh", "-c", "echo $(MSG) > /work/msg"],
                                             env=[{"name": "MSG", "value": "from init"}],
                                             volumeMounts=[{"name": "w",
                                                            "mountPath": "/work"}])],
                   volumes=[{"name": "w", "emptyDir": {}}]))
    job = wait_until(lambda: (j := kjson(c, "get", "job", "-n", ns, "hello"))
                     .get("status", {}).get("succeeded") == 1 and j, 60, "the job to succeed")
    assert any(cond["type"] == "Complete" for cond in job["status"].get("conditions", []))
    job_pod = pods(c, ns, "job-name=hello")[0]
    assert job_pod["status"]["phase"] == "Succeeded"
    assert cstatus(job_pod)["state"]["terminated"]["reason"] == "Completed"
    assert "hello job" in c.kubectl("logs", "-n", ns, job_pod["metadata"]["name"]).stdout
    failed = wait_pod(c, ns, "fails", lambda p: phase(p) == "Failed", 60, "Failed")
    term = cstatus(failed)["state"]["terminated"]
    assert term["exitCode"] == 3 and term["reason"] == "Error"
    assert cstatus(failed)["restartCount"] == 0
    done = wait_pod(c, ns, "init", lambda p: phase(p) == "Succeeded", 60, "Succeeded")
    assert done["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert "from init" in c.kubectl("logs", "-n", ns, "init", "-c", "main").stdout
    # A finished pod's sandbox is stopped: its address is back in the pool.
    uid = failed["metadata"]["uid"]
    sandbox = docker("ps", "-aq", "--filter", f"label=io.kubernetes.pod.uid={uid}",
                     "--filter", "label=io.kubernetes.container.name=POD").split()
    assert sandbox and "false" in docker("inspect", "-f", "{{.State.Running}}", sandbox[0])


def test_pool_exhaustion_keeps_pod_container_creating(nodes_cluster: Cluster,
                                                      ns: str) -> None:
    """node-2's ipamd may attach one m5.large ENI (9 addresses): the tenth pod waits."""
    c = nodes_cluster
    pool = ipamd(c, "node-2")
    assert len(pool.enis) == 1
    count = pool.total_ips - pool.assigned_ips + 1
    # Bare pods, not a Deployment: a deleted pod must not come back to compete for the
    # address it frees.
    for i in range(count):
        apply(c, ns, {"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": f"fill-{i}", "labels": {"app": "fill"}},
                      "spec": {"nodeSelector": {"kubernetes.io/hostname": "node-2"},
                               "terminationGracePeriodSeconds": 1,
                               "containers": [container("main", ["sleep", "3600"])]}})

    def settled() -> list[dict[str, Any]] | None:
        ps = pods(c, ns, "app=fill")
        running = [p for p in ps if p["status"].get("phase") == "Running"]
        return ps if len(ps) == count and len(running) == count - 1 else None

    ps = wait_until(settled, 60, f"{count - 1} of {count} fill pods running")
    waiting = next(p for p in ps if p["status"].get("phase") != "Running")
    assert cstatus(waiting).get("state", {}).get("waiting", {}).get("reason") == \
        "ContainerCreating"
    name = waiting["metadata"]["name"]
    ev = wait_until(lambda: [e for e in events(c, ns, name)
                             if e["reason"] == "FailedCreatePodSandBox"], 20,
                    "a FailedCreatePodSandBox event")
    assert "failed to assign an IP address to container" in ev[0]["message"]
    assert ev[0]["type"] == "Warning"
    # Freeing an address (after ipamd's cool-down) lets the waiting pod start.
    c.kubectl("delete", "-n", ns, "pod",
              next(p for p in ps if p["status"].get("phase") == "Running")["metadata"]["name"],
              "--wait=false")
    wait_pod(c, ns, name, lambda p: phase(p) == "Running", 60, "an address, at last")
    c.kubectl("delete", "-n", ns, "pod", "-l", "app=fill", "--wait=false")


def test_static_pod_with_mirror_pod(nodes_cluster: Cluster) -> None:
    c = nodes_cluster
    manifests = c.data_dir / "nodes" / "node-1" / "manifests"
    manifest = manifests / "static-web.yaml"
    manifest.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "static-web", "namespace": "kube-system",
                     "labels": {"tier": "static"}},
        "spec": {"terminationGracePeriodSeconds": 1,
                 "containers": [container("web", HTTPD, imagePullPolicy="IfNotPresent")]}}))
    name = "static-web-node-1"
    mirror = wait_pod(c, "kube-system", name, lambda p: phase(p) == "Running" and is_ready(p),
                      30, "the mirror pod to show Running")
    md = mirror["metadata"]
    assert md["annotations"]["kubernetes.io/config.mirror"] == \
        md["annotations"]["kubernetes.io/config.hash"]
    assert md["annotations"]["kubernetes.io/config.source"] == "file"
    assert md["ownerReferences"][0]["kind"] == "Node"
    assert md["ownerReferences"][0]["name"] == "node-1"
    static_uid = md["annotations"]["kubernetes.io/config.hash"]
    assert pod_containers(static_uid)  # the containers belong to the static pod's UID
    # Deleting the mirror pod does not stop the static pod; the mirror comes back.
    c.kubectl("delete", "pod", "-n", "kube-system", name, "--wait=false")
    again = wait_pod(c, "kube-system", name, lambda p: p["metadata"]["uid"] != md["uid"]
                     and phase(p) == "Running", 30, "a new mirror pod")
    assert cstatus(again)["restartCount"] == 0
    # Removing the manifest removes the pod, its mirror and its containers.
    manifest.unlink()
    wait_until(lambda: c.kubectl("get", "pod", "-n", "kube-system", name,
                                 check=False).returncode != 0, 30, "the mirror pod to go")
    wait_until(lambda: not pod_containers(static_uid), 30, "static containers removed")


def test_run_interactive_and_attach(nodes_cluster: Cluster, ns: str) -> None:
    """`kubectl run -i --rm` (attach with stdin, stdinOnce) and `kubectl attach` (the
    container's own output until it exits), through the apiserver and the kubelet."""
    c = nodes_cluster
    run = c.kubectl("run", "asker", "-n", ns, f"--image={IMAGE}", "--restart=Never",
                    "--image-pull-policy=IfNotPresent", "-i", "--rm", "--",
                    "sh", "-c", "read line; echo got:$line", input="hello\n", timeout=90)
    assert "got:hello" in run.stdout, run
    wait_until(lambda: c.kubectl("get", "pod", "-n", ns, "asker", check=False).returncode != 0,
               30, "the --rm pod to be deleted")

    apply(c, ns, bare_pod("ticker", container("c", [
        "sh", "-c", "sleep 1; for i in $(seq 1 15); do echo tick $i; sleep 0.2; done"])))
    wait_pod(c, ns, "ticker", lambda p: phase(p) == "Running", 60, "Running")
    attached = c.kubectl("attach", "-n", ns, "ticker", timeout=60)
    assert attached.returncode == 0, attached
    assert "tick 15" in attached.stdout, attached


def test_kubectl_debug_runs_an_ephemeral_container(nodes_cluster: Cluster, ns: str) -> None:
    """`kubectl debug`: an ephemeral container added to a running pod through
    pods/ephemeralcontainers, started by the kubelet, attached to, reported, not restarted."""
    c = nodes_cluster
    apply(c, ns, bare_pod("target", container("c", ["sleep", "3600"])))
    wait_pod(c, ns, "target", lambda p: phase(p) == "Running", 60, "Running")
    out = c.kubectl("debug", "-n", ns, "target", "-i", f"--image={IMAGE}",
                    "--image-pull-policy=IfNotPresent", "-c", "dbg", "--target=c", "--",
                    "sh", "-c", "echo debugging $(hostname); ps", input="", timeout=90)
    assert "debugging target" in out.stdout, out
    # --target: the debug container sees the target container's processes.
    assert "sleep 3600" in out.stdout, out

    def finished(p: dict[str, Any]) -> bool:
        statuses = p["status"].get("ephemeralContainerStatuses") or []
        return any(s["name"] == "dbg" and "terminated" in s.get("state", {}) for s in statuses)
    done = wait_pod(c, ns, "target", finished, 30, "the debug container to finish")
    [dbg] = done["status"]["ephemeralContainerStatuses"]
    assert dbg["state"]["terminated"]["exitCode"] == 0 and dbg["restartCount"] == 0
    assert phase(done) == "Running" and cstatus(done, "c")["restartCount"] == 0
    assert [e["name"] for e in done["spec"]["ephemeralContainers"]] == ["dbg"]


def test_official_client_exec(nodes_cluster: Cluster, ns: str) -> None:
    """The official Python client's exec (v4 channels; its str stdin goes in text frames)."""
    from kubernetes import client, config
    from kubernetes.stream import stream

    c = nodes_cluster
    apply(c, ns, bare_pod("shell", container("c", ["sleep", "3600"])))
    wait_pod(c, ns, "shell", lambda p: phase(p) == "Running", 60, "Running")
    api = client.CoreV1Api(config.new_client_from_config(str(c.kubeconfig)))
    out = stream(api.connect_get_namespaced_pod_exec, "shell", ns,
                 command=["sh", "-c", "echo out; hostname"], stderr=True, stdin=False,
                 stdout=True, tty=False)
    assert out == "out\nshell\n"
    session = stream(api.connect_get_namespaced_pod_exec, "shell", ns, command=["cat"],
                     stderr=True, stdin=True, stdout=True, tty=False, _preload_content=False)
    try:
        session.write_stdin("ping\n")
        echoed = ""
        deadline = time.monotonic() + 10
        while "ping" not in echoed and time.monotonic() < deadline:
            session.update(timeout=1)
            if session.peek_stdout():
                echoed += session.read_stdout()
    finally:
        session.close()
    assert echoed == "ping\n"


IN_CLUSTER = """
from kubernetes import client, config
config.load_incluster_config()
api = client.CoreV1Api()
print("pods:", sorted(p.metadata.name for p in api.list_namespaced_pod(NS).items))
try:
    api.list_namespaced_secret(NS)
except client.ApiException as e:
    print("secrets:", e.status)
"""


def test_official_client_in_cluster_config(nodes_cluster: Cluster, ns: str) -> None:
    """A pod's program with the official client's load_incluster_config() and nothing else:
    the kubelet mounted a bound token, ca.crt and namespace, and set KUBERNETES_SERVICE_*;
    RBAC lets its service account read pods, not secrets."""
    import site

    c = nodes_cluster
    c.kubectl("create", "serviceaccount", "reader", "-n", ns)
    c.kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", ns)
    c.kubectl("create", "rolebinding", "reader", "--role=pod-reader",
              f"--serviceaccount={ns}:reader", "-n", ns)
    # The image carries no official client: its site-packages (same CPython) come from
    # this machine's venv, read-only, with the few C libraries its extensions load that the
    # image leaves out.
    site_packages = next(p for p in site.getsitepackages() if Path(p, "kubernetes").is_dir())
    libs = [lib for lib in ("libdl.so.2", "libpthread.so.0", "libgcc_s.so.1", "librt.so.1")
            if Path("/lib/x86_64-linux-gnu", lib).exists()]
    mounts = [{"name": "extra", "mountPath": "/extra", "readOnly": True}] + [
        {"name": f"lib{i}", "mountPath": f"/lib/x86_64-linux-gnu/{lib}", "readOnly": True}
        for i, lib in enumerate(libs)]
    volumes = [{"name": "extra", "hostPath": {"path": site_packages}}] + [
        {"name": f"lib{i}", "hostPath": {"path": f"/lib/x86_64-linux-gnu/{lib}",
                                         "type": "File"}} for i, lib in enumerate(libs)]
    script = IN_CLUSTER.replace("NS", repr(ns))
    pod = bare_pod("incluster", container(
        "c", ["python", "-c", script], image="kubelite/kubelite:latest",
        imagePullPolicy="IfNotPresent", env=[{"name": "PYTHONPATH", "value": "/app:/extra"}],
        volumeMounts=mounts), serviceAccountName="reader", restartPolicy="Never",
        volumes=volumes)
    apply(c, ns, pod)
    wait_pod(c, ns, "incluster", lambda p: phase(p) in ("Succeeded", "Failed"), 90,
             "the in-cluster program finished")
    logs = c.kubectl("logs", "incluster", "-n", ns).stdout
    assert "pods: ['incluster']" in logs, logs
    assert "secrets: 403" in logs, logs
    mounted = get_pod(c, ns, "incluster")["spec"]["volumes"]
    assert any(v["name"].startswith("kube-api-access-") for v in mounted)


def test_port_forward(nodes_cluster: Cluster, ns: str) -> None:
    """pods/portforward in the WebSocket protocol with the official Python client; kubectl's
    SPDY-only port-forward gets a clear refusal rather than a hang."""
    from kubernetes import client, config
    from kubernetes.stream import portforward

    c = nodes_cluster
    apply(c, ns, bare_pod("server", container("httpd", HTTPD)))
    wait_pod(c, ns, "server", lambda p: phase(p) == "Running", 60, "Running")
    api = client.CoreV1Api(config.new_client_from_config(str(c.kubeconfig)))

    def fetch() -> bytes | None:
        pf = portforward(api.connect_get_namespaced_pod_portforward, "server", ns,
                         ports="8080")
        sock = pf.socket(8080)
        sock.setblocking(True)
        sock.settimeout(10)
        sock.sendall(b"GET / HTTP/1.0\r\nHost: server\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
        sock.close()
        return data or None

    reply = wait_until(fetch, 20, "an answer through the port-forward")
    assert reply.startswith(b"HTTP/1.") and b"kubelite busybox image" in reply, reply
    refused = c.kubectl("port-forward", "-n", ns, "server", "0:8080", check=False, timeout=30)
    assert refused.returncode != 0
    assert "forwards ports over WebSocket (v4.channel.k8s.io) only, not SPDY" in refused.stderr


def test_whole_restart_readopts_running_containers(nodes_cluster: Cluster, ns: str) -> None:
    c = nodes_cluster
    apply(c, ns, bare_pod("survivor", container("main", HTTPD), terminationGracePeriodSeconds=1))
    before = wait_pod(c, ns, "survivor", is_ready, 30, "ready")
    container_id = cstatus(before)["containerID"]
    c.proc.send_signal(15)
    assert stop_cluster_proc(c.proc) == 0
    # The kubelets are gone; their containers are not.
    running = docker("inspect", "-f", "{{.State.Running}}", container_id.removeprefix(
        "docker://"))
    assert running.strip() == "true"
    restarted = start_cluster(c.data_dir, "--nodes", "2", "--ipamd-arg=--ip-cooldown-period=2s",
                              "--ipamd-arg=--max-eni=1", "--no-dns")
    c.proc, c.server, c.output = restarted.proc, restarted.server, restarted.output
    wait_until(lambda: nodes_ready(c), 60, "nodes Ready after the restart")
    # Re-adopted: the same container, not restarted, still ready, the same IP.
    after = wait_pod(c, ns, "survivor", is_ready, 30, "ready again")
    assert cstatus(after)["containerID"] == container_id
    assert cstatus(after)["restartCount"] == 0
    assert after["status"]["podIP"] == before["status"]["podIP"]
    # And the kubelet still acts on it: deleting it cleans up.
    uid = after["metadata"]["uid"]
    c.kubectl("delete", "pod", "-n", ns, "survivor", "--timeout=60s")
    wait_until(lambda: not pod_containers(uid), 20, "survivor's containers removed")
