"""The VPC table: reserved addresses, ENI limits, prefixes, and its ConfigMap form."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from cni.vpc import (
    AddressLimitExceeded,
    AttachmentLimitExceeded,
    InsufficientAddresses,
    UnknownEni,
    VpcMismatch,
    VpcTable,
    gateway_of,
    new_eni_id,
    parse_vpc_cidr,
)

VPC = IPv4Network("10.200.0.0/16")


def all_addresses(table: VpcTable) -> list[int]:
    return [a for eni in table.enis.values() for a in eni.addresses()]


def test_parse_and_gateway() -> None:
    assert parse_vpc_cidr("10.200.0.0/16") == VPC
    assert gateway_of(VPC) == IPv4Address("10.200.0.1")
    for bad in ("10.200.0.1/16", "fd00::/64", "10.0.0.0/30", "nonsense"):
        with pytest.raises(ValueError):
            parse_vpc_cidr(bad)


def test_eni_ids_look_like_ec2s() -> None:
    eni_id = new_eni_id()
    assert eni_id.startswith("eni-") and len(eni_id) == 21
    int(eni_id[4:], 16)


def test_primary_eni_skips_reserved_addresses() -> None:
    table = VpcTable(VPC)
    eni = table.create_eni("n1", "m5.large")
    assert eni.device_number == 0
    assert eni.primary_ip == "10.200.0.4"  # .0 network, .1 gateway, .2 DNS, .3 reserved
    assert eni.ips == [] and eni.prefixes == []


def test_secondary_ips_and_limits() -> None:
    table = VpcTable(VPC)
    eni = table.create_eni("n1", "m5.large", secondary_ips=9)
    assert len(eni.ips) == 9
    with pytest.raises(AddressLimitExceeded):
        table.assign_ips(eni.eni_id, 1)  # m5.large: 10 per ENI, one is the primary
    enis = [eni, table.create_eni("n1", "m5.large"), table.create_eni("n1", "m5.large")]
    assert [e.device_number for e in enis] == [0, 1, 2]
    with pytest.raises(AttachmentLimitExceeded):
        table.create_eni("n1", "m5.large")
    table.create_eni("n2", "m5.large")  # the limit is per node
    table.delete_eni(enis[1].eni_id)
    assert table.create_eni("n1", "m5.large").device_number == 1  # lowest free device
    used = all_addresses(table)
    assert len(used) == len(set(used))


def test_prefixes_come_from_the_top_aligned() -> None:
    table = VpcTable(VPC)
    eni = table.create_eni("n1", "m5.large", prefixes=2)
    assert eni.prefixes == ["10.200.255.224/28", "10.200.255.208/28"]  # .240/28 holds broadcast
    ips = table.assign_ips(eni.eni_id, 3)
    assert ips == ["10.200.0.5", "10.200.0.6", "10.200.0.7"]
    with pytest.raises(UnknownEni):
        table.assign_prefixes("eni-nope", 1)


def test_small_vpc_runs_out() -> None:
    table = VpcTable(IPv4Network("10.9.0.0/28"))  # 16 addresses, 5 reserved
    eni = table.create_eni("n1", "m5.large", secondary_ips=9)
    other = table.create_eni("n2", "t3.micro")  # the 11th and last usable address
    with pytest.raises(InsufficientAddresses):
        table.create_eni("n3", "t3.micro")
    with pytest.raises(InsufficientAddresses):
        table.assign_prefixes(other.eni_id, 1)
    table.unassign(eni.eni_id, ips=eni.ips[:1])
    assert table.free_addresses() == 1


def test_failed_operations_change_nothing() -> None:
    table = VpcTable(IPv4Network("10.9.0.0/28"))
    table.create_eni("n1", "m5.large", secondary_ips=5)
    snapshot = table.to_data()
    with pytest.raises(InsufficientAddresses):
        table.create_eni("n2", "m5.large", secondary_ips=5)  # 6 more, 5 left
    with pytest.raises(AddressLimitExceeded):
        table.create_eni("n2", "t3.micro", secondary_ips=2)
    assert table.to_data() == snapshot


def test_configmap_round_trip_and_mismatch() -> None:
    table = VpcTable(VPC)
    a = table.create_eni("n1", "m5.large", secondary_ips=3)
    table.create_eni("n2", "c5.large", prefixes=1)
    data = table.to_data()
    assert set(data) == {"vpc", *table.enis}
    again = VpcTable.from_data(data, VPC)
    assert again.to_data() == data
    assert again.node_enis("n1")[0] == a
    assert again.owner_of(a.ips[0]) == a
    with pytest.raises(VpcMismatch):
        VpcTable.from_data(data, IPv4Network("10.201.0.0/16"))
    assert VpcTable.from_data({}, VPC).enis == {}
