"""Flags of the DNS server (named as kube-dns/CoreDNS users expect), parsed into `Options`."""

from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from dns.cache import DEFAULT_MAX_TTL, DEFAULT_NEGATIVE_TTL, DEFAULT_SIZE
from dns.forward import DEFAULT_TIMEOUT, Upstream
from dns.wire import normalize, split_name

DEFAULT_RESOLV_CONF = "/etc/resolv.conf"
MAX_CACHE_SIZE = 10_000_000
MAX_TTL = 0x7FFFFFFF


@dataclass
class Options:
    kubeconfig: str | None = None
    cluster_domain: str = "cluster.local"
    port: int = 53
    bind_address: str = "0.0.0.0"
    upstreams: list[Upstream] = field(default_factory=list)
    upstream_timeout: float = DEFAULT_TIMEOUT
    ttl: int = 30
    health_port: int = 8080
    cache_size: int = DEFAULT_SIZE
    cache_max_ttl: int = DEFAULT_MAX_TTL
    cache_negative_ttl: int = DEFAULT_NEGATIVE_TTL
    verbosity: int = 0
    # Upstreams dropped because they are this very server (a forwarding loop).
    ignored_upstreams: list[Upstream] = field(default_factory=list)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, not argparse's usage block: `kubelite dns: error: ... (see --help)`."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parse_upstream(text: str) -> Upstream:
    """`IP`, `IP:port`, `[IPv6]:port` or a bare IPv6 address; names are refused (resolving
    the resolver's own upstream would need a resolver)."""
    host, port = text.strip(), 53
    if host.startswith("["):
        inner, sep, rest = host[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"invalid upstream {text!r}")
        host = inner
        if rest:
            port = _port(rest[1:], text)
    elif host.count(":") == 1:
        host, _, port_text = host.partition(":")
        port = _port(port_text, text)
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        raise ValueError(f"invalid upstream {text!r}: want IP, IP:port or [IPv6]:port") \
            from None
    return Upstream(str(ip), port)


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"invalid port in upstream {whole!r}")
    return int(text)


def resolv_conf_upstreams(path: str = DEFAULT_RESOLV_CONF) -> list[Upstream]:
    """The `nameserver` lines of a resolv.conf (missing file: none)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return []
    out: list[Upstream] = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                out.append(Upstream(str(ipaddress.ip_address(parts[1].split("%", 1)[0]))))
            except ValueError:
                continue
    return out


def is_self(upstream: Upstream, bind_address: str, port: int) -> bool:
    """Would forwarding to `upstream` send the query back to this server?"""
    if upstream.port != port:
        return False
    ip = ipaddress.ip_address(upstream.host)
    bind = ipaddress.ip_address(bind_address)
    return ip == bind or (bind.is_unspecified and ip.is_loopback)


def parse_args(argv: list[str] | None, prog: str = "kubelite dns") -> Options:
    p = _Parser(prog=prog, description="kubelite cluster DNS: answers <svc>.<ns>.svc.<domain> "
                "and friends from Services and EndpointSlices, forwards the rest")
    p.add_argument("--kubeconfig", default=None,
                   help="kubeconfig file (default: in-cluster config from "
                   "KUBERNETES_SERVICE_HOST/PORT and the service account files)")
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--port", type=int, default=53, help="UDP and TCP port to serve DNS on")
    p.add_argument("--bind-address", default="0.0.0.0", help="IP address to serve on")
    p.add_argument("--upstream", action="append", default=None, metavar="IP[:PORT]",
                   help="upstream server for names outside the cluster domain (repeatable; "
                   "default: the nameservers of --resolv-conf; 'none': answer NXDOMAIN)")
    p.add_argument("--resolv-conf", default=DEFAULT_RESOLV_CONF,
                   help="where the default upstreams come from")
    p.add_argument("--upstream-timeout", type=float, default=DEFAULT_TIMEOUT,
                   help="seconds to wait for one upstream")
    p.add_argument("--ttl", type=int, default=30, help="TTL of cluster records, seconds")
    p.add_argument("--health-port", type=int, default=8080,
                   help="HTTP port of /health and /ready (0: no health server)")
    p.add_argument("--cache-size", type=int, default=DEFAULT_SIZE,
                   help="most upstream answers kept in the cache (0: no cache)")
    p.add_argument("--cache-max-ttl", type=int, default=DEFAULT_MAX_TTL,
                   help="longest time a positive upstream answer is cached, seconds")
    p.add_argument("--cache-negative-ttl", type=int, default=DEFAULT_NEGATIVE_TTL,
                   help="longest time an NXDOMAIN/NODATA upstream answer is cached, seconds")
    p.add_argument("-v", "--v", type=int, default=0, help="log verbosity (4: every query)")
    a = p.parse_args(argv)

    if not 0 <= a.port <= 65535:
        p.error("--port must be between 0 and 65535")
    if not 0 <= a.health_port <= 65535:
        p.error("--health-port must be between 0 and 65535")
    if not 0 <= a.ttl <= MAX_TTL:
        p.error(f"--ttl must be between 0 and {MAX_TTL}")
    if not 0 <= a.cache_size <= MAX_CACHE_SIZE:
        p.error(f"--cache-size must be between 0 and {MAX_CACHE_SIZE}")
    for flag, value in (("--cache-max-ttl", a.cache_max_ttl),
                        ("--cache-negative-ttl", a.cache_negative_ttl)):
        if not 0 <= value <= MAX_TTL:
            p.error(f"{flag} must be between 0 and {MAX_TTL}")
    if not 0 < a.upstream_timeout <= 60:
        p.error("--upstream-timeout must be between 0 and 60 seconds")
    try:
        ipaddress.ip_address(a.bind_address)
    except ValueError:
        p.error(f"--bind-address: {a.bind_address!r} is not an IP address")
    domain = normalize(a.cluster_domain)
    try:
        if not split_name(domain):
            raise ValueError("the root cannot be the cluster domain")
    except ValueError as e:
        p.error(f"--cluster-domain: {e}")

    if a.upstream is None:
        upstreams = resolv_conf_upstreams(a.resolv_conf)
    elif [u.strip().lower() for u in a.upstream] == ["none"]:
        upstreams = []
    else:
        try:
            upstreams = [parse_upstream(u) for u in a.upstream]
        except ValueError as e:
            p.error(f"--upstream: {e}")
    kept = [u for u in upstreams if not is_self(u, a.bind_address, a.port)]

    return Options(kubeconfig=a.kubeconfig, cluster_domain=domain, port=a.port,
                   bind_address=a.bind_address, upstreams=kept,
                   upstream_timeout=a.upstream_timeout, ttl=a.ttl, health_port=a.health_port,
                   cache_size=a.cache_size, cache_max_ttl=a.cache_max_ttl,
                   cache_negative_ttl=a.cache_negative_ttl, verbosity=a.v, ignored_upstreams=[u for u in upstreams if u not in kept])
