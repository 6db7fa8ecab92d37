"""A search directory: what it holds, where, and the one-driver lock.

``<output_dir>/<name>-<time>/`` holds everything needed to continue a search:

  config.yaml  the resolved config it runs (rewritten only by a resume that raises the trial count)
  search.json  where its MLflow runs are: tracking URI, experiment, parent run
  optuna.db    the study, the source of truth (``search/study.py``)
  trials/      one directory per trial (``trainables/trialdir.py``)
  driver.lock  held by the driver that runs it
  tune*/       Ray Tune's storage for each driver session (never read back)
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
    """One driver per search directory; the lock goes with the process, however it ends."""
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
