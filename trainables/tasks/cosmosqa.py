"""Cosmos QA: commonsense reading comprehension, four answers; ``label`` is a plain int (-1 on test)."""

from __future__ import annotations

from stiltsearch.trainables.tasks.base import ChoiceExample, register
from stiltsearch.trainables.tasks.real import HubTask
from stiltsearch.trainables.types import Features, Row


@register
class CosmosQA(HubTask):
    name = "cosmosqa"
    role = "intermediate"
    head = "choice"
    labels = ("0", "1", "2", "3")
    metric = "accuracy"
    dataset = "allenai/cosmos_qa"
    split_names = {"train": "train", "dev": "validation"}
    train_rows = 25262

    def convert(self, row: Row, features: Features, language: str) -> ChoiceExample | None:
        label = self.label_id(features, "label", row["label"])
        if label is None:
            return None
        return ChoiceExample(f"{row['context']} {row['question']}", tuple(row[f"answer{i}"] for i in range(4)), label)
