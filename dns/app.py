"""The DNS server process: informers on Services and EndpointSlices, the cluster zone over
their stores, the DNS sockets and the health server, all stopped when `stop` is set."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from api.resources import CATALOGUE
from client.informer import Informer, SharedInformerFactory
from client.rest import ApiClient
from dns.cache import AnswerCache
from dns.forward import Forwarder
from dns.handler import QueryHandler
from dns.health import HealthServer
from dns.options import Options
from dns.records import SERVICE_NAME_LABEL, ClusterState, ClusterZone
from dns.server import DnsServer

log = logging.getLogger(__name__)


SERVICES = CATALOGUE.require("services")
ENDPOINTSLICES = CATALOGUE.require("endpointslices")


async def run(opts: Options, api: ApiClient, stop: asyncio.Event) -> int:
    """Serve until `stop` is set; 1 when the sockets cannot be bound."""
    factory = SharedInformerFactory(api)
    services = factory.informer_for(SERVICES)
    # Only slices that belong to a Service have DNS names.
    slices = factory.informer_for(ENDPOINTSLICES, label_selector=SERVICE_NAME_LABEL)
    state = ClusterState(services.store, slices.store)
    for informer in (services, slices):
        informer.add_handler(state.changed, state.changed, state.changed)

    def synced() -> bool:
        return services.has_synced and slices.has_synced

    forwarder = Forwarder(opts.upstreams, opts.upstream_timeout) if opts.upstreams else None
    cache = AnswerCache(opts.cache_size, opts.cache_max_ttl, opts.cache_negative_ttl) \
        if forwarder is not None and opts.cache_size > 0 else None
    handler = QueryHandler(ClusterZone(state, opts.cluster_domain, opts.ttl), forwarder,
                           ready=synced, cache=cache)
    server = DnsServer(handler, opts.bind_address, opts.port)
    serving = False
    health = HealthServer(opts.bind_address, opts.health_port, lambda: serving, synced) \
        if opts.health_port else None
    if opts.ignored_upstreams:
        log.warning("ignoring upstreams that are this server itself: %s",
                    ", ".join(map(str, opts.ignored_upstreams)))
    log.info("cluster domain %s, upstreams %s", opts.cluster_domain,
             ", ".join(map(str, opts.upstreams)) or "none (NXDOMAIN outside the cluster)")
    if cache is not None:
        log.info("caching upstream answers: %d entries, positive for at most %d s, "
                 "negative for at most %d s", cache.size, cache.max_ttl, cache.negative_ttl)

    factory.start_all()
    waiter: asyncio.Task[None] | None = None
    try:
        try:
            await server.start()
            if health is not None:
                await health.start()
        except OSError as e:
            log.error("cannot serve on %s (dns port %d, health port %d): %s",
                      opts.bind_address, opts.port, opts.health_port, e)
            return 1
        serving = True
        waiter = asyncio.create_task(_announce_sync(services, slices), name="dns:wait-sync")
        await stop.wait()
        log.info("stopping")
        return 0
    finally:
        if waiter is not None:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
        await server.close()
        await handler.close()
        if health is not None:
            await health.close()
        await factory.stop_all()


async def _announce_sync(services: Informer, slices: Informer) -> None:
    await asyncio.gather(services.wait_synced(), slices.wait_synced())
    log.info("caches synced: services=%d endpointslices=%d; ready", len(services.store),
             len(slices.store))
