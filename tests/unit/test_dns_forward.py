"""Forwarding to upstreams (dns.forward) against fake DNS servers on 127.0.0.1, and the
server's sockets (dns.server) end to end on loopback. `FakeUpstream` and `dns_query` are
also used by the integration tests. No packet leaves the loopback interface."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from types import TracebackType
from typing import Self, cast

import pytest

from dns.forward import Forwarder, Upstream
from dns.handler import QueryHandler
from dns.records import ClusterState, ClusterZone
from dns.server import DnsServer
from dns.wire import Edns, Message, Question, Rcode, Record, RRType, Soa, WireError, decode


class _FakeUdp(asyncio.DatagramProtocol):
    def __init__(self, owner: FakeUpstream) -> None:
        self.owner = owner
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's UDP transport is not a DatagramTransport subclass in 3.11.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        answer = self.owner.answer(data, "udp")
        if answer is not None and self.transport is not None:
            if self.owner.decoy:
                # An answer with the wrong ID first: a forwarder must not take it.
                self.transport.sendto(b"\xff\xff" + answer[2:], addr)
            self.transport.sendto(answer, addr)


class FakeUpstream:
    """A loopback DNS server: A records from `records`, NXDOMAIN for other names.

    `truncate_udp`: UDP answers are empty with TC set (the full answer only over TCP);
    `silent`: never answers (a dead upstream); `decoy`: sends a wrong-ID answer first;
    `ttl`: the TTL of the A records; `soa_ttl`: negative answers (NXDOMAIN, NODATA) carry an
    SOA with this TTL and MINIMUM (without it they carry none, and are not cacheable).
    """

    def __init__(self, records: dict[str, list[str]] | None = None, *,
                 truncate_udp: bool = False, silent: bool = False, decoy: bool = False,
                 ttl: int = 60, soa_ttl: int | None = None) -> None:
        self.records = {k.lower(): v for k, v in (records or {}).items()}
        self.truncate_udp = truncate_udp
        self.silent = silent
        self.decoy = decoy
        self.ttl = ttl
        self.soa_ttl = soa_ttl
        self.queries: list[tuple[str, Message]] = []
        self.port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        for _ in range(20):  # UDP's free port may be taken for TCP: try another
            transport, _ = await loop.create_datagram_endpoint(lambda: _FakeUdp(self),
                                                               local_addr=("127.0.0.1", 0))
            port = transport.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._tcp_client, "127.0.0.1", port)
            except OSError:
                transport.close()
                continue
            self._udp = cast(asyncio.DatagramTransport, transport)
            self.port = port
            return self
        raise RuntimeError("no port free for both UDP and TCP")

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()

    @property
    def upstream(self) -> Upstream:
        return Upstream("127.0.0.1", self.port)

    def answer(self, data: bytes, transport: str) -> bytes | None:
        try:
            query = decode(data)
        except WireError:
            return None
        self.queries.append((transport, query))
        if self.silent or not query.questions:
            return None
        q = query.questions[0]
        resp = Message(id=query.id, qr=True, rd=query.rd, ra=True, questions=[q])
        if transport == "udp" and self.truncate_udp:
            resp.tc = True
            return resp.to_wire()
        ips = self.records.get(q.name.lower().rstrip("."))
        if ips is None:
            resp.rcode = Rcode.NXDOMAIN
        elif q.qtype in (RRType.A, RRType.ANY):
            resp.answers = [Record(q.name, RRType.A, self.ttl, ip) for ip in ips]
        if not resp.answers and self.soa_ttl is not None:
            soa = Soa("ns.test", "hostmaster.test", 1, 3600, 600, 86400, self.soa_ttl)
            resp.authorities = [Record("test", RRType.SOA, self.soa_ttl, soa)]
        return resp.to_wire()

    async def _tcp_client(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            answer = self.answer(await reader.readexactly(length), "tcp")
            if answer is not None:
                writer.write(struct.pack("!H", len(answer)) + answer)
                await writer.drain()
        writer.close()


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.answer.done():
            self.answer.set_result(data)


async def dns_exchange(port: int, wire: bytes, *, tcp: bool = False, host: str = "127.0.0.1",
                       timeout: float = 5.0) -> bytes:
    """Send one raw query, return the raw answer (TimeoutError when none comes)."""
    if tcp:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        try:
            writer.write(struct.pack("!H", len(wire)) + wire)
            (length,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2),
                                                                   timeout))
            return await asyncio.wait_for(reader.readexactly(length), timeout)
        finally:
            writer.close()
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(_Client, remote_addr=(host, port))
    try:
        transport.sendto(wire)
        return await asyncio.wait_for(proto.answer, timeout)
    finally:
        transport.close()


async def dns_query(port: int, name: str, qtype: int = RRType.A, *, tcp: bool = False,
                    edns: Edns | None = None, timeout: float = 5.0) -> Message:
    wire = Message(id=4242, rd=True, questions=[Question(name, qtype)], edns=edns).to_wire()
    resp = decode(await dns_exchange(port, wire, tcp=tcp, timeout=timeout))
    assert resp.id == 4242 and resp.qr
    return resp


def a_query(name: str, ident: int = 0x1234) -> bytes:
    return Message(id=ident, rd=True, questions=[Question(name, RRType.A)]).to_wire()


# --- forwarder ----------------------------------------------------------------------------


async def test_forward_over_udp_restores_the_client_id() -> None:
    async with FakeUpstream({"example.com": ["192.0.2.1"]}, decoy=True) as up:
        raw = await Forwarder([up.upstream]).forward(a_query("example.com", 0x1234))
        assert raw is not None
        resp = decode(raw)
        assert resp.id == 0x1234 and [r.data for r in resp.answers] == ["192.0.2.1"]
        (transport, seen), = up.queries
        assert transport == "udp" and seen.questions == [Question("example.com", RRType.A)]


async def test_truncated_udp_answer_is_retried_over_tcp() -> None:
    async with FakeUpstream({"big.example.com": ["192.0.2.9"]}, truncate_udp=True) as up:
        raw = await Forwarder([up.upstream]).forward(a_query("big.example.com"))
        assert raw is not None and [r.data for r in decode(raw).answers] == ["192.0.2.9"]
        assert [t for t, _ in up.queries] == ["udp", "tcp"]


async def test_a_dead_upstream_is_skipped_after_the_timeout() -> None:
    async with FakeUpstream(silent=True) as dead, \
            FakeUpstream({"example.com": ["192.0.2.2"]}) as alive:
        start = time.monotonic()
        raw = await Forwarder([dead.upstream, alive.upstream], timeout=0.3).forward(
            a_query("example.com"))
        assert raw is not None and decode(raw).answers[0].data == "192.0.2.2"
        assert time.monotonic() - start >= 0.3
        assert len(dead.queries) == 1


async def test_all_upstreams_failing_is_none() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    async with FakeUpstream(silent=True) as dead:
        fwd = Forwarder([Upstream("127.0.0.1", closed_port), dead.upstream], timeout=0.3)
        assert await fwd.forward(a_query("example.com")) is None
    with pytest.raises(ValueError):
        Forwarder([])


# --- the sockets end to end ---------------------------------------------------------------


async def test_server_answers_over_udp_and_tcp_and_forwards() -> None:
    state = ClusterState.from_objects([{
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"clusterIP": "10.96.0.5", "ports": []}}])
    async with FakeUpstream({"example.com": ["192.0.2.1"]}) as up:
        handler = QueryHandler(ClusterZone(state), Forwarder([up.upstream], timeout=1))
        server = DnsServer(handler, "127.0.0.1", 0)
        await server.start()
        try:
            for tcp in (False, True):
                local = await dns_query(server.port, "web.default.svc.cluster.local", tcp=tcp)
                assert [r.data for r in local.answers] == ["10.96.0.5"] and local.aa
                remote = await dns_query(server.port, "example.com", tcp=tcp)
                assert [r.data for r in remote.answers] == ["192.0.2.1"] and not remote.aa
            # garbage over UDP: FORMERR, and the server keeps serving
            garbage = b"\x00\x09\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07abc"
            formerr = decode(await dns_exchange(server.port, garbage))
            assert formerr.rcode == Rcode.FORMERR and formerr.id == 9
            # several queries on one TCP connection, answered in order
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            for ident in (1, 2):
                wire = Message(id=ident, questions=[Question("web.default.svc.cluster.local",
                                                             RRType.A)]).to_wire()
                writer.write(struct.pack("!H", len(wire)) + wire)
            for ident in (1, 2):
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                assert decode(await reader.readexactly(length)).id == ident
            writer.close()
        finally:
            await server.close()
