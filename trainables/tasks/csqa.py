"""CommonsenseQA: a question and five answers labelled A-E; ``answerKey`` is "" on test."""

from __future__ import annotations

from stiltsearch.trainables.tasks.base import ChoiceExample, register
from stiltsearch.trainables.tasks.real import HubTask
from stiltsearch.trainables.types import Features, Row


@register
class CommonsenseQA(HubTask):
    name = "commonsenseqa"
    role = "intermediate"
    head = "choice"
    labels = ("A", "B", "C", "D", "E")
    metric = "accuracy"
    dataset = "tau/commonsense_qa"
    split_names = {"train": "train", "dev": "validation"}
    train_rows = 9741

    def convert(self, row: Row, features: Features, language: str) -> ChoiceExample | None:
        if not row["answerKey"]:
            return None
        order = list(row["choices"]["label"])  # the letters, so the answer is found by name
        texts = [row["choices"]["text"][order.index(letter)] for letter in self.labels]
        return ChoiceExample(row["question"], tuple(texts), self.labels.index(row["answerKey"]))
