"""kube-proxy's other pure parts: flags, the userspace balancer, the sync runner, the
per-kernel lock (real flocks on temp files), the health verdict and the diffing proxier
against a fake iptables."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from kube_proxy.balancer import LoadBalancer
from kube_proxy.healthz import HealthState, healthy
from kube_proxy.iptables_proxier import IptablesProxier, ensure_bridge_nf_call_iptables
from kube_proxy.lock import KernelLock
from kube_proxy.model import build_snapshot
from kube_proxy.netif import addresses_in, parse_cidrs
from kube_proxy.options import parse_args
from kube_proxy.rules import NAT, ChainKey, ProxyConfig
from kube_proxy.runner import SyncRunner
from tests.unit.test_kube_proxy_rules import READY, eps, svc

ROOT = Path(__file__).resolve().parents[2]

# --- flags ------------------------------------------------------------------------------------


def test_flags_defaults_and_values() -> None:
    o = parse_args(["--kubeconfig", "/k", "--hostname-override", "Node-1"])
    assert (o.kubeconfig, o.hostname_override, o.proxy_mode) == ("/k", "node-1", "iptables")
    assert (o.sync_period, o.min_sync_period, o.masquerade_all, o.cleanup) == \
        (30.0, 0.0, False, False)
    assert o.masquerade_mark == "0x4000"
    assert (o.healthz_host, o.healthz_port) == ("", 0)
    o = parse_args(["--proxy-mode", "userspace", "--cluster-cidr", "10.200.0.0/16",
                    "--nodeport-addresses", "192.0.2.0/24,10.0.0.1", "--masquerade-all",
                    "--sync-period", "1m", "--min-sync-period", "250ms", "--cleanup=true",
                    "--healthz-bind-address", "127.0.0.1:10300", "--iptables-masquerade-bit",
                    "15"])
    assert o.proxy_mode == "userspace" and o.cluster_cidr == "10.200.0.0/16"
    assert [str(n) for n in o.nodeport_addresses] == ["192.0.2.0/24", "10.0.0.1/32"]
    assert o.masquerade_all and o.cleanup
    assert (o.sync_period, o.min_sync_period) == (60.0, 0.25)
    assert (o.healthz_host, o.healthz_port) == ("127.0.0.1", 10300)
    assert o.masquerade_mark == "0x8000"
    assert parse_args(["--masquerade-all=false"]).masquerade_all is False
    assert parse_args(["--healthz-port", "10256"]).healthz_host == "0.0.0.0"
    assert parse_args(["--iptables-sync-period", "5s"]).sync_period == 5.0


@pytest.mark.parametrize("argv", [
    ["--proxy-mode", "ipvs"], ["--sync-period", "soon"], ["--cluster-cidr", "10.0.0.0/99"],
    ["--nodeport-addresses", "fd00::/64"], ["--no-such-flag"], ["--masquerade-all=maybe"],
    ["--healthz-bind-address", "nowhere:1"], ["--iptables-masquerade-bit", "40"],
])
def test_bad_flags_exit_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and "Traceback" not in err


def test_bad_flag_through_the_command_line() -> None:
    r = subprocess.run([sys.executable, "-m", "kube_proxy", "--proxy-mode", "nftables"],
                       capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "nftables" in r.stderr, r.stderr


def test_cidr_helpers() -> None:
    nets = parse_cidrs("10.0.0.0/8, 192.0.2.7")
    assert addresses_in(nets, ["127.0.0.1", "10.9.9.9", "192.0.2.7", "10.0.0.2",
                               "10.9.9.9"]) == ["10.0.0.2", "10.9.9.9", "192.0.2.7"]
    with pytest.raises(ValueError):
        parse_cidrs("fd00::/8")


# --- the userspace balancer -------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


A, B, C = ("10.0.0.1", 80), ("10.0.0.2", 80), ("10.0.0.3", 80)


def test_balancer_round_robin_and_exclusion() -> None:
    lb: LoadBalancer[str] = LoadBalancer()
    assert lb.pick("svc", "1.1.1.1") is None
    lb.update("svc", [A, B, C])
    assert [lb.pick("svc", "1.1.1.1") for _ in range(6)] == [A, B, C, A, B, C]
    assert lb.pick("svc", "1.1.1.1", exclude=[A]) == B
    assert lb.pick("svc", "1.1.1.1", exclude=[A, B, C]) is None
    lb.update("svc", [C])
    assert {lb.pick("svc", "x") for _ in range(3)} == {C}
    lb.update("svc", [])
    assert lb.pick("svc", "x") is None
    lb.remove("svc")
    assert lb.keys() == []


def test_balancer_client_ip_affinity() -> None:
    clock = Clock()
    lb: LoadBalancer[str] = LoadBalancer(clock)
    lb.update("svc", [A, B, C], affinity_timeout=10)
    first = lb.pick("svc", "1.1.1.1")
    other = lb.pick("svc", "2.2.2.2")
    assert first != other
    for _ in range(5):
        clock.now += 9
        assert lb.pick("svc", "1.1.1.1") == first  # each use refreshes the timeout
    clock.now += 11
    assert lb.pick("svc", "1.1.1.1") != first or len({A, B, C}) == 1
    # The sticky endpoint goes away: the client gets another one, and sticks to it.
    sticky = lb.pick("svc", "3.3.3.3")
    lb.update("svc", [ep for ep in (A, B, C) if ep != sticky], affinity_timeout=10)
    moved = lb.pick("svc", "3.3.3.3")
    assert moved not in (None, sticky)
    assert all(lb.pick("svc", "3.3.3.3") == moved for _ in range(5))
    # A failing sticky endpoint is skipped for that connection.
    assert lb.pick("svc", "3.3.3.3", exclude=[moved]) not in (None, moved)
    # Affinity turned off: plain round-robin again.
    lb.update("svc", [A, B], affinity_timeout=None)
    assert {lb.pick("svc", "1.1.1.1") for _ in range(4)} == {A, B}


# --- the sync runner --------------------------------------------------------------------------


async def test_runner_coalesces_bursts_and_runs_full_syncs() -> None:
    calls: list[bool] = []

    async def sync(full: bool) -> None:
        calls.append(full)

    runner = SyncRunner(sync, period=0.4, coalesce=0.05)
    task = asyncio.create_task(runner.run(), name="test-runner")
    try:
        await asyncio.sleep(0.1)
        assert calls == [True]  # the first sync is full
        for _ in range(20):
            runner.request()
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.15)
        assert calls == [True, False]  # one partial sync for the whole burst
        await asyncio.sleep(0.4)
        assert calls[-1] is True and len(calls) == 3  # the periodic full resync
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_runner_retries_failures_with_a_full_sync_and_respects_min_interval() -> None:
    calls: list[tuple[bool, float]] = []
    loop = asyncio.get_running_loop()

    async def sync(full: bool) -> None:
        calls.append((full, loop.time()))
        if len(calls) == 2:
            raise RuntimeError("iptables-restore failed")

    runner = SyncRunner(sync, period=0, min_interval=0.2, coalesce=0.0, retry=0.05)
    task = asyncio.create_task(runner.run(), name="test-runner")
    try:
        await asyncio.sleep(0.05)
        runner.request()
        await asyncio.sleep(0.6)
        assert [full for full, _ in calls] == [True, False, True]
        gaps = [b - a for (_, a), (_, b) in itertools.pairwise(calls)]
        assert all(gap >= 0.19 for gap in gaps), gaps
        assert runner.failures == 1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# --- the per-kernel lock ----------------------------------------------------------------------


def test_kernel_lock_one_holder_and_standby_handover(tmp_path: Path) -> None:
    path = tmp_path / "kube-proxy.1.lock"
    holder, standby = KernelLock(path), KernelLock(path)
    assert holder.try_acquire() and holder.held
    assert holder.holder_pid() is not None
    assert not standby.try_acquire()
    assert not holder.standby_present()
    standby.stand_by()
    assert holder.standby_present()
    holder.release()
    assert standby.try_acquire()
    assert not standby.standby_present()  # it left the standby role on taking over
    standby.release()


def test_kernel_lock_survives_a_killed_holder(tmp_path: Path) -> None:
    path = tmp_path / "kube-proxy.2.lock"
    code = "\n".join([
        f"import sys, time; sys.path.insert(0, {str(ROOT)!r})",
        "from pathlib import Path",
        "from kube_proxy.lock import KernelLock",
        f"lock = KernelLock(Path({str(path)!r}))",
        "assert lock.try_acquire()",
        "print('held', flush=True)",
        "time.sleep(30)"])
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        mine = KernelLock(path)
        assert not mine.try_acquire()
        assert mine.holder_pid() == proc.pid
        proc.kill()
        proc.wait(10)
        assert mine.try_acquire()
        mine.release()
    finally:
        proc.kill()
        proc.wait()


# --- health -----------------------------------------------------------------------------------


def test_health_verdict() -> None:
    assert healthy(HealthState(role="standby"), 30, 1000)
    assert not healthy(HealthState(role="programmer"), 30, 1000)
    assert healthy(HealthState(role="programmer", last_synced=990), 30, 1000)
    assert healthy(HealthState(role="programmer", last_synced=900, pending_since=990), 30, 1000)
    assert not healthy(HealthState(role="programmer", last_synced=900, pending_since=930), 30,
                       1000)


def test_bridge_nf_call_iptables(tmp_path: Path) -> None:
    f = tmp_path / "bridge-nf-call-iptables"
    assert not ensure_bridge_nf_call_iptables(f)  # br_netfilter not loaded: nothing to do
    f.write_text("0\n")
    assert ensure_bridge_nf_call_iptables(f)
    assert f.read_text().strip() == "1"
    assert not ensure_bridge_nf_call_iptables(f)


# --- the iptables proxier against a fake iptables ---------------------------------------------


class FakeIptables:
    """Keeps chains as iptables-restore would, so partial syncs can be checked."""

    def __init__(self) -> None:
        self.kernel: dict[ChainKey, list[str]] = {(NAT, "PREROUTING"): [],
                                                   (NAT, "KUBE-SVC-STALESTALESTALE"): ["x"]}
        self.restores: list[str] = []
        self.fail_next = False

    async def chains(self) -> set[ChainKey]:
        return set(self.kernel)

    async def restore(self, text: str) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("restore failed")
        self.restores.append(text)
        table = ""
        for line in text.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith(":"):
                self.kernel[(table, line[1:].split()[0])] = []
            elif line.startswith("-A "):
                self.kernel[(table, line.split()[1])].append(line)
            elif line.startswith("-X "):
                del self.kernel[(table, line.split()[1])]

    async def ensure_jump_rules(self) -> list[str]:
        return []


async def test_iptables_proxier_writes_only_the_diff() -> None:
    fake = FakeIptables()
    proxier = IptablesProxier(fake, ProxyConfig())  # type: ignore[arg-type]
    services = [svc("svc1"), svc("svc2", cluster_ip="10.96.0.11")]
    two = build_snapshot(services, [eps("svc1", [("10.1.0.1", READY), ("10.1.0.2", READY)]),
                                    eps("svc2", [("10.1.0.9", READY)])])
    await proxier.sync(two, full=True)
    assert (NAT, "KUBE-SVC-STALESTALESTALE") not in fake.kernel  # stale chain deleted
    full_text = fake.restores[-1]
    assert full_text.count("\n:") > 10

    one = build_snapshot(services, [eps("svc1", [("10.1.0.1", READY)]),
                                    eps("svc2", [("10.1.0.9", READY)])])
    await proxier.sync(one, full=False)
    partial = fake.restores[-1]
    assert partial.count("\n:") == 2  # the KUBE-SVC chain rewritten, one KUBE-SEP deleted
    assert "-X KUBE-SEP-" in partial and "KUBE-SERVICES" not in partial

    await proxier.sync(one, full=False)
    assert fake.restores[-1] == partial  # nothing changed: no restore at all

    fake.fail_next = True
    with pytest.raises(RuntimeError):
        await proxier.sync(two, full=False)
    assert proxier.applied is None  # unknown kernel state: the next sync is a full one
    await proxier.sync(two, full=False)
    assert fake.restores[-1].count("\n:") > 10
