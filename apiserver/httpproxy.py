"""pods/proxy and services/proxy: HTTP through the apiserver to a pod or a Service's endpoint.

    /api/v1/namespaces/<ns>/pods/<name>[:<port>]/proxy[/<path>]
    /api/v1/namespaces/<ns>/services/[http:]<name>[:<port>]/proxy[/<path>]

what `kubectl proxy` users open in a browser (dashboards, metrics pages) and `kubectl get
--raw` reaches. As upstream's ResourceLocation: a pod's port is a number or a named container
port (none: 80) and the pod must have an IP; a Service's port is its port name or number
(none: its only port), and the request goes to one of its ready endpoints (random) on the
matching EndpointSlice port, or 503 `no endpoints available for service "<name>"`. Any
method; the path after `proxy` and the query go on; headers go both ways except hop-by-hop
ones; bodies are streamed. Only plain HTTP (`https:` names are refused). Links in HTML are
not rewritten (upstream's transport does that for some content types).
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

import aiohttp
from aiohttp import web

from api import errors
from apiserver.registry.store import ListOptions, Store
from apiserver.state import APP_STATE

Obj = dict[str, Any]

CONNECT_TIMEOUT = 5.0
ADDRESS_NOT_ALLOWED = "address not allowed"
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "te", "trailer", "transfer-encoding", "upgrade", "host",
                        "content-length"})


def split_name(name: str) -> tuple[str, str, str]:
    """`name`, `name:port` or `scheme:name:port` -> (scheme, name, port)."""
    parts = name.split(":")
    if len(parts) == 1:
        return "", parts[0], ""
    if len(parts) == 2:
        return "", parts[0], parts[1]
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    raise errors.BadRequest(f"invalid proxy target {name!r}")


def _port_number(text: str) -> int | None:
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else None


def pod_location(pod: Obj, port: str) -> tuple[str, int]:
    name = pod["metadata"]["name"]
    ip = (pod.get("status") or {}).get("podIP")
    if not ip:
        raise errors.ServiceUnavailable(f'pod "{name}" has no IP address yet')
    if not port:
        return str(ip), 80
    number = _port_number(port)
    if number is not None:
        return str(ip), number
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == port:
                return str(ip), int(p["containerPort"])
    raise errors.BadRequest(f'pod "{name}" has no port named "{port}"')


def service_port(svc: Obj, port: str) -> Obj:
    name = svc["metadata"]["name"]
    ports = (svc.get("spec") or {}).get("ports") or []
    if not port:
        if len(ports) == 1:
            return dict(ports[0])
        raise errors.BadRequest(f'service "{name}" has several ports: name one as '
                                f'"{name}:<port>"')
    for p in ports:
        if p.get("name") == port or str(p.get("port")) == port:
            return dict(p)
    raise errors.ServiceUnavailable(f'no service port "{port}" found for service "{name}"')


def ready_endpoints(slices: list[Obj], port_name: str) -> list[tuple[str, int]]:
    """(address, port) of the ready endpoints on the slice port named `port_name`."""
    out = []
    for s in slices:
        numbers = [p.get("port") for p in s.get("ports") or []
                   if (p.get("name") or "") == port_name and p.get("port")]
        if not numbers:
            continue
        for ep in s.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready") is False:
                continue
            out += [(str(addr), int(numbers[0])) for addr in ep.get("addresses") or []]
    return out


async def locate(request: web.Request, store: Store, namespace: str,
                 target: str) -> tuple[str, int]:
    scheme, name, port = split_name(target)
    if scheme not in ("", "http"):
        raise errors.BadRequest(f"proxying with scheme {scheme!r} is not supported: kubelite "
                                "proxies plain HTTP")
    obj = await store.get(namespace, name)
    if store.resource.plural == "pods":
        location = pod_location(obj, port)
        check_proxyable(location[0])
        return location
    svc_port = service_port(obj, port)
    slices_store = request.app[APP_STATE].stores["endpointslices"]
    listing = await slices_store.list(namespace, ListOptions(
        label_selector=f"kubernetes.io/service-name={name}"))
    endpoints = ready_endpoints(list(listing.get("items") or []), svc_port.get("name") or "")
    if not endpoints:
        raise errors.ServiceUnavailable(f'no endpoints available for service "{name}"')
    chosen = random.choice(endpoints)
    check_proxyable(chosen[0])
    return chosen


def check_proxyable(address: str) -> None:
    """As upstream's proxyutil.IsProxyableIP: the apiserver does not dial its own host's
    loopback, link-local ranges (the cloud metadata service at 169.254.169.254), multicast,
    broadcast or unspecified addresses on a client's behalf — a pod's status or an endpoint
    is written by less trusted parties than the apiserver's own network position."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError as e:
        raise errors.BadRequest(ADDRESS_NOT_ALLOWED) from e
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified \
            or ip == ipaddress.IPv4Address("255.255.255.255"):
        raise errors.BadRequest(ADDRESS_NOT_ALLOWED)


def _rest_path(request: web.Request) -> str:
    """What follows `/proxy` in the raw path (kept encoded), always starting with `/`."""
    raw = request.rel_url.raw_path
    index = raw.find("/proxy")
    rest = raw[index + len("/proxy"):] if index >= 0 else ""
    return rest if rest.startswith("/") else "/" + rest


async def serve_http_proxy(request: web.Request, store: Store, namespace: str,
                           target: str) -> web.StreamResponse:
    host, port = await locate(request, store, namespace, target)
    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    url = f"http://{hostport}{_rest_path(request)}"
    if request.rel_url.raw_query_string:
        url += "?" + request.rel_url.raw_query_string
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        try:
            upstream = await session.request(
                request.method, url, headers=headers, allow_redirects=False,
                data=request.content if request.can_read_body else None)
        except aiohttp.ClientError as e:
            raise errors.ServiceUnavailable(
                f"error trying to reach service: dial tcp {hostport}: {e}") from e
        async with upstream:
            resp = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in HOP_BY_HOP:
                    resp.headers.add(key, value)
            await resp.prepare(request)
            async for chunk in upstream.content.iter_chunked(65536):
                await resp.write(chunk)
            await resp.write_eof()
            return resp
