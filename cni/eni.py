"""EC2 instance types, their network-interface limits, and the max-pods formula.

Each instance type can attach a fixed number of ENIs, and each ENI holds a fixed number of
IPv4 addresses. The first address of every ENI is its primary address, used by the ENI
itself and never by a pod, so in secondary-IP mode a node can give pods

    ENIs × (IPv4 per ENI − 1)

addresses; +2 counts the host-network pods every EKS node runs (aws-node, kube-proxy). That is
the figure in amazon-vpc-cni-k8s's `misc/eni-max-pods.txt`.

With prefix delegation each secondary slot holds a /28 prefix (16 addresses) instead of one
address, which gives far more addresses than the kubelet should run pods; EKS's
max-pods-calculator then caps the value at 110 for instances with up to 30 vCPUs and at 250
above. Prefix delegation needs a Nitro instance: on the others ipamd falls back to secondary
IPs, and so does `max_pods`.

`python -m cni.eni m5.large [--prefix-delegation]` prints the value for the kubelet's
`--max-pods`; `python -m cni.eni --list` prints the whole table.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass

IPS_PER_PREFIX = 16  # a /28
HOST_NETWORK_PODS = 2  # aws-node and kube-proxy use the node's own address
MAX_PODS_CEILING_LOW_CPU = 110
MAX_PODS_CEILING_HIGH_CPU = 250
HIGH_CPU_THRESHOLD = 30  # more vCPUs than this get the higher ceiling


class UnknownInstanceType(KeyError):
    """The instance type is not in the table."""


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_gib: float
    max_enis: int  # network interfaces on the default network card
    ipv4_per_eni: int  # including the ENI's primary address
    nitro: bool = True  # prefix delegation needs the Nitro hypervisor

    @property
    def secondary_ips_per_eni(self) -> int:
        """Addresses per ENI that pods can use (all but the primary)."""
        return self.ipv4_per_eni - 1

    @property
    def prefixes_per_eni(self) -> int:
        """With prefix delegation every secondary slot holds a /28 instead of an address."""
        return self.ipv4_per_eni - 1

    def supports_prefix_delegation(self) -> bool:
        return self.nitro


def _t(name: str, vcpus: int, memory_gib: float, enis: int, ips: int,
       nitro: bool = True) -> tuple[str, InstanceType]:
    return name, InstanceType(name, vcpus, memory_gib, enis, ips, nitro)


# Published by AWS ("IP addresses per network interface per instance type"); the max-pods
# column each row implies is asserted against eni-max-pods.txt in tests/unit/test_eni_maxpods.py.
INSTANCE_TYPES: Mapping[str, InstanceType] = dict([
    _t("t2.micro", 1, 1, 2, 2, nitro=False),
    _t("t2.small", 1, 2, 3, 4, nitro=False),
    _t("t2.medium", 2, 4, 3, 6, nitro=False),
    _t("t3.nano", 2, 0.5, 2, 2),
    _t("t3.micro", 2, 1, 2, 2),
    _t("t3.small", 2, 2, 3, 4),
    _t("t3.medium", 2, 4, 3, 6),
    _t("t3.large", 2, 8, 3, 12),
    _t("t3.xlarge", 4, 16, 4, 15),
    _t("t3.2xlarge", 8, 32, 4, 15),
    _t("m4.large", 2, 8, 2, 10, nitro=False),
    _t("m4.xlarge", 4, 16, 4, 15, nitro=False),
    _t("m5.large", 2, 8, 3, 10),
    _t("m5.xlarge", 4, 16, 4, 15),
    _t("m5.2xlarge", 8, 32, 4, 15),
    _t("m5.4xlarge", 16, 64, 8, 30),
    _t("m5.8xlarge", 32, 128, 8, 30),
    _t("m5.16xlarge", 64, 256, 15, 50),
    _t("m5.24xlarge", 96, 384, 15, 50),
    _t("m6i.large", 2, 8, 3, 10),
    _t("m6i.xlarge", 4, 16, 4, 15),
    _t("c5.large", 2, 4, 3, 10),
    _t("c5.xlarge", 4, 8, 4, 15),
    _t("c5.2xlarge", 8, 16, 4, 15),
    _t("c5.4xlarge", 16, 32, 8, 30),
    _t("c5.9xlarge", 36, 72, 8, 30),
    _t("c5.18xlarge", 72, 144, 15, 50),
    _t("r5.large", 2, 16, 3, 10),
    _t("r5.xlarge", 4, 32, 4, 15),
    _t("p3dn.24xlarge", 96, 768, 15, 50),
])


def instance_type(name: str) -> InstanceType:
    try:
        return INSTANCE_TYPES[name]
    except KeyError:
        known = ", ".join(sorted(INSTANCE_TYPES))
        raise UnknownInstanceType(f"unknown instance type {name!r} (known: {known})") from None


def uses_prefix_delegation(itype: InstanceType, requested: bool) -> bool:
    """Prefix delegation is used when asked for and the instance supports it."""
    return requested and itype.supports_prefix_delegation()


def max_pods(itype: InstanceType | str, prefix_delegation: bool = False) -> int:
    """The kubelet's max pods for this instance type, as EKS computes it."""
    it = instance_type(itype) if isinstance(itype, str) else itype
    if uses_prefix_delegation(it, prefix_delegation):
        raw = it.max_enis * (it.prefixes_per_eni * IPS_PER_PREFIX) + HOST_NETWORK_PODS
        ceiling = (MAX_PODS_CEILING_HIGH_CPU if it.vcpus > HIGH_CPU_THRESHOLD
                   else MAX_PODS_CEILING_LOW_CPU)
        return min(raw, ceiling)
    return it.max_enis * it.secondary_ips_per_eni + HOST_NETWORK_PODS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cni.eni",
                                description="max pods per instance type (EKS formula)")
    p.add_argument("instance_type", nargs="?")
    p.add_argument("--prefix-delegation", action="store_true")
    p.add_argument("--list", action="store_true", help="print the whole table")
    a = p.parse_args(argv)
    if a.list:
        print(f"{'type':<15} {'vCPU':>4} {'GiB':>6} {'ENIs':>4} {'IPv4/ENI':>8} "
              f"{'max pods':>8} {'with PD':>7}")
        for it in INSTANCE_TYPES.values():
            print(f"{it.name:<15} {it.vcpus:>4} {it.memory_gib:>6g} {it.max_enis:>4} "
                  f"{it.ipv4_per_eni:>8} {max_pods(it):>8} {max_pods(it, True):>7}")
        return 0
    if not a.instance_type:
        p.error("an instance type is required (or --list)")
    try:
        print(max_pods(a.instance_type, a.prefix_delegation))
    except UnknownInstanceType as e:
        print(e.args[0], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
