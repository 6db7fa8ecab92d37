"""XNLI-like target: English training data, translate-train in every language, zero-shot dev sets."""

from __future__ import annotations

import random

from stiltsearch.trainables import toyworld
from stiltsearch.trainables.tasks.base import PairExample, register
from stiltsearch.trainables.tasks.toy import ToyTask


@register
class ToyXNLI(ToyTask):
    name = "toy_xnli"
    head = "classification"
    labels = toyworld.NLI_LABELS
    metric = "accuracy"
    languages = tuple(toyworld.LANGUAGES)
    train_languages = tuple(toyworld.LANGUAGES)
    sizes = {"train": 250, "dev": 1000, "test": 1000}  # scarce, as target training data is

    def make(self, rng: random.Random, language: str) -> PairExample:
        pair = toyworld.nli_pair(rng)
        return PairExample(toyworld.sentence(pair.premise, language),
                           toyworld.sentence(pair.hypothesis, language, front_city=pair.hypothesis_front_city), pair.label)
