"""Secret-backed volumes on tmpfs: mounted before the payload is written, with the volume's
modes, and unmounted by teardown. Mounting needs root (CAP_SYS_ADMIN); the fallback to a
plain directory is tested everywhere."""

from __future__ import annotations

import base64
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubelet import volumes as V
from kubelet.envvars import PodContext
from kubelet.volumes import mounts, remove_pod_dir, setup_volumes

Obj = dict[str, Any]
UID = "pod-uid"
CANARY = b"canary-secret-value"


def _can_mount() -> str | None:
    """Why tmpfs cannot be mounted here, or None."""
    if os.geteuid() != 0:
        return "not root: mounting tmpfs needs CAP_SYS_ADMIN"
    if not Path("/proc/self/mountinfo").exists():
        return "no /proc/self/mountinfo"
    return None


@pytest.fixture
def mountable() -> None:
    """Skip (saying why) where tmpfs cannot be mounted: these tests need root."""
    reason = _can_mount()
    if reason is not None:
        print(f"\nskipping: {reason}")
        pytest.skip(reason)


needs_mount = pytest.mark.usefixtures("mountable")


async def _secret(namespace: str, name: str) -> Obj | None:
    if (namespace, name) == ("team", "db"):
        return {"metadata": {"name": name},
                "data": {"password": base64.b64encode(CANARY).decode(),
                         "user": base64.b64encode(b"admin").decode()}}
    return None


async def _configmap(namespace: str, name: str) -> Obj | None:
    return {"metadata": {"name": name}, "data": {"k": "v"}}


async def _token(namespace: str, name: str, tr: Obj) -> Obj:
    return {"status": {"token": "token-1"}}


def _pod(*volumes: Obj) -> Obj:
    return {"metadata": {"name": "web", "namespace": "team", "uid": UID},
            "spec": {"containers": [{"name": "c"}], "volumes": list(volumes)}}


SECRET_VOL = {"name": "creds", "secret": {"secretName": "db", "defaultMode": 0o400,
                                         "items": [{"key": "password", "path": "pw"},
                                                   {"key": "user", "path": "u",
                                                    "mode": 0o440}]}}
PROJECTED_VOL = {"name": "api", "projected": {"defaultMode": 0o600, "sources": [
    {"serviceAccountToken": {"path": "token"}},
    {"configMap": {"name": "ca"}}]}}
CONFIGMAP_VOL = {"name": "conf", "configMap": {"name": "ca"}}


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    remove_pod_dir(tmp_path, UID)  # never leave a mount behind, even when a test fails
    leaked = [p for p, _, _ in mounts() if p.startswith(os.path.realpath(tmp_path) + "/")]
    assert not leaked


def _fstype(path: Path) -> str | None:
    real = os.path.realpath(path)
    found = [fstype for point, fstype, _ in mounts() if point == real]
    return found[-1] if found else None


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@needs_mount
async def test_secret_volume_is_tmpfs_with_the_modes(root: Path) -> None:
    vols = await setup_volumes(_pod(SECRET_VOL), root, PodContext(), _configmap, _secret)
    target = Path(vols["creds"].path)
    assert target == root / "pods" / UID / "volumes" / "kubernetes.io~secret" / "creds"
    assert _fstype(target) == "tmpfs"
    assert (target / "pw").read_bytes() == CANARY
    assert _mode(target / "pw") == 0o400  # defaultMode
    assert _mode(target / "u") == 0o440  # items[].mode
    assert _mode(target) == 0o755
    assert vols["creds"].read_only


@needs_mount
async def test_projected_token_volume_is_tmpfs_configmap_is_not(root: Path) -> None:
    vols = await setup_volumes(_pod(PROJECTED_VOL, CONFIGMAP_VOL), root, PodContext(),
                               _configmap, _secret, _token)
    assert _fstype(Path(vols["api"].path)) == "tmpfs"
    assert _mode(Path(vols["api"].path) / "token") == 0o600
    assert _fstype(Path(vols["conf"].path)) != "tmpfs"


@needs_mount
async def test_refresh_keeps_one_mount_and_teardown_unmounts(root: Path) -> None:
    pod = _pod(SECRET_VOL)
    target = Path((await setup_volumes(pod, root, PodContext(), _configmap, _secret))
                  ["creds"].path)
    await setup_volumes(pod, root, PodContext(), _configmap, _secret)  # a refresh
    real = os.path.realpath(target)
    assert [p for p, _, _ in mounts() if p == real] == [real]
    outside = root / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    (root / "pods" / UID / "link").symlink_to(outside)  # teardown must not follow it
    remove_pod_dir(root, UID)
    assert _fstype(target) is None
    assert not (root / "pods" / UID).exists()
    assert (outside / "keep").read_text() == "x"


@needs_mount
async def test_tmpfs_grows_with_the_payload(root: Path) -> None:
    big = b"x" * (3 << 20)

    async def secret(namespace: str, name: str) -> Obj | None:
        return {"metadata": {"name": name}, "data": {"big": base64.b64encode(big).decode()}}

    pod = _pod({"name": "creds", "secret": {"secretName": "db"}})
    small = await setup_volumes(pod, root, PodContext(), _configmap, _secret)
    target = Path(small["creds"].path)
    await setup_volumes(pod, root, PodContext(), _configmap, secret)
    assert (target / "big").read_bytes() == big
    assert _fstype(target) == "tmpfs"


def _refuse(target: str, size: int, remount: bool) -> None:
    raise OSError(1, "Operation not permitted", target)


async def test_without_mount_a_plain_directory_and_one_warning(
        root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(V, "_mount_tmpfs", _refuse)
    V._warn_no_tmpfs.cache_clear()
    caplog.set_level(logging.WARNING, logger="kubelet.volumes")
    pod = _pod(SECRET_VOL, {**PROJECTED_VOL, "name": "api2"})
    vols = await setup_volumes(pod, root, PodContext(), _configmap, _secret, _token)
    await setup_volumes(pod, root, PodContext(), _configmap, _secret, _token)
    target = Path(vols["creds"].path)
    assert _fstype(target) != "tmpfs"
    assert (target / "pw").read_bytes() == CANARY
    assert _mode(target / "pw") == 0o400
    warnings = [r for r in caplog.records if "not tmpfs" in r.getMessage()]
    assert len(warnings) == 1
    assert "Operation not permitted" in warnings[0].getMessage()
    remove_pod_dir(root, UID)
    assert not (root / "pods" / UID).exists()


@needs_mount
async def test_a_plain_payload_from_a_fallback_is_not_hidden(root: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    pod = _pod(SECRET_VOL)
    with monkeypatch.context() as m:
        m.setattr(V, "_mount_tmpfs", _refuse)
        target = Path((await setup_volumes(pod, root, PodContext(), _configmap, _secret))
                      ["creds"].path)
    await setup_volumes(pod, root, PodContext(), _configmap, _secret)  # mount works now
    assert _fstype(target) != "tmpfs"  # a container may have the plain directory mounted
    assert (target / "pw").read_bytes() == CANARY


def test_symlinked_volume_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "vol").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(V.VolumeError, match="symbolic link"):
        V.ensure_tmpfs(tmp_path / "vol", {})
