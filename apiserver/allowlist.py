"""The public endpoint's source-address allowlist (`--public-access-cidrs`, as EKS's).

A peer outside the allowlist is dropped in `connection_made`, before the TLS handshake and
before aiohttp sees a byte: a refused client gets neither a ServerHello (so it learns nothing
about the certificate) nor an HTTP answer, and costs no TLS work. That is why TLS is layered
here by hand rather than by `loop.create_server(ssl=...)`, which would start the handshake
before any protocol of ours could look at the peer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
from asyncio.sslproto import SSLProtocol
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

log = logging.getLogger("apiserver.allowlist")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
EVERYWHERE = "0.0.0.0/0,::/0"


def parse_cidrs(text: str) -> list[IpNetwork]:
    """`CIDR[,CIDR]` → networks; ValueError names the bad entry. Host bits are allowed
    (`10.0.0.5/24` means 10.0.0.0/24), as EKS accepts them."""
    nets: list[IpNetwork] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"invalid CIDR {part!r}") from None
    if not nets:
        raise ValueError("at least one CIDR is needed")
    return nets


def allowed(peer: str, networks: Sequence[IpNetwork]) -> bool:
    """Whether `peer` (an address as a socket reports it) is inside one of `networks`."""
    try:
        ip = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
    return any(ip in net for net in networks)


def allows_everyone(networks: Sequence[IpNetwork], listen_address: str) -> bool:
    """Whether every peer a listener on `listen_address` can have is allowed (EKS's
    default 0.0.0.0/0 on an IPv4 listener): then no filtering layer is needed at all."""
    try:
        versions = {ipaddress.ip_address(listen_address).version}
    except ValueError:
        versions = {4, 6}  # a host name may resolve to either
    if versions == {6}:
        versions = {4, 6}  # a dual-stack socket also takes IPv4 peers
    return versions <= {n.version for n in networks if n.prefixlen == 0}


class _PeerFilter(asyncio.Protocol):
    """The first protocol of every accepted connection: it hands the transport on to the
    TLS + HTTP protocols for an allowed peer and aborts it otherwise."""

    def __init__(self, make_inner: Callable[[], asyncio.BaseProtocol],
                 networks: Sequence[IpNetwork]) -> None:
        self._make_inner = make_inner
        self._networks = networks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        host = str(peer[0]) if peer else ""
        if not allowed(host, self._networks):
            log.info("refused a connection from %s: not in --public-access-cidrs", host)
            assert isinstance(transport, asyncio.Transport)
            transport.abort()  # RST, nothing written
            return
        inner = self._make_inner()
        transport.set_protocol(inner)
        inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        pass  # only reached for a refused peer: the inner protocol owns allowed ones


class AllowlistSite(web.BaseSite):
    """A TCPSite whose listener refuses peers outside `networks` before TLS."""

    __slots__ = ("_host", "_networks", "_port")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *,
                 networks: Sequence[IpNetwork], ssl_context: ssl.SSLContext,
                 backlog: int = 1024) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._host, self._port, self._networks = host, port, list(networks)

    @property
    def name(self) -> str:
        return f"https://{self._host}:{self.port}"

    @property
    def port(self) -> int:
        server: Any = self._server
        if server is not None and server.sockets:
            return int(server.sockets[0].getsockname()[1])
        return self._port

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        http = self._runner.server
        assert http is not None and self._ssl_context is not None
        tls = self._ssl_context

        def make_inner() -> asyncio.BaseProtocol:
            # What loop.create_server(ssl=...) builds for each connection; no waiter, as
            # nobody awaits the handshake (SSLProtocol accepts None at run time).
            return SSLProtocol(loop, http(), tls, None,  # type: ignore[arg-type]
                               server_side=True)

        self._server = await loop.create_server(
            lambda: _PeerFilter(make_inner, self._networks), self._host, self._port,
            backlog=self._backlog, reuse_address=True)
