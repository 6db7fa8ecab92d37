"""What a search will cost before it runs: tokens, FLOPs and GPU-hours per trial and for the search.

Pure arithmetic over the trial plan (:mod:`stiltsearch.search.planning.dryrun` builds it from the same step
rules a trial uses, ``trainables/plan.py``), the model's shape and a declared accelerator
(``search.accelerator``, one of :data:`ACCELERATORS`) at a stated model-FLOPs utilisation
(``search.mfu``). FLOPs per token follow the PaLM paper's appendix B: ``6 N + 12 L H S`` to train
(forward and backward; N the parameters outside the embedding matrix, L layers, H hidden size, S
sequence length) and ``2 N + 4 L H S`` to infer. Tokens are sequences x their maximum length: an
upper bound, since batches are padded to their longest sequence, not to the maximum.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Accelerator:
    name: str
    peak_bf16: float  # dense bf16 tensor-core FLOP/s (vendor datasheet, no sparsity)


# Vendor datasheet figures. The A10G's is the A10's (AWS does not publish the A10G's own, and its
# clocks are lower): an upper bound, so its GPU-hours are a lower bound.
ACCELERATORS: dict[str, Accelerator] = {a.name.lower(): a for a in (
    Accelerator("H200", 989e12), Accelerator("H100", 989e12), Accelerator("A100", 312e12),
    Accelerator("L40S", 362e12), Accelerator("A10G", 125e12), Accelerator("L4", 121e12),
)}


def accelerator_of(device_name: str) -> Accelerator | None:
    """The table's entry for a device name such as "NVIDIA H100 80GB HBM3" (None: not in the table)."""
    upper = device_name.upper()
    return next((a for a in ACCELERATORS.values() if a.name in upper), None)


@dataclass(frozen=True)
class Shape:
    """An encoder's size, as far as FLOPs go."""

    layers: int
    hidden: int
    intermediate: int

    @property
    def non_embedding(self) -> int:
        """Parameters in the transformer layers: attention's 4 H^2 and the MLP's 2 H I (biases and
        LayerNorms are under 0.1 % and left out)."""
        return self.layers * (4 * self.hidden ** 2 + 2 * self.hidden * self.intermediate)

    def kept(self, layers: int) -> Shape:
        return Shape(min(layers, self.layers), self.hidden, self.intermediate)

    def train_flops(self, tokens: float, length: int) -> float:
        return tokens * (6 * self.non_embedding + 12 * self.layers * self.hidden * length)

    def infer_flops(self, tokens: float, length: int) -> float:
        return tokens * (2 * self.non_embedding + 4 * self.layers * self.hidden * length)


# Shapes of common encoders, so that an estimate needs neither the hub nor a download.
KNOWN_SHAPES = {"xlm-roberta-base": Shape(12, 768, 3072), "xlm-roberta-large": Shape(24, 1024, 4096),
                "xlm-roberta-xl": Shape(36, 2560, 10240), "xlm-roberta-xxl": Shape(48, 4096, 16384),
                "bert-base-multilingual-cased": Shape(12, 768, 3072), "mdeberta-v3-base": Shape(12, 768, 3072)}


def model_shape(model: str) -> Shape | None:
    """An HF id's or a directory's shape: its local config.json, else the known table (None: unknown)."""
    config = Path(model).expanduser() / "config.json"
    if config.exists():
        raw = json.loads(config.read_text())
        return Shape(int(raw["num_hidden_layers"]), int(raw["hidden_size"]), int(raw["intermediate_size"]))
    return KNOWN_SHAPES.get(Path(model.rstrip("/")).name)


@dataclass(frozen=True)
class Work:
    """One stretch of computation of a trial: training (``train=True``) or a forward pass over data."""

    what: str  # "phase 2", "phase 3: xnli", "rung 1/9: xnli", "eval: xnli"
    sequences: float  # sequences processed (multiple-choice examples count one per choice)
    length: int  # tokens per sequence (the maximum)
    layers: int  # transformer layers it runs through (phase 3 and serving: the layers kept)
    train: bool = True

    @property
    def tokens(self) -> float:
        return self.sequences * self.length


@dataclass(frozen=True)
class Cost:
    tokens: float  # trained tokens (upper bound: padded to the maximum length)
    flops: float  # training and evaluation
    gpu_hours: float | None  # None: no accelerator declared

    def __add__(self, other: Cost) -> Cost:
        hours = None if self.gpu_hours is None or other.gpu_hours is None else self.gpu_hours + other.gpu_hours
        return Cost(self.tokens + other.tokens, self.flops + other.flops, hours)

    def scaled(self, factor: float) -> Cost:
        return Cost(self.tokens * factor, self.flops * factor,
                    None if self.gpu_hours is None else self.gpu_hours * factor)


def cost_of(work: Sequence[Work], shape: Shape, accelerator: Accelerator | None, mfu: float) -> Cost:
    flops = sum((shape.kept(w.layers).train_flops if w.train else shape.kept(w.layers).infer_flops)(w.tokens, w.length)
                for w in work)
    tokens = sum(w.tokens for w in work if w.train)
    hours = None if accelerator is None else flops / (accelerator.peak_bf16 * mfu) / 3600
    return Cost(tokens, flops, hours)


def search_cost(per_trial: Sequence[Cost], trials: int) -> Cost:
    """``trials`` trials at the mean of the sampled trials' costs."""
    mean = Cost(statistics.fmean(c.tokens for c in per_trial), statistics.fmean(c.flops for c in per_trial),
                None if any(c.gpu_hours is None for c in per_trial)
                else statistics.fmean(c.gpu_hours or 0.0 for c in per_trial))
    return mean.scaled(trials)


def amount(value: float, unit: str = "") -> str:
    """1.2e15 -> "1.2 P" (SI prefixes), with ``unit``."""
    for prefix, scale in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


def describe(cost: Cost, accelerator: Accelerator | None, mfu: float) -> str:
    text = f"{amount(cost.tokens)} tokens trained, {amount(cost.flops, 'FLOP')}"
    if cost.gpu_hours is None or accelerator is None:
        return text + " (no search.accelerator declared: no GPU-hours)"
    return text + f", {cost.gpu_hours:,.2f} {accelerator.name}-hours at {mfu:.0%} MFU"
