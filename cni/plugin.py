"""The CNI plugin: `cni/kubelite-cni` (or `python -m cni.plugin`), per the CNI spec.

The runtime (kubelet) runs it with the operation in the environment and the network
configuration on stdin:

    CNI_COMMAND=ADD|DEL|CHECK|VERSION  CNI_CONTAINERID=<sandbox id>  CNI_NETNS=<netns path>
    CNI_IFNAME=eth0  CNI_ARGS="K8S_POD_NAMESPACE=ns;K8S_POD_NAME=name;..."  CNI_PATH=...

    {"cniVersion": "1.0.0", "name": "kubelite", "type": "kubelite-cni",
     "ipamdSocket": "/run/kubelite/<node>/ipamd.sock", "bridge": "kl-vpc0", "mtu": 1500,
     "dns": {...}}

- ADD asks the node's ipamd for an address (gRPC, `proto/ipamd.proto`), makes sure the VPC
  bridge exists, creates a veth pair (host end `kl<hash>` on the bridge, container end moved
  into CNI_NETNS as CNI_IFNAME with the address and a default route via the VPC gateway) and
  prints the result (interfaces, ips, routes, dns).
- DEL gives the address back and removes the veth; missing namespace or veth are fine.
- CHECK verifies the interface, its address, the default route, the host end on the bridge,
  and that ipamd still holds the address for the container (needs prevResult).
- VERSION prints the spec versions supported.

Failures print `{"cniVersion", "code", "msg", "details"}` on stdout and exit 1. Codes:
well-known 1-7 and 11 (try again later: ipamd unreachable, or no free address, which may
free up); plugin-specific 100 internal, 101 IPAM, 102 interface setup, 103 CHECK failed.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from typing import Any, NamedTuple

from cni import hostnet, ipamdwire, unary_grpc
from cni.hostnet import NetlinkError
from cni.unary_grpc import RpcError

LOG_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}


class StderrLog:
    """The plugin's log: lines on stderr at KUBELITE_CNI_LOG_LEVEL (default WARNING). Not the
    logging module: the plugin starts once per pod and that import alone costs ~5 ms."""

    def __init__(self) -> None:
        self.level = LOG_LEVELS["WARNING"]

    def configure(self, level_name: str) -> None:
        self.level = LOG_LEVELS.get(level_name.upper(), self.level)

    def _write(self, level: str, msg: str, args: tuple[Any, ...]) -> None:
        if LOG_LEVELS[level] >= self.level:
            import time
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            sys.stderr.write(f"{stamp} {level} kubelite-cni: {msg % args if args else msg}\n")

    def info(self, msg: str, *args: Any) -> None:
        self._write("INFO", msg, args)

    def error(self, msg: str, *args: Any) -> None:
        self._write("ERROR", msg, args)

    def exception(self, msg: str, *args: Any) -> None:
        import traceback
        self._write("ERROR", msg + "\n" + traceback.format_exc().rstrip(), args)


log = StderrLog()

CNI_VERSION = "1.0.0"
SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
PLUGIN_VERSION = "kubelite-cni/0.1.0"
EXHAUSTED_MESSAGE = "failed to assign an IP address to container"  # EKS's wording
RPC_TIMEOUT = 30.0

ERR_INCOMPATIBLE_VERSION = 1
ERR_UNSUPPORTED_FIELD = 2
ERR_UNKNOWN_CONTAINER = 3
ERR_INVALID_ENV = 4
ERR_IO = 5
ERR_DECODE = 6
ERR_INVALID_CONFIG = 7
ERR_TRY_AGAIN_LATER = 11
ERR_INTERNAL = 100
ERR_IPAM = 101
ERR_INTERFACE = 102
ERR_CHECK = 103

_CONTAINER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_BAD_IFNAME_CHARS = re.compile(r"[/:\s]")


class CniError(Exception):
    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(f"{msg}: {details}" if details else msg)
        self.code = code
        self.msg = msg
        self.details = details


class NetConf(NamedTuple):
    cni_version: str
    name: str
    type: str
    ipamd_socket: str
    bridge: str = hostnet.DEFAULT_BRIDGE
    mtu: int = hostnet.DEFAULT_MTU
    dns: dict[str, Any] | None = None
    prev_result: dict[str, Any] | None = None


class CniEnv(NamedTuple):
    command: str
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    args: Mapping[str, str] | None = None
    path: str = ""

    def arg(self, name: str) -> str:
        return (self.args or {}).get(name, "")


# --- parsing ---------------------------------------------------------------------------------


def parse_cni_args(text: str) -> dict[str, str]:
    """`K1=V1;K2=V2` (CNI_ARGS) into a dict."""
    out: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CniError(ERR_INVALID_ENV, "invalid CNI_ARGS", f"{pair!r} is not KEY=VALUE")
        out[key] = value
    return out


def parse_env(environ: Mapping[str, str]) -> CniEnv:
    command = environ.get("CNI_COMMAND", "")
    if command not in ("ADD", "DEL", "CHECK", "VERSION"):
        raise CniError(ERR_INVALID_ENV, "invalid CNI_COMMAND",
                       f"{command!r} is not one of ADD, DEL, CHECK, VERSION")
    env = CniEnv(command=command, container_id=environ.get("CNI_CONTAINERID", ""),
                 netns=environ.get("CNI_NETNS", ""), ifname=environ.get("CNI_IFNAME", ""),
                 args=parse_cni_args(environ.get("CNI_ARGS", "")),
                 path=environ.get("CNI_PATH", ""))
    if command == "VERSION":
        return env
    if not env.container_id or not _CONTAINER_ID.match(env.container_id):
        raise CniError(ERR_INVALID_ENV, "invalid CNI_CONTAINERID", repr(env.container_id))
    if (not env.ifname or env.ifname in (".", "..") or len(env.ifname) > 15
            or _BAD_IFNAME_CHARS.search(env.ifname)):
        raise CniError(ERR_INVALID_ENV, "invalid CNI_IFNAME", repr(env.ifname))
    if command in ("ADD", "CHECK") and not env.netns:
        raise CniError(ERR_INVALID_ENV, "CNI_NETNS is required", f"for {command}")
    return env


def parse_netconf(text: str) -> NetConf:
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise CniError(ERR_DECODE, "failed to decode the network configuration", str(e)) from None
    if not isinstance(raw, dict):
        raise CniError(ERR_DECODE, "failed to decode the network configuration",
                       "not a JSON object")
    version = str(raw.get("cniVersion", ""))
    if version not in SUPPORTED_VERSIONS:
        raise CniError(ERR_INCOMPATIBLE_VERSION, "incompatible CNI version",
                       f"{version!r} is not one of {', '.join(SUPPORTED_VERSIONS)}")
    for required in ("name", "type", "ipamdSocket"):
        if not isinstance(raw.get(required), str) or not raw[required]:
            raise CniError(ERR_INVALID_CONFIG, "invalid network configuration",
                           f"{required!r} must be a non-empty string")
    if "ipam" in raw:
        raise CniError(ERR_UNSUPPORTED_FIELD, "unsupported field in network configuration",
                       "ipam: addresses come from ipamd (ipamdSocket), not an IPAM plugin")
    mtu = raw.get("mtu", hostnet.DEFAULT_MTU)
    if not isinstance(mtu, int) or isinstance(mtu, bool) or not 576 <= mtu <= 65535:
        raise CniError(ERR_INVALID_CONFIG, "invalid network configuration",
                       f"mtu {mtu!r} must be an integer in 576..65535")
    bridge = raw.get("bridge", hostnet.DEFAULT_BRIDGE)
    if not isinstance(bridge, str) or not 0 < len(bridge) <= 15:
        raise CniError(ERR_INVALID_CONFIG, "invalid network configuration",
                       f"bridge {bridge!r} must be an interface name")
    dns = raw.get("dns")
    prev = raw.get("prevResult")
    return NetConf(cni_version=version, name=raw["name"], type=raw["type"],
                   ipamd_socket=raw["ipamdSocket"], bridge=bridge, mtu=mtu,
                   dns=dns if isinstance(dns, dict) and dns else None,
                   prev_result=prev if isinstance(prev, dict) else None)


# --- results ---------------------------------------------------------------------------------


def build_result(version: str, *, host_if: str, host_mac: str, ifname: str, cont_mac: str,
                 netns: str, address: str, gateway: str,
                 dns: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ADD result: interfaces (host end, container end), the address on the container
    end (index 1), the default route, and DNS when the configuration has it."""
    ip_entry: dict[str, Any] = {"address": address, "gateway": gateway, "interface": 1}
    if not version.startswith("1."):
        ip_entry = {"version": "4", **ip_entry}  # 0.3.x/0.4.0 results carry the IP version
    result: dict[str, Any] = {
        "cniVersion": version,
        "interfaces": [{"name": host_if, "mac": host_mac},
                       {"name": ifname, "mac": cont_mac, "sandbox": netns}],
        "ips": [ip_entry],
        "routes": [{"dst": "0.0.0.0/0", "gw": gateway}],
    }
    if dns:
        result["dns"] = dns
    return result


def error_result(version: str, err: CniError) -> dict[str, Any]:
    body: dict[str, Any] = {"cniVersion": version, "code": err.code, "msg": err.msg}
    if err.details:
        body["details"] = err.details
    return body


def version_result(version: str = CNI_VERSION) -> dict[str, Any]:
    return {"cniVersion": version, "supportedVersions": list(SUPPORTED_VERSIONS)}


# --- ipamd client ----------------------------------------------------------------------------


class IpamdReply(dict[str, Any]):
    """A decoded reply; fields as attributes (`reply.ipv4_addr`)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class IpamdClient:
    """ipamd's CNIBackend service over gRPC. The plugin is a process per pod, so it uses the
    light unary client (cni.unary_grpc) rather than grpcio and hand-coded messages
    (cni.ipamdwire) rather than protobuf: both cost more to import than everything else the
    plugin does. The bytes on the wire are the same."""

    SERVICE = "/kubelite.ipamd.v1.CNIBackend/"

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path

    def _call(self, method: str, fields: tuple[str, ...], values: dict[str, str],
              reply: ipamdwire.Schema) -> IpamdReply:
        raw = unary_grpc.unary_call(f"unix:{self.socket_path}", self.SERVICE + method,
                                    ipamdwire.encode(fields, values), timeout=RPC_TIMEOUT)
        try:
            return IpamdReply(ipamdwire.decode(reply, raw))
        except (ipamdwire.WireError, UnicodeDecodeError) as e:
            raise RpcError(unary_grpc.INTERNAL, f"{method}: undecodable reply: {e}") from None

    def _error(self, e: RpcError, what: str) -> CniError:
        if e.code == unary_grpc.RESOURCE_EXHAUSTED:
            return CniError(ERR_TRY_AGAIN_LATER, EXHAUSTED_MESSAGE, e.details)
        if e.code in (unary_grpc.UNAVAILABLE, unary_grpc.DEADLINE_EXCEEDED):
            return CniError(ERR_TRY_AGAIN_LATER, f"ipamd is not reachable at {self.socket_path}",
                            f"{what}: {e.details}")
        name = unary_grpc.CODE_NAMES.get(e.code, str(e.code))
        return CniError(ERR_IPAM, f"ipamd {what} failed", f"StatusCode.{name}: {e.details}")

    def add(self, env: CniEnv, conf: NetConf) -> IpamdReply:
        values = {"container_id": env.container_id, "netns": env.netns, "ifname": env.ifname,
                  "network_name": conf.name, "k8s_pod_namespace": env.arg("K8S_POD_NAMESPACE"),
                  "k8s_pod_name": env.arg("K8S_POD_NAME"),
                  "k8s_pod_infra_container_id": env.arg("K8S_POD_INFRA_CONTAINER_ID"),
                  "client_version": PLUGIN_VERSION}
        try:
            return self._call("AddNetwork", ipamdwire.ADD_NETWORK_REQUEST, values,
                              ipamdwire.ADD_NETWORK_REPLY)
        except RpcError as e:
            raise self._error(e, "AddNetwork") from None

    def delete(self, env: CniEnv, conf: NetConf, reason: str = "") -> str:
        values = {"container_id": env.container_id, "ifname": env.ifname,
                  "network_name": conf.name, "k8s_pod_namespace": env.arg("K8S_POD_NAMESPACE"),
                  "k8s_pod_name": env.arg("K8S_POD_NAME"), "reason": reason,
                  "client_version": PLUGIN_VERSION}
        try:
            reply = self._call("DelNetwork", ipamdwire.DEL_NETWORK_REQUEST, values,
                               ipamdwire.DEL_NETWORK_REPLY)
            return str(reply.ipv4_addr)
        except RpcError as e:
            raise self._error(e, "DelNetwork") from None

    def check(self, env: CniEnv, conf: NetConf) -> str:
        values = {"container_id": env.container_id, "ifname": env.ifname,
                  "network_name": conf.name}
        try:
            reply = self._call("CheckNetwork", ipamdwire.CHECK_NETWORK_REQUEST, values,
                               ipamdwire.CHECK_NETWORK_REPLY)
            return str(reply.ipv4_addr)
        except RpcError as e:
            if e.code == unary_grpc.NOT_FOUND:
                raise CniError(ERR_CHECK, "CHECK failed", e.details) from None
            raise self._error(e, "CheckNetwork") from None


# --- commands --------------------------------------------------------------------------------


def cmd_add(env: CniEnv, conf: NetConf, ipamd: IpamdClient) -> dict[str, Any]:
    if not os.path.exists(env.netns):
        raise CniError(ERR_UNKNOWN_CONTAINER, "network namespace does not exist", env.netns)
    reply = ipamd.add(env, conf)
    address = f"{reply.ipv4_addr}/{reply.prefix_length}"
    host_if = hostnet.host_veth_name(conf.name, env.container_id, env.ifname)
    try:
        hostnet.ensure_bridge(conf.bridge, f"{reply.gateway}/{reply.prefix_length}", conf.mtu)
        host_mac, cont_mac = hostnet.setup_pod_veth(
            host_if=host_if, netns=env.netns, ifname=env.ifname, bridge=conf.bridge,
            address=address, gateway=reply.gateway, mtu=conf.mtu)
    except (NetlinkError, OSError) as e:
        # Give the address back: the runtime will retry ADD (or DEL) from scratch.
        try:
            ipamd.delete(env, conf, reason="ADD failed")
        except CniError as undo:
            log.error("could not give back %s after a failed ADD: %s", reply.ipv4_addr, undo)
        raise CniError(ERR_INTERFACE, "failed to set up the pod interface", str(e)) from None
    log.info("ADD container=%s ip=%s eni=%s veth=%s", env.container_id, address,
             reply.eni_id, host_if)
    return build_result(conf.cni_version, host_if=host_if, host_mac=host_mac,
                        ifname=env.ifname, cont_mac=cont_mac, netns=env.netns,
                        address=address, gateway=reply.gateway, dns=conf.dns)


def cmd_del(env: CniEnv, conf: NetConf, ipamd: IpamdClient) -> None:
    # The address first: if ipamd is down the DEL fails and the runtime retries it, rather
    # than the address leaking while the veth is already gone.
    released = ipamd.delete(env, conf, reason="DEL")
    host_if = hostnet.host_veth_name(conf.name, env.container_id, env.ifname)
    try:
        hostnet.delete_link(host_if)  # takes the container end with it
    except NetlinkError as e:
        raise CniError(ERR_INTERFACE, "failed to remove the pod interface", str(e)) from None
    log.info("DEL container=%s released=%s", env.container_id, released or "-")


def cmd_check(env: CniEnv, conf: NetConf, ipamd: IpamdClient) -> None:
    prev = conf.prev_result
    if not prev or not prev.get("ips"):
        raise CniError(ERR_INVALID_CONFIG, "invalid network configuration",
                       "CHECK needs prevResult with ips")
    if not os.path.exists(env.netns):
        raise CniError(ERR_UNKNOWN_CONTAINER, "network namespace does not exist", env.netns)
    address = str(prev["ips"][0].get("address", ""))
    gateway = str(prev["ips"][0].get("gateway", ""))
    problems: list[str] = []
    held = ipamd.check(env, conf)
    if held != address.split("/")[0]:
        problems.append(f"ipamd holds {held or 'nothing'} for the container, not {address}")
    try:
        if hostnet.link(env.ifname, netns=env.netns) is None:
            problems.append(f"no interface {env.ifname} in {env.netns}")
        elif address not in hostnet.addresses(env.ifname, netns=env.netns):
            problems.append(f"{env.ifname} does not have {address}")
        defaults = [r for r in hostnet.routes(netns=env.netns) if r.get("dst") == "default"]
        if gateway and not any(r.get("gateway") == gateway for r in defaults):
            problems.append(f"no default route via {gateway}")
        host_if = hostnet.host_veth_name(conf.name, env.container_id, env.ifname)
        host = hostnet.link(host_if)
        if host is None:
            problems.append(f"no host interface {host_if}")
        elif host.get("master") != conf.bridge:
            problems.append(f"{host_if} is not on bridge {conf.bridge}")
    except NetlinkError as e:
        problems.append(str(e))
    if problems:
        raise CniError(ERR_CHECK, "CHECK failed", "; ".join(problems))


def run(environ: Mapping[str, str], stdin: str) -> tuple[int, dict[str, Any] | None]:
    """One plugin invocation: (exit code, JSON to print or None)."""
    version = CNI_VERSION
    try:
        env = parse_env(environ)
        if env.command == "VERSION":
            return 0, version_result()
        conf = parse_netconf(stdin)
        version = conf.cni_version
        if env.command == "CHECK" and version in ("0.3.0", "0.3.1"):
            raise CniError(ERR_INCOMPATIBLE_VERSION, "incompatible CNI version",
                           "CHECK needs cniVersion 0.4.0 or later")
        ipamd = IpamdClient(conf.ipamd_socket)  # one connection per call: nothing to close
        if env.command == "ADD":
            return 0, cmd_add(env, conf, ipamd)
        if env.command == "DEL":
            cmd_del(env, conf, ipamd)
        else:
            cmd_check(env, conf, ipamd)
        return 0, None
    except CniError as e:
        log.error("%s", e)
        return 1, error_result(version, e)
    except Exception as e:  # the runtime must always get a JSON error, never a traceback
        log.exception("unexpected error")
        return 1, error_result(version, CniError(ERR_INTERNAL, "internal error", repr(e)))


def main() -> int:
    log.configure(os.environ.get("KUBELITE_CNI_LOG_LEVEL", "WARNING"))
    stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    code, output = run(os.environ, stdin)
    if output is not None:
        sys.stdout.write(json.dumps(output) + "\n")
        sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
