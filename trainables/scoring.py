"""The XTREME score, as google-research/xtreme aggregates it.

A task's score is the unweighted mean of its per-language scores; the overall score is the
unweighted mean over the tasks of the search's objective. Every score is on a 0-100 scale.
"""

from __future__ import annotations

import statistics
from typing import Mapping


def task_score(per_language: Mapping[str, float]) -> float:
    if not per_language:
        raise ValueError("a task score needs at least one language")
    return statistics.fmean(per_language.values())


def xtreme_score(per_task: Mapping[str, Mapping[str, float]]) -> float:
    """``{task: {language: score}}`` -> the overall score."""
    if not per_task:
        raise ValueError("the XTREME score needs at least one task")
    return statistics.fmean(task_score(langs) for langs in per_task.values())


def breakdown(per_task: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Flat metrics: ``eval/<task>/<lang>``, ``eval/<task>``, and ``xtreme_score``."""
    flat: dict[str, float] = {}
    for task, langs in per_task.items():
        flat |= {f"eval/{task}/{lang}": score for lang, score in langs.items()}
        flat[f"eval/{task}"] = task_score(langs)
    flat["xtreme_score"] = xtreme_score(per_task)
    return flat
