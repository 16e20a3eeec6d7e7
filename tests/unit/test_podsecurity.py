"""Pod Security admission's checks, policies and messages (apiserver/auth/podsecurity.py),
compared with upstream's exact wording; then the plugin and the Warning headers through a
small aiohttp app."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api import errors
from apiserver import warnings
from apiserver.auth import podsecurity as ps
from apiserver.auth.podsecurity import BASELINE, PRIVILEGED, RESTRICTED, LevelVersion

Obj = dict[str, Any]
LATEST_RESTRICTED = LevelVersion(RESTRICTED)
LATEST_BASELINE = LevelVersion(BASELINE)


def pod(spec: Obj | None = None, name: str = "p", annotations: Obj | None = None) -> Obj:
    body: Obj = {"containers": [{"name": "c", "image": "busybox"}]}
    body.update(spec or {})
    md: Obj = {"name": name, "namespace": "ns"}
    if annotations:
        md["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": body}


def restricted_ok() -> Obj:
    """A pod the restricted level admits."""
    return pod({"securityContext": {"runAsNonRoot": True,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{"name": "c", "image": "busybox", "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}],
                "volumes": [{"name": "cm", "configMap": {"name": "x"}},
                            {"name": "tok", "projected": {"sources": []}}]})


def detail(lv: LevelVersion, p: Obj) -> str:
    return ps.evaluate(lv, p["metadata"], p["spec"]).forbidden_detail()


def with_container(p: Obj, **sc: Any) -> Obj:
    p = copy.deepcopy(p)
    p["spec"]["containers"][0].setdefault("securityContext", {}).update(sc)
    return p


# -- policies from labels ---------------------------------------------------------------------

def test_bad_labels_fail_closed_and_are_reported() -> None:
    policy, causes = ps.policy_from_labels({ps.PREFIX + "enforce": "strict",
                                            ps.PREFIX + "enforce-version": "1.25"})
    assert policy.enforce == LevelVersion(RESTRICTED, None)
    assert [c["field"] for c in causes] == [
        "metadata.labels[pod-security.kubernetes.io/enforce]",
        "metadata.labels[pod-security.kubernetes.io/enforce-version]"]
    assert causes[0]["message"] == ('Invalid value: "strict": must be one of privileged, '
                                    "baseline, restricted")
    assert causes[1]["message"] == 'Invalid value: "1.25": must be "latest" or "v1.x"'
    for bad in ("v2.1", "v1.01", "v1", "latest2"):
        _, causes = ps.policy_from_labels({ps.PREFIX + "warn-version": bad})
        assert len(causes) == 1, bad


def test_levels_versions_and_warn_following_enforce() -> None:
    policy, causes = ps.policy_from_labels({})
    assert not causes and policy.all_privileged()
    policy, causes = ps.policy_from_labels({ps.PREFIX + "enforce": "baseline",
                                            ps.PREFIX + "enforce-version": "v1.24",
                                            ps.PREFIX + "audit": "restricted"})
    assert not causes
    assert str(policy.enforce) == "baseline:v1.24"
    assert str(policy.audit) == "restricted:latest"
    assert policy.warn == policy.enforce  # unset warn follows a stricter enforce
    policy, _ = ps.policy_from_labels({ps.PREFIX + "enforce": "restricted",
                                       ps.PREFIX + "warn": "privileged"})
    assert policy.warn.level == PRIVILEGED  # an explicit warn level stays
    policy, _ = ps.policy_from_labels({ps.PREFIX + "enforce": "restricted",
                                       ps.PREFIX + "warn-version": "v1.20"})
    assert policy.warn == LevelVersion(PRIVILEGED, (1, 20))


# -- restricted -------------------------------------------------------------------------------

def test_a_plain_pod_violates_restricted_with_upstreams_message() -> None:
    assert detail(LATEST_RESTRICTED, pod()) == (
        'allowPrivilegeEscalation != false (container "c" must set '
        "securityContext.allowPrivilegeEscalation=false), "
        'unrestricted capabilities (container "c" must set '
        'securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "c" must set '
        "securityContext.runAsNonRoot=true), "
        'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type '
        'to "RuntimeDefault" or "Localhost")')
    assert ps.evaluate(LATEST_BASELINE, pod()["metadata"], pod()["spec"]).allowed


def test_a_compliant_pod_passes_restricted() -> None:
    p = restricted_ok()
    assert ps.evaluate(LATEST_RESTRICTED, p["metadata"], p["spec"]).allowed


def test_privileged_host_network_host_path_pod_lists_baseline_reasons_first() -> None:
    p = restricted_ok()
    p["spec"]["hostNetwork"] = True
    p["spec"]["hostPID"] = True
    p["spec"]["volumes"].append({"name": "root", "hostPath": {"path": "/"}})
    p = with_container(p, privileged=True)
    p["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080},
                                           {"containerPort": 9, "hostPort": 443}]
    assert detail(LATEST_RESTRICTED, p) == (
        "host namespaces (hostNetwork=true, hostPID=true), "
        'hostPort (container "c" uses hostPorts 443, 8080), '
        'privileged (container "c" must not set securityContext.privileged=true), '
        'restricted volume types (volume "root" uses restricted volume type "hostPath")')
    # baseline reports the hostPath volume under its own check (restricted overrides it)
    assert 'hostPath volumes (volume "root")' in detail(LATEST_BASELINE, p)


def test_restricted_details() -> None:
    p = restricted_ok()
    p["spec"]["initContainers"] = [{"name": "init", "image": "x", "securityContext": {
        "allowPrivilegeEscalation": True, "runAsNonRoot": False, "runAsUser": 0,
        "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN", "NET_RAW"]},
        "seccompProfile": {"type": "Unconfined"}}}]
    p["spec"]["volumes"] += [{"name": "n", "nfs": {"server": "s", "path": "/"}},
                             {"name": "g", "gitRepo": {"repository": "r"}}]
    assert detail(LATEST_RESTRICTED, p) == (
        'allowPrivilegeEscalation != false (container "init" must set '
        "securityContext.allowPrivilegeEscalation=false), "
        'unrestricted capabilities (container "init" must not include "NET_RAW", "SYS_ADMIN" '
        "in securityContext.capabilities.add), "
        'restricted volume types (volumes "n", "g" use restricted volume types "gitRepo", '
        '"nfs"), '
        'runAsNonRoot != true (container "init" must not set securityContext.runAsNonRoot=false), '
        'runAsUser=0 (container "init" must not set runAsUser=0), '
        'seccompProfile (container "init" must not set securityContext.seccompProfile.type to '
        '"Unconfined")')
    q = restricted_ok()
    q["spec"]["securityContext"].update(runAsUser=0, runAsNonRoot=False,
                                        seccompProfile={"type": "Unconfined"})
    assert detail(LATEST_RESTRICTED, q) == (
        "runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false), "
        "runAsUser=0 (pod must not set runAsUser=0), "
        'seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")')


# -- baseline ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "expected"), [
    ({"securityContext": {"windowsOptions": {"hostProcess": True}}},
     "hostProcess (pod must not set securityContext.windowsOptions.hostProcess=true)"),
    ({"hostIPC": True}, "host namespaces (hostIPC=true)"),
    ({"volumes": [{"name": "a", "hostPath": {"path": "/a"}},
                  {"name": "b", "hostPath": {"path": "/b"}}]},
     'hostPath volumes (volumes "a", "b")'),
    ({"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"},
                                      {"name": "net.ipv4.tcp_syncookies", "value": "1"},
                                      {"name": "net.core.somaxconn", "value": "1"}]}},
     "forbidden sysctls (kernel.msgmax, net.core.somaxconn)"),
    ({"securityContext": {"seccompProfile": {"type": "Unconfined"}}},
     'seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")'),
    ({"securityContext": {"seLinuxOptions": {"type": "spc_t", "user": "u"}}},
     ('seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: type "spc_t"; '
     "user may not be set)")),
    ({"securityContext": {"appArmorProfile": {"type": "Unconfined"}}},
     'forbidden AppArmor profile (pod must not set AppArmor profile type to "Unconfined")'),
])
def test_baseline_pod_level_checks(change: Obj, expected: str) -> None:
    assert detail(LATEST_BASELINE, pod(change)) == expected


@pytest.mark.parametrize(("sc", "expected"), [
    ({"privileged": True},
     'privileged (container "c" must not set securityContext.privileged=true)'),
    ({"capabilities": {"add": ["CHOWN", "SYS_ADMIN", "NET_ADMIN"]}},
     ('non-default capabilities (container "c" must not include "NET_ADMIN", "SYS_ADMIN" in '
     "securityContext.capabilities.add)")),
    ({"procMount": "Unmasked"},
     'procMount (container "c" must not set securityContext.procMount to "Unmasked")'),
    ({"seLinuxOptions": {"type": "container_t"}}, ""),
    ({"seLinuxOptions": {"type": "container_t", "role": "r"}},
     'seLinuxOptions (container "c" set forbidden securityContext.seLinuxOptions: )'),
    ({"windowsOptions": {"hostProcess": True}},
     'hostProcess (container "c" must not set securityContext.windowsOptions.hostProcess=true)'),
    ({"capabilities": {"add": ["NET_BIND_SERVICE", "KILL"]}}, ""),
])
def test_baseline_container_checks(sc: Obj, expected: str) -> None:
    assert detail(LATEST_BASELINE, with_container(pod(), **sc)) == expected


def test_apparmor_annotations_and_two_containers() -> None:
    p = pod({"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "x"}]},
            annotations={ps.APPARMOR_ANNOTATION_PREFIX + "a": "unconfined",
                         ps.APPARMOR_ANNOTATION_PREFIX + "b": "localhost/mine"})
    assert detail(LATEST_BASELINE, p) == (
        "forbidden AppArmor profile (annotation must not set AppArmor profile type to "
        '"container.apparmor.security.beta.kubernetes.io/a="unconfined"")')
    p["spec"]["containers"][0]["ports"] = [{"hostPort": 1}]
    p["spec"]["containers"][1]["ports"] = [{"hostPort": 1}]
    assert 'hostPort (containers "a", "b" use hostPort 1)' in detail(LATEST_BASELINE, p)


# -- versions ---------------------------------------------------------------------------------

def test_versions_choose_the_rules_of_that_release() -> None:
    rmem = pod({"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "1"}]}})
    assert ps.evaluate(LevelVersion(BASELINE, (1, 32)), rmem["metadata"], rmem["spec"]).allowed
    assert detail(LevelVersion(BASELINE, (1, 31)), rmem) == \
        "forbidden sysctls (net.ipv4.tcp_rmem)"
    # newer than any check: the same as latest
    assert ps.evaluate(LevelVersion(BASELINE, (1, 99)), rmem["metadata"], rmem["spec"]).allowed

    p = pod()
    # 1.21: no capabilities_restricted yet; 1.7: no allowPrivilegeEscalation; 1.18:
    # seccomp by annotations only.
    old = detail(LevelVersion(RESTRICTED, (1, 21)), p)
    assert "unrestricted capabilities" not in old and "allowPrivilegeEscalation" in old
    assert "allowPrivilegeEscalation" not in detail(LevelVersion(RESTRICTED, (1, 7)), p)
    assert "seccompProfile" not in detail(LevelVersion(RESTRICTED, (1, 18)), p)
    ann = pod(annotations={ps.SECCOMP_POD_ANNOTATION: "unconfined"})
    assert detail(LevelVersion(BASELINE, (1, 18)), ann) == (
        'seccompProfile (forbidden annotation seccomp.security.alpha.kubernetes.io/pod='
        '"unconfined")')
    assert ps.evaluate(LATEST_BASELINE, ann["metadata"], ann["spec"]).allowed
    # runAsUser=0 is a restricted violation from 1.23
    root = with_container(restricted_ok(), runAsUser=0)
    assert detail(LevelVersion(RESTRICTED, (1, 22)), root) == ""
    assert "runAsUser=0" in detail(LevelVersion(RESTRICTED, (1, 23)), root)
    # the baseline capability check stands in before 1.22
    cap = with_container(pod(), capabilities={"add": ["SYS_ADMIN"]})
    assert "non-default capabilities" in detail(LevelVersion(RESTRICTED, (1, 21)), cap)


def test_windows_pods_skip_linux_only_checks_from_1_25() -> None:
    p = pod({"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": True}})
    assert detail(LevelVersion(RESTRICTED, (1, 25)), p) == ""
    assert "seccompProfile" in detail(LevelVersion(RESTRICTED, (1, 24)), p)


# -- decisions --------------------------------------------------------------------------------

def test_enforce_refuses_without_warning_and_audits() -> None:
    policy, _ = ps.policy_from_labels({ps.PREFIX + "enforce": "baseline",
                                       ps.PREFIX + "audit": "restricted",
                                       ps.PREFIX + "warn": "restricted"})
    p = pod({"hostNetwork": True})
    d = ps.evaluate_pod_like(policy, [], p["metadata"], p["spec"], enforce=True)
    assert d.forbidden == ('violates PodSecurity "baseline:latest": host namespaces '
                           "(hostNetwork=true)")
    assert d.warnings == []
    assert d.audit_annotations[ps.ENFORCE_POLICY_ANNOTATION] == "baseline:latest"
    assert d.audit_annotations[ps.AUDIT_VIOLATIONS_ANNOTATION].startswith(
        'would violate PodSecurity "restricted:latest": host namespaces (hostNetwork=true), '
        "allowPrivilegeEscalation != false")
    # a workload is never refused: the warning says what its pods would meet
    d = ps.evaluate_pod_like(policy, [], p["metadata"], p["spec"], enforce=False)
    assert d.forbidden is None and ps.ENFORCE_POLICY_ANNOTATION not in d.audit_annotations
    assert d.warnings[0].startswith('would violate PodSecurity "restricted:latest": host '
                                    "namespaces (hostNetwork=true), ")


def test_significant_pod_updates() -> None:
    old = pod()
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {"a": "b"}
    new["spec"]["activeDeadlineSeconds"] = 5
    assert not ps.significant_pod_update(new, old)
    new["spec"]["containers"][0]["image"] = "nginx"
    assert ps.significant_pod_update(new, old)
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"] = [{"name": "debug", "image": "x"}]
    assert ps.significant_pod_update(new, old)


def test_namespace_label_warnings_group_pods_by_reason() -> None:
    pods = [pod({"hostNetwork": True}, name=n) for n in ("c", "a", "b")]
    pods += [with_container(pod(name=n), privileged=True) for n in ("y", "x")]
    pods += [pod({"hostPID": True, "hostIPC": True}, name="z"), pod(name="fine")]
    pods.append(with_container(pod(name="w"), procMount="Unmasked"))
    got = ps.namespace_label_warnings("ns", LATEST_BASELINE, pods)
    assert got == [('existing pods in namespace "ns" violate the new PodSecurity enforce '
                   'level "baseline:latest"'),
                   "a (and 3 other pods): host namespaces",
                   "w: procMount",
                   "x (and 1 other pod): privileged"]
    new = {"metadata": {"labels": {ps.PREFIX + "enforce": "baseline"}}}
    assert ps.namespace_update_warnings("ns", new, new, pods) == []  # unchanged
    stricter = {"metadata": {"labels": {ps.PREFIX + "enforce": "restricted"}}}
    assert ps.namespace_update_warnings("ns", new, stricter, pods) == []  # relaxed
    assert ps.namespace_update_warnings("ns", new, {"metadata": {}}, pods) == got
    assert ps.namespace_update_warnings("ns", new, {"metadata": {}}, [pod()]) == []
    limited = ps.namespace_label_warnings("ns", LATEST_BASELINE, [pod()] * 3001)
    assert limited == [("new PodSecurity enforce level only checked against the first 3000 "
                       "of 3001 existing pods")]


def test_invalid_namespace_labels() -> None:
    bad = {"metadata": {"name": "ns", "labels": {ps.PREFIX + "enforce": "nope"}}}
    err = ps.invalid_labels("ns", bad, None)
    assert isinstance(err, errors.Invalid)
    assert str(err.message) == (
        'Namespace "ns" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: '
        'Invalid value: "nope": must be one of privileged, baseline, restricted')
    assert ps.invalid_labels("ns", bad, bad) is None  # not made worse by this update


def test_warning_header_quotes_as_go() -> None:
    assert warnings.warning_header('a "b" \\ c\n') == '299 - "a \\"b\\" \\\\ c"'


# -- the plugin behind a real HTTP server ------------------------------------------------------

class FakeLookup:
    def __init__(self, namespaces: dict[str, Obj], pods: list[Obj]) -> None:
        self.namespaces = namespaces
        self.pods = pods

    async def get_namespace(self, name: str) -> Obj | None:
        return self.namespaces.get(name)

    async def pods_in_namespace(self, namespace: str) -> list[Obj]:
        return self.pods


async def test_admit_over_http_sets_warnings_and_annotations() -> None:
    labels = {ps.PREFIX + "enforce": "restricted"}
    lookup = FakeLookup({"ns": {"metadata": {"name": "ns", "labels": labels}}},
                        [pod({"hostNetwork": True}, name="old")])
    seen: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        resource = request.match_info["resource"]
        body = await request.json()
        try:
            if resource == "namespaces":
                await ps.admit(lookup, "namespaces", "UPDATE", "", "", "ns", body,
                               {"metadata": {"name": "ns"}})
            else:
                await ps.admit(lookup, resource, "CREATE", "", "ns", "x", body, None)
        except errors.StatusError as e:
            return web.json_response(e.status(), status=e.code)
        finally:
            seen.append(warnings.current_audit_annotations())
        return web.json_response({})

    app = web.Application(middlewares=[warnings.collect])
    app.on_response_prepare.append(warnings.on_response_prepare)
    app.router.add_post("/{resource}", handle)
    async with TestClient(TestServer(app)) as client:
        refused = await client.post("/pods", json=pod({"hostNetwork": True}, name="x"))
        assert refused.status == 403
        message = (await refused.json())["message"]
        assert message.startswith('pods "x" is forbidden: violates PodSecurity '
                                  '"restricted:latest": host namespaces (hostNetwork=true), '
                                  "allowPrivilegeEscalation != false")
        assert "Warning" not in refused.headers
        assert seen[-1][ps.ENFORCE_POLICY_ANNOTATION] == "restricted:latest"

        deployment = {"spec": {"template": pod()}}
        created = await client.post("/deployments", json=deployment)
        assert created.status == 200
        assert created.headers.getall("Warning") == [
            ('299 - "would violate PodSecurity \\"restricted:latest\\": allowPrivilegeEscalation'
            ' != false (container \\"c\\" must set securityContext.allowPrivilegeEscalation='
            'false), unrestricted capabilities (container \\"c\\" must set securityContext.'
            'capabilities.drop=[\\"ALL\\"]), runAsNonRoot != true (pod or container \\"c\\" '
            'must set securityContext.runAsNonRoot=true), seccompProfile (pod or container '
            '\\"c\\" must set securityContext.seccompProfile.type to \\"RuntimeDefault\\" or '
            '\\"Localhost\\")"')]
        assert ps.ENFORCE_POLICY_ANNOTATION not in seen[-1]

        labelled = await client.post("/namespaces", json={"metadata": {"name": "ns",
                                                                       "labels": labels}})
        assert labelled.headers.getall("Warning") == [
            ('299 - "existing pods in namespace \\"ns\\" violate the new PodSecurity enforce '
            'level \\"restricted:latest\\""'),
            ('299 - "old: host namespaces, allowPrivilegeEscalation != false, unrestricted '
            'capabilities, runAsNonRoot != true, seccompProfile"')]

        ok = await client.post("/pods", json=restricted_ok())
        assert ok.status == 200 and "Warning" not in ok.headers
        # the collection is per request: nothing leaks into the next one
        assert warnings.current_warnings() == []
