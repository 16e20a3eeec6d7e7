"""From pod spec to CRI configuration: the sandbox, each container, their resources, DNS and
/etc/hosts (upstream's kuberuntime_sandbox.go, kuberuntime_container.go, helpers_linux.go,
network/dns/dns.go). Pure functions over the pod dict; the executor (kuberuntime.py) feeds
them what it resolved (environment, mounts, image).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from api.quantity import parse_quantity
from kubelet import labels as L
from proto.cri import api_pb2 as cri

Obj = dict[str, Any]

CPU_PERIOD = 100_000  # µs, the CFS period the kubelet uses
MIN_CPU_SHARES = 2
MAX_CPU_SHARES = 262_144
MIN_QUOTA = 1_000
GUARANTEED_OOM_SCORE_ADJ = -997
BEST_EFFORT_OOM_SCORE_ADJ = 1000
_PROTOCOLS = {"TCP": cri.TCP, "UDP": cri.UDP, "SCTP": cri.SCTP}


@dataclass
class DnsSettings:
    """The node's DNS facts (flags --cluster-dns, --cluster-domain, --resolv-conf)."""

    cluster_dns: list[str] = field(default_factory=list)
    cluster_domain: str = "cluster.local"
    host_servers: list[str] = field(default_factory=list)
    host_searches: list[str] = field(default_factory=list)
    host_options: list[str] = field(default_factory=list)


def parse_resolv_conf(text: str) -> tuple[list[str], list[str], list[str]]:
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        if parts[0] == "nameserver" and len(parts) > 1:
            servers.append(parts[1])
        elif parts[0] in ("search", "domain"):
            searches = parts[1:]
        elif parts[0] == "options":
            options.extend(parts[1:])
    return servers, searches, options


def pod_hostname(pod: Obj) -> str:
    spec = pod.get("spec") or {}
    return str(spec.get("hostname") or pod["metadata"]["name"])[:63].rstrip("-.")


def pod_fqdn(pod: Obj, dns: DnsSettings) -> str | None:
    spec = pod.get("spec") or {}
    sub = spec.get("subdomain")
    if not sub:
        return None
    ns = pod["metadata"].get("namespace", "default")
    return f"{pod_hostname(pod)}.{sub}.{ns}.svc.{dns.cluster_domain}"


def dns_config(pod: Obj, dns: DnsSettings) -> cri.DNSConfig | None:
    """Upstream's GetPodDNS: the policy's servers/searches/options, then dnsConfig's."""
    spec = pod.get("spec") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    host_network = bool(spec.get("hostNetwork"))
    if policy == "ClusterFirst" and host_network:
        policy = "Default"
    if policy == "ClusterFirstWithHostNet":
        policy = "ClusterFirst"
    if policy == "ClusterFirst" and not dns.cluster_dns:
        policy = "Default"  # no cluster DNS configured: the node's resolver, as upstream
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    if policy == "ClusterFirst":
        ns = pod["metadata"].get("namespace", "default")
        d = dns.cluster_domain
        servers = list(dns.cluster_dns)
        searches = [f"{ns}.svc.{d}", f"svc.{d}", d, *dns.host_searches]
        options = ["ndots:5"]
    elif policy == "Default":
        if host_network:
            return None  # the node's own /etc/resolv.conf
        servers, searches, options = (list(dns.host_servers), list(dns.host_searches),
                                      list(dns.host_options))
    extra = spec.get("dnsConfig") or {}
    servers += [s for s in extra.get("nameservers") or [] if s not in servers]
    searches += [s for s in extra.get("searches") or [] if s not in searches]
    merged: dict[str, str | None] = {}
    for opt in options:
        name, _, value = opt.partition(":")
        merged[name] = value or None
    for opt in extra.get("options") or []:
        merged[str(opt.get("name"))] = opt.get("value")
    options = [f"{k}:{v}" if v is not None else k for k, v in merged.items()]
    return cri.DNSConfig(servers=servers[:3], searches=searches[:32], options=options)


def etc_hosts(pod: Obj, ips: Sequence[str], dns: DnsSettings) -> str:
    """The kubelet-managed /etc/hosts of a pod that has its own network."""
    lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost",
             "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet",
             "fe00::0\tip6-mcastprefix", "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
    fqdn = pod_fqdn(pod, dns)
    name = pod_hostname(pod)
    for ip in ips:
        lines.append(f"{ip}\t{fqdn}\t{name}" if fqdn else f"{ip}\t{name}")
    for alias in (pod.get("spec") or {}).get("hostAliases") or []:
        if alias.get("ip") and alias.get("hostnames"):
            lines.append(f"# Entries added by HostAliases.\n{alias['ip']}\t"
                         + "\t".join(alias["hostnames"]))
    return "\n".join(lines) + "\n"


def port_mappings(pod: Obj) -> list[cri.PortMapping]:
    out = []
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                out.append(cri.PortMapping(
                    protocol=_PROTOCOLS.get(str(p.get("protocol") or "TCP"), cri.TCP),
                    container_port=int(p.get("containerPort") or 0),
                    host_port=int(p["hostPort"]), host_ip=str(p.get("hostIP") or "")))
    return out


def namespace_options(pod: Obj) -> cri.NamespaceOption:
    spec = pod.get("spec") or {}
    return cri.NamespaceOption(
        network=cri.NODE if spec.get("hostNetwork") else cri.POD,
        pid=cri.NODE if spec.get("hostPID") else (
            cri.POD if spec.get("shareProcessNamespace") else cri.CONTAINER),
        ipc=cri.NODE if spec.get("hostIPC") else cri.POD)


def log_directory(pod_logs_dir: str, pod: Obj) -> str:
    md = pod["metadata"]
    return f"{pod_logs_dir}/{md.get('namespace', 'default')}_{md['name']}_{md['uid']}"


def sandbox_config(pod: Obj, attempt: int, pod_logs_dir: str, dns: DnsSettings
                   ) -> cri.PodSandboxConfig:
    md = pod["metadata"]
    spec = pod.get("spec") or {}
    psc = spec.get("securityContext") or {}
    config = cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(name=md["name"], uid=md["uid"],
                                        namespace=md.get("namespace", "default"),
                                        attempt=attempt),
        log_directory=log_directory(pod_logs_dir, pod),
        port_mappings=port_mappings(pod),
        labels=L.pod_labels(pod),
        annotations={str(k): str(v) for k, v in (md.get("annotations") or {}).items()},
        linux=cri.LinuxPodSandboxConfig(
            security_context=cri.LinuxSandboxSecurityContext(
                namespace_options=namespace_options(pod)),
            sysctls={s["name"]: str(s.get("value", "")) for s in psc.get("sysctls") or []
                     if isinstance(s, dict) and s.get("name")}))
    if not spec.get("hostNetwork"):
        config.hostname = pod_hostname(pod)
    dns_cfg = dns_config(pod, dns)
    if dns_cfg is not None:
        config.dns_config.CopyFrom(dns_cfg)
    return config


# --- resources ------------------------------------------------------------------------------

def _milli(value: Any) -> int:
    return math.ceil(parse_quantity(str(value)) * 1000)


def _bytes(value: Any) -> int:
    return math.ceil(parse_quantity(str(value)))


def oom_score_adj(qos: str, container: Obj, machine_memory: int) -> int:
    if qos == "Guaranteed":
        return GUARANTEED_OOM_SCORE_ADJ
    if qos == "BestEffort":
        return BEST_EFFORT_OOM_SCORE_ADJ
    request = (container.get("resources") or {}).get("requests", {}).get("memory")
    if request is None or machine_memory <= 0:
        return 999
    adj = 1000 - (1000 * _bytes(request)) // machine_memory
    return int(min(max(adj, 2), 999))  # keep Burstable between Guaranteed and BestEffort


def linux_resources(container: Obj, qos: str, machine_memory: int
                    ) -> cri.LinuxContainerResources:
    res = container.get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    r = cri.LinuxContainerResources(cpu_period=CPU_PERIOD,
                                    oom_score_adj=oom_score_adj(qos, container, machine_memory))
    cpu_request = requests.get("cpu", limits.get("cpu"))
    shares = MIN_CPU_SHARES if cpu_request is None else _milli(cpu_request) * 1024 // 1000
    r.cpu_shares = min(max(shares, MIN_CPU_SHARES), MAX_CPU_SHARES)
    if "cpu" in limits:
        r.cpu_quota = max(_milli(limits["cpu"]) * CPU_PERIOD // 1000, MIN_QUOTA)
    if "memory" in limits:
        r.memory_limit_in_bytes = _bytes(limits["memory"])
    return r


# --- containers -----------------------------------------------------------------------------

@dataclass
class ContainerInputs:
    """What the executor resolved for one container start."""

    image_ref: str
    restart_count: int
    env: list[tuple[str, str]]
    command: list[str]
    args: list[str]
    mounts: list[cri.Mount]
    qos: str
    machine_memory: int = 0


def security_context(pod: Obj, container: Obj) -> cri.LinuxContainerSecurityContext:
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    sc = container.get("securityContext") or {}
    out = cri.LinuxContainerSecurityContext(namespace_options=namespace_options(pod))
    out.privileged = bool(sc.get("privileged"))
    uid = sc.get("runAsUser", psc.get("runAsUser"))
    if isinstance(uid, int):
        out.run_as_user.value = uid
    gid = sc.get("runAsGroup", psc.get("runAsGroup"))
    if isinstance(gid, int):
        out.run_as_group.value = gid
    out.readonly_rootfs = bool(sc.get("readOnlyRootFilesystem"))
    caps = sc.get("capabilities") or {}
    out.capabilities.add_capabilities.extend(str(c) for c in caps.get("add") or [])
    out.capabilities.drop_capabilities.extend(str(c) for c in caps.get("drop") or [])
    groups = [g for g in psc.get("supplementalGroups") or [] if isinstance(g, int)]
    if isinstance(psc.get("fsGroup"), int):
        groups.append(psc["fsGroup"])
    out.supplemental_groups.extend(groups)
    if sc.get("allowPrivilegeEscalation") is False:
        out.no_new_privs = True
    return out


def container_config(pod: Obj, container: Obj, inputs: ContainerInputs, init: bool
                     ) -> cri.ContainerConfig:
    return cri.ContainerConfig(
        metadata=cri.ContainerMetadata(name=container["name"], attempt=inputs.restart_count),
        image=cri.ImageSpec(image=inputs.image_ref,
                            user_specified_image=str(container.get("image", ""))),
        command=inputs.command, args=inputs.args,
        working_dir=str(container.get("workingDir") or ""),
        envs=[cri.KeyValue(key=k, value=v) for k, v in inputs.env],
        mounts=inputs.mounts,
        labels=L.container_labels(pod, container, init),
        annotations=L.container_annotations(pod, container, inputs.restart_count),
        log_path=f"{container['name']}/{inputs.restart_count}.log",
        stdin=bool(container.get("stdin")), stdin_once=bool(container.get("stdinOnce")),
        tty=bool(container.get("tty")),
        linux=cri.LinuxContainerConfig(
            resources=linux_resources(container, inputs.qos, inputs.machine_memory),
            security_context=security_context(pod, container)))


def container_spec(pod: Obj, name: str) -> tuple[Obj | None, bool]:
    """The spec of container `name` and whether it is an init container."""
    spec = pod.get("spec") or {}
    for c in spec.get("containers") or []:
        if c.get("name") == name:
            return c, False
    for c in spec.get("initContainers") or []:
        if c.get("name") == name:
            return c, True
    for c in spec.get("ephemeralContainers") or []:
        if c.get("name") == name:
            return c, False
    return None, False


def named_port(container: Obj | None, port: Any) -> int | None:
    """A probe's or hook's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    if isinstance(port, str):
        if port.isdigit():
            return int(port)
        for p in (container or {}).get("ports") or []:
            if p.get("name") == port:
                return int(p.get("containerPort") or 0) or None
    return None


def grace_period(pod: Obj, override: int | None = None) -> int:
    if override is not None:
        return override
    md = pod.get("metadata") or {}
    if md.get("deletionTimestamp") and isinstance(md.get("deletionGracePeriodSeconds"), int):
        return int(md["deletionGracePeriodSeconds"])
    value = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
    return int(value) if isinstance(value, int) else 30


def annotations_grace(annotations: Mapping[str, str]) -> int:
    return L.int_annotation(annotations, L.GRACE_PERIOD_ANNOTATION, 30)
