"""The DNS server's sockets: UDP datagrams and TCP connections (RFC 1035 4.2, RFC 7766) on
one port, each query handled by `QueryHandler` in a task of its own.

Over TCP every message carries a two-octet length prefix; a connection may send several
queries and answers go back in order. Idle connections are closed after `tcp_idle_timeout`
seconds. Over UDP at most `max_inflight` queries are handled at once; more are dropped (the
client retries), so a flood cannot grow memory without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
from typing import cast

from dns.handler import QueryHandler

log = logging.getLogger(__name__)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's UDP transport is not a DatagramTransport subclass in 3.11.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server._spawn_udp(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp socket error: %s", exc)


class DnsServer:
    def __init__(self, handler: QueryHandler, host: str = "0.0.0.0", port: int = 53, *,
                 tcp_idle_timeout: float = 10.0, max_inflight: int = 1024) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.tcp_idle_timeout = tcp_idle_timeout
        self.max_inflight = max_inflight
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._udp_inflight = 0

    async def start(self) -> None:
        """Bind UDP then TCP on the same port. With port 0 the kernel picks UDP's port, and
        the pair is retried when that port's TCP side happens to be taken."""
        attempts = 20 if self.port == 0 else 1
        for attempt in range(attempts):
            try:
                await self._bind(self.port if attempts == 1 else 0)
                break
            except OSError as e:
                if e.errno != errno.EADDRINUSE or attempt == attempts - 1:
                    raise
        log.info("serving DNS on %s port %d (udp, tcp)", self.host, self.port)

    async def _bind(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(self.host, port), family=family)
        port = int(transport.get_extra_info("sockname")[1])
        try:
            self._tcp = await asyncio.start_server(self._tcp_client, self.host, port,
                                                   family=family, reuse_address=True)
        except OSError:
            transport.close()
            raise
        self._udp = cast(asyncio.DatagramTransport, transport)
        self.port = port

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            self._tcp = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # --- UDP ------------------------------------------------------------------------------

    def _spawn_udp(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._udp_inflight >= self.max_inflight:
            log.warning("too many queries in flight, dropping one from %s", addr[0])
            return
        self._udp_inflight += 1
        self._track(asyncio.create_task(self._udp_query(data, addr), name="dns:udp-query"))

    async def _udp_query(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            answer = await self.handler.handle(data, "udp")
            if answer is not None and self._udp is not None:
                self._udp.sendto(answer, addr)
        finally:
            self._udp_inflight -= 1

    # --- TCP ------------------------------------------------------------------------------

    async def _tcp_client(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            task.set_name("dns:tcp-connection")
            self._track(task)
        try:
            while True:
                try:
                    prefix = await asyncio.wait_for(reader.readexactly(2),
                                                    self.tcp_idle_timeout)
                    (length,) = struct.unpack("!H", prefix)
                    data = await asyncio.wait_for(reader.readexactly(length),
                                                  self.tcp_idle_timeout)
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    return
                answer = await self.handler.handle(data, "tcp")
                if answer is None:
                    return
                writer.write(struct.pack("!H", len(answer)) + answer)
                await writer.drain()
        except ConnectionError:
            return
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
