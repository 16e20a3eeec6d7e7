"""Making sure a container's image is on the node, by its imagePullPolicy (upstream's
pkg/kubelet/images/image_manager.go), with the same events and waiting reasons:

- Never: present or `ErrImageNeverPull`;
- IfNotPresent: present ("already present on machine") or pulled;
- Always: pulled. Failures are `ErrImagePull`, and further attempts within the pull
  back-off (10 s doubling to 5 min, per pod and image) are `ImagePullBackOff`.

kubelite's one deviation: with `Always`, when the pull fails but the image is present on the
node (no registry is reachable in kubelite's usual setting, and `make images` builds the
project's images locally), the local image is used and a Warning event
`ImagePullFailedUsingLocal` says so; while that pull is backing off the local image is used
without trying again. Upstream would fail the container instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc

from kubelet.backoff import IMAGE_PULL_INITIAL, IMAGE_PULL_MAX, Backoff
from kubelet.runtime.client import RuntimeClient

Obj = dict[str, object]
EventFn = Callable[[str, str, str], None]  # (type, reason, message) about the pod


class ImageError(Exception):
    """The image is not available: `reason` is the container's waiting reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def default_pull_policy(image: str) -> str:
    tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
    latest = not tagged or image.endswith(":latest")
    return "Always" if latest else "IfNotPresent"


class ImageManager:
    def __init__(self, cri: RuntimeClient, backoff: Backoff | None = None) -> None:
        self.cri = cri
        self.backoff = backoff or Backoff(IMAGE_PULL_INITIAL, IMAGE_PULL_MAX)

    async def ensure(self, pod_uid: str, container: Obj, event: EventFn) -> str:
        """The image reference (ID) to create the container from."""
        image = str(container.get("image") or "")
        if not image:
            raise ImageError("InvalidImageName", "container has no image")
        policy = str(container.get("imagePullPolicy") or default_pull_policy(image))
        present = await self.cri.image_status(image)
        if policy == "Never":
            if present is None:
                message = (f'Container image "{image}" is not present with pull policy of '
                           f"Never")
                event("Warning", "ErrImageNeverPull", message)
                raise ImageError("ErrImageNeverPull", message)
            return present.id
        if policy == "IfNotPresent" and present is not None:
            event("Normal", "Pulled", f'Container image "{image}" already present on machine')
            return present.id
        key = f"{pod_uid}_{image}"
        now = time.time()
        if self.backoff.in_backoff_since(key, now):
            if present is not None:
                return present.id  # Always, registry unreachable: keep using the local one
            message = f'Back-off pulling image "{image}"'
            event("Normal", "BackOff", message)
            raise ImageError("ImagePullBackOff", message)
        event("Normal", "Pulling", f'Pulling image "{image}"')
        started = time.monotonic()
        try:
            ref = await self.cri.pull_image(image)
        except grpc.aio.AioRpcError as e:
            self.backoff.next(key, now)
            details = e.details() or str(e.code())
            if present is not None:
                event("Warning", "ImagePullFailedUsingLocal",
                      f'Failed to pull image "{image}": {details}; using the image present '
                      f"on the node ({present.id[:19]})")
                return present.id
            event("Warning", "Failed", f'Failed to pull image "{image}": {details}')
            event("Warning", "Failed", "Error: ErrImagePull")
            raise ImageError("ErrImagePull", f'Failed to pull image "{image}": {details}'
                             ) from e
        self.backoff.reset(key)
        took = time.monotonic() - started
        event("Normal", "Pulled", f'Successfully pulled image "{image}" in {took:.3f}s')
        return ref
