"""HellaSwag: pick the plausible continuation of an activity description (four endings).

The context is ``ctx_a``; each choice is ``ctx_b`` followed by an ending, as jiant builds it. The
label is a *string* ("0".."3"; "" on the unlabelled test split).
"""

from __future__ import annotations

from stiltsearch.trainables.tasks.base import ChoiceExample, register
from stiltsearch.trainables.tasks.real import HubTask
from stiltsearch.trainables.types import Features, Row


@register
class HellaSwag(HubTask):
    name = "hellaswag"
    role = "intermediate"
    head = "choice"
    labels = ("0", "1", "2", "3")
    metric = "accuracy"
    dataset = "Rowan/hellaswag"
    split_names = {"train": "train", "dev": "validation"}
    train_rows = 39905

    def convert(self, row: Row, features: Features, language: str) -> ChoiceExample | None:
        label = self.label_id(features, "label", row["label"])
        if label is None:
            return None
        choices = tuple(f"{row['ctx_b']} {ending}".strip() for ending in row["endings"])
        return ChoiceExample(row["ctx_a"], choices, label)
