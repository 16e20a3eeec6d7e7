"""Root CA certificate publisher (upstream pkg/controller/certificates/rootcacertpublisher):
every namespace holds a ConfigMap `kube-root-ca.crt` whose `ca.crt` is the CA bundle pods
use to verify the apiserver (the projected `kube-api-access-*` volume mounts it).

The bundle is `--root-ca-file`, else the CA of the controller-manager's own kubeconfig (as
kube-controller-manager falls back to its client config's CA data); with neither, the
controller has nothing to publish and does nothing. Keys are namespace names: a namespace
that appears or becomes Active is synced, and so is one whose ConfigMap is deleted (it is
created again) or edited (data and the description annotation are put back).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api.errors import AlreadyExists, NotFound, StatusError
from api.meta import deep_copy
from api.resources import CATALOGUE
from controller_manager.base import Controller, ControllerContext

Obj = dict[str, Any]

NAMESPACES = CATALOGUE.require("namespaces")
CONFIGMAPS = CATALOGUE.require("configmaps")

ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
CA_KEY = "ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using "
               "internal endpoints such as the internal service IP or kubernetes.default.svc. "
               "No other usage is guaranteed across distributions of Kubernetes clusters.")
NAMESPACE_TERMINATING_CAUSE = "NamespaceTerminating"


def root_ca(ctx: ControllerContext) -> bytes | None:
    """--root-ca-file, else the kubeconfig's CA (inline or file); None when neither."""
    path = getattr(ctx.options, "root_ca_file", "") or ""
    if path:
        data = Path(path).read_bytes()
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise ValueError(f"error parsing root-ca-file at {path}: no certificate found")
        return data
    config = ctx.api.config
    if config.ca_data:
        return config.ca_data
    if config.ca_file:
        return Path(config.ca_file).read_bytes()
    return None


def _terminating(err: StatusError) -> bool:
    causes = (err.details or {}).get("causes") or []
    return any(isinstance(c, dict) and c.get("reason") == NAMESPACE_TERMINATING_CAUSE
               for c in causes)


class RootCACertPublisher(Controller):
    name = "root-ca-cert-publisher"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        ca = root_ca(ctx)
        self.ca = ca.decode() if ca is not None else None
        self.namespaces = self.informer(NAMESPACES)
        # Only the one ConfigMap per namespace this controller owns.
        self.configmaps = ctx.informers.informer_for(
            CONFIGMAPS, field_selector=f"metadata.name={ROOT_CA_CONFIGMAP}")
        if self.ca is None:
            self.log.warning("no --root-ca-file and no CA in the kubeconfig: "
                             "not publishing %s", ROOT_CA_CONFIGMAP)
            return
        self.namespaces.add_handler(on_add=self._namespace,
                                    on_update=lambda old, new: self._namespace_updated(new))
        self.configmaps.add_handler(on_update=lambda old, new: self._configmap(new),
                                    on_delete=self._configmap)

    def _namespace(self, ns: Obj) -> None:
        self.queue.add(str(ns["metadata"]["name"]))

    def _namespace_updated(self, ns: Obj) -> None:
        if (ns.get("status") or {}).get("phase") == "Active":
            self._namespace(ns)

    def _configmap(self, cm: Obj) -> None:
        md = cm.get("metadata") or {}
        if md.get("name") == ROOT_CA_CONFIGMAP and md.get("namespace"):
            self.queue.add(str(md["namespace"]))

    async def sync(self, key: str) -> None:
        if self.ca is None:
            return
        data = {CA_KEY: self.ca}
        cm = self.configmaps.store.get(f"{key}/{ROOT_CA_CONFIGMAP}")
        if cm is None:
            ns = self.namespaces.store.get(key)
            if ns is None or ns["metadata"].get("deletionTimestamp"):
                return  # gone or terminating: the apiserver refuses new content there
            try:
                await self.api.create(CONFIGMAPS, {
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": key,
                                 "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
                    "data": data}, key)
            except AlreadyExists:
                return  # the cache is behind; its update event brings us back if needed
            except NotFound:
                return
            except StatusError as e:
                if _terminating(e):
                    return
                raise
            self.log.info("published %s namespace=%s", ROOT_CA_CONFIGMAP, key)
            return
        annotations = cm["metadata"].get("annotations") or {}
        if cm.get("data") == data and annotations.get(DESCRIPTION_ANNOTATION):
            return
        fixed = deep_copy(cm)
        fixed["data"] = data
        fixed["metadata"]["annotations"] = {**annotations,
                                            DESCRIPTION_ANNOTATION: DESCRIPTION}
        # A conflict means a newer version is on its way to the cache: the worker retries.
        await self.api.update(CONFIGMAPS, fixed)
        self.log.info("reset %s namespace=%s", ROOT_CA_CONFIGMAP, key)
