"""SQuAD 1.1-like English extractive QA: who, how many or where, answered by a span of the passage."""

from __future__ import annotations

from stiltsearch.trainables.tasks.base import register
from stiltsearch.trainables.tasks.toy_qa import ToyQA


@register
class ToySQuAD(ToyQA):
    name = "toy_squad"
    role = "intermediate"
    sizes = {"train": 8000, "dev": 500}
