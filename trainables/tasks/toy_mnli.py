"""MNLI-like English NLI: the intermediate task designed to help the XNLI-like target."""

from __future__ import annotations

import random

from stiltsearch.trainables import toyworld
from stiltsearch.trainables.tasks.base import PairExample, register
from stiltsearch.trainables.tasks.toy import ToyTask


@register
class ToyMNLI(ToyTask):
    name = "toy_mnli"
    role = "intermediate"
    head = "classification"
    labels = toyworld.NLI_LABELS
    metric = "accuracy"
    sizes = {"train": 8000, "dev": 500}

    def make(self, rng: random.Random, language: str) -> PairExample:
        pair = toyworld.nli_pair(rng)
        return PairExample(toyworld.sentence(pair.premise, language),
                           toyworld.sentence(pair.hypothesis, language, front_city=pair.hypothesis_front_city), pair.label)
