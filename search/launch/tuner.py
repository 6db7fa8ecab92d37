"""From a validated config to a Ray Tune ``Tuner``: the searcher (the Optuna study over the
space), the trainable with its resources, and the scheduler's Ray seam."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from stiltsearch.search.config.compose import space_spec
from stiltsearch.search.config.schema import SearchConfig
from stiltsearch.search.layout import trials_dir
from stiltsearch.search.planning.spend import Spend
from stiltsearch.search.schedulers import registry
from stiltsearch.search.schedulers.base import Scheduler
from stiltsearch.search.study.core import make_sampler, startup_trials
from stiltsearch.search.study.searcher import StudySearcher
from stiltsearch.spaces import stilts_space
from stiltsearch.spaces.startup import balanced_rows
from stiltsearch.trainables import trialdir
from stiltsearch.trainables.params import CONFIRMS_KEY, NUMBER_KEY
from stiltsearch.trainables.settings import TrialSettings

if TYPE_CHECKING:
    from ray import tune


class TuneScheduler(FIFOScheduler):
    """The Ray seam of a :class:`~stiltsearch.search.schedulers.base.Scheduler`: it asks the scheduler
    about each result and, on a stop, records the decision in the trial's directory before Tune
    stops the trial, so every part of the search classifies it PRUNED."""

    def __init__(self, scheduler: Scheduler, trials: Path) -> None:
        super().__init__()
        self.scheduler = scheduler
        self.trials = trials

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if CONFIRMS_KEY in trial.config:  # a confirmation re-measures a configuration: it runs to its end,
            return TrialScheduler.CONTINUE  # and its rung scores are no peer's competition
        number = int(trial.config.get(NUMBER_KEY, -1))
        decision = self.scheduler.decide(number, result)
        directory = trialdir.trial_path(self.trials, number)
        if decision.rung is not None:  # a verdict at a rung: a resume rebuilds the rungs from these
            trialdir.record_rung(directory, decision.rung, list(decision.values), goes_on=not decision.stop)
        if not decision.stop:
            return TrialScheduler.CONTINUE
        trialdir.mark_pruned(directory, decision.rung or 0,
                             {k: v for k, v in result.items() if isinstance(v, (int, float, str))})
        return TrialScheduler.STOP


def build_tuner(cfg: SearchConfig, settings: TrialSettings | None, search_dir: Path, study: optuna.Study,
                callbacks: list[Any], trainable: Any = None, on_told: Callable[[int], object] | None = None,
                spend: Spend | None = None) -> tune.Tuner:
    """Ray Tune over the search's Optuna study (opened once per driver session by :func:`open_study`,
    whose in-memory mirror must be the only writer): multi-objective TPE; a new study's first trial
    is the baseline. A fresh Tuner per driver session (Ray's own experiment state is never restored).

    ``trainable`` replaces the STILTs trainable (benchmarks time the driver with a no-op one).
    """
    from ray import tune

    _quiet_tune()
    spec = space_spec(cfg)
    n = cfg.search.num_trials
    study.sampler = make_sampler(cfg.search.seed, n, len(study.get_trials(deepcopy=False)))
    searcher = StudySearcher(study, functools.partial(stilts_space, spec=spec), cfg.objective_names, cfg.directions,
                             n, trials_dir(search_dir), on_told, cfg.search.share_phase2, spend,
                             design=balanced_rows(spec, startup_trials(n) - 1, cfg.search.seed))
    trainable = _with_resources(cfg, trainable, settings)
    session = len(list(search_dir.glob("tune*")))
    trials = trials_dir(search_dir)
    scheduler = registry.build(cfg.search.scheduler, cfg.objective_names, cfg.directions, trials)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=max(1, searcher.remaining),
                                    max_concurrent_trials=cfg.search.max_concurrent,
                                    scheduler=TuneScheduler(scheduler, trials)),
        run_config=tune.RunConfig(
            name="tune" if session == 0 else f"tune-{session}", storage_path=str(search_dir), callbacks=callbacks,
            verbose=0, failure_config=tune.FailureConfig(max_failures=cfg.search.max_failures),
        ),
    )


def _quiet_tune() -> None:
    # Trials report after phase 2 without the objectives; Tune's strict check would reject that.
    # Only a trial's final result is told to the study (searcher.py), so it is safe.
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    # One console line per trial event comes from ProgressCallback; Tune's own tables, its end-of-run
    # box and its warning about frequent state snapshots stay quiet.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Tune logs each failed attempt's whole traceback; ProgressCallback prints one line and the path
    # of the error file instead, and the error's tail goes to the trial's MLflow run.
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)


def _with_resources(cfg: SearchConfig, trainable: Any, settings: TrialSettings | None) -> Any:
    """The trainable (the STILTs one unless given) with what each trial holds. A multi-worker trial
    holds a token CPU share itself (0 is refused) and its TorchTrainer asks for the workers'
    resources; holding them in the trial too would leave none for the workers."""
    from ray import tune

    from stiltsearch.trainables.trainable import stilts_trainable

    trainable = trainable or tune.with_parameters(stilts_trainable, settings=settings)
    one = cfg.search.workers_per_trial == 1
    gpus = {"gpu": cfg.search.gpus_per_worker} if cfg.search.gpus_per_worker else {}
    held = {cfg.search.trial_resource: 1} if cfg.search.trial_resource and one else {}  # a multi-worker trial's workers hold it
    return tune.with_resources(trainable, {"cpu": cfg.search.cpus_per_trial, **gpus, **held} if one else {"cpu": 0.01})
