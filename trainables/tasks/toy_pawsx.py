"""PAWS-X-like paraphrase identification target: pairs with high word overlap where one changed
element (a name, a noun, a number, a verb) breaks the paraphrase, and reordering does not."""

from __future__ import annotations

import random

from stiltsearch.trainables import toyworld
from stiltsearch.trainables.tasks.base import PairExample, register
from stiltsearch.trainables.tasks.toy import ToyTask


@register
class ToyPAWSX(ToyTask):
    name = "toy_pawsx"
    head = "classification"
    labels = ("0", "1")  # HF paws-x order: 0 = not a paraphrase, 1 = paraphrase
    metric = "accuracy"
    version = 6  # non-paraphrases change two words, not one
    languages = tuple(toyworld.LANGUAGES)
    train_languages = tuple(toyworld.LANGUAGES)
    sizes = {"train": 1000, "dev": 1000, "test": 1000}

    def make(self, rng: random.Random, language: str) -> PairExample:
        a, b, label = toyworld.paraphrase_pair(rng)
        front = rng.random() < 0.5
        return PairExample(toyworld.sentence(a, language), toyworld.sentence(b, language, front_city=front), label)
