"""cni.unary_grpc against a real grpcio server on a unix socket: replies, status codes and
messages (also percent-encoded ones), deadlines and an absent server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from cni import unary_grpc
from cni.plugin import (
    ERR_TRY_AGAIN_LATER,
    EXHAUSTED_MESSAGE,
    CniEnv,
    CniError,
    IpamdClient,
    NetConf,
)
from proto import ipamd_pb2, ipamd_pb2_grpc


class Backend(ipamd_pb2_grpc.CNIBackendServicer):
    def __init__(self) -> None:
        self.requests: list[ipamd_pb2.AddNetworkRequest] = []
        self.release = threading.Event()

    def AddNetwork(self, request, context):
        self.requests.append(request)
        if request.k8s_pod_name == "full":
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "no free address: 29/29 ✓ 100%")
        if request.k8s_pod_name == "slow":
            self.release.wait(5)
        return ipamd_pb2.AddNetworkReply(ipv4_addr="10.200.0.7", prefix_length=16,
                                         gateway="10.200.0.1", eni_id="eni-1",
                                         vpc_cidrs=["10.200.0.0/16"])

    def CheckNetwork(self, request, context):
        context.abort(grpc.StatusCode.NOT_FOUND, f"no address for {request.container_id}")


@pytest.fixture()
def backend(tmp_path: Path) -> Iterator[tuple[Backend, str]]:
    servicer = Backend()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    ipamd_pb2_grpc.add_CNIBackendServicer_to_server(servicer, server)
    sock = str(tmp_path / "ipamd.sock")
    server.add_insecure_port(f"unix:{sock}")
    server.start()
    try:
        yield servicer, sock
    finally:
        servicer.release.set()
        server.stop(0)


def _env(pod: str) -> CniEnv:
    return CniEnv(command="ADD", container_id="c1", netns="/proc/1/ns/net", ifname="eth0",
                  args={"K8S_POD_NAMESPACE": "ns", "K8S_POD_NAME": pod})


def _conf(sock: str) -> NetConf:
    return NetConf(cni_version="1.0.0", name="kubelite", type="kubelite-cni", ipamd_socket=sock)


def test_reply_decodes_and_request_arrives(backend: tuple[Backend, str]) -> None:
    servicer, sock = backend
    reply = IpamdClient(sock).add(_env("web"), _conf(sock))
    assert (reply.ipv4_addr, reply.prefix_length, reply.gateway) == ("10.200.0.7", 16,
                                                                      "10.200.0.1")
    assert list(reply.vpc_cidrs) == ["10.200.0.0/16"]
    assert servicer.requests[-1].k8s_pod_name == "web"
    assert servicer.requests[-1].container_id == "c1"


def test_status_code_and_unicode_message(backend: tuple[Backend, str]) -> None:
    _, sock = backend
    raw = ipamd_pb2.AddNetworkRequest(k8s_pod_name="full").SerializeToString()
    with pytest.raises(unary_grpc.RpcError) as err:
        unary_grpc.unary_call(f"unix:{sock}", "/kubelite.ipamd.v1.CNIBackend/AddNetwork", raw)
    assert err.value.code == unary_grpc.RESOURCE_EXHAUSTED
    assert err.value.details == "no free address: 29/29 ✓ 100%"


def test_exhausted_pool_is_try_again_later_with_eks_wording(backend: tuple[Backend, str]
                                                             ) -> None:
    _, sock = backend
    with pytest.raises(CniError) as err:
        IpamdClient(sock).add(_env("full"), _conf(sock))
    assert err.value.code == ERR_TRY_AGAIN_LATER
    assert err.value.msg == EXHAUSTED_MESSAGE


def test_not_found_and_unimplemented(backend: tuple[Backend, str]) -> None:
    _, sock = backend
    with pytest.raises(unary_grpc.RpcError) as err:
        unary_grpc.unary_call(f"unix:{sock}", "/kubelite.ipamd.v1.CNIBackend/CheckNetwork",
                              ipamd_pb2.CheckNetworkRequest(container_id="x").SerializeToString())
    assert (err.value.code, err.value.details) == (unary_grpc.NOT_FOUND, "no address for x")
    with pytest.raises(unary_grpc.RpcError) as err:
        unary_grpc.unary_call(f"unix:{sock}", "/kubelite.ipamd.v1.CNIBackend/Nope", b"")
    assert err.value.code == 12  # UNIMPLEMENTED


def test_deadline(backend: tuple[Backend, str]) -> None:
    _, sock = backend
    raw = ipamd_pb2.AddNetworkRequest(k8s_pod_name="slow").SerializeToString()
    started = time.monotonic()
    with pytest.raises(unary_grpc.RpcError) as err:
        unary_grpc.unary_call(f"unix:{sock}", "/kubelite.ipamd.v1.CNIBackend/AddNetwork", raw,
                              timeout=0.3)
    assert err.value.code == unary_grpc.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 3


def test_no_server_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(unary_grpc.RpcError) as err:
        unary_grpc.unary_call(f"unix:{tmp_path}/absent.sock", "/a.B/C", b"")
    assert err.value.code == unary_grpc.UNAVAILABLE
    with pytest.raises(CniError) as cni_err:
        IpamdClient(str(tmp_path / "absent.sock")).add(_env("web"),
                                                       _conf(str(tmp_path / "absent.sock")))
    assert cni_err.value.code == ERR_TRY_AGAIN_LATER
