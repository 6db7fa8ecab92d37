"""Tatoeba-like sentence retrieval target: no training; each synthetic-language sentence must find
its English translation among all the English sentences, by the encoder's pooled representations."""

from __future__ import annotations

import random

from stiltsearch.trainables import toyworld
from stiltsearch.trainables.tasks.base import BitextExample, register
from stiltsearch.trainables.tasks.toy import ToyTask


@register
class ToyTatoeba(ToyTask):
    name = "toy_tatoeba"
    head = "retrieval"
    labels = ()
    metric = "retrieval_accuracy"
    languages = toyworld.SYNTHETIC_LANGUAGES  # xx -> en, as Tatoeba has no English-English pairs
    train_languages = ()
    sizes = {"dev": 500, "test": 500}
    pool_layer = "middle"  # Tatoeba's protocol (tasks/tatoeba.py): a 4-layer toy pools layer 3

    def make(self, rng: random.Random, language: str) -> BitextExample:
        fact = toyworld.random_fact(rng)
        return BitextExample(toyworld.sentence(fact, language), toyworld.sentence(fact, "en"))
