"""Typed application state shared by the apiserver's handlers."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from apiserver.options import ApiServerOptions
from apiserver.registry.store import Store
from apiserver.storage.cacher import Cacher
from apiserver.storage.etcd3 import Etcd


@dataclass
class AppState:
    options: ApiServerOptions
    etcd: Etcd
    stores: dict[str, Store] = field(default_factory=dict)  # by resource plural
    cachers: list[Cacher] = field(default_factory=list)


APP_STATE = web.AppKey("state", AppState)
