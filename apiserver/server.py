"""The apiserver application: middlewares, routes, and the lifetime of etcd and caches."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from api import errors
from api.meta import now_rfc3339
from api.resources import CATALOGUE
from apiserver import audit, discovery, handlers, warnings
from apiserver.admission import Admission
from apiserver.allowlist import AllowlistSite, allows_everyone
from apiserver.auth.filters import ACCESS_CONTROL, access_filter
from apiserver.auth.serviceaccount import JWKS_PATH, jwks, openid_configuration
from apiserver.inflight import INFLIGHT, InflightLimits, inflight_filter
from apiserver.options import ApiServerOptions
from apiserver.registry.allocator import ServiceAllocator
from apiserver.registry.kinds import PodStrategy, ServiceStrategy, strategy_for
from apiserver.registry.store import Store
from apiserver.security import (
    StoreLookup,
    build_access_control,
    build_token_issuer,
    rbac_escalation_check,
    server_ssl_context,
)
from apiserver.state import APP_STATE, AppState
from apiserver.storage.cacher import CachedStorage, Cacher
from apiserver.storage.encryption import StorageTransformers, load_encryption_config
from apiserver.storage.etcd3 import Etcd, EtcdError, EtcdTLS
from apiserver.storage.etcd_store import EtcdStorage
from apiserver.storage.interface import KeyExists, Obj

log = logging.getLogger("apiserver")

OPENID_CONFIGURATION_PATH = "/.well-known/openid-configuration"
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@web.middleware
async def status_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every failure leaves as a Kubernetes Status; nothing escapes as a traceback."""
    try:
        return await handler(request)
    except errors.StatusError as e:
        return handlers.status_response(e)
    except web.HTTPException as e:
        if e.status >= 400:
            return handlers.status_response(errors.StatusError(
                e.reason or "error", code=e.status,
                reason={404: "NotFound", 405: "MethodNotAllowed",
                        413: "RequestEntityTooLarge"}.get(e.status, "BadRequest")))
        raise
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except RecursionError:
        return handlers.status_response(errors.BadRequest(
            "the request body is nested too deeply to be processed"))
    except Exception:
        log.exception("internal error serving %s %s", request.method, request.path)
        return handlers.status_response(errors.InternalError(
            "an internal error occurred while serving the request"))


def _not_found() -> errors.NotFound:
    return errors.resource_not_found()


async def serve_api(request: web.Request) -> web.StreamResponse:
    tail = request.match_info.get("tail", "")
    parts = tail.split("/") if tail else []
    if parts and parts[-1] == "":
        parts.pop()
    if not parts:
        if request.method != "GET":
            raise errors.MethodNotAllowed("method not allowed")
        state = request.app[APP_STATE]
        addr = f"{state.options.advertise_address}:{state.options.secure_port}"
        return handlers.json_response(discovery.api_versions(addr))
    if parts[0] != "v1":
        raise _not_found()
    if len(parts) == 1:
        return handlers.json_response(discovery.api_resource_list(CATALOGUE, "", "v1"))
    return await handlers.serve_resource(request, "", "v1", parts[1:])


async def serve_apis(request: web.Request) -> web.StreamResponse:
    tail = request.match_info.get("tail", "")
    parts = tail.split("/") if tail else []
    if parts and parts[-1] == "":
        parts.pop()
    if not parts:
        return handlers.json_response(discovery.api_group_list(CATALOGUE))
    if len(parts) == 1:
        doc = discovery.api_group(CATALOGUE, parts[0])
        if doc is None:
            raise _not_found()
        return handlers.json_response(doc)
    if len(parts) == 2:
        doc = discovery.api_resource_list(CATALOGUE, parts[0], parts[1])
        if doc is None:
            raise _not_found()
        return handlers.json_response(doc)
    if not CATALOGUE.in_group_version(parts[0], parts[1]):
        raise _not_found()
    return await handlers.serve_resource(request, parts[0], parts[1], parts[2:])


async def serve_version(request: web.Request) -> web.Response:
    return handlers.json_response(discovery.version_info())


async def serve_health(request: web.Request) -> web.Response:
    """/healthz, /livez, /readyz: etcd reachable, and for readyz every cache synced."""
    state = request.app[APP_STATE]
    checks: list[tuple[str, bool]] = [("ping", True)]
    try:
        await asyncio.wait_for(state.etcd.status(), 2.0)
        checks.append(("etcd", True))
    except (EtcdError, TimeoutError):
        checks.append(("etcd", False))
    if request.path.startswith("/readyz"):
        checks.append(("informer-sync", all(c._ready.is_set() for c in state.cachers)))
        checks.append(("poststarthook/rbac/bootstrap-roles", state.bootstrapped.is_set()))
    ok = all(passed for _, passed in checks)
    if "verbose" in request.query:
        lines = [f"[{'+' if passed else '-'}]{name} {'ok' if passed else 'failed'}"
                 for name, passed in checks]
        check = request.path.strip("/").split("/")[0]
        lines.append(f"{check} check {'passed' if ok else 'failed'}")
        return web.Response(text="\n".join(lines) + "\n", status=200 if ok else 500)
    return web.Response(text="ok" if ok else "failed", status=200 if ok else 500)


OPENAPI = web.AppKey("openapi", object)


def _openapi(request: web.Request) -> Any:
    """The documents are computed once per process, on first use (they never change)."""
    docs = request.app.get(OPENAPI)
    if docs is None:
        from apiserver.openapi import OpenAPIDocuments
        docs = OpenAPIDocuments(CATALOGUE)
        request.app[OPENAPI] = docs
    return docs


def _document(request: web.Request, body: bytes, etag: str) -> web.Response:
    quoted = f'"{etag}"'
    if request.headers.get("If-None-Match") in (quoted, etag):
        return web.Response(status=304, headers={"ETag": quoted})
    resp = web.Response(body=body, content_type="application/json")
    resp.headers["ETag"] = quoted
    return resp


async def serve_openapi_v2(request: web.Request) -> web.Response:
    accept = request.headers.get("Accept", "")
    if accept and not any(t in accept for t in ("json", "*/*")):
        raise errors.StatusError("only application/json is served for /openapi/v2", code=406,
                                 reason="NotAcceptable")
    body, etag = _openapi(request).v2()
    return _document(request, body, etag)


async def serve_openapi_v3(request: web.Request) -> web.Response:
    docs = _openapi(request)
    tail = request.match_info.get("tail", "").strip("/")
    if not tail:
        body, etag = docs.v3_index()
        return _document(request, body, etag)
    found = docs.v3_path(tail)
    if found is None:
        raise _not_found()
    body, etag = found
    wanted = request.query.get("hash")
    if wanted and wanted != etag:
        # A stale link: send the client to the current document, as upstream does.
        raise web.HTTPMovedPermanently(f"/openapi/v3/{tail}?hash={etag}")
    resp = _document(request, body, etag)
    resp.headers["Cache-Control"] = "public, immutable" if wanted else "no-cache, private"
    return resp


async def namespace_lookup_for(state: AppState) -> Any:
    async def lookup(name: str) -> Obj | None:
        cacher = state.stores["namespaces"].cacher
        key = CATALOGUE.by_plural("namespaces").storage_key(None, name)  # type: ignore[union-attr]
        found = cacher.get_cached(key)
        if found is not None:
            return found
        try:
            return await state.stores["namespaces"].get(None, name)
        except errors.NotFound:
            return None
    return lookup


async def ensure_system_namespaces(state: AppState) -> None:
    store = state.stores["namespaces"]
    for name in SYSTEM_NAMESPACES:
        obj = {"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": name,
                            "labels": {"kubernetes.io/metadata.name": name}}}
        try:
            await store.create(None, obj)
        except (errors.AlreadyExists, KeyExists):
            pass


async def ensure_kubernetes_service(state: AppState) -> None:
    """`default/kubernetes`: the first address of the service range, pointing at this
    apiserver (its Endpoints and EndpointSlice are kept by the apiserver, as upstream)."""
    opts = state.options
    services = state.stores["services"]
    ip = services.strategy.allocator.ips.nth(1)  # type: ignore[attr-defined]
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "kubernetes", "namespace": "default",
                        "labels": {"component": "apiserver", "provider": "kubernetes"}},
           "spec": {"type": "ClusterIP", "clusterIP": ip, "sessionAffinity": "None",
                    "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                               "targetPort": opts.secure_port}]}}
    try:
        await services.get("default", "kubernetes")
    except errors.NotFound:
        await services.create("default", svc)
    advertise = ipaddress.ip_address(opts.advertise_address)
    if advertise.is_loopback or advertise.is_link_local or advertise.is_unspecified:
        # Endpoints may not point at such addresses (upstream validation); a cluster bound
        # to 127.0.0.1 has no in-cluster route to the apiserver until --advertise-address
        # names a reachable address.
        log.info("advertise address %s is loopback, link-local or unspecified: not "
                 "publishing kubernetes endpoints", opts.advertise_address)
        return
    port = {"name": "https", "port": opts.secure_port, "protocol": "TCP"}
    endpoints = {"apiVersion": "v1", "kind": "Endpoints",
                 "metadata": {"name": "kubernetes", "namespace": "default",
                              "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
                 "subsets": [{"addresses": [{"ip": opts.advertise_address}],
                              "ports": [port]}]}
    slice_ = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
              "metadata": {"name": "kubernetes", "namespace": "default",
                           "labels": {"kubernetes.io/service-name": "kubernetes"}},
              "addressType": "IPv4",
              "endpoints": [{"addresses": [opts.advertise_address],
                             "conditions": {"ready": True}}],
              "ports": [port]}
    for plural, obj in (("endpoints", endpoints), ("endpointslices", slice_)):
        try:
            await state.stores[plural].update("default", "kubernetes", obj)
        except errors.NotFound:
            await state.stores[plural].create("default", obj)


async def ensure_bootstrap_policy(state: AppState) -> None:
    """Upstream's default roles and bindings, created when missing and given back rules
    or subjects they lost while `rbac.authorization.kubernetes.io/autoupdate` is true (the
    RBAC post-start hook)."""
    from apiserver.auth.bootstrap_policy import bootstrap_objects, reconcile
    for plural, wanted in bootstrap_objects():
        store = state.stores[plural]
        md = wanted["metadata"]
        ns = md.get("namespace")
        try:
            existing = await store.get(ns, md["name"])
        except errors.NotFound:
            with contextlib.suppress(errors.AlreadyExists, KeyExists):
                await store.create(ns, wanted)
            continue
        updated = reconcile(existing, wanted)
        if updated is not None:
            await store.update(ns, md["name"], updated)


async def compact_periodically(state: AppState) -> None:
    """Keep etcd's history bounded, as kube-apiserver does (compact to the revision seen one
    interval ago, so watchers and paginated lists of the last interval keep working)."""
    interval = state.options.etcd_compaction_interval
    if interval <= 0:
        return
    previous = 0
    while True:
        await asyncio.sleep(interval)
        try:
            current = await state.etcd.current_revision()
            if previous:
                await state.etcd.compact(previous)
                log.info("compacted etcd to revision %d", previous)
            previous = current
        except EtcdError as e:
            log.warning("etcd compaction failed: %s", e)


async def lifecycle(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: connect etcd, start one watch cache per resource, stop all at exit."""
    state = app[APP_STATE]
    etcd_storage = EtcdStorage(state.etcd, storage_transformers(state.options))
    lookup = await namespace_lookup_for(state)
    allocator = ServiceAllocator(state.etcd, state.options.service_cluster_ip_range,
                                 state.options.service_node_port_range)
    admission = Admission(state.lookup, rbac_escalation_check(state))
    for res in CATALOGUE.resources:
        if not res.stored:
            continue
        cacher = Cacher(etcd_storage, res.storage_prefix(), res.plural,
                        state.options.default_watch_cache_size)
        state.cachers.append(cacher)
        strategy = strategy_for(res)
        if isinstance(strategy, ServiceStrategy):
            strategy.allocator = allocator
        if isinstance(strategy, PodStrategy):
            strategy.not_ready_toleration_seconds = \
                state.options.default_not_ready_toleration_seconds
            strategy.unreachable_toleration_seconds = \
                state.options.default_unreachable_toleration_seconds
        # Events expire through etcd leases (--event-ttl), as upstream's event registry.
        ttl = int(state.options.event_ttl) if res.plural == "events" else 0
        store = Store(res, strategy, CachedStorage(etcd_storage, cacher, ttl=ttl), cacher,
                      lookup)
        store.admission = admission
        state.stores[res.plural] = store
    for cacher in state.cachers:
        cacher.start()
    background = [asyncio.create_task(_bootstrap(state), name="bootstrap-namespaces"),
                  asyncio.create_task(compact_periodically(state), name="etcd-compactor")]
    try:
        yield
    finally:
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for cacher in state.cachers:
            await cacher.stop()
        await state.etcd.close()


async def _bootstrap(state: AppState) -> None:
    delay = 0.2
    while True:
        try:
            await ensure_system_namespaces(state)
            await ensure_kubernetes_service(state)
            await ensure_bootstrap_policy(state)
            state.bootstrapped.set()
            return
        except errors.StatusError as e:
            log.warning("bootstrapping system objects: %s", e.message)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5)


async def close_watches(app: web.Application) -> None:
    """on_shutdown: end every open watch stream, so shutdown does not wait for timeouts."""
    for cacher in app[APP_STATE].cachers:
        for watcher in list(cacher.watchers):
            watcher.close("apiserver shutting down")


def storage_transformers(options: ApiServerOptions) -> StorageTransformers | None:
    """What --encryption-provider-config encrypts, by etcd key prefix (None: nothing)."""
    if not options.encryption_provider_config:
        return None
    config = load_encryption_config(options.encryption_provider_config)
    transformers = config.for_storage(
        (res.group, res.plural, res.storage_prefix()) for res in CATALOGUE.resources
        if res.stored)
    for prefix, t in sorted(transformers.by_prefix.items()):
        log.info("encryption at rest: %s written with %s", prefix, t.writer)
    return transformers


def _etcd(options: ApiServerOptions) -> Etcd:
    tls = None
    if options.etcd_cafile:
        tls = EtcdTLS(options.etcd_cafile, options.etcd_certfile, options.etcd_keyfile)
    return Etcd(options.etcd_servers, tls=tls)


def create_app(options: ApiServerOptions) -> web.Application:
    # The body limit is enforced by handlers.read_body, which answers with a Status.
    # status_errors is outermost so a 401/403 from the access filter is a Status too.
    # inflight_filter runs after authentication: system:masters is exempt from its limits.
    # warnings.collect is outside them so Warning headers reach error answers too.
    # audit.audit_filter is outermost: it records every final code, 401/403 included.
    app = web.Application(middlewares=[audit.audit_filter, warnings.collect, status_errors,
                                       access_filter,
                                       inflight_filter],
                          client_max_size=1024 ** 3)
    app[INFLIGHT] = InflightLimits.of(options)
    state = AppState(options=options, etcd=_etcd(options))
    state.token_issuer = build_token_issuer(options)
    state.lookup = StoreLookup(state)
    app[APP_STATE] = state
    state.access = build_access_control(options, state)
    app[ACCESS_CONTROL] = state.access
    app.cleanup_ctx.append(lifecycle)
    audit.install(app, audit.AuditOptions(
        options.audit_policy_file, options.audit_log_path, options.audit_log_maxsize,
        options.audit_log_maxbackup, options.audit_log_maxage))
    app.on_shutdown.append(close_watches)
    app.on_response_prepare.append(warnings.on_response_prepare)
    app.router.add_get("/version", serve_version)
    for path in ("/healthz", "/livez", "/readyz"):
        app.router.add_get(path, serve_health)
        app.router.add_get(path + "/{check:.*}", serve_health)
    app.router.add_get("/openapi/v2", serve_openapi_v2)
    app.router.add_get("/openapi/v3", serve_openapi_v3)
    app.router.add_get("/openapi/v3/{tail:.*}", serve_openapi_v3)
    app.router.add_route("*", "/api", serve_api)
    app.router.add_route("*", "/api/{tail:.*}", serve_api)
    app.router.add_route("*", "/apis", serve_apis)
    app.router.add_route("*", "/apis/{tail:.*}", serve_apis)
    app.router.add_get(OPENID_CONFIGURATION_PATH, serve_openid_configuration)
    app.router.add_get(JWKS_PATH, serve_jwks)
    return app


def _issuer_documents(state: AppState) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The OIDC discovery documents, or None when this apiserver issues no tokens or its
    issuer is not an https URL (upstream then serves neither)."""
    opts = state.options
    if state.token_issuer is None or not opts.service_account_issuer:
        return None
    keys = [Path(f).read_bytes() for f in (opts.service_account_key_files or
                                           [opts.service_account_signing_key_file])]
    issuer = opts.service_account_issuer[0]
    try:
        config = openid_configuration(issuer, f"{issuer.rstrip('/')}{JWKS_PATH}", keys)
    except ValueError:
        return None
    return config, jwks(keys)


async def serve_openid_configuration(request: web.Request) -> web.Response:
    docs = _issuer_documents(request.app[APP_STATE])
    if docs is None:
        raise _not_found()
    return handlers.json_response(docs[0])


async def serve_jwks(request: web.Request) -> web.Response:
    docs = _issuer_documents(request.app[APP_STATE])
    if docs is None:
        raise _not_found()
    resp = web.Response(body=orjson.dumps(docs[1]), content_type="application/jwk-set+json")
    return resp


def extra_listen_addresses(options: ApiServerOptions) -> list[str]:
    """The advertise address, when the bind address is one specific other address."""
    bind, advertise = options.bind_address, options.advertise_address
    if bind in ("0.0.0.0", "::", "") or advertise in (bind, "0.0.0.0", "::", ""):
        return []
    return [advertise]


@dataclass(frozen=True)
class Listener:
    """One socket the apiserver serves on. `role` is "public" (the allowlist applies),
    "private" (the advertise address with --endpoint-private-access) or "internal"
    (--internal-port, the control plane's own)."""

    address: str
    port: int
    role: str

    @property
    def filtered(self) -> bool:
        return self.role == "public"


def listeners(options: ApiServerOptions) -> list[Listener]:
    """Where to serve (docs/security.md "Endpoint access"): the bind address, the advertise
    address when it is another one, and --internal-port on loopback. A listener on the
    advertise address is the private endpoint when private access is on; every other one
    but the internal listener belongs to the public endpoint."""
    def role(address: str) -> str:
        private = options.endpoint_private_access and address == options.advertise_address
        return "private" if private else "public"

    port = options.secure_port
    out = [Listener(options.bind_address, port, role(options.bind_address))]
    out += [Listener(a, port, role(a)) for a in extra_listen_addresses(options)]
    if options.internal_port:
        out.append(Listener("127.0.0.1", options.internal_port, "internal"))
    return out


def _site(runner: web.AppRunner, listener: Listener, options: ApiServerOptions,
          tls: ssl.SSLContext) -> web.BaseSite:
    if listener.filtered and not allows_everyone(options.public_access_cidrs,
                                                 listener.address):
        return AllowlistSite(runner, listener.address, listener.port,
                             networks=options.public_access_cidrs, ssl_context=tls)
    return web.TCPSite(runner, listener.address, listener.port, reuse_address=True,
                       backlog=1024, ssl_context=tls)


async def run(options: ApiServerOptions) -> None:
    app = create_app(options)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    tls = server_ssl_context(options)
    cidrs = ",".join(str(n) for n in options.public_access_cidrs)
    for i, listener in enumerate(listeners(options)):
        where = f"https://{listener.address}:{listener.port}"
        extra = f", allowing {cidrs}" if listener.filtered else ""
        try:
            await _site(runner, listener, options, tls).start()
        except OSError as e:
            if i == 0:
                raise  # the bind address is the server's own: fail as before
            # Pods reach the apiserver through the `kubernetes` Service, whose endpoint is
            # the advertise address; a missing one is worth a line, not a crash.
            log.warning("cannot listen on %s (%s endpoint): %s", where, listener.role, e)
            continue
        log.info("serving on %s (%s endpoint%s) at %s", where, listener.role, extra,
                 now_rfc3339())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
