"""`kubelite vpc-shell`: the bastion host of a cluster whose endpoint is private.

With `--endpoint-public-access=false` the apiserver listens only on the VPC gateway, as an
EKS private endpoint is reachable only from inside the VPC. This command puts a shell (or
one command) in a fresh network namespace plugged into the VPC bridge like a pod, with
KUBECONFIG=DATA/kubeconfig-private, and removes the namespace when the command exits.

Its address is the VPC's fourth one (network + 3): AWS reserves it in every subnet "for
future use" and ipamd never hands it out (cni/vpc.py reserves the first four and the last),
so it cannot collide with a node or a pod. Network + 2 would be as safe from ipamd, but it
is the VPC's DNS address by AWS's convention, which a later change may well give a use.
One address means one vpc-shell per host at a time; the fixed namespace name says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from cni import hostnet
from cni.vpc import DEFAULT_VPC_CIDR, gateway_of, parse_vpc_cidr

NETNS = "kubelite-vpc-shell"
HOST_IF = "kl-vpcshell"  # the bridge's end of the veth pair (IFNAMSIZ: 15 bytes at most)
SHELL_ADDRESS_OFFSET = 3  # AWS: "reserved for future use"; never an ipamd address


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Own flags before `--`, the command after it (none: an interactive shell)."""
    own, command = argv, []
    if "--" in argv:
        cut = argv.index("--")
        own, command = argv[:cut], argv[cut + 1:]
    p = argparse.ArgumentParser(
        prog="kubelite vpc-shell", usage="kubelite vpc-shell --data-dir DIR [-- COMMAND...]",
        description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--data-dir", required=True, help="the cluster's `kubelite up` data dir")
    p.add_argument("--vpc-cidr", default="",
                   help="the VPC CIDR (default: the cluster's, from DATA/cluster.json)")
    p.add_argument("--bridge", default=hostnet.DEFAULT_BRIDGE)
    a = p.parse_args(own)
    return a, command


def shell_address(vpc_cidr: str) -> str:
    """The shell's address in CIDR form, on the VPC's prefix."""
    vpc = parse_vpc_cidr(vpc_cidr)
    return f"{vpc.network_address + SHELL_ADDRESS_OFFSET}/{vpc.prefixlen}"


def cluster_vpc_cidr(data_dir: Path) -> str:
    try:
        info = json.loads((data_dir / "cluster.json").read_text())
    except (OSError, ValueError):
        return DEFAULT_VPC_CIDR
    return str(info.get("vpcCidr") or DEFAULT_VPC_CIDR)


def main(argv: list[str]) -> int:
    a, command = parse_args(argv)
    data_dir = Path(a.data_dir).resolve()
    kubeconfig = data_dir / "kubeconfig-private"
    if not kubeconfig.exists():
        print(f"kubelite vpc-shell: no {kubeconfig}: start the cluster with "
              f"--endpoint-private-access=true", file=sys.stderr)
        return 1
    if os.geteuid() != 0:
        print("kubelite vpc-shell: needs root (it creates a network namespace)",
              file=sys.stderr)
        return 1
    vpc_cidr = a.vpc_cidr or cluster_vpc_cidr(data_dir)
    try:
        address = shell_address(vpc_cidr)
    except ValueError as e:
        print(f"kubelite vpc-shell: {e}", file=sys.stderr)
        return 2
    if Path("/run/netns", NETNS).exists():
        print(f"kubelite vpc-shell: another vpc-shell is open (or a stale one: `ip netns "
              f"delete {NETNS}`)", file=sys.stderr)
        return 1
    gateway = str(gateway_of(parse_vpc_cidr(vpc_cidr)))
    try:
        hostnet.ip("netns", "add", NETNS)
    except hostnet.NetlinkError as e:
        print(f"kubelite vpc-shell: {e}", file=sys.stderr)
        return 1
    try:
        hostnet.setup_pod_veth(host_if=HOST_IF, netns=f"/run/netns/{NETNS}", ifname="eth0",
                               bridge=a.bridge, address=address, gateway=gateway,
                               mtu=hostnet.DEFAULT_MTU)
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBELITE_VPC_SHELL": address}
        argv_in = command or [os.environ.get("SHELL", "/bin/sh")]
        if not command:
            print(f"kubelite vpc-shell: {address} on {a.bridge}; the apiserver is "
                  f"https://{gateway}; exit to leave", file=sys.stderr, flush=True)
        return subprocess.run(["ip", "netns", "exec", NETNS, *argv_in], env=env,
                              check=False).returncode
    except hostnet.NetlinkError as e:
        print(f"kubelite vpc-shell: {e}", file=sys.stderr)
        return 1
    finally:
        # Deleting the namespace destroys its veth end, and with it the bridge's end.
        subprocess.run(["ip", "netns", "delete", NETNS], capture_output=True, check=False)
        if hostnet.link_exists(HOST_IF):
            hostnet.delete_link(HOST_IF)
