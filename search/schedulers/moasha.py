"""``moasha``: multi-objective asynchronous successive halving (the rule: :mod:`.rungs`). At each
rung of its budget a trial goes on only if it ranks in the top ``1 / reduction_factor`` of the
trials that reached that rung, by non-dominated sorting and hypervolume contribution."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from stiltsearch.search.schedulers.base import CONTINUE, Decision, Scheduler, SchedulerSettings
from stiltsearch.search.schedulers.rungs import Rungs, rung_budgets
from stiltsearch.trainables import trialdir
from stiltsearch.trainables.objectives import reference, rung_values
from stiltsearch.trainables.types import Metrics


@dataclass(frozen=True)
class MoashaSettings(SchedulerSettings):
    """Multi-objective asynchronous successive halving: at each rung of a trial's budget, only the
    top 1/reduction_factor of the trials there (by non-dominated rank, then hypervolume
    contribution) go on; a rung is a prefix of the full run."""

    name = "moasha"
    # rungs at min_budget * reduction_factor**k of a trial's training budget, below 1 (1/9 and 1/3
    # for the defaults); the top 1/reduction_factor of the trials at a rung go on
    reduction_factor: float = 3.0
    min_budget: float = 1 / 9

    def __post_init__(self) -> None:
        if not (math.isfinite(self.reduction_factor) and self.reduction_factor > 1):
            raise ValueError(f"reduction_factor: must be a finite number > 1 (3 keeps the top third), "
                             f"got {self.reduction_factor}")
        if not (math.isfinite(self.min_budget) and 0 < self.min_budget < 1):
            raise ValueError(f"min_budget: give the smallest rung as a fraction of a trial's budget in (0, 1), "
                             f"got {self.min_budget}")

    @property
    def rungs(self) -> tuple[float, ...]:
        return tuple(rung_budgets(self.min_budget, self.reduction_factor))

    def reach(self) -> tuple[float, ...]:
        # the top 1 / reduction_factor of the trials at a rung go on to the next
        return tuple(self.reduction_factor ** -k for k in range(len(self.rungs) + 1))

    def describe(self) -> str:
        rungs = ", ".join(f"{b:.3g}" for b in self.rungs)
        return (f"early stopping ({self.name}): each trial reports at {rungs} of its phase-2 and phase-3 steps; only "
                f"the top 1/{self.reduction_factor:g} of the trials at a rung go on (by non-dominated rank)")


class Moasha(Scheduler):
    Settings = MoashaSettings

    def __init__(self, objectives: Sequence[str], rungs: Rungs) -> None:
        self.objectives = list(objectives)
        self.rungs = rungs

    @classmethod
    def build(cls, settings: SchedulerSettings, objectives: Sequence[str], directions: Sequence[str],
              trials: Path) -> Scheduler:
        assert isinstance(settings, MoashaSettings)
        rungs = Rungs(directions, [reference(name) for name in objectives],
                      reduction_factor=settings.reduction_factor, min_budget=settings.min_budget)
        # a resumed search rebuilds what each rung recorded from the trials' directories
        for number, directory in trialdir.trial_dirs(trials):
            for rung, verdict in trialdir.read_rungs(directory).items():
                if rung < len(rungs.budgets) and len(verdict["values"]) == len(objectives):
                    rungs.record(rung, number, verdict["values"])
        return cls(objectives, rungs)

    def decide(self, number: int, result: Metrics) -> Decision:
        found = rung_values(result, self.objectives)
        if found is None:  # not a rung report (the speed, phase 2, the end)
            return CONTINUE
        rung, values = found
        return Decision(stop=not self.rungs.goes_on(rung, number, values), rung=rung, values=tuple(values))
