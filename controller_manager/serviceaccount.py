"""ServiceAccount controller (upstream pkg/controller/serviceaccount): every active namespace
has a `default` ServiceAccount; one that is deleted is created again.

Keys are namespace names. A namespace being deleted is skipped: the apiserver refuses new
content there, and the namespace controller is emptying it.
"""

from __future__ import annotations

from typing import Any

from api.errors import AlreadyExists, Forbidden, NotFound
from api.resources import CATALOGUE, Resource
from controller_manager.base import Controller, ControllerContext

Obj = dict[str, Any]


def _resource(plural: str) -> Resource:
    res = CATALOGUE.by_plural(plural)
    assert res is not None, plural
    return res


NAMESPACES = _resource("namespaces")
SERVICEACCOUNTS = _resource("serviceaccounts")

# Upstream's --service-account-names default (kube-controller-manager: "default").
DEFAULT_SERVICE_ACCOUNTS = ("default",)


class ServiceAccountController(Controller):
    name = "serviceaccount"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.names = tuple(getattr(ctx.options, "service_account_names", None)
                           or DEFAULT_SERVICE_ACCOUNTS)
        self.namespaces = self.informer(NAMESPACES)
        self.accounts = self.informer(SERVICEACCOUNTS)
        self.namespaces.add_handler(on_add=self.enqueue,
                                    on_update=lambda old, new: self.enqueue(new))
        self.accounts.add_handler(on_delete=self._account_deleted)

    def _account_deleted(self, sa: Obj) -> None:
        md = sa.get("metadata") or {}
        if md.get("name") in self.names and md.get("namespace"):
            self.queue.add(str(md["namespace"]))

    async def sync(self, key: str) -> None:
        ns = self.namespaces.store.get(key)
        if ns is None or ns["metadata"].get("deletionTimestamp") or \
                (ns.get("status") or {}).get("phase") != "Active":
            return
        for name in self.names:
            if f"{key}/{name}" in self.accounts.store:
                continue
            try:
                await self.api.create(SERVICEACCOUNTS, {
                    "apiVersion": SERVICEACCOUNTS.api_version, "kind": SERVICEACCOUNTS.kind,
                    "metadata": {"name": name, "namespace": key}})
                self.log.info("created serviceaccount namespace=%s name=%s", key, name)
            except AlreadyExists:
                pass  # the cache is behind; it exists, which is all we want
            except (Forbidden, NotFound):
                return  # the namespace began terminating or is gone meanwhile
