"""Secrets encrypted at rest on a real apiserver and etcd (--encryption-provider-config).

The etcd values are read raw, beside the apiserver: a canary secret value must appear there
neither in clear nor in base64, while the API and its watch hand it back in clear. Keys rotate
by restarting with the new key first and rewriting; identity first turns encryption off for
new writes while the encrypted values still read.
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.resources import CATALOGUE
from apiserver.storage.etcd3 import Etcd, EtcdTLS
from client.kubeconfig import load_kubeconfig
from client.rest import ApiClient
from tests.conftest import ApiServer, EtcdServer, start_apiserver, start_etcd, stop_process

SECRETS = CATALOGUE.require("secrets")
CONFIGMAPS = CATALOGUE.require("configmaps")
NS = "default"
CANARY = "canary-5b1e9d-in-clear"
CANARY_B64 = base64.b64encode(CANARY.encode()).decode()
KEY1 = base64.b64encode(b"1" * 32).decode()
KEY2 = base64.b64encode(b"2" * 32).decode()
AESCBC_KEY1 = {"aescbc": {"keys": [{"name": "key1", "secret": KEY1}]}}
SECRETBOX_KEY2 = {"secretbox": {"keys": [{"name": "key2", "secret": KEY2}]}}


def write_config(path: Path, *providers: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
        "resources": [{"resources": ["secrets"], "providers": list(providers)}]}))
    return path


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdServer]:
    # Its own etcd: a configuration without identity cannot read the clear secrets that
    # other modules leave in the session's.
    with tempfile.TemporaryDirectory(prefix="kubelite-enc-") as d:
        server = start_etcd(d)
        try:
            yield server
        finally:
            stop_process(server.proc)


@pytest.fixture
async def raw(etcd: EtcdServer) -> AsyncIterator[Etcd]:
    pki = etcd.pki
    client = Etcd([etcd.url], tls=EtcdTLS(str(pki.etcd_ca_cert), str(pki.etcd_client_cert),
                                          str(pki.etcd_client_key)))
    try:
        yield client
    finally:
        await client.close()


async def stored(raw: Etcd, resource: str, name: str) -> bytes:
    kv, _ = await raw.get(f"/registry/{resource}/{NS}/{name}".encode())
    assert kv is not None, f"{resource}/{name} is not in etcd"
    return bytes(kv.value)


def assert_sealed(value: bytes, prefix: str) -> None:
    assert value.startswith(prefix.encode()), value[:40]
    assert CANARY.encode() not in value and CANARY_B64.encode() not in value


def secret(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "data": {"token": CANARY_B64}}


class Apiserver:
    """One apiserver at a time on the module's etcd, restarted with each configuration."""

    def __init__(self, etcd: EtcdServer, workdir: Path) -> None:
        self.etcd, self.workdir = etcd, workdir
        self.server: ApiServer | None = None

    def start(self, config: Path) -> ApiServer:
        self.stop()
        self.server = start_apiserver(self.etcd, self.workdir,
                                      "--encryption-provider-config", str(config))
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            stop_process(self.server.proc)
            self.server = None


@pytest.fixture
def apiservers(etcd: EtcdServer, tmp_path: Path) -> Iterator[Apiserver]:
    servers = Apiserver(etcd, tmp_path)
    try:
        yield servers
    finally:
        servers.stop()


def client(server: ApiServer) -> ApiClient:
    return ApiClient(load_kubeconfig(server.kubeconfig), component="test")


async def test_secrets_are_sealed_in_etcd_and_clear_through_the_api(
        apiservers: Apiserver, raw: Etcd, tmp_path: Path) -> None:
    config = write_config(tmp_path / "enc.yaml", AESCBC_KEY1)
    server = apiservers.start(config)
    # A second apiserver writes, so the first one's watch cache decrypts the etcd event
    # itself (it does not hold the object it wrote).
    writer = start_apiserver(apiservers.etcd, tmp_path, "--encryption-provider-config",
                             str(config))
    try:
        async with client(server) as api, client(writer) as other:
            listed = await api.list(SECRETS, NS)
            events = api.watch(SECRETS, NS,
                               resource_version=listed["metadata"]["resourceVersion"],
                               timeout_seconds=30)
            created = await other.create(SECRETS, secret("s1"), NS)
            async for ev in events:
                if ev[1]["metadata"]["name"] == "s1":
                    assert ev[0] == "ADDED" and ev[1]["data"] == {"token": CANARY_B64}
                    break
            await events.aclose()
    finally:
        stop_process(writer.proc)
    async with client(server) as api:
        assert_sealed(await stored(raw, "secrets", "s1"), "k8s:enc:aescbc:v1:key1:")
        got = await api.get(SECRETS, "s1", NS)
        assert got["data"] == {"token": CANARY_B64}
        assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        # Only the configured resources are encrypted.
        await api.create(CONFIGMAPS, {"metadata": {"name": "c1"}, "data": {"k": CANARY}}, NS)
        assert CANARY.encode() in await stored(raw, "configmaps", "c1")

    # Rotation: the new key first, the old one still there to read.
    server = apiservers.start(write_config(tmp_path / "enc2.yaml", SECRETBOX_KEY2,
                                           AESCBC_KEY1))
    async with client(server) as api:
        old = await api.get(SECRETS, "s1", NS)
        assert old["data"] == {"token": CANARY_B64}
        assert_sealed(await stored(raw, "secrets", "s1"), "k8s:enc:aescbc:v1:key1:")
        # An update that changes nothing still rewrites a value under an old key (as
        # `kubectl get secrets -A -o json | kubectl replace -f -`).
        replaced = await api.update(SECRETS, old)
        assert replaced["metadata"]["resourceVersion"] != old["metadata"]["resourceVersion"]
        assert_sealed(await stored(raw, "secrets", "s1"), "k8s:enc:secretbox:v1:key2:")
        # ... but once under the first key, a no-op update stays a no-op.
        again = await api.update(SECRETS, replaced)
        assert again["metadata"]["resourceVersion"] == replaced["metadata"]["resourceVersion"]
        await api.create(SECRETS, secret("s2"), NS)
        assert_sealed(await stored(raw, "secrets", "s2"), "k8s:enc:secretbox:v1:key2:")

    # Identity first: new writes in clear, the encrypted ones still read.
    server = apiservers.start(write_config(tmp_path / "enc3.yaml", {"identity": {}},
                                           SECRETBOX_KEY2))
    async with client(server) as api:
        await api.create(SECRETS, secret("s3"), NS)
        clear = await stored(raw, "secrets", "s3")
        assert clear.startswith(b"{") and CANARY_B64.encode() in clear
        names = {s["metadata"]["name"]: s["data"] for s in (await api.list(SECRETS, NS))["items"]}
        assert names == {n: {"token": CANARY_B64} for n in ("s1", "s2", "s3")}
        assert_sealed(await stored(raw, "secrets", "s2"), "k8s:enc:secretbox:v1:key2:")


async def test_no_key_in_etcd_holds_a_secret_value_in_clear(
        apiservers: Apiserver, raw: Etcd, tmp_path: Path) -> None:
    """The scan the issue asks for: after a Secret is written (and its object is read,
    listed and patched through the API), no value anywhere in etcd holds its value. (A
    canary of its own: the tests above leave CANARY in clear on purpose.)"""
    canary = "scan-canary-" + base64.b32encode(tmp_path.name.encode()).decode()[:12]
    canary_b64 = base64.b64encode(canary.encode())
    # Every provider the tests above wrote with still reads (their secrets stay in etcd).
    server = apiservers.start(write_config(tmp_path / "scan.yaml", AESCBC_KEY1,
                                           SECRETBOX_KEY2, {"identity": {}}))
    async with client(server) as api:
        await api.create(SECRETS, {"apiVersion": "v1", "kind": "Secret",
                                   "metadata": {"name": "scan"},
                                   "data": {"token": canary_b64.decode()}}, NS)
        assert (await api.get(SECRETS, "scan", NS))["data"]["token"] == canary_b64.decode()
        await api.list(SECRETS, NS)
        await api.patch(SECRETS, "scan", {"metadata": {"labels": {"scanned": "yes"}}}, NS)
    everything = await raw.range(b"\x00", b"\x00")
    assert everything.count > 0
    leaks = [kv.key.decode(errors="replace") for kv in everything.kvs
             if canary.encode() in kv.value or canary_b64 in kv.value]
    assert leaks == []
