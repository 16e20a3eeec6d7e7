"""The `ip` commands kube-proxy runs: the userspace mode's ClusterIP interface, local addresses.

The userspace mode puts every ClusterIP as a /32 on one interface (`kl-svc0`) so the kernel
delivers traffic to ClusterIPs locally and our listeners, bound to ClusterIP:port, get it
(upstream's IPVS mode does the same with `kube-ipvs0`). The interface is a dummy device;
kernels built without the dummy driver get an empty bridge instead, which holds addresses
just as well.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Sequence

DEFAULT_INTERFACE = "kl-svc0"
COMMAND_TIMEOUT = 15.0


class NetifError(Exception):
    def __init__(self, argv: Sequence[str], stderr: str) -> None:
        super().__init__(f"{' '.join(argv)}: {stderr.strip()}")
        self.stderr = stderr

    @property
    def not_found(self) -> bool:
        text = self.stderr.lower()
        return "cannot find device" in text or "does not exist" in text

    @property
    def exists(self) -> bool:
        return "file exists" in self.stderr.lower()


async def ip(*args: str) -> str:
    argv = ["ip", *args]
    try:
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
    except OSError as e:
        raise NetifError(argv, str(e)) from e
    try:
        out, err = await asyncio.wait_for(proc.communicate(), COMMAND_TIMEOUT)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if proc.returncode != 0:
        raise NetifError(argv, (err or out).decode(errors="replace"))
    return out.decode(errors="replace")


async def link_exists(name: str) -> bool:
    try:
        await ip("link", "show", "dev", name)
        return True
    except NetifError as e:
        if e.not_found:
            return False
        raise


async def ensure_link(name: str) -> str:
    """Create the interface unless it exists and set it up; returns its kind."""
    kind = "existing"
    if not await link_exists(name):
        try:
            await ip("link", "add", name, "type", "dummy")
            kind = "dummy"
        except NetifError as e:
            if "unknown device type" not in e.stderr.lower() and \
                    "not supported" not in e.stderr.lower():
                raise
            await ip("link", "add", name, "type", "bridge")
            kind = "bridge"
    await ip("link", "set", "dev", name, "up")
    return kind


async def delete_link(name: str) -> bool:
    try:
        await ip("link", "del", "dev", name)
        return True
    except NetifError as e:
        if e.not_found:
            return False
        raise


async def addresses(name: str) -> set[str]:
    """The IPv4 addresses (without prefix length) on an interface."""
    try:
        out = await ip("-j", "-4", "addr", "show", "dev", name)
    except NetifError as e:
        if e.not_found:
            return set()
        raise
    found: set[str] = set()
    for entry in json.loads(out or "[]"):
        for info in entry.get("addr_info") or []:
            if info.get("local"):
                found.add(str(info["local"]))
    return found


async def add_address(name: str, address: str) -> None:
    try:
        await ip("addr", "add", f"{address}/32", "dev", name)
    except NetifError as e:
        if not e.exists:
            raise


async def del_address(name: str, address: str) -> None:
    try:
        await ip("addr", "del", f"{address}/32", "dev", name)
    except NetifError as e:
        if "cannot assign" not in e.stderr.lower() and not e.not_found:
            raise


async def local_ipv4_addresses() -> list[str]:
    out = await ip("-j", "-4", "addr", "show")
    found: list[str] = []
    for entry in json.loads(out or "[]"):
        for info in entry.get("addr_info") or []:
            if info.get("local"):
                found.append(str(info["local"]))
    return found


def parse_cidrs(text: str) -> list[ipaddress.IPv4Network]:
    """Comma-separated IPv4 CIDRs (a bare address means /32); ValueError when invalid."""
    nets: list[ipaddress.IPv4Network] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        net = ipaddress.ip_network(part, strict=False)
        if net.version != 4:
            raise ValueError(f"{part}: only IPv4 is supported")
        nets.append(ipaddress.IPv4Network(net))
    return nets


def addresses_in(cidrs: Sequence[ipaddress.IPv4Network], addrs: Sequence[str]) -> list[str]:
    """The addresses inside any of the CIDRs, sorted and without duplicates."""
    picked = {a for a in addrs if any(ipaddress.IPv4Address(a) in net for net in cidrs)}
    return sorted(picked, key=lambda a: int(ipaddress.IPv4Address(a)))
