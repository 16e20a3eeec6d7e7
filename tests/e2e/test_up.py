"""`kubelite up` as a user runs it: ready line, kubeconfig, clean stop, state kept."""

from __future__ import annotations

import json
import signal
import urllib.request
from pathlib import Path

import yaml

from tests.e2e.conftest import Cluster, start_cluster, stop_cluster_proc


def get(c: Cluster, path: str) -> dict:
    with urllib.request.urlopen(c.server + path, timeout=5, context=c.tls()) as r:
        return json.loads(r.read())


def post(c: Cluster, path: str, body: dict) -> dict:
    req = urllib.request.Request(c.server + path, data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5, context=c.tls()) as r:
        return json.loads(r.read())


def test_up_restart_keeps_objects_and_stops_cleanly(tmp_path: Path) -> None:
    c = start_cluster(tmp_path)
    try:
        kubeconfig = yaml.safe_load(c.kubeconfig.read_text())
        assert kubeconfig["clusters"][0]["cluster"]["server"] == c.server
        assert f"kubelite is ready: export KUBECONFIG={c.kubeconfig}" in c.output.read_text()
        created = post(c, "/api/v1/namespaces/default/configmaps",
                       {"metadata": {"name": "survivor"}, "data": {"k": "v"}})
        uid = created["metadata"]["uid"]
        pids = json.loads((tmp_path / "cluster.json").read_text())["pids"]
    finally:
        code = stop_cluster_proc(c.proc)
    assert code == 0
    # Every child went away with the supervisor.
    for pid in pids.values():
        assert not Path(f"/proc/{pid}").exists() or \
            "zombie" in Path(f"/proc/{pid}/status").read_text().lower()

    again = start_cluster(tmp_path)
    try:
        got = get(again, "/api/v1/namespaces/default/configmaps/survivor")
        assert got["metadata"]["uid"] == uid and got["data"] == {"k": "v"}
    finally:
        again.proc.send_signal(signal.SIGINT)
        assert stop_cluster_proc(again.proc) == 0


def test_up_rejects_bad_flags(tmp_path: Path) -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "kubelite", "up", "--data-dir", str(tmp_path),
                        "--nodes", "-1"], capture_output=True, text=True, timeout=30, check=False)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "--nodes" in r.stderr
