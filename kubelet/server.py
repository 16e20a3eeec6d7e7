"""The kubelet's own HTTP server (upstream :10250): what the apiserver proxies to.

Routes, as upstream's `pkg/kubelet/server/server.go`:

| route | what |
| --- | --- |
| `GET /healthz` | `ok` |
| `GET /pods` | the pods this kubelet runs, as a `v1.PodList` |
| `GET /containerLogs/{ns}/{pod}/{container}` | the container's log: `follow`, `tailLines` (or the legacy `tail`), `previous`, `timestamps`, `sinceSeconds`, `sinceTime`, `limitBytes` |
| `GET /exec/{ns}/{pod}[/{uid}]/{container}` | `command=..&command=..&input=1&output=1&error=1&tty=1`, upgraded to a WebSocket speaking `v5.channel.k8s.io` or `v4.channel.k8s.io` |
| `GET /attach/{ns}/{pod}[/{uid}]/{container}` | `input=1&output=1&error=1&tty=1`, the same WebSocket protocols, the container's own process |
| `GET /stats/summary` | cpu and memory of the node and its pods (`statsapi.Summary`) |

Errors are plain text with upstream's status codes and wording, as the real kubelet answers;
the apiserver turns them into Status objects (logs) or hands them on as they are (exec).

It serves HTTPS only, and every route (`/healthz` too, as upstream's :10250) is behind the
authentication and authorization of kubelet/auth.py: 401 `Unauthorized` for a caller without
good credentials, 403 `Forbidden (...)` for one not allowed the route's `nodes/<sub>`.

**Logs** are read from the CRI log file the runtime writes (`ContainerStatus.log_path`,
`<RFC3339Nano> <stream> <P|F> <text>` lines, docs/runtime.md), exactly as upstream's kubelet
does for containerd and CRI-O; the file outlives its container, which is what `previous`
needs. Following polls the file and asks the runtime whether the container still runs.

**Exec** needs a bidirectional stream. Upstream, the CRI's `Exec` RPC returns the URL of the
runtime's streaming server, which the kubelet proxies to; kubelite's runtime has no streaming
server (`Exec` answers UNIMPLEMENTED, docs/runtime.md). So the kubelet runs the exec itself
against the dockerd the runtime uses: `POST /containers/{id}/exec`, then `POST
/exec/{id}/start` hijacked (`Upgrade: tcp`) for stdin/stdout/stderr, `/exec/{id}/resize` for
the terminal size, exec inspect for the exit code (`DockerExec` below). **Attach** is the
same with the container's own process: `POST /containers/{id}/attach` hijacked,
`/containers/{id}/resize`, Success on the error channel when its output ends
(`DockerAttach`). These are the only places the kubelet talks to Docker. The container ID
still comes from the CRI, so the runtime stays the one that knows which containers exist.
See docs/logs-exec.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import ssl
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO, Protocol

import grpc
from aiohttp import WSMessage, WSMsgType, web
from multidict import MultiMapping

from kubelet.auth import KubeletAuth, auth_middleware
from kubelet.runtime.client import RuntimeClient, rpc_code
from kubelet.runtime.docker import (
    DEFAULT_SOCKET,
    DockerClient,
    DockerError,
    StreamDemuxer,
    StreamName,
)
from proto.cri import api_pb2 as api

log = logging.getLogger(__name__)

Obj = dict[str, Any]

DEFAULT_PORT = 10250
# The remote command protocols over WebSocket, in our order of preference. v5 is v4 plus the
# CLOSE signal (a client half-closes stdin); kubectl 1.30+ asks for v5 only.
STREAM_PROTOCOL_V5 = "v5.channel.k8s.io"
STREAM_PROTOCOL_V4 = "v4.channel.k8s.io"
STREAM_PROTOCOLS = (STREAM_PROTOCOL_V5, STREAM_PROTOCOL_V4)
# Channel numbers: the first byte of every binary message.
STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE_SIGNAL = 255  # v5: [255, channel] closes that channel (stdin)

FOLLOW_POLL = 0.1  # s between reads of a followed log file that has no news
RUNNING_CHECK = 1.0  # s between "is the container still running?" checks while following
FINAL_GRACE = 0.3  # s to let the runtime's log copier write the last lines of an exited one
READ_CHUNK = 64 * 1024


# --- what the server needs from the kubelet -------------------------------------------------

class KubeletProvider(Protocol):
    """What the server asks of the kubelet hosting it (upstream's `HostInterface`).

    - `node_name`: the node this kubelet registers as.
    - `runtime`: the CRI client (container status and log path, stats).
    - `list_pods()`: the pods bound to this node that the kubelet runs, as API dicts (with
      their last known status); `/pods` and the pod lookups of every route read it.
    - `find_container(ns, pod, container)`: the CRI ID of the container instance that
      `kubectl logs` shows and `kubectl exec` enters: the running one, else the most recent
      one that ran (a crash-looping container's last run); None if none exists yet.
    - `previous_container(ns, pod, container)`: the CRI ID of the instance reported as
      `lastState.terminated` (the one before the current); None if there is none.

    IDs may carry the `docker://` scheme of `containerStatuses[].containerID`.
    """

    @property
    def node_name(self) -> str: ...

    @property
    def runtime(self) -> RuntimeClient: ...

    def list_pods(self) -> list[Obj]: ...

    async def find_container(self, namespace: str, pod: str, container: str) -> str | None: ...

    async def previous_container(self, namespace: str, pod: str,
                                 container: str) -> str | None: ...


@dataclass
class ServerState:
    provider: KubeletProvider
    docker_socket: str
    started: float = field(default_factory=time.time)
    docker: DockerClient | None = None
    # Open exec sessions, closed on shutdown so it does not wait for them.
    sockets: weakref.WeakSet[web.WebSocketResponse] = field(default_factory=weakref.WeakSet)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)


SERVER_STATE = web.AppKey("kubelet_server", ServerState)


class HTTPError(Exception):
    """Answer with this status and plain-text message (as upstream's kubelet does)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _container_id(raw: str | None) -> str | None:
    if not raw:
        return None
    return raw.split("://", 1)[1] if "://" in raw else raw


def _find_pod(provider: KubeletProvider, namespace: str, name: str) -> Obj | None:
    for pod in provider.list_pods():
        md = pod.get("metadata") or {}
        if md.get("name") == name and (md.get("namespace") or "default") == namespace:
            return pod
    return None


def _spec_has_container(pod: Obj, name: str) -> bool:
    spec = pod.get("spec") or {}
    return any(c.get("name") == name
               for key in ("initContainers", "containers", "ephemeralContainers")
               for c in spec.get(key) or [])


def _container_status(pod: Obj, name: str) -> Obj | None:
    status = pod.get("status") or {}
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for cs in status.get(key) or []:
            if cs.get("name") == name:
                return dict(cs)
    return None


def _format_time(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- CRI log files ---------------------------------------------------------------------------

_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


def parse_rfc3339_ns(value: str) -> int:
    """RFC 3339 with up to nanoseconds as nanoseconds since the epoch (ValueError if not)."""
    m = _RFC3339.fullmatch(value)
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {value!r}")
    zone = "+00:00" if m[3] == "Z" else m[3]
    seconds = int(datetime.fromisoformat(m[1] + zone).timestamp())
    return seconds * 1_000_000_000 + int((m[2] or "")[:9].ljust(9, "0"))


@dataclass(frozen=True)
class LogLine:
    """One line of a CRI log file: `<time> <stream> <tag>[:<tag>...] <content>`."""

    timestamp: bytes  # as written (RFC3339Nano); what `timestamps=true` prefixes
    time_ns: int
    stream: str
    partial: bool  # P: the message goes on in the next line; F: it ends here
    content: bytes  # without the newline


def parse_cri_line(line: bytes) -> LogLine | None:
    """A CRI log line (without its newline), None if it is not one."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    stamp, stream, tags = parts[0], parts[1], parts[2]
    try:
        ns = parse_rfc3339_ns(stamp.decode())
    except (ValueError, UnicodeDecodeError):
        return None
    if stream not in (b"stdout", b"stderr"):
        return None
    return LogLine(stamp, ns, stream.decode(), tags.split(b":")[0] == b"P",
                   parts[3] if len(parts) > 3 else b"")


def tail_offset(f: BinaryIO, lines: int, block: int = READ_CHUNK) -> int:
    """The offset where the last `lines` lines of the file start (the file's lines, as
    upstream's tail counts them: a partial line is a line)."""
    f.seek(0, os.SEEK_END)
    end = f.tell()
    if lines <= 0:
        return end
    pos = end
    newlines = 0
    # A final newline ends the last line rather than starting an empty one.
    skip_last = True
    while pos > 0:
        start = max(0, pos - block)
        f.seek(start)
        data = f.read(pos - start)
        i = len(data)
        while True:
            i = data.rfind(b"\n", 0, i)
            if i < 0:
                break
            if skip_last and start + i == end - 1:
                skip_last = False
                continue
            skip_last = False
            newlines += 1
            if newlines == lines:
                return start + i + 1
        skip_last = False
        pos = start
    return 0


@dataclass(frozen=True)
class LogOptions:
    """v1.PodLogOptions as the kubelet reads them from its query."""

    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    since_ns: int | None = None  # from sinceSeconds or sinceTime
    limit_bytes: int | None = None


def _query_bool(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "").lower() in ("true", "1")


def _query_int(query: Mapping[str, str], name: str, minimum: int) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise HTTPError(400, f"invalid value for {name}: {raw!r}") from None
    if value < minimum:
        raise HTTPError(422, f"{name}: Invalid value: {value}: must be greater than "
                             f"{'or equal to ' if minimum == 0 else ''}0")
    return value


def parse_log_options(query: Mapping[str, str], now_ns: int | None = None) -> LogOptions:
    tail = query.get("tailLines")
    legacy = query.get("tail")  # upstream still accepts `tail`; `all` means no limit
    if legacy:
        tail = None if legacy == "all" else legacy
    tail_lines = _query_int({"tailLines": tail or ""}, "tailLines", 0)
    since_seconds = _query_int(query, "sinceSeconds", 1)
    since_time = query.get("sinceTime")
    if since_seconds is not None and since_time:
        raise HTTPError(422, "at most one of `sinceTime` or `sinceSeconds` may be specified")
    since_ns = None
    if since_seconds is not None:
        since_ns = (now_ns if now_ns is not None else time.time_ns()) \
            - since_seconds * 1_000_000_000
    elif since_time:
        try:
            since_ns = parse_rfc3339_ns(since_time)
        except ValueError:
            raise HTTPError(400, f"invalid value for sinceTime: {since_time!r}") from None
    return LogOptions(follow=_query_bool(query, "follow"),
                      previous=_query_bool(query, "previous"),
                      timestamps=_query_bool(query, "timestamps"),
                      tail_lines=tail_lines, since_ns=since_ns,
                      limit_bytes=_query_int(query, "limitBytes", 1))


class LogFormatter:
    """CRI lines -> what `kubectl logs` prints: the content, newline-terminated unless the
    message goes on (P), the time first with `timestamps`, lines before `since` dropped,
    at most `limit_bytes` in all."""

    def __init__(self, opts: LogOptions) -> None:
        self.opts = opts
        self.written = 0
        self._line_start = True

    @property
    def done(self) -> bool:
        return self.opts.limit_bytes is not None and self.written >= self.opts.limit_bytes

    def format(self, lines: Sequence[bytes]) -> bytes:
        out = bytearray()
        for raw in lines:
            line = parse_cri_line(raw)
            if line is None:
                continue  # upstream logs and skips what it cannot parse
            if self.opts.since_ns is not None and line.time_ns < self.opts.since_ns:
                continue
            if self.opts.timestamps and self._line_start:
                out += line.timestamp + b" "
            out += line.content
            if not line.partial:
                out += b"\n"
            self._line_start = not line.partial
        if self.opts.limit_bytes is not None:
            out = out[:max(0, self.opts.limit_bytes - self.written)]
        self.written += len(out)
        return bytes(out)


async def stream_log_file(path: str, opts: LogOptions, write: Callable[[bytes], Awaitable[None]],
                          *, running: Callable[[], Awaitable[bool]],
                          gone: Callable[[], bool]) -> None:
    """Write the formatted log at `path` with `write`; with `follow`, keep reading while the
    container runs (`running()`), across rotations, until it exits or `gone()` (the client
    left, the server stops)."""
    formatter = LogFormatter(opts)
    f: BinaryIO = await asyncio.to_thread(open, path, "rb")
    try:
        if opts.tail_lines is not None:
            f.seek(await asyncio.to_thread(tail_offset, f, opts.tail_lines))
        pending = b""
        last_check = float("-inf")  # ask at the first end of file, then now and then
        exited = False
        while not formatter.done:
            chunk = await asyncio.to_thread(f.read, READ_CHUNK)
            if chunk:
                *lines, pending = (pending + chunk).split(b"\n")
                out = formatter.format(lines)
                if out:
                    await write(out)
                continue
            if not opts.follow or exited or gone():
                break
            rotated = await asyncio.to_thread(_replaced, path, f)
            if rotated is not None:
                # The kubelet (or anyone) renamed the file: the old one is read to its end,
                # the runtime now writes a new one at the same path.
                f.close()
                f, pending = rotated, b""
                continue
            if time.monotonic() - last_check >= RUNNING_CHECK:
                last_check = time.monotonic()
                if not await running():
                    # The runtime's copier may still be writing the last lines.
                    await asyncio.sleep(FINAL_GRACE)
                    exited = True
                    continue
            await asyncio.sleep(FOLLOW_POLL)
    finally:
        f.close()


def _replaced(path: str, f: BinaryIO) -> BinaryIO | None:
    """A new file at `path` if the open one was renamed away (rotation), else None."""
    try:
        if os.stat(path).st_ino == os.fstat(f.fileno()).st_ino:
            return None
        return open(path, "rb")  # the caller closes it
    except FileNotFoundError:
        return None


# --- exec through Docker -----------------------------------------------------------------------

@dataclass(frozen=True)
class ExecOptions:
    command: tuple[str, ...]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


def parse_exec_options(query: MultiMapping[str], *, command: bool = True) -> ExecOptions:
    """upstream remotecommand.NewOptions: `input`, `output`, `error`, `tty` are "1"; a
    command for exec (`command=False`: attach, which has none)."""
    def flag(name: str) -> bool:
        return str(query.get(name, "")).lower() in ("1", "true")

    tty, stdin, stdout, stderr = flag("tty"), flag("input"), flag("output"), flag("error")
    if tty and stderr:
        stderr = False  # a terminal has one output stream, as upstream
    if not (stdin or stdout or stderr):
        raise HTTPError(400, "you must specify at least 1 of stdin, stdout, stderr")
    argv = tuple(query.getall("command", [])) if command else ()
    if command and not argv:
        raise HTTPError(400, "you must specify at least one command for the container")
    return ExecOptions(argv, stdin, stdout, stderr, tty)


class DockerStream(ABC):
    """A process's streams through dockerd, on a hijacked connection (`Upgrade: tcp`): what
    we write is its stdin (half-closing it closes stdin), what we read is its output — one
    raw stream with a TTY, Docker's multiplexed frames without. Exec'd processes and a
    container's own process (attach) differ only in how the stream is opened, resized and
    how it ends."""

    def __init__(self, docker: DockerClient, ident: str, tty: bool,
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.docker = docker
        self.ident = ident
        self.tty = tty
        self._reader = reader
        self._writer = writer

    @staticmethod
    async def _hijack(docker: DockerClient, path: str, body: bytes = b""
                      ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        version = await docker.negotiate()
        reader, writer = await asyncio.open_unix_connection(docker.socket_path)
        try:
            writer.write(
                f"POST /v{version}{path} HTTP/1.1\r\nHost: docker\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode() + body)
            await writer.drain()
            status, headers = await _read_head(reader)
            if status not in (101, 200):
                raise DockerError(status, await _read_error(reader, headers))
        except BaseException:
            writer.close()
            raise
        return reader, writer

    async def output(self) -> AsyncIterator[tuple[StreamName, bytes]]:
        """The process's output until it closes it (it exits)."""
        demux = None if self.tty else StreamDemuxer()
        while chunk := await self._reader.read(READ_CHUNK):
            if demux is None:
                yield "stdout", chunk
            else:
                for frame in demux.feed(chunk):
                    yield frame

    async def write_stdin(self, data: bytes) -> None:
        if self._writer.is_closing():
            return
        try:
            self._writer.write(data)
            await self._writer.drain()
        except ConnectionError:
            pass  # the process is gone or closed its stdin; its end comes on the output

    def close_stdin(self) -> None:
        if not self._writer.is_closing() and self._writer.can_write_eof():
            self._writer.write_eof()

    async def _post(self, path: str) -> None:
        """A small POST to dockerd whose failure only matters for the log (a resize)."""
        version = await self.docker.negotiate()
        reader, writer = await asyncio.open_unix_connection(self.docker.socket_path)
        try:
            writer.write(f"POST /v{version}{path} HTTP/1.1\r\nHost: docker\r\n"
                         f"Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            status, headers = await _read_head(reader)
            if status >= 400:
                # Early resizes can race the process start; the next one will do.
                log.debug("%s: %s: %s", self.ident[:12], path,
                          await _read_error(reader, headers))
        finally:
            writer.close()

    @abstractmethod
    async def resize(self, width: int, height: int) -> None:
        """Set the terminal size."""

    @abstractmethod
    async def final_status(self) -> Obj:
        """The metav1.Status for the error channel once the output has ended."""

    def close(self) -> None:
        self._writer.close()


class DockerExec(DockerStream):
    """One process exec'd in a container (`POST /exec/{id}/start`)."""

    def __init__(self, docker: DockerClient, exec_id: str, tty: bool,
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 command: Sequence[str] = ()) -> None:
        super().__init__(docker, exec_id, tty, reader, writer)
        self.exec_id = exec_id
        self.command = tuple(command)

    @classmethod
    async def start(cls, docker: DockerClient, container_id: str, opts: ExecOptions
                    ) -> DockerExec:
        exec_id = await docker.exec_create(container_id, opts.command, tty=opts.tty,
                                           stdin=opts.stdin)
        body = json.dumps({"Detach": False, "Tty": opts.tty}).encode()
        reader, writer = await cls._hijack(docker, f"/exec/{exec_id}/start", body)
        return cls(docker, exec_id, opts.tty, reader, writer, opts.command)

    async def resize(self, width: int, height: int) -> None:
        await self._post(f"/exec/{self.exec_id}/resize?h={height}&w={width}")

    async def exit_code(self) -> int:
        """The exit code once dockerd has recorded it (-1 if it never does)."""
        # The stream ends when the process closes its output, a moment before dockerd
        # records the exit.
        for _ in range(100):
            info = await self.docker.exec_inspect(self.exec_id)
            if not info.get("Running"):
                code = info.get("ExitCode")
                return int(code) if code is not None else -1
            await asyncio.sleep(0.02)
        return -1

    async def final_status(self) -> Obj:
        return exec_status(await self.exit_code(), self.command)


class DockerAttach(DockerStream):
    """The streams of a container's own process (`POST /containers/{id}/attach`), as
    `kubectl attach` and `kubectl run -it` use them. Its stdin is there only when the
    container was created with `stdin: true`; with `stdinOnce` Docker closes it after the
    first attach ends."""

    @classmethod
    async def start(cls, docker: DockerClient, container_id: str, opts: ExecOptions,
                    tty: bool) -> DockerAttach:
        query = "&".join(f"{name}={int(on)}" for name, on in (
            ("stream", True), ("stdin", opts.stdin), ("stdout", opts.stdout),
            ("stderr", opts.stderr)))
        reader, writer = await cls._hijack(docker, f"/containers/{container_id}/attach?{query}")
        return cls(docker, container_id, tty, reader, writer)

    async def resize(self, width: int, height: int) -> None:
        await self._post(f"/containers/{self.ident}/resize?h={height}&w={width}")

    async def final_status(self) -> Obj:
        # The stream ends when the process ends (or closes its output): a finished attach.
        return {"metadata": {}, "status": "Success"}


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = {}
    for line in header_lines:
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    return status, headers


async def _read_error(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> str:
    length = int(headers.get("content-length") or 0)
    raw = await reader.readexactly(length) if length else b""
    try:
        return str(json.loads(raw)["message"])
    except (ValueError, KeyError, TypeError):
        return raw.decode(errors="replace").strip() or "dockerd refused the exec"


def exec_status(code: int, command: Sequence[str]) -> Obj:
    """The metav1.Status sent on the error channel when the process has ended."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    if code < 0:
        return {"metadata": {}, "status": "Failure", "reason": "InternalError",
                "message": f"error executing command [{' '.join(command)}]: "
                           "the exit code is unknown"}
    return {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": f"command terminated with non-zero exit code: error executing "
                       f"command [{' '.join(command)}], exit code {code}",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def channel_message(msg: WSMessage) -> bytes | None:
    """A channel-protocol message's bytes (channel byte first), or None for control frames.
    Clients may send one as a text frame (the official Python client does for str input);
    upstream reads both frame types alike."""
    if msg.type == WSMsgType.BINARY:
        return bytes(msg.data)
    if msg.type == WSMsgType.TEXT:
        return str(msg.data).encode()
    return None


async def _pump_output(ws: web.WebSocketResponse, session: DockerStream,
                       opts: ExecOptions) -> None:
    async for stream, data in session.output():
        if stream == "stdout" and opts.stdout:
            await ws.send_bytes(bytes([STDOUT]) + data)
        elif stream == "stderr" and opts.stderr:
            await ws.send_bytes(bytes([STDERR]) + data)


async def _pump_input(ws: web.WebSocketResponse, session: DockerStream, opts: ExecOptions,
                      protocol: str) -> None:
    async for msg in ws:
        raw = channel_message(msg)
        if not raw:
            continue
        channel, data = raw[0], raw[1:]
        if channel == STDIN and opts.stdin:
            await session.write_stdin(data)
        elif channel == RESIZE and opts.tty:
            try:
                size = json.loads(data)
                width, height = int(size.get("Width") or 0), int(size.get("Height") or 0)
            except (ValueError, TypeError, AttributeError):
                continue
            if width > 0 and height > 0:
                try:
                    await session.resize(width, height)
                except OSError as e:
                    log.debug("%s: resize: %s", session.ident[:12], e)
        elif channel == CLOSE_SIGNAL and protocol == STREAM_PROTOCOL_V5 \
                and data[:1] == bytes([STDIN]):
            session.close_stdin()


async def close_after_reader(ws: web.WebSocketResponse, reader: asyncio.Task[Any]) -> None:
    """Close `ws` with a full closing handshake: stop `reader`, the task iterating it, first.
    aiohttp's close() drops the connection at once, without waiting for the peer's close
    frame, when another task is in receive(); over TLS the close_notify then leaves the peer
    unable to send its reply, and the apiserver's relay reports an abnormal closure."""
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await reader
    await ws.close()


async def run_exec_session(ws: web.WebSocketResponse, session: DockerStream, opts: ExecOptions,
                           protocol: str, name: str) -> None:
    """Pipe the WebSocket and the process until it ends, then report its exit on the error
    channel and close (normal closure), as upstream's remotecommand server does."""
    out = asyncio.create_task(_pump_output(ws, session, opts), name=f"exec-output:{name}")
    inp = asyncio.create_task(_pump_input(ws, session, opts, protocol),
                              name=f"exec-input:{name}")
    try:
        await asyncio.wait({out, inp}, return_when=asyncio.FIRST_COMPLETED)
        error = out.exception() if out.done() else None
        # Otherwise the client went away (its side closed, or sending to it failed): Docker
        # cannot kill an exec'd process, but closing its stream closes its stdin (an
        # interactive shell exits).
        if out.done() and not ws.closed and not isinstance(error, ConnectionError):
            if error is not None:
                log.warning("exec %s: reading the output failed: %s", name, error)
                status: Obj = {"metadata": {}, "status": "Failure", "reason": "InternalError",
                               "message": f"error reading the output of "
                                          f"[{' '.join(opts.command)}]: {error}"}
            else:
                status = await session.final_status()
            with contextlib.suppress(ConnectionError):
                await ws.send_bytes(bytes([ERROR]) + json.dumps(status).encode())
            await close_after_reader(ws, inp)
    finally:
        for task in (out, inp):
            task.cancel()
        for task in (out, inp):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        session.close()


# --- handlers ----------------------------------------------------------------------------------

@web.middleware
async def _plain_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)  # type: ignore[no-any-return]
    except HTTPError as e:
        return web.Response(status=e.status, text=e.message)


async def serve_healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def serve_pods(request: web.Request) -> web.Response:
    provider = request.app[SERVER_STATE].provider
    body = {"kind": "PodList", "apiVersion": "v1", "metadata": {},
            "items": provider.list_pods()}
    return web.json_response(body)


def _pod_and_container(provider: KubeletProvider, request: web.Request,
                       missing: str) -> tuple[Obj, str, str, str]:
    """The pod (404 with `missing` if the kubelet does not run it), namespace, pod and
    container names of a request's path."""
    ns = request.match_info["namespace"]
    name = request.match_info["pod"]
    container = request.match_info["container"]
    pod = _find_pod(provider, ns, name)
    if pod is None:
        raise HTTPError(404, missing.format(name=name))
    return pod, ns, name, container


async def _log_container_id(provider: KubeletProvider, pod: Obj, ns: str, name: str,
                            container: str, previous: bool) -> str:
    """Which instance's log to read, with upstream's answers when there is none
    (validateContainerLogStatus)."""
    if previous:
        cid = _container_id(await provider.previous_container(ns, name, container))
        if cid is None:
            raise HTTPError(400, f'previous terminated container "{container}" in pod '
                                 f'"{name}" not found')
        return cid
    cid = _container_id(await provider.find_container(ns, name, container))
    if cid is not None:
        return cid
    waiting = ((_container_status(pod, container) or {}).get("state") or {}).get("waiting")
    if waiting is not None:
        reason = str(waiting.get("reason") or "")
        if reason == "ErrImagePull":
            reason = "image can't be pulled"
        elif reason == "ImagePullBackOff":
            reason = "trying and failing to pull image"
        raise HTTPError(400, f'container "{container}" in pod "{name}" is waiting to start: '
                             f'{reason or "ContainerCreating"}')
    raise HTTPError(400, f'container "{container}" in pod "{name}" is not available')


async def serve_container_logs(request: web.Request) -> web.StreamResponse:
    state = request.app[SERVER_STATE]
    provider = state.provider
    opts = parse_log_options(request.query)
    pod, ns, name, container = _pod_and_container(provider, request,
                                                  'pod "{name}" does not exist')
    if not _spec_has_container(pod, container):
        raise HTTPError(404, f'container "{container}" not found in pod "{name}"')
    cid = await _log_container_id(provider, pod, ns, name, container, opts.previous)
    try:
        status = await provider.runtime.container_status(cid)
    except grpc.aio.AioRpcError as e:
        if rpc_code(e) == grpc.StatusCode.NOT_FOUND:
            raise HTTPError(400, f'container "{container}" in pod "{name}" is not available'
                            ) from None
        raise HTTPError(500, f"failed to get container status {cid[:12]}: {e.details()}"
                        ) from None
    path = status.log_path
    if not path:
        raise HTTPError(400, f'container "{container}" in pod "{name}" has no log file')
    if not os.path.exists(path):
        raise HTTPError(400, f'failed to open log file "{path}": no such file or directory')

    async def running() -> bool:
        try:
            current = await provider.runtime.container_status(cid)
        except grpc.aio.AioRpcError:
            return False
        return bool(current.state == api.CONTAINER_RUNNING)

    def gone() -> bool:
        transport = request.transport
        return state.stopping.is_set() or transport is None or transport.is_closing()

    resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
    await resp.prepare(request)
    try:
        await stream_log_file(path, opts, resp.write, running=running, gone=gone)
    except ConnectionError:
        return resp  # the client left
    await resp.write_eof()
    return resp


async def serve_exec(request: web.Request) -> web.StreamResponse:
    """`/exec/{ns}/{pod}/{container}?command=..&input=1..`: a process run in the container."""
    opts = parse_exec_options(request.query)
    return await _serve_stream(request, opts, "exec",
                               lambda docker, cid, pod: DockerExec.start(docker, cid, opts))


async def serve_attach(request: web.Request) -> web.StreamResponse:
    """`/attach/{ns}/{pod}/{container}?input=1&output=1..`: the container's own process."""
    opts = parse_exec_options(request.query, command=False)

    def start(docker: DockerClient, cid: str, spec: Obj) -> Awaitable[DockerStream]:
        # The stream is raw exactly when the container has a terminal, whatever was asked.
        return DockerAttach.start(docker, cid, opts, tty=bool(spec.get("tty")))
    return await _serve_stream(request, opts, "attach", start)


StartStream = Callable[[DockerClient, str, Obj], Awaitable[DockerStream]]


async def _serve_stream(request: web.Request, opts: ExecOptions, kind: str,
                        start: StartStream) -> web.StreamResponse:
    state = request.app[SERVER_STATE]
    provider = state.provider
    pod, ns, name, container = _pod_and_container(provider, request, "pod does not exist")
    uid = request.match_info.get("uid")
    if uid and (pod.get("metadata") or {}).get("uid") != uid:
        raise HTTPError(404, "pod not found")
    cid = _container_id(await provider.find_container(ns, name, container))
    running = False
    if cid is not None and _spec_has_container(pod, container):
        with contextlib.suppress(grpc.aio.AioRpcError):
            running = (await provider.runtime.container_status(cid)).state \
                == api.CONTAINER_RUNNING
    if cid is None or not running:
        raise HTTPError(500, f'container not found ("{container}")')

    ws = web.WebSocketResponse(protocols=STREAM_PROTOCOLS, autoping=True)
    ready = ws.can_prepare(request)
    if not ready.ok:
        # Also what SPDY (kubectl's fallback) gets: kubelite streams over WebSocket only.
        # No ": " in the text: kubectl would read "a: b" as a YAML Status and print nothing.
        raise HTTPError(400, f"upgrade request required - kubelite's kubelet streams {kind} "
                             f"over WebSocket ({', '.join(STREAM_PROTOCOLS)}) only, not SPDY")
    if ready.protocol not in STREAM_PROTOCOLS:
        offered = request.headers.get("Sec-WebSocket-Protocol", "")
        raise HTTPError(400, f"unable to negotiate a remote command protocol: client offered "
                             f"[{offered}], server supports [{' '.join(STREAM_PROTOCOLS)}]")

    assert state.docker is not None
    key = f"{ns}/{name}/{container}"
    spec: Obj = next((c for c in (pod.get("spec") or {}).get("containers") or []
                      if c.get("name") == container), {})
    try:
        session = await start(state.docker, cid, spec)
    except DockerError as e:
        raise HTTPError(500, f"{kind} in {key}: {e}") from None
    try:
        await ws.prepare(request)
    except BaseException:
        session.close()
        raise
    log.info("%s %s: %s (%s)", kind, key, list(opts.command), ready.protocol)
    state.sockets.add(ws)
    await run_exec_session(ws, session, opts, ready.protocol, key)
    return ws


# --- port forwarding ---------------------------------------------------------------------------

PORT_FORWARD_PROTOCOLS = (STREAM_PROTOCOL_V4,)


async def serve_port_forward(request: web.Request) -> web.StreamResponse:
    """`/portForward/{ns}/{pod}?port=..`: upstream's WebSocket port-forward protocol
    (`v4.channel.k8s.io`). For the i-th port, channel 2i carries data and 2i+1 errors; each
    starts with the port number (uint16, little endian). The kubelet dials the pod's IP on
    the node: every pod address is reachable from here (the VPC bridge)."""
    state = request.app[SERVER_STATE]
    ns, name = request.match_info["namespace"], request.match_info["pod"]
    pod = _find_pod(state.provider, ns, name)
    if pod is None:
        raise HTTPError(404, "pod not found")
    ws = web.WebSocketResponse(protocols=PORT_FORWARD_PROTOCOLS, autoping=True)
    ready = ws.can_prepare(request)
    offered = request.headers.get("Sec-WebSocket-Protocol", "").strip()
    if not ready.ok:
        # No ": " in the text: kubectl would read "a: b" as a YAML Status and print nothing.
        raise HTTPError(400, "upgrade request required - kubelite's kubelet forwards ports "
                             f"over WebSocket ({STREAM_PROTOCOL_V4}) only, not SPDY, so "
                             "kubectl port-forward cannot use it yet (the official Python "
                             "client's portforward can)")
    if offered and ready.protocol not in PORT_FORWARD_PROTOCOLS:
        # kubectl tunnels SPDY in a WebSocket ("SPDY/3.1+portforward.k8s.io"): not spoken here.
        raise HTTPError(400, f"unable to negotiate a port-forward protocol: client offered "
                             f"[{offered}], server supports [{' '.join(PORT_FORWARD_PROTOCOLS)}]")
    ports: list[int] = []
    for raw in request.query.getall("port", []):
        for part in str(raw).split(","):
            if not part.strip():
                continue
            if not part.strip().isdigit() or not 0 < int(part) < 65536:
                raise HTTPError(400, f'invalid port "{part.strip()}"')
            ports.append(int(part))
    if not ports:
        raise HTTPError(400, "at least one port must be specified")
    ip = (pod.get("status") or {}).get("podIP")
    if not ip:
        raise HTTPError(500, f"pod {ns}/{name} has no IP address")
    connections: list[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = []
    errors_: list[str] = []
    for port in ports:
        try:
            connections.append(await asyncio.wait_for(asyncio.open_connection(ip, port), 10))
            errors_.append("")
        except (OSError, TimeoutError) as e:
            connections.append(None)
            errors_.append(f"error forwarding port {port} to pod {name}: {e}")
    await ws.prepare(request)
    state.sockets.add(ws)
    key = f"{ns}/{name}"
    log.info("port-forward %s: ports %s", key, ports)
    tasks: list[asyncio.Task[None]] = []
    try:
        for i, port in enumerate(ports):
            head = port.to_bytes(2, "little")
            await ws.send_bytes(bytes([2 * i]) + head)
            await ws.send_bytes(bytes([2 * i + 1]) + head)
            if errors_[i]:
                await ws.send_bytes(bytes([2 * i + 1]) + errors_[i].encode())
            conn = connections[i]
            if conn is not None:
                tasks.append(asyncio.create_task(_forward_out(ws, conn[0], 2 * i),
                                                 name=f"port-forward-out:{key}:{port}"))
        writers = {2 * i: c[1] for i, c in enumerate(connections) if c is not None}
        reader = asyncio.create_task(_forward_in(ws, writers), name=f"port-forward-in:{key}")
        tasks.append(reader)
        # The first to end ends the session: the client leaving, a pod connection closing
        # (its forwarder returns) or failing.
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        await close_after_reader(ws, reader)
    except ConnectionError:
        pass  # the client went away
    finally:
        for t in tasks:
            t.cancel()
        for conn in connections:
            if conn is not None:
                conn[1].close()
        await asyncio.gather(*tasks, return_exceptions=True)
    return ws


async def _forward_in(ws: web.WebSocketResponse,
                      writers: dict[int, asyncio.StreamWriter]) -> None:
    """The client's bytes to the pod connection of their data channel, until it leaves."""
    async for msg in ws:
        frame = channel_message(msg)
        if frame and frame[0] in writers:
            writer = writers[frame[0]]
            writer.write(frame[1:])
            await writer.drain()


async def _forward_out(ws: web.WebSocketResponse, reader: asyncio.StreamReader,
                       channel: int) -> None:
    """The pod's bytes to the client on `channel`, until the pod closes the connection
    (which ends the session)."""
    while data := await reader.read(READ_CHUNK):
        await ws.send_bytes(bytes([channel]) + data)


# --- stats ------------------------------------------------------------------------------------

def _cpu(c: api.CpuUsage) -> Obj:
    out: Obj = {"time": _format_time(c.timestamp)}
    if c.HasField("usage_nano_cores"):
        out["usageNanoCores"] = c.usage_nano_cores.value
    if c.HasField("usage_core_nano_seconds"):
        out["usageCoreNanoSeconds"] = c.usage_core_nano_seconds.value
    return out


_MEMORY_FIELDS = (("available_bytes", "availableBytes"), ("usage_bytes", "usageBytes"),
                  ("working_set_bytes", "workingSetBytes"), ("rss_bytes", "rssBytes"),
                  ("page_faults", "pageFaults"), ("major_page_faults", "majorPageFaults"))


def _memory(m: api.MemoryUsage) -> Obj:
    out: Obj = {"time": _format_time(m.timestamp)}
    for proto_name, json_name in _MEMORY_FIELDS:
        if m.HasField(proto_name):
            out[json_name] = getattr(m, proto_name).value
    return out


def _sum(parts: Sequence[Obj], now: str) -> Obj:
    """Add up cpu or memory dicts (keys present in any of them)."""
    total: Obj = {"time": now}
    for part in parts:
        for key, value in part.items():
            if key != "time":
                total[key] = total.get(key, 0) + value
    return total


async def stats_summary(provider: KubeletProvider, started: float) -> Obj:
    """statsapi.Summary from the runtime's ListContainerStats. The node's cpu and memory are
    the sum of its pods': several kubelite nodes may share one host, whose own figures
    would be the same for all of them."""
    now = _format_time(time.time_ns())
    pods = {str((p.get("metadata") or {}).get("uid")): p for p in provider.list_pods()}
    stats = await provider.runtime.list_container_stats()
    statuses = await asyncio.gather(
        *(provider.runtime.container_status(s.attributes.id) for s in stats),
        return_exceptions=True)
    per_pod: dict[str, list[Obj]] = {}
    for s, status in zip(stats, statuses, strict=True):
        uid = s.attributes.labels.get("io.kubernetes.pod.uid", "")
        if uid not in pods:
            continue
        entry: Obj = {"name": s.attributes.metadata.name, "cpu": _cpu(s.cpu),
                      "memory": _memory(s.memory)}
        if isinstance(status, api.ContainerStatus) and status.started_at:
            entry["startTime"] = _format_time(status.started_at)
        per_pod.setdefault(uid, []).append(entry)
    pod_stats = []
    for uid, containers in per_pod.items():
        md = pods[uid].get("metadata") or {}
        item: Obj = {"podRef": {"name": md.get("name"), "namespace": md.get("namespace"),
                                "uid": uid},
                     "containers": sorted(containers, key=lambda c: str(c["name"])),
                     "cpu": _sum([c["cpu"] for c in containers], now),
                     "memory": _sum([c["memory"] for c in containers], now)}
        start = (pods[uid].get("status") or {}).get("startTime")
        if start:
            item["startTime"] = start
        pod_stats.append(item)
    pod_stats.sort(key=lambda p: (p["podRef"]["namespace"], p["podRef"]["name"]))
    node = {"nodeName": provider.node_name,
            "startTime": _format_time(int(started * 1e9)),
            "cpu": _sum([p["cpu"] for p in pod_stats], now),
            "memory": _sum([p["memory"] for p in pod_stats], now)}
    return {"node": node, "pods": pod_stats}


async def serve_stats_summary(request: web.Request) -> web.Response:
    state = request.app[SERVER_STATE]
    try:
        summary = await stats_summary(state.provider, state.started)
    except grpc.aio.AioRpcError as e:
        raise HTTPError(500, f"failed to get container stats: {e.details()}") from None
    return web.json_response(summary)


# --- the application -----------------------------------------------------------------------------

async def _docker_client(app: web.Application) -> AsyncIterator[None]:
    state = app[SERVER_STATE]
    state.docker = DockerClient(state.docker_socket)
    try:
        yield
    finally:
        await state.docker.close()


async def _close_streams(app: web.Application) -> None:
    """on_shutdown: end follows and exec sessions instead of waiting for them."""
    state = app[SERVER_STATE]
    state.stopping.set()
    for ws in list(state.sockets):
        with contextlib.suppress(Exception):
            await ws.close(code=1001, message=b"kubelet shutting down")


def create_kubelet_server(provider: KubeletProvider, auth: KubeletAuth, *,
                          docker_socket: str = DEFAULT_SOCKET) -> web.Application:
    """The kubelet's HTTP API over `provider`, every route behind `auth` (kubelet/auth.py).
    `docker_socket` is the dockerd the runtime uses, for exec (see the module docstring)."""
    app = web.Application(middlewares=[auth_middleware(auth), _plain_errors])
    app[SERVER_STATE] = ServerState(provider, docker_socket)
    app.cleanup_ctx.append(_docker_client)
    app.on_shutdown.append(_close_streams)
    app.router.add_get("/healthz", serve_healthz)
    app.router.add_get("/pods", serve_pods)
    app.router.add_get("/pods/", serve_pods)
    app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", serve_container_logs)
    for path in ("/portForward/{namespace}/{pod}", "/portForward/{namespace}/{pod}/{uid}"):
        app.router.add_get(path, serve_port_forward)
        app.router.add_post(path, serve_port_forward)
    for kind, handler in (("exec", serve_exec), ("attach", serve_attach)):
        for path in (f"/{kind}/{{namespace}}/{{pod}}/{{container}}",
                     f"/{kind}/{{namespace}}/{{pod}}/{{uid}}/{{container}}"):
            app.router.add_get(path, handler)
            app.router.add_post(path, handler)
    app.router.add_get("/stats/summary", serve_stats_summary)
    return app


async def start_kubelet_server(provider: KubeletProvider, host: str, port: int,
                               *, ssl_context: ssl.SSLContext, auth: KubeletAuth,
                               docker_socket: str = DEFAULT_SOCKET
                               ) -> tuple[web.AppRunner, int]:
    """Serve HTTPS on `host:port` (0: any free port) with `ssl_context`, every request
    authenticated and authorized by `auth`: there is no plain or unauthenticated mode. The
    runner (`await runner.cleanup()` to stop) and the bound port, which the kubelet
    publishes as `status.daemonEndpoints.kubeletEndpoint.Port`."""
    app = create_kubelet_server(provider, auth, docker_socket=docker_socket)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True, ssl_context=ssl_context)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = int(runner.addresses[0][1]) if runner.addresses else port
    log.info("kubelet server for node %s on https://%s:%d", provider.node_name, host, bound)
    return runner, bound
