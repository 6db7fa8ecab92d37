"""The sections of the search config: typed dataclasses, each checking its own fields.

The other sections are the runtime settings themselves (``training: Training``, ``throughput:
MeterSettings``, ``toy_model: ToyModels`` from ``trainables/settings.py``), so a default lives in
one place; ``search.scheduler`` is the named scheduler's own settings (``search/schedulers/``).
A check is a ``ValueError("<field>: <problem>")`` that :mod:`.coerce` prefixes with the section.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stiltsearch.search.config.coerce import ConfigError, coerce_value, from_dict
from stiltsearch.search.planning.cost import ACCELERATORS
from stiltsearch.search.schedulers.base import SchedulerSettings
from stiltsearch.search.schedulers.fifo import FifoSettings
from stiltsearch.search.schedulers.moasha import MoashaSettings
from stiltsearch.search.schedulers.registry import read_settings
from stiltsearch.search.tracking.uris import uri_problem
from stiltsearch.spaces import knobs
from stiltsearch.trainables.settings import check


@dataclass(frozen=True)
class Objective:
    """One objective of the multi-objective search: a declared objective
    (``trainables/objectives.py``) and its direction ("" : the declared one)."""

    name: str
    direction: str = ""
    # bounds: a trial below ``min`` or above ``max`` is infeasible (told to the study as such, off the
    # front); one whose speed misses its bound is never trained (its speed is known before training)
    min: float | None = None  # noqa: A003 - the config's own word
    max: float | None = None  # noqa: A003


@dataclass(frozen=True)
class SpaceConfig:
    """``space:``: the choices of every knob declared with a place there (``spaces/knobs.py``),
    under the knob's name; a knob the config leaves out keeps its declared default choices."""

    choices: Mapping[str, Any] = field(default_factory=knobs.default_choices)

    @classmethod
    def from_raw(cls, data: Any, where: str) -> SpaceConfig:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping, got {data!r}")
        declared = {k.key: k for k in knobs.SPACE_CONFIG_KNOBS}
        unknown = sorted(set(data) - set(declared))
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: unknown field; allowed here: {', '.join(declared)}")
        choices = knobs.default_choices()
        for key, raw in data.items():
            value = coerce_value(declared[key].config_type, raw, f"{where}.{key}")
            problem = declared[key].problem(value)
            if problem is not None:
                raise ConfigError(f"{where}.{key}: {problem}")
            choices[key] = value
        return cls(choices)

    def __getattr__(self, name: str) -> Any:  # cfg.space.layers_kept: a knob's choices
        choices = self.__dict__.get("choices", {})
        if name in choices:
            return choices[name]
        raise AttributeError(f"space has no knob {name!r}")


@dataclass(frozen=True)
class Budget:
    """``search.budget``: what the search may spend; no new trial starts once its projected spend
    (what ended trials took, the running ones, and one more at the mean so far) would pass a limit.
    A resumed search counts what earlier sessions spent."""

    gpu_hours: float | None = None  # GPU-hours of trials: each trial's hours x its GPUs
    wall_hours: float | None = None  # hours the driver ran, all sessions together

    def __post_init__(self) -> None:
        for name in ("gpu_hours", "wall_hours"):
            value = getattr(self, name)
            check(value is None or (math.isfinite(value) and value > 0),
                  f"{name}: give a positive number of hours, or null for no limit, got {value}")


@dataclass(frozen=True)
class SearchSettings:
    num_trials: int = 8  # the baseline (first trial) included
    max_concurrent: int = 2
    cpus_per_trial: int = 1  # CPUs of each of a trial's workers; also torch's thread count there
    workers_per_trial: int = 1  # > 1: data-parallel DeepSpeed over a Ray Train TorchTrainer in the trial
    gpus_per_worker: float = 0.0  # GPUs of each of a trial's workers (a one-worker trial: of the trial)
    max_failures: int = 1  # retries of a trial whose worker died (Ray FailureConfig)
    seed: int = 0  # Optuna sampler seed
    # when to stop a trial early, with the scheduler's own settings (search/schedulers/): given as a
    # name (fifo) or a mapping ({name: moasha, reduction_factor: 3, min_budget: 0.111})
    scheduler: SchedulerSettings = field(default_factory=FifoSettings)
    # the fraction of new trials that reuse the trained phase 2 of the best trial so far, with new
    # phase-3 and deployment settings (search/study/sharing.py); 0: every trial samples its own phase 2
    share_phase2: float = 0.5
    # the GPU model the dry run prices GPU-hours for (search/planning/cost.py: ACCELERATORS), at ``mfu``, the
    # share of its peak bf16 FLOP/s a trial is assumed to reach (0.4: a well-fed encoder fine-tune)
    accelerator: str | None = None
    mfu: float = 0.4
    budget: Budget = field(default_factory=Budget)
    # a Ray custom resource each trial's worker holds one unit of (e.g. "stilts-trial"), declared on
    # the nodes that train and not on the meter's node: with GPU trials and a routed meter
    # (throughput.resource) the meter holds a GPU of its own, which no trial may take
    trial_resource: str | None = None
    # the phase-2 cache's cap in GiB (each entry is a saved encoder: ~2.2 GB at XLM-R Large); least
    # recently used entries go past it, never one a trial is using. None: no cap
    phase2_cache_gib: float | None = None

    def __post_init__(self) -> None:
        check(self.accelerator is None or self.accelerator.lower() in ACCELERATORS,
              f"accelerator: {self.accelerator!r} is not in the table; allowed: {', '.join(ACCELERATORS)} (or null)")
        check(math.isfinite(self.mfu) and 0 < self.mfu <= 1,
              f"mfu: give the assumed share of the accelerator's peak in (0, 1], got {self.mfu}")
        check(self.phase2_cache_gib is None or (math.isfinite(self.phase2_cache_gib) and self.phase2_cache_gib > 0),
              f"phase2_cache_gib: give a positive size in GiB, or null for no cap, got {self.phase2_cache_gib}")
        check(self.budget.gpu_hours is None or self.gpus_per_worker > 0,
              "budget.gpu_hours: this search's trials hold no GPU (gpus_per_worker: 0); limit it with budget.wall_hours")
        for name in ("num_trials", "max_concurrent", "cpus_per_trial", "workers_per_trial"):
            check(getattr(self, name) >= 1, f"{name}: must be >= 1, got {getattr(self, name)}")
        check(self.max_failures >= 0, f"max_failures: must be >= 0, got {self.max_failures}")
        check(0 <= self.gpus_per_worker <= 1024, f"gpus_per_worker: must be in 0..1024, got {self.gpus_per_worker}")
        check(0 <= self.seed < 2**32, f"seed: must be in 0..2**32-1 (Optuna's seed range), got {self.seed}")
        check(math.isfinite(self.share_phase2) and 0 <= self.share_phase2 < 1,
              f"share_phase2: give the fraction of trials that reuse a trained phase 2, in [0, 1), got {self.share_phase2}")
        check(not self.scheduler.rungs or self.workers_per_trial == 1,
              f"scheduler: {self.scheduler.name} needs workers_per_trial: 1 (a multi-worker trial reports only its end)")

    @classmethod
    def from_raw(cls, data: Any, where: str) -> SearchSettings:
        """``search:``, its scheduler read by the scheduler's own settings (search/schedulers/).
        The flat form of earlier releases (``scheduler: moasha`` with ``reduction_factor`` and
        ``min_budget`` beside it, as every search directory they wrote holds) reads as before."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping, got {data!r}")
        fields = dict(data)
        raw = fields.pop("scheduler", FifoSettings.name)
        flat = {key: fields.pop(key) for key in FLAT_SCHEDULER_KEYS if key in fields}
        scheduler = read_settings(raw, f"{where}.scheduler")
        if flat:
            scheduler = _flat_scheduler(scheduler, raw, flat, where)
        base = from_dict(cls, fields, where)
        try:
            return dataclasses.replace(base, scheduler=scheduler)
        except ValueError as exc:  # what spans the scheduler and the other fields
            raise ConfigError(f"{where}.{exc}") from None


# MOASHA's two settings, which earlier releases kept flat under ``search:``
FLAT_SCHEDULER_KEYS = ("reduction_factor", "min_budget")


def _flat_scheduler(scheduler: SchedulerSettings, raw: Any, flat: dict[str, Any], where: str) -> SchedulerSettings:
    """The flat form: checked as it always was (as MOASHA's settings, whichever scheduler is named),
    and applied to a scheduler that has them; a scheduler without them (fifo) never read them."""
    if isinstance(raw, dict):
        key = next(iter(flat))
        raise ConfigError(f"{where}.{key}: give it under {where}.scheduler (the nested form), not beside it")
    checked = from_dict(MoashaSettings, flat, where)
    if isinstance(scheduler, MoashaSettings):
        return checked
    return scheduler


@dataclass(frozen=True)
class MlflowConfig:
    # None: $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db. Credentials in the URI
    # (http://user:password@host) are moved to MLflow's own MLFLOW_TRACKING_USERNAME/PASSWORD and
    # never written anywhere (search/tracking/tracker.py)
    tracking_uri: str | None = None
    experiment: str | None = None  # None: the search name

    def __post_init__(self) -> None:
        if self.tracking_uri is not None:
            problem = uri_problem(self.tracking_uri)
            check(problem is None, f"tracking_uri: {problem}")
        check(self.experiment is None or bool(self.experiment.strip()),
              "experiment: give an MLflow experiment name, or null for the search name")
