"""ipamd's settings: upstream environment variables, flags over them, and the pool config."""

from __future__ import annotations

from pathlib import Path

import pytest

from cni.eni import instance_type
from cni.ipamd import parse_args, pool_config

BASE = ["--node-name", "n1", "--instance-type", "m5.large"]


def test_defaults() -> None:
    opts = parse_args(BASE, env={})
    assert opts.socket_path == Path("/run/kubelite/n1/ipamd.sock")
    assert opts.checkpoint_path == Path("/run/kubelite/n1/ipam.json")
    assert (opts.warm_eni_target, opts.warm_ip_target, opts.minimum_ip_target) == (1, 0, 0)
    assert opts.ip_cooldown == 30.0 and opts.vpc_cidr == "10.200.0.0/16"
    assert not opts.prefix_delegation


def test_environment_and_flags() -> None:
    env = {"WARM_IP_TARGET": "3", "MINIMUM_IP_TARGET": "10", "WARM_ENI_TARGET": "0",
           "ENABLE_PREFIX_DELEGATION": "true", "IP_COOLDOWN_PERIOD": "5", "MAX_ENI": "2",
           "KUBELITE_VPC_CIDR": "10.50.0.0/16"}
    opts = parse_args(BASE, env=env)
    assert (opts.warm_ip_target, opts.minimum_ip_target, opts.warm_eni_target) == (3, 10, 0)
    assert opts.prefix_delegation and opts.ip_cooldown == 5.0 and opts.max_eni == 2
    assert opts.vpc_cidr == "10.50.0.0/16"
    opts = parse_args([*BASE, "--warm-ip-target", "1", "--ip-cooldown-period", "500ms",
                       "--data-dir", "/var/lib/kubelite/n1"], env=env)
    assert opts.warm_ip_target == 1 and opts.ip_cooldown == 0.5
    assert opts.checkpoint_path == Path("/var/lib/kubelite/n1/ipam.json")


@pytest.mark.parametrize("argv", [
    ["--node-name", "n1", "--instance-type", "x9.huge"],
    [*BASE, "--vpc-cidr", "10.0.0.1/16"],
    [*BASE, "--warm-ip-target", "-1"],
])
def test_invalid(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv, env={})


def test_pool_config() -> None:
    cfg = pool_config(instance_type("m5.large"), parse_args(BASE, env={}))
    assert (cfg.max_enis, cfg.slots_per_eni, cfg.max_pods) == (3, 9, 29)
    pd = pool_config(instance_type("m5.large"),
                     parse_args([*BASE, "--prefix-delegation", "--max-eni", "2"], env={}))
    assert (pd.max_enis, pd.slots_per_eni, pd.max_pods, pd.addresses_per_eni) == (2, 9, 110, 144)
    xen = pool_config(instance_type("m4.large"),
                      parse_args(["--node-name", "n", "--instance-type", "m4.large",
                                  "--prefix-delegation"], env={}))
    assert not xen.prefix_delegation and xen.max_pods == 20  # falls back to secondary IPs
