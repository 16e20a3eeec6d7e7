"""`python -m kubelet --kubeconfig K --node-name N --container-runtime-endpoint unix:///...`:
the node agent, stopped by SIGINT or SIGTERM (its containers keep running)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from client.kubeconfig import ConfigError, load_kubeconfig
from client.rest import ApiClient
from kubelet.kubelet import Kubelet
from kubelet.options import Options, parse_args
from kubelet.runtime.client import RuntimeClient


async def main_async(opts: Options) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        config = load_kubeconfig(opts.kubeconfig)
    except ConfigError as e:
        logging.getLogger("kubelet").error("kubeconfig: %s", e)
        return 1
    async with ApiClient(config, component="kubelet") as api, \
            RuntimeClient(opts.container_runtime_endpoint) as cri:
        await Kubelet(opts, api, cri).run(stop)
    return 0


def main(argv: list[str] | None = None, prog: str = "python -m kubelet") -> int:
    opts = parse_args(argv, prog=prog)
    logging.basicConfig(level=logging.DEBUG if opts.verbosity >= 4 else logging.INFO,
                        stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(main_async(opts))


if __name__ == "__main__":
    sys.exit(main())
