"""A trial over several workers: a Ray Train ``TorchTrainer`` launched inside the Tune trial.

Ray Train V2 (the default in Ray 2.60) does not take a ``TorchTrainer`` as a Tune trainable (it
raises when given one), so the trial function starts one itself. Each worker runs the whole pipeline (:func:`run_trial`) as one DeepSpeed
rank over the process group Ray Train set up (gloo on CPUs, NCCL on GPUs): training is data
parallel, each rank on its own batches (workers on one node rendezvous through a file, not torch's
TCPStore: :mod:`.traingroup`); rank 0 alone writes the checkpoint directory, measures
tokens/sec (one worker, the deployment knobs) and writes the result, which the trial reads back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stiltsearch.spaces.knobs import Config
from stiltsearch.trainables.checkpoint import TrialCheckpoint
from stiltsearch.trainables.params import TrialParams
from stiltsearch.trainables.pipeline import run_trial
from stiltsearch.trainables.settings import TrialSettings
from stiltsearch.trainables.traingroup import SameNodeTorchConfig
from stiltsearch.trainables.trialdir import read_result


def run_distributed_trial(settings: TrialSettings, params: TrialParams, directory: Path) -> dict[str, Any]:
    """Run one trial on ``settings.workers`` Ray Train workers; returns rank 0's final metrics."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    # 0.99 of a CPU per thread: the trial itself holds 0.01 (Ray refuses 0), and the trial and its
    # workers must fit on nodes whose CPUs they fill exactly (2 workers on a 2-CPU node).
    per_worker = {"CPU": 0.99 * settings.threads,
                  **({"GPU": settings.gpus_per_worker} if settings.gpus_per_worker else {})}
    attempt = len(list((directory / "ray-train").glob("attempt-*"))) if (directory / "ray-train").exists() else 0
    store_dir = directory / "ray-train"
    store_dir.mkdir(parents=True, exist_ok=True)
    trainer = TorchTrainer(
        _worker, train_loop_config={"settings": settings, "params": params, "directory": str(directory)},
        torch_config=SameNodeTorchConfig(store_dir=str(store_dir)),  # workers on one node: no TCP rendezvous
        scaling_config=ScalingConfig(num_workers=settings.workers, use_gpu=settings.gpus_per_worker > 0,
                                     resources_per_worker=per_worker),
        run_config=RunConfig(name=f"attempt-{attempt}", storage_path=str(directory / "ray-train")),
    )
    trainer.fit()
    result = read_result(directory)
    if result is None:
        raise RuntimeError(f"the {settings.workers} workers ended without a result in {directory}")
    return result


def _worker(config: Config) -> None:
    import ray.train
    import torch

    from stiltsearch.trainables import quiet_libraries
    from stiltsearch.trainables.processgroup import from_rank0

    quiet_libraries()
    rank = ray.train.get_context().get_world_rank()
    checkpoint = TrialCheckpoint(config["directory"], writable=rank == 0)
    checkpoint.restore(from_rank0(checkpoint.state))  # every rank restores exactly what rank 0 saw
    torch.set_num_threads(config["settings"].threads)
    run_trial(config["settings"], config["params"], lambda metrics: None, checkpoint)
