"""kubeconfig parsing and writing, and TLS with client certificates against a real server."""

from __future__ import annotations

import base64
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from api.resources import CATALOGUE
from client.kubeconfig import ClientConfig, ConfigError, load_kubeconfig, write_kubeconfig
from client.rest import ApiClient

NAMESPACES = CATALOGUE.by_plural("namespaces")


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    """A CA, a server cert for 127.0.0.1 and a client cert, made with the openssl CLI."""
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"),
             "-days", "1", "-subj", "/CN=kubelite-ca")
    for who, subj in (("server", "/CN=127.0.0.1"), ("client", "/O=system:masters/CN=admin")):
        _openssl("req", *ec, "-keyout", str(d / f"{who}.key"), "-out", str(d / f"{who}.csr"),
                 "-subj", subj)
        ext = d / f"{who}.ext"
        ext.write_text("subjectAltName=IP:127.0.0.1\n" if who == "server"
                       else "extendedKeyUsage=clientAuth\n")
        _openssl("x509", "-req", "-in", str(d / f"{who}.csr"), "-CA", str(d / "ca.crt"),
                 "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "1",
                 "-extfile", str(ext), "-out", str(d / f"{who}.crt"))
    yield Pki(d / "ca.crt", d / "server.crt", d / "server.key", d / "client.crt",
              d / "client.key")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _doc(cluster: dict[str, Any], user: dict[str, Any], namespace: str | None = None,
         current: str = "dev") -> dict[str, Any]:
    ctx: dict[str, Any] = {"cluster": "c1", "user": "u1"}
    if namespace:
        ctx["namespace"] = namespace
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": current,
        "clusters": [{"name": "c1", "cluster": cluster},
                     {"name": "c2", "cluster": {"server": "http://other:8080"}}],
        "users": [{"name": "u1", "user": user}],
        "contexts": [{"name": "dev", "context": ctx},
                     {"name": "other", "context": {"cluster": "c2", "user": "u1"}}],
    }


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def test_token_namespace_and_ca_data(tmp_path: Path) -> None:
    cfg = load_kubeconfig(_write(tmp_path / "config", _doc(
        {"server": "https://10.0.0.1:6443/", "certificate-authority-data": _b64(b"PEM-CA")},
        {"token": "s3cret"}, namespace="team-a")))
    assert cfg == ClientConfig(server="https://10.0.0.1:6443", ca_data=b"PEM-CA",
                               token="s3cret", namespace="team-a")


def test_named_context_overrides_current(tmp_path: Path) -> None:
    path = _write(tmp_path / "config", _doc({"server": "https://a"}, {"token": "t"}))
    cfg = load_kubeconfig(path, context="other")
    assert cfg.server == "http://other:8080"
    assert cfg.namespace == "default"
    assert cfg.ssl_context() is None  # plain http needs no TLS


def test_relative_paths_token_file_and_insecure(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("from-file\n")
    cfg = load_kubeconfig(_write(tmp_path / "config", _doc(
        {"server": "https://a", "certificate-authority": "ca.crt",
         "insecure-skip-tls-verify": True},
        {"tokenFile": "tok", "client-certificate": "/abs/c.crt", "client-key": "k.key"})))
    assert cfg.token == "from-file"
    assert cfg.ca_file == str(tmp_path / "ca.crt")
    assert cfg.client_cert == "/abs/c.crt"
    assert cfg.client_key == str(tmp_path / "k.key")
    assert cfg.insecure


def test_cert_data_decoded(tmp_path: Path, pki: Pki) -> None:
    cert, key = pki.client_cert.read_bytes(), pki.client_key.read_bytes()
    cfg = load_kubeconfig(_write(tmp_path / "config", _doc(
        {"server": "https://127.0.0.1:1", "certificate-authority-data":
         _b64(pki.ca.read_bytes())},
        {"client-certificate-data": _b64(cert), "client-key-data": _b64(key)})))
    assert cfg.client_cert_data == cert and cfg.client_key_data == key
    ctx = cfg.ssl_context()
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def test_kubeconfig_env_list_first_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _write(tmp_path / "a", {"current-context": "dev", "contexts": [
        {"name": "dev", "context": {"cluster": "c1", "user": "u1", "namespace": "ns-a"}}]})
    second = _write(tmp_path / "b", _doc({"server": "https://b"}, {"token": "tb"},
                                         namespace="ns-b", current="other"))
    monkeypatch.setenv("KUBECONFIG", f"{first}:{tmp_path / 'missing'}:{second}")
    cfg = load_kubeconfig()
    assert (cfg.server, cfg.token, cfg.namespace) == ("https://b", "tb", "ns-a")


@pytest.mark.parametrize("doc, message", [
    ({"clusters": []}, "current-context"),
    ({"current-context": "x"}, "context 'x' not found"),
    (_doc({}, {}), "has no server"),
    (_doc({"server": "https://a", "certificate-authority-data": "%%%"}, {}), "base64"),
])
def test_errors(tmp_path: Path, doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_kubeconfig(_write(tmp_path / "config", doc))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_kubeconfig(tmp_path / "nope")


def test_write_then_load_round_trip(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "sub" / "kubeconfig", "https://127.0.0.1:6443",
                            token="abc", ca_data=b"CA", client_cert_data="CERT",
                            client_key_data=b"KEY", namespace="kube-system")
    assert path.stat().st_mode & 0o777 == 0o600
    doc = yaml.safe_load(path.read_text())
    # the shape kubectl expects
    assert doc["current-context"] == "kubelite"
    assert doc["contexts"] == [{"name": "kubelite", "context": {
        "cluster": "kubelite", "user": "admin", "namespace": "kube-system"}}]
    assert doc["users"][0]["user"]["client-certificate-data"] == _b64(b"CERT")
    cfg = load_kubeconfig(path)
    assert cfg == ClientConfig(server="https://127.0.0.1:6443", ca_data=b"CA", token="abc",
                               client_cert_data=b"CERT", client_key_data=b"KEY",
                               namespace="kube-system")


async def test_client_certificate_tls_round_trip(tmp_path: Path, pki: Pki) -> None:
    """The ApiClient verifies the server with the CA data and presents the client cert."""
    seen: dict[str, Any] = {}

    async def get_ns(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        seen["peer"] = peer
        return web.json_response({"kind": "Namespace", "metadata": {"name": "default"}})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/default", get_ns)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    server_ctx.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=server_ctx)
    try:
        path = write_kubeconfig(tmp_path / "kc", str(server.make_url("")).rstrip("/"),
                                ca_data=pki.ca.read_bytes(),
                                client_cert_data=pki.client_cert.read_bytes(),
                                client_key_data=pki.client_key.read_bytes())
        async with ApiClient(load_kubeconfig(path)) as api:
            assert NAMESPACES is not None
            ns = await api.get(NAMESPACES, "default")
        assert ns["metadata"]["name"] == "default"
        subject = dict(pair[0] for pair in seen["peer"]["subject"])
        assert subject["commonName"] == "admin"
    finally:
        await server.close()
