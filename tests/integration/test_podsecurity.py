"""Pod Security admission on a real apiserver: refusals as a client sees them (code, reason,
upstream's message), and warnings as the real kubectl prints them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from api import errors
from api.resources import CATALOGUE
from client.rest import ApiClient
from tests.conftest import ApiServer
from tests.integration.conftest import kubectl

Obj = dict[str, Any]
NAMESPACES = CATALOGUE.require("namespaces")
PODS = CATALOGUE.require("pods")
DEPLOYMENTS = CATALOGUE.require("deployments")
ENFORCE = "pod-security.kubernetes.io/enforce"
WARN = "pod-security.kubernetes.io/warn"

RESTRICTED_TAIL = (
    'allowPrivilegeEscalation != false (container "c" must set '
    "securityContext.allowPrivilegeEscalation=false), "
    'unrestricted capabilities (container "c" must set '
    'securityContext.capabilities.drop=["ALL"]), '
    'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), '
    'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to '
    '"RuntimeDefault" or "Localhost")')


async def namespace(api: ApiClient, labels: dict[str, str]) -> str:
    name = f"psa-{uuid.uuid4().hex[:8]}"
    await api.create(NAMESPACES, {"metadata": {"name": name, "labels": labels}})
    return name


def pod(name: str, **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


async def refused(api: ApiClient, ns: str, body: Obj) -> errors.StatusError:
    with pytest.raises(errors.Forbidden) as caught:
        await api.create(PODS, body, ns)
    with pytest.raises(errors.NotFound):
        await api.get(PODS, body["metadata"]["name"], ns)
    return caught.value


async def test_restricted_namespace_refuses_privileged_hostpath_hostnetwork_pods(
        api: ApiClient) -> None:
    ns = await namespace(api, {ENFORCE: "restricted"})
    privileged = pod("priv")
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    err = await refused(api, ns, privileged)
    assert err.code == 403 and err.reason == "Forbidden"
    assert err.message == (
        'pods "priv" is forbidden: violates PodSecurity "restricted:latest": privileged '
        '(container "c" must not set securityContext.privileged=true), ' + RESTRICTED_TAIL)

    err = await refused(api, ns, pod("hp", volumes=[{"name": "root",
                                                      "hostPath": {"path": "/"}}]))
    assert err.message == (
        'pods "hp" is forbidden: violates PodSecurity "restricted:latest": '
        + RESTRICTED_TAIL.replace(
            "runAsNonRoot", 'restricted volume types (volume "root" uses restricted volume '
            'type "hostPath"), runAsNonRoot', 1))

    err = await refused(api, ns, pod("hn", hostNetwork=True))
    assert err.message == ('pods "hn" is forbidden: violates PodSecurity "restricted:latest": '
                           "host namespaces (hostNetwork=true), " + RESTRICTED_TAIL)
    # dry-run is judged the same
    with pytest.raises(errors.Forbidden):
        await api.request("POST", f"/api/v1/namespaces/{ns}/pods", {"dryRun": "All"},
                          pod("dry", hostNetwork=True))


async def test_baseline_allows_a_plain_pod_and_refuses_host_network(api: ApiClient) -> None:
    ns = await namespace(api, {ENFORCE: "baseline", "pod-security.kubernetes.io/enforce-version":
                               "v1.30"})
    err = await refused(api, ns, pod("hn", hostNetwork=True))
    assert err.message == ('pods "hn" is forbidden: violates PodSecurity "baseline:v1.30": '
                           "host namespaces (hostNetwork=true)")
    created = await api.create(PODS, pod("plain"), ns)
    assert created["metadata"]["name"] == "plain"


async def test_invalid_labels_are_refused(api: ApiClient) -> None:
    with pytest.raises(errors.Invalid) as caught:
        await api.create(NAMESPACES, {"metadata": {"name": "psa-bad", "labels": {
            ENFORCE: "strict"}}})
    assert caught.value.message == (
        'Namespace "psa-bad" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: '
        'Invalid value: "strict": must be one of privileged, baseline, restricted')


async def test_warn_mode_prints_the_warning_through_kubectl_and_creates_the_pod(
        api: ApiClient, apiserver: ApiServer) -> None:
    ns = await namespace(api, {WARN: "baseline"})
    manifest = ('{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hn"}, "spec": '
                '{"hostNetwork": true, "containers": [{"name": "c", "image": "busybox"}]}}')
    code, out, err = await kubectl(apiserver, "-n", ns, "create", "-f", "-", stdin=manifest)
    assert code == 0, err
    assert 'Warning: would violate PodSecurity "baseline:latest": host namespaces ' \
           "(hostNetwork=true)" in err
    assert "pod/hn created" in out
    assert (await api.get(PODS, "hn", ns))["spec"]["hostNetwork"] is True


async def test_deployment_in_restricted_namespace_is_created_with_a_warning(
        api: ApiClient, apiserver: ApiServer) -> None:
    ns = await namespace(api, {ENFORCE: "restricted"})
    code, out, err = await kubectl(apiserver, "-n", ns, "create", "deployment", "web",
                                   "--image=busybox")
    assert code == 0, err
    assert "deployment.apps/web created" in out
    assert ('Warning: would violate PodSecurity "restricted:latest": '
            'allowPrivilegeEscalation != false (container "busybox" must set '
            "securityContext.allowPrivilegeEscalation=false)") in err
    assert (await api.get(DEPLOYMENTS, "web", ns))["metadata"]["name"] == "web"


async def test_labelling_a_namespace_warns_about_existing_pods(
        api: ApiClient, apiserver: ApiServer) -> None:
    ns = await namespace(api, {})
    await api.create(PODS, pod("hn", hostNetwork=True), ns)
    await api.create(PODS, pod("plain"), ns)
    code, _out, err = await kubectl(apiserver, "label", "namespace", ns, f"{ENFORCE}=baseline")
    assert code == 0, err
    assert (f'Warning: existing pods in namespace "{ns}" violate the new PodSecurity enforce '
            'level "baseline:latest"') in err
    assert "Warning: hn: host namespaces" in err
    assert "plain" not in err
    # the label is set, and the namespace now refuses what it warned about
    err_obj = await refused(api, ns, pod("again", hostNetwork=True))
    assert "host namespaces (hostNetwork=true)" in err_obj.message
