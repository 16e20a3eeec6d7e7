"""Endpoints controller (upstream pkg/controller/endpoint): the legacy v1 Endpoints object,
named as its Service, for every Service with a selector.

Same pod data as the EndpointSlice controller, in `subsets`: ready pods under `addresses`,
pods that are not ready under `notReadyAddresses`, grouped by the port set each pod resolves
(named target ports are looked up per pod). Terminating pods are left out, except with
`publishNotReadyAddresses`, which lists every pod with an IP as ready. Only the Service's
primary IP family is listed (Endpoints cannot mix families).

Endpoints carry no ownerReference (as upstream), so the Endpoints of a deleted Service are
deleted here. At most 1000 addresses are kept; beyond that the object is truncated and
annotated `endpoints.kubernetes.io/over-capacity: truncated`. The optional
`endpoints.kubernetes.io/last-change-trigger-time` annotation is not written.
"""

from __future__ import annotations

import json
from typing import Any

from api.errors import NotFound
from api.meta import deep_copy
from api.resources import CATALOGUE, Resource
from client.informer import NAMESPACE_INDEX
from controller_manager.base import Controller, ControllerContext
from controller_manager.endpointslice import (
    endpoint_ports,
    pod_address,
    pod_hostname,
    pod_labels,
    service_ip_families,
    service_labels,
    service_selector,
    services_selecting,
    should_pod_be_in_endpoints,
    target_ref,
)
from controller_manager.podutil import ensure_namespace_index, is_pod_ready

Obj = dict[str, Any]


def _resource(plural: str) -> Resource:
    res = CATALOGUE.by_plural(plural)
    assert res is not None, plural
    return res


PODS = _resource("pods")
SERVICES = _resource("services")
ENDPOINTS = _resource("endpoints")

MAX_CAPACITY = 1000
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"


def _port_sort_key(port: Obj) -> tuple[str, int, str]:
    return (str(port.get("name") or ""), int(port.get("port") or 0),
            str(port.get("protocol") or ""))


def _address_sort_key(address: Obj) -> tuple[str, str]:
    return (str(address.get("ip")), str((address.get("targetRef") or {}).get("uid", "")))


def build_subsets(svc: Obj, pods: list[Obj]) -> tuple[list[Obj], bool]:
    """Subsets for `svc` from its selected pods (repacked: one subset per port set), and
    whether they were truncated to MAX_CAPACITY addresses."""
    spec = svc.get("spec") or {}
    tolerate_unready = bool(spec.get("publishNotReadyAddresses"))
    family = service_ip_families(svc)[0]
    groups: dict[str, tuple[list[Obj], list[Obj], list[Obj]]] = {}
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, include_terminating=tolerate_unready):
            continue
        ip = pod_address(pod, family)
        if ip is None:
            continue
        address: Obj = {"ip": ip, "targetRef": target_ref(pod)}
        node_name = (pod.get("spec") or {}).get("nodeName")
        if node_name:
            address["nodeName"] = node_name
        hostname = pod_hostname(pod, svc)
        if hostname:
            address["hostname"] = hostname
        ports = []
        for port in endpoint_ports(svc, pod):
            ep_port: Obj = {"port": port["port"], "protocol": port["protocol"]}
            if port["name"]:
                ep_port["name"] = port["name"]
            if port.get("appProtocol"):
                ep_port["appProtocol"] = port["appProtocol"]
            ports.append(ep_port)
        if spec.get("ports") and not ports:
            continue  # none of the service's ports exist on this pod
        ports.sort(key=_port_sort_key)
        group = groups.setdefault(json.dumps(ports, sort_keys=True), (ports, [], []))
        is_ready = tolerate_unready or is_pod_ready(pod)
        (group[1] if is_ready else group[2]).append(address)
    subsets: list[Obj] = []
    budget = MAX_CAPACITY
    truncated = False
    for _, (ports, ready, not_ready) in sorted(groups.items()):
        ready.sort(key=_address_sort_key)
        not_ready.sort(key=_address_sort_key)
        if len(ready) + len(not_ready) > budget:
            truncated = True
            ready = ready[:budget]
            not_ready = not_ready[:budget - len(ready)]
        budget -= len(ready) + len(not_ready)
        subset: Obj = {"ports": ports}
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        if ready or not_ready:
            subsets.append(subset)
    return subsets, truncated


class EndpointsController(Controller):
    name = "endpoints"
    workers = 4

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.services = self.informer(SERVICES)
        self.pods = self.informer(PODS)
        self.endpoints = self.informer(ENDPOINTS)
        ensure_namespace_index(self.services)
        ensure_namespace_index(self.pods)
        self.services.add_handler(on_add=self.enqueue,
                                  on_update=lambda old, new: self.enqueue(new),
                                  on_delete=self.enqueue)
        self.pods.add_handler(on_add=self._pod_changed,
                              on_update=self._pod_updated,
                              on_delete=self._pod_changed)
        # Only deletes: an Endpoints removed by someone else is written again. Updates are
        # not watched so that hand-written Endpoints of selector-less Services stay alone.
        self.endpoints.add_handler(on_delete=self.enqueue)
        # key -> resourceVersion of our last write; until the cache has caught up with it,
        # comparing against the cache would only produce Conflicts and AlreadyExists.
        self._written_rv: dict[str, int] = {}

    def _services_for(self, namespace: str, labels: dict[str, str]) -> list[str]:
        return services_selecting(self.services.store.by_index(NAMESPACE_INDEX, namespace),
                                  labels)

    def _pod_changed(self, pod: Obj) -> None:
        self.enqueue_keys(self._services_for(pod["metadata"].get("namespace", ""),
                                             pod_labels(pod)))

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        ns = new["metadata"].get("namespace", "")
        keys = set(self._services_for(ns, pod_labels(new)))
        if pod_labels(old) != pod_labels(new):
            keys.update(self._services_for(ns, pod_labels(old)))
        self.enqueue_keys(sorted(keys))

    async def sync(self, key: str) -> None:
        written = self._written_rv.get(key)
        if written is not None:
            if int(self.endpoints.last_resource_version or 0) < written:
                self.queue.add_after(key, 0.1)
                return
            del self._written_rv[key]
        ns, _, name = key.partition("/")
        svc = self.services.store.get(key)
        if svc is None:
            # The Service is gone: so are its Endpoints (nothing else would remove them).
            try:
                await self.api.delete(ENDPOINTS, name, ns)
                self.log.debug("deleted endpoints key=%s", key)
            except NotFound:
                pass
            return
        selector = service_selector(svc)
        if selector is None:
            return  # selector-less Services have their Endpoints written by hand
        pods = [p for p in self.pods.store.by_index(NAMESPACE_INDEX, ns)
                if selector.matches(pod_labels(p))]
        subsets, truncated = build_subsets(svc, pods)
        labels = service_labels(svc)
        current = self.endpoints.store.get(key)
        annotations = dict(((current or {}).get("metadata") or {}).get("annotations") or {})
        if truncated:
            annotations[OVER_CAPACITY_ANNOTATION] = "truncated"
        else:
            annotations.pop(OVER_CAPACITY_ANNOTATION, None)
        if current is not None:
            cmd = current.get("metadata") or {}
            if (current.get("subsets") or []) == subsets and \
                    (cmd.get("labels") or {}) == labels and \
                    (cmd.get("annotations") or {}) == annotations:
                return  # only write when the content changes
            body = deep_copy(current)
        else:
            body = {"apiVersion": ENDPOINTS.api_version, "kind": ENDPOINTS.kind,
                    "metadata": {"name": name, "namespace": ns}}
        body["metadata"]["labels"] = labels
        if annotations:
            body["metadata"]["annotations"] = annotations
        else:
            body["metadata"].pop("annotations", None)
        body["subsets"] = subsets
        if current is not None:
            # Carries resourceVersion: a stale cache gets a Conflict and a retry.
            result = await self.api.update(ENDPOINTS, body)
        else:
            # AlreadyExists (made by someone else meanwhile) is retried the same way.
            result = await self.api.create(ENDPOINTS, body)
        self._written_rv[key] = int(result["metadata"].get("resourceVersion") or 0)
        self.log.debug("wrote endpoints key=%s subsets=%d", key, len(subsets))
