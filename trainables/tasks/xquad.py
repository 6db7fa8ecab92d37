"""XQuAD: SQuAD 1.1 dev questions professionally translated into 10 languages (google/xtreme
``XQuAD.<lang>``, no ``title`` column). Trained on English SQuAD 1.1, as XTREME does. XQuAD has a
single split, so it is both the dev and the test set: its scores in a search are test scores."""

from __future__ import annotations

from stiltsearch.trainables.hub import Source
from stiltsearch.trainables.tasks.base import SpanExample, register
from stiltsearch.trainables.tasks.real import SQUAD_TRAIN, SQUAD_TRAIN_ROWS, HubTask
from stiltsearch.trainables.tasks.squad import span_example
from stiltsearch.trainables.types import Features, Row

LANGUAGES: tuple[str, ...] = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")


class ZeroShotQA(HubTask):
    """An XTREME QA target: trained on SQuAD 1.1 (English), evaluated in each language."""

    head = "span"
    labels = ("start", "end")
    metric = "squad"
    train_rows = SQUAD_TRAIN_ROWS
    trains_on = "squad-1.1"  # XQuAD, MLQA and TyDiQA-GoldP: one fine-tuned model per trial

    def sources(self, split: str, language: str) -> list[Source]:
        if split == "train":
            return [SQUAD_TRAIN]
        return super().sources(split, language)

    def convert(self, row: Row, features: Features, language: str) -> SpanExample | None:
        return span_example(row)


@register
class XQuAD(ZeroShotQA):
    name = "xquad"
    languages = LANGUAGES
    dataset = "google/xtreme"
    split_names = {"train": "train", "dev": "validation", "test": "validation"}

    def config(self, language: str) -> str:
        return f"XQuAD.{language}"
