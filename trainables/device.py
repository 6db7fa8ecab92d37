"""Where a trial computes: its GPU when Ray gave it one, else the CPU.

Ray sets ``CUDA_VISIBLE_DEVICES`` for a trial that asked for a GPU, so the trial's GPU is CUDA
device 0 of its process (DeepSpeed's engine, at local rank 0, trains there too). Every phase, the
evaluation, the retrieval embeddings and the deployed model are put here, so no GPU trial embeds
on its host's CPU (at XLM-R-Large shape a BUCC scoring takes hours on a CPU, seconds on an H100).
"""

from __future__ import annotations

import torch


def trial_device() -> torch.device:
    """The device this process trains, evaluates and deploys on."""
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def rng_devices() -> list[int]:
    """The CUDA devices whose random state ``torch.random.fork_rng`` must fork along with the
    CPU's (none on a CPU): forking only the CPU's would leave the GPU's generator advanced."""
    return [torch.cuda.current_device()] if torch.cuda.is_available() else []
