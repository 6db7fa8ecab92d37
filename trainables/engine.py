"""The training engine: every phase trains through one DeepSpeed engine loop.

One process is one DeepSpeed rank. On a single process (a Tune trial on one CPU or GPU) we set up a
world of size 1 over gloo on a free port of our own, because concurrent trials on one node must not
share a ``MASTER_PORT``. Under Ray Train the process group already exists and is reused.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from stiltsearch.trainables.settings import EngineSettings

__all__ = ["EngineSettings", "TrainLog", "TrainingRun", "ensure_distributed", "from_rank0", "train", "world"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_distributed() -> None:
    """Initialise a torch.distributed world for DeepSpeed once per process.

    Under Ray Train the group already exists and is reused. Otherwise this process is alone: it gets
    a world of one on a fresh free port, whatever ``MASTER_PORT``/``WORLD_SIZE`` it inherited. (A
    driver that trained in-process would otherwise hand its port to every Ray worker it starts, and
    concurrent trials would collide with EADDRINUSE.)
    """
    import deepspeed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return
    # deepspeed.comm's attribute "torch" is the torch package, so `import deepspeed.comm.torch as`
    # would bind that; the module itself comes from importlib
    ds_comm: Any = importlib.import_module("deepspeed.comm.torch")
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), RANK="0", WORLD_SIZE="1",
                      LOCAL_RANK="0")
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    # DeepSpeed's torch backend compiles its shared-memory all-reduce (the C++ op
    # "deepspeed_shm_comm") the first time a process group is made on a CPU: 42 s on 2 cores with an
    # empty TORCH_EXTENSIONS_DIR, and a few seconds to load in every later trial process. A world of
    # one never all-reduces across processes, so it is not built here; a Ray Train group of several
    # ranks (which returns above and lets deepspeed.initialize make the backend) still gets it.
    build = ds_comm.build_shm_op
    ds_comm.build_shm_op = lambda: None
    try:
        deepspeed.init_distributed(dist_backend=backend, verbose=False)
    finally:
        ds_comm.build_shm_op = build


def world() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) unless a multi-worker group already exists."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def from_rank0(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (a decision all ranks must share); as is on one process."""
    if world()[1] == 1:
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def quiet_deepspeed() -> None:
    """DeepSpeed logs every engine's config at INFO; keep trial output readable."""
    from deepspeed.utils import logger as ds_logger

    ds_logger.setLevel(logging.WARNING)


def _linear_schedule(steps: int, warmup_fraction: float) -> Callable[[int], float]:
    warmup = max(1, int(steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (steps - step) / max(1, steps - warmup))

    return factor


@dataclass
class TrainLog:
    losses: list[float]  # mean loss over each logging window, in order
    log_every: int  # steps per logging window
    seconds: float  # wall time of the loop, excluding engine setup
    tokens: int  # non-padding tokens trained on (this rank's)
    world_size: int = 1  # DeepSpeed ranks that trained together (data parallel)

    @property
    def tokens_per_sec(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def metrics(self, prefix: str) -> dict[str, Any]:
        """As a trial reports it under ``prefix`` ("phase2", "phase3/<task>")."""
        return {f"{prefix}/loss_first": self.losses[0], f"{prefix}/loss_last": self.losses[-1],
                f"{prefix}/loss_curve": self.losses, f"{prefix}/log_every": self.log_every,
                f"{prefix}/seconds": self.seconds, f"{prefix}/train_tokens_per_sec": self.tokens_per_sec,
                f"{prefix}/world_size": self.world_size}


class TrainingRun:
    """One DeepSpeed engine that trains ``model`` for up to ``steps`` steps, in segments.

    The learning-rate schedule (linear warmup, then linear decay to 0) is defined over the whole
    ``steps``, so training to step ``k`` and later on to ``steps`` is step for step the run that
    goes to ``steps`` at once: a segment is a prefix of the full run. That is what lets a
    multi-fidelity scheduler look at a trial part-way (``search/moasha.py``) and let it go on
    without starting over. ``model(**batch)`` must return the loss; the trained weights are in
    ``model`` itself (fp32 training keeps the module in place; bf16 leaves it in bf16).
    """

    def __init__(self, model: nn.Module, batches: Iterator[dict[str, Any]], *, steps: int, lr: float,
                 micro_batch_size: int, settings: EngineSettings, log_every: int = 10,
                 progress: Callable[[int, float], None] | None = None) -> None:
        import deepspeed

        if steps <= 0:
            raise ValueError(f"steps must be positive, got {steps}")
        ensure_distributed()
        quiet_deepspeed()
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]  # biases and LayerNorm
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=lr)
        # A client optimizer: DeepSpeed's own (FusedAdam, cpu_adam) is a C++/CUDA op it compiles on first use.
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _linear_schedule(steps, settings.warmup_fraction))
        self.engine, _, _, _ = deepspeed.initialize(
            model=model, optimizer=optimizer, lr_scheduler=scheduler, config=settings.deepspeed_config(micro_batch_size)
        )
        if world()[1] == 1 and settings.zero_stage == 0:
            # Alone, DeepSpeed would still flatten every gradient into one buffer (aten::cat) and
            # all-reduce it with itself each step: ~0.9 ms a step on the 4-layer toy
            # (benchmarks/training_engine.py's profile). The sum over one rank is the gradient.
            # (ZeRO stages keep the call: their optimizers hook into it.)
            self.engine.enable_backward_allreduce = False
        self.batches, self.steps, self.log_every, self.progress = batches, steps, log_every, progress
        self.done = 0  # steps trained so far
        self.losses: list[float] = []
        self.window: list[float] = []
        self.tokens = 0
        self.seconds = 0.0

    def advance(self, until: int) -> None:
        """Train steps ``done .. until - 1`` (``until`` is clipped to ``steps``)."""
        until = min(until, self.steps)
        engine = self.engine
        engine.train()
        start = time.perf_counter()
        for step in range(self.done, until):
            batch = next(self.batches)
            self.tokens += int(batch["attention_mask"].sum())
            batch = {k: v.to(engine.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            loss = engine(**batch)
            engine.backward(loss)
            engine.step()
            self.window.append(float(loss.detach()))
            if len(self.window) == self.log_every or step == self.steps - 1:
                self._log(step + 1)
        self.done = max(self.done, until)
        self.seconds += time.perf_counter() - start

    def _log(self, step: int) -> None:
        mean = sum(self.window) / len(self.window)
        if not math.isfinite(mean):
            raise FloatingPointError(f"training loss is {mean} at step {step}; lower the learning rate")
        self.losses.append(mean)
        self.window = []
        if self.progress:
            self.progress(step, mean)

    def log(self) -> TrainLog:
        """What has been trained so far (a partial logging window counts as one)."""
        losses = self.losses + ([sum(self.window) / len(self.window)] if self.window else [])
        return TrainLog(losses=losses, log_every=self.log_every, seconds=self.seconds, tokens=self.tokens,
                        world_size=world()[1])

    def close(self) -> TrainLog:
        log = self.log()
        self.engine.destroy()
        return log


def train(
    model: nn.Module,
    batches: Iterator[dict[str, Any]],
    *,
    steps: int,
    lr: float,
    micro_batch_size: int,
    settings: EngineSettings,
    log_every: int = 10,
    progress: Callable[[int, float], None] | None = None,
) -> TrainLog:
    """Train ``model`` for ``steps`` steps in one go (a :class:`TrainingRun` to its end).
    ``progress(step, loss)`` is called every ``log_every`` steps."""
    run = TrainingRun(model, batches, steps=steps, lr=lr, micro_batch_size=micro_batch_size, settings=settings,
                      log_every=log_every, progress=progress)
    run.advance(steps)
    return run.close()
