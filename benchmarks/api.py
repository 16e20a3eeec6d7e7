"""API server benchmark: etcd baseline, create throughput and latency, reads, watch fan-out.

    .venv/bin/python benchmarks/api.py            # full run (about 40 s)
    .venv/bin/python benchmarks/api.py --quick    # smoke run with small counts
    .venv/bin/python benchmarks/api.py --json     # results as JSON on stdout
    .venv/bin/python benchmarks/api.py --security-only --security-baseline REV  # see below

One run starts its own etcd and apiserver (temporary directory, ephemeral loopback ports) and
stops both at the end, also on errors and Ctrl-C. The client, the apiserver and etcd share the
machine's cores, as they do on a CI runner, so every number includes the client's own cost.

Phases, each bounded in count and in time:
  1. raw etcd puts/s through our gRPC client (the ceiling any create path can reach);
  2. apiserver ConfigMap creates/s at a fixed concurrency, and its ratio to (1);
  3. p50/p99 latency of those creates;
  4. open-loop creates at a fixed rate: requests leave at scheduled times whatever the
     server does, and latency counts from the scheduled time (no coordinated omission);
  5. single-object GETs/s, namespace LISTs/s (100 objects) and all-namespaces LISTs/s;
  6. watch fan-out: many watchers on one collection, paced creates, and the delay from each
     create's (scheduled) request start to each watcher receiving its event; every watcher
     must see every event exactly once.
With --security-baseline DIR|REV (a checkout, or a revision exported with git archive, of
the commit before the apiserver became HTTPS-only with authentication and authorization) the
run also compares creates/s with security on and off, in interleaved rounds (see "security
on vs off" below); the target is on (a non-admin user, RBAC evaluated) >= 0.8 x off.
--security-only skips the phases above.
The apiserver is HTTPS-only: the client presents the admin's certificate (system:masters),
and the raw etcd client the apiserver's etcd client certificate.
Exit status: 0 when every target is met, 1 when one is missed, 130 when interrupted.
Results are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import io
import os
import platform
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repo's packages importable
    sys.path.insert(0, str(ROOT))

import aiohttp
import orjson

from apiserver.storage.etcd3 import Etcd, EtcdTLS
from tests.conftest import (
    ApiServer,
    EtcdServer,
    free_port,
    start_apiserver,
    start_etcd,
    stop_process,
    wait_http,
)

# -- parameters -----------------------------------------------------------------------------

TARGET_CREATE_RATIO = 0.25  # apiserver creates/s ÷ raw etcd puts/s
TARGET_PACED_P99 = 0.050  # seconds, at PACED_RATE
TARGET_WATCH_P99 = 0.100  # seconds, request start -> event at every watcher


@dataclass(frozen=True)
class Config:
    value_size: int = 1024  # bytes of an etcd value / of a ConfigMap request body
    raw_puts: int = 5000
    raw_concurrency: int = 64
    creates: int = 3000
    create_concurrency: int = 64
    paced_rate: float = 200.0  # creates/s
    paced_seconds: float = 10.0
    gets: int = 5000
    get_concurrency: int = 64
    list_objects: int = 100
    ns_lists: int = 1000
    ns_list_concurrency: int = 64
    all_lists: int = 50
    all_list_concurrency: int = 8  # each response is every ConfigMap created so far (~MBs)
    watchers: int = 100
    watch_events: int = 500
    watch_rate: float = 100.0  # creates/s while the watchers listen
    phase_cap: float = 120.0  # hard time cap of a closed-loop phase, seconds
    drain_cap: float = 30.0  # after the last paced request: time allowed to finish

    @classmethod
    def quick(cls) -> Config:
        return cls(raw_puts=500, creates=300, paced_seconds=3.0, gets=500, ns_lists=100,
                   all_lists=10, watchers=20, watch_events=100, phase_cap=30.0,
                   drain_cap=10.0)


# -- measurements ---------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(p / 100.0 * len(s) + 0.5) - 1))
    return s[k]


@dataclass
class Phase:
    """The outcome of one closed-loop or paced phase."""

    name: str
    requested: int
    ok: int = 0
    errors: int = 0
    first_error: str = ""
    elapsed: float = 0.0
    timed_out: bool = False
    latencies: list[float] = field(default_factory=list, repr=False)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {"requested": self.requested, "ok": self.ok, "errors": self.errors,
                "first_error": self.first_error, "elapsed_s": round(self.elapsed, 3),
                "timed_out": self.timed_out, "per_second": round(self.rate, 1),
                "p50_ms": ms(percentile(self.latencies, 50)),
                "p99_ms": ms(percentile(self.latencies, 99)),
                "max_ms": ms(max(self.latencies) if self.latencies else None)}


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 2)


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


async def closed_loop(name: str, n: int, concurrency: int, cap: float,
                      op: Callable[[int], Awaitable[None]]) -> Phase:
    """Run op(0..n-1) with `concurrency` requests in flight, stopping at `cap` seconds."""
    phase = Phase(name, n)
    indices = iter(range(n))  # shared by the workers: each index is taken once
    start = time.perf_counter()
    deadline = start + cap

    async def worker() -> None:
        for i in indices:
            if time.perf_counter() > deadline:
                phase.timed_out = True
                return
            t = time.perf_counter()
            try:
                await op(i)
            except Exception as e:  # noqa: BLE001 - counted and reported, the run goes on
                phase.errors += 1
                phase.first_error = phase.first_error or f"{type(e).__name__}: {e}"[:300]
                continue
            phase.latencies.append(time.perf_counter() - t)
            phase.ok += 1

    tasks = [asyncio.create_task(worker(), name=f"{name}-{k}") for k in range(concurrency)]
    _, pending = await asyncio.wait(tasks, timeout=cap + 10)
    if pending:
        phase.timed_out = True
        await cancel_all(pending)
    phase.elapsed = time.perf_counter() - start
    return phase


async def open_loop(name: str, rate: float, n: int, drain: float,
                    op: Callable[[int], Awaitable[None]],
                    started: dict[int, float] | None = None) -> tuple[Phase, float]:
    """Start op(i) at start + i/rate whatever earlier requests are doing; latency counts from
    the scheduled time. Returns the phase and the worst lag of a start behind its schedule.
    `started`, if given, receives each request's scheduled start time."""
    phase = Phase(name, n)
    tasks: list[asyncio.Task[None]] = []
    worst_lag = 0.0

    async def one(i: int, scheduled: float) -> None:
        try:
            await op(i)
        except Exception as e:  # noqa: BLE001 - counted and reported
            phase.errors += 1
            phase.first_error = phase.first_error or f"{type(e).__name__}: {e}"[:300]
            return
        phase.latencies.append(time.perf_counter() - scheduled)
        phase.ok += 1

    t0 = time.perf_counter() + 0.05
    for i in range(n):
        scheduled = t0 + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        worst_lag = max(worst_lag, time.perf_counter() - scheduled)
        if started is not None:
            started[i] = scheduled
        tasks.append(asyncio.create_task(one(i, scheduled), name=f"{name}-{i}"))
    _, pending = await asyncio.wait(tasks, timeout=drain) if tasks else (set(), set())
    if pending:
        phase.timed_out = True
        await cancel_all(pending)
    phase.elapsed = time.perf_counter() - t0
    return phase, worst_lag


async def cancel_all(tasks: set[asyncio.Task[Any]] | list[asyncio.Task[Any]]) -> None:
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# -- the client side of the API ---------------------------------------------------------------


def configmap_body(name: str, size: int) -> bytes:
    """A ConfigMap whose JSON request body is `size` bytes (for a short name)."""
    skeleton = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "labels": {"app": "bench"}},
                "data": {"payload": ""}}
    pad = max(0, size - len(orjson.dumps(skeleton)))
    skeleton["data"] = {"payload": "x" * pad}
    return orjson.dumps(skeleton)


class Api:
    """Just enough of the REST API for the benchmark, on one aiohttp session."""

    def __init__(self, base: str, session: aiohttp.ClientSession, value_size: int,
                 tls: ssl.SSLContext | bool = True) -> None:
        self.base = base
        self.session = session
        self.value_size = value_size
        self.tls = tls  # what the session's connector uses; for extra sessions (watchers)

    def cm_url(self, ns: str, name: str = "") -> str:
        return f"{self.base}/api/v1/namespaces/{ns}/configmaps" + (f"/{name}" if name else "")

    async def create_namespace(self, name: str) -> None:
        body = orjson.dumps({"apiVersion": "v1", "kind": "Namespace",
                             "metadata": {"name": name}})
        async with self.session.post(f"{self.base}/api/v1/namespaces", data=body,
                                     headers={"Content-Type": "application/json"}) as r:
            if r.status not in (201, 409):
                raise RuntimeError(f"create namespace {name}: {r.status} {await r.text()}")

    async def create_cm(self, ns: str, name: str) -> None:
        async with self.session.post(self.cm_url(ns), data=configmap_body(name, self.value_size),
                                     headers={"Content-Type": "application/json"}) as r:
            await r.read()
            if r.status != 201:
                raise RuntimeError(f"POST {ns}/{name}: {r.status}")

    async def get(self, url: str) -> bytes:
        async with self.session.get(url) as r:
            body = await r.read()
            if r.status != 200:
                raise RuntimeError(f"GET {url}: {r.status}")
            return body


# -- phases -----------------------------------------------------------------------------------


def etcd_client(etcd: EtcdServer) -> Etcd:
    """Our gRPC client with the apiserver's etcd credentials (etcd requires a client
    certificate of its own CA)."""
    pki = etcd.pki
    return Etcd([etcd.url], tls=EtcdTLS(str(pki.etcd_ca_cert), str(pki.etcd_client_cert),
                                        str(pki.etcd_client_key)))


async def bench_raw_etcd(etcd_server: EtcdServer, cfg: Config) -> Phase:
    etcd = etcd_client(etcd_server)
    value = b"v" * cfg.value_size
    try:
        for i in range(cfg.raw_concurrency):  # warm up the channel
            await etcd.put(f"/bench-warmup/{i}".encode(), value)

        async def put(i: int) -> None:
            await etcd.put(f"/bench-raw/{i:08d}".encode(), value)

        return await closed_loop("raw-etcd-put", cfg.raw_puts, cfg.raw_concurrency,
                                 cfg.phase_cap, put)
    finally:
        await etcd.close()


async def bench_creates(api: Api, cfg: Config) -> Phase:
    await api.create_namespace("bench-warmup")
    await closed_loop("warmup", cfg.create_concurrency * 2, cfg.create_concurrency,
                      cfg.phase_cap, lambda i: api.create_cm("bench-warmup", f"w-{i}"))
    await api.create_namespace("bench")
    return await closed_loop("create", cfg.creates, cfg.create_concurrency, cfg.phase_cap,
                             lambda i: api.create_cm("bench", f"cm-{i:06d}"))


async def bench_paced(api: Api, cfg: Config) -> tuple[Phase, float]:
    await api.create_namespace("bench-paced")
    n = int(cfg.paced_rate * cfg.paced_seconds)
    return await open_loop("paced-create", cfg.paced_rate, n, cfg.drain_cap,
                           lambda i: api.create_cm("bench-paced", f"p-{i:06d}"))


async def bench_reads(api: Api, cfg: Config, created: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = max(created, 1)

    async def get_one(i: int) -> None:
        await api.get(api.cm_url("bench", f"cm-{i % names:06d}"))

    out["get"] = await closed_loop("get", cfg.gets, cfg.get_concurrency, cfg.phase_cap, get_one)

    await api.create_namespace("bench-list")
    fill = await closed_loop("list-fill", cfg.list_objects, 16, cfg.phase_cap,
                             lambda i: api.create_cm("bench-list", f"l-{i:04d}"))
    if fill.errors:
        raise RuntimeError(f"filling bench-list: {fill.first_error}")
    ns_url = api.cm_url("bench-list")
    all_url = f"{api.base}/api/v1/configmaps"
    ns_items = len(orjson.loads(await api.get(ns_url))["items"])
    all_items = len(orjson.loads(await api.get(all_url))["items"])

    async def list_ns(_: int) -> None:
        await api.get(ns_url)

    async def list_all(_: int) -> None:
        await api.get(all_url)

    out["list_ns"] = await closed_loop("list-namespace", cfg.ns_lists, cfg.ns_list_concurrency,
                                       cfg.phase_cap, list_ns)
    out["list_all"] = await closed_loop("list-all", cfg.all_lists, cfg.all_list_concurrency,
                                        cfg.phase_cap, list_all)
    out["ns_items"] = ns_items
    out["all_items"] = all_items
    return out


@dataclass
class WatchResult:
    watchers: int
    events: int
    connected: int = 0
    delivered: int = 0  # unique (watcher, object) ADDED events received
    duplicates: int = 0
    unexpected: int = 0  # other event types, or objects this phase did not create
    creates: Phase | None = None
    worst_start_lag: float = 0.0  # of a create behind its schedule (client-side delay)
    latencies: list[float] = field(default_factory=list, repr=False)
    timed_out: bool = False
    first_error: str = ""

    @property
    def expected(self) -> int:
        return self.watchers * self.events

    @property
    def exact(self) -> bool:
        return (self.delivered == self.expected and self.duplicates == 0
                and self.unexpected == 0 and self.connected == self.watchers)

    def summary(self) -> dict[str, Any]:
        return {"watchers": self.watchers, "events": self.events, "connected": self.connected,
                "expected": self.expected, "delivered": self.delivered,
                "duplicates": self.duplicates, "unexpected": self.unexpected,
                "exact": self.exact, "timed_out": self.timed_out,
                "first_error": self.first_error,
                "p50_ms": ms(percentile(self.latencies, 50)),
                "p99_ms": ms(percentile(self.latencies, 99)),
                "max_ms": ms(max(self.latencies) if self.latencies else None),
                "creates": self.creates.summary() if self.creates else None,
                "worst_start_lag_ms": ms(self.worst_start_lag)}


async def bench_watch(api: Api, cfg: Config) -> WatchResult:
    result = WatchResult(cfg.watchers, cfg.watch_events)
    ns = "bench-watch"
    await api.create_namespace(ns)
    rv = orjson.loads(await api.get(api.cm_url(ns)))["metadata"]["resourceVersion"]
    watch_seconds = int(cfg.watch_events / cfg.watch_rate + cfg.drain_cap + 30)
    url = f"{api.cm_url(ns)}?watch=true&resourceVersion={rv}&timeoutSeconds={watch_seconds}"
    received: list[list[tuple[float, bytes]]] = [[] for _ in range(cfg.watchers)]
    # One connection per watcher, as separate informers would have.
    connector = aiohttp.TCPConnector(limit=0, force_close=True, ssl=api.tls)
    session = aiohttp.ClientSession(connector=connector,
                                    timeout=aiohttp.ClientTimeout(total=None, connect=10))

    async def watch(k: int, connected: asyncio.Event) -> None:
        lines = received[k]
        async with session.get(url) as r:
            if r.status != 200:
                raise RuntimeError(f"watch: {r.status} {await r.text()}")
            result.connected += 1
            connected.set()
            # The timestamp is taken when the line reaches this coroutine; decoding waits
            # until the phase is over so that it does not delay other watchers' reads.
            async for line in r.content:
                lines.append((time.perf_counter(), line))

    tasks: list[asyncio.Task[None]] = []
    try:
        ready: list[asyncio.Event] = []
        for k in range(cfg.watchers):
            ev = asyncio.Event()
            ready.append(ev)
            tasks.append(asyncio.create_task(watch(k, ev), name=f"watcher-{k}"))
        # The server registers a watcher before it sends the response headers, so once every
        # watcher has its headers no event can be missed.
        deadline = time.perf_counter() + 30
        while result.connected < cfg.watchers and time.perf_counter() < deadline:
            failed = [t for t in tasks if t.done()]
            if failed:
                exc = failed[0].exception()
                raise RuntimeError(f"a watcher failed to connect: {exc!r}")
            await asyncio.sleep(0.02)
        if result.connected < cfg.watchers:
            raise RuntimeError(f"only {result.connected}/{cfg.watchers} watchers connected")

        started: dict[int, float] = {}
        result.creates, result.worst_start_lag = await open_loop(
            "watch-create", cfg.watch_rate, cfg.watch_events, cfg.drain_cap,
            lambda i: api.create_cm(ns, f"w-{i:06d}"), started)
        # Wait until every watcher has as many lines as events, or the cap; then a short
        # grace period so duplicates or strays would show up too.
        deadline = time.perf_counter() + cfg.drain_cap
        while time.perf_counter() < deadline:
            if all(len(r) >= cfg.watch_events for r in received):
                break
            if all(t.done() for t in tasks):
                break
            await asyncio.sleep(0.05)
        else:
            result.timed_out = True
        await asyncio.sleep(0.5)
    finally:
        await cancel_all(tasks)
        await session.close()
    for t in tasks:
        if not t.cancelled() and t.exception() is not None:
            result.first_error = result.first_error or repr(t.exception())[:300]

    prefix = "w-"
    for lines in received:
        seen: set[str] = set()
        for arrived, line in lines:
            ev = orjson.loads(line)
            name = ev.get("object", {}).get("metadata", {}).get("name", "")
            if ev.get("type") != "ADDED" or not name.startswith(prefix):
                result.unexpected += 1
                continue
            i = int(name[len(prefix):])
            if i not in started:
                result.unexpected += 1
                continue
            if name in seen:
                result.duplicates += 1
                continue
            seen.add(name)
            result.latencies.append(arrived - started[i])
        result.delivered += len(seen)
    return result


# -- security on vs off -----------------------------------------------------------------------
#
# The same closed loop of ConfigMap creates against three apiservers of one run:
#   off      - the baseline (the commit before security: plain HTTP, no authentication or
#              authorization) on its own plain-HTTP etcd;
#   on-user  - this tree's apiserver (HTTPS, etcd over TLS, --authorization-mode Node,RBAC)
#              with a client certificate of a user outside system:masters, whom a RoleBinding
#              in the benchmark namespace grants a ClusterRole of our own (create/get/list/delete
#              on configmaps), so the Node and RBAC authorizers are really asked per request;
#   on-admin - the same apiserver as the admin (x509, system:masters: the privileged-group
#              short cut), for reference.
# Rounds interleave the variants in a rotating order so that drift of a shared machine (other
# processes, etcd growing) falls on each alike; every variant gets one warm-up first, and its
# connections stay open across rounds (keep-alive: TLS handshakes happen in the warm-up only).

TARGET_SECURITY_RATIO = 0.8  # creates/s with security on (non-admin user) ÷ off
SEC_USER = "bench-user"
SEC_ROLE = "bench-configmaps"
SEC_NS = "bench-sec"
VARIANTS = ("off", "on-user", "on-admin")


@dataclass(frozen=True)
class SecurityConfig:
    creates: int = 2000
    concurrency: int = 32
    rounds: int = 3
    warmup: int = 200
    value_size: int = 1024
    phase_cap: float = 120.0

    @classmethod
    def quick(cls) -> SecurityConfig:
        return cls(creates=300, rounds=2, warmup=64, phase_cap=30.0)


def start_plain_etcd(data_dir: str) -> tuple[str, subprocess.Popen[bytes]]:
    """etcd as the baseline ran it: plain HTTP on loopback, no client certificates."""
    exe = shutil.which("etcd") or "etcd"
    cport, pport = free_port(), free_port()
    url, peer = f"http://127.0.0.1:{cport}", f"http://127.0.0.1:{pport}"
    with open(os.path.join(data_dir, "etcd-plain.log"), "wb") as log:
        proc = subprocess.Popen(
            [exe, "--data-dir", os.path.join(data_dir, "etcd-plain"), "--name", "plain",
             "--listen-client-urls", url, "--advertise-client-urls", url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"plain={peer}"], stdout=log, stderr=log)
    try:
        wait_http(url + "/health", proc=proc)
    except BaseException:
        stop_process(proc)
        raise
    return url, proc


def start_baseline_apiserver(baseline: Path, etcd_url: str, workdir: Path
                             ) -> tuple[str, subprocess.Popen[bytes]]:
    """The baseline tree's apiserver (`python -m apiserver` run from that tree, so its
    packages are imported, not this tree's): plain HTTP, no authn/authz."""
    port = free_port()
    log_path = workdir / f"apiserver-baseline-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "apiserver", "--etcd-servers", etcd_url,
                                 "--secure-port", str(port)],
                                stdout=log, stderr=log, cwd=baseline)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/readyz", proc=proc)
        deadline = time.monotonic() + 10  # the system namespaces come just after readiness
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url + "/api/v1/namespaces/kube-node-lease",
                                            timeout=2):
                    break
            except OSError:
                time.sleep(0.05)
    except BaseException:
        stop_process(proc)
        progress(f"{log_path} (tail):\n{log_path.read_text(errors='replace')[-2000:]}")
        raise
    return url, proc


def baseline_tree(spec: str, workdir: Path) -> Path:
    """`spec` is a directory holding a checkout of the baseline, or a git revision of this
    repository, exported (git archive, which touches neither the index nor the work tree) to
    `workdir/baseline`."""
    path = Path(spec)
    if path.is_dir():
        if not (path / "apiserver" / "__main__.py").exists():
            raise SystemExit(f"--security-baseline {spec}: no apiserver/ package there")
        return path.resolve()
    out = workdir / "baseline"
    out.mkdir()
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", spec],
                         capture_output=True, check=False, timeout=120)
    if tar.returncode != 0:
        raise SystemExit(f"--security-baseline {spec}: neither a directory nor a revision: "
                         f"{tar.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as t:
        t.extractall(out, filter="data")
    return out


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one process so far."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as fh:
        stat = fh.read().rsplit(")", 1)[1].split()
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


@dataclass
class Variant:
    name: str
    base: str
    tls: ssl.SSLContext | None
    pids: dict[str, int]  # apiserver, etcd
    session: aiohttp.ClientSession | None = None
    api: Api | None = None
    connections: int = 0  # TCP (and TLS) connections the client opened
    rounds: list[dict[str, Any]] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list, repr=False)

    async def open(self, cfg: SecurityConfig) -> None:
        trace = aiohttp.TraceConfig()

        async def opened(*_: Any) -> None:
            self.connections += 1

        trace.on_connection_create_end.append(opened)
        connector = aiohttp.TCPConnector(limit=cfg.concurrency,
                                         ssl=self.tls if self.tls is not None else True)
        self.session = aiohttp.ClientSession(connector=connector, trace_configs=[trace],
                                             timeout=aiohttp.ClientTimeout(total=60))
        self.api = Api(self.base, self.session, cfg.value_size)

    def creates(self, prefix: str) -> Callable[[int], Awaitable[None]]:
        """op(i) for closed_loop: create ConfigMap `<prefix><i>` in SEC_NS."""
        api = self.api
        assert api is not None, "open() first"

        async def create(i: int) -> None:
            await api.create_cm(SEC_NS, f"{prefix}{i:06d}")

        return create


async def request(session: aiohttp.ClientSession, method: str, url: str,
                  body: dict[str, Any] | None = None) -> tuple[int, bytes]:
    async with session.request(method, url, data=orjson.dumps(body) if body else None,
                               headers={"Content-Type": "application/json"}) as r:
        return r.status, await r.read()


async def grant_user(admin: aiohttp.ClientSession, user: Variant, base: str) -> None:
    """As the admin: the namespace, a ClusterRole for ConfigMaps and a RoleBinding of it to
    SEC_USER there; then wait until the user's own requests are allowed (the authorizer reads
    RBAC from the watch caches)."""
    rbac = f"{base}/apis/rbac.authorization.k8s.io/v1"
    for url, body in (
            (f"{base}/api/v1/namespaces", {"metadata": {"name": SEC_NS}}),
            (f"{rbac}/clusterroles", {
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": SEC_ROLE},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                           "verbs": ["create", "get", "list", "delete"]}]}),
            (f"{rbac}/namespaces/{SEC_NS}/rolebindings", {
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": SEC_ROLE, "namespace": SEC_NS},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": SEC_ROLE},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                              "name": SEC_USER}]})):
        status, text = await request(admin, "POST", url, body)
        if status not in (201, 409):
            raise RuntimeError(f"POST {url}: {status} {text[:300]!r}")
    assert user.session is not None
    # Not allowed elsewhere: proves the user is not privileged, so RBAC decides.
    status, _ = await request(user.session, "GET", f"{base}/api/v1/namespaces/default/configmaps")
    if status != 403:
        raise RuntimeError(f"{SEC_USER} may list ConfigMaps in default ({status}): "
                           "the ON run would not measure RBAC")
    deadline = time.monotonic() + 10
    while True:
        status, text = await request(user.session, "GET",
                                     f"{base}/api/v1/namespaces/{SEC_NS}/configmaps")
        if status == 200:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{SEC_USER} still may not list ConfigMaps in {SEC_NS}: "
                               f"{status} {text[:300]!r}")
        await asyncio.sleep(0.05)


async def measure(v: Variant, cfg: SecurityConfig, rnd: int, client_pid: int) -> None:
    cpu0 = {k: proc_cpu(pid) for k, pid in {**v.pids, "client": client_pid}.items()}
    conns0 = v.connections
    phase = await closed_loop(f"{v.name}-r{rnd}", cfg.creates, cfg.concurrency, cfg.phase_cap,
                              v.creates(f"{v.name}-r{rnd}-"))
    cpu = {k: proc_cpu(pid) - cpu0[k] for k, pid in {**v.pids, "client": client_pid}.items()}
    v.phases.append(phase)
    v.rounds.append({
        "round": rnd, **phase.summary(),
        "new_connections": v.connections - conns0,
        "cpu_ms_per_create": {k: round(1000.0 * c / max(phase.ok, 1), 3)
                              for k, c in cpu.items()}})
    progress(f"  {v.name:8s} round {rnd + 1}: {phase.rate:,.0f} creates/s "
             f"(p50 {ms(percentile(phase.latencies, 50))} ms, apiserver "
             f"{v.rounds[-1]['cpu_ms_per_create']['apiserver']} CPU ms/create)"
             + (f", {phase.errors} errors: {phase.first_error}" if phase.errors else ""))


async def run_security(variants: dict[str, Variant], admin_tls: ssl.SSLContext,
                       cfg: SecurityConfig) -> dict[str, Any]:
    for v in variants.values():
        await v.open(cfg)
    try:
        off, user, admin = (variants[n] for n in VARIANTS)
        assert off.session is not None and admin.session is not None
        status, text = await request(off.session, "POST", f"{off.base}/api/v1/namespaces",
                                     {"metadata": {"name": SEC_NS}})
        if status not in (201, 409):
            raise RuntimeError(f"baseline namespace: {status} {text[:300]!r}")
        await grant_user(admin.session, user, admin.base)
        for v in variants.values():
            warm = await closed_loop(f"{v.name}-warmup", cfg.warmup, cfg.concurrency,
                                     cfg.phase_cap, v.creates(f"{v.name}-w-"))
            if not clean(warm):
                raise RuntimeError(f"{v.name} warm-up: {warm.errors} errors, "
                                   f"{warm.first_error}")
        me = os.getpid()
        for rnd in range(cfg.rounds):
            order = VARIANTS[rnd % 3:] + VARIANTS[:rnd % 3]
            progress(f"round {rnd + 1}/{cfg.rounds}: {', '.join(order)}")
            for name in order:
                await measure(variants[name], cfg, rnd, me)
    finally:
        for v in variants.values():
            if v.session is not None:
                await v.session.close()
    return summarize_security(variants, cfg)


def summarize_security(variants: dict[str, Variant], cfg: SecurityConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"config": cfg.__dict__, "variants": {}}
    for name, v in variants.items():
        lat = [x for p in v.phases for x in p.latencies]
        cpu_keys = v.rounds[0]["cpu_ms_per_create"].keys() if v.rounds else ()
        out["variants"][name] = {
            "creates_per_second": [r["per_second"] for r in v.rounds],
            "median_creates_per_second": round(statistics.median(
                [r["per_second"] for r in v.rounds]), 1) if v.rounds else 0.0,
            "p50_ms": ms(percentile(lat, 50)), "p99_ms": ms(percentile(lat, 99)),
            "errors": sum(p.errors for p in v.phases),
            "first_error": next((p.first_error for p in v.phases if p.first_error), ""),
            "clean": all(clean(p) for p in v.phases),
            "new_connections_while_measured": sum(r["new_connections"] for r in v.rounds),
            "median_cpu_ms_per_create": {k: round(statistics.median(
                [r["cpu_ms_per_create"][k] for r in v.rounds]), 3) for k in cpu_keys},
            "rounds": v.rounds}
    base = out["variants"]["off"]["median_creates_per_second"]
    for name in ("on-user", "on-admin"):
        r = out["variants"][name]["median_creates_per_second"] / base if base else 0.0
        out[f"ratio_{name.replace('-', '_')}_to_off"] = round(r, 3)
    ratio = out["ratio_on_user_to_off"]
    out["target"] = {"target": f">= {TARGET_SECURITY_RATIO}", "value": ratio,
                     "pass": ratio >= TARGET_SECURITY_RATIO and all(
                         v["clean"] for v in out["variants"].values())}
    return out


def print_security(sec: dict[str, Any], env: dict[str, Any]) -> None:
    c = sec["config"]
    print(f"security on vs off: {c['creates']} ConfigMap creates ({c['value_size']} B), "
          f"{c['concurrency']} in flight, {c['rounds']} interleaved rounds, median")
    rows = [("variant", "creates/s (rounds)", "median", "p50/p99 ms", "ratio",
             "CPU ms/create api/etcd/client", "new conns")]
    labels = {"off": "off (baseline: HTTP, no authn/authz)",
              "on-user": f"on, user {SEC_USER} (x509, RBAC)",
              "on-admin": "on, admin (x509, system:masters)"}
    for name in VARIANTS:
        v = sec["variants"][name]
        cpu = v["median_cpu_ms_per_create"]
        key = f"ratio_{name.replace('-', '_')}_to_off"
        ratio = f"{sec[key]:.3f}" if key in sec else "1"
        rows.append((labels[name], " ".join(f"{x:,.0f}" for x in v["creates_per_second"]),
                     f"{v['median_creates_per_second']:,.1f}",
                     f"{v['p50_ms']} / {v['p99_ms']}", ratio,
                     (f"{cpu.get('apiserver', 0):.2f} / {cpu.get('etcd', 0):.2f} / "
                      f"{cpu.get('client', 0):.2f}"),
                     str(v["new_connections_while_measured"])
                     + (f"  {v['errors']} errors: {v['first_error'][:60]}" if v["errors"] else "")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    line = "  ".join("-" * w for w in widths)
    print(line)
    for k, r in enumerate(rows):
        print("  ".join(r[i].ljust(widths[i]) for i in range(len(r))).rstrip())
        if k == 0:
            print(line)
    print(line)
    t = sec["target"]
    print(f"on-user ÷ off = {t['value']:.3f} (target {t['target']}): {verdict(t['pass'])}")
    if "cores_used_by_benchmark" in env:
        print(f"cores busy during the comparison: {env['cores_used_by_benchmark']} by the "
              f"benchmark's processes; {env['cores_used_by_others']} by other processes")


def security_comparison(baseline: Path, workdir: Path, cfg: SecurityConfig,
                        procs: list[subprocess.Popen[bytes]], env: dict[str, Any],
                        py_spy: str | None, spies: list[subprocess.Popen[bytes]]
                        ) -> dict[str, Any]:
    """Start both pairs of etcd + apiserver (processes appended to `procs` for the caller to
    stop), run the interleaved rounds and return the summary."""
    sec_dir = workdir / "security"
    sec_dir.mkdir()
    progress(f"security: baseline apiserver from {baseline}, this tree's apiserver with TLS")
    plain_url, plain_etcd = start_plain_etcd(str(sec_dir))
    procs.append(plain_etcd)
    off_url, off_api = start_baseline_apiserver(baseline, plain_url, sec_dir)
    procs.insert(0, off_api)
    on_dir = sec_dir / "on"
    on_dir.mkdir()
    etcd = start_etcd(str(on_dir))
    procs.append(etcd.proc)
    apiserver = start_apiserver(etcd, on_dir)
    procs.insert(0, apiserver.proc)
    if py_spy:
        for pid, out in ((apiserver.proc.pid, py_spy), (off_api.pid, py_spy + ".off")):
            spy = start_py_spy(pid, out)
            if spy is not None:
                spies.append(spy)
    on_pids = {"apiserver": apiserver.proc.pid, "etcd": etcd.proc.pid}
    variants = {
        "off": Variant("off", off_url, None, {"apiserver": off_api.pid,
                                              "etcd": plain_etcd.pid}),
        "on-user": Variant("on-user", apiserver.url, apiserver.tls(SEC_USER), on_pids),
        "on-admin": Variant("on-admin", apiserver.url, apiserver.tls(), on_pids),
    }
    pids = [os.getpid(), plain_etcd.pid, off_api.pid, etcd.proc.pid, apiserver.proc.pid]
    before = cpu_snapshot(pids)
    sec = asyncio.run(run_security(variants, apiserver.tls(), cfg))
    env.update(cpu_usage(before, cpu_snapshot(pids)))
    return sec


# -- orchestration ----------------------------------------------------------------------------


async def run_benchmark(etcd: EtcdServer, apiserver: ApiServer, cfg: Config) -> dict[str, Any]:
    res: dict[str, Any] = {}
    progress(f"1/6 raw etcd puts: {cfg.raw_puts} x {cfg.value_size} B, "
             f"{cfg.raw_concurrency} in flight")
    res["raw"] = await bench_raw_etcd(etcd, cfg)

    # As the admin (x509, system:masters), over TLS; connections are kept alive.
    tls = apiserver.tls()
    connector = aiohttp.TCPConnector(limit=512, ssl=tls)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        api = Api(apiserver.url, session, cfg.value_size, tls)
        progress(f"2-3/6 creates: {cfg.creates} ConfigMaps, {cfg.create_concurrency} in flight")
        # The pool is shared, so a closed loop of C workers never holds more than C.
        res["create"] = await bench_creates(api, cfg)
        progress(f"4/6 paced creates: {cfg.paced_rate:g}/s for {cfg.paced_seconds:g}s")
        res["paced"], res["paced_worst_start_lag"] = await bench_paced(api, cfg)
        progress(f"5/6 reads: {cfg.gets} GETs, {cfg.ns_lists} namespace LISTs, "
                 f"{cfg.all_lists} all-namespaces LISTs")
        res["reads"] = await bench_reads(api, cfg, res["create"].ok)
        progress(f"6/6 watch: {cfg.watchers} watchers x {cfg.watch_events} events at "
                 f"{cfg.watch_rate:g} creates/s")
        res["watch"] = await bench_watch(api, cfg)
    return res


def clean(p: Phase) -> bool:
    return p.errors == 0 and not p.timed_out and p.ok == p.requested


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(res: dict[str, Any], cfg: Config, env: dict[str, Any]) -> dict[str, Any]:
    raw: Phase = res["raw"]
    create: Phase = res["create"]
    paced: Phase = res["paced"]
    reads = res["reads"]
    watch: WatchResult = res["watch"]
    ratio = create.rate / raw.rate if raw.rate else 0.0
    paced_p99 = percentile(paced.latencies, 99)
    watch_p99 = percentile(watch.latencies, 99)
    targets: dict[str, dict[str, Any]] = {
        "create_ratio": {"target": f">= {TARGET_CREATE_RATIO}", "value": round(ratio, 3),
                         "pass": ratio >= TARGET_CREATE_RATIO and clean(create)},
        "paced_p99_ms": {"target": f"<= {TARGET_PACED_P99 * 1000:g}",
                         "value": ms(paced_p99),
                         "pass": paced_p99 is not None and paced_p99 <= TARGET_PACED_P99
                         and clean(paced)},
        "watch_exact": {"target": f"== {watch.expected}", "value": watch.delivered,
                        "pass": watch.exact},
        "watch_p99_ms": {"target": f"<= {TARGET_WATCH_P99 * 1000:g}", "value": ms(watch_p99),
                         "pass": watch_p99 is not None and watch_p99 <= TARGET_WATCH_P99},
    }
    return {
        "environment": env,
        "config": cfg.__dict__,
        "raw_etcd_put": raw.summary(),
        "create": create.summary(),
        "create_ratio": round(ratio, 3),
        "paced_create": {**paced.summary(), "rate": cfg.paced_rate,
                         "worst_start_lag_ms": ms(res["paced_worst_start_lag"])},
        "get": reads["get"].summary(),
        "list_namespace": {**reads["list_ns"].summary(), "items": reads["ns_items"]},
        "list_all_namespaces": {**reads["list_all"].summary(), "items": reads["all_items"]},
        "watch": watch.summary(),
        "targets": targets,
        "all_pass": all(t["pass"] for t in targets.values()),
    }


def print_table(out: dict[str, Any]) -> None:
    t = out["targets"]
    c = out["config"]

    def f(v: Any, unit: str = "") -> str:
        return "-" if v is None else f"{v:,.1f}{unit}" if isinstance(v, float) else f"{v}{unit}"

    def errs(p: dict[str, Any]) -> str:
        bits = []
        if p["errors"]:
            bits.append(f"{p['errors']} errors ({p['first_error'][:60]})")
        if p["timed_out"]:
            bits.append("TIMED OUT")
        if p["ok"] != p["requested"]:
            bits.append(f"{p['ok']}/{p['requested']} done")
        return "; ".join(bits)

    rows: list[tuple[str, str, str, str]] = []
    raw, cr, pc, w = out["raw_etcd_put"], out["create"], out["paced_create"], out["watch"]
    rows.append((f"raw etcd put/s ({c['raw_concurrency']} in flight, {c['value_size']} B)",
                 f(raw["per_second"]), "", errs(raw)))
    rows.append(((f"apiserver create/s ({c['create_concurrency']} in flight, ConfigMap "
                  f"{c['value_size']} B)"), f(cr["per_second"]), "", errs(cr)))
    rows.append(("  create/s ÷ raw put/s", f"{out['create_ratio']:.3f}",
                 t["create_ratio"]["target"], verdict(t["create_ratio"]["pass"])))
    rows.append(("  create latency p50 / p99", f"{f(cr['p50_ms'])} / {f(cr['p99_ms'])} ms",
                 "", ""))
    rows.append((f"paced {f(pc['rate'])}/s creates for {c['paced_seconds']:g} s: p50",
                 f(pc["p50_ms"], " ms"), "", errs(pc)))
    rows.append(("  p99 (from scheduled start)", f(pc["p99_ms"], " ms"),
                 t["paced_p99_ms"]["target"] + " ms", verdict(t["paced_p99_ms"]["pass"])))
    rows.append(("  max / worst start lag of the client",
                 f"{f(pc['max_ms'])} / {f(pc['worst_start_lag_ms'])} ms", "", ""))
    g, ln, la = out["get"], out["list_namespace"], out["list_all_namespaces"]
    rows.append((f"GET/s (one object, {c['get_concurrency']} in flight)", f(g["per_second"]),
                 "", f"p50 {f(g['p50_ms'])} ms, p99 {f(g['p99_ms'])} ms " + errs(g)))
    rows.append(((f"LIST/s (namespace, {ln['items']} objects, {c['ns_list_concurrency']} in "
                  "flight)"), f(ln["per_second"]), "",
                 f"p50 {f(ln['p50_ms'])} ms, p99 {f(ln['p99_ms'])} ms " + errs(ln)))
    rows.append(((f"LIST/s (all namespaces, {la['items']} objects, "
                  f"{c['all_list_concurrency']} in flight)"), f(la["per_second"]), "",
                 f"p50 {f(la['p50_ms'])} ms, p99 {f(la['p99_ms'])} ms " + errs(la)))
    rows.append(((f"watch: {w['watchers']} watchers x {w['events']} creates at "
                  f"{c['watch_rate']:g}/s, delivered"), f"{w['delivered']}/{w['expected']}",
                 t["watch_exact"]["target"], verdict(t["watch_exact"]["pass"])))
    extra = []
    if w["duplicates"] or w["unexpected"]:
        extra.append(f"{w['duplicates']} duplicates, {w['unexpected']} unexpected")
    if w["connected"] != w["watchers"]:
        extra.append(f"{w['connected']} connected")
    if w["first_error"]:
        extra.append(w["first_error"][:60])
    rows.append(("  delivery p50 (create request start -> event)", f(w["p50_ms"], " ms"), "",
                 "; ".join(extra)))
    rows.append(("  delivery p99", f(w["p99_ms"], " ms"), t["watch_p99_ms"]["target"] + " ms",
                 verdict(t["watch_p99_ms"]["pass"])))
    wc = w["creates"] or {}
    rows.append(("  creates during the watch: p50 / p99 / worst start lag",
                 (f"{f(wc.get('p50_ms'))} / {f(wc.get('p99_ms'))} / "
                  f"{f(w['worst_start_lag_ms'])} ms"), "", ""))

    widths = [max(len(r[i]) for r in rows + [("metric", "value", "target", "result")])
              for i in range(4)]
    line = "  ".join("-" * w_ for w_ in widths)
    print(line)
    print("  ".join(h.ljust(widths[i]) for i, h in
                    enumerate(("metric", "value", "target", "result"))))
    print(line)
    for r in rows:
        print("  ".join(r[i].ljust(widths[i]) for i in range(4)).rstrip())
    print(line)
    env = out["environment"]
    print(f"{env['date']}  {env['cpus']} CPUs ({env['cpu_model']}), {env['ram']}, "
          f"Python {env['python']}, {env['etcd']}, commit {env['commit']}")
    if "cores_used_by_benchmark" in env:
        print(f"cores busy during the run: {env['cores_used_by_benchmark']} by the benchmark, "
              f"etcd and apiserver; {env['cores_used_by_others']} by other processes")
    print("overall:", verdict(out["all_pass"]))


def cpu_snapshot(pids: list[int]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of the whole machine, CPU seconds of `pids`)."""
    hz = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    ours = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as fh:
            stat = fh.read().rsplit(")", 1)[1].split()
            ours += int(stat[11]) + int(stat[12])  # utime, stime
    return time.monotonic(), busy / hz, ours / hz


def cpu_usage(before: tuple[float, float, float],
              after: tuple[float, float, float]) -> dict[str, float]:
    """Average cores used during the run by our three processes and by everything else, so
    a reader can tell a quiet machine from a shared one."""
    wall = max(after[0] - before[0], 1e-9)
    ours = (after[2] - before[2]) / wall
    machine = (after[1] - before[1]) / wall
    return {"cores_used_by_benchmark": round(ours, 2),
            "cores_used_by_others": round(max(machine - ours, 0.0), 2)}


def environment() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for ln in fh:
            if ln.startswith("model name"):
                model = ln.split(":", 1)[1].strip()
                break
    ram = ""
    with contextlib.suppress(OSError), open("/proc/meminfo") as fh:
        for ln in fh:
            if ln.startswith("MemTotal:"):
                ram = f"{int(ln.split()[1]) / 1024 / 1024:.1f} GiB RAM"
                break
    etcd_version = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        etcd_version = subprocess.run([shutil.which("etcd") or "etcd", "--version"],
                                      check=False, capture_output=True, text=True,
                                      timeout=10
                                      ).stdout.splitlines()[0]
    commit = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        git = ["git", "-C", str(ROOT)]
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], check=False,
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"],
                               check=False, capture_output=True, text=True,
                               timeout=10).stdout.strip()
        commit += "+dirty" if dirty else ""
    return {"date": datetime.date.today().isoformat(), "commit": commit,
            "cpus": len(os.sched_getaffinity(0)), "cpu_model": model or platform.processor(),
            "ram": ram, "python": platform.python_version(), "etcd": etcd_version,
            "command": " ".join([Path(sys.executable).name, *sys.argv])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--keep-workdir", action="store_true",
                   help="keep the temporary directory (etcd data, apiserver log)")
    p.add_argument("--py-spy", metavar="FILE",
                   help="record the apiserver with py-spy (if installed) into FILE "
                        "(collapsed stacks); in the security comparison the secure one into "
                        "FILE and the baseline into FILE.off")
    p.add_argument("--security-baseline", metavar="DIR|REV",
                   help="also compare creates/s with security on and off: DIR is a checkout "
                        "of the commit before security, or REV a revision of this repository "
                        "(exported with git archive)")
    p.add_argument("--security-only", action="store_true",
                   help="with --security-baseline: run only the comparison")
    args = p.parse_args(argv)
    if args.security_only and not args.security_baseline:
        p.error("--security-only needs --security-baseline")
    cfg = Config.quick() if args.quick else Config()
    sec_cfg = SecurityConfig.quick() if args.quick else SecurityConfig()

    # SIGTERM takes the same way out as Ctrl-C: through the finally below.
    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    env = environment()
    workdir = tempfile.mkdtemp(prefix="kubelite-bench-")
    procs: list[subprocess.Popen[bytes]] = []
    spies: list[subprocess.Popen[bytes]] = []
    failed = True
    try:
        out: dict[str, Any] = {"environment": env}
        if not args.security_only:
            progress(f"starting etcd and the apiserver in {workdir}")
            etcd = start_etcd(workdir)
            procs.append(etcd.proc)
            apiserver = start_apiserver(etcd, Path(workdir))
            procs.insert(0, apiserver.proc)
            if args.py_spy:
                spy = start_py_spy(apiserver.proc.pid, args.py_spy)
                spies += [spy] if spy is not None else []
            pids = [os.getpid(), etcd.proc.pid, apiserver.proc.pid]
            before = cpu_snapshot(pids)
            res = asyncio.run(run_benchmark(etcd, apiserver, cfg))
            env.update(cpu_usage(before, cpu_snapshot(pids)))
            out = report(res, cfg, env)
            stop_spies(spies)
            for proc in procs:  # the comparison starts its own
                stop_process(proc)
            procs.clear()
        if args.security_baseline:
            sec_env = dict(env)
            baseline = baseline_tree(args.security_baseline, Path(workdir))
            out["security"] = security_comparison(
                baseline, Path(workdir), sec_cfg, procs, sec_env,
                args.py_spy if args.security_only else None, spies)
            out["security"]["baseline"] = args.security_baseline
            for k in ("cores_used_by_benchmark", "cores_used_by_others"):
                out["security"][k] = sec_env.get(k)
        passes = ([out["all_pass"]] if "all_pass" in out else []) + (
            [out["security"]["target"]["pass"]] if "security" in out else [])
        out["all_pass"] = all(passes)
        if args.json:
            print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        else:
            if not args.security_only:
                print_table(out)
            if "security" in out:
                if not args.security_only:
                    print()
                print_security(out["security"], out["security"])
                if args.security_only:
                    print(f"{env['date']}  {env['cpus']} CPUs ({env['cpu_model']}), "
                          f"Python {env['python']}, {env['etcd']}, commit {env['commit']}, "
                          f"baseline {args.security_baseline}")
        failed = False
        return 0 if out["all_pass"] else 1
    except KeyboardInterrupt:
        progress("interrupted")
        return 130
    finally:
        stop_spies(spies)
        for proc in procs:
            stop_process(proc)
        if failed:
            for log in sorted(Path(workdir).glob("**/apiserver-*.log")):
                progress(f"{log} (tail):\n{log.read_text(errors='replace')[-2000:]}")
        if args.keep_workdir:
            progress(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def stop_spies(spies: list[subprocess.Popen[bytes]]) -> None:
    for spy in spies:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    for spy in spies:
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()
    spies.clear()


def start_py_spy(pid: int, out: str) -> subprocess.Popen[bytes] | None:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        progress("py-spy not found; recording nothing")
        return None
    proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--format", "raw",
                             "--rate", "100", "--output", out, "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # let it attach before the load starts
    if proc.poll() is not None:
        progress(f"py-spy exited with {proc.returncode}; recording nothing")
        return None
    return proc


if __name__ == "__main__":
    sys.exit(main())
