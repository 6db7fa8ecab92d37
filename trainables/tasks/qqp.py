"""Quora Question Pairs (GLUE): are two questions duplicates? GLUE's test labels are hidden: no test."""

from __future__ import annotations

from stiltsearch.trainables.tasks.base import PairExample, register
from stiltsearch.trainables.tasks.real import HubTask
from stiltsearch.trainables.types import Features, Row


@register
class QQP(HubTask):
    name = "qqp"
    role = "intermediate"
    head = "classification"
    labels = ("not_duplicate", "duplicate")
    metric = "accuracy"
    dataset = "nyu-mll/glue"
    split_names = {"train": "train", "dev": "validation"}
    train_rows = 363846

    def config(self, language: str) -> str:
        return "qqp"

    def convert(self, row: Row, features: Features, language: str) -> PairExample | None:
        label = self.label_id(features, "label", row["label"])
        return None if label is None else PairExample(row["question1"], row["question2"], label)
