"""The Ray Tune trainable: a thin seam between Ray's session API and :func:`run_trial`.

Every Ray call a trial makes is here (Ray's reporting API has moved between versions; see
notes/stack.md for the 2.60 names), so the pipeline itself stays plain Python.
"""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path
from typing import Any

from stiltsearch.trainables import quiet_libraries
from stiltsearch.trainables.pipeline import TrialParams, TrialSettings, measure_here, run_trial
from stiltsearch.trainables.throughput import MeterSettings, Throughput

STATE_FILE = "stilts_state.json"  # the phase checkpoint: which phase is done and where its result is


def stilts_trainable(config: dict[str, Any], settings: TrialSettings) -> None:
    """Tune function trainable: resumes from the last phase checkpoint if Ray restarted it."""
    from ray import tune

    quiet_libraries()
    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            resume = json.loads((Path(directory) / STATE_FILE).read_text())

    def report(metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
        if state is None:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as directory:
            (Path(directory) / STATE_FILE).write_text(json.dumps(state))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))

    if settings.meter_resource is None:
        run_trial(settings, TrialParams.from_config(config), report, resume)
        return
    policy = f"routed: every measurement runs on a node with Ray resource '{settings.meter_resource}'"
    run_trial(settings, TrialParams.from_config(config), report, resume,
              meter=functools.partial(_routed_meter, settings.meter_resource, settings.threads), meter_policy=policy)


def _routed_meter(resource: str, threads: int, model: Any, precision: str, task: str, workload: list,
                  meter: MeterSettings) -> Throughput:
    """Measure in a Ray task pinned to ``resource`` (the model and workload travel by object store).

    The task asks for no CPU: the trial that waits on it lends its own (asking for one could
    deadlock a node whose CPUs are all held by trials). One unit of the custom resource per node
    means measurements on a node never overlap.
    """
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    # Tune runs a trial in a placement group that would capture this task and never offer the
    # resource; placement_group=None schedules it outside.
    outside = PlacementGroupSchedulingStrategy(placement_group=None)
    remote = ray.remote(num_cpus=0, resources={resource: 1}, scheduling_strategy=outside)(_measure_in_task)
    return ray.get(remote.remote(model, precision, task, workload, meter, threads))


def _measure_in_task(model: Any, precision: str, task: str, workload: list, meter: MeterSettings,
                     threads: int) -> Throughput:
    import torch

    torch.set_num_threads(threads)
    return measure_here(model, precision, task, workload, meter)
