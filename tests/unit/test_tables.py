"""Table rendering: columns and cells as `kubectl get` shows them for upstream servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.resources import CATALOGUE, Resource
from apiserver import tables
from apiserver.tables import human_duration, to_table

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def res(plural: str) -> Resource:
    resource = CATALOGUE.by_plural(plural)
    assert resource is not None
    return resource


def one_row(plural: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The single row's cells, keyed by column name."""
    table = to_table(res(plural), [obj], {"resourceVersion": "7"}, now=NOW)
    names = [c["name"] for c in table["columnDefinitions"]]
    (row,) = table["rows"]
    assert len(row["cells"]) == len(names)
    return dict(zip(names, row["cells"], strict=True))


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (192, "3m12s"),
        (9 * 60 + 59, "9m59s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 5 * 60, "3h5m"),
        (8 * 3600 + 59 * 60, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (53 * 3600, "2d5h"),
        (8 * 86400, "8d"),
        (400 * 86400, "400d"),
        (730 * 86400, "2y"),
        (740 * 86400, "2y10d"),
        (9 * 365 * 86400, "9y"),
        (-1, "0s"),
        (-1.5, "0s"),
        (-5, "<invalid>"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_since_tolerates_missing_and_bad_timestamps() -> None:
    assert tables.since(None, NOW) == "<unknown>"
    assert tables.since("yesterday", NOW) == "<unknown>"
    assert tables.since(12, NOW) == "<unknown>"
    assert tables.since(ago(seconds=42), NOW) == "42s"
    # MicroTime, fractional seconds and offsets parse too.
    assert tables.since("2024-06-01T11:59:00.123456Z", NOW) == "59s"
    assert tables.since("2024-06-01T13:00:00+02:00", NOW) == "60m"


# --- pods -------------------------------------------------------------------------------------


def pod(
    *,
    phase: str = "Running",
    statuses: list[dict[str, Any]] | None = None,
    containers: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(minutes=7),
                     "resourceVersion": "12"},
        "spec": {"containers": [{"name": f"c{i}", "image": "nginx"} for i in range(containers)],
                 "nodeName": "node-1"},
        "status": {"phase": phase, "containerStatuses": statuses or [],
                   "podIPs": [{"ip": "10.0.0.5"}]},
    }
    for key, value in extra.items():
        section, _, field = key.partition("__")
        obj[section][field] = value
    return obj


def running(name: str = "c0", restarts: int = 0) -> dict[str, Any]:
    return {"name": name, "ready": True, "restartCount": restarts,
            "state": {"running": {"startedAt": ago(minutes=6)}}}


def test_pod_running_ready() -> None:
    cells = one_row("pods", pod(statuses=[running()]))
    assert cells["Name"] == "web"
    assert cells["Ready"] == "1/1"
    assert cells["Status"] == "Running"
    assert cells["Restarts"] == "0"
    assert cells["Age"] == "7m"
    assert cells["IP"] == "10.0.0.5"
    assert cells["Node"] == "node-1"
    assert cells["Nominated Node"] == "<none>"
    assert cells["Readiness Gates"] == "<none>"


def test_pod_container_creating() -> None:
    waiting = {"name": "c0", "ready": False, "restartCount": 0,
               "state": {"waiting": {"reason": "ContainerCreating"}}}
    cells = one_row("pods", pod(phase="Pending", statuses=[waiting], status__podIPs=[]))
    assert (cells["Ready"], cells["Status"], cells["IP"]) == ("0/1", "ContainerCreating", "<none>")


def test_pod_pending_without_statuses_shows_phase() -> None:
    cells = one_row("pods", pod(phase="Pending", spec__nodeName=""))
    assert (cells["Ready"], cells["Status"], cells["Node"]) == ("0/1", "Pending", "<none>")


def test_pod_crash_loop_with_restarts_ago() -> None:
    crashing = {
        "name": "c0", "ready": False, "restartCount": 5,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 2m40s"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                     "finishedAt": ago(minutes=5)}},
    }
    cells = one_row("pods", pod(statuses=[crashing]))
    assert cells["Status"] == "CrashLoopBackOff"
    assert cells["Ready"] == "0/1"
    assert cells["Restarts"] == "5 (5m ago)"


def test_pod_restarts_without_termination_time_are_a_bare_count() -> None:
    cells = one_row("pods", pod(statuses=[running(restarts=2)]))
    assert cells["Restarts"] == "2"


def test_pod_terminating() -> None:
    obj = pod(statuses=[running()], metadata__deletionTimestamp=ago(seconds=3))
    assert one_row("pods", obj)["Status"] == "Terminating"


def test_pod_terminal_phase_is_not_terminating() -> None:
    done = {"name": "c0", "ready": False, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    obj = pod(phase="Succeeded", statuses=[done], metadata__deletionTimestamp=ago(seconds=3))
    assert one_row("pods", obj)["Status"] == "Completed"


def test_pod_node_lost_while_deleting_is_unknown() -> None:
    obj = pod(statuses=[running()], metadata__deletionTimestamp=ago(seconds=3),
              status__reason="NodeLost")
    assert one_row("pods", obj)["Status"] == "Unknown"


def test_pod_completed_and_row_condition() -> None:
    done = {"name": "c0", "ready": False, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    table = to_table(res("pods"), [pod(phase="Succeeded", statuses=[done])], None, now=NOW)
    (row,) = table["rows"]
    assert row["cells"][1:3] == ["0/1", "Completed"]
    assert row["conditions"] == [{"type": "Completed", "status": "True", "reason": "Succeeded",
                                  "message": "The pod has completed successfully."}]


def test_pod_error_exit_code_and_signal() -> None:
    terminated: dict[str, Any] = {"exitCode": 137}
    failed = {"name": "c0", "ready": False, "restartCount": 0,
              "state": {"terminated": terminated}}
    assert one_row("pods", pod(phase="Failed", statuses=[failed]))["Status"] == "ExitCode:137"
    terminated["signal"] = 9
    assert one_row("pods", pod(phase="Failed", statuses=[failed]))["Status"] == "Signal:9"


def test_pod_completed_container_next_to_running_one_is_running() -> None:
    done = {"name": "c0", "ready": False, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    obj = pod(containers=2, statuses=[done, running("c1")],
              status__conditions=[{"type": "Ready", "status": "True"}])
    cells = one_row("pods", obj)
    assert (cells["Ready"], cells["Status"]) == ("1/2", "Running")
    obj["status"]["conditions"] = []
    assert one_row("pods", obj)["Status"] == "NotReady"


def test_pod_init_containers() -> None:
    init_spec = [{"name": "init-a", "image": "busybox"}, {"name": "init-b", "image": "busybox"}]
    first_done = {"name": "init-a", "restartCount": 0,
                  "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    second_running = {"name": "init-b", "restartCount": 0, "state": {"running": {}}}
    obj = pod(phase="Pending", spec__initContainers=init_spec,
              status__initContainerStatuses=[first_done, second_running])
    assert one_row("pods", obj)["Status"] == "Init:1/2"

    crashing = {"name": "init-a", "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(minutes=1)}}}
    obj["status"]["initContainerStatuses"] = [crashing]
    cells = one_row("pods", obj)
    assert cells["Status"] == "Init:CrashLoopBackOff"
    assert cells["Restarts"] == "3 (60s ago)"

    failed = {"name": "init-a", "restartCount": 0, "state": {"terminated": {"exitCode": 2}}}
    obj["status"]["initContainerStatuses"] = [failed]
    assert one_row("pods", obj)["Status"] == "Init:ExitCode:2"


def test_pod_sidecar_counts_as_a_container() -> None:
    init_spec = [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]
    sidecar = {"name": "proxy", "ready": True, "started": True, "restartCount": 1,
               "state": {"running": {}},
               "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(hours=4)}}}
    obj = pod(statuses=[running()], spec__initContainers=init_spec,
              status__initContainerStatuses=[sidecar],
              status__conditions=[{"type": "Initialized", "status": "True"}])
    cells = one_row("pods", obj)
    assert cells["Ready"] == "2/2"
    assert cells["Status"] == "Running"
    assert cells["Restarts"] == "1 (4h ago)"


def test_pod_scheduling_gated_and_readiness_gates() -> None:
    obj = pod(phase="Pending",
              spec__readinessGates=[{"conditionType": "a"}, {"conditionType": "b"}],
              status__conditions=[{"type": "PodScheduled", "status": "False",
                                   "reason": "SchedulingGated"},
                                  {"type": "a", "status": "True"},
                                  {"type": "b", "status": "False"}])
    cells = one_row("pods", obj)
    assert cells["Status"] == "SchedulingGated"
    assert cells["Readiness Gates"] == "1/2"


# --- other kinds ------------------------------------------------------------------------------


def test_deployment_columns_and_cells() -> None:
    table = to_table(res("deployments"), [{
        "metadata": {"name": "web", "creationTimestamp": ago(days=3, hours=4)},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"},
                         "matchExpressions": [{"key": "tier", "operator": "In",
                                               "values": ["fe", "be"]}]},
            "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"},
                                                 {"name": "log", "image": "busybox"}]}},
        },
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }], {"resourceVersion": "9"}, now=NOW)
    columns = [(c["name"], c["priority"]) for c in table["columnDefinitions"]]
    assert columns == [("Name", 0), ("Ready", 0), ("Up-to-date", 0), ("Available", 0),
                       ("Age", 0), ("Containers", 1), ("Images", 1), ("Selector", 1)]
    assert table["columnDefinitions"][0]["format"] == "name"
    assert table["rows"][0]["cells"] == ["web", "2/3", 3, 2, "3d4h", "nginx,log",
                                         "nginx:1.27,busybox", "app=web,tier in (be,fe)"]


def test_deployment_without_status_or_replicas() -> None:
    cells = one_row("deployments", {"metadata": {"name": "d"}, "spec": {}})
    assert cells["Ready"] == "0/1"
    assert cells["Age"] == "<unknown>"
    assert cells["Selector"] == ""


def test_replicaset_and_daemonset() -> None:
    rs = one_row("replicasets", {"metadata": {"name": "rs"},
                                 "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}}},
                                 "status": {"replicas": 2, "readyReplicas": 1}})
    assert (rs["Desired"], rs["Current"], rs["Ready"], rs["Selector"]) == (2, 2, 1, "a=b")
    ds = one_row("daemonsets", {
        "metadata": {"name": "ds"},
        "spec": {"selector": {}, "template": {"spec": {
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "containers": [{"name": "agent", "image": "agent:1"}]}}},
        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                   "updatedNumberScheduled": 3, "numberAvailable": 2},
    })
    assert [ds[k] for k in ("Desired", "Current", "Ready", "Up-to-date", "Available")] == [
        3, 3, 2, 3, 2]
    assert ds["Node Selector"] == "kubernetes.io/os=linux"
    assert ds["Selector"] == "<none>"
    assert ds["Containers"] == "agent"


def node(**extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": "n1", "creationTimestamp": ago(days=10),
                     "labels": {"node-role.kubernetes.io/control-plane": "",
                                "node-role.kubernetes.io/worker": "",
                                "kubernetes.io/hostname": "n1"}},
        "spec": {},
        "status": {
            "conditions": [{"type": "MemoryPressure", "status": "False"},
                           {"type": "Ready", "status": "True"}],
            "addresses": [{"type": "Hostname", "address": "n1"},
                          {"type": "InternalIP", "address": "192.168.1.10"}],
            "nodeInfo": {"kubeletVersion": "v1.32.0-kubelite", "osImage": "Debian 12",
                         "kernelVersion": "6.1.0", "containerRuntimeVersion": "docker://27.0"},
        },
    }
    for key, value in extra.items():
        section, _, field = key.partition("__")
        obj[section][field] = value
    return obj


def test_node_status_roles_and_wide_columns() -> None:
    cells = one_row("nodes", node())
    assert cells["Status"] == "Ready"
    assert cells["Roles"] == "control-plane,worker"
    assert cells["Age"] == "10d"
    assert cells["Version"] == "v1.32.0-kubelite"
    assert cells["Internal-IP"] == "192.168.1.10"
    assert cells["External-IP"] == "<none>"
    assert (cells["OS-Image"], cells["Kernel-Version"], cells["Container-Runtime"]) == (
        "Debian 12", "6.1.0", "docker://27.0")


def test_node_not_ready_cordoned_and_unknown() -> None:
    cordoned = node(spec__unschedulable=True)
    cordoned["status"]["conditions"][1]["status"] = "False"
    assert one_row("nodes", cordoned)["Status"] == "NotReady,SchedulingDisabled"
    bare = node(status__conditions=[], metadata__labels={"kubernetes.io/role": "edge"})
    cells = one_row("nodes", bare)
    assert (cells["Status"], cells["Roles"]) == ("Unknown", "edge")
    assert one_row("nodes", node(metadata__labels={}))["Roles"] == "<none>"
    assert one_row("nodes", node(status__nodeInfo={}))["OS-Image"] == "<unknown>"


def test_service_ports_and_ips() -> None:
    svc = {
        "metadata": {"name": "web", "creationTimestamp": ago(hours=1)},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                 "selector": {"app": "web"},
                 "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080},
                           {"port": 443, "nodePort": 30443, "protocol": "TCP"}]},
    }
    cells = one_row("services", svc)
    assert cells["Port(s)"] == "80/TCP,443:30443/TCP"
    assert (cells["Type"], cells["Cluster-IP"], cells["External-IP"]) == (
        "NodePort", "10.96.0.10", "<none>")
    assert cells["Selector"] == "app=web"
    assert cells["Age"] == "60m"


def test_service_variants() -> None:
    lb = one_row("services", {"metadata": {"name": "lb"},
                              "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.2"],
                                       "ports": [{"port": 53, "protocol": "UDP"}]}})
    assert (lb["External-IP"], lb["Port(s)"], lb["Selector"]) == ("<pending>", "53/UDP", "<none>")
    lb_ready = one_row("services", {
        "metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "externalIPs": ["1.2.3.4"]},
        "status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example"}]}}})
    assert lb_ready["External-IP"] == "5.6.7.8,lb.example,1.2.3.4"
    assert lb_ready["Port(s)"] == "<none>"
    ext = one_row("services", {"metadata": {"name": "x"},
                               "spec": {"type": "ExternalName", "externalName": "db.example"}})
    assert (ext["Cluster-IP"], ext["External-IP"]) == ("<none>", "db.example")
    headless = one_row("services", {"metadata": {"name": "h"}, "spec": {"clusterIP": "None"}})
    assert (headless["Type"], headless["Cluster-IP"]) == ("ClusterIP", "None")


def test_endpoints_and_endpointslices() -> None:
    subsets = [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "fd00::1"}],
                "ports": [{"port": 80}, {"port": 443}]}]
    cells = one_row("endpoints", {"metadata": {"name": "web"}, "subsets": subsets})
    assert cells["Endpoints"] == "10.0.0.1:80,10.0.0.2:80,[fd00::1]:80 + 3 more..."
    assert one_row("endpoints", {"metadata": {"name": "e"}})["Endpoints"] == "<none>"
    headless = [{"addresses": [{"ip": "10.0.0.9"}]}]
    assert one_row("endpoints", {"metadata": {"name": "h"},
                                 "subsets": headless})["Endpoints"] == "10.0.0.9"

    eps = one_row("endpointslices", {
        "metadata": {"name": "web-abc"}, "addressType": "IPv4",
        "ports": [{"port": 80}, {"name": "metrics"}, {}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3"]},
                      {"addresses": ["10.0.0.4"]}],
    })
    assert eps["AddressType"] == "IPv4"
    assert eps["Ports"] == "80,metrics,*"
    assert eps["Endpoints"] == "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more..."
    empty = one_row("endpointslices", {"metadata": {"name": "x"}, "addressType": "IPv4"})
    assert (empty["Ports"], empty["Endpoints"]) == ("<unset>", "<unset>")


def test_small_kinds() -> None:
    assert one_row("namespaces", {"metadata": {"name": "default"},
                                  "status": {"phase": "Active"}})["Status"] == "Active"
    assert one_row("configmaps", {"metadata": {"name": "c"}, "data": {"a": "1"},
                                  "binaryData": {"b": "AA=="}})["Data"] == 2
    secret = one_row("secrets", {"metadata": {"name": "s"}, "type": "Opaque",
                                 "data": {"a": "MQ=="}})
    assert (secret["Type"], secret["Data"]) == ("Opaque", 1)
    assert one_row("serviceaccounts", {"metadata": {"name": "default"}})["Secrets"] == 0
    assert one_row("leases", {"metadata": {"name": "kube-scheduler"},
                              "spec": {"holderIdentity": "host_1"}})["Holder"] == "host_1"


def test_events() -> None:
    event = {
        "metadata": {"name": "web.17a"},
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{c0}"},
        "reason": "Pulled", "type": "Normal", "message": "  Successfully pulled image \n",
        "source": {"component": "kubelet", "host": "n1"},
        "firstTimestamp": ago(minutes=30), "lastTimestamp": ago(seconds=30), "count": 4,
    }
    cells = one_row("events", event)
    assert [c["name"] for c in tables.EVENT_COLUMNS][:4] == ["Last Seen", "Type", "Reason",
                                                             "Object"]
    assert cells["Last Seen"] == "30s"
    assert cells["Object"] == "pod/web"
    assert cells["Message"] == "Successfully pulled image"
    assert (cells["Subobject"], cells["Source"], cells["First Seen"], cells["Count"]) == (
        "spec.containers{c0}", "kubelet, n1", "30m", 4)
    new_style = {"metadata": {"name": "e2"}, "involvedObject": {"kind": "Node"},
                 "eventTime": "2024-06-01T11:59:50.000000Z", "reportingComponent": "sched"}
    cells = one_row("events", new_style)
    assert (cells["Last Seen"], cells["First Seen"], cells["Count"]) == ("10s", "10s", 1)
    assert (cells["Object"], cells["Source"]) == ("node", "sched")


def test_jobs() -> None:
    job = {
        "metadata": {"name": "pi"},
        "spec": {"completions": 3, "template": {"spec": {"containers": [
            {"name": "pi", "image": "perl"}]}}},
        "status": {"succeeded": 3, "startTime": ago(minutes=5), "completionTime": ago(minutes=3),
                   "conditions": [{"type": "Complete", "status": "True"}]},
    }
    cells = one_row("jobs", job)
    assert (cells["Status"], cells["Completions"], cells["Duration"]) == ("Complete", "3/3", "2m")
    running_job = {"metadata": {"name": "p"}, "spec": {"parallelism": 2},
                   "status": {"startTime": ago(seconds=30)}}
    cells = one_row("jobs", running_job)
    assert (cells["Status"], cells["Completions"], cells["Duration"]) == ("Running", "0/1 of 2",
                                                                        "30s")
    assert one_row("jobs", {"metadata": {"name": "q"}})["Duration"] == ""
    failed = {"metadata": {"name": "f"}, "status": {"conditions": [
        {"type": "Failed", "status": "True"}]}}
    assert one_row("jobs", failed)["Status"] == "Failed"


# --- the Table envelope -----------------------------------------------------------------------


def test_table_envelope_and_include_object() -> None:
    obj = pod(statuses=[running()])
    obj["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    table = to_table(res("pods"), [obj], {"resourceVersion": "100", "continue": "tok"}, now=NOW)
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "100", "continue": "tok"}
    for column in table["columnDefinitions"]:
        assert set(column) == {"name", "type", "format", "description", "priority"}
    row_object = table["rows"][0]["object"]
    assert row_object["kind"] == "PartialObjectMetadata"
    assert row_object["apiVersion"] == "meta.k8s.io/v1"
    assert row_object["metadata"]["name"] == "web"
    assert "managedFields" not in row_object["metadata"]
    assert "managedFields" in obj["metadata"], "the stored object must not be modified"

    full = to_table(res("pods"), [obj], {"resourceVersion": "1"}, include_object="Object",
                    now=NOW)
    assert full["rows"][0]["object"] is obj
    bare = to_table(res("pods"), [obj], {"resourceVersion": "1"}, include_object="None", now=NOW)
    assert "object" not in bare["rows"][0]


def test_single_object_table_carries_its_resource_version() -> None:
    table = to_table(res("pods"), [pod()], None, now=NOW)
    assert table["metadata"] == {"resourceVersion": "12"}


def test_unknown_kind_gets_name_and_age() -> None:
    widget = Resource("example.com", "v1", "Widget", "widgets", True)
    table = to_table(widget, [{"metadata": {"name": "w", "creationTimestamp": ago(seconds=9)}}],
                     {"resourceVersion": "3"}, now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]
    assert table["columnDefinitions"][0]["format"] == "name"
    assert table["rows"][0]["cells"] == ["w", "9s"]


def test_every_catalogue_kind_renders_an_empty_object() -> None:
    for resource in CATALOGUE.resources:
        table = to_table(resource, [{}], {}, now=NOW)
        width = len(table["columnDefinitions"])
        assert len(table["rows"][0]["cells"]) == width, resource.kind
        assert table["columnDefinitions"][0]["name"] in ("Name", "Last Seen")


# --- robustness -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=False)
    | st.text(max_size=6) | st.sampled_from(["", "True", "Running", "Ready", "2024-01-01T00:00:00Z"]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from([
        "metadata", "spec", "status", "name", "containers", "initContainers", "containerStatuses",
        "initContainerStatuses", "state", "lastState", "waiting", "terminated", "running",
        "reason", "exitCode", "signal", "restartCount", "ready", "started", "conditions", "type",
        "status", "phase", "ports", "port", "nodePort", "protocol", "selector", "matchLabels",
        "matchExpressions", "key", "operator", "values", "template", "replicas", "subsets",
        "addresses", "ip", "labels", "creationTimestamp", "deletionTimestamp", "finishedAt",
        "podIPs", "readinessGates", "conditionType", "nodeInfo", "unschedulable", "externalIPs",
        "loadBalancer", "ingress", "clusterIPs", "involvedObject", "series", "count", "data",
        "endpoints", "completions", "parallelism", "startTime", "restartPolicy", "source",
    ]), inner, max_size=6),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(obj=json_values)
def test_printers_never_raise_on_garbage(obj: Any) -> None:
    candidates = [obj, {"metadata": obj, "spec": obj, "status": obj}]
    for _, fill in tables.PRINTERS.values():
        for candidate in candidates:
            if isinstance(candidate, dict):
                fill(candidate, NOW)  # the per-kind code itself must cope, not just the guard
    for resource in CATALOGUE.resources:
        table = to_table(resource, [c for c in candidates if isinstance(c, dict)], obj, now=NOW)
        assert all(len(r["cells"]) == len(table["columnDefinitions"]) for r in table["rows"])
