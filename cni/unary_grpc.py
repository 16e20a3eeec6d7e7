"""A small blocking gRPC client for unary calls, for short-lived processes like the CNI plugin.

The plugin runs once per pod sandbox (ADD) and once per teardown (DEL). Importing grpcio
and starting its core costs ~70 ms of CPU per run, more than everything else the plugin
does; on two cores that alone capped pod startup. This client speaks the same gRPC wire
protocol (HTTP/2, `application/grpc`, length-prefixed messages, `grpc-status` trailers) with
the pure-Python `h2` library over one unix or TCP socket and costs ~20 ms to import.

Only what one unary call needs: no retries, no compression, no keep-alive, one stream per
connection. Messages are bytes; callers serialise with the generated protobuf classes.
"""

from __future__ import annotations

import socket
import struct
import time
from urllib.parse import unquote

import h2.config
import h2.connection
import h2.events

# gRPC status codes (grpc/doc/statuscodes.md).
OK = 0
DEADLINE_EXCEEDED = 4
NOT_FOUND = 5
RESOURCE_EXHAUSTED = 8
INTERNAL = 13
UNAVAILABLE = 14

CODE_NAMES = {0: "OK", 1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT",
              4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND", 6: "ALREADY_EXISTS",
              7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION",
              10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL",
              14: "UNAVAILABLE", 15: "DATA_LOSS", 16: "UNAUTHENTICATED"}


class RpcError(Exception):
    """A call that did not end with grpc-status 0."""

    def __init__(self, code: int, details: str) -> None:
        super().__init__(f"{CODE_NAMES.get(code, code)}: {details}")
        self.code = code
        self.details = details


def _connect(target: str, timeout: float) -> socket.socket:
    """`unix:/path` or `host:port`."""
    try:
        if target.startswith("unix:"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(target.removeprefix("unix:").removeprefix("//"))
            return sock
        host, _, port = target.rpartition(":")
        return socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    except OSError as e:
        raise RpcError(UNAVAILABLE, f"cannot connect to {target}: {e}") from None


def _grpc_timeout(seconds: float) -> str:
    """The grpc-timeout header: at most 8 digits and a unit."""
    millis = max(1, int(seconds * 1000))
    return f"{millis}m" if millis < 10 ** 8 else f"{int(seconds)}S"


def unary_call(target: str, method: str, request: bytes, *, timeout: float = 30.0) -> bytes:
    """Call `method` (`/package.Service/Method`) with a serialised request; returns the
    serialised reply or raises RpcError (UNAVAILABLE when the server cannot be reached,
    DEADLINE_EXCEEDED when `timeout` passes)."""
    deadline = time.monotonic() + timeout
    sock = _connect(target, timeout)
    try:
        return _call(sock, target, method, request, timeout, deadline)
    except TimeoutError:
        raise RpcError(DEADLINE_EXCEEDED, f"{method}: no reply within {timeout:g}s") from None
    except OSError as e:
        raise RpcError(UNAVAILABLE, f"{method}: {e}") from None
    finally:
        sock.close()


def _call(sock: socket.socket, target: str, method: str, request: bytes, timeout: float,
          deadline: float) -> bytes:
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    stream = conn.get_next_available_stream_id()
    authority = "localhost" if target.startswith("unix:") else target
    conn.send_headers(stream, [
        (":method", "POST"), (":scheme", "http"), (":path", method),
        (":authority", authority), ("content-type", "application/grpc"), ("te", "trailers"),
        ("grpc-timeout", _grpc_timeout(timeout)), ("user-agent", "kubelite-unary-grpc/0.1"),
    ])
    conn.send_data(stream, struct.pack(">BI", 0, len(request)) + request, end_stream=True)
    sock.sendall(conn.data_to_send())

    body = bytearray()
    headers: dict[str, str] = {}
    ended = False
    while not ended:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        data = sock.recv(65536)
        if not data:
            raise RpcError(UNAVAILABLE, f"{method}: connection closed by the server")
        for event in conn.receive_data(data):
            if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                headers.update((str(k), str(v)) for k, v in event.headers)
            elif isinstance(event, h2.events.DataReceived):
                body += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                ended = True
            elif isinstance(event, h2.events.StreamReset):
                raise RpcError(UNAVAILABLE, f"{method}: stream reset (code {event.error_code})")
            elif isinstance(event, h2.events.ConnectionTerminated):
                raise RpcError(UNAVAILABLE, f"{method}: connection terminated by the server")
        pending = conn.data_to_send()
        if pending:
            sock.sendall(pending)
    return _reply(method, headers, bytes(body))


def _reply(method: str, headers: dict[str, str], body: bytes) -> bytes:
    if headers.get(":status") != "200":
        raise RpcError(UNAVAILABLE, f"{method}: HTTP status {headers.get(':status')}")
    status = headers.get("grpc-status")
    if status is None:
        raise RpcError(INTERNAL, f"{method}: the reply has no grpc-status")
    code = int(status)
    if code != OK:
        raise RpcError(code, unquote(headers.get("grpc-message", "")))
    if len(body) < 5:
        raise RpcError(INTERNAL, f"{method}: the reply has no message")
    compressed, length = struct.unpack(">BI", body[:5])
    if compressed:
        raise RpcError(INTERNAL, f"{method}: compressed replies are not supported")
    return body[5:5 + length]
