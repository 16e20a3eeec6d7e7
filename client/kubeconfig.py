"""kubeconfig files: read the current context into a `ClientConfig`, and write new ones.

The format is kubectl's (`clientcmd/api/v1`): named clusters, users and contexts plus a
`current-context`. Like kubectl, `$KUBECONFIG` may list several files separated by `:`;
the first file to define a name (or the current context) wins, and relative file paths
are resolved against the directory of the file that mentions them.

`in_cluster_config()` is client-go's `rest.InClusterConfig()` for code running in a pod: the
apiserver address from the environment the kubelet injects, credentials from the service
account directory.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

StrPath = str | os.PathLike[str]


class ConfigError(Exception):
    """The kubeconfig is missing, malformed, or names something it does not define."""


@dataclass(frozen=True)
class ClientConfig:
    """Everything needed to reach and authenticate to one apiserver.

    Certificates and keys are held either as paths (`*_file`, `client_cert`, `client_key`)
    or as PEM bytes (`*_data`); inline data is only written to disk, in a private temporary
    directory, for the moment `ssl_context()` needs to load it (Python's ssl module can
    only load a client certificate from files).
    """

    server: str
    ca_file: str | None = None
    ca_data: bytes | None = None
    client_cert: str | None = None
    client_key: str | None = None
    client_cert_data: bytes | None = None
    client_key_data: bytes | None = None
    token: str | None = None
    token_file: str | None = None  # re-read by the client: a rotated token takes effect
    insecure: bool = False
    namespace: str = "default"

    @property
    def uses_tls(self) -> bool:
        return urlsplit(self.server).scheme == "https"

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client TLS context for an https server, or None for plain http."""
        if not self.uses_tls:
            return None
        cadata = self.ca_data.decode() if self.ca_data else None
        ctx = ssl.create_default_context(cafile=self.ca_file, cadata=cadata)
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.client_cert or self.client_cert_data:
            self._load_client_cert(ctx)
        return ctx

    def _load_client_cert(self, ctx: ssl.SSLContext) -> None:
        if self.client_cert and self.client_key:
            ctx.load_cert_chain(self.client_cert, self.client_key)
            return
        with tempfile.TemporaryDirectory(prefix="kubelite-tls-") as tmp:
            cert = self.client_cert or _write_private(Path(tmp, "client.crt"),
                                                      self.client_cert_data)
            key = self.client_key or _write_private(Path(tmp, "client.key"),
                                                    self.client_key_data)
            ctx.load_cert_chain(cert, key)


def _write_private(path: Path, data: bytes | None) -> str:
    if data is None:
        raise ConfigError("client certificate given without its key (or the other way round)")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return str(path)


SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def in_cluster_config(environ: Mapping[str, str] | None = None,
                      service_account_dir: StrPath = SERVICE_ACCOUNT_DIR) -> ClientConfig:
    """The config of a pod: `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT` (the
    `kubernetes` Service, injected by the kubelet) and the service account files.

    The server is https, verified against `ca.crt` of the service account directory, and
    `token` is sent as a bearer token; the `namespace` file gives the default namespace.
    Without `ca.crt` or `token` this is an error (there is no way to trust the server or
    to authenticate). The token file is named in the config, so the client re-reads it as
    the kubelet rotates it.
    """
    env = os.environ if environ is None else environ
    host = env.get("KUBERNETES_SERVICE_HOST", "").strip()
    port = env.get("KUBERNETES_SERVICE_PORT", "").strip()
    if not host or not port:
        raise ConfigError("not running in a cluster: KUBERNETES_SERVICE_HOST and "
                          "KUBERNETES_SERVICE_PORT must be set (or give a kubeconfig)")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"KUBERNETES_SERVICE_PORT={port!r} is not a port number")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    sa = Path(service_account_dir)
    namespace = _read_optional(sa / "namespace") or "default"
    ca = sa / "ca.crt"
    if not ca.exists():
        raise ConfigError(f"not running in a cluster with a service account: {ca} is missing")
    token = sa / "token"
    if not token.exists():
        raise ConfigError(f"no service-account token at {token}")
    return ClientConfig(server=f"https://{host}:{port}", ca_file=str(ca),
                        token=_read_optional(token), token_file=str(token),
                        namespace=namespace)


def _read_optional(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e}") from e


def default_kubeconfig_paths() -> list[Path]:
    """`$KUBECONFIG` (a `:`-separated list) or `~/.kube/config`."""
    env = os.environ.get("KUBECONFIG", "")
    paths = [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return paths or [Path.home() / ".kube" / "config"]


def load_kubeconfig(path: StrPath | None = None, context: str | None = None) -> ClientConfig:
    """Build a `ClientConfig` from the named (or current) context of a kubeconfig."""
    paths = [Path(path)] if path is not None else default_kubeconfig_paths()
    merged = _merge([(p, _read(p)) for p in paths if path is not None or p.exists()])
    if not merged.files:
        raise ConfigError(f"no kubeconfig found at {', '.join(map(str, paths))}")
    ctx_name = context or merged.current_context
    if not ctx_name:
        raise ConfigError("kubeconfig has no current-context and none was given")
    ctx = merged.lookup("contexts", ctx_name, "context")
    cluster = merged.lookup("clusters", str(ctx.get("cluster", "")), "cluster")
    user_name = str(ctx.get("user", ""))
    user = merged.lookup("users", user_name, "user") if user_name else _Entry({}, Path("."))
    server = str(cluster.body.get("server") or "")
    if not server:
        raise ConfigError(f"cluster {ctx.get('cluster')!r} has no server")
    return ClientConfig(
        server=server.rstrip("/"),
        ca_file=cluster.path_of("certificate-authority"),
        ca_data=cluster.data_of("certificate-authority-data"),
        client_cert=user.path_of("client-certificate"),
        client_key=user.path_of("client-key"),
        client_cert_data=user.data_of("client-certificate-data"),
        client_key_data=user.data_of("client-key-data"),
        token=_token(user),
        insecure=bool(cluster.body.get("insecure-skip-tls-verify", False)),
        namespace=str(ctx.get("namespace") or "default"),
    )


def _token(user: _Entry) -> str | None:
    token = user.body.get("token")
    if token:
        return str(token)
    token_file = user.path_of("tokenFile")
    if token_file:
        return Path(token_file).read_text().strip()
    return None


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read kubeconfig {path}: {e}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"kubeconfig {path} is not valid YAML: {e}") from e
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"kubeconfig {path} is not a mapping")
    return doc


@dataclass(frozen=True)
class _Entry:
    """One cluster/user/context body plus the directory its relative paths are relative to."""

    body: Mapping[str, Any]
    base: Path

    def get(self, key: str, default: Any = None) -> Any:
        return self.body.get(key, default)

    def path_of(self, key: str) -> str | None:
        value = self.body.get(key)
        if not value:
            return None
        p = Path(str(value)).expanduser()
        return str(p if p.is_absolute() else self.base / p)

    def data_of(self, key: str) -> bytes | None:
        value = self.body.get(key)
        if not value:
            return None
        try:
            return base64.b64decode(str(value), validate=True)
        except ValueError as e:
            raise ConfigError(f"{key} is not valid base64") from e


@dataclass
class _Merged:
    files: list[Path]
    current_context: str
    sections: dict[str, dict[str, _Entry]]

    def lookup(self, section: str, name: str, kind: str) -> _Entry:
        entry = self.sections[section].get(name)
        if entry is None:
            raise ConfigError(f"{kind} {name!r} not found in kubeconfig")
        return entry


def _merge(docs: list[tuple[Path, dict[str, Any]]]) -> _Merged:
    merged = _Merged([], "", {"clusters": {}, "users": {}, "contexts": {}})
    singular = {"clusters": "cluster", "users": "user", "contexts": "context"}
    for path, doc in docs:
        merged.files.append(path)
        merged.current_context = merged.current_context or str(doc.get("current-context") or "")
        for section, field in singular.items():
            for item in doc.get(section) or []:
                if not isinstance(item, dict) or "name" not in item:
                    raise ConfigError(f"{path}: every entry of {section} needs a name")
                entries = merged.sections[section]
                entries.setdefault(str(item["name"]),
                                   _Entry(item.get(field) or {}, path.parent.absolute()))
    return merged


def _b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def write_kubeconfig(path: StrPath, server: str, token: str | None = None,
                     ca_data: bytes | str | None = None,
                     client_cert_data: bytes | str | None = None,
                     client_key_data: bytes | str | None = None,
                     cluster_name: str = "kubelite", user: str = "admin", *,
                     namespace: str | None = None, insecure: bool = False) -> Path:
    """Write a kubectl-compatible kubeconfig with one cluster, user and context.

    The context is named after the cluster and made current. The file is created with mode
    0600 because it holds credentials.
    """
    cluster: dict[str, Any] = {"server": server}
    if ca_data is not None:
        cluster["certificate-authority-data"] = _b64(ca_data)
    if insecure:
        cluster["insecure-skip-tls-verify"] = True
    creds: dict[str, Any] = {}
    if token is not None:
        creds["token"] = token
    if client_cert_data is not None:
        creds["client-certificate-data"] = _b64(client_cert_data)
    if client_key_data is not None:
        creds["client-key-data"] = _b64(client_key_data)
    context: dict[str, Any] = {"cluster": cluster_name, "user": user}
    if namespace:
        context["namespace"] = namespace
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": cluster}],
        "users": [{"name": user, "user": creds}],
        "contexts": [{"name": cluster_name, "context": context}],
        "current-context": cluster_name,
        "preferences": {},
    }
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    return out
