"""What the app needs from a proxier (iptables or userspace)."""

from __future__ import annotations

from typing import Protocol

from kube_proxy.model import Snapshot


class Proxier(Protocol):
    mode: str

    async def start(self) -> None:
        """We now program this kernel: prepare (and clear the other mode's leftovers)."""

    async def sync(self, snapshot: Snapshot, full: bool) -> None:
        """Make the data path match `snapshot`; raise on failure (the runner retries)."""

    async def stop(self, cleanup: bool) -> None:
        """Stop; with `cleanup`, remove everything this proxier put into the kernel."""
