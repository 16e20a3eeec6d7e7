"""The ServiceAccount admission plugin (apiserver/auth/sa_admission.py)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from api import errors
from apiserver.auth.sa_admission import (
    admit_pod,
    service_account_name,
    validate_pod_service_account,
)

Obj = dict[str, Any]
MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
UPSTREAM_SOURCE = {
    "defaultMode": 420,
    "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt",
                       "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
            "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ],
}


def _pod(**spec: Any) -> Obj:
    base: Obj = {"containers": [{"name": "app", "image": "busybox"}]}
    base.update(spec)
    return {"metadata": {"name": "p", "namespace": "team"}, "spec": base}


def _sa(**fields: Any) -> Obj:
    return {"metadata": {"name": "default", "namespace": "team", "uid": "u"}, **fields}


def _token_volumes(pod: Obj) -> list[Obj]:
    return [v for v in pod["spec"].get("volumes") or []
            if v["name"].startswith("kube-api-access-")]


def test_defaults_name_and_adds_the_projected_volume() -> None:
    pod = _pod(initContainers=[{"name": "init", "image": "busybox"}],
               ephemeralContainers=[{"name": "debug", "image": "busybox"}])
    admit_pod(pod, _sa())
    spec = pod["spec"]
    assert spec["serviceAccountName"] == "default" and spec["serviceAccount"] == "default"
    (volume,) = _token_volumes(pod)
    assert re.fullmatch(r"kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}", volume["name"])
    assert volume["projected"] == UPSTREAM_SOURCE
    expected_mount = {"name": volume["name"], "readOnly": True, "mountPath": MOUNT}
    assert spec["containers"][0]["volumeMounts"] == [expected_mount]
    assert spec["initContainers"][0]["volumeMounts"] == [expected_mount]
    assert "volumeMounts" not in spec["ephemeralContainers"][0]


def test_names_are_random() -> None:
    names = set()
    for _ in range(20):
        pod = _pod()
        admit_pod(pod, _sa())
        names.add(_token_volumes(pod)[0]["name"])
    assert len(names) > 1


@pytest.mark.parametrize(("pod_pref", "sa_pref", "mounted"), [
    (None, None, True), (False, None, False), (None, False, False), (True, False, True),
    (False, True, False),
])
def test_automount_preference(pod_pref: bool | None, sa_pref: bool | None,
                              mounted: bool) -> None:
    pod = _pod() if pod_pref is None else _pod(automountServiceAccountToken=pod_pref)
    sa = _sa() if sa_pref is None else _sa(automountServiceAccountToken=sa_pref)
    admit_pod(pod, sa)
    assert bool(_token_volumes(pod)) is mounted
    assert bool(pod["spec"]["containers"][0].get("volumeMounts")) is mounted


def test_existing_mount_at_the_path_is_kept() -> None:
    own = {"name": "mine", "mountPath": MOUNT}
    pod = _pod(containers=[{"name": "a", "image": "x", "volumeMounts": [own]},
                           {"name": "b", "image": "x"}],
               volumes=[{"name": "mine", "secret": {"secretName": "s"}}])
    admit_pod(pod, _sa())
    a, b = pod["spec"]["containers"]
    assert a["volumeMounts"] == [own]
    assert b["volumeMounts"][0]["mountPath"] == MOUNT
    assert len(_token_volumes(pod)) == 1
    # Every container already has something there: no volume at all.
    pod = _pod(containers=[{"name": "a", "image": "x", "volumeMounts": [own]}],
               volumes=[{"name": "mine", "secret": {"secretName": "s"}}])
    admit_pod(pod, _sa())
    assert _token_volumes(pod) == []


def test_existing_token_volume_is_reused() -> None:
    pod = _pod(volumes=[{"name": "kube-api-access-abcde", "projected": {"sources": []}}])
    admit_pod(pod, _sa())
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["kube-api-access-abcde"]
    assert pod["spec"]["containers"][0]["volumeMounts"][0]["name"] == "kube-api-access-abcde"


def test_mirror_pods_are_left_alone() -> None:
    pod = _pod()
    pod["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "hash"}
    before = copy.deepcopy(pod)
    admit_pod(pod, _sa())
    assert pod == before


def test_named_account_and_deprecated_alias() -> None:
    pod = _pod(serviceAccount="builder")
    assert service_account_name(pod) == "builder"
    admit_pod(pod, _sa())
    assert pod["spec"]["serviceAccountName"] == "builder"
    both = _pod(serviceAccountName="new", serviceAccount="old")
    admit_pod(both, _sa())
    assert both["spec"]["serviceAccountName"] == both["spec"]["serviceAccount"] == "new"


def test_image_pull_secrets_come_from_the_account() -> None:
    pod = _pod()
    admit_pod(pod, _sa(imagePullSecrets=[{"name": "regcred"}]))
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    own = _pod(imagePullSecrets=[{"name": "mine"}])
    admit_pod(own, _sa(imagePullSecrets=[{"name": "regcred"}]))
    assert own["spec"]["imagePullSecrets"] == [{"name": "mine"}]


def test_missing_service_account_is_forbidden() -> None:
    pod = _pod(serviceAccountName="ghost")
    admit_pod(pod, None)
    with pytest.raises(errors.Forbidden) as err:
        validate_pod_service_account(pod, None)
    assert err.value.code == 403
    assert err.value.message == ('pods "p" is forbidden: error looking up service account '
                                 'team/ghost: serviceaccount "ghost" not found')
    validate_pod_service_account(pod, _sa())  # exists: fine


def test_generate_name_in_the_message() -> None:
    pod = _pod(serviceAccountName="ghost")
    pod["metadata"] = {"generateName": "web-", "namespace": "team"}
    with pytest.raises(errors.Forbidden, match='pods "web-" is forbidden'):
        validate_pod_service_account(pod, None)


@pytest.mark.parametrize(("spec", "message"), [
    ({"serviceAccountName": "default"}, "a mirror pod may not reference service accounts"),
    ({"volumes": [{"name": "s", "secret": {"secretName": "x"}}]},
     "a mirror pod may not reference secrets"),
    ({"containers": [{"name": "c", "env": [{"name": "A", "valueFrom": {
        "secretKeyRef": {"name": "x", "key": "k"}}}]}]},
     "a mirror pod may not reference secrets"),
    ({"volumes": [{"name": "t", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token"}}]}}]},
     "a mirror pod may not use ServiceAccountToken volume projections"),
])
def test_mirror_pod_restrictions(spec: Obj, message: str) -> None:
    pod = _pod(**spec)
    pod["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "hash"}
    with pytest.raises(errors.Forbidden, match=message):
        validate_pod_service_account(pod, None)


def test_plain_mirror_pod_is_valid() -> None:
    pod = _pod()
    pod["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "hash"}
    validate_pod_service_account(pod, None)
