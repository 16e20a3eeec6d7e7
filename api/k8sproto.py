"""Decode Kubernetes protobuf request bodies into the JSON-shaped dicts the rest of kubelite uses.

kubectl's typed commands (`kubectl create configmap|secret|namespace|deployment|job|...`) send
their bodies as `application/vnd.kubernetes.protobuf` and do not fall back to JSON, so the
apiserver must read that wire format. Responses stay JSON, which kubectl also accepts.

A body is the 4 magic bytes `k8s\\x00` and then a `runtime.Unknown` message:
{1: typeMeta {1: apiVersion, 2: kind}, 2: raw, 3: contentEncoding, 4: contentType}, where raw
is the object's own message. Field numbers come from upstream's generated.proto files; they are
kept below as data (`SCHEMA`) and read by a small wire-format reader, with no generated code.

The result must equal what `json.Marshal` of the same Go object gives, because that is what
the JSON path would have received. Go's protobuf marshaller writes every non-pointer field, even
empty, so a field's presence alone does not tell JSON's `omitempty` apart from a real zero:
  - pointer fields (`*int32 replicas`) are written only when set: present means keep, even 0;
  - value fields tagged `omitempty` are always written: keep them only when non-zero ("?");
  - value fields without `omitempty` (`containerPort`, `name`) are kept as they are;
  - repeated fields and maps that come out empty are left out.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

PROTOBUF_CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

# No message in SCHEMA contains itself, so the schema bounds nesting (about 10 deep); the cap
# keeps a future recursive entry from turning hostile input into a RecursionError.
_MAX_DEPTH = 64
_U64 = (1 << 64) - 1


class ProtobufError(ValueError):
    """The body is not a Kubernetes protobuf message this module can decode."""


def is_protobuf(content_type: str) -> bool:
    """Whether a Content-Type header names the Kubernetes protobuf encoding."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == PROTOBUF_CONTENT_TYPE


def supported_kinds() -> set[str]:
    """The kinds `decode` can read."""
    return set(KINDS)


def decode(body: bytes, expected_kind: str | None = None) -> dict[str, Any]:
    """Decode one protobuf-encoded object to the dict its JSON encoding would give.

    `apiVersion` and `kind` come from the envelope; when the envelope leaves the kind empty,
    `expected_kind` (the kind of the endpoint) is used instead.
    """
    if not isinstance(body, bytes | bytearray | memoryview):
        raise ProtobufError("body is not bytes")
    body = bytes(body)
    if not body.startswith(MAGIC):
        raise ProtobufError("body does not start with the Kubernetes protobuf magic k8s\\x00")
    api_version, kind, raw = _envelope(body[len(MAGIC):])
    kind = kind or expected_kind or ""
    if not kind:
        raise ProtobufError("protobuf body names no kind")
    known = KINDS.get(kind)
    if known is None:
        raise ProtobufError(f"protobuf decoding of kind {kind!r} is not supported")
    version, message = known
    if not api_version:
        api_version = version or "v1"
    elif version is not None and api_version != version:
        # Another version of a kind may number its fields differently.
        raise ProtobufError(f"protobuf decoding of {api_version!r} {kind!r} is not supported")
    obj = _message(raw, message, 0)
    return {"apiVersion": api_version, "kind": kind, **obj}


def _envelope(data: bytes) -> tuple[str, str, bytes]:
    """Read runtime.Unknown: (apiVersion, kind, raw)."""
    api_version = kind = ""
    raw = b""
    for number, wire, value in _fields(data):
        if number == 1:
            for n, w, v in _fields(_bytes_of(wire, value, "Unknown.typeMeta")):
                if n == 1:
                    api_version = _string(_bytes_of(w, v, "TypeMeta.apiVersion"))
                elif n == 2:
                    kind = _string(_bytes_of(w, v, "TypeMeta.kind"))
        elif number == 2:
            raw = _bytes_of(wire, value, "Unknown.raw")
        elif number == 3:
            encoding = _string(_bytes_of(wire, value, "Unknown.contentEncoding"))
            if encoding:
                raise ProtobufError(f"unsupported protobuf contentEncoding {encoding!r}")
    return api_version, kind, raw


# --- wire format -------------------------------------------------------------------------------

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & _U64, pos
        shift += 7
        if shift >= 70:
            raise ProtobufError("varint longer than 10 bytes")


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value): an int, or the bytes of a length-delimited field."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0")
        value: int | bytes
        if wire == _VARINT:
            value, pos = _varint(data, pos)
        elif wire == _BYTES:
            size, pos = _varint(data, pos)
            if size > end - pos:
                raise ProtobufError("truncated length-delimited field")
            value = data[pos:pos + size]
            pos += size
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
            if size > end - pos:
                raise ProtobufError("truncated fixed-width field")
            value = int.from_bytes(data[pos:pos + size], "little")
            pos += size
        else:
            # Groups (3, 4) are proto1 leftovers Kubernetes never writes; 6 and 7 do not exist.
            raise ProtobufError(f"unsupported wire type {wire}")
        yield number, wire, value


def _bytes_of(wire: int, value: int | bytes, where: str) -> bytes:
    if wire != _BYTES or not isinstance(value, bytes):
        raise ProtobufError(f"{where}: wire type {wire}, want length-delimited")
    return value


def _varint_of(wire: int, value: int | bytes, where: str) -> int:
    if wire != _VARINT or not isinstance(value, int):
        raise ProtobufError(f"{where}: wire type {wire}, want varint")
    return value


def _string(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtobufError("string field is not valid UTF-8") from None


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _int32(value: int) -> int:
    # Negative int32s travel sign-extended to 64 bits; Go keeps the low 32.
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


# --- schema-driven decoding --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Field:
    json: str  # "" for an embedded struct whose fields Go inlines into the parent
    type: str  # a scalar name or a message name (for maps: the value's type)
    repeated: bool = False
    map: bool = False
    omit_zero: bool = False


_SCALARS = frozenset({"string", "bytes", "int32", "int64", "bool"})
_NUMERIC = frozenset({"int32", "int64", "bool"})


def _compile(spec: str, json_name: str) -> _Field:
    """Parse one table entry: "int32?", "[]core.Container", "map[string]string", ..."""
    omit_zero = spec.endswith("?")
    spec = spec.removesuffix("?")
    if spec.startswith("[]"):
        return _Field(json_name, spec[2:], repeated=True)
    if spec.startswith("map[string]"):
        return _Field(json_name, spec[len("map[string]"):], map=True)
    return _Field(json_name, spec, omit_zero=omit_zero)


def _message(data: bytes, name: str, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise ProtobufError("message nested too deeply")
    special = _SPECIAL.get(name)
    if special is not None:
        return special(data)
    fields = _COMPILED[name]
    out: dict[str, Any] = {}
    for number, wire, value in _fields(data):
        field = fields.get(number)
        if field is None:
            continue  # a newer field than this table knows: skipped, as upstream does
        where = f"{name} field {number}"
        if field.map:
            key, item = _map_entry(_bytes_of(wire, value, where), field.type, where, depth)
            out.setdefault(field.json, {})[key] = item
        elif field.repeated:
            out.setdefault(field.json, []).extend(
                _repeated(field.type, wire, value, where, depth))
        elif field.json == "":
            out.update(_message(_bytes_of(wire, value, where), field.type, depth + 1))
        else:
            out[field.json] = _single(field.type, wire, value, where, depth)
    for field in fields.values():
        if field.omit_zero and field.json in out and not out[field.json]:
            del out[field.json]
    return out


def _single(type_: str, wire: int, value: int | bytes, where: str, depth: int) -> Any:
    if type_ in _NUMERIC:
        number = _varint_of(wire, value, where)
        if type_ == "bool":
            return number != 0
        return _int32(number) if type_ == "int32" else _int64(number)
    data = _bytes_of(wire, value, where)
    if type_ == "string":
        return _string(data)
    if type_ == "bytes":
        return base64.b64encode(data).decode("ascii")  # Go's JSON for []byte
    return _message(data, type_, depth + 1)


def _repeated(type_: str, wire: int, value: int | bytes, where: str, depth: int) -> list[Any]:
    if type_ in _NUMERIC and wire == _BYTES and isinstance(value, bytes):
        # Packed encoding: upstream writes repeated numbers unpacked, but readers must accept both.
        items, pos = [], 0
        while pos < len(value):
            number, pos = _varint(value, pos)
            items.append(_single(type_, _VARINT, number, where, depth))
        return items
    return [_single(type_, wire, value, where, depth)]


def _map_entry(data: bytes, type_: str, where: str, depth: int) -> tuple[str, Any]:
    key = ""
    item: Any = _MAP_ZERO.get(type_, "")
    for number, wire, value in _fields(data):
        if number == 1:
            key = _string(_bytes_of(wire, value, where))
        elif number == 2:
            item = _single(type_, wire, value, where, depth)
    return key, item


_MAP_ZERO = {"resource.Quantity": "0"}


# --- messages with their own JSON form ---------------------------------------------------------

def _timestamp(data: bytes) -> tuple[int, int]:
    """metav1.Time and MicroTime travel as {1: seconds, 2: nanos}."""
    seconds = nanos = 0
    for number, wire, value in _fields(data):
        if number == 1:
            seconds = _int64(_varint_of(wire, value, "Time.seconds"))
        elif number == 2:
            nanos = _int32(_varint_of(wire, value, "Time.nanos"))
    return seconds, nanos


def _datetime(seconds: int, nanos: int) -> tuple[dt.datetime, int]:
    seconds, nanos = divmod(seconds * 1_000_000_000 + nanos, 1_000_000_000)
    try:
        return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds), nanos
    except OverflowError:
        raise ProtobufError("timestamp out of range") from None


def _time(data: bytes) -> str | None:
    seconds, nanos = _timestamp(data)
    if seconds == 0 and nanos == 0:
        return None  # the zero Time, which Go writes as JSON null
    when, _ = _datetime(seconds, nanos)
    return _rfc3339(when) + "Z"


def _micro_time(data: bytes) -> str | None:
    seconds, nanos = _timestamp(data)
    if seconds == 0 and nanos == 0:
        return None
    when, nanos = _datetime(seconds, nanos)
    return _rfc3339(when) + f".{nanos // 1000:06d}Z"


def _rfc3339(when: dt.datetime) -> str:
    # By hand: strftime's %Y does not zero-pad years below 1000 everywhere, Go's layout does.
    return (f"{when.year:04d}-{when.month:02d}-{when.day:02d}"
            f"T{when.hour:02d}:{when.minute:02d}:{when.second:02d}")


def _duration(data: bytes) -> str:
    nanos = 0
    for number, wire, value in _fields(data):
        if number == 1:
            nanos = _int64(_varint_of(wire, value, "Duration.duration"))
    return go_duration(nanos)


def go_duration(nanos: int) -> str:
    """Format nanoseconds as Go's time.Duration.String(), which metav1.Duration's JSON uses."""
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    n = abs(nanos)
    if n < 1_000_000_000:
        for unit, scale in (("ns", 1), ("µs", 1_000), ("ms", 1_000_000)):
            if n < scale * 1000:
                return sign + _decimal(n, scale) + unit
    hours, n = divmod(n, 3600 * 1_000_000_000)
    minutes, n = divmod(n, 60 * 1_000_000_000)
    seconds = _decimal(n, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def _decimal(value: int, scale: int) -> str:
    whole, frac = divmod(value, scale)
    digits = str(frac).rjust(len(str(scale)) - 1, "0").rstrip("0") if scale > 1 else ""
    return f"{whole}.{digits}" if digits else str(whole)


def _quantity(data: bytes) -> str:
    text = "0"
    for number, wire, value in _fields(data):
        if number == 1:
            text = _string(_bytes_of(wire, value, "Quantity.string"))
    return text


def _int_or_string(data: bytes) -> int | str:
    kind, int_val, str_val = 0, 0, ""
    for number, wire, value in _fields(data):
        if number == 1:
            kind = _int64(_varint_of(wire, value, "IntOrString.type"))
        elif number == 2:
            int_val = _int32(_varint_of(wire, value, "IntOrString.intVal"))
        elif number == 3:
            str_val = _string(_bytes_of(wire, value, "IntOrString.strVal"))
    return str_val if kind == 1 else int_val


def _fields_v1(data: bytes) -> Any:
    raw = b""
    for number, wire, value in _fields(data):
        if number == 1:
            raw = _bytes_of(wire, value, "FieldsV1.Raw")
    if not raw:
        return None
    try:
        return json.loads(raw)  # FieldsV1 carries its JSON form as raw bytes
    except ValueError:
        raise ProtobufError("FieldsV1 is not JSON") from None


_SPECIAL = {
    "meta.Time": _time,
    "meta.MicroTime": _micro_time,
    "meta.Duration": _duration,
    "meta.FieldsV1": _fields_v1,
    "resource.Quantity": _quantity,
    "intstr.IntOrString": _int_or_string,
}


# kind -> (apiVersion, message); apiVersion None: the kind is shared by every group version.
KINDS: dict[str, tuple[str | None, str]] = {
    "ConfigMap": ("v1", "core.ConfigMap"),
    "Secret": ("v1", "core.Secret"),
    "Namespace": ("v1", "core.Namespace"),
    "ServiceAccount": ("v1", "core.ServiceAccount"),
    "Service": ("v1", "core.Service"),
    "Pod": ("v1", "core.Pod"),
    "Node": ("v1", "core.Node"),
    "Endpoints": ("v1", "core.Endpoints"),
    "Event": ("v1", "core.Event"),
    "Binding": ("v1", "core.Binding"),
    "Deployment": ("apps/v1", "apps.Deployment"),
    "ReplicaSet": ("apps/v1", "apps.ReplicaSet"),
    "DaemonSet": ("apps/v1", "apps.DaemonSet"),
    "Job": ("batch/v1", "batch.Job"),
    "CronJob": ("batch/v1", "batch.CronJob"),
    "Lease": ("coordination.k8s.io/v1", "coordination.Lease"),
    "EndpointSlice": ("discovery.k8s.io/v1", "discovery.EndpointSlice"),
    "Eviction": ("policy/v1", "policy.Eviction"),
    "Scale": ("autoscaling/v1", "autoscaling.Scale"),
    "TokenRequest": ("authentication.k8s.io/v1", "authentication.TokenRequest"),
    "DeleteOptions": (None, "meta.DeleteOptions"),
    "Role": ("rbac.authorization.k8s.io/v1", "rbac.Role"),
    "ClusterRole": ("rbac.authorization.k8s.io/v1", "rbac.ClusterRole"),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", "rbac.RoleBinding"),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io/v1", "rbac.RoleBinding"),
    "TokenReview": ("authentication.k8s.io/v1", "authentication.TokenReview"),
    "SelfSubjectReview": ("authentication.k8s.io/v1", "authentication.SelfSubjectReview"),
    "SubjectAccessReview": ("authorization.k8s.io/v1", "authorization.SubjectAccessReview"),
    "LocalSubjectAccessReview": ("authorization.k8s.io/v1",
                                 "authorization.SubjectAccessReview"),
    "SelfSubjectAccessReview": ("authorization.k8s.io/v1",
                                "authorization.SelfSubjectAccessReview"),
    "SelfSubjectRulesReview": ("authorization.k8s.io/v1",
                               "authorization.SelfSubjectRulesReview"),
}

# message -> {field number: (JSON name, type)}, from upstream 1.32's generated.proto (numbers,
# types) and the Go struct tags (JSON names, omitempty). Types read like Go:
#   "string" "bytes" "int32" "int64" "bool"    scalars ("bytes" becomes base64, as in Go's JSON)
#   "core.Container"                           a message, by package alias and name
#   "[]T"  "map[string]T"                      repeated field; map (entries {1: key, 2: value})
#   "T?"                                       value field tagged omitempty: dropped when zero
#   JSON name ""                               embedded struct inlined into its parent
# Upstream's unlisted fields (say, ObjectMeta's clusterName slot) are skipped like unknown ones.
SCHEMA: dict[str, dict[int, tuple[str, str]]] = {
    "apps.DaemonSet": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "apps.DaemonSetSpec"),
        3: ("status", "apps.DaemonSetStatus"),
    },
    "apps.DaemonSetCondition": {
        1: ("type", "string"), 2: ("status", "string"), 3: ("lastTransitionTime", "meta.Time"),
        4: ("reason", "string?"), 5: ("message", "string?"),
    },
    "apps.DaemonSetSpec": {
        1: ("selector", "meta.LabelSelector"), 2: ("template", "core.PodTemplateSpec"),
        3: ("updateStrategy", "apps.DaemonSetUpdateStrategy"), 4: ("minReadySeconds", "int32?"),
        6: ("revisionHistoryLimit", "int32"),
    },
    "apps.DaemonSetStatus": {
        1: ("currentNumberScheduled", "int32"), 2: ("numberMisscheduled", "int32"),
        3: ("desiredNumberScheduled", "int32"), 4: ("numberReady", "int32"),
        5: ("observedGeneration", "int64?"), 6: ("updatedNumberScheduled", "int32?"),
        7: ("numberAvailable", "int32?"), 8: ("numberUnavailable", "int32?"),
        9: ("collisionCount", "int32"), 10: ("conditions", "[]apps.DaemonSetCondition"),
    },
    "apps.DaemonSetUpdateStrategy": {
        1: ("type", "string?"), 2: ("rollingUpdate", "apps.RollingUpdateDaemonSet"),
    },
    "apps.Deployment": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "apps.DeploymentSpec"),
        3: ("status", "apps.DeploymentStatus"),
    },
    "apps.DeploymentCondition": {
        1: ("type", "string"), 2: ("status", "string"), 4: ("reason", "string?"),
        5: ("message", "string?"), 6: ("lastUpdateTime", "meta.Time"),
        7: ("lastTransitionTime", "meta.Time"),
    },
    "apps.DeploymentSpec": {
        1: ("replicas", "int32"), 2: ("selector", "meta.LabelSelector"),
        3: ("template", "core.PodTemplateSpec"), 4: ("strategy", "apps.DeploymentStrategy"),
        5: ("minReadySeconds", "int32?"), 6: ("revisionHistoryLimit", "int32"),
        7: ("paused", "bool?"), 9: ("progressDeadlineSeconds", "int32"),
    },
    "apps.DeploymentStatus": {
        1: ("observedGeneration", "int64?"), 2: ("replicas", "int32?"),
        3: ("updatedReplicas", "int32?"), 4: ("availableReplicas", "int32?"),
        5: ("unavailableReplicas", "int32?"), 6: ("conditions", "[]apps.DeploymentCondition"),
        7: ("readyReplicas", "int32?"), 8: ("collisionCount", "int32"),
    },
    "apps.DeploymentStrategy": {
        1: ("type", "string?"), 2: ("rollingUpdate", "apps.RollingUpdateDeployment"),
    },
    "apps.ReplicaSet": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "apps.ReplicaSetSpec"),
        3: ("status", "apps.ReplicaSetStatus"),
    },
    "apps.ReplicaSetCondition": {
        1: ("type", "string"), 2: ("status", "string"), 3: ("lastTransitionTime", "meta.Time"),
        4: ("reason", "string?"), 5: ("message", "string?"),
    },
    "apps.ReplicaSetSpec": {
        1: ("replicas", "int32"), 2: ("selector", "meta.LabelSelector"),
        3: ("template", "core.PodTemplateSpec"), 4: ("minReadySeconds", "int32?"),
    },
    "apps.ReplicaSetStatus": {
        1: ("replicas", "int32"), 2: ("fullyLabeledReplicas", "int32?"),
        3: ("observedGeneration", "int64?"), 4: ("readyReplicas", "int32?"),
        5: ("availableReplicas", "int32?"), 6: ("conditions", "[]apps.ReplicaSetCondition"),
    },
    "apps.RollingUpdateDaemonSet": {
        1: ("maxUnavailable", "intstr.IntOrString"), 2: ("maxSurge", "intstr.IntOrString"),
    },
    "apps.RollingUpdateDeployment": {
        1: ("maxUnavailable", "intstr.IntOrString"), 2: ("maxSurge", "intstr.IntOrString"),
    },
    "authentication.BoundObjectReference": {
        1: ("kind", "string?"), 2: ("apiVersion", "string?"), 3: ("name", "string?"),
        4: ("uid", "string?"),
    },
    "authentication.TokenRequest": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "authentication.TokenRequestSpec"),
        3: ("status", "authentication.TokenRequestStatus"),
    },
    "authentication.TokenRequestSpec": {
        1: ("audiences", "[]string"), 3: ("boundObjectRef", "authentication.BoundObjectReference"),
        4: ("expirationSeconds", "int64"),
    },
    "authentication.TokenRequestStatus": {
        1: ("token", "string"), 2: ("expirationTimestamp", "meta.Time"),
    },
    "autoscaling.Scale": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "autoscaling.ScaleSpec"),
        3: ("status", "autoscaling.ScaleStatus"),
    },
    "autoscaling.ScaleSpec": {
        1: ("replicas", "int32?"),
    },
    "autoscaling.ScaleStatus": {
        1: ("replicas", "int32"), 2: ("selector", "string?"),
    },
    "batch.CronJob": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "batch.CronJobSpec"),
        3: ("status", "batch.CronJobStatus"),
    },
    "batch.CronJobSpec": {
        1: ("schedule", "string"), 2: ("startingDeadlineSeconds", "int64"),
        3: ("concurrencyPolicy", "string?"), 4: ("suspend", "bool"),
        5: ("jobTemplate", "batch.JobTemplateSpec"), 6: ("successfulJobsHistoryLimit", "int32"),
        7: ("failedJobsHistoryLimit", "int32"), 8: ("timeZone", "string"),
    },
    "batch.CronJobStatus": {
        1: ("active", "[]core.ObjectReference"), 4: ("lastScheduleTime", "meta.Time"),
        5: ("lastSuccessfulTime", "meta.Time"),
    },
    "batch.Job": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "batch.JobSpec"),
        3: ("status", "batch.JobStatus"),
    },
    "batch.JobCondition": {
        1: ("type", "string"), 2: ("status", "string"), 3: ("lastProbeTime", "meta.Time"),
        4: ("lastTransitionTime", "meta.Time"), 5: ("reason", "string?"),
        6: ("message", "string?"),
    },
    "batch.JobSpec": {
        1: ("parallelism", "int32"), 2: ("completions", "int32"),
        3: ("activeDeadlineSeconds", "int64"), 4: ("selector", "meta.LabelSelector"),
        5: ("manualSelector", "bool"), 6: ("template", "core.PodTemplateSpec"),
        7: ("backoffLimit", "int32"), 8: ("ttlSecondsAfterFinished", "int32"),
        9: ("completionMode", "string"), 10: ("suspend", "bool"),
        11: ("podFailurePolicy", "batch.PodFailurePolicy"), 12: ("backoffLimitPerIndex", "int32"),
        13: ("maxFailedIndexes", "int32"), 14: ("podReplacementPolicy", "string"),
        15: ("managedBy", "string"), 16: ("successPolicy", "batch.SuccessPolicy"),
    },
    "batch.JobStatus": {
        1: ("conditions", "[]batch.JobCondition"), 2: ("startTime", "meta.Time"),
        3: ("completionTime", "meta.Time"), 4: ("active", "int32?"), 5: ("succeeded", "int32?"),
        6: ("failed", "int32?"), 7: ("completedIndexes", "string?"),
        8: ("uncountedTerminatedPods", "batch.UncountedTerminatedPods"), 9: ("ready", "int32"),
        10: ("failedIndexes", "string"), 11: ("terminating", "int32"),
    },
    "batch.JobTemplateSpec": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "batch.JobSpec"),
    },
    "batch.PodFailurePolicy": {
        1: ("rules", "[]batch.PodFailurePolicyRule"),
    },
    "batch.PodFailurePolicyOnExitCodesRequirement": {
        1: ("containerName", "string"), 2: ("operator", "string"), 3: ("values", "[]int32"),
    },
    "batch.PodFailurePolicyOnPodConditionsPattern": {
        1: ("type", "string"), 2: ("status", "string"),
    },
    "batch.PodFailurePolicyRule": {
        1: ("action", "string"),
        2: ("onExitCodes", "batch.PodFailurePolicyOnExitCodesRequirement"),
        3: ("onPodConditions", "[]batch.PodFailurePolicyOnPodConditionsPattern"),
    },
    "batch.SuccessPolicy": {
        1: ("rules", "[]batch.SuccessPolicyRule"),
    },
    "batch.SuccessPolicyRule": {
        1: ("succeededIndexes", "string"), 2: ("succeededCount", "int32"),
    },
    "batch.UncountedTerminatedPods": {
        1: ("succeeded", "[]string"), 2: ("failed", "[]string"),
    },
    "coordination.Lease": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "coordination.LeaseSpec"),
    },
    "coordination.LeaseSpec": {
        1: ("holderIdentity", "string"), 2: ("leaseDurationSeconds", "int32"),
        3: ("acquireTime", "meta.MicroTime"), 4: ("renewTime", "meta.MicroTime"),
        5: ("leaseTransitions", "int32"), 6: ("strategy", "string"),
        7: ("preferredHolder", "string"),
    },
    "core.AWSElasticBlockStoreVolumeSource": {
        1: ("volumeID", "string"), 2: ("fsType", "string?"), 3: ("partition", "int32?"),
        4: ("readOnly", "bool?"),
    },
    "core.Affinity": {
        1: ("nodeAffinity", "core.NodeAffinity"), 2: ("podAffinity", "core.PodAffinity"),
        3: ("podAntiAffinity", "core.PodAntiAffinity"),
    },
    "core.AppArmorProfile": {
        1: ("type", "string"), 2: ("localhostProfile", "string"),
    },
    "core.AttachedVolume": {
        1: ("name", "string"), 2: ("devicePath", "string"),
    },
    "core.AzureDiskVolumeSource": {
        1: ("diskName", "string"), 2: ("diskURI", "string"), 3: ("cachingMode", "string"),
        4: ("fsType", "string"), 5: ("readOnly", "bool"), 6: ("kind", "string"),
    },
    "core.AzureFileVolumeSource": {
        1: ("secretName", "string"), 2: ("shareName", "string"), 3: ("readOnly", "bool?"),
    },
    "core.Binding": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("target", "core.ObjectReference"),
    },
    "core.CSIVolumeSource": {
        1: ("driver", "string"), 2: ("readOnly", "bool"), 3: ("fsType", "string"),
        4: ("volumeAttributes", "map[string]string"),
        5: ("nodePublishSecretRef", "core.LocalObjectReference"),
    },
    "core.Capabilities": {
        1: ("add", "[]string"), 2: ("drop", "[]string"),
    },
    "core.CephFSVolumeSource": {
        1: ("monitors", "[]string"), 2: ("path", "string?"), 3: ("user", "string?"),
        4: ("secretFile", "string?"), 5: ("secretRef", "core.LocalObjectReference"),
        6: ("readOnly", "bool?"),
    },
    "core.CinderVolumeSource": {
        1: ("volumeID", "string"), 2: ("fsType", "string?"), 3: ("readOnly", "bool?"),
        4: ("secretRef", "core.LocalObjectReference"),
    },
    "core.ClientIPConfig": {
        1: ("timeoutSeconds", "int32"),
    },
    "core.ClusterTrustBundleProjection": {
        1: ("name", "string"), 2: ("signerName", "string"),
        3: ("labelSelector", "meta.LabelSelector"), 4: ("path", "string"), 5: ("optional", "bool"),
    },
    "core.ConfigMap": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("data", "map[string]string"),
        3: ("binaryData", "map[string]bytes"), 4: ("immutable", "bool"),
    },
    "core.ConfigMapEnvSource": {
        1: ("", "core.LocalObjectReference"), 2: ("optional", "bool"),
    },
    "core.ConfigMapKeySelector": {
        1: ("", "core.LocalObjectReference"), 2: ("key", "string"), 3: ("optional", "bool"),
    },
    "core.ConfigMapNodeConfigSource": {
        1: ("namespace", "string"), 2: ("name", "string"), 3: ("uid", "string?"),
        4: ("resourceVersion", "string?"), 5: ("kubeletConfigKey", "string"),
    },
    "core.ConfigMapProjection": {
        1: ("", "core.LocalObjectReference"), 2: ("items", "[]core.KeyToPath"),
        4: ("optional", "bool"),
    },
    "core.ConfigMapVolumeSource": {
        1: ("", "core.LocalObjectReference"), 2: ("items", "[]core.KeyToPath"),
        3: ("defaultMode", "int32"), 4: ("optional", "bool"),
    },
    "core.Container": {
        1: ("name", "string"), 2: ("image", "string?"), 3: ("command", "[]string"),
        4: ("args", "[]string"), 5: ("workingDir", "string?"),
        6: ("ports", "[]core.ContainerPort"), 7: ("env", "[]core.EnvVar"),
        8: ("resources", "core.ResourceRequirements"), 9: ("volumeMounts", "[]core.VolumeMount"),
        10: ("livenessProbe", "core.Probe"), 11: ("readinessProbe", "core.Probe"),
        12: ("lifecycle", "core.Lifecycle"), 13: ("terminationMessagePath", "string?"),
        14: ("imagePullPolicy", "string?"), 15: ("securityContext", "core.SecurityContext"),
        16: ("stdin", "bool?"), 17: ("stdinOnce", "bool?"), 18: ("tty", "bool?"),
        19: ("envFrom", "[]core.EnvFromSource"), 20: ("terminationMessagePolicy", "string?"),
        21: ("volumeDevices", "[]core.VolumeDevice"), 22: ("startupProbe", "core.Probe"),
        23: ("resizePolicy", "[]core.ContainerResizePolicy"), 24: ("restartPolicy", "string"),
    },
    "core.ContainerImage": {
        1: ("names", "[]string"), 2: ("sizeBytes", "int64?"),
    },
    "core.ContainerPort": {
        1: ("name", "string?"), 2: ("hostPort", "int32?"), 3: ("containerPort", "int32"),
        4: ("protocol", "string?"), 5: ("hostIP", "string?"),
    },
    "core.ContainerResizePolicy": {
        1: ("resourceName", "string"), 2: ("restartPolicy", "string"),
    },
    "core.ContainerState": {
        1: ("waiting", "core.ContainerStateWaiting"), 2: ("running", "core.ContainerStateRunning"),
        3: ("terminated", "core.ContainerStateTerminated"),
    },
    "core.ContainerStateRunning": {
        1: ("startedAt", "meta.Time"),
    },
    "core.ContainerStateTerminated": {
        1: ("exitCode", "int32"), 2: ("signal", "int32?"), 3: ("reason", "string?"),
        4: ("message", "string?"), 5: ("startedAt", "meta.Time"), 6: ("finishedAt", "meta.Time"),
        7: ("containerID", "string?"),
    },
    "core.ContainerStateWaiting": {
        1: ("reason", "string?"), 2: ("message", "string?"),
    },
    "core.ContainerStatus": {
        1: ("name", "string"), 2: ("state", "core.ContainerState"),
        3: ("lastState", "core.ContainerState"), 4: ("ready", "bool"),
        5: ("restartCount", "int32"), 6: ("image", "string"), 7: ("imageID", "string"),
        8: ("containerID", "string?"), 9: ("started", "bool"),
        10: ("allocatedResources", "map[string]resource.Quantity"),
        11: ("resources", "core.ResourceRequirements"),
        12: ("volumeMounts", "[]core.VolumeMountStatus"), 13: ("user", "core.ContainerUser"),
        14: ("allocatedResourcesStatus", "[]core.ResourceStatus"),
    },
    "core.ContainerUser": {
        1: ("linux", "core.LinuxContainerUser"),
    },
    "core.DaemonEndpoint": {
        1: ("Port", "int32"),
    },
    "core.DownwardAPIProjection": {
        1: ("items", "[]core.DownwardAPIVolumeFile"),
    },
    "core.DownwardAPIVolumeFile": {
        1: ("path", "string"), 2: ("fieldRef", "core.ObjectFieldSelector"),
        3: ("resourceFieldRef", "core.ResourceFieldSelector"), 4: ("mode", "int32"),
    },
    "core.DownwardAPIVolumeSource": {
        1: ("items", "[]core.DownwardAPIVolumeFile"), 2: ("defaultMode", "int32"),
    },
    "core.EmptyDirVolumeSource": {
        1: ("medium", "string?"), 2: ("sizeLimit", "resource.Quantity"),
    },
    "core.EndpointAddress": {
        1: ("ip", "string"), 2: ("targetRef", "core.ObjectReference"), 3: ("hostname", "string?"),
        4: ("nodeName", "string"),
    },
    "core.EndpointPort": {
        1: ("name", "string?"), 2: ("port", "int32"), 3: ("protocol", "string?"),
        4: ("appProtocol", "string"),
    },
    "core.EndpointSubset": {
        1: ("addresses", "[]core.EndpointAddress"),
        2: ("notReadyAddresses", "[]core.EndpointAddress"), 3: ("ports", "[]core.EndpointPort"),
    },
    "core.Endpoints": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("subsets", "[]core.EndpointSubset"),
    },
    "core.EnvFromSource": {
        1: ("prefix", "string?"), 2: ("configMapRef", "core.ConfigMapEnvSource"),
        3: ("secretRef", "core.SecretEnvSource"),
    },
    "core.EnvVar": {
        1: ("name", "string"), 2: ("value", "string?"), 3: ("valueFrom", "core.EnvVarSource"),
    },
    "core.EnvVarSource": {
        1: ("fieldRef", "core.ObjectFieldSelector"),
        2: ("resourceFieldRef", "core.ResourceFieldSelector"),
        3: ("configMapKeyRef", "core.ConfigMapKeySelector"),
        4: ("secretKeyRef", "core.SecretKeySelector"),
    },
    "core.EphemeralContainer": {
        1: ("", "core.EphemeralContainerCommon"), 2: ("targetContainerName", "string?"),
    },
    "core.EphemeralContainerCommon": {
        1: ("name", "string"), 2: ("image", "string?"), 3: ("command", "[]string"),
        4: ("args", "[]string"), 5: ("workingDir", "string?"),
        6: ("ports", "[]core.ContainerPort"), 7: ("env", "[]core.EnvVar"),
        8: ("resources", "core.ResourceRequirements"), 9: ("volumeMounts", "[]core.VolumeMount"),
        10: ("livenessProbe", "core.Probe"), 11: ("readinessProbe", "core.Probe"),
        12: ("lifecycle", "core.Lifecycle"), 13: ("terminationMessagePath", "string?"),
        14: ("imagePullPolicy", "string?"), 15: ("securityContext", "core.SecurityContext"),
        16: ("stdin", "bool?"), 17: ("stdinOnce", "bool?"), 18: ("tty", "bool?"),
        19: ("envFrom", "[]core.EnvFromSource"), 20: ("terminationMessagePolicy", "string?"),
        21: ("volumeDevices", "[]core.VolumeDevice"), 22: ("startupProbe", "core.Probe"),
        23: ("resizePolicy", "[]core.ContainerResizePolicy"), 24: ("restartPolicy", "string"),
    },
    "core.EphemeralVolumeSource": {
        1: ("volumeClaimTemplate", "core.PersistentVolumeClaimTemplate"),
    },
    "core.Event": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("involvedObject", "core.ObjectReference"),
        3: ("reason", "string?"), 4: ("message", "string?"), 5: ("source", "core.EventSource"),
        6: ("firstTimestamp", "meta.Time"), 7: ("lastTimestamp", "meta.Time"),
        8: ("count", "int32?"), 9: ("type", "string?"), 10: ("eventTime", "meta.MicroTime"),
        11: ("series", "core.EventSeries"), 12: ("action", "string?"),
        13: ("related", "core.ObjectReference"), 14: ("reportingComponent", "string"),
        15: ("reportingInstance", "string"),
    },
    "core.EventSeries": {
        1: ("count", "int32?"), 2: ("lastObservedTime", "meta.MicroTime"),
    },
    "core.EventSource": {
        1: ("component", "string?"), 2: ("host", "string?"),
    },
    "core.ExecAction": {
        1: ("command", "[]string"),
    },
    "core.FCVolumeSource": {
        1: ("targetWWNs", "[]string"), 2: ("lun", "int32"), 3: ("fsType", "string?"),
        4: ("readOnly", "bool?"), 5: ("wwids", "[]string"),
    },
    "core.FlexVolumeSource": {
        1: ("driver", "string"), 2: ("fsType", "string?"),
        3: ("secretRef", "core.LocalObjectReference"), 4: ("readOnly", "bool?"),
        5: ("options", "map[string]string"),
    },
    "core.FlockerVolumeSource": {
        1: ("datasetName", "string?"), 2: ("datasetUUID", "string?"),
    },
    "core.GCEPersistentDiskVolumeSource": {
        1: ("pdName", "string"), 2: ("fsType", "string?"), 3: ("partition", "int32?"),
        4: ("readOnly", "bool?"),
    },
    "core.GRPCAction": {
        1: ("port", "int32"), 2: ("service", "string"),
    },
    "core.GitRepoVolumeSource": {
        1: ("repository", "string"), 2: ("revision", "string?"), 3: ("directory", "string?"),
    },
    "core.GlusterfsVolumeSource": {
        1: ("endpoints", "string"), 2: ("path", "string"), 3: ("readOnly", "bool?"),
    },
    "core.HTTPGetAction": {
        1: ("path", "string?"), 2: ("port", "intstr.IntOrString"), 3: ("host", "string?"),
        4: ("scheme", "string?"), 5: ("httpHeaders", "[]core.HTTPHeader"),
    },
    "core.HTTPHeader": {
        1: ("name", "string"), 2: ("value", "string"),
    },
    "core.HostAlias": {
        1: ("ip", "string"), 2: ("hostnames", "[]string"),
    },
    "core.HostIP": {
        1: ("ip", "string"),
    },
    "core.HostPathVolumeSource": {
        1: ("path", "string"), 2: ("type", "string"),
    },
    "core.ISCSIVolumeSource": {
        1: ("targetPortal", "string"), 2: ("iqn", "string"), 3: ("lun", "int32"),
        4: ("iscsiInterface", "string?"), 5: ("fsType", "string?"), 6: ("readOnly", "bool?"),
        7: ("portals", "[]string"), 8: ("chapAuthDiscovery", "bool?"),
        10: ("secretRef", "core.LocalObjectReference"), 11: ("chapAuthSession", "bool?"),
        12: ("initiatorName", "string"),
    },
    "core.ImageVolumeSource": {
        1: ("reference", "string?"), 2: ("pullPolicy", "string?"),
    },
    "core.KeyToPath": {
        1: ("key", "string"), 2: ("path", "string"), 3: ("mode", "int32"),
    },
    "core.Lifecycle": {
        1: ("postStart", "core.LifecycleHandler"), 2: ("preStop", "core.LifecycleHandler"),
    },
    "core.LifecycleHandler": {
        1: ("exec", "core.ExecAction"), 2: ("httpGet", "core.HTTPGetAction"),
        3: ("tcpSocket", "core.TCPSocketAction"), 4: ("sleep", "core.SleepAction"),
    },
    "core.LinuxContainerUser": {
        1: ("uid", "int64"), 2: ("gid", "int64"), 3: ("supplementalGroups", "[]int64"),
    },
    "core.LoadBalancerIngress": {
        1: ("ip", "string?"), 2: ("hostname", "string?"), 3: ("ipMode", "string"),
        4: ("ports", "[]core.PortStatus"),
    },
    "core.LoadBalancerStatus": {
        1: ("ingress", "[]core.LoadBalancerIngress"),
    },
    "core.LocalObjectReference": {
        1: ("name", "string?"),
    },
    "core.NFSVolumeSource": {
        1: ("server", "string"), 2: ("path", "string"), 3: ("readOnly", "bool?"),
    },
    "core.Namespace": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "core.NamespaceSpec"),
        3: ("status", "core.NamespaceStatus"),
    },
    "core.NamespaceCondition": {
        1: ("type", "string"), 2: ("status", "string"), 4: ("lastTransitionTime", "meta.Time"),
        5: ("reason", "string?"), 6: ("message", "string?"),
    },
    "core.NamespaceSpec": {
        1: ("finalizers", "[]string"),
    },
    "core.NamespaceStatus": {
        1: ("phase", "string?"), 2: ("conditions", "[]core.NamespaceCondition"),
    },
    "core.Node": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "core.NodeSpec"),
        3: ("status", "core.NodeStatus"),
    },
    "core.NodeAddress": {
        1: ("type", "string"), 2: ("address", "string"),
    },
    "core.NodeAffinity": {
        1: ("requiredDuringSchedulingIgnoredDuringExecution", "core.NodeSelector"),
        2: ("preferredDuringSchedulingIgnoredDuringExecution", "[]core.PreferredSchedulingTerm"),
    },
    "core.NodeCondition": {
        1: ("type", "string"), 2: ("status", "string"), 3: ("lastHeartbeatTime", "meta.Time"),
        4: ("lastTransitionTime", "meta.Time"), 5: ("reason", "string?"),
        6: ("message", "string?"),
    },
    "core.NodeConfigSource": {
        2: ("configMap", "core.ConfigMapNodeConfigSource"),
    },
    "core.NodeConfigStatus": {
        1: ("assigned", "core.NodeConfigSource"), 2: ("active", "core.NodeConfigSource"),
        3: ("lastKnownGood", "core.NodeConfigSource"), 4: ("error", "string?"),
    },
    "core.NodeDaemonEndpoints": {
        1: ("kubeletEndpoint", "core.DaemonEndpoint"),
    },
    "core.NodeFeatures": {
        1: ("supplementalGroupsPolicy", "bool"),
    },
    "core.NodeRuntimeHandler": {
        1: ("name", "string"), 2: ("features", "core.NodeRuntimeHandlerFeatures"),
    },
    "core.NodeRuntimeHandlerFeatures": {
        1: ("recursiveReadOnlyMounts", "bool"), 2: ("userNamespaces", "bool"),
    },
    "core.NodeSelector": {
        1: ("nodeSelectorTerms", "[]core.NodeSelectorTerm"),
    },
    "core.NodeSelectorRequirement": {
        1: ("key", "string"), 2: ("operator", "string"), 3: ("values", "[]string"),
    },
    "core.NodeSelectorTerm": {
        1: ("matchExpressions", "[]core.NodeSelectorRequirement"),
        2: ("matchFields", "[]core.NodeSelectorRequirement"),
    },
    "core.NodeSpec": {
        1: ("podCIDR", "string?"), 2: ("externalID", "string?"), 3: ("providerID", "string?"),
        4: ("unschedulable", "bool?"), 5: ("taints", "[]core.Taint"),
        6: ("configSource", "core.NodeConfigSource"), 7: ("podCIDRs", "[]string"),
    },
    "core.NodeStatus": {
        1: ("capacity", "map[string]resource.Quantity"),
        2: ("allocatable", "map[string]resource.Quantity"), 3: ("phase", "string?"),
        4: ("conditions", "[]core.NodeCondition"), 5: ("addresses", "[]core.NodeAddress"),
        6: ("daemonEndpoints", "core.NodeDaemonEndpoints"), 7: ("nodeInfo", "core.NodeSystemInfo"),
        8: ("images", "[]core.ContainerImage"), 9: ("volumesInUse", "[]string"),
        10: ("volumesAttached", "[]core.AttachedVolume"), 11: ("config", "core.NodeConfigStatus"),
        12: ("runtimeHandlers", "[]core.NodeRuntimeHandler"),
        13: ("features", "core.NodeFeatures"),
    },
    "core.NodeSystemInfo": {
        1: ("machineID", "string"), 2: ("systemUUID", "string"), 3: ("bootID", "string"),
        4: ("kernelVersion", "string"), 5: ("osImage", "string"),
        6: ("containerRuntimeVersion", "string"), 7: ("kubeletVersion", "string"),
        8: ("kubeProxyVersion", "string"), 9: ("operatingSystem", "string"),
        10: ("architecture", "string"),
    },
    "core.ObjectFieldSelector": {
        1: ("apiVersion", "string?"), 2: ("fieldPath", "string"),
    },
    "core.ObjectReference": {
        1: ("kind", "string?"), 2: ("namespace", "string?"), 3: ("name", "string?"),
        4: ("uid", "string?"), 5: ("apiVersion", "string?"), 6: ("resourceVersion", "string?"),
        7: ("fieldPath", "string?"),
    },
    "core.PersistentVolumeClaimSpec": {
        1: ("accessModes", "[]string"), 2: ("resources", "core.VolumeResourceRequirements"),
        3: ("volumeName", "string?"), 4: ("selector", "meta.LabelSelector"),
        5: ("storageClassName", "string"), 6: ("volumeMode", "string"),
        7: ("dataSource", "core.TypedLocalObjectReference"),
        8: ("dataSourceRef", "core.TypedObjectReference"),
        9: ("volumeAttributesClassName", "string"),
    },
    "core.PersistentVolumeClaimTemplate": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "core.PersistentVolumeClaimSpec"),
    },
    "core.PersistentVolumeClaimVolumeSource": {
        1: ("claimName", "string"), 2: ("readOnly", "bool?"),
    },
    "core.PhotonPersistentDiskVolumeSource": {
        1: ("pdID", "string"), 2: ("fsType", "string?"),
    },
    "core.Pod": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "core.PodSpec"),
        3: ("status", "core.PodStatus"),
    },
    "core.PodAffinity": {
        1: ("requiredDuringSchedulingIgnoredDuringExecution", "[]core.PodAffinityTerm"),
        2: ("preferredDuringSchedulingIgnoredDuringExecution", "[]core.WeightedPodAffinityTerm"),
    },
    "core.PodAffinityTerm": {
        1: ("labelSelector", "meta.LabelSelector"), 2: ("namespaces", "[]string"),
        3: ("topologyKey", "string"), 4: ("namespaceSelector", "meta.LabelSelector"),
        5: ("matchLabelKeys", "[]string"), 6: ("mismatchLabelKeys", "[]string"),
    },
    "core.PodAntiAffinity": {
        1: ("requiredDuringSchedulingIgnoredDuringExecution", "[]core.PodAffinityTerm"),
        2: ("preferredDuringSchedulingIgnoredDuringExecution", "[]core.WeightedPodAffinityTerm"),
    },
    "core.PodCondition": {
        1: ("type", "string"), 2: ("status", "string"), 3: ("lastProbeTime", "meta.Time"),
        4: ("lastTransitionTime", "meta.Time"), 5: ("reason", "string?"),
        6: ("message", "string?"),
    },
    "core.PodDNSConfig": {
        1: ("nameservers", "[]string"), 2: ("searches", "[]string"),
        3: ("options", "[]core.PodDNSConfigOption"),
    },
    "core.PodDNSConfigOption": {
        1: ("name", "string?"), 2: ("value", "string"),
    },
    "core.PodIP": {
        1: ("ip", "string"),
    },
    "core.PodOS": {
        1: ("name", "string"),
    },
    "core.PodReadinessGate": {
        1: ("conditionType", "string"),
    },
    "core.PodResourceClaim": {
        1: ("name", "string"), 3: ("resourceClaimName", "string"),
        4: ("resourceClaimTemplateName", "string"),
    },
    "core.PodResourceClaimStatus": {
        1: ("name", "string"), 2: ("resourceClaimName", "string"),
    },
    "core.PodSchedulingGate": {
        1: ("name", "string"),
    },
    "core.PodSecurityContext": {
        1: ("seLinuxOptions", "core.SELinuxOptions"), 2: ("runAsUser", "int64"),
        3: ("runAsNonRoot", "bool"), 4: ("supplementalGroups", "[]int64"), 5: ("fsGroup", "int64"),
        6: ("runAsGroup", "int64"), 7: ("sysctls", "[]core.Sysctl"),
        8: ("windowsOptions", "core.WindowsSecurityContextOptions"),
        9: ("fsGroupChangePolicy", "string"), 10: ("seccompProfile", "core.SeccompProfile"),
        11: ("appArmorProfile", "core.AppArmorProfile"),
        12: ("supplementalGroupsPolicy", "string"), 13: ("seLinuxChangePolicy", "string"),
    },
    "core.PodSpec": {
        1: ("volumes", "[]core.Volume"), 2: ("containers", "[]core.Container"),
        3: ("restartPolicy", "string?"), 4: ("terminationGracePeriodSeconds", "int64"),
        5: ("activeDeadlineSeconds", "int64"), 6: ("dnsPolicy", "string?"),
        7: ("nodeSelector", "map[string]string"), 8: ("serviceAccountName", "string?"),
        9: ("serviceAccount", "string?"), 10: ("nodeName", "string?"),
        11: ("hostNetwork", "bool?"), 12: ("hostPID", "bool?"), 13: ("hostIPC", "bool?"),
        14: ("securityContext", "core.PodSecurityContext"),
        15: ("imagePullSecrets", "[]core.LocalObjectReference"), 16: ("hostname", "string?"),
        17: ("subdomain", "string?"), 18: ("affinity", "core.Affinity"),
        19: ("schedulerName", "string?"), 20: ("initContainers", "[]core.Container"),
        21: ("automountServiceAccountToken", "bool"), 22: ("tolerations", "[]core.Toleration"),
        23: ("hostAliases", "[]core.HostAlias"), 24: ("priorityClassName", "string?"),
        25: ("priority", "int32"), 26: ("dnsConfig", "core.PodDNSConfig"),
        27: ("shareProcessNamespace", "bool"), 28: ("readinessGates", "[]core.PodReadinessGate"),
        29: ("runtimeClassName", "string"), 30: ("enableServiceLinks", "bool"),
        31: ("preemptionPolicy", "string"), 32: ("overhead", "map[string]resource.Quantity"),
        33: ("topologySpreadConstraints", "[]core.TopologySpreadConstraint"),
        34: ("ephemeralContainers", "[]core.EphemeralContainer"),
        35: ("setHostnameAsFQDN", "bool"), 36: ("os", "core.PodOS"), 37: ("hostUsers", "bool"),
        38: ("schedulingGates", "[]core.PodSchedulingGate"),
        39: ("resourceClaims", "[]core.PodResourceClaim"),
        40: ("resources", "core.ResourceRequirements"),
    },
    "core.PodStatus": {
        1: ("phase", "string?"), 2: ("conditions", "[]core.PodCondition"),
        3: ("message", "string?"), 4: ("reason", "string?"), 5: ("hostIP", "string?"),
        6: ("podIP", "string?"), 7: ("startTime", "meta.Time"),
        8: ("containerStatuses", "[]core.ContainerStatus"), 9: ("qosClass", "string?"),
        10: ("initContainerStatuses", "[]core.ContainerStatus"),
        11: ("nominatedNodeName", "string?"), 12: ("podIPs", "[]core.PodIP"),
        13: ("ephemeralContainerStatuses", "[]core.ContainerStatus"), 14: ("resize", "string?"),
        15: ("resourceClaimStatuses", "[]core.PodResourceClaimStatus"),
        16: ("hostIPs", "[]core.HostIP"),
    },
    "core.PodTemplateSpec": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "core.PodSpec"),
    },
    "core.PortStatus": {
        1: ("port", "int32"), 2: ("protocol", "string"), 3: ("error", "string"),
    },
    "core.PortworxVolumeSource": {
        1: ("volumeID", "string"), 2: ("fsType", "string?"), 3: ("readOnly", "bool?"),
    },
    "core.PreferredSchedulingTerm": {
        1: ("weight", "int32"), 2: ("preference", "core.NodeSelectorTerm"),
    },
    "core.Probe": {
        1: ("", "core.ProbeHandler"), 2: ("initialDelaySeconds", "int32?"),
        3: ("timeoutSeconds", "int32?"), 4: ("periodSeconds", "int32?"),
        5: ("successThreshold", "int32?"), 6: ("failureThreshold", "int32?"),
        7: ("terminationGracePeriodSeconds", "int64"),
    },
    "core.ProbeHandler": {
        1: ("exec", "core.ExecAction"), 2: ("httpGet", "core.HTTPGetAction"),
        3: ("tcpSocket", "core.TCPSocketAction"), 4: ("grpc", "core.GRPCAction"),
    },
    "core.ProjectedVolumeSource": {
        1: ("sources", "[]core.VolumeProjection"), 2: ("defaultMode", "int32"),
    },
    "core.QuobyteVolumeSource": {
        1: ("registry", "string"), 2: ("volume", "string"), 3: ("readOnly", "bool?"),
        4: ("user", "string?"), 5: ("group", "string?"), 6: ("tenant", "string?"),
    },
    "core.RBDVolumeSource": {
        1: ("monitors", "[]string"), 2: ("image", "string"), 3: ("fsType", "string?"),
        4: ("pool", "string?"), 5: ("user", "string?"), 6: ("keyring", "string?"),
        7: ("secretRef", "core.LocalObjectReference"), 8: ("readOnly", "bool?"),
    },
    "core.ResourceClaim": {
        1: ("name", "string"), 2: ("request", "string?"),
    },
    "core.ResourceFieldSelector": {
        1: ("containerName", "string?"), 2: ("resource", "string"),
        3: ("divisor", "resource.Quantity"),
    },
    "core.ResourceHealth": {
        1: ("resourceID", "string"), 2: ("health", "string?"),
    },
    "core.ResourceRequirements": {
        1: ("limits", "map[string]resource.Quantity"),
        2: ("requests", "map[string]resource.Quantity"), 3: ("claims", "[]core.ResourceClaim"),
    },
    "core.ResourceStatus": {
        1: ("name", "string"), 2: ("resources", "[]core.ResourceHealth"),
    },
    "core.SELinuxOptions": {
        1: ("user", "string?"), 2: ("role", "string?"), 3: ("type", "string?"),
        4: ("level", "string?"),
    },
    "core.ScaleIOVolumeSource": {
        1: ("gateway", "string"), 2: ("system", "string"),
        3: ("secretRef", "core.LocalObjectReference"), 4: ("sslEnabled", "bool?"),
        5: ("protectionDomain", "string?"), 6: ("storagePool", "string?"),
        7: ("storageMode", "string?"), 8: ("volumeName", "string?"), 9: ("fsType", "string?"),
        10: ("readOnly", "bool?"),
    },
    "core.SeccompProfile": {
        1: ("type", "string"), 2: ("localhostProfile", "string"),
    },
    "core.Secret": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("data", "map[string]bytes"),
        3: ("type", "string?"), 4: ("stringData", "map[string]string"), 5: ("immutable", "bool"),
    },
    "core.SecretEnvSource": {
        1: ("", "core.LocalObjectReference"), 2: ("optional", "bool"),
    },
    "core.SecretKeySelector": {
        1: ("", "core.LocalObjectReference"), 2: ("key", "string"), 3: ("optional", "bool"),
    },
    "core.SecretProjection": {
        1: ("", "core.LocalObjectReference"), 2: ("items", "[]core.KeyToPath"),
        4: ("optional", "bool"),
    },
    "core.SecretVolumeSource": {
        1: ("secretName", "string?"), 2: ("items", "[]core.KeyToPath"),
        3: ("defaultMode", "int32"), 4: ("optional", "bool"),
    },
    "core.SecurityContext": {
        1: ("capabilities", "core.Capabilities"), 2: ("privileged", "bool"),
        3: ("seLinuxOptions", "core.SELinuxOptions"), 4: ("runAsUser", "int64"),
        5: ("runAsNonRoot", "bool"), 6: ("readOnlyRootFilesystem", "bool"),
        7: ("allowPrivilegeEscalation", "bool"), 8: ("runAsGroup", "int64"),
        9: ("procMount", "string"), 10: ("windowsOptions", "core.WindowsSecurityContextOptions"),
        11: ("seccompProfile", "core.SeccompProfile"),
        12: ("appArmorProfile", "core.AppArmorProfile"),
    },
    "core.Service": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "core.ServiceSpec"),
        3: ("status", "core.ServiceStatus"),
    },
    "core.ServiceAccount": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("secrets", "[]core.ObjectReference"),
        3: ("imagePullSecrets", "[]core.LocalObjectReference"),
        4: ("automountServiceAccountToken", "bool"),
    },
    "core.ServiceAccountTokenProjection": {
        1: ("audience", "string?"), 2: ("expirationSeconds", "int64"), 3: ("path", "string"),
    },
    "core.ServicePort": {
        1: ("name", "string?"), 2: ("protocol", "string?"), 3: ("port", "int32"),
        4: ("targetPort", "intstr.IntOrString"), 5: ("nodePort", "int32?"),
        6: ("appProtocol", "string"),
    },
    "core.ServiceSpec": {
        1: ("ports", "[]core.ServicePort"), 2: ("selector", "map[string]string"),
        3: ("clusterIP", "string?"), 4: ("type", "string?"), 5: ("externalIPs", "[]string"),
        7: ("sessionAffinity", "string?"), 8: ("loadBalancerIP", "string?"),
        9: ("loadBalancerSourceRanges", "[]string"), 10: ("externalName", "string?"),
        11: ("externalTrafficPolicy", "string?"), 12: ("healthCheckNodePort", "int32?"),
        13: ("publishNotReadyAddresses", "bool?"),
        14: ("sessionAffinityConfig", "core.SessionAffinityConfig"),
        17: ("ipFamilyPolicy", "string"), 18: ("clusterIPs", "[]string"),
        19: ("ipFamilies", "[]string"), 20: ("allocateLoadBalancerNodePorts", "bool"),
        21: ("loadBalancerClass", "string"), 22: ("internalTrafficPolicy", "string"),
        23: ("trafficDistribution", "string"),
    },
    "core.ServiceStatus": {
        1: ("loadBalancer", "core.LoadBalancerStatus"), 2: ("conditions", "[]meta.Condition"),
    },
    "core.SessionAffinityConfig": {
        1: ("clientIP", "core.ClientIPConfig"),
    },
    "core.SleepAction": {
        1: ("seconds", "int64"),
    },
    "core.StorageOSVolumeSource": {
        1: ("volumeName", "string?"), 2: ("volumeNamespace", "string?"), 3: ("fsType", "string?"),
        4: ("readOnly", "bool?"), 5: ("secretRef", "core.LocalObjectReference"),
    },
    "core.Sysctl": {
        1: ("name", "string"), 2: ("value", "string"),
    },
    "core.TCPSocketAction": {
        1: ("port", "intstr.IntOrString"), 2: ("host", "string?"),
    },
    "core.Taint": {
        1: ("key", "string"), 2: ("value", "string?"), 3: ("effect", "string"),
        4: ("timeAdded", "meta.Time"),
    },
    "core.Toleration": {
        1: ("key", "string?"), 2: ("operator", "string?"), 3: ("value", "string?"),
        4: ("effect", "string?"), 5: ("tolerationSeconds", "int64"),
    },
    "core.TopologySpreadConstraint": {
        1: ("maxSkew", "int32"), 2: ("topologyKey", "string"), 3: ("whenUnsatisfiable", "string"),
        4: ("labelSelector", "meta.LabelSelector"), 5: ("minDomains", "int32"),
        6: ("nodeAffinityPolicy", "string"), 7: ("nodeTaintsPolicy", "string"),
        8: ("matchLabelKeys", "[]string"),
    },
    "core.TypedLocalObjectReference": {
        1: ("apiGroup", "string"), 2: ("kind", "string"), 3: ("name", "string"),
    },
    "core.TypedObjectReference": {
        1: ("apiGroup", "string"), 2: ("kind", "string"), 3: ("name", "string"),
        4: ("namespace", "string"),
    },
    "core.Volume": {
        1: ("name", "string"), 2: ("", "core.VolumeSource"),
    },
    "core.VolumeDevice": {
        1: ("name", "string"), 2: ("devicePath", "string"),
    },
    "core.VolumeMount": {
        1: ("name", "string"), 2: ("readOnly", "bool?"), 3: ("mountPath", "string"),
        4: ("subPath", "string?"), 5: ("mountPropagation", "string"),
        6: ("subPathExpr", "string?"), 7: ("recursiveReadOnly", "string"),
    },
    "core.VolumeMountStatus": {
        1: ("name", "string"), 2: ("mountPath", "string"), 3: ("readOnly", "bool?"),
        4: ("recursiveReadOnly", "string"),
    },
    "core.VolumeProjection": {
        1: ("secret", "core.SecretProjection"), 2: ("downwardAPI", "core.DownwardAPIProjection"),
        3: ("configMap", "core.ConfigMapProjection"),
        4: ("serviceAccountToken", "core.ServiceAccountTokenProjection"),
        5: ("clusterTrustBundle", "core.ClusterTrustBundleProjection"),
    },
    "core.VolumeResourceRequirements": {
        1: ("limits", "map[string]resource.Quantity"),
        2: ("requests", "map[string]resource.Quantity"),
    },
    "core.VolumeSource": {
        1: ("hostPath", "core.HostPathVolumeSource"), 2: ("emptyDir", "core.EmptyDirVolumeSource"),
        3: ("gcePersistentDisk", "core.GCEPersistentDiskVolumeSource"),
        4: ("awsElasticBlockStore", "core.AWSElasticBlockStoreVolumeSource"),
        5: ("gitRepo", "core.GitRepoVolumeSource"), 6: ("secret", "core.SecretVolumeSource"),
        7: ("nfs", "core.NFSVolumeSource"), 8: ("iscsi", "core.ISCSIVolumeSource"),
        9: ("glusterfs", "core.GlusterfsVolumeSource"),
        10: ("persistentVolumeClaim", "core.PersistentVolumeClaimVolumeSource"),
        11: ("rbd", "core.RBDVolumeSource"), 12: ("flexVolume", "core.FlexVolumeSource"),
        13: ("cinder", "core.CinderVolumeSource"), 14: ("cephfs", "core.CephFSVolumeSource"),
        15: ("flocker", "core.FlockerVolumeSource"),
        16: ("downwardAPI", "core.DownwardAPIVolumeSource"), 17: ("fc", "core.FCVolumeSource"),
        18: ("azureFile", "core.AzureFileVolumeSource"),
        19: ("configMap", "core.ConfigMapVolumeSource"),
        20: ("vsphereVolume", "core.VsphereVirtualDiskVolumeSource"),
        21: ("quobyte", "core.QuobyteVolumeSource"),
        22: ("azureDisk", "core.AzureDiskVolumeSource"),
        23: ("photonPersistentDisk", "core.PhotonPersistentDiskVolumeSource"),
        24: ("portworxVolume", "core.PortworxVolumeSource"),
        25: ("scaleIO", "core.ScaleIOVolumeSource"),
        26: ("projected", "core.ProjectedVolumeSource"),
        27: ("storageos", "core.StorageOSVolumeSource"), 28: ("csi", "core.CSIVolumeSource"),
        29: ("ephemeral", "core.EphemeralVolumeSource"), 30: ("image", "core.ImageVolumeSource"),
    },
    "core.VsphereVirtualDiskVolumeSource": {
        1: ("volumePath", "string"), 2: ("fsType", "string?"), 3: ("storagePolicyName", "string?"),
        4: ("storagePolicyID", "string?"),
    },
    "core.WeightedPodAffinityTerm": {
        1: ("weight", "int32"), 2: ("podAffinityTerm", "core.PodAffinityTerm"),
    },
    "core.WindowsSecurityContextOptions": {
        1: ("gmsaCredentialSpecName", "string"), 2: ("gmsaCredentialSpec", "string"),
        3: ("runAsUserName", "string"), 4: ("hostProcess", "bool"),
    },
    "discovery.Endpoint": {
        1: ("addresses", "[]string"), 2: ("conditions", "discovery.EndpointConditions"),
        3: ("hostname", "string"), 4: ("targetRef", "core.ObjectReference"),
        5: ("deprecatedTopology", "map[string]string"), 6: ("nodeName", "string"),
        7: ("zone", "string"), 8: ("hints", "discovery.EndpointHints"),
    },
    "discovery.EndpointConditions": {
        1: ("ready", "bool"), 2: ("serving", "bool"), 3: ("terminating", "bool"),
    },
    "discovery.EndpointHints": {
        1: ("forZones", "[]discovery.ForZone"),
    },
    "discovery.EndpointPort": {
        1: ("name", "string"), 2: ("protocol", "string"), 3: ("port", "int32"),
        4: ("appProtocol", "string"),
    },
    "discovery.EndpointSlice": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("endpoints", "[]discovery.Endpoint"),
        3: ("ports", "[]discovery.EndpointPort"), 4: ("addressType", "string"),
    },
    "discovery.ForZone": {
        1: ("name", "string"),
    },
    "meta.Condition": {
        1: ("type", "string"), 2: ("status", "string"), 3: ("observedGeneration", "int64?"),
        4: ("lastTransitionTime", "meta.Time"), 5: ("reason", "string"), 6: ("message", "string"),
    },
    "meta.DeleteOptions": {
        1: ("gracePeriodSeconds", "int64"), 2: ("preconditions", "meta.Preconditions"),
        3: ("orphanDependents", "bool"), 4: ("propagationPolicy", "string"),
        5: ("dryRun", "[]string"), 6: ("ignoreStoreReadErrorWithClusterBreakingPotential", "bool"),
    },
    "meta.LabelSelector": {
        1: ("matchLabels", "map[string]string"),
        2: ("matchExpressions", "[]meta.LabelSelectorRequirement"),
    },
    "meta.LabelSelectorRequirement": {
        1: ("key", "string"), 2: ("operator", "string"), 3: ("values", "[]string"),
    },
    "meta.ManagedFieldsEntry": {
        1: ("manager", "string?"), 2: ("operation", "string?"), 3: ("apiVersion", "string?"),
        4: ("time", "meta.Time"), 6: ("fieldsType", "string?"), 7: ("fieldsV1", "meta.FieldsV1"),
        8: ("subresource", "string?"),
    },
    "meta.ObjectMeta": {
        1: ("name", "string?"), 2: ("generateName", "string?"), 3: ("namespace", "string?"),
        4: ("selfLink", "string?"), 5: ("uid", "string?"), 6: ("resourceVersion", "string?"),
        7: ("generation", "int64?"), 8: ("creationTimestamp", "meta.Time"),
        9: ("deletionTimestamp", "meta.Time"), 10: ("deletionGracePeriodSeconds", "int64"),
        11: ("labels", "map[string]string"), 12: ("annotations", "map[string]string"),
        13: ("ownerReferences", "[]meta.OwnerReference"), 14: ("finalizers", "[]string"),
        17: ("managedFields", "[]meta.ManagedFieldsEntry"),
    },
    "meta.OwnerReference": {
        1: ("kind", "string"), 3: ("name", "string"), 4: ("uid", "string"),
        5: ("apiVersion", "string"), 6: ("controller", "bool"), 7: ("blockOwnerDeletion", "bool"),
    },
    "meta.Preconditions": {
        1: ("uid", "string"), 2: ("resourceVersion", "string"),
    },
    "policy.Eviction": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("deleteOptions", "meta.DeleteOptions"),
    },
    # RBAC (kubectl create role|clusterrole|rolebinding|clusterrolebinding send these).
    "rbac.PolicyRule": {
        1: ("verbs", "[]string"), 2: ("apiGroups", "[]string"), 3: ("resources", "[]string"),
        4: ("resourceNames", "[]string"), 5: ("nonResourceURLs", "[]string"),
    },
    "rbac.Role": {1: ("metadata", "meta.ObjectMeta"), 2: ("rules", "[]rbac.PolicyRule")},
    "rbac.AggregationRule": {1: ("clusterRoleSelectors", "[]meta.LabelSelector")},
    "rbac.ClusterRole": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("rules", "[]rbac.PolicyRule"),
        3: ("aggregationRule", "rbac.AggregationRule"),
    },
    "rbac.Subject": {
        1: ("kind", "string"), 2: ("apiGroup", "string?"), 3: ("name", "string"),
        4: ("namespace", "string?"),
    },
    "rbac.RoleRef": {1: ("apiGroup", "string"), 2: ("kind", "string"), 3: ("name", "string")},
    "rbac.RoleBinding": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("subjects", "[]rbac.Subject"),
        3: ("roleRef", "rbac.RoleRef"),
    },
    # The reviews (kubectl auth can-i / whoami send these); status is the server's to fill.
    "authentication.TokenReview": {
        1: ("metadata", "meta.ObjectMeta"), 2: ("spec", "authentication.TokenReviewSpec"),
    },
    "authentication.TokenReviewSpec": {1: ("token", "string?"), 2: ("audiences", "[]string")},
    "authentication.SelfSubjectReview": {1: ("metadata", "meta.ObjectMeta")},
    "authorization.ResourceAttributes": {
        1: ("namespace", "string?"), 2: ("verb", "string?"), 3: ("group", "string?"),
        4: ("version", "string?"), 5: ("resource", "string?"), 6: ("subresource", "string?"),
        7: ("name", "string?"),
    },
    "authorization.NonResourceAttributes": {1: ("path", "string?"), 2: ("verb", "string?")},
    "authorization.SubjectAccessReview": {
        1: ("metadata", "meta.ObjectMeta"),
        2: ("spec", "authorization.SubjectAccessReviewSpec"),
    },
    "authorization.SubjectAccessReviewSpec": {
        1: ("resourceAttributes", "authorization.ResourceAttributes"),
        2: ("nonResourceAttributes", "authorization.NonResourceAttributes"),
        3: ("user", "string?"), 4: ("groups", "[]string"), 6: ("uid", "string?"),
    },
    "authorization.SelfSubjectAccessReview": {
        1: ("metadata", "meta.ObjectMeta"),
        2: ("spec", "authorization.SelfSubjectAccessReviewSpec"),
    },
    "authorization.SelfSubjectAccessReviewSpec": {
        1: ("resourceAttributes", "authorization.ResourceAttributes"),
        2: ("nonResourceAttributes", "authorization.NonResourceAttributes"),
    },
    "authorization.SelfSubjectRulesReview": {
        1: ("metadata", "meta.ObjectMeta"),
        2: ("spec", "authorization.SelfSubjectRulesReviewSpec"),
    },
    "authorization.SelfSubjectRulesReviewSpec": {1: ("namespace", "string?")},
}

_COMPILED: dict[str, dict[int, _Field]] = {
    name: {number: _compile(spec, json_name) for number, (json_name, spec) in fields.items()}
    for name, fields in SCHEMA.items()
}
