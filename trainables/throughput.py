"""The inference tokens/sec meter used by every trial.

Counts real tokens only (padding excluded), batches sequences by length to limit padding, runs
untimed warm-up passes, synchronises the device before reading the clock, and reports the median of
several timed passes with their coefficient of variation, the workload size and the hardware. Python's
garbage collector is off during the passes, as in ``timeit``: a full collection of a process that has
imported transformers and DeepSpeed takes ~170 ms on the CI VM (a toy pass is ~430 ms) and would land
in whichever pass it fell in.

With ``reference`` on, every pass is followed by a pass of a fixed reference encoder (random weights,
seeded; a fixed workload), and the meter also reports ``relative_speed``: the median over passes of
the model's tokens/sec over the reference's in the pass right after. A shared or virtual machine
runs in slow and fast spells of seconds; both passes fall in the same spell, so the ratio cancels
what the raw figure cannot (benchmarks/meter_stability.py: 2.5 % vs 4.2 % CV across measurements).
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from stiltsearch.trainables.device import rng_devices
from stiltsearch.trainables.settings import MeterSettings


@dataclass(frozen=True)
class Throughput:
    tokens_per_sec: float  # median over repeats of real tokens / second
    cv: float  # coefficient of variation of the repeats' tokens/sec (stdev / mean)
    tokens: int  # real tokens per pass
    sequences: int
    repeats: int
    device: str  # e.g. "cpu: Intel Xeon ..." or "cuda: NVIDIA H100"
    threads: int  # torch intra-op threads during the measurement
    relative_speed: float | None = None  # median of tokens/sec / the reference's tokens/sec; None: no reference
    latency_ms: float | None = None  # median wall ms of one sequence alone (batch 1), over LATENCY_SEQUENCES
    latency_p90_ms: float | None = None  # its 90th percentile

    def metrics(self) -> dict[str, Any]:
        return {f"throughput/{k}": v for k, v in asdict(self).items() if v is not None}


# The reference: a 2-layer, 128-wide XLM-R-shaped encoder (the toy's kind of work; ~0.17 s a pass
# here, a third of a default toy pass), fp32, on 256 sequences of 8-64 tokens. Changing any of it
# changes every relative_speed: compare relative speeds only between runs of one version of this module.
REFERENCE_SHAPE: dict[str, Any] = {"vocab_size": 1000, "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                   "intermediate_size": 512, "max_position_embeddings": 130}
REFERENCE_SEQUENCES = 256


def reference_pass(device: torch.device) -> Callable[[], float]:
    """A function that runs one pass of the reference and returns its tokens/sec."""
    from transformers import XLMRobertaConfig, XLMRobertaModel

    with torch.random.fork_rng(devices=rng_devices()):  # leave the caller's random streams as they were
        torch.manual_seed(0)
        encoder: Any = XLMRobertaModel(XLMRobertaConfig(**REFERENCE_SHAPE), add_pooling_layer=False)
        encoder = encoder.to(device).eval()
        lengths = torch.randint(8, 65, (REFERENCE_SEQUENCES,)).tolist()
        rows = [torch.randint(5, REFERENCE_SHAPE["vocab_size"], (n,)).tolist() for n in lengths]
    workload = [{k: v.to(device) for k, v in b.items()}
                for b in build_workload(rows, pad_id=1, batch_size=64, max_sequences=REFERENCE_SEQUENCES)]
    tokens = sum(lengths)
    return lambda: tokens / pass_seconds(lambda ids, mask: encoder(input_ids=ids, attention_mask=mask), workload, device)


def pass_seconds(forward: Callable[[torch.Tensor, torch.Tensor], Any], workload: list[dict[str, torch.Tensor]],
                 device: torch.device) -> float:
    """Wall seconds of one pass of ``forward(input_ids, attention_mask)`` over the workload, the
    device synchronised before the clock is read at either end."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for batch in workload:
        forward(batch["input_ids"], batch["attention_mask"])
    sync()
    return time.perf_counter() - start


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return f"cpu: {model} ({os.cpu_count()} logical cores)"


def build_workload(rows: Sequence[Sequence[int]], pad_id: int, *, batch_size: int,
                   max_sequences: int) -> list[dict[str, torch.Tensor]]:
    """Token-id rows -> padded batches of similar length. Rows are subsampled evenly above the cap."""
    if not rows:
        raise ValueError("empty throughput workload")
    if len(rows) > max_sequences:
        step = len(rows) / max_sequences
        rows = [rows[int(i * step)] for i in range(max_sequences)]
    ordered = sorted(rows, key=len)
    batches = []
    for start in range(0, len(ordered), batch_size):
        chunk = ordered[start:start + batch_size]
        width = len(chunk[-1])
        ids = torch.full((len(chunk), width), pad_id)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, row in enumerate(chunk):
            ids[i, :len(row)] = torch.tensor(row)
            mask[i, :len(row)] = 1
        batches.append({"input_ids": ids, "attention_mask": mask})
    return batches


# Batch-1 latency: this many sequences of the workload, evenly spaced over its lengths, each timed
# alone LATENCY_REPEATS times after one untimed pass (a serving request is one sequence, unpadded).
LATENCY_SEQUENCES = 32
LATENCY_REPEATS = 5


def single_sequences(workload: list[dict[str, torch.Tensor]], count: int) -> list[dict[str, torch.Tensor]]:
    """``count`` of the workload's sequences as batches of one, without their padding."""
    rows = [(b["input_ids"][i], b["attention_mask"][i]) for b in workload for i in range(len(b["input_ids"]))]
    step = max(1, len(rows) // count)
    picked = rows[::step][:count]
    return [{"input_ids": ids[mask.bool()][None], "attention_mask": mask[mask.bool()][None]} for ids, mask in picked]


def measure(forward: Callable[[torch.Tensor, torch.Tensor], Any], workload: list[dict[str, torch.Tensor]],
            settings: MeterSettings, device: torch.device = torch.device("cpu")) -> Throughput:
    """Time ``forward(input_ids, attention_mask)`` over the workload; see the module docstring."""
    workload = [{k: v.to(device) for k, v in b.items()} for b in workload]
    tokens = int(sum(int(b["attention_mask"].sum()) for b in workload))

    def one_pass() -> float:
        return pass_seconds(forward, workload, device)

    reference = reference_pass(device) if settings.reference else None
    rates, relative = [], []
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with torch.inference_mode():
            for _ in range(settings.warmup):
                one_pass()
                if reference:
                    reference()
            for _ in range(settings.repeats):
                rates.append(tokens / one_pass())
                if reference:
                    relative.append(rates[-1] / reference())
            singles = single_sequences(workload, LATENCY_SEQUENCES)
            pass_seconds(forward, singles, device)  # untimed: batch-1 shapes
            latencies = [1000 * pass_seconds(forward, [one], device) for _ in range(LATENCY_REPEATS) for one in singles]
    finally:
        if gc_was_enabled:
            gc.enable()
    mean = statistics.fmean(rates)
    cv = statistics.stdev(rates) / mean if len(rates) > 1 else 0.0
    return Throughput(tokens_per_sec=statistics.median(rates), cv=cv, tokens=tokens,
                      sequences=sum(len(b["input_ids"]) for b in workload), repeats=settings.repeats,
                      device=device_name(device), threads=torch.get_num_threads(),
                      relative_speed=statistics.median(relative) if relative else None,
                      latency_ms=statistics.median(latencies),
                      latency_p90_ms=statistics.quantiles(latencies, n=10)[-1] if len(latencies) > 1 else latencies[0])
