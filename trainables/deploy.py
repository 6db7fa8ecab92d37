"""Deployment knobs applied to a trained model: precision (incl. int8), recorded by the trial.

Layers kept and attention implementation act when the encoder is loaded (they also shape
fine-tuning, so the score is the deployed model's); max sequence length and batch size act on the
inputs. What is here acts after training, on the weights.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

PRECISIONS = ("fp32", "bf16", "fp16", "int8")
ATTENTION = ("sdpa", "eager")  # transformers' attn_implementation names


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
