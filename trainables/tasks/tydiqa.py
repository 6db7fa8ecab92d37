"""TyDiQA-GoldP: extractive QA with the gold passage, 9 languages in one google/xtreme ``tydiqa``
config; a row's language is the prefix of its id ("arabic-..."). Trained on English SQuAD 1.1 as in
XTREME, whose test set is TyDi's validation split: it serves as both dev and test here."""

from __future__ import annotations

from typing import Any

from stiltsearch.trainables.tasks.base import SpanExample, register
from stiltsearch.trainables.tasks.squad import span_example
from stiltsearch.trainables.tasks.xquad import ZeroShotQA

PREFIX = {"ar": "arabic", "bn": "bengali", "en": "english", "fi": "finnish", "id": "indonesian", "ko": "korean",
          "ru": "russian", "sw": "swahili", "te": "telugu"}


@register
class TyDiQA(ZeroShotQA):
    name = "tydiqa"
    languages = tuple(PREFIX)
    dataset = "google/xtreme"
    split_names = {"train": "train", "dev": "validation", "test": "validation"}

    def config(self, language: str) -> str:
        return "tydiqa"

    def convert(self, row: dict[str, Any], features: Any, language: str) -> SpanExample | None:
        return span_example(row) if row["id"].startswith(PREFIX[language] + "-") else None
