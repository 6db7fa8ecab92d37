"""Where the driver's time per trial goes (issue 15, "a driver that keeps up"): the search's own
searcher (``StudySearcher``: ask, the sampler over the STILTs space, phase-2 sharing, tell) with
32 trials running at a time, and no Ray and no training, so nothing else competes for the CPU.
Prints ms per trial over the first and the last block, per storage and TPE kind.

    python benchmarks/sampler_storage.py [--trials 1000] [--block 100] [--running 32]
                                         [--storage search optuna memory] [--tpe independent group]

Storages: ``search`` is what the driver uses (``search/study/storage.py``: SQLite with every trial
mirrored in memory); ``optuna`` is SQLite through Optuna's own cache, which re-reads every running
trial for each parameter TPE samples (what the driver did before); ``memory`` is Optuna's
in-memory storage, the floor (no durability). ``--tpe search`` is whatever ``make_sampler`` builds.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any


def per_trial_ms(storage: str, tpe: str, trials: int, block: int, running: int) -> tuple[float, float]:
    import optuna

    from stiltsearch.search.config.compose import space_spec
    from stiltsearch.search.config.schema import SearchConfig
    from stiltsearch.search.study import core as studies
    from stiltsearch.search.study.searcher import StudySearcher
    from stiltsearch.spaces import baseline_point, stilts_space

    cfg = SearchConfig()
    spec = space_spec(cfg)
    root = Path(tempfile.mkdtemp(prefix="stilts-sampler-"))
    url = f"sqlite:///{root / 'optuna.db'}"
    if storage == "search":
        study = studies.open_study(url, cfg.name, cfg.directions, baseline_point(spec), cfg.objective_names)
    else:
        study = optuna.create_study(storage=url if storage == "optuna" else None,
                                    directions=studies.study_directions(cfg.directions))
        study.enqueue_trial(baseline_point(spec))
    if tpe == "search":
        study.sampler = studies.make_sampler(0, trials, 0)
    else:
        study.sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=10,
                                                   **({"multivariate": True, "group": True} if tpe == "group" else {}))
    searcher = StudySearcher(study, functools.partial(stilts_space, spec=spec), cfg.objective_names, cfg.directions,
                             trials, root / "trials", None, cfg.search.share_phase2)
    live: list[tuple[str, dict[str, Any]]] = []
    times = []
    for i in range(trials):
        start = time.perf_counter()
        config = searcher.suggest(f"t{i}")
        assert isinstance(config, dict)
        live.append((f"t{i}", config))
        if len(live) > running:  # the oldest running trial ends: a made-up trade-off of score and speed
            done, c = live.pop(0)
            size = len(c.get("intermediate_tasks", ())) + c["layers_kept"]
            searcher.on_trial_complete(done, {"xtreme_score": 50.0 + size + i % 7, "tokens_per_sec": 1e5 / size})
        times.append(time.perf_counter() - start)
    return 1000 * sum(times[:block]) / block, 1000 * sum(times[-block:]) / block


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--block", type=int, default=100)
    parser.add_argument("--running", type=int, default=32, help="trials running at a time (constant liar sees them)")
    parser.add_argument("--storage", nargs="+", default=["search"], choices=["search", "optuna", "memory"])
    parser.add_argument("--tpe", nargs="+", default=["search"], choices=["search", "independent", "group"])
    args = parser.parse_args()

    import optuna

    warnings.simplefilter("ignore")  # multivariate TPE is "experimental"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for storage in args.storage:
        for tpe in args.tpe:
            first, last = per_trial_ms(storage, tpe, args.trials, args.block, args.running)
            print(f"{storage:7} storage, {tpe:11} TPE, {args.running} running: {first:6.1f} ms per trial over the "
                  f"first {args.block}, {last:6.1f} over the last {args.block} of {args.trials}", flush=True)


if __name__ == "__main__":
    main()
