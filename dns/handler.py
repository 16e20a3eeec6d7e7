"""One query in, one answer out: what the server does with a message, transport aside.

- Garbage that has no header is dropped; a message with the QR bit set (an answer) too, so
  two servers can never bounce errors at each other. Anything else that does not parse gets
  FORMERR, an opcode other than QUERY gets NOTIMP, and more or less than one question FORMERR.
- EDNS0 (RFC 6891): a query with an OPT record gets one back advertising our payload size;
  a version above 0 gets BADVERS.
- Names in the cluster domain (and reverse names of cluster IPs) are answered from the zone,
  authoritatively. Until the informers have synced, cluster names get SERVFAIL, which
  resolvers retry, rather than a negative answer they would cache.
- Every other name is forwarded upstream; without upstreams it gets NXDOMAIN (logged once),
  and when every upstream fails, SERVFAIL. With an `AnswerCache` (dns/cache.py) upstream
  answers are cached and identical queries in flight share one exchange; such answers are
  re-encoded for each client: its ID, RD and CD bits, question spelling and EDNS, never AA.
- An ExternalName's CNAME to a name outside the cluster is followed through the upstreams
  when the client asked for recursion, as CoreDNS does: stub resolvers (glibc, musl) do not
  chase a bare CNAME themselves.
- Over UDP an answer larger than 512 octets, or than the client's EDNS payload size, first
  loses its additional section, and if still too large is cut down to the question with TC
  set, so the client retries over TCP (RFC 1035 4.2.1, RFC 2181 9).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Callable
from typing import Literal

from dns.cache import AnswerCache, decode_answer
from dns.forward import Forwarder
from dns.records import Answer, ClusterZone
from dns.wire import (
    Edns,
    Message,
    Opcode,
    Question,
    Rcode,
    Record,
    RRClass,
    RRType,
    WireError,
    decode,
    normalize,
    peek_header,
    type_name,
)

log = logging.getLogger(__name__)

Transport = Literal["udp", "tcp"]
UDP_PAYLOAD = 1232  # what we advertise: fits an IPv6 minimum MTU (DNS flag day 2020)
MAX_UDP_PAYLOAD = 4096
MIN_UDP_PAYLOAD = 512
_QR = 0x8000
_RD = 0x0100


def udp_limit(query: Message) -> int:
    if query.edns is None:
        return MIN_UDP_PAYLOAD
    return max(MIN_UDP_PAYLOAD, min(query.edns.udp_size, MAX_UDP_PAYLOAD))


def truncated(msg: Message) -> bytes:
    """The message cut down to its question (and OPT) with TC set."""
    return dataclasses.replace(msg, tc=True, answers=[], authorities=[], additionals=[]
                               ).to_wire()


def fit(msg: Message, limit: int) -> bytes:
    wire = msg.to_wire()
    if len(wire) <= limit:
        return wire
    if msg.additionals:
        # The additional section is optional: dropping it needs no TC bit (RFC 2181 9).
        wire = dataclasses.replace(msg, additionals=[]).to_wire()
        if len(wire) <= limit:
            return wire
    return truncated(msg)


class QueryHandler:
    def __init__(self, zone: ClusterZone, forwarder: Forwarder | None = None, *,
                 ready: Callable[[], bool] = lambda: True, cache: AnswerCache | None = None
                 ) -> None:
        self.zone = zone
        self.forwarder = forwarder
        self.ready = ready
        self.cache = cache
        self._warned_no_upstream = False

    async def close(self) -> None:
        """Cancel upstream exchanges still in flight."""
        if self.cache is not None:
            await self.cache.close()

    async def handle(self, data: bytes, transport: Transport) -> bytes | None:
        """The answer's bytes, or None to stay silent. Never raises."""
        header = peek_header(data)
        if header is None or header[1] & _QR:
            return None
        try:
            return await self._handle(data, transport)
        except Exception:
            log.exception("query failed id=%d", header[0])
            return _bare_error(header[0], header[1], Rcode.SERVFAIL)

    async def _handle(self, data: bytes, transport: Transport) -> bytes | None:
        try:
            query = decode(data)
        except WireError as e:
            ident, flags = peek_header(data) or (0, 0)
            log.debug("malformed query id=%d error=%s", ident, e)
            return _bare_error(ident, flags, Rcode.FORMERR)
        limit = udp_limit(query) if transport == "udp" else 0xFFFF
        resp = self._response(query)
        if query.opcode != Opcode.QUERY:
            resp.rcode = Rcode.NOTIMP
            return fit(resp, limit)
        if len(query.questions) != 1:
            resp.rcode = Rcode.FORMERR
            return fit(resp, limit)
        if query.edns is not None and query.edns.version > 0:
            resp.rcode = Rcode.BADVERS
            return fit(resp, limit)
        q = query.questions[0]
        log.debug("query name=%s type=%s transport=%s", q.name, type_name(q.qtype), transport)
        in_zone = self.zone.contains(q.name)
        if in_zone and (q.qclass not in (RRClass.IN, RRClass.ANY)
                        or q.qtype in (RRType.AXFR, RRType.IXFR)):
            resp.rcode = Rcode.REFUSED
            return fit(resp, limit)
        if in_zone and not self.ready():
            resp.rcode = Rcode.SERVFAIL
            return fit(resp, limit)
        answer = self.zone.resolve(q.name, q.qtype) if q.qclass in (RRClass.IN,
                                                                    RRClass.ANY) else None
        if answer is not None:
            if answer.cname_target and self.forwarder is not None and query.rd:
                await self._chase(answer, q.qtype)
            self._fill(resp, q, answer)
            return fit(resp, limit)
        return await self._forward(data, query, resp, limit)

    def _response(self, query: Message) -> Message:
        edns = None
        if query.edns is not None:
            edns = Edns(udp_size=UDP_PAYLOAD, dnssec_ok=query.edns.dnssec_ok)
        return Message(id=query.id, qr=True, opcode=query.opcode, rd=query.rd, cd=query.cd,
                       ra=self.forwarder is not None, questions=list(query.questions[:1]),
                       edns=edns)

    def _fill(self, resp: Message, q: Question, answer: Answer) -> None:
        """Copy the zone's answer in, owner names spelt as the client spelt its question."""
        asked = normalize(q.name)

        def as_asked(rr: Record) -> Record:
            return dataclasses.replace(rr, name=q.name) if normalize(rr.name) == asked else rr

        resp.aa = True
        resp.rcode = answer.rcode
        resp.answers = [as_asked(rr) for rr in answer.answers]
        resp.authorities = list(answer.authorities)
        resp.additionals = list(answer.additionals)

    async def _chase(self, answer: Answer, qtype: int) -> None:
        assert self.forwarder is not None and answer.cname_target is not None
        query = Message(id=secrets.randbelow(0x10000), rd=True,
                        questions=[Question(answer.cname_target, qtype)],
                        edns=Edns(udp_size=UDP_PAYLOAD))
        upstream = await self._ask_upstream(query, query.to_wire())
        if upstream is None:
            return  # the CNAME alone still tells the client where to look
        if upstream.rcode in (Rcode.NOERROR, Rcode.NXDOMAIN):
            answer.rcode = upstream.rcode
            answer.answers += upstream.answers
            answer.authorities = upstream.authorities if not upstream.answers else []

    async def _forward(self, data: bytes, query: Message, resp: Message, limit: int
                       ) -> bytes:
        if self.forwarder is None:
            if not self._warned_no_upstream:
                log.warning("no upstream servers: names outside %s get NXDOMAIN",
                            self.zone.domain)
                self._warned_no_upstream = True
            resp.rcode = Rcode.NXDOMAIN
            return fit(resp, limit)
        if self.cache is not None:
            return self._relay(resp, query, await self._ask_upstream(query, data), limit)
        raw = await self.forwarder.forward(data)
        if raw is None:
            resp.rcode = Rcode.SERVFAIL
            return fit(resp, limit)
        if len(raw) <= limit:
            return raw
        try:
            return truncated(decode(raw))
        except WireError:
            resp.rcode = Rcode.SERVFAIL
            return fit(resp, limit)

    async def _ask_upstream(self, query: Message, wire: bytes) -> Message | None:
        assert self.forwarder is not None
        if self.cache is not None:
            return await self.cache.resolve(query, wire, self.forwarder.forward)
        return decode_answer(await self.forwarder.forward(wire))

    def _relay(self, resp: Message, query: Message, upstream: Message | None, limit: int
               ) -> bytes:
        """An upstream's (possibly cached) answer in `resp`, the client's own response."""
        if upstream is None or (upstream.rcode > 0xF and resp.edns is None):
            resp.rcode = Rcode.SERVFAIL
            return fit(resp, limit)
        q = resp.questions[0]
        asked = normalize(q.name)

        def as_asked(records: list[Record]) -> list[Record]:
            return [dataclasses.replace(rr, name=q.name) if normalize(rr.name) == asked
                    else rr for rr in records]

        dnssec_ok = query.edns is not None and query.edns.dnssec_ok
        resp.rcode = upstream.rcode
        resp.tc = upstream.tc
        resp.ra = upstream.ra
        # RFC 6840 5.8: AD only for a client that showed it understands it.
        resp.ad = upstream.ad and (query.ad or dnssec_ok)
        resp.answers = as_asked(upstream.answers)
        resp.authorities = as_asked(upstream.authorities)
        resp.additionals = as_asked(upstream.additionals)
        return fit(resp, limit)


def _bare_error(ident: int, flags: int, rcode: int) -> bytes:
    """A header-only answer, for a query too broken to echo its question."""
    return Message(id=ident, qr=True, opcode=(flags >> 11) & 0xF, rd=bool(flags & _RD),
                   rcode=rcode).to_wire()
