"""Defaulting follows upstream's v1 defaulters, and never raises on a malformed object."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.defaults import apply_defaults, default_job_selector
from api.resources import RESOURCES

PLURALS = [r.plural for r in RESOURCES]


def pod(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx:1.25"}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default"}, "spec": base}


def template(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx:1.25"}]}
    base.update(spec)
    return {"metadata": {"labels": {"app": "web"}}, "spec": base}


def defaulted(plural: str, obj: dict[str, Any]) -> dict[str, Any]:
    apply_defaults(plural, obj)
    return obj


# --- pods -------------------------------------------------------------------------------------

def test_pod_spec_defaults() -> None:
    spec = defaulted("pods", pod())["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["securityContext"] == {}
    assert spec["enableServiceLinks"] is True
    # The ServiceAccount admission plugin names the account, not defaulting (static pods
    # and their mirror pods have none): tests/unit/test_sa_admission.py.
    assert "serviceAccountName" not in spec and "serviceAccount" not in spec
    assert spec["priority"] == 0
    assert spec["preemptionPolicy"] == "PreemptLowerPriority"
    assert "tolerations" not in spec  # admission's business, not defaulting's


def test_container_defaults() -> None:
    container = defaulted("pods", pod())["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "File"
    assert container["resources"] == {}


@pytest.mark.parametrize(("image", "policy"), [
    ("nginx", "Always"),
    ("nginx:latest", "Always"),
    ("nginx:1.25", "IfNotPresent"),
    ("docker.io/library/nginx:1.25", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
    ("nginx:latest@sha256:" + "a" * 64, "Always"),
    ("localhost:5000/nginx", "Always"),
    ("localhost:5000/nginx:2", "IfNotPresent"),
])
def test_image_pull_policy_follows_the_tag(image: str, policy: str) -> None:
    obj = pod(containers=[{"name": "c", "image": image}])
    assert defaulted("pods", obj)["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_existing_values_are_kept() -> None:
    obj = pod(restartPolicy="Never", terminationGracePeriodSeconds=0, dnsPolicy="Default",
              enableServiceLinks=False, serviceAccountName="builder", priority=7,
              containers=[{"name": "c", "image": "nginx", "imagePullPolicy": "Never"}])
    spec = defaulted("pods", obj)["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["terminationGracePeriodSeconds"] == 0
    assert spec["dnsPolicy"] == "Default"
    assert spec["enableServiceLinks"] is False
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "builder"
    assert spec["priority"] == 7
    assert spec["containers"][0]["imagePullPolicy"] == "Never"


def test_deprecated_service_account_is_honoured() -> None:
    spec = defaulted("pods", pod(serviceAccount="legacy"))["spec"]
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "legacy"


@pytest.mark.parametrize(("class_name", "priority"), [
    ("system-node-critical", 2000001000),
    ("system-cluster-critical", 2000000000),
    ("team-high", None),  # resolved by admission against a PriorityClass, not here
])
def test_priority_from_builtin_classes(class_name: str, priority: int | None) -> None:
    spec = defaulted("pods", pod(priorityClassName=class_name))["spec"]
    assert spec.get("priority") == priority


def test_ports_probes_env_and_lifecycle() -> None:
    container = {
        "name": "c", "image": "nginx",
        "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
        "livenessProbe": {"httpGet": {"port": 80}},
        "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 3},
        "lifecycle": {"preStop": {"httpGet": {"port": 80, "path": "/quit"}}},
        "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "PLAIN", "value": "x"}],
    }
    out = defaulted("pods", pod(containers=[container]))["spec"]["containers"][0]
    assert [p["protocol"] for p in out["ports"]] == ["TCP", "UDP"]
    assert out["livenessProbe"] == {
        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3,
    }
    assert out["readinessProbe"]["periodSeconds"] == 3
    assert out["lifecycle"]["preStop"]["httpGet"] == {"port": 80, "path": "/quit",
                                                      "scheme": "HTTP"}
    assert out["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"
    assert out["env"][1] == {"name": "PLAIN", "value": "x"}


def test_volume_defaults() -> None:
    volumes = [{"name": "scratch"}, {"name": "cfg", "configMap": {"name": "cfg"}},
               {"name": "sec", "secret": {"secretName": "s", "defaultMode": 256}},
               {"name": "host", "hostPath": {"path": "/var/log"}},
               {"name": "info", "downwardAPI": {"items": [
                   {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}]
    out = defaulted("pods", pod(volumes=volumes))["spec"]["volumes"]
    assert out[0] == {"name": "scratch", "emptyDir": {}}
    assert out[1]["configMap"]["defaultMode"] == 420
    assert out[2]["secret"]["defaultMode"] == 256
    assert out[3]["hostPath"]["type"] == ""
    assert out[4]["downwardAPI"]["defaultMode"] == 420
    assert out[4]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"] == "v1"


def test_pod_requests_default_to_limits() -> None:
    container = {"name": "c", "image": "nginx",
                 "resources": {"limits": {"cpu": "1", "memory": "1Gi"},
                               "requests": {"cpu": "250m"}}}
    out = defaulted("pods", pod(containers=[container]))["spec"]["containers"][0]
    assert out["resources"]["requests"] == {"cpu": "250m", "memory": "1Gi"}


def test_host_network_ports_default_host_port() -> None:
    container = {"name": "c", "image": "nginx", "ports": [{"containerPort": 8080}]}
    out = defaulted("pods", pod(hostNetwork=True, containers=[container]))
    assert out["spec"]["containers"][0]["ports"][0]["hostPort"] == 8080


# --- templates --------------------------------------------------------------------------------

def test_templates_get_pod_spec_defaults_but_not_pod_only_ones() -> None:
    obj = {"metadata": {"name": "d", "namespace": "default"},
           "spec": {"selector": {"matchLabels": {"app": "web"}},
                    "template": template(containers=[{"name": "c", "image": "nginx",
                                                      "resources": {"limits": {"cpu": "1"}}}])}}
    spec = defaulted("deployments", obj)["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["containers"][0]["imagePullPolicy"] == "Always"
    for pod_only in ("enableServiceLinks", "serviceAccountName", "priority"):
        assert pod_only not in spec
    assert "requests" not in spec["containers"][0]["resources"]


def test_deployment_defaults() -> None:
    spec = defaulted("deployments", {"metadata": {"name": "d"}, "spec": {}})["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate",
                                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600


def test_deployment_recreate_gets_no_rolling_update() -> None:
    obj = {"metadata": {"name": "d"}, "spec": {"replicas": 0, "strategy": {"type": "Recreate"}}}
    spec = defaulted("deployments", obj)["spec"]
    assert spec["strategy"] == {"type": "Recreate"}
    assert spec["replicas"] == 0


def test_deployment_partial_rolling_update_is_completed() -> None:
    obj = {"spec": {"strategy": {"rollingUpdate": {"maxSurge": 2}}}}
    rolling = defaulted("deployments", obj)["spec"]["strategy"]["rollingUpdate"]
    assert rolling == {"maxSurge": 2, "maxUnavailable": "25%"}


def test_replicaset_and_daemonset_defaults() -> None:
    assert defaulted("replicasets", {"spec": {}})["spec"]["replicas"] == 1
    spec = defaulted("daemonsets", {"spec": {"template": template()}})["spec"]
    assert spec["updateStrategy"] == {"type": "RollingUpdate",
                                      "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    on_delete = defaulted("daemonsets", {"spec": {"updateStrategy": {"type": "OnDelete"}}})
    assert on_delete["spec"]["updateStrategy"] == {"type": "OnDelete"}


# --- jobs -------------------------------------------------------------------------------------

def job(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"template": template(restartPolicy="Never")}
    base.update(spec)
    return {"metadata": {"name": "pi", "namespace": "default", "uid": "1234-abcd"}, "spec": base}


def test_job_defaults() -> None:
    spec = defaulted("jobs", job())["spec"]
    assert spec["completions"] == 1
    assert spec["parallelism"] == 1
    assert spec["backoffLimit"] == 6
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert "manualSelector" not in spec
    assert "selector" not in spec  # generated later, once the uid exists


def test_job_completions_not_defaulted_when_parallelism_set() -> None:
    spec = defaulted("jobs", job(parallelism=3))["spec"]
    assert "completions" not in spec
    assert spec["parallelism"] == 3
    spec = defaulted("jobs", job(completions=5))["spec"]
    assert spec["completions"] == 5 and spec["parallelism"] == 1


def test_job_with_failure_policy_replaces_failed_pods_only() -> None:
    policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    spec = defaulted("jobs", job(podFailurePolicy=policy))["spec"]
    assert spec["podReplacementPolicy"] == "Failed"
    assert spec["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"] == "True"


def test_job_template_restart_policy_is_defaulted_like_upstream() -> None:
    # Upstream defaults it to Always for every template, so a Job that forgets it is rejected
    # by validation with "Unsupported value: \"Always\"".
    obj = job(template={"spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    assert defaulted("jobs", obj)["spec"]["template"]["spec"]["restartPolicy"] == "Always"


def test_job_takes_template_labels_when_it_has_none() -> None:
    obj = defaulted("jobs", job())
    assert obj["metadata"]["labels"] == {"app": "web"}
    own = job()
    own["metadata"]["labels"] = {"team": "x"}
    assert defaulted("jobs", own)["metadata"]["labels"] == {"team": "x"}


def test_default_job_selector() -> None:
    obj = job(template={"spec": {"restartPolicy": "Never",
                                 "containers": [{"name": "c", "image": "busybox"}]}})
    apply_defaults("jobs", obj)
    default_job_selector(obj)
    uid_labels = {"batch.kubernetes.io/controller-uid": "1234-abcd",
                  "controller-uid": "1234-abcd",
                  "batch.kubernetes.io/job-name": "pi", "job-name": "pi"}
    assert obj["spec"]["template"]["metadata"]["labels"] == uid_labels
    assert obj["spec"]["selector"] == {
        "matchLabels": {"batch.kubernetes.io/controller-uid": "1234-abcd"}}
    assert obj["metadata"]["labels"] == uid_labels  # shown like upstream's read-back


def test_default_job_selector_keeps_user_labels_and_skips_manual() -> None:
    obj = job()
    default_job_selector(obj)
    assert obj["spec"]["template"]["metadata"]["labels"]["app"] == "web"
    manual = job(manualSelector=True, selector={"matchLabels": {"app": "web"}})
    before = copy.deepcopy(manual)
    default_job_selector(manual)
    assert manual == before
    no_uid = job()
    del no_uid["metadata"]["uid"]
    before = copy.deepcopy(no_uid)
    default_job_selector(no_uid)
    assert no_uid == before


# --- core kinds -------------------------------------------------------------------------------

def service(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"selector": {"app": "web"}, "ports": [{"port": 80}]}
    base.update(spec)
    return {"metadata": {"name": "web", "namespace": "default"}, "spec": base}


def test_service_defaults() -> None:
    spec = defaulted("services", service())["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["ipFamilies"] == ["IPv4"]
    assert "externalTrafficPolicy" not in spec


def test_service_named_target_port_is_kept() -> None:
    spec = defaulted("services", service(ports=[{"port": 80, "targetPort": "http"}]))["spec"]
    assert spec["ports"][0]["targetPort"] == "http"


def test_externally_accessible_services() -> None:
    node_port = defaulted("services", service(type="NodePort"))["spec"]
    assert node_port["externalTrafficPolicy"] == "Cluster"
    balancer = defaulted("services", service(type="LoadBalancer"))["spec"]
    assert balancer["externalTrafficPolicy"] == "Cluster"
    assert balancer["allocateLoadBalancerNodePorts"] is True
    external_ips = defaulted("services", service(externalIPs=["192.0.2.10"]))["spec"]
    assert external_ips["externalTrafficPolicy"] == "Cluster"


def test_external_name_service_gets_no_ip_fields() -> None:
    obj = {"metadata": {"name": "db"},
           "spec": {"type": "ExternalName", "externalName": "db.example.com"}}
    spec = defaulted("services", obj)["spec"]
    for key in ("ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy", "clusterIPs"):
        assert key not in spec


def test_service_cluster_ips_and_families() -> None:
    spec = defaulted("services", service(clusterIP="10.96.0.10"))["spec"]
    assert spec["clusterIPs"] == ["10.96.0.10"]
    spec = defaulted("services", service(clusterIPs=["fd00::10"]))["spec"]
    assert spec["clusterIP"] == "fd00::10"
    assert spec["ipFamilies"] == ["IPv6"]
    headless = defaulted("services", service(clusterIP="None"))["spec"]
    assert headless["clusterIPs"] == ["None"]
    assert headless["ipFamilyPolicy"] == "SingleStack"
    selectorless = defaulted("services", service(clusterIP="None", selector=None))["spec"]
    assert selectorless["ipFamilyPolicy"] == "RequireDualStack"


def test_session_affinity_config() -> None:
    spec = defaulted("services", service(sessionAffinity="ClientIP"))["spec"]
    assert spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    config = {"clientIP": {"timeoutSeconds": 60}}
    spec = defaulted("services", service(sessionAffinityConfig=config))["spec"]
    assert "sessionAffinityConfig" not in spec  # dropped for affinity None, as upstream


def test_namespace_defaults() -> None:
    obj = defaulted("namespaces", {"metadata": {"name": "team-a"}})
    assert obj["spec"] == {"finalizers": ["kubernetes"]}
    assert obj["status"] == {"phase": "Active"}
    assert obj["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}


def test_secret_defaults_and_string_data() -> None:
    obj = defaulted("secrets", {"metadata": {"name": "s"},
                                "data": {"a": "b2xk", "b": "eA=="},
                                "stringData": {"a": "new", "c": "ü"}})
    assert obj["type"] == "Opaque"
    assert "stringData" not in obj
    assert obj["data"] == {"a": "bmV3", "b": "eA==", "c": "w7w="}
    typed = defaulted("secrets", {"type": "kubernetes.io/tls"})
    assert typed["type"] == "kubernetes.io/tls"


def test_node_defaults() -> None:
    obj = defaulted("nodes", {"metadata": {"name": "n1"}, "spec": {"podCIDR": "10.244.1.0/24"},
                              "status": {"capacity": {"cpu": "4", "pods": "110"}}})
    assert obj["spec"]["podCIDRs"] == ["10.244.1.0/24"]
    assert obj["status"]["allocatable"] == {"cpu": "4", "pods": "110"}
    kept = defaulted("nodes", {"status": {"capacity": {"cpu": "4"}, "allocatable": {"cpu": "3"}}})
    assert kept["status"]["allocatable"] == {"cpu": "3"}


def test_endpoint_port_protocols() -> None:
    endpoints = defaulted("endpoints", {"subsets": [{"ports": [{"port": 80}]}]})
    assert endpoints["subsets"][0]["ports"][0]["protocol"] == "TCP"
    slice_ = defaulted("endpointslices", {"addressType": "IPv4", "ports": [{"port": 80}]})
    assert slice_["ports"][0] == {"port": 80, "name": "", "protocol": "TCP"}


@pytest.mark.parametrize("plural", ["configmaps", "serviceaccounts", "events", "leases"])
def test_kinds_without_defaults_are_untouched(plural: str) -> None:
    obj = {"metadata": {"name": "x", "namespace": "default"}, "data": {"k": "v"}}
    before = copy.deepcopy(obj)
    assert defaulted(plural, obj) == before


# --- robustness -------------------------------------------------------------------------------

@pytest.mark.parametrize(("plural", "obj"), [
    ("pods", {"spec": {"containers": "nginx"}}),
    ("pods", {"spec": {"containers": [1, None, "x", {"ports": "80"}]}}),
    ("pods", {"spec": {"volumes": [{"configMap": "x"}], "hostNetwork": True,
                       "containers": [{"ports": [{"hostPort": False, "containerPort": "80"}]}]}}),
    ("pods", {"spec": []}),
    ("deployments", {"spec": {"strategy": "fast", "template": []}}),
    ("deployments", {"spec": {"strategy": {"rollingUpdate": 5}}}),
    ("jobs", {"spec": {"template": {"metadata": {"labels": "x"}}}}),
    ("services", {"spec": {"ports": [{"port": "80"}], "clusterIPs": "10.0.0.1"}}),
    ("secrets", {"stringData": {"a": 1}, "data": "x"}),
    ("namespaces", {"metadata": "x", "spec": 3, "status": []}),
    ("nodes", {"spec": {"podCIDRs": [5]}, "status": {"capacity": "lots"}}),
])
def test_malformed_objects_do_not_raise(plural: str, obj: dict[str, Any]) -> None:
    apply_defaults(plural, obj)
    default_job_selector(obj)


def test_non_dict_object_is_ignored() -> None:
    for value in (None, [], "pod", 3):
        apply_defaults("pods", value)  # type: ignore[arg-type]
        default_job_selector(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("plural", PLURALS)
def test_defaulting_is_idempotent(plural: str) -> None:
    samples = {"pods": pod(), "services": service(), "jobs": job(),
               "deployments": {"spec": {"template": template()}},
               "namespaces": {"metadata": {"name": "ns"}}, "secrets": {"stringData": {"a": "b"}}}
    once = defaulted(plural, copy.deepcopy(samples.get(plural, {"metadata": {"name": "x"}})))
    twice = defaulted(plural, copy.deepcopy(once))
    assert once == twice


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=25,
)
# Keys that the defaulters look at, so random trees reach deep code paths.
interesting_keys = st.sampled_from([
    "spec", "template", "containers", "initContainers", "ports", "volumes", "env", "valueFrom",
    "fieldRef", "resources", "limits", "requests", "livenessProbe", "httpGet", "strategy",
    "rollingUpdate", "updateStrategy", "selector", "metadata", "labels", "name", "uid",
    "clusterIP", "clusterIPs", "type", "sessionAffinity", "stringData", "data", "status",
    "capacity", "podCIDR", "podCIDRs", "subsets", "hostNetwork", "configMap", "image",
])
shaped_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(interesting_keys, children, max_size=5),
    max_leaves=40,
)


@settings(max_examples=150, deadline=None)
@given(plural=st.sampled_from(PLURALS),
       obj=st.dictionaries(st.text(max_size=8) | interesting_keys, json_values, max_size=5))
def test_fuzz_random_json_never_raises(plural: str, obj: dict[str, Any]) -> None:
    apply_defaults(plural, obj)
    default_job_selector(obj)
    json.dumps(obj)  # still plain JSON


@settings(max_examples=300, deadline=None)
@given(plural=st.sampled_from(PLURALS),
       obj=st.dictionaries(interesting_keys, shaped_values, max_size=6))
def test_fuzz_shaped_json_never_raises(plural: str, obj: dict[str, Any]) -> None:
    apply_defaults(plural, obj)
    default_job_selector(obj)
    json.dumps(obj)
