"""The trials of one driver session under Ray: phase 1's models, hub data resolved once, the
trials' settings, the Ray session and the Tune ``Tuner`` over the study, run to its end."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from stiltsearch.search.config.coerce import ConfigError
from stiltsearch.search.config.compose import trial_settings
from stiltsearch.search.config.schema import SearchConfig
from stiltsearch.search.launch.models import resolve_models
from stiltsearch.search.launch.raysession import missing_resource, ray_session, sigterm_as_sigint, unschedulable
from stiltsearch.search.launch.resolve import OFFLINE, offline_for_trials, resolve_once
from stiltsearch.search.launch.tuner import build_tuner
from stiltsearch.search.layout import cache_dir, trials_dir
from stiltsearch.search.planning.spend import Spend
from stiltsearch.search.tracking.callbacks import MlflowCallback, ProgressCallback
from stiltsearch.search.tracking.tracker import Tracker


def run_trials(cfg: SearchConfig, search_dir: Path, study: optuna.Study, tracker: Tracker, address: str | None, *,
               finished: int, spend: Spend, on_told: Callable[[int], object], trainable: Any = None) -> None:
    """Run what the study still owes and asks for, until ``search.num_trials`` are done (or Ctrl-C,
    or the budget). ``trainable`` replaces the STILTs trainable (benchmarks and tests time the
    driver with one; it reads no hub data)."""
    cache = cache_dir()
    os.environ["TORCH_EXTENSIONS_DIR"] = str(cache / "torch_extensions")  # where DeepSpeed builds its C++ ops, if any
    models = resolve_models(cfg, cache)
    # the model and hub datasets once, here (search/launch/resolve.py); then the trials read that cache
    offline = trainable is None and resolve_once(cfg) and offline_for_trials(address)
    trials = trials_dir(search_dir)
    settings = dataclasses.replace(trial_settings(cfg, models, cache), trials_dir=str(trials))
    # ray.init installs its own SIGTERM handler (it exits at once): ours goes back on top
    with ray_session(search_dir, cache, address, local_resources(cfg), OFFLINE if offline else None), \
            sigterm_as_sigint():
        check_cluster_resources(cfg)
        # a local Ray was checked before it started; a cluster may autoscale, so this is said, not refused
        if (problem := unschedulable(cfg.search.cpus_per_trial, cfg.search.gpus_per_worker)) is not None:
            print(f"warning: {problem}; trials wait until such a node joins", flush=True)
        n = cfg.search.num_trials
        callbacks = [MlflowCallback(tracker, cfg.objective_names, trials),
                     ProgressCallback(n, cfg.objective_names, start_done=finished, trials_dir=trials,
                                      extra=spend.postfix if spend.limited else None)]
        build_tuner(cfg, settings, search_dir, study, callbacks, trainable=trainable, on_told=on_told,
                    spend=spend).fit()


def local_resources(cfg: SearchConfig) -> dict[str, float] | None:
    """The custom resources a local Ray declares: the meter's (one measurement at a time) and the
    trials' own; a cluster declares its own (:func:`check_cluster_resources`)."""
    found = {cfg.throughput.resource: 1.0} if cfg.throughput.resource else {}
    if cfg.search.trial_resource:
        found[cfg.search.trial_resource] = float(cfg.search.max_concurrent * cfg.search.workers_per_trial)
    return found or None


def check_cluster_resources(cfg: SearchConfig) -> None:
    """The custom resources the config names, against the live Ray: the meter's must be offered by
    a running node (every trial would otherwise wait on its measurement forever); the trials' may
    come with nodes an autoscaler adds (a warning)."""
    if cfg.throughput.resource and missing_resource(cfg.throughput.resource):
        raise ConfigError(f"throughput.resource: no node of this Ray offers {cfg.throughput.resource!r}, so no trial "
                          "could be timed; start the meter node (cluster/aws.yaml keeps one running) or give the "
                          "resource the cluster declares (cluster/aws.yaml, cluster/kuberay: stilts-meter)")
    if cfg.search.trial_resource and missing_resource(cfg.search.trial_resource):
        print(f"warning: no node of this Ray offers {cfg.search.trial_resource!r} (search.trial_resource) yet; "
              "trials wait until such a node joins", flush=True)
