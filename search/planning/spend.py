"""What a search has spent and whether it may start another trial (``search.budget``).

Spend is read from the study, so a resumed search counts what earlier sessions spent: GPU-hours are
each ended trial's hours (Optuna's start and end times) times the GPUs a trial holds; wall hours are
the driver's, kept in the study's user attributes as each trial is told and when a session ends. No
new trial starts once the projected spend would pass a limit: what is spent, plus the running
trials and the one about to start at the mean of the trials ended so far (before any trial has
ended, nothing is projected). Trials already running finish; the search then ends as complete for
its budget, and ``stiltsearch resume`` after raising the budget (``config.yaml``) goes on.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import optuna
from optuna.trial import TrialState

from stiltsearch.search.config.sections import Budget

WALL_ATTR = "stilts.wall_seconds"  # study user attribute: driver seconds of the sessions before this one


class Spend:
    """A search's spend against its budget, for this driver session."""

    def __init__(self, study: optuna.Study, budget: Budget, gpus_per_trial: float) -> None:
        self.study, self.budget, self.gpus = study, budget, gpus_per_trial
        self.before = float(study.user_attrs.get(WALL_ATTR, 0.0))
        self.start = time.monotonic()
        self.stopped: str | None = None  # why no new trial starts, once that is decided

    @property
    def limited(self) -> bool:
        return self.budget.gpu_hours is not None or self.budget.wall_hours is not None

    def trial_hours(self) -> list[float]:
        """Hours of each ended trial (complete, pruned or failed) of the study."""
        ended = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        return [(t.datetime_complete - t.datetime_start).total_seconds() / 3600
                for t in self.study.get_trials(deepcopy=False, states=ended)
                if t.datetime_start is not None and t.datetime_complete is not None]

    def gpu_hours(self) -> float:
        return sum(self.trial_hours()) * self.gpus

    def wall_hours(self) -> float:
        return (self.before + time.monotonic() - self.start) / 3600

    def save(self) -> None:
        """Keep this session's wall time in the study (a resume adds to it)."""
        self.study.set_user_attr(WALL_ATTR, self.before + time.monotonic() - self.start)

    def stop_reason(self, running: int) -> str | None:
        """Why a new trial must not start now (None: it may), with ``running`` trials in flight."""
        if self.stopped is not None:
            return self.stopped
        hours = self.trial_hours()
        mean = statistics.fmean(hours) if hours else 0.0
        if self.budget.gpu_hours is not None:
            projected = (sum(hours) + (running + 1) * mean) * self.gpus
            if projected > self.budget.gpu_hours:
                self.stopped = (f"search.budget.gpu_hours: {sum(hours) * self.gpus:.3g} spent and {projected:.3g} "
                                f"projected with one more trial, over {self.budget.gpu_hours:g}")
        if self.stopped is None and self.budget.wall_hours is not None:
            projected = self.wall_hours() + mean
            if projected > self.budget.wall_hours:
                self.stopped = (f"search.budget.wall_hours: {self.wall_hours():.3g} h spent and {projected:.3g} "
                                f"projected with one more trial, over {self.budget.wall_hours:g}")
        return self.stopped

    def postfix(self) -> dict[str, str]:
        """The progress line's budget fields: spent / limit."""
        shown: dict[str, str] = {}
        if self.budget.gpu_hours is not None:
            shown["GPU-h"] = f"{self.gpu_hours():.3g}/{self.budget.gpu_hours:g}"
        if self.budget.wall_hours is not None:
            shown["wall-h"] = f"{self.wall_hours():.3g}/{self.budget.wall_hours:g}"
        return shown

    def metrics(self) -> dict[str, Any]:
        """The parent run's budget metrics (MLflow)."""
        values: dict[str, Any] = {"budget/gpu_hours_spent": self.gpu_hours(), "budget/wall_hours_spent": self.wall_hours()}
        if self.budget.gpu_hours is not None:
            values["budget/gpu_hours"] = self.budget.gpu_hours
        if self.budget.wall_hours is not None:
            values["budget/wall_hours"] = self.budget.wall_hours
        return values
