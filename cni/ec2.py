"""The "EC2 API" of kubelite's VPC: the ENI table kept in one ConfigMap in the apiserver.

On AWS, ipamd asks EC2 to create and attach ENIs and to assign addresses to them, and EC2
guarantees no address is handed out twice. Here the apiserver plays EC2: the whole VPC table
(`cni.vpc.VpcTable`) lives in `kube-system/kubelite-vpc-ipam`, and every change is a
read-modify-write with `PUT` carrying the `resourceVersion` that was read. A stale version
is a 409 Conflict: re-read, re-apply, try again. So two nodes starting at once cannot both
take an address: one of their writes loses and is redone against the other's result.

One object for the whole VPC keeps the invariant ("no address in two ENIs") checkable in a
single compare-and-swap; the cost is that writers contend, which is fine because ipamd
writes only when its warm pool grows or shrinks, never per pod.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Any, TypeVar

from api.errors import AlreadyExists, Conflict, NotFound
from api.resources import CATALOGUE, Resource
from client.rest import ApiClient
from cni.vpc import EniRecord, VpcTable

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_NAMESPACE = "kube-system"
DEFAULT_NAME = "kubelite-vpc-ipam"
MAX_ATTEMPTS = 100


def _configmaps() -> Resource:
    res = CATALOGUE.by_plural("configmaps")
    if res is None:
        raise RuntimeError("the resource catalogue has no configmaps")
    return res


CONFIGMAPS = _configmaps()


class TooManyConflicts(Exception):
    """The compare-and-swap lost MAX_ATTEMPTS times in a row."""


@dataclass(frozen=True)
class TableRef:
    namespace: str = DEFAULT_NAMESPACE
    name: str = DEFAULT_NAME

    @classmethod
    def parse(cls, text: str) -> TableRef:
        """`namespace/name` or just `name` (in kube-system)."""
        ns, _, name = text.rpartition("/")
        return cls(ns or DEFAULT_NAMESPACE, name)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class Ec2Client:
    """EC2-shaped calls over the apiserver; every method is one compare-and-swap."""

    def __init__(self, api: ApiClient, cidr: IPv4Network, ref: TableRef = TableRef()) -> None:
        self.api = api
        self.cidr = cidr
        self.ref = ref
        self.conflicts = 0  # lost compare-and-swaps, for logs and tests

    async def _read(self) -> tuple[dict[str, Any], VpcTable]:
        while True:
            try:
                cm = await self.api.get(CONFIGMAPS, self.ref.name, self.ref.namespace)
            except NotFound:
                table = VpcTable(self.cidr)
                body = {"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": self.ref.name, "namespace": self.ref.namespace,
                                     "labels": {"app.kubernetes.io/managed-by": "kubelite-ipamd"}},
                        "data": table.to_data()}
                try:
                    cm = await self.api.create(CONFIGMAPS, body, self.ref.namespace)
                except AlreadyExists:
                    continue  # another node created it first: read theirs
            return cm, VpcTable.from_data(cm.get("data") or {}, self.cidr)

    async def modify(self, change: Callable[[VpcTable], T]) -> T:
        """Apply `change` to the current table and store it; redo it on a lost race.

        `change` must only compute from the table it is given (it may run several times);
        an `Ec2Error` it raises is passed on and nothing is written.
        """
        backoff = 0.005
        for _ in range(MAX_ATTEMPTS):
            cm, table = await self._read()
            before = table.to_data()
            result = change(table)
            after = table.to_data()
            if after == before:
                return result
            cm["data"] = after
            try:
                await self.api.update(CONFIGMAPS, cm)
                return result
            except Conflict:
                self.conflicts += 1
                log.debug("vpc table %s: lost a compare-and-swap, retrying", self.ref)
                await asyncio.sleep(random.uniform(0, backoff))
                backoff = min(backoff * 2, 0.25)
        raise TooManyConflicts(f"vpc table {self.ref}: {MAX_ATTEMPTS} conflicts in a row")

    async def table(self) -> VpcTable:
        return (await self._read())[1]

    # --- the EC2 calls ipamd makes ---------------------------------------------------------

    async def describe_node_enis(self, node: str) -> list[EniRecord]:
        return (await self.table()).node_enis(node)

    async def create_and_attach_eni(self, node: str, itype: str, *, secondary_ips: int = 0,
                                    prefixes: int = 0) -> EniRecord:
        return await self.modify(lambda t: t.create_eni(node, itype, secondary_ips=secondary_ips,
                                                        prefixes=prefixes))

    async def assign_private_ips(self, eni_id: str, count: int) -> list[str]:
        return await self.modify(lambda t: t.assign_ips(eni_id, count))

    async def assign_prefixes(self, eni_id: str, count: int) -> list[str]:
        return await self.modify(lambda t: t.assign_prefixes(eni_id, count))

    async def unassign(self, eni_id: str, ips: list[str] | None = None,
                       prefixes: list[str] | None = None) -> None:
        await self.modify(lambda t: t.unassign(eni_id, ips or (), prefixes or ()))

    async def delete_eni(self, eni_id: str) -> None:
        await self.modify(lambda t: t.delete_eni(eni_id))
