"""The controller-manager process: one API client, shared informers, every controller."""

from __future__ import annotations

import asyncio
import importlib
import logging

from client.component import run_component
from client.events import EventRecorder
from client.informer import SharedInformerFactory
from client.kubeconfig import load_kubeconfig
from client.rest import ApiClient
from controller_manager.base import Controller, ControllerContext
from controller_manager.options import Options

log = logging.getLogger("controller-manager")

# controller name -> "module:Class"; each controller is one module.
CONTROLLER_CLASSES = {
    "replicaset": "controller_manager.replicaset:ReplicaSetController",
    "deployment": "controller_manager.deployment:DeploymentController",
    "daemonset": "controller_manager.daemonset:DaemonSetController",
    "job": "controller_manager.job:JobController",
    "nodelifecycle": "controller_manager.nodelifecycle:NodeLifecycleController",
    "endpointslice": "controller_manager.endpointslice:EndpointSliceController",
    "endpoints": "controller_manager.endpoints:EndpointsController",
    "serviceaccount": "controller_manager.serviceaccount:ServiceAccountController",
    "namespace": "controller_manager.namespace:NamespaceController",
    "garbagecollector": "controller_manager.garbagecollector:GarbageCollector",
    "root-ca-cert-publisher": "controller_manager.rootcacertpublisher:RootCACertPublisher",
    "clusterrole-aggregation":
        "controller_manager.clusterroleaggregation:ClusterRoleAggregationController",
}


def controller_class(name: str) -> type[Controller]:
    module, _, cls = CONTROLLER_CLASSES[name].partition(":")
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]


async def run_controllers(api: ApiClient, options: Options) -> None:
    """Start the chosen controllers on shared informers; runs until cancelled."""
    informers = SharedInformerFactory(api)
    recorder = EventRecorder(api, "controller-manager")
    ctx = ControllerContext(api=api, informers=informers, recorder=recorder, options=options)
    controllers = [controller_class(name)(ctx) for name in options.controllers]
    informers.start_all()
    try:
        await informers.wait_for_cache_sync()
        for c in controllers:
            c.start()
        log.info("started controllers: %s", ", ".join(c.name for c in controllers))
        await asyncio.Event().wait()
    finally:
        for c in controllers:
            await c.stop()
        await informers.stop_all()
        await recorder.flush()


async def main_async(options: Options) -> int:
    async with ApiClient(load_kubeconfig(options.kubeconfig),
                         component="controller-manager") as api:
        return await run_component(
            api, "kube-controller-manager", lambda a: run_controllers(a, options),
            leader_elect=options.leader_elect, identity=options.identity,
            lease_duration=options.lease_duration, renew_deadline=options.renew_deadline,
            retry_period=options.retry_period)
