"""Writing pod statuses to the apiserver (upstream pkg/kubelet/status/status_manager.go).

Pod workers hand their freshly computed status to `set_status` and move on; one task
(`status-manager`) writes what changed through the `pods/status` subresource, a few pods at
a time, and retries failed writes on its next round (at least every 10 s). A write is a
JSON merge patch carrying `metadata.uid`, so it can only ever land on the very pod it was
computed for (a pod deleted and recreated under the same name gets a 409, not our status);
a pod that is gone is forgotten. Statuses equal to what the API already shows are not
written. A terminal phase is never overwritten by a non-terminal one.

Static pods have no API object of their own: their status goes to their mirror pod (the
kubelet's `api_pod` callback maps one to the other).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Callable
from typing import Any

from api.errors import Conflict, NotFound, StatusError
from api.resources import CATALOGUE
from client.rest import ApiClient, ApiConnectionError
from kubelet.status import KUBELET_CONDITIONS, TERMINAL_PHASES

log = logging.getLogger(__name__)
Obj = dict[str, Any]
PODS = CATALOGUE.require("pods")
RESYNC = 10.0
CONCURRENCY = 8


def base_status(api_status: Obj | None, latest: Obj | None) -> Obj:
    """The "old" status to compute the next one from: the API's, but with what this kubelet
    already decided (start time, its conditions' transition times) when the API has not
    caught up with our last write yet."""
    base = copy.deepcopy(api_status or {})
    if not latest:
        return base
    for key in ("startTime", "podIP", "podIPs"):
        if key not in base and key in latest:
            base[key] = copy.deepcopy(latest[key])
    if latest.get("phase") in TERMINAL_PHASES and base.get("phase") not in TERMINAL_PHASES:
        base["phase"] = latest["phase"]
    mine = {c["type"]: c for c in latest.get("conditions") or [] if c.get("type")
            in KUBELET_CONDITIONS}
    others = [c for c in base.get("conditions") or [] if c.get("type") not in KUBELET_CONDITIONS]
    base["conditions"] = [*mine.values(), *others]
    return base


def normalized(value: Any) -> Any:
    """For comparing with what the API returns: nulls dropped."""
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [normalized(v) for v in value]
    return value


def same_status(api_status: Obj | None, desired: Obj) -> bool:
    return bool(normalized(api_status or {}) == normalized(desired))


def status_patch(current: Obj, desired: Obj) -> Obj:
    """A merge patch turning `current` into `desired` (keys we dropped become null)."""
    patch: Obj = dict(desired)
    for key in current:
        if key not in desired:
            patch[key] = None
    return patch


class StatusManager:
    def __init__(self, api: ApiClient, api_pod: Callable[[str], Obj | None]) -> None:
        self.api = api
        self.api_pod = api_pod  # uid -> the pod's API object (the mirror pod for static)
        self._desired: dict[str, Obj] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._locks: dict[str, asyncio.Lock] = {}

    def latest(self, uid: str) -> Obj | None:
        return self._desired.get(uid)

    def set_status(self, uid: str, status: Obj) -> None:
        old = self._desired.get(uid)
        if old is not None and old.get("phase") in TERMINAL_PHASES and \
                status.get("phase") not in TERMINAL_PHASES:
            status = {**status, "phase": old["phase"]}
        if old == status:
            return  # unchanged: the run loop rewrites it if the API drifted
        self._desired[uid] = status
        self._dirty.add(uid)
        self._wake.set()

    def resync(self, uid: str) -> None:
        """Check the pod's API object against our status soon (it just (re)appeared)."""
        if uid in self._desired:
            self._dirty.add(uid)
            self._wake.set()

    def forget(self, uid: str) -> None:
        self._desired.pop(uid, None)
        self._dirty.discard(uid)
        self._locks.pop(uid, None)

    async def sync_now(self, uid: str) -> bool:
        """Write the pod's status at once; True when the API has it."""
        return await self._write(uid)

    async def run(self) -> None:
        while True:
            # Soon again while something waits for its API object (a mirror pod being
            # created); otherwise when woken, or every RESYNC seconds.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0 if self._dirty else RESYNC)
            self._wake.clear()
            dirty = list(self._dirty)
            for start in range(0, len(dirty), CONCURRENCY):
                await asyncio.gather(*(self._write(uid)
                                       for uid in dirty[start:start + CONCURRENCY]))
            # If the API shows something else than we want (another writer, or a write the
            # API had not shown yet), write again.
            for uid, status in list(self._desired.items()):
                api_obj = self.api_pod(uid)
                if api_obj is not None and uid not in self._dirty and \
                        not same_status(api_obj.get("status"), status):
                    self._dirty.add(uid)

    async def _write(self, uid: str) -> bool:
        lock = self._locks.setdefault(uid, asyncio.Lock())
        async with lock:
            status = self._desired.get(uid)
            if status is None:
                self._dirty.discard(uid)
                return False
            target = self.api_pod(uid)
            if target is None:
                return False  # not in the API (yet): keep it dirty
            md = target["metadata"]
            current = target.get("status") or {}
            if same_status(current, status):
                self._dirty.discard(uid)
                return True
            if current.get("phase") in TERMINAL_PHASES and \
                    status.get("phase") not in TERMINAL_PHASES:
                status = {**status, "phase": current["phase"]}
            patch = {"metadata": {"uid": md["uid"]}, "status": status_patch(current, status)}
            try:
                await self.api.patch(PODS, md["name"], patch, md.get("namespace"), "merge",
                                     subresource="status")
            except NotFound:
                self._dirty.discard(uid)
                return False
            except Conflict as e:
                log.info("status not written (pod replaced?) pod=%s/%s: %s",
                         md.get("namespace"), md["name"], e)
                self._dirty.discard(uid)
                return False
            except (StatusError, ApiConnectionError) as e:
                log.warning("status write failed pod=%s/%s: %s", md.get("namespace"),
                            md["name"], e)
                return False
            if self._desired.get(uid) is status or self._desired.get(uid) == status:
                self._dirty.discard(uid)
            log.debug("status written pod=%s/%s phase=%s", md.get("namespace"), md["name"],
                      status.get("phase"))
            return True
