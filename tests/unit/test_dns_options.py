"""The DNS server's flags (dns.options) and the in-cluster client config it falls back to
(client.kubeconfig.in_cluster_config)."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.kubeconfig import ConfigError, in_cluster_config, write_kubeconfig
from dns.__main__ import client_config
from dns.__main__ import main as dns_main
from dns.forward import Upstream
from dns.options import is_self, parse_args, parse_upstream, resolv_conf_upstreams


@pytest.mark.parametrize("text,want", [
    ("10.0.0.2", Upstream("10.0.0.2", 53)),
    ("10.0.0.2:5353", Upstream("10.0.0.2", 5353)),
    ("fd00::53", Upstream("fd00::53", 53)),
    ("[fd00::53]:5353", Upstream("fd00::53", 5353)),
    ("[fd00::53]", Upstream("fd00::53", 53)),
    (" 127.0.0.1:1053 ", Upstream("127.0.0.1", 1053)),
])
def test_parse_upstream(text: str, want: Upstream) -> None:
    assert parse_upstream(text) == want


@pytest.mark.parametrize("text", ["dns.google", "10.0.0.2:0", "10.0.0.2:x", "[fd00::1",
                                  "[fd00::1]x", "10.0.0.2:70000", ""])
def test_parse_upstream_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_upstream(text)


def test_defaults_come_from_resolv_conf(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nsearch example.com\nnameserver 10.0.0.2\n"
                    "nameserver fe80::1%eth0\nnameserver bogus\noptions ndots:5\n")
    assert resolv_conf_upstreams(str(conf)) == [Upstream("10.0.0.2"), Upstream("fe80::1")]
    assert resolv_conf_upstreams(str(tmp_path / "missing")) == []
    opts = parse_args(["--resolv-conf", str(conf)])
    assert opts.upstreams == [Upstream("10.0.0.2"), Upstream("fe80::1")]
    assert (opts.port, opts.bind_address, opts.cluster_domain, opts.ttl, opts.health_port) == \
        (53, "0.0.0.0", "cluster.local", 30, 8080)
    assert opts.kubeconfig is None
    assert (opts.cache_size, opts.cache_max_ttl, opts.cache_negative_ttl) == (10000, 30, 5)


def test_cache_flags() -> None:
    opts = parse_args(["--cache-size", "0", "--cache-max-ttl", "300",
                       "--cache-negative-ttl", "0"])
    assert (opts.cache_size, opts.cache_max_ttl, opts.cache_negative_ttl) == (0, 300, 0)


def test_flags() -> None:
    opts = parse_args(["--kubeconfig", "k", "--cluster-domain", "Example.Internal.",
                       "--port", "1053", "--bind-address", "127.0.0.1",
                       "--upstream", "10.0.0.2", "--upstream", "[fd00::1]:53", "--ttl", "5",
                       "--health-port", "0", "-v", "4"])
    assert opts.kubeconfig == "k" and opts.cluster_domain == "example.internal"
    assert opts.upstreams == [Upstream("10.0.0.2"), Upstream("fd00::1")]
    assert (opts.port, opts.bind_address, opts.ttl, opts.health_port, opts.verbosity) == \
        (1053, "127.0.0.1", 5, 0, 4)
    assert parse_args(["--upstream", "none"]).upstreams == []


def test_an_upstream_that_is_this_server_is_dropped() -> None:
    assert is_self(Upstream("127.0.0.1", 53), "0.0.0.0", 53)
    assert is_self(Upstream("10.0.0.5", 53), "10.0.0.5", 53)
    assert not is_self(Upstream("127.0.0.1", 53), "0.0.0.0", 1053)
    assert not is_self(Upstream("10.0.0.2", 53), "0.0.0.0", 53)
    opts = parse_args(["--upstream", "127.0.0.1", "--upstream", "10.0.0.2"])
    assert opts.upstreams == [Upstream("10.0.0.2")]
    assert opts.ignored_upstreams == [Upstream("127.0.0.1")]


@pytest.mark.parametrize("argv", [
    ["--port", "x"], ["--port", "70000"], ["--upstream", "dns.google"], ["--ttl", "-1"],
    ["--bind-address", "localhost"], ["--cluster-domain", "a..b"], ["--cluster-domain", "."],
    ["--health-port", "-2"], ["--bogus"], ["--upstream-timeout", "0"],
    ["--cache-size", "-1"], ["--cache-size", "many"], ["--cache-size", "10000001"],
    ["--cache-max-ttl", "-5"], ["--cache-negative-ttl", "2147483648"],
    ["--cache-negative-ttl", "1.5"],
])
def test_bad_flags_exit_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("kubelite dns: error: "), err


# --- in-cluster config --------------------------------------------------------------------


def test_in_cluster_config_without_service_account_is_an_error(tmp_path: Path) -> None:
    """No CA means no way to trust the server: refused, never plain http."""
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    with pytest.raises(ConfigError, match="ca.crt is missing"):
        in_cluster_config(env, tmp_path / "nothing-here")
    sa = tmp_path / "no-token"
    sa.mkdir()
    (sa / "ca.crt").write_text("x\n")
    with pytest.raises(ConfigError, match="no service-account token"):
        in_cluster_config(env, sa)


def test_in_cluster_config_with_service_account_is_https_with_token(tmp_path: Path) -> None:
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    # Any PEM the ssl module accepts: a throwaway self-signed certificate would need openssl,
    # so check the fields and leave loading the CA to the kubeconfig tests.
    (sa / "ca.crt").write_text("not loaded here\n")
    (sa / "token").write_text("secret-token\n")
    (sa / "namespace").write_text("kube-system\n")
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}
    config = in_cluster_config(env, sa)
    assert config.server == "https://[fd00::1]:6443"
    assert config.ca_file == str(sa / "ca.crt")
    assert config.token == "secret-token"
    assert config.token_file == str(sa / "token")  # re-read as the kubelet rotates it
    assert config.namespace == "kube-system"
    assert config.uses_tls


@pytest.mark.parametrize("env", [{}, {"KUBERNETES_SERVICE_HOST": "10.96.0.1"},
                                 {"KUBERNETES_SERVICE_PORT": "443"},
                                 {"KUBERNETES_SERVICE_HOST": "10.96.0.1",
                                  "KUBERNETES_SERVICE_PORT": "https"}])
def test_in_cluster_config_needs_the_environment(env: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        in_cluster_config(env, tmp_path)


def test_in_cluster_config_reads_os_environ(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "80")
    (tmp_path / "ca.crt").write_text("x\n")
    (tmp_path / "token").write_text("t\n")
    assert in_cluster_config(service_account_dir=tmp_path).server == "https://10.96.0.1:80"


def test_dns_uses_kubeconfig_else_in_cluster(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:1")
    assert client_config(str(kubeconfig)).server == "http://127.0.0.1:1"
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    with pytest.raises(ConfigError):
        client_config(None)
    assert dns_main(["--upstream", "none"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "KUBERNETES_SERVICE_HOST" in err
