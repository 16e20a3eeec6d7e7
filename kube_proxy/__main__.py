"""`python -m kube_proxy --kubeconfig K --hostname-override NODE [--proxy-mode iptables]`:
kube-proxy, stopped by SIGINT or SIGTERM (which remove its rules, unless another kube-proxy
stands by to take them over). `--cleanup` removes everything kube-proxy made and exits."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from client.kubeconfig import ConfigError, load_kubeconfig
from client.rest import ApiClient
from kube_proxy.app import KubeProxy, cleanup_all, select_proxier
from kube_proxy.options import Options, parse_args

log = logging.getLogger("kube_proxy")


async def main_async(opts: Options) -> int:
    if opts.cleanup:
        return await cleanup_all(opts)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        config = load_kubeconfig(opts.kubeconfig)
    except ConfigError as e:
        log.error("kubeconfig: %s", e)
        return 1
    proxier = await select_proxier(opts)
    async with ApiClient(config, component="kube-proxy") as api:
        code = await KubeProxy(opts, api, proxier).run(stop)
    # Stopped and cleaned up: a repeated SIGTERM must not turn a clean exit into a killed
    # process once the loop (and with it our handlers) is gone.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
        signal.signal(sig, signal.SIG_IGN)
    return code


def main(argv: list[str] | None = None, prog: str = "kubelite proxy") -> int:
    opts = parse_args(argv, prog=prog)
    logging.basicConfig(level=logging.DEBUG if opts.verbosity >= 4 else logging.INFO,
                        stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(main_async(opts))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(prog="python -m kube_proxy"))
