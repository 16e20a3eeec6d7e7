"""Forwarding names outside the cluster domain to upstream servers.

Each upstream is tried in order (as a stub resolver walks resolv.conf): over UDP first from
a fresh socket (a new random source port per query), again over TCP when the UDP answer is
truncated, and on to the next upstream on a timeout or a network error. The query goes out
with a random ID of ours, so an answer cannot be spoofed with the client's ID, and comes
back with the client's ID put back. The caller answers SERVFAIL when every upstream failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import struct
from dataclasses import dataclass

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 2.0
_TC = 0x0200
_QR = 0x8000


@dataclass(frozen=True)
class Upstream:
    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class UpstreamError(Exception):
    """No usable answer from one upstream."""


class _UdpExchange(asyncio.DatagramProtocol):
    """One query on a connected UDP socket: the first answer with our ID wins."""

    def __init__(self, ident: int) -> None:
        self.ident = ident
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12 or self.answer.done():
            return
        ident, flags = struct.unpack_from("!HH", data)
        if ident == self.ident and flags & _QR:
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc or ConnectionError("socket closed"))


class Forwarder:
    def __init__(self, upstreams: list[Upstream], timeout: float = DEFAULT_TIMEOUT) -> None:
        if not upstreams:
            raise ValueError("a forwarder needs at least one upstream")
        self.upstreams = list(upstreams)
        self.timeout = timeout

    async def forward(self, query: bytes) -> bytes | None:
        """The upstream's answer (with the client's ID), or None when all of them failed."""
        if len(query) < 12:
            return None
        client_id = query[:2]
        for upstream in self.upstreams:
            ident = secrets.randbelow(0x10000)
            ours = struct.pack("!H", ident) + query[2:]
            try:
                answer = await self._exchange(upstream, ours, ident)
            except (UpstreamError, OSError, TimeoutError) as e:
                log.warning("upstream failed upstream=%s error=%s", upstream,
                            e or type(e).__name__)
                continue
            return client_id + answer[2:]
        return None

    async def _exchange(self, upstream: Upstream, query: bytes, ident: int) -> bytes:
        answer = await self.query_udp(upstream, query, ident)
        if struct.unpack_from("!H", answer, 2)[0] & _TC:
            log.debug("truncated over UDP, retrying over TCP upstream=%s", upstream)
            answer = await self.query_tcp(upstream, query, ident)
        return answer

    async def query_udp(self, upstream: Upstream, query: bytes, ident: int) -> bytes:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _UdpExchange(ident), remote_addr=(upstream.host, upstream.port))
        try:
            transport.sendto(query)
            return await asyncio.wait_for(protocol.answer, self.timeout)
        finally:
            transport.close()
            if not protocol.answer.done():
                protocol.answer.cancel()
            # Retrieve a late exception so asyncio does not log it as never retrieved.
            with contextlib.suppress(BaseException):
                protocol.answer.exception()

    async def query_tcp(self, upstream: Upstream, query: bytes, ident: int) -> bytes:
        async def exchange() -> bytes:
            reader, writer = await asyncio.open_connection(upstream.host, upstream.port)
            try:
                writer.write(struct.pack("!H", len(query)) + query)
                await writer.drain()
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                answer = await reader.readexactly(length)
            except asyncio.IncompleteReadError as e:
                raise UpstreamError("connection closed mid-answer") from e
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            if len(answer) < 12 or struct.unpack_from("!H", answer)[0] != ident:
                raise UpstreamError("TCP answer with a different ID")
            return answer

        return await asyncio.wait_for(exchange(), self.timeout)
