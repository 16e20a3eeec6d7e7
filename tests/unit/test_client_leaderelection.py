"""Leader election against a fake Lease endpoint with compare-and-swap on resourceVersion."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from client.kubeconfig import ClientConfig
from client.leaderelection import LeaderElector, micro_time
from client.rest import ApiClient, RetryPolicy

Obj = dict[str, Any]
LEASES = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"
# short timings from the brief: lease 1 s, renew deadline 0.7 s, retry 0.2 s
TIMINGS: dict[str, Any] = {"lease_duration": 1.0, "renew_deadline": 0.7, "retry_period": 0.2}
MICRO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _status(code: int, reason: str, message: str) -> web.Response:
    return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                              "code": code, "reason": reason, "message": message}, status=code)


class FakeLeases:
    """One namespace of Leases with the apiserver's optimistic concurrency."""

    def __init__(self) -> None:
        self.rv = 0
        self.leases: dict[str, Obj] = {}
        self.specs_written: list[Obj] = []
        self.forbid_writes = False

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(LEASES + "/{name}", self.get)
        app.router.add_post(LEASES, self.create)
        app.router.add_put(LEASES + "/{name}", self.update)
        return app

    async def get(self, request: web.Request) -> web.Response:
        lease = self.leases.get(request.match_info["name"])
        if lease is None:
            return _status(404, "NotFound", "leases not found")
        return web.json_response(lease)

    async def create(self, request: web.Request) -> web.Response:
        if self.forbid_writes:
            return _status(403, "Forbidden", "no")
        body = await request.json()
        name = body["metadata"]["name"]
        if name in self.leases:
            return _status(409, "AlreadyExists", f'leases "{name}" already exists')
        return web.json_response(self._store(body), status=201)

    async def update(self, request: web.Request) -> web.Response:
        if self.forbid_writes:
            return _status(403, "Forbidden", "no")
        body = await request.json()
        current = self.leases.get(request.match_info["name"])
        if current is None:
            return _status(404, "NotFound", "leases not found")
        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            return _status(409, "Conflict", "the object has been modified")
        return web.json_response(self._store(body))

    def _store(self, body: Obj) -> Obj:
        self.rv += 1
        lease = copy.deepcopy(body)
        lease["metadata"]["resourceVersion"] = str(self.rv)
        self.leases[lease["metadata"]["name"]] = lease
        self.specs_written.append(copy.deepcopy(lease["spec"]))
        return lease

    def holder(self, name: str = "lock") -> str | None:
        lease = self.leases.get(name)
        return lease["spec"]["holderIdentity"] if lease else None


@pytest.fixture
async def leases() -> AsyncIterator[tuple[FakeLeases, ApiClient]]:
    fake = FakeLeases()
    async with TestServer(fake.app()) as server:
        cfg = ClientConfig(server=str(server.make_url("")).rstrip("/"))
        retry = RetryPolicy(max_attempts=2, initial_delay=0.01, max_delay=0.02)
        async with ApiClient(cfg, retry=retry) as api:
            yield fake, api


class Candidate:
    """An elector plus its run task, recording the callbacks it got."""

    def __init__(self, api: ApiClient, identity: str, **kwargs: Any) -> None:
        self.elector = LeaderElector(api, "kube-system", "lock", identity,
                                     **{**TIMINGS, **kwargs})
        self.started = asyncio.Event()
        self.stopped = asyncio.Event()
        self.leader_cancelled = False
        self.task: asyncio.Task[None] | None = None

    async def lead(self) -> None:
        self.started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.leader_cancelled = True
            raise

    def start(self) -> Candidate:
        self.task = asyncio.create_task(self.elector.run(self.lead, self.stopped.set),
                                        name=f"elector:{self.elector.identity}")
        return self

    async def cancel(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def _first_leader(*candidates: Candidate, timeout: float = 3.0) -> Candidate:
    waits = {asyncio.create_task(c.started.wait()): c for c in candidates}
    done, pending = await asyncio.wait(waits, timeout=timeout,
                                       return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    assert done, "nobody became leader"
    return waits[done.pop()]


def test_micro_time_format() -> None:
    assert micro_time(datetime(2024, 1, 1, tzinfo=UTC)) == "2024-01-01T00:00:00.000000Z"
    assert MICRO.match(micro_time())


def test_timings_are_validated() -> None:
    api = ApiClient(ClientConfig(server="http://unused"))
    with pytest.raises(ValueError, match="lease_duration"):
        LeaderElector(api, "ns", "n", "me", lease_duration=1, renew_deadline=1)
    with pytest.raises(ValueError, match="retry_period"):
        LeaderElector(api, "ns", "n", "me", lease_duration=3, renew_deadline=1, retry_period=1)
    with pytest.raises(ValueError, match="identity"):
        LeaderElector(api, "ns", "n", "")


async def test_exactly_one_of_two_leads(leases: tuple[FakeLeases, ApiClient]) -> None:
    fake, api = leases
    a, b = Candidate(api, "a").start(), Candidate(api, "b").start()
    leader = await _first_leader(a, b)
    other = b if leader is a else a
    await asyncio.sleep(1.2)  # longer than the lease: the leader keeps renewing it
    assert leader.elector.is_leader and not other.elector.is_leader
    assert not other.started.is_set()
    assert fake.holder() == leader.elector.identity == other.elector.leader
    spec = fake.leases["lock"]["spec"]
    assert spec["leaseDurationSeconds"] == 1 and spec["leaseTransitions"] == 0
    assert MICRO.match(spec["acquireTime"]) and MICRO.match(spec["renewTime"])
    assert spec["renewTime"] > spec["acquireTime"]  # renewed, same acquisition
    assert len(fake.specs_written) >= 5
    await a.cancel()
    await b.cancel()


async def test_compare_and_swap_lets_one_of_two_racers_win(
        leases: tuple[FakeLeases, ApiClient]) -> None:
    fake, api = leases
    old = LeaderElector(api, "kube-system", "lock", "old", **TIMINGS)
    assert await old.try_acquire_or_renew()
    assert await old.release()  # holder "" now: free for anyone
    a = LeaderElector(api, "kube-system", "lock", "a", **TIMINGS)
    b = LeaderElector(api, "kube-system", "lock", "b", **TIMINGS)
    won = await asyncio.gather(a.try_acquire_or_renew(), b.try_acquire_or_renew())
    assert sorted(won) == [False, True]
    assert fake.holder() == ("a" if won[0] else "b")
    assert fake.leases["lock"]["spec"]["leaseTransitions"] == 1
    # the loser respects the fresh lease on its next attempt
    loser = b if won[0] else a
    assert not await loser.try_acquire_or_renew()


async def test_standby_takes_over_after_lease_expiry(
        leases: tuple[FakeLeases, ApiClient]) -> None:
    fake, api = leases
    first = Candidate(api, "first", release_on_cancel=False).start()
    await asyncio.wait_for(first.started.wait(), 2)
    standby = Candidate(api, "standby").start()
    await asyncio.sleep(0.3)
    assert not standby.started.is_set()
    loop = asyncio.get_running_loop()
    await first.cancel()  # dies without releasing: the lease must expire first
    died = loop.time()
    assert first.stopped.is_set() and first.leader_cancelled
    await asyncio.wait_for(standby.started.wait(), 3)
    assert loop.time() - died >= 0.7  # waited out the 1 s lease (observed locally)
    assert fake.holder() == "standby"
    assert fake.leases["lock"]["spec"]["leaseTransitions"] == 1
    await standby.cancel()


async def test_release_on_cancel_hands_over_at_once(
        leases: tuple[FakeLeases, ApiClient]) -> None:
    fake, api = leases
    first = Candidate(api, "first").start()
    await asyncio.wait_for(first.started.wait(), 2)
    standby = Candidate(api, "standby").start()
    await asyncio.sleep(0.1)
    loop = asyncio.get_running_loop()
    await first.cancel()
    released = loop.time()
    assert {"holderIdentity": "", "leaseDurationSeconds": 1}.items() <= \
        fake.specs_written[-1].items()
    await asyncio.wait_for(standby.started.wait(), 2)
    assert loop.time() - released < 0.6  # one retry period, not a lease duration
    assert fake.holder() == "standby"
    await standby.cancel()


async def test_leader_that_cannot_renew_steps_down(
        leases: tuple[FakeLeases, ApiClient]) -> None:
    fake, api = leases
    only = Candidate(api, "only").start()
    await asyncio.wait_for(only.started.wait(), 2)
    assert only.elector.is_leader
    loop = asyncio.get_running_loop()
    fake.forbid_writes = True
    broke = loop.time()
    await asyncio.wait_for(only.stopped.wait(), 2)
    # gave up within retry_period + renew_deadline (0.9 s), i.e. before the 1 s lease could
    # expire for the others (a little slack for a loaded machine)
    assert loop.time() - broke < TIMINGS["lease_duration"] + 0.2
    assert only.leader_cancelled and not only.elector.is_leader
    assert only.task is not None
    await asyncio.wait_for(only.task, 1)  # run() returned: leadership lost
    assert fake.holder() == "only"  # a lost lease is not "released"


async def test_leader_coroutine_failure_propagates_and_releases(
        leases: tuple[FakeLeases, ApiClient]) -> None:
    fake, api = leases
    elector = LeaderElector(api, "kube-system", "lock", "solo", **TIMINGS)
    stopped: list[bool] = []

    async def crash() -> None:
        raise RuntimeError("leader failed")

    async def on_stopped() -> None:
        stopped.append(True)

    with pytest.raises(RuntimeError, match="leader failed"):
        await asyncio.wait_for(elector.run(crash, on_stopped), 2)
    assert stopped == [True]
    assert fake.holder() == ""
    assert not elector.is_leader
