"""pods/log, pods/exec and pods/attach: the apiserver's hop of "kubectl → apiserver → kubelet →
container".

As upstream (`pkg/registry/core/pod/strategy.go` LogLocation/ExecLocation and the
upgrade-aware proxy), the apiserver checks what it owns — the pod exists, the container name
is one of the pod's (defaulted when the pod has one container), the pod is bound to a node —
then finds the node's kubelet (`status.addresses`, `status.daemonEndpoints.kubeletEndpoint`)
and relays:

- `GET pods/<name>/log` → `GET /containerLogs/<ns>/<pod>/<container>?follow=..&tailLines=..`,
  streamed back as `text/plain` while the kubelet writes it (`follow` streams until the
  container exits or the client leaves). The kubelet's plain-text errors become Status
  objects with its status code (400 BadRequest, 404 NotFound, ...).
- `GET|POST pods/<name>/exec` → `/exec/<ns>/<pod>/<container>?command=..&input=1&output=1..`.
- `GET|POST pods/<name>/attach` → `/attach/<ns>/<pod>/<container>?input=1&output=1&tty=1..`.
- `GET|POST pods/<name>/portforward?ports=..` → `/portForward/<ns>/<pod>?port=..` (the
  WebSocket port-forward protocol; kubectl's SPDY is refused, as for exec).
  A WebSocket upgrade is relayed message by message: the kubelet is dialled first with the
  subprotocols the client offered (`v5.channel.k8s.io`, `v4.channel.k8s.io`), and the client's
  upgrade is then answered with the one the kubelet chose, so both legs speak the same
  protocol. A refused upgrade is handed back as the kubelet answered it (status and body), as
  upstream's proxy does — kubectl then tries SPDY, which goes the same way and surfaces the
  kubelet's message (`unable to upgrade connection: container not found ("c")`).

The kubelet is dialled over HTTPS only (`kubelet_ssl_context`): the apiserver presents its
kubelet-client certificate (`--kubelet-client-certificate`/`--kubelet-client-key`, the
identity the kubelet authorizes on `nodes/proxy`, `nodes/log` ...) and verifies the
kubelet's serving certificate against `--kubelet-certificate-authority`, including that it
names the address dialled (the PKI gives each kubelet its node IP and name as SANs). Without
that flag the system's trusted CAs verify it; upstream would skip verification instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import WSMsgType, web
from multidict import MultiMapping

from api import errors
from apiserver.registry.store import Store
from apiserver.state import APP_STATE

log = logging.getLogger(__name__)

Obj = dict[str, Any]

DEFAULT_KUBELET_PORT = 10250
# Which node address the apiserver dials (upstream's --kubelet-preferred-address-types).
PREFERRED_ADDRESS_TYPES = ("InternalIP", "InternalDNS", "Hostname", "ExternalIP", "ExternalDNS")
CONNECT_TIMEOUT = 10.0
INT64_MAX = 2**63 - 1
# Bytes of a kubelet error answer to read (upstream reads at most 4 KiB as well).
MAX_ERROR_BODY = 4096


@dataclass(frozen=True)
class KubeletTarget:
    """Where a pod's container is served: its kubelet and the container's name."""

    namespace: str
    pod: str
    container: str
    host: str
    port: int

    @property
    def hostport(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def url(self, kind: str, params: Iterable[tuple[str, str]] = ()) -> str:
        # portForward is per pod (upstream's kubelet path has no container).
        parts = (self.namespace, self.pod) if kind == "portForward" else \
            (self.namespace, self.pod, self.container)
        path = "/".join(quote(part, safe="") for part in parts)
        query = urlencode(list(params))
        return f"https://{self.hostport}/{kind}/{path}" + (f"?{query}" if query else "")


async def serve_pod_stream(request: web.Request, store: Store, namespace: str, name: str,
                           sub: str) -> web.StreamResponse:
    """The `log`, `exec`, `attach` and `portforward` subresources of pods."""
    if sub == "log":
        if request.method != "GET":
            raise errors.MethodNotAllowed("the server does not allow this method on the "
                                          "requested resource")
        params = log_params(request.query, name)
        target = await locate(request, store, namespace, name, request.query.get("container"))
        return await proxy_log(request, target, params)
    if sub == "portforward":
        # v1.PodPortForwardOptions: `ports`, repeated or comma-separated.
        ports = [p.strip() for value in request.query.getall("ports", [])
                 for p in value.split(",") if p.strip()]
        target = await locate(request, store, namespace, name, None, any_container=True)
        return await proxy_exec(request, target, [("port", p) for p in ports],
                                kind="portForward")
    params = exec_params(request.query)
    if sub == "attach":
        # v1.PodAttachOptions: the streams of the container's own process, no command.
        params = [(k, v) for k, v in params if k != "command"]
    target = await locate(request, store, namespace, name, request.query.get("container"))
    return await proxy_exec(request, target, params, kind=sub)


# --- where to go ---------------------------------------------------------------------------

def container_names(pod: Obj) -> list[str]:
    spec = pod.get("spec") or {}
    return [str(c.get("name")) for key in ("initContainers", "containers",
                                          "ephemeralContainers")
            for c in spec.get(key) or [] if isinstance(c, dict)]


def validate_container(pod: Obj, container: str | None) -> str:
    """The container to use: the given one if the pod has it, else the pod's only one
    (upstream validateContainer, with its messages)."""
    name = (pod.get("metadata") or {}).get("name", "")
    if not container:
        containers = (pod.get("spec") or {}).get("containers") or []
        if len(containers) == 1:
            return str(containers[0].get("name"))
        if not containers:
            raise errors.BadRequest(f"a container name must be specified for pod {name}")
        raise errors.BadRequest(f"a container name must be specified for pod {name}, "
                                f"choose one of: [{' '.join(container_names(pod))}]")
    if container not in container_names(pod):
        raise errors.BadRequest(f"container {container} is not valid for pod {name}")
    return container


def kubelet_endpoint(node: Obj) -> tuple[str, int]:
    """The node's kubelet: its preferred address and the port it published."""
    status = node.get("status") or {}
    addresses = [a for a in status.get("addresses") or [] if isinstance(a, dict)]
    for kind in PREFERRED_ADDRESS_TYPES:
        for address in addresses:
            if address.get("type") == kind and address.get("address"):
                host = str(address["address"])
                break
        else:
            continue
        break
    else:
        known = " ".join(f"{a.get('type')}:{a.get('address')}" for a in addresses)
        raise errors.InternalError(f"no preferred addresses found; known addresses: [{known}]")
    endpoint = (status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}
    try:
        port = int(endpoint.get("Port") or 0)
    except (TypeError, ValueError):
        port = 0
    return host, port if 0 < port < 65536 else DEFAULT_KUBELET_PORT


async def locate(request: web.Request, store: Store, namespace: str, name: str,
                 container: str | None, *, any_container: bool = False) -> KubeletTarget:
    """The kubelet serving the pod's container (`any_container`: the pod itself, as for
    port-forward, which names no container)."""
    pod = await store.get(namespace, name)
    if any_container and container is None:
        container = next(iter(container_names(pod)), "")
    else:
        container = validate_container(pod, container)
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise errors.BadRequest(f'pod "{name}" does not have a host assigned')
    node = await request.app[APP_STATE].stores["nodes"].get(None, node_name)
    host, port = kubelet_endpoint(node)
    return KubeletTarget(namespace, name, container, host, port)


# --- options --------------------------------------------------------------------------------

_TRUE = ("1", "t", "T", "TRUE", "true", "True")  # Go's strconv.ParseBool
_FALSE = ("", "0", "f", "F", "FALSE", "false", "False")


def _bool(query: Mapping[str, str], name: str) -> bool:
    raw = query.get(name, "")
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise errors.BadRequest(f"invalid value for {name}: {raw!r}: must be a boolean")


def _int(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise errors.BadRequest(f"invalid value for {name}: {raw!r}") from None
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise errors.BadRequest(f"invalid value for {name}: {raw!r}")
    return value


def log_params(query: Mapping[str, str], name: str) -> list[tuple[str, str]]:
    """v1.PodLogOptions from the query, validated as upstream, as the kubelet's query."""
    tail, since, limit = _int(query, "tailLines"), _int(query, "sinceSeconds"), \
        _int(query, "limitBytes")
    since_time = query.get("sinceTime") or None
    causes = []
    if tail is not None and tail < 0:
        causes.append(errors.field_cause("tailLines", f"Invalid value: {tail}: must be "
                                                      "greater than or equal to 0"))
    if limit is not None and limit < 1:
        causes.append(errors.field_cause("limitBytes", f"Invalid value: {limit}: must be "
                                                       "greater than 0"))
    if since is not None and since < 1:
        causes.append(errors.field_cause("sinceSeconds", f"Invalid value: {since}: must be "
                                                         "greater than 0"))
    if since is not None and since_time:
        causes.append(errors.field_cause("", "at most one of `sinceTime` or `sinceSeconds` "
                                             "may be specified", "FieldValueForbidden"))
    if causes:
        raise errors.Invalid.of("PodLogOptions", name, causes)
    params = [(flag, "true") for flag in ("follow", "previous", "timestamps")
              if _bool(query, flag)]
    for key, value in (("sinceSeconds", since), ("tailLines", tail), ("limitBytes", limit)):
        if value is not None:
            params.append((key, str(value)))
    if since_time:
        params.append(("sinceTime", since_time))
    return params


def exec_params(query: MultiMapping[str]) -> list[tuple[str, str]]:
    """v1.PodExecOptions from the query as the kubelet's query (upstream streamParams:
    stdin/stdout/stderr become input/output/error=1)."""
    params = [(kubelet_name, "1") for name, kubelet_name in
              (("stdin", "input"), ("stdout", "output"), ("stderr", "error"), ("tty", "tty"))
              if _bool(query, name)]
    params += [("command", c) for c in query.getall("command", [])]
    return params


# --- TLS to the kubelet ---------------------------------------------------------------------------

@functools.cache
def kubelet_ssl_context(client_certificate: str, client_key: str,
                        certificate_authority: str) -> ssl.SSLContext:
    """The apiserver's TLS client context for kubelets, built once per process for its
    flags: the kubelet-client certificate (none without one) and verification of the
    kubelet's certificate and hostname against the CA bundle (the system's without one)."""
    ctx = ssl.create_default_context(cafile=certificate_authority or None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if client_certificate:
        ctx.load_cert_chain(client_certificate, client_key or None)
    return ctx


def kubelet_tls(request: web.Request) -> ssl.SSLContext:
    opts = request.app[APP_STATE].options
    return kubelet_ssl_context(opts.kubelet_client_certificate, opts.kubelet_client_key,
                               opts.kubelet_certificate_authority)


# --- relaying ----------------------------------------------------------------------------------

def _session() -> aiohttp.ClientSession:
    # One short-lived session per stream: they are long and few, and nothing to clean up
    # when the apiserver stops.
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT),
        auto_decompress=False)


def _unreachable(method: str, url: str, target: KubeletTarget,
                 e: aiohttp.ClientError) -> errors.StatusError:
    """Upstream's wording when the kubelet cannot be dialled (Go's net/http error)."""
    verb = method[:1] + method[1:].lower()
    if isinstance(e, aiohttp.ClientConnectorCertificateError):
        cert_error = e.certificate_error
        reason = getattr(cert_error, "verify_message", None) or str(cert_error)
        return errors.InternalError(f'{verb} "{url}": tls: failed to verify certificate: '
                                    f"{reason}")
    os_error = getattr(e, "os_error", None)
    if isinstance(os_error, OSError) and os_error.errno:
        reason = os.strerror(os_error.errno).lower()  # asyncio's strerror names the address
    else:
        reason = str(e).lower()
    return errors.ServiceUnavailable(f'{verb} "{url}": dial tcp {target.hostport}: connect: '
                                     f"{reason}")


def kubelet_error(status: int, body: bytes) -> errors.StatusError:
    """A kubelet's error answer as the Status the client gets (upstream's
    GenericHttpResponseChecker)."""
    text = body[:MAX_ERROR_BODY].decode(errors="replace").strip() \
        or f"the kubelet answered HTTP {status}"
    if status == 400:
        return errors.BadRequest(text)
    if status == 401:
        return errors.Unauthorized(text)
    if status == 403:
        return errors.Forbidden(text)
    if status == 404:
        return errors.NotFound(text)
    if status == 422:
        return errors.StatusError(text, code=422, reason="Invalid")
    if status == 503:
        return errors.ServiceUnavailable(text)
    return errors.InternalError(text, code=status if status >= 400 else 500)


async def _read_limited(content: aiohttp.StreamReader) -> bytes:
    """An error answer's body, at most MAX_ERROR_BODY bytes of it."""
    body = b""
    while len(body) < MAX_ERROR_BODY and (chunk := await content.read(MAX_ERROR_BODY)):
        body += chunk
    return body[:MAX_ERROR_BODY]


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def proxy_log(request: web.Request, target: KubeletTarget,
                    params: list[tuple[str, str]]) -> web.StreamResponse:
    url = target.url("containerLogs", params)
    async with _session() as session:
        try:
            upstream = await session.get(url, ssl=kubelet_tls(request))
        except aiohttp.ClientConnectionError as e:
            raise _unreachable("GET", url, target, e) from e
        async with upstream:
            if upstream.status != 200:
                raise kubelet_error(upstream.status, await _read_limited(upstream.content))
            resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await resp.prepare(request)
            try:
                while True:
                    try:
                        # A bounded wait, so a follow with nothing to say notices a client
                        # that left (the next write would, but may never come).
                        chunk = await asyncio.wait_for(upstream.content.readany(), 1.0)
                    except TimeoutError:
                        if _client_gone(request):
                            break
                        continue
                    if not chunk:
                        break
                    await resp.write(chunk)
            except (ConnectionError, aiohttp.ClientPayloadError) as e:
                log.debug("pods/log %s/%s: stream ended: %s", target.namespace, target.pod, e)
                return resp
            await resp.write_eof()
            return resp


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


async def proxy_exec(request: web.Request, target: KubeletTarget,
                     params: list[tuple[str, str]], kind: str = "exec") -> web.StreamResponse:
    """Relay pods/exec (or pods/attach, `kind`) to the kubelet's WebSocket stream."""
    url = target.url(kind, params)
    if not _is_websocket(request):
        return await _relay_refusal(request, url, target)
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
               if p.strip()]
    # ws_connect drops the body of a refused upgrade; this hook keeps it for the client.
    refused: dict[str, Any] = {}

    async def keep_refusal(session: aiohttp.ClientSession, ctx: SimpleNamespace,
                           params: aiohttp.TraceRequestEndParams) -> None:
        if params.response.status != 101:
            refused["status"] = params.response.status
            refused["content_type"] = params.response.headers.get("Content-Type",
                                                                  "text/plain")
            refused["body"] = await _read_limited(params.response.content)

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(keep_refusal)
    session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT),
        trace_configs=[trace])
    try:
        try:
            kubelet = await session.ws_connect(url, protocols=offered, autoping=True,
                                               max_msg_size=0, ssl=kubelet_tls(request))
        except aiohttp.WSServerHandshakeError as e:
            if refused:
                return web.Response(status=int(refused["status"]), body=refused["body"],
                                    headers={"Content-Type": refused["content_type"]})
            raise errors.InternalError(f"the kubelet refused the upgrade: {e.message}"
                                       ) from e
        except aiohttp.ClientConnectionError as e:
            raise _unreachable("GET", url, target, e) from e
        async with kubelet:
            client = web.WebSocketResponse(
                protocols=(kubelet.protocol,) if kubelet.protocol else (),
                autoping=True, max_msg_size=0)
            await client.prepare(request)
            log.info("pods/%s %s/%s/%s: relaying (%s)", kind, target.namespace, target.pod,
                     target.container, kubelet.protocol)
            await _splice(client, kubelet, f"{target.namespace}/{target.pod}")
            return client
    finally:
        await session.close()


async def _relay_refusal(request: web.Request, url: str,
                         target: KubeletTarget) -> web.Response:
    """A non-WebSocket exec (SPDY, kubectl's fallback, or a plain request): the kubelet only
    streams over WebSocket, so its answer is an error; hand it on as it is."""
    async with _session() as session:
        try:
            async with session.request(request.method, url,
                                       ssl=kubelet_tls(request)) as upstream:
                body = await _read_limited(upstream.content)
                return web.Response(status=upstream.status, body=body, headers={
                    "Content-Type": upstream.headers.get("Content-Type", "text/plain")})
        except aiohttp.ClientConnectionError as e:
            raise _unreachable(request.method, url, target, e) from e


async def _pump(source: Any, sink: Any) -> None:
    """Forward data messages from one WebSocket to the other until the source closes."""
    async for msg in source:
        if msg.type == WSMsgType.BINARY:
            await sink.send_bytes(msg.data)
        elif msg.type == WSMsgType.TEXT:
            await sink.send_str(msg.data)


async def _splice(client: web.WebSocketResponse, kubelet: aiohttp.ClientWebSocketResponse,
                  name: str) -> None:
    """Relay both ways until either side closes, then close the other with its code."""
    up = asyncio.create_task(_pump(client, kubelet), name=f"exec-relay-up:{name}")
    down = asyncio.create_task(_pump(kubelet, client), name=f"exec-relay-down:{name}")
    try:
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if down.done():
            # The kubelet finished: after the exit status that is a normal end; a kubelet
            # that went away or broke the connection is passed on as such.
            code = kubelet.close_code
            if code not in (None, aiohttp.WSCloseCode.OK, aiohttp.WSCloseCode.GOING_AWAY):
                code = aiohttp.WSCloseCode.INTERNAL_ERROR
            with contextlib.suppress(Exception):
                await client.close(code=code or aiohttp.WSCloseCode.OK)
        with contextlib.suppress(Exception):
            await kubelet.close()
        if not client.closed:
            with contextlib.suppress(Exception):
                await client.close()
        for task in (up, down):
            task.cancel()
        for task in (up, down):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
