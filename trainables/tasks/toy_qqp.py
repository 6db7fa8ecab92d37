"""QQP-like English paraphrase detection: a sentence-pair task with a different label set."""

from __future__ import annotations

import random

from stiltsearch.trainables import toyworld
from stiltsearch.trainables.tasks.base import PairExample, register
from stiltsearch.trainables.tasks.toy import ToyTask


@register
class ToyQQP(ToyTask):
    name = "toy_qqp"
    role = "intermediate"
    head = "classification"
    labels = ("not_duplicate", "duplicate")  # HF glue/qqp order
    metric = "accuracy"
    version = 6  # non-paraphrases change two words, not one
    sizes = {"train": 8000, "dev": 500}

    def make(self, rng: random.Random, language: str) -> PairExample:
        a, b, label = toyworld.paraphrase_pair(rng)
        front = rng.random() < 0.5  # a paraphrase may move the place first: same meaning, new order
        return PairExample(toyworld.sentence(a, language), toyworld.sentence(b, language, front_city=front), label)
