"""The XTREME score, as google-research/xtreme aggregates it.

A task's score is the unweighted mean of its per-language scores; the overall score is the
unweighted mean over the tasks of the search's objective (not over the groups). Every score is on a
0-100 scale. A QA task's per-language score is already (EM + F1) / 2 (:func:`metrics.squad`).

Worked example (tests/test_scoring.py): mBERT's row of the XTREME paper (Hu et al. 2020, Table 2)
gives back its published average, 59.6, from its nine published task scores.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence


def task_score(per_language: Mapping[str, float]) -> float:
    if not per_language:
        raise ValueError("a task score needs at least one language")
    return statistics.fmean(per_language.values())


def xtreme_score(per_task: Mapping[str, Mapping[str, float]]) -> float:
    """``{task: {language: score}}`` -> the overall score."""
    if not per_task:
        raise ValueError("the XTREME score needs at least one task")
    return statistics.fmean(task_score(langs) for langs in per_task.values())


def non_english(per_language: Mapping[str, float]) -> float | None:
    """The mean over a task's languages other than English (None: it has none)."""
    others = [score for lang, score in per_language.items() if lang != "en"]
    return statistics.fmean(others) if others else None


def breakdown(per_task: Mapping[str, Mapping[str, float]],
              groups: Mapping[str, str | Sequence[str]] | None = None, nli: str | None = None) -> dict[str, float]:
    """Flat metrics: ``eval/<task>/<lang>``, ``eval/<task>``, ``eval/group/<group>`` (the mean of its
    tasks' scores, when ``groups`` maps tasks to a group or several: XTREME-R counts XCOPA in two),
    ``xtreme_score``, and with ``nli`` (the NLI target's name) ``non_english_nli``."""
    flat: dict[str, float] = {}
    for task, langs in per_task.items():
        flat |= {f"eval/{task}/{lang}": score for lang, score in langs.items()}
        flat[f"eval/{task}"] = task_score(langs)
    member_of = {task: (g,) if isinstance(g, str) else tuple(g) for task, g in (groups or {}).items()}
    for group in sorted({g for gs in member_of.values() for g in gs}):
        members = [flat[f"eval/{t}"] for t in per_task if group in member_of.get(t, ())]
        if members:
            flat[f"eval/group/{group}"] = statistics.fmean(members)
    flat["xtreme_score"] = xtreme_score(per_task)
    if nli is not None and nli in per_task and (value := non_english(per_task[nli])) is not None:
        flat["non_english_nli"] = value
    return flat
