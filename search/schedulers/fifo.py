"""``fifo``: every trial runs to its end (Tune's FIFO); it has no settings."""

from __future__ import annotations

from dataclasses import dataclass

from stiltsearch.search.schedulers.base import CONTINUE, Decision, Scheduler, SchedulerSettings
from stiltsearch.trainables.types import Metrics


@dataclass(frozen=True)
class FifoSettings(SchedulerSettings):
    """Every trial runs to its end (Tune's FIFO)."""

    name = "fifo"


class Fifo(Scheduler):
    Settings = FifoSettings

    def decide(self, number: int, result: Metrics) -> Decision:
        return CONTINUE
