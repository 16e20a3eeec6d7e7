"""A container's environment (kubelet/envvars.py): precedence, $(VAR) expansion, fieldRef,
resourceFieldRef, ConfigMap and Secret references, envFrom, service variables."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from kubelet.envvars import (
    EnvError,
    PodContext,
    expand,
    expand_command,
    resolve_env,
    service_env,
)

CONFIGMAPS = {("ns", "cm"): {"metadata": {"name": "cm", "namespace": "ns"},
                             "data": {"k": "v", "HOST": "db", "bad key": "x"}}}
SECRETS = {("ns", "s"): {"metadata": {"name": "s", "namespace": "ns"},
                         "data": {"password": base64.b64encode(b"hunter2").decode()}}}


async def get_cm(ns: str, name: str) -> dict[str, Any] | None:
    return CONFIGMAPS.get((ns, name))


async def get_secret(ns: str, name: str) -> dict[str, Any] | None:
    return SECRETS.get((ns, name))


def pod(container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web-1", "namespace": "ns", "uid": "u-1",
                         "labels": {"app": "web"}, "annotations": {"a": "b"}},
            "spec": {"nodeName": "node-1", "serviceAccountName": "default",
                     "containers": [container], **spec}}


CTX = PodContext(host_ips=["10.200.0.4"], pod_ips=["10.200.0.9"],
                 node_allocatable={"cpu": "2", "memory": "4Gi"})


async def env_of(container: dict[str, Any], services: list[dict[str, Any]] | None = None,
                 **spec: Any) -> dict[str, str]:
    result = await resolve_env(pod(container, **spec), container, CTX, get_configmap=get_cm,
                               get_secret=get_secret, services=services or [])
    return dict(result.env)


def test_expand() -> None:
    values = {"A": "1", "B": "two"}.get
    assert expand("x$(A)y$(B)", values) == "x1ytwo"
    assert expand("$(MISSING) stays", values) == "$(MISSING) stays"
    assert expand("$$(A) is escaped", values) == "$(A) is escaped"
    assert expand("cost: $5 and $(A", values) == "cost: $5 and $(A"
    assert expand_command(["echo", "$(A)"], [("A", "hi")]) == ["echo", "hi"]


async def test_values_and_expansion_from_earlier_vars() -> None:
    env = await env_of({"name": "c", "env": [
        {"name": "A", "value": "1"}, {"name": "B", "value": "$(A)-$(A)"},
        {"name": "C", "value": "$(LATER)"}, {"name": "LATER", "value": "x"}]})
    assert env["B"] == "1-1" and env["C"] == "$(LATER)"


async def test_field_refs() -> None:
    fields = ["metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
              "spec.serviceAccountName", "status.hostIP", "status.podIP", "status.podIPs",
              "metadata.labels['app']", "metadata.annotations['a']"]
    env = await env_of({"name": "c", "env": [
        {"name": f"F{i}", "valueFrom": {"fieldRef": {"fieldPath": f}}}
        for i, f in enumerate(fields)]})
    assert [env[f"F{i}"] for i in range(len(fields))] == [
        "web-1", "ns", "u-1", "node-1", "default", "10.200.0.4", "10.200.0.9", "10.200.0.9",
        "web", "b"]


async def test_resource_field_refs() -> None:
    c = {"name": "c", "resources": {"limits": {"memory": "64Mi", "cpu": "250m"},
                                    "requests": {"cpu": "100m"}},
         "env": [
             {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}},
             {"name": "MEM_MI", "valueFrom": {"resourceFieldRef": {
                 "resource": "limits.memory", "divisor": "1Mi"}}},
             {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
             {"name": "CPU_M", "valueFrom": {"resourceFieldRef": {
                 "resource": "requests.cpu", "divisor": "1m"}}}]}
    env = await env_of(c)
    assert env["MEM"] == str(64 * 1024 * 1024) and env["MEM_MI"] == "64"
    assert env["CPU"] == "1" and env["CPU_M"] == "100"  # cpu rounds up to whole divisors
    c2 = {"name": "c", "env": [
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                           "divisor": "1Gi"}}}]}
    assert (await env_of(c2))["MEM"] == "4"  # no limit: the node's allocatable


async def test_configmap_and_secret_refs() -> None:
    env = await env_of({"name": "c", "env": [
        {"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
        {"name": "P", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}},
        {"name": "O", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k",
                                                        "optional": True}}}]})
    assert env["K"] == "v" and env["P"] == "hunter2" and "O" not in env


async def test_missing_references_are_errors() -> None:
    with pytest.raises(EnvError, match='configmap "nope" not found'):
        await env_of({"name": "c", "env": [
            {"name": "K", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}]})
    with pytest.raises(EnvError, match="couldn't find key zz in Secret ns/s"):
        await env_of({"name": "c", "env": [
            {"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "zz"}}}]})
    with pytest.raises(EnvError, match='secret "gone" not found'):
        await env_of({"name": "c", "envFrom": [{"secretRef": {"name": "gone"}}]})


async def test_env_from_prefix_invalid_keys_and_precedence() -> None:
    c = {"name": "c", "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"},
                                  {"secretRef": {"name": "s"}}],
         "env": [{"name": "CM_k", "value": "override"}]}
    result = await resolve_env(pod(c), c, CTX, get_configmap=get_cm, get_secret=get_secret)
    env = dict(result.env)
    assert env["CM_k"] == "override" and env["CM_HOST"] == "db"
    assert env["password"] == "hunter2"
    assert result.invalid_keys == ["CM_bad key"]


async def test_service_variables() -> None:
    services = [
        {"metadata": {"name": "kubernetes", "namespace": "default"},
         "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443}]}},
        {"metadata": {"name": "my-db", "namespace": "ns"},
         "spec": {"clusterIP": "10.96.0.20", "ports": [{"port": 5432, "protocol": "TCP"}]}},
        {"metadata": {"name": "other", "namespace": "elsewhere"},
         "spec": {"clusterIP": "10.96.0.30", "ports": [{"port": 80}]}},
        {"metadata": {"name": "headless", "namespace": "ns"},
         "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}]
    env = await env_of({"name": "c", "env": [{"name": "MY_DB_SERVICE_HOST", "value": "me"}]},
                       services)
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["MY_DB_SERVICE_HOST"] == "me"  # the pod's own env wins
    assert env["MY_DB_PORT"] == "tcp://10.96.0.20:5432"
    assert env["MY_DB_PORT_5432_TCP_ADDR"] == "10.96.0.20"
    assert not any(k.startswith(("OTHER_", "HEADLESS_")) for k in env)
    no_links = await env_of({"name": "c"}, services, enableServiceLinks=False)
    assert "KUBERNETES_SERVICE_HOST" in no_links and "MY_DB_SERVICE_HOST" not in no_links
    assert service_env([]) == {}
