"""The scheduler cache: node totals, assumed pods (confirm, forget, expire), zone order."""

from __future__ import annotations

import pytest

from scheduler.cache import Cache
from scheduler.options import parse_args, parse_duration
from scheduler.types import PodInfo
from tests.unit.test_scheduler_plugins import make_node, make_pod


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_requested_is_the_sum_of_bound_pods() -> None:
    cache = Cache()
    cache.add_node(make_node("n1"))
    cache.add_pod(make_pod("a", "500m", "1Gi", node="n1"))
    cache.add_pod(make_pod("b", "250m", node="n1"))
    node = cache.node("n1")
    assert node is not None
    assert (node.requested.milli_cpu, node.requested.memory) == (750, 1024**3)
    assert len(node.pods) == 2
    cache.remove_pod(make_pod("a", node="n1"))
    assert node.requested.milli_cpu == 250


def test_assumed_pod_counts_until_confirmed_or_forgotten() -> None:
    cache = Cache()
    cache.add_node(make_node("n1"))
    pod = PodInfo(make_pod("p", "1"))
    placed = cache.assume_pod(pod, "n1")
    assert placed.node_name == "n1" and pod.node_name == ""  # the original is untouched
    assert cache.is_assumed("default/p")
    node = cache.node("n1")
    assert node is not None and node.requested.milli_cpu == 1000
    with pytest.raises(ValueError):
        cache.assume_pod(pod, "n1")
    cache.forget_pod("default/p")
    assert node.requested.milli_cpu == 0 and not cache.is_assumed("default/p")


def test_informer_add_confirms_an_assumption_even_on_another_node() -> None:
    cache = Cache()
    cache.add_node(make_node("n1"))
    cache.add_node(make_node("n2"))
    cache.assume_pod(PodInfo(make_pod("p", "1")), "n1")
    cache.add_pod(make_pod("p", "1", node="n2"))  # someone else bound it elsewhere
    n1, n2 = cache.node("n1"), cache.node("n2")
    assert n1 is not None and n2 is not None
    assert (n1.requested.milli_cpu, n2.requested.milli_cpu) == (0, 1000)
    assert not cache.is_assumed("default/p")
    cache.forget_pod("default/p")  # a late forget must not drop a confirmed pod
    assert n2.requested.milli_cpu == 1000


def test_assumed_pods_expire_only_after_binding_finished() -> None:
    clock = FakeClock()
    cache = Cache(ttl=30, clock=clock)
    cache.add_node(make_node("n1"))
    cache.assume_pod(PodInfo(make_pod("p", "1")), "n1")
    clock.now = 1000
    assert cache.cleanup_expired() == []  # still binding: never expires
    cache.finish_binding("default/p")
    clock.now += 29
    assert cache.cleanup_expired() == []
    clock.now += 2
    assert cache.cleanup_expired() == ["default/p"]
    node = cache.node("n1")
    assert node is not None and node.requested.milli_cpu == 0


def test_deleted_node_keeps_its_pods_counted_until_they_go() -> None:
    cache = Cache()
    cache.add_node(make_node("n1"))
    cache.add_pod(make_pod("p", "1", node="n1"))
    cache.remove_node(make_node("n1"))
    assert cache.node("n1") is None and cache.node_list() == []
    cache.add_node(make_node("n1"))  # re-created under the same name
    node = cache.node("n1")
    assert node is not None and node.requested.milli_cpu == 1000
    cache.remove_node(make_node("n1"))
    cache.remove_pod(make_pod("p", node="n1"))
    cache.add_node(make_node("n1"))
    node = cache.node("n1")
    assert node is not None and node.requested.milli_cpu == 0


def test_pod_on_unknown_node_is_counted_when_the_node_appears() -> None:
    cache = Cache()
    cache.add_pod(make_pod("p", "1", node="late"))
    assert cache.node_list() == []
    cache.add_node(make_node("late"))
    node = cache.node("late")
    assert node is not None and node.requested.milli_cpu == 1000


def test_node_list_interleaves_zones() -> None:
    cache = Cache()
    for name, zone in (("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b"), ("c1", "c")):
        cache.add_node(make_node(name, zone=zone))
    assert [n.name for n in cache.node_list()] == ["a1", "b1", "c1", "a2", "a3"]
    cache.update_node(make_node("a3", zone="b"))  # zones: a (a1 a2), b (a3 b1), c (c1)
    assert [n.name for n in cache.node_list()] == ["a1", "a3", "c1", "a2", "b1"]
    cache.remove_node(make_node("b1"))
    assert [n.name for n in cache.node_list()] == ["a1", "a3", "c1", "a2"]


def test_affinity_counters_follow_pods() -> None:
    cache = Cache()
    cache.add_node(make_node("n1"))
    anti = make_pod("p", node="n1", affinity={"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"a": "b"}},
             "topologyKey": "kubernetes.io/hostname"}]}})
    cache.add_pod(anti)
    assert (cache.pods_with_affinity, cache.pods_with_required_anti_affinity) == (1, 1)
    cache.remove_pod(anti)
    assert (cache.pods_with_affinity, cache.pods_with_required_anti_affinity) == (0, 0)


def test_options_parse_kube_scheduler_flags() -> None:
    o = parse_args(["--kubeconfig", "/k", "--leader-elect-lease-duration=2s",
                    "--leader-elect-renew-deadline=1.5s", "--leader-elect-retry-period=300ms",
                    "--scheduler-name", "other", "-v", "2"])
    assert (o.kubeconfig, o.lease_duration, o.renew_deadline, o.retry_period) == (
        "/k", 2.0, 1.5, 0.3)
    assert (o.scheduler_name, o.verbosity, o.leader_elect) == ("other", 2, True)
    assert parse_args(["--leader-elect=false"]).leader_elect is False
    assert parse_duration("1m30s") == 90.0
    with pytest.raises(SystemExit):
        parse_args(["--leader-elect-lease-duration=1s", "--leader-elect-renew-deadline=2s"])
