"""The `kubelite` command: `up` (all-in-one) and one subcommand per component."""

from __future__ import annotations

import sys

from apiserver.discovery import GIT_VERSION

USAGE = f"""usage: kubelite <command> [flags]

kubelite {GIT_VERSION}: a small but real Kubernetes in Python.

commands:
  up             run the whole cluster in the foreground (etcd + every component)
  apiserver      run the API server (flags as kube-apiserver: --etcd-servers, --secure-port)
  scheduler      run the scheduler (--kubeconfig, --leader-elect)
  controller-manager
                 run the controllers (--kubeconfig, --leader-elect, --controllers)
  kubelet        run a node agent (--kubeconfig, --node-name, --container-runtime-endpoint,
                 --pod-manifest-path, --port)
  runtime        run the CRI runtime service on Docker (--listen, --node-name)
  proxy          run kube-proxy for a node (--kubeconfig, --hostname-override, --proxy-mode
                 iptables|userspace)
  dns            run the cluster DNS server (the kube-dns add-on; --kubeconfig or in-cluster)
  vpc-shell      a shell (or `-- COMMAND`) inside the VPC, for a private endpoint
                 (--data-dir DIR; needs root)
  certs          create, renew or check the cluster PKI; kubeconfigs for new users
                 (create|renew|check-expiration|kubeconfig --data-dir DIR)
  version        print the version

Run `kubelite <command> --help` for a command's flags.
"""


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if args else 2
    cmd, rest = args[0], args[1:]
    if cmd in ("version", "--version"):
        print(f"kubelite {GIT_VERSION}")
        return 0
    if cmd == "up":
        from kubelite.up import main as up_main
        return up_main(rest)
    if cmd in ("apiserver", "kube-apiserver"):
        from apiserver.__main__ import main as apiserver_main
        return apiserver_main(rest)
    if cmd in ("scheduler", "kube-scheduler"):
        from scheduler.__main__ import main as scheduler_main
        return scheduler_main(rest)
    if cmd in ("controller-manager", "kube-controller-manager"):
        from controller_manager.__main__ import main as cm_main
        return cm_main(rest)
    if cmd == "kubelet":
        from kubelet.__main__ import main as kubelet_main
        return kubelet_main(rest, prog="kubelite kubelet")
    if cmd in ("runtime", "container-runtime"):
        from kubelet.runtime.__main__ import main as runtime_main
        return runtime_main(rest)
    if cmd in ("proxy", "kube-proxy"):
        from kube_proxy.__main__ import main as proxy_main
        return proxy_main(rest)
    if cmd == "dns":
        from dns.__main__ import main as dns_main
        return dns_main(rest)
    if cmd == "vpc-shell":
        from kubelite.vpcshell import main as vpc_shell_main
        return vpc_shell_main(rest)
    if cmd == "certs":
        from kubelite.certs import main as certs_main
        return certs_main(rest)
    print(f"kubelite: unknown command {cmd!r}\n", file=sys.stderr)
    print(USAGE, end="", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
