"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's `tools/leaderelection`.

Candidates race to write themselves into the Lease's `holderIdentity`; every write is a PUT
carrying the resourceVersion that was read, so the apiserver's compare-and-swap lets exactly
one of them win (the others get 409 Conflict and retry next period).

Expiry is judged on the local clock, never by comparing our clock with `renewTime` written by
another machine: a candidate remembers when it last *saw the lease record change*, and takes
over once `leaseDurationSeconds` have passed since then without a change.

The leader renews every `retry_period`; if it cannot renew within `renew_deadline`, it stops
leading (cancels the leader task) before the lease can expire for the others
(lease_duration > renew_deadline), so two leaders never act at once.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from api.errors import AlreadyExists, Conflict, NotFound, StatusError
from api.resources import CATALOGUE, Resource
from client.backoff import jittered
from client.rest import ApiClient, ApiConnectionError, Obj

log = logging.getLogger(__name__)

JITTER_FACTOR = 1.2  # client-go's JitterFactor for the acquire loop


def _leases() -> Resource:
    res = CATALOGUE.by_plural("leases")
    if res is None:
        raise RuntimeError("the resource catalogue has no leases")
    return res


def micro_time(dt: datetime | None = None) -> str:
    """metav1.MicroTime: RFC 3339 in UTC with microseconds, `2024-01-01T00:00:00.000000Z`."""
    return (dt or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Campaign for, hold and release one Lease (`namespace/name`) as `identity`."""

    def __init__(self, api: ApiClient, namespace: str, name: str, identity: str, *,
                 lease_duration: float = 15.0, renew_deadline: float = 10.0,
                 retry_period: float = 2.0, release_on_cancel: bool = True) -> None:
        if not identity:
            raise ValueError("leader election needs a non-empty identity")
        if lease_duration <= renew_deadline:
            raise ValueError("lease_duration must be greater than renew_deadline")
        if renew_deadline <= JITTER_FACTOR * retry_period:
            raise ValueError("renew_deadline must be greater than 1.2 * retry_period")
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.release_on_cancel = release_on_cancel
        self._resource = _leases()
        self._lease_seconds = max(1, math.ceil(lease_duration))
        self._observed: Obj | None = None  # the last Lease object we read or wrote
        self._observed_spec: dict[str, Any] | None = None
        self._observed_at = 0.0  # loop time when the observed spec last changed
        self._leading = False

    @property
    def is_leader(self) -> bool:
        return self._leading

    @property
    def leader(self) -> str | None:
        """The holder identity last observed (may be another candidate), if any."""
        holder = (self._observed_spec or {}).get("holderIdentity")
        return str(holder) if holder else None

    async def run(self, on_started_leading: Callable[[], Coroutine[Any, Any, None]],
                  on_stopped_leading: Callable[[], Awaitable[None] | None] | None = None,
                  ) -> None:
        """Campaign until elected, lead until the lease is lost or we are cancelled.

        The leader coroutine runs as its own named task and is cancelled when leadership
        ends. Returns after leadership is lost or the leader coroutine finished (its
        exception, if any, is re-raised); on cancellation the lease is released first if
        `release_on_cancel`, so a standby can take over at once.
        """
        await self._acquire()
        self._leading = True
        log.info("became leader lease=%s/%s identity=%s", self.namespace, self.name,
                 self.identity)
        leader = asyncio.create_task(on_started_leading(),
                                     name=f"leader:{self.namespace}/{self.name}")
        release = self.release_on_cancel
        try:
            lost = not await self._renew_while(leader)
            release = release and not lost
            if lost:
                log.warning("lost leadership lease=%s/%s identity=%s", self.namespace,
                            self.name, self.identity)
        finally:
            self._leading = False
            leader.cancel()
            await asyncio.wait({leader})
            if release:
                await self._release_quietly()
            if on_stopped_leading is not None:
                result = on_stopped_leading()
                if inspect.isawaitable(result):
                    await result
        failure = None if leader.cancelled() else leader.exception()
        if failure is not None:
            raise failure

    async def release(self) -> bool:
        """Give the lease up (holder "", 1 s duration) if we hold it; True on success."""
        lease = self._observed
        if lease is None or self.leader != self.identity:
            return False
        now = micro_time()
        spec = {
            "holderIdentity": "",
            "leaseDurationSeconds": 1,
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": int((self._observed_spec or {}).get("leaseTransitions") or 0),
        }
        try:
            updated = await self.api.update(self._resource, {**lease, "spec": spec})
        except Conflict:
            return False
        self._observe(updated)
        return True

    async def try_acquire_or_renew(self) -> bool:
        """One attempt to create, take over or renew the lease; True if we now hold it."""
        now = micro_time()
        try:
            lease = await self.api.get(self._resource, self.name, self.namespace)
        except NotFound:
            return await self._create(now)
        spec: dict[str, Any] = dict(lease.get("spec") or {})
        self._observe(lease)
        holder = str(spec.get("holderIdentity") or "")
        if holder and holder != self.identity and not self._observed_expired(spec):
            return False
        if holder == self.identity:
            acquire_time = spec.get("acquireTime") or now
            transitions = int(spec.get("leaseTransitions") or 0)
        else:
            acquire_time = now
            transitions = int(spec.get("leaseTransitions") or 0) + 1
        spec.update(holderIdentity=self.identity, leaseDurationSeconds=self._lease_seconds,
                    acquireTime=acquire_time, renewTime=now, leaseTransitions=transitions)
        try:
            updated = await self.api.update(self._resource, {**lease, "spec": spec})
        except Conflict:
            return False  # someone wrote in between; look again next period
        self._observe(updated)
        return True

    # --- internals ------------------------------------------------------------------------

    async def _create(self, now: str) -> bool:
        lease = {
            "apiVersion": self._resource.group_version,
            "kind": self._resource.kind,
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {"holderIdentity": self.identity,
                     "leaseDurationSeconds": self._lease_seconds,
                     "acquireTime": now, "renewTime": now, "leaseTransitions": 0},
        }
        try:
            created = await self.api.create(self._resource, lease, self.namespace)
        except (AlreadyExists, Conflict):
            return False
        self._observe(created)
        return True

    def _observe(self, lease: Obj) -> None:
        spec = dict(lease.get("spec") or {})
        if spec != self._observed_spec:
            self._observed_spec = spec
            self._observed_at = asyncio.get_running_loop().time()
        self._observed = lease

    def _observed_expired(self, spec: dict[str, Any]) -> bool:
        duration = float(spec.get("leaseDurationSeconds") or self._lease_seconds)
        return self._observed_at + duration <= asyncio.get_running_loop().time()

    async def _attempt(self, timeout: float) -> bool:
        try:
            return await asyncio.wait_for(self.try_acquire_or_renew(), timeout)
        except TimeoutError:
            log.warning("lease attempt timed out lease=%s/%s", self.namespace, self.name)
        except (StatusError, ApiConnectionError) as e:
            log.warning("lease attempt failed lease=%s/%s error=%s", self.namespace,
                        self.name, e)
        return False

    async def _acquire(self) -> None:
        log.info("attempting to acquire lease=%s/%s identity=%s", self.namespace, self.name,
                 self.identity)
        while not await self._attempt(self.renew_deadline):
            await asyncio.sleep(jittered(self.retry_period, JITTER_FACTOR))

    async def _renew_while(self, leader: asyncio.Task[None]) -> bool:
        """Renew every retry_period while `leader` runs; False once renewal has failed."""
        while True:
            done, _ = await asyncio.wait({leader}, timeout=self.retry_period)
            if done:
                return True
            if not await self._renew_within_deadline():
                return False

    async def _renew_within_deadline(self) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.renew_deadline
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            if await self._attempt(remaining):
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(self.retry_period, remaining))

    async def _release_quietly(self) -> None:
        try:
            await asyncio.wait_for(self.release(), self.renew_deadline)
        except (TimeoutError, StatusError, ApiConnectionError) as e:
            log.warning("releasing lease failed lease=%s/%s error=%s", self.namespace,
                        self.name, e)
        else:
            log.info("released lease=%s/%s identity=%s", self.namespace, self.name,
                     self.identity)

