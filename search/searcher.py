"""The Optuna study as Ray Tune's searcher, and the study as the search's source of truth.

Why the study, and not Ray's experiment state: Tune snapshots its state every few seconds, so after
the driver is killed the snapshot is stale (notes/stack.md measured finished trials re-run and
running ones lost). The study is written by the driver at the moment a trial is asked for and at the
moment it is told, in a transactional store (SQLite by default), and it is what the sampler learns
from anyway. So on every start, fresh or resumed:

- a COMPLETE or FAIL trial is done and is never run again;
- a RUNNING trial is owed: its parameters are in the study, so it is handed to Tune again first,
  under the same number, and continues from its checkpoint directory
  (:mod:`stiltsearch.trainables.checkpoint`); a trial that had finished but whose driver died
  before telling the study is told from its ``result.json`` (:func:`reconcile`), not re-run;
- new trials are asked for only while COMPLETE + FAIL + owed < the number of trials asked for.

Ray's experiment state is not read back at all; each driver session starts a fresh ``Tuner``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher

from stiltsearch.trainables.checkpoint import read_ledger, read_result
from stiltsearch.trainables.trainable import NUMBER_KEY

Space = Callable[[optuna.Trial], dict[str, Any]]
CONFIG_ATTR = "config"  # user attribute: the structured config the trainable received
ERROR_ATTR = "error"  # user attribute: the last line of a failed trial's error


def open_study(storage: str, name: str, directions: Sequence[str], first: dict[str, Any] | None) -> optuna.Study:
    """Create or load the study; a new one gets ``first`` (raw parameters, the baseline) enqueued."""
    study = optuna.create_study(storage=optuna.storages.RDBStorage(storage), study_name=name,
                                directions=[d + "imize" for d in directions], load_if_exists=True)
    if first is not None and not study.get_trials(deepcopy=False):
        study.enqueue_trial(first)
    return study


def trial_dir(trials_dir: Path, number: int) -> Path:
    return trials_dir / f"{number:04d}"


def failure_reason(directory: Path) -> str:
    """Why a trial failed, from its ledger: the error its last attempt raised, or, when the attempt
    left no error (its process was killed), what it was doing when it died."""
    events = read_ledger(directory)
    if events and events[-1].startswith("failed: "):
        return events[-1].removeprefix("failed: ")
    return f"worker process died (no Python error); last event: {events[-1] if events else 'none'}"


def count(study: optuna.Study, *states: TrialState) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def reconcile(study: optuna.Study, trials_dir: Path, objectives: Sequence[str]) -> list[int]:
    """Tell the study about RUNNING trials that finished (their ``result.json`` exists) while no
    driver was listening. Returns their numbers."""
    told = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        result = read_result(trial_dir(trials_dir, trial.number))
        if result is not None and all(name in result for name in objectives):
            study.tell(trial.number, [float(result[name]) for name in objectives])
            told.append(trial.number)
    return told


class StudySearcher(Searcher):
    """Hands out owed trials first, then new ones from the sampler, until ``num_trials`` are done.

    ``on_told(number)`` runs after each trial is told to the study (the driver refreshes the front).
    """

    def __init__(self, study: optuna.Study, space: Space, objectives: Sequence[str], directions: Sequence[str],
                 num_trials: int, trials_dir: Path, on_told: Callable[[int], None] | None = None) -> None:
        super().__init__(metric=list(objectives), mode=list(directions))
        self.study = study
        self.trials_dir = trials_dir
        self.space = space
        self.objectives = list(objectives)
        self.num_trials = num_trials
        self.on_told = on_told
        self.done = count(study, TrialState.COMPLETE, TrialState.FAIL)
        # owed, oldest first; these must be run before anything new is asked for
        self.owed = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
        self.live: dict[str, optuna.Trial] = {}  # Tune trial id -> its Optuna trial

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its searcher into its experiment state, which is never read back here (the
        # study is the state); the live study and the driver's hook stay out of the pickle.
        return {k: v for k, v in self.__dict__.items() if k not in ("study", "space", "on_told", "live")}

    @property
    def remaining(self) -> int:
        """Trials this session still has to start: owed ones plus new ones up to ``num_trials``."""
        return len(self.owed) + max(0, self.num_trials - self.done - len(self.owed) - len(self.live))

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.owed:
            number = self.owed.pop(0)
            trial = optuna.Trial(self.study, self.study._storage.get_trial_id_from_study_id_trial_number(
                self.study._study_id, number))
        elif self.done + len(self.live) < self.num_trials:
            trial = self.study.ask()
        else:
            return Searcher.FINISHED
        # Re-running the space on a trial that has parameters returns them unchanged (Optuna
        # returns a parameter already suggested), so an owed trial gets exactly its old config.
        config = {**self.space(trial), NUMBER_KEY: trial.number}
        trial.set_user_attr(CONFIG_ATTR, json.loads(json.dumps(config)))
        self.live[trial_id] = trial
        return config

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        trial = self.live.pop(trial_id, None)
        if trial is None:
            return
        if error:  # Ray gave up on it after search.max_failures retries
            trial.set_user_attr(ERROR_ATTR, failure_reason(trial_dir(self.trials_dir, trial.number)))
            self.study.tell(trial, state=TrialState.FAIL)
        elif result is not None and all(name in result for name in self.objectives):
            self.study.tell(trial, [float(result[name]) for name in self.objectives])
        else:
            # Stopped before its end (Ctrl-C, SIGTERM): it stays RUNNING in the study, so the next
            # `stiltsearch resume` owes it, and its checkpoint directory keeps its finished phases.
            return
        self.done += 1
        if self.on_told is not None:
            try:
                self.on_told(trial.number)
            except Exception as problem:  # noqa: BLE001 - a plot that fails must not stop the search
                print(f"warning: refreshing the front after trial {trial.number} failed: {problem!r}", flush=True)
