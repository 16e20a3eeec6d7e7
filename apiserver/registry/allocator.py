"""ClusterIP and NodePort allocation for Services, kept in etcd.

Every allocated value is one key (`/registry/ranges/serviceips/<ip>`,
`/registry/ranges/servicenodeports/<port>`) created with etcd's create-if-absent
transaction, so two apiservers or two concurrent creates can never hand out the same value.
As upstream, dynamic ClusterIPs come from above a small reserved lower band, which is kept
for Services that ask for a fixed address (`.1` kubernetes, `.10` DNS).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from api import errors
from apiserver.storage.etcd3 import Etcd, EtcdError, prefix_end

IP_PREFIX = "/registry/ranges/serviceips/"
PORT_PREFIX = "/registry/ranges/servicenodeports/"
RANDOM_TRIES = 16


class RangeFull(Exception):
    pass


class KeyedAllocator:
    """Values of a finite range, each claimed by creating its own key."""

    def __init__(self, etcd: Etcd, prefix: str) -> None:
        self.etcd = etcd
        self.prefix = prefix

    async def claim(self, value: str, owner: str) -> bool:
        try:
            created, _ = await self.etcd.create((self.prefix + value).encode(), owner.encode())
        except EtcdError as e:
            raise errors.ServiceUnavailable(f"allocating {value}: {e}") from e
        return bool(created)

    async def release(self, value: str) -> None:
        try:
            await self.etcd.delete_prefix((self.prefix + value).encode())
        except EtcdError:
            pass  # a leaked value is only a lost address, never a duplicate

    async def taken(self) -> set[str]:
        start = self.prefix.encode()
        r = await self.etcd.range(start, prefix_end(start), keys_only=True)
        return {kv.key.decode()[len(self.prefix):] for kv in r.kvs}

    async def claim_any(self, candidates: Callable[[], list[str]], owner: str) -> str:
        """Try a few random candidates, then scan what is free."""
        pool = candidates()
        for value in random.sample(pool, min(RANDOM_TRIES, len(pool))):
            if await self.claim(value, owner):
                return value
        used = await self.taken()
        for value in pool:
            if value not in used and await self.claim(value, owner):
                return value
        raise RangeFull()


class ServiceIPs:
    def __init__(self, etcd: Etcd, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr, strict=False)
        self.keys = KeyedAllocator(etcd, IP_PREFIX)
        size = self.network.num_addresses
        # Upstream's reserved band: 1/16 of the range, at least 16 and at most 256 addresses.
        self.reserved = min(max(size // 16, 16), 256)

    def contains(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return addr in self.network and addr not in (self.network.network_address,
                                                     self.network.broadcast_address)

    def _dynamic(self) -> list[str]:
        first = int(self.network.network_address)
        last = int(self.network.broadcast_address)
        # Large ranges are sampled, not listed: 4096 candidates are plenty for a laptop.
        low = first + self.reserved + 1
        span = last - low
        step = max(span // 4096, 1)
        return [str(ipaddress.ip_address(v)) for v in range(low, last, step)]

    def nth(self, n: int) -> str:
        return str(self.network.network_address + n)


class NodePorts:
    def __init__(self, etcd: Etcd, port_range: str) -> None:
        lo, _, hi = port_range.partition("-")
        self.low, self.high = int(lo), int(hi or lo)
        self.keys = KeyedAllocator(etcd, PORT_PREFIX)

    def contains(self, port: int) -> bool:
        return self.low <= port <= self.high

    def _all(self) -> list[str]:
        return [str(p) for p in range(self.low, self.high + 1)]


@dataclass
class Allocation:
    """Values claimed for one request; released again if the request fails."""

    ips: list[str] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)


class ServiceAllocator:
    def __init__(self, etcd: Etcd, cidr: str, port_range: str) -> None:
        self.ips = ServiceIPs(etcd, cidr)
        self.ports = NodePorts(etcd, port_range)

    async def allocate(self, svc: dict, old: dict | None, owner: str) -> Allocation:
        """Fill in spec.clusterIP(s) and nodePorts that are missing; claim requested ones."""
        spec = svc.get("spec")
        done = Allocation()
        if not isinstance(spec, dict):
            return done
        old_spec = (old or {}).get("spec") or {}
        svc_type = spec.get("type") or "ClusterIP"
        causes: list[errors.Cause] = []
        try:
            if svc_type != "ExternalName" and spec.get("clusterIP") != "None":
                wanted = spec.get("clusterIP")
                if wanted and wanted == old_spec.get("clusterIP"):
                    pass  # already ours
                elif wanted:
                    if not isinstance(wanted, str) or not self.ips.contains(wanted):
                        causes.append(errors.field_cause(
                            "spec.clusterIPs", f'Invalid value: "{wanted}": failed to '
                            f"allocate IP {wanted}: the provided IP ({wanted}) is not in the "
                            f"valid range. The range of valid IPs is {self.ips.network}"))
                    elif await self.ips.keys.claim(wanted, owner):
                        done.ips.append(wanted)
                    else:
                        causes.append(errors.field_cause(
                            "spec.clusterIPs", f'Invalid value: ["{wanted}"]: failed to '
                            f"allocate IP {wanted}: provided IP is already allocated"))
                else:
                    try:
                        ip = await self.ips.keys.claim_any(self.ips._dynamic, owner)
                    except RangeFull:
                        raise errors.InternalError(
                            "failed to allocate a serviceIP: range is full") from None
                    done.ips.append(ip)
                    spec["clusterIP"] = ip
                if spec.get("clusterIP"):
                    spec["clusterIPs"] = [spec["clusterIP"]]
            if svc_type in ("NodePort", "LoadBalancer"):
                held = {p.get("nodePort") for p in old_spec.get("ports") or []
                        if isinstance(p, dict)}
                for i, port in enumerate(spec.get("ports") or []):
                    if not isinstance(port, dict):
                        continue
                    wanted_port = port.get("nodePort")
                    if wanted_port and wanted_port in held:
                        continue
                    if wanted_port:
                        if not isinstance(wanted_port, int) or \
                                not self.ports.contains(wanted_port):
                            causes.append(errors.field_cause(
                                f"spec.ports[{i}].nodePort", f"Invalid value: {wanted_port}: "
                                f"provided port is not in the valid range. The range of valid "
                                f"ports is {self.ports.low}-{self.ports.high}"))
                        elif await self.ports.keys.claim(str(wanted_port), owner):
                            done.ports.append(wanted_port)
                        else:
                            causes.append(errors.field_cause(
                                f"spec.ports[{i}].nodePort", f"Invalid value: {wanted_port}: "
                                "provided port is already allocated"))
                    else:
                        try:
                            value = int(await self.ports.keys.claim_any(self.ports._all,
                                                                        owner))
                        except RangeFull:
                            raise errors.InternalError(
                                "failed to allocate a nodePort: range is full") from None
                        done.ports.append(value)
                        port["nodePort"] = value
        except BaseException:
            await self.release(done)
            raise
        if causes:
            await self.release(done)
            name = (svc.get("metadata") or {}).get("name", "")
            raise errors.Invalid.of("Service", str(name), causes)
        return done

    async def release(self, done: Allocation) -> None:
        for ip in done.ips:
            await self.ips.keys.release(ip)
        for port in done.ports:
            await self.ports.keys.release(str(port))

    async def release_service(self, svc: dict, keep: dict | None = None) -> None:
        """Release what `svc` holds and `keep` (its successor, on update) does not."""
        spec = svc.get("spec") or {}
        kept = (keep or {}).get("spec") or {}
        ip = spec.get("clusterIP")
        if ip and ip != "None" and ip != kept.get("clusterIP"):
            await self.ips.keys.release(ip)
        kept_ports = {p.get("nodePort") for p in kept.get("ports") or [] if isinstance(p, dict)}
        for p in spec.get("ports") or []:
            if isinstance(p, dict) and p.get("nodePort") and p["nodePort"] not in kept_ports:
                await self.ports.keys.release(str(p["nodePort"]))

