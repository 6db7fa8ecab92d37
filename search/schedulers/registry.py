"""The schedulers a config may name (``search.scheduler``), and reading their settings.

A config gives a scheduler by name (``scheduler: fifo``) or with its settings
(``scheduler: {name: moasha, reduction_factor: 3, min_budget: 0.111}``); each scheduler's
settings dataclass checks its own fields (``search/schedulers/<name>.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stiltsearch.search.config.coerce import ConfigError, from_dict
from stiltsearch.search.schedulers.base import Scheduler, SchedulerSettings
from stiltsearch.search.schedulers.fifo import Fifo
from stiltsearch.search.schedulers.moasha import Moasha

SCHEDULERS: dict[str, type[Scheduler]] = {cls.Settings.name: cls for cls in (Fifo, Moasha)}


def build(settings: SchedulerSettings, objectives: Sequence[str], directions: Sequence[str], trials: Path) -> Scheduler:
    """The scheduler these settings name, for a search whose trials' directories are under ``trials``."""
    return SCHEDULERS[settings.name].build(settings, objectives, directions, trials)


def read_settings(data: Any, where: str) -> SchedulerSettings:
    """``search.scheduler`` as given: a name, or a mapping of ``name`` and the scheduler's fields."""
    if isinstance(data, str):
        if data not in SCHEDULERS:
            raise ConfigError(f"{where}: {data!r}; allowed: {', '.join(SCHEDULERS)}")
        return SCHEDULERS[data].Settings()
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: give a scheduler's name ({', '.join(SCHEDULERS)}) or a mapping with its name "
                          f"and settings, got {data!r}")
    fields = dict(data)
    name = fields.pop("name", None)
    if name not in SCHEDULERS:
        raise ConfigError(f"{where}.name: {name!r}; allowed: {', '.join(SCHEDULERS)}")
    settings: SchedulerSettings = from_dict(SCHEDULERS[name].Settings, fields, where)
    return settings
