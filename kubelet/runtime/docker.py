"""A small async client for the Docker Engine API, over dockerd's unix socket.

It speaks just the calls the CRI runtime needs: containers (create, start, stop, kill,
remove, inspect, list, update, stats, logs), exec (create, start, inspect) and images (list,
inspect, pull, remove). Requests and answers are the Engine API's own JSON as plain dicts;
this module does not model Docker objects.

The API version is negotiated once, on first use, from `GET /version`: the highest version
both sides speak, as the docker CLI does, so the client works against older and newer daemons.

Answers that are errors surface as `DockerError` (with `NotFound` and `Conflict` split out
because callers act on them); a daemon that cannot be reached is `DockerUnavailable`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import quote

import aiohttp

log = logging.getLogger(__name__)

Obj = dict[str, Any]
StreamName = Literal["stdout", "stderr"]

DEFAULT_SOCKET = "/var/run/docker.sock"
# Highest Engine API version this client was written against, and the lowest it can use
# (1.40 brought MaskedPaths/ReadonlyPaths, 1.41 one-shot stats).
MAX_API_VERSION = "1.43"
MIN_API_VERSION = "1.40"
# ExecSync output cap per stream, as upstream CRI asks (CVE-2022-1708).
EXEC_OUTPUT_LIMIT = 16 * 1024 * 1024


class DockerError(Exception):
    """An error answer from dockerd: the HTTP status and the daemon's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(DockerError):
    """404: no such container, exec, or image."""


class Conflict(DockerError):
    """409: a name already in use, a container that is (not) running, an image in use."""


class DockerUnavailable(DockerError):
    """No answer: the socket is missing or refused, or the connection broke."""

    def __init__(self, message: str) -> None:
        super().__init__(0, message)


def _error(status: int, message: str) -> DockerError:
    if status == 404:
        return NotFound(status, message)
    if status == 409:
        return Conflict(status, message)
    return DockerError(status, message)


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def negotiate_api_version(server_version: str, server_min: str | None = None) -> str:
    """The highest API version both this client and the daemon speak."""
    chosen = min(_version_tuple(server_version), _version_tuple(MAX_API_VERSION))
    if chosen < _version_tuple(MIN_API_VERSION):
        raise DockerError(0, f"dockerd speaks Engine API {server_version}, but kubelite needs "
                             f"at least {MIN_API_VERSION}")
    if server_min and chosen < _version_tuple(server_min):
        raise DockerError(0, f"dockerd needs Engine API {server_min} or later")
    return ".".join(str(part) for part in chosen)


def filters_param(filters: Mapping[str, Sequence[str]]) -> str:
    """Docker's `filters` query value: JSON of name -> list of values."""
    return json.dumps({name: list(values) for name, values in filters.items() if values})


def split_image_reference(ref: str) -> tuple[str, str]:
    """`repo[:tag][@digest]` -> (repo, tag-or-digest) for `POST /images/create`, which pulls
    every tag of a repository when given none; a reference without either means `latest`."""
    if "@" in ref:
        repo, digest = ref.split("@", 1)
        return repo, digest
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:  # a colon before the last slash is a registry port, not a tag
        return ref[:colon], ref[colon + 1:]
    return ref, "latest"


class StreamDemuxer:
    """Splits Docker's multiplexed stdout/stderr stream into (stream, payload) frames.

    Each frame is an 8-byte header — stream type (0 stdin, 1 stdout, 2 stderr, 3 a daemon
    error), three zero bytes, a big-endian uint32 size — then that many bytes. Data may
    arrive cut anywhere, so incomplete frames wait in a buffer for the next `feed`.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[StreamName, bytes]]:
        self._buffer += data
        frames: list[tuple[StreamName, bytes]] = []
        while len(self._buffer) >= 8:
            size = int.from_bytes(self._buffer[4:8], "big")
            if len(self._buffer) < 8 + size:
                break
            kind: StreamName = "stderr" if self._buffer[0] >= 2 else "stdout"
            frames.append((kind, bytes(self._buffer[8:8 + size])))
            del self._buffer[:8 + size]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still buffered (non-zero at EOF means truncation)."""
        return len(self._buffer)


@dataclass(frozen=True)
class ExecResult:
    stdout: bytes
    stderr: bytes
    exit_code: int


class DockerClient:
    """Async Docker Engine API client; use as `async with DockerClient() as docker:`."""

    def __init__(self, socket_path: str = DEFAULT_SOCKET, *, api_version: str | None = None,
                 timeout: float = 120.0) -> None:
        self.socket_path = socket_path
        self._api_version = api_version
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._change_listeners: list[Callable[[], None]] = []
        self._negotiate_lock = asyncio.Lock()

    def on_container_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every successful request that changes what
        `GET /containers/json` returns (create, start, stop, kill, restart, remove)."""
        self._change_listeners.append(listener)

    # --- lifetime -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._ensure_session()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # The host part of the URL is ignored on a unix socket; "docker" reads well in logs.
            self._session = aiohttp.ClientSession(
                "http://docker", connector=aiohttp.UnixConnector(path=self.socket_path),
                timeout=aiohttp.ClientTimeout(total=self._timeout, sock_connect=10))
        return self._session

    @property
    def api_version(self) -> str | None:
        """The negotiated Engine API version (None until the first request)."""
        return self._api_version

    async def negotiate(self) -> str:
        """Agree on the API version now (it otherwise happens on the first request)."""
        await self._prefix()
        assert self._api_version is not None
        return self._api_version

    async def _prefix(self) -> str:
        if self._api_version is None:
            async with self._negotiate_lock:
                if self._api_version is None:
                    info = await self._request_json("GET", "/version")
                    self._api_version = negotiate_api_version(
                        str(info.get("ApiVersion", "")), info.get("MinAPIVersion"))
                    log.info("dockerd %s at %s, using Engine API %s", info.get("Version"),
                             self.socket_path, self._api_version)
        return f"/v{self._api_version}"

    # --- plumbing -------------------------------------------------------------------------

    @asynccontextmanager
    async def _open(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                    body: Any = None, headers: Mapping[str, str] | None = None,
                    timeout: aiohttp.ClientTimeout | None = None,
                    versioned: bool = True) -> AsyncIterator[aiohttp.ClientResponse]:
        """One request, yielding the successful response (errors raised as DockerError)."""
        session = self._ensure_session()
        url = (await self._prefix() if versioned else "") + path
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        kwargs: dict[str, Any] = {"params": query, "headers": dict(headers or {})}
        if body is not None:
            kwargs["json"] = body
        if timeout is not None:
            kwargs["timeout"] = timeout
        try:
            async with session.request(method, url, **kwargs) as resp:
                if resp.status >= 400:
                    raise _error(resp.status, await _error_message(resp))
                if _changes_container_list(method, path):
                    for listener in self._change_listeners:
                        listener()
                yield resp
        except aiohttp.ClientConnectionError as e:
            raise DockerUnavailable(f"dockerd at {self.socket_path}: {e}") from e

    async def _request(self, method: str, path: str, **kwargs: Any) -> tuple[int, bytes]:
        async with self._open(method, path, **kwargs) as resp:
            return resp.status, await resp.read()

    async def _request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        kwargs.setdefault("versioned", path != "/version")
        _, raw = await self._request(method, path, **kwargs)
        return json.loads(raw) if raw else None

    # --- system ---------------------------------------------------------------------------

    async def version(self) -> Obj:
        return dict(await self._request_json("GET", "/version", versioned=False))

    async def ping(self) -> bool:
        try:
            status, _ = await self._request("GET", "/_ping", versioned=False)
        except DockerError:
            return False
        return status == 200

    async def info(self) -> Obj:
        return dict(await self._request_json("GET", "/info"))

    # --- containers -----------------------------------------------------------------------

    async def create_container(self, name: str, config: Mapping[str, Any]) -> str:
        """Create a container from a full create body (Config fields + HostConfig)."""
        answer = await self._request_json("POST", "/containers/create", params={"name": name},
                                          body=config)
        for warning in answer.get("Warnings") or []:
            log.warning("create %s: %s", name, warning)
        return str(answer["Id"])

    async def start_container(self, container_id: str) -> None:
        # 304 (already started) is success: start is idempotent for our callers.
        await self._request("POST", f"/containers/{container_id}/start")

    async def stop_container(self, container_id: str, timeout: int) -> None:
        """SIGTERM (or the image's stop signal), then SIGKILL after `timeout` seconds.
        Stopping a container that is not running is not an error."""
        wait = aiohttp.ClientTimeout(total=max(0, timeout) + self._timeout)
        await self._request("POST", f"/containers/{container_id}/stop",
                            params={"t": max(0, timeout)}, timeout=wait)

    async def kill_container(self, container_id: str, signal: str = "SIGKILL") -> None:
        await self._request("POST", f"/containers/{container_id}/kill",
                            params={"signal": signal})

    async def remove_container(self, container_id: str, *, force: bool = False,
                               volumes: bool = True) -> None:
        await self._request("DELETE", f"/containers/{container_id}",
                            params={"force": force, "v": volumes})

    async def inspect_container(self, container_id: str) -> Obj:
        return dict(await self._request_json("GET", f"/containers/{container_id}/json"))

    async def list_containers(self, *, all: bool = True,
                              filters: Mapping[str, Sequence[str]] | None = None) -> list[Obj]:
        params: dict[str, Any] = {"all": all}
        if filters:
            params["filters"] = filters_param(filters)
        return list(await self._request_json("GET", "/containers/json", params=params))

    async def update_container(self, container_id: str, resources: Mapping[str, Any]) -> None:
        answer = await self._request_json("POST", f"/containers/{container_id}/update",
                                          body=resources)
        for warning in (answer or {}).get("Warnings") or []:
            log.warning("update %s: %s", container_id, warning)

    async def container_stats(self, container_id: str) -> Obj:
        """One stats sample, without waiting for a second one (`one-shot`)."""
        return dict(await self._request_json("GET", f"/containers/{container_id}/stats",
                                             params={"stream": False, "one-shot": True}))

    async def container_logs(self, container_id: str, *, tty: bool = False,
                             follow: bool = False, stdout: bool = True, stderr: bool = True,
                             since: str | None = None, tail: str | None = None,
                             timestamps: bool = False
                             ) -> AsyncGenerator[tuple[StreamName, bytes], None]:
        """The container's log as (stream, bytes) chunks; with `follow`, until it exits.

        Docker multiplexes stdout and stderr unless the container has a TTY, in which case
        everything is stdout. With `timestamps` every log message starts with its RFC 3339
        time and a space; each multiplexed frame carries one message.
        """
        params = {"follow": follow, "stdout": stdout, "stderr": stderr, "since": since,
                  "tail": tail, "timestamps": timestamps}
        endless = aiohttp.ClientTimeout(total=None, sock_connect=10)
        async with self._open("GET", f"/containers/{container_id}/logs", params=params,
                              timeout=endless) as resp:
            async for item in _read_stream(resp, tty):
                yield item

    # --- exec -----------------------------------------------------------------------------

    async def exec_create(self, container_id: str, cmd: Sequence[str], *, tty: bool = False,
                          stdin: bool = False, env: Sequence[str] | None = None,
                          workdir: str | None = None) -> str:
        body: Obj = {"Cmd": list(cmd), "AttachStdout": True, "AttachStderr": True,
                     "AttachStdin": stdin, "Tty": tty}
        if env:
            body["Env"] = list(env)
        if workdir:
            body["WorkingDir"] = workdir
        answer = await self._request_json("POST", f"/containers/{container_id}/exec",
                                          body=body)
        return str(answer["Id"])

    async def exec_start(self, exec_id: str, *, tty: bool = False
                         ) -> AsyncGenerator[tuple[StreamName, bytes], None]:
        """Run a created exec and yield its output until the command ends.

        dockerd answers 200 and then hijacks the connection for the raw stream, closing it
        when the process exits; we never send stdin, so no protocol upgrade is needed.
        """
        endless = aiohttp.ClientTimeout(total=None, sock_connect=10)
        async with self._open("POST", f"/exec/{exec_id}/start",
                              body={"Detach": False, "Tty": tty}, timeout=endless) as resp:
            async for item in _read_stream(resp, tty):
                yield item

    async def exec_inspect(self, exec_id: str) -> Obj:
        return dict(await self._request_json("GET", f"/exec/{exec_id}/json"))

    async def exec_run(self, container_id: str, cmd: Sequence[str], *,
                       limit: int = EXEC_OUTPUT_LIMIT) -> ExecResult:
        """Run `cmd` in a running container and collect its output (each stream capped at
        `limit` bytes; the rest is read and dropped) and its exit code. Callers bound the
        time with asyncio.timeout: Docker has no way to stop an exec'd process."""
        exec_id = await self.exec_create(container_id, cmd)
        out = {"stdout": bytearray(), "stderr": bytearray()}
        async for stream, data in self.exec_start(exec_id):
            buf = out[stream]
            if len(buf) < limit:
                buf += data[:limit - len(buf)]
        # The stream ends when the process closes its output, which can be a moment before
        # dockerd records the exit code.
        for _ in range(50):
            info = await self.exec_inspect(exec_id)
            if not info.get("Running"):
                break
            await asyncio.sleep(0.02)
        code = info.get("ExitCode")
        return ExecResult(bytes(out["stdout"]), bytes(out["stderr"]),
                          int(code) if code is not None else -1)

    # --- images ---------------------------------------------------------------------------

    async def list_images(self, *, filters: Mapping[str, Sequence[str]] | None = None
                          ) -> list[Obj]:
        params = {"filters": filters_param(filters)} if filters else None
        return list(await self._request_json("GET", "/images/json", params=params))

    async def inspect_image(self, name: str) -> Obj:
        return dict(await self._request_json("GET", f"/images/{quote(name, safe='')}/json"))

    async def pull_image(self, ref: str, *, auth: Mapping[str, str] | None = None) -> None:
        """Pull `ref`; progress is discarded. dockerd reports most failures inside the 200
        progress stream, as an `error` message, so the whole stream is read and checked."""
        repo, tag = split_image_reference(ref)
        headers = {}
        if auth:
            headers["X-Registry-Auth"] = base64.urlsafe_b64encode(
                json.dumps(dict(auth)).encode()).decode()
        slow = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=self._timeout)
        async with self._open("POST", "/images/create", params={"fromImage": repo, "tag": tag},
                              headers=headers, timeout=slow) as resp:
            async for line in resp.content:
                if not line.strip():
                    continue
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if isinstance(message, dict) and message.get("error"):
                    detail = message.get("errorDetail") or {}
                    raise _error(int(detail.get("code") or 500), str(message["error"]))

    async def remove_image(self, name: str, *, force: bool = False,
                           noprune: bool = False) -> list[Obj]:
        answer = await self._request_json("DELETE", f"/images/{quote(name, safe='')}",
                                          params={"force": force, "noprune": noprune})
        return list(answer or [])


_LIST_CHANGING = ("/start", "/stop", "/kill", "/restart", "/pause", "/unpause", "/rename")


def _changes_container_list(method: str, path: str) -> bool:
    if not path.startswith("/containers/"):
        return False
    return (method == "DELETE" or path == "/containers/create"
            or (method == "POST" and path.endswith(_LIST_CHANGING)))


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


async def _error_message(resp: aiohttp.ClientResponse) -> str:
    raw = await resp.read()
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    text = raw.decode(errors="replace").strip()
    return text or f"HTTP {resp.status} {resp.reason}"


async def _read_stream(resp: aiohttp.ClientResponse, tty: bool
                       ) -> AsyncGenerator[tuple[StreamName, bytes], None]:
    if tty:
        async for chunk in resp.content.iter_any():
            yield "stdout", chunk
        return
    demux = StreamDemuxer()
    try:
        async for chunk in resp.content.iter_any():
            for frame in demux.feed(chunk):
                yield frame
    except aiohttp.ClientPayloadError:
        # dockerd closes a hijacked exec stream without a proper end of body; what we have
        # is complete up to the last whole frame.
        pass
    if demux.pending:
        log.debug("stream ended inside a frame (%d bytes dropped)", demux.pending)
