"""What preemption could do for a pod that fits nowhere: the "preemption: ..." part of the
FailedScheduling message, as upstream's DefaultPreemption PostFilter reports it.

kubelite evaluates preemption as a dry run only — it never evicts. For each node:
- rejected for a reason no eviction can fix (UnschedulableAndUnresolvable: taints, node
  affinity, cordon...): "Preemption is not helpful for scheduling";
- no pods of lower priority than the incoming one: "No preemption victims found for
  incoming pod";
- otherwise the filters run again as if every lower-priority pod were gone; if the pod
  still does not fit, that filter's reason is reported.
If some node would fit after evictions, upstream would preempt and nominate it, and its
message carries no preemption part; kubelite then also leaves it out (and evicts nothing).
"""

from __future__ import annotations

from scheduler.cache import Cache
from scheduler.framework import (
    Code,
    Diagnosis,
    FitError,
    Framework,
    Status,
    fit_error_message,
    unresolvable,
)

NOT_HELPFUL = unresolvable("Preemption is not helpful for scheduling")
NO_VICTIMS = unresolvable("No preemption victims found for incoming pod")
NOT_ELIGIBLE_NEVER = "not eligible due to preemptionPolicy=Never."


def preemption_message(framework: Framework, error: FitError, cache: Cache) -> str:
    """The PostFilter message for `error` ("" when preemption would find a node)."""
    pod = error.pod
    if (pod.pod.get("spec") or {}).get("preemptionPolicy") == "Never":
        return f"preemption: {NOT_ELIGIBLE_NEVER}"
    statuses: dict[str, Status] = {}
    would_fit = False
    for name, status in error.diagnosis.node_to_status.items():
        node = cache.node(name)
        if status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE or node is None:
            statuses[name] = NOT_HELPFUL
            continue
        victims = [p for p in node.pods.values() if p.priority < pod.priority]
        if not victims:
            statuses[name] = NO_VICTIMS
            continue
        trial = error.state.clone() if error.state is not None else None
        if trial is None:
            statuses[name] = status
            continue
        for plugin in framework.pre_filter_plugins:
            for victim in victims:
                plugin.remove_pod(trial, pod, victim, node)
        rejected = framework.run_filters(trial, pod, node.without_pods(v.key for v in victims))
        if rejected is None:
            would_fit = True
        else:
            statuses[name] = rejected[1]
    if would_fit:
        return ""
    return "preemption: " + fit_error_message(error.num_all_nodes,
                                              Diagnosis(node_to_status=statuses))
