"""The userspace proxier forwarding for real, on loopback only and without root: NodePorts
bound to 127.0.0.1 (no ClusterIP interface: the proxier is not started), backends are
asyncio servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from kube_proxy.model import Endpoint, ServicePort, ServicePortName, Snapshot
from kube_proxy.netif import parse_cidrs
from kube_proxy.userspace import UserspaceProxier

TCP = ServicePortName("ns", "web", "http", "TCP")
UDP = ServicePortName("ns", "web", "dns", "UDP")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Backends:
    """TCP servers that greet with their name and then echo lines; a UDP echo server."""

    def __init__(self) -> None:
        self.ports: dict[str, int] = {}
        self.servers: list[asyncio.Server] = []
        self.udp: asyncio.DatagramTransport | None = None
        self.udp_port = 0

    async def start(self, *names: str) -> None:
        for name in names:
            async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            name: str = name) -> None:
                writer.write(f"{name}\n".encode())
                while line := await reader.readline():
                    writer.write(f"{name}:{line.decode()}".encode())
                    await writer.drain()
                writer.close()

            server = await asyncio.start_server(serve, "127.0.0.1", 0)
            self.servers.append(server)
            self.ports[name] = server.sockets[0].getsockname()[1]

        class Echo(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                self.transport.sendto(b"udp:" + data, addr)  # type: ignore[attr-defined]

        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        self.udp = transport  # type: ignore[assignment]
        self.udp_port = transport.get_extra_info("sockname")[1]

    def close(self) -> None:
        for server in self.servers:
            server.close()
        if self.udp is not None:
            self.udp.close()


@pytest.fixture
async def backends() -> AsyncIterator[Backends]:
    b = Backends()
    await b.start("a", "b")
    try:
        yield b
    finally:
        b.close()


def snapshot(backends: Backends, names: list[str], node_port: int, udp_port: int,
             affinity: int | None = None) -> Snapshot:
    tcp_eps = tuple(Endpoint("127.0.0.1", backends.ports[n]) for n in names)
    udp_eps = (Endpoint("127.0.0.1", backends.udp_port),)
    return Snapshot(
        {TCP: ServicePort(TCP, "10.96.0.10", 80, node_port, affinity_timeout=affinity),
         UDP: ServicePort(UDP, "10.96.0.10", 53, udp_port)},
        {TCP: tcp_eps, UDP: udp_eps})


async def greeting(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
    finally:
        writer.close()


async def test_userspace_forwards_tcp_and_udp_and_follows_endpoints(backends: Backends) -> None:
    proxier = UserspaceProxier(nodeport_cidrs=parse_cidrs("127.0.0.1/32"))
    node_port, udp_port = free_port(), free_port(socket.SOCK_DGRAM)
    await proxier.sync(snapshot(backends, ["a", "b"], node_port, udp_port), full=True)
    try:
        assert [await greeting(node_port) for _ in range(4)] == ["a", "b", "a", "b"]

        # An established connection keeps its endpoint when the endpoints change.
        reader, writer = await asyncio.open_connection("127.0.0.1", node_port)
        first = (await reader.readline()).decode().strip()
        others = [n for n in ("a", "b") if n != first]
        await proxier.sync(snapshot(backends, others, node_port, udp_port), full=False)
        writer.write(b"still there?\n")
        await writer.drain()
        assert (await asyncio.wait_for(reader.readline(), 5)).decode() == \
            f"{first}:still there?\n"
        assert {await greeting(node_port) for _ in range(3)} == set(others)
        writer.close()

        # UDP through the NodePort.
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setblocking(False)
            await loop.sock_connect(s, ("127.0.0.1", udp_port))
            await loop.sock_sendall(s, b"ping")
            assert await asyncio.wait_for(loop.sock_recv(s, 100), 5) == b"udp:ping"

        # Affinity: one client IP sticks to one endpoint.
        await proxier.sync(snapshot(backends, ["a", "b"], node_port, udp_port, affinity=60),
                           full=False)
        assert len({await greeting(node_port) for _ in range(6)}) == 1

        # No endpoints: nothing listens, the connection is refused.
        await proxier.sync(snapshot(backends, [], node_port, udp_port), full=False)
        with pytest.raises(ConnectionRefusedError):
            await greeting(node_port)
    finally:
        await proxier.stop(cleanup=False)
    assert proxier.listeners == {}


async def test_userspace_skips_a_dead_endpoint(backends: Backends) -> None:
    proxier = UserspaceProxier(nodeport_cidrs=parse_cidrs("127.0.0.1/32"), connect_timeout=2)
    node_port = free_port()
    dead = free_port()  # nothing listens there
    snap = Snapshot({TCP: ServicePort(TCP, "10.96.0.10", 80, node_port)},
                    {TCP: (Endpoint("127.0.0.1", dead), Endpoint("127.0.0.1",
                                                                 backends.ports["a"]))})
    await proxier.sync(snap, full=True)
    try:
        assert [await greeting(node_port) for _ in range(3)] == ["a", "a", "a"]
    finally:
        await proxier.stop(cleanup=False)
