"""One strategy per kind: only what differs from the generic Strategy."""

from __future__ import annotations

from typing import Any

from api import defaults, validation
from api.errors import Cause, field_cause
from api.meta import deep_copy
from api.resources import Resource
from apiserver import admission
from apiserver.registry.allocator import ServiceAllocator
from apiserver.registry.strategy import Obj, Strategy


class WithStatus(Strategy):
    has_status = True


class WorkloadStrategy(WithStatus):
    """Deployments, ReplicaSets, DaemonSets, Jobs: status is the controller's, and
    generation tells it which spec it has observed. As upstream's apps status strategies,
    a status write may also change annotations (the Deployment controller keeps its
    revision there) but not labels."""

    tracks_generation = True
    status_locked_metadata = ("labels",)


class ReplicaSetStrategy(WorkloadStrategy):

    def initial_status(self, obj: Obj) -> Obj:
        return {"replicas": 0}  # not optional upstream: clients expect it from the start


class DaemonSetStrategy(WorkloadStrategy):

    def initial_status(self, obj: Obj) -> Obj:
        return {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                "desiredNumberScheduled": 0, "numberReady": 0}


class NamespaceStrategy(WithStatus):
    def initial_status(self, obj: Obj) -> Obj:
        return {"phase": "Active"}

    def may_remove(self, obj: Obj) -> bool:
        # A namespace also waits for spec.finalizers (the namespace controller's).
        return not (obj.get("spec") or {}).get("finalizers")

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        # spec.finalizers changes only through the finalize subresource.
        if "spec" in old:
            new["spec"] = old["spec"]


EPHEMERAL_CONTAINERS = "ephemeralcontainers"


class PodStrategy(WithStatus):
    return_deleted_object = True
    # Seconds for the DefaultTolerationSeconds admission; set from the apiserver's flags.
    not_ready_toleration_seconds = 300
    unreachable_toleration_seconds = 300

    def admit_create(self, obj: Obj) -> None:
        admission.default_toleration_seconds(obj, self.not_ready_toleration_seconds,
                                             self.unreachable_toleration_seconds)

    def initial_status(self, obj: Obj) -> Obj:
        return {"phase": "Pending", "qosClass": qos_class(obj)}

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        # Ephemeral containers change only through pods/ephemeralcontainers.
        spec, old_spec = new.get("spec"), old.get("spec") or {}
        if isinstance(spec, dict):
            if "ephemeralContainers" in old_spec:
                spec["ephemeralContainers"] = old_spec["ephemeralContainers"]
            else:
                spec.pop("ephemeralContainers", None)

    def prepare_for_subresource_update(self, subresource: str, new: Obj, old: Obj) -> Obj:
        if subresource != EPHEMERAL_CONTAINERS:
            return super().prepare_for_subresource_update(subresource, new, old)
        # Everything but spec.ephemeralContainers comes from the stored pod.
        out = deep_copy(old)
        wanted = (new.get("spec") or {}).get("ephemeralContainers") \
            if isinstance(new.get("spec"), dict) else None
        if wanted is None:
            out.setdefault("spec", {}).pop("ephemeralContainers", None)
        else:
            out.setdefault("spec", {})["ephemeralContainers"] = wanted
        return out

    def validate_subresource_update(self, subresource: str, new: Obj, old: Obj
                                    ) -> list[Cause]:
        causes = validation.validate("pods", new)
        by_name = {c.get("name"): c for c in (old.get("spec") or {}).get(
            "ephemeralContainers") or [] if isinstance(c, dict)}
        now = {c.get("name"): c for c in (new.get("spec") or {}).get(
            "ephemeralContainers") or [] if isinstance(c, dict)}
        # Upstream: ephemeral containers are added, never removed or changed.
        for name, container in by_name.items():
            if name not in now:
                causes.append(field_cause(
                    "spec.ephemeralContainers", f'Forbidden: existing ephemeral containers '
                    f'"{name}" may not be removed', "FieldValueForbidden"))
            elif now[name] != container:
                causes.append(field_cause(
                    "spec.ephemeralContainers", f'Forbidden: existing ephemeral containers '
                    f'"{name}" may not be changed', "FieldValueForbidden"))
        return causes

    def grace_period(self, obj: Obj, requested: int | None) -> int:
        spec = obj.get("spec") or {}
        phase = (obj.get("status") or {}).get("phase")
        # Nothing runs an unbound or finished pod, so nobody would confirm a graceful stop.
        if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
            return 0
        if requested is not None:
            return max(int(requested), 0)
        grace = spec.get("terminationGracePeriodSeconds")
        return int(grace) if isinstance(grace, int) and grace >= 0 else 30


def qos_class(pod: Obj) -> str:
    """Guaranteed / Burstable / BestEffort, from container requests and limits."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return "BestEffort"  # validation reports the bad spec
    containers: list[Any] = []
    for field in ("containers", "initContainers"):
        if isinstance(spec.get(field), list):
            containers += spec[field]
    any_set = False
    guaranteed = True
    for c in containers:
        if not isinstance(c, dict):
            continue
        res = c.get("resources") or {}
        req = res.get("requests") or {} if isinstance(res, dict) else {}
        lim = res.get("limits") or {} if isinstance(res, dict) else {}
        if not isinstance(req, dict) or not isinstance(lim, dict):
            continue
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and str(req[r]) != str(lim[r])):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


class NodeStrategy(WithStatus):
    def prepare_for_create(self, obj: Obj) -> None:
        # A node registers itself with its status (upstream allows it on create).
        obj.setdefault("status", {})


class ServiceStrategy(WithStatus):
    return_deleted_object = True
    allocator: ServiceAllocator | None = None  # set by the server from its flags

    @staticmethod
    def _drop_type_dependent_fields(new_spec: Obj, old_spec: Obj) -> None:
        """Leaving NodePort/LoadBalancer: values the user did not change and the new type
        does not use are cleared (upstream dropTypeDependentFields)."""
        external = ("NodePort", "LoadBalancer")
        if old_spec.get("type") not in external or new_spec.get("type") in external:
            return
        if new_spec.get("externalTrafficPolicy") == old_spec.get("externalTrafficPolicy") \
                and not new_spec.get("externalIPs"):
            new_spec.pop("externalTrafficPolicy", None)
        old_ports = {p.get("nodePort") for p in old_spec.get("ports") or []
                     if isinstance(p, dict)}
        for port in new_spec.get("ports") or []:
            if isinstance(port, dict) and port.get("nodePort") in old_ports:
                port.pop("nodePort", None)
        for key in ("healthCheckNodePort", "allocateLoadBalancerNodePorts"):
            if new_spec.get(key) == old_spec.get(key):
                new_spec.pop(key, None)

    async def allocate(self, new: Obj, old: Obj | None) -> Any:
        if self.allocator is None:
            return None
        owner = f"{(new.get('metadata') or {}).get('namespace')}/" \
                f"{(new.get('metadata') or {}).get('name')}"
        return await self.allocator.allocate(new, old, owner)

    async def release_allocation(self, allocation: Any) -> None:
        if self.allocator is not None and allocation is not None:
            await self.allocator.release(allocation)

    async def release_replaced(self, old: Obj, new: Obj | None) -> None:
        if self.allocator is not None:
            await self.allocator.release_service(old, new)

    def initial_status(self, obj: Obj) -> Obj:
        return {"loadBalancer": {}}

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        # A PUT that leaves out allocated values keeps them (upstream patchAllocatedValues),
        # so `kubectl replace` of a manifest without clusterIP is not a forbidden change.
        new_spec, old_spec = new.get("spec"), old.get("spec") or {}
        if not isinstance(new_spec, dict):
            return
        self._drop_type_dependent_fields(new_spec, old_spec)
        if new_spec.get("type", "ClusterIP") != "ExternalName":
            for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                if not new_spec.get(key) and old_spec.get(key):
                    new_spec[key] = old_spec[key]
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p
                     for p in old_spec.get("ports") or [] if isinstance(p, dict)}
        for port in new_spec.get("ports") or []:
            if isinstance(port, dict) and not port.get("nodePort"):
                previous = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
                if previous and previous.get("nodePort") and \
                        new_spec.get("type") in ("NodePort", "LoadBalancer"):
                    port["nodePort"] = previous["nodePort"]




class JobStrategy(WorkloadStrategy):
    def after_uid(self, obj: Obj) -> None:
        defaults.default_job_selector(obj)


class ServiceAccountStrategy(Strategy):
    return_deleted_object = True


class AlwaysCreateOnUpdate(Strategy):
    # Upstream lets PUT create these (leader election and endpoint writers rely on it).
    allow_create_on_update = True


_STRATEGIES: dict[str, type[Strategy]] = {
    "namespaces": NamespaceStrategy,
    "pods": PodStrategy,
    "nodes": NodeStrategy,
    "services": ServiceStrategy,
    "endpoints": AlwaysCreateOnUpdate,
    "events": AlwaysCreateOnUpdate,
    "leases": AlwaysCreateOnUpdate,
    "deployments": WorkloadStrategy,
    "replicasets": ReplicaSetStrategy,
    "daemonsets": DaemonSetStrategy,
    "serviceaccounts": ServiceAccountStrategy,
    "jobs": JobStrategy,
}


def strategy_for(resource: Resource) -> Strategy:
    return _STRATEGIES.get(resource.plural, Strategy)(resource)


def validate_binding(binding: Obj) -> list[Cause]:
    target = binding.get("target")
    if not isinstance(target, dict) or not target.get("name") or \
            not isinstance(target["name"], str):
        return [{"reason": "FieldValueRequired", "message": "Required value",
                 "field": "target.name"}]
    return []

