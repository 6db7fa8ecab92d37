"""Helpers for tests that run real searches in subprocesses and interfere with them (signals, kills).

They watch a search through what it writes (the trials' ledgers, the study), as a user would.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from stiltsearch.trainables.trialdir import read_ledger

# precision fp32 only: a CPU without bf16 instructions emulates it, and a bf16 trial takes about
# twice as long here (every evaluation runs at the deployed precision); bf16 is tested in test_knobs
# and test_trainable
TINY = """
name: {name}
output_dir: {out}{targets}
search: {{num_trials: {trials}, max_concurrent: 2, max_failures: {max_failures}{search}}}
space: {{layers_kept: [1, 2], precision: [fp32]{space}}}
training: {{intermediate_steps: 20, target_steps: 20, batch_size: 16}}
toy_model: {{layers: [2], hidden: 64, heads: 2, mlm_steps: 60, mlm_batch_size: 32, corpus_per_language: 2000}}
throughput: {{repeats: 2, max_sequences: 128}}
mlflow: {{tracking_uri: "{uri}"}}
"""

PHASE2_DONE = ("phase2 trained", "phase2 cache-hit", "phase2 skipped", "phase2 restored")


# two of the four toy targets: a trial about 40 % cheaper, for tests about the search, not the tasks
TWO_TARGETS = "toy_xnli, toy_tatoeba"


def write_config(out: Path, name: str, trials: int, uri: str | None = None, max_failures: int = 1,
                 search: str = "", space: str = "", targets: str = "") -> Path:
    """``search``, ``space``: more fields of those sections, e.g. ``"scheduler: moasha"``; ``targets``:
    the target tasks (default: all four toy targets)."""
    path = out / f"{name}.yaml"
    path.write_text(TINY.format(name=name, out=out, trials=trials, max_failures=max_failures,
                                uri=uri or f"sqlite:///{out}/mlflow.db", search=f", {search}" if search else "",
                                space=f", {space}" if space else "",
                                targets=f"\ntarget_tasks: [{targets}]" if targets else ""))
    return path


def start(args: list[str], out: Path, cache: Path, log: Path) -> subprocess.Popen:
    """``stiltsearch <args>`` in its own process, stdout and stderr to ``log``."""
    env = {**os.environ, "STILTSEARCH_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "stiltsearch.search.cli", *args], cwd=out, env=env,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, log: Path, timeout: float = 900) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"timed out; log tail:\n{log.read_text()[-4000:]}") from None


def search_dir(out: Path, name: str) -> Path:
    found = [p for p in out.iterdir() if p.is_dir() and p.name.startswith(f"{name}-")]
    return found[0] if len(found) == 1 else Path("/nonexistent")


def ledgers(directory: Path) -> dict[int, list[str]]:
    """{trial number: its ledger events} of every trial that has started."""
    trials = directory / "trials"
    return {int(p.name): read_ledger(p) for p in sorted(trials.iterdir())} if trials.is_dir() else {}


def finished(events: list[str]) -> bool:
    return "result saved" in events or "result restored" in events


def in_flight_past_phase2(events: list[str]) -> bool:
    return any(e in PHASE2_DONE for e in events) and not finished(events)


def wait_for(what: str, condition: Callable[[], bool], proc: subprocess.Popen, log: Path, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the search ended (rc {proc.returncode}) before {what}; log:\n{log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; log:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)


def study_states(directory: Path) -> dict[int, str]:
    """{trial number: state} read straight from the study's SQLite file."""
    with sqlite3.connect(f"file:{directory / 'optuna.db'}?mode=ro", uri=True) as db:
        return dict(db.execute("select number, state from trials order by number").fetchall())


def count_events(events: list[str], event: str) -> int:
    return sum(e == event for e in events)
