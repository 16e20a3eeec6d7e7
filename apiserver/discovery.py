"""Discovery documents (/api, /apis, group and group-version resource lists), from the
catalogue."""

from __future__ import annotations

import hashlib
from typing import Any

from api.resources import SUBRESOURCE_KINDS, Catalogue, Resource

KUBE_MAJOR, KUBE_MINOR = "1", "32"
GIT_VERSION = "v1.32.0+kubelite"


def version_info() -> dict[str, str]:
    return {
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-11-22T00:00:00Z",
        "goVersion": "python3.11",
        "compiler": "cpython",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                            "serverAddress": server_address}]}


def _group_entry(group: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list(cat: Catalogue) -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group_entry(g, vs) for g, vs in cat.groups().items()]}


def api_group(cat: Catalogue, group: str) -> dict[str, Any] | None:
    versions = cat.groups().get(group)
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group, versions)}


def _storage_hash(r: Resource) -> str:
    return hashlib.sha256(f"{r.group_version}/{r.kind}".encode()).hexdigest()[:11]


def _subresource_entry(r: Resource, sub: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": f"{r.plural}/{sub}", "singularName": "",
                             "namespaced": r.namespaced, "kind": r.kind}
    if sub in SUBRESOURCE_KINDS:
        gv, kind = SUBRESOURCE_KINDS[sub]
        group, _, version = gv.rpartition("/")
        entry["kind"] = kind
        if group:
            entry["group"], entry["version"] = group, version
    entry["verbs"] = {
        "status": ["get", "patch", "update"],
        "scale": ["get", "patch", "update"],
        "binding": ["create"],
        "eviction": ["create"],
        "finalize": ["update"],
        "log": ["get"],
        "exec": ["create", "get"],
        "attach": ["create", "get"],
        "portforward": ["create", "get"],
        "ephemeralcontainers": ["get", "patch", "update"],
        "proxy": ["create", "delete", "get", "patch", "update"],
    }.get(sub, ["get"])
    # As upstream's discovery: the options kinds of the streaming and proxy subresources.
    options_kind = {"exec": "PodExecOptions", "attach": "PodAttachOptions",
                    "portforward": "PodPortForwardOptions",
                    "proxy": f"{r.kind}ProxyOptions"}.get(sub)
    if options_kind:
        entry["kind"] = options_kind
    return entry


def api_resource_list(cat: Catalogue, group: str, version: str) -> dict[str, Any] | None:
    resources = cat.in_group_version(group, version)
    if not resources:
        return None
    out: list[dict[str, Any]] = []
    for r in resources:
        entry: dict[str, Any] = {
            "name": r.plural, "singularName": r.singular_name, "namespaced": r.namespaced,
            "kind": r.kind, "verbs": list(r.verbs), "storageVersionHash": _storage_hash(r),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        out.append(entry)
        out.extend(_subresource_entry(r, s) for s in r.subresources)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": out}
