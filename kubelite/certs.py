"""`kubelite certs`: create, renew and inspect the cluster PKI, and hand out kubeconfigs,
as `kubeadm certs` does for components run separately from `kubelite up`.

    kubelite certs create --data-dir DIR [--node NAME=IP[,IP]]... [--advertise-address IP]...
    kubelite certs renew --data-dir DIR [same flags]
    kubelite certs check-expiration --data-dir DIR
    kubelite certs kubeconfig --data-dir DIR --user NAME [--group G]... [--days N] [-o FILE]

Every error is one line on stderr: exit code 2 for bad usage, 1 for anything else.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from client.kubeconfig import ConfigError, load_kubeconfig, write_kubeconfig
from kubelite import pki as pkilib

PROG = "kubelite certs"
DEFAULT_SERVER = "https://127.0.0.1:6443"
DEFAULT_SERVICE_RANGE = "10.96.0.0/12"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2), not the usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


class _Failure(Exception):
    """An error to print as one line with exit code 1."""


def _node_flag(value: str) -> tuple[str, list[str]]:
    name, sep, ips = value.partition("=")
    if not sep or not ips:
        raise argparse.ArgumentTypeError(f"{value!r} is not NAME=IP[,IP...]")
    try:
        return pkilib.check_node_name(name), [str(pkilib.parse_ip(ip)) for ip in ips.split(",")]
    except pkilib.PkiError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _ip_flag(value: str) -> str:
    try:
        return str(pkilib.parse_ip(value))
    except pkilib.PkiError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _service_ip_flag(value: str) -> str:
    """The `kubernetes` Service's address: the first address of the (primary) range."""
    ranges = []
    for part in value.split(","):
        try:
            ranges.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid CIDR {part!r}") from None
    if ranges[0].num_addresses < 4:
        raise argparse.ArgumentTypeError(f"service range {ranges[0]} is too small")
    return str(ranges[0].network_address + 1)


def _server_flag(value: str) -> str:
    if not value.startswith("https://") or len(value) <= len("https://"):
        raise argparse.ArgumentTypeError(f"{value!r} is not an https:// URL")
    return value.rstrip("/")


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of days")
    return n


def _parser() -> _Parser:
    p = _Parser(prog=PROG, description="Manage the cluster PKI under DATA/pki.")
    sub = p.add_subparsers(dest="command", required=True, metavar="command")

    def data_dir(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--data-dir", required=True, type=Path,
                        help="the cluster's data directory (the PKI is DATA/pki)")

    def server(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--server", type=_server_flag,
                        help="apiserver URL for kubeconfigs (default: the one in "
                             f"DATA/kubeconfig, else {DEFAULT_SERVER})")

    for name, what in (("create", "create what is missing, keep what is valid"),
                       ("renew", "reissue every leaf certificate (not the CAs nor sa.key)")):
        sp = sub.add_parser(name, help=what, description=what)
        data_dir(sp)
        sp.add_argument("--node", action="append", default=[], type=_node_flag,
                        metavar="NAME=IP[,IP]", help="a node's kubelet certificates "
                        "(nodes already under DATA/pki/nodes keep their addresses)")
        sp.add_argument("--advertise-address", action="append", default=[], type=_ip_flag,
                        metavar="IP", help="an address the apiserver is reached at")
        sp.add_argument("--service-cluster-ip-range", default=DEFAULT_SERVICE_RANGE,
                        type=_service_ip_flag, dest="service_ip", metavar="CIDR")
        sp.add_argument("--cluster-domain", default="cluster.local")
        sp.add_argument("--etcd-name", action="append", default=[], metavar="NAME|IP",
                        help="an extra DNS name or IP for etcd's certificates")
        server(sp)

    sp = sub.add_parser("check-expiration", help="show when every certificate expires")
    data_dir(sp)

    sp = sub.add_parser("kubeconfig", help="a kubeconfig for a new user, signed by the CA",
                        description="Write a kubeconfig whose client certificate (CN=user, "
                                    "O=groups) is signed by the cluster CA.")
    data_dir(sp)
    sp.add_argument("--user", required=True)
    sp.add_argument("--group", action="append", default=[])
    server(sp)
    sp.add_argument("--days", type=_positive, default=365)
    sp.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        if not args.data_dir.is_dir():
            raise _Failure(f"data directory {args.data_dir} does not exist")
        if args.command in ("create", "renew"):
            return _create(args, renew=args.command == "renew")
        if args.command == "check-expiration":
            return _check_expiration(args)
        return _kubeconfig(args)
    except (_Failure, pkilib.PkiError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
    except BrokenPipeError:
        # The reader (`| head`) went away: not an error worth a line, but no more output.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        print(f"{PROG}: error: {where}{e.strerror or e}", file=sys.stderr)
    return 1


def _create(args: argparse.Namespace, *, renew: bool) -> int:
    data: Path = args.data_dir
    pki = pkilib.Pki(data / "pki")
    if renew and not pki.ca_cert.exists():
        raise _Failure(f"no cluster CA at {pki.ca_cert}: run `kubelite certs create` first")
    server = args.server or _current_server(data)
    nodes = pkilib.known_nodes(pki)
    nodes.update(dict(args.node))

    def report(change: pkilib.Change) -> None:
        if renew and change.action == "kept":
            return
        why = f" ({change.reason})" if change.reason else ""
        for f in change.files:
            print(f"[certs] {change.action} {f}{why}")

    pkilib.ensure_control_plane(pki.root, service_ip=args.service_ip,
                                cluster_domain=args.cluster_domain,
                                advertise_addresses=args.advertise_address,
                                etcd_names=args.etcd_name, renew=renew, report=report)
    for node, ips in nodes.items():
        if not ips:
            raise _Failure(f"node {node}: its serving certificate is unreadable and no "
                           f"address is known; give --node {node}=IP")
        pkilib.ensure_node(pki, node, ips, renew=renew, report=report)

    kubeconfigs = [data / "kubeconfig", *(data / "kubeconfigs" / f"{c}.conf"
                                          for c in pkilib.COMPONENTS)]
    kubeconfigs += [data / "kubeconfigs" / f"kubelet-{n}.conf" for n in nodes]
    before = {p: _read_or_none(p) for p in kubeconfigs}
    for path in pkilib.write_kubeconfigs(data, pki, server, list(nodes)).values():
        action = "kept" if before.get(path) == path.read_bytes() else "wrote"
        if not (renew and action == "kept"):
            print(f"[kubeconfig] {action} {path}")
    if renew:
        print("[certs] done: restart etcd, the apiserver and every component to use the "
              "renewed certificates")
    return 0


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _current_server(data: Path) -> str:
    """The server of the existing admin kubeconfig, so renewing keeps a non-default port."""
    try:
        server = load_kubeconfig(data / "kubeconfig").server
    except (ConfigError, OSError):
        return DEFAULT_SERVER
    return server if server.startswith("https://") else DEFAULT_SERVER


def _check_expiration(args: argparse.Namespace) -> int:
    pki = pkilib.Pki(args.data_dir / "pki")
    if not pki.ca_cert.exists():
        raise _Failure(f"no cluster PKI at {pki.root}: run `kubelite certs create` first")
    now = dt.datetime.now(dt.UTC)
    rows = pkilib.check_expiration(pki)
    leaves = [[r.name, _expires(r.not_after), _residual(r.not_after - now), r.ca]
              for r in rows if r.ca]
    cas = [[r.name, _expires(r.not_after), _residual(r.not_after - now)]
           for r in rows if not r.ca]
    _table(["CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY"], leaves)
    print()
    _table(["CERTIFICATE AUTHORITY", "EXPIRES", "RESIDUAL TIME"], cas)
    return 0


def _expires(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%b %d, %Y %H:%M UTC")


def _residual(left: dt.timedelta) -> str:
    """apimachinery's `duration.ShortHumanDuration`, which kubeadm prints."""
    seconds = int(left.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    hours = seconds // 3600
    if hours < 24:
        return f"{hours}h"
    if hours < 24 * 365:
        return f"{hours // 24}d"
    return f"{hours // (24 * 365)}y"


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _kubeconfig(args: argparse.Namespace) -> int:
    pki = pkilib.Pki(args.data_dir / "pki")
    if not pki.ca_cert.exists() or not pki.ca_key.exists():
        raise _Failure(f"no cluster CA at {pki.ca_cert} (and its key): run "
                       "`kubelite certs create` first")
    cert, key = pkilib.issue_user(pki, args.user, args.group, days=args.days)
    server = args.server or _current_server(args.data_dir)
    ca = pkilib.load_ca_bundle(pki)
    if args.output is not None:
        write_kubeconfig(args.output, server, ca_data=ca, client_cert_data=cert,
                         client_key_data=key, user=args.user)
        print(f"kubeconfig for user {args.user!r} written to {args.output}")
        return 0
    with tempfile.TemporaryDirectory(prefix="kubelite-certs-") as tmp:
        path = write_kubeconfig(Path(tmp) / "kubeconfig", server, ca_data=ca,
                                client_cert_data=cert, client_key_data=key, user=args.user)
        sys.stdout.write(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
