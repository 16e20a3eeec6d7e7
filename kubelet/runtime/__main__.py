"""`python -m kubelet.runtime --listen unix:///run/kubelite/cri.sock`: the CRI runtime service
(Docker-backed, like cri-dockerd) as its own process, stopped by SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import signal
import sys

from kubelet.runtime.docker import DEFAULT_SOCKET, DockerError
from kubelet.runtime.server import DEFAULT_SANDBOX_IMAGE, serve


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m kubelet.runtime",
                                description="kubelite's CRI runtime service on Docker")
    # --container-runtime-endpoint is cri-dockerd's name for the same flag.
    p.add_argument("--listen", "--container-runtime-endpoint", dest="listen",
                   default="unix:///var/run/kubelite/cri.sock",
                   help="unix socket to serve the CRI on")
    p.add_argument("--docker-endpoint", default=f"unix://{DEFAULT_SOCKET}",
                   help="dockerd's unix socket")
    p.add_argument("--root-directory", default="/var/lib/kubelite/runtime",
                   help="where sandbox network checkpoints are kept")
    p.add_argument("--pod-infra-container-image", default=DEFAULT_SANDBOX_IMAGE,
                   help="image of the sandbox (pause) container")
    p.add_argument("--pod-infra-command", default="",
                   help="command for the sandbox container when the image has no pause "
                        "entrypoint, e.g. for busybox: sh -c 'trap \"exit 0\" TERM; ...'")
    p.add_argument("--node-name", default="",
                   help="label the node's containers, so runtimes sharing a dockerd stay apart")
    # cri-dockerd's names: with --network-plugin=cni the runtime execs the CNI plugin for
    # every sandbox, with the network configuration found in --cni-conf-dir.
    p.add_argument("--network-plugin", choices=("", "cni"), default="")
    p.add_argument("--cni-conf-dir", default="/etc/cni/net.d")
    p.add_argument("--cni-bin-dir", default="", help="where the CNI plugin executables are "
                   "(default: kubelite's own cni/ directory)")
    p.add_argument("-v", "--v", type=int, default=0, help="log verbosity (>= 4: debug)")
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    docker_socket = args.docker_endpoint.removeprefix("unix://")
    plugin = None
    if args.network_plugin == "cni":
        from kubelet.network import DEFAULT_BIN_DIR, cni_plugin_from_dirs
        plugin = cni_plugin_from_dirs(args.cni_conf_dir, args.cni_bin_dir or DEFAULT_BIN_DIR)
    await serve(args.listen, stop=stop, docker_socket=docker_socket,
                root_dir=args.root_directory, sandbox_image=args.pod_infra_container_image,
                sandbox_command=shlex.split(args.pod_infra_command) or None,
                node_name=args.node_name, network_plugin=plugin)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.v >= 4 else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(run(args))
    except DockerError as e:
        logging.getLogger("kubelet.runtime").error("cannot serve the CRI: %s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
