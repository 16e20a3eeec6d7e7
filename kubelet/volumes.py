"""Pod volumes as host directories, bind-mounted into the containers.

Layout (upstream's): `<root-dir>/pods/<uid>/volumes/kubernetes.io~<plugin>/<volume>`.

- emptyDir: a directory that lives as long as the pod (medium Memory is a plain directory
  too: no tmpfs, see docs/kubelet.md).
- hostPath: the host path itself, after the `type` check (DirectoryOrCreate, Directory,
  FileOrCreate, File, Socket, CharDevice, BlockDevice).
- configMap, secret, downwardAPI, projected: files written with upstream's atomic writer
  layout — the payload lives in a timestamped `..<ts>` directory, `..data` links to it and
  each top-level name links into `..data/` — so a running container sees either the old or
  the new payload, never a mix, when the kubelet refreshes it. Mounted read-only. A
  projected `serviceAccountToken` source is a bound token from the kubelet's token manager
  (tokenmanager.py), rewritten by the same refresh once the manager has renewed it. With a
  pod fsGroup, files of these volumes belong to that group and are group-readable
  (upstream's SetVolumeOwnership).
- secret, and projected with a secret or serviceAccountToken source: the payload is written
  into a tmpfs mounted at the volume directory first (upstream wraps these in a
  medium-Memory emptyDir), so a secret never reaches the node's disk. Where the kubelet may
  not mount (not root), the plain directory is used and one warning says so. Teardown
  (`remove_pod_dir`) unmounts before it removes.

Everything the kubelet cannot set up is a `VolumeError` (the FailedMount event, and the pod
waits in ContainerCreating), as a missing ConfigMap is upstream.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import errno
import functools
import logging
import os
import re
import shutil
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubelet.envvars import EnvError, Lookup, PodContext, expand, field_ref, resource_field_ref
from kubelet.tokenmanager import TokenGetter
from proto.cri import api_pb2 as cri

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Payload = dict[str, tuple[bytes, int]]  # relative path -> (content, mode)

PLUGIN_DIRS = {"emptyDir": "kubernetes.io~empty-dir", "configMap": "kubernetes.io~configmap",
               "secret": "kubernetes.io~secret", "downwardAPI": "kubernetes.io~downward-api",
               "projected": "kubernetes.io~projected"}
_PROPAGATION = {"HostToContainer": cri.PROPAGATION_HOST_TO_CONTAINER,
                "Bidirectional": cri.PROPAGATION_BIDIRECTIONAL}
DATA_DIR = "..data"


class VolumeError(Exception):
    """A volume cannot be set up (FailedMount)."""


@dataclass(frozen=True)
class HostVolume:
    path: str
    read_only: bool = False


def pod_dir(root: Path, uid: str) -> Path:
    return root / "pods" / uid


def volume_kind(volume: Obj) -> str:
    for kind in ("emptyDir", "hostPath", "configMap", "secret", "downwardAPI", "projected"):
        if kind in volume:
            return kind
    other = [k for k in volume if k != "name"]
    return other[0] if other else ""


# --- the atomic writer ----------------------------------------------------------------------

def _current_payload(target: Path) -> Payload | None:
    data = target / DATA_DIR
    if not data.is_symlink():
        return None
    out: Payload = {}
    base = data.resolve()
    for dirpath, _, files in os.walk(base):
        for f in files:
            full = Path(dirpath) / f
            out[str(full.relative_to(base))] = (full.read_bytes(), stat.S_IMODE(
                full.stat().st_mode))
    return out


def write_atomic(target: Path, payload: Payload, gid: int | None = None) -> bool:
    """Make `target` hold exactly `payload`; False when it already did. With `gid` (the
    pod's fsGroup) the files belong to that group (when the kubelet may chown)."""
    target.mkdir(parents=True, exist_ok=True)
    if _current_payload(target) == payload:
        return False
    stamp = f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.time_ns() % 10**9}"
    fresh = target / stamp
    fresh.mkdir()
    for rel, (content, mode) in payload.items():
        path = fresh / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
        if gid is not None:
            with contextlib.suppress(PermissionError):
                os.chown(path, -1, gid)
    old_data = (target / DATA_DIR).resolve() if (target / DATA_DIR).is_symlink() else None
    tmp_link = target / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp_link.unlink()
    tmp_link.symlink_to(stamp)
    tmp_link.replace(target / DATA_DIR)  # rename(2): the switch is atomic
    tops = {rel.split("/", 1)[0] for rel in payload}
    for top in tops:
        link = target / top
        if not link.is_symlink():
            if link.exists():
                shutil.rmtree(link) if link.is_dir() else link.unlink()
            link.symlink_to(f"{DATA_DIR}/{top}")
    for entry in target.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.name not in tops and entry.is_symlink():
            entry.unlink()
    if old_data is not None and old_data.name != stamp and old_data.parent == target:
        shutil.rmtree(old_data, ignore_errors=True)
    return True


# --- tmpfs for secret-backed volumes --------------------------------------------------------

_MS_NOSUID, _MS_NODEV, _MS_REMOUNT = 0x2, 0x4, 0x20
_MNT_DETACH, _UMOUNT_NOFOLLOW = 0x2, 0x8
_PAGE = 4096
_SLACK = 1 << 20


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts() -> list[tuple[str, str, str]]:
    """(mount point, fstype, super options) of every mount this process sees."""
    out: list[tuple[str, str, str]] = []
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        head, sep, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if sep and len(fields) >= 5 and len(rest) >= 3:
            out.append((_unescape(fields[4]), rest[0], rest[2]))
    return out


def is_secret_backed(volume: Obj) -> bool:
    """Volumes whose files are secrets: these live on tmpfs (upstream's secret plugin, and
    projected volumes, which upstream always puts on tmpfs)."""
    kind = volume_kind(volume)
    if kind == "secret":
        return True
    if kind != "projected":
        return False
    return any(src.get("secret") or src.get("serviceAccountToken")
               for src in (volume.get("projected") or {}).get("sources") or [])


def _tmpfs_size(payload: Payload) -> int:
    # The atomic writer holds the old and the new payload at once during a swap; every file
    # and directory takes at least one page.
    need = sum(-(-len(content) // _PAGE) * _PAGE + 2 * _PAGE for content, _ in payload.values())
    return 2 * need + _SLACK


def _size_of(options: str) -> int | None:
    m = re.search(r"(?:^|,)size=(\d+)([kmg]?)(?:,|$)", options)
    if m is None:
        return None
    return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2)]


def _mount_tmpfs(target: str, size: int, remount: bool) -> None:
    flags = _MS_NOSUID | _MS_NODEV | (_MS_REMOUNT if remount else 0)
    rc = _libc().mount(b"tmpfs", os.fsencode(target), b"tmpfs", ctypes.c_ulong(flags),
                       f"size={size},mode=0755".encode())
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


@functools.cache
def _warn_no_tmpfs(reason: str) -> None:
    # Once per reason, not once per volume and refresh.
    log.warning("secret volumes are plain directories, not tmpfs: %s", reason)


def ensure_tmpfs(target: Path, payload: Payload) -> bool:
    """Make `target` a tmpfs big enough for `payload` (mounting or growing it); False when it
    stays a plain directory. A directory that already holds a payload outside tmpfs (an
    earlier fallback) is kept: a container may have it bind-mounted, and a mount on top
    would hide later refreshes from it."""
    if target.is_symlink():
        raise VolumeError(f"{target} is a symbolic link")
    target.mkdir(parents=True, exist_ok=True)
    real = os.path.realpath(target)
    size = _tmpfs_size(payload)
    here = [(fstype, opts) for point, fstype, opts in mounts() if point == real]
    try:
        if here and here[-1][0] == "tmpfs":
            current = _size_of(here[-1][1])
            if current is not None and current < size:
                _mount_tmpfs(real, size, remount=True)
            return True
        if (target / DATA_DIR).is_symlink():
            return False
        _mount_tmpfs(real, size, remount=False)
        return True
    except OSError as e:
        _warn_no_tmpfs(f"mount -t tmpfs: {e.strerror} (errno {e.errno})")
        return False


def _unmount(point: str) -> None:
    libc = _libc()
    if libc.umount2(os.fsencode(point), _UMOUNT_NOFOLLOW) == 0:
        return
    err = ctypes.get_errno()
    if err == errno.EBUSY:  # still in use: detach now, the kernel frees it when unused
        if libc.umount2(os.fsencode(point), _UMOUNT_NOFOLLOW | _MNT_DETACH) == 0:
            log.warning("volume %s was busy: detached lazily", point)
            return
        err = ctypes.get_errno()
    raise OSError(err, os.strerror(err), point)


# --- payloads -------------------------------------------------------------------------------

def _mode(item: Obj, default: int) -> int:
    mode = item.get("mode")
    return int(mode) if isinstance(mode, int) else default


def _keyed_payload(data: Mapping[str, bytes], items: list[Obj] | None, default_mode: int,
                   kind: str, name: str, optional: bool) -> Payload:
    if not items:
        return {k: (v, default_mode) for k, v in data.items()}
    out: Payload = {}
    for item in items:
        key = item.get("key", "")
        if key not in data:
            if optional:
                continue
            raise VolumeError(f'configmap references non-existent config key: {key}'
                              if kind == "configmap" else
                              f'references non-existent secret key: {key}')
        out[str(item.get("path") or key)] = (data[key], _mode(item, default_mode))
    return out


async def _configmap_payload(source: Obj, ns: str, get: Lookup, default_mode: int) -> Payload:
    name, optional = source.get("name", ""), bool(source.get("optional"))
    obj = await get(ns, name)
    if obj is None:
        if optional:
            return {}
        raise VolumeError(f'configmap "{name}" not found')
    data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    for k, v in (obj.get("binaryData") or {}).items():
        data[k] = base64.b64decode(v)
    return _keyed_payload(data, source.get("items"), default_mode, "configmap", name, optional)


async def _secret_payload(source: Obj, ns: str, get: Lookup, default_mode: int) -> Payload:
    name = source.get("secretName") or source.get("name") or ""
    optional = bool(source.get("optional"))
    obj = await get(ns, name)
    if obj is None:
        if optional:
            return {}
        raise VolumeError(f'secret "{name}" not found')
    data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    return _keyed_payload(data, source.get("items"), default_mode, "secret", name, optional)


def _downward_payload(pod: Obj, items: list[Obj], ctx: PodContext, default_mode: int
                      ) -> Payload:
    out: Payload = {}
    for item in items:
        try:
            if item.get("fieldRef"):
                value = field_ref(pod, str(item["fieldRef"].get("fieldPath", "")), ctx)
            elif item.get("resourceFieldRef"):
                ref = item["resourceFieldRef"]
                containers = (pod.get("spec") or {}).get("containers") or [{}]
                value = resource_field_ref(pod, containers[0], ref, ctx)
            else:
                continue
        except EnvError as e:
            raise VolumeError(str(e)) from e
        out[str(item.get("path", ""))] = (value.encode(), _mode(item, default_mode))
    return out


async def volume_payload(pod: Obj, volume: Obj, ctx: PodContext, get_configmap: Lookup,
                         get_secret: Lookup, get_token: TokenGetter | None = None) -> Payload:
    ns = pod["metadata"].get("namespace", "default")
    kind = volume_kind(volume)
    source = volume[kind] or {}
    default_mode = int(source.get("defaultMode", 0o644))
    if kind == "configMap":
        return await _configmap_payload(source, ns, get_configmap, default_mode)
    if kind == "secret":
        return await _secret_payload(source, ns, get_secret, default_mode)
    if kind == "downwardAPI":
        return _downward_payload(pod, source.get("items") or [], ctx, default_mode)
    out: Payload = {}
    for src in source.get("sources") or []:  # projected
        if src.get("configMap"):
            out.update(await _configmap_payload(src["configMap"], ns, get_configmap,
                                                default_mode))
        elif src.get("secret"):
            out.update(await _secret_payload(src["secret"], ns, get_secret, default_mode))
        elif src.get("downwardAPI"):
            out.update(_downward_payload(pod, src["downwardAPI"].get("items") or [], ctx,
                                         default_mode))
        elif src.get("serviceAccountToken"):
            out.update(await _token_payload(pod, src["serviceAccountToken"], get_token,
                                            default_mode))
        # clusterTrustBundle is not supported: its file is left out.
    return out


async def _token_payload(pod: Obj, source: Obj, get_token: TokenGetter | None,
                         default_mode: int) -> Payload:
    """A bound token for the pod's service account (upstream projected.go): audience
    `source.audience` (the apiserver's own when unset), the source's expirationSeconds
    (default 3600), bound to this pod. The file has the volume's defaultMode, or 0600 when
    the pod has an fsGroup, which then widens it to 0640 for its group."""
    if get_token is None:
        raise VolumeError("service account tokens are not available on this kubelet")
    md, spec = pod["metadata"], pod.get("spec") or {}
    sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    audience = source.get("audience")
    tr = {"spec": {
        "audiences": [audience] if audience else [],
        "expirationSeconds": int(source.get("expirationSeconds") or 3600),
        "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": md.get("name", ""),
                           "uid": md.get("uid", "")}}}
    try:
        answer = await get_token(md.get("namespace", "default"), str(sa), tr)
    except Exception as e:  # any failure is a FailedMount with its reason
        raise VolumeError(str(e)) from e
    mode = 0o600 if _fs_group(pod) is not None else default_mode
    token = str((answer.get("status") or {}).get("token") or "")
    return {str(source.get("path") or "token"): (token.encode(), mode)}


def _fs_group(pod: Obj) -> int | None:
    value = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_host_path(path: str, type_: str) -> None:
    p = Path(path)
    if type_ == "DirectoryOrCreate":
        p.mkdir(parents=True, exist_ok=True, mode=0o755)
    elif type_ == "FileOrCreate" and not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch(mode=0o644)
    checks = {"Directory": (p.is_dir, "a directory"), "File": (p.is_file, "a file"),
              "Socket": (p.is_socket, "a socket file"),
              "CharDevice": (p.is_char_device, "a character device"),
              "BlockDevice": (p.is_block_device, "a block device"),
              "DirectoryOrCreate": (p.is_dir, "a directory"),
              "FileOrCreate": (p.is_file, "a file")}
    if type_ in checks:
        check, what = checks[type_]
        if not check():
            raise VolumeError(f"hostPath type check failed: {path} is not {what}")


async def setup_volumes(pod: Obj, root: Path, ctx: PodContext, get_configmap: Lookup,
                        get_secret: Lookup, get_token: TokenGetter | None = None
                        ) -> dict[str, HostVolume]:
    """Create (or refresh) every volume of the pod; name -> where it is on the host."""
    base = pod_dir(root, pod["metadata"]["uid"]) / "volumes"
    out: dict[str, HostVolume] = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = volume.get("name", "")
        kind = volume_kind(volume)
        try:
            if kind == "hostPath":
                hp = volume["hostPath"] or {}
                _check_host_path(str(hp.get("path", "")), str(hp.get("type") or ""))
                out[name] = HostVolume(str(hp.get("path", "")))
                continue
            if kind not in PLUGIN_DIRS:
                raise VolumeError(f"volume type {kind!r} is not supported by kubelite")
            target = base / PLUGIN_DIRS[kind] / name
            if kind == "emptyDir":
                target.mkdir(parents=True, exist_ok=True)
                target.chmod(0o777)  # upstream: any container user may write it
                out[name] = HostVolume(str(target))
                continue
            payload = await volume_payload(pod, volume, ctx, get_configmap, get_secret,
                                           get_token)
            gid = _fs_group(pod)
            if gid is not None:
                # SetVolumeOwnership of a read-only volume: the fsGroup may read every file.
                payload = {rel: (data, mode | 0o440) for rel, (data, mode) in payload.items()}
            if is_secret_backed(volume):
                ensure_tmpfs(target, payload)
            write_atomic(target, payload, gid)
            out[name] = HostVolume(str(target), read_only=True)
        except VolumeError as e:
            raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {e}') from e
        except OSError as e:
            raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {e}') from e
    return out


def container_mounts(container: Obj, volumes: Mapping[str, HostVolume],
                     env: Mapping[str, str]) -> list[cri.Mount]:
    """The CRI mounts of a container's volumeMounts (subPath and subPathExpr included)."""
    mounts: list[cri.Mount] = []
    for vm in container.get("volumeMounts") or []:
        vol = volumes.get(vm.get("name", ""))
        if vol is None:
            raise VolumeError(f"volumeMount {vm.get('name')!r} names no volume of the pod")
        host = vol.path
        sub = vm.get("subPath") or ""
        if vm.get("subPathExpr"):
            sub = expand(str(vm["subPathExpr"]), env.get)
        if sub:
            if sub.startswith("/") or ".." in Path(sub).parts:
                raise VolumeError(f"invalid subPath {sub!r}")
            host = os.path.join(host, sub)
            if not os.path.exists(host):
                os.makedirs(host, exist_ok=True)
        mounts.append(cri.Mount(container_path=str(vm.get("mountPath", "")), host_path=host,
                                readonly=bool(vm.get("readOnly")) or vol.read_only,
                                propagation=_PROPAGATION.get(str(vm.get("mountPropagation")),
                                                             cri.PROPAGATION_PRIVATE)))
    return mounts


def remove_pod_dir(root: Path, uid: str) -> None:
    """Unmount every mount under the pod's directory (its tmpfs volumes), deepest first,
    then remove the directory (volumes of kinds the kubelet created; hostPath data is never
    under it). Symbolic links are never followed: a link in place of the pod directory is
    only unlinked, umount2 gets UMOUNT_NOFOLLOW and rmtree does not descend into links."""
    base = pod_dir(root, uid)
    if base.is_symlink():
        base.unlink()
        return
    if not base.exists():
        return
    prefix = os.path.realpath(base) + "/"
    points = sorted({p for p, _, _ in mounts() if p.startswith(prefix)}, key=len, reverse=True)
    for point in points:
        try:
            _unmount(point)
        except OSError as e:
            # Keep the data: rmtree would empty a tmpfs it cannot remove.
            log.warning("cannot unmount %s: %s; pod directory kept", point, e.strerror)
            return
    shutil.rmtree(base, ignore_errors=True)
