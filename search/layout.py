"""A search directory: what it holds, where, and the one-driver lock.

``<output_dir>/<name>-<time>/`` holds everything needed to continue a search:

  config.yaml  the resolved config it runs (rewritten only by a resume that raises the trial count)
  search.json  where its MLflow runs are: tracking URI, experiment, parent run
  optuna.db    the study, the source of truth (``search/study/core.py``)
  trials/      one directory per trial (``trainables/trialdir.py``)
  driver.lock  held by the driver that runs it
  tune*/       Ray Tune's storage for each driver session (never read back)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stiltsearch.search.tracking.uris import writable_dir_problem

CONFIG = "config.yaml"
SEARCH_FILE = "search.json"  # where this search's MLflow runs are: tracking URI, experiment, parent run
STUDY = "optuna.db"
LOCK = "driver.lock"


class SearchError(RuntimeError):
    """A search cannot start or continue; the message is one line naming the fix."""


def cache_dir() -> Path:
    """Generated artifacts (toy model, phase-2 results, compiled DeepSpeed ops), keyed by inputs."""
    return Path(os.environ.get("STILTSEARCH_CACHE", Path.home() / ".cache" / "stiltsearch")).resolve()


def new_search_dir(output_dir: str, name: str) -> Path:
    """A fresh directory per search: a new run never writes over an earlier one."""
    root = Path(output_dir).resolve()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{name}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = root / f"{name}-{stamp}-{suffix}"
    path.mkdir(parents=True)
    return path


def study_storage(search_dir: Path) -> str:
    return f"sqlite:///{Path(search_dir) / STUDY}"


def trials_dir(search_dir: Path) -> Path:
    return Path(search_dir) / "trials"


def is_search_dir(path: Path) -> bool:
    return (path / SEARCH_FILE).is_file() and (path / CONFIG).is_file()


@contextmanager
def driver_lock(search_dir: Path) -> Iterator[None]:
    """One driver per search directory; the lock goes with the process, however it ends. A
    directory this user cannot write (a read-only mount) is refused here, before anything else."""
    if (problem := writable_dir_problem(search_dir)) is not None:
        raise SearchError(f"search_dir: {problem}; a search continues where it can write (copy it somewhere "
                          "writable, or remount)")
    with open(search_dir / LOCK, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise SearchError(f"{search_dir}: another driver (pid {lock.read().strip() or '?'}) is running this "
                              "search; stop it first or wait for it") from None
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        yield


SEARCH_KEYS = ("tracking_uri", "experiment", "parent_run_id")


def read_search_file(search_dir: Path) -> dict[str, str]:
    """``search.json``, checked: a JSON object with each of :data:`SEARCH_KEYS` as a string."""
    path = Path(search_dir) / SEARCH_FILE
    fix = "it is written by `stiltsearch run`; restore it from a backup"
    try:
        where: Any = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SearchError(f"search.json: {path} is not readable JSON ({type(exc).__name__}); {fix}") from None
    if not isinstance(where, dict):
        raise SearchError(f"search.json: {path} must hold an object with {', '.join(SEARCH_KEYS)}; {fix}")
    for key in SEARCH_KEYS:
        if not isinstance(where.get(key), str) or not where[key]:
            raise SearchError(f"search.json: {path} has no {key}; {fix}")
    return {key: where[key] for key in SEARCH_KEYS}


def check_study_file(search_dir: Path, name: str) -> None:
    """The search's ``optuna.db`` is an intact SQLite database holding study ``name``: a damaged,
    empty or missing one is reported, never taken for a new study (Optuna would write a fresh
    schema into it). Opened read-only: checking changes nothing, but for rolling back the unfinished
    write of a killed driver (:func:`_roll_back_a_dead_writer`), as any SQLite open would."""
    path = Path(search_dir) / STUDY
    fix = "restore it from a backup (the trials' directories keep their results)"
    if not path.is_file():
        raise SearchError(f"optuna.db: {path} is missing or not a file; {fix}")
    with open(path, "rb") as db:
        head = db.read(16)
    if head != b"SQLite format 3\x00":
        raise SearchError(f"optuna.db: {path} is {'empty' if not head else 'not a SQLite database'}; {fix}")
    try:
        _roll_back_a_dead_writer(path)
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("quick_check failed")
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            missing = {"studies", "trials", "trial_values", "trial_params"} - tables
            if missing:
                raise SearchError(f"optuna.db: {path} lacks table {sorted(missing)[0]}: not an Optuna study; {fix}")
            found = db.execute("SELECT 1 FROM studies WHERE study_name = ?", (name,)).fetchone()
    except sqlite3.DatabaseError as exc:
        raise SearchError(f"optuna.db: {path} is damaged ({exc}); {fix}") from None
    if found is None:
        raise SearchError(f"optuna.db: {path} holds no study named {name!r} (config.yaml's name); "
                          "give the config the search was run with")


def _roll_back_a_dead_writer(path: Path) -> None:
    """A driver killed inside a write leaves a hot journal (``optuna.db-journal``): the database is
    intact, but only a read-write connection may roll the unfinished transaction back, and a
    read-only one fails with "attempt to write a readonly database". A read through a normal
    connection does SQLite's own recovery (it rolls back only a journal no live process holds a
    lock on, so a running driver's transaction is left alone); what is left is the last commit."""
    journal = path.with_name(path.name + "-journal")
    if journal.is_file() and journal.stat().st_size > 0:
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()


def done_count(search_dir: Path, name: str) -> int:
    """Trials of study ``name`` that are done (complete, failed or pruned), read without Optuna."""
    query = ("SELECT count(*) FROM trials JOIN studies ON trials.study_id = studies.study_id "
             "WHERE studies.study_name = ? AND trials.state IN ('COMPLETE', 'FAIL', 'PRUNED')")
    _roll_back_a_dead_writer(Path(search_dir) / STUDY)
    with contextlib.closing(sqlite3.connect(f"file:{Path(search_dir) / STUDY}?mode=ro", uri=True)) as db:
        return int(db.execute(query, (name,)).fetchone()[0])
