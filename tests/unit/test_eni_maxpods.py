"""ENI limits and max pods, against the values EKS publishes (amazon-vpc-cni-k8s
misc/eni-max-pods.txt, and max-pods-calculator.sh for prefix delegation)."""

from __future__ import annotations

import pytest

from cni.eni import INSTANCE_TYPES, UnknownInstanceType, instance_type, main, max_pods

# instance type -> max pods in eni-max-pods.txt (secondary-IP mode)
PUBLISHED = {
    "t2.micro": 4, "t2.small": 11, "t2.medium": 17,
    "t3.nano": 4, "t3.micro": 4, "t3.small": 11, "t3.medium": 17, "t3.large": 35,
    "t3.xlarge": 58, "t3.2xlarge": 58,
    "m4.large": 20, "m4.xlarge": 58,
    "m5.large": 29, "m5.xlarge": 58, "m5.2xlarge": 58, "m5.4xlarge": 234, "m5.8xlarge": 234,
    "m5.16xlarge": 737, "m5.24xlarge": 737,
    "m6i.large": 29, "m6i.xlarge": 58,
    "c5.large": 29, "c5.xlarge": 58, "c5.2xlarge": 58, "c5.4xlarge": 234, "c5.9xlarge": 234,
    "c5.18xlarge": 737,
    "r5.large": 29, "r5.xlarge": 58,
    "p3dn.24xlarge": 737,
}


@pytest.mark.parametrize(("name", "expected"), sorted(PUBLISHED.items()))
def test_secondary_ip_mode_matches_eni_max_pods(name: str, expected: int) -> None:
    assert max_pods(name) == expected


def test_every_table_entry_is_checked() -> None:
    assert set(INSTANCE_TYPES) == set(PUBLISHED)


def test_formula() -> None:
    it = instance_type("m5.large")
    assert (it.vcpus, it.memory_gib, it.max_enis, it.ipv4_per_eni) == (2, 8, 3, 10)
    assert max_pods(it) == it.max_enis * (it.ipv4_per_eni - 1) + 2


@pytest.mark.parametrize(("name", "expected"), [
    ("m5.large", 110),      # 3 × (9 × 16) + 2 = 434, capped at 110 (2 vCPUs)
    ("t3.small", 110),      # 3 × (3 × 16) + 2 = 146 → 110
    ("t3.micro", 34),       # 2 × (1 × 16) + 2 = 34, under the cap
    ("t3.nano", 34),
    ("m5.xlarge", 110),
    ("c5.large", 110),
    ("m5.4xlarge", 110),    # 16 vCPUs
    ("m5.8xlarge", 250),    # 32 vCPUs > 30
    ("c5.9xlarge", 250),    # 36 vCPUs
    ("m5.24xlarge", 250),
    ("t2.micro", 4),        # Xen, not Nitro: no prefix delegation, secondary-IP value
    ("m4.large", 20),
])
def test_prefix_delegation(name: str, expected: int) -> None:
    assert max_pods(name, prefix_delegation=True) == expected


def test_unknown_instance_type() -> None:
    with pytest.raises(UnknownInstanceType, match="unknown instance type 'x9.huge'"):
        max_pods("x9.huge")


def test_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["m5.large"]) == 0
    assert capsys.readouterr().out.strip() == "29"
    assert main(["m5.large", "--prefix-delegation"]) == 0
    assert capsys.readouterr().out.strip() == "110"
    assert main(["nope.large"]) == 1
    assert main(["--list"]) == 0
    assert "t3.micro" in capsys.readouterr().out
