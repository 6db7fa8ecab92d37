"""Driver scale: a search of many no-op trials through the real driver path (Ray Tune + Optuna
multi-objective TPE in a SQLite study, the STILTs space) on a local Ray with fake CPUs, so the
trials cost nothing and what is timed is the driver: per-trial overhead and how it grows.

    python benchmarks/driver_scale.py [--trials 1000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import warnings
import time
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

    import ray
    from ray import tune

    # Optuna's sampling time is what this measures; Tune's warning about it each trial is noise here
    warnings.filterwarnings("ignore", message="Define-by-run function")

    from stiltsearch.search.config import SearchConfig, SearchSettings
    from stiltsearch.search.raysession import ray_temp_dir
    from stiltsearch.search.tuner import build_tuner

    done: list[float] = []
    every = 100

    class Clock(tune.Callback):
        """Completion times; a progress line every 100 trials (figures survive a cut-off run)."""

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            done.append(time.perf_counter())
            if len(done) % every == 0:
                recent = (done[-1] - done[-every]) / (every - 1)
                print(f"  {len(done)} trials: {done[-1] - start:.0f} s, {1000 * recent:.0f} ms per trial over the "
                      f"last {every}", flush=True)

    start = time.perf_counter()
    cfg = SearchConfig(name="driver-scale", search=SearchSettings(num_trials=args.trials,
                                                                  max_concurrent=args.concurrency))
    with tempfile.TemporaryDirectory(prefix="stilts-scale-") as tmp:
        search_dir = Path(tmp)
        ray.init(num_cpus=args.concurrency, include_dashboard=False, log_to_driver=False,
                 _temp_dir=ray_temp_dir(search_dir))
        try:
            tuner = build_tuner(cfg, None, search_dir, [Clock()], trainable=noop)
            results = tuner.fit()
            wall = time.perf_counter() - start
        finally:
            ray.shutdown()
    n = len(done)
    print(f"trials completed: {n} of {args.trials} ({results.num_errors} errors), concurrency {args.concurrency}")
    print(f"wall time: {wall:.1f} s")
    print(f"driver overhead per trial (wall / trials, the trainable is a no-op): {1000 * wall / max(n, 1):.0f} ms")
    block = max(1, min(100, n // 4))
    gaps = [b - a for a, b in zip(done, done[1:])]
    first, last = statistics.fmean(gaps[:block]), statistics.fmean(gaps[-block:])
    print(f"time between completions, first {block} trials: {1000 * first:.0f} ms; last {block}: {1000 * last:.0f} ms "
          f"(growth {last / first:.1f}x)")


if __name__ == "__main__":
    main()
