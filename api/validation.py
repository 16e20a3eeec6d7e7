"""Validation: the checks upstream's apiserver runs before it stores an object.

`validate(plural, obj, old=None)` returns a list of `details.causes` entries
(`{"reason", "message", "field"}`) with upstream's field paths, reasons and messages
(`pkg/apis/core/validation`, `pkg/apis/apps/validation`, `pkg/apis/batch/validation`,
apimachinery's `util/validation`). It runs after defaulting. An empty list means valid.

Upstream decodes JSON into Go structs first, so a wrong JSON type is a 400 before validation
ever runs. kubelite keeps objects as plain dicts, so this module also owns that check: a
field of the wrong type becomes a `FieldValueInvalid` cause ("must be a list") and the checks
below it are skipped. Nothing here raises, whatever shape the input has.

On update the registry is expected to have done upstream's `BeforeUpdate` work first (copy
uid, creationTimestamp, deletionTimestamp, generation from the stored object); the update
checks here are the ones upstream's `Validate*Update` functions add on top.
"""

from __future__ import annotations

import base64
import binascii
import copy
import ipaddress
import json
import re
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

from api.errors import Cause, field_cause
from api.resources import CATALOGUE
from api.selectors import label_selector_object_matches

Obj = dict[str, Any]
Errs = list[Cause]


# ============================================================================================
# Causes, in upstream's wording (apimachinery util/validation/field).
# ============================================================================================

def _render(value: Any) -> str:
    """A bad value as upstream prints it: strings quoted, scalars bare, the rest as JSON."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        if isinstance(value, (int, float)):
            return str(value)
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                          default=str)
    except Exception:  # noqa: BLE001 - huge ints, odd keys, absurd depth: never crash on input
        return "<unprintable value>"
    # Keep messages readable when someone sends a megabyte in the wrong place.
    return text if len(text) <= 1024 else text[:1021] + "..."


def _invalid(errs: Errs, path: str, value: Any, detail: str = "") -> None:
    message = f"Invalid value: {_render(value)}"
    errs.append(field_cause(path, f"{message}: {detail}" if detail else message))


def _required(errs: Errs, path: str, detail: str = "") -> None:
    message = f"Required value: {detail}" if detail else "Required value"
    errs.append(field_cause(path, message, "FieldValueRequired"))


def _forbidden(errs: Errs, path: str, detail: str) -> None:
    errs.append(field_cause(path, f"Forbidden: {detail}", "FieldValueForbidden"))


def _not_supported(errs: Errs, path: str, value: Any, supported: tuple[str, ...]) -> None:
    quoted = ", ".join(json.dumps(s) for s in supported)
    errs.append(field_cause(path, f"Unsupported value: {_render(value)}: supported values: "
                                  f"{quoted}", "FieldValueNotSupported"))


def _duplicate(errs: Errs, path: str, value: Any) -> None:
    errs.append(field_cause(path, f"Duplicate value: {_render(value)}", "FieldValueDuplicate"))


def _not_found(errs: Errs, path: str, value: Any) -> None:
    errs.append(field_cause(path, f"Not found: {_render(value)}", "FieldValueNotFound"))


def _too_long(errs: Errs, path: str, limit: int) -> None:
    errs.append(field_cause(path, f"Too long: may not be more than {limit} bytes",
                            "FieldValueTooLong"))


def _too_many(errs: Errs, path: str, actual: int, limit: int) -> None:
    errs.append(field_cause(path, f"Too many: {actual}: must have at most {limit} items",
                            "FieldValueTooMany"))


def _immutable(errs: Errs, path: str, new: Any, old: Any) -> None:
    if new != old:
        _invalid(errs, path, new, "field is immutable")


# ============================================================================================
# Paths and type-checked access.
# ============================================================================================

def _c(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _i(path: str, index: int) -> str:
    return f"{path}[{index}]"


def _k(path: str, key: str) -> str:
    return f"{path}[{key}]"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


_TYPE_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "object": (lambda v: isinstance(v, dict), "must be an object"),
    "list": (lambda v: isinstance(v, list), "must be a list"),
    "string": (lambda v: isinstance(v, str), "must be a string"),
    "integer": (lambda v: type(v) is int, "must be an integer"),
    "boolean": (lambda v: isinstance(v, bool), "must be a boolean"),
}

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


def _typed(errs: Errs, value: Any, path: str, kind: str) -> Any:
    """value if it has the JSON type `kind`; None (after a cause) when it has another."""
    if value is None:
        return None
    check, message = _TYPE_CHECKS[kind]
    if check(value):
        return value
    _invalid(errs, path, _json_type(value), message)
    return None


def _field(parent: Any, key: str) -> Any:
    return parent.get(key) if isinstance(parent, dict) else None


def _as_dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _absent(parent: Any, key: str) -> bool:
    """Unset as Go sees it: missing, null or empty (a wrong type is present, not absent)."""
    value = _field(parent, key)
    return value is None or (isinstance(value, (str, list, dict)) and not value)


def _obj(errs: Errs, parent: Any, key: str, path: str) -> Obj | None:
    return _typed(errs, _field(parent, key), _c(path, key), "object")


def _list(errs: Errs, parent: Any, key: str, path: str) -> list[Any] | None:
    return _typed(errs, _field(parent, key), _c(path, key), "list")


def _str(errs: Errs, parent: Any, key: str, path: str) -> str | None:
    return _typed(errs, _field(parent, key), _c(path, key), "string")


def _bool(errs: Errs, parent: Any, key: str, path: str) -> bool | None:
    return _typed(errs, _field(parent, key), _c(path, key), "boolean")


def _int(errs: Errs, parent: Any, key: str, path: str, wide: bool = False) -> int | None:
    """An int32 field (int64 when `wide`), as the Go struct would accept it."""
    value = _typed(errs, _field(parent, key), _c(path, key), "integer")
    if value is None:
        return None
    low, high = _INT64 if wide else _INT32
    if not low <= value <= high:
        _invalid(errs, _c(path, key), value, f"must be a {64 if wide else 32}-bit integer")
        return None
    return value


def _int_or_str(errs: Errs, parent: Any, key: str, path: str) -> int | str | None:
    value = _field(parent, key)
    if value is None or isinstance(value, str) or (type(value) is int and
                                                   _INT32[0] <= value <= _INT32[1]):
        return value
    _invalid(errs, _c(path, key), _json_type(value), "must be an integer or a string")
    return None


def _str_map(errs: Errs, parent: Any, key: str, path: str) -> dict[str, str] | None:
    """A map[string]string field; entries with non-string values are reported and dropped."""
    raw = _obj(errs, parent, key, path)
    if raw is None:
        return None
    out: dict[str, str] = {}
    for k, v in raw.items():
        if isinstance(v, str):
            out[str(k)] = v
        else:  # null too: stored as-is it would reach every client as a non-string
            _invalid(errs, _k(_c(path, key), str(k)), _json_type(v), "must be a string")
    return out


def _items(errs: Errs, items: list[Any] | None, path: str) -> Iterator[tuple[int, str, Obj]]:
    """(index, path, item) for the object items of a list; other items are reported."""
    for index, item in enumerate(items or ()):
        item_path = _i(path, index)
        if isinstance(item, dict):
            yield index, item_path, item
        else:
            _invalid(errs, item_path, _json_type(item), "must be an object")


def _strings(errs: Errs, items: list[Any] | None, path: str) -> Iterator[tuple[int, str, str]]:
    for index, item in enumerate(items or ()):
        item_path = _i(path, index)
        if isinstance(item, str):
            yield index, item_path, item
        else:
            _invalid(errs, item_path, _json_type(item), "must be a string")


# ============================================================================================
# Formats (apimachinery util/validation), each returning upstream's messages.
# ============================================================================================

def _regex_error(message: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{message} (regex used for validation is '{fmt}')"
    # Upstream's builder leaves ",  or " between examples; kept so messages match byte for byte.
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len(limit: int) -> str:
    return f"must be no more than {limit} characters"


_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_FMT = rf"{_DNS1123_LABEL_FMT}(\.{_DNS1123_LABEL_FMT})*"
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_RE = re.compile(_DNS1035_LABEL_FMT)
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_RE = re.compile(_QUALIFIED_NAME_FMT)
_LABEL_VALUE_FMT = rf"({_QUALIFIED_NAME_FMT})?"
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIG_KEY_RE = re.compile(_CONFIG_KEY_FMT)
_ENV_VAR_FMT = "[-._a-zA-Z][-._a-zA-Z0-9]*"
_ENV_VAR_RE = re.compile(_ENV_VAR_FMT)
_PERCENT_RE = re.compile("[0-9]+%")
_TIMESTAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")

_DNS1123_LABEL_MSG = _regex_error(
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character",
    _DNS1123_LABEL_FMT, "my-name", "123-abc")
_DNS1123_SUBDOMAIN_MSG = _regex_error(
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character",
    _DNS1123_SUBDOMAIN_FMT, "example.com")
_DNS1035_LABEL_MSG = _regex_error(
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character",
    _DNS1035_LABEL_FMT, "my-name", "abc-123")
_QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character")
_LABEL_VALUE_MSG = _regex_error(
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character",
    _LABEL_VALUE_FMT, "MyValue", "my_value", "12345")
_CONFIG_KEY_MSG = _regex_error(
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
    _CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name")
_ENV_VAR_MSG = _regex_error(
    "a valid environment variable name must consist of alphabetic characters, digits, '_', "
    "'-', or '.', and must not start with a digit",
    _ENV_VAR_FMT, "my.env-name", "MY_ENV.NAME", "MyEnvName1")
_PORT_RANGE_MSG = "must be between 1 and 65535, inclusive"
_NEGATIVE_MSG = "must be greater than or equal to 0"
_NOT_POSITIVE_MSG = "must be greater than 0"
_IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
_CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
_QUANTITY_MSG = ("quantities must match the regular expression "
                 "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")


def dns1123_label_errors(value: str) -> list[str]:
    msgs = [_max_len(63)] if len(value) > 63 else []
    if not _DNS1123_LABEL_RE.fullmatch(value):
        msgs.append(_DNS1123_LABEL_MSG)
    return msgs


def dns1123_subdomain_errors(value: str) -> list[str]:
    msgs = [_max_len(253)] if len(value) > 253 else []
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        msgs.append(_DNS1123_SUBDOMAIN_MSG)
    return msgs


def dns1035_label_errors(value: str) -> list[str]:
    msgs = [_max_len(63)] if len(value) > 63 else []
    if not _DNS1035_LABEL_RE.fullmatch(value):
        msgs.append(_DNS1035_LABEL_MSG)
    return msgs


def qualified_name_errors(value: str) -> list[str]:
    """Label keys, annotation keys, finalizers: `[prefix/]name`."""
    parts = value.split("/")
    msgs: list[str] = []
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            msgs.append("prefix part must be non-empty")
        else:
            msgs.extend(f"prefix part {m}" for m in dns1123_subdomain_errors(prefix))
    else:
        return ["a qualified name " + _regex_error(
            _QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        msgs.append("name part must be non-empty")
    elif len(name) > 63:
        msgs.append("name part " + _max_len(63))
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        msgs.append("name part " + _regex_error(
            _QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc"))
    return msgs


def label_value_errors(value: str) -> list[str]:
    msgs = [_max_len(63)] if len(value) > 63 else []
    if not _LABEL_VALUE_RE.fullmatch(value):
        msgs.append(_LABEL_VALUE_MSG)
    return msgs


def config_key_errors(value: str) -> list[str]:
    msgs = [_max_len(253)] if len(value) > 253 else []
    if not _CONFIG_KEY_RE.fullmatch(value):
        msgs.append(_CONFIG_KEY_MSG)
    if value == ".":
        msgs.append("must not be '.'")
    elif value == "..":
        msgs.append("must not be '..'")
    elif value.startswith(".."):
        msgs.append("must not start with '..'")
    return msgs


def env_var_name_errors(value: str) -> list[str]:
    msgs = [] if _ENV_VAR_RE.fullmatch(value) else [_ENV_VAR_MSG]
    if value == ".":
        msgs.append("must not be '.'")
    elif value == "..":
        msgs.append("must not be '..'")
    elif value.startswith(".."):
        msgs.append("must not start with '..'")
    return msgs


def port_name_errors(value: str) -> list[str]:
    """IANA_SVC_NAME: the names container and service ports may have."""
    msgs = []
    if len(value) > 15:
        msgs.append("must be no more than 15 characters")
    if not re.fullmatch("[-a-z0-9]+", value):
        msgs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in value:
        msgs.append("must not contain consecutive hyphens")
    if not re.search("[a-z]", value):
        msgs.append("must contain at least one letter (a-z)")
    if value.startswith("-") or value.endswith("-"):
        msgs.append("must not begin or end with a hyphen")
    return msgs


def parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # Go's parser has no zone suffix and, like Python's, no leading zeros in IPv4.
    if "%" in value:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _ip_family(value: str) -> str | None:
    ip = parse_ip(value)
    return None if ip is None else f"IPv{ip.version}"


def cidr_errors(value: str) -> list[str]:
    address, slash, prefix = value.partition("/")
    if not slash or not prefix.isdigit() or parse_ip(address) is None:
        return [_CIDR_MSG]
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return [_CIDR_MSG]
    return []


def _non_special_ip_errors(value: str) -> list[str]:
    """Endpoint and external IPs may not point at the node itself or link-local ranges."""
    ip = parse_ip(value)
    if ip is None:
        return []
    if ip.is_unspecified:
        return [f"may not be unspecified ({value})"]
    if ip.is_loopback:
        return ["may not be in the loopback range (127.0.0.0/8, ::1/128)"]
    if ip.is_link_local:
        return ["may not be in the link-local range (169.254.0.0/16, fe80::/10)"]
    link_local_multicast = (ipaddress.ip_network("224.0.0.0/24"), ipaddress.ip_network("ff02::/16"))
    if any(ip.version == net.version and ip in net for net in link_local_multicast):
        return ["may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"]
    return []


def _check(errs: Errs, path: str, value: str, checker: Callable[[str], list[str]]) -> None:
    for message in checker(value):
        _invalid(errs, path, value, message)


def _ip(errs: Errs, path: str, value: str, *, special_ok: bool = True) -> bool:
    if parse_ip(value) is None:
        _invalid(errs, path, value, _IP_MSG)
        return False
    if not special_ok:
        _check(errs, path, value, _non_special_ip_errors)
    return True


def _nonneg(errs: Errs, path: str, value: int | None) -> None:
    if value is not None and value < 0:
        _invalid(errs, path, value, _NEGATIVE_MSG)


def _positive(errs: Errs, path: str, value: int | None) -> None:
    if value is not None and value <= 0:
        _invalid(errs, path, value, _NOT_POSITIVE_MSG)


def _enum(errs: Errs, path: str, value: str | None, supported: tuple[str, ...],
          required: bool = True) -> None:
    if not value:
        if required:
            _required(errs, path)
    elif value not in supported:
        _not_supported(errs, path, value, supported)


def _port_num(errs: Errs, path: str, value: int | None) -> None:
    if value is not None and not 1 <= value <= 65535:
        _invalid(errs, path, value, _PORT_RANGE_MSG)


def _port_num_or_name(errs: Errs, parent: Obj, key: str, path: str,
                      required: bool = True) -> None:
    port = _int_or_str(errs, parent, key, path)
    port_path = _c(path, key)
    if port is None:
        if required and _field(parent, key) is None:
            _required(errs, port_path)
    elif isinstance(port, int):
        _port_num(errs, port_path, port)
    else:
        _check(errs, port_path, port, port_name_errors)


def _relative_path(errs: Errs, path: str, value: str) -> None:
    if value.startswith("/"):
        _invalid(errs, path, value, "must be a relative path")
    if ".." in value.split("/"):
        _invalid(errs, path, value, "must not contain '..'")
    elif value.startswith(".."):
        _invalid(errs, path, value, "must not start with '..'")


def _timestamp(errs: Errs, parent: Any, key: str, path: str) -> None:
    value = _str(errs, parent, key, path)
    if value is not None and not _TIMESTAMP_RE.fullmatch(value):
        _invalid(errs, _c(path, key), value, "must be an RFC 3339 timestamp")


# ============================================================================================
# Object metadata (apimachinery ValidateObjectMeta / ValidateObjectMetaUpdate).
# ============================================================================================

_STANDARD_FINALIZERS = ("kubernetes", "orphan", "foregroundDeletion")
_TOTAL_ANNOTATION_SIZE = 256 * 1024


def _validate_labels(errs: Errs, labels: dict[str, str] | None, path: str) -> None:
    for key, value in (labels or {}).items():
        _check(errs, path, key, qualified_name_errors)
        _check(errs, path, value, label_value_errors)


def _validate_annotations(errs: Errs, annotations: dict[str, str] | None, path: str) -> None:
    total = 0
    for key, value in (annotations or {}).items():
        for message in qualified_name_errors(key.lower()):
            _invalid(errs, path, key, message)
        total += len(key.encode()) + len(value.encode())
    if total > _TOTAL_ANNOTATION_SIZE:
        _too_long(errs, path, _TOTAL_ANNOTATION_SIZE)


def _validate_finalizer_name(errs: Errs, path: str, name: str) -> None:
    _check(errs, path, name, qualified_name_errors)
    if "/" not in name and name not in _STANDARD_FINALIZERS:
        _invalid(errs, path, name, "name is neither a standard finalizer name nor is it "
                                   "fully qualified")


def _validate_owner_references(errs: Errs, refs: list[Any] | None, path: str) -> None:
    controllers: list[str] = []
    for _, ref_path, ref in _items(errs, refs, path):
        # Upstream reports these on the list's path, not on the item's.
        api_version = _str(errs, ref, "apiVersion", ref_path)
        kind = _str(errs, ref, "kind", ref_path)
        name = _str(errs, ref, "name", ref_path)
        uid = _str(errs, ref, "uid", ref_path)
        if not api_version or not api_version.rpartition("/")[2]:
            _invalid(errs, _c(path, "apiVersion"), api_version or "", "version must not be empty")
        if not kind:
            _invalid(errs, _c(path, "kind"), kind or "", "kind must not be empty")
        if not name:
            _invalid(errs, _c(path, "name"), name or "", "name must not be empty")
        if not uid:
            _invalid(errs, _c(path, "uid"), uid or "", "uid must not be empty")
        _bool(errs, ref, "blockOwnerDeletion", ref_path)
        if _bool(errs, ref, "controller", ref_path):
            controllers.append(f"{kind}/{name}")
    if len(controllers) > 1:
        _invalid(errs, path, refs, "Only one reference can have Controller set to true. Found "
                                   f"\"true\" in references for {' and '.join(controllers)}")


def _validate_meta(errs: Errs, obj: Obj, name_errors: Callable[[str], list[str]],
                   namespaced: bool | None) -> None:
    """ValidateObjectMeta. `namespaced` None skips the namespace rule (unknown kinds)."""
    meta = _obj(errs, obj, "metadata", "")
    if meta is None:
        if obj.get("metadata") is None:
            _required(errs, "metadata.name", "name or generateName is required")
            if namespaced:
                _required(errs, "metadata.namespace")
        return
    path = "metadata"
    name = _str(errs, meta, "name", path)
    generate_name = _str(errs, meta, "generateName", path)
    if generate_name:
        # A prefix may end in '-': mask it so the name rules apply to what remains.
        masked = generate_name[:-1] + "a" if generate_name.endswith("-") else generate_name
        for message in name_errors(masked):
            _invalid(errs, "metadata.generateName", generate_name, message)
    if name:
        _check(errs, "metadata.name", name, name_errors)
    elif _absent(meta, "name"):
        _required(errs, "metadata.name", "name or generateName is required")
    namespace = _str(errs, meta, "namespace", path)
    if namespaced is True:
        if namespace:
            _check(errs, "metadata.namespace", namespace, dns1123_label_errors)
        elif _absent(meta, "namespace"):
            _required(errs, "metadata.namespace")
    elif namespaced is False and namespace:
        _forbidden(errs, "metadata.namespace", "not allowed on this type")
    _validate_labels(errs, _str_map(errs, meta, "labels", path), "metadata.labels")
    _validate_annotations(errs, _str_map(errs, meta, "annotations", path), "metadata.annotations")
    _validate_owner_references(errs, _list(errs, meta, "ownerReferences", path),
                               "metadata.ownerReferences")
    finalizers = [f for _, _, f in _strings(errs, _list(errs, meta, "finalizers", path),
                                             "metadata.finalizers")]
    for finalizer in finalizers:
        _validate_finalizer_name(errs, "metadata.finalizers", finalizer)
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        _invalid(errs, "metadata.finalizers", finalizers,
                 "finalizer orphan and foregroundDeletion cannot be both set")
    for key in ("uid", "resourceVersion", "selfLink"):
        _str(errs, meta, key, path)
    _nonneg(errs, "metadata.generation", _int(errs, meta, "generation", path, wide=True))
    _nonneg(errs, "metadata.deletionGracePeriodSeconds",
            _int(errs, meta, "deletionGracePeriodSeconds", path, wide=True))
    for key in ("creationTimestamp", "deletionTimestamp"):
        _timestamp(errs, meta, key, path)
    _list(errs, meta, "managedFields", path)


def _validate_meta_update(errs: Errs, obj: Obj, old: Obj) -> None:
    meta, old_meta = _field(obj, "metadata"), _field(old, "metadata")
    if not isinstance(meta, dict) or not isinstance(old_meta, dict):
        return
    for key in ("name", "namespace"):
        _immutable(errs, f"metadata.{key}", meta.get(key), old_meta.get(key))
    # An update without a uid keeps the stored one (upstream BeforeUpdate); only a different
    # uid is an attempt to change it.
    if meta.get("uid") and old_meta.get("uid"):
        _immutable(errs, "metadata.uid", meta.get("uid"), old_meta.get("uid"))
    if old_meta.get("deletionTimestamp"):
        old_finalizers = old_meta.get("finalizers")
        new_finalizers = meta.get("finalizers")
        if isinstance(new_finalizers, list):
            known = old_finalizers if isinstance(old_finalizers, list) else []
            added = [f for f in new_finalizers if f not in known]
            if added:
                _forbidden(errs, "metadata.finalizers", "no new finalizers can be added if the "
                                                        f"object is being deleted, found new "
                                                        f"finalizers {_render(added)}")


# ============================================================================================
# Label selectors (metav1 LabelSelector).
# ============================================================================================

_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def _validate_label_selector(errs: Errs, selector: Obj, path: str) -> bool:
    """ValidateLabelSelector; True when the selector is well-formed enough to match with."""
    before = len(errs)
    _validate_labels(errs, _str_map(errs, selector, "matchLabels", path), _c(path, "matchLabels"))
    expressions_path = _c(path, "matchExpressions")
    for _, expr_path, expr in _items(errs, _list(errs, selector, "matchExpressions", path),
                                     expressions_path):
        key = _str(errs, expr, "key", expr_path)
        _check(errs, _c(expr_path, "key"), key or "", qualified_name_errors)
        operator = _str(errs, expr, "operator", expr_path)
        values = _list(errs, expr, "values", expr_path)
        values_path = _c(expr_path, "values")
        if operator in ("In", "NotIn"):
            if not values:
                _required(errs, values_path, "must be specified when `operator` is 'In' or "
                                             "'NotIn'")
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                _forbidden(errs, values_path, "may not be specified when `operator` is "
                                              "'Exists' or 'DoesNotExist'")
        else:
            _invalid(errs, _c(expr_path, "operator"), operator or "",
                     "not a valid selector operator")
        for _, value_path, value in _strings(errs, values, values_path):
            _check(errs, value_path, value, label_value_errors)
    return len(errs) == before


def _selector_empty(selector: Obj) -> bool:
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


def _selector_matches(selector: Obj, labels: dict[str, str]) -> bool:
    """Whether a selector that passed `_validate_label_selector` selects `labels`."""
    try:
        return label_selector_object_matches(selector, labels)
    except (ValueError, TypeError, AttributeError):  # not expected after validation
        return True


# ============================================================================================
# Quantities and resource lists.
# ============================================================================================

_STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
_STANDARD_RESOURCES = (
    "cpu", "memory", "ephemeral-storage", "storage", "pods", "services",
    "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
    "persistentvolumeclaims", "services.nodeports", "services.loadbalancers",
    "requests.cpu", "requests.memory", "requests.ephemeral-storage", "requests.storage",
    "limits.cpu", "limits.memory", "limits.ephemeral-storage",
)
_MAX_EXPONENT = 1000  # a Fraction of 10**(10**9) would never finish; upstream caps scale too


def _quantity(errs: Errs, value: Any, path: str) -> Fraction | None:
    """Parse a resource.Quantity (a JSON string or number); report it when invalid."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        _invalid(errs, path, _json_type(value), "must be a quantity (a string or a number)")
        return None
    try:
        text = value if isinstance(value, str) else str(value)
    except ValueError:  # an int too long to print is certainly no quantity
        _invalid(errs, path, "<number>", "quantity is too large")
        return None
    exponent = re.search(r"[eE]([-+]?\d{1,6})$", text)
    if len(text) > 128 or (exponent and abs(int(exponent.group(1))) > _MAX_EXPONENT):
        _invalid(errs, path, value, "quantity is too large")
        return None
    from api.quantity import parse_quantity  # imported late: quantity.py has its own owner

    try:
        return parse_quantity(text)
    except Exception:  # noqa: BLE001 - any parser failure is the user's bad quantity
        _invalid(errs, path, value, _QUANTITY_MSG)
        return None


def _is_native_resource(name: str) -> bool:
    prefix = name.partition("/")[0] if "/" in name else ""
    return not prefix or prefix == "kubernetes.io" or prefix.endswith(".kubernetes.io")


def _is_hugepages(name: str) -> bool:
    return name.startswith("hugepages-")


def _container_resource_name_errors(name: str) -> list[str]:
    msgs = qualified_name_errors(name)
    if msgs:
        return msgs
    if "/" not in name:
        if name not in _STANDARD_RESOURCES and not _is_hugepages(name) \
                and not name.startswith("requests.hugepages-"):
            return ["must be a standard resource type or fully qualified"]
        if name not in _STANDARD_CONTAINER_RESOURCES and not _is_hugepages(name):
            return ["must be a standard resource for containers"]
    elif not _is_native_resource(name) and (
            name.startswith("requests.") or qualified_name_errors("requests." + name)):
        return ["doesn't follow extended resource name standard"]
    return []


def _resource_list(errs: Errs, parent: Any, key: str, path: str,
                   name_errors: Callable[[str], list[str]] | None) -> dict[str, Fraction]:
    """A ResourceList: names checked, quantities parsed and non-negative."""
    raw = _obj(errs, parent, key, path)
    list_path = _c(path, key)
    out: dict[str, Fraction] = {}
    for name, value in (raw or {}).items():
        name = str(name)
        item_path = _k(list_path, name)
        if name_errors is not None:
            _check(errs, item_path, name, name_errors)
        quantity = _quantity(errs, value, item_path)
        if quantity is None:
            continue
        if quantity < 0:
            _invalid(errs, item_path, value, _NEGATIVE_MSG)
        # Extended resources are counted in whole units.
        elif name_errors is not None and not _is_native_resource(name) \
                and quantity.denominator != 1:
            _invalid(errs, item_path, value, "must be an integer")
        out[name] = quantity
    return out


def _validate_resources(errs: Errs, container: Obj, path: str) -> None:
    resources = _obj(errs, container, "resources", path)
    if resources is None:
        return
    res_path = _c(path, "resources")
    limits = _resource_list(errs, resources, "limits", res_path, _container_resource_name_errors)
    requests = _resource_list(errs, resources, "requests", res_path,
                              _container_resource_name_errors)
    raw_limits = _field(resources, "limits")
    if not isinstance(raw_limits, dict):
        raw_limits = {}
    for name, request in requests.items():
        request_path = _k(_c(res_path, "requests"), name)
        raw_request = _field(_field(resources, "requests"), name)
        limit = limits.get(name)
        overcommit = _is_native_resource(name) and not _is_hugepages(name)
        if limit is None:
            if not overcommit and name not in raw_limits:
                _required(errs, _c(res_path, "limits"),
                          "Limit must be set for non overcommitable resources")
        elif overcommit and request > limit:
            _invalid(errs, request_path, raw_request, f"must be less than or equal to {name} "
                                                      f"limit of {raw_limits.get(name)}")
        elif not overcommit and request != limit:
            _invalid(errs, request_path, raw_request, f"must be equal to {name} limit of "
                                                      f"{raw_limits.get(name)}")
    _list(errs, resources, "claims", res_path)


# ============================================================================================
# Pod specs (core validation ValidatePodSpec and friends).
# ============================================================================================

_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_PROTOCOLS = ("SCTP", "TCP", "UDP")
_TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_TOLERATION_OPERATORS = ("Equal", "Exists")
_ENV_FIELD_PATHS = (
    "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
    "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP",
    "status.podIPs",
)
_VOLUME_FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid",
                       "metadata.labels", "metadata.annotations")
_RESOURCE_FIELD_REFS = (
    "limits.cpu", "limits.memory", "limits.ephemeral-storage",
    "requests.cpu", "requests.memory", "requests.ephemeral-storage",
)
_HOST_PATH_TYPES = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File",
                    "FileOrCreate", "Socket")
_VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret",
    "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder",
    "cephfs", "flocker", "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume",
    "quobyte", "azureDisk", "photonPersistentDisk", "projected", "portworxVolume", "scaleIO",
    "storageos", "csi", "ephemeral", "image",
)
_PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
_LIFECYCLE_HANDLERS = ("exec", "httpGet", "tcpSocket", "sleep")
_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"


def _file_mode(errs: Errs, parent: Obj, key: str, path: str) -> None:
    mode = _int(errs, parent, key, path)
    if mode is not None and not 0 <= mode <= 0o777:
        _invalid(errs, _c(path, key), mode, _MODE_MSG)


def _key_to_path_items(errs: Errs, source: Obj, path: str) -> None:
    for _, item_path, item in _items(errs, _list(errs, source, "items", path), _c(path, "items")):
        key = _str(errs, item, "key", item_path)
        if not key:
            _required(errs, _c(item_path, "key"))
        target = _str(errs, item, "path", item_path)
        if not target:
            _required(errs, _c(item_path, "path"))
        else:
            _relative_path(errs, _c(item_path, "path"), target)
        _file_mode(errs, item, "mode", item_path)


def _downward_items(errs: Errs, source: Obj, path: str) -> None:
    for _, item_path, item in _items(errs, _list(errs, source, "items", path), _c(path, "items")):
        target = _str(errs, item, "path", item_path)
        if not target:
            _required(errs, _c(item_path, "path"))
        else:
            _relative_path(errs, _c(item_path, "path"), target)
        _file_mode(errs, item, "mode", item_path)
        field_ref = _obj(errs, item, "fieldRef", item_path)
        resource_ref = _obj(errs, item, "resourceFieldRef", item_path)
        if field_ref is not None and resource_ref is not None:
            _invalid(errs, item_path, "resource", "fieldRef and resourceFieldRef can not be "
                                                  "specified simultaneously")
        elif field_ref is not None:
            _object_field_selector(errs, field_ref, _c(item_path, "fieldRef"),
                                   _VOLUME_FIELD_PATHS)
        elif resource_ref is not None:
            _resource_field_selector(errs, resource_ref, _c(item_path, "resourceFieldRef"))
        else:
            _required(errs, item_path, "one of fieldRef and resourceFieldRef is required")


def _validate_volume_source(errs: Errs, kind: str, source: Obj, path: str) -> None:
    if kind == "configMap":
        if not _str(errs, source, "name", path):
            _required(errs, _c(path, "name"))
        _file_mode(errs, source, "defaultMode", path)
        _key_to_path_items(errs, source, path)
        _bool(errs, source, "optional", path)
    elif kind == "secret":
        if not _str(errs, source, "secretName", path):
            _required(errs, _c(path, "secretName"))
        _file_mode(errs, source, "defaultMode", path)
        _key_to_path_items(errs, source, path)
        _bool(errs, source, "optional", path)
    elif kind == "hostPath":
        if not _str(errs, source, "path", path):
            _required(errs, _c(path, "path"))
        host_type = _str(errs, source, "type", path)
        if host_type is not None and host_type not in _HOST_PATH_TYPES:
            _not_supported(errs, _c(path, "type"), host_type, _HOST_PATH_TYPES)
    elif kind == "emptyDir":
        _str(errs, source, "medium", path)
        if source.get("sizeLimit") is not None:
            size = _quantity(errs, source["sizeLimit"], _c(path, "sizeLimit"))
            if size is not None and size < 0:
                _invalid(errs, _c(path, "sizeLimit"), source["sizeLimit"], _NEGATIVE_MSG)
    elif kind == "persistentVolumeClaim":
        if not _str(errs, source, "claimName", path):
            _required(errs, _c(path, "claimName"))
        _bool(errs, source, "readOnly", path)
    elif kind == "nfs":
        for key in ("server", "path"):
            if not _str(errs, source, key, path):
                _required(errs, _c(path, key))
    elif kind == "downwardAPI":
        _file_mode(errs, source, "defaultMode", path)
        _downward_items(errs, source, path)
    elif kind == "projected":
        _file_mode(errs, source, "defaultMode", path)
        sources_path = _c(path, "sources")
        for _, proj_path, projection in _items(errs, _list(errs, source, "sources", path),
                                               sources_path):
            for sub in ("configMap", "secret", "downwardAPI", "serviceAccountToken",
                        "clusterTrustBundle"):
                sub_source = _obj(errs, projection, sub, proj_path)
                if sub_source is None:
                    continue
                sub_path = _c(proj_path, sub)
                if sub in ("configMap", "secret"):
                    _key_to_path_items(errs, sub_source, sub_path)
                elif sub == "downwardAPI":
                    _downward_items(errs, sub_source, sub_path)
                elif sub == "serviceAccountToken":
                    seconds = _int(errs, sub_source, "expirationSeconds", sub_path, wide=True)
                    if seconds is not None and seconds < 600:
                        _invalid(errs, _c(sub_path, "expirationSeconds"), seconds,
                                 "may not specify a duration less than 10 minutes")
                    if not _str(errs, sub_source, "path", sub_path):
                        _required(errs, _c(sub_path, "path"))


def _validate_volumes(errs: Errs, spec: Obj, path: str) -> dict[str, Obj]:
    names: dict[str, Obj] = {}
    volumes_path = _c(path, "volumes")
    for _, vol_path, volume in _items(errs, _list(errs, spec, "volumes", path), volumes_path):
        name = _str(errs, volume, "name", vol_path)
        name_path = _c(vol_path, "name")
        if not name:
            if _absent(volume, "name"):
                _required(errs, name_path)
        else:
            _check(errs, name_path, name, dns1123_label_errors)
            if name in names:
                _duplicate(errs, name_path, name)
            else:
                names[name] = volume
        sources = [s for s in _VOLUME_SOURCES if volume.get(s) is not None]
        if not sources:
            _required(errs, vol_path, "must specify a volume type")
        elif len(sources) > 1:
            _forbidden(errs, _c(vol_path, sources[1]), "may not specify more than 1 volume type")
        for kind in sources[:1]:
            source = _obj(errs, volume, kind, vol_path)
            if source is not None:
                _validate_volume_source(errs, kind, source, _c(vol_path, kind))
    return names


def _object_field_selector(errs: Errs, ref: Obj, path: str, supported: tuple[str, ...]) -> None:
    if not _str(errs, ref, "apiVersion", path):
        _required(errs, _c(path, "apiVersion"))
    field_path = _str(errs, ref, "fieldPath", path)
    fp_path = _c(path, "fieldPath")
    if not field_path:
        if _absent(ref, "fieldPath"):
            _required(errs, fp_path)
        return
    subscript = re.fullmatch(r"metadata\.(labels|annotations)\['(.*)'\]", field_path)
    if subscript:
        key = subscript.group(2)
        checker = qualified_name_errors if subscript.group(1) == "labels" else (
            lambda k: qualified_name_errors(k.lower()))
        _check(errs, fp_path, key, checker)
    elif field_path not in supported:
        _not_supported(errs, fp_path, field_path, supported)


def _resource_field_selector(errs: Errs, ref: Obj, path: str) -> None:
    resource = _str(errs, ref, "resource", path)
    if not resource:
        _required(errs, _c(path, "resource"))
    elif resource not in _RESOURCE_FIELD_REFS and not re.fullmatch(
            r"(limits|requests)\.hugepages-.+", resource):
        _not_supported(errs, _c(path, "resource"), resource, _RESOURCE_FIELD_REFS)
    _str(errs, ref, "containerName", path)
    if ref.get("divisor") is not None:
        _quantity(errs, ref["divisor"], _c(path, "divisor"))


def _validate_env(errs: Errs, container: Obj, path: str) -> None:
    env_path = _c(path, "env")
    for _, var_path, var in _items(errs, _list(errs, container, "env", path), env_path):
        name = _str(errs, var, "name", var_path)
        if not name:
            if _absent(var, "name"):
                _required(errs, _c(var_path, "name"))
        else:
            _check(errs, _c(var_path, "name"), name, env_var_name_errors)
        value = _str(errs, var, "value", var_path)
        value_from = _obj(errs, var, "valueFrom", var_path)
        if value_from is None:
            continue
        from_path = _c(var_path, "valueFrom")
        sources = [k for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
                   if value_from.get(k) is not None]
        if value:
            _invalid(errs, from_path, "", "may not be specified when `value` is not empty")
        if not sources:
            _invalid(errs, from_path, "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                          "`configMapKeyRef` or `secretKeyRef`")
            continue
        if len(sources) > 1:
            _invalid(errs, from_path, "", "may not have more than one field specified at a time")
            continue
        kind = sources[0]
        ref = _obj(errs, value_from, kind, from_path)
        if ref is None:
            continue
        ref_path = _c(from_path, kind)
        if kind == "fieldRef":
            _object_field_selector(errs, ref, ref_path, _ENV_FIELD_PATHS)
        elif kind == "resourceFieldRef":
            _resource_field_selector(errs, ref, ref_path)
        else:
            key = _str(errs, ref, "key", ref_path)
            if not key:
                _required(errs, _c(ref_path, "key"))
            else:
                _check(errs, _c(ref_path, "key"), key, config_key_errors)
            if not _str(errs, ref, "name", ref_path):
                _required(errs, _c(ref_path, "name"))
            _bool(errs, ref, "optional", ref_path)
    from_list_path = _c(path, "envFrom")
    for _, src_path, source in _items(errs, _list(errs, container, "envFrom", path),
                                      from_list_path):
        prefix = _str(errs, source, "prefix", src_path)
        if prefix:
            _check(errs, _c(src_path, "prefix"), prefix, env_var_name_errors)
        refs = [k for k in ("configMapRef", "secretRef") if source.get(k) is not None]
        if not refs:
            _invalid(errs, src_path, "", "must specify one of: `configMapRef` or `secretRef`")
        elif len(refs) > 1:
            _invalid(errs, src_path, "", "may not have more than one field specified at a time")
        else:
            ref = _obj(errs, source, refs[0], src_path)
            if ref is not None and not _str(errs, ref, "name", _c(src_path, refs[0])):
                _required(errs, _c(_c(src_path, refs[0]), "name"))


def _validate_ports(errs: Errs, container: Obj, path: str, host_network: bool) -> None:
    names: set[str] = set()
    ports_path = _c(path, "ports")
    for _, port_path, port in _items(errs, _list(errs, container, "ports", path), ports_path):
        name = _str(errs, port, "name", port_path)
        if name:
            before = len(errs)
            _check(errs, _c(port_path, "name"), name, port_name_errors)
            if len(errs) == before and name in names:
                _duplicate(errs, _c(port_path, "name"), name)
            names.add(name)
        container_port = _int(errs, port, "containerPort", port_path)
        if not container_port:
            if container_port == 0 or _absent(port, "containerPort"):
                _required(errs, _c(port_path, "containerPort"))
        else:
            _port_num(errs, _c(port_path, "containerPort"), container_port)
        host_port = _int(errs, port, "hostPort", port_path)
        if host_port:
            _port_num(errs, _c(port_path, "hostPort"), host_port)
            if host_network and container_port and host_port != container_port:
                _invalid(errs, _c(port_path, "hostPort"), host_port,
                         "must match `containerPort` when `hostNetwork` is true")
        _enum(errs, _c(port_path, "protocol"), _str(errs, port, "protocol", port_path),
              _PROTOCOLS)
        host_ip = _str(errs, port, "hostIP", port_path)
        if host_ip:
            _ip(errs, _c(port_path, "hostIP"), host_ip)


def _validate_volume_mounts(errs: Errs, container: Obj, path: str,
                            volumes: dict[str, Obj]) -> None:
    mount_paths: set[str] = set()
    mounts_path = _c(path, "volumeMounts")
    for _, mount_path, mount in _items(errs, _list(errs, container, "volumeMounts", path),
                                       mounts_path):
        name = _str(errs, mount, "name", mount_path)
        if not name:
            if _absent(mount, "name"):
                _required(errs, _c(mount_path, "name"))
        elif name not in volumes:
            _not_found(errs, _c(mount_path, "name"), name)
        target = _str(errs, mount, "mountPath", mount_path)
        if not target:
            if _absent(mount, "mountPath"):
                _required(errs, _c(mount_path, "mountPath"))
        elif target in mount_paths:
            _invalid(errs, _c(mount_path, "mountPath"), target, "must be unique")
        else:
            mount_paths.add(target)
        for key in ("subPath", "subPathExpr"):
            sub_path = _str(errs, mount, key, mount_path)
            if sub_path:
                _relative_path(errs, _c(mount_path, key), sub_path)
        if mount.get("subPath") and mount.get("subPathExpr"):
            _invalid(errs, _c(mount_path, "subPathExpr"), mount.get("subPathExpr"),
                     "subPathExpr and subPath are mutually exclusive")
        _bool(errs, mount, "readOnly", mount_path)
        _enum(errs, _c(mount_path, "mountPropagation"),
              _str(errs, mount, "mountPropagation", mount_path),
              ("Bidirectional", "HostToContainer", "None"), required=False)


def _validate_handler(errs: Errs, handler: Obj, path: str, kinds: tuple[str, ...]) -> None:
    present = [k for k in kinds if handler.get(k) is not None]
    if not present:
        _required(errs, path, "must specify a handler type")
        return
    if len(present) > 1:
        _forbidden(errs, _c(path, present[1]), "may not specify more than 1 handler type")
        return
    kind = present[0]
    action = _obj(errs, handler, kind, path)
    if action is None:
        return
    action_path = _c(path, kind)
    if kind == "exec":
        command = _list(errs, action, "command", action_path)
        if not command:
            _required(errs, _c(action_path, "command"))
        for _ in _strings(errs, command, _c(action_path, "command")):
            pass
    elif kind == "httpGet":
        _port_num_or_name(errs, action, "port", action_path)
        if not _str(errs, action, "path", action_path) and action.get("path") is not None:
            _required(errs, _c(action_path, "path"))
        scheme = _str(errs, action, "scheme", action_path)
        _enum(errs, _c(action_path, "scheme"), scheme, ("HTTP", "HTTPS"), required=False)
        _str(errs, action, "host", action_path)
        headers_path = _c(action_path, "httpHeaders")
        for _, header_path, header in _items(errs, _list(errs, action, "httpHeaders",
                                                         action_path), headers_path):
            header_name = _str(errs, header, "name", header_path)
            if not header_name:
                _required(errs, _c(header_path, "name"))
            elif not re.fullmatch(r"[-A-Za-z0-9!#$%&'*+.^_`|~]+", header_name):
                _invalid(errs, _c(header_path, "name"), header_name,
                         "a valid HTTP header must consist of alphanumeric characters, '-', "
                         "'_' or '.'")
            _str(errs, header, "value", header_path)
    elif kind == "tcpSocket":
        _port_num_or_name(errs, action, "port", action_path)
    elif kind == "grpc":
        port = _int(errs, action, "port", action_path)
        if port is None and action.get("port") is None:
            _required(errs, _c(action_path, "port"))
        _port_num(errs, _c(action_path, "port"), port)
        _str(errs, action, "service", action_path)
    elif kind == "sleep":
        _nonneg(errs, _c(action_path, "seconds"),
                _int(errs, action, "seconds", action_path, wide=True))


def _validate_probe(errs: Errs, probe: Obj, path: str, succeed_once: bool) -> None:
    _validate_handler(errs, probe, path, _PROBE_HANDLERS)
    values = {}
    for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold",
                "failureThreshold"):
        values[key] = _int(errs, probe, key, path)
        _nonneg(errs, _c(path, key), values[key])
    if succeed_once:
        threshold = values["successThreshold"]
        if threshold is not None and threshold != 1:
            _invalid(errs, _c(path, "successThreshold"), threshold, "must be 1")
    _positive(errs, _c(path, "terminationGracePeriodSeconds"),
              _int(errs, probe, "terminationGracePeriodSeconds", path, wide=True))


def _validate_container(errs: Errs, container: Obj, path: str, kind: str,
                        volumes: dict[str, Obj], names: set[str], host_network: bool) -> None:
    name = _str(errs, container, "name", path)
    name_path = _c(path, "name")
    if not name:
        if _absent(container, "name"):
            _required(errs, name_path)
    else:
        before = len(errs)
        _check(errs, name_path, name, dns1123_label_errors)
        if len(errs) == before and name in names:
            _duplicate(errs, name_path, name)
        names.add(name)
    image = _str(errs, container, "image", path)
    if not image:
        if _absent(container, "image"):
            _required(errs, _c(path, "image"))
    elif image != image.strip():
        _invalid(errs, _c(path, "image"), image, "must not have leading or trailing whitespace")
    _enum(errs, _c(path, "imagePullPolicy"), _str(errs, container, "imagePullPolicy", path),
          _PULL_POLICIES)
    _enum(errs, _c(path, "terminationMessagePolicy"),
          _str(errs, container, "terminationMessagePolicy", path), _TERMINATION_MESSAGE_POLICIES)
    for key in ("command", "args"):
        for _ in _strings(errs, _list(errs, container, key, path), _c(path, key)):
            pass
    for key in ("workingDir", "terminationMessagePath"):
        _str(errs, container, key, path)
    for key in ("stdin", "stdinOnce", "tty"):
        _bool(errs, container, key, path)
    _validate_ports(errs, container, path, host_network)
    _validate_env(errs, container, path)
    _validate_resources(errs, container, path)
    _validate_volume_mounts(errs, container, path, volumes)

    restart_policy = _str(errs, container, "restartPolicy", path)
    sidecar = kind == "initContainers" and restart_policy == "Always"
    if restart_policy:
        if kind == "initContainers":
            if restart_policy != "Always":
                _not_supported(errs, _c(path, "restartPolicy"), restart_policy, ("Always",))
        else:
            _forbidden(errs, _c(path, "restartPolicy"), "may not be set for non-init containers")
    for probe_key in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = _obj(errs, container, probe_key, path)
        if probe is None:
            continue
        probe_path = _c(path, probe_key)
        if kind == "initContainers" and not sidecar:
            _forbidden(errs, probe_path, "may not be set for init containers without "
                                         "restartPolicy=Always")
        elif kind == "ephemeralContainers":
            _forbidden(errs, probe_path, "cannot be set for an Ephemeral Container")
        else:
            _validate_probe(errs, probe, probe_path, probe_key != "readinessProbe")
    lifecycle = _obj(errs, container, "lifecycle", path)
    if lifecycle is not None:
        lifecycle_path = _c(path, "lifecycle")
        if kind == "initContainers" and not sidecar:
            _forbidden(errs, lifecycle_path, "may not be set for init containers without "
                                             "restartPolicy=Always")
        for hook in ("postStart", "preStop"):
            handler = _obj(errs, lifecycle, hook, lifecycle_path)
            if handler is not None:
                _validate_handler(errs, handler, _c(lifecycle_path, hook), _LIFECYCLE_HANDLERS)
    security = _obj(errs, container, "securityContext", path)
    if security is not None:
        _validate_security_context(errs, security, _c(path, "securityContext"))


def _validate_security_context(errs: Errs, context: Obj, path: str) -> None:
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        _nonneg(errs, _c(path, key), _int(errs, context, key, path, wide=True))
    for key in ("runAsNonRoot", "privileged", "readOnlyRootFilesystem",
                "allowPrivilegeEscalation"):
        _bool(errs, context, key, path)
    groups_path = _c(path, "supplementalGroups")
    for index, item in enumerate(_list(errs, context, "supplementalGroups", path) or ()):
        if type(item) is not int:
            _invalid(errs, _i(groups_path, index), _json_type(item), "must be an integer")
        else:
            _nonneg(errs, _i(groups_path, index), item)
    capabilities = _obj(errs, context, "capabilities", path)
    for key in ("add", "drop"):
        caps_path = _c(_c(path, "capabilities"), key)
        for _ in _strings(errs, _list(errs, capabilities, key, _c(path, "capabilities")),
                          caps_path):
            pass
    if context.get("privileged") is True and context.get("allowPrivilegeEscalation") is False:
        _invalid(errs, path, "", "cannot set `allowPrivilegeEscalation` to false and "
                                 "`privileged` to true")


def _validate_tolerations(errs: Errs, spec: Obj, path: str) -> None:
    tolerations_path = _c(path, "tolerations")
    for _, tol_path, toleration in _items(errs, _list(errs, spec, "tolerations", path),
                                          tolerations_path):
        key = _str(errs, toleration, "key", tol_path)
        if key:
            _check(errs, _c(tol_path, "key"), key, qualified_name_errors)
        operator = _str(errs, toleration, "operator", tol_path) or ""
        value = _str(errs, toleration, "value", tol_path) or ""
        if not key and operator != "Exists":
            _invalid(errs, _c(tol_path, "operator"), operator,
                     "operator must be Exists when `key` is empty, which means \"match all "
                     "values and all keys\"")
        if operator in ("Equal", ""):
            _check(errs, _c(tol_path, "value"), value, label_value_errors)
        elif operator == "Exists":
            if value:
                _invalid(errs, _c(tol_path, "operator"), toleration,
                         "value must be empty when `operator` is 'Exists'")
        else:
            _not_supported(errs, _c(tol_path, "operator"), operator, _TOLERATION_OPERATORS)
        effect = _str(errs, toleration, "effect", tol_path)
        seconds = _int(errs, toleration, "tolerationSeconds", tol_path, wide=True)
        if seconds is not None and effect != "NoExecute":
            _invalid(errs, _c(tol_path, "effect"), effect or "",
                     "effect must be 'NoExecute' when `tolerationSeconds` is set")
        _enum(errs, _c(tol_path, "effect"), effect, _TAINT_EFFECTS, required=False)


def _validate_dns(errs: Errs, spec: Obj, path: str) -> None:
    policy = _str(errs, spec, "dnsPolicy", path)
    if policy is not None and policy not in _DNS_POLICIES:
        _not_supported(errs, _c(path, "dnsPolicy"), policy, _DNS_POLICIES)
    config = _obj(errs, spec, "dnsConfig", path)
    config_path = _c(path, "dnsConfig")
    if policy == "None" and config is None:
        _required(errs, config_path, "must provide `dnsConfig` when `dnsPolicy` is None")
        return
    if config is None:
        return
    nameservers_path = _c(config_path, "nameservers")
    nameservers = _list(errs, config, "nameservers", config_path) or []
    if policy == "None" and not nameservers:
        _required(errs, nameservers_path, "must provide at least one DNS nameserver when "
                                          "`dnsPolicy` is None")
    if len(nameservers) > 3:
        _invalid(errs, nameservers_path, nameservers, "must not have more than 3 nameservers")
    for _, ns_path, nameserver in _strings(errs, nameservers, nameservers_path):
        _ip(errs, ns_path, nameserver)
    searches_path = _c(config_path, "searches")
    searches = _list(errs, config, "searches", config_path) or []
    if len(searches) > 32:
        _invalid(errs, searches_path, searches, "must not have more than 32 search paths")
    for _, search_path, search in _strings(errs, searches, searches_path):
        _check(errs, search_path, search.removesuffix("."), dns1123_subdomain_errors)
    options_path = _c(config_path, "options")
    for _, option_path, option in _items(errs, _list(errs, config, "options", config_path),
                                         options_path):
        if not _str(errs, option, "name", option_path):
            _required(errs, _c(option_path, "name"), "Option.Name must not be empty")
        _str(errs, option, "value", option_path)


def _validate_pod_spec(errs: Errs, spec: Obj, path: str,
                       restart_policies: tuple[str, ...] = _RESTART_POLICIES) -> None:
    host_network = _bool(errs, spec, "hostNetwork", path) is True
    volumes = _validate_volumes(errs, spec, path)

    if _absent(spec, "containers"):
        _required(errs, _c(path, "containers"))
    names: set[str] = set()
    host_ports: set[str] = set()
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        list_path = _c(path, kind)
        for _, c_path, container in _items(errs, _list(errs, spec, kind, path), list_path):
            _validate_container(errs, container, c_path, kind, volumes, names, host_network)
            if kind == "ephemeralContainers":
                continue
            # Two containers of one pod cannot bind the same host port.
            ports = _field(container, "ports")
            for p_index, port in enumerate(ports if isinstance(ports, list) else ()):
                host_port = _field(port, "hostPort")
                if type(host_port) is not int or not 0 < host_port <= 65535:
                    continue
                key = f"{port.get('hostIP') or ''}/{port.get('protocol')}/{host_port}"
                if key in host_ports:
                    _duplicate(errs, _c(_i(_c(c_path, "ports"), p_index), "hostPort"), key)
                host_ports.add(key)

    restart_policy = _str(errs, spec, "restartPolicy", path)
    restart_path = _c(path, "restartPolicy")
    if not restart_policy:
        if _absent(spec, "restartPolicy"):
            _required(errs, restart_path)
    elif restart_policy not in restart_policies:
        _not_supported(errs, restart_path, restart_policy, restart_policies)
    _validate_dns(errs, spec, path)

    _validate_labels(errs, _str_map(errs, spec, "nodeSelector", path), _c(path, "nodeSelector"))
    for key in ("serviceAccountName", "nodeName", "priorityClassName", "runtimeClassName"):
        value = _str(errs, spec, key, path)
        if value:
            _check(errs, _c(path, key), value, dns1123_subdomain_errors)
    for key in ("hostname", "subdomain"):
        value = _str(errs, spec, key, path)
        if value:
            _check(errs, _c(path, key), value, dns1123_label_errors)
    _str(errs, spec, "serviceAccount", path)
    _str(errs, spec, "schedulerName", path)
    for key in ("hostPID", "hostIPC", "shareProcessNamespace", "enableServiceLinks",
                "automountServiceAccountToken", "setHostnameAsFQDN", "hostUsers"):
        _bool(errs, spec, key, path)

    deadline = _int(errs, spec, "activeDeadlineSeconds", path, wide=True)
    if deadline is not None and not 1 <= deadline <= 2**31 - 1:
        _invalid(errs, _c(path, "activeDeadlineSeconds"), deadline,
                 "must be between 1 and 2147483647, inclusive")
    _nonneg(errs, _c(path, "terminationGracePeriodSeconds"),
            _int(errs, spec, "terminationGracePeriodSeconds", path, wide=True))
    _int(errs, spec, "priority", path)
    _enum(errs, _c(path, "preemptionPolicy"), _str(errs, spec, "preemptionPolicy", path),
          ("Never", "PreemptLowerPriority"), required=False)
    _validate_tolerations(errs, spec, path)

    security = _obj(errs, spec, "securityContext", path)
    if security is not None:
        _validate_security_context(errs, security, _c(path, "securityContext"))
    secrets_path = _c(path, "imagePullSecrets")
    for _, s_path, secret in _items(errs, _list(errs, spec, "imagePullSecrets", path),
                                    secrets_path):
        if not _str(errs, secret, "name", s_path):
            _required(errs, _c(s_path, "name"))
    aliases_path = _c(path, "hostAliases")
    for _, a_path, alias in _items(errs, _list(errs, spec, "hostAliases", path), aliases_path):
        address = _str(errs, alias, "ip", a_path)
        if not address:
            _required(errs, _c(a_path, "ip"))
        else:
            _ip(errs, _c(a_path, "ip"), address)
        hostnames_path = _c(a_path, "hostnames")
        for _, h_path, hostname in _strings(errs, _list(errs, alias, "hostnames", a_path),
                                            hostnames_path):
            _check(errs, h_path, hostname, dns1123_subdomain_errors)
    spread_path = _c(path, "topologySpreadConstraints")
    seen_spread: set[tuple[str, str]] = set()
    for _, t_path, constraint in _items(errs, _list(errs, spec, "topologySpreadConstraints",
                                                    path), spread_path):
        _positive(errs, _c(t_path, "maxSkew"), _int(errs, constraint, "maxSkew", t_path))
        topology_key = _str(errs, constraint, "topologyKey", t_path)
        if not topology_key:
            _required(errs, _c(t_path, "topologyKey"), "can not be empty")
        when = _str(errs, constraint, "whenUnsatisfiable", t_path)
        if when not in ("DoNotSchedule", "ScheduleAnyway"):
            _not_supported(errs, _c(t_path, "whenUnsatisfiable"), when or "",
                           ("DoNotSchedule", "ScheduleAnyway"))
        pair = (topology_key or "", when or "")
        if pair in seen_spread:
            _duplicate(errs, _c(t_path, "{topologyKey, whenUnsatisfiable}"),
                       f"{{{pair[0]}, {pair[1]}}}")
        seen_spread.add(pair)
        selector = _obj(errs, constraint, "labelSelector", t_path)
        if selector is not None:
            _validate_label_selector(errs, selector, _c(t_path, "labelSelector"))
    gates_path = _c(path, "schedulingGates")
    gate_names: set[str] = set()
    for _, g_path, gate in _items(errs, _list(errs, spec, "schedulingGates", path), gates_path):
        gate_name = _str(errs, gate, "name", g_path) or ""
        _check(errs, _c(g_path, "name"), gate_name, qualified_name_errors)
        if gate_name in gate_names:
            _duplicate(errs, _c(g_path, "name"), gate_name)
        gate_names.add(gate_name)
    readiness_path = _c(path, "readinessGates")
    for _, r_path, gate in _items(errs, _list(errs, spec, "readinessGates", path),
                                  readiness_path):
        condition = _str(errs, gate, "conditionType", r_path) or ""
        _check(errs, _c(r_path, "conditionType"), condition, qualified_name_errors)
    os_spec = _obj(errs, spec, "os", path)
    if os_spec is not None:
        os_name = _str(errs, os_spec, "name", _c(path, "os"))
        if not os_name:
            _required(errs, _c(_c(path, "os"), "name"), "cannot be empty")
        elif os_name not in ("linux", "windows"):
            _not_supported(errs, _c(path, "os"), os_name, ("linux", "windows"))
    _obj(errs, spec, "affinity", path)
    _resource_list(errs, spec, "overhead", path, None)


def _validate_pod_template(errs: Errs, spec: Obj, spec_path: str, selector: Obj | None,
                           restart_policies: tuple[str, ...], owner: str | None) -> None:
    """ValidatePodTemplateSpec (+ the ReplicaSet-style rules when `owner` is given)."""
    template = _obj(errs, spec, "template", spec_path)
    path = _c(spec_path, "template")
    if template is None:
        if _field(spec, "template") is None:
            _required(errs, path)
        return
    meta = _obj(errs, template, "metadata", path)
    meta_path = _c(path, "metadata")
    labels = _str_map(errs, meta, "labels", meta_path)
    _validate_labels(errs, labels, _c(meta_path, "labels"))
    _validate_annotations(errs, _str_map(errs, meta, "annotations", meta_path),
                          _c(meta_path, "annotations"))
    if selector is not None and not _selector_empty(selector) and \
            not _selector_matches(selector, labels or {}):
        _invalid(errs, _c(meta_path, "labels"), labels or {},
                 "`selector` does not match template `labels`")
    pod_spec = _obj(errs, template, "spec", path)
    if pod_spec is None and _field(template, "spec") is not None:
        return
    _validate_pod_spec(errs, pod_spec or {}, _c(path, "spec"), restart_policies)
    if owner and _field(pod_spec, "activeDeadlineSeconds") is not None:
        _forbidden(errs, _c(_c(path, "spec"), "activeDeadlineSeconds"),
                   f"activeDeadlineSeconds in {owner} is not Supported")


# ============================================================================================
# Kinds.
# ============================================================================================

def _spec(errs: Errs, obj: Obj, required: bool = False) -> Obj:
    spec = _obj(errs, obj, "spec", "")
    if spec is None and required and obj.get("spec") is None:
        _required(errs, "spec")
    return spec or {}


def _validate_pod(errs: Errs, obj: Obj) -> None:
    spec = _obj(errs, obj, "spec", "")
    if spec is None and obj.get("spec") is not None:
        return
    _validate_pod_spec(errs, spec or {}, "spec")


_POD_UPDATE_MSG = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be "
    "set to 1 if it was previously negative)")


def _validate_pod_update(errs: Errs, obj: Obj, old: Obj) -> None:
    spec, old_spec = obj.get("spec"), old.get("spec")
    if not isinstance(spec, dict) or not isinstance(old_spec, dict):
        return
    new_deadline, old_deadline = spec.get("activeDeadlineSeconds"), \
        old_spec.get("activeDeadlineSeconds")
    if type(old_deadline) is int and old_deadline > 0:
        if new_deadline is None:
            _invalid(errs, "spec.activeDeadlineSeconds", None,
                     "must not update from a positive integer to nil value")
        elif type(new_deadline) is int and new_deadline > old_deadline:
            _invalid(errs, "spec.activeDeadlineSeconds", new_deadline,
                     "must be less than or equal to previous value")
    # Compare the specs with every mutable field taken from the new one; what still differs
    # is a forbidden change.
    mutable = copy.deepcopy(old_spec)
    for kind in ("containers", "initContainers"):
        new_list, old_list = spec.get(kind), mutable.get(kind)
        if isinstance(new_list, list) and isinstance(old_list, list) \
                and len(new_list) == len(old_list):
            for new_c, old_c in zip(new_list, old_list):
                if isinstance(new_c, dict) and isinstance(old_c, dict):
                    old_c["image"] = new_c.get("image")
    mutable["activeDeadlineSeconds"] = spec.get("activeDeadlineSeconds")
    new_tolerations = spec.get("tolerations") or []
    old_tolerations = mutable.get("tolerations") or []
    if isinstance(new_tolerations, list) and isinstance(old_tolerations, list) and \
            all(t in new_tolerations for t in old_tolerations):
        mutable["tolerations"] = spec.get("tolerations")
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    if type(old_grace) is int and old_grace < 0 and spec.get("terminationGracePeriodSeconds") == 1:
        mutable["terminationGracePeriodSeconds"] = 1
    # Scheduling gates may only be removed, and while gated, node selectors only added to.
    old_gates = old_spec.get("schedulingGates") or []
    new_gates = spec.get("schedulingGates") or []
    if isinstance(old_gates, list) and isinstance(new_gates, list) and \
            all(g in old_gates for g in new_gates):
        mutable["schedulingGates"] = spec.get("schedulingGates")
        old_selector = old_spec.get("nodeSelector") or {}
        new_selector = spec.get("nodeSelector") or {}
        if old_gates and isinstance(old_selector, dict) and isinstance(new_selector, dict) and \
                all(new_selector.get(k) == v for k, v in old_selector.items()):
            mutable["nodeSelector"] = spec.get("nodeSelector")
    for key in ("activeDeadlineSeconds", "tolerations", "schedulingGates", "nodeSelector"):
        if mutable.get(key) is None and key not in spec:
            mutable.pop(key, None)
    if mutable != spec:
        changed = sorted(k for k in set(mutable) | set(spec) if mutable.get(k) != spec.get(k))
        detail = _POD_UPDATE_MSG + "\n  changed: " + ", ".join(f"spec.{k}" for k in changed)
        _forbidden(errs, "spec", detail)


def _validate_int_or_percent(errs: Errs, parent: Obj, key: str, path: str,
                             at_most_100: bool) -> int | None:
    """ValidatePositiveIntOrPercent; returns the number (percent or count) for zero checks."""
    value = _int_or_str(errs, parent, key, path)
    field_path = _c(path, key)
    if value is None:
        return None
    if isinstance(value, int):
        _nonneg(errs, field_path, value)
        return value
    if not _PERCENT_RE.fullmatch(value):
        _invalid(errs, field_path, value, "must be an integer or percentage (e.g '5%')")
        return None
    percent = int(value[:-1])
    if at_most_100 and percent > 100:
        _invalid(errs, field_path, value, "must not be greater than 100%")
    return percent


def _validate_rolling_update(errs: Errs, rolling: Obj, path: str, surge_max_100: bool) -> None:
    unavailable = _validate_int_or_percent(errs, rolling, "maxUnavailable", path, True)
    surge = _validate_int_or_percent(errs, rolling, "maxSurge", path, surge_max_100)
    if unavailable == 0 and surge == 0:
        _invalid(errs, _c(path, "maxUnavailable"), rolling.get("maxUnavailable"),
                 "may not be 0 when `maxSurge` is 0")


def _workload_selector(errs: Errs, spec: Obj, noun: str) -> Obj | None:
    """The spec.selector of a ReplicaSet-like kind, checked; None when unusable for matching."""
    selector = _obj(errs, spec, "selector", "spec")
    if selector is None:
        if _field(spec, "selector") is None:
            _required(errs, "spec.selector")
        return None
    valid = _validate_label_selector(errs, selector, "spec.selector")
    if _selector_empty(selector):
        _invalid(errs, "spec.selector", selector, f"empty selector is invalid for {noun}")
    return selector if valid else None


def _validate_deployment(errs: Errs, obj: Obj) -> None:
    spec = _spec(errs, obj)
    _nonneg(errs, "spec.replicas", _int(errs, spec, "replicas", "spec"))
    min_ready = _int(errs, spec, "minReadySeconds", "spec")
    _nonneg(errs, "spec.minReadySeconds", min_ready)
    _nonneg(errs, "spec.revisionHistoryLimit", _int(errs, spec, "revisionHistoryLimit", "spec"))
    deadline = _int(errs, spec, "progressDeadlineSeconds", "spec")
    _nonneg(errs, "spec.progressDeadlineSeconds", deadline)
    if deadline is not None and deadline <= (min_ready or 0):
        _invalid(errs, "spec.progressDeadlineSeconds", deadline,
                 "must be greater than minReadySeconds")
    _bool(errs, spec, "paused", "spec")
    selector = _workload_selector(errs, spec, "deployment")
    _validate_pod_template(errs, spec, "spec", selector, ("Always",), "ReplicaSet")
    strategy = _obj(errs, spec, "strategy", "spec")
    if strategy is not None:
        strategy_type = _str(errs, strategy, "type", "spec.strategy")
        _enum(errs, "spec.strategy.type", strategy_type, ("Recreate", "RollingUpdate"))
        rolling = _obj(errs, strategy, "rollingUpdate", "spec.strategy")
        if strategy_type == "Recreate" and rolling is not None:
            _forbidden(errs, "spec.strategy.rollingUpdate",
                       "may not be specified when strategy `type` is 'Recreate'")
        elif rolling is not None:
            _validate_rolling_update(errs, rolling, "spec.strategy.rollingUpdate", False)


def _validate_replicaset(errs: Errs, obj: Obj) -> None:
    spec = _spec(errs, obj)
    _nonneg(errs, "spec.replicas", _int(errs, spec, "replicas", "spec"))
    _nonneg(errs, "spec.minReadySeconds", _int(errs, spec, "minReadySeconds", "spec"))
    selector = _workload_selector(errs, spec, "deployment")  # upstream's wording, kept
    _validate_pod_template(errs, spec, "spec", selector, ("Always",), "ReplicaSet")


def _validate_daemonset(errs: Errs, obj: Obj) -> None:
    spec = _spec(errs, obj)
    _nonneg(errs, "spec.minReadySeconds", _int(errs, spec, "minReadySeconds", "spec"))
    _nonneg(errs, "spec.revisionHistoryLimit", _int(errs, spec, "revisionHistoryLimit", "spec"))
    _nonneg(errs, "spec.templateGeneration",
            _int(errs, spec, "templateGeneration", "spec", wide=True))
    selector = _workload_selector(errs, spec, "daemonset")
    _validate_pod_template(errs, spec, "spec", selector, ("Always",), "DaemonSet")
    strategy = _obj(errs, spec, "updateStrategy", "spec")
    if strategy is not None:
        strategy_type = _str(errs, strategy, "type", "spec.updateStrategy")
        _enum(errs, "spec.updateStrategy.type", strategy_type, ("OnDelete", "RollingUpdate"))
        rolling = _obj(errs, strategy, "rollingUpdate", "spec.updateStrategy")
        if strategy_type == "RollingUpdate" and rolling is not None:
            _validate_rolling_update(errs, rolling, "spec.updateStrategy.rollingUpdate", True)


def _validate_selector_update(errs: Errs, obj: Obj, old: Obj) -> None:
    # apps/v1 and batch/v1 selectors are immutable: changing them would orphan pods.
    spec, old_spec = obj.get("spec"), old.get("spec")
    if isinstance(spec, dict) and isinstance(old_spec, dict):
        _immutable(errs, "spec.selector", spec.get("selector"), old_spec.get("selector"))


_JOB_MAX_INDEXED = 100000


def _validate_job(errs: Errs, obj: Obj) -> None:
    spec = _spec(errs, obj)
    meta = _field(obj, "metadata") or {}
    parallelism = _int(errs, spec, "parallelism", "spec")
    completions = _int(errs, spec, "completions", "spec")
    _nonneg(errs, "spec.parallelism", parallelism)
    _nonneg(errs, "spec.completions", completions)
    _nonneg(errs, "spec.backoffLimit", _int(errs, spec, "backoffLimit", "spec"))
    _positive(errs, "spec.backoffLimitPerIndex", _int(errs, spec, "backoffLimitPerIndex", "spec"))
    _nonneg(errs, "spec.activeDeadlineSeconds",
            _int(errs, spec, "activeDeadlineSeconds", "spec", wide=True))
    _nonneg(errs, "spec.ttlSecondsAfterFinished",
            _int(errs, spec, "ttlSecondsAfterFinished", "spec"))
    _bool(errs, spec, "suspend", "spec")
    manual = _bool(errs, spec, "manualSelector", "spec")
    mode = _str(errs, spec, "completionMode", "spec")
    _enum(errs, "spec.completionMode", mode, ("Indexed", "NonIndexed"), required=False)
    if mode == "Indexed":
        if completions is None:
            _required(errs, "spec.completions", "when completion mode is Indexed")
        elif completions > _JOB_MAX_INDEXED:
            _invalid(errs, "spec.completions", completions,
                     f"must be less than or equal to {_JOB_MAX_INDEXED} when completion mode "
                     "is Indexed")
        if parallelism is not None and parallelism > _JOB_MAX_INDEXED:
            _invalid(errs, "spec.parallelism", parallelism,
                     f"must be less than or equal to {_JOB_MAX_INDEXED} when completion mode "
                     "is Indexed")
    replacement = _str(errs, spec, "podReplacementPolicy", "spec")
    has_failure_policy = _obj(errs, spec, "podFailurePolicy", "spec") is not None
    if replacement:
        allowed = ("Failed",) if has_failure_policy else ("Failed", "TerminatingOrFailed")
        if replacement not in allowed:
            _not_supported(errs, "spec.podReplacementPolicy", replacement, allowed)

    selector = _obj(errs, spec, "selector", "spec")
    usable = None
    if selector is None:
        if _field(spec, "selector") is None:
            _required(errs, "spec.selector")
    elif _validate_label_selector(errs, selector, "spec.selector"):
        usable = selector
    if manual is not True and selector is not None:
        _validate_generated_selector(errs, obj, meta, selector, usable)
    _validate_pod_template(errs, spec, "spec", usable, ("OnFailure", "Never"), None)


def _validate_generated_selector(errs: Errs, obj: Obj, meta: Any, selector: Obj,
                                 usable: Obj | None) -> None:
    # Without manualSelector the selector and labels must be the generated ones, so one
    # Job can never adopt another's pods.
    uid = _field(meta, "uid")
    name = _field(meta, "name")
    if not isinstance(name, str):
        name = ""
    if not isinstance(uid, str) or not uid:
        _required(errs, "metadata.uid")
        return
    template_labels = _field(_field(_field(_field(obj, "spec"), "template"), "metadata"),
                             "labels")
    labels = template_labels if isinstance(template_labels, dict) else {}
    expected = {"batch.kubernetes.io/controller-uid": uid, "controller-uid": uid,
                "batch.kubernetes.io/job-name": name, "job-name": name}
    labels_path = "spec.template.metadata.labels"
    for key, value in expected.items():
        if key not in labels:
            _required(errs, _k(labels_path, key), str(value))
        elif labels[key] != value:
            _invalid(errs, _k(labels_path, key), labels[key], f"must be '{value}'")
    if usable is not None and not _selector_matches(usable, {k: str(v) for k, v in
                                                            expected.items()}):
        _invalid(errs, "spec.selector", selector, "`selector` not auto-generated")


def _validate_job_update(errs: Errs, obj: Obj, old: Obj) -> None:
    spec, old_spec = obj.get("spec"), old.get("spec")
    if not isinstance(spec, dict) or not isinstance(old_spec, dict):
        return
    _validate_selector_update(errs, obj, old)
    for key in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy"):
        _immutable(errs, f"spec.{key}", spec.get(key), old_spec.get(key))
    completions, old_completions = spec.get("completions"), old_spec.get("completions")
    # Indexed Jobs may scale when completions follows parallelism (elastic Indexed Jobs).
    elastic = spec.get("completionMode") == "Indexed" and \
        completions == spec.get("parallelism") and \
        old_completions == old_spec.get("parallelism")
    if not elastic:
        _immutable(errs, "spec.completions", completions, old_completions)
    template, old_template = spec.get("template"), old_spec.get("template")
    if template == old_template:
        return
    # A suspended Job that never started may have its scheduling directives changed, so a
    # queueing controller can place it before letting it run.
    status = _as_dict(old.get("status"))
    if spec.get("suspend") is True and not status.get("startTime") and \
            isinstance(template, dict) and isinstance(old_template, dict):
        relaxed = copy.deepcopy(old_template)
        new_meta = _as_dict(template.get("metadata"))
        relaxed_meta = relaxed.setdefault("metadata", {})
        if isinstance(relaxed_meta, dict):
            for key in ("labels", "annotations"):
                relaxed_meta[key] = new_meta.get(key)
        new_pod, relaxed_pod = template.get("spec"), relaxed.get("spec")
        if isinstance(new_pod, dict) and isinstance(relaxed_pod, dict):
            for key in ("nodeSelector", "tolerations", "affinity", "schedulingGates"):
                relaxed_pod[key] = new_pod.get(key)
        if _strip_nulls(relaxed) == _strip_nulls(template):
            return
    _invalid(errs, "spec.template", template, "field is immutable")


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")


def _validate_service(errs: Errs, obj: Obj) -> None:
    spec = _spec(errs, obj)
    svc_type = _str(errs, spec, "type", "spec")
    _enum(errs, "spec.type", svc_type, _SERVICE_TYPES)
    cluster_ip = _str(errs, spec, "clusterIP", "spec")
    headless = cluster_ip == "None"
    ports = _list(errs, spec, "ports", "spec")
    if _absent(spec, "ports") and not headless and svc_type != "ExternalName":
        _required(errs, "spec.ports")
    _validate_service_ports(errs, ports, svc_type)

    if svc_type == "ExternalName":
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if spec.get(key):
                _forbidden(errs, f"spec.{key}", "may not be set for ExternalName services")
        external_name = _str(errs, spec, "externalName", "spec")
        if not external_name:
            _required(errs, "spec.externalName")
        else:
            _check(errs, "spec.externalName", external_name.removesuffix("."),
                   dns1123_subdomain_errors)
    else:
        if headless and svc_type in ("NodePort", "LoadBalancer"):
            _invalid(errs, "spec.clusterIPs[0]", "None",
                     f"may not be set to 'None' for {svc_type} services")
        _validate_cluster_ips(errs, spec, cluster_ip)

    _validate_labels(errs, _str_map(errs, spec, "selector", "spec"), "spec.selector")
    affinity = _str(errs, spec, "sessionAffinity", "spec")
    _enum(errs, "spec.sessionAffinity", affinity, ("ClientIP", "None"))
    config = _obj(errs, spec, "sessionAffinityConfig", "spec")
    if affinity == "ClientIP":
        client_ip = _obj(errs, config, "clientIP", "spec.sessionAffinityConfig")
        timeout_path = "spec.sessionAffinityConfig.clientIP.timeoutSeconds"
        timeout = _int(errs, client_ip, "timeoutSeconds", "spec.sessionAffinityConfig.clientIP")
        if timeout is None:
            _required(errs, "spec.sessionAffinityConfig", "when session affinity type is "
                                                          "ClientIP")
        elif not 0 < timeout <= 86400:
            _invalid(errs, timeout_path, timeout, "must be greater than 0 and less than 86400")
    elif affinity == "None" and config is not None:
        _forbidden(errs, "spec.sessionAffinityConfig",
                   "must not be set when session affinity is None")
    for _, ip_path, address in _strings(errs, _list(errs, spec, "externalIPs", "spec"),
                                        "spec.externalIPs"):
        _ip(errs, ip_path, address, special_ok=False)
    accessible = svc_type in ("NodePort", "LoadBalancer") or (
        svc_type == "ClusterIP" and bool(spec.get("externalIPs")))
    external_policy = _str(errs, spec, "externalTrafficPolicy", "spec")
    if not accessible:
        if external_policy:
            _invalid(errs, "spec.externalTrafficPolicy", external_policy,
                     "may only be set for externally-accessible services")
    else:
        _enum(errs, "spec.externalTrafficPolicy", external_policy, ("Cluster", "Local"))
    internal_policy = _str(errs, spec, "internalTrafficPolicy", "spec")
    # Required only where defaulting fills it; other types never had it checked upstream.
    _enum(errs, "spec.internalTrafficPolicy", internal_policy, ("Cluster", "Local"),
          required=svc_type in ("ClusterIP", "NodePort", "LoadBalancer"))
    health_port = _int(errs, spec, "healthCheckNodePort", "spec")
    if health_port:
        if not (svc_type == "LoadBalancer" and external_policy == "Local"):
            _invalid(errs, "spec.healthCheckNodePort", health_port,
                     "may only be set when `type` is 'LoadBalancer' and "
                     "`externalTrafficPolicy` is 'Local'")
        _port_num(errs, "spec.healthCheckNodePort", health_port)
    for _, range_path, cidr in _strings(errs, _list(errs, spec, "loadBalancerSourceRanges",
                                                    "spec"), "spec.loadBalancerSourceRanges"):
        if svc_type != "LoadBalancer":
            _forbidden(errs, "spec.loadBalancerSourceRanges",
                       "may only be used when `type` is 'LoadBalancer'")
            break
        _check(errs, range_path, cidr.strip(), cidr_errors)
    _bool(errs, spec, "publishNotReadyAddresses", "spec")
    _bool(errs, spec, "allocateLoadBalancerNodePorts", "spec")


def _validate_service_ports(errs: Errs, ports: list[Any] | None, svc_type: str | None) -> None:
    names: set[str] = set()
    seen_ports: set[tuple[Any, Any]] = set()
    seen_node_ports: set[tuple[Any, Any]] = set()
    require_name = len(ports or ()) > 1
    for _, port_path, port in _items(errs, ports, "spec.ports"):
        name = _str(errs, port, "name", port_path)
        if not name:
            if require_name:
                _required(errs, _c(port_path, "name"))
        else:
            _check(errs, _c(port_path, "name"), name, dns1123_label_errors)
            if name in names:
                _duplicate(errs, _c(port_path, "name"), name)
            names.add(name)
        number = _int(errs, port, "port", port_path)
        if number is None and port.get("port") is None:
            _required(errs, _c(port_path, "port"))
        _port_num(errs, _c(port_path, "port"), number)
        protocol = _str(errs, port, "protocol", port_path)
        _enum(errs, _c(port_path, "protocol"), protocol, _PROTOCOLS)
        _port_num_or_name(errs, port, "targetPort", port_path)
        node_port = _int(errs, port, "nodePort", port_path)
        if node_port:
            if svc_type == "ClusterIP":
                _forbidden(errs, _c(port_path, "nodePort"),
                           "may not be used when `type` is 'ClusterIP'")
            _port_num(errs, _c(port_path, "nodePort"), node_port)
            if (protocol, node_port) in seen_node_ports:
                _duplicate(errs, _c(port_path, "nodePort"), node_port)
            seen_node_ports.add((protocol, node_port))
        if number is not None:
            if (protocol, number) in seen_ports:
                _duplicate(errs, port_path, {"port": number, "protocol": protocol})
            seen_ports.add((protocol, number))
        app_protocol = _str(errs, port, "appProtocol", port_path)
        if app_protocol:
            _check(errs, _c(port_path, "appProtocol"), app_protocol, qualified_name_errors)


def _validate_cluster_ips(errs: Errs, spec: Obj, cluster_ip: str | None) -> None:
    ips = [ip for _, _, ip in _strings(errs, _list(errs, spec, "clusterIPs", "spec"),
                                       "spec.clusterIPs")]
    if cluster_ip:
        if not ips:
            _required(errs, "spec.clusterIPs")
        elif ips[0] != cluster_ip:
            _invalid(errs, "spec.clusterIPs", ips, "first value must match `clusterIP`")
    elif ips:
        _invalid(errs, "spec.clusterIPs", ips, "must be empty when `clusterIP` is not specified")
    families = [f for _, _, f in _strings(errs, _list(errs, spec, "ipFamilies", "spec"),
                                          "spec.ipFamilies")]
    for index, family in enumerate(families):
        if family not in ("IPv4", "IPv6"):
            _not_supported(errs, _i("spec.ipFamilies", index), family, ("IPv4", "IPv6"))
        elif family in families[:index]:
            _duplicate(errs, _i("spec.ipFamilies", index), family)
    if len(families) > 2:
        _invalid(errs, "spec.ipFamilies", families, "may specify no more than two IP families")
    policy = _str(errs, spec, "ipFamilyPolicy", "spec")
    policies = ("PreferDualStack", "RequireDualStack", "SingleStack")
    if policy is not None and policy not in policies:
        _not_supported(errs, "spec.ipFamilyPolicy", policy, policies)
    if policy == "SingleStack" and (len(families) > 1 or len(ips) > 1):
        _invalid(errs, "spec.ipFamilyPolicy", policy,
                 "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families "
                 "are specified")
    if len(ips) > 2:
        _invalid(errs, "spec.clusterIPs", ips, "may only hold up to 2 values")
    seen_families: list[str] = []
    for index, address in enumerate(ips):
        ip_path = _i("spec.clusterIPs", index)
        if address == "None":
            if index != 0 or len(ips) > 1:
                _invalid(errs, "spec.clusterIPs", ips, "'None' must be the first and only value")
            continue
        if not _ip(errs, ip_path, address):
            continue
        family = _ip_family(address) or ""
        if family in seen_families:
            _invalid(errs, "spec.clusterIPs", ips,
                     "may specify no more than one IP for each IP family")
        seen_families.append(family)
        if index < len(families) and families[index] in ("IPv4", "IPv6") and \
                families[index] != family:
            _invalid(errs, ip_path, address, f"expected an {families[index]} value as "
                                             f"indicated by `ipFamilies[{index}]`")


def _validate_service_update(errs: Errs, obj: Obj, old: Obj) -> None:
    spec, old_spec = obj.get("spec"), old.get("spec")
    if not isinstance(spec, dict) or not isinstance(old_spec, dict):
        return
    if "ExternalName" in (spec.get("type"), old_spec.get("type")):
        return  # moving to or from ExternalName allocates or releases the IP
    old_ip = old_spec.get("clusterIP")
    if old_ip:
        _immutable(errs, "spec.clusterIP", spec.get("clusterIP"), old_ip)
    new_families, old_families = spec.get("ipFamilies"), old_spec.get("ipFamilies")
    if isinstance(new_families, list) and isinstance(old_families, list) and new_families \
            and old_families and new_families[0] != old_families[0]:
        _invalid(errs, "spec.ipFamilies[0]", new_families[0], "may not change once set")


_SECRET_MAX_SIZE = 1024 * 1024


def _validate_data_keys(errs: Errs, data: Obj | None, path: str) -> None:
    for key in data or {}:
        _check(errs, _k(path, str(key)), str(key), config_key_errors)


def _validate_configmap(errs: Errs, obj: Obj) -> None:
    data = _str_map(errs, obj, "data", "")
    binary = _obj(errs, obj, "binaryData", "")
    _validate_data_keys(errs, data, "data")
    _validate_data_keys(errs, binary, "binaryData")
    total = sum(len(v.encode()) for v in (data or {}).values())
    for key, value in (binary or {}).items():
        decoded = _base64(errs, value, _k("binaryData", str(key)))
        total += len(decoded or b"")
        if data is not None and key in data:
            _invalid(errs, "binaryData", key, "duplicate of key present in data")
    if total > _SECRET_MAX_SIZE:
        _too_long(errs, "", _SECRET_MAX_SIZE)
    _bool(errs, obj, "immutable", "")


def _base64(errs: Errs, value: Any, path: str) -> bytes | None:
    """Decode a []byte field; the value itself is never echoed (it may be a secret)."""
    if not isinstance(value, str):
        _invalid(errs, path, _json_type(value), "must be a base64-encoded string")
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        _invalid(errs, path, "<data>", "must be valid base64-encoded data")
        return None


# Keys a typed Secret must carry, by type.
_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def _validate_secret(errs: Errs, obj: Obj) -> None:
    data = _obj(errs, obj, "data", "")
    _validate_data_keys(errs, data, "data")
    total = 0
    decoded: dict[str, bytes] = {}
    for key, value in (data or {}).items():
        raw = _base64(errs, value, _k("data", str(key)))
        if raw is not None:
            decoded[str(key)] = raw
            total += len(raw)
    # Normally folded into data by defaulting; still checked if a caller skipped that.
    string_data = _str_map(errs, obj, "stringData", "")
    _validate_data_keys(errs, string_data, "stringData")
    total += sum(len(v.encode()) for v in (string_data or {}).values())
    if total > _SECRET_MAX_SIZE:
        _too_long(errs, "data", _SECRET_MAX_SIZE)
    _bool(errs, obj, "immutable", "")
    secret_type = _str(errs, obj, "type", "")
    keys = set(decoded) | set(data or {}) | set(string_data or {})
    for key in _SECRET_REQUIRED_KEYS.get(secret_type or "", ()):
        if key not in keys:
            _required(errs, _k("data", key))
    if secret_type == "kubernetes.io/basic-auth" and not keys & {"username", "password"}:
        _required(errs, _k("data", "username"))
        _required(errs, _k("data", "password"))
    if secret_type == "kubernetes.io/service-account-token":
        annotations = _field(_field(obj, "metadata"), "annotations")
        if not isinstance(annotations, dict) or \
                not annotations.get("kubernetes.io/service-account.name"):
            _required(errs, "metadata.annotations[kubernetes.io/service-account.name]")
    for key in (".dockercfg", ".dockerconfigjson"):
        if key in decoded and secret_type in ("kubernetes.io/dockercfg",
                                              "kubernetes.io/dockerconfigjson"):
            try:
                json.loads(decoded[key])
            except ValueError:
                _invalid(errs, _k("data", key), "<secret contents redacted>",
                         "must be valid JSON")


def _validate_immutable_data(errs: Errs, obj: Obj, old: Obj, keys: tuple[str, ...]) -> None:
    # Once `immutable: true` is stored, neither the data nor the flag may change.
    if old.get("immutable") is not True:
        return
    if obj.get("immutable") is not True:
        _forbidden(errs, "immutable", "field is immutable when `immutable` is set")
    for key in keys:
        if (obj.get(key) or {}) != (old.get(key) or {}):
            _forbidden(errs, key, "field is immutable when `immutable` is set")


def _validate_configmap_update(errs: Errs, obj: Obj, old: Obj) -> None:
    _validate_immutable_data(errs, obj, old, ("data", "binaryData"))


def _validate_secret_update(errs: Errs, obj: Obj, old: Obj) -> None:
    _immutable(errs, "type", obj.get("type"), old.get("type"))
    _validate_immutable_data(errs, obj, old, ("data",))


def _validate_namespace(errs: Errs, obj: Obj) -> None:
    spec = _spec(errs, obj)
    for _, _, finalizer in _strings(errs, _list(errs, spec, "finalizers", "spec"),
                                    "spec.finalizers"):
        _validate_finalizer_name(errs, "spec.finalizers", finalizer)
    _validate_namespace_status(errs, obj)


def _validate_namespace_status(errs: Errs, obj: Obj) -> None:
    status = _obj(errs, obj, "status", "")
    _enum(errs, "status.phase", _str(errs, status, "phase", "status"),
          ("Active", "Terminating"), required=False)


def _validate_node(errs: Errs, obj: Obj) -> None:
    spec = _spec(errs, obj)
    cidrs = [c for _, _, c in _strings(errs, _list(errs, spec, "podCIDRs", "spec"),
                                       "spec.podCIDRs")]
    pod_cidr = _str(errs, spec, "podCIDR", "spec")
    if pod_cidr and cidrs and cidrs[0] != pod_cidr:
        _invalid(errs, "spec.podCIDRs", cidrs, "first value must match `podCIDR`")
    elif pod_cidr and not cidrs:
        _check(errs, "spec.podCIDR", pod_cidr, cidr_errors)
    families: list[str] = []
    for index, cidr in enumerate(cidrs):
        before = len(errs)
        _check(errs, _i("spec.podCIDRs", index), cidr, cidr_errors)
        if len(errs) == before:
            families.append(_ip_family(cidr.partition("/")[0]) or "")
    if len(cidrs) > 2 or len(families) != len(set(families)):
        _invalid(errs, "spec.podCIDRs", cidrs,
                 "may specify no more than one CIDR for each IP family")
    _str(errs, spec, "providerID", "spec")
    _bool(errs, spec, "unschedulable", "spec")
    seen: set[tuple[str, str]] = set()
    for _, taint_path, taint in _items(errs, _list(errs, spec, "taints", "spec"), "spec.taints"):
        key = _str(errs, taint, "key", taint_path) or ""
        _check(errs, _c(taint_path, "key"), key, qualified_name_errors)
        value = _str(errs, taint, "value", taint_path)
        if value:
            _check(errs, _c(taint_path, "value"), value, label_value_errors)
        effect = _str(errs, taint, "effect", taint_path)
        _enum(errs, _c(taint_path, "effect"), effect, _TAINT_EFFECTS)
        _timestamp(errs, taint, "timeAdded", taint_path)
        if (key, effect or "") in seen:
            _duplicate(errs, taint_path, {"effect": effect, "key": key})
        seen.add((key, effect or ""))
    _validate_node_status(errs, obj)


def _validate_node_status(errs: Errs, obj: Obj) -> None:
    status = _obj(errs, obj, "status", "")
    if status is None:
        return
    for key in ("capacity", "allocatable"):
        _resource_list(errs, status, key, "status", None)
    for _, addr_path, address in _items(errs, _list(errs, status, "addresses", "status"),
                                        "status.addresses"):
        _str(errs, address, "type", addr_path)
        _str(errs, address, "address", addr_path)


def _validate_node_update(errs: Errs, obj: Obj, old: Obj) -> None:
    spec, old_spec = _as_dict(obj.get("spec")), _as_dict(old.get("spec"))
    # podCIDRs and providerID are handed out once, by the controller or the cloud.
    if old_spec.get("podCIDRs") and spec.get("podCIDRs") != old_spec.get("podCIDRs"):
        _forbidden(errs, "spec.podCIDRs",
                   "node updates may not change podCIDR except from \"\" to valid")
    if old_spec.get("providerID") and spec.get("providerID") != old_spec.get("providerID"):
        _forbidden(errs, "spec.providerID",
                   "node updates may not change providerID except from \"\" to valid")


def _validate_serviceaccount(errs: Errs, obj: Obj) -> None:
    for key in ("secrets", "imagePullSecrets"):
        for _, ref_path, ref in _items(errs, _list(errs, obj, key, ""), key):
            _str(errs, ref, "name", ref_path)
    _bool(errs, obj, "automountServiceAccountToken", "")


def _validate_event(errs: Errs, obj: Obj) -> None:
    involved = _obj(errs, obj, "involvedObject", "")
    namespace = _field(_field(obj, "metadata"), "namespace") or ""
    involved_ns = _str(errs, involved, "namespace", "involvedObject") or ""
    for key in ("kind", "name", "apiVersion", "uid", "fieldPath", "resourceVersion"):
        _str(errs, involved, key, "involvedObject")
    event_time = _field(obj, "eventTime")
    if not event_time:
        # Legacy (core/v1) events: the event lives with the object it describes; events
        # about cluster-scoped objects go to "default".
        if not involved_ns:
            if namespace not in ("", "default"):
                _invalid(errs, "involvedObject.namespace", involved_ns,
                         "does not match event.namespace")
        elif namespace != involved_ns:
            _invalid(errs, "involvedObject.namespace", involved_ns,
                     "does not match event.namespace")
    else:
        _timestamp(errs, obj, "eventTime", "")
        if not involved_ns and namespace not in ("default", "kube-system"):
            _invalid(errs, "involvedObject.namespace", involved_ns,
                     "does not match event.namespace")
        controller = _str(errs, obj, "reportingComponent", "")
        if not controller:
            _required(errs, "reportingComponent")
        else:
            _check(errs, "reportingComponent", controller, qualified_name_errors)
        instance = _str(errs, obj, "reportingInstance", "")
        if not instance:
            _required(errs, "reportingInstance")
        elif len(instance) > 128:
            _invalid(errs, "reportingInstance", "", "can have at most 128 characters")
        action = _str(errs, obj, "action", "")
        if not action:
            _required(errs, "action")
        elif len(action) > 128:
            _invalid(errs, "action", "", "can have at most 128 characters")
        _enum(errs, "type", _str(errs, obj, "type", ""), ("Normal", "Warning"))
    reason = _str(errs, obj, "reason", "")
    if reason and len(reason) > 128:
        _invalid(errs, "reason", "", "can have at most 128 characters")
    message = _str(errs, obj, "message", "")
    if message and len(message) > 4096:
        _invalid(errs, "message", "", "can have at most 4096 characters")
    _nonneg(errs, "count", _int(errs, obj, "count", ""))
    for key in ("firstTimestamp", "lastTimestamp"):
        _timestamp(errs, obj, key, "")
    _obj(errs, obj, "source", "")
    _obj(errs, obj, "series", "")


def _validate_lease(errs: Errs, obj: Obj) -> None:
    spec = _spec(errs, obj)
    _positive(errs, "spec.leaseDurationSeconds",
              _int(errs, spec, "leaseDurationSeconds", "spec"))
    _nonneg(errs, "spec.leaseTransitions", _int(errs, spec, "leaseTransitions", "spec"))
    _str(errs, spec, "holderIdentity", "spec")
    for key in ("acquireTime", "renewTime"):
        _timestamp(errs, spec, key, "spec")
    strategy = _str(errs, spec, "strategy", "spec")
    _enum(errs, "spec.strategy", strategy, ("OldestEmulationVersion",), required=False)
    if _str(errs, spec, "preferredHolder", "spec") and not strategy:
        _forbidden(errs, "spec.preferredHolder", "may only be specified if `strategy` is "
                                                 "defined")


_ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")


def _validate_endpointslice(errs: Errs, obj: Obj) -> None:
    address_type = _str(errs, obj, "addressType", "")
    _enum(errs, "addressType", address_type, _ADDRESS_TYPES)
    endpoints = _list(errs, obj, "endpoints", "")
    if endpoints is not None and len(endpoints) > 1000:
        _too_many(errs, "endpoints", len(endpoints), 1000)
    for _, ep_path, endpoint in _items(errs, endpoints, "endpoints"):
        addresses = _list(errs, endpoint, "addresses", ep_path)
        addresses_path = _c(ep_path, "addresses")
        if not addresses:
            if _absent(endpoint, "addresses"):
                _required(errs, addresses_path, "must contain at least 1 address")
        elif len(addresses) > 100:
            _too_many(errs, addresses_path, len(addresses), 100)
        for _, a_path, address in _strings(errs, addresses, addresses_path):
            if address_type in ("IPv4", "IPv6"):
                ip = parse_ip(address)
                if ip is None or f"IPv{ip.version}" != address_type:
                    _invalid(errs, a_path, address, f"must be a valid {address_type} address")
                else:
                    # As Endpoints: no loopback, link-local or unspecified targets.
                    _check(errs, a_path, address, _non_special_ip_errors)
            elif address_type == "FQDN":
                _check(errs, a_path, address.removesuffix("."), dns1123_subdomain_errors)
        conditions = _obj(errs, endpoint, "conditions", ep_path)
        for key in ("ready", "serving", "terminating"):
            _bool(errs, conditions, key, _c(ep_path, "conditions"))
        hostname = _str(errs, endpoint, "hostname", ep_path)
        if hostname:
            _check(errs, _c(ep_path, "hostname"), hostname, dns1123_label_errors)
        node_name = _str(errs, endpoint, "nodeName", ep_path)
        if node_name:
            _check(errs, _c(ep_path, "nodeName"), node_name, dns1123_subdomain_errors)
        _str(errs, endpoint, "zone", ep_path)
        _obj(errs, endpoint, "targetRef", ep_path)
    ports = _list(errs, obj, "ports", "")
    if ports is not None and len(ports) > 20000:
        _too_many(errs, "ports", len(ports), 20000)
    names: set[str] = set()
    for _, port_path, port in _items(errs, ports, "ports"):
        name = _str(errs, port, "name", port_path)
        if name:
            _check(errs, _c(port_path, "name"), name, dns1123_label_errors)
        if name is not None:
            if name in names:
                _duplicate(errs, _c(port_path, "name"), name)
            names.add(name)
        _enum(errs, _c(port_path, "protocol"), _str(errs, port, "protocol", port_path),
              _PROTOCOLS)
        _port_num(errs, _c(port_path, "port"), _int(errs, port, "port", port_path))
        app_protocol = _str(errs, port, "appProtocol", port_path)
        if app_protocol:
            _check(errs, _c(port_path, "appProtocol"), app_protocol, qualified_name_errors)


def _validate_endpointslice_update(errs: Errs, obj: Obj, old: Obj) -> None:
    _immutable(errs, "addressType", obj.get("addressType"), old.get("addressType"))


def _validate_endpoints(errs: Errs, obj: Obj) -> None:
    for _, subset_path, subset in _items(errs, _list(errs, obj, "subsets", ""), "subsets"):
        addresses = _list(errs, subset, "addresses", subset_path)
        not_ready = _list(errs, subset, "notReadyAddresses", subset_path)
        if not addresses and not not_ready:
            _required(errs, subset_path, "must specify `addresses` or `notReadyAddresses`")
        for key, items in (("addresses", addresses), ("notReadyAddresses", not_ready)):
            for _, a_path, address in _items(errs, items, _c(subset_path, key)):
                ip = _str(errs, address, "ip", a_path)
                if not ip:
                    _required(errs, _c(a_path, "ip"))
                else:
                    _ip(errs, _c(a_path, "ip"), ip, special_ok=False)
                hostname = _str(errs, address, "hostname", a_path)
                if hostname:
                    _check(errs, _c(a_path, "hostname"), hostname, dns1123_label_errors)
                node_name = _str(errs, address, "nodeName", a_path)
                if node_name:
                    _check(errs, _c(a_path, "nodeName"), node_name, dns1123_subdomain_errors)
                _obj(errs, address, "targetRef", a_path)
        ports = _list(errs, subset, "ports", subset_path)
        ports_path = _c(subset_path, "ports")
        if _absent(subset, "ports"):
            _required(errs, ports_path)
        names: set[str] = set()
        for _, port_path, port in _items(errs, ports, ports_path):
            name = _str(errs, port, "name", port_path)
            if not name:
                if len(ports or ()) > 1:
                    _required(errs, _c(port_path, "name"))
            else:
                _check(errs, _c(port_path, "name"), name, dns1123_label_errors)
                if name in names:
                    _duplicate(errs, _c(port_path, "name"), name)
                names.add(name)
            number = _int(errs, port, "port", port_path)
            if number is None and port.get("port") is None:
                _required(errs, _c(port_path, "port"))
            _port_num(errs, _c(port_path, "port"), number)
            _enum(errs, _c(port_path, "protocol"), _str(errs, port, "protocol", port_path),
                  _PROTOCOLS)


# ============================================================================================
# RBAC (pkg/apis/rbac/validation): roles, cluster roles and their bindings.
# ============================================================================================

_RBAC_GROUP = "rbac.authorization.k8s.io"
_SUBJECT_KINDS = ("ServiceAccount", "User", "Group")


def path_segment_name_errors(value: str) -> list[str]:
    """IsValidPathSegmentName: RBAC names only have to be usable in a URL path."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


def _go_strings(values: list[str]) -> str:
    """A []string as Go's %#v prints it, which upstream uses for a bad slice value."""
    return "[]string{" + ", ".join(json.dumps(v, ensure_ascii=False) for v in values) + "}"


def _validate_policy_rule(errs: Errs, rule: Obj, namespaced: bool, path: str) -> None:
    lists = {key: [v for _, _, v in _strings(errs, _list(errs, rule, key, path),
                                             _c(path, key))]
             for key in ("verbs", "apiGroups", "resources", "resourceNames",
                         "nonResourceURLs")}
    if not lists["verbs"]:
        _required(errs, _c(path, "verbs"), "verbs must contain at least one value")
    urls = lists["nonResourceURLs"]
    if urls:
        urls_path = _c(path, "nonResourceURLs")
        if namespaced:
            errs.append(field_cause(urls_path, f"Invalid value: {_go_strings(urls)}: "
                                               "namespaced rules cannot apply to non-resource "
                                               "URLs"))
        if lists["apiGroups"] or lists["resources"] or lists["resourceNames"]:
            errs.append(field_cause(urls_path, f"Invalid value: {_go_strings(urls)}: rules "
                                               "cannot apply to both regular resources and "
                                               "non-resource URLs"))
        return
    if not lists["apiGroups"]:
        _required(errs, _c(path, "apiGroups"),
                  "resource rules must supply at least one api group")
    if not lists["resources"]:
        _required(errs, _c(path, "resources"), "resource rules must supply at least one resource")
    if lists["resourceNames"] and len(lists["resources"]) > 1:
        _required(errs, _c(path, "resourceNames"),
                  "resource names cannot apply to multiple resources")


def _validate_rules(errs: Errs, obj: Obj, namespaced: bool) -> None:
    for _, rule_path, rule in _items(errs, _list(errs, obj, "rules", ""), "rules"):
        _validate_policy_rule(errs, rule, namespaced, rule_path)


def _validate_role(errs: Errs, obj: Obj) -> None:
    _validate_rules(errs, obj, True)


def _validate_cluster_role(errs: Errs, obj: Obj) -> None:
    _validate_rules(errs, obj, False)
    aggregation = _obj(errs, obj, "aggregationRule", "")
    if aggregation is None:
        return
    path = "aggregationRule.clusterRoleSelectors"
    selectors = _list(errs, aggregation, "clusterRoleSelectors", "aggregationRule")
    if not selectors:
        _required(errs, path,
                  "at least one clusterRoleSelector required if aggregationRule is non-nil")
    for _, selector_path, selector in _items(errs, selectors, path):
        _validate_label_selector(errs, selector, selector_path)


def _validate_role_ref(errs: Errs, obj: Obj, kinds: tuple[str, ...]) -> None:
    ref = _obj(errs, obj, "roleRef", "") or {}
    group = _str(errs, ref, "apiGroup", "roleRef")
    if group != _RBAC_GROUP:
        _not_supported(errs, "roleRef.apiGroup", group or "", (_RBAC_GROUP,))
    kind = _str(errs, ref, "kind", "roleRef")
    if kind not in kinds:
        _not_supported(errs, "roleRef.kind", kind or "", kinds)
    name = _str(errs, ref, "name", "roleRef")
    if not name:
        _required(errs, "roleRef.name")
    else:
        _check(errs, "roleRef.name", name, path_segment_name_errors)


def _validate_subjects(errs: Errs, obj: Obj, namespaced: bool) -> None:
    for _, path, subject in _items(errs, _list(errs, obj, "subjects", ""), "subjects"):
        name = _str(errs, subject, "name", path) or ""
        group = _str(errs, subject, "apiGroup", path) or ""
        namespace = _str(errs, subject, "namespace", path) or ""
        kind = _str(errs, subject, "kind", path) or ""
        name_path, group_path = _c(path, "name"), _c(path, "apiGroup")
        if not name:
            _required(errs, name_path)
        if kind == "ServiceAccount":
            if name:
                _check(errs, name_path, name, dns1123_subdomain_errors)
            if group:
                _not_supported(errs, group_path, group, ("",))
            if not namespaced and not namespace:
                _required(errs, _c(path, "namespace"))
        elif kind in ("User", "Group"):
            if not name:
                _invalid(errs, name_path, name, f"{kind.lower()} name cannot be empty")
            if group != _RBAC_GROUP:
                _not_supported(errs, group_path, group, (_RBAC_GROUP,))
        else:
            _not_supported(errs, _c(path, "kind"), kind, _SUBJECT_KINDS)


def _validate_role_binding(errs: Errs, obj: Obj) -> None:
    _validate_role_ref(errs, obj, ("Role", "ClusterRole"))
    _validate_subjects(errs, obj, True)


def _validate_cluster_role_binding(errs: Errs, obj: Obj) -> None:
    _validate_role_ref(errs, obj, ("ClusterRole",))
    _validate_subjects(errs, obj, False)


def _go_role_ref(ref: Any) -> str:
    """A RoleRef as %#v prints the internal struct (upstream's "cannot change roleRef")."""
    ref = _as_dict(ref)
    fields = ", ".join(f"{go}:{json.dumps(str(ref.get(key) or ''), ensure_ascii=False)}"
                       for go, key in (("APIGroup", "apiGroup"), ("Kind", "kind"),
                                       ("Name", "name")))
    return f"rbac.RoleRef{{{fields}}}"


def _validate_binding_update(errs: Errs, obj: Obj, old: Obj) -> None:
    # A binding's meaning is its roleRef: changing it must be a delete and a create, so
    # that escalation checks and audit see a new grant.
    keys = ("apiGroup", "kind", "name")
    new_ref, old_ref = _as_dict(obj.get("roleRef")), _as_dict(old.get("roleRef"))
    if any(new_ref.get(k) != old_ref.get(k) for k in keys):
        errs.append(field_cause("roleRef", f"Invalid value: {_go_role_ref(new_ref)}: "
                                           "cannot change roleRef"))


# ============================================================================================
# Dispatch.
# ============================================================================================

Validator = Callable[[Errs, Obj], None]
UpdateValidator = Callable[[Errs, Obj, Obj], None]

# Name rule per kind: most names are DNS subdomains; these are stricter because the name
# becomes a DNS label (namespaces in every FQDN, services in `<svc>.<ns>.svc`).
_NAME_RULES: dict[str, Callable[[str], list[str]]] = {
    "namespaces": dns1123_label_errors,
    "services": dns1035_label_errors,
    "roles": path_segment_name_errors,
    "clusterroles": path_segment_name_errors,
    "rolebindings": path_segment_name_errors,
    "clusterrolebindings": path_segment_name_errors,
}

_VALIDATORS: dict[str, Validator] = {
    "pods": _validate_pod,
    "deployments": _validate_deployment,
    "replicasets": _validate_replicaset,
    "daemonsets": _validate_daemonset,
    "jobs": _validate_job,
    "services": _validate_service,
    "configmaps": _validate_configmap,
    "secrets": _validate_secret,
    "namespaces": _validate_namespace,
    "nodes": _validate_node,
    "serviceaccounts": _validate_serviceaccount,
    "events": _validate_event,
    "leases": _validate_lease,
    "endpointslices": _validate_endpointslice,
    "endpoints": _validate_endpoints,
    "roles": _validate_role,
    "clusterroles": _validate_cluster_role,
    "rolebindings": _validate_role_binding,
    "clusterrolebindings": _validate_cluster_role_binding,
}

_UPDATE_VALIDATORS: dict[str, UpdateValidator] = {
    "pods": _validate_pod_update,
    "deployments": _validate_selector_update,
    "replicasets": _validate_selector_update,
    "daemonsets": _validate_selector_update,
    "jobs": _validate_job_update,
    "services": _validate_service_update,
    "configmaps": _validate_configmap_update,
    "secrets": _validate_secret_update,
    "nodes": _validate_node_update,
    "endpointslices": _validate_endpointslice_update,
    "rolebindings": _validate_binding_update,
    "clusterrolebindings": _validate_binding_update,
}


def _namespaced(plural: str) -> bool | None:
    resource = CATALOGUE.by_plural(plural)
    return None if resource is None else resource.namespaced


def validate(plural: str, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[Cause]:
    """Upstream's validation of a `plural` object, on create (`old` None) or update.

    Returns `details.causes` entries; an empty list means the object is valid.
    """
    if not isinstance(obj, dict):
        return [field_cause("", f"Invalid value: {_render(_json_type(obj))}: must be an object")]
    errs: Errs = []
    _validate_meta(errs, obj, _NAME_RULES.get(plural, dns1123_subdomain_errors),
                   _namespaced(plural))
    validator = _VALIDATORS.get(plural)
    if validator is not None:
        validator(errs, obj)
    if isinstance(old, dict):
        _validate_meta_update(errs, obj, old)
        update_validator = _UPDATE_VALIDATORS.get(plural)
        if update_validator is not None:
            update_validator(errs, obj, old)
    return errs


# --- status subresource -----------------------------------------------------------------------

_COUNT_FIELDS = {
    "deployments": ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                    "unavailableReplicas", "terminatingReplicas"),
    "replicasets": ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas",
                    "terminatingReplicas"),
    "daemonsets": ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled",
                   "numberReady", "updatedNumberScheduled", "numberAvailable",
                   "numberUnavailable"),
    "jobs": ("active", "succeeded", "failed", "ready", "terminating"),
}


def _validate_pod_status(errs: Errs, obj: Obj) -> None:
    status = _obj(errs, obj, "status", "")
    if status is None:
        return
    _enum(errs, "status.phase", _str(errs, status, "phase", "status"),
          ("Pending", "Running", "Succeeded", "Failed", "Unknown"), required=False)
    for key in ("podIP", "hostIP"):
        address = _str(errs, status, key, "status")
        if address:
            _ip(errs, f"status.{key}", address)
    for key in ("podIPs", "hostIPs"):
        for _, ip_path, item in _items(errs, _list(errs, status, key, "status"),
                                       f"status.{key}"):
            address = _str(errs, item, "ip", ip_path)
            if address:
                _ip(errs, _c(ip_path, "ip"), address)
    nominated = _str(errs, status, "nominatedNodeName", "status")
    if nominated:
        _check(errs, "status.nominatedNodeName", nominated, dns1123_subdomain_errors)
    for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        for _, s_path, item in _items(errs, _list(errs, status, key, "status"),
                                      f"status.{key}"):
            _str(errs, item, "name", s_path)
            _nonneg(errs, _c(s_path, "restartCount"), _int(errs, item, "restartCount", s_path))
    _list(errs, status, "conditions", "status")


def _validate_service_status(errs: Errs, obj: Obj) -> None:
    ingress_path = "status.loadBalancer.ingress"
    balancer = _obj(errs, _obj(errs, obj, "status", ""), "loadBalancer", "status")
    for _, i_path, ingress in _items(errs, _list(errs, balancer, "ingress",
                                                 "status.loadBalancer"), ingress_path):
        address = _str(errs, ingress, "ip", i_path)
        if address and parse_ip(address) is None:
            _invalid(errs, _c(i_path, "ip"), address, "must be a valid IP address")
        hostname = _str(errs, ingress, "hostname", i_path)
        if hostname:
            _check(errs, _c(i_path, "hostname"), hostname, dns1123_subdomain_errors)
            if parse_ip(hostname) is not None:
                _invalid(errs, _c(i_path, "hostname"), hostname,
                         "must be a DNS name, not an IP address")


def _count_validator(plural: str) -> Validator:
    def validate_counts(errs: Errs, obj: Obj) -> None:
        status = _obj(errs, obj, "status", "")
        for key in _COUNT_FIELDS[plural]:
            _nonneg(errs, f"status.{key}", _int(errs, status, key, "status"))
        _nonneg(errs, "status.observedGeneration",
                _int(errs, status, "observedGeneration", "status", wide=True))
        _list(errs, status, "conditions", "status")
    return validate_counts


_STATUS_VALIDATORS: dict[str, Validator] = {
    "pods": _validate_pod_status,
    "services": _validate_service_status,
    "namespaces": _validate_namespace_status,
    "nodes": _validate_node_status,
    **{plural: _count_validator(plural) for plural in _COUNT_FIELDS},
}


def validate_status_update(plural: str, obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """Validation of a write to the status subresource: identity unchanged, status sane.

    The spec is not checked: the status strategy keeps the stored spec whatever was sent.
    """
    if not isinstance(obj, dict):
        return [field_cause("", f"Invalid value: {_render(_json_type(obj))}: must be an object")]
    errs: Errs = []
    _validate_meta(errs, obj, _NAME_RULES.get(plural, dns1123_subdomain_errors),
                   _namespaced(plural))
    if isinstance(old, dict):
        _validate_meta_update(errs, obj, old)
    status_validator = _STATUS_VALIDATORS.get(plural)
    if status_validator is not None:
        status_validator(errs, obj)
    return errs
