"""The Optuna study: the search's source of truth, and what each trial outcome becomes in it.

Why the study, and not Ray's experiment state: Tune snapshots its state every few seconds, so after
the driver is killed the snapshot is stale (measured with Ray 2.60: ``Tuner.restore`` re-ran
finished trials and dropped running ones). The study is written by the driver at the moment a
trial is asked for and at the moment it is told, in a transactional store (SQLite by default),
and it is what the sampler learns from anyway. So on every start, fresh or resumed:

- a COMPLETE, FAIL or PRUNED trial is done and is never run again;
- a RUNNING trial is owed: its parameters are in the study, so it is handed to Tune again first,
  under the same number, and continues from its checkpoint directory; a trial that had finished
  (or been pruned) while no driver listened is told from its trial directory (:func:`reconcile`),
  not re-run;
- new trials are asked for only while done + owed < the number of trials asked for.

Ray-free (``stiltsearch pareto`` reads studies).
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from stiltsearch.search.study.storage import MirroredStorage
from stiltsearch.trainables import trialdir
from stiltsearch.trainables.objectives import reference
from stiltsearch.trainables.outcome import CONSTRAINT, DONE_STATES, INFEASIBLE, Outcome, classify
from stiltsearch.trainables.params import CONFIRMS_KEY, SEED_KEY
from stiltsearch.trainables.types import Metrics

CONFIG_ATTR = "config"  # user attribute: the structured config the trainable received
ERROR_ATTR = "error"  # user attribute: the last line of a failed trial's error
RUNG_ATTR = "stopped_at_rung"  # user attribute: the rung at which a scheduler pruned the trial
INFEASIBLE_ATTR = "infeasible"  # user attribute: which bound an infeasible trial missed
CONFIRMS_ATTR = CONFIRMS_KEY  # user attribute of a confirmation: the trial it re-runs (search/results/confirm.py)
SEED_ATTR = SEED_KEY  # user attribute of a confirmation: its training seed
SHARED_ATTR = "phase2_from"  # user attribute: the trial whose phase 2 this one reuses (search/study/sharing.py)
CONSTRAINT_NAME = "bounds"  # the trial's Optuna constraint: how far outside the objectives' bounds (<= 0: inside)
DONE = tuple(TrialState[name] for name in DONE_STATES)


# Optuna keeps a study's storage private; open_study keeps the one it opened here, for the public
# storage calls a study has no method for (the id of a trial by its number, to tell an owed trial).
_STORAGES: weakref.WeakKeyDictionary[optuna.Study, optuna.storages.BaseStorage] = weakref.WeakKeyDictionary()


def open_study(storage: str, name: str, directions: Sequence[str], first: dict[str, Any] | None,
               metric_names: Sequence[str] | None = None) -> optuna.Study:
    """Create or load the study; a new one gets ``first`` (raw parameters, the baseline) enqueued."""
    store = MirroredStorage(optuna.storages.RDBStorage(storage))  # the driver is its only writer (:mod:`.storage`)
    study = optuna.create_study(storage=store, study_name=name, directions=study_directions(directions),
                                load_if_exists=True)
    _STORAGES[study] = store
    if first is not None and not study.get_trials(deepcopy=False):
        study.enqueue_trial(first)
    if metric_names and study.metric_names != list(metric_names):
        with warnings.catch_warnings():  # "experimental since 3.2": it is how optuna-dashboard names them
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(metric_names))
    return study


def make_sampler(seed: int, num_trials: int, asked: int) -> optuna.samplers.BaseSampler:
    """The search's sampler: multi-objective TPE over the define-by-run space, multivariate over
    its groups (``group=True``: the parameters that always occur together, e.g. the intermediate
    learning rate with a non-empty task subset, are sampled jointly).

    Why grouped rather than independent TPE (both measured): independent TPE fits one model per
    parameter, ~20 per trial, each over every trial, so over the last 100 of 1,000 trials with 32
    running it cost the searcher 107 ms per trial against 61 for grouped, storage aside
    (``benchmarks/sampler_storage.py --storage memory --tpe independent group``); and
    on the surrogate of ``benchmarks/search_efficiency.py`` (10 seeds) grouped TPE reached random
    search's 64-trial hypervolume in every seed (median 31.5 trials), independent TPE in 8 of 10
    (median 30), with a higher final hypervolume in 7 of 10 seeds.

    TPE needs a few random trials before its model means anything; the baseline counts as one. It
    reads every finished trial from the study, so a resumed search keeps its history. Its seed moves
    on with the trials already ``asked`` for: a resumed session re-seeded as the first would draw
    the first session's random configurations again. What it learns from each outcome (Optuna 5's
    TPE): COMPLETE trials are split into its "good" and "bad" groups by non-dominated rank; with
    objective bounds, every trial's constraint value is in the study (:func:`tell`) and infeasible
    trials, trained or not, go to the "bad" group; PRUNED trials (stopped at a rung, so outranked
    there by most of their peers) go to the "bad" group once the complete ones fill the "good" one,
    so the sampler moves away from where the scheduler stopped trials.
    """
    with warnings.catch_warnings():  # "multivariate/group: experimental" (since Optuna 2.2; stable in use)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed + asked, n_startup_trials=startup_trials(num_trials),
                                          multivariate=True, group=True)


def startup_trials(num_trials: int) -> int:
    """Random trials (the baseline among them) before TPE models the results."""
    return min(10, max(3, num_trials // 2))


def study_directions(directions: Sequence[str]) -> list[optuna.study.StudyDirection]:
    """Optuna's directions for ``"max"``/``"min"``."""
    return [optuna.study.StudyDirection.MAXIMIZE if d == "max" else optuna.study.StudyDirection.MINIMIZE
            for d in directions]


def count(study: optuna.Study, *states: TrialState) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def done(study: optuna.Study) -> int:
    """Trials that count toward ``search.num_trials``: complete, failed and pruned."""
    return count(study, *DONE)


def owed(study: optuna.Study) -> list[int]:
    """RUNNING trials, oldest first: a resume runs these again before anything new."""
    return [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]


def _id(study: optuna.Study, number: int) -> int:
    store = _STORAGES[study]
    return store.get_trial_id_from_study_id_trial_number(store.get_study_id_from_name(study.study_name), number)


def trial_of(study: optuna.Study, number: int) -> optuna.Trial:
    """A live handle on trial ``number`` of a study :func:`open_study` opened (an owed trial)."""
    return optuna.Trial(study, _id(study, number))


def tell(study: optuna.Study, trial: optuna.Trial | int, outcome: Outcome, objectives: Sequence[str],
         result: Metrics | None, directory: Path) -> None:
    """Write an ended trial's outcome to the study (INTERRUPTED writes nothing: it stays owed)."""
    live = trial if isinstance(trial, optuna.Trial) else trial_of(study, trial)
    if result is not None and CONSTRAINT in result:  # Optuna's samplers read it (<= 0: feasible)
        live.set_constraint(CONSTRAINT_NAME, float(result[CONSTRAINT]))
    if outcome is Outcome.COMPLETE:
        assert result is not None
        study.tell(live, [float(result[name]) for name in objectives])
    elif outcome is Outcome.INFEASIBLE:  # objectives it never reached count as their references (the worst)
        assert result is not None
        live.set_user_attr(INFEASIBLE_ATTR, str(result[INFEASIBLE]))
        study.tell(live, [float(result[name]) if name in result else reference(name) for name in objectives])
    elif outcome is Outcome.FAILED:
        live.set_user_attr(ERROR_ATTR, trialdir.failure_reason(directory))
        study.tell(live, state=TrialState.FAIL)
    elif outcome is Outcome.PRUNED:
        live.set_user_attr(RUNG_ATTR, (trialdir.read_pruned(directory) or {}).get("rung"))
        study.tell(live, state=TrialState.PRUNED)


def reconcile(study: optuna.Study, trials_dir: Path, objectives: Sequence[str]) -> list[int]:
    """Tell the study about RUNNING trials that ended while no driver was listening: finished (a
    ``result.json`` with every objective) or pruned (a scheduler's ``pruned.json``). Their numbers."""
    told = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        directory = trialdir.trial_path(trials_dir, trial.number)
        result = trialdir.read_result(directory)
        outcome = classify(result, objectives, directory=directory)
        if outcome is not Outcome.INTERRUPTED:
            tell(study, trial.number, outcome, objectives, result, directory)
            told.append(trial.number)
    return told


def is_confirmation(trial: FrozenTrial) -> bool:
    """A re-run of an earlier trial under another seed (``stiltsearch confirm``): it counts toward
    the trials done, but never joins the search's own front."""
    return CONFIRMS_ATTR in trial.user_attrs


def outcome_of(trial: FrozenTrial) -> Outcome | None:
    """A study trial's outcome; None while it runs or is owed."""
    if trial.state == TrialState.COMPLETE and INFEASIBLE_ATTR in trial.user_attrs:
        return Outcome.INFEASIBLE
    return next((o for o in Outcome if o.counts and o.study_state == trial.state.name), None)
