"""Encryption at rest: upstream's EncryptionConfiguration and its value transformers.

As kube-apiserver's `--encryption-provider-config`, a file of kind EncryptionConfiguration
(apiserver.config.k8s.io/v1) lists, for groups of resources, an ordered list of providers:
aesgcm, aescbc and secretbox (each with named keys) and identity (no encryption). The first
provider's first key encrypts every write; every provider and key can read, so keys rotate by
putting the new key first and rewriting the objects. An encrypted value in etcd is
`k8s:enc:<provider>:v1:<key name>:` followed by the provider's bytes, byte for byte as upstream
lays them out, so an etcd written by one reads in the other.

Only the bytes kept in etcd change: the watch cache and every reader above storage see the
objects in clear.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import nacl.exceptions
import nacl.secret
import yaml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from apiserver.storage.interface import StorageError

API_VERSION = "apiserver.config.k8s.io/v1"
KIND = "EncryptionConfiguration"
ENCRYPTED = b"k8s:enc:"  # reserved: identity refuses to read values that start with it

AES_KEY_SIZES = (16, 24, 32)
SECRETBOX_KEY_SIZES = (32,)
GCM_NONCE_SIZE = 12
BLOCK = 16  # AES block size, and CBC's IV size
# Resources with no REST API, which upstream refuses to name.
NOT_REST = ("apiserveripinfo", "serviceipallocations", "servicenodeportallocations")


class EncryptionConfigError(ValueError):
    """The configuration file cannot be used; the message is one line naming the field."""


class TransformError(StorageError):
    """A stored value cannot be decrypted (wrong key, no provider for it, or damage)."""


class ValueCipher(Protocol):
    def seal(self, plain: bytes, aad: bytes) -> bytes: ...

    def open(self, sealed: bytes, aad: bytes) -> bytes: ...


class AesGcm:
    """AES-GCM with a random 96-bit nonce: nonce || ciphertext || tag. The etcd key is the
    authenticated data, so a value copied under another key does not decrypt."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plain: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(GCM_NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, plain, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        if len(sealed) < GCM_NONCE_SIZE:
            raise TransformError("the stored data was shorter than the required size")
        try:
            return self._aead.decrypt(sealed[:GCM_NONCE_SIZE], sealed[GCM_NONCE_SIZE:], aad)
        except InvalidTag:
            raise TransformError("AES-GCM: message authentication failed") from None


class AesCbc:
    """AES-CBC with a random IV and PKCS#7 padding: iv || ciphertext. No authentication,
    which is why upstream no longer recommends it."""

    def __init__(self, key: bytes) -> None:
        self._algorithm = algorithms.AES(key)

    def seal(self, plain: bytes, aad: bytes) -> bytes:
        iv = os.urandom(BLOCK)
        padder = padding.PKCS7(BLOCK * 8).padder()
        padded = padder.update(plain) + padder.finalize()
        enc = Cipher(self._algorithm, modes.CBC(iv)).encryptor()
        return iv + enc.update(padded) + enc.finalize()

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        if len(sealed) < BLOCK:
            raise TransformError("the stored data was shorter than the required size")
        body = sealed[BLOCK:]
        if not body or len(body) % BLOCK:
            raise TransformError("the stored data is not a multiple of the block size")
        dec = Cipher(self._algorithm, modes.CBC(sealed[:BLOCK])).decryptor()
        padded = dec.update(body) + dec.finalize()
        unpadder = padding.PKCS7(BLOCK * 8).unpadder()
        try:
            return unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            raise TransformError("invalid padding on input") from None


class SecretBox:
    """NaCl secretbox (XSalsa20-Poly1305) with a random 24-byte nonce: nonce || tag ||
    ciphertext, the layout of Go's secretbox.Seal after upstream's nonce."""

    def __init__(self, key: bytes) -> None:
        self._box = nacl.secret.SecretBox(key)

    def seal(self, plain: bytes, aad: bytes) -> bytes:
        return bytes(self._box.encrypt(plain))

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        try:
            return bytes(self._box.decrypt(sealed))
        except (nacl.exceptions.CryptoError, ValueError):
            raise TransformError("secretbox: the value could not be opened") from None


@dataclass(frozen=True)
class PrefixedCipher:
    prefix: bytes  # b"" for identity
    cipher: ValueCipher | None  # None: identity
    name: str  # "aescbc/key1", for logs and errors; never the key itself


class ValueTransformer:
    """One resource's providers in order: the first writes, each reads the values it wrote."""

    def __init__(self, entries: list[PrefixedCipher]) -> None:
        if not entries:
            raise ValueError("a transformer needs at least one provider")
        self.entries = entries

    @property
    def writer(self) -> str:
        return self.entries[0].name

    def to_storage(self, data: bytes, key: str) -> bytes:
        first = self.entries[0]
        if first.cipher is None:
            return data
        return first.prefix + first.cipher.seal(data, key.encode())

    def from_storage(self, data: bytes, key: str) -> tuple[bytes, bool]:
        """The clear value, and whether it is stale (not written by the first provider):
        a stale value is rewritten by an update even when the object did not change."""
        failures: list[str] = []
        for i, entry in enumerate(self.entries):
            if not data.startswith(entry.prefix):
                continue
            if entry.cipher is None:
                # Identity reads anything but encrypted values; those go on to the providers
                # after it (moving away from encryption puts identity first).
                if data.startswith(ENCRYPTED):
                    continue
                return data, i != 0
            try:
                return entry.cipher.open(data[len(entry.prefix):], key.encode()), i != 0
            except TransformError as e:
                failures.append(f"{entry.name}: {e}")
        if failures:
            raise TransformError(f"{key}: " + "; ".join(failures))
        raise TransformError(f"{key}: no matching prefix found (is its key missing from the "
                             f"encryption configuration?)")


class StorageTransformers:
    """Which etcd keys are transformed, by their `/registry/<resource>/` prefix."""

    def __init__(self, by_prefix: dict[str, ValueTransformer]) -> None:
        self.by_prefix = by_prefix

    def for_key(self, key: str) -> ValueTransformer | None:
        if not self.by_prefix or not key.startswith("/registry/"):
            return None
        end = key.find("/", len("/registry/"))
        return None if end < 0 else self.by_prefix.get(key[:end + 1])


@dataclass(frozen=True)
class GroupResource:
    group: str  # "" for the core group, "*" for any
    resource: str  # "*" for any in the group

    @classmethod
    def parse(cls, text: str) -> GroupResource:
        resource, _, group = text.partition(".")
        return cls(group, resource)


class EncryptionConfig:
    """The parsed file: for each (group, resource) rule, its transformer."""

    def __init__(self, rules: dict[GroupResource, ValueTransformer]) -> None:
        self.rules = rules

    def for_resource(self, group: str, resource: str) -> ValueTransformer | None:
        for gr in (GroupResource(group, resource), GroupResource(group, "*"),
                   GroupResource("*", "*")):
            if gr in self.rules:
                return self.rules[gr]
        return None

    def for_storage(self, resources: Iterable[tuple[str, str, str]]) -> StorageTransformers:
        """`resources`: (group, plural, storage prefix) of every stored resource."""
        by_prefix: dict[str, ValueTransformer] = {}
        for group, plural, prefix in resources:
            t = self.for_resource(group, plural)
            if t is not None:
                by_prefix.setdefault(prefix, t)
        return StorageTransformers(by_prefix)


def load_encryption_config(path: str | Path) -> EncryptionConfig:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise EncryptionConfigError(f"encryption provider config {path}: {e.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0] if str(e) else "invalid YAML"
        raise EncryptionConfigError(f"encryption provider config {path}: {first}") from None
    try:
        return parse_encryption_config(doc)
    except EncryptionConfigError as e:
        raise EncryptionConfigError(f"encryption provider config {path}: {e}") from None


def parse_encryption_config(doc: Any) -> EncryptionConfig:
    if not isinstance(doc, dict):
        raise EncryptionConfigError("not an EncryptionConfiguration object")
    if doc.get("kind") != KIND or doc.get("apiVersion") != API_VERSION:
        raise EncryptionConfigError(f"want kind {KIND} of apiVersion {API_VERSION}, got "
                                    f"{doc.get('kind')!r} of {doc.get('apiVersion')!r}")
    entries = doc.get("resources")
    if not isinstance(entries, list) or not entries:
        raise EncryptionConfigError("resources: at least one resources is required")
    rules: dict[GroupResource, ValueTransformer] = {}
    for i, entry in enumerate(entries):
        here = f"resources[{i}]"
        if not isinstance(entry, dict):
            raise EncryptionConfigError(f"{here}: must be an object")
        names = _resource_names(entry.get("resources"), f"{here}.resources")
        transformer = ValueTransformer(_providers(entry.get("providers"), f"{here}.providers"))
        for name in names:
            # As upstream, the first rule naming a resource is the one that applies.
            rules.setdefault(GroupResource.parse(name), transformer)
    return EncryptionConfig(rules)


def _resource_names(value: Any, here: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise EncryptionConfigError(f"{here}: at least one resource is required")
    parsed: list[GroupResource] = []
    for j, name in enumerate(value):
        where = f"{here}[{j}]"
        if not isinstance(name, str) or not name:
            raise EncryptionConfigError(f"{where}: must be a resource name")
        gr = GroupResource.parse(name)
        if name.lower() != name:
            raise EncryptionConfigError(f"{where}: resource name should not contain capital "
                                        f"letters")
        if name == "*":
            raise EncryptionConfigError(f"{where}: use '*.' to encrypt all the resources from "
                                        f"core API group or *.* to encrypt all resources")
        if name in NOT_REST:
            raise EncryptionConfigError(f"{where}: resources which do not have REST API/s "
                                        f"cannot be encrypted")
        if gr.group == "events.k8s.io":
            raise EncryptionConfigError(f"{where}: '*.events.k8s.io' objects are stored using "
                                        f"the 'events' API group in etcd; use 'events'")
        if gr.group == "extensions":
            raise EncryptionConfigError(f"{where}: 'extensions' group has been removed and "
                                        f"cannot be used for encryption")
        if gr.group == "*" and gr.resource != "*":
            raise EncryptionConfigError(f"{where}: encrypting the same resource across groups "
                                        f"is not supported")
        parsed.append(gr)
    if len(set(parsed)) != len(parsed):
        raise EncryptionConfigError(f"{here}: the same resource cannot be specified multiple "
                                    f"times")
    for a in parsed:
        for b in parsed:
            if a is not b and (a == GroupResource("*", "*") or
                               (a.group == b.group and "*" in (a.resource, b.resource))):
                raise EncryptionConfigError(
                    f"{here}: using overlapping resources such as 'secrets' and '*.' in the "
                    f"same resource list is not allowed as they will be masked")
    return [str(n) for n in value]


_CIPHERS: dict[str, tuple[type[AesGcm | AesCbc | SecretBox], tuple[int, ...]]] = {
    "aesgcm": (AesGcm, AES_KEY_SIZES),
    "aescbc": (AesCbc, AES_KEY_SIZES),
    "secretbox": (SecretBox, SECRETBOX_KEY_SIZES),
}


def _providers(value: Any, here: str) -> list[PrefixedCipher]:
    if not isinstance(value, list) or not value:
        raise EncryptionConfigError(f"{here}: at least one provider is required")
    out: list[PrefixedCipher] = []
    for j, provider in enumerate(value):
        where = f"{here}[{j}]"
        if not isinstance(provider, dict) or len(provider) != 1:
            raise EncryptionConfigError(
                f"{where}: exactly one of aesgcm, aescbc, secretbox, identity per element")
        (kind, spec), = provider.items()
        if kind == "identity":
            out.append(PrefixedCipher(b"", None, "identity"))
        elif kind == "kms":
            raise EncryptionConfigError(f"{where}: the kms provider is not supported by "
                                        f"kubelite; use aesgcm, aescbc or secretbox")
        elif kind in _CIPHERS:
            out.extend(_keys(kind, spec, f"{where}.{kind}"))
        else:
            raise EncryptionConfigError(f"{where}: unknown provider {kind!r}: expected one of "
                                        f"aesgcm, aescbc, secretbox, identity")
    return out


def _keys(kind: str, spec: Any, here: str) -> list[PrefixedCipher]:
    make, sizes = _CIPHERS[kind]
    keys = spec.get("keys") if isinstance(spec, dict) else None
    if not isinstance(keys, list) or not keys:
        raise EncryptionConfigError(f"{here}.keys: at least one keys is required")
    out: list[PrefixedCipher] = []
    seen: set[str] = set()
    for k, key in enumerate(keys):
        where = f"{here}.keys[{k}]"
        name = key.get("name") if isinstance(key, dict) else None
        secret = key.get("secret") if isinstance(key, dict) else None
        if not isinstance(name, str) or not name:
            raise EncryptionConfigError(f"{where}.name: name is a mandatory field for a key")
        if name in seen:
            raise EncryptionConfigError(f"{where}.name: duplicate key name {name!r}")
        seen.add(name)
        if not isinstance(secret, str) or not secret:
            raise EncryptionConfigError(f"{where}.secret: secret is a mandatory field for a key")
        try:
            raw = base64.b64decode(secret, validate=True)
        except (binascii.Error, ValueError):
            # The secret itself stays out of the message, as upstream's REDACTED.
            raise EncryptionConfigError(f"{where}.secret: secrets must be base64 "
                                        f"encoded") from None
        if len(raw) not in sizes:
            raise EncryptionConfigError(
                f"{where}.secret: secret is not of the expected length, got {len(raw)}, "
                f"expected one of {list(sizes)}")
        prefix = f"k8s:enc:{kind}:v1:{name}:".encode()
        out.append(PrefixedCipher(prefix, make(raw), f"{kind}/{name}"))
    return out


def generate_config(provider: str = "secretbox", key_name: str = "key1") -> str:
    """A new EncryptionConfiguration for secrets with one fresh 32-byte key (as YAML)."""
    if provider not in _CIPHERS:
        raise ValueError(f"unknown provider {provider!r}")
    secret = base64.b64encode(os.urandom(32)).decode()
    doc = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "resources": [{
            "resources": ["secrets"],
            "providers": [{provider: {"keys": [{"name": key_name, "secret": secret}]}},
                          {"identity": {}}],
        }],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def ensure_encryption_config(path: Path, provider: str = "secretbox") -> Path:
    """The config at `path`, made once (owner-only, 0600) with a fresh key and reused after:
    a new key on each start would leave every secret written before unreadable."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(generate_config(provider))
        os.replace(tmp, path)
    return path
