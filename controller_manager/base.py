"""The shape every controller has (client-go's sample-controller): informers feed a keyed
work queue; workers call `sync(key)`, which reads from the informers' caches, treats a
missing object as done, and writes only through the apiserver, on copies."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from api.resources import Resource
from client.events import EventRecorder
from client.informer import Informer, SharedInformerFactory, meta_key
from client.rest import ApiClient
from client.workqueue import WorkQueue, run_workers

Obj = dict[str, Any]


@dataclass
class ControllerContext:
    """What every controller gets: one API client, shared informers, an event recorder."""

    api: ApiClient
    informers: SharedInformerFactory
    recorder: EventRecorder
    options: Any  # controller_manager.options.Options


class Controller(abc.ABC):
    """Subclasses set `name`, register informer handlers in __init__, and define sync()."""

    name = "controller"
    workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.api = ctx.api
        self.recorder = ctx.recorder
        self.queue: WorkQueue[str] = WorkQueue(name=self.name)
        self.log = logging.getLogger(f"controller.{self.name}")
        self._task: asyncio.Task[None] | None = None

    def informer(self, resource: Resource) -> Informer:
        return self.ctx.informers.informer_for(resource)

    def enqueue(self, obj: Obj) -> None:
        self.queue.add(meta_key(obj))

    def enqueue_keys(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.queue.add(key)

    @abc.abstractmethod
    async def sync(self, key: str) -> None:
        """Make the world match the object under `key` (missing object: done)."""

    def start(self) -> None:
        self._task = asyncio.create_task(
            run_workers(self.queue, self.sync, self.workers, self.name),
            name=f"controller:{self.name}")

    async def stop(self) -> None:
        self.queue.shut_down()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
