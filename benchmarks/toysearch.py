"""One real ``stiltsearch run`` of the embedded toy search, as the benchmarks that compare two
searches run it: in its own directory, with a fresh phase-2 and speed cache (phase 1 is reused
from $STILTSEARCH_CACHE), the speed objective ``relative_speed`` (``throughput.reference: true``:
raw tokens/sec moves with the machine's load between two searches, relative_speed does not), and
``configs/toy.yaml`` otherwise, with the textual replacements a benchmark asks for.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent.parent
SPEED = {"{name: tokens_per_sec, direction: max}": "{name: relative_speed, direction: max}",
         "reference: false": "reference: true"}


def run_toy_search(work: Path, replace: dict[str, str], budget_s: float | None = None) -> tuple[Path, float]:
    """The search directory and its wall time. With ``budget_s``, the search is interrupted
    (SIGINT, as Ctrl-C: running trials stay owed, the front is published) that many seconds after
    its first trial started, so phase 1 and Ray's start are not counted."""
    from stiltsearch.search.layout import cache_dir

    cache = work / "cache"
    cache.mkdir(parents=True)
    for name in ("models", "torch_extensions"):  # phase 1 is reused; phase 2 and speed start empty
        if (cache_dir() / name).is_dir():
            os.symlink(cache_dir() / name, cache / name)
    text = (ROOT / "configs" / "toy.yaml").read_text()
    for old, new in {**SPEED, **replace}.items():
        if old not in text:
            raise SystemExit(f"configs/toy.yaml has no {old!r} to replace; update {Path(__file__).name}")
        text = text.replace(old, new)
    config = work / "toy.yaml"
    config.write_text(text)
    env = {**os.environ, "STILTSEARCH_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    log_path = work / "run.log"
    start = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "stiltsearch.search.cli", "run", str(config),
                                 "--output-dir", str(work / "runs")], cwd=work, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        first: float | None = None
        while proc.poll() is None:
            time.sleep(1)
            if budget_s is None:
                continue
            if first is None and "trial 0 started" in log_path.read_text(errors="replace"):
                first = time.monotonic()
            if first is not None and time.monotonic() - first > budget_s:
                proc.send_signal(signal.SIGINT)
                proc.wait()
    wall = time.monotonic() - start
    if proc.returncode not in (0, 130):
        raise SystemExit(f"the search in {work} exited {proc.returncode}; see {log_path}")
    return next((work / "runs").iterdir()), wall


def results(search: Path) -> list[dict[str, Any]]:
    """Each finished trial's result.json."""
    return [json.loads(p.read_text()) for p in sorted(search.glob("trials/*/result.json"))]


def summary(search: Path) -> dict[str, float]:
    """The search's summary.json (trials completed, pruned, hypervolume_final, ...)."""
    return json.loads((search / "summary.json").read_text())
