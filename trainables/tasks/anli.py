"""ANLI (Nie et al. 2020): adversarial English NLI, rounds 1-3 together; ``anli_mix`` adds SNLI and
MNLI to the training data, the mixture the ANLI authors (and Phang et al. 2020) also train on."""

from __future__ import annotations

from stiltsearch.trainables.hub import Source
from stiltsearch.trainables.tasks.base import PairExample, register
from stiltsearch.trainables.tasks.real import HubTask
from stiltsearch.trainables.types import Features, Row

NLI_LABELS = ("entailment", "neutral", "contradiction")  # the HF order of ANLI, SNLI, MNLI and XNLI
ROUNDS = ("r1", "r2", "r3")


@register
class ANLI(HubTask):
    name = "anli"
    role = "intermediate"
    head = "classification"
    labels = NLI_LABELS
    metric = "accuracy"
    dataset = "facebook/anli"
    split_names = {"train": "train", "dev": "dev", "test": "test"}  # each the concatenation of three rounds
    train_rows = 16946 + 45460 + 100459

    def sources(self, split: str, language: str) -> list[Source]:
        return [Source(self.dataset, "plain_text", f"{self.split_names[split]}_{r}") for r in ROUNDS]

    def convert(self, row: Row, features: Features, language: str) -> PairExample | None:
        label = self.label_id(features, "label", row["label"])
        return None if label is None else PairExample(row["premise"], row["hypothesis"], label)


@register
class ANLIMix(ANLI):
    name = "anli_mix"
    train_rows = ANLI.train_rows + 550152 + 392702

    def sources(self, split: str, language: str) -> list[Source]:
        extra = [Source("stanfordnlp/snli", "plain_text", "train"), Source("nyu-mll/glue", "mnli", "train")]
        return super().sources(split, language) + (extra if split == "train" else [])
