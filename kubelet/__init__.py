"""The kubelet: the node agent (see DESIGN.md §3); `runtime/` is its CRI runtime and client."""
