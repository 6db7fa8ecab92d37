"""CCG-like English supertagging: each word's role and which side of the verb it stands on."""

from __future__ import annotations

import random

from stiltsearch.trainables import toyworld
from stiltsearch.trainables.tasks.base import TagExample, register
from stiltsearch.trainables.tasks.toy import ToyTask

# A supertag is a role plus the direction to the verb ("NUM>" = a number after the verb), standing
# in for CCG categories such as NP or (S\NP)/NP that encode a word's syntactic context.
SUPERTAGS = tuple(f"{role}{side}" for role in toyworld.ROLES for side in "<>") + ("VERB",)


@register
class ToyCCG(ToyTask):
    name = "toy_ccg"
    role = "intermediate"
    head = "tagging"
    labels = SUPERTAGS
    metric = "tag_accuracy"
    sizes = {"train": 8000, "dev": 500}

    def make(self, rng: random.Random, language: str) -> TagExample:
        words = toyworld.realize(toyworld.random_fact(rng), language)
        verb_at = next(i for i, (_, role) in enumerate(words) if role == "VERB")
        tags = [role if role == "VERB" else f"{role}{'<' if i < verb_at else '>'}" for i, (_, role) in enumerate(words)]
        return TagExample(tuple(w for w, _ in words), tuple(SUPERTAGS.index(t) for t in tags))
