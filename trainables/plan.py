"""How long each phase of a trial trains: per-task recipes (epochs, batch size) or a fixed step budget.

Pure arithmetic, shared by the trial itself (:mod:`.pipeline`) and the dry run, so that what the dry
run prints is what a trial will do. Row counts come from the loaded data in a trial and from each
task's published training-set size (``train_rows``) in a dry run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stiltsearch.trainables.tasks.base import HEAD_KINDS

if TYPE_CHECKING:
    from stiltsearch.trainables.params import TrialParams
    from stiltsearch.trainables.tasks.base import Task


@dataclass(frozen=True)
class Recipe:
    """A task's training recipe. ``epochs`` None: the phase's fixed step budget is used instead."""

    epochs: float | None = None  # passes over the task's training rows
    batch_size: int | None = None  # None: training.batch_size


def sequences_per_example(task: Task) -> int:
    """Sequences an example puts through the encoder: a multiple-choice example one per choice."""
    return len(task.labels) if task.head == "choice" else 1


def max_length(head: str, qa_max_length: int | None, phase_length: int) -> int:
    """Tokens per sequence for a task with ``head`` in a phase whose length for other tasks is
    ``phase_length``: extractive QA has its own when ``qa_max_length`` is set."""
    return qa_max_length if HEAD_KINDS[head].qa_length and qa_max_length else phase_length


def scored_languages(available: tuple[str, ...], chosen: tuple[str, ...] | None) -> tuple[str, ...]:
    """The languages a target is scored on: those with the split, narrowed to ``chosen`` if given."""
    return available if chosen is None else tuple(lang for lang in available if lang in chosen)


def batch_size(recipes: Mapping[str, Recipe], task: str, default: int) -> int:
    recipe = recipes.get(task)
    return recipe.batch_size if recipe is not None and recipe.batch_size else default


def task_steps(recipes: Mapping[str, Recipe], task: str, rows: int, default_batch: int) -> int | None:
    """``ceil(epochs * rows / batch)`` for a task with an epoch recipe, else None."""
    recipe = recipes.get(task)
    if recipe is None or recipe.epochs is None:
        return None
    return max(1, math.ceil(recipe.epochs * rows / batch_size(recipes, task, default_batch)))


def phase2_steps(recipes: Mapping[str, Recipe], rows: Mapping[str, int], default_batch: int, budget: int) -> int:
    """Phase 2's steps in all: the sum of the chosen tasks' recipe steps when every one has an epoch
    recipe (jiant's multi-task runs are the sum of single-task runs), else the fixed ``budget``."""
    steps = [task_steps(recipes, task, n, default_batch) for task, n in rows.items()]
    if steps and all(s is not None for s in steps):
        return sum(s for s in steps if s is not None)
    return budget


def mixture_weights(sizes: Mapping[str, int], temperature: float) -> dict[str, float]:
    """Phase 2's multi-task sampling: each task's weight (unnormalised) of being a step's task,
    ``size ** (1 / temperature)`` (1: proportional to its training rows; larger flattens toward
    uniform, as XLM-R samples languages). The trial samples with these; the dry run prices with them."""
    return {name: size ** (1.0 / temperature) for name, size in sizes.items()}


def phase3_steps(recipes: Mapping[str, Recipe], task: str, rows: int, default_batch: int, budget: int) -> int:
    """A target's fine-tuning steps: its recipe's epochs over its training rows (English plus the
    chosen translate-train languages), else the fixed per-target ``budget``."""
    steps = task_steps(recipes, task, rows, default_batch)
    return budget if steps is None else steps


def train_languages(params: TrialParams, task: Task) -> tuple[str, ...]:
    """English plus the trial's translate-train languages that ``task`` has training data in."""
    return ("en",) + tuple(lang for lang in params.train_languages if lang in task.train_languages)
