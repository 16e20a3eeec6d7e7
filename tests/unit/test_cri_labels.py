"""How the CRI runtime names Docker containers and encodes CRI labels and annotations in
Docker labels (cri-dockerd's scheme), and its sandbox checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubelet.runtime import server as srv
from proto.cri import api_pb2 as api

POD = api.PodSandboxMetadata(name="web-7d4b9", namespace="shop", uid="0b8e-11", attempt=2)


def test_sandbox_name_round_trip() -> None:
    name = srv.sandbox_name(POD)
    assert name == "k8s_POD_web-7d4b9_shop_0b8e-11_2"
    assert srv.parse_sandbox_name("/" + name) == POD  # Docker prefixes names with "/"


def test_container_name_round_trip() -> None:
    md = api.ContainerMetadata(name="nginx", attempt=5)
    name = srv.container_name(POD, md)
    assert name == "k8s_nginx_web-7d4b9_shop_0b8e-11_5"
    assert srv.parse_container_name(name) == md


def test_names_with_cri_dockerds_random_suffix_parse() -> None:
    assert srv.parse_container_name("/k8s_app_p_ns_uid_1_0a1b2c3d").attempt == 1


@pytest.mark.parametrize("name", ["/nginx", "/k8s_a_b_c", "/k8s_a_b_c_d_x", "/docker_a_b_c_d_0",
                                  "/k8s_a_b_c_d_e_f_g"])
def test_foreign_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError):
        srv.parse_container_name(name)


def test_labels_and_annotations_round_trip() -> None:
    labels = {"app": "web", "io.kubernetes.pod.name": "web-7d4b9"}
    annotations = {"kubernetes.io/config.seen": "2024-01-01", "checksum": "abc"}
    docker_labels = srv.make_labels(labels, annotations)
    assert docker_labels["annotation.checksum"] == "abc"
    assert docker_labels["app"] == "web"
    # The runtime adds its own keys; they are not CRI labels.
    docker_labels.update({srv.CONTAINER_TYPE_LABEL: "container", srv.SANDBOX_ID_LABEL: "x",
                          srv.LOG_PATH_LABEL: "/var/log/pods/x/0.log", srv.NODE_LABEL: "n1",
                          srv.RUNTIME_HANDLER_LABEL: "runc"})
    assert srv.extract_labels(docker_labels) == (labels, annotations)


def test_extract_labels_of_nothing() -> None:
    assert srv.extract_labels(None) == ({}, {})


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    cp = srv.SandboxCheckpoint("abc", "shop", "web", "uid-1", port_mappings=[
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": ""}],
        annotations={"a": "b"}, network_ready=True, ips=["10.0.0.5"])
    cp.save(tmp_path)
    assert srv.SandboxCheckpoint.load(tmp_path, "abc") == cp
    args = cp.network_args("/proc/1/ns/net")
    assert (args.sandbox_id, args.netns, args.pod_namespace, args.pod_name, args.pod_uid) == (
        "abc", "/proc/1/ns/net", "shop", "web", "uid-1")
    assert args.port_mappings[0]["hostPort"] == 8080
    srv.SandboxCheckpoint.delete(tmp_path, "abc")
    srv.SandboxCheckpoint.delete(tmp_path, "abc")  # idempotent
    assert srv.SandboxCheckpoint.load(tmp_path, "abc") is None


def test_unreadable_checkpoint_is_ignored(tmp_path: Path) -> None:
    path = srv.SandboxCheckpoint.path(tmp_path, "bad")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert srv.SandboxCheckpoint.load(tmp_path, "bad") is None


def test_cni_port_mappings_keep_host_ports_only() -> None:
    mappings = [api.PortMapping(protocol=api.UDP, container_port=53, host_port=5353),
                api.PortMapping(container_port=80)]
    assert srv.cni_port_mappings(mappings) == [
        {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": ""}]


@pytest.mark.parametrize(("result", "ips"), [
    ({"cniVersion": "1.0.0", "ips": [{"address": "10.1.2.3/24", "gateway": "10.1.2.1"},
                                     {"address": "fd00::3/64"}]}, ["10.1.2.3", "fd00::3"]),
    ({"cniVersion": "0.2.0", "ip4": {"ip": "10.1.2.3/24"}}, ["10.1.2.3"]),
    ({}, []),
])
def test_sandbox_ips_from_cni_results(result: dict, ips: list[str]) -> None:
    assert srv.sandbox_ips(result) == ips
