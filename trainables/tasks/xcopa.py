"""XCOPA (XTREME-R): causal commonsense reasoning in 11 languages, two choices. It has no training
split; as in XTREME-R it is trained on English COPA (``aps/super_glue`` config ``copa``, whose label is
a ClassLabel named "choice1"/"choice2"; XCOPA's is a plain int 0/1). The question word ("cause" or
"effect", English in every language) becomes a connective between premise and choice."""

from __future__ import annotations

from stiltsearch.trainables import hub
from stiltsearch.trainables.hub import Source
from stiltsearch.trainables.tasks.base import ChoiceExample, register
from stiltsearch.trainables.tasks.real import HubTask
from stiltsearch.trainables.types import Features, Row

CONNECTIVE = {"cause": "because", "effect": "so"}


@register
class XCOPA(HubTask):
    name = "xcopa"
    head = "choice"
    labels = ("0", "1")
    metric = "accuracy"
    languages = ("et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh")
    train_languages = ("en",)
    dataset = "cambridgeltl/xcopa"
    train_rows = 400

    def config(self, language: str) -> str:
        return language

    def sources(self, split: str, language: str) -> list[Source]:
        if split == "train":
            return [Source("aps/super_glue", "copa", "train")]
        return super().sources(split, language)

    def convert(self, row: Row, features: Features, language: str) -> ChoiceExample | None:
        if row["label"] == -1:  # unlabelled
            return None
        name = hub.label_name(features, "label", row["label"])  # "choice1"/"choice2" (COPA) or "0"/"1" (XCOPA)
        label = {"choice1": 0, "choice2": 1}.get(name)
        label = int(name) if label is None else label
        connective = CONNECTIVE[row["question"]]
        return ChoiceExample(row["premise"], (f"{connective} {row['choice1']}", f"{connective} {row['choice2']}"), label)
