"""MLQA: extractive QA in 7 languages, scored (as in XTREME) with question and context in the same
language (google/xtreme ``MLQA.<lang>.<lang>``) by MLQA's own evaluation (``metrics.mlqa``: Unicode
punctuation, articles per language, CJK characters as tokens); trained on English SQuAD 1.1."""

from __future__ import annotations

from stiltsearch.trainables.tasks.base import register
from stiltsearch.trainables.tasks.xquad import ZeroShotQA


@register
class MLQA(ZeroShotQA):
    name = "mlqa"
    languages = ("ar", "de", "en", "es", "hi", "vi", "zh")
    dataset = "google/xtreme"
    metric = "mlqa"

    def config(self, language: str) -> str:
        return f"MLQA.{language}.{language}"
