"""Where pods/proxy and services/proxy go: name parsing, ports, ready endpoints."""

from __future__ import annotations

import pytest

from api import errors
from apiserver.httpproxy import pod_location, ready_endpoints, service_port, split_name


def test_split_name() -> None:
    assert split_name("web") == ("", "web", "")
    assert split_name("web:80") == ("", "web", "80")
    assert split_name("http:web:http") == ("http", "web", "http")
    with pytest.raises(errors.BadRequest):
        split_name("a:b:c:d")


def test_pod_location() -> None:
    pod = {"metadata": {"name": "p"}, "status": {"podIP": "10.200.0.5"},
           "spec": {"containers": [{"name": "c", "ports": [{"name": "http",
                                                            "containerPort": 8080}]}]}}
    assert pod_location(pod, "") == ("10.200.0.5", 80)
    assert pod_location(pod, "9090") == ("10.200.0.5", 9090)
    assert pod_location(pod, "http") == ("10.200.0.5", 8080)
    with pytest.raises(errors.BadRequest):
        pod_location(pod, "metrics")
    with pytest.raises(errors.ServiceUnavailable):
        pod_location({**pod, "status": {}}, "80")


def test_service_port() -> None:
    svc = {"metadata": {"name": "s"}, "spec": {"ports": [{"name": "http", "port": 80},
                                                         {"name": "admin", "port": 9000}]}}
    assert service_port(svc, "http")["port"] == 80
    assert service_port(svc, "9000")["name"] == "admin"
    with pytest.raises(errors.BadRequest):
        service_port(svc, "")  # several ports: one must be named
    with pytest.raises(errors.ServiceUnavailable):
        service_port(svc, "nope")
    one = {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    assert service_port(one, "")["port"] == 80


def test_ready_endpoints_by_port_name() -> None:
    slices = [
        {"ports": [{"name": "http", "port": 8080}],
         "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}},
                       {"addresses": ["10.0.0.2"], "conditions": {"ready": False}},
                       {"addresses": ["10.0.0.3"]}]},
        {"ports": [{"name": "admin", "port": 9000}],
         "endpoints": [{"addresses": ["10.0.0.4"], "conditions": {"ready": True}}]},
    ]
    assert ready_endpoints(slices, "http") == [("10.0.0.1", 8080), ("10.0.0.3", 8080)]
    assert ready_endpoints(slices, "admin") == [("10.0.0.4", 9000)]
    assert ready_endpoints(slices, "") == []
