"""A trial's directory, ``<search dir>/trials/<number>/``: its one owner.

Every path and file convention of a trial's directory is here; the driver, the searcher, MLflow
tracking and the trial itself read and write it through these functions only:

  state.json   what each finished phase produced (:class:`~.checkpoint.TrialCheckpoint`)
  served/      the trained model of the served task (``weights_only=True`` on load)
  result.json  the trial's final metrics, written before they are reported
  pruned.json  a scheduler's decision to stop the trial early: the rung and the metrics it had
  rungs.json   each rung the trial reported at: its objectives there and whether it went on
  phases.log   one line per phase run or restored, by which process; a failure's reason is its
               last line

Pure Python (no torch, no Ray): ``stiltsearch pareto`` and the searcher read it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from stiltsearch.trainables.types import Metrics

RESULT = "result.json"
PRUNED = "pruned.json"
RUNGS = "rungs.json"
LEDGER = "phases.log"
FAILED_PREFIX = "failed: "  # a ledger event: the error the attempt raised


def trial_path(trials_dir: Path, number: int) -> Path:
    """The directory of Optuna trial ``number`` (the baseline is 0)."""
    return Path(trials_dir) / f"{number:04d}"


def trial_dirs(trials_dir: Path) -> list[tuple[int, Path]]:
    """(number, directory) of every trial directory under ``trials_dir``, by number (none: [])."""
    if not Path(trials_dir).is_dir():
        return []
    found = [(int(p.name), p) for p in Path(trials_dir).iterdir() if p.is_dir() and p.name.isdigit()]
    return sorted(found)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)  # readers see the old file or the new one, never half of one


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        value = json.loads(path.read_text())
    except (ValueError, OSError):  # a damaged file is not a finished trial
        return None
    return value if isinstance(value, dict) else None


def read_result(directory: Path) -> dict[str, Any] | None:
    """A finished trial's final metrics, or None if it never finished."""
    return _read_json(Path(directory) / RESULT)


def write_result(directory: Path, metrics: Metrics) -> None:
    write_atomic(Path(directory) / RESULT, json.dumps(dict(metrics)))


def mark_pruned(directory: Path, rung: int, metrics: Metrics) -> None:
    """Record a scheduler's decision to stop the trial at ``rung`` (written before Tune stops it,
    so the decision survives a driver that dies before telling the study)."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    write_atomic(Path(directory) / PRUNED, json.dumps({"rung": rung, "metrics": dict(metrics)}))


def read_pruned(directory: Path) -> dict[str, Any] | None:
    """``{"rung": int, "metrics": {...}}`` of a trial a scheduler stopped, else None."""
    return _read_json(Path(directory) / PRUNED)


def record_rung(directory: Path, rung: int, values: list[float], goes_on: bool) -> None:
    """Record a scheduler's verdict on the trial at ``rung`` (the driver writes it, one trial at a
    time): a resumed search rebuilds its rung records from these, and a restarted trial does not
    score again a rung it has passed."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    rungs = {str(k): v for k, v in read_rungs(directory).items()}
    rungs[str(rung)] = {"values": [float(v) for v in values], "goes_on": bool(goes_on)}
    write_atomic(Path(directory) / RUNGS, json.dumps(rungs, sort_keys=True))


def read_rungs(directory: Path) -> dict[int, dict[str, Any]]:
    """``{rung: {"values": [...], "goes_on": bool}}`` of every rung the trial was judged at."""
    raw = _read_json(Path(directory) / RUNGS) or {}
    return {int(k): v for k, v in raw.items() if k.isdigit() and isinstance(v, dict) and "values" in v}


def log_event(directory: Path, event: str) -> None:
    """Append one line to the ledger of what ran: ``<unix time> <host>:<pid> <event>``."""
    with open(Path(directory) / LEDGER, "a") as f:
        f.write(f"{time.time():.3f} {socket.gethostname()}:{os.getpid()} {event}\n")


def log_failure(directory: Path, error: BaseException) -> None:
    text = str(error).strip()
    log_event(directory, f"{FAILED_PREFIX}{type(error).__name__}: {text.splitlines()[0] if text else ''}")


def read_ledger(directory: Path) -> list[str]:
    """The events of a trial's ledger, in order, without time and process ("phase2 trained", ...)."""
    path = Path(directory) / LEDGER
    if not path.exists():
        return []
    text = path.read_text(errors="replace")  # a damaged line is shown damaged, never a crash
    return [line.split(" ", 2)[2] for line in text.splitlines() if line.count(" ") >= 2]


def failure_reason(directory: Path) -> str:
    """Why a trial failed, from its ledger: the error its last attempt raised, or, when the attempt
    left no error (its process was killed), what it was doing when it died."""
    events = read_ledger(directory)
    if events and events[-1].startswith(FAILED_PREFIX):
        return events[-1].removeprefix(FAILED_PREFIX)
    return f"worker process died (no Python error); last event: {events[-1] if events else 'none'}"
