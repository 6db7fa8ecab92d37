"""ANLI-like adversarial English NLI: the premise is a short passage, and the hypothesis is about one
of its facts, sometimes with the subject of another (a distractor that word overlap cannot solve)."""

from __future__ import annotations

import random
from dataclasses import replace

from stiltsearch.trainables import toyworld
from stiltsearch.trainables.tasks.base import PairExample, register
from stiltsearch.trainables.tasks.toy import ToyTask


@register
class ToyANLI(ToyTask):
    name = "toy_anli"
    role = "intermediate"
    head = "classification"
    labels = toyworld.NLI_LABELS
    metric = "accuracy"
    sizes = {"train": 8000, "dev": 500}

    def make(self, rng: random.Random, language: str) -> PairExample:
        pair = toyworld.nli_pair(rng)
        premise, hypothesis, label, front = pair.premise, pair.hypothesis, pair.label, pair.hypothesis_front_city
        other = toyworld.random_fact(rng)
        if rng.random() < 0.3 and other.subject != premise.subject:
            # the distractor's subject doing the premise's action is not entailed: neutral
            hypothesis, label, front = replace(premise, subject=other.subject, city=None, adjective=None), 1, False
        facts = [premise, other] if rng.random() < 0.5 else [other, premise]
        return PairExample(toyworld.passage(facts, language), toyworld.sentence(hypothesis, language, front_city=front),
                           label)
