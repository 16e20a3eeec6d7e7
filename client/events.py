"""Event recording, as client-go's EventRecorder with its correlator: an event that repeats
(same object, type, reason, message, source) bumps `count` and `lastTimestamp` of the
existing Event instead of creating another."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from typing import Any

from api.errors import NotFound, StatusError
from api.meta import now_rfc3339
from api.resources import CATALOGUE
from client.rest import ApiClient, ApiConnectionError

log = logging.getLogger(__name__)

EVENTS = CATALOGUE.require("events")
KNOWN_EVENTS_LIMIT = 4096
Obj = dict[str, Any]


def object_reference(obj: Obj) -> Obj:
    md = obj.get("metadata") or {}
    ref = {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""),
           "name": md.get("name", ""), "uid": md.get("uid", ""),
           "resourceVersion": md.get("resourceVersion", "")}
    if md.get("namespace"):
        ref["namespace"] = md["namespace"]
    return ref


class EventRecorder:
    """Records Events for one component; writes happen in the background, never blocking
    (and never failing) the controller that reports them."""

    def __init__(self, api: ApiClient, component: str, host: str = "") -> None:
        self.api = api
        self.component = component
        self.host = host
        # correlation key -> (event name, count), most recent last; bounded like upstream's
        # LRU so a long-running component does not grow without end.
        self._known: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        task = asyncio.create_task(self._record(obj, type_, reason, message),
                                   name=f"event:{reason}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """Wait for pending writes (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _remember(self, key: str, name: str, count: int) -> None:
        self._known[key] = (name, count)
        self._known.move_to_end(key)
        while len(self._known) > KNOWN_EVENTS_LIMIT:
            self._known.popitem(last=False)

    async def _record(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        ref = object_reference(obj)
        namespace = ref.get("namespace") or "default"
        key = "|".join((ref["kind"], namespace, ref["name"], ref["uid"], type_, reason, message,
                        self.component))
        now = now_rfc3339()
        try:
            if key in self._known:
                name, count = self._known[key]
                try:
                    await self.api.patch(EVENTS, name, {"count": count + 1, "lastTimestamp": now},
                                         namespace)
                    self._known[key] = (name, count + 1)
                    self._known.move_to_end(key)
                    return
                except NotFound:
                    del self._known[key]
            digest = hashlib.sha1(key.encode()).hexdigest()[:10]
            name = f"{ref['name']}.{digest}"[:253]
            body = {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": ref, "reason": reason, "message": message, "type": type_,
                "source": {"component": self.component, **({"host": self.host}
                                                           if self.host else {})},
                "firstTimestamp": now, "lastTimestamp": now, "count": 1,
                "reportingComponent": self.component, "reportingInstance": self.host,
            }
            try:
                await self.api.create(EVENTS, body, namespace)
                self._remember(key, name, 1)
            except StatusError as e:
                if e.reason != "AlreadyExists":
                    raise
                # Another process (or our previous life) made it: count on from its count.
                existing = await self.api.get(EVENTS, name, namespace)
                count = int(existing.get("count") or 1) + 1
                await self.api.patch(EVENTS, name, {"count": count, "lastTimestamp": now},
                                     namespace)
                self._remember(key, name, count)
        except (StatusError, ApiConnectionError) as e:
            log.warning("could not record event %s for %s/%s: %s", reason, namespace,
                        ref["name"], e)
