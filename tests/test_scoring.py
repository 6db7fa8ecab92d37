from __future__ import annotations

import pytest

from stiltsearch.trainables.metrics import accuracy, seqeval_f1, tag_accuracy
from stiltsearch.trainables.scoring import breakdown, task_score, xtreme_score
from stiltsearch.trainables.tasks.base import PairExample, TagExample
from stiltsearch.trainables.tasks.toy_panx import PANX_LABELS


def test_xtreme_score_is_a_mean_over_tasks_of_means_over_languages() -> None:
    per_task = {"xnli": {"en": 80.0, "de": 70.0, "sw": 60.0}, "panx": {"en": 90.0, "de": 50.0}}
    assert task_score(per_task["xnli"]) == pytest.approx(70.0)
    # unweighted: xnli's three languages do not outweigh panx's two
    assert xtreme_score(per_task) == pytest.approx((70.0 + 70.0) / 2)
    flat = breakdown(per_task)
    assert flat["eval/xnli/sw"] == 60.0 and flat["eval/panx"] == 70.0 and flat["xtreme_score"] == 70.0


def test_accuracy_perfect_and_partial() -> None:
    examples = [PairExample("a", "b", label) for label in (0, 1, 2, 2)]
    assert accuracy([0, 1, 2, 2], examples, ())["major"] == 100.0
    assert accuracy([0, 1, 0, 0], examples, ())["major"] == 50.0


def _tags(*names: str) -> tuple[int, ...]:
    return tuple(PANX_LABELS.index(n) for n in names)


def test_seqeval_f1_perfect_and_partial() -> None:
    gold = [TagExample(("anna", "smith", "in", "oslo"), _tags("B-PER", "I-PER", "O", "B-LOC"))]
    assert seqeval_f1([list(gold[0].tags)], gold, PANX_LABELS)["major"] == 100.0
    # the person chunk is cut short (wrong span) and the place is right: P = 1/2, R = 1/2
    pred = [list(_tags("B-PER", "O", "O", "B-LOC"))]
    assert seqeval_f1(pred, gold, PANX_LABELS) == pytest.approx({"major": 50.0, "precision": 50.0, "recall": 50.0})
    # an I- without a B- opens a chunk (seqeval's default mode): I-PER I-PER == B-PER I-PER
    pred = [list(_tags("I-PER", "I-PER", "O", "O"))]
    assert seqeval_f1(pred, gold, PANX_LABELS) == pytest.approx({"major": 100 * 2 / 3, "precision": 100.0,
                                                                 "recall": 50.0})


def test_tag_accuracy_counts_words() -> None:
    gold = [TagExample(("a", "b", "c"), (0, 1, 2)), TagExample(("d",), (3,))]
    assert tag_accuracy([[0, 1, 0], [3]], gold, ())["major"] == pytest.approx(75.0)
