"""When to stop a trial early: the scheduler layer, declared by name (``search.scheduler``).

As Syne Tune keeps them apart: the searcher (the Optuna study) chooses what to try, a scheduler
decides when a running trial stops, and Ray runs it. A scheduler here is Ray-free: it sees each
result a trial reports and answers with a :class:`Decision`; the Ray seam
(:class:`stiltsearch.search.tuner.TuneScheduler`) records a stop in the trial's directory
(``pruned.json``: the trial ends PRUNED everywhere, see ``trainables/outcome.py``) before Tune
stops it. A new scheduler is one class here, registered with :func:`register`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar


@dataclass(frozen=True)
class Decision:
    """A scheduler's answer to one result: go on, or stop at ``rung``."""

    stop: bool = False
    rung: int | None = None


CONTINUE = Decision()


class Scheduler(ABC):
    """Decides, for each reported result of a running trial, whether it goes on."""

    name: ClassVar[str]

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
