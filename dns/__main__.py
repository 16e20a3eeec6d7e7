"""`python -m dns` / `kubelite dns`: the cluster DNS server, stopped by SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from client.kubeconfig import ClientConfig, ConfigError, in_cluster_config, load_kubeconfig
from client.rest import ApiClient
from dns.app import run
from dns.options import Options, parse_args


def client_config(kubeconfig: str | None) -> ClientConfig:
    """The given kubeconfig, else the in-cluster config (the add-on runs as a pod)."""
    return load_kubeconfig(kubeconfig) if kubeconfig else in_cluster_config()


async def main_async(opts: Options, config: ClientConfig) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with ApiClient(config, component="dns") as api:
        return await run(opts, api, stop)


def main(argv: list[str] | None = None, prog: str = "kubelite dns") -> int:
    opts = parse_args(argv, prog=prog)
    logging.basicConfig(level=logging.DEBUG if opts.verbosity >= 4 else logging.INFO,
                        stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = client_config(opts.kubeconfig)
    except ConfigError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    return asyncio.run(main_async(opts, config))


if __name__ == "__main__":
    sys.exit(main(prog="python -m dns"))
