"""The phase-2 cache's housekeeping on real directories and real locks: the least recently used
entries go past the cap (never one in use, never the one just written), and a dead trial's scratch
is swept by the next trial on its host."""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from stiltsearch.trainables import phase2cache


def _entry(root: Path, key: str, mib: int, used: float) -> None:
    (root / key).mkdir(parents=True)
    (root / key / "model.safetensors").write_bytes(b"\0" * (mib * 2 ** 20))
    (root / key / "phase2.json").write_text("{}")
    os.utime(root / key / "phase2.json", (used, used))


def test_least_recently_used_entries_go_past_the_cap_but_not_one_in_use_or_the_newest(tmp_path: Path) -> None:
    now = time.time()
    for i, key in enumerate(["a", "b", "c", "d", "e"]):  # a is the oldest use
        _entry(tmp_path, key, 2, now - 100 + i)
    phase2cache.touch(tmp_path / "a")  # a hit: a is now the most recent
    (tmp_path / "b.lock").write_text("")
    with open(tmp_path / "b.lock") as held:  # a trial holds b
        fcntl.flock(held, fcntl.LOCK_EX)
        evicted = phase2cache.evict(tmp_path, cap_gib=6.5 / 1024, keep="c")  # 6.5 MiB: three of five stay
    assert evicted == ["d", "e"]  # b in use, c just written; d and e the least recent of the rest
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["a", "b", "c"]
    assert phase2cache.evict(tmp_path, cap_gib=1.0, keep="c") == []  # under the cap: nothing goes


def test_a_dead_trials_scratch_is_swept_and_a_live_ones_or_another_hosts_is_not(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    orphan = tmp_path / f"phase2-k1-{host}-{dead.pid}-x1"
    mine = tmp_path / f"{phase2cache.scratch_prefix('k2')}x2"
    elsewhere = tmp_path / f"phase2-k3-other-host-{dead.pid}-x3"
    for path in (orphan, mine, elsewhere):
        (path / "encoder").mkdir(parents=True)
    assert phase2cache.sweep_orphans(tmp_path) == [orphan]
    assert not orphan.exists() and mine.exists() and elsewhere.exists()
