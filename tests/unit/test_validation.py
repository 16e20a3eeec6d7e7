"""Validation reports upstream's causes (field, reason, message) and never raises."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.defaults import apply_defaults, default_job_selector
from api.errors import Cause
from api.resources import RESOURCES
from api.validation import validate, validate_status_update

PLURALS = [r.plural for r in RESOURCES if r.stored]  # reviews are never stored

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    r"used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")


# --- fixtures: one valid object per kind --------------------------------------------------------

def pod_spec(**extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx:1.25",
                                            "ports": [{"name": "http", "containerPort": 80}]}]}
    spec.update(extra)
    return spec


def pod(**extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": pod_spec(**extra)}


def deployment(**extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web", "tier": "front"}}, "spec": pod_spec()},
    }
    spec.update(extra)
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"}, "spec": spec}


def job(**extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": {"spec": pod_spec(restartPolicy="Never")}}
    spec.update(extra)
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default", "uid": "0b5e-11"}, "spec": spec}


def service(**extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"app": "web"}, "ports": [{"port": 80}]}
    spec.update(extra)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"}, "spec": spec}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


VALID: dict[str, dict[str, Any]] = {
    "namespaces": {"metadata": {"name": "team-a"}},
    "pods": pod(),
    "nodes": {"metadata": {"name": "node-1.example", "labels": {"kubernetes.io/os": "linux"}},
              "spec": {"podCIDR": "10.244.1.0/24",
                       "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]},
              "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}}},
    "services": service(),
    "endpoints": {"metadata": {"name": "web", "namespace": "default"},
                  "subsets": [{"addresses": [{"ip": "10.244.1.5"}],
                               "ports": [{"port": 80}]}]},
    "configmaps": {"metadata": {"name": "cfg", "namespace": "default"},
                   "data": {"app.properties": "a=b", "KEY_2": "v"},
                   "binaryData": {"blob": b64("\x00\x01")}},
    "secrets": {"metadata": {"name": "creds", "namespace": "default"},
                "data": {"password": b64("hunter2")}},
    "serviceaccounts": {"metadata": {"name": "builder", "namespace": "default"}},
    "events": {"metadata": {"name": "web.17a", "namespace": "default"},
               "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
               "reason": "Scheduled", "message": "assigned", "type": "Normal", "count": 1},
    "deployments": deployment(),
    "replicasets": {"metadata": {"name": "web-5d8", "namespace": "default"},
                    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                             "template": {"metadata": {"labels": {"app": "web"}},
                                          "spec": pod_spec()}}},
    "daemonsets": {"metadata": {"name": "agent", "namespace": "kube-system"},
                   "spec": {"selector": {"matchExpressions": [
                       {"key": "app", "operator": "In", "values": ["agent"]}]},
                       "template": {"metadata": {"labels": {"app": "agent"}},
                                    "spec": pod_spec(hostNetwork=True, containers=[
                                        {"name": "a", "image": "agent:1",
                                         "ports": [{"containerPort": 9100}]}])}}},
    "jobs": job(),
    "leases": {"metadata": {"name": "kube-scheduler", "namespace": "kube-system"},
               "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 15,
                        "renewTime": "2024-05-01T10:00:00.000000Z"}},
    "endpointslices": {"metadata": {"name": "web-abc", "namespace": "default"},
                       "addressType": "IPv4",
                       "endpoints": [{"addresses": ["10.244.1.5"],
                                      "conditions": {"ready": True}}],
                       "ports": [{"name": "http", "port": 80}]},
    "roles": {"metadata": {"name": "pod-reader", "namespace": "default"},
              "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"],
                         "verbs": ["get", "list"]}]},
    "clusterroles": {"metadata": {"name": "system:monitoring-x"},
                     "aggregationRule": {"clusterRoleSelectors": [
                         {"matchLabels": {"rbac.example.com/aggregate": "true"}}]},
                     "rules": [{"nonResourceURLs": ["/healthz", "/metrics/*"],
                                "verbs": ["get"]}]},
    "rolebindings": {"metadata": {"name": "read-pods", "namespace": "default"},
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                 "name": "pod-reader"},
                     "subjects": [{"kind": "User", "name": "jane"},
                                  {"kind": "ServiceAccount", "name": "default"}]},
    "clusterrolebindings": {"metadata": {"name": "read-all"},
                            "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                        "kind": "ClusterRole", "name": "view"},
                            "subjects": [{"kind": "Group", "name": "readers"},
                                         {"kind": "ServiceAccount", "name": "x",
                                          "namespace": "ns"}]},
}


def prepared(plural: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Defaulted as the apiserver does before validating (incl. the Job selector step)."""
    obj = copy.deepcopy(obj)
    apply_defaults(plural, obj)
    if plural == "jobs":
        default_job_selector(obj)
    return obj


def causes(plural: str, obj: dict[str, Any], old: dict[str, Any] | None = None, *,
           defaults: bool = True) -> list[Cause]:
    if defaults:
        obj = prepared(plural, obj)
        old = prepared(plural, old) if old is not None else None
    return validate(plural, obj, old)


def fields(found: list[Cause]) -> set[tuple[str, str]]:
    return {(c["field"], c["reason"]) for c in found}


def assert_cause(found: list[Cause], field: str, reason: str, message: str | None = None) -> None:
    matching = [c for c in found if c["field"] == field and c["reason"] == reason]
    assert matching, f"no {reason} on {field} in {json.dumps(found, indent=1)}"
    if message is not None:
        assert any(c["message"] == message for c in matching), json.dumps(matching, indent=1)


def only(found: list[Cause], field: str, reason: str, message: str | None = None) -> None:
    assert fields(found) == {(field, reason)}, json.dumps(found, indent=1)
    assert_cause(found, field, reason, message)


# --- valid objects ------------------------------------------------------------------------------

@pytest.mark.parametrize("plural", PLURALS)
def test_valid_objects_have_no_causes(plural: str) -> None:
    assert causes(plural, VALID[plural]) == []


@pytest.mark.parametrize("plural", PLURALS)
def test_valid_objects_are_a_valid_update_of_themselves(plural: str) -> None:
    assert causes(plural, VALID[plural], VALID[plural]) == []


# --- metadata -----------------------------------------------------------------------------------

def test_name_is_required() -> None:
    obj = pod()
    del obj["metadata"]["name"]
    only(causes("pods", obj), "metadata.name", "FieldValueRequired",
         "Required value: name or generateName is required")


def test_name_must_be_a_subdomain() -> None:
    obj = pod()
    obj["metadata"]["name"] = "Foo_"
    only(causes("pods", obj), "metadata.name", "FieldValueInvalid",
         f'Invalid value: "Foo_": {SUBDOMAIN_MSG}')


def test_name_length() -> None:
    obj = pod()
    obj["metadata"]["name"] = "a" * 254
    only(causes("pods", obj), "metadata.name", "FieldValueInvalid",
         f'Invalid value: "{"a" * 254}": must be no more than 253 characters')


@pytest.mark.parametrize(("plural", "name", "ok"), [
    ("pods", "a.b", True), ("namespaces", "a.b", False), ("namespaces", "a-b", True),
    ("services", "a.b", False), ("services", "1abc", False), ("services", "abc-1", True),
    ("nodes", "node-1.example.com", True), ("configmaps", "kube-root-ca.crt", True),
])
def test_name_rule_per_kind(plural: str, name: str, ok: bool) -> None:
    obj = copy.deepcopy(VALID[plural])
    obj["metadata"]["name"] = name
    found = [c for c in causes(plural, obj) if c["field"] == "metadata.name"]
    assert (found == []) is ok, found


def test_namespace_label_name_message() -> None:
    only(causes("namespaces", {"metadata": {"name": "Team"}}), "metadata.name",
         "FieldValueInvalid", f'Invalid value: "Team": {LABEL_MSG}')


def test_generate_name_prefix_may_end_in_dash() -> None:
    obj = pod()
    obj["metadata"]["generateName"] = "web-"
    assert causes("pods", obj) == []
    obj["metadata"]["generateName"] = "Web-"
    only(causes("pods", obj), "metadata.generateName", "FieldValueInvalid")


def test_namespace_rules() -> None:
    obj = pod()
    del obj["metadata"]["namespace"]
    only(causes("pods", obj), "metadata.namespace", "FieldValueRequired", "Required value")
    obj["metadata"]["namespace"] = "Bad_NS"
    only(causes("pods", obj), "metadata.namespace", "FieldValueInvalid")
    node = copy.deepcopy(VALID["nodes"])
    node["metadata"]["namespace"] = "default"
    only(causes("nodes", node), "metadata.namespace", "FieldValueForbidden",
         "Forbidden: not allowed on this type")


def test_labels() -> None:
    obj = pod()
    obj["metadata"]["labels"] = {"app": "web", "bad key": "x", "ok": "-bad-", "long": "v" * 64,
                                 "example.com/tier": "front", "a/b/c": "x"}
    found = causes("pods", obj)
    assert fields(found) == {("metadata.labels", "FieldValueInvalid")}
    messages = [c["message"] for c in found]
    assert len(messages) == 4
    assert any(m.startswith('Invalid value: "bad key": name part must consist of') for m in
               messages)
    assert any(m.startswith('Invalid value: "-bad-": a valid label must be an empty string')
               for m in messages)
    assert f'Invalid value: "{"v" * 64}": must be no more than 63 characters' in messages
    assert any(m.startswith('Invalid value: "a/b/c": a qualified name must consist') for m in
               messages)


def test_annotations() -> None:
    obj = pod()
    obj["metadata"]["annotations"] = {"Example.COM/Note": "ok", "bad key": "x"}
    only(causes("pods", obj), "metadata.annotations", "FieldValueInvalid")
    obj["metadata"]["annotations"] = {"big": "x" * (256 * 1024)}
    only(causes("pods", obj), "metadata.annotations", "FieldValueTooLong",
         "Too long: may not be more than 262144 bytes")


def test_owner_references() -> None:
    obj = pod()
    obj["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8", "uid": "u1",
         "controller": True},
        {"apiVersion": "apps/", "kind": "ReplicaSet", "name": "web-6f9"},
    ]
    found = causes("pods", obj)
    assert fields(found) == {("metadata.ownerReferences.apiVersion", "FieldValueInvalid"),
                             ("metadata.ownerReferences.uid", "FieldValueInvalid")}
    assert_cause(found, "metadata.ownerReferences.uid", "FieldValueInvalid",
                 'Invalid value: "": uid must not be empty')
    obj["metadata"]["ownerReferences"][1].update(apiVersion="apps/v1", uid="u2", controller=True)
    only(causes("pods", obj), "metadata.ownerReferences", "FieldValueInvalid")


def test_finalizers() -> None:
    obj = pod()
    obj["metadata"]["finalizers"] = ["kubernetes", "example.com/cleanup", "cleanup"]
    only(causes("pods", obj), "metadata.finalizers", "FieldValueInvalid",
         'Invalid value: "cleanup": name is neither a standard finalizer name nor is it fully '
         "qualified")


def test_metadata_update_rules() -> None:
    old = prepared("pods", pod())
    old["metadata"].update(uid="u1", deletionTimestamp="2024-01-01T00:00:00Z",
                           finalizers=["example.com/a"])
    new = copy.deepcopy(old)
    new["metadata"].update(name="other", uid="u2", finalizers=["example.com/a", "example.com/b"])
    found = validate("pods", new, old)
    assert_cause(found, "metadata.name", "FieldValueInvalid",
                 'Invalid value: "other": field is immutable')
    assert_cause(found, "metadata.uid", "FieldValueInvalid")
    assert_cause(found, "metadata.finalizers", "FieldValueForbidden")
    # An update without a uid keeps the stored one.
    new = copy.deepcopy(old)
    del new["metadata"]["uid"]
    assert validate("pods", new, old) == []


# --- wrong JSON types ---------------------------------------------------------------------------

def test_wrong_types_become_causes() -> None:
    only(causes("pods", pod(containers="nginx")), "spec.containers",
         "FieldValueInvalid", 'Invalid value: "string": must be a list')
    obj = pod()
    obj["metadata"]["labels"] = ["app"]
    only(causes("pods", obj), "metadata.labels", "FieldValueInvalid",
         'Invalid value: "array": must be an object')
    obj = pod()
    obj["metadata"]["labels"] = {"app": 5}
    only(causes("pods", obj), "metadata.labels[app]", "FieldValueInvalid")
    assert_cause(causes("pods", {"metadata": "web", "spec": pod_spec()}), "metadata",
                 "FieldValueInvalid")
    found = causes("deployments", deployment(replicas="3"))
    only(found, "spec.replicas", "FieldValueInvalid", 'Invalid value: "string": must be an integer')
    only(causes("deployments", deployment(replicas=True)), "spec.replicas", "FieldValueInvalid")
    only(causes("deployments", deployment(replicas=2**40)), "spec.replicas", "FieldValueInvalid")


def test_non_object_input() -> None:
    for value in (None, [], "pod", 3):
        found = validate("pods", value)  # type: ignore[arg-type]
        assert len(found) == 1 and found[0]["reason"] == "FieldValueInvalid"


# --- pods ---------------------------------------------------------------------------------------

def test_containers_required() -> None:
    only(causes("pods", pod(containers=[])), "spec.containers", "FieldValueRequired")


def test_container_names() -> None:
    spec = {"initContainers": [{"name": "app", "image": "busybox"}],
            "containers": [{"name": "app", "image": "nginx"}, {"name": "Side_car", "image": "x"},
                           {"image": "y"}]}
    found = causes("pods", pod(**spec))
    assert fields(found) == {("spec.containers[0].name", "FieldValueDuplicate"),
                             ("spec.containers[1].name", "FieldValueInvalid"),
                             ("spec.containers[2].name", "FieldValueRequired")}
    assert_cause(found, "spec.containers[0].name", "FieldValueDuplicate", 'Duplicate value: "app"')


def test_image_required() -> None:
    only(causes("pods", pod(containers=[{"name": "c"}])), "spec.containers[0].image",
         "FieldValueRequired", "Required value")
    only(causes("pods", pod(containers=[{"name": "c", "image": " nginx"}])),
         "spec.containers[0].image", "FieldValueInvalid")


def test_image_pull_policy() -> None:
    spec = {"containers": [{"name": "c", "image": "nginx", "imagePullPolicy": "Bogus"}]}
    only(causes("pods", pod(**spec)), "spec.containers[0].imagePullPolicy",
         "FieldValueNotSupported",
         'Unsupported value: "Bogus": supported values: "Always", "IfNotPresent", "Never"')


def test_container_ports() -> None:
    ports = [{"containerPort": 0}, {"containerPort": 70000, "hostPort": 70000},
             {"containerPort": 80, "protocol": "HTTP"}, {"name": "web", "containerPort": 81},
             {"name": "web", "containerPort": 82}, {"name": "Http", "containerPort": 83}]
    found = causes("pods", pod(containers=[{"name": "c", "image": "i", "ports": ports}]))
    p = "spec.containers[0].ports"
    assert fields(found) == {
        (f"{p}[0].containerPort", "FieldValueRequired"),
        (f"{p}[1].containerPort", "FieldValueInvalid"),
        (f"{p}[1].hostPort", "FieldValueInvalid"),
        (f"{p}[2].protocol", "FieldValueNotSupported"),
        (f"{p}[4].name", "FieldValueDuplicate"),
        (f"{p}[5].name", "FieldValueInvalid"),
    }
    assert_cause(found, f"{p}[1].containerPort", "FieldValueInvalid",
                 "Invalid value: 70000: must be between 1 and 65535, inclusive")
    assert_cause(found, f"{p}[2].protocol", "FieldValueNotSupported",
                 'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"')


def test_host_ports_are_unique_per_pod() -> None:
    containers = [{"name": "a", "image": "i", "ports": [{"containerPort": 80, "hostPort": 8080}]},
                  {"name": "b", "image": "i", "ports": [{"containerPort": 81, "hostPort": 8080}]}]
    only(causes("pods", pod(containers=containers)), "spec.containers[1].ports[0].hostPort",
         "FieldValueDuplicate", 'Duplicate value: "/TCP/8080"')


def test_host_network_host_port_must_match() -> None:
    ports = [{"containerPort": 80, "hostPort": 8080}]
    only(causes("pods", pod(hostNetwork=True, containers=[{"name": "c", "image": "i",
                                                            "ports": ports}])),
         "spec.containers[0].ports[0].hostPort", "FieldValueInvalid",
         "Invalid value: 8080: must match `containerPort` when `hostNetwork` is true")


def test_env() -> None:
    env = [{"name": "1ABC", "value": "x"}, {"name": "GOOD.name-1", "value": "x"},
           {"name": "BOTH", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
           {"name": "TWO", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"},
                                         "secretKeyRef": {"name": "s", "key": "k"}}},
           {"name": "NONE", "valueFrom": {}},
           {"name": "FIELD", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}},
           {"name": "LABEL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
           {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "bad key"}}},
           {"value": "x"}]
    found = causes("pods", pod(containers=[{"name": "c", "image": "i", "env": env}]))
    p = "spec.containers[0].env"
    assert fields(found) == {
        (f"{p}[0].name", "FieldValueInvalid"),
        (f"{p}[2].valueFrom", "FieldValueInvalid"),
        (f"{p}[3].valueFrom", "FieldValueInvalid"),
        (f"{p}[4].valueFrom", "FieldValueInvalid"),
        (f"{p}[5].valueFrom.fieldRef.fieldPath", "FieldValueNotSupported"),
        (f"{p}[7].valueFrom.configMapKeyRef.key", "FieldValueInvalid"),
        (f"{p}[8].name", "FieldValueRequired"),
    }
    assert_cause(found, f"{p}[2].valueFrom", "FieldValueInvalid",
                 'Invalid value: "": may not be specified when `value` is not empty')
    assert_cause(found, f"{p}[3].valueFrom", "FieldValueInvalid",
                 'Invalid value: "": may not have more than one field specified at a time')


def test_env_from() -> None:
    env_from = [{"configMapRef": {"name": "c"}, "prefix": "APP_"},
                {"configMapRef": {"name": "c"}, "secretRef": {"name": "s"}}, {"prefix": "X"},
                {"secretRef": {}}]
    found = causes("pods", pod(containers=[{"name": "c", "image": "i", "envFrom": env_from}]))
    p = "spec.containers[0].envFrom"
    assert fields(found) == {(f"{p}[1]", "FieldValueInvalid"), (f"{p}[2]", "FieldValueInvalid"),
                             (f"{p}[3].secretRef.name", "FieldValueRequired")}


def resources(**res: Any) -> dict[str, Any]:
    return pod(containers=[{"name": "c", "image": "i", "resources": res}])


def test_resources() -> None:
    assert causes("pods", resources(requests={"cpu": "250m", "memory": "64Mi"},
                                    limits={"cpu": 1, "memory": "128Mi",
                                            "example.com/gpu": "1"})) == []
    found = causes("pods", resources(requests={"cpu": "2"}, limits={"cpu": "500m"}))
    only(found, "spec.containers[0].resources.requests[cpu]", "FieldValueInvalid",
         'Invalid value: "2": must be less than or equal to cpu limit of 500m')
    only(causes("pods", resources(requests={"memory": "lots"})),
         "spec.containers[0].resources.requests[memory]", "FieldValueInvalid",
         "Invalid value: \"lots\": quantities must match the regular expression "
         "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    only(causes("pods", resources(requests={"cpu": "-1"})),
         "spec.containers[0].resources.requests[cpu]", "FieldValueInvalid",
         'Invalid value: "-1": must be greater than or equal to 0')
    only(causes("pods", resources(requests={"gpu": "1"})),
         "spec.containers[0].resources.requests[gpu]", "FieldValueInvalid",
         'Invalid value: "gpu": must be a standard resource type or fully qualified')
    only(causes("pods", resources(requests={"pods": "1"})),
         "spec.containers[0].resources.requests[pods]", "FieldValueInvalid",
         'Invalid value: "pods": must be a standard resource for containers')
    # A Pod's limits are copied into missing requests first, so both are reported.
    assert fields(causes("pods", resources(limits={"gpu": "1"}))) == {
        ("spec.containers[0].resources.limits[gpu]", "FieldValueInvalid"),
        ("spec.containers[0].resources.requests[gpu]", "FieldValueInvalid")}


def test_extended_resources_cannot_overcommit() -> None:
    # Pods copy limits into missing requests, so test the template path (no such copy).
    tpl = deployment()
    tpl["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"example.com/gpu": "1"}}
    only(causes("deployments", tpl), "spec.template.spec.containers[0].resources.limits",
         "FieldValueRequired", "Required value: Limit must be set for non overcommitable resources")
    found = causes("pods", resources(requests={"example.com/gpu": "1"},
                                     limits={"example.com/gpu": "2"}))
    only(found, "spec.containers[0].resources.requests[example.com/gpu]", "FieldValueInvalid",
         'Invalid value: "1": must be equal to example.com/gpu limit of 2')
    only(causes("pods", resources(requests={"example.com/gpu": "500m"},
                                  limits={"example.com/gpu": "1"})),
         "spec.containers[0].resources.requests[example.com/gpu]", "FieldValueInvalid",
         'Invalid value: "500m": must be an integer')


def test_restart_and_dns_policies() -> None:
    only(causes("pods", pod(restartPolicy="Sometimes")), "spec.restartPolicy",
         "FieldValueNotSupported",
         'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"')
    only(causes("pods", pod(dnsPolicy="Google")), "spec.dnsPolicy", "FieldValueNotSupported",
         'Unsupported value: "Google": supported values: "ClusterFirst", '
         '"ClusterFirstWithHostNet", "Default", "None"')
    only(causes("pods", pod(dnsPolicy="None")), "spec.dnsConfig", "FieldValueRequired")
    assert causes("pods", pod(dnsPolicy="None", dnsConfig={"nameservers": ["1.1.1.1"]})) == []
    only(causes("pods", pod(dnsConfig={"nameservers": ["dns.local"]})),
         "spec.dnsConfig.nameservers[0]", "FieldValueInvalid")


def test_volumes() -> None:
    volumes = [{"name": "data", "emptyDir": {}}, {"name": "data", "emptyDir": {}},
               {"name": "Bad_Name", "emptyDir": {}},
               {"name": "both", "emptyDir": {}, "configMap": {"name": "c"}},
               {"name": "cm", "configMap": {"name": "c", "defaultMode": 1024}},
               {"name": "sec", "secret": {}}, {"name": "hp", "hostPath": {"path": "/x",
                                                                      "type": "Dir"}}]
    found = causes("pods", pod(volumes=volumes))
    assert fields(found) == {
        ("spec.volumes[1].name", "FieldValueDuplicate"),
        ("spec.volumes[2].name", "FieldValueInvalid"),
        ("spec.volumes[3].configMap", "FieldValueForbidden"),
        ("spec.volumes[4].configMap.defaultMode", "FieldValueInvalid"),
        ("spec.volumes[5].secret.secretName", "FieldValueRequired"),
        ("spec.volumes[6].hostPath.type", "FieldValueNotSupported"),
    }
    assert_cause(found, "spec.volumes[3].configMap", "FieldValueForbidden",
                 "Forbidden: may not specify more than 1 volume type")
    assert_cause(causes("pods", pod(volumes=[{"name": "v"}]), defaults=False), "spec.volumes[0]",
                 "FieldValueRequired", "Required value: must specify a volume type")


def test_volume_mounts() -> None:
    mounts = [{"name": "data", "mountPath": "/data"}, {"name": "nope", "mountPath": "/x"},
              {"name": "data", "mountPath": "/data"}, {"name": "data"},
              {"name": "data", "mountPath": "/y", "subPath": "../etc"}]
    spec = {"volumes": [{"name": "data", "emptyDir": {}}],
            "containers": [{"name": "c", "image": "i", "volumeMounts": mounts}]}
    found = causes("pods", pod(**spec))
    p = "spec.containers[0].volumeMounts"
    assert fields(found) == {(f"{p}[1].name", "FieldValueNotFound"),
                             (f"{p}[2].mountPath", "FieldValueInvalid"),
                             (f"{p}[3].mountPath", "FieldValueRequired"),
                             (f"{p}[4].subPath", "FieldValueInvalid")}
    assert_cause(found, f"{p}[1].name", "FieldValueNotFound", 'Not found: "nope"')


def test_probes() -> None:
    container = {"name": "c", "image": "i",
                 "livenessProbe": {"httpGet": {"port": 80}, "successThreshold": 2},
                 "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": -1},
                 "startupProbe": {"initialDelaySeconds": 1}}
    found = causes("pods", pod(containers=[container]))
    p = "spec.containers[0]"
    assert fields(found) == {(f"{p}.livenessProbe.successThreshold", "FieldValueInvalid"),
                             (f"{p}.readinessProbe.periodSeconds", "FieldValueInvalid"),
                             (f"{p}.startupProbe", "FieldValueRequired")}
    assert_cause(found, f"{p}.startupProbe", "FieldValueRequired",
                 "Required value: must specify a handler type")
    two = {"name": "c", "image": "i",
           "readinessProbe": {"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}}
    only(causes("pods", pod(containers=[two])), f"{p}.readinessProbe.tcpSocket",
         "FieldValueForbidden")
    bad_port = {"name": "c", "image": "i", "readinessProbe": {"httpGet": {"port": "HTTP-"}}}
    found = causes("pods", pod(containers=[bad_port]))
    assert fields(found) == {(f"{p}.readinessProbe.httpGet.port", "FieldValueInvalid")}


def test_init_container_probes_need_sidecar_restart_policy() -> None:
    probe = {"exec": {"command": ["true"]}}
    init = [{"name": "init", "image": "i", "readinessProbe": probe}]
    only(causes("pods", pod(initContainers=init)), "spec.initContainers[0].readinessProbe",
         "FieldValueForbidden")
    init[0]["restartPolicy"] = "Always"  # a sidecar may have probes
    assert causes("pods", pod(initContainers=init)) == []
    regular = [{"name": "c", "image": "i", "restartPolicy": "Always"}]
    only(causes("pods", pod(containers=regular)), "spec.containers[0].restartPolicy",
         "FieldValueForbidden")


def test_pod_level_numbers() -> None:
    only(causes("pods", pod(terminationGracePeriodSeconds=-1)),
         "spec.terminationGracePeriodSeconds", "FieldValueInvalid")
    only(causes("pods", pod(activeDeadlineSeconds=0)), "spec.activeDeadlineSeconds",
         "FieldValueInvalid", "Invalid value: 0: must be between 1 and 2147483647, inclusive")
    assert causes("pods", pod(activeDeadlineSeconds=60)) == []


def test_node_selector_and_names() -> None:
    only(causes("pods", pod(nodeSelector={"disk type": "ssd"})), "spec.nodeSelector",
         "FieldValueInvalid")
    only(causes("pods", pod(serviceAccountName="Builder")), "spec.serviceAccountName",
         "FieldValueInvalid")
    only(causes("pods", pod(hostname="web.1")), "spec.hostname", "FieldValueInvalid")


def test_tolerations() -> None:
    tolerations = [
        {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
        {"operator": "Exists"},
        {"key": "k", "operator": "Like", "value": "v"},
        {"key": "k", "operator": "Exists", "value": "v"},
        {"key": "k", "value": "v", "effect": "NoSchedule", "tolerationSeconds": 30},
        {"key": "k", "effect": "Sometimes"},
        {"value": "v"},
    ]
    found = causes("pods", pod(tolerations=tolerations))
    assert fields(found) == {
        ("spec.tolerations[2].operator", "FieldValueNotSupported"),
        ("spec.tolerations[3].operator", "FieldValueInvalid"),
        ("spec.tolerations[4].effect", "FieldValueInvalid"),
        ("spec.tolerations[5].effect", "FieldValueNotSupported"),
        ("spec.tolerations[6].operator", "FieldValueInvalid"),
    }
    assert_cause(found, "spec.tolerations[2].operator", "FieldValueNotSupported",
                 'Unsupported value: "Like": supported values: "Equal", "Exists"')
    assert_cause(found, "spec.tolerations[4].effect", "FieldValueInvalid",
                 "Invalid value: \"NoSchedule\": effect must be 'NoExecute' when "
                 "`tolerationSeconds` is set")


def test_topology_spread_constraints() -> None:
    constraints = [{"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "Maybe"}]
    found = causes("pods", pod(topologySpreadConstraints=constraints))
    assert fields(found) == {("spec.topologySpreadConstraints[0].maxSkew", "FieldValueInvalid"),
                             ("spec.topologySpreadConstraints[0].whenUnsatisfiable",
                              "FieldValueNotSupported")}


# --- pod updates --------------------------------------------------------------------------------

def test_pod_update_may_change_image_deadline_tolerations() -> None:
    old = prepared("pods", pod(tolerations=[{"key": "a", "operator": "Exists"}],
                               activeDeadlineSeconds=100))
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.26"
    new["spec"]["activeDeadlineSeconds"] = 50
    new["spec"]["tolerations"].append({"key": "b", "operator": "Exists"})
    new["metadata"]["labels"]["version"] = "2"
    assert validate("pods", new, old) == []


def test_pod_update_forbids_other_changes() -> None:
    old = prepared("pods", pod())
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["command"] = ["sleep", "1"]
    found = validate("pods", new, old)
    assert fields(found) == {("spec", "FieldValueForbidden")}
    assert found[0]["message"].startswith(
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
        "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to "
        "be set to 1 if it was previously negative)")
    assert "spec.containers" in found[0]["message"]


def test_pod_update_tolerations_only_grow_and_deadline_only_shrinks() -> None:
    old = prepared("pods", pod(tolerations=[{"key": "a", "operator": "Exists"}],
                               activeDeadlineSeconds=100))
    new = copy.deepcopy(old)
    new["spec"]["tolerations"] = []
    only(validate("pods", new, old), "spec", "FieldValueForbidden")
    new = copy.deepcopy(old)
    new["spec"]["activeDeadlineSeconds"] = 200
    only(validate("pods", new, old), "spec.activeDeadlineSeconds", "FieldValueInvalid",
         "Invalid value: 200: must be less than or equal to previous value")


def test_pod_update_scheduling_gates_may_only_be_removed() -> None:
    old = prepared("pods", pod(schedulingGates=[{"name": "example.com/wait"}]))
    new = copy.deepcopy(old)
    new["spec"]["schedulingGates"] = []
    new["spec"]["nodeSelector"] = {"zone": "a"}
    assert validate("pods", new, old) == []
    new = copy.deepcopy(old)
    new["spec"]["schedulingGates"].append({"name": "example.com/more"})
    only(validate("pods", new, old), "spec", "FieldValueForbidden")


# --- deployments, replicasets, daemonsets -------------------------------------------------------

def test_deployment_selector() -> None:
    found = causes("deployments", deployment(selector=None))
    only(found, "spec.selector", "FieldValueRequired")
    mismatch = deployment(selector={"matchLabels": {"app": "api"}})
    only(causes("deployments", mismatch), "spec.template.metadata.labels", "FieldValueInvalid",
         'Invalid value: {"app":"web","tier":"front"}: `selector` does not match template '
         "`labels`")
    only(causes("deployments", deployment(selector={})), "spec.selector", "FieldValueInvalid",
         "Invalid value: {}: empty selector is invalid for deployment")
    expr = {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["back"]}]}
    assert causes("deployments", deployment(selector=expr)) == []
    bad = {"matchExpressions": [{"key": "tier", "operator": "Near", "values": ["x"]},
                                {"key": "app", "operator": "In"},
                                {"key": "app", "operator": "Exists", "values": ["x"]}]}
    found = causes("deployments", deployment(selector=bad))
    assert fields(found) == {
        ("spec.selector.matchExpressions[0].operator", "FieldValueInvalid"),
        ("spec.selector.matchExpressions[1].values", "FieldValueRequired"),
        ("spec.selector.matchExpressions[2].values", "FieldValueForbidden"),
    }


def test_deployment_numbers() -> None:
    only(causes("deployments", deployment(replicas=-1)), "spec.replicas", "FieldValueInvalid",
         "Invalid value: -1: must be greater than or equal to 0")
    only(causes("deployments", deployment(revisionHistoryLimit=-1)), "spec.revisionHistoryLimit",
         "FieldValueInvalid")
    only(causes("deployments", deployment(minReadySeconds=700)), "spec.progressDeadlineSeconds",
         "FieldValueInvalid", "Invalid value: 600: must be greater than minReadySeconds")


def test_deployment_strategy() -> None:
    only(causes("deployments", deployment(strategy={"type": "BlueGreen"})), "spec.strategy.type",
         "FieldValueNotSupported",
         'Unsupported value: "BlueGreen": supported values: "Recreate", "RollingUpdate"')
    recreate = {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}
    only(causes("deployments", deployment(strategy=recreate)), "spec.strategy.rollingUpdate",
         "FieldValueForbidden")
    zeros = {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}
    only(causes("deployments", deployment(strategy=zeros)),
         "spec.strategy.rollingUpdate.maxUnavailable", "FieldValueInvalid",
         'Invalid value: "0%": may not be 0 when `maxSurge` is 0')
    bad = {"rollingUpdate": {"maxSurge": "lots", "maxUnavailable": "150%"}}
    found = causes("deployments", deployment(strategy=bad))
    assert fields(found) == {("spec.strategy.rollingUpdate.maxSurge", "FieldValueInvalid"),
                             ("spec.strategy.rollingUpdate.maxUnavailable", "FieldValueInvalid")}
    assert_cause(found, "spec.strategy.rollingUpdate.maxSurge", "FieldValueInvalid",
                 "Invalid value: \"lots\": must be an integer or percentage (e.g '5%')")
    assert_cause(found, "spec.strategy.rollingUpdate.maxUnavailable", "FieldValueInvalid",
                 'Invalid value: "150%": must not be greater than 100%')


def test_deployment_template() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = ""
    obj["spec"]["template"]["spec"]["activeDeadlineSeconds"] = 10
    found = causes("deployments", obj)
    assert fields(found) == {
        ("spec.template.spec.restartPolicy", "FieldValueNotSupported"),
        ("spec.template.spec.containers[0].image", "FieldValueRequired"),
        ("spec.template.spec.activeDeadlineSeconds", "FieldValueForbidden"),
    }
    assert_cause(found, "spec.template.spec.restartPolicy", "FieldValueNotSupported",
                 'Unsupported value: "Never": supported values: "Always"')
    only(causes("deployments", deployment(template=None)), "spec.template", "FieldValueRequired")


def test_deployment_selector_is_immutable() -> None:
    old = deployment()
    new = deployment(selector={"matchLabels": {"app": "web", "tier": "front"}})
    only(causes("deployments", new, old), "spec.selector", "FieldValueInvalid")
    scaled = deployment(replicas=5)
    scaled["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27"
    assert causes("deployments", scaled, old) == []


def test_replicaset_and_daemonset() -> None:
    rs = copy.deepcopy(VALID["replicasets"])
    rs["spec"]["selector"] = {"matchLabels": {}}
    only(causes("replicasets", rs), "spec.selector", "FieldValueInvalid")
    ds = copy.deepcopy(VALID["daemonsets"])
    ds["spec"]["updateStrategy"] = {"type": "Surge"}
    only(causes("daemonsets", ds), "spec.updateStrategy.type", "FieldValueNotSupported",
         'Unsupported value: "Surge": supported values: "OnDelete", "RollingUpdate"')
    ds["spec"]["updateStrategy"] = {"type": "RollingUpdate",
                                    "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}
    only(causes("daemonsets", ds), "spec.updateStrategy.rollingUpdate.maxUnavailable",
         "FieldValueInvalid")
    ds["spec"]["updateStrategy"]["rollingUpdate"] = {"maxUnavailable": 0, "maxSurge": "10%"}
    assert causes("daemonsets", ds) == []
    old = copy.deepcopy(VALID["daemonsets"])
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "agent"}}
    only(causes("daemonsets", new, old), "spec.selector", "FieldValueInvalid",
         'Invalid value: {"matchLabels":{"app":"agent"}}: field is immutable')


# --- jobs ---------------------------------------------------------------------------------------

def test_job_restart_policy() -> None:
    obj = job(template={"spec": pod_spec()})  # defaulted to Always, as upstream
    only(causes("jobs", obj), "spec.template.spec.restartPolicy", "FieldValueNotSupported",
         'Unsupported value: "Always": supported values: "OnFailure", "Never"')


def test_job_numbers() -> None:
    found = causes("jobs", job(parallelism=-1, completions=-1, backoffLimit=-1,
                               activeDeadlineSeconds=-5, ttlSecondsAfterFinished=-1))
    assert fields(found) == {(f"spec.{k}", "FieldValueInvalid") for k in
                             ("parallelism", "completions", "backoffLimit",
                              "activeDeadlineSeconds", "ttlSecondsAfterFinished")}
    only(causes("jobs", job(completionMode="Indexed", parallelism=2)), "spec.completions",
         "FieldValueRequired", "Required value: when completion mode is Indexed")
    only(causes("jobs", job(completionMode="Sometimes")), "spec.completionMode",
         "FieldValueNotSupported")


def test_job_selector_is_required_and_generated() -> None:
    obj = job()
    apply_defaults("jobs", obj)  # default_job_selector never ran
    only(validate("jobs", obj), "spec.selector", "FieldValueRequired")
    tampered = prepared("jobs", job())
    tampered["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    found = validate("jobs", tampered)
    assert ("spec.selector", "FieldValueInvalid") in fields(found)
    assert_cause(found, "spec.template.metadata.labels", "FieldValueInvalid",
                 None)
    conflicting = job()
    conflicting["spec"]["template"]["metadata"] = {"labels": {"job-name": "other"}}
    found = causes("jobs", conflicting)
    assert_cause(found, "spec.template.metadata.labels[job-name]", "FieldValueInvalid",
                 "Invalid value: \"other\": must be 'pi'")


def test_job_manual_selector() -> None:
    manual = job(manualSelector=True, selector={"matchLabels": {"app": "pi"}})
    manual["spec"]["template"]["metadata"] = {"labels": {"app": "pi"}}
    assert causes("jobs", manual) == []
    manual["spec"]["selector"] = {"matchLabels": {"app": "e"}}
    only(causes("jobs", manual), "spec.template.metadata.labels", "FieldValueInvalid")


def test_job_update() -> None:
    old = prepared("jobs", job())
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:2"
    only(validate("jobs", new, old), "spec.template", "FieldValueInvalid")
    new = copy.deepcopy(old)
    new["spec"]["completions"] = 3
    only(validate("jobs", new, old), "spec.completions", "FieldValueInvalid")
    new = copy.deepcopy(old)
    new["spec"]["parallelism"] = 4  # parallelism may change
    new["spec"]["suspend"] = True
    assert validate("jobs", new, old) == []


def test_suspended_job_may_change_scheduling_directives() -> None:
    old = prepared("jobs", job(suspend=True))
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["nodeSelector"] = {"zone": "a"}
    new["spec"]["template"]["metadata"]["annotations"] = {"queue": "q1"}
    assert validate("jobs", new, old) == []
    old["status"] = {"startTime": "2024-01-01T00:00:00Z"}
    only(validate("jobs", new, old), "spec.template", "FieldValueInvalid")


# --- services -----------------------------------------------------------------------------------

def test_service_ports() -> None:
    only(causes("services", service(ports=[])), "spec.ports", "FieldValueRequired")
    assert causes("services", service(ports=[], clusterIP="None")) == []
    ports = [{"name": "http", "port": 80}, {"port": 0, "protocol": "HTTP"},
             {"name": "http", "port": 81, "targetPort": "Web_Port"},
             {"name": "dup", "port": 80}]
    found = causes("services", service(ports=ports))
    assert fields(found) == {
        ("spec.ports[1].name", "FieldValueRequired"),
        ("spec.ports[1].port", "FieldValueInvalid"),
        ("spec.ports[1].protocol", "FieldValueNotSupported"),
        ("spec.ports[1].targetPort", "FieldValueInvalid"),
        ("spec.ports[2].name", "FieldValueDuplicate"),
        ("spec.ports[2].targetPort", "FieldValueInvalid"),
        ("spec.ports[3]", "FieldValueDuplicate"),
    }
    assert_cause(found, "spec.ports[3]", "FieldValueDuplicate",
                 'Duplicate value: {"port":80,"protocol":"TCP"}')


def test_service_node_ports_and_types() -> None:
    only(causes("services", service(ports=[{"port": 80, "nodePort": 30080}])),
         "spec.ports[0].nodePort", "FieldValueForbidden",
         "Forbidden: may not be used when `type` is 'ClusterIP'")
    assert causes("services", service(type="NodePort",
                                      ports=[{"port": 80, "nodePort": 30080}])) == []
    only(causes("services", service(type="Magic")), "spec.type", "FieldValueNotSupported",
         'Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", '
         '"LoadBalancer", "NodePort"')
    only(causes("services", service(sessionAffinity="Sticky")), "spec.sessionAffinity",
         "FieldValueNotSupported")
    only(causes("services", service(externalTrafficPolicy="Local")),
         "spec.externalTrafficPolicy", "FieldValueInvalid")
    assert causes("services", service(type="LoadBalancer", externalTrafficPolicy="Local")) == []


def test_service_external_name() -> None:
    obj = {"metadata": {"name": "db", "namespace": "default"},
           "spec": {"type": "ExternalName", "externalName": "db.example.com."}}
    assert causes("services", obj) == []
    obj["spec"]["externalName"] = ""
    only(causes("services", obj), "spec.externalName", "FieldValueRequired")
    obj["spec"].update(externalName="db.example.com", clusterIP="10.0.0.1")
    only(causes("services", obj), "spec.clusterIP", "FieldValueForbidden")


def test_service_cluster_ip() -> None:
    assert causes("services", service(clusterIP="10.96.0.10")) == []
    assert causes("services", service(clusterIP="fd00::10")) == []
    only(causes("services", service(clusterIP="10.96.0.300")), "spec.clusterIPs[0]",
         "FieldValueInvalid",
         'Invalid value: "10.96.0.300": must be a valid IP address, (e.g. 10.9.8.7 or '
         "2001:db8::ffff)")
    only(causes("services", service(clusterIP="10.96.0.1", clusterIPs=["10.96.0.2"])),
         "spec.clusterIPs", "FieldValueInvalid")
    only(causes("services", service(type="NodePort", clusterIP="None")), "spec.clusterIPs[0]",
         "FieldValueInvalid")


def test_service_cluster_ip_is_immutable() -> None:
    old = service(clusterIP="10.96.0.10")
    only(causes("services", service(clusterIP="10.96.0.11"), old), "spec.clusterIP",
         "FieldValueInvalid", 'Invalid value: "10.96.0.11": field is immutable')
    assert causes("services", service(clusterIP="10.96.0.10", ports=[{"port": 81}]), old) == []
    external = {"metadata": {"name": "web", "namespace": "default"},
                "spec": {"type": "ExternalName", "externalName": "example.com"}}
    assert causes("services", external, old) == []


# --- configmaps and secrets ---------------------------------------------------------------------

def test_configmap_keys_and_size() -> None:
    obj = {"metadata": {"name": "c", "namespace": "default"},
           "data": {"good.key": "v", "bad key": "v", "..hidden": "v"},
           "binaryData": {"good.key": b64("x")}}
    found = causes("configmaps", obj)
    assert fields(found) == {("data[bad key]", "FieldValueInvalid"),
                             ("data[..hidden]", "FieldValueInvalid"),
                             ("binaryData", "FieldValueInvalid")}
    assert_cause(found, "binaryData", "FieldValueInvalid",
                 'Invalid value: "good.key": duplicate of key present in data')
    big = {"metadata": {"name": "c", "namespace": "default"}, "data": {"k": "x" * (1 << 20 + 1)}}
    only(causes("configmaps", big), "", "FieldValueTooLong")
    only(causes("configmaps", {"metadata": {"name": "c", "namespace": "d"}, "data": {"k": 1}}),
         "data[k]", "FieldValueInvalid")


def test_immutable_configmap() -> None:
    old = {"metadata": {"name": "c", "namespace": "default"}, "data": {"k": "v"},
           "immutable": True}
    new = copy.deepcopy(old)
    new["data"]["k"] = "w"
    only(causes("configmaps", new, old), "data", "FieldValueForbidden",
         "Forbidden: field is immutable when `immutable` is set")
    new = copy.deepcopy(old)
    new["immutable"] = False
    only(causes("configmaps", new, old), "immutable", "FieldValueForbidden")
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {"a": "b"}
    assert causes("configmaps", new, old) == []


def secret(**fields_: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "s", "namespace": "default"}}
    obj.update(fields_)
    return obj


def test_secret_data() -> None:
    found = causes("secrets", secret(data={"ok": b64("x"), "bad": "not base64!", "sp ace": "eA=="}))
    assert fields(found) == {("data[bad]", "FieldValueInvalid"),
                             ("data[sp ace]", "FieldValueInvalid")}
    assert all("not base64" not in c["message"] for c in found)  # secrets are not echoed
    only(causes("secrets", secret(data={"k": b64("x" * (1024 * 1024 + 1))})), "data",
         "FieldValueTooLong")
    assert causes("secrets", secret(stringData={"password": "hunter2"})) == []
    only(causes("secrets", secret(stringData={"bad key": "x"})), "data[bad key]",
         "FieldValueInvalid")


def test_typed_secrets() -> None:
    only(causes("secrets", secret(type="kubernetes.io/tls", data={"tls.crt": b64("c")})),
         "data[tls.key]", "FieldValueRequired")
    found = causes("secrets", secret(type="kubernetes.io/basic-auth"))
    assert fields(found) == {("data[username]", "FieldValueRequired"),
                             ("data[password]", "FieldValueRequired")}
    only(causes("secrets", secret(type="kubernetes.io/dockerconfigjson",
                                  data={".dockerconfigjson": b64("{nope")})),
         "data[.dockerconfigjson]", "FieldValueInvalid")
    only(causes("secrets", secret(type="kubernetes.io/service-account-token")),
         "metadata.annotations[kubernetes.io/service-account.name]", "FieldValueRequired")


def test_secret_updates() -> None:
    old = secret(data={"k": b64("v")})
    only(causes("secrets", secret(type="kubernetes.io/tls",
                                  data={"tls.crt": "eA==", "tls.key": "eA=="}), old),
         "type", "FieldValueInvalid", 'Invalid value: "kubernetes.io/tls": field is immutable')
    frozen = secret(data={"k": b64("v")}, immutable=True)
    only(causes("secrets", secret(data={"k": b64("w")}, immutable=True), frozen), "data",
         "FieldValueForbidden")


# --- namespaces, nodes, leases, events ----------------------------------------------------------

def test_namespace_finalizers() -> None:
    obj = {"metadata": {"name": "ns"}, "spec": {"finalizers": ["kubernetes", "bogus"]}}
    only(causes("namespaces", obj), "spec.finalizers", "FieldValueInvalid")


def test_node_rules() -> None:
    node = copy.deepcopy(VALID["nodes"])
    node["spec"]["taints"] = [{"key": "a", "effect": "NoRun"}, {"key": "bad key",
                                                                 "effect": "NoSchedule"},
                              {"key": "c", "effect": "NoExecute"},
                              {"key": "c", "effect": "NoExecute", "value": "x"}, {"key": "d"}]
    found = causes("nodes", node)
    assert fields(found) == {("spec.taints[0].effect", "FieldValueNotSupported"),
                             ("spec.taints[1].key", "FieldValueInvalid"),
                             ("spec.taints[3]", "FieldValueDuplicate"),
                             ("spec.taints[4].effect", "FieldValueRequired")}
    assert_cause(found, "spec.taints[0].effect", "FieldValueNotSupported",
                 'Unsupported value: "NoRun": supported values: "NoSchedule", '
                 '"PreferNoSchedule", "NoExecute"')
    only(causes("nodes", {"metadata": {"name": "n"}, "spec": {"podCIDR": "10.0.0.0"}}),
         "spec.podCIDRs[0]", "FieldValueInvalid",
         'Invalid value: "10.0.0.0": must be a valid CIDR value, (e.g. 10.9.8.0/24 or '
         "2001:db8::/64)")
    only(causes("nodes", {"metadata": {"name": "n"},
                          "spec": {"podCIDRs": ["10.0.0.0/24", "10.1.0.0/24"]}}),
         "spec.podCIDRs", "FieldValueInvalid")
    only(causes("nodes", {"metadata": {"name": "n"},
                          "status": {"capacity": {"cpu": "1"}, "allocatable": {"cpu": "x"}}}),
         "status.allocatable[cpu]", "FieldValueInvalid")


def test_node_updates() -> None:
    old = copy.deepcopy(VALID["nodes"])
    new = copy.deepcopy(old)
    new["spec"]["podCIDR"] = "10.244.2.0/24"
    new["spec"]["podCIDRs"] = ["10.244.2.0/24"]
    only(causes("nodes", new, old), "spec.podCIDRs", "FieldValueForbidden")
    first = copy.deepcopy(old)
    del first["spec"]["podCIDR"]
    assert causes("nodes", old, first) == []  # from "" to valid is how it gets assigned
    new = copy.deepcopy(old)
    new["spec"]["unschedulable"] = True
    assert causes("nodes", new, old) == []


def test_lease() -> None:
    lease = copy.deepcopy(VALID["leases"])
    lease["spec"].update(leaseDurationSeconds=0, leaseTransitions=-1, renewTime="yesterday")
    found = causes("leases", lease)
    assert fields(found) == {("spec.leaseDurationSeconds", "FieldValueInvalid"),
                             ("spec.leaseTransitions", "FieldValueInvalid"),
                             ("spec.renewTime", "FieldValueInvalid")}
    assert_cause(found, "spec.leaseDurationSeconds", "FieldValueInvalid",
                 "Invalid value: 0: must be greater than 0")


def test_event_namespaces() -> None:
    event = copy.deepcopy(VALID["events"])
    event["involvedObject"]["namespace"] = "other"
    only(causes("events", event), "involvedObject.namespace", "FieldValueInvalid",
         'Invalid value: "other": does not match event.namespace')
    node_event = copy.deepcopy(VALID["events"])
    node_event["involvedObject"] = {"kind": "Node", "name": "node-1"}
    assert causes("events", node_event) == []
    node_event["metadata"]["namespace"] = "kube-system"
    only(causes("events", node_event), "involvedObject.namespace", "FieldValueInvalid")


def test_new_style_event_needs_reporting_fields() -> None:
    event = copy.deepcopy(VALID["events"])
    event["eventTime"] = "2024-05-01T10:00:00.000000Z"
    found = causes("events", event)
    assert fields(found) == {("reportingComponent", "FieldValueRequired"),
                             ("reportingInstance", "FieldValueRequired"),
                             ("action", "FieldValueRequired")}
    event.update(reportingComponent="kubelite.io/scheduler", reportingInstance="s-1",
                 action="Binding")
    assert causes("events", event) == []


# --- endpoints ----------------------------------------------------------------------------------

def test_endpointslice() -> None:
    obj = copy.deepcopy(VALID["endpointslices"])
    del obj["addressType"]
    only(causes("endpointslices", obj), "addressType", "FieldValueRequired")
    obj["addressType"] = "IPv5"
    only(causes("endpointslices", obj), "addressType", "FieldValueNotSupported",
         'Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6"')
    obj = copy.deepcopy(VALID["endpointslices"])
    obj["endpoints"] = [{"addresses": []}, {"addresses": ["fd00::1"]},
                        {"addresses": ["10.0.0.1"] * 101}]
    obj["ports"] = [{"name": "http", "port": 80}, {"name": "http", "port": 70000}]
    found = causes("endpointslices", obj)
    assert fields(found) == {("endpoints[0].addresses", "FieldValueRequired"),
                             ("endpoints[1].addresses[0]", "FieldValueInvalid"),
                             ("endpoints[2].addresses", "FieldValueTooMany"),
                             ("ports[1].name", "FieldValueDuplicate"),
                             ("ports[1].port", "FieldValueInvalid")}
    old = copy.deepcopy(VALID["endpointslices"])
    new = copy.deepcopy(old)
    new["addressType"] = "IPv6"
    new["endpoints"] = [{"addresses": ["fd00::1"]}]
    only(causes("endpointslices", new, old), "addressType", "FieldValueInvalid")


def test_endpoints() -> None:
    obj = {"metadata": {"name": "web", "namespace": "default"},
           "subsets": [{"addresses": [{"ip": "10.0.0.300"}, {"ip": "127.0.0.1"}],
                        "ports": [{"port": 80}, {"name": "b", "port": 0}]},
                       {"ports": []}]}
    found = causes("endpoints", obj)
    assert fields(found) == {("subsets[0].addresses[0].ip", "FieldValueInvalid"),
                             ("subsets[0].addresses[1].ip", "FieldValueInvalid"),
                             ("subsets[0].ports[0].name", "FieldValueRequired"),
                             ("subsets[0].ports[1].port", "FieldValueInvalid"),
                             ("subsets[1]", "FieldValueRequired"),
                             ("subsets[1].ports", "FieldValueRequired")}
    assert_cause(found, "subsets[0].addresses[1].ip", "FieldValueInvalid",
                 'Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, '
                 "::1/128)")


# --- status subresource -------------------------------------------------------------------------

def test_status_updates() -> None:
    old = prepared("pods", pod())
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Running", "podIP": "10.244.1.5",
                     "podIPs": [{"ip": "10.244.1.5"}], "hostIP": "192.168.1.10"}
    assert validate_status_update("pods", new, old) == []
    new["status"]["podIP"] = "nope"
    new["metadata"]["name"] = "renamed"
    found = validate_status_update("pods", new, old)
    assert fields(found) == {("status.podIP", "FieldValueInvalid"),
                             ("metadata.name", "FieldValueInvalid")}
    dep = prepared("deployments", deployment())
    bad = copy.deepcopy(dep)
    bad["status"] = {"replicas": -1, "readyReplicas": 2}
    only(validate_status_update("deployments", bad, dep), "status.replicas", "FieldValueInvalid")
    ns = {"metadata": {"name": "ns"}, "status": {"phase": "Gone"}}
    only(validate_status_update("namespaces", ns, ns), "status.phase", "FieldValueNotSupported")
    svc = prepared("services", service())
    svc_new = copy.deepcopy(svc)
    svc_new["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"},
                                                      {"hostname": "1.2.3.4"}]}}
    only(validate_status_update("services", svc_new, svc),
         "status.loadBalancer.ingress[1].hostname", "FieldValueInvalid",
         'Invalid value: "1.2.3.4": must be a DNS name, not an IP address')


# --- never raise --------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
    | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=25,
)
FIELD_NAMES = sorted({
    "metadata", "name", "namespace", "labels", "annotations", "ownerReferences", "finalizers",
    "uid", "spec", "status", "template", "selector", "matchLabels", "matchExpressions", "key",
    "operator", "values", "containers", "initContainers", "ephemeralContainers", "image",
    "ports", "containerPort", "hostPort", "protocol", "env", "valueFrom", "fieldRef",
    "fieldPath", "envFrom", "resources", "limits", "requests", "volumes", "volumeMounts",
    "configMap", "secret", "emptyDir", "livenessProbe", "readinessProbe", "httpGet", "exec",
    "port", "targetPort", "nodePort", "tolerations", "effect", "restartPolicy", "strategy",
    "rollingUpdate", "maxSurge", "maxUnavailable", "updateStrategy", "type", "clusterIP",
    "clusterIPs", "ipFamilies", "data", "binaryData", "stringData", "immutable", "taints",
    "podCIDR", "podCIDRs", "capacity", "involvedObject", "eventTime", "addressType",
    "endpoints", "addresses", "subsets", "ip", "replicas", "completions", "parallelism",
    "manualSelector", "suspend", "nodeSelector", "hostNetwork", "dnsPolicy", "dnsConfig",
    "leaseDurationSeconds", "schedulingGates", "topologySpreadConstraints", "sessionAffinity",
    "externalName", "loadBalancer", "ingress", "podIP", "phase",
})
shaped_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-70000, max_value=70000)
    | st.sampled_from(["", "a", "Always", "None", "TCP", "10.0.0.1", "1Gi", "In", "x/y", "-"]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(FIELD_NAMES), children, max_size=5),
    max_leaves=40,
)


def _never_raises(plural: str, obj: Any, old: Any) -> None:
    for result in (validate(plural, obj, old), validate(plural, obj),
                   validate_status_update(plural, obj, old)):
        assert isinstance(result, list)
        for cause in result:
            assert set(cause) == {"reason", "message", "field"}
            assert all(isinstance(v, str) for v in cause.values())
        json.dumps(result)


@settings(max_examples=200, deadline=None)
@given(plural=st.sampled_from(PLURALS), obj=json_values, old=json_values)
def test_fuzz_random_json_never_raises(plural: str, obj: Any, old: Any) -> None:
    _never_raises(plural, obj, old)
    if isinstance(obj, dict):
        apply_defaults(plural, obj)
        _never_raises(plural, obj, old)


@settings(max_examples=400, deadline=None)
@given(plural=st.sampled_from(PLURALS),
       obj=st.dictionaries(st.sampled_from(FIELD_NAMES), shaped_values, max_size=6),
       old=st.dictionaries(st.sampled_from(FIELD_NAMES), shaped_values, max_size=4))
def test_fuzz_shaped_json_never_raises(plural: str, obj: dict[str, Any],
                                       old: dict[str, Any]) -> None:
    _never_raises(plural, obj, old)
    apply_defaults(plural, obj)
    default_job_selector(obj)
    _never_raises(plural, obj, old)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@settings(max_examples=400, deadline=None)
@given(plural=st.sampled_from(PLURALS), data=st.data())
def test_fuzz_mutated_valid_objects_never_raise(plural: str, data: st.DataObject) -> None:
    # Valid objects with one subtree replaced reach the deep checks random trees never do.
    obj = prepared(plural, VALID[plural])
    paths = [p for p in _paths(obj) if p]
    path = data.draw(st.sampled_from(paths))
    replacement = data.draw(shaped_values | json_values)
    target = obj
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = replacement
    _never_raises(plural, obj, prepared(plural, VALID[plural]))
    apply_defaults(plural, obj)
    _never_raises(plural, obj, None)


def test_pathological_values_do_not_raise() -> None:
    huge = 10 ** 5000
    obj = pod(containers=[{"name": "c", "image": "i", "ports": [{"containerPort": huge,
                                                                 "hostPort": huge}],
                           "resources": {"limits": {"cpu": huge, "memory": "1e999999999"}}}])
    obj["metadata"]["labels"] = {"a": huge}
    obj["metadata"]["annotations"] = {"k": {1: 2, "x": [huge]}}
    _never_raises("pods", obj, obj)
    nested: Any = "x"
    for _ in range(200):
        nested = {"spec": nested}
    _never_raises("deployments", {"spec": {"template": nested}}, None)
