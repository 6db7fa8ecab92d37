"""SQuAD 2.0-like English QA: a third of the questions ask about a fact the passage does not state."""

from __future__ import annotations

from stiltsearch.trainables.tasks.base import register
from stiltsearch.trainables.tasks.toy_qa import ToyQA


@register
class ToySQuAD2(ToyQA):
    name = "toy_squad2"
    role = "intermediate"
    metric = "squad_v2"
    unanswerable_rate = 1 / 3
    sizes = {"train": 8000, "dev": 500}
