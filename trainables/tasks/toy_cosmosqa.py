"""Cosmos QA-like English reading comprehension, multiple choice: a passage, a question about one
of its facts, and four candidate answers (names, numbers or places of the passage and beyond)."""

from __future__ import annotations

import random

from stiltsearch.trainables import toyworld
from stiltsearch.trainables.tasks.base import ChoiceExample, register
from stiltsearch.trainables.tasks.toy import ToyTask

CANDIDATES = {"subject": toyworld.NAMES, "number": toyworld.NUMBERS, "city": toyworld.CITIES}


@register
class ToyCosmosQA(ToyTask):
    name = "toy_cosmosqa"
    role = "intermediate"
    head = "choice"
    labels = ("0", "1", "2", "3")
    metric = "accuracy"
    sizes = {"train": 8000, "dev": 500}

    def make(self, rng: random.Random, language: str) -> ChoiceExample:
        facts = [toyworld.random_fact(rng, city_rate=1.0) for _ in range(rng.randint(2, 3))]
        asked = rng.choice(facts)
        slot = rng.choice(tuple(CANDIDATES))
        right = str({"subject": asked.subject.split()[0], "number": asked.number, "city": asked.city}[slot])
        wrong = rng.sample([c for c in CANDIDATES[slot] if c != right], 3)
        context = toyworld.passage(facts, language) + " " + toyworld.sentence(asked, language, ask=slot)
        order = rng.sample(range(4), 4)
        choices = [right, *wrong]
        return ChoiceExample(context, tuple(choices[i] for i in order), order.index(0))
