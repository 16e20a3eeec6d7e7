"""Pure parts around the pod and the node: the Node object and its conditions, static and
mirror pods, CRI configuration (resources, DNS, /etc/hosts, labels), volumes' atomic
writer, the CNI exec hook's input and output, image pull policy defaults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubelet import containers as C
from kubelet.images import default_pull_policy
from kubelet.labels import (
    CONFIG_HASH_ANNOTATION,
    CONFIG_MIRROR_ANNOTATION,
    CONFIG_SOURCE_ANNOTATION,
    container_hash,
    is_mirror_pod,
    is_static_pod,
)
from kubelet.network import CniError, cni_args, parse_plugin_output, plugin_input
from kubelet.nodestatus import (
    MachineInfo,
    NodeConfig,
    NodeHealth,
    allocatable,
    build_node,
    node_conditions,
    node_status,
)
from kubelet.runtime.server import PodNetworkArgs
from kubelet.staticpods import mirror_pod, read_manifests, static_pod
from kubelet.volumes import VolumeError, container_mounts, write_atomic
from proto.cri import api_pb2 as cri

MACHINE = MachineInfo(cpus=2, memory=4 * 1024**3, storage=100 * 1024**3, kernel="6.1",
                      os_image="Debian GNU/Linux 12 (bookworm)", machine_id="m",
                      boot_id="b", arch="amd64")


def test_node_object() -> None:
    cfg = NodeConfig(name="node-1", instance_type="t3.small", internal_ip="10.200.0.4",
                     port=10251, max_pods=11)
    node = build_node(cfg, MACHINE)
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "node-1"
    assert labels["node.kubernetes.io/instance-type"] == "t3.small"
    assert labels["topology.kubernetes.io/zone"] == "kubelite-zone-a"
    assert labels["kubernetes.io/os"] == "linux" and labels["kubernetes.io/arch"] == "amd64"
    status = node_status(cfg, MACHINE, NodeHealth(), "docker://20.10", [], None,
                         "2024-01-01T00:00:00Z")
    assert status["capacity"]["pods"] == "11" and status["capacity"]["cpu"] == "2"
    assert status["addresses"] == [{"type": "InternalIP", "address": "10.200.0.4"},
                                   {"type": "Hostname", "address": "node-1"}]
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10251}}
    info = status["nodeInfo"]
    assert info["kubeletVersion"] == "v1.32.0+kubelite"
    assert info["containerRuntimeVersion"] == "docker://20.10"
    assert [c["type"] for c in status["conditions"]] == [
        "MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    # allocatable memory leaves the 100Mi eviction threshold
    assert allocatable(MACHINE, 11)["memory"] == f"{(4 * 1024**3 - 100 * 1024**2) // 1024}Ki"


def test_node_conditions_keep_transition_and_move_heartbeat() -> None:
    first = node_conditions(NodeHealth(), [], "T1")
    second = node_conditions(NodeHealth(), first, "T2")
    ready = {c["type"]: c for c in second}["Ready"]
    assert ready["lastTransitionTime"] == "T1" and ready["lastHeartbeatTime"] == "T2"
    assert ready["reason"] == "KubeletReady"
    third = node_conditions(NodeHealth(ready=False, not_ready_message="runtime down"),
                            second, "T3")
    ready = {c["type"]: c for c in third}["Ready"]
    assert ready["status"] == "False" and ready["lastTransitionTime"] == "T3"
    assert ready["message"] == "runtime down"
    kept = node_conditions(NodeHealth(), [{"type": "NetworkUnavailable", "status": "False"}],
                           "T")
    assert "NetworkUnavailable" in {c["type"] for c in kept}


def test_static_pod_and_mirror(tmp_path: Path) -> None:
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}
    p1 = static_pod(manifest, "node-1", "/m/web.yaml")
    p2 = static_pod(manifest, "node-1", "/m/web.yaml")
    assert p1["metadata"]["uid"] == p2["metadata"]["uid"]  # stable across reads
    assert static_pod(manifest, "node-2", "/m/web.yaml")["metadata"]["uid"] != \
        p1["metadata"]["uid"]
    md = p1["metadata"]
    assert md["name"] == "web-node-1" and md["namespace"] == "default"
    assert md["annotations"][CONFIG_HASH_ANNOTATION] == md["uid"]
    assert md["annotations"][CONFIG_SOURCE_ANNOTATION] == "file" and is_static_pod(p1)
    assert p1["spec"]["nodeName"] == "node-1"
    assert p1["spec"]["restartPolicy"] == "Always"  # API defaults applied
    assert {"operator": "Exists", "effect": "NoExecute"} in p1["spec"]["tolerations"]
    mirror = mirror_pod(p1, "node-1", "node-uid")
    assert mirror["metadata"]["annotations"][CONFIG_MIRROR_ANNOTATION] == md["uid"]
    assert mirror["metadata"]["ownerReferences"][0]["kind"] == "Node"
    assert "uid" not in mirror["metadata"] and is_mirror_pod(mirror)
    (tmp_path / "web.yaml").write_text(json.dumps(manifest))
    (tmp_path / ".hidden.yaml").write_text("junk")
    (tmp_path / "bad.yaml").write_text("kind: Service\nmetadata: {name: x}\n")
    pods, errors = read_manifests(tmp_path, "node-1")
    assert [p["metadata"]["name"] for p in pods.values()] == ["web-node-1"]
    assert len(errors) == 1 and "bad.yaml" in errors[0]


def test_container_hash_is_stable_and_sensitive() -> None:
    c = {"name": "a", "image": "i", "env": [{"name": "X", "value": "1"}]}
    assert container_hash(c) == container_hash(json.loads(json.dumps(c)))
    assert container_hash(c) != container_hash({**c, "image": "j"})


def test_linux_resources() -> None:
    c = {"resources": {"limits": {"cpu": "500m", "memory": "128Mi"},
                       "requests": {"cpu": "250m", "memory": "64Mi"}}}
    r = C.linux_resources(c, "Burstable", 1024 * 1024**2)
    assert r.cpu_period == 100_000 and r.cpu_quota == 50_000
    assert r.cpu_shares == 256 and r.memory_limit_in_bytes == 128 * 1024**2
    assert r.oom_score_adj == 1000 - 1000 * 64 // 1024
    best = C.linux_resources({}, "BestEffort", 0)
    assert best.cpu_shares == 2 and best.cpu_quota == 0 and best.oom_score_adj == 1000
    assert C.linux_resources(c, "Guaranteed", 0).oom_score_adj == -997


def _pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "shop", "uid": "u"},
            "spec": {"containers": [{"name": "c", "image": "i"}], **spec}}


def test_dns_config() -> None:
    dns = C.DnsSettings(cluster_dns=["10.96.0.10"], host_servers=["1.1.1.1"],
                        host_searches=["corp"])
    cfg = C.dns_config(_pod(), dns)
    assert cfg is not None
    assert list(cfg.servers) == ["10.96.0.10"]
    assert list(cfg.searches) == ["shop.svc.cluster.local", "svc.cluster.local",
                                  "cluster.local", "corp"]
    assert list(cfg.options) == ["ndots:5"]
    default = C.dns_config(_pod(dnsPolicy="Default"), dns)
    assert default is not None and list(default.servers) == ["1.1.1.1"]
    none = C.dns_config(_pod(dnsPolicy="None", dnsConfig={
        "nameservers": ["8.8.8.8"], "options": [{"name": "ndots", "value": "2"}]}), dns)
    assert none is not None and list(none.servers) == ["8.8.8.8"]
    assert list(none.options) == ["ndots:2"]
    no_cluster = C.dns_config(_pod(), C.DnsSettings(host_servers=["1.1.1.1"]))
    assert no_cluster is not None and list(no_cluster.servers) == ["1.1.1.1"]
    assert C.dns_config(_pod(hostNetwork=True), dns) is None


def test_etc_hosts_and_sandbox_config() -> None:
    p = _pod(hostname="h", subdomain="sub",
             hostAliases=[{"ip": "1.2.3.4", "hostnames": ["a", "b"]}])
    hosts = C.etc_hosts(p, ["10.0.0.7"], C.DnsSettings())
    assert "10.0.0.7\th.sub.shop.svc.cluster.local\th" in hosts
    assert "1.2.3.4\ta\tb" in hosts
    p["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    cfg = C.sandbox_config(p, 2, "/logs", C.DnsSettings())
    assert cfg.metadata.attempt == 2 and cfg.hostname == "h"
    assert cfg.log_directory == "/logs/shop_web_u"
    assert cfg.labels["io.kubernetes.pod.uid"] == "u"
    assert cfg.port_mappings[0].host_port == 8080


def test_atomic_writer(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert write_atomic(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert (target / "a").read_text() == "1" and (target / "dir" / "b").read_text() == "2"
    assert (target / "..data").is_symlink() and (target / "a").is_symlink()
    assert not write_atomic(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert write_atomic(target, {"a": (b"3", 0o644)})
    assert (target / "a").read_text() == "3" and not (target / "dir").exists()
    stamps = [p for p in target.iterdir() if p.name.startswith("..") and not p.is_symlink()]
    assert len(stamps) == 1  # the old payload is gone


def test_container_mounts_sub_path(tmp_path: Path) -> None:
    from kubelet.volumes import HostVolume
    vols = {"data": HostVolume(str(tmp_path)), "cfg": HostVolume(str(tmp_path / "c"), True)}
    c = {"volumeMounts": [{"name": "data", "mountPath": "/d", "subPathExpr": "$(POD)"},
                          {"name": "cfg", "mountPath": "/etc/cfg"},
                          {"name": "data", "mountPath": "/s", "readOnly": True,
                           "mountPropagation": "HostToContainer"}]}
    mounts = container_mounts(c, vols, {"POD": "web-1"})
    assert mounts[0].host_path == str(tmp_path / "web-1") and (tmp_path / "web-1").is_dir()
    assert mounts[1].readonly and mounts[2].readonly
    assert mounts[2].propagation == cri.PROPAGATION_HOST_TO_CONTAINER
    with pytest.raises(VolumeError):
        container_mounts({"volumeMounts": [{"name": "x", "mountPath": "/x"}]}, vols, {})
    with pytest.raises(VolumeError):
        container_mounts({"volumeMounts": [{"name": "data", "mountPath": "/x",
                                            "subPath": "../escape"}]}, vols, {})


def test_cni_hook_input_and_output() -> None:
    args = PodNetworkArgs("sb1", "/proc/1/ns/net", "ns", "web", "u1",
                          port_mappings=({"hostPort": 80, "containerPort": 8080,
                                          "protocol": "tcp", "hostIP": ""},),
                          prev_result={"ips": [{"address": "10.0.0.5/16"}]})
    assert cni_args(args) == ("IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web;"
                              "K8S_POD_INFRA_CONTAINER_ID=sb1;K8S_POD_UID=u1")
    conf = {"cniVersion": "1.0.0", "name": "kubelite", "type": "kubelite-cni"}
    add = plugin_input(conf, "ADD", args)
    assert add["runtimeConfig"]["portMappings"][0]["hostPort"] == 80
    assert "prevResult" not in add
    assert plugin_input(conf, "DEL", args)["prevResult"]["ips"][0]["address"] == "10.0.0.5/16"
    result = parse_plugin_output(0, b'{"ips": [{"address": "10.0.0.5/16"}]}', b"")
    assert result["ips"][0]["address"] == "10.0.0.5/16"
    with pytest.raises(CniError) as err:
        parse_plugin_output(1, json.dumps({
            "cniVersion": "1.0.0", "code": 11,
            "msg": "failed to assign an IP address to container",
            "details": "no free address"}).encode(), b"")
    assert err.value.code == 11
    assert str(err.value) == "failed to assign an IP address to container: no free address"
    with pytest.raises(CniError, match="plugin exited with 2"):
        parse_plugin_output(2, b"", b"Traceback ...")


def test_default_pull_policy() -> None:
    assert default_pull_policy("busybox") == "Always"
    assert default_pull_policy("kubelite/busybox:latest") == "Always"
    assert default_pull_policy("registry:5000/busybox") == "Always"
    assert default_pull_policy("registry:5000/busybox:1.36") == "IfNotPresent"
    assert default_pull_policy("busybox@sha256:abcd") == "IfNotPresent"
