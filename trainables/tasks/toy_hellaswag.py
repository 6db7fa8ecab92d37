"""HellaSwag-like English continuation choice: pick the follow-up that keeps who and what."""

from __future__ import annotations

import random
from dataclasses import replace

from stiltsearch.trainables import toyworld
from stiltsearch.trainables.tasks.base import ChoiceExample, register
from stiltsearch.trainables.tasks.toy import ToyTask


@register
class ToyHellaSwag(ToyTask):
    name = "toy_hellaswag"
    role = "intermediate"
    head = "choice"
    labels = ("0", "1", "2", "3")  # one per ending, as HellaSwag's string labels
    metric = "accuracy"
    sizes = {"train": 8000, "dev": 500}

    def make(self, rng: random.Random, language: str) -> ChoiceExample:
        fact = toyworld.random_fact(rng)
        then = toyworld.lexicon(language).get("then", "then")
        right = replace(toyworld.random_fact(rng), subject=fact.subject, noun=fact.noun)
        other_subject = replace(right, subject=rng.choice([n for n in toyworld.NAMES if n != fact.subject.split()[0]]))
        other_noun = replace(right, noun=rng.choice([n for n in toyworld.NOUNS if n != fact.noun]))
        both = replace(other_subject, noun=other_noun.noun)
        endings = [right, other_subject, other_noun, both]
        order = rng.sample(range(4), 4)
        choices = tuple(f"{then} {toyworld.sentence(endings[i], language)}" for i in order)
        return ChoiceExample(toyworld.sentence(fact, language), choices, order.index(0))
