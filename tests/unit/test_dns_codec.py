"""The DNS wire codec (dns.wire): round trips, name compression on output, compression
pointers on input, EDNS0, and malformed messages (always WireError, never anything else)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dns.wire import (
    Edns,
    Message,
    Mx,
    Question,
    Rcode,
    Record,
    RRType,
    Soa,
    Srv,
    WireError,
    decode,
    join_name,
    normalize,
    read_name,
    split_name,
)

SOA = Soa("ns.dns.cluster.local", "hostmaster.cluster.local", 42, 7200, 1800, 86400, 30)


def full_message() -> Message:
    owner = "web.default.svc.cluster.local"
    return Message(
        id=0xBEEF, qr=True, aa=True, rd=True, ra=True, rcode=Rcode.NXDOMAIN,
        questions=[Question(owner, RRType.ANY)],
        answers=[
            Record(owner, RRType.A, 30, "10.96.0.5"),
            Record(owner, RRType.AAAA, 30, "fd00::5"),
            Record(owner, RRType.CNAME, 30, "other.default.svc.cluster.local"),
            Record("5.0.96.10.in-addr.arpa", RRType.PTR, 30, owner),
            Record("cluster.local", RRType.NS, 30, "ns.dns.cluster.local"),
            Record(f"_http._tcp.{owner}", RRType.SRV, 30, Srv(0, 50, 8080, owner)),
            Record("example.com", RRType.MX, 300, Mx(10, "mail.example.com")),
            Record("dns-version.cluster.local", RRType.TXT, 30, (b"1.1.0", b"", b"x y")),
            Record("odd.example.com", 99, 5, b"\x01\x02\x03"),
        ],
        authorities=[Record("cluster.local", RRType.SOA, 30, SOA)],
        additionals=[Record(owner, RRType.A, 30, "10.96.0.6")],
        edns=Edns(udp_size=4096, dnssec_ok=True, options=b"\x00\x0a\x00\x02hi"),
    )


def test_round_trip_keeps_every_field_and_record_type() -> None:
    msg = full_message()
    assert decode(msg.to_wire()) == msg


def test_header_flags_and_counts_on_the_wire() -> None:
    msg = Message(id=1, qr=True, opcode=2, aa=True, tc=True, rd=True, ra=True, ad=True,
                  cd=True, rcode=5, questions=[Question("a.b", RRType.A)])
    wire = msg.to_wire()
    ident, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", wire)
    assert (ident, qd, an, ns, ar) == (1, 1, 0, 0, 0)
    assert flags == 0x8000 | (2 << 11) | 0x0400 | 0x0200 | 0x0100 | 0x0080 | 0x20 | 0x10 | 5
    assert decode(wire) == msg


def test_repeated_names_are_compressed_to_pointers() -> None:
    owner = "web.default.svc.cluster.local"
    msg = Message(id=1, questions=[Question(owner, RRType.A)],
                  answers=[Record(owner, RRType.A, 30, f"10.0.0.{i}") for i in range(5)])
    wire = msg.to_wire()
    # The question name is written once at offset 12; every answer points at it.
    assert wire.count(b"\x03web\x07default") == 1
    assert wire.count(b"\xc0\x0c") == 5
    assert len(wire) == 12 + (len(owner) + 2 + 4) + 5 * (2 + 10 + 4)
    assert decode(wire) == msg


def test_suffixes_are_shared_and_matched_case_insensitively() -> None:
    msg = Message(id=1, questions=[Question("A.Default.svc.cluster.local", RRType.A)],
                  answers=[Record("b.default.SVC.cluster.local", RRType.A, 1, "10.0.0.1")])
    wire = msg.to_wire()
    # "b" then a pointer to "Default.svc..." (offset 12 + 2).
    assert b"\x01b\xc0\x0e" in wire
    decoded = decode(wire)
    # The pointer lends the suffix as first written; names compare equal case-insensitively.
    assert decoded.answers[0].name == "b.Default.svc.cluster.local"
    assert normalize(decoded.answers[0].name) == "b.default.svc.cluster.local"
    assert decoded.questions[0].name == "A.Default.svc.cluster.local"  # case preserved


def test_srv_targets_are_not_compressed() -> None:
    owner = "_http._tcp.web.ns.svc.cluster.local"
    msg = Message(id=1, answers=[Record(owner, RRType.SRV, 30,
                                        Srv(0, 100, 80, "web.ns.svc.cluster.local"))])
    wire = msg.to_wire()
    assert wire.endswith(b"\x00P\x03web\x02ns\x03svc\x07cluster\x05local\x00")  # RFC 2782


def test_decodes_pointers_written_by_others_including_chains_and_rdata() -> None:
    header = struct.pack("!HHHHHH", 9, 0x8180, 1, 2, 0, 0)
    q = b"\x03www\x07example\x03com\x00" + struct.pack("!HH", 1, 1)  # name at 12
    # answer 1: owner -> pointer 12, CNAME rdata "cdn" + pointer to "example.com" (16)
    cname_rdata = b"\x03cdn\xc0\x10"
    a1 = b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 60, len(cname_rdata)) + cname_rdata
    cdn_at = len(header) + len(q) + 2 + 10  # where "cdn..." starts
    # answer 2: owner is a pointer to the CNAME target, which itself ends in a pointer.
    a2 = struct.pack("!H", 0xC000 | cdn_at) + struct.pack("!HHIH", 1, 1, 60, 4) + \
        bytes([192, 0, 2, 7])
    msg = decode(header + q + a1 + a2)
    assert msg.id == 9 and msg.qr and msg.rd and msg.ra
    assert msg.questions == [Question("www.example.com", RRType.A)]
    assert msg.answers == [Record("www.example.com", RRType.CNAME, 60, "cdn.example.com"),
                           Record("cdn.example.com", RRType.A, 60, "192.0.2.7")]


def test_names_with_odd_bytes_survive_a_round_trip() -> None:
    labels = [b"a.b", b"back\\slash", b"\x00\xff sp", b"x"]
    name = join_name(labels)
    assert name == "a\\.b.back\\\\slash.\\000\\255\\032sp.x"
    assert split_name(name) == labels
    msg = Message(id=3, questions=[Question(name, RRType.TXT)])
    assert decode(msg.to_wire()).questions[0].name == name


@pytest.mark.parametrize("name", ["", "."])
def test_root_name(name: str) -> None:
    assert split_name(name) == []
    msg = Message(id=3, questions=[Question(name, RRType.NS)])
    assert msg.to_wire()[12:13] == b"\x00"
    assert decode(msg.to_wire()).questions[0].name == ""


@pytest.mark.parametrize("name", ["a..b", ".a", "a" * 64 + ".com", ".".join(["abcdefg"] * 40),
                                  "bad\\999escape", "dangling\\"])
def test_invalid_names_are_refused_on_output(name: str) -> None:
    with pytest.raises(ValueError):
        split_name(name)


def test_extended_rcode_travels_in_the_opt_record() -> None:
    msg = Message(id=1, qr=True, rcode=Rcode.BADVERS, edns=Edns())
    wire = msg.to_wire()
    assert wire[3] & 0xF == 0  # BADVERS is 16: the header keeps only the low 4 bits
    assert decode(wire).rcode == Rcode.BADVERS
    with pytest.raises(ValueError):
        Message(id=1, rcode=Rcode.BADVERS).to_wire()


def test_opt_payload_size_below_512_is_sent_as_512() -> None:
    wire = Message(id=1, edns=Edns(udp_size=100)).to_wire()
    assert decode(wire).edns == Edns(udp_size=512)


def test_unencodable_data_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Message(answers=[Record("a", RRType.TXT, 1, (b"x" * 256,))]).to_wire()
    with pytest.raises(ValueError):
        Message(answers=[Record("a", RRType.A, 1, "fd00::1")]).to_wire()
    with pytest.raises(ValueError):
        Message(answers=[Record("a", RRType.SRV, 1, "not an srv")]).to_wire()


# --- malformed input ----------------------------------------------------------------------


def _hdr(qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return struct.pack("!HHHHHH", 7, 0x0100, qd, an, ns, ar)


GOOD_Q = b"\x01a\x00" + struct.pack("!HH", 1, 1)


def _rr(rtype: int, rdata: bytes, owner: bytes = b"\x00") -> bytes:
    return owner + struct.pack("!HHIH", rtype, 1, 30, len(rdata)) + rdata


@pytest.mark.parametrize("data", [
    pytest.param(b"\x00\x07\x01", id="short-header"),
    pytest.param(_hdr(), id="missing-question"),
    pytest.param(_hdr() + b"\x05ab", id="label-past-end"),
    pytest.param(_hdr() + b"\x01a\x00\x00", id="question-tail-cut"),
    pytest.param(_hdr() + b"\xc0\x0c" + struct.pack("!HH", 1, 1), id="pointer-to-itself"),
    pytest.param(_hdr() + b"\xc0\x20" + struct.pack("!HH", 1, 1) + b"\x00" * 30,
                 id="forward-pointer"),
    pytest.param(_hdr(qd=2) + b"\x01a\xc0\x11" + struct.pack("!HH", 1, 1) + b"\x01b\xc0\x0c"
                 + struct.pack("!HH", 1, 1), id="pointer-loop"),
    pytest.param(_hdr() + b"\x01a\xc0", id="pointer-cut"),
    pytest.param(_hdr() + b"\x41abc\x00" + struct.pack("!HH", 1, 1), id="extended-label"),
    pytest.param(_hdr() + b"\x3f" + b"a" * 63 + b"\x3f" + b"b" * 63 + b"\x3f" + b"c" * 63
                 + b"\x3f" + b"d" * 63 + b"\x00" + struct.pack("!HH", 1, 1), id="name-256"),
    pytest.param(_hdr(an=1) + GOOD_Q + b"\x00" + struct.pack("!HHIH", 1, 1, 30, 9) + b"\x01",
                 id="rdlength-past-end"),
    pytest.param(_hdr(an=1) + GOOD_Q + _rr(1, b"\x01\x02\x03"), id="a-3-octets"),
    pytest.param(_hdr(an=1) + GOOD_Q + _rr(28, b"\x00" * 4), id="aaaa-4-octets"),
    pytest.param(_hdr(an=1) + GOOD_Q + _rr(5, b"\x01x\x00junk"), id="cname-trailing-junk"),
    pytest.param(_hdr(an=1) + GOOD_Q + _rr(5, b"\x05x"), id="cname-cut-in-rdata"),
    pytest.param(_hdr(an=1) + GOOD_Q + _rr(33, b"\x00\x01"), id="srv-short"),
    pytest.param(_hdr(an=1) + GOOD_Q + _rr(6, b"\x00\x00" + b"\x00" * 19), id="soa-short"),
    pytest.param(_hdr(an=1) + GOOD_Q + _rr(16, b"\x05ab"), id="txt-overrun"),
    pytest.param(_hdr(an=1) + GOOD_Q + _rr(15, b"\x00"), id="mx-short"),
    pytest.param(_hdr(an=1) + GOOD_Q + _rr(41, b""), id="opt-in-answers"),
    pytest.param(_hdr(ar=2) + GOOD_Q + _rr(41, b"") + _rr(41, b""), id="two-opts"),
    pytest.param(_hdr(ar=1) + GOOD_Q + _rr(41, b"", owner=b"\x01a\x00"), id="opt-not-root"),
])
def test_malformed_messages_raise_wire_error(data: bytes) -> None:
    with pytest.raises(WireError):
        decode(data)


def test_pointer_names_cannot_exceed_255_octets() -> None:
    # 4 x 63-octet labels reached through a pointer still add up to more than 255.
    long_name = b"\x3f" + b"a" * 63 + b"\x3f" + b"b" * 63 + b"\x3f" + b"c" * 63 + b"\x00"
    data = _hdr(qd=2) + long_name + struct.pack("!HH", 1, 1) + b"\x3f" + b"d" * 63 + \
        b"\xc0\x0c" + struct.pack("!HH", 1, 1)
    with pytest.raises(WireError, match="longer than 255"):
        decode(data)
    labels, end = read_name(data, 12)
    assert len(labels) == 3 and end == 12 + len(long_name)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_decode_or_raise_wire_error_only(data: bytes) -> None:
    try:
        decode(data)
    except WireError:
        pass


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0, max_value=400), st.integers(min_value=0, max_value=255),
       st.integers(min_value=0, max_value=400))
def test_mutated_valid_messages_decode_or_raise_wire_error_only(pos: int, byte: int,
                                                               cut: int) -> None:
    wire = bytearray(full_message().to_wire())
    wire[pos % len(wire)] = byte
    try:
        decode(bytes(wire[:len(wire) - cut % len(wire)]))
    except WireError:
        pass
