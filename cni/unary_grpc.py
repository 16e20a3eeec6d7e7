"""A small blocking gRPC client for unary calls, for short-lived processes like the CNI plugin.

The plugin runs once per pod sandbox (ADD) and once per teardown (DEL), so its start-up CPU
is paid per pod. Importing grpcio and starting its core costs ~70 ms of CPU; the pure-Python
`h2` library that an earlier version of this module used still cost ~25 ms to import (its
event classes, `logging`, `hpack`...). So this module does the little HTTP/2 (RFC 7540) and
HPACK (RFC 7541) that one unary call needs itself, with only `socket`, `struct` and `time`:
importing it costs ~1-2 ms more than `socket` alone.

One call per connection, on stream 1, as gRPC's PROTOCOL-HTTP2.md describes:

- We send the client preface, SETTINGS (no server push, a 1 MiB stream window), a
  WINDOW_UPDATE opening the connection window as far, the request headers (HPACK literals
  "without indexing, new name", strings not Huffman-coded; in HEADERS and, were the block
  ever larger than 16384 bytes, CONTINUATION frames) and the length-prefixed message in
  DATA frames of at most 16384 bytes, within the server's flow-control windows (its
  WINDOW_UPDATEs and SETTINGS_INITIAL_WINDOW_SIZE are followed).
- We ACK the server's SETTINGS, answer PING, ignore PRIORITY and unknown frame types, read
  HEADERS + CONTINUATION and DATA (padding and priority fields allowed) and give received
  DATA back with WINDOW_UPDATEs (connection and stream) once half a window is used.
- Header blocks are decoded by a complete HPACK decoder (static and dynamic tables, size
  updates). grpcio sends its response headers and trailers without Huffman coding; should
  a server use it, that string is decoded with the `hpack` package, imported only then
  (it costs ~15 ms, most of it `logging`).
- Replies are headers, one message, trailers; or trailers only (an immediate error).
  grpc-message is percent-decoded.

Errors are all RpcError: UNAVAILABLE when the server cannot be reached, closes the
connection before the reply ends, refuses the call (GOAWAY not covering our stream,
RST_STREAM REFUSED_STREAM), is not an HTTP/2 server, or answers with an HTTP status other
than 200; DEADLINE_EXCEEDED when `timeout` passes; other RST_STREAM codes as
PROTOCOL-HTTP2.md maps them; INTERNAL for HTTP/2 or gRPC framing violations;
RESOURCE_EXHAUSTED for a reply message over 4 MiB (grpc's default limit). Not supported:
compression, TLS, metadata, streaming, retries, keep-alive. Messages are bytes; callers
serialise with the generated protobuf classes.
"""

from __future__ import annotations

import socket
import struct
import time

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


class _ProtocolError(Exception):
    """The server broke HTTP/2 or HPACK; a connection error, the call fails."""


# --- HTTP/2 (RFC 7540) -----------------------------------------------------------------

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA, _HEADERS, _PRIORITY, _RST_STREAM, _SETTINGS, _PUSH_PROMISE, _PING, _GOAWAY = range(8)
_WINDOW_UPDATE, _CONTINUATION = 8, 9
_END_STREAM = 0x1      # DATA, HEADERS
_ACK = 0x1             # SETTINGS, PING
_END_HEADERS = 0x4     # HEADERS, CONTINUATION
_PADDED = 0x8          # DATA, HEADERS
_PRIORITY_FLAG = 0x20  # HEADERS
_SETTINGS_ENABLE_PUSH = 0x2
_SETTINGS_INITIAL_WINDOW_SIZE = 0x4

_STREAM = 1               # the only stream we open
_MAX_FRAME = 16384        # SETTINGS_MAX_FRAME_SIZE: the default, which we keep both ways
_DEFAULT_WINDOW = 65535   # every flow-control window starts here
_WINDOW = 1 << 20         # our receive windows (stream: SETTINGS; connection: WINDOW_UPDATE)
_MAX_WINDOW = (1 << 31) - 1
_MAX_REPLY = 4 << 20      # largest reply message, as grpc's default receive limit
_MAX_HEADER_BLOCK = 1 << 16

_FRAME_HEADER = struct.Struct(">IBI")  # length << 8 | type, flags, stream id
_RESET_CODES = {7: UNAVAILABLE, 8: 1, 11: RESOURCE_EXHAUSTED, 12: 7}  # others: INTERNAL


def _frame(ftype: int, flags: int, stream: int, payload: bytes | memoryview = b"") -> bytes:
    return _FRAME_HEADER.pack(len(payload) << 8 | ftype, flags, stream) + payload


def _unpad(flags: int, payload: bytes, priority: bool) -> bytes:
    """A DATA or HEADERS payload without its pad length, padding and priority fields."""
    start, end = 0, len(payload)
    if flags & _PADDED:
        if not payload:
            raise _ProtocolError("padded frame without a pad length")
        start, end = 1, end - payload[0]
    if priority and flags & _PRIORITY_FLAG:
        start += 5
    if start > end:
        raise _ProtocolError("padding longer than the frame")
    return payload[start:end]


# --- HPACK (RFC 7541) ------------------------------------------------------------------

_STATIC_NAMES = (  # appendix A, indices 1-61
    b":authority :method :method :path :path :scheme :scheme :status :status :status :status "
    b":status :status :status accept-charset accept-encoding accept-language accept-ranges "
    b"accept access-control-allow-origin age allow authorization cache-control "
    b"content-disposition content-encoding content-language content-length content-location "
    b"content-range content-type cookie date etag expect expires from host if-match "
    b"if-modified-since if-none-match if-range if-unmodified-since last-modified link "
    b"location max-forwards proxy-authenticate proxy-authorization range referer refresh "
    b"retry-after server set-cookie strict-transport-security transfer-encoding user-agent "
    b"vary via www-authenticate").split()
_STATIC_VALUES = {**dict(enumerate(b"GET POST / /index.html http https 200 204 206 304 400 "
                                   b"404 500".split(), 2)), 16: b"gzip, deflate"}
_HEADER_TABLE_SIZE = 4096  # SETTINGS_HEADER_TABLE_SIZE: the default, which we keep


def _encode_int(value: int, prefix_bits: int) -> bytes:
    """An HPACK integer in a `prefix_bits` prefix (the byte's other bits left 0)."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((value,))
    out = bytearray((limit,))
    value -= limit
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _encode_headers(fields: list[tuple[str, str]]) -> bytes:
    """A header block of "literal header field without indexing, new name" representations
    with raw strings: nothing for either side to index, so nothing that can go wrong."""
    out = bytearray()
    for name, value in fields:
        out.append(0x00)
        for text in (name, value):
            raw = text.encode()
            out += _encode_int(len(raw), 7)  # the H bit stays 0: not Huffman-coded
            out += raw
    return bytes(out)


def _decode_int(block: bytes, i: int, prefix_bits: int) -> tuple[int, int]:
    limit = (1 << prefix_bits) - 1
    value = block[i] & limit
    i += 1
    if value < limit:
        return value, i
    shift = 0
    while True:
        byte = block[i]
        i += 1
        value += (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7
        if shift > 28:
            raise _ProtocolError("HPACK integer too large")


def _decode_string(block: bytes, i: int) -> tuple[bytes, int]:
    huffman = block[i] & 0x80
    length, i = _decode_int(block, i, 7)
    end = i + length
    if end > len(block):
        raise _ProtocolError("truncated HPACK string")
    return (_huffman_decode(block[i:end]) if huffman else block[i:end]), end


def _huffman_decode(raw: bytes) -> bytes:
    try:
        from hpack.exceptions import HPACKDecodingError
        from hpack.huffman_table import decode_huffman
    except ImportError:
        raise _ProtocolError("a Huffman-coded header, and the hpack package is missing") from None
    try:
        return decode_huffman(raw)
    except HPACKDecodingError as e:
        raise _ProtocolError(f"bad Huffman code: {e}") from None


class _HpackDecoder:
    def __init__(self) -> None:
        self.table: list[tuple[bytes, bytes]] = []  # the dynamic table, newest first
        self.size = 0
        self.max_size = _HEADER_TABLE_SIZE

    def decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        fields: list[tuple[bytes, bytes]] = []
        i = 0
        try:
            while i < len(block):
                byte = block[i]
                if byte & 0x80:  # indexed header field
                    index, i = _decode_int(block, i, 7)
                    fields.append(self._entry(index))
                elif byte & 0xE0 == 0x20:  # dynamic table size update
                    if fields:
                        raise _ProtocolError("table size update after a header field")
                    self.max_size, i = _decode_int(block, i, 5)
                    if self.max_size > _HEADER_TABLE_SIZE:
                        raise _ProtocolError(f"table size {self.max_size} over the limit")
                    self._evict(0)
                else:  # literal: with incremental indexing, without indexing, never indexed
                    index, i = _decode_int(block, i, 6 if byte & 0x40 else 4)
                    if index:
                        name = self._entry(index)[0]
                    else:
                        name, i = _decode_string(block, i)
                    value, i = _decode_string(block, i)
                    fields.append((name, value))
                    if byte & 0x40:
                        self._add(name, value)
        except IndexError:
            raise _ProtocolError("truncated header block") from None
        return fields

    def _entry(self, index: int) -> tuple[bytes, bytes]:
        if 1 <= index <= len(_STATIC_NAMES):
            return _STATIC_NAMES[index - 1], _STATIC_VALUES.get(index, b"")
        dynamic = index - len(_STATIC_NAMES) - 1
        if 0 <= dynamic < len(self.table):
            return self.table[dynamic]
        raise _ProtocolError(f"header index {index} out of range")

    def _add(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value) + 32
        self._evict(size)
        if size <= self.max_size:  # a larger entry just empties the table
            self.table.insert(0, (name, value))
            self.size += size

    def _evict(self, room: int) -> None:
        while self.table and self.size + room > self.max_size:
            name, value = self.table.pop()
            self.size -= len(name) + len(value) + 32


# --- the call --------------------------------------------------------------------------


def _connect(target: str, timeout: float) -> socket.socket:
    """`unix:/path` or `host:port`."""
    try:
        if target.startswith("unix:"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(target.removeprefix("unix:").removeprefix("//"))
            except OSError:
                sock.close()
                raise
            return sock
        host, _, port = target.rpartition(":")
        sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    except (OSError, ValueError) as e:
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
    authority = "localhost" if target.startswith("unix:") else target
    block = _encode_headers([
        (":method", "POST"), (":scheme", "http"), (":path", method),
        (":authority", authority), ("grpc-timeout", _grpc_timeout(timeout)),
        ("content-type", "application/grpc"), ("te", "trailers"),
        ("user-agent", "kubelite-unary-grpc/0.1"),
    ])
    conn = _Connection(sock, method, deadline)
    try:
        conn.run(block, struct.pack(">BI", 0, len(request)) + request)
    except _ProtocolError as e:
        if not conn.preface_seen:
            raise RpcError(UNAVAILABLE, f"{method}: not an HTTP/2 server ({e})") from None
        raise RpcError(INTERNAL, f"{method}: HTTP/2 protocol error: {e}") from None
    return _reply(method, conn.headers, conn.body)


class _Connection:
    """The client side of one HTTP/2 connection carrying one call on stream 1."""

    def __init__(self, sock: socket.socket, method: str, deadline: float) -> None:
        self.sock = sock
        self.method = method
        self.deadline = deadline
        self.inbuf = bytearray()
        self.out = bytearray()
        self.hpack = _HpackDecoder()
        self.preface_seen = False   # the server's first frame, SETTINGS, has arrived
        self.peer_initial_window = _DEFAULT_WINDOW
        self.send_window = _DEFAULT_WINDOW       # connection, what the server lets us send
        self.send_stream_window = _DEFAULT_WINDOW
        self.recv_window = _WINDOW               # connection, what we still let it send
        self.recv_stream_window = _WINDOW
        self.got_headers = False
        self.headers: dict[bytes, bytes] = {}
        self.body = bytearray()
        self.ended = False          # the server ended stream 1
        self.write_error: OSError | None = None

    def run(self, header_block: bytes, message: bytes) -> None:
        self.out += _PREFACE
        self.out += _frame(_SETTINGS, 0, 0, struct.pack(
            ">HIHI", _SETTINGS_ENABLE_PUSH, 0, _SETTINGS_INITIAL_WINDOW_SIZE, _WINDOW))
        if _WINDOW > _DEFAULT_WINDOW:
            self.out += _frame(_WINDOW_UPDATE, 0, 0, struct.pack(">I", _WINDOW - _DEFAULT_WINDOW))
        chunks = [header_block[i:i + _MAX_FRAME]
                  for i in range(0, len(header_block), _MAX_FRAME)] or [b""]
        for n, chunk in enumerate(chunks):
            flags = _END_HEADERS if n == len(chunks) - 1 else 0
            self.out += _frame(_HEADERS if n == 0 else _CONTINUATION, flags, _STREAM, chunk)

        pending = memoryview(message)
        sent = 0
        end_sent = False
        while not self.ended:
            while not end_sent and self.write_error is None:  # as much as the windows allow
                size = min(len(pending) - sent, _MAX_FRAME, self.send_window,
                           self.send_stream_window)
                if size <= 0 and sent < len(pending):
                    break
                size = max(size, 0)
                sent += size
                self.send_window -= size
                self.send_stream_window -= size
                end_sent = sent == len(pending)
                self.out += _frame(_DATA, _END_STREAM if end_sent else 0, _STREAM,
                                   pending[sent - size:sent])
            self._flush()
            self._handle(*self._next_frame())

    def _flush(self) -> None:
        """Sends what is queued. A server may close the connection after its reply, with
        our ACKs or WINDOW_UPDATEs under way: we stop writing, and read what it sent."""
        if self.out and self.write_error is None:
            self.sock.settimeout(self._remaining())
            try:
                self.sock.sendall(self.out)
            except TimeoutError:
                raise
            except OSError as e:
                self.write_error = e
        self.out.clear()

    def _remaining(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        return remaining

    def _next_frame(self) -> tuple[int, int, int, bytes]:
        buf = self.inbuf
        while True:
            if len(buf) >= 9:
                head, flags, stream = _FRAME_HEADER.unpack_from(buf)
                length = head >> 8
                if length > _MAX_FRAME:
                    raise _ProtocolError(f"a frame of {length} bytes, over {_MAX_FRAME}")
                if len(buf) >= 9 + length:
                    payload = bytes(buf[9:9 + length])
                    del buf[:9 + length]
                    return head & 0xFF, flags, stream & 0x7FFFFFFF, payload
            self.sock.settimeout(self._remaining())
            data = self.sock.recv(65536)
            if not data:
                why = f" ({self.write_error})" if self.write_error else ""
                raise RpcError(UNAVAILABLE,
                               f"{self.method}: connection closed by the server{why}")
            buf += data

    def _handle(self, ftype: int, flags: int, stream: int, payload: bytes) -> None:
        if not self.preface_seen:
            if ftype != _SETTINGS or flags & _ACK:
                raise _ProtocolError(f"the first frame is of type {ftype}, not SETTINGS")
            self.preface_seen = True
        if ftype == _DATA:
            self._on_data(flags, stream, payload)
        elif ftype == _HEADERS:
            self._on_headers(flags, stream, payload)
        elif ftype == _SETTINGS:
            if stream:
                raise _ProtocolError("SETTINGS on a stream")
            if not flags & _ACK:
                self._on_settings(payload)
                self.out += _frame(_SETTINGS, _ACK, 0)
        elif ftype == _PING:
            if stream or len(payload) != 8:
                raise _ProtocolError("malformed PING")
            if not flags & _ACK:
                self.out += _frame(_PING, _ACK, 0, payload)
        elif ftype == _WINDOW_UPDATE:
            self._on_window_update(stream, payload)
        elif ftype == _RST_STREAM:
            if len(payload) != 4 or not stream:
                raise _ProtocolError("malformed RST_STREAM")
            if stream == _STREAM:
                self._on_reset(struct.unpack(">I", payload)[0])
        elif ftype == _GOAWAY:
            self._on_goaway(stream, payload)
        elif ftype in (_PUSH_PROMISE, _CONTINUATION):
            raise _ProtocolError(f"unexpected frame of type {ftype}")
        # PRIORITY and unknown frame types are ignored.

    def _on_settings(self, payload: bytes) -> None:
        if len(payload) % 6:
            raise _ProtocolError("SETTINGS of a bad length")
        for offset in range(0, len(payload), 6):
            ident, value = struct.unpack_from(">HI", payload, offset)
            if ident == _SETTINGS_INITIAL_WINDOW_SIZE:
                if value > _MAX_WINDOW:
                    raise _ProtocolError("SETTINGS_INITIAL_WINDOW_SIZE too large")
                self.send_stream_window += value - self.peer_initial_window
                self.peer_initial_window = value
        # Header table size, max frame size (we send 16384 at most anyway) and the others
        # do not concern a client that sends one stream of literals.

    def _on_window_update(self, stream: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise _ProtocolError("malformed WINDOW_UPDATE")
        increment = struct.unpack(">I", payload)[0] & 0x7FFFFFFF
        if not increment:
            raise _ProtocolError("WINDOW_UPDATE of 0")
        if stream == 0:
            self.send_window += increment
            if self.send_window > _MAX_WINDOW:
                raise _ProtocolError("connection window overflow")
        elif stream == _STREAM:
            self.send_stream_window += increment
            if self.send_stream_window > _MAX_WINDOW:
                raise _ProtocolError("stream window overflow")

    def _on_reset(self, error: int) -> None:
        code = _RESET_CODES.get(error, INTERNAL)
        if code == 1 and time.monotonic() >= self.deadline:  # CANCEL: the server saw it expire
            raise TimeoutError
        raise RpcError(code, f"{self.method}: stream reset by the server (HTTP/2 error {error})")

    def _on_goaway(self, stream: int, payload: bytes) -> None:
        if stream or len(payload) < 8:
            raise _ProtocolError("malformed GOAWAY")
        last_stream, error = struct.unpack_from(">II", payload)
        if last_stream & 0x7FFFFFFF < _STREAM:
            debug = payload[8:].decode("utf-8", "replace")
            raise RpcError(UNAVAILABLE, f"{self.method}: the server is going away without "
                           f"processing the call (HTTP/2 error {error}{', ' if debug else ''}"
                           f"{debug})")
        # The call was accepted: it may still end; if the connection closes first, that is
        # UNAVAILABLE.

    def _on_headers(self, flags: int, stream: int, payload: bytes) -> None:
        end_stream = flags & _END_STREAM
        block = bytearray(_unpad(flags, payload, True))
        while not flags & _END_HEADERS:
            ftype, flags, next_stream, more = self._next_frame()
            if ftype != _CONTINUATION or next_stream != stream:
                raise _ProtocolError("a header block not continued by CONTINUATION")
            block += more
            if len(block) > _MAX_HEADER_BLOCK:
                raise _ProtocolError(f"a header block over {_MAX_HEADER_BLOCK} bytes")
        if stream != _STREAM:
            raise _ProtocolError(f"HEADERS on stream {stream}")
        fields = dict(self.hpack.decode(bytes(block)))
        if not self.got_headers:
            if fields.get(b":status", b"").startswith(b"1") and not end_stream:
                return  # informational (1xx); the response follows
            self.got_headers = True
        elif not end_stream:
            raise _ProtocolError("trailers without END_STREAM")
        self.headers.update(fields)
        self.ended = bool(end_stream)

    def _on_data(self, flags: int, stream: int, payload: bytes) -> None:
        if stream != _STREAM or not self.got_headers:
            raise _ProtocolError(f"DATA on stream {stream} before its headers")
        # The whole payload counts for flow control, padding included.
        self.recv_window -= len(payload)
        self.recv_stream_window -= len(payload)
        if self.recv_window < 0 or self.recv_stream_window < 0:
            raise _ProtocolError("DATA beyond the flow-control window")
        self.body += _unpad(flags, payload, False)
        if len(self.body) > 5 + _MAX_REPLY:
            raise RpcError(RESOURCE_EXHAUSTED,
                           f"{self.method}: the reply is larger than {_MAX_REPLY} bytes")
        if flags & _END_STREAM:
            self.ended = True
            return
        if self.recv_window <= _WINDOW // 2:
            self.out += _frame(_WINDOW_UPDATE, 0, 0,
                               struct.pack(">I", _WINDOW - self.recv_window))
            self.recv_window = _WINDOW
        if self.recv_stream_window <= _WINDOW // 2:
            self.out += _frame(_WINDOW_UPDATE, 0, _STREAM,
                               struct.pack(">I", _WINDOW - self.recv_stream_window))
            self.recv_stream_window = _WINDOW


_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def _percent_decode(raw: bytes) -> str:
    """grpc-message: UTF-8, percent-encoded; broken escapes are kept as they are."""
    parts = raw.split(b"%")
    out = bytearray(parts[0])
    for part in parts[1:]:
        if len(part) >= 2 and part[0] in _HEX_DIGITS and part[1] in _HEX_DIGITS:
            out.append(int(part[:2], 16))
            out += part[2:]
        else:
            out += b"%" + part
    return out.decode("utf-8", "replace")


def _reply(method: str, headers: dict[bytes, bytes], body: bytearray) -> bytes:
    status = headers.get(b":status")
    if status != b"200":
        shown = status.decode("latin-1") if status is not None else None
        raise RpcError(UNAVAILABLE, f"{method}: HTTP status {shown}")
    grpc_status = headers.get(b"grpc-status")
    if grpc_status is None:
        raise RpcError(INTERNAL, f"{method}: the reply has no grpc-status")
    if not grpc_status.isdigit():
        raise RpcError(2, f"{method}: bad grpc-status {grpc_status.decode('latin-1')!r}")
    code = int(grpc_status)
    if code != OK:
        raise RpcError(code, _percent_decode(headers.get(b"grpc-message", b"")))
    if len(body) < 5:
        raise RpcError(INTERNAL, f"{method}: the reply has no message")
    compressed, length = struct.unpack_from(">BI", body)
    if compressed:
        raise RpcError(INTERNAL, f"{method}: compressed replies are not supported")
    if len(body) != 5 + length:
        raise RpcError(INTERNAL, f"{method}: the reply holds {len(body) - 5} bytes after the "
                       f"message prefix, which announces {length}")
    return bytes(body[5:])
