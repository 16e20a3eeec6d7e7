"""kubelite's pod network, modelled on the AWS VPC CNI.

- `eni`: instance types and their ENI/IP limits; the max-pods formula.
- `vpc`: the VPC's address plan and the cluster-wide ENI table (pure data and maths).
- `ec2`: that table kept in a ConfigMap and changed only by compare-and-swap, which plays
  the part of the EC2 API (create/attach ENIs, assign and unassign addresses).
- `warmpool`: when to grow or shrink a node's pool (WARM_ENI_TARGET, WARM_IP_TARGET,
  MINIMUM_IP_TARGET, WARM_PREFIX_TARGET), as pure functions.
- `datastore`: a node's ENIs, addresses and assignments, with the checkpoint file.
- `ipamd`: the per-node daemon that serves `proto/ipamd.proto` on a unix socket.
- `hostnet`: the host side (the VPC bridge) and the `ip` commands the plugin runs.
- `plugin`: the CNI plugin executable (`cni/kubelite-cni`).

See docs/cni.md.
"""
