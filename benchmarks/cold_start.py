"""A newcomer's first `stiltsearch run`, timed: cold (empty cache: phase 1 pretrains both toy
encoders) and warm (phase 1 cached), each split into phase 1, the start of the search, and the trials.

Each run is the README's main job (`stiltsearch run`, i.e. configs/toy.yaml, 8 trials) in its own
scratch directory with its own ``STILTSEARCH_CACHE``: cold starts from an empty one; warm gets a
copy of the phase-1 models the cold run built and nothing else (phase 2 and the speed measurements
start empty, as on a newcomer's second search with other trials). The split is read from the
console, each line timestamped as it arrives:

- phase 1: until the last ``phase 1 ...`` line (0 when it was cached);
- start: from there until ``trial 0 started`` (Ray, the study, the first ask);
- trials: from there until the process exits (the trials, the front, MLflow's flush).

Targets (issue 19): cold <= 10 min with >= 8 trials, warm <= 6 min, phase 1 <= 3 min, on 2 cores.
``--repeats N`` runs N cold/warm pairs, one after the other (the spread is printed).

    .venv/bin/python benchmarks/cold_start.py [--repeats N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parent.parent


def timed_run(work: Path, cache: Path) -> dict[str, float]:
    """One `stiltsearch run` in ``work`` with ``STILTSEARCH_CACHE=cache``: its split and trials done."""
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "STILTSEARCH_CACHE": str(cache), "PYTHONUNBUFFERED": "1",
           "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    env.pop("RAY_ADDRESS", None)
    lines: list[tuple[float, str]] = []
    start = time.monotonic()
    with open(work / "run.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "stiltsearch.search.cli", "run", str(ROOT / "configs" / "toy.yaml"),
                                 "--output-dir", str(work / "runs")], cwd=work, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.monotonic() - start, line))
            log.write(f"[{lines[-1][0]:7.1f}] {line}")
            log.flush()
        proc.wait()
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"stiltsearch run exited {proc.returncode}; see {work / 'run.log'}")
    phase1 = max((t for t, line in lines if line.startswith("phase 1")), default=0.0)
    first = next(t for t, line in lines if "trial 0 started" in line)
    (search,) = (work / "runs").iterdir()
    done = json.loads((search / "summary.json").read_text())["trials_completed"]
    return {"wall": wall, "phase1": phase1, "start": first - phase1, "trials": wall - first, "completed": done}


def show(label: str, runs: list[dict[str, float]]) -> None:
    for key, unit in (("wall", "s"), ("phase1", "s"), ("start", "s"), ("trials", "s"), ("completed", "trials")):
        values = [r[key] for r in runs]
        spread = f" (min {min(values):.0f}, max {max(values):.0f})" if len(values) > 1 else ""
        print(f"{label} {key}: {statistics.median(values):.0f} {unit}{spread}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="cold/warm pairs, one after the other")
    parser.add_argument("--keep", type=Path, help="keep the scratch directories (logs, searches) here")
    args = parser.parse_args()
    scratch = args.keep or Path(tempfile.mkdtemp(prefix="stilts-coldstart-"))
    print(f"machine: {os.cpu_count()} CPUs; scratch {scratch}", flush=True)
    cold, warm = [], []
    try:
        for i in range(args.repeats):
            cache = scratch / f"cold-{i}" / "cache"
            cold.append(timed_run(scratch / f"cold-{i}", cache))
            print(f"cold {i}: " + ", ".join(f"{k} {v:.0f}" for k, v in cold[-1].items()), flush=True)
            warm_cache = scratch / f"warm-{i}" / "cache"
            warm_cache.mkdir(parents=True)
            shutil.copytree(cache / "models", warm_cache / "models")  # phase 1 only
            warm.append(timed_run(scratch / f"warm-{i}", warm_cache))
            print(f"warm {i}: " + ", ".join(f"{k} {v:.0f}" for k, v in warm[-1].items()), flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)
    show("cold", cold)
    show("warm", warm)
    print("targets: cold wall <= 600 s with >= 8 trials, warm wall <= 360 s, phase 1 <= 180 s")


if __name__ == "__main__":
    main()
