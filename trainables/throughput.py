"""The inference tokens/sec meter used by every trial.

Counts real tokens only (padding excluded), batches sequences by length to limit padding, runs
untimed warm-up passes, synchronises the device before reading the clock, and reports the median of
several timed passes with their coefficient of variation, the workload size and the hardware. Python's
garbage collector is off during the passes, as in ``timeit``: a full collection of a process that has
imported transformers and DeepSpeed takes ~170 ms on the CI VM (a toy pass is ~430 ms) and would land
in whichever pass it fell in.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import torch


@dataclass(frozen=True)
class MeterSettings:
    warmup: int = 2  # untimed passes over the workload (allocator, caches, lazy init)
    repeats: int = 15  # timed passes; the median is the figure (benchmarks/meter_stability.py)
    max_sequences: int = 768  # cap on the workload so a measurement takes seconds, not minutes


@dataclass(frozen=True)
class Throughput:
    tokens_per_sec: float  # median over repeats of real tokens / second
    cv: float  # coefficient of variation of the repeats' tokens/sec (stdev / mean)
    tokens: int  # real tokens per pass
    sequences: int
    repeats: int
    device: str  # e.g. "cpu: Intel Xeon ..." or "cuda: NVIDIA H100"
    threads: int  # torch intra-op threads during the measurement

    def metrics(self) -> dict[str, Any]:
        return {f"throughput/{k}": v for k, v in asdict(self).items()}


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


def measure(forward: Callable[[torch.Tensor, torch.Tensor], Any], workload: list[dict[str, torch.Tensor]],
            settings: MeterSettings, device: torch.device = torch.device("cpu")) -> Throughput:
    """Time ``forward(input_ids, attention_mask)`` over the workload; see the module docstring."""
    workload = [{k: v.to(device) for k, v in b.items()} for b in workload]
    tokens = int(sum(int(b["attention_mask"].sum()) for b in workload))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def one_pass() -> float:
        sync()
        start = time.perf_counter()
        for batch in workload:
            forward(batch["input_ids"], batch["attention_mask"])
        sync()
        return time.perf_counter() - start

    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with torch.inference_mode():
            for _ in range(settings.warmup):
                one_pass()
            rates = [tokens / one_pass() for _ in range(settings.repeats)]
    finally:
        if gc_was_enabled:
            gc.enable()
    mean = statistics.fmean(rates)
    cv = statistics.stdev(rates) / mean if len(rates) > 1 else 0.0
    return Throughput(tokens_per_sec=statistics.median(rates), cv=cv, tokens=tokens,
                      sequences=sum(len(b["input_ids"]) for b in workload), repeats=settings.repeats,
                      device=device_name(device), threads=torch.get_num_threads())
