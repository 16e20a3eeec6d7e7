"""One programmer per kernel: an exclusive flock per network namespace.

`kubelite up --nodes N` runs one kube-proxy per simulated node, and all of them share this
machine's kernel (one network namespace), so they would otherwise rewrite the same chains
and fight. Each kube-proxy takes an exclusive, non-blocking flock on
`/run/kubelite/kube-proxy.<netns inode>.lock`; the holder programs the data path and writes
its pid into the file; the others stand by and retry every second. A process that dies
releases its flock with its file descriptors, so a standby takes over even after SIGKILL.

Standbys also hold a shared flock on `<lock>.standby`. At a clean shutdown the holder checks
it: with a standby present it leaves its rules in place for the standby to adopt (a full
sync replaces them) instead of removing them and leaving the node without service for a
moment.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
from pathlib import Path
from typing import IO

log = logging.getLogger("kube_proxy.lock")

LOCK_DIR = Path("/run/kubelite")


def netns_inode() -> int:
    """The inode of this process's network namespace: equal for processes sharing it."""
    return os.stat("/proc/self/ns/net").st_ino


def default_lock_path() -> Path:
    name = f"kube-proxy.{netns_inode()}.lock"
    try:
        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        if os.access(LOCK_DIR, os.W_OK):
            return LOCK_DIR / name
    except OSError:
        pass
    # Not root: nothing we do needs /run, and the per-user temp dir is as good for a lock.
    return Path(tempfile.gettempdir()) / f"kubelite-{name}"


class KernelLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.standby_path = path.with_name(path.name + ".standby")
        self._file: IO[str] | None = None
        self._standby: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free (never blocks); records our pid in the file."""
        if self._file is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")  # noqa: SIM115 - held open for as long as we hold the lock
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return False
        except OSError:
            f.close()
            raise
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f
        self.leave_standby()
        return True

    def holder_pid(self) -> int | None:
        try:
            text = self.path.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def stand_by(self) -> None:
        """Announce a standby (a shared lock the holder can test at shutdown)."""
        if self._standby is not None:
            return
        f = open(self.standby_path, "a+")  # noqa: SIM115 - held while standing by
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            # Only a holder checking for standbys holds it exclusively, and only briefly;
            # we try again at the next retry.
            f.close()
            return
        self._standby = f

    def leave_standby(self) -> None:
        if self._standby is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._standby, fcntl.LOCK_UN)
            self._standby.close()
            self._standby = None

    def standby_present(self) -> bool:
        """True when another kube-proxy is standing by to take over (holder only)."""
        try:
            with open(self.standby_path, "a+") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True
                fcntl.flock(f, fcntl.LOCK_UN)
                return False
        except OSError:
            return False

    def release(self) -> None:
        self.leave_standby()
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
