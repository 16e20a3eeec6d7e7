"""Running iptables, iptables-restore and iptables-save (asynchronously, with a timeout).

`probe()` tells whether this process can program iptables at all (the binaries exist, we
may change rules, and the match modules the rules use load), so the caller can fall back to
the userspace mode and say why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Sequence

from kube_proxy.rules import FILTER, JUMP_RULES, NAT, ChainKey, cleanup, parse_chains

log = logging.getLogger("kube_proxy.iptables")

COMMAND_TIMEOUT = 30.0
XTABLES_WAIT = "5"  # seconds to wait for the xtables lock held by another program


class IptablesError(Exception):
    """An iptables command failed or could not run."""


class Iptables:
    """The iptables commands of one (IPv4) family."""

    def __init__(self, iptables: str = "iptables", restore: str = "iptables-restore",
                 save: str = "iptables-save") -> None:
        self.iptables = iptables
        self.restore_cmd = restore
        self.save_cmd = save

    def missing(self) -> list[str]:
        return [cmd for cmd in (self.iptables, self.restore_cmd, self.save_cmd)
                if shutil.which(cmd) is None]

    async def _run(self, argv: Sequence[str], stdin: str | None = None) -> str:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else None,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        except OSError as e:
            raise IptablesError(f"{argv[0]}: {e}") from e
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(stdin.encode() if stdin is not None else None),
                COMMAND_TIMEOUT)
        except BaseException:
            # Cancelled or timed out: do not leave the command running behind us.
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await proc.wait()
            raise
        if proc.returncode != 0:
            text = (err or out).decode(errors="replace").strip()
            raise IptablesError(f"{' '.join(argv)}: exit {proc.returncode}: {text}")
        return out.decode(errors="replace")

    async def restore(self, text: str) -> None:
        """Apply `text` atomically per table without flushing chains it does not name."""
        if text:
            await self._run([self.restore_cmd, "-w", XTABLES_WAIT, "--noflush"], text)

    async def save(self, table: str) -> str:
        return await self._run([self.save_cmd, "-t", table])

    async def chains(self) -> set[ChainKey]:
        """Every chain in the nat and filter tables."""
        return parse_chains(NAT, await self.save(NAT)) | \
            parse_chains(FILTER, await self.save(FILTER))

    async def has_rule(self, table: str, chain: str, args: Sequence[str]) -> bool:
        try:
            await self._run([self.iptables, "-w", XTABLES_WAIT, "-t", table, "-C", chain,
                             *args])
            return True
        except IptablesError:
            return False

    async def ensure_rule(self, table: str, chain: str, args: Sequence[str]) -> bool:
        """Insert the rule first in `chain` unless present; True if it was added."""
        if await self.has_rule(table, chain, args):
            return False
        await self._run([self.iptables, "-w", XTABLES_WAIT, "-t", table, "-I", chain, *args])
        return True

    async def delete_rule(self, table: str, chain: str, args: Sequence[str]) -> int:
        """Delete every copy of the rule; returns how many there were."""
        deleted = 0
        while deleted < 100 and await self.has_rule(table, chain, args):
            await self._run([self.iptables, "-w", XTABLES_WAIT, "-t", table, "-D", chain,
                             *args])
            deleted += 1
        return deleted

    async def ensure_jump_rules(self) -> list[str]:
        """Make the built-in chains jump to ours; returns the rules it had to add."""
        added = []
        for jump in JUMP_RULES:
            if await self.ensure_rule(jump.table, jump.chain, jump.args()):
                added.append(f"{jump.table}/{jump.chain} -> {jump.target}")
        return added

    async def cleanup(self) -> int:
        """Remove the jump rules and every chain of ours; returns the chains deleted."""
        for jump in JUMP_RULES:
            await self.delete_rule(jump.table, jump.chain, jump.args())
        diff = cleanup(await self.chains())
        await self.restore(diff.restore())
        return len(diff.delete)


async def probe(ipt: Iptables) -> str | None:
    """None when iptables can be programmed here; otherwise why not (one line)."""
    missing = ipt.missing()
    if missing:
        return f"{', '.join(missing)} not found"
    # Create and delete a scratch chain using every match module our rules need, so that a
    # missing kernel module shows now rather than at the first sync.
    chain = f"KUBE-PROXY-PROBE-{os.getpid() % 100000}"
    text = (f"*nat\n:{chain} - [0:0]\n"
            f"-A {chain} -m comment --comment probe -m statistic --mode random "
            f"--probability 0.5000000000 -m recent --name {chain} --rcheck --seconds 1 --reap "
            f"-m addrtype --dst-type LOCAL -m tcp -p tcp --dport 1 -j RETURN\n"
            f"-A {chain} -m recent --name {chain} --set -m udp -p udp "
            f"-j DNAT --to-destination 127.0.0.1:1\n"
            f"-A {chain} -m mark --mark 0x4000/0x4000 -j MARK --or-mark 0x4000\n"
            f"COMMIT\n*filter\n:{chain} - [0:0]\n"
            f"-A {chain} -m conntrack --ctstate NEW -m tcp -p tcp --dport 1 -j REJECT\n"
            f"COMMIT\n")
    try:
        await ipt.restore(text)
    except IptablesError as e:
        reason = str(e).splitlines()[0] if str(e) else "iptables-restore failed"
        if os.geteuid() != 0:
            reason = f"not root ({reason})"
        return reason
    finally:
        with contextlib.suppress(IptablesError):
            await ipt.restore(f"*nat\n:{chain} - [0:0]\n-X {chain}\nCOMMIT\n"
                              f"*filter\n:{chain} - [0:0]\n-X {chain}\nCOMMIT\n")
    return None
