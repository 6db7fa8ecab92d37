"""XQuAD-like extractive QA target: English training questions (as XQuAD trains on SQuAD),
translate-train in every language, zero-shot evaluation on parallel passages in every language."""

from __future__ import annotations

from stiltsearch.trainables import toyworld
from stiltsearch.trainables.tasks.base import register
from stiltsearch.trainables.tasks.toy_qa import ToyQA


@register
class ToyXQuAD(ToyQA):
    name = "toy_xquad"
    languages = tuple(toyworld.LANGUAGES)
    train_languages = tuple(toyworld.LANGUAGES)
    sizes = {"train": 1000, "dev": 500, "test": 500}
