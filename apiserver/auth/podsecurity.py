"""Pod Security admission, as upstream's built-in PodSecurity plugin
(staging/src/k8s.io/pod-security-admission).

A namespace chooses a level per mode with labels: `pod-security.kubernetes.io/<mode>` =
privileged | baseline | restricted and `pod-security.kubernetes.io/<mode>-version` =
latest | v1.N, for the modes enforce (refuse the pod), warn (a `Warning` header the client
prints) and audit (an annotation on the request's audit event). The checks are data: each
one has an id, a level and the Kubernetes minor versions from which a given function applies,
so a namespace pinned to `v1.21` is judged by the rules of 1.21. The messages are upstream's
word for word, since users (and scripts) read them.

Pods are judged on create and on updates that can change what runs (upstream's
"significant" updates). Workload resources with a pod template get warn and audit but are
never refused: the pods they create are. Changing a namespace's enforce level warns about the
pods already there that the new level would refuse.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from api import errors

Obj = dict[str, Any]

PREFIX = "pod-security.kubernetes.io/"
MODES = ("enforce", "audit", "warn")
PRIVILEGED, BASELINE, RESTRICTED = "privileged", "baseline", "restricted"
LEVELS = (PRIVILEGED, BASELINE, RESTRICTED)  # in increasing strictness

# Audit annotation keys (upstream prefixes its plugin's keys with the plugin name).
ENFORCE_POLICY_ANNOTATION = PREFIX + "enforce-policy"
AUDIT_VIOLATIONS_ANNOTATION = PREFIX + "audit-violations"
ERROR_ANNOTATION = PREFIX + "error"

# Resources whose objects carry a pod template (upstream's default PodSpecExtractor).
POD_TEMPLATE_RESOURCES = ("deployments", "replicasets", "daemonsets", "jobs", "statefulsets",
                          "replicationcontrollers", "cronjobs", "podtemplates")
# Pod subresources that cannot change what runs; every other one is judged (fail safe).
IGNORED_POD_SUBRESOURCES = frozenset({"exec", "attach", "binding", "eviction", "log",
                                      "portforward", "proxy", "status"})
# Upstream's namespacePodCheckLimit default.
NAMESPACE_MAX_PODS_TO_CHECK = 3000

Version = tuple[int, int]
CheckResult = tuple[str, str] | None  # (forbidden reason, detail) or None when allowed
CheckFn = Callable[[Obj, Obj], CheckResult]  # (pod metadata, pod spec)


# -- levels, versions, policies --------------------------------------------------------------

@dataclass(frozen=True)
class LevelVersion:
    level: str
    version: Version | None = None  # None is "latest"

    def __str__(self) -> str:
        if self.version is None:
            return f"{self.level}:latest"
        return f"{self.level}:v{self.version[0]}.{self.version[1]}"


@dataclass(frozen=True)
class Policy:
    enforce: LevelVersion = LevelVersion(PRIVILEGED)
    audit: LevelVersion = LevelVersion(PRIVILEGED)
    warn: LevelVersion = LevelVersion(PRIVILEGED)

    def all_privileged(self) -> bool:
        return all(lv.level == PRIVILEGED for lv in (self.enforce, self.audit, self.warn))


_VERSION = re.compile(r"^v1\.(0|[1-9][0-9]*)$")


def _stricter(a: str, b: str) -> int:
    return LEVELS.index(a) - LEVELS.index(b)


def policy_from_labels(labels: dict[str, str] | None) -> tuple[Policy, list[errors.Cause]]:
    """api.PolicyToEvaluate: a bad level fails closed (restricted), a bad version means
    latest; both are reported as field causes."""
    labels = labels if isinstance(labels, dict) else {}
    causes: list[errors.Cause] = []
    parsed: dict[str, LevelVersion] = {}
    for mode in MODES:
        level_key, version_key = PREFIX + mode, PREFIX + mode + "-version"
        level = labels.get(level_key)
        if level is None or level == "":
            level = PRIVILEGED
        elif level not in LEVELS:
            causes.append(errors.field_cause(
                f"metadata.labels[{level_key}]",
                f'Invalid value: "{level}": must be one of privileged, baseline, restricted'))
            level = RESTRICTED
        raw = labels.get(version_key)
        version: Version | None = None
        if raw and raw != "latest":
            m = _VERSION.match(raw)
            if m is None:
                causes.append(errors.field_cause(
                    f"metadata.labels[{version_key}]",
                    f'Invalid value: "{raw}": must be "latest" or "v1.x"'))
            else:
                version = (1, int(m.group(1)))
        parsed[mode] = LevelVersion(level, version)
    warn = parsed["warn"]
    # A namespace that enforces a level warns at it too unless told otherwise, so a
    # Deployment whose pods would be refused says so when it is created.
    if not labels.get(PREFIX + "warn") and not labels.get(PREFIX + "warn-version") \
            and _stricter(parsed["enforce"].level, warn.level) > 0:
        warn = parsed["enforce"]
    return Policy(parsed["enforce"], parsed["audit"], warn), causes


# -- helpers for the checks -------------------------------------------------------------------

def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[Obj]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def containers(spec: Obj) -> Iterator[Obj]:
    """visitContainers: init containers, containers, then ephemeral containers."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from _dicts(spec.get(key))


def _sc(container: Obj) -> Obj | None:
    sc = container.get("securityContext")
    return sc if isinstance(sc, dict) else None


def _pod_sc(spec: Obj) -> Obj | None:
    sc = spec.get("securityContext")
    return sc if isinstance(sc, dict) else None


def pluralize(singular: str, plural: str, n: int) -> str:
    return singular if n == 1 else plural


def join_quote(items: Iterable[str]) -> str:
    return ", ".join(f'"{i}"' for i in items)


def _containers_phrase(names: list[str]) -> str:
    return f'{pluralize("container", "containers", len(names))} {join_quote(names)}'


def _name(c: Obj) -> str:
    return str(c.get("name") or "")


def _setters(pod_bad: bool, bad_containers: list[str]) -> list[str]:
    setters = ["pod"] if pod_bad else []
    if bad_containers:
        setters.append(_containers_phrase(bad_containers))
    return setters


# -- baseline checks --------------------------------------------------------------------------

def check_windows_host_process(meta: Obj, spec: Obj) -> CheckResult:
    def host_process(sc: Obj | None) -> bool:
        return sc is not None and _d(sc.get("windowsOptions")).get("hostProcess") is True
    bad = [_name(c) for c in containers(spec) if host_process(_sc(c))]
    setters = _setters(host_process(_pod_sc(spec)), bad)
    if setters:
        return ("hostProcess", (f"{' and '.join(setters)} must not set "
                "securityContext.windowsOptions.hostProcess=true"))
    return None


def check_host_namespaces(meta: Obj, spec: Obj) -> CheckResult:
    shared = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k) is True]
    return ("host namespaces", ", ".join(shared)) if shared else None


def check_privileged(meta: Obj, spec: Obj) -> CheckResult:
    bad = [_name(c) for c in containers(spec)
           if (sc := _sc(c)) is not None and sc.get("privileged") is True]
    if bad:
        return ("privileged",
                f"{_containers_phrase(bad)} must not set securityContext.privileged=true")
    return None


BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})


def _added_capabilities(c: Obj) -> list[str]:
    sc = _sc(c)
    add = _d(sc.get("capabilities")).get("add") if sc is not None else None
    return [str(a) for a in add] if isinstance(add, list) else []


def check_capabilities_baseline(meta: Obj, spec: Obj) -> CheckResult:
    bad: list[str] = []
    caps: set[str] = set()
    for c in containers(spec):
        extra = [a for a in _added_capabilities(c) if a not in BASELINE_CAPABILITIES]
        if extra:
            bad.append(_name(c))
            caps.update(extra)
    if bad:
        return ("non-default capabilities", (f"{_containers_phrase(bad)} must not include "
                f"{join_quote(sorted(caps))} in securityContext.capabilities.add"))
    return None


def check_host_path_volumes(meta: Obj, spec: Obj) -> CheckResult:
    bad = [str(v.get("name") or "") for v in _dicts(spec.get("volumes"))
           if v.get("hostPath") is not None]
    if bad:
        return ("hostPath volumes", (f'{pluralize("volume", "volumes", len(bad))} '
                f"{join_quote(bad)}"))
    return None


def check_host_ports(meta: Obj, spec: Obj) -> CheckResult:
    bad: list[str] = []
    ports: set[int] = set()
    for c in containers(spec):
        used = [p.get("hostPort") for p in _dicts(c.get("ports"))
                if isinstance(p.get("hostPort"), int) and p.get("hostPort")]
        if used:
            bad.append(_name(c))
            ports.update(int(p) for p in used if p is not None)
    if bad:
        listed = ", ".join(sorted(str(p) for p in ports))  # sets.String order: as text
        return ("hostPort", (f'{_containers_phrase(bad)} {pluralize("uses", "use", len(bad))} '
                f'{pluralize("hostPort", "hostPorts", len(ports))} {listed}'))
    return None


APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"


def check_apparmor(meta: Obj, spec: Obj) -> CheckResult:
    def bad_type(sc: Obj | None) -> str | None:
        profile = _d(sc.get("appArmorProfile")) if sc is not None else {}
        if "type" in profile and profile["type"] not in ("RuntimeDefault", "Localhost"):
            return str(profile["type"])
        return None
    values: set[str] = set()
    pod_bad = bad_type(_pod_sc(spec))
    if pod_bad is not None:
        values.add(pod_bad)
    bad: list[str] = []
    for c in containers(spec):
        t = bad_type(_sc(c))
        if t is not None:
            bad.append(_name(c))
            values.add(t)
    setters = _setters(pod_bad is not None, bad)
    annotations = sorted(
        f'{k}="{v}"' for k, v in _d(meta.get("annotations")).items()
        if str(k).startswith(APPARMOR_ANNOTATION_PREFIX)
        and not (v in ("", "runtime/default") or str(v).startswith("localhost/")))
    listed = sorted(values) + annotations
    if annotations:
        setters.append(pluralize("annotation", "annotations", len(annotations)))
    if setters:
        return (pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles",
                          len(listed)),
                (f"{' and '.join(setters)} must not set AppArmor profile type to "
                f"{join_quote(listed)}"))
    return None


SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})


def check_selinux(meta: Obj, spec: Obj) -> CheckResult:
    bad_types: set[str] = set()
    set_user = set_role = False

    def valid(sc: Obj | None) -> bool:
        nonlocal set_user, set_role
        opts = sc.get("seLinuxOptions") if sc is not None else None
        if not isinstance(opts, dict):
            return True
        ok = True
        if str(opts.get("type") or "") not in SELINUX_TYPES:
            ok = False
            bad_types.add(str(opts.get("type")))
        if opts.get("user"):
            ok, set_user = False, True
        if opts.get("role"):
            ok, set_role = False, True
        return ok
    pod_bad = not valid(_pod_sc(spec))
    bad = [_name(c) for c in containers(spec) if not valid(_sc(c))]
    setters = _setters(pod_bad, bad)
    if not setters:
        return None
    data: list[str] = []
    # Upstream reports user and role only next to a bad type (its message, as it is).
    if bad_types:
        data.append(f'{pluralize("type", "types", len(bad_types))} '
                    f"{join_quote(sorted(bad_types))}")
        if set_user:
            data.append("user may not be set")
        if set_role:
            data.append("role may not be set")
    return ("seLinuxOptions", (f"{' and '.join(setters)} set forbidden "
            f"securityContext.seLinuxOptions: {'; '.join(data)}"))


def check_proc_mount(meta: Obj, spec: Obj) -> CheckResult:
    bad: list[str] = []
    kinds: set[str] = set()
    for c in containers(spec):
        sc = _sc(c)
        mount = sc.get("procMount") if sc is not None else None
        if mount is not None and mount != "Default":
            bad.append(_name(c))
            kinds.add(str(mount))
    if bad:
        return ("procMount", (f"{_containers_phrase(bad)} must not set "
                f"securityContext.procMount to {join_quote(sorted(kinds))}"))
    return None


SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_ANNOTATION_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"


def check_seccomp_annotations(meta: Obj, spec: Obj) -> CheckResult:
    """Before 1.19 seccomp was set by annotations."""
    def ok(v: Any) -> bool:
        return v in ("runtime/default", "docker/default") or str(v).startswith("localhost/")
    annotations = _d(meta.get("annotations"))
    keys = [SECCOMP_POD_ANNOTATION] + [SECCOMP_CONTAINER_ANNOTATION_PREFIX + _name(c)
                                       for c in containers(spec)]
    bad = sorted({f'{k}="{annotations[k]}"' for k in keys
                  if k in annotations and not ok(annotations[k])})
    if bad:
        return ("seccompProfile", (f'forbidden {pluralize("annotation", "annotations", len(bad))} '
                f"{', '.join(bad)}"))
    return None


def _seccomp_type(sc: Obj | None) -> str | None:
    profile = sc.get("seccompProfile") if sc is not None else None
    return str(profile.get("type") or "") if isinstance(profile, dict) else None


def _valid_seccomp(t: str) -> bool:
    return t in ("RuntimeDefault", "Localhost")


def check_seccomp_baseline(meta: Obj, spec: Obj) -> CheckResult:
    values: set[str] = set()
    pod_type = _seccomp_type(_pod_sc(spec))
    pod_bad = pod_type is not None and not _valid_seccomp(pod_type)
    if pod_bad and pod_type is not None:
        values.add(pod_type)
    bad: list[str] = []
    for c in containers(spec):
        t = _seccomp_type(_sc(c))
        if t is not None and not _valid_seccomp(t):
            bad.append(_name(c))
            values.add(t)
    setters = _setters(pod_bad, bad)
    if setters:
        return ("seccompProfile", (f"{' and '.join(setters)} must not set "
                f"securityContext.seccompProfile.type to {join_quote(sorted(values))}"))
    return None


SYSCTLS_1_0 = frozenset({"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
                         "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range",
                         "net.ipv4.ip_unprivileged_port_start"})
SYSCTLS_1_27 = SYSCTLS_1_0 | {"net.ipv4.ip_local_reserved_ports"}
SYSCTLS_1_29 = SYSCTLS_1_27 | {"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                               "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}
SYSCTLS_1_32 = SYSCTLS_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}


def sysctls_allowing(allowed: frozenset[str]) -> CheckFn:
    def check(meta: Obj, spec: Obj) -> CheckResult:
        sc = _pod_sc(spec)
        names = [str(s.get("name")) for s in _dicts(sc.get("sysctls") if sc else None)]
        bad = [n for n in names if n not in allowed]
        return ("forbidden sysctls", ", ".join(bad)) if bad else None
    return check


# -- restricted checks ------------------------------------------------------------------------

ALLOWED_VOLUME_SOURCES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                          "persistentVolumeClaim", "projected", "secret")
# Upstream's names for the restricted sources (its own spelling: cephfs, storageos).
RESTRICTED_VOLUME_SOURCES = (
    ("hostPath", "hostPath"), ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"), ("gitRepo", "gitRepo"),
    ("nfs", "nfs"), ("iscsi", "iscsi"), ("glusterfs", "glusterfs"), ("rbd", "rbd"),
    ("flexVolume", "flexVolume"), ("cinder", "cinder"), ("cephfs", "cephfs"),
    ("flocker", "flocker"), ("fc", "fc"), ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"), ("quobyte", "quobyte"), ("azureDisk", "azureDisk"),
    ("photonPersistentDisk", "photonPersistentDisk"), ("portworxVolume", "portworxVolume"),
    ("scaleIO", "scaleIO"), ("storageos", "storageos"))


def check_restricted_volumes(meta: Obj, spec: Obj) -> CheckResult:
    bad: list[str] = []
    kinds: set[str] = set()
    for v in _dicts(spec.get("volumes")):
        if any(v.get(k) is not None for k in ALLOWED_VOLUME_SOURCES):
            continue
        bad.append(str(v.get("name") or ""))
        kinds.add(next((label for key, label in RESTRICTED_VOLUME_SOURCES
                        if v.get(key) is not None), "unknown"))
    if bad:
        return ("restricted volume types",
                (f'{pluralize("volume", "volumes", len(bad))} {join_quote(bad)} '
                f'{pluralize("uses", "use", len(bad))} '
                f'{pluralize("restricted volume type", "restricted volume types", len(kinds))} '
                f"{join_quote(sorted(kinds))}"))
    return None


def check_allow_privilege_escalation(meta: Obj, spec: Obj) -> CheckResult:
    bad = [_name(c) for c in containers(spec)
           if (sc := _sc(c)) is None or sc.get("allowPrivilegeEscalation") is not False]
    if bad:
        return ("allowPrivilegeEscalation != false", (f"{_containers_phrase(bad)} must set "
                "securityContext.allowPrivilegeEscalation=false"))
    return None


def check_run_as_non_root(meta: Obj, spec: Obj) -> CheckResult:
    pod_sc = _pod_sc(spec)
    pod_value = pod_sc.get("runAsNonRoot") if pod_sc is not None else None
    explicit: list[str] = []
    implicit: list[str] = []
    for c in containers(spec):
        sc = _sc(c)
        value = sc.get("runAsNonRoot") if sc is not None else None
        if value is not None:
            if value is False:
                explicit.append(_name(c))
        elif pod_value is not True:
            implicit.append(_name(c))
    setters = _setters(pod_value is False, explicit)
    if setters:
        return ("runAsNonRoot != true",
                f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false")
    if implicit:
        return ("runAsNonRoot != true", (f"pod or {_containers_phrase(implicit)} must set "
                "securityContext.runAsNonRoot=true"))
    return None


def check_run_as_user(meta: Obj, spec: Obj) -> CheckResult:
    def root(sc: Obj | None) -> bool:
        value = sc.get("runAsUser") if sc is not None else None
        return value == 0 and value is not False
    bad = [_name(c) for c in containers(spec) if root(_sc(c))]
    setters = _setters(root(_pod_sc(spec)), bad)
    if setters:
        return ("runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0")
    return None


def check_seccomp_restricted(meta: Obj, spec: Obj) -> CheckResult:
    values: set[str] = set()
    pod_type = _seccomp_type(_pod_sc(spec))
    pod_bad = pod_type is not None and not _valid_seccomp(pod_type)
    pod_set = pod_type is not None and not pod_bad
    if pod_bad and pod_type is not None:
        values.add(pod_type)
    explicit: list[str] = []
    implicit: list[str] = []
    for c in containers(spec):
        t = _seccomp_type(_sc(c))
        if t is not None:
            if not _valid_seccomp(t):
                explicit.append(_name(c))
                values.add(t)
        elif not pod_set:
            implicit.append(_name(c))
    setters = _setters(pod_bad, explicit)
    if setters:
        return ("seccompProfile", (f"{' and '.join(setters)} must not set "
                f"securityContext.seccompProfile.type to {join_quote(sorted(values))}"))
    if implicit:
        return ("seccompProfile", (f"pod or {_containers_phrase(implicit)} must set "
                'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"'))
    return None


def check_capabilities_restricted(meta: Obj, spec: Obj) -> CheckResult:
    missing_drop: list[str] = []
    adding: list[str] = []
    caps: set[str] = set()
    for c in containers(spec):
        sc = _sc(c)
        capabilities = sc.get("capabilities") if sc is not None else None
        if not isinstance(capabilities, dict):
            missing_drop.append(_name(c))
            continue
        drop = capabilities.get("drop")
        if not (isinstance(drop, list) and "ALL" in drop):
            missing_drop.append(_name(c))
        extra = [a for a in _added_capabilities(c) if a != "NET_BIND_SERVICE"]
        if extra:
            adding.append(_name(c))
            caps.update(extra)
    details: list[str] = []
    if missing_drop:
        details.append(f"{_containers_phrase(missing_drop)} must set "
                       'securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(f"{_containers_phrase(adding)} must not include "
                       f"{join_quote(sorted(caps))} in securityContext.capabilities.add")
    return ("unrestricted capabilities", "; ".join(details)) if details else None


def unless_windows(fn: CheckFn) -> CheckFn:
    """From 1.25 some restricted checks do not apply to pods that declare Windows."""
    def check(meta: Obj, spec: Obj) -> CheckResult:
        if _d(spec.get("os")).get("name") == "windows":
            return None
        return fn(meta, spec)
    return check


# -- the registry -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Check:
    """One upstream check: from each minimum version (ascending) its function applies, until
    the next. A restricted check may replace (override) baseline checks while it applies."""
    id: str
    level: str
    versions: tuple[tuple[Version, CheckFn], ...]
    overrides: tuple[str, ...] = field(default=())

    def at(self, version: Version) -> CheckFn | None:
        found: CheckFn | None = None
        for minimum, fn in self.versions:
            if minimum <= version:
                found = fn
        return found


CHECKS: tuple[Check, ...] = (
    Check("appArmorProfile", BASELINE, (((1, 0), check_apparmor),)),
    Check("capabilities_baseline", BASELINE, (((1, 0), check_capabilities_baseline),)),
    Check("hostNamespaces", BASELINE, (((1, 0), check_host_namespaces),)),
    Check("hostPathVolumes", BASELINE, (((1, 0), check_host_path_volumes),)),
    Check("hostPorts", BASELINE, (((1, 0), check_host_ports),)),
    Check("privileged", BASELINE, (((1, 0), check_privileged),)),
    Check("procMount", BASELINE, (((1, 0), check_proc_mount),)),
    Check("seLinuxOptions", BASELINE, (((1, 0), check_selinux),)),
    Check("seccompProfile_baseline", BASELINE, (((1, 0), check_seccomp_annotations),
                                                ((1, 19), check_seccomp_baseline))),
    Check("sysctls", BASELINE, (((1, 0), sysctls_allowing(SYSCTLS_1_0)),
                                ((1, 27), sysctls_allowing(SYSCTLS_1_27)),
                                ((1, 29), sysctls_allowing(SYSCTLS_1_29)),
                                ((1, 32), sysctls_allowing(SYSCTLS_1_32)))),
    Check("windowsHostProcess", BASELINE, (((1, 0), check_windows_host_process),)),
    Check("allowPrivilegeEscalation", RESTRICTED,
          (((1, 8), check_allow_privilege_escalation),
           ((1, 25), unless_windows(check_allow_privilege_escalation)))),
    Check("capabilities_restricted", RESTRICTED,
          (((1, 22), check_capabilities_restricted),
           ((1, 25), unless_windows(check_capabilities_restricted))),
          overrides=("capabilities_baseline",)),
    Check("restrictedVolumes", RESTRICTED, (((1, 0), check_restricted_volumes),),
          overrides=("hostPathVolumes",)),
    Check("runAsNonRoot", RESTRICTED, (((1, 0), check_run_as_non_root),)),
    Check("runAsUser", RESTRICTED, (((1, 23), check_run_as_user),)),
    Check("seccompProfile_restricted", RESTRICTED,
          (((1, 19), check_seccomp_restricted),
           ((1, 25), unless_windows(check_seccomp_restricted))),
          overrides=("seccompProfile_baseline",)),
)

# "latest" is the newest version any check knows about; a newer pinned version is the same.
LATEST: Version = max(minimum for c in CHECKS for minimum, _ in c.versions)


def checks_for(lv: LevelVersion) -> list[CheckFn]:
    """Baseline checks, then restricted ones, each sorted by id (upstream's order, which is
    the order of the reasons in its messages)."""
    if lv.level == PRIVILEGED:
        return []
    version = LATEST if lv.version is None or lv.version > LATEST else lv.version
    wanted = [c for c in CHECKS if c.level == BASELINE or lv.level == RESTRICTED]
    active = [(c, fn) for c in wanted if (fn := c.at(version)) is not None]
    overridden = {o for c, _ in active for o in c.overrides}
    ordered = sorted((c for c, _ in active if c.id not in overridden),
                     key=lambda c: (c.level != BASELINE, c.id))
    fns = {c.id: fn for c, fn in active}
    return [fns[c.id] for c in ordered]


@dataclass(frozen=True)
class Result:
    violations: tuple[tuple[str, str], ...] = ()

    @property
    def allowed(self) -> bool:
        return not self.violations

    def forbidden_reason(self) -> str:
        return ", ".join(r for r, _ in self.violations)

    def forbidden_detail(self) -> str:
        return ", ".join(f"{r} ({d})" if d else r for r, d in self.violations)


def evaluate(lv: LevelVersion, meta: Obj | None, spec: Obj | None) -> Result:
    meta, spec = _d(meta), _d(spec)
    found = [r for fn in checks_for(lv) if (r := fn(meta, spec)) is not None]
    return Result(tuple(found))


# -- what admission does with a request -------------------------------------------------------

@dataclass
class Decision:
    """The outcome for one request: refuse with `forbidden`, or admit with warnings for the
    client and annotations for the audit event."""
    forbidden: str | None = None
    warnings: list[str] = field(default_factory=list)
    audit_annotations: dict[str, str] = field(default_factory=dict)


def evaluate_pod_like(policy: Policy, causes: list[errors.Cause], meta: Obj | None,
                      spec: Obj | None, enforce: bool) -> Decision:
    """Admission.EvaluatePod: enforce (pods only), audit, then warn unless refused."""
    decision = Decision()
    if causes:
        decision.audit_annotations[ERROR_ANNOTATION] = "Failed to parse policy: " + "; ".join(
            f"{c['field']}: {c['message']}" for c in causes)
    cache: dict[LevelVersion, Result] = {}

    def result(lv: LevelVersion) -> Result:
        if lv not in cache:
            cache[lv] = evaluate(lv, meta, spec)
        return cache[lv]
    if enforce:
        decision.audit_annotations[ENFORCE_POLICY_ANNOTATION] = str(policy.enforce)
        r = result(policy.enforce)
        if not r.allowed:
            decision.forbidden = (f'violates PodSecurity "{policy.enforce}": '
                                  f"{r.forbidden_detail()}")
    audited = result(policy.audit)
    if not audited.allowed:
        decision.audit_annotations[AUDIT_VIOLATIONS_ANNOTATION] = (
            f'would violate PodSecurity "{policy.audit}": {audited.forbidden_detail()}')
    if decision.forbidden is None:
        warned = result(policy.warn)
        if not warned.allowed:
            decision.warnings.append(
                f'would violate PodSecurity "{policy.warn}": {warned.forbidden_detail()}')
    return decision


def pod_template(resource: str, obj: Obj) -> tuple[Obj, Obj] | None:
    """PodSpecExtractor: the template's metadata and spec, or None when there is none."""
    if resource == "podtemplates":
        template = obj.get("template")
    elif resource == "cronjobs":
        template = _d(_d(_d(obj.get("spec")).get("jobTemplate")).get("spec")).get("template")
    else:
        template = _d(obj.get("spec")).get("template")
    if not isinstance(template, dict):
        return None
    return _d(template.get("metadata")), _d(template.get("spec"))


def _image_and_seccomp(c: Obj, annotations: Obj) -> tuple[Any, Any]:
    return c.get("image"), annotations.get(SECCOMP_CONTAINER_ANNOTATION_PREFIX + _name(c))


def significant_pod_update(new: Obj, old: Obj) -> bool:
    """isSignificantPodUpdate: only images, seccomp annotations and added ephemeral
    containers can change what a running pod is allowed to do."""
    new_ann, old_ann = _d(_d(new.get("metadata")).get("annotations")), \
        _d(_d(old.get("metadata")).get("annotations"))
    if new_ann.get(SECCOMP_POD_ANNOTATION) != old_ann.get(SECCOMP_POD_ANNOTATION):
        return True
    new_spec, old_spec = _d(new.get("spec")), _d(old.get("spec"))
    for key in ("containers", "initContainers"):
        a, b = _dicts(new_spec.get(key)), _dicts(old_spec.get(key))
        if len(a) != len(b):
            return True
        if any(_image_and_seccomp(x, new_ann) != _image_and_seccomp(y, old_ann)
               for x, y in zip(a, b, strict=True)):
            return True
    old_ephemeral = {_name(c): c for c in _dicts(old_spec.get("ephemeralContainers"))}
    for c in _dicts(new_spec.get("ephemeralContainers")):
        before = old_ephemeral.get(_name(c))
        if before is None or _image_and_seccomp(c, new_ann) != \
                _image_and_seccomp(before, old_ann):
            return True
    return False


def namespace_label_warnings(namespace: str, enforce: LevelVersion,
                             pods: list[Obj]) -> list[str]:
    """EvaluatePodsInNamespace: which existing pods the new enforce level would refuse,
    grouped by reason, with the lexically first pod's name and a count of the others."""
    warnings: list[str] = []
    total = len(pods)
    checked = pods[:NAMESPACE_MAX_PODS_TO_CHECK]
    by_reason: dict[str, tuple[str, int]] = {}
    for pod in checked:
        r = evaluate(enforce, _d(pod.get("metadata")), _d(pod.get("spec")))
        if r.allowed:
            continue
        name = str(_d(pod.get("metadata")).get("name") or "")
        reason = r.forbidden_reason()
        first, count = by_reason.get(reason, (name, 0))
        by_reason[reason] = (min(first, name), count + 1)
    if len(checked) < total:
        warnings.append(f"new PodSecurity enforce level only checked against the first "
                        f"{len(checked)} of {total} existing pods")
    if by_reason:
        warnings.append(f'existing pods in namespace "{namespace}" violate the new '
                        f'PodSecurity enforce level "{enforce}"')
    decorated = []
    for reason, (first, count) in by_reason.items():
        if count == 1:
            decorated.append(f"{first}: {reason}")
        elif count == 2:
            decorated.append(f"{first} (and 1 other pod): {reason}")
        else:
            decorated.append(f"{first} (and {count - 1} other pods): {reason}")
    return warnings + sorted(decorated)


def namespace_update_warnings(name: str, new: Obj, old: Obj | None,
                              pods: list[Obj]) -> list[str]:
    """The namespace half of the plugin's validation for an update: skip when the enforce
    policy is unchanged, privileged, or relaxed at the same version."""
    new_policy, _ = policy_from_labels(_d(new.get("metadata")).get("labels"))
    old_policy, _ = policy_from_labels(_d(_d(old).get("metadata")).get("labels"))
    ne, oe = new_policy.enforce, old_policy.enforce
    if ne == oe or ne.level == PRIVILEGED:
        return []
    if ne.version == oe.version and _stricter(ne.level, oe.level) < 1:
        return []
    return namespace_label_warnings(name, ne, pods)


def invalid_labels(name: str, new: Obj, old: Obj | None) -> errors.Invalid | None:
    """Namespace labels must parse on create, and on update when they changed for the
    worse (a namespace already carrying bad labels can still be updated otherwise)."""
    _, new_causes = policy_from_labels(_d(new.get("metadata")).get("labels"))
    if not new_causes:
        return None
    if old is not None:
        _, old_causes = policy_from_labels(_d(old.get("metadata")).get("labels"))
        if old_causes == new_causes:
            return None
    return errors.Invalid.of("Namespace", name, new_causes)


# -- the admission plugin ---------------------------------------------------------------------

def _forbidden(resource: str, name: str, message: str) -> errors.Forbidden:
    return errors.Forbidden(f'{resource} "{name}" is forbidden: {message}',
                            details={"name": name, "kind": resource})


async def _namespace_labels(lookup: Any, namespace: str) -> dict[str, str]:
    ns = await lookup.get_namespace(namespace) if namespace else None
    return _d(_d(_d(ns).get("metadata")).get("labels"))


def _record(decision: Decision) -> None:
    from apiserver import warnings
    for text in decision.warnings:
        warnings.add_warning(text)
    for key, value in decision.audit_annotations.items():
        warnings.add_audit_annotation(key, value)


async def admit(lookup: Any, resource: str, operation: str, subresource: str, namespace: str,
                name: str, new: Obj | None, old: Obj | None) -> None:
    """Validating admission for one write: refuses with 403 (pods) or 422 (namespace
    labels); warnings and audit annotations go to the request (apiserver/warnings.py).
    `lookup` gives `get_namespace(name)` and `pods_in_namespace(namespace)`."""
    if new is None or operation not in ("CREATE", "UPDATE"):
        return
    if resource == "namespaces":
        if subresource:
            return
        invalid = invalid_labels(name, new, old)
        if invalid is not None:
            raise invalid
        if operation == "UPDATE":
            pods = await lookup.pods_in_namespace(name)
            _record(Decision(warnings=namespace_update_warnings(name, new, old, pods)))
        return
    is_pod = resource == "pods"
    if is_pod and subresource in IGNORED_POD_SUBRESOURCES:
        return
    if not is_pod and (resource not in POD_TEMPLATE_RESOURCES or subresource):
        return
    policy, causes = policy_from_labels(await _namespace_labels(lookup, namespace))
    if not causes and policy.all_privileged():
        return
    if is_pod:
        if operation == "UPDATE" and old is not None and not significant_pod_update(new, old):
            return
        decision = evaluate_pod_like(policy, causes, _d(new.get("metadata")),
                                     _d(new.get("spec")), enforce=True)
    else:
        if policy.warn.level == PRIVILEGED and policy.audit.level == PRIVILEGED and not causes:
            return
        template = pod_template(resource, new)
        if template is None:
            return
        decision = evaluate_pod_like(policy, causes, template[0], template[1], enforce=False)
    _record(decision)
    if decision.forbidden is not None:
        raise _forbidden(resource, name or str(_d(new.get("metadata")).get("name") or ""),
                         decision.forbidden)
