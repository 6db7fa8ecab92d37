"""Task metrics, as google-research/xtreme computes them. Scores are on a 0-100 scale."""

from __future__ import annotations

from typing import Any, Callable, Sequence


def accuracy(predictions: Sequence[Any], examples: Sequence[Any], labels: Sequence[str]) -> dict[str, float]:
    if not examples:
        raise ValueError("accuracy of an empty split")
    correct = sum(int(p == ex.label) for p, ex in zip(predictions, examples, strict=True))
    return {"major": 100.0 * correct / len(examples)}


def _entities(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """IOB2 chunks as (type, start, end), the way seqeval's default (non-strict) mode reads them."""
    chunks: set[tuple[str, int, int]] = set()
    kind, start = None, -1
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, label = tag.partition("-") if tag != "O" else ("O", "", "")
        # a chunk ends at O, at a B-, or at an I- of another type (seqeval's end_of_chunk)
        ends = kind is not None and (prefix in ("O", "B") or label != kind)
        if ends:
            chunks.add((kind, start, i - 1))
            kind = None
        # a chunk starts at B-, or at an I- that does not continue one (seqeval's start_of_chunk)
        if prefix in ("B", "I") and kind is None:
            kind, start = label, i
    return chunks


def seqeval_f1(predictions: Sequence[Sequence[int]], examples: Sequence[Any], labels: Sequence[str]) -> dict[str, float]:
    """Micro chunk F1 over all sentences (seqeval's ``f1_score``), plus precision and recall."""
    n_pred = n_gold = n_hit = 0
    for pred, ex in zip(predictions, examples, strict=True):
        p = _entities([labels[i] for i in pred])
        g = _entities([labels[i] for i in ex.tags])
        n_pred, n_gold, n_hit = n_pred + len(p), n_gold + len(g), n_hit + len(p & g)
    precision = n_hit / n_pred if n_pred else 0.0
    recall = n_hit / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"major": 100.0 * f1, "precision": 100.0 * precision, "recall": 100.0 * recall}


def tag_accuracy(predictions: Sequence[Sequence[int]], examples: Sequence[Any], labels: Sequence[str]) -> dict[str, float]:
    """Per-word accuracy, for tag sets without chunks (supertags)."""
    total = sum(len(ex.tags) for ex in examples)
    correct = sum(int(p == g) for pred, ex in zip(predictions, examples, strict=True) for p, g in zip(pred, ex.tags))
    return {"major": 100.0 * correct / max(total, 1)}


Metric = Callable[[Sequence[Any], Sequence[Any], Sequence[str]], dict[str, float]]

METRICS: dict[str, Metric] = {
    "accuracy": accuracy,
    "seqeval_f1": seqeval_f1,
    "tag_accuracy": tag_accuracy,
}
