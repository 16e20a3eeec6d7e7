"""Typed application state shared by the apiserver's handlers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from apiserver.options import ApiServerOptions
from apiserver.registry.store import Store
from apiserver.storage.cacher import Cacher
from apiserver.storage.etcd3 import Etcd

if TYPE_CHECKING:
    from apiserver.auth.filters import AccessControl
    from apiserver.auth.serviceaccount import TokenIssuer


@dataclass
class AppState:
    options: ApiServerOptions
    etcd: Etcd
    stores: dict[str, Store] = field(default_factory=dict)  # by resource plural
    cachers: list[Cacher] = field(default_factory=list)
    # Service-account tokens: the issuer (None without --service-account-signing-key-file)
    # and the cache-first object lookup the token and admission code reads through.
    token_issuer: TokenIssuer | None = None
    lookup: Any = None
    access: AccessControl | None = None  # authenticator + authorizers (security.py)
    bootstrapped: asyncio.Event = field(default_factory=asyncio.Event)  # default RBAC in place


APP_STATE = web.AppKey("state", AppState)
