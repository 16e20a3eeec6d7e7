"""Two controller-manager processes: one leads, the other waits; kill -9 the leader and the
standby takes the Lease and carries on reconciling."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, ApiServer, stop_process

TLS: dict[str, ssl.SSLContext] = {}  # the admin's client context, by server URL


def call(base: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5, context=TLS[base]) as r:
        return json.loads(r.read())


def wait_for(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def holder(base: str) -> str:
    try:
        lease = call(base, "GET",
                     "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/"
                     "kube-controller-manager")
    except urllib.error.HTTPError:
        return ""
    return str(lease["spec"].get("holderIdentity") or "")


def replicaset(name: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "x"}]}}}}


def pod_count(base: str, ns: str, app: str) -> int:
    pods = call(base, "GET", f"/api/v1/namespaces/{ns}/pods?labelSelector=app%3D{app}")
    return len(pods["items"])


def test_standby_controller_manager_takes_over(apiserver: ApiServer, tmp_path: Path) -> None:
    base = apiserver.url
    TLS[base] = apiserver.tls()
    ns = f"fo-{uuid.uuid4().hex[:6]}"
    call(base, "POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    procs: dict[str, subprocess.Popen] = {}
    try:
        for ident in ("cm-a", "cm-b"):
            log = (tmp_path / f"{ident}.log").open("wb")
            procs[ident] = subprocess.Popen(
                [sys.executable, "-m", "controller_manager", "--kubeconfig",
                 str(apiserver.kubeconfig), "--controllers", "replicaset",
                 "--leader-elect-identity", ident, "--leader-elect-lease-duration", "2s",
                 "--leader-elect-renew-deadline", "1.5s", "--leader-elect-retry-period",
                 "0.3s"], stdout=log, stderr=log, cwd=ROOT)
            log.close()
            if ident == "cm-a":
                wait_for("cm-a to lead", lambda: holder(base) == "cm-a", 15)
        call(base, "POST", f"/apis/apps/v1/namespaces/{ns}/replicasets",
             replicaset("one", 2))
        wait_for("the leader to create 2 pods", lambda: pod_count(base, ns, "one") == 2, 15)
        assert holder(base) == "cm-a"

        procs["cm-a"].send_signal(signal.SIGKILL)
        procs["cm-a"].wait(5)
        started = time.monotonic()
        wait_for("cm-b to take the lease", lambda: holder(base) == "cm-b", 10)
        # A crashed leader cannot release: the standby waits out the lease duration (2 s).
        assert time.monotonic() - started < 8
        call(base, "POST", f"/apis/apps/v1/namespaces/{ns}/replicasets",
             replicaset("two", 3))
        wait_for("the new leader to create 3 pods", lambda: pod_count(base, ns, "two") == 3,
                 15)
        assert pod_count(base, ns, "one") == 2  # nothing duplicated by the hand-over
    finally:
        for proc in procs.values():
            stop_process(proc)
