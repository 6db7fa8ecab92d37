"""The phase-2 cache's housekeeping: a size cap with least-recently-used eviction, and the scratch
directories of trials that died.

An entry is ``<cache>/phase2/<key>/`` (an encoder and ``phase2.json``); a hit touches its
``phase2.json``, so the file's modification time is the entry's last use. An entry whose key's lock
is held (a trial training or reading it) is never evicted. A rung's scratch copy of a phase 2 in
progress is ``phase2-<key>-<host>-<pid>-*``: named after its owner, so that a later trial on the
same host removes it once that process is gone (a SIGKILLed trial cannot; at XLM-R Large each is
2.2 GB). Scratch of another host (shared storage) is left to that host.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
from pathlib import Path

import psutil

GIB = 2 ** 30


def scratch_prefix(key: str) -> str:
    """The name prefix of this process's scratch directory for phase 2 ``key``."""
    return f"phase2-{key}-{socket.gethostname()}-{os.getpid()}-"


def sweep_orphans(root: Path) -> list[Path]:
    """Remove the scratch directories under ``root`` whose owner (a process of this host) is gone."""
    removed = []
    host = socket.gethostname()
    for path in root.glob("phase2-*"):
        parts = path.name.split("-")
        # phase2-<key>-<host>-<pid>-<random>: the host may itself hold dashes
        if len(parts) < 5 or not parts[-2].isdigit() or "-".join(parts[2:-2]) != host:
            continue
        if not psutil.pid_exists(int(parts[-2])):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def touch(entry: Path) -> None:
    """Mark ``entry`` as used now (a cache hit)."""
    os.utime(entry / "phase2.json")


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _in_use(root: Path, key: str) -> bool:
    """Whether another process holds ``key``'s lock (it trains or reads that entry now)."""
    lock = root / f"{key}.lock"
    if not lock.exists():
        return False
    with open(lock) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def evict(root: Path, cap_gib: float, keep: str) -> list[str]:
    """Remove least-recently-used entries under ``root`` until they hold at most ``cap_gib``;
    ``keep`` (the entry just written) and entries in use stay. Returns the evicted keys."""
    entries = sorted((p for p in root.iterdir() if (p / "phase2.json").exists()),
                     key=lambda p: (p / "phase2.json").stat().st_mtime)
    sizes = {p.name: _size(p) for p in entries}
    total, evicted = sum(sizes.values()), []
    for entry in entries:
        if total <= cap_gib * GIB:
            break
        if entry.name == keep or _in_use(root, entry.name):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        total -= sizes[entry.name]
        evicted.append(entry.name)
    return evicted
