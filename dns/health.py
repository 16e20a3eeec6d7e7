"""`/health` (liveness: the process serves DNS) and `/ready` (readiness: the Service and
EndpointSlice caches are synced, so answers are complete) on a small aiohttp server."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

log = logging.getLogger(__name__)


def health_app(alive: Callable[[], bool], ready: Callable[[], bool]) -> web.Application:
    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok\n") if alive() else \
            web.Response(status=503, text="not serving DNS yet\n")

    async def readiness(_: web.Request) -> web.Response:
        return web.Response(text="ok\n") if ready() else \
            web.Response(status=503, text="caches not synced\n")

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/ready", readiness)
    return app


class HealthServer:
    def __init__(self, host: str, port: int, alive: Callable[[], bool],
                 ready: Callable[[], bool]) -> None:
        self.host = host
        self.port = port
        self._runner = web.AppRunner(health_app(alive, ready), access_log=None)

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        log.info("health server on %s port %d (/health, /ready)", self.host, self.port)

    async def close(self) -> None:
        await self._runner.cleanup()
