"""Endpoint change -> data path benchmark: the real kube-proxy (iptables mode), 100 Services.

    .venv/bin/python benchmarks/endpoint_latency.py [--services N (1..1000, default 100)]
        [--changes N (1..1000, default 100)] [--removals N (0..--services, default 20)]
        [--concurrency N (1..50, default 1)] [--json] [--proxy-log FILE]

Needs root, `ip` and the iptables tools; no Docker and no `kubelite up`. One run starts its own
etcd and apiserver (tests/conftest.py, temporary directory, loopback ports) and a private
network namespace `klbench-<random>` joined to the host by a veth pair (a free /30 of
10.253.0.0/16). The apiserver also listens on the host end of the veth (--advertise-address),
so the real kube-proxy (`ip netns exec NS python -m kube_proxy --proxy-mode iptables -v 4`,
with its own --lock-file; HTTPS with its own client certificate, system:kube-proxy, as
`kubelite up` runs it; the serving certificate names that address) reaches it without a relay and programs only the namespace's
tables. Inside the namespace two backends, A = 10.251.0.2 and B = 10.251.0.3 (addresses on
`lo`), answer every TCP connection on :8080 with their own address; ClusterIPs (10.96.0.0/12)
route to an empty bridge, so an un-DNATed packet goes nowhere. A prober process in the
namespace connects to a ClusterIP from 10.251.0.100 every 5 ms until the answer it is told to
wait for comes.

The run: N selector-less Services (ClusterIPs allocated by the apiserver) and one EndpointSlice
each pointing at A, through the REST API; wait until every ClusterIP answers A. Then each
change PUTs one Service's slice from A to B (the next round B to A) and waits, from inside the
namespace, until that ClusterIP answers B. The prober's first answer must be the old backend
(checked), then t0 is taken just before the PUT is sent and t1 when the new backend answered
(both CLOCK_MONOTONIC, the same clock in every process); latency = t1 - t0. Changes go one at a
time unless --concurrency says otherwise. Removals then PUT a slice with no endpoints and wait
for "connection refused" (the REJECT rule). Each wait is capped at 10 s, the whole run at
300 s; everything (processes, namespace, veth, temporary directory) is removed at the end, also
on Ctrl-C, SIGTERM or an error. Traffic goes only to loopback and to the namespace's addresses.

Also reported: the PUT round trip, when kube-proxy logged the new endpoints (its log, ms
resolution, wall clock), its syncs during the changes (count and `took=` from its -v 4 log),
its CPU time, the nat table's size, and the machine's load. Target: p99 <= 1 s ("endpoint
changes reach the data path within 1 s"). Exit status 0 when met and every change was seen,
1 otherwise, 130 when interrupted. Results are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import ipaddress
import itertools
import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repo's packages importable
    sys.path.insert(0, str(ROOT))

from api.resources import CATALOGUE, Resource
from client.kubeconfig import write_kubeconfig
from client.rest import ApiClient
from kubelite.pki import ensure_control_plane
from tests.conftest import start_apiserver, start_etcd, stop_process

Obj = dict[str, Any]
T = TypeVar("T")

BACKEND_A, BACKEND_B, CLIENT = "10.251.0.2", "10.251.0.3", "10.251.0.100"
POD_CIDR, SERVICE_CIDR = "10.251.0.0/24", "10.96.0.0/12"
BACKEND_PORT, SERVICE_PORT = 8080, 80
NS = "bench-endpoints"  # the Kubernetes namespace of the benchmark's Services
TARGET_P99 = 1.0  # seconds
CAP, WAIT, PROGRAM_WAIT = 300.0, 10.0, 60.0  # seconds: the run, one change, first programming
PROBE_INTERVAL, ATTEMPT_TIMEOUT = 0.005, 0.25  # seconds, inside the prober
MAX_SERVICES, MAX_CHANGES, MAX_CONCURRENCY = 1000, 1000, 50
REFUSED = "refused"


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no values."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, round(p / 100.0 * len(s) + 0.5) - 1))] if s else None


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 1)


def stats_ms(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50_ms": ms(percentile(values, 50)),
            "p90_ms": ms(percentile(values, 90)), "p99_ms": ms(percentile(values, 99)),
            "max_ms": ms(max(values, default=None))}


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (all but idle and iowait)."""
    with open("/proc/stat") as fh:
        f = [int(x) for x in fh.readline().split()[1:]]
    return (sum(f) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one process; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg() -> str:  # 1, 5 and 15 minutes
    return Path("/proc/loadavg").read_text().rsplit(" ", 2)[0]


def run(*argv: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """One line of a child's stdout, waiting at most `timeout` seconds for it."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError(f"no output from {proc.args!r} in {timeout}s")
    return proc.stdout.readline().strip()


def _res(plural: str) -> Resource:
    res = CATALOGUE.by_plural(plural)
    assert res is not None, plural
    return res


NAMESPACES, SERVICES, SLICES = _res("namespaces"), _res("services"), _res("endpointslices")


# -- inside the namespace: the backends and the prober ----------------------------------------


async def serve_backends(addresses: list[str]) -> None:
    """Every backend answers each TCP connection with its own address, then closes it."""

    def answer_with(addr: str) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
        async def handle(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                writer.write(f"{addr}\n".encode())
                await writer.drain()
            writer.close()
        return handle

    servers = [await asyncio.start_server(answer_with(a), a, BACKEND_PORT, backlog=1024)
               for a in addresses]
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


async def attempt(host: str, port: int) -> str:
    """One new TCP connection to host:port from CLIENT: who answered, or why nobody did."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, local_addr=(CLIENT, 0)), ATTEMPT_TIMEOUT)
    except ConnectionRefusedError:
        return REFUSED
    except TimeoutError:
        return "timeout"
    except OSError as e:
        return f"error:{e.strerror}"
    try:
        line = await asyncio.wait_for(reader.readline(), ATTEMPT_TIMEOUT)
        return line.decode().strip() or "empty"
    except TimeoutError:
        return "timeout"
    except OSError as e:
        return f"error:{e.strerror}"
    finally:
        writer.close()


def emit(msg: Obj) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


async def probe_until(cmd: Obj) -> None:
    """Connect every PROBE_INTERVAL until `want` answers. Reports the first answer at once
    (the caller checks the data path still shows the old state), then the outcome."""
    host, port, want, cid = cmd["host"], cmd["port"], cmd["want"], cmd["id"]
    deadline = time.monotonic() + cmd["timeout"]
    answers: dict[str, int] = {}
    first = True
    while True:
        answer = await attempt(host, port)
        t = time.monotonic()
        answers[answer] = answers.get(answer, 0) + 1
        if first:
            emit({"id": cid, "kind": "first", "answer": answer, "t": t})
            first = False
        if answer == want or t > deadline:
            emit({"id": cid, "kind": "done", "ok": answer == want,
                  "t1": t if answer == want else None, "answers": answers})
            return
        await asyncio.sleep(PROBE_INTERVAL)


async def serve_probes() -> None:
    """Commands (one JSON object a line) on stdin; results on stdout; exits at EOF."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tasks: set[asyncio.Task[None]] = set()
    print("ready", flush=True)
    while line := await reader.readline():
        task = asyncio.create_task(probe_until(json.loads(line)), name="probe")
        tasks.add(task)
        task.add_done_callback(tasks.discard)


# -- the host side ----------------------------------------------------------------------------


class Interrupts:
    """SIGINT/SIGTERM leave through the finally blocks (KeyboardInterrupt), but not while a
    process or link is being created and not yet registered for removal. In the event loop
    they cancel the main task instead (an exception raised at a random point of asyncio's
    own code can leave a task that never finishes)."""

    def __init__(self) -> None:
        self.critical = False
        self.pending = False
        self.install()

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.critical:
            self.pending = True
        else:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self.critical = True
        try:
            yield
        finally:
            self.critical = False
        if self.pending:
            raise KeyboardInterrupt

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """asyncio.run(coro) capped at `timeout` s; a signal cancels it: KeyboardInterrupt."""

        async def main() -> T | None:
            loop, task = asyncio.get_running_loop(), asyncio.current_task()
            assert task is not None

            def on_signal() -> None:
                self.pending = True
                task.cancel()

            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, on_signal)
            if self.pending:  # arrived while the loop started
                coro.close()
                return None
            try:
                return await asyncio.wait_for(coro, timeout)
            except asyncio.CancelledError:
                if self.pending:
                    return None  # KeyboardInterrupt once the loop is closed
                raise

        with self.deferred():  # raises KeyboardInterrupt at its end when a signal came
            try:
                result = asyncio.run(main())
            finally:
                self.install()  # closing the loop left SIG_DFL (SIGTERM) behind
        assert result is not None
        return result

    @staticmethod
    def ignore() -> None:  # while tearing down
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


@dataclass
class NetNS:
    name: str
    host_if: str
    ns_if: str
    host_ip: str
    ns_ip: str

    def exec_argv(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return run(*self.exec_argv(*argv))


def pick_veth_subnet() -> tuple[str, str]:
    """A /30 in 10.253.0.0/16 that no local address or route uses. Not link-local: the
    apiserver publishes its advertise address as the `kubernetes` endpoint, and endpoints
    may not be link-local (upstream's validation)."""
    used = run("ip", "-4", "-o", "addr", "show").stdout + run("ip", "-4", "route", "show").stdout
    cidr = re.compile(r"(?:inet |^)(\d+\.\d+\.\d+\.\d+(?:/\d+)?)", re.MULTILINE)
    nets = [ipaddress.ip_network(m, strict=False) for m in cidr.findall(used)]
    for _ in range(100):
        net = ipaddress.ip_network(f"10.253.{random.randrange(0, 256)}."
                                   f"{random.randrange(0, 64) * 4}/30")
        if not any(net.overlaps(n) for n in nets):
            hosts = list(net.hosts())
            return str(hosts[0]), str(hosts[1])
    raise RuntimeError("no free /30 in 10.253.0.0/16")


def create_netns(interrupts: Interrupts, cleanups: contextlib.ExitStack) -> NetNS:
    suffix = os.urandom(3).hex()
    host_ip, ns_ip = pick_veth_subnet()
    ns = NetNS(f"klbench-{suffix}", f"klbh{suffix}", f"klbn{suffix}", host_ip, ns_ip)
    with interrupts.deferred():
        run("ip", "netns", "add", ns.name)
        cleanups.callback(run, "ip", "netns", "del", ns.name, check=False)
    with interrupts.deferred():
        run("ip", "link", "add", ns.host_if, "type", "veth", "peer", "name", ns.ns_if)
        # Deleting the namespace destroys the pair; this covers a failure before the move.
        cleanups.callback(run, "ip", "link", "del", ns.host_if, check=False)
    ns.run("ip", "link", "set", "lo", "up")
    run("ip", "link", "set", ns.ns_if, "netns", ns.name)
    run("ip", "addr", "add", f"{host_ip}/30", "dev", ns.host_if)
    run("ip", "link", "set", ns.host_if, "up")
    ns.run("ip", "addr", "add", f"{ns_ip}/30", "dev", ns.ns_if)
    ns.run("ip", "link", "set", ns.ns_if, "up")
    for addr in (BACKEND_A, BACKEND_B, CLIENT):
        ns.run("ip", "addr", "add", f"{addr}/32", "dev", "lo")
    # Un-DNATed ClusterIP packets go to a bridge without ports: nowhere (a connect times out).
    ns.run("ip", "link", "add", "klbnull", "type", "bridge")
    ns.run("ip", "link", "set", "klbnull", "up")
    ns.run("ip", "route", "add", SERVICE_CIDR, "dev", "klbnull")
    return ns


def stop_child(proc: subprocess.Popen[Any], sig: int = signal.SIGKILL,
               timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def spawn(argv: list[str], interrupts: Interrupts, cleanups: contextlib.ExitStack,
          stop_signal: int = signal.SIGKILL, **popen: Any) -> subprocess.Popen[Any]:
    with interrupts.deferred():
        proc: subprocess.Popen[Any] = subprocess.Popen(argv, cwd=ROOT, **popen)
        cleanups.callback(stop_child, proc, stop_signal)
    return proc


class Prober:
    """The host's end of the prober process: commands out, results back by id."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.ids = itertools.count()
        self.waiting: dict[tuple[int, str], asyncio.Future[Obj]] = {}
        self.reader = asyncio.StreamReader()
        self.transport: asyncio.BaseTransport | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        assert self.proc.stdout is not None
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(self.reader), self.proc.stdout)
        self.task = asyncio.create_task(self._read(), name="prober-results")

    async def _read(self) -> None:
        try:
            while line := await self.reader.readline():
                msg = json.loads(line)
                fut = self.waiting.pop((msg["id"], msg["kind"]), None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
        finally:
            for fut in self.waiting.values():
                if not fut.done():
                    fut.set_exception(RuntimeError("the prober exited"))

    def probe(self, host: str, want: str, timeout: float = WAIT
              ) -> tuple[asyncio.Future[Obj], asyncio.Future[Obj]]:
        """Start probing host until `want` answers: (first answer, outcome)."""
        assert self.proc.stdin is not None
        loop = asyncio.get_running_loop()
        cid = next(self.ids)
        first, done = loop.create_future(), loop.create_future()
        self.waiting[(cid, "first")], self.waiting[(cid, "done")] = first, done
        self.proc.stdin.write(json.dumps({"id": cid, "host": host, "port": SERVICE_PORT,
                                          "want": want, "timeout": timeout}) + "\n")
        self.proc.stdin.flush()
        return first, done

    async def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.transport is not None:
            self.transport.close()


def slice_body(service: str, addresses: list[str], rv: str | None = None) -> Obj:
    meta: Obj = {"name": f"{service}-bench", "namespace": NS,
                 "labels": {"kubernetes.io/service-name": service}}
    if rv is not None:
        meta["resourceVersion"] = rv
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta,
            "addressType": "IPv4",
            "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in addresses],
            "ports": [{"name": "http", "port": BACKEND_PORT, "protocol": "TCP"}]}


@dataclass
class Change:
    service: str
    old: str  # backend address, or REFUSED for no endpoints
    new: str
    t0: float = 0.0
    wall0: float = 0.0
    put_done: float | None = None
    t1: float | None = None
    first: str = ""
    answers: dict[str, int] = field(default_factory=dict)
    error: str = ""

    @property
    def latency(self) -> float | None:
        return None if self.t1 is None else self.t1 - self.t0


@dataclass
class Bench:
    api: ApiClient
    prober: Prober
    services: int
    cluster_ips: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    current: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def name(i: int) -> str:
        return f"svc-{i:04d}"

    async def create(self, concurrency: int = 10) -> float:
        """The Services and their slices (to A); returns how long the creates took."""
        await self.api.create(NAMESPACES, {"metadata": {"name": NS}})
        slots = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            name = self.name(i)
            async with slots:
                svc = await self.api.create(SERVICES, {
                    "metadata": {"name": name},
                    "spec": {"type": "ClusterIP", "ports": [
                        {"name": "http", "port": SERVICE_PORT, "targetPort": BACKEND_PORT,
                         "protocol": "TCP"}]}}, NS)
                self.cluster_ips[name] = svc["spec"]["clusterIP"]
                es = await self.api.create(SLICES, slice_body(name, [BACKEND_A]), NS)
                self.versions[name] = es["metadata"]["resourceVersion"]
                self.current[name] = BACKEND_A

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(self.services)))
        return time.perf_counter() - start

    async def wait_programmed(self, deadline: float, concurrency: int = 50) -> list[str]:
        """Probe every ClusterIP until it answers A; the Services that never did."""
        slots = asyncio.Semaphore(concurrency)
        missing: list[str] = []

        async def one(name: str) -> None:
            async with slots:
                left = max(1.0, deadline - time.monotonic())
                _, done = self.prober.probe(self.cluster_ips[name], BACKEND_A, left)
                if not (await done)["ok"]:
                    missing.append(name)

        await asyncio.gather(*(one(n) for n in self.cluster_ips))
        return missing

    async def change(self, c: Change) -> None:
        """Point c.service's slice at c.new and wait until its ClusterIP follows."""
        if c.new == c.old:  # an earlier change of this Service failed before its PUT
            c.error = f"already at {c.new!r}: nothing to change"
            return
        first, done = self.prober.probe(self.cluster_ips[c.service], c.new)
        try:
            c.first = (await asyncio.wait_for(first, WAIT))["answer"]
            if c.first != c.old:  # the data path did not show the old state: not measurable
                c.error = f"before the change the ClusterIP answered {c.first!r}, not {c.old!r}"
                await done
                return
            addresses = [] if c.new == REFUSED else [c.new]
            c.wall0, c.t0 = time.time(), time.monotonic()
            es = await self.api.update(SLICES, slice_body(c.service, addresses,
                                                          self.versions[c.service]))
            c.put_done = time.monotonic()
            self.versions[c.service] = es["metadata"]["resourceVersion"]
            self.current[c.service] = c.new
            res = await asyncio.wait_for(done, WAIT + 5)
        except Exception as e:  # noqa: BLE001 - recorded and reported, the run goes on
            c.error = f"{type(e).__name__}: {e}"
            return
        c.answers = res["answers"]
        if res["ok"] and res["t1"] >= c.t0:
            c.t1 = res["t1"]
        elif res["ok"]:  # cannot be a reaction to the PUT
            c.error = f"the new state answered before the change was sent: {res['answers']}"
        else:
            c.error = f"not seen within {WAIT:.0f}s; answers {res['answers']}"

    async def changes(self, plan: list[tuple[str, str]], concurrency: int,
                      deadline: float) -> tuple[list[Change], bool]:
        """Run (service, new state) changes, `concurrency` at a time; (changes, timed out)."""
        out: list[Change] = []
        todo = iter(plan)
        timed_out = False

        async def worker() -> None:
            nonlocal timed_out
            for service, new in todo:
                if time.monotonic() > deadline - WAIT - 5:
                    timed_out = True
                    return
                c = Change(service, self.current[service], new)
                out.append(c)
                await self.change(c)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return out, timed_out


LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \S+ \S+: (.*)$")
SYNCED = re.compile(r"synced full=(\w+) chains_written=(\d+) chains_deleted=(\d+) rules=(\d+) "
                    r"took=([\d.]+)ms")


def read_proxy_log(path: Path) -> list[tuple[float, str]]:
    """(wall-clock time, message) of every kube-proxy log line (ms resolution)."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        m = LOG_LINE.match(line)
        if m:
            when = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            out.append((when, m.group(2)))
    return out


def logged_at(changes: list[Change], log: list[tuple[float, str]]) -> dict[int, float]:
    """Per change (by index): when kube-proxy logged the service with its new endpoints (it
    logs a change once the rules are applied). The log has ms resolution: 1 ms of slack."""
    out = {}
    for i, c in enumerate(changes):
        if c.t1 is None:
            continue
        eps = "[]" if c.new == REFUSED else f"[{c.new}:{BACKEND_PORT}]"
        text = f"service={NS}/{c.service}:http updated "
        for when, msg in log:
            if when >= c.wall0 - 0.001 and msg.startswith(text) and msg.endswith(
                    f"endpoints={eps}"):
                out[i] = when
                break
    return out


def syncs_between(log: list[tuple[float, str]], start: float, end: float) -> dict[str, Any]:
    took, full, rules = [], 0, None
    for when, msg in log:
        m = SYNCED.search(msg)
        if m and start < when <= end:
            took.append(float(m.group(5)) / 1000.0)
            full += m.group(1) == "True"
            rules = int(m.group(4))
    return {"syncs": len(took), "full_syncs": full, "rules_in_our_chains": rules,
            "took": stats_ms(took)}


def summarize(changes: list[Change], log: list[tuple[float, str]], timed_out: bool,
              after: float = 0.0) -> dict[str, Any]:
    """The phase's numbers; its kube-proxy syncs are those logged after `after` (the end of
    the previous phase) and from its first change to the log line of its last."""
    lat = [c.latency for c in changes if c.latency is not None]
    puts = [c.put_done - c.t0 for c in changes if c.put_done is not None]
    logged = logged_at(changes, log)
    # kube-proxy's syncs from the first change to the log line of the last one.
    start = max(after, min((c.wall0 for c in changes if c.wall0), default=0.0))
    end = max(logged.values(), default=start) + 0.001
    attempts = sum(sum(c.answers.values()) for c in changes)
    return {"count": len(changes), "seen": len(lat),
            "within_1s": sum(x <= TARGET_P99 for x in lat), "timed_out": timed_out,
            "errors": [f"{c.service}: {c.error}" for c in changes if c.error][:5],
            "error_count": sum(bool(c.error) for c in changes),
            "latency": stats_ms(lat), "put_round_trip": stats_ms(puts),
            "to_kube_proxy_log": stats_ms([max(0.0, t - changes[i].wall0)
                                           for i, t in logged.items()]),
            "kube_proxy_logged": len(logged),
            "probe_attempts": attempts,
            "probe_timeouts": sum(c.answers.get("timeout", 0) for c in changes),
            "kube_proxy": syncs_between(log, start, end), "log_window": (start, end)}


def nat_table(ns: NetNS) -> dict[str, int]:
    nat = ns.run("iptables-save", "-t", "nat").stdout.splitlines()
    filt = ns.run("iptables-save", "-t", "filter").stdout.splitlines()
    return {"nat_lines": len(nat), "filter_lines": len(filt),
            "kube_svc_chains": sum(ln.startswith(":KUBE-SVC-") for ln in nat),
            "kube_sep_chains": sum(ln.startswith(":KUBE-SEP-") for ln in nat),
            "reject_rules": sum("-j REJECT" in ln for ln in filt)}


async def bench(args: argparse.Namespace, kubeconfig: Path, ns: NetNS,
                prober_proc: subprocess.Popen[str], proxy: subprocess.Popen[bytes],
                proxy_log: Path, deadline: float) -> dict[str, Any]:
    prober = Prober(prober_proc)
    await prober.start()
    try:
        async with ApiClient.from_kubeconfig(kubeconfig, component="bench") as api:
            b = Bench(api, prober, args.services)
            progress(f"creating {args.services} Services and EndpointSlices (backend A)")
            created_s = await b.create()
            created = time.monotonic()
            missing = await b.wait_programmed(min(deadline, created + PROGRAM_WAIT))
            programmed_s = time.monotonic() - created
            if missing:
                raise RuntimeError(f"{len(missing)} Services never answered A through their "
                                   f"ClusterIP (first: {missing[0]}); see {proxy_log}")
            progress(f"all {args.services} ClusterIPs answer A, {programmed_s:.2f}s after "
                     f"the last create")
            await asyncio.sleep(1.0)  # let kube-proxy go idle before measuring
            table = nat_table(ns)

            names = sorted(b.cluster_ips)
            plan, state = [], dict(b.current)
            for i in range(args.changes):
                name = names[i % len(names)]
                state[name] = BACKEND_B if state[name] == BACKEND_A else BACKEND_A
                plan.append((name, state[name]))
            progress(f"{args.changes} endpoint changes, {args.concurrency} in flight")
            busy0, cpu0, wall0 = machine_busy(), process_cpu(proxy.pid), time.monotonic()
            moved, moved_timeout = await b.changes(plan, args.concurrency, deadline)
            wall = time.monotonic() - wall0
            busy, cpu = machine_busy() - busy0, process_cpu(proxy.pid) - cpu0

            removed: list[Change] = []
            removed_timeout = False
            if args.removals:
                progress(f"{args.removals} removals (no endpoints -> refused)")
                removed, removed_timeout = await b.changes(
                    [(n, REFUSED) for n in names[:args.removals]], args.concurrency, deadline)
            await asyncio.sleep(0.6)  # kube-proxy logs a change just after applying it
    finally:
        await prober.close()
    log = read_proxy_log(proxy_log)
    changed = summarize(moved, log, moved_timeout)
    gone = summarize(removed, log, removed_timeout, changed["log_window"][1])
    for phase in (changed, gone):
        del phase["log_window"]  # wall-clock times: only to split the log between phases
    return {"services": args.services, "concurrency": args.concurrency,
            "create_seconds": round(created_s, 3),
            "first_programming_seconds": round(programmed_s, 3), "tables": table,
            "changes": changed,
            "removals": gone if args.removals else None,
            "changes_wall_seconds": round(wall, 2),
            "machine_busy_cores": round(busy / wall, 2) if wall > 0 else None,
            "kube_proxy_cpu_seconds": round(cpu, 2),
            "kube_proxy_cpu_ms_per_change": round(cpu * 1000 / max(1, len(moved)), 1)}


def verdict(res: dict[str, Any]) -> str:
    ch = res["changes"]
    p99 = ch["latency"]["p99_ms"]
    ok = ch["seen"] == ch["count"] > 0 and p99 is not None and p99 <= TARGET_P99 * 1000
    return "PASS" if ok else "FAIL"


def print_text(env: dict[str, Any], res: dict[str, Any]) -> None:
    def line(what: str, s: dict[str, Any]) -> str:
        if not s["n"]:
            return f"{what}: -"
        return (f"{what}: p50 {s['p50_ms']:.0f} ms, p90 {s['p90_ms']:.0f} ms, "
                f"p99 {s['p99_ms']:.0f} ms, max {s['max_ms']:.0f} ms")

    t = res["tables"]
    print(f"endpoint change -> data path — {env['date']}, {env['cpus']} CPUs ({env['cpu_model']}), "
          f"{env['ram_gib']} GiB RAM, loadavg before {env['loadavg_before']}, after "
          f"{env['loadavg_after']}\n"
          f"  kube-proxy (iptables) in netns, {res['services']} Services + default/kubernetes: "
          f"{t['kube_svc_chains']} KUBE-SVC chains, nat table {t['nat_lines']} lines "
          f"(iptables-save), filter {t['filter_lines']}\n"
          f"  created in {res['create_seconds']:.2f}s; every ClusterIP answering "
          f"{res['first_programming_seconds']:.2f}s after the last create")
    for key, what in (("changes", "A <-> B"), ("removals", "-> no endpoints, refused")):
        r = res[key]
        if r is None:
            continue
        k = r["kube_proxy"]
        print(f"  {r['count']} changes ({what}, {res['concurrency']} in flight): seen "
              f"{r['seen']}/{r['count']}, within 1 s {r['within_1s']}/{r['count']}"
              f"{', stopped by the time cap' if r['timed_out'] else ''}; errors: "
              f"{r['errors'] or 'none'}\n"
              f"    {line('change -> data path', r['latency'])}\n"
              f"    {line('PUT round trip', r['put_round_trip'])}\n"
              f"    {line('change -> kube-proxy logged it (after its sync)', r['to_kube_proxy_log'])}"
              f"\n    kube-proxy syncs meanwhile: {k['syncs']} ({k['full_syncs']} full), "
              f"{line('took', k['took'])}\n"
              f"    probes: {r['probe_attempts']} connections, {r['probe_timeouts']} timed out")
    print(f"  during the changes: {res['changes_wall_seconds']:.1f}s, machine busy "
          f"{res['machine_busy_cores']} cores (everything), kube-proxy "
          f"{res['kube_proxy_cpu_seconds']:.2f} CPU s ({res['kube_proxy_cpu_ms_per_change']} "
          f"ms per change)\n  p99 <= 1 s: {verdict(res)}")


def start_everything(args: argparse.Namespace, d: Path, interrupts: Interrupts,
                     cleanups: contextlib.ExitStack, deadline: float) -> dict[str, Any]:
    ns = create_netns(interrupts, cleanups)
    progress(f"namespace {ns.name}, veth {ns.host_if} {ns.host_ip} <-> {ns.ns_ip}")
    # The apiserver's serving certificate must also name the veth's host address, which
    # kube-proxy dials from inside the namespace.
    pki = ensure_control_plane(d / "pki", service_ip="10.96.0.1",
                               advertise_addresses=[ns.host_ip])
    with interrupts.deferred():
        etcd = start_etcd(str(d), pki)
        cleanups.callback(stop_process, etcd.proc)
    with interrupts.deferred():
        apiserver = start_apiserver(etcd, d, "--advertise-address", ns.host_ip)
        cleanups.callback(stop_process, apiserver.proc)
    port = apiserver.url.rsplit(":", 1)[1]
    # kube-proxy as deployed: HTTPS, its own certificate (system:kube-proxy, RBAC-checked).
    proxy_kubeconfig = write_kubeconfig(
        d / "kube-proxy.kubeconfig", f"https://{ns.host_ip}:{port}",
        ca_data=pki.ca_cert.read_bytes(),
        client_cert_data=pki.component_cert("kube-proxy").read_bytes(),
        client_key_data=pki.component_key("kube-proxy").read_bytes(), user="system:kube-proxy")
    me = [sys.executable, "-u", str(Path(__file__).resolve())]
    backends = spawn(ns.exec_argv(*me, "--role", "backends"), interrupts, cleanups,
                     stdout=subprocess.PIPE, text=True)
    prober = spawn(ns.exec_argv(*me, "--role", "prober"), interrupts, cleanups,
                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    for proc in (backends, prober):
        if read_line(proc, 30) != "ready":
            raise RuntimeError(f"{proc.args!r} did not start")
    proxy_log = d / "kube-proxy.log"
    with open(proxy_log, "wb") as log:
        proxy = spawn(ns.exec_argv(
            sys.executable, "-m", "kube_proxy", "--kubeconfig", str(proxy_kubeconfig),
            "--hostname-override", "bench-node", "--proxy-mode", "iptables",
            "--cluster-cidr", POD_CIDR, "--lock-file", str(d / "kube-proxy.lock"), "-v", "4"),
            interrupts, cleanups, signal.SIGTERM, stdout=log, stderr=log)
    started_by = min(deadline, time.monotonic() + 30)
    while "caches synced" not in proxy_log.read_text(errors="replace"):
        if proxy.poll() is not None or time.monotonic() > started_by:
            raise RuntimeError(f"kube-proxy did not start:\n{proxy_log.read_text()[-2000:]}")
        time.sleep(0.1)
    if "mode=iptables" not in proxy_log.read_text(errors="replace"):
        raise RuntimeError(f"kube-proxy is not in iptables mode:\n{proxy_log.read_text()[-2000:]}")
    progress(f"kube-proxy pid {proxy.pid} programs {ns.name}")
    return {"ns": ns, "kubeconfig": apiserver.kubeconfig, "prober": prober, "proxy": proxy}


def environment() -> dict[str, Any]:
    with open("/proc/cpuinfo") as fh:
        model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    with open("/proc/meminfo") as fh:
        kib = int(next(ln.split()[1] for ln in fh if ln.startswith("MemTotal:")))
    return {"date": datetime.date.today().isoformat(), "cpus": os.cpu_count(), "cpu_model": model,
            "ram_gib": round(kib / 2**20, 1), "python": sys.version.split()[0],
            "loadavg_before": loadavg()}


def missing_prerequisite() -> str | None:
    for tool in ("ip", "iptables", "iptables-restore", "iptables-save", "etcd"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if os.geteuid() != 0:
        return "needs root (network namespaces and iptables)"
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--services", type=int, default=100, help=f"1..{MAX_SERVICES}")
    p.add_argument("--changes", type=int, default=100, help=f"1..{MAX_CHANGES}")
    p.add_argument("--removals", type=int, default=20,
                   help="changes to no endpoints after the others (0..--services)")
    p.add_argument("--concurrency", type=int, default=1,
                   help=f"changes in flight (1..{MAX_CONCURRENCY})")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--proxy-log", type=Path, help="keep a copy of kube-proxy's log there")
    p.add_argument("--role", choices=("backends", "prober"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.role == "backends":  # inside the namespace
        asyncio.run(serve_backends([BACKEND_A, BACKEND_B]))
        return 0
    if args.role == "prober":
        asyncio.run(serve_probes())
        return 0
    if not 1 <= args.services <= MAX_SERVICES:
        p.error(f"--services must be between 1 and {MAX_SERVICES}")
    if not 1 <= args.changes <= MAX_CHANGES:
        p.error(f"--changes must be between 1 and {MAX_CHANGES}")
    if not 0 <= args.removals <= args.services:
        p.error("--removals must be between 0 and --services")
    if not 1 <= args.concurrency <= min(MAX_CONCURRENCY, args.services):
        p.error(f"--concurrency must be between 1 and {MAX_CONCURRENCY} (and <= --services)")
    why = missing_prerequisite()
    if why:
        print(f"endpoint_latency: {why}", file=sys.stderr)
        return 2

    interrupts = Interrupts()
    deadline = time.monotonic() + CAP
    env = environment()
    res: dict[str, Any] | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="kubelite-endpoint-bench-",
                                         ignore_cleanup_errors=True) as tmp:
            log = Path(tmp) / "kube-proxy.log"
            try:
                with contextlib.ExitStack() as cleanups:  # undone in reverse order
                    try:
                        parts = start_everything(args, Path(tmp), interrupts, cleanups,
                                                 deadline)
                        res = interrupts.run(
                            bench(args, parts["kubeconfig"], parts["ns"], parts["prober"],
                                  parts["proxy"], log, deadline),
                            max(1.0, deadline - time.monotonic()))
                    except Exception:
                        if log.exists():
                            progress(f"kube-proxy's log ends with:\n{log.read_text()[-1500:]}")
                        raise
                    finally:
                        interrupts.ignore()
                        progress("tearing down")
            finally:
                if args.proxy_log and log.exists():  # kube-proxy has stopped: all of it
                    shutil.copyfile(log, args.proxy_log)
    except KeyboardInterrupt:
        progress("interrupted")
        return 130
    env["loadavg_after"] = loadavg()
    if args.json:
        print(json.dumps({"environment": env, "results": res, "p99_1s": verdict(res)}, indent=2))
    else:
        print_text(env, res)
    return 0 if verdict(res) == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
