"""Batch streams: shuffled epochs over a task's examples, a mixture across tasks, and batches
prepared ahead of the training step."""

from __future__ import annotations

import queue
import random
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from stiltsearch.trainables import heads, plan
from stiltsearch.trainables.tasks.base import Example, Task
from stiltsearch.trainables.types import Tokenizer


def batches(task: Task, examples: Sequence[Example], tokenizer: Tokenizer, *, batch_size: int, max_length: int,
            seed: int) -> Iterator[dict[str, Any]]:
    """Endless shuffled epochs of encoded batches, each tagged with its task name."""
    if not examples:
        raise ValueError(f"task {task.name!r} has no training examples")
    rng = random.Random(seed)
    order = list(range(len(examples)))
    batch_size = min(batch_size, len(examples))  # a set smaller than one batch is one batch, not none
    while True:
        rng.shuffle(order)
        for start in range(0, len(order) - batch_size + 1, batch_size):  # drop the ragged last batch
            batch = heads.encode(task.head, tokenizer, [examples[i] for i in order[start:start + batch_size]], max_length)
            batch.pop("word_index", None), batch.pop("n_words", None)
            yield {"task": task.name, **batch}


def mixture(streams: dict[str, Iterator[dict[str, Any]]], sizes: dict[str, int], *, temperature: float,
            seed: int) -> Iterator[dict[str, Any]]:
    """Sample the task of each step by :func:`~.plan.mixture_weights` (``size ** (1 / temperature)``)."""
    names = sorted(streams)
    chance = plan.mixture_weights(sizes, temperature)
    weights = [chance[n] for n in names]
    rng = random.Random(seed)
    while True:
        yield next(streams[rng.choices(names, weights)[0]])


def eval_batches(task: Task, examples: Sequence[Example], tokenizer: Tokenizer, *, batch_size: int,
                 max_length: int) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
    """Batches in order (indices kept) for prediction."""
    for start in range(0, len(examples), batch_size):
        index = list(range(start, min(start + batch_size, len(examples))))
        yield index, heads.encode(task.head, tokenizer, [examples[i] for i in index], max_length)


class Prefetch:
    """Batches prepared ahead of the step, on a background thread: the next ``depth`` batches are
    built (tokenized, padded) and, for a CUDA device, copied into pinned memory while the GPU
    trains on the current one, so that the host-to-device copy can be ``non_blocking``.

    Tokenizing (HF's Rust tokenizers) and torch's kernels release the GIL, so the thread overlaps
    with the step; ``close()`` stops it. The stream itself is consumed by the thread alone.
    """

    def __init__(self, batches: Iterator[dict[str, Any]], depth: int = 2, pin: bool = False) -> None:
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=max(1, depth))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._fill, args=(batches, pin), daemon=True, name="stilts-prefetch")
        self.thread.start()

    def _fill(self, batches: Iterator[dict[str, Any]], pin: bool) -> None:
        try:
            for batch in batches:
                if pin:
                    batch = {k: v.pin_memory() if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
                if not self._put(("batch", batch)):
                    return
            self._put(("end", None))
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, raised there
            self._put(("error", error))

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Prefetch:
        return self

    def __next__(self) -> dict[str, Any]:
        kind, value = self.queue.get()
        if kind == "error":
            raise value
        if kind == "end":
            raise StopIteration
        return value

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


class Inline:
    """Batches built inside ``next``, on the training thread: the feed on a CPU, where a preparing
    thread would compete for the cores the step itself runs on (a toy search runs one trial per
    core) and for the GIL that a small model's Python-heavy step holds most of the time."""

    def __init__(self, batches: Iterator[dict[str, Any]]) -> None:
        self.batches = batches

    def __iter__(self) -> Inline:
        return self

    def __next__(self) -> dict[str, Any]:
        return next(self.batches)

    def close(self) -> None:
        pass


def feed(batches: Iterator[dict[str, Any]], device: torch.device) -> Prefetch | Inline:
    """How a training step gets its batches: prepared ahead on a thread and pinned for a CUDA
    device (the CPU prepares while the GPU computes: benchmarks/step_overlap.py), built in the step on a CPU."""
    return Prefetch(batches, pin=True) if device.type == "cuda" else Inline(batches)

