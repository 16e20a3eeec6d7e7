"""The kubelet's side of the CRI: a thin async wrapper over the generated gRPC stubs.

Requests and answers stay the generated protobuf messages (`proto.cri.api_pb2`), so the
kubelet speaks exactly the CRI and nothing here needs to change when a field is used; the
wrapper only fills in request envelopes, unwraps responses and sets deadlines. Failures are
`grpc.aio.AioRpcError`; `rpc_code(e)` gives the status code (NOT_FOUND, ...).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import NamedTuple, Self

import grpc

from proto.cri import api_pb2 as api
from proto.cri import api_pb2_grpc as api_grpc

_MAX_MESSAGE = 64 * 1024 * 1024  # as the runtime's: ExecSync output is up to 16 MiB a stream
# Added to deadlines of calls that legitimately wait (stop with a grace period, exec).
_SLACK = 30.0


class ExecSyncResult(NamedTuple):
    stdout: bytes
    stderr: bytes
    exit_code: int


def rpc_code(error: BaseException) -> grpc.StatusCode | None:
    """The gRPC status code of a failed call, None for other exceptions."""
    return error.code() if isinstance(error, grpc.aio.AioRpcError) else None


def _target(endpoint: str) -> str:
    return endpoint if endpoint.startswith("unix:") else f"unix://{endpoint}"


class RuntimeClient:
    """CRI client for one runtime endpoint (`unix:///path.sock` or a path);
    use as `async with RuntimeClient(endpoint) as cri:`."""

    def __init__(self, endpoint: str, *, timeout: float = 120.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._channel = grpc.aio.insecure_channel(
            _target(endpoint), options=[("grpc.max_receive_message_length", _MAX_MESSAGE),
                                        ("grpc.max_send_message_length", _MAX_MESSAGE)])
        self.runtime = api_grpc.RuntimeServiceStub(self._channel)
        self.images = api_grpc.ImageServiceStub(self._channel)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until the runtime's socket accepts connections (TimeoutError if not)."""
        await asyncio.wait_for(self._channel.channel_ready(), timeout)

    # --- runtime --------------------------------------------------------------------------

    async def version(self) -> api.VersionResponse:
        return await self.runtime.Version(api.VersionRequest(version="v1"),
                                          timeout=self.timeout)

    async def status(self, verbose: bool = False) -> api.StatusResponse:
        return await self.runtime.Status(api.StatusRequest(verbose=verbose),
                                         timeout=self.timeout)

    # --- sandboxes ------------------------------------------------------------------------

    async def run_pod_sandbox(self, config: api.PodSandboxConfig,
                              runtime_handler: str = "") -> str:
        """Create and start the pod's sandbox (network included); its ID."""
        response = await self.runtime.RunPodSandbox(
            api.RunPodSandboxRequest(config=config, runtime_handler=runtime_handler),
            timeout=self.timeout)
        return str(response.pod_sandbox_id)

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        await self.runtime.StopPodSandbox(api.StopPodSandboxRequest(pod_sandbox_id=sandbox_id),
                                          timeout=self.timeout + _SLACK)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        await self.runtime.RemovePodSandbox(
            api.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id),
            timeout=self.timeout + _SLACK)

    async def pod_sandbox_status(self, sandbox_id: str, verbose: bool = False
                                 ) -> api.PodSandboxStatusResponse:
        """The whole response: `.status` (state, network.ip, ...) and, verbose, `.info`."""
        return await self.runtime.PodSandboxStatus(
            api.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id, verbose=verbose),
            timeout=self.timeout)

    async def list_pod_sandboxes(self, labels: Mapping[str, str] | None = None, *,
                                 state: api.PodSandboxState | None = None,
                                 sandbox_id: str = "") -> list[api.PodSandbox]:
        """Sandboxes matching all of `labels`, in `state` (api.SANDBOX_READY/NOTREADY)."""
        f = api.PodSandboxFilter(id=sandbox_id, label_selector=dict(labels or {}))
        if state is not None:
            f.state.state = state
        response = await self.runtime.ListPodSandbox(api.ListPodSandboxRequest(filter=f),
                                                     timeout=self.timeout)
        return list(response.items)

    # --- containers -----------------------------------------------------------------------

    async def create_container(self, sandbox_id: str, config: api.ContainerConfig,
                               sandbox_config: api.PodSandboxConfig) -> str:
        response = await self.runtime.CreateContainer(
            api.CreateContainerRequest(pod_sandbox_id=sandbox_id, config=config,
                                       sandbox_config=sandbox_config),
            timeout=self.timeout)
        return str(response.container_id)

    async def start_container(self, container_id: str) -> None:
        await self.runtime.StartContainer(api.StartContainerRequest(container_id=container_id),
                                          timeout=self.timeout)

    async def stop_container(self, container_id: str, timeout: int) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds (0: at once)."""
        await self.runtime.StopContainer(
            api.StopContainerRequest(container_id=container_id, timeout=timeout),
            timeout=self.timeout + timeout + _SLACK)

    async def remove_container(self, container_id: str) -> None:
        await self.runtime.RemoveContainer(
            api.RemoveContainerRequest(container_id=container_id), timeout=self.timeout)

    async def container_status(self, container_id: str, verbose: bool = False
                               ) -> api.ContainerStatus:
        response = await self.runtime.ContainerStatus(
            api.ContainerStatusRequest(container_id=container_id, verbose=verbose),
            timeout=self.timeout)
        return response.status

    async def list_containers(self, labels: Mapping[str, str] | None = None, *,
                              sandbox_id: str = "", state: api.ContainerState | None = None,
                              container_id: str = "") -> list[api.Container]:
        """Containers matching all of `labels`, in one sandbox, in `state`
        (api.CONTAINER_CREATED/RUNNING/EXITED/UNKNOWN)."""
        f = api.ContainerFilter(id=container_id, pod_sandbox_id=sandbox_id,
                                label_selector=dict(labels or {}))
        if state is not None:
            f.state.state = state
        response = await self.runtime.ListContainers(api.ListContainersRequest(filter=f),
                                                     timeout=self.timeout)
        return list(response.containers)

    async def update_container_resources(self, container_id: str,
                                         resources: api.LinuxContainerResources) -> None:
        await self.runtime.UpdateContainerResources(
            api.UpdateContainerResourcesRequest(container_id=container_id, linux=resources),
            timeout=self.timeout)

    async def reopen_container_log(self, container_id: str) -> None:
        await self.runtime.ReopenContainerLog(
            api.ReopenContainerLogRequest(container_id=container_id), timeout=self.timeout)

    async def exec_sync(self, container_id: str, cmd: Sequence[str],
                        timeout: int = 0) -> ExecSyncResult:
        """Run `cmd` in the container; after `timeout` seconds (0: none) the call fails with
        DEADLINE_EXCEEDED."""
        response = await self.runtime.ExecSync(
            api.ExecSyncRequest(container_id=container_id, cmd=list(cmd), timeout=timeout),
            timeout=timeout + _SLACK if timeout else None)
        return ExecSyncResult(bytes(response.stdout), bytes(response.stderr),
                              int(response.exit_code))

    async def container_stats(self, container_id: str) -> api.ContainerStats:
        response = await self.runtime.ContainerStats(
            api.ContainerStatsRequest(container_id=container_id), timeout=self.timeout)
        return response.stats

    async def list_container_stats(self, labels: Mapping[str, str] | None = None, *,
                                   sandbox_id: str = "") -> list[api.ContainerStats]:
        f = api.ContainerStatsFilter(pod_sandbox_id=sandbox_id,
                                     label_selector=dict(labels or {}))
        response = await self.runtime.ListContainerStats(
            api.ListContainerStatsRequest(filter=f), timeout=self.timeout)
        return list(response.stats)

    # --- images ---------------------------------------------------------------------------

    async def list_images(self, image: str = "") -> list[api.Image]:
        f = api.ImageFilter(image=api.ImageSpec(image=image)) if image else None
        response = await self.images.ListImages(api.ListImagesRequest(filter=f),
                                                 timeout=self.timeout)
        return list(response.images)

    async def image_status(self, image: str) -> api.Image | None:
        """The image if present on the node, else None."""
        response = await self.images.ImageStatus(
            api.ImageStatusRequest(image=api.ImageSpec(image=image)), timeout=self.timeout)
        return response.image if response.HasField("image") else None

    async def pull_image(self, image: str, auth: api.AuthConfig | None = None,
                         sandbox_config: api.PodSandboxConfig | None = None) -> str:
        """Pull `image`; its image ref (the image ID). Pulls can take long: no deadline."""
        response = await self.images.PullImage(
            api.PullImageRequest(image=api.ImageSpec(image=image), auth=auth,
                                 sandbox_config=sandbox_config))
        return str(response.image_ref)

    async def remove_image(self, image: str) -> None:
        await self.images.RemoveImage(api.RemoveImageRequest(image=api.ImageSpec(image=image)),
                                      timeout=self.timeout)
