"""Caching of forwarded answers, as CoreDNS's `cache` plugin does in front of `forward`.

Only names outside the cluster domain reach the upstreams, so only they are cached; cluster
records are always answered live from the informers' stores.

- Key: the lower-cased name, type and class of the question, and the query's DO, CD and RD
  bits (an answer fetched with DNSSEC records, without validation, or without recursion is
  not the answer to a different query). The EDNS payload size is not part of the key: the
  handler fits each answer to its own client.
- Positive answers (NOERROR with records in the answer section) are kept for the smallest
  TTL among their records, at most `max_ttl` seconds.
- Negative answers (NXDOMAIN, and NODATA: NOERROR with an empty answer section) are kept as
  RFC 2308 section 5 says, for the smaller of the SOA record's TTL and its MINIMUM field (and
  of the other records' TTLs), at most `negative_ttl` seconds. Without an SOA in the
  authority section they are not cached (RFC 2308 5: nothing would stop them from looping).
- Not cached: any other rcode (SERVFAIL, REFUSED, ...), truncated answers, answers whose
  question is not the one asked, a TTL of 0 (RFC 1035 3.2.1: not to be cached), zone
  transfers. TTLs with the top bit set count as 0 (RFC 2181 8).
- Served from the cache, every record's TTL is the time the entry has left, rounded up: it
  goes down by the time spent in the cache and is at least 1 while the entry lives. The first
  answer is served the same way, so a client never sees a TTL longer than the entry's.
- At most `size` entries; beyond that the least recently used goes. Expired entries are
  dropped when they are looked up (or pushed out by newer ones).
- Single flight: while one query for a key is out at the upstreams, identical queries wait
  for its answer instead of sending their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from dns.wire import (
    Message,
    Opcode,
    Question,
    Rcode,
    Record,
    RRType,
    Soa,
    WireError,
    decode,
    normalize,
    type_name,
)

log = logging.getLogger(__name__)

DEFAULT_SIZE = 10000
DEFAULT_MAX_TTL = 30
DEFAULT_NEGATIVE_TTL = 5
MAX_TTL = 0x7FFFFFFF  # RFC 2181 8: larger values are treated as 0

Forward = Callable[[bytes], Awaitable[bytes | None]]


class CacheKey(NamedTuple):
    name: str  # normalized: lower case, no final dot
    qtype: int
    qclass: int
    dnssec_ok: bool
    cd: bool
    rd: bool


def cache_key(query: Message) -> CacheKey | None:
    """The key a query's answer is cached under; None when it is never cached."""
    if query.opcode != Opcode.QUERY or len(query.questions) != 1:
        return None
    q = query.questions[0]
    if q.qtype in (RRType.AXFR, RRType.IXFR, RRType.OPT):
        return None
    return CacheKey(normalize(q.name), q.qtype, q.qclass,
                    query.edns is not None and query.edns.dnssec_ok, query.cd, query.rd)


def _ttl(rr: Record) -> int:
    return rr.ttl if 0 <= rr.ttl <= MAX_TTL else 0


def _same_question(q: Question, key: CacheKey) -> bool:
    return (normalize(q.name), q.qtype, q.qclass) == (key.name, key.qtype, key.qclass)


def cache_ttl(key: CacheKey, answer: Message, max_ttl: int, negative_ttl: int) -> int:
    """How many seconds `answer` may be cached under `key`; 0: not at all."""
    if not answer.qr or answer.tc or answer.opcode != Opcode.QUERY:
        return 0
    if len(answer.questions) != 1 or not _same_question(answer.questions[0], key):
        return 0
    ttls = [_ttl(rr) for rr in (*answer.answers, *answer.authorities, *answer.additionals)]
    if answer.rcode == Rcode.NOERROR and answer.answers:
        return max(0, min([max_ttl, *ttls]))
    if answer.rcode in (Rcode.NOERROR, Rcode.NXDOMAIN):
        soa = next((rr for rr in answer.authorities
                    if rr.rtype == RRType.SOA and isinstance(rr.data, Soa)), None)
        if soa is None or not isinstance(soa.data, Soa):
            return 0
        return max(0, min([negative_ttl, soa.data.minimum, *ttls]))
    return 0


@dataclasses.dataclass
class Entry:
    answer: Message
    stored: float  # clock() when it came from upstream
    ttl: int

    @property
    def expires(self) -> float:
        return self.stored + self.ttl

    def served(self, now: float) -> Message:
        """The answer as it is handed out at `now`: TTLs cut to what the entry has left."""
        left = max(0, math.ceil(self.expires - now))

        def aged(records: list[Record]) -> list[Record]:
            return [dataclasses.replace(rr, ttl=min(_ttl(rr), left)) for rr in records]

        a = self.answer
        return Message(id=a.id, qr=True, opcode=a.opcode, aa=a.aa, rd=a.rd, ra=a.ra, ad=a.ad,
                       cd=a.cd, rcode=a.rcode, questions=list(a.questions),
                       answers=aged(a.answers), authorities=aged(a.authorities),
                       additionals=aged(a.additionals))


def decode_answer(raw: bytes | None) -> Message | None:
    """An upstream's answer, or None when there was none or it does not parse."""
    if raw is None:
        return None
    try:
        return decode(raw)
    except WireError as e:
        log.warning("malformed answer from upstream: %s", e)
        return None


class AnswerCache:
    def __init__(self, size: int = DEFAULT_SIZE, max_ttl: int = DEFAULT_MAX_TTL,
                 negative_ttl: int = DEFAULT_NEGATIVE_TTL, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if size < 0 or max_ttl < 0 or negative_ttl < 0:
            raise ValueError("cache size and TTLs cannot be negative")
        self.size = size
        self.max_ttl = max_ttl
        self.negative_ttl = negative_ttl
        self.clock = clock
        self._entries: OrderedDict[CacheKey, Entry] = OrderedDict()
        self._flights: dict[CacheKey, asyncio.Task[tuple[Message | None, Entry | None]]] = {}
        # Counters: answers from the cache, exchanges with the upstreams, queries that
        # waited for another one's exchange.
        self.hits = 0
        self.misses = 0
        self.shared = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> Message | None:
        """The cached answer as served now, or None (an expired entry is dropped)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = self.clock()
        if now >= entry.expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry.served(now)

    def put(self, key: CacheKey, answer: Message) -> Entry | None:
        """Keep `answer` when it may be cached; the new entry, or None."""
        if self.size == 0:
            return None
        ttl = cache_ttl(key, answer, self.max_ttl, self.negative_ttl)
        if ttl <= 0:
            return None
        entry = Entry(answer, self.clock(), ttl)
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return entry

    async def resolve(self, query: Message, wire: bytes, forward: Forward) -> Message | None:
        """The answer to `query` (whose encoding is `wire`): from the cache, from an exchange
        already in flight for the same key, or from `forward(wire)`. None when the upstreams
        gave no usable answer. The caller puts in the client's ID, flags and EDNS."""
        key = cache_key(query) if self.size else None
        if key is None:
            return decode_answer(await forward(wire))
        cached = self.get(key)
        if cached is not None:
            self.hits += 1
            log.debug("cache hit name=%s type=%s", key.name, type_name(key.qtype))
            return cached
        flight = self._flights.get(key)
        if flight is None:
            self.misses += 1
            flight = asyncio.create_task(self._fetch(key, wire, forward), name="dns:upstream")
            self._flights[key] = flight
        else:
            self.shared += 1
        # Shielded: a waiter that goes away does not take the others' answer with it.
        answer, entry = await asyncio.shield(flight)
        return entry.served(self.clock()) if entry is not None else answer

    async def _fetch(self, key: CacheKey, wire: bytes, forward: Forward
                     ) -> tuple[Message | None, Entry | None]:
        try:
            answer = decode_answer(await forward(wire))
            entry = self.put(key, answer) if answer is not None else None
            return answer, entry
        finally:
            # In the same step as the put: a new query finds either the entry or the flight.
            if self._flights.get(key) is asyncio.current_task():
                del self._flights[key]

    async def close(self) -> None:
        """Cancel the exchanges still in flight."""
        flights = list(self._flights.values())
        self._flights.clear()
        for flight in flights:
            flight.cancel()
        for flight in flights:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await flight
