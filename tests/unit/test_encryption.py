"""Encryption at rest (apiserver/storage/encryption.py): upstream's EncryptionConfiguration,
its value prefixes and byte layouts, rotation and identity, and refused configurations."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

import nacl.secret
import pytest
import yaml
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from apiserver.options import parse_args
from apiserver.storage.encryption import (
    EncryptionConfigError,
    GroupResource,
    TransformError,
    ensure_encryption_config,
    load_encryption_config,
    parse_encryption_config,
)

KEY = "/registry/secrets/default/s1"
CANARY = b'{"kind":"Secret","data":{"k":"Y2FuYXJ5LTdmM2E="}}'  # "canary-7f3a", base64'd
K16, K24, K32, K32B = (os.urandom(n) for n in (16, 24, 32, 32))


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def key(name: str, raw: bytes) -> dict[str, str]:
    return {"name": name, "secret": b64(raw)}


def config(*providers: dict[str, Any], resources: tuple[str, ...] = ("secrets",),
           more: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    return {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
            "resources": [{"resources": list(resources), "providers": list(providers)},
                          *more]}


def secrets_transformer(*providers: dict[str, Any]):  # type: ignore[no-untyped-def]
    t = parse_encryption_config(config(*providers)).for_resource("", "secrets")
    assert t is not None
    return t


# -- negative cases first: what must not read, and configurations that are refused ---------


def test_a_value_copied_under_another_key_does_not_decrypt_with_aesgcm() -> None:
    t = secrets_transformer({"aesgcm": {"keys": [key("k1", K32)]}})
    sealed = t.to_storage(CANARY, KEY)
    with pytest.raises(TransformError, match="authentication failed"):
        t.from_storage(sealed, "/registry/secrets/other/s1")


@pytest.mark.parametrize("provider", ["aesgcm", "aescbc", "secretbox"])
def test_a_value_under_a_key_that_is_gone_does_not_read(provider: str) -> None:
    old = secrets_transformer({provider: {"keys": [key("k1", K32)]}})
    same_name_new_secret = secrets_transformer({provider: {"keys": [key("k1", K32B)]}})
    sealed = old.to_storage(CANARY, KEY)
    try:
        got, _ = same_name_new_secret.from_storage(sealed, KEY)
    except TransformError:
        pass
    else:  # unauthenticated CBC unpads garbage now and then; it is never the value
        assert provider == "aescbc" and got != CANARY
    other_name = secrets_transformer({provider: {"keys": [key("k2", K32)]}})
    with pytest.raises(TransformError, match="no matching prefix"):
        other_name.from_storage(sealed, KEY)


def test_clear_values_do_not_read_without_identity() -> None:
    t = secrets_transformer({"secretbox": {"keys": [key("k1", K32)]}})
    with pytest.raises(TransformError, match="no matching prefix"):
        t.from_storage(CANARY, KEY)


def test_identity_refuses_encrypted_values() -> None:
    sealed = secrets_transformer({"aescbc": {"keys": [key("k1", K32)]}}).to_storage(CANARY, KEY)
    with pytest.raises(TransformError, match="no matching prefix"):
        secrets_transformer({"identity": {}}).from_storage(sealed, KEY)


def test_tampered_values_are_refused() -> None:
    for provider in ("aesgcm", "secretbox"):
        t = secrets_transformer({provider: {"keys": [key("k1", K32)]}})
        sealed = bytearray(t.to_storage(CANARY, KEY))
        sealed[-1] ^= 1
        with pytest.raises(TransformError):
            t.from_storage(bytes(sealed), KEY)
    cbc = secrets_transformer({"aescbc": {"keys": [key("k1", K32)]}})
    prefix = b"k8s:enc:aescbc:v1:k1:"
    for bad in (prefix, prefix + b"x" * 16, prefix + b"x" * 20):
        with pytest.raises(TransformError):
            cbc.from_storage(bad, KEY)


@pytest.mark.parametrize(("doc", "message"), [
    ({"kind": "EncryptionConfig", "apiVersion": "v1"}, "want kind EncryptionConfiguration"),
    (config({"aescbc": {"keys": [key("k1", b"short")]}}),
     (r"resources\[0\].providers\[0\].aescbc.keys\[0\].secret: secret is not of the "
      r"expected length, got 5, expected one of \[16, 24, 32\]")),
    (config({"secretbox": {"keys": [key("k1", K16)]}}), r"got 16, expected one of \[32\]"),
    (config({"aesgcm": {"keys": [{"name": "k1", "secret": "not base64!"}]}}),
     "secrets must be base64 encoded"),
    (config({"aesgcm": {"keys": [{"secret": b64(K32)}]}}), "name is a mandatory field"),
    (config({"aesgcm": {"keys": [key("k1", K32), key("k1", K16)]}}), "duplicate key name"),
    (config({"aesgcm": {"keys": []}}), "at least one keys is required"),
    (config({"aesgcm": {"keys": [key("k1", K32)]}, "identity": {}}),
     "exactly one of aesgcm, aescbc, secretbox, identity"),
    (config({"rot13": {}}), "unknown provider 'rot13'"),
    (config({"kms": {"name": "x"}}), "kms provider is not supported"),
    (config(), "at least one provider is required"),
    (config({"identity": {}}, resources=()), "at least one resource is required"),
    (config({"identity": {}}, resources=("secrets", "*.")), "overlapping resources"),
    (config({"identity": {}}, resources=("*.*", "deployments.apps")), "overlapping resources"),
    (config({"identity": {}}, resources=("secrets", "secrets")), "multiple times"),
    (config({"identity": {}}, resources=("*",)), "use '\\*.' to encrypt all"),
    (config({"identity": {}}, resources=("Secrets",)), "capital letters"),
    (config({"identity": {}}, resources=("deployments.*",)), "across groups"),
    (config({"identity": {}}, resources=("events.events.k8s.io",)), "use 'events'"),
    (config({"identity": {}}, resources=("serviceipallocations",)), "REST API"),
])
def test_bad_configurations_are_refused_with_the_field(doc: dict[str, Any],
                                                       message: str) -> None:
    with pytest.raises(EncryptionConfigError, match=message):
        parse_encryption_config(doc)


def test_errors_name_the_file_in_one_line_and_never_the_secret(tmp_path: Path) -> None:
    secret = b64(b"x" * 31)
    path = tmp_path / "enc.yaml"
    path.write_text(yaml.safe_dump(config({"aesgcm": {"keys": [
        {"name": "k1", "secret": secret}]}})))
    with pytest.raises(EncryptionConfigError) as e:
        load_encryption_config(path)
    assert str(e.value).startswith(f"encryption provider config {path}: ")
    assert "\n" not in str(e.value) and secret not in str(e.value)
    path.write_text("resources: [unclosed\n")
    with pytest.raises(EncryptionConfigError, match=str(path)):
        load_encryption_config(path)
    with pytest.raises(EncryptionConfigError, match="No such file"):
        load_encryption_config(tmp_path / "missing.yaml")


def test_the_apiserver_refuses_to_start_on_a_bad_config(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    path = tmp_path / "enc.yaml"
    path.write_text(yaml.safe_dump(config({"secretbox": {"keys": [key("k1", K16)]}})))
    with pytest.raises(SystemExit) as e:
        parse_args(["--encryption-provider-config", str(path)])
    assert e.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("kubelite apiserver: error: --encryption-provider-config: ")
    assert "expected one of [32]" in last
    path.write_text(yaml.safe_dump(config({"secretbox": {"keys": [key("k1", K32)]}})))
    assert parse_args(["--encryption-provider-config", str(path)]) \
        .encryption_provider_config == str(path)


# -- each provider: upstream's prefix and byte layout ---------------------------------------


def test_aesgcm_is_nonce_then_sealed_with_the_etcd_key_as_authenticated_data() -> None:
    for raw in (K16, K24, K32):
        t = secrets_transformer({"aesgcm": {"keys": [key("k1", raw)]}})
        sealed = t.to_storage(CANARY, KEY)
        prefix = b"k8s:enc:aesgcm:v1:k1:"
        assert sealed.startswith(prefix)
        body = sealed[len(prefix):]
        assert AESGCM(raw).decrypt(body[:12], body[12:], KEY.encode()) == CANARY
        assert t.from_storage(sealed, KEY) == (CANARY, False)
        # A fresh nonce each write: the same value never seals to the same bytes.
        assert t.to_storage(CANARY, KEY) != sealed


def test_aescbc_is_iv_then_pkcs7_padded_blocks() -> None:
    t = secrets_transformer({"aescbc": {"keys": [key("key1", K32)]}})
    for plain in (b"", b"x" * 15, b"x" * 16, CANARY):
        sealed = t.to_storage(plain, KEY)
        prefix = b"k8s:enc:aescbc:v1:key1:"
        assert sealed.startswith(prefix)
        body = sealed[len(prefix):]
        assert len(body) == 16 + (len(plain) // 16 + 1) * 16  # a whole pad block when aligned
        dec = Cipher(algorithms.AES(K32), modes.CBC(body[:16])).decryptor()
        unpad = padding.PKCS7(128).unpadder()
        clear = unpad.update(dec.update(body[16:]) + dec.finalize()) + unpad.finalize()
        assert clear == plain
        assert t.from_storage(sealed, KEY) == (plain, False)


def test_secretbox_is_nonce_then_box() -> None:
    t = secrets_transformer({"secretbox": {"keys": [key("key1", K32)]}})
    sealed = t.to_storage(CANARY, KEY)
    prefix = b"k8s:enc:secretbox:v1:key1:"
    assert sealed.startswith(prefix)
    body = sealed[len(prefix):]
    assert len(body) == 24 + 16 + len(CANARY)
    assert nacl.secret.SecretBox(K32).decrypt(body[24:], body[:24]) == CANARY
    assert t.from_storage(sealed, KEY) == (CANARY, False)


@pytest.mark.parametrize("provider", ["aesgcm", "aescbc", "secretbox"])
def test_the_value_and_its_base64_never_appear_in_what_is_stored(provider: str) -> None:
    t = secrets_transformer({provider: {"keys": [key("k1", K32)]}})
    sealed = t.to_storage(CANARY, KEY)
    for needle in (b"canary-7f3a", b"Y2FuYXJ5LTdmM2E", b'"kind"'):
        assert needle not in sealed


# -- rotation and identity -------------------------------------------------------------------


def test_rotation_new_key_first_reads_old_values_as_stale() -> None:
    old = secrets_transformer({"aescbc": {"keys": [key("key1", K32)]}})
    sealed_old = old.to_storage(CANARY, KEY)
    rotated = secrets_transformer({"secretbox": {"keys": [key("key2", K32B)]}},
                                  {"aescbc": {"keys": [key("key1", K32)]}})
    assert rotated.from_storage(sealed_old, KEY) == (CANARY, True)
    rewritten = rotated.to_storage(CANARY, KEY)
    assert rewritten.startswith(b"k8s:enc:secretbox:v1:key2:")
    assert rotated.from_storage(rewritten, KEY) == (CANARY, False)
    # Two keys of one provider: the first writes, the second is stale.
    two = secrets_transformer({"aesgcm": {"keys": [key("new", K16), key("old", K32)]}})
    by_old = secrets_transformer({"aesgcm": {"keys": [key("old", K32)]}}).to_storage(CANARY, KEY)
    assert two.from_storage(by_old, KEY) == (CANARY, True)
    assert two.to_storage(CANARY, KEY).startswith(b"k8s:enc:aesgcm:v1:new:")


def test_identity_first_writes_in_clear_and_still_reads_encrypted_values() -> None:
    sealed = secrets_transformer({"aescbc": {"keys": [key("key1", K32)]}}).to_storage(CANARY,
                                                                                      KEY)
    decrypting = secrets_transformer({"identity": {}}, {"aescbc": {"keys": [key("key1", K32)]}})
    assert decrypting.to_storage(CANARY, KEY) == CANARY
    assert decrypting.from_storage(CANARY, KEY) == (CANARY, False)
    assert decrypting.from_storage(sealed, KEY) == (CANARY, True)
    # Encryption turned on over a clear store: clear values read, and are stale.
    turning_on = secrets_transformer({"aescbc": {"keys": [key("key1", K32)]}}, {"identity": {}})
    assert turning_on.from_storage(CANARY, KEY) == (CANARY, True)


# -- which resources, which keys --------------------------------------------------------------


def test_resources_by_name_group_wildcard_and_first_rule_wins() -> None:
    cfg = parse_encryption_config(config(
        {"secretbox": {"keys": [key("s", K32)]}}, resources=("secrets", "deployments.apps"),
        more=({"resources": ["*.apps", "configmaps"], "providers": [{"identity": {}}]},
              {"resources": ["secrets"], "providers": [{"aescbc": {"keys": [key("c", K32)]}}]},
              {"resources": ["*.*"], "providers": [{"aesgcm": {"keys": [key("g", K32)]}}]})))

    def writer(group: str, resource: str) -> str:
        t = cfg.for_resource(group, resource)
        assert t is not None
        return t.writer

    assert writer("", "secrets") == "secretbox/s"
    assert writer("apps", "deployments") == "secretbox/s"
    assert writer("apps", "replicasets") == "identity"
    assert writer("", "configmaps") == "identity"
    assert writer("", "pods") == "aesgcm/g"
    assert parse_encryption_config(config({"identity": {}})).for_resource("", "pods") is None
    storage = cfg.for_storage([("", "secrets", "/registry/secrets/"),
                               ("apps", "replicasets", "/registry/replicasets/")])
    assert storage.for_key("/registry/secrets/ns/a") is cfg.for_resource("", "secrets")
    assert storage.for_key("/registry/replicasets/ns/a") is cfg.for_resource("apps", "x")
    assert storage.for_key("/registry/secretsx/ns/a") is None
    assert storage.for_key("/registry/secrets") is None
    assert storage.for_key("/other/secrets/ns/a") is None


def test_group_resource_parsing() -> None:
    assert GroupResource.parse("secrets") == GroupResource("", "secrets")
    assert GroupResource.parse("*.") == GroupResource("", "*")
    assert GroupResource.parse("*.*") == GroupResource("*", "*")
    assert GroupResource.parse("ingresses.networking.k8s.io") == \
        GroupResource("networking.k8s.io", "ingresses")


def test_up_makes_one_owner_only_key_and_reuses_it(tmp_path: Path) -> None:
    path = tmp_path / "pki" / "encryption-config.yaml"
    assert ensure_encryption_config(path) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_text()
    cfg = load_encryption_config(path)
    t = cfg.for_resource("", "secrets")
    assert t is not None and t.writer == "secretbox/key1"
    raw = base64.b64decode(yaml.safe_load(first)["resources"][0]["providers"][0]
                           ["secretbox"]["keys"][0]["secret"])
    assert len(raw) == 32
    ensure_encryption_config(path)
    assert path.read_text() == first
    assert ensure_encryption_config(tmp_path / "other.yaml").read_text() != first
