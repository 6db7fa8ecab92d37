"""The Optuna study as Ray Tune's searcher (:mod:`.study` says why the study is the source of truth).

Hands out owed trials first (their config is the one the study recorded when they were first
asked for), then new ones from the sampler, until ``num_trials`` are done; a share of the new ones
reuse a trained phase 2 (:mod:`.sharing`). Each ended trial is classified once
(:func:`~stiltsearch.trainables.outcome.classify`) and told to the study.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher

from stiltsearch.search.planning.spend import Spend
from stiltsearch.search.study import sharing
from stiltsearch.search.study.core import (
    CONFIG_ATTR,
    CONFIRMS_ATTR,
    SEED_ATTR,
    SHARED_ATTR,
    count,
    done,
    owed,
    tell,
    trial_of,
)
from stiltsearch.trainables import trialdir
from stiltsearch.trainables.outcome import Outcome, classify
from stiltsearch.trainables.params import CONFIRMS_KEY, NUMBER_KEY, SEED_KEY

Space = Callable[[optuna.Trial], dict[str, Any]]


class StudySearcher(Searcher):
    """Hands out owed trials first, then new ones from the sampler, until ``num_trials`` are done.

    ``on_told(number)`` runs after each trial is told to the study (the driver refreshes the front);
    ``share_phase2`` is the fraction of new trials that reuse a trained phase 2 (:mod:`.sharing`).
    """

    def __init__(self, study: optuna.Study, space: Space, objectives: Sequence[str], directions: Sequence[str],
                 num_trials: int, trials_dir: Path, on_told: Callable[[int], object] | None = None,
                 share_phase2: float = 0.0, spend: Spend | None = None,
                 design: Sequence[dict[str, Any]] = ()) -> None:
        # Ray's annotations say one metric; a list is what a multi-objective searcher passes
        super().__init__(metric=list(objectives), mode=list(directions))  # type: ignore[arg-type]
        self.study = study
        self.trials_dir = trials_dir
        self.space = space
        self.objectives = list(objectives)
        self.directions = list(directions)
        self.num_trials = num_trials
        self.on_told = on_told
        self.done = done(study)
        self.owed = owed(study)  # oldest first; these must be run before anything new is asked for
        self.live: dict[str, optuna.Trial] = {}  # Tune trial id -> its Optuna trial
        self.share_phase2 = share_phase2
        # trials asked for so far, whatever their state (an enqueued baseline not yet asked is not one)
        self.asked = len(study.get_trials(deepcopy=False)) - count(study, TrialState.WAITING)
        self.shared = sharing.shared_count(study)  # of those, the ones that reuse a phase 2
        self.spend = spend  # the search's budget: no new trial once its projected spend is over it
        self.design = list(design)  # the start-up trials' subset parameters (spaces/startup.py), after the baseline

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its searcher into its experiment state, which is never read back here (the
        # study is the state); the live study and the driver's hook stay out of the pickle.
        return {k: v for k, v in self.__dict__.items() if k not in ("study", "space", "on_told", "live", "spend")}

    @property
    def remaining(self) -> int:
        """Trials this session still has to start: owed ones plus new ones up to ``num_trials``."""
        return len(self.owed) + max(0, self.num_trials - self.done - len(self.owed) - len(self.live))

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]  # FINISHED is a str
        if self.spend is not None and self.spend.limited and self.spend.stopped is None \
                and (reason := self.spend.stop_reason(len(self.live))) is not None:
            print(f"budget: no new trial starts ({reason}); the running ones finish", flush=True)
        if self.spend is not None and self.spend.stopped is not None:
            return Searcher.FINISHED
        if self.owed:
            trial = trial_of(self.study, self.owed.pop(0))
        elif self.done + len(self.live) < self.num_trials:
            trial = self._ask()
        else:
            return Searcher.FINISHED
        # Re-running the space on a trial that has parameters returns them unchanged (Optuna
        # returns a parameter already suggested), so an owed trial gets exactly its old config.
        config = {**self.space(trial), NUMBER_KEY: trial.number}
        if CONFIRMS_ATTR in trial.user_attrs:  # a confirmation (search/results/confirm.py): its seed goes to the trainable
            config |= {CONFIRMS_KEY: int(trial.user_attrs[CONFIRMS_ATTR]), SEED_KEY: int(trial.user_attrs[SEED_ATTR])}
        trial.set_user_attr(CONFIG_ATTR, _plain(config))
        self.live[trial_id] = trial
        return config

    def _ask(self) -> optuna.Trial:
        """A new trial from the sampler; when a share is due, over the phase 2 of :func:`sharing.source`."""
        source = None
        # Enqueued trials (the baseline, confirmations) come first from ask(); a start-up row or a
        # share enqueued behind them would not be the trial asked for, so both wait until none are queued.
        queued = count(self.study, TrialState.WAITING) > 0
        if 1 <= self.asked <= len(self.design):  # a start-up trial: its subsets from the balanced design
            if not queued:
                self.study.enqueue_trial(self.design[self.asked - 1])
        elif sharing.due(self.asked, self.shared, self.share_phase2) and not queued:
            source = sharing.source(self.study, self.directions)
        if source is not None:  # its phase-2 parameters are fixed; the sampler fills in the rest
            self.study.enqueue_trial(sharing.phase2_params(self.study.get_trials(deepcopy=False)[source]))
        trial = self.study.ask()
        self.asked = trial.number + 1
        if source is not None:
            trial.set_user_attr(SHARED_ATTR, source)
            self.shared += 1
        return trial

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        trial = self.live.pop(trial_id, None)
        if trial is None:
            return
        directory = trialdir.trial_path(self.trials_dir, trial.number)
        outcome = classify(result, self.objectives, error=error, directory=directory)
        if outcome is Outcome.INTERRUPTED:
            # Stopped before its end (Ctrl-C, SIGTERM): it stays RUNNING in the study, so the next
            # `stiltsearch resume` owes it, and its checkpoint directory keeps its finished phases.
            return
        tell(self.study, trial, outcome, self.objectives, result, directory)
        self.done += 1
        if self.spend is not None:
            self.spend.save()
        if self.on_told is not None:
            try:
                self.on_told(trial.number)
            except Exception as problem:  # noqa: BLE001 - a plot that fails must not stop the search
                print(f"warning: refreshing the front after trial {trial.number} failed: {problem!r}", flush=True)


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe (tuples as lists), as Optuna stores user attributes."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}
