"""DNS messages on the wire: RFC 1035 section 4, with EDNS0 (RFC 6891).

`decode(data)` turns a datagram (or a TCP message without its length prefix) into a
`Message`; anything malformed raises `WireError`, which a server answers with FORMERR.
`Message.to_wire()` encodes, compressing names (RFC 1035 4.1.4) wherever the RFCs allow it.

Names are held in presentation form without the final dot ("web.default.svc.cluster.local";
the root is ""). Bytes that cannot appear literally in a label are written as `\\DDD` and a
literal dot or backslash as `\\.` / `\\\\`, as zone files do, so every wire name survives a
decode/encode round trip.

Record data (`Record.data`) is typed for the types a cluster DNS server deals in:
A/AAAA -> the address text; CNAME/PTR/NS -> a name; SRV -> `Srv`; SOA -> `Soa`;
MX -> `Mx`; TXT -> a tuple of byte strings; anything else -> the raw rdata bytes.
The EDNS0 OPT pseudo-record is not kept among the additional records but in `Message.edns`.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from enum import IntEnum

HEADER = struct.Struct("!HHHHHH")
MAX_NAME_WIRE = 255  # octets, length bytes and the final zero included (RFC 1035 2.3.4)
MAX_LABEL = 63
MAX_POINTER_TARGET = 0x3FFF


class RRType(IntEnum):
    A = 1
    NS = 2
    CNAME = 5
    SOA = 6
    PTR = 12
    MX = 15
    TXT = 16
    AAAA = 28
    SRV = 33
    OPT = 41
    IXFR = 251
    AXFR = 252
    ANY = 255


class RRClass(IntEnum):
    IN = 1
    CH = 3
    NONE = 254
    ANY = 255


class Opcode(IntEnum):
    QUERY = 0
    IQUERY = 1
    STATUS = 2
    NOTIFY = 4
    UPDATE = 5


class Rcode(IntEnum):
    NOERROR = 0
    FORMERR = 1
    SERVFAIL = 2
    NXDOMAIN = 3
    NOTIMP = 4
    REFUSED = 5
    BADVERS = 16  # extended: only expressible with an OPT record


def type_name(rtype: int) -> str:
    try:
        return RRType(rtype).name
    except ValueError:
        return f"TYPE{rtype}"


class WireError(ValueError):
    """The bytes are not a well-formed DNS message (the answer is FORMERR)."""


@dataclass(frozen=True)
class Question:
    name: str
    qtype: int
    qclass: int = RRClass.IN


@dataclass(frozen=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True)
class Soa:
    mname: str
    rname: str
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int


@dataclass(frozen=True)
class Mx:
    preference: int
    exchange: str


RData = str | Srv | Soa | Mx | tuple[bytes, ...] | bytes


@dataclass(frozen=True)
class Record:
    name: str
    rtype: int
    ttl: int
    data: RData
    rclass: int = RRClass.IN


@dataclass(frozen=True)
class Edns:
    """The OPT pseudo-record: payload size, extended rcode bits, version, DO bit, options."""

    udp_size: int = 1232
    version: int = 0
    dnssec_ok: bool = False
    options: bytes = b""


@dataclass
class Message:
    id: int = 0
    qr: bool = False
    opcode: int = Opcode.QUERY
    aa: bool = False
    tc: bool = False
    rd: bool = False
    ra: bool = False
    ad: bool = False
    cd: bool = False
    rcode: int = Rcode.NOERROR  # the full 12-bit rcode; bits above 4 travel in the OPT record
    questions: list[Question] = field(default_factory=list)
    answers: list[Record] = field(default_factory=list)
    authorities: list[Record] = field(default_factory=list)
    additionals: list[Record] = field(default_factory=list)
    edns: Edns | None = None

    @property
    def question(self) -> Question | None:
        return self.questions[0] if self.questions else None

    def flags(self) -> int:
        bits = (self.qr << 15) | ((self.opcode & 0xF) << 11) | (self.aa << 10) | \
            (self.tc << 9) | (self.rd << 8) | (self.ra << 7) | (self.ad << 5) | (self.cd << 4)
        return bits | (self.rcode & 0xF)

    def to_wire(self) -> bytes:
        if self.rcode > 0xF and self.edns is None:
            raise ValueError(f"rcode {self.rcode} needs an EDNS OPT record")
        out = _Writer()
        additionals = len(self.additionals) + (self.edns is not None)
        out.raw(HEADER.pack(self.id & 0xFFFF, self.flags(), len(self.questions),
                            len(self.answers), len(self.authorities), additionals))
        for q in self.questions:
            out.name(q.name)
            out.raw(struct.pack("!HH", q.qtype, q.qclass))
        for rr in (*self.answers, *self.authorities, *self.additionals):
            out.record(rr)
        if self.edns is not None:
            out.opt(self.edns, self.rcode >> 4)
        return out.getvalue()


# --- names in presentation form -----------------------------------------------------------


def split_name(name: str) -> list[bytes]:
    """Labels of a presentation-form name (escapes resolved); "" and "." are the root."""
    if name in ("", "."):
        return []
    labels: list[bytes] = []
    cur = bytearray()
    i, n = 0, len(name)
    while i < n:
        ch = name[i]
        if ch == "\\":
            if i + 3 < n and all(c in "0123456789" for c in name[i + 1:i + 4]):
                value = int(name[i + 1:i + 4])
                if value > 255:
                    raise ValueError(f"bad escape in name {name!r}")
                cur.append(value)
                i += 4
                continue
            if i + 1 >= n:
                raise ValueError(f"dangling backslash in name {name!r}")
            cur += name[i + 1].encode()
            i += 2
            continue
        if ch == ".":
            if not cur:
                raise ValueError(f"empty label in name {name!r}")
            labels.append(bytes(cur))
            cur = bytearray()
        else:
            cur += ch.encode()
        i += 1
    if cur:
        labels.append(bytes(cur))
    elif not name.endswith("."):
        raise ValueError(f"empty label in name {name!r}")
    for label in labels:
        if len(label) > MAX_LABEL:
            raise ValueError(f"label longer than {MAX_LABEL} octets in {name!r}")
    if sum(len(label) + 1 for label in labels) + 1 > MAX_NAME_WIRE:
        raise ValueError(f"name longer than {MAX_NAME_WIRE} octets: {name!r}")
    return labels


def label_text(label: bytes) -> str:
    out: list[str] = []
    for b in label:
        if b in (0x2E, 0x5C):  # "." and "\"
            out.append("\\" + chr(b))
        elif 0x21 <= b <= 0x7E:
            out.append(chr(b))
        else:
            out.append(f"\\{b:03d}")
    return "".join(out)


def join_name(labels: list[bytes]) -> str:
    return ".".join(label_text(label) for label in labels)


def normalize(name: str) -> str:
    """Lower-case without a final dot: how names are compared (RFC 4343 case rules)."""
    return name.rstrip(".").lower() if name not in ("", ".") else ""


# --- encoding ----------------------------------------------------------------------------


class _Writer:
    """A growing message with a table of names written so far, for compression pointers."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.offsets: dict[tuple[bytes, ...], int] = {}

    def getvalue(self) -> bytes:
        if len(self.buf) > 0xFFFF:
            raise ValueError(f"message of {len(self.buf)} octets exceeds 65535")
        return bytes(self.buf)

    def raw(self, data: bytes) -> None:
        self.buf += data

    def name(self, name: str, compress: bool = True) -> None:
        labels = split_name(name)
        for i in range(len(labels)):
            # Compression matches case-insensitively (names are equal regardless of case).
            suffix = tuple(label.lower() for label in labels[i:])
            if compress and suffix in self.offsets:
                self.buf += struct.pack("!H", 0xC000 | self.offsets[suffix])
                return
            if len(self.buf) <= MAX_POINTER_TARGET and suffix not in self.offsets:
                self.offsets[suffix] = len(self.buf)
            self.buf.append(len(labels[i]))
            self.buf += labels[i]
        self.buf.append(0)

    def record(self, rr: Record) -> None:
        self.name(rr.name)
        self.raw(struct.pack("!HHI", rr.rtype, rr.rclass, rr.ttl & 0xFFFFFFFF))
        length_at = len(self.buf)
        self.raw(b"\0\0")
        self._rdata(rr)
        rdlength = len(self.buf) - length_at - 2
        if rdlength > 0xFFFF:
            raise ValueError(f"rdata of {rdlength} octets exceeds 65535")
        struct.pack_into("!H", self.buf, length_at, rdlength)

    def _rdata(self, rr: Record) -> None:
        data, rtype = rr.data, rr.rtype
        if isinstance(data, bytes):
            self.raw(data)
        elif rtype == RRType.A and isinstance(data, str):
            self.raw(ipaddress.IPv4Address(data).packed)
        elif rtype == RRType.AAAA and isinstance(data, str):
            self.raw(ipaddress.IPv6Address(data).packed)
        elif rtype in (RRType.CNAME, RRType.PTR, RRType.NS) and isinstance(data, str):
            self.name(data)
        elif isinstance(data, Srv):
            self.raw(struct.pack("!HHH", data.priority, data.weight, data.port))
            self.name(data.target, compress=False)  # RFC 2782: no compression of the target
        elif isinstance(data, Soa):
            self.name(data.mname)
            self.name(data.rname)
            self.raw(struct.pack("!IIIII", data.serial, data.refresh, data.retry, data.expire,
                                 data.minimum))
        elif isinstance(data, Mx):
            self.raw(struct.pack("!H", data.preference))
            self.name(data.exchange)
        elif isinstance(data, tuple):
            for chunk in data:
                if len(chunk) > 255:
                    raise ValueError("TXT character-string longer than 255 octets")
                self.buf.append(len(chunk))
                self.raw(chunk)
        else:
            raise ValueError(f"cannot encode {type_name(rtype)} data {data!r}")

    def opt(self, edns: Edns, ext_rcode: int) -> None:
        flags = 0x8000 if edns.dnssec_ok else 0
        ttl = ((ext_rcode & 0xFF) << 24) | ((edns.version & 0xFF) << 16) | flags
        self.buf.append(0)  # root owner name
        self.raw(struct.pack("!HHIH", RRType.OPT, max(512, edns.udp_size) & 0xFFFF, ttl,
                             len(edns.options)))
        self.raw(edns.options)


# --- decoding ----------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise WireError(f"message truncated at offset {self.pos} (wanted {n} octets)")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def unpack(self, fmt: struct.Struct) -> tuple[int, ...]:
        return fmt.unpack(self.take(fmt.size))

    def name(self) -> str:
        labels, self.pos = read_name(self.data, self.pos)
        return join_name(labels)


_U16 = struct.Struct("!H")
_QTAIL = struct.Struct("!HH")
_RRHEAD = struct.Struct("!HHIH")
_SRV = struct.Struct("!HHH")
_SOA_TAIL = struct.Struct("!IIIII")


def read_name(data: bytes, pos: int) -> tuple[list[bytes], int]:
    """The labels of the name at `pos` and the offset just after it (after its pointer).

    A compression pointer must point strictly before the label sequence that contains it,
    which rules out loops without counting jumps.
    """
    labels: list[bytes] = []
    end: int | None = None
    wire_len = 1
    floor = pos  # pointers must go below the start of the current run of labels
    while True:
        if pos >= len(data):
            raise WireError("name runs past the end of the message")
        length = data[pos]
        kind = length & 0xC0
        if kind == 0xC0:
            if pos + 1 >= len(data):
                raise WireError("compression pointer cut off")
            target = ((length & 0x3F) << 8) | data[pos + 1]
            if target >= floor:
                raise WireError(f"compression pointer at {pos} does not point backwards")
            if end is None:
                end = pos + 2
            pos = floor = target
            continue
        if kind:
            raise WireError(f"unsupported label type 0x{kind:02x} at offset {pos}")
        if length == 0:
            return labels, (end if end is not None else pos + 1)
        wire_len += length + 1
        if wire_len > MAX_NAME_WIRE:
            raise WireError(f"name longer than {MAX_NAME_WIRE} octets")
        if pos + 1 + length > len(data):
            raise WireError("label runs past the end of the message")
        labels.append(data[pos + 1:pos + 1 + length])
        pos += 1 + length


def decode(data: bytes) -> Message:
    """Parse a whole message; raises WireError when it is malformed."""
    r = _Reader(data)
    if len(data) < HEADER.size:
        raise WireError(f"message of {len(data)} octets is shorter than a header")
    ident, flags, qd, an, ns, ar = r.unpack(HEADER)
    msg = Message(id=ident, qr=bool(flags & 0x8000), opcode=(flags >> 11) & 0xF,
                  aa=bool(flags & 0x0400), tc=bool(flags & 0x0200), rd=bool(flags & 0x0100),
                  ra=bool(flags & 0x0080), ad=bool(flags & 0x0020), cd=bool(flags & 0x0010),
                  rcode=flags & 0xF)
    for _ in range(qd):
        name = r.name()
        qtype, qclass = r.unpack(_QTAIL)
        msg.questions.append(Question(name, qtype, qclass))
    for count, section in ((an, msg.answers), (ns, msg.authorities), (ar, msg.additionals)):
        for _ in range(count):
            rr = _record(r, data)
            if isinstance(rr, tuple):
                if section is not msg.additionals:
                    raise WireError("OPT record outside the additional section")
                if msg.edns is not None:
                    raise WireError("more than one OPT record")
                msg.edns, ext_rcode = rr
                msg.rcode |= ext_rcode << 4  # the OPT TTL carries the rcode's upper 8 bits
            else:
                section.append(rr)
    return msg


def _record(r: _Reader, data: bytes) -> Record | tuple[Edns, int]:
    name = r.name()
    rtype, rclass, ttl, rdlength = r.unpack(_RRHEAD)
    start = r.pos
    rdata = r.take(rdlength)
    end = r.pos
    if rtype == RRType.OPT:
        if name:
            raise WireError("OPT record with a non-root owner name")
        return Edns(udp_size=rclass, version=(ttl >> 16) & 0xFF,
                    dnssec_ok=bool(ttl & 0x8000), options=rdata), ttl >> 24
    value = _rdata(rtype, rdata, data, start, end)
    return Record(name, rtype, ttl, value, rclass)


def _rdata(rtype: int, rdata: bytes, data: bytes, start: int, end: int) -> RData:
    """Typed record data; names inside may point anywhere earlier in the message."""

    def name_at(pos: int) -> tuple[str, int]:
        labels, after = read_name(data[:end], pos)
        return join_name(labels), after

    def exactly(after: int) -> None:
        if after != end:
            raise WireError(f"{type_name(rtype)} rdata length does not match its contents")

    if rtype == RRType.A:
        if len(rdata) != 4:
            raise WireError("A rdata must be 4 octets")
        return str(ipaddress.IPv4Address(rdata))
    if rtype == RRType.AAAA:
        if len(rdata) != 16:
            raise WireError("AAAA rdata must be 16 octets")
        return str(ipaddress.IPv6Address(rdata))
    if rtype in (RRType.CNAME, RRType.PTR, RRType.NS):
        target, after = name_at(start)
        exactly(after)
        return target
    if rtype == RRType.SRV:
        if len(rdata) < _SRV.size + 1:
            raise WireError("SRV rdata too short")
        priority, weight, port = _SRV.unpack_from(rdata)
        target, after = name_at(start + _SRV.size)
        exactly(after)
        return Srv(priority, weight, port, target)
    if rtype == RRType.MX:
        if len(rdata) < 3:
            raise WireError("MX rdata too short")
        exchange, after = name_at(start + 2)
        exactly(after)
        return Mx(_U16.unpack_from(rdata)[0], exchange)
    if rtype == RRType.SOA:
        mname, after = name_at(start)
        rname, after = name_at(after)
        if end - after != _SOA_TAIL.size:
            raise WireError("SOA rdata length does not match its contents")
        return Soa(mname, rname, *_SOA_TAIL.unpack_from(data, after))
    if rtype == RRType.TXT:
        chunks: list[bytes] = []
        i = 0
        while i < len(rdata):
            n = rdata[i]
            if i + 1 + n > len(rdata):
                raise WireError("TXT character-string runs past its rdata")
            chunks.append(rdata[i + 1:i + 1 + n])
            i += 1 + n
        return tuple(chunks)
    return rdata


def peek_header(data: bytes) -> tuple[int, int] | None:
    """(id, flags) of a message, or None when not even the header is there."""
    if len(data) < HEADER.size:
        return None
    ident, flags = struct.unpack_from("!HH", data)
    return ident, flags
