"""Real kubectl (1.32) against a whole `kubelite up` cluster, as a user drives it.

Every test works in a namespace of its own, so the tests stay independent of each other and of
their order. There is no scheduler or kubelet in the cluster yet: bare pods stay Pending.

Objects a test merely needs (not the ones it is about) are created with `--validate=false`, so
that a test of, say, `kubectl label` does not also depend on the OpenAPI document; the tests of
apply/create/replace use kubectl's default (strict) validation, as a user would.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import KUBECTL, Cluster

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


# ---------------------------------------------------------------------------------------------
# helpers


@pytest.fixture
def ns(cluster: Cluster, request: pytest.FixtureRequest) -> str:
    """A fresh namespace for one test, created with kubectl from a JSON manifest (the
    `kubectl create namespace` generator sends protobuf; it has a test of its own)."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower().removeprefix("test_"))
    name = f"{slug[:40].strip('-')}-{uuid.uuid4().hex[:6]}"
    manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    out = cluster.kubectl("create", "--validate=false", "-f", "-", input=json.dumps(manifest))
    assert out.stdout.strip() == f"namespace/{name} created"
    return name


def create_objects(cluster: Cluster, ns: str, *objects: dict[str, Any]) -> None:
    """Create objects a test needs (as JSON through `kubectl create -f -`)."""
    for obj in objects:
        obj.setdefault("metadata", {})["namespace"] = ns
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})
    cluster.kubectl("create", "--validate=false", "-f", "-", input=body)


def get_json(cluster: Cluster, ns: str | None, *what: str) -> dict[str, Any]:
    args = [*what, "-o", "json"] + (["-n", ns] if ns else [])
    return json.loads(cluster.kubectl("get", *args).stdout)


def configmap(name: str, data: dict[str, str] | None = None,
              labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {}}


def pod(name: str, labels: dict[str, str] | None = None, image: str = "nginx:1.25") -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [{"name": "main", "image": image}]}}


def deployment(name: str, replicas: int = 2, image: str = "nginx:1.25") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [
                    {"name": "web", "image": image, "ports": [{"containerPort": 80}]},
                    {"name": "sidecar", "image": "busybox:1.36", "command": ["sleep", "3600"]},
                ]},
            },
        },
    }


def table(text: str) -> list[dict[str, str]]:
    """Parse kubectl's human table output into rows keyed by header.

    Columns are found from the header line: kubectl separates them by at least three spaces,
    while a header may itself hold one space ("NOMINATED NODE")."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, f"no table in output: {text!r}"
    spans = [(m.group(0), m.start()) for m in re.finditer(r"\S+(?: \S+)*", lines[0])]
    rows = []
    for line in lines[1:]:
        row = {}
        for i, (name, start) in enumerate(spans):
            end = spans[i + 1][1] if i + 1 < len(spans) else len(line)
            row[name] = line[start:end].strip()
        rows.append(row)
    return rows


def has_line(pattern: str, text: str) -> re.Match[str] | None:
    """A line of text that matches pattern (anchored with ^ and $ per line)."""
    return re.search(pattern, text, re.MULTILINE)


def headers(text: str) -> list[str]:
    return re.findall(r"\S+(?: \S+)*", text.splitlines()[0])


class Watcher:
    """`kubectl ... -w` in the background, its stdout lines collected by a thread."""

    def __init__(self, cluster: Cluster, *args: str) -> None:
        assert KUBECTL is not None
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
        self.proc = subprocess.Popen([KUBECTL, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 10) -> str:
        """The first line not yet returned that matches; fails after timeout."""
        deadline = time.monotonic() + timeout
        # Each line is offered to the predicate once (it may keep state).
        for i, line in enumerate(self.lines):
            if predicate(line):
                del self.lines[i]
                return line
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                got = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if got is None:
                break
            if predicate(got):
                return got
            self.lines.append(got)
        raise AssertionError(f"no matching watch line within {timeout}s; unmatched lines: "
                             f"{self.lines}; stderr so far: {self.stop()}")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            _, err = self.proc.communicate(timeout=5)
        except (ValueError, subprocess.TimeoutExpired):
            err = ""
        return err or ""


@pytest.fixture
def watch(cluster: Cluster) -> Iterator[Callable[..., Watcher]]:
    started: list[Watcher] = []

    def start(*args: str) -> Watcher:
        w = Watcher(cluster, *args)
        started.append(w)
        return w

    try:
        yield start
    finally:
        for w in started:
            w.stop()


# ---------------------------------------------------------------------------------------------
# version and discovery


def test_version_reports_server_v1_32(cluster: Cluster) -> None:
    human = cluster.kubectl("version").stdout
    assert has_line(r"^Server Version: v1\.32\.\d+", human), human

    info = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    server = info["serverVersion"]
    assert server["major"] == "1" and server["minor"] == "32"
    assert server["gitVersion"].startswith("v1.32.")
    # A server within one minor version of the client: kubectl gives no skew warning.
    assert "WARNING" not in cluster.kubectl("version").stderr


def test_api_resources_lists_short_names_and_scopes(cluster: Cluster) -> None:
    out = cluster.kubectl("api-resources").stdout
    assert headers(out) == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    rows = {(r["NAME"], r["APIVERSION"]): r for r in table(out)}
    expected = {
        ("pods", "v1"): ("po", "true", "Pod"),
        ("services", "v1"): ("svc", "true", "Service"),
        ("deployments", "apps/v1"): ("deploy", "true", "Deployment"),
        ("replicasets", "apps/v1"): ("rs", "true", "ReplicaSet"),
        ("daemonsets", "apps/v1"): ("ds", "true", "DaemonSet"),
        ("namespaces", "v1"): ("ns", "false", "Namespace"),
        ("nodes", "v1"): ("no", "false", "Node"),
        ("configmaps", "v1"): ("cm", "true", "ConfigMap"),
        ("endpoints", "v1"): ("ep", "true", "Endpoints"),
        ("serviceaccounts", "v1"): ("sa", "true", "ServiceAccount"),
        ("events", "v1"): ("ev", "true", "Event"),
        ("secrets", "v1"): ("", "true", "Secret"),
    }
    for key, (short, namespaced, kind) in expected.items():
        assert key in rows, f"{key} missing from api-resources:\n{out}"
        row = rows[key]
        assert (row["SHORTNAMES"], row["NAMESPACED"], row["KIND"]) == (short, namespaced, kind)

    wide = table(cluster.kubectl("api-resources", "-o", "wide").stdout)
    pods = next(r for r in wide if r["NAME"] == "pods")
    assert pods["VERBS"].split(",") == ["create", "delete", "deletecollection", "get", "list",
                                        "patch", "update", "watch"]
    assert "all" in pods["CATEGORIES"].split(",")

    apps = table(cluster.kubectl("api-resources", "--api-group=apps").stdout)
    assert {r["NAME"] for r in apps} >= {"deployments", "replicasets", "daemonsets"}
    assert {r["APIVERSION"] for r in apps} == {"apps/v1"}

    cluster_scoped = cluster.kubectl("api-resources", "--namespaced=false", "-o", "name")
    names = cluster_scoped.stdout.split()
    assert "namespaces" in names and "nodes" in names and "pods" not in names


def test_short_names_resolve(cluster: Cluster, ns: str) -> None:
    create_objects(cluster, ns, configmap("c1"), deployment("d1"))
    assert cluster.kubectl("get", "cm", "-n", ns, "-o", "name").stdout.split() == \
        ["configmap/c1"]
    assert cluster.kubectl("get", "deploy", "-n", ns, "-o", "name").stdout.split() == \
        ["deployment.apps/d1"]
    assert cluster.kubectl("get", "ns", ns, "-o", "name").stdout.strip() == f"namespace/{ns}"


def test_get_all_shows_pods_services_and_deployments(cluster: Cluster, ns: str) -> None:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "front"},
           "spec": {"selector": {"app": "front"}, "ports": [{"port": 80, "targetPort": 8080}]}}
    create_objects(cluster, ns, pod("lonely"), svc, deployment("front"), configmap("not-in-all"))
    out = cluster.kubectl("get", "all", "-n", ns).stdout
    assert "pod/lonely" in out
    assert "service/front" in out
    assert "deployment.apps/front" in out
    # ConfigMaps are not in the "all" category.
    assert "not-in-all" not in out
    names = set(cluster.kubectl("get", "all", "-n", ns, "-o", "name").stdout.split())
    assert {"pod/lonely", "service/front", "deployment.apps/front"} <= names


# ---------------------------------------------------------------------------------------------
# get: output formats and selectors


def test_get_pods_wide_shows_ip_and_node(cluster: Cluster, ns: str) -> None:
    create_objects(cluster, ns, pod("p1", {"app": "web"}))
    out = cluster.kubectl("get", "pods", "-o", "wide", "-n", ns).stdout
    assert headers(out) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                            "NOMINATED NODE", "READINESS GATES"]
    [row] = table(out)
    assert row["NAME"] == "p1"
    assert row["READY"] == "0/1"
    assert row["STATUS"] == "Pending"
    assert row["RESTARTS"] == "0"
    # Not scheduled yet: no IP, no node.
    assert row["IP"] == "<none>" and row["NODE"] == "<none>"

    plain = cluster.kubectl("get", "pods", "-n", ns).stdout
    assert headers(plain) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]


def test_get_output_yaml_json_jsonpath_name_custom_columns(cluster: Cluster, ns: str) -> None:
    create_objects(cluster, ns, pod("a", {"app": "web"}), pod("b", {"app": "db"}, image="redis:7"))

    doc = yaml.safe_load(cluster.kubectl("get", "pod", "a", "-n", ns, "-o", "yaml").stdout)
    assert doc["apiVersion"] == "v1" and doc["kind"] == "Pod"
    assert doc["metadata"]["name"] == "a" and doc["metadata"]["namespace"] == ns
    assert doc["metadata"]["labels"] == {"app": "web"}
    assert doc["metadata"]["uid"] and doc["metadata"]["resourceVersion"]
    assert doc["spec"]["containers"][0]["image"] == "nginx:1.25"
    # Defaults the apiserver fills in, as upstream does.
    assert doc["spec"]["restartPolicy"] == "Always"
    assert doc["spec"]["dnsPolicy"] == "ClusterFirst"
    assert doc["spec"]["terminationGracePeriodSeconds"] == 30
    assert doc["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert doc["status"]["phase"] == "Pending"

    one = get_json(cluster, ns, "pod", "b")
    assert one["kind"] == "Pod" and one["spec"]["containers"][0]["image"] == "redis:7"
    assert one["metadata"]["uid"] != doc["metadata"]["uid"]

    listed = get_json(cluster, ns, "pods")
    assert listed["kind"] == "List"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a", "b"]
    assert {i["kind"] for i in listed["items"]} == {"Pod"}

    path = cluster.kubectl("get", "pods", "-n", ns, "-o",
                           "jsonpath={.items[*].metadata.name}").stdout
    assert path == "a b"
    phase = cluster.kubectl("get", "pod", "a", "-n", ns, "-o",
                            "jsonpath={.status.phase}/{.spec.containers[0].name}").stdout
    assert phase == "Pending/main"
    ranged = cluster.kubectl(
        "get", "pods", "-n", ns, "-o",
        r'jsonpath={range .items[*]}{.metadata.name}={.metadata.labels.app}{"\n"}{end}').stdout
    assert ranged.splitlines() == ["a=web", "b=db"]

    names = cluster.kubectl("get", "pods", "-n", ns, "-o", "name").stdout.split()
    assert names == ["pod/a", "pod/b"]

    custom = cluster.kubectl("get", "pods", "-n", ns, "-o",
                             "custom-columns=NAME:.metadata.name,IMAGE:.spec.containers[0].image")
    assert table(custom.stdout) == [{"NAME": "a", "IMAGE": "nginx:1.25"},
                                    {"NAME": "b", "IMAGE": "redis:7"}]

    labels = cluster.kubectl("get", "pods", "-n", ns, "-L", "app").stdout
    assert {r["NAME"]: r["APP"] for r in table(labels)} == {"a": "web", "b": "db"}


def test_get_with_label_selectors(cluster: Cluster, ns: str) -> None:
    create_objects(cluster, ns,
          configmap("web-1", labels={"app": "web", "tier": "front"}),
          configmap("web-2", labels={"app": "web", "tier": "back"}),
          configmap("db", labels={"app": "db"}),
          configmap("plain"))

    def names(*selector: str) -> list[str]:
        out = cluster.kubectl("get", "cm", "-n", ns, *selector, "-o",
                              "jsonpath={.items[*].metadata.name}").stdout
        return out.split()

    assert names("-l", "app=web") == ["web-1", "web-2"]
    assert names("-l", "app=web,tier=back") == ["web-2"]
    assert names("-l", "app!=web") == ["db", "plain"]
    assert names("-l", "app in (db,web)") == ["db", "web-1", "web-2"]
    assert names("-l", "app notin (web)") == ["db", "plain"]
    assert names("-l", "tier") == ["web-1", "web-2"]
    assert names("-l", "!tier") == ["db", "plain"]
    assert names("-l", "app=nothing") == []

    none = cluster.kubectl("get", "cm", "-n", ns, "-l", "app=nothing")
    assert none.stdout == "" and f"No resources found in {ns} namespace." in none.stderr

    bad = cluster.kubectl("get", "cm", "-n", ns, "-l", "app==in=(", check=False)
    assert bad.returncode != 0


def test_get_all_namespaces(cluster: Cluster, ns: str) -> None:
    other = f"{ns}-b"
    cluster.kubectl("create", "--validate=false", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}}))
    create_objects(cluster, ns, pod("here", {"e2e": ns}))
    create_objects(cluster, other, pod("there", {"e2e": ns}))

    out = cluster.kubectl("get", "pods", "-A", "-l", f"e2e={ns}").stdout
    assert headers(out) == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    rows = {(r["NAMESPACE"], r["NAME"]) for r in table(out)}
    assert rows == {(ns, "here"), (other, "there")}

    listed = json.loads(cluster.kubectl("get", "pods", "--all-namespaces", "-o", "json").stdout)
    found = {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in listed["items"]}
    assert {(ns, "here"), (other, "there")} <= found

    only_here = cluster.kubectl("get", "pods", "-n", ns, "-o", "name").stdout.split()
    assert only_here == ["pod/here"]


def test_get_with_field_selectors(cluster: Cluster, ns: str) -> None:
    create_objects(cluster, ns, pod("p1"), pod("p2"), configmap("c1"), configmap("c2"))

    def names(kind: str, selector: str) -> list[str]:
        return cluster.kubectl("get", kind, "-n", ns, "--field-selector", selector, "-o",
                               "jsonpath={.items[*].metadata.name}").stdout.split()

    assert names("cm", "metadata.name=c2") == ["c2"]
    assert names("cm", "metadata.name!=c2") == ["c1"]
    assert names("pods", "status.phase=Pending") == ["p1", "p2"]
    assert names("pods", "status.phase=Running") == []
    # Not scheduled: spec.nodeName is empty.
    assert names("pods", "spec.nodeName=") == ["p1", "p2"]
    assert names("pods", "spec.nodeName=node-1") == []
    assert names("pods", f"metadata.namespace={ns},metadata.name=p1") == ["p1"]

    bad = cluster.kubectl("get", "pods", "-n", ns, "--field-selector", "foo=bar", check=False)
    assert bad.returncode != 0
    assert "Error from server (BadRequest)" in bad.stderr
    assert "field label not supported: foo" in bad.stderr


def test_get_watch_prints_changes(cluster: Cluster, ns: str,
                                  watch: Callable[..., Watcher]) -> None:
    create_objects(cluster, ns, configmap("w0", {"a": "1"}))
    w = watch("get", "cm", "-w", "-n", ns, "--output-watch-events", "--request-timeout=60s")
    header = w.wait_for(lambda line: line.startswith("EVENT"))
    assert header.split() == ["EVENT", "NAME", "DATA", "AGE"]
    # The initial list comes first, as ADDED.
    assert w.wait_for(lambda line: " w0 " in f" {line} ").split()[:3] == ["ADDED", "w0", "1"]

    create_objects(cluster, ns, configmap("w1", {"k": "v"}))
    assert w.wait_for(lambda line: " w1 " in f" {line} ").split()[:3] == ["ADDED", "w1", "1"]

    cluster.kubectl("patch", "cm", "w1", "-n", ns, "--type", "merge",
                    "-p", '{"data":{"k":"v2","x":"y"}}')
    assert w.wait_for(lambda line: " w1 " in f" {line} ").split()[:3] == ["MODIFIED", "w1", "2"]

    cluster.kubectl("delete", "cm", "w1", "-n", ns)
    assert w.wait_for(lambda line: " w1 " in f" {line} ").split()[:2] == ["DELETED", "w1"]

    # Objects in other namespaces are not seen.
    cluster.kubectl("create", "--validate=false", "-f", "-",
                    input=json.dumps({**configmap("elsewhere"),
                                      "metadata": {"name": "elsewhere", "namespace": "default"}}))
    cluster.kubectl("delete", "cm", "elsewhere", "-n", "default")
    create_objects(cluster, ns, configmap("w2"))
    w.wait_for(lambda line: " w2 " in f" {line} ")
    assert not any("elsewhere" in line for line in w.lines)
    assert w.proc.poll() is None, "the watch ended early"


def test_get_watch_plain_and_json(cluster: Cluster, ns: str,
                                  watch: Callable[..., Watcher]) -> None:
    create_objects(cluster, ns, configmap("first", {"a": "1"}))
    plain = watch("get", "cm", "-w", "-n", ns, "--request-timeout=60s")
    assert plain.wait_for(lambda line: line.startswith("NAME")).split() == ["NAME", "DATA", "AGE"]
    assert plain.wait_for(lambda line: line.startswith("first")).split()[:2] == ["first", "1"]

    events = watch("get", "cm", "-w", "-n", ns, "-o", "json", "--output-watch-events",
                   "--request-timeout=60s")
    # kubectl prints one JSON document per event; it may span lines.
    buffer = ""
    decoded: list[dict[str, Any]] = []

    def collect(line: str) -> bool:
        nonlocal buffer
        buffer += line + "\n"
        decoder = json.JSONDecoder()
        while buffer.strip():
            try:
                obj, end = decoder.raw_decode(buffer.lstrip())
            except json.JSONDecodeError:
                return False
            decoded.append(obj)
            buffer = buffer.lstrip()[end:]
        return any(e["object"]["metadata"]["name"] == "second" for e in decoded)

    create_objects(cluster, ns, configmap("second", {"b": "2", "c": "3"}))
    assert plain.wait_for(lambda line: line.startswith("second")).split()[:2] == ["second", "2"]
    events.wait_for(collect)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in decoded] == \
        [("ADDED", "first"), ("ADDED", "second")]
    assert decoded[1]["object"]["data"] == {"b": "2", "c": "3"}
    assert decoded[1]["object"]["kind"] == "ConfigMap"


# ---------------------------------------------------------------------------------------------
# describe


def test_describe_deployment(cluster: Cluster, ns: str) -> None:
    create_objects(cluster, ns, deployment("web", replicas=3))
    out = cluster.kubectl("describe", "deployment", "web", "-n", ns).stdout
    assert has_line(r"^Name:\s+web$", out), out
    assert has_line(rf"^Namespace:\s+{ns}$", out)
    assert has_line(r"^Labels:\s+app=web$", out)
    assert has_line(r"^Selector:\s+app=web$", out)
    # The controller-manager runs in this cluster, so the counts move; without nodes no
    # replica becomes available.
    assert has_line(r"^Replicas:\s+3 desired \| \d updated \| \d total \| 0 available \| "
                     r"\d unavailable$", out)
    assert has_line(r"^StrategyType:\s+RollingUpdate$", out)
    assert has_line(r"^RollingUpdateStrategy:\s+25% max unavailable, 25% max surge$", out)
    assert has_line(r"^Pod Template:$", out)
    assert has_line(r"^   web:$", out) and has_line(r"^   sidecar:$", out)
    assert has_line(r"^\s+Image:\s+nginx:1\.25$", out)
    assert has_line(r"^\s+Image:\s+busybox:1\.36$", out)
    assert has_line(r"^\s+Port:\s+80/TCP$", out)
    assert has_line(r"^Events:", out)

    # By short name and through a label selector, too.
    by_label = cluster.kubectl("describe", "deploy", "-l", "app=web", "-n", ns).stdout
    assert has_line(r"^Name:\s+web$", by_label)


def test_describe_configmap(cluster: Cluster, ns: str) -> None:
    create_objects(cluster, ns, configmap("settings", {"color": "blue", "size": "large"},
                                 labels={"team": "a"}))
    cluster.kubectl("annotate", "cm", "settings", "-n", ns, "owner=ops")
    out = cluster.kubectl("describe", "configmap", "settings", "-n", ns).stdout
    assert has_line(r"^Name:\s+settings$", out), out
    assert has_line(rf"^Namespace:\s+{ns}$", out)
    assert has_line(r"^Labels:\s+team=a$", out)
    assert has_line(r"^Annotations:\s+owner: ops$", out)
    data = out.split("Data\n====\n", 1)[1]
    assert "color:\n----\nblue\n" in data
    assert "size:\n----\nlarge\n" in data
    assert has_line(r"^Events:\s+<none>$", out)

    missing = cluster.kubectl("describe", "cm", "nope", "-n", ns, check=False)
    assert missing.returncode != 0
    assert 'configmaps "nope" not found' in missing.stderr


# ---------------------------------------------------------------------------------------------
# apply, create, replace


def test_apply_create_configure_unchanged_and_prune_removed_fields(cluster: Cluster,
                                                                   ns: str) -> None:
    v1 = configmap("cfg", {"one": "1", "two": "2"}, labels={"a": "1", "b": "2"})
    v1["metadata"]["namespace"] = ns
    out = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(v1))
    assert out.stdout.strip() == "configmap/cfg created"
    created = get_json(cluster, ns, "cm", "cfg")
    assert json.loads(created["metadata"]["annotations"][LAST_APPLIED]) == \
        {**v1, "metadata": {**v1["metadata"], "annotations": {}}}

    # Someone else adds a label: apply must leave what it does not own alone.
    cluster.kubectl("label", "cm", "cfg", "-n", ns, "manual=yes")

    v2 = configmap("cfg", {"one": "uno", "three": "3"}, labels={"a": "1"})
    v2["metadata"]["namespace"] = ns
    out = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(v2))
    assert out.stdout.strip() == "configmap/cfg configured"
    got = get_json(cluster, ns, "cm", "cfg")
    assert got["data"] == {"one": "uno", "three": "3"}  # "two" was removed from the manifest
    assert got["metadata"]["labels"] == {"a": "1", "manual": "yes"}  # so was label "b"
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    assert json.loads(got["metadata"]["annotations"][LAST_APPLIED])["data"] == v2["data"]

    out = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(v2))
    assert out.stdout.strip() == "configmap/cfg unchanged"
    again = get_json(cluster, ns, "cm", "cfg")
    assert again["metadata"]["resourceVersion"] == got["metadata"]["resourceVersion"]

    last = json.loads(cluster.kubectl("apply", "view-last-applied", "cm/cfg", "-n", ns,
                                      "-o", "json").stdout)
    assert last["data"] == v2["data"] and last["metadata"]["labels"] == {"a": "1"}


def test_apply_deployment_three_way_merge_of_containers(cluster: Cluster, ns: str) -> None:
    d = deployment("web")
    d["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "MODE", "value": "fast"}, {"name": "DEBUG", "value": "1"}]
    out = cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(d))
    assert out.stdout.strip() == "deployment.apps/web created"

    # Another writer scales it; the manifest changes the image, drops the sidecar and an env var.
    cluster.kubectl("scale", "deploy", "web", "-n", ns, "--replicas=5")
    d2 = deployment("web", image="nginx:1.27")
    del d2["spec"]["replicas"]
    d2["spec"]["template"]["spec"]["containers"] = [
        {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}],
         "env": [{"name": "MODE", "value": "fast"}]}]
    out = cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(d2))
    assert out.stdout.strip() == "deployment.apps/web configured"

    got = get_json(cluster, ns, "deploy", "web")
    containers = got["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web"]
    assert containers[0]["image"] == "nginx:1.27"
    assert containers[0]["env"] == [{"name": "MODE", "value": "fast"}]
    # replicas left the manifest: the field is no longer applied, so it goes back to its
    # default (upstream: removed from last-applied → deleted by the patch → defaulted to 1).
    assert got["spec"]["replicas"] == 1

    out = cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(d2))
    assert out.stdout.strip() == "deployment.apps/web unchanged"


def test_apply_multiple_documents(cluster: Cluster, ns: str) -> None:
    docs = [configmap("one", {"a": "1"}),
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "two"},
             "stringData": {"token": "abc"}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "three"},
             "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}}]
    out = cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(docs))
    assert out.stdout.splitlines() == ["configmap/one created", "secret/two created",
                                       "service/three created"]
    secret = get_json(cluster, ns, "secret", "two")
    assert base64.b64decode(secret["data"]["token"]) == b"abc"
    assert "stringData" not in secret
    service = get_json(cluster, ns, "svc", "three")
    assert service["spec"]["ports"][0]["targetPort"] == 80
    assert service["spec"]["type"] == "ClusterIP"


def test_create_from_file(cluster: Cluster, ns: str, tmp_path: Any) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(yaml.safe_dump(pod("made", {"app": "made"})))
    out = cluster.kubectl("create", "-n", ns, "-f", str(manifest))
    assert out.stdout.strip() == "pod/made created"
    got = get_json(cluster, ns, "pod", "made")
    assert got["status"]["phase"] == "Pending"
    assert LAST_APPLIED not in got["metadata"].get("annotations", {})

    again = cluster.kubectl("create", "-n", ns, "-f", str(manifest), check=False)
    assert again.returncode == 1
    assert again.stderr.strip() == (f'Error from server (AlreadyExists): error when creating '
                                    f'"{manifest}": pods "made" already exists')


def test_create_configmap_generator(cluster: Cluster, ns: str, tmp_path: Any) -> None:
    (tmp_path / "app.properties").write_text("color=blue\n")
    out = cluster.kubectl("create", "configmap", "gen", "-n", ns, "--from-literal=k1=v1",
                          "--from-literal=k2=v2", f"--from-file={tmp_path / 'app.properties'}")
    assert out.stdout.strip() == "configmap/gen created", out.stderr
    got = get_json(cluster, ns, "cm", "gen")
    assert got["data"] == {"k1": "v1", "k2": "v2", "app.properties": "color=blue\n"}


def test_create_secret_generator(cluster: Cluster, ns: str) -> None:
    out = cluster.kubectl("create", "secret", "generic", "creds", "-n", ns,
                          "--from-literal=user=admin", "--from-literal=password=s3cr3t!")
    assert out.stdout.strip() == "secret/creds created", out.stderr
    got = get_json(cluster, ns, "secret", "creds")
    assert got["type"] == "Opaque"
    assert {k: base64.b64decode(v).decode() for k, v in got["data"].items()} == \
        {"user": "admin", "password": "s3cr3t!"}
    decoded = cluster.kubectl("get", "secret", "creds", "-n", ns, "-o",
                              "jsonpath={.data.password}").stdout
    assert base64.b64decode(decoded) == b"s3cr3t!"


def test_create_namespace_generator(cluster: Cluster) -> None:
    name = f"gen-ns-{uuid.uuid4().hex[:6]}"
    out = cluster.kubectl("create", "namespace", name)
    assert out.stdout.strip() == f"namespace/{name} created", out.stderr
    got = get_json(cluster, None, "ns", name)
    assert got["status"]["phase"] == "Active"
    assert got["metadata"]["labels"]["kubernetes.io/metadata.name"] == name
    rows = table(cluster.kubectl("get", "ns", name).stdout)
    assert [(r["NAME"], r["STATUS"]) for r in rows] == [(name, "Active")]

    again = cluster.kubectl("create", "namespace", name, check=False)
    assert again.returncode == 1
    assert f'namespaces "{name}" already exists' in again.stderr


def test_create_deployment_generator(cluster: Cluster, ns: str) -> None:
    out = cluster.kubectl("create", "deployment", "shop", "-n", ns, "--image=nginx:1.25",
                          "--replicas=3", "--port=8080")
    assert out.stdout.strip() == "deployment.apps/shop created", out.stderr
    got = get_json(cluster, ns, "deploy", "shop")
    assert got["metadata"]["labels"] == {"app": "shop"}
    assert got["spec"]["replicas"] == 3
    assert got["spec"]["selector"] == {"matchLabels": {"app": "shop"}}
    assert got["spec"]["template"]["metadata"]["labels"] == {"app": "shop"}
    [container] = got["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "nginx" and container["image"] == "nginx:1.25"
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert got["spec"]["strategy"]["type"] == "RollingUpdate"


def test_replace_from_file_and_conflict_on_stale_version(cluster: Cluster, ns: str,
                                                         tmp_path: Any) -> None:
    create_objects(cluster, ns, configmap("cfg", {"old": "1"}))
    current = get_json(cluster, ns, "cm", "cfg")
    stale = json.loads(json.dumps(current))

    current["data"] = {"new": "2"}
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(current))
    out = cluster.kubectl("replace", "-f", str(path))
    assert out.stdout.strip() == "configmap/cfg replaced"
    got = get_json(cluster, ns, "cm", "cfg")
    assert got["data"] == {"new": "2"}
    assert int(got["metadata"]["resourceVersion"]) > int(stale["metadata"]["resourceVersion"])

    stale["data"] = {"lost": "update"}
    path.write_text(json.dumps(stale))
    conflict = cluster.kubectl("replace", "-f", str(path), check=False)
    assert conflict.returncode == 1
    assert "Error from server (Conflict)" in conflict.stderr
    assert ('Operation cannot be fulfilled on configmaps "cfg": the object has been modified; '
            'please apply your changes to the latest version and try again') in conflict.stderr
    assert get_json(cluster, ns, "cm", "cfg")["data"] == {"new": "2"}

    # Without a resourceVersion the replace is unconditional.
    del stale["metadata"]["resourceVersion"]
    path.write_text(json.dumps(stale))
    cluster.kubectl("replace", "-f", str(path))
    assert get_json(cluster, ns, "cm", "cfg")["data"] == {"lost": "update"}

    missing = {**configmap("ghost"), "metadata": {"name": "ghost", "namespace": ns}}
    path.write_text(json.dumps(missing))
    absent = cluster.kubectl("replace", "-f", str(path), check=False)
    assert absent.returncode == 1 and 'configmaps "ghost" not found' in absent.stderr


# ---------------------------------------------------------------------------------------------
# patch, label, annotate, scale


def test_patch_merge_json_and_strategic(cluster: Cluster, ns: str) -> None:
    create_objects(cluster, ns, configmap("cfg", {"a": "1", "b": "2", "c": "3"}), deployment("web"))

    out = cluster.kubectl("patch", "cm", "cfg", "-n", ns, "--type", "merge",
                          "-p", '{"data":{"a":"one","b":null,"d":"4"}}')
    assert out.stdout.strip() == "configmap/cfg patched"
    assert get_json(cluster, ns, "cm", "cfg")["data"] == {"a": "one", "c": "3", "d": "4"}

    out = cluster.kubectl("patch", "cm", "cfg", "-n", ns, "--type", "json", "-p", json.dumps([
        {"op": "replace", "path": "/data/a", "value": "eins"},
        {"op": "remove", "path": "/data/c"},
        {"op": "add", "path": "/metadata/labels", "value": {"patched": "json"}}]))
    assert out.stdout.strip() == "configmap/cfg patched"
    got = get_json(cluster, ns, "cm", "cfg")
    assert got["data"] == {"a": "eins", "d": "4"}
    assert got["metadata"]["labels"] == {"patched": "json"}

    failed = cluster.kubectl("patch", "cm", "cfg", "-n", ns, "--type", "json", "-p",
                             '[{"op":"test","path":"/data/a","value":"wrong"},'
                             '{"op":"remove","path":"/data/a"}]', check=False)
    assert failed.returncode != 0
    assert get_json(cluster, ns, "cm", "cfg")["data"] == {"a": "eins", "d": "4"}

    # Strategic merge (kubectl's default type): containers merge by name.
    out = cluster.kubectl("patch", "deployment", "web", "-n", ns, "-p", json.dumps(
        {"spec": {"template": {"spec": {"containers": [{"name": "web",
                                                        "image": "nginx:1.27"}]}}}}))
    assert out.stdout.strip() == "deployment.apps/web patched"
    containers = get_json(cluster, ns, "deploy", "web")["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == \
        [("web", "nginx:1.27"), ("sidecar", "busybox:1.36")]
    assert containers[0]["ports"][0]["containerPort"] == 80  # the rest of the item is kept

    out = cluster.kubectl("patch", "deployment", "web", "-n", ns, "--type", "strategic",
                          "-p", json.dumps({"spec": {"template": {"spec": {"containers": [
                              {"name": "sidecar", "$patch": "delete"}]}}}}))
    assert out.stdout.strip() == "deployment.apps/web patched"
    containers = get_json(cluster, ns, "deploy", "web")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web"]

    # A patch that changes nothing is reported as such (the server skips the no-op write).
    out = cluster.kubectl("patch", "deployment", "web", "-n", ns, "-p",
                          '{"spec":{"replicas":2}}')
    assert out.stdout.strip() == "deployment.apps/web patched (no change)"

    # A merge patch replaces lists whole.
    cluster.kubectl("patch", "deployment", "web", "-n", ns, "--type", "merge", "-p", json.dumps(
        {"spec": {"template": {"spec": {"containers": [{"name": "only",
                                                        "image": "redis:7"}]}}}}))
    containers = get_json(cluster, ns, "deploy", "web")["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("only", "redis:7")]


def test_label_add_overwrite_and_remove(cluster: Cluster, ns: str) -> None:
    create_objects(cluster, ns, configmap("c1"), configmap("c2"))
    out = cluster.kubectl("label", "cm", "c1", "-n", ns, "env=prod", "team=a")
    assert out.stdout.strip() == "configmap/c1 labeled"
    assert get_json(cluster, ns, "cm", "c1")["metadata"]["labels"] == {"env": "prod", "team": "a"}

    refused = cluster.kubectl("label", "cm", "c1", "-n", ns, "env=dev", check=False)
    assert refused.returncode == 1
    assert "'env' already has a value (prod), and --overwrite is false" in refused.stderr

    cluster.kubectl("label", "cm", "c1", "-n", ns, "env=dev", "--overwrite")
    assert get_json(cluster, ns, "cm", "c1")["metadata"]["labels"]["env"] == "dev"

    out = cluster.kubectl("label", "cm", "c1", "-n", ns, "team-")
    assert out.stdout.strip() == "configmap/c1 unlabeled"
    assert get_json(cluster, ns, "cm", "c1")["metadata"]["labels"] == {"env": "dev"}

    out = cluster.kubectl("label", "cm", "--all", "-n", ns, "batch=x")
    assert sorted(out.stdout.splitlines()) == ["configmap/c1 labeled", "configmap/c2 labeled"]
    assert cluster.kubectl("get", "cm", "-n", ns, "-l", "batch=x,env=dev", "-o",
                           "name").stdout.split() == ["configmap/c1"]


def test_annotate_add_overwrite_and_remove(cluster: Cluster, ns: str) -> None:
    create_objects(cluster, ns, configmap("c1"))
    out = cluster.kubectl("annotate", "cm", "c1", "-n", ns, "note=hello world")
    assert out.stdout.strip() == "configmap/c1 annotated"
    assert get_json(cluster, ns, "cm", "c1")["metadata"]["annotations"] == {"note": "hello world"}

    refused = cluster.kubectl("annotate", "cm", "c1", "-n", ns, "note=x", check=False)
    assert refused.returncode == 1
    assert "'note' already has a value (hello world)" in refused.stderr

    cluster.kubectl("annotate", "cm", "c1", "-n", ns, "note=x", "--overwrite")
    assert get_json(cluster, ns, "cm", "c1")["metadata"]["annotations"] == {"note": "x"}

    cluster.kubectl("annotate", "cm", "c1", "-n", ns, "note-")
    assert not get_json(cluster, ns, "cm", "c1")["metadata"].get("annotations")


def test_scale_deployment(cluster: Cluster, ns: str) -> None:
    create_objects(cluster, ns, deployment("web", replicas=2))
    out = cluster.kubectl("scale", "deploy", "web", "-n", ns, "--replicas=4")
    assert out.stdout.strip() == "deployment.apps/web scaled"
    assert get_json(cluster, ns, "deploy", "web")["spec"]["replicas"] == 4

    scale = json.loads(cluster.kubectl(
        "get", "--raw", f"/apis/apps/v1/namespaces/{ns}/deployments/web/scale").stdout)
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"]["replicas"] == 4
    assert scale["status"]["selector"] == "app=web"

    refused = cluster.kubectl("scale", "deployment/web", "-n", ns, "--current-replicas=7",
                              "--replicas=1", check=False)
    assert refused.returncode == 1
    assert "Expected replicas to be 7, was 4" in refused.stderr
    assert get_json(cluster, ns, "deploy", "web")["spec"]["replicas"] == 4

    cluster.kubectl("scale", "deployment/web", "-n", ns, "--current-replicas=4", "--replicas=0")
    table_rows = table(cluster.kubectl("get", "deploy", "web", "-n", ns).stdout)
    assert table_rows[0]["READY"] == "0/0"


# ---------------------------------------------------------------------------------------------
# delete


def test_delete_by_name_label_and_all(cluster: Cluster, ns: str) -> None:
    create_objects(cluster, ns, configmap("solo"),
          configmap("g1-a", labels={"grp": "one"}), configmap("g1-b", labels={"grp": "one"}),
          configmap("g2-a", labels={"grp": "two"}), configmap("g2-b", labels={"grp": "two"}))

    out = cluster.kubectl("delete", "cm", "solo", "-n", ns, "--wait")
    assert out.stdout.strip() == 'configmap "solo" deleted'
    gone = cluster.kubectl("get", "cm", "solo", "-n", ns, check=False)
    assert gone.returncode == 1
    assert 'configmaps "solo" not found' in gone.stderr

    out = cluster.kubectl("delete", "cm", "-l", "grp=one", "-n", ns)
    assert sorted(out.stdout.splitlines()) == ['configmap "g1-a" deleted',
                                               'configmap "g1-b" deleted']
    left = cluster.kubectl("get", "cm", "-n", ns, "-o", "name").stdout.split()
    assert left == ["configmap/g2-a", "configmap/g2-b"]

    out = cluster.kubectl("delete", "cm", "--all", "-n", ns)
    assert sorted(out.stdout.splitlines()) == ['configmap "g2-a" deleted',
                                               'configmap "g2-b" deleted']
    assert cluster.kubectl("get", "cm", "-n", ns, "-o", "name").stdout == ""

    missing = cluster.kubectl("delete", "cm", "nope", "-n", ns, check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'Error from server (NotFound): configmaps "nope" not found'
    ignored = cluster.kubectl("delete", "cm", "nope", "-n", ns, "--ignore-not-found")
    assert ignored.stdout == ""


def test_delete_deployment_and_unscheduled_pod_wait(cluster: Cluster, ns: str) -> None:
    create_objects(cluster, ns, deployment("web"), pod("pending"))
    started = time.monotonic()
    out = cluster.kubectl("delete", "deployment", "web", "-n", ns, "--wait=true")
    assert out.stdout.strip() == 'deployment.apps "web" deleted'
    # An unscheduled pod has nothing to stop: upstream deletes it at once, so --wait is quick.
    out = cluster.kubectl("delete", "pod", "pending", "-n", ns, "--wait=true", timeout=30)
    assert out.stdout.strip() == 'pod "pending" deleted'
    assert time.monotonic() - started < 20
    assert cluster.kubectl("get", "deploy,pods", "-n", ns, "-o", "name").stdout == ""


def test_delete_pod_force(cluster: Cluster, ns: str) -> None:
    create_objects(cluster, ns, pod("doomed"))
    out = cluster.kubectl("delete", "pod", "doomed", "-n", ns, "--grace-period=0", "--force")
    assert out.stdout.strip() == 'pod "doomed" force deleted'
    assert "Immediate deletion does not wait for confirmation" in out.stderr
    gone = cluster.kubectl("get", "pod", "doomed", "-n", ns, check=False)
    assert gone.returncode == 1
    assert gone.stderr.strip() == 'Error from server (NotFound): pods "doomed" not found'


# ---------------------------------------------------------------------------------------------
# explain, raw, errors


def test_explain_pod_containers(cluster: Cluster) -> None:
    out = cluster.kubectl("explain", "pods.spec.containers").stdout
    assert has_line(r"^KIND:\s+Pod$", out), out
    assert has_line(r"^VERSION:\s+v1$", out)
    assert has_line(r"^FIELD:\s+containers <\[\]Container>", out)
    assert has_line(r"^DESCRIPTION:$", out)
    description = out.split("DESCRIPTION:", 1)[1].split("FIELDS:", 1)[0]
    assert len(description.split()) >= 5, f"no description of containers:\n{out}"
    fields = out.split("FIELDS:", 1)[1]
    assert has_line(r"^\s+name\s+<string> -required-$", fields), fields
    assert has_line(r"^\s+image\s+<string>$", fields)
    assert has_line(r"^\s+ports\s+<\[\]ContainerPort>$", fields)
    assert has_line(r"^\s+env\s+<\[\]EnvVar>$", fields)
    assert has_line(r"^\s+resources\s+<ResourceRequirements>$", fields)
    # Each field comes with its own description, indented under it.
    image_doc = has_line(r"^\s+image\s+<string>\n((?:\s{4,}\S.*\n)+)", fields)
    assert image_doc and len(image_doc.group(1).split()) >= 3, fields

    image = cluster.kubectl("explain", "pod.spec.containers.image").stdout
    assert has_line(r"^FIELD:\s+image <string>$", image), image
    assert len(image.split("DESCRIPTION:", 1)[1].split()) >= 3

    replicas = cluster.kubectl("explain", "deployments.spec.replicas").stdout
    assert has_line(r"^KIND:\s+Deployment$", replicas)
    assert has_line(r"^(VERSION|GROUP):\s+apps", replicas)
    assert has_line(r"^FIELD:\s+replicas <integer>$", replicas)

    bad = cluster.kubectl("explain", "pods.spec.nonsense", check=False)
    assert bad.returncode != 0
    assert 'field "nonsense" does not exist' in bad.stderr


def test_get_raw_health_and_api(cluster: Cluster, ns: str) -> None:
    for path in ("/readyz", "/livez", "/healthz"):
        assert cluster.kubectl("get", "--raw", path).stdout == "ok"
    verbose = cluster.kubectl("get", "--raw", "/readyz?verbose").stdout
    assert "[+]ping ok" in verbose.splitlines()
    assert verbose.splitlines()[-1] == "readyz check passed"

    version = json.loads(cluster.kubectl("get", "--raw", "/version").stdout)
    assert version["gitVersion"].startswith("v1.32.")
    namespace = json.loads(cluster.kubectl("get", "--raw", f"/api/v1/namespaces/{ns}").stdout)
    assert namespace["kind"] == "Namespace" and namespace["metadata"]["name"] == ns

    missing = cluster.kubectl("get", "--raw", f"/api/v1/namespaces/{ns}/pods/nope",
                              check=False)
    assert missing.returncode == 1
    assert 'pods "nope" not found' in missing.stderr


def test_get_missing_pod_is_not_found(cluster: Cluster, ns: str) -> None:
    out = cluster.kubectl("get", "pod", "nope", "-n", ns, check=False)
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'

    as_json = cluster.kubectl("get", "pod", "nope", "-n", ns, "-o", "json", check=False)
    assert as_json.returncode == 1
    assert as_json.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'

    unknown = cluster.kubectl("get", "frobnicators", check=False)
    assert unknown.returncode == 1
    assert 'the server doesn\'t have a resource type "frobnicators"' in unknown.stderr

    # The server answers `pods "nope" not found`; kubectl 1.32 then looks the namespace up
    # and, finding none, reports that instead.
    no_ns = cluster.kubectl("get", "pod", "nope", "-n", f"{ns}-absent", check=False)
    assert no_ns.returncode == 1
    assert no_ns.stderr.strip() == \
        f'Error from server (NotFound): namespaces "{ns}-absent" not found'


def test_apply_invalid_manifest_reports_422_fields(cluster: Cluster, ns: str) -> None:
    bad = deployment("bad")
    bad["spec"]["replicas"] = -1
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    out = cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(bad), check=False)
    assert out.returncode == 1
    assert 'The Deployment "bad" is invalid' in out.stderr, out.stderr
    assert "spec.replicas: Invalid value: -1: must be greater than or equal to 0" in out.stderr
    assert "spec.template.metadata.labels: Invalid value:" in out.stderr
    assert "`selector` does not match template `labels`" in out.stderr
    assert cluster.kubectl("get", "deploy", "-n", ns, "-o", "name").stdout == ""

    name = configmap("Bad_Name")
    out = cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(name), check=False)
    assert out.returncode == 1
    assert 'The ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"' \
        in out.stderr, out.stderr

    no_containers = pod("empty")
    no_containers["spec"]["containers"] = []
    out = cluster.kubectl("create", "-n", ns, "-f", "-", input=yaml.safe_dump(no_containers),
                          check=False)
    assert out.returncode == 1
    assert 'The Pod "empty" is invalid' in out.stderr and \
        "spec.containers: Required value" in out.stderr, out.stderr


def test_apply_unknown_field_is_rejected(cluster: Cluster, ns: str) -> None:
    # kubectl validates strictly by default (server-side with fieldValidation=Strict when the
    # server's OpenAPI says it supports it; client-side against the schema otherwise).
    manifest = {**configmap("typo"), "spec": {"oops": True}}
    out = cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(manifest),
                          check=False)
    assert out.returncode == 1, out.stdout
    assert 'unknown field "spec"' in out.stderr, out.stderr
    assert cluster.kubectl("get", "cm", "-n", ns, "-o", "name").stdout == ""
