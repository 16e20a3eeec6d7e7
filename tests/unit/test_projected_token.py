"""The kubelet's service-account tokens: the token manager's cache and renewal rule, and the
projected `serviceAccountToken` source written into the pod's volume."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kubelet.envvars import PodContext
from kubelet.tokenmanager import TokenError, TokenManager, cache_key
from kubelet.volumes import VolumeError, remove_pod_dir, setup_volumes

Obj = dict[str, Any]
T0 = 1_800_000_000.0


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@dataclass
class FakeApi:
    """Answers TokenRequests like the apiserver: a new token each time, expiring after the
    requested seconds from the fake clock's now."""

    now: float = T0
    calls: list[tuple[str, str, Obj]] = field(default_factory=list)
    fail: Exception | None = None

    def clock(self) -> float:
        return self.now

    async def request(self, namespace: str, name: str, tr: Obj) -> Obj:
        self.calls.append((namespace, name, tr))
        if self.fail is not None:
            raise self.fail
        seconds = int(tr["spec"]["expirationSeconds"])
        return {"kind": "TokenRequest", "spec": dict(tr["spec"]),
                "status": {"token": f"token-{len(self.calls)}",
                           "expirationTimestamp": _rfc3339(self.now + seconds)}}


def _tr(seconds: int = 3600, audiences: list[str] | None = None, uid: str = "pod-uid") -> Obj:
    return {"spec": {"audiences": audiences or [], "expirationSeconds": seconds,
                     "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p",
                                        "uid": uid}}}


@pytest.fixture(autouse=True)
def _unmount(tmp_path: Path) -> Iterator[None]:
    # As root, projected token volumes are tmpfs mounts: tear them down as the kubelet does.
    yield
    remove_pod_dir(tmp_path, "pod-uid")


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def manager(api: FakeApi) -> TokenManager:
    return TokenManager(api.request, clock=api.clock, jitter=lambda: 0.0)


async def _token(manager: TokenManager, tr: Obj | None = None) -> str:
    got = await manager.get_service_account_token("team", "builder", tr or _tr())
    return str(got["status"]["token"])


# --- the manager ----------------------------------------------------------------------------

async def test_cached_until_80_percent_of_the_ttl(api: FakeApi, manager: TokenManager) -> None:
    assert await _token(manager) == "token-1"
    api.now = T0 + 0.8 * 3600 - 1
    assert await _token(manager) == "token-1"
    assert len(api.calls) == 1
    api.now = T0 + 0.8 * 3600 + 1
    assert await _token(manager) == "token-2"
    assert await _token(manager) == "token-2"
    assert len(api.calls) == 2


async def test_long_tokens_renew_after_24_hours(api: FakeApi, manager: TokenManager) -> None:
    week = 7 * 24 * 3600
    assert await _token(manager, _tr(week)) == "token-1"
    api.now = T0 + 24 * 3600 - 1
    assert await _token(manager, _tr(week)) == "token-1"
    api.now = T0 + 24 * 3600 + 1
    assert await _token(manager, _tr(week)) == "token-2"


async def test_jitter_renews_a_little_early(api: FakeApi) -> None:
    manager = TokenManager(api.request, clock=api.clock, jitter=lambda: 10.0)
    await _token(manager)
    api.now = T0 + 0.8 * 3600 - 5  # within the 10 s jitter of the 80% mark
    assert await _token(manager) == "token-2"


async def test_cache_key_is_what_was_asked(api: FakeApi, manager: TokenManager) -> None:
    await _token(manager, _tr())
    await _token(manager, _tr())
    assert len(api.calls) == 1
    await _token(manager, _tr(audiences=["vault"]))
    await _token(manager, _tr(seconds=7200))
    await _token(manager, _tr(uid="other-pod"))
    await manager.get_service_account_token("team", "other-sa", _tr())
    await manager.get_service_account_token("other-ns", "builder", _tr())
    assert len(api.calls) == 6
    assert manager.cached == 6
    key = cache_key("team", "builder", _tr(audiences=["vault"]))
    assert "vault" in key and "pod-uid" in key and "token" not in key


async def test_failed_renewal_keeps_a_token_that_still_works(api: FakeApi,
                                                             manager: TokenManager) -> None:
    await _token(manager)
    api.fail = ConnectionError("apiserver down")
    api.now = T0 + 0.9 * 3600
    assert await _token(manager) == "token-1"
    api.now = T0 + 3601
    with pytest.raises(TokenError, match="expired and refresh failed"):
        await _token(manager)


async def test_first_failure_is_an_error(api: FakeApi, manager: TokenManager) -> None:
    api.fail = PermissionError("forbidden")
    with pytest.raises(TokenError, match="failed to fetch token: forbidden"):
        await _token(manager)


async def test_pod_removal_and_cleanup_drop_tokens(api: FakeApi,
                                                   manager: TokenManager) -> None:
    await _token(manager, _tr(uid="a"))
    await _token(manager, _tr(uid="b"))
    await _token(manager, _tr(seconds=7200, uid="c"))
    manager.delete_service_account_token("a")
    assert manager.cached == 2
    api.now = T0 + 3601
    manager.cleanup()
    assert manager.cached == 1  # only c's two-hour token is left
    await _token(manager, _tr(uid="a"))
    assert len(api.calls) == 4


# --- the projected volume -------------------------------------------------------------------

def _pod(**spec: Any) -> Obj:
    base: Obj = {
        "serviceAccountName": "builder",
        "containers": [{"name": "app", "image": "x"}],
        "volumes": [{"name": "kube-api-access-x2x4b", "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt",
                               "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                    "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ]}}],
    }
    base.update(spec)
    return {"metadata": {"name": "web-0", "namespace": "team", "uid": "pod-uid"},
            "spec": base}


async def _configmap(namespace: str, name: str) -> Obj | None:
    if (namespace, name) == ("team", "kube-root-ca.crt"):
        return {"metadata": {"name": name}, "data": {"ca.crt": "-----BEGIN CERTIFICATE-----"}}
    return None


async def _no_secret(namespace: str, name: str) -> Obj | None:
    return None


async def _setup(pod: Obj, root: Path, manager: TokenManager | None) -> Path:
    volumes = await setup_volumes(pod, root, PodContext(), _configmap, _no_secret,
                                  manager.get_service_account_token if manager is not None else None)
    return Path(volumes["kube-api-access-x2x4b"].path)


async def test_projected_volume_files(tmp_path: Path, api: FakeApi,
                                      manager: TokenManager) -> None:
    target = await _setup(_pod(), tmp_path, manager)
    assert (target / "token").read_text() == "token-1"
    assert (target / "ca.crt").read_text() == "-----BEGIN CERTIFICATE-----"
    assert (target / "namespace").read_text() == "team"
    assert stat.S_IMODE((target / "token").stat().st_mode) == 0o644  # defaultMode 420
    assert (target / "token").is_symlink()  # through ..data, the atomic writer's layout
    ((namespace, name, tr),) = api.calls
    assert (namespace, name) == ("team", "builder")
    assert tr["spec"] == {"audiences": [], "expirationSeconds": 3607, "boundObjectRef": {
        "apiVersion": "v1", "kind": "Pod", "name": "web-0", "uid": "pod-uid"}}


async def test_refresh_rewrites_the_token_only_when_renewed(tmp_path: Path, api: FakeApi,
                                                            manager: TokenManager) -> None:
    pod = _pod()
    target = await _setup(pod, tmp_path, manager)
    data_dir = (target / "..data").resolve()
    api.now = T0 + 60  # an ordinary refresh a minute later: same token, nothing rewritten
    await _setup(pod, tmp_path, manager)
    assert (target / "..data").resolve() == data_dir
    api.now = T0 + 0.8 * 3607 + 1
    await _setup(pod, tmp_path, manager)
    assert (target / "token").read_text() == "token-2"
    assert (target / "..data").resolve() != data_dir
    assert (target / "namespace").read_text() == "team"


async def test_audience_and_expiry_of_the_source(tmp_path: Path, api: FakeApi,
                                                 manager: TokenManager) -> None:
    pod = _pod(volumes=[{"name": "kube-api-access-x2x4b", "projected": {"sources": [
        {"serviceAccountToken": {"audience": "vault", "path": "vault-token"}}]}}])
    target = await _setup(pod, tmp_path, manager)
    assert (target / "vault-token").read_text() == "token-1"
    spec = api.calls[0][2]["spec"]
    assert spec["audiences"] == ["vault"] and spec["expirationSeconds"] == 3600


async def test_fs_group_makes_the_token_group_readable_only(tmp_path: Path,
                                                            manager: TokenManager) -> None:
    target = await _setup(_pod(securityContext={"fsGroup": 2000}), tmp_path, manager)
    assert stat.S_IMODE((target / "token").stat().st_mode) == 0o640
    assert stat.S_IMODE((target / "ca.crt").stat().st_mode) == 0o644


async def test_no_token_is_a_failed_mount(tmp_path: Path, api: FakeApi,
                                          manager: TokenManager) -> None:
    api.fail = PermissionError('serviceaccounts "builder" is forbidden')
    with pytest.raises(VolumeError, match='MountVolume.SetUp failed for volume '
                                          '"kube-api-access-x2x4b" : failed to fetch token'):
        await _setup(_pod(), tmp_path, manager)
    with pytest.raises(VolumeError, match="not available"):
        await _setup(_pod(), tmp_path, None)
