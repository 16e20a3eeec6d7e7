"""The /healthz server (upstream's :10256): healthy while rules are current.

200 when this kube-proxy stands by, or when its last sync succeeded and no change has been
waiting longer than twice the sync period; 503 otherwise. The body is JSON as upstream's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web


@dataclass
class HealthState:
    role: str = "starting"  # starting | standby | programmer
    mode: str = ""
    last_synced: float | None = None  # wall clock of the last successful sync
    pending_since: float | None = None  # wall clock of the oldest change not yet applied


def _iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def healthy(state: HealthState, period: float, now: float) -> bool:
    if state.role != "programmer":
        return True
    if state.last_synced is None:
        return False
    # A change waiting longer than two periods means syncs are failing or stuck.
    return state.pending_since is None or now - state.pending_since <= 2 * max(period, 1.0)


def make_app(state: HealthState, period: float,
             clock: Callable[[], float] = time.time) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        now = clock()
        ok = healthy(state, period, now)
        body = {"lastUpdated": _iso(state.last_synced), "currentTime": _iso(now),
                "role": state.role, "mode": state.mode}
        return web.Response(status=200 if ok else 503, text=json.dumps(body),
                            content_type="application/json")

    async def livez(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", livez)
    return app
