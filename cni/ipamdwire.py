"""The CNI plugin's side of proto/ipamd.proto, encoded and decoded by hand.

The plugin is a process per pod ADD and DEL; importing protobuf and the generated module
cost ~20 ms of CPU per run. Its messages are flat (strings, int32s, repeated strings), so
the proto3 wire format for them is a few lines. ipamd itself and every other client use the
generated classes; tests/unit/test_ipamdwire.py checks these schemas against the generated
descriptors and the bytes against protobuf's, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Request fields in field-number order (field n is at index n - 1); all strings.
ADD_NETWORK_REQUEST = ("container_id", "netns", "ifname", "network_name",
                       "k8s_pod_namespace", "k8s_pod_name", "k8s_pod_infra_container_id",
                       "client_version")
DEL_NETWORK_REQUEST = ("container_id", "ifname", "network_name", "k8s_pod_namespace",
                       "k8s_pod_name", "reason", "client_version")
CHECK_NETWORK_REQUEST = ("container_id", "ifname", "network_name")

# Reply schemas: field number -> (name, kind) with kind "string", "int32" or "repeated".
Schema = Mapping[int, tuple[str, str]]
ADD_NETWORK_REPLY: Schema = {1: ("ipv4_addr", "string"), 2: ("prefix_length", "int32"),
                             3: ("gateway", "string"), 4: ("eni_id", "string"),
                             5: ("device_number", "int32"), 6: ("vpc_cidrs", "repeated")}
DEL_NETWORK_REPLY: Schema = {1: ("ipv4_addr", "string"), 2: ("eni_id", "string")}
CHECK_NETWORK_REPLY: Schema = {1: ("ipv4_addr", "string"), 2: ("eni_id", "string")}


class WireError(ValueError):
    """Bytes that are not a valid message."""


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int32s are ten bytes, as protobuf writes them
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode(fields: Sequence[str], values: Mapping[str, str]) -> bytes:
    """A message whose fields are all strings; empty strings are left out (proto3)."""
    out = bytearray()
    for number, name in enumerate(fields, start=1):
        value = values.get(name, "")
        if value:
            raw = value.encode()
            out += _varint(number << 3 | 2) + _varint(len(raw)) + raw
    return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise WireError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def decode(schema: Schema, data: bytes) -> dict[str, Any]:
    """The fields of `schema` (defaults for absent ones); unknown fields are skipped."""
    result: dict[str, Any] = {name: [] if kind == "repeated" else 0 if kind == "int32" else ""
                              for name, kind in schema.values()}
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = _read_varint(data, pos)
            if value >= 1 << 63:
                value -= 1 << 64
            field = schema.get(number)
            if field is not None and field[1] == "int32":
                result[field[0]] = value
        elif wire_type == 2:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise WireError("truncated length-delimited field")
            raw, pos = data[pos:pos + length], pos + length
            field = schema.get(number)
            if field is not None and field[1] == "string":
                result[field[0]] = raw.decode()
            elif field is not None and field[1] == "repeated":
                result[field[0]].append(raw.decode())
        elif wire_type in (1, 5):
            pos += 8 if wire_type == 1 else 4
            if pos > len(data):
                raise WireError("truncated fixed-width field")
        else:
            raise WireError(f"unsupported wire type {wire_type}")
    return result
