"""The iptables content for a snapshot, and what to write to go from one content to another.

Pure: no process is run here, so everything is unit-testable without root.

The chains and rules are upstream kube-proxy's (pkg/proxy/iptables/proxier.go), with
externalTrafficPolicy and internalTrafficPolicy handled as Cluster:

nat table
  KUBE-SERVICES     jumped to from PREROUTING and OUTPUT; one rule per ClusterIP (and external
                    or load-balancer IP) of a service port with endpoints, then, last,
                    `-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS` (or one `-d <ip>` rule
                    per address when --nodeport-addresses is given)
  KUBE-NODEPORTS    `--dport <nodePort> -j KUBE-EXT-<hash>`
  KUBE-EXT-<hash>   marks for masquerade, then jumps to KUBE-SVC-<hash>
  KUBE-SVC-<hash>   masquerade mark for ClusterIP traffic not from --cluster-cidr (or all of it
                    with --masquerade-all); ClientIP affinity (`-m recent --rcheck`) first; then
                    `-m statistic --mode random --probability 1/n`, 1/(n-1), ..., last one plain
  KUBE-SEP-<hash>   hairpin mark (`-s <endpoint IP>`), then DNAT (with `-m recent --set`
                    for affinity)
  KUBE-MARK-MASQ    `-j MARK --or-mark 0x4000`
  KUBE-POSTROUTING  jumped to from POSTROUTING: MASQUERADE marked packets
filter table
  KUBE-SERVICES           REJECT for ClusterIPs of service ports without endpoints
  KUBE-EXTERNAL-SERVICES  REJECT for their NodePorts and external IPs
  KUBE-FORWARD            ACCEPT marked and established traffic (FORWARD may default to DROP)

Chain names hash the service port name and protocol as upstream does: the first 16
characters of the base32 of the sha256 of e.g. `ns1/svc1:p80tcp` (plus `10.180.0.1:80` for
an endpoint chain).

A `Ruleset` maps (table, chain) to the chain's rule lines. `diff_rulesets` gives the chains to
rewrite and to delete relative to what was applied last; `full_sync` rewrites every chain and
deletes our chains that exist in the kernel but are no longer wanted. `RulesetDiff.restore`
renders `iptables-restore --noflush` input: declaring a chain creates or flushes it, so
chains not mentioned keep their rules.

Each service port's rules depend on nothing but its `ServicePort`, its usable endpoints and
the `ProxyConfig`: `service_port_rules` makes them as a `PortRules` (its own KUBE-EXT, KUBE-SVC
and KUBE-SEP chains, and its lines in the four shared chains). `build_ruleset` is the static
chains, then every service port's pieces in sorted order, then the NodePorts jump.
`RuleCache` keeps the pieces: `rebuild` regenerates all of them (a full sync), `update`
regenerates only the service ports it is given whose inputs differ, reassembles a shared
chain only when a piece of it changed, and returns the same diff as `diff_rulesets` of two
full generations would, in the same order.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from kube_proxy.model import Endpoint, ServicePort, ServicePortName, Snapshot

NAT, FILTER = "nat", "filter"
TABLES = (FILTER, NAT)

KUBE_SERVICES = "KUBE-SERVICES"
KUBE_NODEPORTS = "KUBE-NODEPORTS"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"
KUBE_EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES"
KUBE_FORWARD = "KUBE-FORWARD"
KUBE_FIREWALL = "KUBE-FIREWALL"

# Chains made per service port or endpoint (KUBE-FW/SVL/XLB are upstream's, never made here,
# but removed when found so that a kernel left by upstream kube-proxy gets cleaned too).
SERVICE_CHAIN_PREFIXES = ("KUBE-SVC-", "KUBE-SEP-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SVL-",
                          "KUBE-XLB-")
BASE_CHAINS: dict[str, tuple[str, ...]] = {
    NAT: (KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ),
    FILTER: (KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_FIREWALL),
}
DEFAULT_MASQUERADE_MARK = "0x4000"
NODEPORTS_COMMENT = "kubernetes service nodeports; NOTE: this must be the last rule in this chain"

ChainKey = tuple[str, str]  # (table, chain)


@dataclass(frozen=True)
class ProxyConfig:
    """What the rules depend on besides services and endpoints."""

    cluster_cidr: str = ""
    masquerade_all: bool = False
    # Local IPs NodePorts are served on; None means every local address (addrtype LOCAL).
    nodeport_ips: tuple[str, ...] | None = None
    masquerade_mark: str = DEFAULT_MASQUERADE_MARK
    # NodePorts also on 127.0.0.1 (upstream's --iptables-localhost-nodeports): needs
    # route_localnet, so remote packets to 127.0.0.0/8 are dropped (KUBE-FIREWALL).
    localhost_nodeports: bool = True


# --- names ----------------------------------------------------------------------------------


def port_proto_hash(service_port_name: str, protocol: str) -> str:
    digest = hashlib.sha256((service_port_name + protocol).encode()).digest()
    return base64.b32encode(digest).decode()[:16]


def service_chain(name: ServicePortName) -> str:
    return "KUBE-SVC-" + port_proto_hash(str(name), name.protocol.lower())


def external_chain(name: ServicePortName) -> str:
    return "KUBE-EXT-" + port_proto_hash(str(name), name.protocol.lower())


def endpoint_chain(name: ServicePortName, endpoint: str) -> str:
    """KUBE-SEP-<hash> for an endpoint `ip:port` of a service port."""
    return "KUBE-SEP-" + port_proto_hash(str(name), name.protocol.lower() + endpoint)


def is_our_chain(table: str, chain: str) -> bool:
    return chain in BASE_CHAINS.get(table, ()) or chain.startswith(SERVICE_CHAIN_PREFIXES)


def _quote(text: str) -> str:
    """A comment as iptables-save prints it: quoted only when it has spaces."""
    return f'"{text}"' if " " in text else text


def comment(text: str) -> str:
    return f"-m comment --comment {_quote(text)}"


def probability(n: int) -> str:
    """The --probability to pick one of `n` remaining endpoints, as upstream formats it."""
    return f"{1.0 / n:0.10f}"


# --- jump rules in the built-in chains --------------------------------------------------------


@dataclass(frozen=True)
class JumpRule:
    """A rule in a built-in chain leading to one of ours (kept out of iptables-restore, which
    would append a duplicate each time; ensured with `iptables -C` / `-I` instead)."""

    table: str
    chain: str
    target: str
    comment: str
    extra: tuple[str, ...] = ()

    def args(self) -> list[str]:
        return [*self.extra, "-m", "comment", "--comment", self.comment, "-j", self.target]


_NEW = ("-m", "conntrack", "--ctstate", "NEW")
JUMP_RULES: tuple[JumpRule, ...] = (
    JumpRule(NAT, "PREROUTING", KUBE_SERVICES, "kubernetes service portals"),
    JumpRule(NAT, "OUTPUT", KUBE_SERVICES, "kubernetes service portals"),
    JumpRule(NAT, "POSTROUTING", KUBE_POSTROUTING, "kubernetes postrouting rules"),
    JumpRule(FILTER, "INPUT", KUBE_EXTERNAL_SERVICES,
             "kubernetes externally-visible service portals", _NEW),
    JumpRule(FILTER, "FORWARD", KUBE_EXTERNAL_SERVICES,
             "kubernetes externally-visible service portals", _NEW),
    JumpRule(FILTER, "FORWARD", KUBE_SERVICES, "kubernetes service portals", _NEW),
    JumpRule(FILTER, "OUTPUT", KUBE_SERVICES, "kubernetes service portals", _NEW),
    JumpRule(FILTER, "FORWARD", KUBE_FORWARD, "kubernetes forwarding rules"),
    JumpRule(FILTER, "INPUT", KUBE_FIREWALL, "kubernetes firewall for localnet"),
    JumpRule(FILTER, "OUTPUT", KUBE_FIREWALL, "kubernetes firewall for localnet"),
)


# --- the ruleset ------------------------------------------------------------------------------


@dataclass
class Ruleset:
    """Every chain we want, in order, with its rule lines (`-A CHAIN ...`)."""

    chains: dict[ChainKey, list[str]] = field(default_factory=dict)
    # The service port each per-service chain is for, for logs.
    owners: dict[ChainKey, str] = field(default_factory=dict)

    def chain(self, table: str, name: str, owner: str | None = None) -> list[str]:
        rules = self.chains.setdefault((table, name), [])
        if owner is not None:
            self.owners[(table, name)] = owner
        return rules

    def add(self, table: str, name: str, *parts: str) -> None:
        self.chain(table, name).append(" ".join(["-A", name, *[p for p in parts if p]]))

    def merge(self, piece: PortRules) -> None:
        """Append a service port's rules: its lines to the shared chains, its chains."""
        for key, lines in piece.shared.items():
            self.chains[key].extend(lines)
        for (table, name), lines in piece.chains.items():
            self.chain(table, name, owner=piece.owner).extend(lines)

    def frozen(self) -> dict[ChainKey, tuple[str, ...]]:
        return {key: tuple(rules) for key, rules in self.chains.items()}


# The chains every service port may add lines to, in the order a ruleset declares them.
SHARED_CHAINS: tuple[ChainKey, ...] = ((NAT, KUBE_SERVICES), (NAT, KUBE_NODEPORTS),
                                       (FILTER, KUBE_SERVICES), (FILTER, KUBE_EXTERNAL_SERVICES))


@dataclass(frozen=True)
class PortRules:
    """One service port's part of the ruleset."""

    owner: str  # the service port, for logs
    # Its own chains (KUBE-EXT, KUBE-SVC, KUBE-SEP...), in the order a ruleset declares them.
    chains: Mapping[ChainKey, tuple[str, ...]] = field(default_factory=dict)
    # Its lines in SHARED_CHAINS (only the chains it has lines in).
    shared: Mapping[ChainKey, tuple[str, ...]] = field(default_factory=dict)

    @property
    def rule_count(self) -> int:
        return sum(map(len, self.chains.values())) + sum(map(len, self.shared.values()))


def service_port_rules(sp: ServicePort, endpoints: Sequence[Endpoint],
                       config: ProxyConfig) -> PortRules:
    """The rules of one service port with its usable endpoints."""
    rs = Ruleset()
    _service_rules(rs, sp, endpoints, config)
    shared = {key: tuple(lines) for key, lines in rs.chains.items()
              if key in SHARED_CHAINS and lines}
    own = {key: tuple(lines) for key, lines in rs.chains.items() if key not in SHARED_CHAINS}
    return PortRules(str(sp.name), own, shared)


def build_ruleset(snapshot: Snapshot, config: ProxyConfig) -> Ruleset:
    """The whole content of our chains for `snapshot` (deterministic: services sorted)."""
    rs = _static_rules(config)
    for name in sorted(snapshot.services):
        rs.merge(service_port_rules(snapshot.services[name], snapshot.usable_endpoints(name),
                                    config))
    _add_tail_rules(rs, config)
    return rs


def _static_rules(config: ProxyConfig) -> Ruleset:
    """Every base chain, with the rules that do not depend on any service."""
    rs = Ruleset()
    for table, chains in BASE_CHAINS.items():
        for chain in chains:
            rs.chain(table, chain)
    mark = config.masquerade_mark
    rs.add(NAT, KUBE_POSTROUTING, f"-m mark ! --mark {mark}/{mark}", "-j RETURN")
    # Clear the mark so that a packet re-traversing the stack is not masqueraded again.
    rs.add(NAT, KUBE_POSTROUTING, f"-j MARK --xor-mark {mark}")
    rs.add(NAT, KUBE_POSTROUTING, comment("kubernetes service traffic requiring SNAT"),
           "-j MASQUERADE")
    rs.add(NAT, KUBE_MARK_MASQ, f"-j MARK --or-mark {mark}")
    rs.add(FILTER, KUBE_FORWARD, comment("kubernetes forwarding rules"),
           f"-m mark --mark {mark}/{mark}", "-j ACCEPT")
    rs.add(FILTER, KUBE_FORWARD, comment("kubernetes forwarding conntrack rule"),
           "-m conntrack --ctstate RELATED,ESTABLISHED", "-j ACCEPT")
    if localhost_nodeports(config):
        # With route_localnet on, a packet to 127.0.0.0/8 from another host would be
        # routed to local services: drop it unless it is ours or DNATed (CVE-2020-8558).
        rs.add(FILTER, KUBE_FIREWALL, "! -s 127.0.0.0/8 -d 127.0.0.0/8",
               comment("block incoming localnet connections"),
               "-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT", "-j DROP")
    return rs


def _add_tail_rules(rs: Ruleset, config: ProxyConfig) -> None:
    """What comes after every service's rules: the jump to KUBE-NODEPORTS, last."""
    if config.nodeport_ips is not None:
        for ip in config.nodeport_ips:
            rs.add(NAT, KUBE_SERVICES, comment(NODEPORTS_COMMENT), f"-d {ip}",
                   f"-j {KUBE_NODEPORTS}")
    else:
        rs.add(NAT, KUBE_SERVICES, comment(NODEPORTS_COMMENT), "-m addrtype --dst-type LOCAL",
               f"-j {KUBE_NODEPORTS}")


def _service_rules(rs: Ruleset, sp: ServicePort, endpoints: Sequence[Endpoint],
                   config: ProxyConfig) -> None:
    name, proto = sp.name, sp.protocol.lower()
    svc = str(name)
    match = f"-m {proto} -p {proto}"
    svc_chain, ext_chain = service_chain(name), external_chain(name)
    external = [(ip, "external IP") for ip in sp.external_ips] + \
               [(ip, "loadbalancer IP") for ip in sp.load_balancer_ips]

    if not endpoints:
        # Fail fast (connection refused) instead of letting packets to a ClusterIP wander.
        no_eps = comment(f"{svc} has no endpoints")
        rs.add(FILTER, KUBE_SERVICES, no_eps, match, f"-d {sp.cluster_ip}",
               f"--dport {sp.port}", "-j REJECT")
        for ip, _ in external:
            rs.add(FILTER, KUBE_EXTERNAL_SERVICES, no_eps, match, f"-d {ip}",
                   f"--dport {sp.port}", "-j REJECT")
        if sp.node_port:
            for dst in _nodeport_destinations(config):
                rs.add(FILTER, KUBE_EXTERNAL_SERVICES, no_eps, dst, match,
                       f"--dport {sp.node_port}", "-j REJECT")
        return

    rs.add(NAT, KUBE_SERVICES, comment(f"{svc} cluster IP"), match, f"-d {sp.cluster_ip}",
           f"--dport {sp.port}", f"-j {svc_chain}")
    uses_ext = bool(external) or bool(sp.node_port)
    for ip, what in external:
        rs.add(NAT, KUBE_SERVICES, comment(f"{svc} {what}"), match, f"-d {ip}",
               f"--dport {sp.port}", f"-j {ext_chain}")
    if sp.node_port:
        rs.add(NAT, KUBE_NODEPORTS, comment(svc), match, f"--dport {sp.node_port}",
               f"-j {ext_chain}")
    if uses_ext:
        # externalTrafficPolicy is treated as Cluster: external traffic is always masqueraded
        # so that replies come back through this node.
        rs.chain(NAT, ext_chain, owner=svc)
        rs.add(NAT, ext_chain, comment(f"masquerade traffic for {svc} external destinations"),
               f"-j {KUBE_MARK_MASQ}")
        rs.add(NAT, ext_chain, f"-j {svc_chain}")

    rs.chain(NAT, svc_chain, owner=svc)
    cluster_match = (comment(f"{svc} cluster IP"), match, f"-d {sp.cluster_ip}",
                     f"--dport {sp.port}")
    if config.masquerade_all:
        rs.add(NAT, svc_chain, *cluster_match, f"-j {KUBE_MARK_MASQ}")
    elif config.cluster_cidr:
        # Traffic from outside the pod network (the node itself, other hosts) is
        # masqueraded, so that the endpoint's reply comes back to us to be un-DNATed.
        rs.add(NAT, svc_chain, *cluster_match, f"! -s {config.cluster_cidr}",
               f"-j {KUBE_MARK_MASQ}")
    sep_chains = [endpoint_chain(name, ep.address) for ep in endpoints]
    if sp.affinity_timeout is not None:
        for ep, sep in zip(endpoints, sep_chains, strict=True):
            rs.add(NAT, svc_chain, comment(f"{svc} -> {ep.address}"),
                   f"-m recent --name {sep} --rcheck --seconds {sp.affinity_timeout} --reap",
                   f"-j {sep}")
    n = len(endpoints)
    for i, (ep, sep) in enumerate(zip(endpoints, sep_chains, strict=True)):
        pick = "" if i == n - 1 else f"-m statistic --mode random --probability " \
                                     f"{probability(n - i)}"
        rs.add(NAT, svc_chain, comment(f"{svc} -> {ep.address}"), pick, f"-j {sep}")
    for ep, sep in zip(endpoints, sep_chains, strict=True):
        rs.chain(NAT, sep, owner=svc)
        # Hairpin: an endpoint reaching itself through the service must see a source that
        # is not its own address, or it would answer itself directly.
        rs.add(NAT, sep, comment(svc), f"-s {ep.ip}", f"-j {KUBE_MARK_MASQ}")
        recent = f"-m recent --name {sep} --set" if sp.affinity_timeout is not None else ""
        rs.add(NAT, sep, comment(svc), recent, match, f"-j DNAT --to-destination {ep.address}")


def localhost_nodeports(config: ProxyConfig) -> bool:
    """NodePorts answer on 127.0.0.1 too: asked for, and served on every local address."""
    return config.localhost_nodeports and config.nodeport_ips is None


def _nodeport_destinations(config: ProxyConfig) -> list[str]:
    if config.nodeport_ips is not None:
        return [f"-d {ip}" for ip in config.nodeport_ips]
    return ["-m addrtype --dst-type LOCAL"]


# --- diffs and iptables-restore input ----------------------------------------------------------


@dataclass(frozen=True)
class RulesetDiff:
    """Chains to (re)write with their full content, and chains to delete."""

    write: Mapping[ChainKey, tuple[str, ...]]
    delete: tuple[ChainKey, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.write and not self.delete

    def restore(self) -> str:
        """`iptables-restore --noflush` input: declare (create or flush) every chain written
        or deleted, append the written chains' rules, then delete. One transaction per table:
        nothing is visible half-done."""
        out: list[str] = []
        for table in TABLES:
            write = [key for key in self.write if key[0] == table]
            delete = [key for key in self.delete if key[0] == table]
            if not write and not delete:
                continue
            out.append(f"*{table}")
            out.extend(f":{chain} - [0:0]" for _, chain in [*write, *delete])
            for key in write:
                out.extend(self.write[key])
            out.extend(f"-X {chain}" for _, chain in delete)
            out.append("COMMIT")
        return "\n".join(out) + "\n" if out else ""


def diff_rulesets(new: Mapping[ChainKey, Sequence[str]],
                  applied: Mapping[ChainKey, Sequence[str]]) -> RulesetDiff:
    """Only what changed since `applied`: new or changed chains, and chains no longer wanted.

    Deleting is safe in one transaction: a per-service chain is referenced only from chains
    that change with it (KUBE-SERVICES, KUBE-NODEPORTS, its KUBE-SVC/EXT chain)."""
    write = {key: tuple(rules) for key, rules in new.items()
             if tuple(applied.get(key, ())) != tuple(rules) or key not in applied}
    delete = tuple(key for key in applied if key not in new)
    return RulesetDiff(write, delete)


@dataclass(frozen=True)
class _Cached:
    """A service port's rules, with what they were generated from."""

    port: ServicePort
    endpoints: tuple[Endpoint, ...]
    rules: PortRules


_NO_RULES = PortRules("")


class RuleCache:
    """`build_ruleset`, kept up to date per service port.

    `chains` is always what `build_ruleset(snapshot, config).frozen()` gives for the last
    snapshot passed in, except for the order of its keys; `ordered()` has that order too.
    """

    def __init__(self) -> None:
        self.config: ProxyConfig | None = None
        self.chains: dict[ChainKey, tuple[str, ...]] = {}
        self.rule_count = 0  # every line of every chain
        self._static: dict[ChainKey, tuple[str, ...]] = {}  # a base chain's leading lines
        self._tail: dict[ChainKey, tuple[str, ...]] = {}  # its trailing lines
        self._ports: dict[ServicePortName, _Cached] = {}
        self._order: list[ServicePortName] = []  # sorted, as build_ruleset orders them

    def rebuild(self, snapshot: Snapshot, config: ProxyConfig) -> dict[ChainKey, tuple[str, ...]]:
        """Regenerate every service port's rules (nothing cached is used): the whole
        ruleset, equal to `build_ruleset(snapshot, config).frozen()` and in its order."""
        self.config = config
        rs = _static_rules(config)
        self._static = rs.frozen()
        tail = Ruleset({key: [] for key in rs.chains})
        _add_tail_rules(tail, config)
        self._tail = {key: tuple(lines) for key, lines in tail.chains.items() if lines}
        self._order = sorted(snapshot.services)
        self._ports = {}
        for name in self._order:
            sp = snapshot.services[name]
            endpoints = tuple(snapshot.usable_endpoints(name))
            cached = _Cached(sp, endpoints, service_port_rules(sp, endpoints, config))
            self._ports[name] = cached
            rs.merge(cached.rules)
        for key, lines in self._tail.items():
            rs.chains[key].extend(lines)
        self.chains = rs.frozen()
        self.rule_count = sum(map(len, self.chains.values()))
        return dict(self.chains)

    def ordered(self) -> dict[ChainKey, tuple[str, ...]]:
        """`chains` in build_ruleset's order (assembled from the cached pieces)."""
        out = {key: self.chains[key] for key in self._static}
        for name in self._order:
            for key in self._ports[name].rules.chains:
                out[key] = self.chains[key]
        return out

    def update(self, snapshot: Snapshot, candidates: Iterable[ServicePortName] | None = None
               ) -> RulesetDiff:
        """Bring the rules to `snapshot`, regenerating only the service ports among
        `candidates` (None: every one) whose ServicePort or usable endpoints changed, and
        return what changed: `diff_rulesets(build_ruleset(snapshot), previous ruleset)`,
        chains and order alike. A service port not among `candidates` must be unchanged."""
        if self.config is None:
            raise RuntimeError("RuleCache.update before the first rebuild")
        if candidates is None:
            candidates = set(snapshot.services) | set(self._ports)
        own_writes: dict[ChainKey, tuple[str, ...]] = {}
        deletes: list[ChainKey] = []
        touched: set[ChainKey] = set()
        for name in sorted(candidates):
            old = self._ports.get(name)
            sp = snapshot.services.get(name)
            new: _Cached | None = None
            if sp is not None:
                endpoints = tuple(snapshot.usable_endpoints(name))
                if old is not None and old.port == sp and old.endpoints == endpoints:
                    continue
                new = _Cached(sp, endpoints, service_port_rules(sp, endpoints, self.config))
            elif old is None:
                continue
            before = old.rules if old is not None else _NO_RULES
            after = new.rules if new is not None else _NO_RULES
            touched.update(key for key in SHARED_CHAINS
                           if before.shared.get(key, ()) != after.shared.get(key, ()))
            for key, lines in after.chains.items():
                if self.chains.get(key) != lines:
                    own_writes[key] = lines
                    self.chains[key] = lines
            for key in before.chains:
                if key not in after.chains:
                    deletes.append(key)
                    del self.chains[key]
            self.rule_count += after.rule_count - before.rule_count
            if new is None:
                del self._ports[name]
                del self._order[bisect.bisect_left(self._order, name)]
            else:
                if old is None:
                    bisect.insort(self._order, name)
                self._ports[name] = new
        writes: dict[ChainKey, tuple[str, ...]] = {}
        for key in SHARED_CHAINS:  # they come before every service's chains
            if key in touched:
                lines = self._assemble(key)
                if lines != self.chains[key]:
                    writes[key] = self.chains[key] = lines
        writes.update(own_writes)
        return RulesetDiff(writes, tuple(deletes))

    def _assemble(self, key: ChainKey) -> tuple[str, ...]:
        """A shared chain from its leading lines, every service port's, its trailing ones."""
        lines = list(self._static.get(key, ()))
        ports = self._ports
        for name in self._order:
            lines.extend(ports[name].rules.shared.get(key, ()))
        lines.extend(self._tail.get(key, ()))
        return tuple(lines)


def full_sync(new: Mapping[ChainKey, Sequence[str]], existing: Iterable[ChainKey]) -> RulesetDiff:
    """Rewrite every chain; delete our chains found in the kernel that are no longer wanted."""
    write = {key: tuple(rules) for key, rules in new.items()}
    delete = tuple(sorted({key for key in existing
                           if key not in new and is_our_chain(*key)}))
    return RulesetDiff(write, delete)


def cleanup(existing: Iterable[ChainKey]) -> RulesetDiff:
    """Flush and delete every chain of ours among `existing` (the jump rules go first)."""
    return RulesetDiff({}, tuple(sorted({key for key in existing if is_our_chain(*key)})))


def parse_chains(table: str, save_output: str) -> set[ChainKey]:
    """The chains declared in `iptables-save -t <table>` output."""
    chains: set[ChainKey] = set()
    current = None
    for line in save_output.splitlines():
        if line.startswith("*"):
            current = line[1:].strip()
        elif line.startswith(":") and (current or table) == table:
            chains.add((table, line[1:].split()[0]))
    return chains
