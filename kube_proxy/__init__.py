"""kube-proxy for kubelite: makes Service ClusterIPs and NodePorts reach ready endpoints.

- `model`: Services and EndpointSlices reduced to service ports and endpoints (pure), kept
  per Service by `SnapshotBuilder` so that a sync recomputes only the changed Services.
- `rules`: the iptables content for a snapshot, chain names, and the per-chain diff (pure);
  `RuleCache` keeps each service port's generated rules and regenerates only changed ones.
- `iptables`: running iptables / iptables-restore / iptables-save.
- `proxier`: the iptables proxier (applies rules, partial and full syncs, cleanup).
- `userspace`: the userspace proxier (forwards TCP/UDP itself) and `balancer` (endpoint choice).
- `netif`: `ip` commands (the ClusterIP interface, local addresses).
- `lock`: one programmer per kernel (network namespace); `runner`: coalesced syncs.
- `app`: wires informers, the lock, a proxier and the health server together.

See docs/kube-proxy.md.
"""
