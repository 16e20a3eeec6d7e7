"""The cache of upstream answers (dns.cache) on its own and behind the query handler: TTL
arithmetic, negative TTLs from the SOA (RFC 2308), what is never cached, the size bound, IDs
and flags of answers served from the cache, `--cache-size 0`, and single flight. The
upstream is a fake forwarder that counts the queries it gets; no socket is opened."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from dns.cache import AnswerCache, CacheKey, cache_key, cache_ttl
from dns.forward import Forwarder, Upstream
from dns.handler import QueryHandler
from dns.options import parse_args
from dns.records import ClusterState, ClusterZone
from dns.wire import (
    Edns,
    Message,
    Question,
    Rcode,
    Record,
    RRClass,
    RRType,
    Soa,
    decode,
)

D = "cluster.local"
NAME = "www.example.com"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def soa(ttl: int, minimum: int) -> Record:
    return Record("example.com", RRType.SOA, ttl,
                  Soa("ns1.example.com", "hostmaster.example.com", 7, 3600, 600, 86400,
                      minimum))


def upstream_answer(query: Message, *, rcode: int = Rcode.NOERROR,
                    answers: list[Record] | None = None,
                    authorities: list[Record] | None = None, tc: bool = False,
                    aa: bool = False) -> Message:
    return Message(id=query.id, qr=True, rd=query.rd, ra=True, aa=aa, tc=tc, rcode=rcode,
                   questions=list(query.questions), answers=list(answers or []),
                   authorities=list(authorities or []))


Respond = Callable[[Message], Message | None]


def a_records(ttl: int, *ips: str) -> Respond:
    def respond(query: Message) -> Message:
        q = query.questions[0]
        return upstream_answer(query, answers=[Record(q.name, RRType.A, ttl, ip)
                                               for ip in ips or ("192.0.2.1",)])
    return respond


class CountingForwarder(Forwarder):
    """Answers with `respond(query)` (None: every upstream failed), counting the queries;
    while `gate` is set, each exchange first waits for it."""

    def __init__(self, respond: Respond) -> None:
        super().__init__([Upstream("127.0.0.1", 9)])  # never contacted: forward() is ours
        self.respond = respond
        self.queries: list[Message] = []
        self.gate: asyncio.Event | None = None

    async def forward(self, query: bytes) -> bytes | None:
        msg = decode(query)
        self.queries.append(msg)
        if self.gate is not None:
            await asyncio.wait_for(self.gate.wait(), 5)
        answer = self.respond(msg)
        return answer.to_wire() if answer is not None else None


def make_handler(respond: Respond, cache: AnswerCache | None = None, services: list[dict[
        str, object]] | None = None) -> tuple[QueryHandler, CountingForwarder]:
    fwd = CountingForwarder(respond)
    zone = ClusterZone(ClusterState.from_objects(services or []), D)
    return QueryHandler(zone, fwd, cache=cache), fwd


def query(name: str = NAME, qtype: int = RRType.A, *, ident: int = 77, rd: bool = True,
          cd: bool = False, edns: Edns | None = None) -> bytes:
    return Message(id=ident, rd=rd, cd=cd, questions=[Question(name, qtype)],
                   edns=edns).to_wire()


async def ask(handler: QueryHandler, wire: bytes, transport: str = "udp") -> Message:
    raw = await handler.handle(wire, transport)  # type: ignore[arg-type]
    assert raw is not None
    return decode(raw)


def key(name: str = NAME, qtype: int = RRType.A) -> CacheKey:
    k = cache_key(decode(query(name, qtype)))
    assert k is not None
    return k


def ttl_of(msg: Message, max_ttl: int = 30, negative_ttl: int = 5) -> int:
    q = msg.questions[0]
    return cache_ttl(key(q.name, q.qtype), msg, max_ttl, negative_ttl)


# --- TTL arithmetic -----------------------------------------------------------------------


def test_positive_ttl_is_the_smallest_record_ttl_capped() -> None:
    q = decode(query())
    a = [Record(NAME, RRType.A, 60, "192.0.2.1"), Record(NAME, RRType.A, 20, "192.0.2.2")]
    assert ttl_of(upstream_answer(q, answers=a)) == 20
    assert ttl_of(upstream_answer(q, answers=a[:1])) == 30  # --cache-max-ttl
    assert ttl_of(upstream_answer(q, answers=a[:1]), max_ttl=300) == 60
    # every section counts, the authority's SOA of a CNAME chain too
    cname = [Record(NAME, RRType.CNAME, 100, "web.example.net"),
             Record("web.example.net", RRType.A, 100, "192.0.2.3")]
    assert ttl_of(upstream_answer(q, answers=cname, authorities=[soa(8, 60)])) == 8
    # TTL 0: not to be cached; TTLs with the top bit set count as 0 (RFC 2181 8)
    assert ttl_of(upstream_answer(q, answers=[Record(NAME, RRType.A, 0, "192.0.2.1")])) == 0
    assert ttl_of(upstream_answer(q, answers=[Record(NAME, RRType.A, 0x80000000,
                                                     "192.0.2.1")])) == 0


@pytest.mark.parametrize("soa_ttl,minimum,want", [
    (300, 3, 3),    # the SOA's MINIMUM
    (2, 300, 2),    # the SOA record's own TTL
    (300, 300, 5),  # --cache-negative-ttl
    (0, 300, 0),
])
def test_negative_ttl_comes_from_the_soa(soa_ttl: int, minimum: int, want: int) -> None:
    q = decode(query())
    nx = upstream_answer(q, rcode=Rcode.NXDOMAIN, authorities=[soa(soa_ttl, minimum)])
    nodata = upstream_answer(q, authorities=[soa(soa_ttl, minimum)])
    assert ttl_of(nx) == ttl_of(nodata) == want
    assert ttl_of(nx, negative_ttl=1000) == min(soa_ttl, minimum)


def test_what_is_never_cached() -> None:
    q = decode(query())
    a = [Record(NAME, RRType.A, 60, "192.0.2.1")]
    assert ttl_of(upstream_answer(q, rcode=Rcode.NXDOMAIN)) == 0  # no SOA (RFC 2308 5)
    referral = upstream_answer(q, authorities=[Record("example.com", RRType.NS, 60,
                                                      "ns1.example.com")])
    assert ttl_of(referral) == 0
    for rcode in (Rcode.SERVFAIL, Rcode.REFUSED, Rcode.FORMERR, Rcode.NOTIMP):
        assert ttl_of(upstream_answer(q, rcode=rcode, authorities=[soa(60, 60)])) == 0
    assert ttl_of(upstream_answer(q, answers=a, tc=True)) == 0
    other = Message(id=1, qr=True, questions=[Question("other.example.com", RRType.A)],
                    answers=a)
    assert cache_ttl(key(), other, 30, 5) == 0  # not the question asked
    assert cache_ttl(key(NAME, RRType.AAAA), upstream_answer(q, answers=a), 30, 5) == 0
    assert cache_ttl(key(), Message(id=1, questions=[Question(NAME, 1)], answers=a),
                     30, 5) == 0  # not even an answer (no QR)
    assert cache_key(decode(query(NAME, RRType.AXFR))) is None


def test_keys_are_case_insensitive_and_split_by_do_cd_rd() -> None:
    base = key()
    assert cache_key(decode(query("WWW.Example.COM."))) == base
    variants = [cache_key(decode(w)) for w in (
        query(edns=Edns(dnssec_ok=True)), query(cd=True), query(rd=False),
        query(NAME, RRType.AAAA))]
    assert base not in variants and len(set(variants)) == 4
    assert cache_key(decode(query(edns=Edns(udp_size=4096)))) == base  # size: not in key


# --- behind the handler -------------------------------------------------------------------


async def test_ttls_go_down_while_cached_and_the_entry_expires() -> None:
    clock = Clock()
    handler, fwd = make_handler(a_records(60), AnswerCache(clock=clock))
    first = await ask(handler, query())
    assert [r.ttl for r in first.answers] == [30]  # capped, on the first answer too
    clock.now += 10.4
    assert [r.ttl for r in (await ask(handler, query())).answers] == [20]  # 19.6 rounded up
    clock.now += 19.1
    assert [r.ttl for r in (await ask(handler, query())).answers] == [1]  # never 0 while kept
    assert len(fwd.queries) == 1
    clock.now += 0.5  # 30 s after: gone
    again = await ask(handler, query())
    assert [r.ttl for r in again.answers] == [30] and len(fwd.queries) == 2


async def test_short_upstream_ttl_is_kept_and_decremented() -> None:
    clock = Clock()
    handler, fwd = make_handler(a_records(7), AnswerCache(clock=clock))
    assert (await ask(handler, query())).answers[0].ttl == 7
    clock.now += 3
    assert (await ask(handler, query())).answers[0].ttl == 4
    clock.now += 4
    await ask(handler, query())
    assert len(fwd.queries) == 2


async def test_negative_answers_are_cached_with_their_soa_aged() -> None:
    clock = Clock()

    def nxdomain(q: Message) -> Message:
        return upstream_answer(q, rcode=Rcode.NXDOMAIN, authorities=[soa(3600, 900)])

    handler, fwd = make_handler(nxdomain, AnswerCache(negative_ttl=5, clock=clock))
    first = await ask(handler, query("nope.example.com"))
    assert first.rcode == Rcode.NXDOMAIN and first.authorities[0].ttl == 5
    assert isinstance(first.authorities[0].data, Soa)
    assert first.authorities[0].data.minimum == 900  # the record itself is untouched
    clock.now += 2
    hit = await ask(handler, query("nope.example.com", ident=78))
    assert hit.rcode == Rcode.NXDOMAIN and hit.id == 78 and hit.authorities[0].ttl == 3
    assert len(fwd.queries) == 1
    clock.now += 3
    await ask(handler, query("nope.example.com"))
    assert len(fwd.queries) == 2


async def test_cached_answers_get_the_clients_id_spelling_and_flags() -> None:
    def respond(q: Message) -> Message:  # an authoritative upstream with an OPT record
        msg = a_records(60, "192.0.2.5")(q)
        assert msg is not None
        msg.aa = True
        msg.edns = Edns(udp_size=4096)
        return msg

    handler, fwd = make_handler(respond, AnswerCache())
    first = await ask(handler, query("Www.Example.Com", ident=1, edns=Edns(udp_size=4096)))
    assert first.id == 1 and first.edns is not None and first.edns.udp_size == 1232
    hit = await ask(handler, query("wWW.eXAMPLE.cOM", ident=0xBEEF))
    assert len(fwd.queries) == 1
    assert hit.id == 0xBEEF and hit.qr and hit.rd and hit.ra and not hit.tc
    assert not hit.aa  # served from a cache: not authoritative
    assert hit.edns is None  # the client sent no OPT record, so it gets none back
    assert hit.questions == [Question("wWW.eXAMPLE.cOM", RRType.A)]
    assert [(r.name, r.data) for r in hit.answers] == [("wWW.eXAMPLE.cOM", "192.0.2.5")]
    over_tcp = await ask(handler, query(ident=3), "tcp")
    assert over_tcp.id == 3 and len(fwd.queries) == 1


async def test_servfail_refused_and_truncated_answers_are_not_cached() -> None:
    for respond in (lambda q: upstream_answer(q, rcode=Rcode.SERVFAIL),
                    lambda q: upstream_answer(q, rcode=Rcode.REFUSED),
                    lambda q: upstream_answer(q, tc=True, answers=[
                        Record(NAME, RRType.A, 60, "192.0.2.1")]),
                    lambda q: None):  # every upstream failed
        cache = AnswerCache()
        handler, fwd = make_handler(respond, cache)
        answers = [await ask(handler, query(ident=i)) for i in (1, 2)]
        assert len(fwd.queries) == 2 and len(cache) == 0
        assert [a.id for a in answers] == [1, 2]
    assert answers[0].rcode == Rcode.SERVFAIL


async def test_the_cache_is_bounded_and_evicts_the_least_recently_used() -> None:
    cache = AnswerCache(size=3)
    names = [f"n{i}.example.com" for i in range(4)]
    for name in names[:3]:
        q = decode(query(name))
        assert cache.put(key(name), a_records(60)(q)) is not None  # type: ignore[arg-type]
    assert cache.get(key(names[0])) is not None  # n0 used: n1 is now the oldest
    q = decode(query(names[3]))
    cache.put(key(names[3]), a_records(60)(q))  # type: ignore[arg-type]
    assert len(cache) == 3
    assert cache.get(key(names[1])) is None
    assert all(cache.get(key(n)) is not None for n in (names[0], names[2], names[3]))
    # many more names never grow it past the bound
    handler, fwd = make_handler(a_records(60), cache)
    for i in range(50):
        await ask(handler, query(f"m{i}.example.com"))
    assert len(cache) == 3 and len(fwd.queries) == 50


async def test_size_zero_disables_the_cache() -> None:
    opts = parse_args(["--upstream", "192.0.2.53", "--cache-size", "0"])
    assert opts.cache_size == 0
    cache = AnswerCache(size=0)
    handler, fwd = make_handler(a_records(60), cache)
    for _ in range(3):
        assert (await ask(handler, query())).answers[0].ttl == 60  # TTL untouched
    assert len(fwd.queries) == 3 and len(cache) == 0
    # without a cache at all (what app.py builds for size 0) answers pass through as sent
    plain, fwd = make_handler(a_records(60))
    await ask(plain, query())
    await ask(plain, query())
    assert len(fwd.queries) == 2


async def test_cluster_names_are_never_cached() -> None:
    services: list[dict[str, object]] = [
        {"metadata": {"name": "web", "namespace": "default"},
         "spec": {"clusterIP": "10.96.0.5", "ports": []}}]
    cache = AnswerCache()
    handler, fwd = make_handler(a_records(60), cache, services)
    for _ in range(2):
        resp = await ask(handler, query(f"web.default.svc.{D}"))
        assert resp.aa and [r.data for r in resp.answers] == ["10.96.0.5"]
        assert (await ask(handler, query(f"nope.default.svc.{D}"))).rcode == Rcode.NXDOMAIN
    assert len(cache) == 0 and fwd.queries == []


async def test_external_name_targets_are_cached() -> None:
    services: list[dict[str, object]] = [
        {"metadata": {"name": "ext", "namespace": "default"},
         "spec": {"type": "ExternalName", "externalName": NAME}}]
    handler, fwd = make_handler(a_records(60, "192.0.2.80"), AnswerCache(), services)
    for _ in range(2):
        resp = await ask(handler, query(f"ext.default.svc.{D}"))
        assert [(r.rtype, r.data) for r in resp.answers] == [(RRType.CNAME, NAME),
                                                              (RRType.A, "192.0.2.80")]
    assert len(fwd.queries) == 1
    assert (await ask(handler, query())).answers[0].data == "192.0.2.80"  # same entry
    assert len(fwd.queries) == 1


async def test_large_cached_answers_are_fit_to_each_client() -> None:
    def big(q: Message) -> Message:
        return upstream_answer(q, answers=[Record(q.questions[0].name, RRType.A, 60,
                                                  f"192.0.2.{i}") for i in range(60)])

    handler, fwd = make_handler(big, AnswerCache())
    assert len((await ask(handler, query(), "tcp")).answers) == 60
    udp = await ask(handler, query(ident=9))
    assert udp.tc and udp.answers == [] and udp.id == 9
    edns = await ask(handler, query(edns=Edns(udp_size=4096)))
    assert not edns.tc and len(edns.answers) == 60
    assert len(fwd.queries) == 1


# --- single flight ------------------------------------------------------------------------


async def until(cond: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


async def in_flight(handler: QueryHandler, fwd: CountingForwarder, cache: AnswerCache,
                    wires: list[bytes], exchanges: int,
                    release: Callable[[], Awaitable[None]] | None = None) -> list[Message]:
    """Ask all `wires` at once while the upstream holds its answers; release it once
    `exchanges` exchanges have started and every other query waits for one of them."""
    fwd.gate = asyncio.Event()
    tasks = [asyncio.create_task(ask(handler, w)) for w in wires]
    await until(lambda: len(fwd.queries) == exchanges
                and cache.shared == len(wires) - exchanges, "the queries to line up")
    fwd.gate.set()
    return await asyncio.wait_for(asyncio.gather(*tasks), 5)


async def test_identical_queries_in_flight_share_one_exchange() -> None:
    cache = AnswerCache()
    handler, fwd = make_handler(a_records(60, "192.0.2.7"), cache)
    idents = [100 + i for i in range(5)]
    answers = await in_flight(handler, fwd, cache, [query("wWw.example.com", ident=i)
                                                    for i in idents], 1)
    assert len(fwd.queries) == 1 and cache.misses == 1 and cache.shared == 4
    assert [a.id for a in answers] == idents
    assert all([r.data for r in a.answers] == ["192.0.2.7"] for a in answers)
    assert all(a.questions[0].name == "wWw.example.com" for a in answers)
    await ask(handler, query())
    assert len(fwd.queries) == 1 and cache.hits == 1


async def test_different_keys_do_not_share_an_exchange() -> None:
    cache = AnswerCache()
    handler, fwd = make_handler(a_records(60), cache)
    wires = [query(ident=1), query(ident=2), query(NAME, RRType.AAAA, ident=3),
             query(ident=4, edns=Edns(dnssec_ok=True))]
    answers = await in_flight(handler, fwd, cache, wires, 3)
    assert len(fwd.queries) == 3 and [a.id for a in answers] == [1, 2, 3, 4]


async def test_a_failed_exchange_fails_all_its_waiters_and_is_not_kept() -> None:
    cache = AnswerCache()
    handler, fwd = make_handler(lambda q: None, cache)
    answers = await in_flight(handler, fwd, cache, [query(ident=i) for i in range(3)], 1)
    assert [a.rcode for a in answers] == [Rcode.SERVFAIL] * 3
    assert [a.id for a in answers] == [0, 1, 2]
    fwd.gate = None
    await ask(handler, query())
    assert len(fwd.queries) == 2 and len(cache) == 0


async def test_a_waiter_going_away_does_not_cancel_the_exchange() -> None:
    cache = AnswerCache()
    handler, fwd = make_handler(a_records(60), cache)
    fwd.gate = asyncio.Event()
    first = asyncio.create_task(ask(handler, query(ident=1)))
    second = asyncio.create_task(ask(handler, query(ident=2)))
    await until(lambda: cache.shared == 1, "the second query to wait")
    first.cancel()
    await asyncio.sleep(0)
    fwd.gate.set()
    assert (await asyncio.wait_for(second, 5)).answers[0].data == "192.0.2.1"
    assert len(fwd.queries) == 1 and len(cache) == 1


async def test_close_cancels_exchanges_in_flight() -> None:
    cache = AnswerCache()
    handler, fwd = make_handler(a_records(60), cache)
    fwd.gate = asyncio.Event()
    task = asyncio.create_task(ask(handler, query()))
    await until(lambda: len(fwd.queries) == 1, "the exchange to start")
    await asyncio.wait_for(handler.close(), 5)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert len(cache) == 0


def test_bad_cache_settings() -> None:
    with pytest.raises(ValueError):
        AnswerCache(size=-1)
    with pytest.raises(ValueError):
        AnswerCache(max_ttl=-1)
    assert cache_key(Message(id=1, questions=[])) is None
    assert cache_key(decode(query())) == CacheKey(NAME, RRType.A, RRClass.IN, False, False,
                                                  True)
