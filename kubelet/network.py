"""The node's pod network as the kubelet side sees it: the CNI network configuration, the
CNI exec hook the runtime calls for each sandbox, and what ipamd says about the node.

**The hook.** `CniPlugin` is the runtime's `network_plugin` (docs/runtime.md): it runs the
plugin executable exactly as the CNI spec says — `CNI_COMMAND`, `CNI_CONTAINERID`,
`CNI_NETNS`, `CNI_IFNAME`, `CNI_ARGS` (`IgnoreUnknown=1;K8S_POD_NAMESPACE=..;K8S_POD_NAME=..;
K8S_POD_INFRA_CONTAINER_ID=..;K8S_POD_UID=..`), `CNI_PATH` in the environment, the network
configuration on stdin (with `runtimeConfig.portMappings`, and `prevResult` for DEL) — and
returns the result JSON, or raises `CniError` with the plugin's code, msg and details (for
an exhausted pool: "failed to assign an IP address to container: ..."; the kubelet puts it
in the FailedCreatePodSandBox event).

`cni_plugin_from_dirs(conf_dir, bin_dir)` finds the configuration and the executable the
upstream way (the first `*.conf`/`*.conflist`/`*.json` in the conf dir, by name; the
executable named by its `type` in the bin dir): that is what the runtime's
`--network-plugin=cni --cni-conf-dir --cni-bin-dir` flags (cri-dockerd's names) use.

**The node.** `ipamd_status` asks the node's ipamd (gRPC, proto/ipamd.proto) for max pods,
the VPC and the node's ENIs; the primary IP of ENI device 0 is the node's InternalIP, as on
EC2. `ensure_node_address` puts that address on the VPC bridge, so it is a real address of
the host: the apiserver reaches the kubelet there and pods reach their node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from proto import ipamd_pb2, ipamd_pb2_grpc

if TYPE_CHECKING:
    from kubelet.runtime.server import PodNetworkArgs

log = logging.getLogger(__name__)
Obj = dict[str, Any]

CNI_VERSION = "1.0.0"
NETWORK_NAME = "kubelite"
PLUGIN_TYPE = "kubelite-cni"
CONF_FILE = "10-kubelite.conf"
DEFAULT_BRIDGE = "kl-vpc0"
DEFAULT_IFNAME = "eth0"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BIN_DIR = REPO_ROOT / "cni"  # holds the kubelite-cni executable


class CniError(Exception):
    """The plugin failed: its error JSON (code, msg, details)."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(f"{msg}: {details}" if details else msg)
        self.code = code
        self.msg = msg
        self.details = details


# --- configuration --------------------------------------------------------------------------

def make_netconf(ipamd_socket: str, *, bridge: str = DEFAULT_BRIDGE, mtu: int = 1500,
                 dns: Mapping[str, Any] | None = None) -> Obj:
    conf: Obj = {"cniVersion": CNI_VERSION, "name": NETWORK_NAME, "type": PLUGIN_TYPE,
                 "ipamdSocket": ipamd_socket, "bridge": bridge, "mtu": mtu}
    if dns:
        conf["dns"] = dict(dns)
    return conf


def write_netconf(conf_dir: Path, netconf: Obj) -> Path:
    conf_dir.mkdir(parents=True, exist_ok=True)
    path = conf_dir / CONF_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(netconf, indent=2) + "\n")
    tmp.replace(path)
    return path


def load_netconf(conf_dir: Path) -> Obj:
    """The first network configuration in `conf_dir` (a conflist's first plugin, with the
    list's cniVersion and name), as upstream's libcni picks it."""
    files = sorted(p for p in conf_dir.glob("*") if p.suffix in (".conf", ".conflist", ".json"))
    if not files:
        raise FileNotFoundError(f"no CNI network configuration in {conf_dir}")
    data = json.loads(files[0].read_text())
    if files[0].suffix == ".conflist" or "plugins" in data:
        plugins = data.get("plugins") or []
        if not plugins:
            raise ValueError(f"{files[0]}: a conflist without plugins")
        conf = dict(plugins[0])
        conf.setdefault("cniVersion", data.get("cniVersion", CNI_VERSION))
        conf.setdefault("name", data.get("name", NETWORK_NAME))
        return conf
    return dict(data)


def find_plugin(bin_dirs: list[Path], plugin_type: str) -> Path:
    for d in bin_dirs:
        candidate = d / plugin_type
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(f"CNI plugin {plugin_type!r} not found in "
                            f"{', '.join(str(d) for d in bin_dirs)}")


# --- the exec hook --------------------------------------------------------------------------

def cni_args(args: PodNetworkArgs) -> str:
    return ";".join(["IgnoreUnknown=1", f"K8S_POD_NAMESPACE={args.pod_namespace}",
                     f"K8S_POD_NAME={args.pod_name}",
                     f"K8S_POD_INFRA_CONTAINER_ID={args.sandbox_id}",
                     f"K8S_POD_UID={args.pod_uid}"])


def plugin_input(netconf: Obj, command: str, args: PodNetworkArgs) -> Obj:
    conf = dict(netconf)
    if args.port_mappings:
        conf["runtimeConfig"] = {"portMappings": [dict(m) for m in args.port_mappings]}
    if command in ("DEL", "CHECK") and args.prev_result:
        conf["prevResult"] = dict(args.prev_result)
    return conf


def parse_plugin_output(code: int, stdout: bytes, stderr: bytes) -> Obj:
    text = stdout.decode(errors="replace").strip()
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = None
    if code != 0:
        if isinstance(data, dict) and "msg" in data:
            raise CniError(int(data.get("code") or 999), str(data["msg"]),
                           str(data.get("details") or ""))
        tail = stderr.decode(errors="replace").strip()[-500:]
        raise CniError(999, f"plugin exited with {code}", tail or text[:500])
    if not isinstance(data, dict):
        raise CniError(999, "plugin printed no JSON result", text[:500])
    return data


class CniPlugin:
    """`await plugin("ADD" | "DEL", args)`: one CNI exec (the runtime's network hook)."""

    def __init__(self, netconf: Obj, plugin_path: Path, *, ifname: str = DEFAULT_IFNAME,
                 timeout: float = 120.0) -> None:
        self.netconf = netconf
        self.plugin_path = plugin_path
        self.ifname = ifname
        self.timeout = timeout

    async def __call__(self, command: str, args: PodNetworkArgs) -> Mapping[str, Any]:
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
               "CNI_COMMAND": command, "CNI_CONTAINERID": args.sandbox_id,
               "CNI_NETNS": args.netns, "CNI_IFNAME": self.ifname, "CNI_ARGS": cni_args(args),
               "CNI_PATH": str(self.plugin_path.parent)}
        for key in ("KUBELITE_CNI_LOG_LEVEL", "KUBELITE_PYTHON"):
            if key in os.environ:
                env[key] = os.environ[key]
        stdin = json.dumps(plugin_input(self.netconf, command, args)).encode()
        proc = await asyncio.create_subprocess_exec(
            str(self.plugin_path), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(stdin), self.timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise CniError(11, f"CNI {command} timed out after {self.timeout:.0f}s") from None
        result = parse_plugin_output(int(proc.returncode or 0), stdout, stderr)
        log.info("CNI %s pod=%s/%s sandbox=%s ok", command, args.pod_namespace, args.pod_name,
                 args.sandbox_id[:12])
        return result


def cni_plugin_from_dirs(conf_dir: str | Path, bin_dir: str | Path = DEFAULT_BIN_DIR
                         ) -> CniPlugin:
    """The hook for `--network-plugin=cni --cni-conf-dir D --cni-bin-dir B` (bin dirs may
    be a `:`-separated list)."""
    netconf = load_netconf(Path(conf_dir))
    dirs = [Path(d) for d in str(bin_dir).split(":") if d]
    return CniPlugin(netconf, find_plugin(dirs, str(netconf.get("type", PLUGIN_TYPE))))


# --- ipamd and the node's address -----------------------------------------------------------

async def ipamd_status(socket_path: str, timeout: float = 5.0) -> ipamd_pb2.StatusReply | None:
    """ipamd's Status, or None when it does not answer."""
    channel = grpc.aio.insecure_channel(f"unix:{socket_path}")
    try:
        stub = ipamd_pb2_grpc.CNIBackendStub(channel)
        reply: ipamd_pb2.StatusReply = await stub.Status(ipamd_pb2.StatusRequest(),
                                                         timeout=timeout)
        return reply
    except grpc.aio.AioRpcError as e:
        log.debug("ipamd at %s does not answer: %s", socket_path, e.code())
        return None
    finally:
        await channel.close()


def primary_ip(status: ipamd_pb2.StatusReply) -> str | None:
    """The primary address of the node's first ENI (device 0): its InternalIP."""
    enis = sorted(status.enis, key=lambda e: e.device_number)
    return enis[0].primary_ip if enis and enis[0].primary_ip else None


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False,
                          timeout=10)


def ensure_node_address(bridge: str, address: str) -> bool:
    """Put `address/32` on the VPC bridge (idempotent); False when that is not possible
    (no bridge, no `ip`, not root)."""
    if not bridge or shutil.which("ip") is None:
        return False
    if _ip("link", "show", "dev", bridge).returncode != 0:
        return False
    result = _ip("addr", "replace", f"{address}/32", "dev", bridge)
    if result.returncode != 0:
        log.warning("cannot put node address %s on %s: %s", address, bridge,
                    result.stderr.strip())
        return False
    return True


def remove_node_address(bridge: str, address: str) -> None:
    """Take `address/32` off the bridge again (the kubelet's clean shutdown)."""
    if bridge and shutil.which("ip") is not None:
        _ip("addr", "del", f"{address}/32", "dev", bridge)


def flush_node_addresses(bridge: str) -> list[str]:
    """Remove every /32 (node address) from the bridge; what was removed. Only for whoever
    owns all nodes of the host (`kubelite up` holding its node lock): a stale node address
    of an earlier cluster would swallow a pod's traffic that now has that address."""
    if not bridge or shutil.which("ip") is None:
        return []
    shown = _ip("-j", "addr", "show", "dev", bridge)
    if shown.returncode != 0:
        return []
    removed = []
    for link in json.loads(shown.stdout or "[]"):
        for a in link.get("addr_info") or []:
            if a.get("family") == "inet" and a.get("prefixlen") == 32:
                _ip("addr", "del", f"{a['local']}/32", "dev", bridge)
                removed.append(str(a["local"]))
    return removed
