"""cni.ipamdwire, the plugin's hand-coded ipamd messages, against protobuf's generated ones:
same field names and numbers as proto/ipamd.proto, same bytes, same decoded values."""

from __future__ import annotations

import pytest

from cni import ipamdwire
from proto import ipamd_pb2

REQUESTS = [(ipamdwire.ADD_NETWORK_REQUEST, ipamd_pb2.AddNetworkRequest),
            (ipamdwire.DEL_NETWORK_REQUEST, ipamd_pb2.DelNetworkRequest),
            (ipamdwire.CHECK_NETWORK_REQUEST, ipamd_pb2.CheckNetworkRequest)]
REPLIES = [(ipamdwire.ADD_NETWORK_REPLY, ipamd_pb2.AddNetworkReply),
           (ipamdwire.DEL_NETWORK_REPLY, ipamd_pb2.DelNetworkReply),
           (ipamdwire.CHECK_NETWORK_REPLY, ipamd_pb2.CheckNetworkReply)]


@pytest.mark.parametrize(("fields", "message"), REQUESTS)
def test_request_schemas_match_the_proto(fields: tuple[str, ...], message: type) -> None:
    assert {f.name: f.number for f in message.DESCRIPTOR.fields} == {
        name: n for n, name in enumerate(fields, start=1)}


@pytest.mark.parametrize(("schema", "message"), REPLIES)
def test_reply_schemas_match_the_proto(schema: ipamdwire.Schema, message: type) -> None:
    expected = {}
    for f in message.DESCRIPTOR.fields:
        kind = "repeated" if f.is_repeated else "int32" if f.type == f.TYPE_INT32 else "string"
        expected[f.number] = (f.name, kind)
    assert dict(schema) == expected


@pytest.mark.parametrize(("fields", "message"), REQUESTS)
def test_requests_encode_as_protobuf_does(fields: tuple[str, ...], message: type) -> None:
    values = {name: f"{name}-välue-{i}" * (i + 1) for i, name in enumerate(fields)}
    values[fields[1]] = ""  # proto3 leaves empty strings out
    assert ipamdwire.encode(fields, values) == message(**values).SerializeToString()
    assert ipamdwire.encode(fields, {}) == b""


def test_replies_decode_as_protobuf_does() -> None:
    reply = ipamd_pb2.AddNetworkReply(ipv4_addr="10.200.0.7", prefix_length=16,
                                      gateway="10.200.0.1", eni_id="eni-1", device_number=-3,
                                      vpc_cidrs=["10.200.0.0/16", "10.201.0.0/16"])
    assert ipamdwire.decode(ipamdwire.ADD_NETWORK_REPLY, reply.SerializeToString()) == {
        "ipv4_addr": "10.200.0.7", "prefix_length": 16, "gateway": "10.200.0.1",
        "eni_id": "eni-1", "device_number": -3,
        "vpc_cidrs": ["10.200.0.0/16", "10.201.0.0/16"]}
    assert ipamdwire.decode(ipamdwire.DEL_NETWORK_REPLY, b"") == {"ipv4_addr": "",
                                                                  "eni_id": ""}


def test_unknown_fields_are_skipped() -> None:
    # StatusReply's int32 field 3 means nothing to a DelNetworkReply: skipped.
    raw = ipamd_pb2.StatusReply(max_pods=29).SerializeToString() + \
        ipamd_pb2.DelNetworkReply(ipv4_addr="10.0.0.1").SerializeToString()
    assert ipamdwire.decode(ipamdwire.DEL_NETWORK_REPLY, raw)["ipv4_addr"] == "10.0.0.1"


@pytest.mark.parametrize("raw", [b"\x0a", b"\x0a\x05abc", b"\x08", b"\x0b", b"\x0d\x00",
                                 b"\x08" + b"\xff" * 11])
def test_malformed_bytes_raise_wire_error(raw: bytes) -> None:
    with pytest.raises(ipamdwire.WireError):
        ipamdwire.decode(ipamdwire.ADD_NETWORK_REPLY, raw)
