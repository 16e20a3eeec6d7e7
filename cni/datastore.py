"""A node's address pool: its ENIs, their addresses, and which pod holds which address.

Pure bookkeeping (after aws-vpc-cni's `pkg/ipamd/datastore`): no I/O but the checkpoint
file. Assignments are keyed as the CNI spec asks plugins that keep state to key it:
(network name, CNI_CONTAINERID, CNI_IFNAME), so an ADD repeated for the same container
returns the same address and a DEL for an unknown container is a no-op.

A released address is not handed out again for `cooldown` seconds (IP_COOLDOWN_PERIOD,
30 s by default): other nodes, Services and conntrack may still send traffic for the old
pod to it.

The checkpoint file holds the assignments (same layout as upstream's
`/var/run/aws-node/ipam.json`, version "kubelite-ipam/1") plus recently released addresses, so
a restarted ipamd never gives a running pod's address to another pod.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from cni.warmpool import PoolStats

CHECKPOINT_VERSION = "kubelite-ipam/1"
RECOVERED_NETWORK = "_recovered-from-apiserver"  # network name of backfilled assignments


class DataStoreError(Exception):
    pass


class InUse(DataStoreError):
    """An address, prefix or ENI to be removed is still assigned to a pod."""


@dataclass(frozen=True)
class IpamKey:
    network_name: str
    container_id: str
    ifname: str

    def __str__(self) -> str:
        return f"{self.network_name}/{self.container_id}/{self.ifname}"


@dataclass(frozen=True)
class PodRef:
    namespace: str = ""
    name: str = ""

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class Address:
    ip: str
    key: IpamKey | None = None
    pod: PodRef = PodRef()
    assigned_at: float = 0.0
    unassigned_at: float = 0.0  # 0: never released

    @property
    def assigned(self) -> bool:
        return self.key is not None

    def cooling(self, now: float, cooldown: float) -> bool:
        return not self.assigned and self.unassigned_at > 0 and now - self.unassigned_at < cooldown


@dataclass
class Cidr:
    cidr: str  # a /32 secondary address or a /28 prefix
    is_prefix: bool
    addresses: dict[str, Address] = field(default_factory=dict)

    def assigned_count(self) -> int:
        return sum(1 for a in self.addresses.values() if a.assigned)

    def idle(self, now: float, cooldown: float) -> bool:
        """No address assigned or cooling down: the whole CIDR could be given back."""
        return all(not a.assigned and not a.cooling(now, cooldown)
                   for a in self.addresses.values())


@dataclass
class Eni:
    eni_id: str
    device_number: int
    primary_ip: str
    is_primary: bool
    created_at: float
    cidrs: dict[str, Cidr] = field(default_factory=dict)

    def addresses(self) -> Iterator[Address]:
        for cidr in self.cidrs.values():
            yield from cidr.addresses.values()


@dataclass(frozen=True)
class Assignment:
    ip: str
    eni_id: str
    device_number: int
    key: IpamKey
    pod: PodRef


@dataclass(frozen=True)
class UnusedEni:
    eni_id: str
    ips: int
    free_prefixes: int


class DataStore:
    def __init__(self, cooldown: float = 30.0, clock: Callable[[], float] = time.time) -> None:
        self.cooldown = cooldown
        self.clock = clock
        self.enis: dict[str, Eni] = {}

    # --- ENIs and CIDRs (changed by the pool manager only) -----------------------------------

    def add_eni(self, eni_id: str, device_number: int, primary_ip: str,
                is_primary: bool = False) -> Eni:
        if eni_id not in self.enis:
            self.enis[eni_id] = Eni(eni_id, device_number, primary_ip, is_primary,
                                    self.clock())
        return self.enis[eni_id]

    def add_cidr(self, eni_id: str, cidr: str, is_prefix: bool) -> None:
        eni = self.enis[eni_id]
        if cidr in eni.cidrs:
            return
        net = IPv4Network(cidr if "/" in cidr else f"{cidr}/32")
        entry = Cidr(str(net), is_prefix)
        first = int(net.network_address)
        for addr in range(first, first + net.num_addresses):
            ip = str(IPv4Address(addr))
            entry.addresses[ip] = Address(ip)
        eni.cidrs[entry.cidr] = entry

    def remove_cidrs(self, eni_id: str, cidrs: list[str]) -> list[Cidr]:
        """Take CIDRs out of the pool (before giving them back); returns them for put_back."""
        eni = self.enis[eni_id]
        for cidr in cidrs:
            if eni.cidrs.get(cidr) and eni.cidrs[cidr].assigned_count():
                raise InUse(f"{cidr} on {eni_id} is assigned to a pod")
        return [eni.cidrs.pop(c) for c in cidrs if c in eni.cidrs]

    def put_back_cidrs(self, eni_id: str, cidrs: list[Cidr]) -> None:
        """Undo remove_cidrs when giving them back failed."""
        eni = self.enis.get(eni_id)
        if eni is not None:
            for cidr in cidrs:
                eni.cidrs.setdefault(cidr.cidr, cidr)

    def remove_eni(self, eni_id: str) -> Eni | None:
        eni = self.enis.get(eni_id)
        if eni is None:
            return None
        if any(a.assigned for a in eni.addresses()):
            raise InUse(f"{eni_id} has addresses assigned to pods")
        return self.enis.pop(eni_id)

    def put_back_eni(self, eni: Eni) -> None:
        self.enis.setdefault(eni.eni_id, eni)

    def ordered_enis(self) -> list[Eni]:
        return sorted(self.enis.values(), key=lambda e: e.device_number)

    # --- assignments (changed by AddNetwork / DelNetwork) -----------------------------------

    def _find(self, key: IpamKey) -> tuple[Eni, Address] | None:
        for eni in self.enis.values():
            for addr in eni.addresses():
                if addr.key == key:
                    return eni, addr
        return None

    def lookup(self, key: IpamKey) -> Assignment | None:
        found = self._find(key)
        if found is None:
            return None
        eni, addr = found
        return Assignment(addr.ip, eni.eni_id, eni.device_number, key, addr.pod)

    def assign(self, key: IpamKey, pod: PodRef) -> Assignment | None:
        """The key's address (the same one again for a repeated ADD), or None if none is free."""
        existing = self.lookup(key)
        if existing is not None:
            return existing
        now = self.clock()
        best: tuple[tuple[int, float, int, int], Eni, Address] | None = None
        for eni in self.enis.values():
            for cidr in eni.cidrs.values():
                # Fill prefixes that are already in use first, so whole ones stay free to give back.
                busy = 0 if cidr.is_prefix and cidr.assigned_count() else 1
                for addr in cidr.addresses.values():
                    if addr.assigned or addr.cooling(now, self.cooldown):
                        continue
                    # Least recently released first, then the lowest ENI and address.
                    rank = (busy, addr.unassigned_at, eni.device_number,
                            int(IPv4Address(addr.ip)))
                    if best is None or rank < best[0]:
                        best = (rank, eni, addr)
        if best is None:
            return None
        _, eni, addr = best
        addr.key, addr.pod, addr.assigned_at = key, pod, now
        return Assignment(addr.ip, eni.eni_id, eni.device_number, key, pod)

    def unassign(self, key: IpamKey) -> Assignment | None:
        found = self._find(key)
        if found is None:
            return None
        eni, addr = found
        result = Assignment(addr.ip, eni.eni_id, eni.device_number, key, addr.pod)
        addr.key, addr.pod, addr.unassigned_at = None, PodRef(), self.clock()
        return result

    def recovered_key_for(self, pod: PodRef) -> IpamKey | None:
        """The placeholder key of an assignment rebuilt from the apiserver for this pod."""
        for eni in self.enis.values():
            for addr in eni.addresses():
                if (addr.key is not None and addr.key.network_name == RECOVERED_NETWORK
                        and addr.pod == pod):
                    return addr.key
        return None

    def assignments(self) -> list[Assignment]:
        return [Assignment(a.ip, e.eni_id, e.device_number, a.key, a.pod)
                for e in self.ordered_enis() for a in e.addresses() if a.key is not None]

    def mark_assigned(self, ip: str, key: IpamKey, pod: PodRef, assigned_at: float) -> bool:
        """Restore one assignment; False when no ENI of this node holds the address."""
        for eni in self.enis.values():
            for cidr in eni.cidrs.values():
                addr = cidr.addresses.get(ip)
                if addr is not None:
                    addr.key, addr.pod, addr.assigned_at = key, pod, assigned_at
                    return True
        return False

    # --- numbers for the warm pool -------------------------------------------------------

    def stats(self) -> PoolStats:
        now = self.clock()
        total = assigned = cooling = prefixes = free_prefixes = 0
        for eni in self.enis.values():
            for cidr in eni.cidrs.values():
                if cidr.is_prefix:
                    prefixes += 1
                    if cidr.idle(now, self.cooldown):
                        free_prefixes += 1
                for addr in cidr.addresses.values():
                    total += 1
                    if addr.assigned:
                        assigned += 1
                    elif addr.cooling(now, self.cooldown):
                        cooling += 1
        return PoolStats(total_ips=total, assigned_ips=assigned, cooldown_ips=cooling,
                         total_prefixes=prefixes, free_prefixes=free_prefixes,
                         enis=len(self.enis))

    def eni_fill(self) -> list[tuple[str, int]]:
        """(ENI id, slots used) per ENI in device order."""
        return [(e.eni_id, len(e.cidrs)) for e in self.ordered_enis()]

    def freeable_cidrs(self, eni_id: str) -> list[str]:
        now = self.clock()
        eni = self.enis[eni_id]
        return [c.cidr for c in eni.cidrs.values() if c.idle(now, self.cooldown)]

    def unused_enis(self, min_lifetime: float) -> list[UnusedEni]:
        """Secondary ENIs old enough to give back, with nothing assigned or cooling down."""
        now = self.clock()
        out = []
        for eni in self.ordered_enis():
            if eni.is_primary or now - eni.created_at < min_lifetime:
                continue
            if all(c.idle(now, self.cooldown) for c in eni.cidrs.values()):
                ips = sum(len(c.addresses) for c in eni.cidrs.values())
                free_prefixes = sum(1 for c in eni.cidrs.values() if c.is_prefix)
                out.append(UnusedEni(eni.eni_id, ips, free_prefixes))
        # Give back the highest device first, as a newer ENI is the likelier to be unused.
        return sorted(out, key=lambda u: -self.enis[u.eni_id].device_number)

    # --- checkpoint ---------------------------------------------------------------------

    def checkpoint_data(self) -> dict[str, Any]:
        now = self.clock()
        allocations: list[dict[str, Any]] = []
        cooling: list[dict[str, Any]] = []
        for eni in self.ordered_enis():
            for addr in eni.addresses():
                if addr.key is not None:
                    allocations.append({
                        "networkName": addr.key.network_name,
                        "containerID": addr.key.container_id, "ifName": addr.key.ifname,
                        "ipv4": addr.ip, "allocationTimestamp": int(addr.assigned_at * 1e9),
                        "metadata": {"k8sPodNamespace": addr.pod.namespace,
                                     "k8sPodName": addr.pod.name}})
                elif addr.cooling(now, self.cooldown):
                    cooling.append({"ipv4": addr.ip,
                                    "unassignedTimestamp": int(addr.unassigned_at * 1e9)})
        return {"version": CHECKPOINT_VERSION, "allocations": allocations, "cooldown": cooling}

    def restore(self, data: dict[str, Any]) -> tuple[int, list[str]]:
        """Re-apply a checkpoint over the ENIs already added.

        Returns (restored count, addresses dropped because no ENI of the node holds them
        any more: their pods are presumed gone).
        """
        if data.get("version") != CHECKPOINT_VERSION:
            raise DataStoreError(f"checkpoint version {data.get('version')!r} is not "
                                 f"{CHECKPOINT_VERSION!r}")
        restored, dropped = 0, []
        for entry in data.get("allocations") or []:
            key = IpamKey(str(entry.get("networkName", "")), str(entry.get("containerID", "")),
                          str(entry.get("ifName", "")))
            meta = entry.get("metadata") or {}
            pod = PodRef(str(meta.get("k8sPodNamespace", "")), str(meta.get("k8sPodName", "")))
            ip = str(entry.get("ipv4", ""))
            if self.mark_assigned(ip, key, pod, int(entry.get("allocationTimestamp", 0)) / 1e9):
                restored += 1
            else:
                dropped.append(ip)
        for entry in data.get("cooldown") or []:
            ip, when = str(entry.get("ipv4", "")), int(entry.get("unassignedTimestamp", 0)) / 1e9
            for eni in self.enis.values():
                for cidr in eni.cidrs.values():
                    addr = cidr.addresses.get(ip)
                    if addr is not None and not addr.assigned:
                        addr.unassigned_at = when
        return restored, dropped


def save_checkpoint(path: Path, data: dict[str, Any]) -> None:
    """Write atomically: a crash leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ipam-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint, or None when there is none yet (a new node)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    if not isinstance(data, dict):
        raise DataStoreError(f"{path}: not a JSON object")
    return data
