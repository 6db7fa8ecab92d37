"""The training engine: every phase trains through one DeepSpeed engine loop.

One process is one DeepSpeed rank (its process group: :mod:`.processgroup`).
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stiltsearch.trainables import data
from stiltsearch.trainables.device import rng_devices
from stiltsearch.trainables.processgroup import ensure_distributed, world
from stiltsearch.trainables.settings import EngineSettings


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


def release(engine: Any) -> None:
    """Tear a finished DeepSpeed engine down so that reference counting alone frees it, its optimizer
    and its model.

    DeepSpeed 0.19.8's engine keeps lambdas over itself in its own ``__dict__`` and registers forward
    hooks on the module that close over the engine: engine -> module -> hook -> engine. Only
    ``gc.collect()`` frees such a cycle, and Python runs it when allocation counts say so, not when
    a GPU runs short: measured at XLM-R-base shape, every finished phase kept ~4.1 GiB until then.
    After ``destroy()`` (which lets the optimizer drop its own hooks) the hooks are removed and the
    engine forgets everything it held, so the model lives exactly as long as its caller holds it.
    """
    engine.destroy()
    for name in ("module_forward_pre_hook", "module_forward_post_hook"):
        handle = getattr(engine, name, None)
        if handle is not None:
            handle.remove()
    engine.__dict__.clear()


def _split(batch: dict[str, Any], parts: int) -> list[dict[str, Any]]:
    """``batch`` as ``parts`` micro-batches along its first dimension (non-tensors repeated)."""
    if parts == 1:
        return [batch]
    pieces = {k: torch.tensor_split(v, parts) if isinstance(v, torch.Tensor) else [v] * parts for k, v in batch.items()}
    return [{k: pieces[k][i] for k in batch} for i in range(parts)]


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
    multi-fidelity scheduler look at a trial part-way (``search/schedulers/rungs.py``) and let it go on
    without starting over. ``model(**batch)`` must return the loss; the trained weights are in
    ``model`` itself (fp32 training keeps the module in place; bf16 leaves it in bf16, and
    :meth:`master_state` has the fp32 master weights).

    A step is one optimizer update over ``batch_size`` examples (at most ``sequences`` sequences: a
    multiple-choice example is one per choice): with ``settings.micro_batch`` it is accumulated
    over ``ceil(sequences / micro_batch)`` forward/backward passes (DeepSpeed's
    gradient accumulation; the loss is scaled by it, so the update is the whole batch's). Batches
    are prepared ahead on CUDA (:func:`~.data.feed`); the loss is read back from the device once per logging
    window, not every step (reading it synchronises the GPU's stream).
    """

    def __init__(self, model: nn.Module, batches: Iterator[dict[str, Any]], *, steps: int, lr: float,
                 batch_size: int, settings: EngineSettings, log_every: int = 10,
                 progress: Callable[[int, float], None] | None = None, sequences: int | None = None,
                 rebuild: Callable[[], nn.Module] | None = None) -> None:
        if steps <= 0:
            raise ValueError(f"steps must be positive, got {steps}")
        ensure_distributed()
        quiet_deepspeed()
        self.steps, self.lr, self.settings, self.log_every, self.progress = steps, lr, settings, log_every, progress
        self.batch_size, self.sequences = batch_size, sequences
        self.accumulation = settings.accumulation(sequences or batch_size)
        self.rebuild = rebuild  # a fresh model of the same architecture, for a parked run to go on
        self.parked: Path | None = None
        self.model: Any = model  # what trains (None while parked): a new module after each park
        self.engine: Any = self._engine(model)
        self.device = self.engine.device
        self.batches = data.feed(batches, self.device)
        self.done = 0  # steps trained so far
        self.losses: list[float] = []
        self.window: list[torch.Tensor] = []  # this window's losses, on the device until it is logged
        self.tokens = 0
        self.seconds = 0.0

    def _engine(self, model: nn.Module) -> Any:
        import deepspeed

        settings = self.settings
        if settings.gradient_checkpointing:  # recompute activations in backward: less memory, ~1/3 more compute
            encoder: Any = getattr(model, "encoder", model)  # an HF model
            # transformers 5.23's name (gradient_checkpointing_enable warns that it goes in v6)
            encoder.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]  # biases and LayerNorm
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.lr)
        # A client optimizer: DeepSpeed's own (FusedAdam, cpu_adam) is a C++/CUDA op it compiles on first use.
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _linear_schedule(self.steps, settings.warmup_fraction))
        engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, lr_scheduler=scheduler,
                                               config=settings.deepspeed_config(self.batch_size, self.sequences))
        if world()[1] == 1 and settings.zero_stage == 0:
            # Alone, DeepSpeed would still flatten every gradient into one buffer (aten::cat) and
            # all-reduce it with itself each step: ~0.9 ms a step on the 4-layer toy
            # (benchmarks/training_engine.py's profile). The sum over one rank is the gradient.
            # (ZeRO stages keep the call: their optimizers hook into it.)
            engine.enable_backward_allreduce = False
        return engine

    def park(self, directory: Path) -> None:
        """Save the run's whole state (weights, fp32 master weights, optimizer moments, schedule:
        DeepSpeed's own checkpoint) under ``directory`` and free the engine and the model; the next
        :meth:`advance` builds them again (``rebuild``) and goes on exactly where this stopped
        (tests/test_memory.py). A multi-fidelity rung parks phase 2 while its targets train, so two
        engines never hold memory at once."""
        assert self.rebuild is not None, "a run parks only with a rebuild function"
        self.engine.save_checkpoint(str(directory), tag="parked", save_latest=False)
        release(self.engine)
        self.engine, self.model, self.parked = None, None, directory

    def _unpark(self) -> None:
        assert self.rebuild is not None and self.parked is not None
        with torch.random.fork_rng(devices=rng_devices()):  # building draws nothing from the run's stream
            model = self.rebuild()
        self.engine = self._engine(model)
        self.engine.load_checkpoint(str(self.parked), tag="parked", load_optimizer_states=True,
                                    load_lr_scheduler_states=True)
        shutil.rmtree(self.parked, ignore_errors=True)
        self.model, self.parked = model, None

    def advance(self, until: int) -> None:
        """Train steps ``done .. until - 1`` (``until`` is clipped to ``steps``)."""
        until = min(until, self.steps)
        if self.engine is None:
            self._unpark()
        engine = self.engine
        engine.train()
        start = time.perf_counter()
        for step in range(self.done, until):
            batch = next(self.batches)
            self.tokens += int(batch["attention_mask"].sum())
            batch = {k: v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v
                     for k, v in batch.items()}
            total = torch.zeros((), device=self.device)
            for micro in _split(batch, self.accumulation):
                loss = engine(**micro)
                engine.backward(loss)  # scaled by 1 / accumulation inside DeepSpeed
                engine.step()  # the optimizer steps at the last micro-batch only
                total += loss.detach().float()
            self.window.append(total / self.accumulation)
            if len(self.window) == self.log_every or step == self.steps - 1:
                self._log(step + 1)
        self.done = max(self.done, until)
        self.seconds += time.perf_counter() - start

    def _log(self, step: int) -> None:
        mean = float(torch.stack(self.window).mean())  # the one read-back (and stream sync) of the window
        if not math.isfinite(mean):
            raise FloatingPointError(f"training loss is {mean} at step {step}; lower the learning rate")
        self.losses.append(mean)
        self.window = []
        if self.progress:
            self.progress(step, mean)

    def master_state(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """``module``'s weights (a part of the trained model) in fp32 on the CPU: the optimizer's fp32
        master copy where the engine keeps one (bf16 training), else the weights themselves.

        DeepSpeed 0.19.8 keeps the master copy in two ways: ZeRO 1/2 map each parameter to its fp32
        fragment (``safe_get_full_fp32_param``); ZeRO 0 in bf16 runs ``FP16_UnfusedOptimizer``,
        whose ``fp32_groups`` hold one fp32 tensor per low-precision parameter, group by group.
        """
        from deepspeed.utils import safe_get_full_fp32_param

        state = {k: v.detach().float().cpu() for k, v in module.state_dict().items()}
        if not self.engine.bfloat16_enabled():
            return state
        optimizer = self.engine.optimizer
        paired = {id(low): high for lows, highs in zip(getattr(optimizer, "fp16_groups", []),
                                                      getattr(optimizer, "fp32_groups", []))
                  for low, high in zip(lows, highs)}
        for name, param in module.named_parameters():
            master = paired.get(id(param))
            if master is None:
                master = safe_get_full_fp32_param(param)
            if master is not None and name in state:
                state[name] = master.detach().float().cpu().reshape(param.shape)
        return state

    def log(self) -> TrainLog:
        """What has been trained so far (a partial logging window counts as one)."""
        losses = self.losses + ([float(torch.stack(self.window).mean())] if self.window else [])
        return TrainLog(losses=losses, log_every=self.log_every, seconds=self.seconds, tokens=self.tokens,
                        world_size=world()[1])

    def close(self) -> TrainLog:
        """The run's log; the engine, its optimizer and the prefetching thread are released
        (:func:`release`): the trained weights stay in ``model``."""
        log = self.log()
        self.batches.close()
        if self.engine is not None:
            release(self.engine)
        if self.parked is not None:
            shutil.rmtree(self.parked, ignore_errors=True)
        self.engine = None
        return log


def train(
    model: nn.Module,
    batches: Iterator[dict[str, Any]],
    *,
    steps: int,
    lr: float,
    batch_size: int,
    settings: EngineSettings,
    log_every: int = 10,
    progress: Callable[[int, float], None] | None = None,
) -> TrainLog:
    """Train ``model`` for ``steps`` steps in one go (a :class:`TrainingRun` to its end).
    ``progress(step, loss)`` is called every ``log_every`` steps."""
    run = TrainingRun(model, batches, steps=steps, lr=lr, batch_size=batch_size, settings=settings,
                      log_every=log_every, progress=progress)
    run.advance(steps)
    return run.close()
