"""Endpoint access, as EKS: `up`'s and the apiserver's flags, the listeners each mode opens,
and the public allowlist refusing a peer before TLS, on real loopback sockets."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from apiserver.allowlist import AllowlistSite, allowed, parse_cidrs
from apiserver.options import ApiServerOptions
from apiserver.options import parse_args as apiserver_args
from apiserver.security import server_ssl_context
from apiserver.server import Listener, listeners
from kubelite import up
from kubelite.vpcshell import parse_args as vpc_shell_args
from kubelite.vpcshell import shell_address

# --- flags ------------------------------------------------------------------------------


def test_up_defaults_are_eks_defaults() -> None:
    a = up.parse_args(["--data-dir", "/tmp/x"])
    assert (a.endpoint_public_access, a.endpoint_private_access) == (True, False)
    assert a.public_access_cidrs == "0.0.0.0/0"
    assert up.endpoint_refusal(a) is None


def test_up_parses_the_endpoint_flags() -> None:
    a = up.parse_args(["--data-dir", "/tmp/x", "--endpoint-public-access=false",
                       "--endpoint-private-access=true",
                       "--public-access-cidrs=10.0.0.0/8,192.0.2.7/32"])
    assert (a.endpoint_public_access, a.endpoint_private_access) == (False, True)
    assert [str(n) for n in parse_cidrs(a.public_access_cidrs)] == ["10.0.0.0/8",
                                                                    "192.0.2.7/32"]


@pytest.mark.parametrize("flag", ["--public-access-cidrs=10.0.0.0/33",
                                  "--public-access-cidrs=,",
                                  "--endpoint-public-access=maybe"])
def test_up_rejects_bad_endpoint_flags(flag: str) -> None:
    with pytest.raises(SystemExit) as e:
        up.parse_args(["--data-dir", "/tmp/x", flag])
    assert e.value.code == 2


def test_up_refuses_both_endpoints_off_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = up.main(["--data-dir", str(tmp_path), "--endpoint-public-access=false",
                    "--endpoint-private-access=false"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "no endpoint" in err
    assert not (tmp_path / "pki").exists()  # refused before doing anything


def test_apiserver_flags() -> None:
    o = apiserver_args(["--public-access-cidrs", "203.0.113.0/24", "--endpoint-private-access",
                        "true", "--internal-port", "7443"])
    assert [str(n) for n in o.public_access_cidrs] == ["203.0.113.0/24"]
    assert o.endpoint_private_access and o.internal_port == 7443
    default = apiserver_args([])
    assert not default.endpoint_private_access and default.internal_port == 0
    assert allowed("198.51.100.1", default.public_access_cidrs)
    with pytest.raises(SystemExit):
        apiserver_args(["--public-access-cidrs", "nonsense"])


def test_allowed_understands_ipv4_mapped_peers() -> None:
    nets = parse_cidrs("10.0.0.0/8")
    assert allowed("10.1.2.3", nets) and allowed("::ffff:10.1.2.3", nets)
    assert not allowed("11.0.0.1", nets) and not allowed("", nets)


# --- the listeners of each mode ----------------------------------------------------------

GW = "10.200.0.1"


def _opts(private: bool, bind: str = "127.0.0.1", internal: int = 0) -> ApiServerOptions:
    return ApiServerOptions(bind_address=bind, advertise_address=GW, secure_port=6443,
                            endpoint_private_access=private, internal_port=internal)


def test_public_and_private() -> None:
    assert listeners(_opts(private=True)) == [Listener("127.0.0.1", 6443, "public"),
                                              Listener(GW, 6443, "private")]


def test_public_only_keeps_the_gateway_listener_under_the_allowlist() -> None:
    got = listeners(_opts(private=False))
    assert got == [Listener("127.0.0.1", 6443, "public"), Listener(GW, 6443, "public")]
    assert all(listener.filtered for listener in got)


def test_private_only_opens_no_loopback_listener() -> None:
    got = listeners(_opts(private=True, bind=GW))
    assert got == [Listener(GW, 6443, "private")] and not got[0].filtered


def test_internal_listener_is_outside_the_allowlist() -> None:
    got = listeners(_opts(private=False, internal=7443))
    assert got[-1] == Listener("127.0.0.1", 7443, "internal") and not got[-1].filtered


def test_vpc_shell_flags_and_address() -> None:
    a, command = vpc_shell_args(["--data-dir", "/d", "--", "kubectl", "get", "ns"])
    assert a.data_dir == "/d" and command == ["kubectl", "get", "ns"]
    assert vpc_shell_args(["--data-dir", "/d"])[1] == []
    # The VPC's fourth address: AWS-reserved, never handed out by ipamd (cni/vpc.py).
    assert shell_address("10.200.0.0/16") == "10.200.0.3/16"


# --- the allowlist on real sockets ------------------------------------------------------


async def _hello(request: web.Request) -> web.Response:
    return web.Response(text="ok")


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[object]:
    runners: list[web.AppRunner] = []

    async def start(cidrs: str) -> int:
        app = web.Application()
        app.router.add_get("/healthz", _hello)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        tls = server_ssl_context(ApiServerOptions(cert_dir=str(tmp_path)))
        site = AllowlistSite(runner, "127.0.0.1", 0, networks=parse_cidrs(cidrs),
                             ssl_context=tls)
        await site.start()
        return site.port

    yield start
    for runner in runners:
        await runner.cleanup()


def _client_hello() -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


async def _answer_to_client_hello(port: int) -> bytes:
    """What the server sends back to a TLS ClientHello from 127.0.0.1 (b"" when it closes
    the connection without a word)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_client_hello())
        await writer.drain()
        return await asyncio.wait_for(reader.read(5), 10)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


async def test_a_peer_outside_the_allowlist_is_closed_before_tls(serve: Any) -> None:
    port = await serve("127.0.0.2/32")
    assert await _answer_to_client_hello(port) == b""  # no ServerHello, not one byte
    with pytest.raises((ssl.SSLError, ConnectionError, aiohttp.ClientError)):
        async with aiohttp.ClientSession() as s:
            await s.get(f"https://127.0.0.1:{port}/healthz", ssl=False)


async def test_a_peer_inside_the_allowlist_gets_tls_and_http(serve: Any) -> None:
    port = await serve("127.0.0.0/8")
    answer = await _answer_to_client_hello(port)
    assert answer[:1] == b"\x16"  # a TLS handshake record: the ServerHello
    async with aiohttp.ClientSession() as s, \
            s.get(f"https://127.0.0.1:{port}/healthz", ssl=False) as r:
        assert r.status == 200 and await r.text() == "ok"


def test_an_allowlist_of_everyone_needs_no_filter() -> None:
    from apiserver.allowlist import allows_everyone, parse_cidrs
    assert allows_everyone(parse_cidrs("0.0.0.0/0"), "127.0.0.1")
    assert not allows_everyone(parse_cidrs("10.0.0.0/8"), "127.0.0.1")
    assert not allows_everyone(parse_cidrs("0.0.0.0/0"), "::")  # IPv6 peers too
    assert allows_everyone(parse_cidrs("0.0.0.0/0,::/0"), "::")
