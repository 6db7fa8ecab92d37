"""PAN-X-like named-entity target (persons and places), scored by seqeval F1 on every language."""

from __future__ import annotations

import random

from stiltsearch.trainables import toyworld
from stiltsearch.trainables.tasks.base import TagExample, register
from stiltsearch.trainables.tasks.toy import ToyTask

PANX_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")  # HF google/xtreme PAN-X order


@register
class ToyPANX(ToyTask):
    name = "toy_panx"
    head = "tagging"
    labels = PANX_LABELS
    metric = "seqeval_f1"
    languages = tuple(toyworld.LANGUAGES)
    train_languages = tuple(toyworld.LANGUAGES)
    sizes = {"train": 1000, "dev": 300, "test": 300}

    def make(self, rng: random.Random, language: str) -> TagExample:
        words = toyworld.realize(toyworld.random_fact(rng), language, front_city=rng.random() < 0.3)
        tags, previous = [], None
        for _, role in words:
            kind = {"PER": "PER", "LOC": "LOC"}.get(role)
            tags.append("O" if kind is None else ("I-" if previous == kind else "B-") + kind)
            previous = kind
        return TagExample(tuple(w for w, _ in words), tuple(PANX_LABELS.index(t) for t in tags))
