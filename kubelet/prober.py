"""Liveness, readiness and startup probes (upstream pkg/kubelet/prober).

One worker task per (pod, container, probe kind), named `probe:<kind>:<ns>/<pod>/<container>`.
Every `periodSeconds` it looks at the container's newest runtime record (from the kubelet's
runtime cache) and, once `initialDelaySeconds` after the container started, runs the probe:

- results need `successThreshold` / `failureThreshold` consecutive outcomes to change;
- initial results: readiness failure (not ready until proven), liveness success, startup
  none (not started);
- while a startup probe has not succeeded, liveness and readiness probes do not run; once
  it has, it stops probing that container;
- a liveness or startup failure is final for that container: the worker holds until the
  runtime shows a new container (the kubelet kills and restarts on that verdict);
- every failed run is a Warning `Unhealthy` event ("Liveness probe failed: ...");
- a changed result wakes the pod's worker (so Ready flips, or the restart happens, at once).

The threshold logic (`ProbeCounter`) is pure and unit-tested.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubelet.handlers import run_action
from kubelet.runtime.client import RuntimeClient
from kubelet.runtimestate import RUNNING, ContainerRecord

log = logging.getLogger(__name__)
Obj = dict[str, Any]

LIVENESS, READINESS, STARTUP = "liveness", "readiness", "startup"
_SPEC_FIELD = {LIVENESS: "livenessProbe", READINESS: "readinessProbe", STARTUP: "startupProbe"}
_TITLE = {LIVENESS: "Liveness", READINESS: "Readiness", STARTUP: "Startup"}


def probe_settings(probe: Obj) -> tuple[float, float, float, int, int]:
    """(initialDelay, period, timeout, successThreshold, failureThreshold) with defaults."""
    def num(key: str, default: int, minimum: int) -> int:
        value = probe.get(key)
        return max(int(value), minimum) if isinstance(value, int) else default
    return (float(num("initialDelaySeconds", 0, 0)), float(num("periodSeconds", 10, 1)),
            float(num("timeoutSeconds", 1, 1)), num("successThreshold", 1, 1),
            num("failureThreshold", 3, 1))


class ProbeCounter:
    """Consecutive outcomes against the thresholds; `result` is the reported one."""

    def __init__(self, kind: str, success_threshold: int, failure_threshold: int) -> None:
        self.kind = kind
        self.success_threshold = 1 if kind in (LIVENESS, STARTUP) else success_threshold
        self.failure_threshold = failure_threshold
        self.result: bool | None = {READINESS: False, LIVENESS: True, STARTUP: None}[kind]
        self._last: bool | None = None
        self._count = 0

    def observe(self, ok: bool) -> bool:
        """Record one probe outcome; True when `result` changed."""
        if ok == self._last:
            self._count += 1
        else:
            self._last, self._count = ok, 1
        threshold = self.success_threshold if ok else self.failure_threshold
        if self._count < threshold or self.result == ok:
            return False
        self.result = ok
        return True


@dataclass
class ProbeTarget:
    pod: Obj
    container: Obj
    record: ContainerRecord | None  # the newest runtime container of that name
    pod_ip: str


TargetFn = Callable[[str, str], ProbeTarget | None]  # (uid, container name)
EventFn = Callable[[Obj, str, str, str], None]  # (pod, type, reason, message)


class ProbeManager:
    def __init__(self, cri: RuntimeClient, target: TargetFn, event: EventFn,
                 on_change: Callable[[str], None]) -> None:
        self.cri = cri
        self.target = target
        self.event = event
        self.on_change = on_change
        # (kind, container id) -> result
        self._results: dict[tuple[str, str], bool | None] = {}
        self._workers: dict[tuple[str, str, str], asyncio.Task[None]] = {}

    # --- results ---------------------------------------------------------------------------

    def readiness(self, container_id: str) -> bool | None:
        return self._results.get((READINESS, container_id))

    def started(self, container_id: str) -> bool | None:
        key = (STARTUP, container_id)
        if key not in self._results:
            return None
        return self._results[key] is True

    def verdict(self, container_id: str) -> str | None:
        """"liveness"/"startup" when that probe failed for good: restart the container."""
        if self._results.get((LIVENESS, container_id)) is False:
            return LIVENESS
        if self._results.get((STARTUP, container_id)) is False:
            return STARTUP
        return None

    # --- workers ---------------------------------------------------------------------------

    def sync_pod(self, pod: Obj) -> None:
        """Make sure every probe of the pod has its worker."""
        uid = pod["metadata"]["uid"]
        for c in (pod.get("spec") or {}).get("containers") or []:
            for kind, field in _SPEC_FIELD.items():
                key = (uid, c["name"], kind)
                if c.get(field) and key not in self._workers:
                    md = pod["metadata"]
                    name = f"probe:{kind}:{md.get('namespace')}/{md['name']}/{c['name']}"
                    self._workers[key] = asyncio.create_task(
                        self._run(uid, c["name"], kind), name=name)

    async def remove_pod(self, uid: str) -> None:
        tasks = [t for (u, _, _), t in self._workers.items() if u == uid]
        for key in [k for k in self._workers if k[0] == uid]:
            del self._workers[key]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    def forget_containers(self, container_ids: set[str]) -> None:
        for key in [k for k in self._results if k[1] in container_ids]:
            del self._results[key]

    async def stop(self) -> None:
        tasks = list(self._workers.values())
        self._workers.clear()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, uid: str, name: str, kind: str) -> None:
        container_id = ""
        counter: ProbeCounter | None = None
        on_hold = False
        # Spread the first probes of many pods (upstream waits a random part of a period).
        first = True
        while True:
            target = self.target(uid, name)
            if target is None:
                return  # the pod is gone
            probe = target.container.get(_SPEC_FIELD[kind])
            if not probe:
                return
            initial_delay, period, timeout, success, failure = probe_settings(probe)
            if first:
                first = False
                await asyncio.sleep(random.uniform(0, min(period, 1.0)))
                continue
            record = target.record
            if record is None or record.state != RUNNING:
                if record is not None and record.id != container_id and container_id:
                    # The old container ended: its results no longer matter.
                    self._set(kind, container_id, None, uid, drop=True)
                    container_id, counter = "", None
                await asyncio.sleep(min(period, 1.0))
                continue
            if record.id != container_id:
                if container_id:
                    self._set(kind, container_id, None, uid, drop=True)
                container_id, on_hold = record.id, False
                counter = ProbeCounter(kind, success, failure)
                self._set(kind, container_id, counter.result, uid)
            assert counter is not None
            if on_hold or (kind == STARTUP and counter.result is True):
                await asyncio.sleep(period)
                continue
            if kind != STARTUP and target.container.get("startupProbe") and \
                    self._results.get((STARTUP, container_id)) is not True:
                await asyncio.sleep(min(period, 1.0))
                continue
            since_start = time.time() - (record.started_at or record.created_at)
            if since_start < initial_delay:
                await asyncio.sleep(min(period, initial_delay - since_start))
                continue
            started = time.monotonic()
            result = await run_action(self.cri, probe, target.container, container_id,
                                      target.pod_ip, timeout)
            if not result.ok:
                self.event(target.pod, "Warning", "Unhealthy",
                           f"{_TITLE[kind]} probe failed: {result.output}")
            if counter.observe(result.ok):
                log.info("probe result changed pod=%s container=%s probe=%s result=%s",
                         uid, name, kind, counter.result)
                self._set(kind, container_id, counter.result, uid)
                if counter.result is False and kind in (LIVENESS, STARTUP):
                    on_hold = True
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.0, period - elapsed))

    def _set(self, kind: str, container_id: str, result: bool | None, uid: str,
             drop: bool = False) -> None:
        key = (kind, container_id)
        if drop:
            self._results.pop(key, None)
            return
        changed = self._results.get(key, "unset") != result
        self._results[key] = result
        if changed:
            self.on_change(uid)
