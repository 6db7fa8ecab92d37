"""When to stop a trial early: the scheduler layer, declared by name (``search.scheduler``).

As Syne Tune keeps them apart: the searcher (the Optuna study) chooses what to try, a scheduler
decides when a running trial stops, and Ray runs it. A scheduler here is Ray-free: it sees each
result a trial reports and answers with a :class:`Decision`; the Ray seam
(:class:`stiltsearch.search.launch.tuner.TuneScheduler`) records a stop in the trial's directory
(``pruned.json``: the trial ends PRUNED everywhere, see ``trainables/outcome.py``) before Tune
stops it. A new scheduler is one class here, registered with :func:`register`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from stiltsearch.search.schedulers.rungs import Rungs
from stiltsearch.trainables import trialdir
from stiltsearch.trainables.objectives import reference, rung_values

if TYPE_CHECKING:
    from stiltsearch.search.config.schema import SearchConfig


@dataclass(frozen=True)
class Decision:
    """A scheduler's answer to one result: go on, or stop. A verdict at a rung also says which rung
    and the objectives it was judged on (the seam records them in the trial's directory)."""

    stop: bool = False
    rung: int | None = None
    values: tuple[float, ...] = ()


CONTINUE = Decision()


class Scheduler(ABC):
    """Decides, for each reported result of a running trial, whether it goes on."""

    name: ClassVar[str]
    # whether trials report at rungs of their budget for it (``search.reduction_factor``, ``min_budget``)
    fidelity: ClassVar[bool] = False

    @classmethod
    def from_config(cls, cfg: SearchConfig, trials: Path) -> Scheduler:
        """The scheduler of a search, knowing what its trials' directories recorded (a resume)."""
        return cls()

    @classmethod
    def reach(cls, cfg: SearchConfig) -> tuple[float, ...]:
        """The expected share of trials that reach each rung of ``cfg.search.rungs`` and, last, the
        end of training (the dry run's cost arithmetic): every trial reaches the end by default."""
        return (1.0,) * (len(cfg.search.rungs) + 1)

    @classmethod
    def describe(cls, cfg: SearchConfig) -> str:
        """One line for the dry run: when this scheduler stops a trial."""
        return f"early stopping: none ({cls.name}): every trial runs to its end"

    @abstractmethod
    def decide(self, number: int, result: Mapping[str, Any]) -> Decision:
        """``number``: the Optuna trial number; ``result``: what the trial just reported."""


S = TypeVar("S", bound=type[Scheduler])
SCHEDULERS: dict[str, type[Scheduler]] = {}


def register(cls: S) -> S:
    if cls.name in SCHEDULERS:
        raise ValueError(f"scheduler {cls.name!r} is registered twice")
    SCHEDULERS[cls.name] = cls
    return cls


@register
class Fifo(Scheduler):
    """Every trial runs to its end (Tune's FIFO)."""

    name = "fifo"

    def decide(self, number: int, result: Mapping[str, Any]) -> Decision:
        return CONTINUE


@register
class Moasha(Scheduler):
    """Multi-objective asynchronous successive halving (:mod:`stiltsearch.search.schedulers.rungs`): at each
    rung of its budget a trial goes on only if it ranks in the top ``1 / search.reduction_factor``
    of the trials that reached that rung, by non-dominated sorting and hypervolume contribution."""

    name = "moasha"
    fidelity = True

    def __init__(self, objectives: Sequence[str], rungs: Rungs) -> None:
        self.objectives = list(objectives)
        self.rungs = rungs

    @classmethod
    def from_config(cls, cfg: SearchConfig, trials: Path) -> Scheduler:
        rungs = Rungs(cfg.directions, [reference(name) for name in cfg.objective_names],
                      reduction_factor=cfg.search.reduction_factor, min_budget=cfg.search.min_budget)
        # a resumed search rebuilds what each rung recorded from the trials' directories
        for directory in sorted(Path(trials).glob("[0-9]" * 4)) if Path(trials).is_dir() else []:
            for rung, verdict in trialdir.read_rungs(directory).items():
                if rung < len(rungs.budgets) and len(verdict["values"]) == len(cfg.objective_names):
                    rungs.record(rung, int(directory.name), verdict["values"])
        return cls(cfg.objective_names, rungs)

    @classmethod
    def reach(cls, cfg: SearchConfig) -> tuple[float, ...]:
        # the top 1 / reduction_factor of the trials at a rung go on to the next
        return tuple(cfg.search.reduction_factor ** -k for k in range(len(cfg.search.rungs) + 1))

    @classmethod
    def describe(cls, cfg: SearchConfig) -> str:
        rungs = ", ".join(f"{b:.3g}" for b in cfg.search.rungs)
        return (f"early stopping ({cls.name}): each trial reports at {rungs} of its phase-2 and phase-3 steps; only "
                f"the top 1/{cfg.search.reduction_factor:g} of the trials at a rung go on (by non-dominated rank)")

    def decide(self, number: int, result: Mapping[str, Any]) -> Decision:
        found = rung_values(result, self.objectives)
        if found is None:  # not a rung report (the speed, phase 2, the end)
            return CONTINUE
        rung, values = found
        return Decision(stop=not self.rungs.goes_on(rung, number, values), rung=rung, values=tuple(values))
