"""The scheduler's picture of the cluster: nodes and the pods on them (upstream internal/cache).

Informers feed it bound pods and nodes. The scheduler adds one more kind of pod: an *assumed*
pod, placed on its node the moment the scheduler decides, before the bind request has even
been sent. Without that, the next pod — scheduled while the bind is still in flight — would
see the node as emptier than it is and the two would overcommit it.

An assumed pod's life:
- `assume_pod` places it; `forget_pod` takes it back (the bind failed);
- `finish_binding` starts its expiry clock once the bind request returned;
- the informer's add for the bound pod confirms it (`add_pod`), possibly on another node
  if someone else bound it first;
- if no confirmation comes within `ttl` seconds of the bind finishing, `cleanup_expired`
  drops it, so a lost watch event cannot leak capacity forever.

All methods run on the event loop thread; nothing here awaits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from scheduler.types import NodeInfo, Obj, PodInfo

log = logging.getLogger(__name__)

DEFAULT_ASSUMED_TTL = 30.0


@dataclass(slots=True)
class _PodState:
    pod: PodInfo
    assumed: bool
    deadline: float | None = None  # set once binding finished, for assumed pods


class Cache:
    """Nodes by name, pods by key, and which pods are only assumed."""

    def __init__(self, ttl: float = DEFAULT_ASSUMED_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._nodes: dict[str, NodeInfo] = {}
        self._pods: dict[str, _PodState] = {}
        self._order: list[NodeInfo] | None = None  # zone-interleaved; None when stale
        self.pods_with_affinity = 0
        self.pods_with_required_anti_affinity = 0

    # --- reads ----------------------------------------------------------------------------

    def node_list(self) -> list[NodeInfo]:
        """Nodes that exist, interleaved by zone (upstream nodeTree).

        Scheduling may stop after finding enough feasible nodes; interleaving makes the
        nodes it looks at a fair sample of every zone rather than the first zone in full.
        """
        if self._order is None:
            zones: dict[str, list[NodeInfo]] = {}
            for info in self._nodes.values():
                if info.node is not None:
                    zones.setdefault(info.zone, []).append(info)
            order: list[NodeInfo] = []
            lists = list(zones.values())
            for i in range(max((len(z) for z in lists), default=0)):
                order.extend(z[i] for z in lists if i < len(z))
            self._order = order
        return self._order

    def node(self, name: str) -> NodeInfo | None:
        info = self._nodes.get(name)
        return info if info is not None and info.node is not None else None

    def pod(self, key: str) -> PodInfo | None:
        state = self._pods.get(key)
        return state.pod if state is not None else None

    def is_assumed(self, key: str) -> bool:
        state = self._pods.get(key)
        return state is not None and state.assumed

    def assumed_keys(self) -> list[str]:
        return [key for key, state in self._pods.items() if state.assumed]

    def __len__(self) -> int:
        return len(self._pods)

    def iter_pods(self) -> Iterator[PodInfo]:
        for state in self._pods.values():
            yield state.pod

    # --- nodes ----------------------------------------------------------------------------

    def add_node(self, node: Obj) -> None:
        name = str(node["metadata"]["name"])
        info = self._nodes.get(name)
        if info is None:
            self._nodes[name] = NodeInfo(name, node)
        else:
            info.set_node(node)  # it may have existed as a placeholder for its pods
        self._order = None

    def update_node(self, node: Obj) -> None:
        name = str(node["metadata"]["name"])
        info = self._nodes.get(name)
        if info is None:
            self.add_node(node)
            return
        old_zone = info.zone
        info.set_node(node)
        if info.zone != old_zone:
            self._order = None

    def remove_node(self, node: Obj) -> None:
        name = str(node["metadata"]["name"])
        info = self._nodes.get(name)
        if info is None:
            return
        if info.pods:
            # Its pods are still bound to it until they are deleted; keep counting them
            # so a node re-created under the same name starts with the right totals.
            info.clear_node()
        else:
            del self._nodes[name]
        self._order = None

    # --- pods -----------------------------------------------------------------------------

    def assume_pod(self, pod: PodInfo, node_name: str) -> PodInfo:
        """Place `pod` on `node_name` before the apiserver knows; returns the placed copy."""
        if pod.key in self._pods:
            raise ValueError(f"pod {pod.key} is already in the cache")
        placed = pod.with_node(node_name)
        self._place(placed)
        self._pods[pod.key] = _PodState(placed, assumed=True)
        return placed

    def finish_binding(self, key: str) -> None:
        state = self._pods.get(key)
        if state is not None and state.assumed:
            state.deadline = self._clock() + self.ttl

    def forget_pod(self, key: str) -> None:
        """Undo `assume_pod` (the bind failed); a confirmed pod is left alone."""
        state = self._pods.get(key)
        if state is not None and state.assumed:
            self._unplace(state.pod)
            del self._pods[key]

    def add_pod(self, pod: Obj) -> None:
        """A bound pod reported by the informer: confirm an assumption or add it."""
        info = PodInfo(pod)
        state = self._pods.get(info.key)
        if state is not None:
            if state.assumed and state.pod.node_name != info.node_name:
                log.warning("pod %s was assumed on %s but is bound to %s", info.key,
                            state.pod.node_name, info.node_name)
            self._unplace(state.pod)
        self._place(info)
        self._pods[info.key] = _PodState(info, assumed=False)

    def update_pod(self, pod: Obj) -> None:
        self.add_pod(pod)  # replace whatever was there, assumed or not

    def remove_pod(self, pod: Obj) -> None:
        md = pod.get("metadata") or {}
        key = f"{md.get('namespace') or ''}/{md.get('name') or ''}"
        state = self._pods.pop(key, None)
        if state is not None:
            self._unplace(state.pod)

    def cleanup_expired(self) -> list[str]:
        """Drop assumed pods whose bind finished `ttl` ago without a confirmation."""
        now = self._clock()
        expired = [key for key, s in self._pods.items()
                   if s.assumed and s.deadline is not None and s.deadline <= now]
        for key in expired:
            log.warning("assumed pod %s expired without confirmation", key)
            state = self._pods.pop(key)
            self._unplace(state.pod)
        return expired

    def _place(self, pod: PodInfo) -> None:
        info = self._nodes.get(pod.node_name)
        if info is None:
            info = self._nodes[pod.node_name] = NodeInfo(pod.node_name)  # node not seen yet
        info.add_pod(pod)
        self.pods_with_affinity += pod.has_affinity
        self.pods_with_required_anti_affinity += bool(pod.required_anti_affinity)

    def _unplace(self, pod: PodInfo) -> None:
        info = self._nodes.get(pod.node_name)
        if info is None or info.remove_pod(pod.key) is None:
            return
        self.pods_with_affinity -= pod.has_affinity
        self.pods_with_required_anti_affinity -= bool(pod.required_anti_affinity)
        if info.node is None and not info.pods:
            del self._nodes[pod.node_name]
