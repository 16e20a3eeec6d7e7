"""The userspace proxier: forwards TCP and UDP itself, for kernels we cannot program.

- Every ClusterIP is put as a /32 on the interface `kl-svc0` (see `netif`), so traffic to it
  is delivered locally; a listener bound to ClusterIP:port accepts it and opens a connection
  to an endpoint. NodePorts are listened on 0.0.0.0:<nodePort> (or on the local addresses
  inside --nodeport-addresses).
- A service port is listened on only while it has endpoints, so that without endpoints a
  connection is refused, as the iptables mode's REJECT does.
- Endpoints are taken round-robin (`balancer`), with ClientIP affinity. An endpoint that
  refuses the connection is skipped for that connection. Changing the endpoints affects new
  connections only; established ones keep going.
- UDP: one connected socket per (client, service port) towards the chosen endpoint, closed
  after `udp_idle_timeout` without traffic.
- When the interface cannot be managed (not root), only NodePorts are served, and the log
  says ClusterIPs are unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Any, cast

from kube_proxy import netif
from kube_proxy.balancer import LoadBalancer
from kube_proxy.iptables import Iptables, IptablesError
from kube_proxy.model import ServicePortName, Snapshot

log = logging.getLogger("kube_proxy.userspace")

CONNECT_TIMEOUT = 5.0
UDP_IDLE_TIMEOUT = 60.0
BUFFER = 65536

ListenerKey = tuple[str, str, int]  # (protocol, host, port)


class _UdpSession:
    """One client of a UDP service port and its socket towards the chosen endpoint."""

    def __init__(self, frontend: _UdpFrontend, client: tuple[str, int],
                 endpoint: tuple[str, int]) -> None:
        self.frontend = frontend
        self.client = client
        self.endpoint = endpoint
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            self.sock.connect(endpoint)
        except OSError:
            self.sock.close()
            raise
        self.last_used = time.monotonic()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.fileno(), self._readable)

    def send(self, data: bytes) -> None:
        self.last_used = time.monotonic()
        with contextlib.suppress(OSError):  # UDP: a datagram that cannot go is dropped
            self.sock.send(data)

    def _readable(self) -> None:
        for _ in range(64):
            try:
                data = self.sock.recv(BUFFER)
            except OSError:  # nothing more to read, or an ICMP error from the endpoint
                return
            self.last_used = time.monotonic()
            if self.frontend.transport is not None:
                self.frontend.transport.sendto(data, self.client)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self.sock.fileno())
        self.sock.close()


class _UdpFrontend(asyncio.DatagramProtocol):
    def __init__(self, proxier: UserspaceProxier, name: ServicePortName) -> None:
        self.proxier = proxier
        self.name = name
        self.transport: asyncio.DatagramTransport | None = None
        self.sessions: dict[tuple[str, int], _UdpSession] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        session = self.sessions.get(addr)
        if session is None:
            endpoint = self.proxier.balancer.pick(self.name, addr[0])
            if endpoint is None:
                return
            try:
                session = _UdpSession(self, addr, endpoint)
            except OSError as e:
                log.warning("udp endpoint unusable service=%s endpoint=%s:%d error=%s",
                            self.name, endpoint[0], endpoint[1], e)
                return
            self.sessions[addr] = session
        session.send(data)

    def expire(self, idle: float) -> None:
        now = time.monotonic()
        for addr, session in list(self.sessions.items()):
            if now - session.last_used > idle:
                session.close()
                del self.sessions[addr]

    def close(self) -> None:
        for session in self.sessions.values():
            session.close()
        self.sessions.clear()
        if self.transport is not None:
            self.transport.close()


@dataclass
class _Listener:
    name: ServicePortName
    server: asyncio.Server | None = None
    udp: _UdpFrontend | None = None

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        if self.udp is not None:
            self.udp.close()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(BUFFER):
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()  # pass the half-close on; the other direction may go on


async def _splice(a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                  b: tuple[asyncio.StreamReader, asyncio.StreamWriter], label: str) -> None:
    up = asyncio.create_task(_copy(a[0], b[1]), name=f"{label}:up")
    down = asyncio.create_task(_copy(b[0], a[1]), name=f"{label}:down")
    try:
        await asyncio.gather(up, down)
    finally:
        for task in (up, down):
            task.cancel()
        await asyncio.gather(up, down, return_exceptions=True)


class UserspaceProxier:
    mode = "userspace"

    def __init__(self, interface: str = netif.DEFAULT_INTERFACE,
                 nodeport_cidrs: Sequence[IPv4Network] = (), ipt: Iptables | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT,
                 udp_idle_timeout: float = UDP_IDLE_TIMEOUT) -> None:
        self.interface = interface
        self.nodeport_cidrs = list(nodeport_cidrs)
        self.ipt = ipt
        self.connect_timeout = connect_timeout
        self.udp_idle_timeout = udp_idle_timeout
        self.balancer: LoadBalancer[ServicePortName] = LoadBalancer()
        self.listeners: dict[ListenerKey, _Listener] = {}
        self.cluster_ips_reachable = False
        self._addresses: set[str] | None = None
        self._nodeport_hosts: list[str] | None = None
        self._conns: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self.ipt is not None and not self.ipt.missing():
            # The iptables mode's leftovers would DNAT our ClusterIPs away from our listeners.
            try:
                deleted = await self.ipt.cleanup()
                if deleted:
                    log.info("removed the iptables mode's rules (%d chains)", deleted)
            except IptablesError as e:
                log.debug("no iptables cleanup: %s", e)
        try:
            kind = await netif.ensure_link(self.interface)
            self.cluster_ips_reachable = True
            log.info("ClusterIPs go on interface %s (%s)", self.interface, kind)
        except netif.NetifError as e:
            self.cluster_ips_reachable = False
            log.warning("cannot manage interface %s (%s): ClusterIPs are not reachable, "
                        "serving NodePorts only", self.interface, e)
        self._addresses = None
        self._sweeper = asyncio.create_task(self._sweep_udp(),
                                            name="kube-proxy:userspace:udp-sweeper")

    async def stop(self, cleanup: bool) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        listeners = list(self.listeners.values())
        self.listeners.clear()
        for listener in listeners:
            listener.close()
        conns = list(self._conns)
        for task in conns:
            task.cancel()
        await asyncio.gather(*conns, return_exceptions=True)
        for listener in listeners:
            if listener.server is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(listener.server.wait_closed(), 2.0)
        if cleanup and self.cluster_ips_reachable:
            try:
                if await netif.delete_link(self.interface):
                    log.info("removed interface %s and its ClusterIPs", self.interface)
            except netif.NetifError as e:
                log.warning("cannot remove interface %s: %s", self.interface, e)

    async def _sweep_udp(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, self.udp_idle_timeout))
            for listener in self.listeners.values():
                if listener.udp is not None:
                    listener.udp.expire(self.udp_idle_timeout)

    # --- sync ---------------------------------------------------------------------------------

    async def _sync_addresses(self, snapshot: Snapshot, full: bool) -> None:
        wanted = {sp.cluster_ip for sp in snapshot.services.values()}
        if full or self._addresses is None:
            await netif.ensure_link(self.interface)  # back, should someone have deleted it
            self._addresses = await netif.addresses(self.interface)
        for address in sorted(wanted - self._addresses):
            await netif.add_address(self.interface, address)
            self._addresses.add(address)
        for address in sorted(self._addresses - wanted):
            await netif.del_address(self.interface, address)
            self._addresses.discard(address)

    async def _nodeport_hosts_for(self, full: bool) -> list[str]:
        if not self.nodeport_cidrs:
            return ["0.0.0.0"]
        if full or self._nodeport_hosts is None:
            local = await netif.local_ipv4_addresses()
            self._nodeport_hosts = netif.addresses_in(self.nodeport_cidrs, local)
        return self._nodeport_hosts

    async def sync(self, snapshot: Snapshot, full: bool) -> None:
        if self.cluster_ips_reachable:
            await self._sync_addresses(snapshot, full)
        for name in set(self.balancer.keys()) - set(snapshot.services):
            self.balancer.remove(name)
        nodeport_hosts = await self._nodeport_hosts_for(full)
        wanted: dict[ListenerKey, ServicePortName] = {}
        for name, sp in sorted(snapshot.services.items()):
            endpoints = snapshot.usable_endpoints(name)
            self.balancer.update(name, [(ep.ip, ep.port) for ep in endpoints],
                                 sp.affinity_timeout)
            if not endpoints:
                continue
            if self.cluster_ips_reachable:
                wanted[(sp.protocol, sp.cluster_ip, sp.port)] = name
            if sp.node_port:
                for host in nodeport_hosts:
                    wanted[(sp.protocol, host, sp.node_port)] = name
        for key, listener in list(self.listeners.items()):
            if wanted.get(key) != listener.name:
                listener.close()
                del self.listeners[key]
                log.info("stopped listening service=%s address=%s:%d/%s", listener.name,
                         key[1], key[2], key[0])
        failures: list[str] = []
        for key, name in wanted.items():
            if key in self.listeners:
                continue
            try:
                self.listeners[key] = await self._listen(key, name)
            except OSError as e:
                failures.append(f"service={name} address={key[1]}:{key[2]}/{key[0]}: {e}")
                continue
            log.info("listening service=%s address=%s:%d/%s", name, key[1], key[2], key[0])
        if failures:
            raise RuntimeError("cannot listen: " + "; ".join(failures))

    async def _listen(self, key: ListenerKey, name: ServicePortName) -> _Listener:
        protocol, host, port = key
        if protocol == "UDP":
            loop = asyncio.get_running_loop()
            _, frontend = await loop.create_datagram_endpoint(
                functools.partial(_UdpFrontend, self, name), local_addr=(host, port),
                reuse_port=False)
            return _Listener(name, udp=frontend)
        server = await asyncio.start_server(functools.partial(self._serve_tcp, name), host, port,
                                            reuse_address=True)
        return _Listener(name, server=server)

    # --- TCP ----------------------------------------------------------------------------------

    async def _serve_tcp(self, name: ServicePortName, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        label = f"kube-proxy:userspace:tcp:{name}"
        if task is not None:
            task.set_name(label)
            self._conns.add(task)
        peer = writer.get_extra_info("peername")
        client_ip = peer[0] if peer else ""
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            failed: list[tuple[str, int]] = []
            while upstream is None:
                endpoint = self.balancer.pick(name, client_ip, exclude=failed)
                if endpoint is None:
                    log.warning("no endpoint reachable service=%s client=%s", name, client_ip)
                    return
                try:
                    upstream = await asyncio.wait_for(asyncio.open_connection(*endpoint),
                                                      self.connect_timeout)
                except (OSError, TimeoutError) as e:
                    log.warning("endpoint unreachable service=%s endpoint=%s:%d error=%s", name,
                                endpoint[0], endpoint[1], e or type(e).__name__)
                    failed.append(endpoint)
            await _splice((reader, writer), upstream, label)
        except (ConnectionError, OSError) as e:
            log.debug("connection ended service=%s client=%s error=%s", name, client_ip, e)
        finally:
            for w in (writer, upstream[1] if upstream else None):
                if w is not None:
                    with contextlib.suppress(Exception):
                        w.close()
            if task is not None:
                self._conns.discard(task)
