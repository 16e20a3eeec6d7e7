"""The VPC: one IPv4 CIDR shared by every node, and the cluster-wide table of ENIs in it.

This module is pure data and maths; `cni.ec2` stores a `VpcTable` in the apiserver and
changes it only by compare-and-swap, so two nodes can never be handed the same address.

Addresses are handed out the way a VPC subnet does:
- the first four addresses and the last are reserved (network, router = the gateway on the
  host bridge, DNS, "future use", broadcast), as AWS reserves them in every subnet;
- every ENI has a primary address, never given to a pod, plus secondary addresses or /28
  prefixes; all of them count against the instance type's IPv4-per-ENI limit;
- single addresses (primaries and secondaries) are taken from the bottom of the range and
  /28 prefixes from the top, so scattered single addresses do not break up the aligned
  blocks prefix delegation needs (what a subnet CIDR reservation does on AWS).
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from cni.eni import IPS_PER_PREFIX, instance_type

DEFAULT_VPC_CIDR = "10.200.0.0/16"
PREFIX_LENGTH = 28  # IPS_PER_PREFIX addresses
RESERVED_AT_START = 4
VPC_KEY = "vpc"
ENI_KEY_PREFIX = "eni-"


class Ec2Error(Exception):
    """An error the EC2 API would return; `code` is EC2's error code."""

    code = "InternalError"


class InsufficientAddresses(Ec2Error):
    """The VPC has no free address (or no free aligned /28) left."""

    code = "InsufficientFreeAddressesInSubnet"


class AddressLimitExceeded(Ec2Error):
    """The ENI already holds as many addresses/prefixes as its instance type allows."""

    code = "PrivateIpAddressLimitExceeded"


class AttachmentLimitExceeded(Ec2Error):
    """The node already has as many ENIs as its instance type allows."""

    code = "AttachmentLimitExceeded"


class UnknownEni(Ec2Error):
    code = "InvalidNetworkInterfaceID.NotFound"


class VpcMismatch(Ec2Error):
    """The stored table belongs to a VPC with another CIDR than this component's flag."""

    code = "InvalidVpcID.Mismatch"


def parse_vpc_cidr(text: str) -> IPv4Network:
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as e:
        raise ValueError(f"invalid VPC CIDR {text!r}: {e}") from None
    if net.version != 4:
        raise ValueError(f"VPC CIDR {text!r} is not IPv4")
    assert isinstance(net, IPv4Network)
    if not 8 <= net.prefixlen <= PREFIX_LENGTH:
        raise ValueError(f"VPC CIDR {text!r}: prefix length must be between 8 and "
                         f"{PREFIX_LENGTH}")
    return net


def gateway_of(cidr: IPv4Network) -> IPv4Address:
    """The VPC router's address: the first host address, which the host bridge holds."""
    return cidr.network_address + 1


def new_eni_id() -> str:
    """An id shaped like EC2's: `eni-` and 17 hex digits."""
    return "eni-" + secrets.token_hex(9)[:17]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class EniRecord:
    """One ENI as the EC2 API would describe it."""

    eni_id: str
    node: str
    instance_type: str
    device_number: int
    primary_ip: str
    ips: list[str] = field(default_factory=list)  # secondary addresses
    prefixes: list[str] = field(default_factory=list)  # delegated /28 prefixes
    created_at: str = ""

    @property
    def slots_used(self) -> int:
        return len(self.ips) + len(self.prefixes)

    def addresses(self) -> Iterator[int]:
        """Every address this ENI holds, as integers (primary, secondaries, prefixes)."""
        yield int(IPv4Address(self.primary_ip))
        for ip in self.ips:
            yield int(IPv4Address(ip))
        for prefix in self.prefixes:
            net = IPv4Network(prefix)
            start = int(net.network_address)
            yield from range(start, start + net.num_addresses)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> EniRecord:
        raw: dict[str, Any] = json.loads(text)
        return cls(eni_id=str(raw["eni_id"]), node=str(raw["node"]),
                   instance_type=str(raw["instance_type"]),
                   device_number=int(raw["device_number"]),
                   primary_ip=str(raw["primary_ip"]),
                   ips=[str(x) for x in raw.get("ips") or []],
                   prefixes=[str(x) for x in raw.get("prefixes") or []],
                   created_at=str(raw.get("created_at") or ""))


class VpcTable:
    """Every ENI in the VPC, with the operations of the EC2 API that change them.

    Operations either complete or raise an `Ec2Error` without changing anything, so a
    compare-and-swap loop can apply them to a fresh copy and write the result.
    """

    def __init__(self, cidr: IPv4Network, enis: Iterable[EniRecord] = ()) -> None:
        self.cidr = cidr
        self.enis: dict[str, EniRecord] = {e.eni_id: e for e in enis}

    # --- storage form (ConfigMap data) -----------------------------------------------------

    @classmethod
    def from_data(cls, data: Mapping[str, str], expected_cidr: IPv4Network) -> VpcTable:
        """Read a ConfigMap's data; a table without a `vpc` key is a new, empty VPC."""
        if VPC_KEY in data:
            stored = parse_vpc_cidr(str(json.loads(data[VPC_KEY])["cidr"]))
            if stored != expected_cidr:
                raise VpcMismatch(f"the VPC table is for {stored}, not {expected_cidr}; "
                                  "every node must use the same --vpc-cidr")
        enis = [EniRecord.from_json(v) for k, v in data.items() if k.startswith(ENI_KEY_PREFIX)]
        return cls(expected_cidr, enis)

    def to_data(self) -> dict[str, str]:
        data = {VPC_KEY: json.dumps({"cidr": str(self.cidr)})}
        for eni_id, eni in self.enis.items():
            data[eni_id] = eni.to_json()
        return data

    # --- queries --------------------------------------------------------------------------

    @property
    def gateway(self) -> IPv4Address:
        return gateway_of(self.cidr)

    def node_enis(self, node: str) -> list[EniRecord]:
        return sorted((e for e in self.enis.values() if e.node == node),
                      key=lambda e: e.device_number)

    def reserved(self) -> set[int]:
        start = int(self.cidr.network_address)
        return {*range(start, start + RESERVED_AT_START), int(self.cidr.broadcast_address)}

    def used(self) -> set[int]:
        used = self.reserved()
        for eni in self.enis.values():
            used.update(eni.addresses())
        return used

    def free_addresses(self) -> int:
        return self.cidr.num_addresses - len(self.used())

    def owner_of(self, ip: str) -> EniRecord | None:
        """The ENI that holds this address, if any."""
        addr = int(IPv4Address(ip))
        for eni in self.enis.values():
            if addr in set(eni.addresses()):
                return eni
        return None

    # --- allocation -----------------------------------------------------------------------

    def _pick_ips(self, count: int, used: set[int]) -> list[str]:
        picked: list[str] = []
        start = int(self.cidr.network_address)
        for addr in range(start, start + self.cidr.num_addresses):
            if len(picked) == count:
                break
            if addr not in used:
                picked.append(str(IPv4Address(addr)))
                used.add(addr)
        if len(picked) < count:
            raise InsufficientAddresses(f"VPC {self.cidr} has no {count} free addresses left")
        return picked

    def _pick_prefixes(self, count: int, used: set[int]) -> list[str]:
        picked: list[str] = []
        start = int(self.cidr.network_address)
        for block in range(start + self.cidr.num_addresses - IPS_PER_PREFIX, start - 1,
                           -IPS_PER_PREFIX):
            if len(picked) == count:
                break
            span = range(block, block + IPS_PER_PREFIX)
            if not any(a in used for a in span):
                picked.append(f"{IPv4Address(block)}/{PREFIX_LENGTH}")
                used.update(span)
        if len(picked) < count:
            raise InsufficientAddresses(f"VPC {self.cidr} has no {count} free /28 blocks left")
        return picked

    def _eni(self, eni_id: str) -> EniRecord:
        try:
            return self.enis[eni_id]
        except KeyError:
            raise UnknownEni(f"no ENI {eni_id}") from None

    @staticmethod
    def _check_slots(eni: EniRecord, more: int) -> None:
        limit = instance_type(eni.instance_type).secondary_ips_per_eni
        if eni.slots_used + more > limit:
            raise AddressLimitExceeded(
                f"{eni.eni_id} ({eni.instance_type}) holds {eni.slots_used} of {limit} "
                f"secondary addresses/prefixes; cannot add {more}")

    def create_eni(self, node: str, itype: str, *, secondary_ips: int = 0,
                   prefixes: int = 0, eni_id: str | None = None) -> EniRecord:
        """CreateNetworkInterface + AttachNetworkInterface at the lowest free device number."""
        limits = instance_type(itype)
        mine = self.node_enis(node)
        if len(mine) >= limits.max_enis:
            raise AttachmentLimitExceeded(f"node {node} ({itype}) already has "
                                          f"{limits.max_enis} ENIs")
        taken = {e.device_number for e in mine}
        device = next(d for d in range(limits.max_enis + 1) if d not in taken)
        used = self.used()
        primary = self._pick_ips(1, used)[0]
        eni = EniRecord(eni_id or new_eni_id(), node, itype, device, primary,
                        created_at=_now())
        self._check_slots(eni, secondary_ips + prefixes)
        eni.ips = self._pick_ips(secondary_ips, used)
        eni.prefixes = self._pick_prefixes(prefixes, used)
        self.enis[eni.eni_id] = eni
        return eni

    def assign_ips(self, eni_id: str, count: int) -> list[str]:
        """AssignPrivateIpAddresses with SecondaryPrivateIpAddressCount=count."""
        eni = self._eni(eni_id)
        self._check_slots(eni, count)
        ips = self._pick_ips(count, self.used())
        eni.ips.extend(ips)
        return ips

    def assign_prefixes(self, eni_id: str, count: int) -> list[str]:
        """AssignPrivateIpAddresses with Ipv4PrefixCount=count."""
        eni = self._eni(eni_id)
        self._check_slots(eni, count)
        prefixes = self._pick_prefixes(count, self.used())
        eni.prefixes.extend(prefixes)
        return prefixes

    def unassign(self, eni_id: str, ips: Iterable[str] = (),
                 prefixes: Iterable[str] = ()) -> None:
        """UnassignPrivateIpAddresses; addresses the ENI does not hold are ignored."""
        eni = self._eni(eni_id)
        drop_ips, drop_prefixes = set(ips), set(prefixes)
        eni.ips = [ip for ip in eni.ips if ip not in drop_ips]
        eni.prefixes = [p for p in eni.prefixes if p not in drop_prefixes]

    def delete_eni(self, eni_id: str) -> EniRecord | None:
        """DetachNetworkInterface + DeleteNetworkInterface; its addresses become free."""
        return self.enis.pop(eni_id, None)
