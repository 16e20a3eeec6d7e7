"""The CNI plugin's pure parts: environment and netconf parsing, result and error JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cni.hostnet import host_veth_name
from cni.plugin import (
    ERR_DECODE,
    ERR_INCOMPATIBLE_VERSION,
    ERR_INVALID_CONFIG,
    ERR_INVALID_ENV,
    ERR_UNKNOWN_CONTAINER,
    ERR_UNSUPPORTED_FIELD,
    SUPPORTED_VERSIONS,
    CniError,
    build_result,
    error_result,
    parse_cni_args,
    parse_env,
    parse_netconf,
    run,
    version_result,
)

CONF = {"cniVersion": "1.0.0", "name": "kubelite", "type": "kubelite-cni",
        "ipamdSocket": "/run/kubelite/n1/ipamd.sock", "bridge": "kl-vpc0", "mtu": 1500}
ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "abc123", "CNI_NETNS": "/var/run/netns/x",
       "CNI_IFNAME": "eth0", "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p",
       "CNI_PATH": "/opt/cni/bin"}


def code_of(fn: Any, *args: Any) -> int:
    with pytest.raises(CniError) as info:
        fn(*args)
    return info.value.code


def test_cni_args() -> None:
    assert parse_cni_args("K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;;") == {
        "K8S_POD_NAMESPACE": "ns", "K8S_POD_NAME": "p"}
    assert parse_cni_args("") == {}
    assert code_of(parse_cni_args, "novalue") == ERR_INVALID_ENV


def test_env() -> None:
    env = parse_env(ENV)
    assert (env.command, env.container_id, env.ifname) == ("ADD", "abc123", "eth0")
    assert env.arg("K8S_POD_NAME") == "p" and env.arg("missing") == ""
    assert parse_env({"CNI_COMMAND": "VERSION"}).command == "VERSION"
    for bad in ({"CNI_COMMAND": "FOO"}, {**ENV, "CNI_CONTAINERID": ""},
                {**ENV, "CNI_CONTAINERID": "-x"}, {**ENV, "CNI_IFNAME": "a/b"},
                {**ENV, "CNI_IFNAME": "x" * 16}, {**ENV, "CNI_IFNAME": ".."},
                {**ENV, "CNI_NETNS": ""}):
        assert code_of(parse_env, bad) == ERR_INVALID_ENV
    # DEL may come without a namespace (the sandbox is gone)
    assert parse_env({**ENV, "CNI_COMMAND": "DEL", "CNI_NETNS": ""}).netns == ""


def test_netconf() -> None:
    conf = parse_netconf(json.dumps({**CONF, "dns": {"nameservers": ["10.96.0.10"]}}))
    assert conf.ipamd_socket == "/run/kubelite/n1/ipamd.sock" and conf.mtu == 1500
    assert conf.dns == {"nameservers": ["10.96.0.10"]}
    defaults = parse_netconf(json.dumps({k: v for k, v in CONF.items()
                                         if k not in ("bridge", "mtu")}))
    assert (defaults.bridge, defaults.mtu) == ("kl-vpc0", 1500)
    assert code_of(parse_netconf, "{not json") == ERR_DECODE
    assert code_of(parse_netconf, "[]") == ERR_DECODE
    assert code_of(parse_netconf, json.dumps({**CONF, "cniVersion": "0.2.0"})) \
        == ERR_INCOMPATIBLE_VERSION
    no_socket = {k: v for k, v in CONF.items() if k != "ipamdSocket"}
    assert code_of(parse_netconf, json.dumps(no_socket)) == ERR_INVALID_CONFIG
    assert code_of(parse_netconf, json.dumps({**CONF, "mtu": "big"})) == ERR_INVALID_CONFIG
    assert code_of(parse_netconf, json.dumps({**CONF, "bridge": "x" * 16})) == ERR_INVALID_CONFIG
    assert code_of(parse_netconf, json.dumps({**CONF, "ipam": {"type": "host-local"}})) \
        == ERR_UNSUPPORTED_FIELD


def test_result_shape_1_0_0() -> None:
    result = build_result("1.0.0", host_if="kl0123456789a", host_mac="aa:bb:cc:dd:ee:01",
                          ifname="eth0", cont_mac="aa:bb:cc:dd:ee:02",
                          netns="/var/run/netns/x", address="10.200.0.5/16",
                          gateway="10.200.0.1", dns={"nameservers": ["10.96.0.10"]})
    assert result == {
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "kl0123456789a", "mac": "aa:bb:cc:dd:ee:01"},
                       {"name": "eth0", "mac": "aa:bb:cc:dd:ee:02",
                        "sandbox": "/var/run/netns/x"}],
        "ips": [{"address": "10.200.0.5/16", "gateway": "10.200.0.1", "interface": 1}],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.200.0.1"}],
        "dns": {"nameservers": ["10.96.0.10"]},
    }
    # the IP's interface index points at the container end
    assert result["interfaces"][result["ips"][0]["interface"]]["sandbox"]


def test_result_shape_before_1_0_0() -> None:
    result = build_result("0.4.0", host_if="h", host_mac="m", ifname="eth0", cont_mac="n",
                          netns="/ns", address="10.200.0.5/16", gateway="10.200.0.1")
    assert result["ips"] == [{"version": "4", "address": "10.200.0.5/16",
                              "gateway": "10.200.0.1", "interface": 1}]
    assert "dns" not in result


def test_error_and_version_json() -> None:
    err = CniError(11, "failed to assign an IP address to container", "pool empty")
    assert error_result("1.0.0", err) == {
        "cniVersion": "1.0.0", "code": 11,
        "msg": "failed to assign an IP address to container", "details": "pool empty"}
    assert "details" not in error_result("1.0.0", CniError(4, "x"))
    assert version_result() == {"cniVersion": "1.0.0",
                                "supportedVersions": list(SUPPORTED_VERSIONS)}


def test_run_reports_errors_as_json() -> None:
    assert run({"CNI_COMMAND": "VERSION"}, "") == (0, version_result())
    code, out = run({**ENV, "CNI_IFNAME": ""}, json.dumps(CONF))
    assert code == 1 and out is not None and out["code"] == ERR_INVALID_ENV
    code, out = run({**ENV, "CNI_NETNS": "/nonexistent/netns"},
                    json.dumps({**CONF, "cniVersion": "0.4.0"}))
    assert code == 1 and out == {"cniVersion": "0.4.0", "code": ERR_UNKNOWN_CONTAINER,
                                 "msg": "network namespace does not exist",
                                 "details": "/nonexistent/netns"}
    code, out = run({**ENV, "CNI_COMMAND": "CHECK"}, json.dumps({**CONF, "cniVersion": "0.3.1"}))
    assert code == 1 and out is not None and out["code"] == ERR_INCOMPATIBLE_VERSION


def test_host_veth_names() -> None:
    name = host_veth_name("kubelite", "abc123", "eth0")
    assert name.startswith("kl") and len(name) == 13
    assert name == host_veth_name("kubelite", "abc123", "eth0")
    assert name != host_veth_name("kubelite", "abc123", "eth1")
