"""Driver scale: a search of many no-op trials through the whole driver (``run_search``: Ray Tune,
Optuna multi-objective TPE in the SQLite study, the STILTs space, the MLflow callback, the console
progress and the front refreshed after each told trial) on a one-node local Ray with fake CPUs, so
the trials cost nothing and what is timed is the driver: per-trial overhead and how it grows.

    python benchmarks/driver_scale.py [--trials 1000] [--concurrency 32]

Three figures per block of 100 trials: wall time per trial (on a 2-core machine this is mostly the
CPU that the Ray worker processes, one started per trial, take from the driver); the driver
process's own CPU per trial (Tune's loop, the searcher, the MLflow and progress callbacks, Ray's
client threads); and the searcher's share, the CPU time of the driver's thread inside
``StudySearcher.suggest`` and ``on_trial_complete`` (ask, TPE sampling the space, tell, the front
refresh), which is what one driver pays per trial whatever the machine. The searcher's methods are
wrapped with a timer; the code they run is the search's own. The search's own console output goes
to ``search.log`` in the temporary directory.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any


def noop(config: dict[str, Any]) -> None:
    """Reports at once: a cheap made-up score that grows with tasks and layers, speed the reverse."""
    from ray import tune

    size = len(config.get("intermediate_tasks", ())) + config.get("layers_kept", 1)
    tune.report({"xtreme_score": 50.0 + size, "tokens_per_sec": 1e5 / size})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent trials (= fake CPUs)")
    args = parser.parse_args()

    os.environ["RAY_AUTH_MODE"] = "token"  # the local node's token authentication; read when Ray is imported
    # Optuna's sampling time is what this measures; Tune's warning about it each trial is noise here
    warnings.filterwarnings("ignore", message="Define-by-run function")

    from stiltsearch.cluster import local
    from stiltsearch.search.config.schema import SearchConfig
    from stiltsearch.search.config.sections import MlflowConfig, SearchSettings
    from stiltsearch.search.driver import run_search
    from stiltsearch.search.study.searcher import StudySearcher

    out = sys.stdout
    completions: list[float] = []
    marks: list[tuple[float, float]] = []  # (driver process CPU s, searcher CPU s) at each completion
    searcher_s = [0.0]
    every = 100

    def timed(method: Any, on_complete: bool) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            t0 = time.thread_time()  # the driver thread's CPU: its wall time is mostly waiting for a core
            try:
                return method(*a, **k)
            finally:
                searcher_s[0] += time.thread_time() - t0
                if on_complete:
                    progress()
        return wrapper

    def progress() -> None:
        completions.append(time.perf_counter())
        marks.append((time.process_time(), searcher_s[0]))
        if len(completions) % every == 0:
            wall = (completions[-1] - completions[-every]) / (every - 1)
            cpu = (marks[-1][0] - marks[-every][0]) / (every - 1)
            own = (marks[-1][1] - marks[-every][1]) / (every - 1)
            print(f"  {len(completions)} trials: {completions[-1] - start:.0f} s; per trial over the last {every}: "
                  f"{1000 * wall:.0f} ms wall, driver CPU {1000 * cpu:.0f} ms, of it the searcher {1000 * own:.0f} ms",
                  file=out, flush=True)

    StudySearcher.suggest = timed(StudySearcher.suggest, False)  # type: ignore[method-assign]
    StudySearcher.on_trial_complete = timed(StudySearcher.on_trial_complete, True)  # type: ignore[method-assign]

    with tempfile.TemporaryDirectory(prefix="stilts-scale-") as tmp:
        root = Path(tmp)
        cluster = local.start(root / "ray", workers=0, head_cpus=args.concurrency, port=6395, dashboard_port=8295)
        cfg = SearchConfig(name="driver-scale", output_dir=str(root / "runs"),
                           search=SearchSettings(num_trials=args.trials, max_concurrent=args.concurrency),
                           mlflow=MlflowConfig(tracking_uri=f"sqlite:///{root / 'mlflow.db'}"))
        start = time.perf_counter()
        try:
            with open(root / "search.log", "w") as log, contextlib.redirect_stdout(log):
                result = run_search(cfg, address=cluster.address, trainable=noop)
            wall = time.perf_counter() - start
        finally:
            local.stop(root / "ray")
    n = len(completions)
    print(f"trials completed: {result.front.summary()['trials_completed']:.0f} of {args.trials}, "
          f"concurrency {args.concurrency}")
    print(f"wall time: {wall:.1f} s ({1000 * wall / max(n, 1):.0f} ms per trial)")
    block = max(1, min(100, n // 4))
    own = [b[1] - a[1] for a, b in zip(marks, marks[1:])]
    cpu = [b[0] - a[0] for a, b in zip(marks, marks[1:])]
    print(f"searcher CPU per trial (ask + TPE + tell + front), first {block} trials: "
          f"{1000 * statistics.fmean(own[:block]):.0f} ms; last {block}: {1000 * statistics.fmean(own[-block:]):.0f} ms")
    print(f"driver CPU per trial, first {block} trials: {1000 * statistics.fmean(cpu[:block]):.0f} ms; "
          f"last {block}: {1000 * statistics.fmean(cpu[-block:]):.0f} ms")
    gaps = [b - a for a, b in zip(completions, completions[1:])]
    first, last = statistics.fmean(gaps[:block]), statistics.fmean(gaps[-block:])
    print(f"time between completions, first {block} trials: {1000 * first:.0f} ms; last {block}: {1000 * last:.0f} ms "
          f"(growth {last / first:.1f}x)")


if __name__ == "__main__":
    main()
