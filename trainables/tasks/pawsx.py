"""PAWS-X: adversarial paraphrase identification in 7 languages, with translated training data.
The label's ClassLabel *names* are the strings "0" and "1" (1 = paraphrase)."""

from __future__ import annotations

from stiltsearch.trainables.tasks.base import PairExample, register
from stiltsearch.trainables.tasks.real import HubTask
from stiltsearch.trainables.types import Features, Row

LANGUAGES = ("de", "en", "es", "fr", "ja", "ko", "zh")


@register
class PAWSX(HubTask):
    name = "pawsx"
    head = "classification"
    labels = ("0", "1")
    metric = "accuracy"
    languages = LANGUAGES
    train_languages = LANGUAGES
    dataset = "google-research-datasets/paws-x"
    train_rows = 49401

    def config(self, language: str) -> str:
        return language

    def convert(self, row: Row, features: Features, language: str) -> PairExample | None:
        label = self.label_id(features, "label", row["label"])
        return None if label is None else PairExample(row["sentence1"], row["sentence2"], label)
