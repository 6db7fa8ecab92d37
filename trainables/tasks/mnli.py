"""MultiNLI (GLUE): English NLI over ten genres. Dev is the matched validation set; GLUE's test
labels are hidden, so "test" is the mismatched validation set."""

from __future__ import annotations

from stiltsearch.trainables.tasks.anli import NLI_LABELS
from stiltsearch.trainables.tasks.base import PairExample, register
from stiltsearch.trainables.tasks.real import HubTask
from stiltsearch.trainables.types import Features, Row


@register
class MNLI(HubTask):
    name = "mnli"
    role = "intermediate"
    head = "classification"
    labels = NLI_LABELS
    metric = "accuracy"
    dataset = "nyu-mll/glue"
    split_names = {"train": "train", "dev": "validation_matched", "test": "validation_mismatched"}
    train_rows = 392702

    def config(self, language: str) -> str:
        return "mnli"

    def convert(self, row: Row, features: Features, language: str) -> PairExample | None:
        label = self.label_id(features, "label", row["label"])
        return None if label is None else PairExample(row["premise"], row["hypothesis"], label)
