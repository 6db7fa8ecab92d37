"""One table of trials: every front, finding, report, phase-2 share and ``stiltsearch pareto`` is
read from it, so a rule such as "which trials make the front" is written once (:func:`searched`).

The same rows come from the two places a search leaves its trials: its Optuna study (a search
directory; the source of truth) through :func:`from_study`, and its MLflow child runs (a store one
can reach but not the directory of) through :func:`from_runs`, which read the outcome and the
confirmation from the runs' ``stiltsearch.outcome`` and ``stiltsearch.confirms`` tags as the
driver wrote them. Ray-free.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial

from stiltsearch.search.study.core import CONFIG_ATTR, CONFIRMS_ATTR, SEED_ATTR, SHARED_ATTR, outcome_of
from stiltsearch.spaces.knobs import KNOBS, Config
from stiltsearch.trainables.outcome import Outcome

if TYPE_CHECKING:
    from mlflow.entities import Run

FAMILIES = ("stilts", "direct")  # with intermediate tasks / without (fine-tuned directly on the targets)
OUTCOME_TAG = "stiltsearch.outcome"  # a child run's outcome (trainables/outcome.py), written when it ends
CONFIRMS_TAG = "stiltsearch.confirms"  # a confirmation's run: the trial it re-runs
SEED_TAG = "stiltsearch.seed"
NUMBER_TAG = "stiltsearch.trial_number"
FAMILY_TAG = "stiltsearch.family"  # a child run's family: "stilts" or "direct" (for MLflow's filters)


@dataclass(frozen=True)
class Row:
    """One trial of a search, however it ended."""

    number: int  # the Optuna trial number (the baseline is 0)
    outcome: Outcome | None  # None: running, or owed to a resume
    values: tuple[float, ...]  # the objectives in the config's order; () when never reached
    config: Config  # the knobs the trainable received
    seconds: float = 0.0  # wall time from start to end (0: not ended)
    finished_at: float = 0.0  # unix seconds of its end (0: not ended); orders the hypervolume history
    confirms: int | None = None  # a confirmation (``stiltsearch confirm``): the trial it re-runs
    seed: int | None = None  # a confirmation's training seed
    phase2_from: int | None = None  # a phase-2 share (search/study/sharing.py): its source trial

    @property
    def family(self) -> str:
        return "stilts" if self.config.get("intermediate_tasks") else "direct"

    @property
    def is_baseline(self) -> bool:
        """No intermediate task, English only: the baseline's family (the search's first such trial
        is its baseline)."""
        return not self.config.get("intermediate_tasks") and not self.config.get("train_languages")


def searched(rows: Iterable[Row]) -> list[Row]:
    """What fronts are made of: the search's own trials (no confirmation) that completed inside every
    objective's bound, by number."""
    return sorted((r for r in rows if r.outcome is Outcome.COMPLETE and r.confirms is None), key=lambda r: r.number)


def confirmations(rows: Iterable[Row]) -> list[Row]:
    """Confirmations that completed inside the bounds, by number."""
    return sorted((r for r in rows if r.outcome is Outcome.COMPLETE and r.confirms is not None), key=lambda r: r.number)


def tally(rows: Iterable[Row], outcome: Outcome) -> int:
    """How many of the search's own trials ended so."""
    return sum(r.outcome is outcome and r.confirms is None for r in rows)


def baseline(rows: Sequence[Row]) -> Row | None:
    return next((r for r in searched(rows) if r.is_baseline), None)


# -- from a study ---------------------------------------------------------------------------------


def from_study(study: optuna.Study) -> list[Row]:
    return [_study_row(t) for t in study.get_trials(deepcopy=False)]


def _study_row(trial: FrozenTrial) -> Row:
    start, end = trial.datetime_start, trial.datetime_complete
    attrs = trial.user_attrs
    return Row(trial.number, outcome_of(trial), tuple(trial.values or ()), attrs.get(CONFIG_ATTR) or dict(trial.params),
               seconds=(end - start).total_seconds() if start and end else 0.0,
               finished_at=end.timestamp() if end else 0.0,
               confirms=_int(attrs.get(CONFIRMS_ATTR)), seed=_int(attrs.get(SEED_ATTR)),
               phase2_from=_int(attrs.get(SHARED_ATTR)))


# -- from MLflow ----------------------------------------------------------------------------------


def from_runs(runs: Iterable[Run], names: Sequence[str]) -> list[Row]:
    """The child runs of one search (``stiltsearch.kind = trial``), one row per trial number (the
    latest run, should a trial have more)."""
    rows: dict[int, Row] = {}
    for run in sorted(runs, key=lambda r: r.info.start_time or 0):
        tags, metrics = run.data.tags, run.data.metrics
        if NUMBER_TAG not in tags:
            continue
        outcome = Outcome(tags[OUTCOME_TAG]) if tags.get(OUTCOME_TAG) in {o.value for o in Outcome} else None
        values = tuple(metrics[n] for n in names) if all(n in metrics for n in names) else ()
        if outcome is Outcome.COMPLETE and not values:  # told complete, its objectives not (yet) logged
            outcome = None
        start, end = (run.info.start_time or 0) / 1000, (run.info.end_time or 0) / 1000
        number = int(tags[NUMBER_TAG])
        rows[number] = Row(number, outcome, values, knobs_of(run.data.params),
                           seconds=end - start if end else 0.0, finished_at=end,
                           confirms=_int(tags.get(CONFIRMS_TAG)), seed=_int(tags.get(SEED_TAG)))
    return [rows[n] for n in sorted(rows)]


def knobs_of(params: dict[str, str]) -> dict[str, Any]:
    """A trial's MLflow params (strings) back as the config the trainable received."""
    return {k.name: k.parse(params[k.name]) for k in KNOBS if k.name in params}


def _int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)
