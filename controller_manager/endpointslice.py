"""EndpointSlice controller (upstream pkg/controller/endpointslice): for every Service with a
selector, keep EndpointSlices listing the Service's pods.

- Slices are named `<service>-<random>` (generateName), labelled
  `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by`, and owned by the
  Service (controller ownerReference).
- A pod is an endpoint while it has an IP of the slice's family and is not terminal
  (Succeeded/Failed); terminating pods stay listed with `terminating: true` so that proxies can
  drain them. `serving` is the pod's Ready condition, `ready` is serving and not terminating,
  or always true for `publishNotReadyAddresses`.
- Named target ports are resolved per pod from its container ports; endpoints are grouped by
  their resolved port set and address family, at most `max_endpoints_per_slice` (100) each.
  A Service without endpoints keeps one empty placeholder slice (as upstream, so consumers
  can tell "no endpoints" from "not processed yet").
- A Service without a selector is left alone: its slices belong to whoever wrote them.
- Slices of a deleted Service are deleted here directly rather than waiting for the garbage
  collector (which would also remove them through the ownerReference): it is faster and
  keeps endpoints correct in clusters that run without the GC.

The service and pod helpers at the top are shared with the legacy Endpoints controller.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from api.errors import Conflict, NotFound
from api.meta import deep_copy
from api.resources import CATALOGUE, Resource
from api.selectors import LabelSelector, selector_from_set
from client.informer import NAMESPACE_INDEX, meta_key
from controller_manager.base import Controller, ControllerContext
from controller_manager.podutil import ensure_namespace_index, is_pod_ready, is_terminating

Obj = dict[str, Any]


def _resource(plural: str) -> Resource:
    res = CATALOGUE.by_plural(plural)
    assert res is not None, plural
    return res


PODS = _resource("pods")
SERVICES = _resource("services")
ENDPOINTSLICES = _resource("endpointslices")

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
HEADLESS_LABEL = "service.kubernetes.io/headless"
SERVICE_INDEX = "service"
MAX_ENDPOINTS_PER_SLICE = 100


# --- pod helpers (shared with controller_manager.endpoints) ---------------------------------


def service_selector(svc: Obj) -> LabelSelector | None:
    """The Service's pod selector; None when it has none (endpoints are managed by hand)."""
    selector = (svc.get("spec") or {}).get("selector")
    if not isinstance(selector, dict) or not selector:
        # An empty map is stored like a missing one upstream (protobuf), so both mean none.
        return None
    return selector_from_set(selector)


def pod_is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def ip_family(address: str) -> str | None:
    try:
        return f"IPv{ipaddress.ip_address(address).version}"
    except ValueError:
        return None


def service_ip_families(svc: Obj) -> list[str]:
    families = (svc.get("spec") or {}).get("ipFamilies") or []
    out = [f for f in families if f in ("IPv4", "IPv6")]
    return out or ["IPv4"]


def pod_address(pod: Obj, family: str) -> str | None:
    """The pod's first IP of `family` (status.podIPs, else status.podIP)."""
    status = pod.get("status") or {}
    candidates = [p.get("ip") for p in status.get("podIPs") or [] if isinstance(p, dict)]
    candidates.append(status.get("podIP"))
    for ip in candidates:
        if isinstance(ip, str) and ip and ip_family(ip) == family:
            return ip
    return None


def should_pod_be_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """Upstream ShouldPodBeInEndpoints: not terminal, has an IP, terminating only if asked."""
    if pod_is_terminal(pod):
        return False
    status = pod.get("status") or {}
    if not status.get("podIP") and not status.get("podIPs"):
        return False
    return include_terminating or not is_terminating(pod)


def resolve_target_port(pod: Obj, svc_port: Obj) -> int | None:
    """The pod port a service port forwards to; None when a named port is not declared."""
    target = svc_port.get("targetPort")
    if target is None or target == "":
        target = svc_port.get("port")
    if isinstance(target, int):
        return target
    protocol = svc_port.get("protocol") or "TCP"
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in (container or {}).get("ports") or []:
            if isinstance(port, dict) and port.get("name") == target and \
                    (port.get("protocol") or "TCP") == protocol:
                number = port.get("containerPort")
                return number if isinstance(number, int) else None
    return None


def endpoint_ports(svc: Obj, pod: Obj) -> list[Obj]:
    """The service's ports resolved for one pod; a port the pod lacks is left out."""
    out: list[Obj] = []
    for svc_port in (svc.get("spec") or {}).get("ports") or []:
        if not isinstance(svc_port, dict):
            continue
        number = resolve_target_port(pod, svc_port)
        if number is None:
            continue
        port: Obj = {"name": svc_port.get("name") or "", "port": number,
                     "protocol": svc_port.get("protocol") or "TCP"}
        if svc_port.get("appProtocol"):
            port["appProtocol"] = svc_port["appProtocol"]
        out.append(port)
    return out


def ports_key(ports: Iterable[Obj]) -> tuple[tuple[str, str, int, str], ...]:
    return tuple(sorted((str(p.get("name") or ""), str(p.get("protocol") or "TCP"),
                         int(p.get("port") or 0), str(p.get("appProtocol") or ""))
                        for p in ports))


def pod_hostname(pod: Obj, svc: Obj) -> str | None:
    """A pod's DNS hostname under the service, when its subdomain names the service."""
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain") == svc["metadata"]["name"]:
        return str(spec["hostname"])
    return None


def target_ref(pod: Obj) -> Obj:
    # No resourceVersion: it would change the endpoint on every pod status write.
    md = pod["metadata"]
    return {"kind": "Pod", "namespace": md.get("namespace", ""), "name": md["name"],
            "uid": md.get("uid", "")}


def services_selecting(services: Iterable[Obj], labels: dict[str, str] | None) -> list[str]:
    keys = []
    for svc in services:
        selector = service_selector(svc)
        if selector is not None and selector.matches(labels or {}):
            keys.append(meta_key(svc))
    return keys


def pod_labels(pod: Obj) -> dict[str, str]:
    return (pod.get("metadata") or {}).get("labels") or {}


def service_labels(svc: Obj) -> dict[str, str]:
    labels = dict((svc.get("metadata") or {}).get("labels") or {})
    if (svc.get("spec") or {}).get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    return labels


# --- the controller --------------------------------------------------------------------------


def _slice_service_index(obj: Obj) -> list[str]:
    md = obj.get("metadata") or {}
    labels = md.get("labels") or {}
    svc = labels.get(SERVICE_NAME_LABEL)
    if not svc or labels.get(MANAGED_BY_LABEL) != CONTROLLER_NAME:
        return []
    return [f"{md.get('namespace')}/{svc}"]


def _owned_by(slice_: Obj, svc: Obj) -> bool:
    uid = svc["metadata"].get("uid")
    return any(ref.get("uid") == uid and ref.get("controller")
               for ref in slice_["metadata"].get("ownerReferences") or [])


def _endpoint_key(ep: Obj) -> str:
    ref = ep.get("targetRef") or {}
    return str(ref.get("uid") or (ep.get("addresses") or [""])[0])


def _endpoint_sort_key(ep: Obj) -> tuple[str, str]:
    return ((ep.get("addresses") or [""])[0], (ep.get("targetRef") or {}).get("name", ""))


GroupKey = tuple[str, tuple[tuple[str, str, int, str], ...]]


class EndpointSliceController(Controller):
    name = "endpointslice"
    workers = 4

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.max_endpoints_per_slice = int(getattr(ctx.options, "max_endpoints_per_slice",
                                                   MAX_ENDPOINTS_PER_SLICE))
        self.services = self.informer(SERVICES)
        self.pods = self.informer(PODS)
        self.slices = self.informer(ENDPOINTSLICES)
        ensure_namespace_index(self.services)
        ensure_namespace_index(self.pods)
        self.slices.add_index(SERVICE_INDEX, _slice_service_index)
        # service key -> what we wrote and the cache has maybe not seen yet: the highest
        # resourceVersion written, and the names of slices we deleted. Acting on a cache
        # that misses our own writes would create duplicate slices (upstream's
        # endpointSliceTracker guards the same thing).
        self._written_rv: dict[str, int] = {}
        self._deleted: dict[str, set[str]] = {}
        self.services.add_handler(on_add=self.enqueue,
                                  on_update=lambda old, new: self.enqueue(new),
                                  on_delete=self.enqueue)
        self.pods.add_handler(on_add=self._pod_changed, on_update=self._pod_updated,
                              on_delete=self._pod_changed)
        self.slices.add_handler(on_add=self._slice_changed,
                                on_update=lambda old, new: self._slice_changed(new),
                                on_delete=self._slice_changed)

    # -- event handlers ------------------------------------------------------------------

    def _services_for(self, namespace: str, labels: dict[str, str]) -> list[str]:
        return services_selecting(self.services.store.by_index(NAMESPACE_INDEX, namespace),
                                  labels)

    def _pod_changed(self, pod: Obj) -> None:
        ns = pod["metadata"].get("namespace", "")
        self.enqueue_keys(self._services_for(ns, pod_labels(pod)))

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        ns = new["metadata"].get("namespace", "")
        keys = set(self._services_for(ns, pod_labels(new)))
        if pod_labels(old) != pod_labels(new):
            keys.update(self._services_for(ns, pod_labels(old)))
        self.enqueue_keys(sorted(keys))

    def _slice_changed(self, slice_: Obj) -> None:
        # Someone else's edit or delete of one of our slices is undone by a resync.
        self.enqueue_keys(_slice_service_index(slice_))

    # -- sync ------------------------------------------------------------------------------

    def _cache_is_stale(self, key: str) -> bool:
        written = self._written_rv.get(key)
        if written is not None:
            seen = int(self.slices.last_resource_version or 0)
            if seen < written:
                return True
            del self._written_rv[key]
        deleted = self._deleted.get(key)
        if deleted:
            ns = key.partition("/")[0]
            deleted.difference_update([n for n in deleted
                                       if f"{ns}/{n}" not in self.slices.store])
            if deleted:
                return True
            del self._deleted[key]
        return False

    async def sync(self, key: str) -> None:
        if self._cache_is_stale(key):
            self.queue.add_after(key, 0.2)
            return
        svc = self.services.store.get(key)
        existing = self.slices.store.by_index(SERVICE_INDEX, key)
        if svc is None:
            for slice_ in existing:
                await self._delete(key, slice_)
            return
        selector = service_selector(svc)
        if selector is None:
            return
        ns = svc["metadata"]["namespace"]
        pods = [p for p in self.pods.store.by_index(NAMESPACE_INDEX, ns)
                if selector.matches(pod_labels(p))]
        await self._reconcile(key, svc, pods, existing)

    def _desired(self, svc: Obj, pods: list[Obj]) -> tuple[dict[GroupKey, dict[str, Obj]],
                                                           dict[GroupKey, list[Obj]]]:
        """Endpoints wanted, grouped by (address type, port set); and each group's ports."""
        publish_not_ready = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
        groups: dict[GroupKey, dict[str, Obj]] = {}
        group_ports: dict[GroupKey, list[Obj]] = {}
        for family in service_ip_families(svc):
            for pod in pods:
                if not should_pod_be_in_endpoints(pod, include_terminating=True):
                    continue
                address = pod_address(pod, family)
                if address is None:
                    continue
                ports = endpoint_ports(svc, pod)
                group = (family, ports_key(ports))
                serving = is_pod_ready(pod)
                terminating = is_terminating(pod)
                endpoint: Obj = {
                    "addresses": [address],
                    "conditions": {"ready": publish_not_ready or (serving and not terminating),
                                   "serving": serving, "terminating": terminating},
                    "targetRef": target_ref(pod),
                }
                hostname = pod_hostname(pod, svc)
                if hostname:
                    endpoint["hostname"] = hostname
                node_name = (pod.get("spec") or {}).get("nodeName")
                if node_name:
                    endpoint["nodeName"] = node_name
                groups.setdefault(group, {})[_endpoint_key(endpoint)] = endpoint
                group_ports.setdefault(group, ports)
        return groups, group_ports

    def _plan(self, slices: list[Obj], desired: dict[str, Obj]) -> list[tuple[Obj | None,
                                                                              list[Obj]]]:
        """Pack endpoints into slices, keeping each endpoint in the slice it is in already
        (few writes), filling slices that change anyway, then opening new ones."""
        limit = self.max_endpoints_per_slice
        placed: set[str] = set()
        plan: list[tuple[Obj | None, list[Obj]]] = []
        for existing in sorted(slices, key=lambda s: s["metadata"]["name"]):
            eps: list[Obj] = []
            for old in existing.get("endpoints") or []:
                k = _endpoint_key(old)
                if k in desired and k not in placed and len(eps) < limit:
                    placed.add(k)
                    eps.append(desired[k])
            plan.append((existing, eps))
        remaining = [desired[k] for k in sorted(desired, key=lambda k: _endpoint_sort_key(
            desired[k])) if k not in placed]

        def changed(entry: tuple[Obj | None, list[Obj]]) -> bool:
            slice_, eps = entry
            return slice_ is not None and \
                len(eps) != len(slice_.get("endpoints") or [])

        for _, room in sorted(plan, key=lambda e: not changed(e)):
            take = max(0, limit - len(room))
            room.extend(remaining[:take])
            remaining = remaining[take:]
        for start in range(0, len(remaining), limit):
            plan.append((None, remaining[start:start + limit]))
        return plan

    async def _reconcile(self, key: str, svc: Obj, pods: list[Obj],
                         existing: list[Obj]) -> None:
        groups, group_ports = self._desired(svc, pods)
        if not groups:
            # The placeholder: one slice without endpoints or ports.
            family = service_ip_families(svc)[0]
            groups = {(family, ()): {}}
            group_ports = {(family, ()): []}
        by_group: dict[GroupKey, list[Obj]] = {}
        stale: list[Obj] = []
        for old in existing:
            group = (str(old.get("addressType")), ports_key(old.get("ports") or []))
            if _owned_by(old, svc) and group in groups:
                by_group.setdefault(group, []).append(old)
            else:
                stale.append(old)
        for group, desired in groups.items():
            plan = self._plan(by_group.get(group, []), desired)
            keep_one = not desired  # the placeholder group keeps its one slice
            for slice_, eps in plan:
                if slice_ is not None and not eps:
                    if keep_one:
                        keep_one = False
                    else:
                        stale.append(slice_)
                        continue
                await self._write(key, svc, group, group_ports[group], slice_, eps)
            if keep_one:
                await self._write(key, svc, group, [], None, [])
        for old in stale:
            await self._delete(key, old)

    def _body(self, svc: Obj, group: GroupKey, ports: list[Obj], base: Obj | None,
              eps: list[Obj]) -> Obj:
        md = svc["metadata"]
        body: Obj = deep_copy(base) if base is not None else {
            "apiVersion": ENDPOINTSLICES.api_version, "kind": ENDPOINTSLICES.kind,
            "metadata": {"generateName": f"{md['name']}-", "namespace": md["namespace"]},
        }
        labels = {k: v for k, v in service_labels(svc).items()
                  if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL)}
        labels[SERVICE_NAME_LABEL] = md["name"]
        labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
        body["metadata"]["labels"] = labels
        body["metadata"]["ownerReferences"] = [{
            "apiVersion": SERVICES.api_version, "kind": SERVICES.kind, "name": md["name"],
            "uid": md["uid"], "controller": True, "blockOwnerDeletion": True}]
        body["addressType"] = group[0]
        body["endpoints"] = sorted(eps, key=_endpoint_sort_key)
        body["ports"] = ports
        return body

    async def _write(self, key: str, svc: Obj, group: GroupKey, ports: list[Obj],
                     base: Obj | None, eps: list[Obj]) -> None:
        body = self._body(svc, group, ports, base, eps)
        if base is not None:
            if all(body.get(f) == base.get(f) for f in ("addressType", "endpoints", "ports")) \
                    and body["metadata"].get("labels") == base["metadata"].get("labels") and \
                    body["metadata"]["ownerReferences"] == \
                    base["metadata"].get("ownerReferences"):
                return  # only write when the content changes
            written = await self.api.update(ENDPOINTSLICES, body)
            action = "updated"
        else:
            written = await self.api.create(ENDPOINTSLICES, body)
            action = "created"
        rv = int(written["metadata"].get("resourceVersion") or 0)
        self._written_rv[key] = max(rv, self._written_rv.get(key, 0))
        self.log.debug("%s endpointslice service=%s slice=%s endpoints=%d", action, key,
                       written["metadata"]["name"], len(eps))

    async def _delete(self, key: str, slice_: Obj) -> None:
        md = slice_["metadata"]
        try:
            await self.api.delete(ENDPOINTSLICES, md["name"], md["namespace"],
                                  preconditions={"uid": md["uid"]})
        except NotFound:
            return
        except Conflict:
            return  # a different slice now has the name: not ours to delete
        self._deleted.setdefault(key, set()).add(md["name"])
        self.log.debug("deleted endpointslice service=%s slice=%s", key, md["name"])
