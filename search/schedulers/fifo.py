"""``fifo``: every trial runs to its end (Tune's FIFO); it has no settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stiltsearch.search.schedulers.base import CONTINUE, Decision, Scheduler, SchedulerSettings


@dataclass(frozen=True)
class FifoSettings(SchedulerSettings):
    """Every trial runs to its end (Tune's FIFO)."""

    name = "fifo"


class Fifo(Scheduler):
    Settings = FifoSettings

    def decide(self, number: int, result: Mapping[str, Any]) -> Decision:
        return CONTINUE
