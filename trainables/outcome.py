"""How a trial ended: one enum and one classifier, used by the searcher, MLflow tracking, the
console, resume and the front (as Optuna's ``TrialState`` is for a study).

Ray-free and torch-free: the classifier reads a Tune result as a plain mapping.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from pathlib import Path

from stiltsearch.trainables import trialdir
from stiltsearch.trainables.types import Metrics


class Outcome(Enum):
    """A trial's end, with what each part of the search makes of it."""

    COMPLETE = "complete"  # every objective reported: told to the study with its values; on the front
    INFEASIBLE = "infeasible"  # misses an objective's bound (maybe never trained): told with its constraint
    # violation, so the sampler learns from it; MLflow FINISHED; never owed; off the front
    FAILED = "failed"  # Ray gave up after search.max_failures retries: study FAIL, MLflow FAILED
    PRUNED = "pruned"  # a scheduler stopped it early: study PRUNED, MLflow FINISHED, never owed, off the front
    INTERRUPTED = "interrupted"  # stopped by Ctrl-C or SIGTERM: stays RUNNING in the study, owed on resume

    @property
    def study_state(self) -> str:
        """The name of its ``optuna.trial.TrialState``."""
        return {"complete": "COMPLETE", "infeasible": "COMPLETE", "failed": "FAIL", "pruned": "PRUNED",
                "interrupted": "RUNNING"}[self.value]

    @property
    def mlflow_status(self) -> str:
        return {"complete": "FINISHED", "infeasible": "FINISHED", "failed": "FAILED", "pruned": "FINISHED",
                "interrupted": "KILLED"}[self.value]

    @property
    def counts(self) -> bool:
        """Whether it counts toward ``search.num_trials`` (a resume never runs it again)."""
        return self is not Outcome.INTERRUPTED


# the study states of the trials that are done (counted toward search.num_trials)
DONE_STATES = tuple(dict.fromkeys(o.study_state for o in Outcome if o.counts))
INFEASIBLE = "infeasible"  # the result key of a trial that misses a bound: why
CONSTRAINT = "trial/constraint_violation"  # the result key of Optuna's constraint value (<= 0: feasible)


def has_objectives(result: Metrics | None, objectives: Sequence[str]) -> bool:
    return result is not None and all(name in result for name in objectives)


def classify(result: Metrics | None, objectives: Sequence[str], *, error: bool = False,
             directory: Path | None = None) -> Outcome:
    """The outcome of a trial Tune has ended: ``error`` when Ray gave up on it; ``result`` its last
    result; ``directory`` its trial directory, where a scheduler's stop is recorded."""
    if error:
        return Outcome.FAILED
    if directory is not None and trialdir.read_pruned(directory) is not None:
        return Outcome.PRUNED
    if result is not None and INFEASIBLE in result:
        return Outcome.INFEASIBLE
    return Outcome.COMPLETE if has_objectives(result, objectives) else Outcome.INTERRUPTED
