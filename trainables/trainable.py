"""The Ray Tune trainable: a thin seam between Ray's session API and :func:`run_trial`.

Every Ray call a trial makes is here (Ray's reporting API has moved between versions: in Ray 2.60 a
function trainable reports with ``ray.tune.report(metrics)``, and ``ray.train.report`` is Ray
Train's), so the pipeline itself stays plain Python.

A trial's checkpoint is its own directory (:mod:`stiltsearch.trainables.checkpoint`), not a Ray
``Checkpoint``: the same directory serves Ray's restart of a trial whose worker died
(``FailureConfig``) and ``stiltsearch resume`` after the driver died, when Ray's own record of the
trial is gone. The search's searcher puts the trial's Optuna number in its config.
"""

from __future__ import annotations

import dataclasses
import functools
import tempfile
from pathlib import Path
from typing import Any

from stiltsearch.spaces.knobs import Config
from stiltsearch.trainables import quiet_libraries
from stiltsearch.trainables.params import NOT_KNOBS, NUMBER_KEY, SEED_KEY, TrialParams
from stiltsearch.trainables.pipeline import measure_here, run_trial
from stiltsearch.trainables.settings import MeterSettings, TrialSettings
from stiltsearch.trainables.throughput import Throughput
from stiltsearch.trainables.types import Metrics


def stilts_trainable(config: Config, settings: TrialSettings) -> None:
    """Tune function trainable: continues from the trial's checkpoint directory if it has one."""
    import ray
    from ray import tune

    quiet_libraries()
    checkpoint = settings.checkpoint(int(config[NUMBER_KEY])) if NUMBER_KEY in config else None
    if SEED_KEY in config:  # a confirmation: its own training seed, and a speed measured again; no
        # rung is scored, since no scheduler stops a confirmation (search/launch/tuner.py)
        settings = dataclasses.replace(settings, seed=int(config[SEED_KEY]), measure_again=True, rungs=())
    params = TrialParams.from_config(config, ignore=NOT_KNOBS)
    meter: dict[str, Any] = {}
    if settings.meter.resource is not None:
        meter = {"meter": functools.partial(_routed_meter, settings.meter.resource, settings.threads,
                                            settings.gpus_per_worker > 0),
                 "meter_policy": f"routed: every measurement runs on a node with Ray resource "
                                 f"'{settings.meter.resource}'"}
    node = ray.get_runtime_context().get_node_id()  # which Ray node ran it (hosts may hold several)

    def report(metrics: Metrics) -> None:
        tune.report({**metrics, "trial/node_id": node})

    try:
        if settings.workers > 1:
            from stiltsearch.trainables.distributed import run_distributed_trial

            directory = checkpoint.directory if checkpoint is not None and checkpoint.directory else Path(tempfile.mkdtemp())
            report(run_distributed_trial(settings, params, directory))
        else:
            run_trial(settings, params, report, checkpoint, **meter)
    except (SystemExit, KeyboardInterrupt):  # Ray stopping the trial (the search was interrupted)
        if checkpoint is not None:
            checkpoint.log("stopped")
        raise
    except BaseException as error:  # the ledger keeps the reason; Ray still gets the exception
        if checkpoint is not None:
            checkpoint.log_failure(error)
        raise


def _routed_meter(resource: str, threads: int, gpu: bool, model: Any, params: TrialParams, task: str, workload: list,
                  meter: MeterSettings) -> Throughput:
    """Measure in a Ray task pinned to ``resource`` (the model and workload travel by object store).

    The task asks for no CPU: the trial that waits on it lends its own (asking for one could
    deadlock a node whose CPUs are all held by trials). One unit of the custom resource per node
    means measurements on a node never overlap. With GPU trials (``gpu``) it holds a GPU of its
    own: Ray 2.60 leaves ``CUDA_VISIBLE_DEVICES`` alone for a task that asks for no GPU, so such a
    task sees every GPU of its node and times the model on the first, which a trial may be training
    on at the time. ``search.trial_resource`` keeps trials off the meter's GPU (search/config/schema.py).
    """
    import ray

    remote = ray.remote(**meter_options(resource, gpu))(_measure_in_task)
    return ray.get(remote.remote(model, params, task, workload, meter, threads))


def meter_options(resource: str, gpu: bool) -> dict[str, Any]:
    """The routed meter task's Ray options: one unit of ``resource``, no CPU, a GPU when ``gpu``."""
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    # Tune runs a trial in a placement group that would capture this task and never offer the
    # resource; placement_group=None schedules it outside.
    outside = PlacementGroupSchedulingStrategy(placement_group=None)  # type: ignore[arg-type]  # None is documented
    return {"num_cpus": 0, "num_gpus": 1 if gpu else 0, "resources": {resource: 1}, "scheduling_strategy": outside}


def _measure_in_task(model: Any, params: TrialParams, task: str, workload: list, meter: MeterSettings,
                     threads: int) -> Throughput:
    import torch

    torch.set_num_threads(threads)
    return measure_here(model, params, task, workload, meter)
