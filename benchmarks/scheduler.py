"""Scheduler benchmark: pods bound per second end to end, and create-to-bound latency.

    .venv/bin/python benchmarks/scheduler.py            # 1,000 nodes, 3,000 pods
    .venv/bin/python benchmarks/scheduler.py --quick    # 100 nodes, 300 pods (smoke run)
    .venv/bin/python benchmarks/scheduler.py --json     # results as JSON on stdout
    .venv/bin/python benchmarks/scheduler.py --py-spy sched.txt   # profile the scheduler

One run starts its own etcd and apiserver (temporary directory, loopback ports), creates the
Node objects (4 cpu, 16Gi, 110 pods, spread over three zones; no kubelets), then starts the
scheduler as a subprocess (`python -m scheduler`, leader election on, as deployed: HTTPS, its
own client certificate system:kube-scheduler, so RBAC checks its requests) and waits until it
holds the Lease and has bound a warm-up pod; the benchmark itself is the admin. Then:
  1. a watch on the benchmark namespace notes, per pod, when it first sees `spec.nodeName`;
  2. pods are created as fast as the apiserver takes them (64 in flight); each create's
     return time is noted (creationTimestamp has only second precision);
  3. the run ends when every pod is bound (or at the time cap).
Reported: pods bound per second from the first create to the last bind seen, the create
rate on its own, and p50/p99/max from create-return to bind-seen. The client, etcd, the
apiserver and the scheduler share the machine's cores. Results are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repo's packages importable
    sys.path.insert(0, str(ROOT))

import aiohttp
import orjson

from client.kubeconfig import write_kubeconfig
from tests.conftest import ApiServer, start_apiserver, start_etcd, stop_process

TARGET_PODS_PER_SECOND = 300.0
NAMESPACE = "bench"
ZONES = ("zone-a", "zone-b", "zone-c")


@dataclass(frozen=True)
class Config:
    nodes: int = 1000
    pods: int = 3000
    concurrency: int = 64  # creates in flight
    pods_per_owner: int = 100  # pods share a controller ownerReference, as ReplicaSet pods do
    cpu_request: str = "100m"
    memory_request: str = "128Mi"
    cap: float = 180.0  # seconds from the first create until we give up waiting for binds
    rate: float = 0.0  # creates per second, paced (open loop); 0: as fast as possible
    judged: bool = True  # whether the throughput target applies (not to smoke or paced runs)

    @classmethod
    def quick(cls) -> Config:
        return cls(nodes=100, pods=300, cap=60.0, judged=False)


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(p / 100.0 * len(s) + 0.5) - 1))
    return s[k]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 1)


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def node_body(i: int) -> bytes:
    name = f"node-{i:05d}"
    resources = {"cpu": "4", "memory": "16Gi", "pods": "110"}
    return orjson.dumps({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                              "topology.kubernetes.io/zone": ZONES[i % 3]}},
        "status": {"capacity": resources, "allocatable": resources}})


def pod_body(name: str, cfg: Config, owner: int) -> bytes:
    return orjson.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": f"app-{owner}"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                          "name": f"rs-{owner}", "uid": f"rs-uid-{owner}",
                                          "controller": True}]},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                 "resources": {"requests": {"cpu": cfg.cpu_request,
                                                            "memory": cfg.memory_request}}}]}})


@dataclass
class Run:
    created: dict[str, float] = field(default_factory=dict)  # name -> create returned
    bound: dict[str, float] = field(default_factory=dict)  # name -> bind seen by the watch
    nodes_used: dict[str, int] = field(default_factory=dict)
    create_errors: int = 0
    first_error: str = ""
    start: float = 0.0
    creates_done: float = 0.0
    all_bound: asyncio.Event = field(default_factory=asyncio.Event)


class Client:
    """Plain aiohttp + orjson: the benchmark's own cost should stay small."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base = base
        self.session = session

    async def post(self, path: str, body: bytes) -> int:
        async with self.session.post(self.base + path, data=body,
                                     headers={"Content-Type": "application/json"}) as r:
            await r.read()
            if r.status >= 300 and r.status != 409:
                raise RuntimeError(f"POST {path}: HTTP {r.status}")
            return r.status

    async def get_json(self, path: str) -> Any:
        async with self.session.get(self.base + path) as r:
            return orjson.loads(await r.read())


async def in_parallel(n: int, concurrency: int, op: Any) -> None:
    indices = iter(range(n))

    async def worker() -> None:
        for i in indices:
            await op(i)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def paced(n: int, rate: float, concurrency: int, op: Any) -> None:
    """Start op(i) at start + i/rate (open loop), at most `concurrency` at once."""
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with slots:
            await op(i)

    t0 = time.perf_counter()
    tasks = []
    for i in range(n):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i), name=f"bench:create-{i}"))
    await asyncio.gather(*tasks)


async def watch_binds(client: Client, rv: str, run: Run, total: int) -> None:
    """Note when each benchmark pod is first seen with a node."""
    url = (f"{client.base}/api/v1/namespaces/{NAMESPACE}/pods?watch=true"
           f"&resourceVersion={rv}&timeoutSeconds=600")
    async with client.session.get(url, timeout=aiohttp.ClientTimeout(total=None)) as r:
        pending = b""
        async for chunk in r.content.iter_any():
            now = time.perf_counter()
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if not line.strip():
                    continue
                obj = orjson.loads(line)["object"]
                node = (obj.get("spec") or {}).get("nodeName")
                name = obj["metadata"]["name"]
                if node and name not in run.bound:
                    run.bound[name] = now
                    run.nodes_used[node] = run.nodes_used.get(node, 0) + 1
                    if len(run.bound) >= total:
                        run.all_bound.set()
                        return


async def wait_for_scheduler(client: Client, deadline: float) -> None:
    """Until the scheduler holds the Lease and has bound a warm-up pod (outside the stats)."""
    await client.post("/api/v1/namespaces", orjson.dumps({"metadata": {"name": "warmup"}}))
    await client.post("/api/v1/namespaces/warmup/pods", orjson.dumps({
        "metadata": {"name": "warmup"},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}))
    while time.monotonic() < deadline:
        pod = await client.get_json("/api/v1/namespaces/warmup/pods/warmup")
        if (pod.get("spec") or {}).get("nodeName"):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("the scheduler did not bind the warm-up pod")


async def run_benchmark(apiserver: ApiServer, cfg: Config,
                        start_scheduler: Any) -> dict[str, Any]:
    # The benchmark is the admin (x509, system:masters) over TLS, connections kept alive.
    connector = aiohttp.TCPConnector(limit=cfg.concurrency + 8, ssl=apiserver.tls())
    async with aiohttp.ClientSession(connector=connector) as session:
        client = Client(apiserver.url, session)
        progress(f"creating {cfg.nodes} nodes")
        t = time.perf_counter()
        await in_parallel(cfg.nodes, cfg.concurrency,
                          lambda i: client.post("/api/v1/nodes", node_body(i)))
        progress(f"nodes created in {time.perf_counter() - t:.1f}s; starting the scheduler")
        start_scheduler()
        await wait_for_scheduler(client, time.monotonic() + 60)
        progress("scheduler is leading and bound the warm-up pod")

        await client.post("/api/v1/namespaces", orjson.dumps({"metadata": {"name": NAMESPACE}}))
        listing = await client.get_json(f"/api/v1/namespaces/{NAMESPACE}/pods")
        run = Run()
        watcher = asyncio.create_task(
            watch_binds(client, listing["metadata"]["resourceVersion"], run, cfg.pods),
            name="bench:watch")
        await asyncio.sleep(0.2)  # let the watch connect before the first create

        async def create(i: int) -> None:
            name = f"pod-{i:05d}"
            try:
                await client.post(f"/api/v1/namespaces/{NAMESPACE}/pods",
                                  pod_body(name, cfg, i // cfg.pods_per_owner))
            except Exception as e:  # noqa: BLE001 - counted and reported
                run.create_errors += 1
                run.first_error = run.first_error or str(e)[:300]
                return
            run.created[name] = time.perf_counter()

        run.start = time.perf_counter()
        if cfg.rate > 0:
            progress(f"creating {cfg.pods} pods at {cfg.rate:.0f}/s")
            await paced(cfg.pods, cfg.rate, cfg.concurrency, create)
        else:
            progress(f"creating {cfg.pods} pods, {cfg.concurrency} in flight")
            await in_parallel(cfg.pods, cfg.concurrency, create)
        run.creates_done = time.perf_counter()
        progress(f"pods created in {run.creates_done - run.start:.1f}s; waiting for binds")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.all_bound.wait(),
                                   max(1.0, cfg.cap - (time.perf_counter() - run.start)))
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
            await watcher
    return summarize(run, cfg)


def summarize(run: Run, cfg: Config) -> dict[str, Any]:
    latencies = [max(0.0, run.bound[n] - t) for n, t in run.created.items() if n in run.bound]
    last_bind = max(run.bound.values(), default=run.start)
    first_bind = min(run.bound.values(), default=run.start)
    elapsed = last_bind - run.start
    per_node = list(run.nodes_used.values())
    return {
        "nodes": cfg.nodes, "pods": cfg.pods, "concurrency": cfg.concurrency,
        "created": len(run.created), "create_errors": run.create_errors,
        "first_error": run.first_error, "bound": len(run.bound),
        "create_seconds": round(run.creates_done - run.start, 2),
        "creates_per_second": round(len(run.created) / (run.creates_done - run.start), 1),
        "end_to_end_seconds": round(elapsed, 2),
        "pods_bound_per_second": round(len(run.bound) / elapsed, 1) if elapsed > 0 else 0.0,
        "bind_window_per_second": round(len(run.bound) / (last_bind - first_bind), 1)
        if last_bind > first_bind else 0.0,
        "latency_p50_ms": ms(percentile(latencies, 50)),
        "latency_p99_ms": ms(percentile(latencies, 99)),
        "latency_max_ms": ms(max(latencies) if latencies else None),
        "nodes_used": len(per_node),
        "pods_per_node_max": max(per_node, default=0),
        "pods_per_node_min": min(per_node, default=0),
        "target_pods_per_second": TARGET_PODS_PER_SECOND,
        "paced_rate": cfg.rate,
        "judged": cfg.judged and not cfg.rate,
    }


def environment() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for ln in fh:
            if ln.startswith("model name"):
                model = ln.split(":", 1)[1].strip()
                break
    return {"date": datetime.date.today().isoformat(), "cpus": len(os.sched_getaffinity(0)),
            "cpu_model": model or platform.processor(), "python": platform.python_version(),
            "command": " ".join([Path(sys.executable).name, *sys.argv])}


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all but idle and iowait)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as fh:
        stat = fh.read().rsplit(")", 1)[1].split()
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def print_table(out: dict[str, Any]) -> None:
    r, env = out["results"], out["environment"]
    print(f"scheduler benchmark — {env['date']}, {env['cpus']} CPUs ({env['cpu_model']}), "
          f"Python {env['python']}")
    how = (f"paced at {r['paced_rate']:.0f}/s" if r["paced_rate"]
           else f"{r['concurrency']} at a time")
    print(f"  {r['nodes']} nodes, {r['pods']} pods created {how}: "
          f"{r['created']} created ({r['create_errors']} errors) in {r['create_seconds']}s "
          f"= {r['creates_per_second']}/s")
    if r["paced_rate"]:
        verdict = "paced: the throughput target does not apply"
    elif not r["judged"]:
        verdict = "smoke run: the target is judged on the full run only"
    else:
        verdict = (f"target >= {r['target_pods_per_second']:.0f}: "
                   f"{'PASS' if out['pass'] else 'MISS'}")
    print(f"  bound: {r['bound']}/{r['pods']} in {r['end_to_end_seconds']}s from the first "
          f"create = {r['pods_bound_per_second']} pods/s end to end ({verdict})")
    print(f"  create-return -> bind seen: p50 {r['latency_p50_ms']} ms, p99 "
          f"{r['latency_p99_ms']} ms, max {r['latency_max_ms']} ms")
    print(f"  placement: {r['nodes_used']} nodes used, {r['pods_per_node_min']}.."
          f"{r['pods_per_node_max']} pods per node")
    cpu = out.get("cpu_seconds", {})
    if cpu:
        ours = ", ".join(f"{k} {v}" for k, v in cpu.items() if k != "others_avg_cores")
        print(f"  CPU seconds used: {ours}; other processes on the machine: "
              f"{cpu.get('others_avg_cores')} cores on average")


def start_py_spy(pid: int, out: str) -> subprocess.Popen[bytes] | None:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        progress("py-spy not found; recording nothing")
        return None
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--format", "raw", "--rate",
                             "200", "--output", out, "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="100 nodes, 300 pods: a smoke run")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--nodes", type=int, help="override the node count")
    p.add_argument("--pods", type=int, help="override the pod count")
    p.add_argument("--rate", type=float, default=0.0,
                   help="pace creates at this many per second instead of as fast as possible "
                        "(latency without a backlog; the throughput target does not apply)")
    p.add_argument("--keep-workdir", action="store_true",
                   help="keep the temporary directory (etcd data and logs)")
    p.add_argument("--py-spy", metavar="FILE",
                   help="record the scheduler with py-spy into FILE (collapsed stacks)")
    args = p.parse_args(argv)
    cfg = Config.quick() if args.quick else Config()
    if args.nodes or args.pods or args.rate:
        cfg = Config(nodes=args.nodes or cfg.nodes, pods=args.pods or cfg.pods, cap=cfg.cap,
                     rate=args.rate, judged=not args.quick)

    def on_term(signum: int, frame: Any) -> None:  # SIGTERM leaves through the finally
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    env = environment()
    workdir = tempfile.mkdtemp(prefix="kubelite-sched-bench-")
    procs: list[subprocess.Popen[bytes]] = []
    spy: subprocess.Popen[bytes] | None = None
    failed = True
    try:
        progress(f"starting etcd and the apiserver in {workdir}")
        etcd = start_etcd(workdir)
        procs.append(etcd.proc)
        apiserver = start_apiserver(etcd, Path(workdir))
        procs.insert(0, apiserver.proc)
        sched_log = Path(workdir, "scheduler.log")
        # The scheduler's own identity (system:kube-scheduler, RBAC-checked), as `kubelite up`
        # gives it.
        pki = apiserver.pki
        sched_kubeconfig = write_kubeconfig(
            Path(workdir, "kube-scheduler.conf"), apiserver.url,
            ca_data=pki.ca_cert.read_bytes(),
            client_cert_data=pki.component_cert("kube-scheduler").read_bytes(),
            client_key_data=pki.component_key("kube-scheduler").read_bytes(),
            user="system:kube-scheduler")

        def start_scheduler() -> None:
            nonlocal spy
            with sched_log.open("wb") as log:
                proc = subprocess.Popen([sys.executable, "-m", "scheduler", "--kubeconfig",
                                         str(sched_kubeconfig)],
                                        stdout=log, stderr=log, cwd=ROOT)
            procs.insert(0, proc)
            if args.py_spy:
                spy = start_py_spy(proc.pid, args.py_spy)

        pids = {"apiserver": apiserver.proc.pid, "etcd": etcd.proc.pid,
                "benchmark": os.getpid()}
        wall0, busy0 = time.monotonic(), machine_busy_seconds()
        res = asyncio.run(run_benchmark(apiserver, cfg, start_scheduler))
        wall, busy = time.monotonic() - wall0, machine_busy_seconds() - busy0
        pids["scheduler"] = procs[0].pid
        cpu = {name: round(cpu_seconds(pid), 1) for name, pid in pids.items()}
        # Everything else on the machine (another session's tests, say), in average cores.
        cpu["others_avg_cores"] = round(max(0.0, busy - sum(cpu.values())) / wall, 2)
        ok = res["bound"] == cfg.pods and (
            not res["judged"] or res["pods_bound_per_second"] >= TARGET_PODS_PER_SECOND)
        out = {"environment": env, "results": res, "cpu_seconds": cpu, "pass": ok}
        if args.json:
            print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        else:
            print_table(out)
        failed = res["bound"] != cfg.pods
        return 0 if ok else 1
    except KeyboardInterrupt:
        progress("interrupted")
        return 130
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
        for proc in procs:
            stop_process(proc)
        if failed:
            for log in sorted(Path(workdir).glob("*.log")):
                progress(f"{log} (tail):\n{log.read_text(errors='replace')[-2000:]}")
        if args.keep_workdir:
            progress(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
