"""The scheduling cycle: filtering, scoring, the FailedScheduling message, preemption text."""

from __future__ import annotations

import random
from typing import Any

import pytest

from scheduler.cache import Cache
from scheduler.framework import (
    Diagnosis,
    FitError,
    Framework,
    Handle,
    default_normalize,
    fit_error_message,
    num_feasible_nodes_to_find,
    unresolvable,
    unschedulable,
)
from scheduler.plugins import DEFAULT_WEIGHTS, default_plugins
from scheduler.preemption import preemption_message
from scheduler.types import PodInfo
from tests.unit.test_scheduler_plugins import cluster, make_node, make_pod


def framework(cache: Cache, **kwargs: Any) -> Framework:
    return Framework(default_plugins(Handle(cache)), DEFAULT_WEIGHTS,
                     rng=random.Random(7), **kwargs)


def fail(cache: Cache, pod: dict[str, Any]) -> str:
    fw = framework(cache)
    with pytest.raises(FitError) as info:
        fw.schedule(PodInfo(pod), cache.node_list())
    error = info.value
    if error.num_all_nodes:
        error.diagnosis.post_filter_msg = preemption_message(fw, error, cache)
    return str(error)


def test_message_counts_and_sorts_reasons_as_upstream() -> None:
    diagnosis = Diagnosis(node_to_status={
        "a": unschedulable("Insufficient cpu"),
        "b": unresolvable("node(s) had untolerated taint {key: value}"),
        "c": unresolvable("node(s) had untolerated taint {key: value}"),
    })
    assert fit_error_message(3, diagnosis) == (
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint "
        "{key: value}.")
    # Sorted as strings, count first: "10 ..." comes before "2 ...", as upstream's sort does.
    many = Diagnosis(node_to_status={
        **{f"x{i}": unschedulable("Insufficient memory") for i in range(10)},
        "y1": unschedulable("Insufficient cpu"), "y2": unschedulable("Insufficient cpu")})
    assert fit_error_message(12, many) == (
        "0/12 nodes are available: 10 Insufficient memory, 2 Insufficient cpu.")


def test_failed_scheduling_message_with_preemption_part() -> None:
    taint = {"key": "key", "value": "value", "effect": "NoSchedule"}
    cache = cluster(make_node("n1", cpu="1"), make_node("n2", taints=[taint]),
                    make_node("n3", taints=[taint]))
    assert fail(cache, make_pod("p", "2")) == (
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint "
        "{key: value}. preemption: 0/3 nodes are available: 1 No preemption victims found "
        "for incoming pod, 2 Preemption is not helpful for scheduling.")


def test_all_nodes_unresolvable_says_preemption_is_not_helpful() -> None:
    cache = cluster(make_node("n1", unschedulable=True), make_node("n2"), make_node("n3"))
    pod = make_pod("p", nodeSelector={"disk": "ssd"})
    assert fail(cache, pod) == (
        "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't match "
        "Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is "
        "not helpful for scheduling.")


def test_preemption_dry_run_reports_what_still_blocks_after_evicting_lower_priority() -> None:
    cache = cluster(make_node("n1", cpu="2"),
                    pods=(make_pod("low", "1", node="n1", priority=0),
                          make_pod("high", "1", node="n1", priority=100)))
    # Evicting "low" frees 1 cpu, not enough for 2: the reason after the dry run stays.
    assert fail(cache, make_pod("p", "2", priority=50)) == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
        "1 Insufficient cpu.")
    # Where evicting would make room, upstream preempts and adds no preemption part.
    assert fail(cache, make_pod("p", "1", priority=50)) == (
        "0/1 nodes are available: 1 Insufficient cpu.")
    never = make_pod("p", "2", priority=50, preemptionPolicy="Never")
    assert fail(cache, never) == ("0/1 nodes are available: 1 Insufficient cpu. "
                                  "preemption: not eligible due to preemptionPolicy=Never.")


def test_no_nodes_at_all() -> None:
    assert fail(Cache(), make_pod("p")) == "no nodes available to schedule pods"


def test_first_rejecting_filter_names_the_reason() -> None:
    # Tainted and too small: only the taint (TaintToleration runs before NodeResourcesFit).
    cache = cluster(make_node("n1", cpu="1", taints=[{"key": "k", "effect": "NoSchedule"}]))
    assert fail(cache, make_pod("p", "2")).startswith(
        "0/1 nodes are available: 1 node(s) had untolerated taint {k: }.")


def test_schedule_picks_the_best_weighted_node() -> None:
    cache = cluster(make_node("busy"), make_node("tainted", taints=[
        {"key": "soft", "effect": "PreferNoSchedule"}]), make_node("best"),
        pods=(make_pod("x", "3", node="busy"),))
    result = framework(cache).schedule(PodInfo(make_pod("p", "100m")), cache.node_list())
    assert result.node == "best"
    assert result.feasible_nodes == 3


def test_ties_are_broken_at_random_and_replicas_spread() -> None:
    cache = cluster(*(make_node(f"n{i}") for i in range(4)))
    fw = framework(cache)
    for i in range(8):
        pod = PodInfo(make_pod(f"r{i}", "100m", owner="rs"))
        cache.assume_pod(pod, fw.schedule(pod, cache.node_list()).node)
    assert sorted(len(n.pods) for n in cache.node_list()) == [2, 2, 2, 2]


def test_filtering_stops_after_enough_feasible_nodes_and_rotates() -> None:
    cache = cluster(*(make_node(f"n{i:04d}") for i in range(1000)))
    fw = framework(cache)
    first = fw.schedule(PodInfo(make_pod("a")), cache.node_list())
    second = fw.schedule(PodInfo(make_pod("b")), cache.node_list())
    assert first.evaluated_nodes == first.feasible_nodes == 420  # 1000 * (50 - 8)%
    assert second.evaluated_nodes == 420
    assert fw._next_start_node == 840


@pytest.mark.parametrize(("nodes", "percentage", "expected"), [
    (50, 0, 50), (100, 0, 100), (1000, 0, 420), (5000, 0, 500), (10_000, 0, 500),
    (1000, 10, 100), (1000, 5, 100), (1000, 100, 1000), (1000, 30, 300)])
def test_num_feasible_nodes_to_find(nodes: int, percentage: int, expected: int) -> None:
    assert num_feasible_nodes_to_find(nodes, percentage) == expected


def test_default_normalize() -> None:
    scores = [0, 5, 10]
    default_normalize(scores)
    assert scores == [0, 50, 100]
    reverse = [0, 1, 4]
    default_normalize(reverse, reverse=True)
    assert reverse == [100, 75, 0]
    zeros = [0, 0]
    default_normalize(zeros, reverse=True)
    assert zeros == [100, 100]
