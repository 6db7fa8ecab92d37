"""TyDiQA-GoldP: extractive QA with the gold passage, 9 languages in one google/xtreme ``tydiqa``
config; a row's language is the prefix of its id ("arabic-..."). Trained on English SQuAD 1.1 as in
XTREME, whose test set is TyDi's validation split: it serves as both dev and test here."""

from __future__ import annotations

from stiltsearch.trainables.hub import Source
from stiltsearch.trainables.tasks.base import register
from stiltsearch.trainables.tasks.xquad import ZeroShotQA
from stiltsearch.trainables.types import Row

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

    def selects(self, row: Row, source: Source, language: str) -> bool:
        # TyDi's one config holds every language ("arabic-..." ids); its training set, SQuAD 1.1,
        # has hex ids and is English only, so it is not filtered
        return source.dataset != self.dataset or row["id"].startswith(PREFIX[language] + "-")
