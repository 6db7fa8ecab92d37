"""XNLI: NLI in 15 languages; every language has machine-translated MNLI training data (translate-train)."""

from __future__ import annotations

from stiltsearch.trainables.tasks.anli import NLI_LABELS
from stiltsearch.trainables.tasks.base import PairExample, register
from stiltsearch.trainables.tasks.real import HubTask
from stiltsearch.trainables.types import Features, Row

LANGUAGES = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")


@register
class XNLI(HubTask):
    name = "xnli"
    head = "classification"
    labels = NLI_LABELS
    metric = "accuracy"
    languages = LANGUAGES
    train_languages = LANGUAGES
    dataset = "facebook/xnli"  # per-language configs (google/xtreme's XNLI has no train split)
    train_rows = 392702

    def config(self, language: str) -> str:
        return language

    def convert(self, row: Row, features: Features, language: str) -> PairExample | None:
        label = self.label_id(features, "label", row["label"])
        return None if label is None else PairExample(row["premise"], row["hypothesis"], label)
