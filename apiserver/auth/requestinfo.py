"""What a request asks for, as authorization sees it (upstream's RequestInfoFactory).

`/api/v1/namespaces/ns/pods/name/log` is a resource request: verb get, resource pods,
subresource log. `/healthz` is a non-resource request: verb get, path /healthz. The path
is read once, here, before any handler, so authorization never depends on how a handler
happens to parse it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from apiserver.auth.attributes import Attributes, UserInfo

_VERB_OF_METHOD = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update",
                   "PATCH": "patch", "DELETE": "delete", "CONNECT": "connect"}
# Upstream's namespaceSubresources: /api/v1/namespaces/<ns>/status is the namespace's own.
_NAMESPACE_SUBRESOURCES = ("status", "finalize")
_CONNECT_SUBRESOURCES = ("exec", "attach", "portforward")


@dataclass(frozen=True)
class RequestInfo:
    resource_request: bool
    verb: str
    path: str
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""

    def attributes(self, user: UserInfo) -> Attributes:
        return Attributes(user=user, verb=self.verb, resource_request=self.resource_request,
                          namespace=self.namespace, api_group=self.api_group,
                          api_version=self.api_version, resource=self.resource,
                          subresource=self.subresource, name=self.name, path=self.path)


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true")


@lru_cache(maxsize=4096)
def request_info(method: str, path: str, watch: str | None = None,
                 field_selector: str | None = None) -> RequestInfo:
    """The RequestInfo of a request; of the query only `watch` and `fieldSelector` matter.
    Remembered: clients repeat the same few paths (a collection, their own objects)."""
    non_resource = RequestInfo(False, method.lower(), path)
    parts = [p for p in path.strip("/").split("/")]
    if len(parts) < 2 or parts[0] not in ("api", "apis"):
        return non_resource
    if parts[0] == "api":
        group, rest = "", parts[1:]
    else:
        if len(parts) < 3:
            return non_resource  # /apis/<group>: discovery
        group, rest = parts[1], parts[2:]
    version, rest = rest[0], rest[1:]
    if not rest or rest == [""]:
        return RequestInfo(False, method.lower(), path)  # /api/v1: discovery
    verb = _VERB_OF_METHOD.get(method.upper(), method.lower())
    if rest[0] == "watch":
        verb, rest = "watch", rest[1:]
    namespace = ""
    if rest and rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if not name and verb == "get":
        verb = "watch" if _truthy(watch) else "list"
    elif not name and verb == "watch":
        pass
    elif name and verb == "get" and _truthy(watch) and not subresource:
        verb = "watch"
    if subresource in _CONNECT_SUBRESOURCES and verb == "get":
        # kubectl 1.30+ opens exec/attach/port-forward as a WebSocket GET; upstream checks
        # the create verb for it as for the POST (AuthorizePodWebsocketUpgradeCreate...).
        verb = "create"
    if not name and verb == "delete":
        verb = "deletecollection"
    if verb == "watch" and not name:
        # A watch of one object by field selector is a watch on that name (upstream).
        selector = field_selector or ""
        if selector.startswith("metadata.name=") and "," not in selector:
            name = selector.split("=", 1)[1]
    return RequestInfo(True, verb, path, group, version, namespace, resource, subresource,
                       name)
