"""From a validated config to what a search runs: every knob's choices (the space spec) and the
settings every trial gets. The config's sections are the runtime settings themselves, so this only
adds what is known once phase 1 has resolved the models. Ray-free (the dry run uses it).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from stiltsearch.search.config.schema import SearchConfig
from stiltsearch.search.launch.models import model_depths, resolve_models
from stiltsearch.spaces import SpaceSpec
from stiltsearch.trainables.settings import TrialSettings


def space_spec(cfg: SearchConfig) -> SpaceSpec:
    """Every knob's choices: the ``space:`` section, the task and language lists, the models."""
    return SpaceSpec(**cfg.space.choices, intermediate_tasks=cfg.intermediate_tasks, languages=cfg.languages,
                     models=model_depths(cfg))


def trial_settings(cfg: SearchConfig, models: dict[str, str], cache: Path) -> TrialSettings:
    return TrialSettings.compose(
        cfg.training, model=list(models.values())[-1], models=models, target_tasks=cfg.target_tasks,
        cache_dir=str(cache), data=cfg.data, eval_languages=cfg.eval_languages, threads=cfg.search.cpus_per_trial,
        workers=cfg.search.workers_per_trial, gpus_per_worker=cfg.search.gpus_per_worker, meter=cfg.throughput,
        bounds=cfg.bounds, rungs=cfg.search.scheduler.rungs, phase2_cache_gib=cfg.search.phase2_cache_gib)


def largest_model_settings(cfg: SearchConfig, cache: Path) -> TrialSettings:
    """A trial's settings pinned to the config's largest model (phase 1 run if needed): for
    measuring one model outside a search (benchmarks, the toy ground truth). Only that toy encoder
    is pretrained (a toy encoder's weights depend on its own spec alone, not on the others')."""
    if cfg.model == "toy":
        cfg = dataclasses.replace(cfg, toy_model=dataclasses.replace(cfg.toy_model, layers=(max(cfg.toy_model.layers),)))
    models = resolve_models(cfg, cache)
    return dataclasses.replace(trial_settings(cfg, models, cache), model=list(models.values())[-1], models={})
