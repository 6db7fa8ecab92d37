"""Where the driver's time per trial goes (issue 15, "a driver that keeps up"): asking the study
for a trial, sampling the STILTs space with multi-objective TPE, and telling it, with no Ray and no
training, for each storage (SQLite as the search uses it, Optuna's journal file, memory) and for
independent against multivariate (grouped) TPE. Prints ms per trial over the last block of trials.

    python benchmarks/sampler_storage.py [--trials 300] [--block 50]
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
import warnings
from typing import Any


def per_trial_ms(storage: Any, sampler: Any, trials: int, block: int) -> tuple[float, float]:
    import optuna

    from stiltsearch.search.compose import space_spec
    from stiltsearch.search.config import SearchConfig
    from stiltsearch.spaces import stilts_space

    space = functools.partial(stilts_space, spec=space_spec(SearchConfig()))
    study = optuna.create_study(storage=storage, directions=["maximize", "maximize"], sampler=sampler)
    times = []
    for i in range(trials):
        start = time.perf_counter()
        trial = study.ask()
        config = space(trial)
        size = len(config["intermediate_tasks"]) + config["layers_kept"]  # a made-up trade-off
        study.tell(trial, [50.0 + size + i % 7, 1e5 / size])
        times.append(time.perf_counter() - start)
    return 1000 * sum(times[:block]) / block, 1000 * sum(times[-block:]) / block


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--block", type=int, default=50)
    args = parser.parse_args()

    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    warnings.simplefilter("ignore")  # multivariate TPE is "experimental"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    root = tempfile.mkdtemp(prefix="stilts-sampler-")
    storages = {"sqlite": lambda n: f"sqlite:///{root}/{n}.db",
                "journal": lambda n: JournalStorage(JournalFileBackend(f"{root}/{n}.log")),
                "memory": lambda n: None}
    samplers = {"independent TPE": {}, "multivariate+group TPE": {"multivariate": True, "group": True}}
    for s_name, make in storages.items():
        for t_name, options in samplers.items():
            sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=10, **options)
            first, last = per_trial_ms(make(f"{s_name}-{len(options)}"), sampler, args.trials, args.block)
            print(f"{s_name:8} {t_name:24}: {first:6.0f} ms per trial over the first {args.block}, "
                  f"{last:6.0f} over the last {args.block} of {args.trials}", flush=True)


if __name__ == "__main__":
    main()
