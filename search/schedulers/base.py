"""When to stop a trial early: the interface every scheduler implements, and the settings it owns.

As Syne Tune keeps them apart: the searcher (the Optuna study) chooses what to try, a scheduler
decides when a running trial stops, and Ray runs it. A scheduler here is Ray-free: it sees each
result a trial reports and answers with a :class:`Decision`; the Ray seam
(:class:`stiltsearch.search.launch.tuner.TuneScheduler`) records a stop in the trial's directory
(``pruned.json``: the trial ends PRUNED everywhere, see ``trainables/outcome.py``) before Tune
stops it.

A scheduler owns its settings (``search.scheduler: {name: ..., <its fields>}``): a frozen
dataclass of its own that checks its fields, knows its rung geometry, its cost arithmetic for the
dry run and its one-line description. A new scheduler is one module (its settings and its class)
and one line in :mod:`.registry`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from stiltsearch.trainables.types import Metrics


@dataclass(frozen=True)
class Decision:
    """A scheduler's answer to one result: go on, or stop. A verdict at a rung also says which rung
    and the objectives it was judged on (the seam records them in the trial's directory)."""

    stop: bool = False
    rung: int | None = None
    values: tuple[float, ...] = ()


CONTINUE = Decision()


@dataclass(frozen=True)
class SchedulerSettings:
    """A scheduler's own settings (its docstring: one line on what the scheduler does, for the docs)."""

    name: ClassVar[str]  # the scheduler's name in a config (``search.scheduler.name``)

    @property
    def rungs(self) -> tuple[float, ...]:
        """The budget fractions a trial reports at before its end (none: it reports only its end)."""
        return ()

    def reach(self) -> tuple[float, ...]:
        """The expected share of trials that reach each rung and, last, the end of training (the
        dry run's cost arithmetic): every trial reaches the end by default."""
        return (1.0,) * (len(self.rungs) + 1)

    def describe(self) -> str:
        """One line for the dry run: when this scheduler stops a trial."""
        return f"early stopping: none ({self.name}): every trial runs to its end"

    def as_config(self) -> dict[str, Any]:
        """The nested form a config and a search directory's ``config.yaml`` hold."""
        return {"name": self.name, **asdict(self)}


class Scheduler(ABC):
    """Decides, for each reported result of a running trial, whether it goes on."""

    Settings: ClassVar[type[SchedulerSettings]]

    @classmethod
    def build(cls, settings: SchedulerSettings, objectives: Sequence[str], directions: Sequence[str],
              trials: Path) -> Scheduler:
        """The scheduler of a search, knowing what its trials' directories recorded (a resume)."""
        return cls()

    @abstractmethod
    def decide(self, number: int, result: Metrics) -> Decision:
        """``number``: the Optuna trial number; ``result``: what the trial just reported."""
