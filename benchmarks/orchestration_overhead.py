"""Orchestration overhead: the default baseline trial run directly (``run_trial`` in this process)
vs the same trial inside a one-trial search (Ray Tune, Optuna, MLflow, the driver's summary).

Order: direct, search, direct (the mean of the two direct runs is the reference). Prints the trial's
wall time inside the search (its MLflow child run, start to end) and the whole search's wall time,
each over the direct time.

    python benchmarks/orchestration_overhead.py
"""

from __future__ import annotations

import statistics
import tempfile
import time


def main() -> None:
    import optuna
    from mlflow.tracking import MlflowClient

    from stiltsearch.search.config.compose import space_spec, trial_settings
    from stiltsearch.search.config.schema import SearchConfig
    from stiltsearch.search.config.sections import MlflowConfig, SearchSettings
    from stiltsearch.search.driver import run_search
    from stiltsearch.search.launch.models import resolve_models
    from stiltsearch.search.layout import cache_dir
    from stiltsearch.spaces import baseline_point, stilts_space
    from stiltsearch.trainables import quiet_libraries
    from stiltsearch.trainables.params import TrialParams
    from stiltsearch.trainables.pipeline import run_trial

    quiet_libraries()
    with tempfile.TemporaryDirectory(prefix="stilts-overhead-") as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        cfg = SearchConfig(name="overhead", output_dir=tmp, search=SearchSettings(num_trials=1, max_concurrent=1),
                           mlflow=MlflowConfig(tracking_uri=uri))
        spec = space_spec(cfg)
        params = TrialParams.from_config(stilts_space(optuna.trial.FixedTrial(baseline_point(spec)), spec))
        settings = trial_settings(cfg, resolve_models(cfg, cache_dir()), cache_dir())

        def direct() -> float:
            start = time.perf_counter()
            run_trial(settings, params, lambda metrics: None)
            return time.perf_counter() - start

        first = direct()
        start = time.perf_counter()
        run_search(cfg)
        search_wall = time.perf_counter() - start
        second = direct()

        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name("overhead")
        child = next(r for r in client.search_runs([experiment.experiment_id]) if r.info.run_name.startswith("trial-"))
        in_search = (child.info.end_time - child.info.start_time) / 1000
    reference = statistics.fmean([first, second])
    print(f"direct run_trial: {first:.1f} s, {second:.1f} s (mean {reference:.1f} s)")
    print(f"the trial inside a search (MLflow child run, start to end): {in_search:.1f} s")
    print(f"whole one-trial search (Ray start, Tune, Optuna, MLflow, summary): {search_wall:.1f} s")
    print(f"overhead ratio, trial in search / direct: {in_search / reference:.3f}")
    print(f"overhead ratio, whole search / direct: {search_wall / reference:.3f}")


if __name__ == "__main__":
    main()
