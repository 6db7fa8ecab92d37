"""The deployment knobs applied: to the encoder as it is built, and to the trained weights.

Layers kept and attention implementation act when the encoder is built (:func:`build_encoder`;
they also shape fine-tuning, so the score is the deployed model's). Knobs declared with
``applies="weights"`` act after training, on a fresh copy of the trained model (:func:`deploy`), in
the order :data:`~stiltsearch.spaces.knobs.KNOBS` declares them; each is a function registered
here with :func:`~stiltsearch.trainables.params.applies`, ``(module, value, device) -> module``.
Max sequence length and batch size act on the inputs (``target.py``, ``pipeline.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from stiltsearch.spaces.knobs import KNOBS
from stiltsearch.trainables.device import trial_device
from stiltsearch.trainables.model import (
    MultiTaskModel,
    keep_layers,
    load_encoder,
    rebuild,
    weights,
)
from stiltsearch.trainables.params import APPLIERS, applies

PRECISIONS = ("fp32", "bf16", "fp16", "int8")


@applies("layers_kept", "attention")
def build_encoder(encoder_dir: str, knobs: Mapping[str, Any]) -> nn.Module:
    """The encoder of a phase-2 result as the trial deploys it: its attention implementation, and
    only its bottom ``layers_kept`` layers."""
    return keep_layers(load_encoder(encoder_dir, attention=knobs["attention"]), knobs["layers_kept"])


@applies("precision")
def apply_precision(model: nn.Module, precision: str, device: torch.device) -> nn.Module:
    """The model in its deployment precision; fp16 needs CUDA, int8 (dynamic) is CPU-only."""
    if precision == "fp32":
        return model.float()
    if precision == "bf16":
        return model.to(torch.bfloat16)
    if precision == "fp16":
        if device.type != "cuda":
            raise ValueError("precision fp16 needs a CUDA device; on CPU use bf16 or int8")
        return model.half()
    if precision == "int8":
        if device.type != "cpu":
            raise ValueError("precision int8 (dynamic quantization) runs on CPU only; on CUDA use bf16 or fp16")
        with warnings.catch_warnings():  # torch points eager quantization users at torchao
            warnings.simplefilter("ignore")
            # int8 weights, activations quantized on the fly per batch: the Linear layers (~all FLOPs)
            return torch.ao.quantization.quantize_dynamic(model.float(), {nn.Linear}, dtype=torch.qint8)
    raise ValueError(f"unknown precision {precision!r}; allowed: {', '.join(PRECISIONS)}")


@applies("compile")
def compile_encoder(model: Any, on: bool, device: torch.device) -> Any:
    """The encoder compiled by ``torch.compile`` (inductor; dynamic shapes, since the meter's batches
    differ in length). Only the encoder: ``torch.compile`` compiles ``forward``, and a task's logits
    are read through ``MultiTaskModel.logits``, which calls the encoder."""
    if on:
        model.encoder = torch.compile(model.encoder, dynamic=True)
    return model


def deploy(model: MultiTaskModel | dict[str, Any], knobs: Mapping[str, Any]) -> MultiTaskModel:
    """A fresh copy of the trained model (no training-time hooks) with every weights-stage knob
    applied, on the trial's device (:func:`~stiltsearch.trainables.device.trial_device`: its GPU
    when it has one), whatever device the weights are on now."""
    device = trial_device()
    data = model if isinstance(model, dict) else weights(model)
    deployed: nn.Module = rebuild(data, device)
    for knob in KNOBS:
        if knob.applies == "weights":
            deployed = APPLIERS[knob.name](deployed, knobs[knob.name], device)
    return deployed.eval()  # type: ignore[return-value]
