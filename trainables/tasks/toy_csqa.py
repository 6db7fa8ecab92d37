"""CommonsenseQA-like English multiple choice: world knowledge the toy world fixes (which thing has
which usual colour), unrelated to how facts relate to each other. The designated *unrelated*
intermediate task for the XNLI-like target."""

from __future__ import annotations

import random

from stiltsearch.trainables import toyworld
from stiltsearch.trainables.tasks.base import ChoiceExample, register
from stiltsearch.trainables.tasks.toy import ToyTask


@register
class ToyCommonsenseQA(ToyTask):
    name = "toy_csqa"
    role = "intermediate"
    head = "choice"
    labels = ("A", "B", "C", "D", "E")  # HF commonsense_qa answerKey letters
    metric = "accuracy"
    sizes = {"train": 8000, "dev": 500}

    def make(self, rng: random.Random, language: str) -> ChoiceExample:
        noun = rng.choice(toyworld.NOUNS)
        right = toyworld.USUAL_COLOUR[noun]
        wrong = rng.sample([a for a in toyworld.ADJECTIVES if a != right], 4)
        choices = [right, *wrong]
        order = rng.sample(range(5), 5)
        return ChoiceExample(f"the {noun} is usually", tuple(choices[i] for i in order), order.index(0))
