"""cni.unary_grpc against a real grpcio server on a unix socket: replies, status codes and
messages (also percent-encoded ones), deadlines and an absent server; large replies (flow
control) and requests (split DATA frames), many calls, TCP; scripted HTTP/2 servers for
what grpcio never sends (padding, CONTINUATION, PING, Huffman, RST_STREAM, GOAWAY) and
servers that are not HTTP/2 or hang up; the HPACK encoder and decoder against `hpack`; and
that importing the module does not import h2."""

from __future__ import annotations

import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import grpc
import hpack
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


# --- a bytes-in, bytes-out service, for messages of any size --------------------------------

BYTES = "/test.Bytes/"


def _pattern(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def _echo(request: bytes, context: grpc.ServicerContext) -> bytes:
    return request


def _sized(request: bytes, context: grpc.ServicerContext) -> bytes:
    """The request is a decimal size; the reply is that many pseudo-random bytes."""
    return _pattern(int(request))


def _fail(request: bytes, context: grpc.ServicerContext) -> bytes:
    context.abort(grpc.StatusCode.FAILED_PRECONDITION, request.decode())
    raise AssertionError("abort raises")


def _bytes_server() -> grpc.Server:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handlers = {name: grpc.unary_unary_rpc_method_handler(behaviour)  # bytes in, bytes out
                for name, behaviour in (("Echo", _echo), ("Sized", _sized), ("Fail", _fail))}
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Bytes", handlers),))
    return server


@pytest.fixture()
def raw_server(tmp_path: Path) -> Iterator[str]:
    server = _bytes_server()
    server.add_insecure_port(f"unix:{tmp_path}/raw.sock")
    server.start()
    try:
        yield f"unix:{tmp_path}/raw.sock"
    finally:
        server.stop(0)


@pytest.fixture()
def sent_frames(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int, int]]:
    """(type, flags, stream, payload length) of every frame the client builds."""
    frames: list[tuple[int, int, int, int]] = []
    build = unary_grpc._frame

    def spy(ftype: int, flags: int, stream: int, payload: bytes | memoryview = b"") -> bytes:
        frames.append((ftype, flags, stream, len(payload)))
        return build(ftype, flags, stream, payload)

    monkeypatch.setattr(unary_grpc, "_frame", spy)
    return frames


DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20


@pytest.mark.parametrize("window", [65535, unary_grpc._WINDOW])
@pytest.mark.parametrize("size", [100 * 1024, 3 * 1024 * 1024])
def test_large_reply_is_flow_controlled(raw_server: str, sent_frames: list,
                                        monkeypatch: pytest.MonkeyPatch, window: int,
                                        size: int) -> None:
    monkeypatch.setattr(unary_grpc, "_WINDOW", window)
    reply = unary_grpc.unary_call(raw_server, BYTES + "Sized", str(size).encode(), timeout=20)
    assert reply == _pattern(size)
    updates = [stream for ftype, _, stream, _ in sent_frames if ftype == WINDOW_UPDATE]
    opening = 1 if window > 65535 else 0  # the WINDOW_UPDATE opening the connection window
    assert updates[:opening] == [0] * opening
    if size + 5 > window:  # the server could only send it all as we gave the windows back
        assert 1 in updates and 0 in updates[opening:]
    else:
        assert updates == [0] * opening


def test_reply_over_the_limit_is_resource_exhausted(raw_server: str) -> None:
    with pytest.raises(unary_grpc.RpcError) as err:
        unary_grpc.unary_call(raw_server, BYTES + "Sized", str(5 << 20).encode())
    assert err.value.code == unary_grpc.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("size", [16384 - 5 + 1, 200_000, 3 * 1024 * 1024])
def test_large_request_is_split_into_data_frames(raw_server: str, sent_frames: list,
                                                 size: int) -> None:
    request = _pattern(size)
    assert unary_grpc.unary_call(raw_server, BYTES + "Echo", request, timeout=20) == request
    data = [(flags, length) for ftype, flags, _, length in sent_frames if ftype == DATA]
    assert all(0 < length <= 16384 for _, length in data)
    assert sum(length for _, length in data) == size + 5
    assert len(data) >= -(-(size + 5) // 16384) >= 2
    assert [flags & END_STREAM for flags, _ in data] == [0] * (len(data) - 1) + [END_STREAM]


def test_many_sequential_calls(raw_server: str) -> None:
    for n in range(300):
        if n % 3 == 2:
            with pytest.raises(unary_grpc.RpcError) as err:
                unary_grpc.unary_call(raw_server, BYTES + "Fail", f"call {n}: 100% ✓".encode())
            assert (err.value.code, err.value.details) == (9, f"call {n}: 100% ✓")
        else:
            request = _pattern(n * 37)
            assert unary_grpc.unary_call(raw_server, BYTES + "Echo", request) == request


def test_tcp_target() -> None:
    server = _bytes_server()
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        assert unary_grpc.unary_call(f"127.0.0.1:{port}", BYTES + "Echo", b"tcp") == b"tcp"
    finally:
        server.stop(0)
    with pytest.raises(unary_grpc.RpcError) as err:
        unary_grpc.unary_call(f"127.0.0.1:{port}", BYTES + "Echo", b"tcp", timeout=2)
    assert err.value.code == unary_grpc.UNAVAILABLE


# --- scripted HTTP/2 servers -----------------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class Peer:
    """The server end of one connection, speaking HTTP/2 frame by frame."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buf = b""
        self.decoder = hpack.Decoder()
        self.encoder = hpack.Encoder()

    def recv_exact(self, size: int) -> bytes:
        while len(self.buf) < size:
            data = self.conn.recv(65536)
            if not data:
                raise EOFError
            self.buf += data
        out, self.buf = self.buf[:size], self.buf[size:]
        return out

    def frame(self) -> tuple[int, int, int, bytes]:
        head = self.recv_exact(9)
        payload = self.recv_exact(int.from_bytes(head[:3], "big"))
        return head[3], head[4], int.from_bytes(head[5:], "big") & 0x7FFFFFFF, payload

    def send(self, ftype: int, flags: int = 0, stream: int = 0, payload: bytes = b"") -> None:
        self.conn.sendall(len(payload).to_bytes(3, "big") + bytes((ftype, flags))
                          + stream.to_bytes(4, "big") + payload)

    def request(self) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """The client's preface and frames up to the end of its request."""
        assert self.recv_exact(len(PREFACE)) == PREFACE
        headers: list[tuple[bytes, bytes]] = []
        body = b""
        while True:
            ftype, flags, stream, payload = self.frame()
            if ftype == HEADERS:
                assert (stream, flags) == (1, END_HEADERS)
                headers += [(name, value) for name, value in self.decoder.decode(payload, raw=True)]
            elif ftype == DATA:
                body += payload
                if flags & END_STREAM:
                    return headers, body

    def settings(self, *pairs: tuple[int, int]) -> None:
        self.send(SETTINGS, 0, 0, b"".join(struct.pack(">HI", *pair) for pair in pairs))

    def headers(self, fields: list[tuple[str, str]], flags: int = END_HEADERS) -> None:
        self.send(HEADERS, flags, 1, self.encoder.encode(fields))

    def reply(self, message: bytes) -> None:
        self.headers([(":status", "200"), ("content-type", "application/grpc")])
        framed = struct.pack(">BI", 0, len(message)) + message
        for offset in range(0, len(framed), 16384):
            self.send(DATA, 0, 1, framed[offset:offset + 16384])
        self.headers([("grpc-status", "0")], END_HEADERS | END_STREAM)


Script = Callable[[Peer], None]


class FakeServer:
    """A unix socket server running `script` on each connection, one at a time."""

    def __init__(self, path: str, script: Script) -> None:
        self.script = script
        self.failures: list[AssertionError] = []
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(8)
        self.listener.settimeout(0.05)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(10)
                try:
                    self.script(Peer(conn))
                except AssertionError as e:
                    self.failures.append(e)
                except (OSError, EOFError):
                    pass  # the client hung up, as it does on errors

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.listener.close()


@pytest.fixture()
def scripted(tmp_path: Path) -> Iterator[Callable[[Script], str]]:
    """Starts a FakeServer for a script; gives the target to call."""
    servers: list[FakeServer] = []

    def start(script: Script) -> str:
        path = f"{tmp_path}/fake{len(servers)}.sock"
        servers.append(FakeServer(path, script))
        return f"unix:{path}"

    yield start
    for server in servers:
        server.close()
    assert [failure for server in servers for failure in server.failures] == []


def _call_fails(target: str, timeout: float = 5.0) -> unary_grpc.RpcError:
    with pytest.raises(unary_grpc.RpcError) as err:
        unary_grpc.unary_call(target, "/x.Y/Z", b"request", timeout=timeout)
    return err.value


@pytest.mark.parametrize("status", [0, 9])
def test_padding_priority_continuation_ping_huffman(scripted: Callable[[Script], str],
                                                    status: int) -> None:
    seen: dict[str, object] = {}

    def script(peer: Peer) -> None:
        seen["headers"], seen["body"] = peer.request()
        peer.settings((4, 1 << 20), (0x99, 7))  # a larger window and an unknown setting
        peer.send(PING, 0, 0, b"pingpong")
        answered: set[int] = set()
        while answered != {SETTINGS, PING}:
            ftype, flags, _, payload = peer.frame()
            if ftype in (SETTINGS, PING) and flags & ACK:
                assert payload == (b"pingpong" if ftype == PING else b"")
                answered.add(ftype)
        peer.send(PRIORITY, 0, 1, struct.pack(">IB", 0, 15))
        peer.send(0xFA, 0xFF, 0, b"an unknown frame type")
        peer.send(WINDOW_UPDATE, 0, 1, struct.pack(">I", 1000))
        block = peer.encoder.encode([(":status", "200"), ("content-type", "application/grpc"),
                                     ("x-long", "v" * 300)])  # Huffman-coded, indexed
        peer.send(HEADERS, PADDED | PRIORITY_FLAG, 1,
                  bytes((7,)) + struct.pack(">IB", 0, 15) + block[:5] + bytes(7))
        peer.send(CONTINUATION, 0, 1, block[5:9])
        peer.send(CONTINUATION, END_HEADERS, 1, block[9:])
        message = struct.pack(">BI", 0, 6) + b"answer"
        peer.send(DATA, PADDED, 1, bytes((3,)) + message[:4] + bytes(3))
        peer.send(DATA, PADDED, 1, bytes((0,)) + message[4:])
        peer.send(DATA, 0, 1, b"")
        trailers = [("grpc-status", str(status)), ("content-type", "application/grpc")]
        if status:
            trailers.append(("grpc-message", "bad %zz 100%25 %E2%9C%93 %4"))
        peer.headers(trailers, END_HEADERS | END_STREAM)

    target = scripted(script)
    if status:
        err = _call_fails(target)
        assert (err.code, err.details) == (9, "bad %zz 100% ✓ %4")
    else:
        assert unary_grpc.unary_call(target, "/x.Y/Z", b"request") == b"answer"
    headers = seen["headers"]
    assert isinstance(headers, list)
    assert [name for name, _ in headers] == [
        b":method", b":scheme", b":path", b":authority", b"grpc-timeout", b"content-type",
        b"te", b"user-agent"]
    assert dict(headers)[b":path"] == b"/x.Y/Z"
    assert dict(headers)[b":authority"] == b"localhost"
    assert dict(headers)[b"te"] == b"trailers"
    assert seen["body"] == b"\x00\x00\x00\x00\x07request"


def test_trailers_only_and_http_status(scripted: Callable[[Script], str]) -> None:
    def trailers_only(peer: Peer) -> None:
        peer.request()
        peer.settings()
        peer.headers([(":status", "200"), ("content-type", "application/grpc"),
                      ("grpc-status", "5"), ("grpc-message", "gone%21")],
                     END_HEADERS | END_STREAM)

    err = _call_fails(scripted(trailers_only))
    assert (err.code, err.details) == (unary_grpc.NOT_FOUND, "gone!")

    def unavailable(peer: Peer) -> None:
        peer.request()
        peer.settings()
        peer.headers([(":status", "503")], END_HEADERS | END_STREAM)

    err = _call_fails(scripted(unavailable))
    assert err.code == unary_grpc.UNAVAILABLE
    assert "HTTP status 503" in err.details


@pytest.mark.parametrize(("error", "code"), [(7, unary_grpc.UNAVAILABLE), (8, 1),
                                             (11, unary_grpc.RESOURCE_EXHAUSTED),
                                             (0, unary_grpc.INTERNAL), (2, unary_grpc.INTERNAL)])
def test_rst_stream(scripted: Callable[[Script], str], error: int, code: int) -> None:
    def script(peer: Peer) -> None:
        peer.request()
        peer.settings()
        peer.send(RST_STREAM, 0, 3, struct.pack(">I", 8))  # another stream: ignored
        peer.send(RST_STREAM, 0, 1, struct.pack(">I", error))

    assert _call_fails(scripted(script)).code == code


def test_goaway(scripted: Callable[[Script], str]) -> None:
    def refused(peer: Peer) -> None:
        peer.request()
        peer.settings()
        peer.send(GOAWAY, 0, 0, struct.pack(">II", 0, 0) + b"shutting down")

    err = _call_fails(scripted(refused))
    assert err.code == unary_grpc.UNAVAILABLE
    assert "shutting down" in err.details

    def draining(peer: Peer) -> None:  # our stream was accepted and completes
        peer.request()
        peer.settings()
        peer.send(GOAWAY, 0, 0, struct.pack(">II", 1, 0))
        peer.reply(b"last one")

    assert unary_grpc.unary_call(scripted(draining), "/x.Y/Z", b"") == b"last one"

    def dropped(peer: Peer) -> None:  # accepted, but the connection ends first
        peer.request()
        peer.settings()
        peer.send(GOAWAY, 0, 0, struct.pack(">II", 1, 2))
        peer.headers([(":status", "200"), ("content-type", "application/grpc")])

    assert _call_fails(scripted(dropped)).code == unary_grpc.UNAVAILABLE


def test_server_hangs_up(scripted: Callable[[Script], str]) -> None:
    def at_once(peer: Peer) -> None:
        return

    def after_settings(peer: Peer) -> None:
        peer.request()
        peer.settings()

    def mid_reply(peer: Peer) -> None:
        peer.request()
        peer.settings()
        peer.headers([(":status", "200"), ("content-type", "application/grpc")])
        peer.send(DATA, 0, 1, b"\x00\x00\x00\x00\x09half")

    for script in (at_once, after_settings, mid_reply):
        err = _call_fails(scripted(script))
        assert err.code == unary_grpc.UNAVAILABLE, script


def test_not_an_http2_server(scripted: Callable[[Script], str]) -> None:
    def http1(peer: Peer) -> None:
        peer.conn.recv(4096)
        peer.conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                          b"Connection: close\r\n\r\n")

    def headers_first(peer: Peer) -> None:
        peer.request()
        peer.headers([(":status", "200")])

    for script in (http1, headers_first):
        err = _call_fails(scripted(script))
        assert err.code == unary_grpc.UNAVAILABLE
        assert "not an HTTP/2 server" in err.details


def test_garbage_is_always_an_rpc_error(scripted: Callable[[Script], str]) -> None:
    """Random bytes, and random frames after a valid SETTINGS: an RpcError every time."""
    answer: list[bytes] = []

    def script(peer: Peer) -> None:
        peer.conn.sendall(answer[-1])

    target = scripted(script)
    for seed in range(300):
        rng = random.Random(seed)
        if seed % 3 == 0:
            answer.append(rng.randbytes(rng.randint(1, 300)))
        else:
            frames = [struct.pack(">I", 0)[1:] + bytes((SETTINGS, 0)) + bytes(4)]
            for _ in range(rng.randint(1, 6)):
                ftype = rng.choice([DATA, HEADERS, HEADERS, PRIORITY, RST_STREAM, SETTINGS,
                                    PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION,
                                    0xFA])
                payload = rng.randbytes(rng.choice([0, 4, 5, 6, 8, rng.randint(0, 60)]))
                frames.append(len(payload).to_bytes(3, "big")
                              + bytes((ftype, rng.randrange(256)))
                              + rng.choice([0, 1, 1, 1, 3]).to_bytes(4, "big") + payload)
            answer.append(b"".join(frames))
        with pytest.raises(unary_grpc.RpcError):
            unary_grpc.unary_call(target, "/x.Y/Z", b"request", timeout=5)


def test_request_respects_the_servers_flow_control(scripted: Callable[[Script], str]) -> None:
    """The server keeps the default 65535-byte windows and opens them a little whenever the
    client has used them up: the client never sends beyond them and finishes."""
    grants: list[int] = []

    def stingy(peer: Peer) -> None:
        assert peer.recv_exact(len(PREFACE)) == PREFACE
        peer.settings()
        received = b""
        connection_limit = stream_limit = 65535
        while True:
            ftype, flags, _, payload = peer.frame()
            if ftype == HEADERS:
                peer.decoder.decode(payload)
            if ftype != DATA:
                continue
            received += payload
            assert len(received) <= min(connection_limit, stream_limit)
            if flags & END_STREAM:
                break
            if len(received) == connection_limit:
                peer.send(WINDOW_UPDATE, 0, 0, struct.pack(">I", 20000))
                connection_limit += 20000
                grants.append(0)
            if len(received) == stream_limit:
                peer.send(WINDOW_UPDATE, 0, 1, struct.pack(">I", 30000))
                stream_limit += 30000
                grants.append(1)
        peer.reply(received[5:])

    request = _pattern(300_000)
    assert unary_grpc.unary_call(scripted(stingy), "/x.Y/Z", request, timeout=10) == request
    assert grants.count(0) >= 5 and grants.count(1) >= 3


def test_initial_window_setting_moves_the_stream_send_window() -> None:
    conn = unary_grpc._Connection(None, "/x.Y/Z", time.monotonic() + 5)  # type: ignore[arg-type]
    conn.send_stream_window -= 60000
    conn._on_settings(struct.pack(">HI", 4, 1000))
    assert conn.send_stream_window == 1000 - 60000
    conn._on_settings(struct.pack(">HIHI", 4, 100_000, 0x99, 1))
    assert conn.send_stream_window == 100_000 - 60000
    assert conn.send_window == 65535  # the connection window does not move
    with pytest.raises(unary_grpc._ProtocolError):
        conn._on_settings(struct.pack(">HI", 4, 1 << 31))


# --- HPACK -------------------------------------------------------------------------------------


def test_hpack_literal_encoder_decodes_with_hpack() -> None:
    assert unary_grpc._encode_headers([("te", "trailers")]) == b"\x00\x02te\x08trailers"
    fields = [(":method", "POST"), (":path", "/kubelite.ipamd.v1.CNIBackend/AddNetwork"),
              ("empty", ""), ("long", "v" * 200), ("longer", "w" * 20000), ("utf-8", "✓ 100%")]
    decoder = hpack.Decoder()
    assert decoder.decode(unary_grpc._encode_headers(fields)) == fields
    assert len(decoder.header_table.dynamic_entries) == 0  # nothing for anyone to index


def test_hpack_integers() -> None:
    # RFC 7541 C.1: 10 and 1337 in a 5-bit prefix, 42 in an 8-bit one.
    assert unary_grpc._encode_int(10, 5) == b"\x0a"
    assert unary_grpc._encode_int(1337, 5) == b"\x1f\x9a\x0a"
    assert unary_grpc._encode_int(42, 8) == b"\x2a"
    for prefix in (4, 5, 6, 7, 8):
        for value in (0, 1, 14, 15, 16, 126, 127, 128, 255, 256, 1337, 20000, 1 << 24):
            encoded = unary_grpc._encode_int(value, prefix)
            assert unary_grpc._decode_int(encoded, 0, prefix) == (value, len(encoded))


def test_hpack_static_table() -> None:
    decoder = unary_grpc._HpackDecoder()
    assert [decoder._entry(index) for index in range(1, 62)] == [
        tuple(entry) for entry in hpack.table.HeaderTable.STATIC_TABLE]


@pytest.mark.parametrize("huffman", [False, True])
def test_hpack_decoder_follows_hpack_encoder(huffman: bool) -> None:
    """Indexed fields, all three literal kinds, evictions and table size updates."""
    rng = random.Random(7)
    encoder = hpack.Encoder()
    decoder = unary_grpc._HpackDecoder()
    names = [":status", "content-type", "grpc-status", "grpc-message", "x-a", "x-b", "date",
             "server", "grpc-accept-encoding"]
    for n in range(400):
        if n % 50 == 25:
            encoder.header_table_size = rng.choice([0, 100, 256, 4096])
        fields = [(rng.choice(names),
                   "".join(rng.choice("abc %✓09") for _ in range(rng.choice([0, 3, 40, 300]))),
                   rng.random() < 0.2)  # sensitive: never indexed
                  for _ in range(rng.randint(1, 8))]
        block = encoder.encode(fields, huffman=huffman)
        assert decoder.decode(block) == [(name.encode(), value.encode())
                                         for name, value, _ in fields]
        assert decoder.size <= decoder.max_size


@pytest.mark.parametrize("block", [
    b"\x80",                      # index 0
    b"\xbe",                      # index 62: the dynamic table is empty
    b"\xff\x80\x80\x80\x80\x80",  # an endless integer
    b"\x40\x05ab",                # a string cut short
    b"\x00\x01",                  # a name cut short
    b"\x00\x81\x00",              # a bad Huffman code (padding not all ones)
    b"\x3f\xe2\x1f",              # table size 4097, over our 4096
    b"\x82\x3f\xe1\x1f",          # a table size update after a field
])
def test_hpack_decoder_rejects(block: bytes) -> None:
    with pytest.raises(unary_grpc._ProtocolError):
        unary_grpc._HpackDecoder().decode(block)


@pytest.mark.parametrize(("raw", "text"), [
    (b"plain", "plain"), (b"100%25", "100%"), (b"%E2%9C%93%e2%9c%93", "✓✓"),
    (b"%zz %4 %", "%zz %4 %"), (b"%FF", "\ufffd"), (b"% 1%+1", "% 1%+1"), (b"", ""),
])
def test_grpc_message_percent_decoding(raw: bytes, text: str) -> None:
    assert unary_grpc._percent_decode(raw) == text


# --- start-up cost -----------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], check=False, cwd=REPO,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def test_importing_does_not_import_h2() -> None:
    result = _python("import cni.unary_grpc, sys; assert 'h2' not in sys.modules, 'h2'; "
                     "assert 'hpack' not in sys.modules, 'hpack'")
    assert result.returncode == 0, result.stderr


def test_calls_to_grpcio_need_neither_h2_nor_hpack(backend: tuple[Backend, str]) -> None:
    """grpcio does not Huffman-code its response headers, so hpack is never imported."""
    _, sock = backend
    result = _python(f"""
import sys
from cni import unary_grpc
from proto import ipamd_pb2
method = '/kubelite.ipamd.v1.CNIBackend/AddNetwork'
raw = ipamd_pb2.AddNetworkRequest(k8s_pod_name='web').SerializeToString()
reply = unary_grpc.unary_call('unix:{sock}', method, raw)
assert ipamd_pb2.AddNetworkReply.FromString(reply).ipv4_addr == '10.200.0.7'
raw = ipamd_pb2.AddNetworkRequest(k8s_pod_name='full').SerializeToString()
try:
    unary_grpc.unary_call('unix:{sock}', method, raw)
except unary_grpc.RpcError as e:
    assert e.code == unary_grpc.RESOURCE_EXHAUSTED and '✓' in e.details, e
else:
    raise AssertionError('no error')
assert 'h2' not in sys.modules and 'hpack' not in sys.modules, 'imported'
""")
    assert result.returncode == 0, result.stderr
