"""``stiltsearch confirm``: which trials a confirmation re-runs, and under which seeds.

Zero-shot cross-lingual scores move a lot between training seeds (Keung et al. 2020, "Don't use
English dev"), so a front measured once per configuration is one draw. A *confirmation* re-runs one
trial's knobs (every Optuna parameter the same, so the same phase-1 encoder) with another training
seed of phases 2 and 3, and measures its tokens/sec again instead of reading the speed cache, so that
both objectives' noise is in the error bars (``findings.py`` computes them).

How a confirmation runs, and why so:

- It is a trial of the search's own study, enqueued with Optuna's ``enqueue_trial`` (WAITING, its
  parameters fixed) and two user attributes: ``confirms`` (the trial it re-runs) and ``seed``. The
  search's ``num_trials`` grows by the number enqueued. Optuna's ``ask`` hands out waiting trials
  before it samples, so the ordinary driver runs them: Ray, checkpoints, MLflow child runs (tagged
  ``stiltsearch.confirms`` and ``stiltsearch.seed``). A confirm that is killed continues with
  ``stiltsearch resume`` or the same ``stiltsearch confirm`` again: nothing is enqueued twice.
- Which trials: the search's own Pareto front (confirmations never join it) and the baseline.
- Seeds ``training.seed + 1 .. training.seed + K``: the confirmed trial itself ran with
  ``training.seed``, so each point ends with K + 1 runs.
- The sampler (TPE) reads a confirmation as it reads any trial: one more measurement of a
  configuration it has seen.

Ray-free: pure functions over the study.
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.trial import TrialState

from stiltsearch.search.results import front as fronts
from stiltsearch.search.results import table
from stiltsearch.search.study.core import CONFIRMS_ATTR, SEED_ATTR, done, is_confirmation

MAX_SEEDS = 100  # --seeds above this is a typo rather than a plan (each seed is a whole trial per point)


def seeds(base: int, k: int) -> list[int]:
    """The K new training seeds after the search's own ``base`` (``training.seed``)."""
    return [base + i for i in range(1, k + 1)]


def confirmable(study: optuna.Study, names: Sequence[str], directions: Sequence[str]) -> list[int]:
    """The trials a confirmation re-runs: the search's front and its baseline, by number."""
    rows = table.from_study(study)
    first = table.baseline(rows)
    return sorted(set(fronts.from_rows(rows, names, directions).numbers) | ({first.number} if first else set()))


def planned(study: optuna.Study, numbers: Sequence[int], wanted: Sequence[int]) -> list[tuple[int, int]]:
    """(trial, seed) pairs still to enqueue: every one of ``numbers`` under every ``wanted`` seed,
    less those the study already holds in any state (a failed confirmation is not retried)."""
    have = {(int(t.user_attrs[CONFIRMS_ATTR]), int(t.user_attrs[SEED_ATTR]))
            for t in study.get_trials(deepcopy=False) if is_confirmation(t)}
    return [(n, s) for n in numbers for s in wanted if (n, s) not in have]


def enqueue(study: optuna.Study, plan: Sequence[tuple[int, int]]) -> None:
    """Each (trial, seed) as a waiting trial with that trial's parameters."""
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    for number, seed in plan:
        study.enqueue_trial(dict(by_number[number].params), user_attrs={CONFIRMS_ATTR: number, SEED_ATTR: seed})


def unfinished(study: optuna.Study, num_trials: int) -> str | None:
    """Why the search is not ready to be confirmed (its own trials still running or to come), or None."""
    trials = study.get_trials(deepcopy=False)
    pending = [t for t in trials if not is_confirmation(t) and t.state in (TrialState.RUNNING, TrialState.WAITING)]
    if pending or len(trials) < num_trials:
        return f"{done(study)} of {num_trials} trials done"
    return None


def pending(study: optuna.Study) -> int:
    """Confirmations enqueued or running, not yet done."""
    return sum(is_confirmation(t) and t.state in (TrialState.RUNNING, TrialState.WAITING)
               for t in study.get_trials(deepcopy=False))
