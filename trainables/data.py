"""Batch streams: shuffled epochs over a task's examples, and a mixture across tasks."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from stiltsearch.trainables import heads
from stiltsearch.trainables.tasks.base import Example, Task


def batches(task: Task, examples: Sequence[Example], tokenizer: Any, *, batch_size: int, max_length: int,
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
    """Sample the task of each step with probability proportional to ``size ** (1 / temperature)``.

    temperature 1 is proportional sampling; larger temperatures flatten towards uniform (as in
    multilingual/multi-task training recipes, e.g. XLM-R's language sampling).
    """
    names = sorted(streams)
    weights = [sizes[n] ** (1.0 / temperature) for n in names]
    rng = random.Random(seed)
    while True:
        yield next(streams[rng.choices(names, weights)[0]])


def eval_batches(task: Task, examples: Sequence[Example], tokenizer: Any, *, batch_size: int,
                 max_length: int) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
    """Batches in order (indices kept) for prediction."""
    for start in range(0, len(examples), batch_size):
        index = list(range(start, min(start + batch_size, len(examples))))
        yield index, heads.encode(task.head, tokenizer, [examples[i] for i in index], max_length)
