"""The REST layer: Kubernetes paths and verbs onto the registry stores.

Paths are parsed here rather than by a route table because Kubernetes paths are ambiguous
by shape (`/api/v1/namespaces/x/status` is a subresource, `/api/v1/namespaces/x/pods` a
collection), and one parser keeps that decision in one place.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

import yaml
from aiohttp import web

from api import errors, k8sproto
from api.codec import DecodeError, dumps, loads
from api.resources import CATALOGUE, Resource
from apiserver import fieldvalidation, yamlbody
from apiserver.registry import subresources
from apiserver.registry.store import PATCH_TYPES, DeleteOptions, ListOptions, Store
from apiserver.state import APP_STATE
from apiserver.storage.cacher import WatchClosed
from apiserver.storage.interface import Preconditions

log = logging.getLogger(__name__)

MAX_BODY = 3 * 1024 * 1024
REQUEST_BODY = web.RequestKey("request_body", bytes)  # as read by read_body
JSON = "application/json"


@dataclass
class Target:
    resource: Resource
    namespace: str | None
    name: str | None
    subresource: str | None
    watch: bool  # the legacy /watch/ path prefix


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(body), status=status, content_type=JSON)


def status_response(err: errors.StatusError) -> web.Response:
    resp = json_response(err.status(), err.code)
    if err.retry_after:
        resp.headers["Retry-After"] = str(err.retry_after)
    return resp


def parse_target(group: str, version: str, parts: list[str]) -> Target:
    """parts: the path segments after /api/v1 or /apis/<group>/<version>."""
    watch = bool(parts) and parts[0] == "watch"
    if watch:
        parts = parts[1:]
    if not parts:
        raise errors.resource_not_found()
    namespace: str | None = None
    if parts[0] == "namespaces" and len(parts) >= 3:
        candidate = CATALOGUE.lookup(group, version, parts[2])
        if candidate is not None and candidate.namespaced:
            namespace, parts = parts[1], parts[2:]
    resource = CATALOGUE.lookup(group, version, parts[0])
    if resource is not None and len(parts) > 3 and parts[2] == "proxy" \
            and "proxy" in resource.subresources:
        parts = parts[:3]  # the rest is the path to proxy to (httpproxy reads it)
    if resource is None or len(parts) > 3:
        raise errors.resource_not_found()
    name = parts[1] if len(parts) > 1 else None
    sub = parts[2] if len(parts) > 2 else None
    if sub is not None and sub not in resource.subresources:
        raise errors.resource_not_found()
    if name == "":
        raise errors.resource_not_found()
    return Target(resource, namespace, name, sub, watch)


async def read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise errors.RequestEntityTooLarge("the request body is too large: limit is 3MiB")
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_BODY:
            raise errors.RequestEntityTooLarge("the request body is too large: limit is 3MiB")
        chunks.append(chunk)
    body = b"".join(chunks)
    request[REQUEST_BODY] = body  # the audit log's requestObject (apiserver/audit.py)
    return body


def decode_body(raw: bytes, content_type: str, kind: str | None = None) -> Any:
    ctype = content_type.split(";")[0].strip().lower()
    if k8sproto.is_protobuf(ctype):
        try:
            return k8sproto.decode(raw, expected_kind=kind)
        except k8sproto.ProtobufError as e:
            if kind is not None and kind not in k8sproto.supported_kinds():
                raise errors.UnsupportedMediaType(
                    f"the body of the request was in an unknown format - accepted media "
                    f"types include: application/json, application/yaml ({e})") from e
            raise errors.BadRequest(f"the body of the request could not be decoded: {e}") \
                from e
    if ctype in ("application/yaml", "application/apply-patch+yaml"):
        try:
            return yamlbody.load(raw, MAX_BODY)
        except yamlbody.AliasBomb as e:
            raise errors.BadRequest(f"error decoding YAML: the document is refused: {e} "
                                    f"(the request body limit is 3MiB)") from e
        except (yaml.YAMLError, RecursionError, ValueError) as e:
            raise errors.BadRequest(f"error decoding YAML: {yaml_problem(e)}") from e
    try:
        return loads(raw)
    except (DecodeError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise errors.BadRequest(f"the body of the request could not be decoded as JSON: "
                                f"{str(e)[:200]}") from e


def yaml_problem(e: Exception) -> str:
    """What is wrong with a YAML body and where, as upstream words it (`yaml: line 3:
    mapping values are not allowed in this context`), without PyYAML's quote of the
    offending text: it may be a Secret's value."""
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        return f"yaml: {where}{e.problem or e.context or 'invalid document'}"
    if isinstance(e, yaml.YAMLError):
        return "yaml: invalid document"
    return str(e)[:200]


BODY_TYPES = (JSON, "application/yaml", "application/vnd.kubernetes.protobuf", "")


async def read_object(request: web.Request, kind: str | None) -> Any:
    """The request body of a create/update, in any of the media types kubectl sends."""
    # No Content-Type header means JSON, as upstream (the official client sends none).
    ctype = request.content_type.lower() if "Content-Type" in request.headers else JSON
    if ctype not in BODY_TYPES:
        raise errors.UnsupportedMediaType(
            f"the body of the request was in an unknown format - accepted media types "
            f"include: application/json, application/yaml, application/vnd.kubernetes.protobuf"
            f" (got {ctype})")
    return decode_body(await read_body(request), ctype, kind)


def query_bool(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1")


def dry_run(request: web.Request, body: Any = None) -> bool:
    values = request.query.getall("dryRun", [])
    if isinstance(body, dict) and isinstance(body.get("dryRun"), list):
        values = values + body["dryRun"]
    for v in values:
        if v != "All":
            raise errors.BadRequest(f"Invalid dry run value: {v!r}: supported values: \"All\"")
    return bool(values)


def field_validation(request: web.Request) -> str:
    return fieldvalidation.mode_of(request.query.get("fieldValidation"))


INT64_MAX = 2 ** 63 - 1


def query_int(request: web.Request, name: str, minimum: int = 0) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError as e:
        raise errors.BadRequest(f"invalid value for {name}: {raw!r}") from e
    if not minimum <= value <= INT64_MAX:
        raise errors.BadRequest(f"invalid value for {name}: {raw!r}")
    return value


def list_options(request: web.Request) -> ListOptions:
    q = request.query
    return ListOptions(
        label_selector=q.get("labelSelector", ""),
        field_selector=q.get("fieldSelector", ""),
        limit=query_int(request, "limit") or 0,
        continue_=q.get("continue", ""),
        resource_version=q.get("resourceVersion", ""),
        resource_version_match=q.get("resourceVersionMatch", ""),
    )


def wanted_form(request: web.Request) -> str:
    """"table", "metadata" or "" (plain objects), from the Accept header."""
    accept = request.headers.get("Accept", "")
    for part in accept.split(","):
        params = {kv.split("=", 1)[0].strip(): kv.split("=", 1)[1].strip()
                  for kv in part.split(";")[1:] if "=" in kv}
        as_ = params.get("as")
        if as_ == "Table" and params.get("g") == "meta.k8s.io":
            return "table"
        if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList") and \
                params.get("g") == "meta.k8s.io":
            return "metadata"
        if part.split(";")[0].strip() in (JSON, "*/*", "application/*"):
            return ""
    return ""


def partial_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata", {})}


def render_one(request: web.Request, resource: Resource, obj: dict[str, Any]) -> Any:
    form = wanted_form(request)
    if form == "table":
        from apiserver.tables import to_table
        return to_table(resource, [obj], {"resourceVersion": obj["metadata"].get(
            "resourceVersion", "")}, request.query.get("includeObject", "Metadata"))
    if form == "metadata":
        return partial_metadata(obj)
    return obj


def render_list(request: web.Request, resource: Resource, listed: dict[str, Any]) -> Any:
    form = wanted_form(request)
    if form == "table":
        from apiserver.tables import to_table
        return to_table(resource, listed["items"], listed["metadata"],
                        request.query.get("includeObject", "Metadata"))
    if form == "metadata":
        return {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                "metadata": listed["metadata"],
                "items": [partial_metadata(o) for o in listed["items"]]}
    return listed


def delete_options(request: web.Request, body: Any) -> DeleteOptions:
    """DeleteOptions from the query and/or the body; a malformed body is a 400, never a
    deletion with default options."""
    if body is not None and not isinstance(body, dict):
        raise errors.BadRequest("the body of a delete must be a DeleteOptions object")
    body = body or {}
    opts = DeleteOptions(dry_run=dry_run(request, body))
    grace = query_int(request, "gracePeriodSeconds", minimum=-INT64_MAX)
    policy: Any = request.query.get("propagationPolicy")
    if "gracePeriodSeconds" in body and body["gracePeriodSeconds"] is not None:
        grace = body["gracePeriodSeconds"]
        if not isinstance(grace, int) or isinstance(grace, bool) or abs(grace) > INT64_MAX:
            raise errors.BadRequest("DeleteOptions.gracePeriodSeconds must be an integer")
    if body.get("propagationPolicy") is not None:
        policy = body["propagationPolicy"]
    orphan = body.get("orphanDependents")
    if orphan is not None and not isinstance(orphan, bool):
        raise errors.BadRequest("DeleteOptions.orphanDependents must be a boolean")
    if (orphan is True or request.query.get("orphanDependents") == "true") and not policy:
        policy = "Orphan"
    pre = body.get("preconditions")
    if pre is not None:
        if not isinstance(pre, dict) or not all(
                isinstance(pre.get(k), str | None) for k in ("uid", "resourceVersion")):
            raise errors.BadRequest("DeleteOptions.preconditions must be an object of strings")
        if pre.get("uid") or pre.get("resourceVersion"):
            opts.preconditions = Preconditions(uid=pre.get("uid"),
                                               resource_version=pre.get("resourceVersion"))
    if policy not in (None, "Orphan", "Background", "Foreground"):
        raise errors.Invalid.of("DeleteOptions", "", [errors.field_cause(
            "propagationPolicy", f'Unsupported value: "{policy}": supported values: '
            '"Foreground", "Background", "Orphan"', "FieldValueNotSupported")])
    opts.grace_period_seconds = None if grace is None else max(grace, 0)
    opts.propagation_policy = policy
    return opts


def success_status(resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    md = obj.get("metadata") or {}
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": md.get("name", ""), "group": resource.group,
                        "kind": resource.plural, "uid": md.get("uid", "")}}


async def serve_resource(request: web.Request, group: str, version: str,
                         parts: list[str]) -> web.StreamResponse:
    state = request.app[APP_STATE]
    target = parse_target(group, version, parts)
    res = target.resource
    if not res.stored:
        return await serve_review(request, target)
    store = state.stores[res.plural]
    method = request.method
    ns = target.namespace
    if res.namespaced and target.name is not None and ns is None:
        # /api/v1/pods/<name> is not a path: namespaced objects live under their namespace.
        raise errors.resource_not_found()

    if target.name is None:
        if method == "GET":
            if target.watch or query_bool(request, "watch"):
                return await serve_watch(request, store, ns)
            return json_response(render_list(request, res, await store.list(
                ns, list_options(request))))
        if method == "POST":
            if res.namespaced and ns is None:
                raise errors.MethodNotAllowed(
                    "the server does not allow this method on the requested resource")
            body = await read_object(request, res.kind)
            obj = await store.create(ns, body, dry_run=dry_run(request),
                                     field_validation=field_validation(request))
            return json_response(render_one(request, res, obj), 201)
        if method == "DELETE":
            if "deletecollection" not in res.verbs or (res.namespaced and ns is None):
                raise errors.MethodNotAllowed("the server does not allow this method on the "
                                              "requested resource")
            raw = await read_body(request)
            body = decode_body(raw, JSON) if raw.strip() else None
            result = await store.delete_collection(ns, list_options(request),
                                                   delete_options(request, body))
            return json_response(result)
        raise errors.MethodNotAllowed("the server does not allow this method on the "
                                      "requested resource")

    name = target.name
    sub = target.subresource
    if sub is not None:
        return await serve_subresource(request, store, ns, name, sub)
    if target.watch:
        raise errors.resource_not_found()
    if method == "GET":
        return json_response(render_one(request, res, await store.get(ns, name)))
    if method == "PUT":
        body = await read_object(request, res.kind)
        obj, created = await store.update(ns, name, body, dry_run=dry_run(request),
                                          field_validation=field_validation(request))
        return json_response(render_one(request, res, obj), 201 if created else 200)
    if method == "PATCH":
        patch_type = patch_type_of(request)
        body = decode_body(await read_body(request), JSON)
        obj = await store.patch(ns, name, patch_type, body, dry_run=dry_run(request),
                                field_validation=field_validation(request))
        return json_response(render_one(request, res, obj))
    if method == "DELETE":
        raw = await read_body(request)
        body = decode_body(raw, JSON) if raw.strip() else None
        obj, deleted = await store.delete(ns, name, delete_options(request, body))
        if deleted and not store.strategy.return_deleted_object:
            return json_response(success_status(res, obj))
        return json_response(obj, 200 if deleted else 202)
    raise errors.MethodNotAllowed("the server does not allow this method on the requested "
                                  "resource")


def patch_type_of(request: web.Request) -> str:
    ctype = request.content_type.lower()
    if ctype not in PATCH_TYPES:
        raise errors.UnsupportedMediaType(
            f"the body of the request was in an unknown format - accepted media types "
            f"include: application/json-patch+json, application/merge-patch+json, "
            f"application/strategic-merge-patch+json (got {ctype})")
    return PATCH_TYPES[ctype]


async def serve_subresource(request: web.Request, store: Store, ns: str | None, name: str,
                            sub: str) -> web.StreamResponse:
    method = request.method
    res = store.resource
    if sub in ("status", "ephemeralcontainers"):
        # The object, written only in the part the subresource owns (status, or a pod's
        # spec.ephemeralContainers): the strategy decides which.
        if method == "GET":
            return json_response(await store.get(ns, name))
        if method == "PUT":
            body = await read_object(request, res.kind)
            obj, _ = await store.update(ns, name, body, dry_run=dry_run(request),
                                        subresource=sub,
                                        field_validation=field_validation(request))
            return json_response(obj)
        if method == "PATCH":
            body = decode_body(await read_body(request), JSON)
            obj = await store.patch(ns, name, patch_type_of(request), body,
                                    dry_run=dry_run(request), subresource=sub,
                                    field_validation=field_validation(request))
            return json_response(obj)
    elif sub == "scale":
        if method == "GET":
            return json_response(await subresources.get_scale(store, ns or "", name))
        if method in ("PUT", "PATCH"):
            patch = None
            body = decode_body(await read_body(request), JSON)
            if method == "PATCH":
                patch = (patch_type_of(request), body)
            return json_response(await subresources.update_scale(
                store, ns or "", name, body, patch, dry_run(request)))
    elif sub == "binding" and method == "POST":
        body = await read_object(request, "Binding")
        return json_response(await subresources.bind_pod(store, ns or "", name, body), 201)
    elif sub == "finalize" and method == "PUT":
        body = await read_object(request, "Namespace")
        return json_response(await store.finalize_namespace(name, body))
    elif sub == "eviction" and method == "POST":
        body = await read_object(request, "Eviction")
        return json_response(await subresources.evict_pod(store, ns or "", name, body), 201)
    elif sub == "token" and method == "POST":
        return json_response(await create_token(request, store, ns or "", name), 201)
    elif sub == "proxy":
        from apiserver.httpproxy import serve_http_proxy
        return await serve_http_proxy(request, store, ns or "", name)
    elif sub in ("log", "exec", "attach", "portforward") and method in ("GET", "POST"):
        from apiserver.proxy import serve_pod_stream
        return await serve_pod_stream(request, store, ns or "", name, sub)
    raise errors.MethodNotAllowed("the server does not allow this method on the requested "
                                  "resource")


async def serve_review(request: web.Request, target: Target) -> web.Response:
    """POST of a review kind: answered at once, nothing stored (reviews.py)."""
    from apiserver.auth.filters import ACCESS_CONTROL, REQUEST_USER
    from apiserver.auth.reviews import review
    res = target.resource
    if request.method != "POST" or target.name is not None or \
            (res.namespaced and target.namespace is None):
        raise errors.MethodNotAllowed("the server does not allow this method on the "
                                      "requested resource")
    control = request.app[ACCESS_CONTROL]
    body = await read_object(request, res.kind)
    answer = await review(res, body, target.namespace, request[REQUEST_USER],
                          control.authenticator, control.authorizer, control.rules)
    return json_response(answer, 201)


async def create_token(request: web.Request, store: Store, ns: str, name: str) -> Obj:
    """POST serviceaccounts/<name>/token: a TokenRequest answered with a signed token."""
    from apiserver.auth import noderestriction
    from apiserver.auth.context import current_user
    from apiserver.auth.serviceaccount import token_request
    state = request.app[APP_STATE]
    if state.token_issuer is None:
        raise errors.StatusError("the server is not configured to issue tokens "
                                 "(--service-account-signing-key-file)", code=404,
                                 reason="NotFound")
    body = await read_object(request, "TokenRequest")
    if not isinstance(body, dict):
        raise errors.BadRequest("the body of a TokenRequest must be an object")
    await noderestriction.admit(current_user(), "CREATE", "serviceaccounts", "token", ns,
                                name, body, None, state.lookup)
    sa = await store.get(ns, name)
    opts = state.options
    return await token_request(
        sa, body, issuer=state.token_issuer, lookup=state.lookup,
        api_audiences=opts.api_audiences,
        max_expiration_seconds=int(opts.service_account_max_token_expiration))


BOOKMARK_EVERY = 10.0


async def serve_watch(request: web.Request, store: Store,
                      ns: str | None) -> web.StreamResponse:
    opts = list_options(request)
    timeout = query_int(request, "timeoutSeconds")
    if timeout is None:
        timeout = request.app[APP_STATE].options.min_request_timeout
    bookmarks = query_bool(request, "allowWatchBookmarks")
    table = wanted_form(request) == "table"
    include = request.query.get("includeObject", "Object")
    res = store.resource
    resp = web.StreamResponse(status=200, headers={"Content-Type": JSON})
    try:
        # Errors before the stream starts (bad selector, too large a version) are plain
        # Status responses; a too old version is an ERROR event, as upstream sends it.
        watcher = await store.watch(ns, opts)
    except errors.Expired as e:
        await resp.prepare(request)
        await resp.write(dumps({"type": "ERROR", "object": e.status()}) + b"\n")
        return resp
    await resp.prepare(request)
    deadline = time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            item = await watcher.next(min(left, BOOKMARK_EVERY))
            if item is None:
                if bookmarks and deadline - time.monotonic() > 0:
                    item = watcher.bookmark()
                else:
                    continue
            await resp.write(encode_event(res, item, table, include))
    except (WatchClosed, ConnectionError):
        pass  # closed by us (slow watcher, shutdown) or by the client going away
    finally:
        watcher.stop()
    return resp


def encode_event(res: Resource, item: tuple[str, dict[str, Any]], table: bool,
                 include: str) -> bytes:
    type_, obj = item
    if type_ == "BOOKMARK":
        obj = {"kind": res.kind, "apiVersion": res.api_version, **obj}
    elif table:
        from apiserver.tables import to_table
        obj = to_table(res, [obj], {"resourceVersion": obj["metadata"].get(
            "resourceVersion", "")}, include)
    return dumps({"type": type_, "object": obj}) + b"\n"
