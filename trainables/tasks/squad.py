"""SQuAD 1.1 and 2.0: English extractive QA; 2.0 adds unanswerable questions (empty answer lists)."""

from __future__ import annotations

from stiltsearch.trainables.tasks.base import SpanExample, register
from stiltsearch.trainables.tasks.real import SQUAD_TRAIN_ROWS, HubTask
from stiltsearch.trainables.types import Features, Row


def span_example(row: Row) -> SpanExample:
    """A SQuAD-format row (``answers = {text: [...], answer_start: [...]}``) as an example."""
    answers, starts = row["answers"]["text"], row["answers"]["answer_start"]
    return SpanExample(row["question"], row["context"], tuple(answers), int(starts[0]) if starts else -1)


@register
class SQuAD(HubTask):
    name = "squad"
    role = "intermediate"
    head = "span"
    labels = ("start", "end")
    metric = "squad"
    dataset = "rajpurkar/squad"
    split_names = {"train": "train", "dev": "validation"}
    train_rows = SQUAD_TRAIN_ROWS

    def config(self, language: str) -> str:
        return "plain_text"

    def convert(self, row: Row, features: Features, language: str) -> SpanExample:
        return span_example(row)


@register
class SQuADv2(SQuAD):
    name = "squad_v2"
    metric = "squad_v2"
    dataset = "rajpurkar/squad_v2"
    train_rows = 130319

    def config(self, language: str) -> str:
        return "squad_v2"
