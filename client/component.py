"""Running a leader-elected component (scheduler, controller-manager) as a process: signals,
the Lease, and a clean stop of whatever the leader started."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from client.leaderelection import LeaderElector
from client.rest import ApiClient

log = logging.getLogger(__name__)

# run_as_leader(api) runs the component until cancelled, cleaning up in its finally blocks.
LeaderBody = Callable[[ApiClient], Coroutine[Any, Any, None]]


def default_identity() -> str:
    """`<hostname>_<uuid>`, as upstream components name themselves in their Lease."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


async def run_component(api: ApiClient, lease_name: str, body: LeaderBody, *,
                        leader_elect: bool = True, identity: str = "",
                        lease_duration: float = 15.0, renew_deadline: float = 10.0,
                        retry_period: float = 2.0) -> int:
    """Run `body` while holding the Lease kube-system/<lease_name> (or at once without
    leader election) until SIGINT/SIGTERM. Losing the Lease ends the process (exit 1), as
    upstream components do, so the supervisor restarts it as a fresh standby."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    lost = asyncio.Event()

    if leader_elect:
        elector = LeaderElector(api, "kube-system", lease_name, identity or default_identity(),
                                lease_duration=lease_duration, renew_deadline=renew_deadline,
                                retry_period=retry_period)

        async def leading() -> None:
            log.info("%s: became leader as %s", lease_name, elector.identity)
            await body(api)

        def stopped() -> None:
            if stop.is_set():
                return  # our own shutdown, not a lost lease
            log.warning("%s: lost the lease", lease_name)
            lost.set()

        main = asyncio.create_task(elector.run(leading, stopped), name=f"{lease_name}:elector")
    else:
        main = asyncio.create_task(body(api), name=f"{lease_name}:main")
    waiters = [asyncio.create_task(stop.wait(), name="wait-signal"),
               asyncio.create_task(lost.wait(), name="wait-lost")]
    done, _ = await asyncio.wait([main, *waiters], return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if main in done and main.exception() is not None:
        log.error("%s failed: %s", lease_name, main.exception())
        code = 1
    elif lost.is_set():
        code = 1
    for task in (main, *waiters):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    log.info("%s: stopped (pid %d)", lease_name, os.getpid())
    return code
