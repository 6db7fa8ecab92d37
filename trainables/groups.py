"""Targets that fine-tune the identical model, so that a trial trains it once and scores each of
them with it (XTREME's QA targets XQuAD, MLQA and TyDiQA all train on English SQuAD 1.1)."""

from __future__ import annotations

from stiltsearch.trainables.params import TrialParams
from stiltsearch.trainables.plan import train_languages
from stiltsearch.trainables.settings import Training
from stiltsearch.trainables.tasks.base import Task


def training_key(settings: Training, params: TrialParams, task: Task) -> str | None:
    """What a trained target's phase-3 model depends on besides the encoder: targets with equal keys
    fine-tune the identical model (XTREME's QA targets XQuAD, MLQA and TyDiQA all train on English
    SQuAD 1.1 with one recipe), so a trial trains it once and scores each of them with it. None: a
    target that trains nothing (BUCC, Tatoeba)."""
    if not task.kind.trained:
        return None
    recipe = settings.recipes.get(task.name)
    return repr((task.trains_on or task.name, task.head, task.labels, train_languages(params, task),
                 (recipe.epochs, recipe.batch_size) if recipe else None, settings.length(task, params.max_seq_length)))


def shared_groups(settings: Training, params: TrialParams, tasks: list[Task]) -> list[list[Task]]:
    """The targets in groups that train one model (:func:`training_key`), in order of first appearance."""
    groups: dict[str, list[Task]] = {}
    for task in tasks:
        groups.setdefault(training_key(settings, params, task) or f"untrained:{task.name}", []).append(task)
    return list(groups.values())
