"""Sentence retrieval from pooled representations: nearest neighbours (Tatoeba) and margin-based
bitext mining (BUCC), as XTREME's ``utils_retrieve.py`` does it after LASER (Artetxe & Schwenk 2019).

Inputs are unit-length sentence vectors (``pipeline.embed``), so a dot product is a cosine.
"""

from __future__ import annotations

import torch

MARGIN_K = 4  # neighbours whose mean similarity normalises a pair's cosine (XTREME's BUCC setting)


def nearest(source: torch.Tensor, target: torch.Tensor) -> list[int]:
    """For each source vector, the index of its most similar target vector."""
    return (source @ target.T).argmax(-1).tolist()


def mine(source: torch.Tensor, target: torch.Tensor, k: int = MARGIN_K) -> tuple[list[tuple[int, int]], list[float]]:
    """Candidate pairs (source index, target index) and their ratio-margin scores.

    margin(x, y) = cos(x, y) / ((mean of x's k best cosines + mean of y's k best cosines) / 2).
    Each source proposes its best-margin target and each target its best-margin source; then, best
    score first, a pair is kept unless its source or target is already taken (LASER's "max"
    retrieval). A threshold on the scores (``metrics.bucc_f1``) decides which pairs are parallel.
    """
    similarity = source @ target.T  # (n source, n target)
    k = max(1, min(k, similarity.shape[0], similarity.shape[1]))
    source_mean = similarity.topk(k, dim=1).values.mean(1)  # (n source,)
    target_mean = similarity.topk(k, dim=0).values.mean(0)  # (n target,)
    margin = similarity / ((source_mean[:, None] + target_mean[None, :]) / 2)
    forward, backward = margin.argmax(1), margin.argmax(0)
    proposals = [(i, int(forward[i])) for i in range(margin.shape[0])]
    proposals += [(int(backward[j]), j) for j in range(margin.shape[1])]
    proposals.sort(key=lambda pair: -float(margin[pair]))
    pairs, scores, used_source, used_target = [], [], set(), set()
    for i, j in proposals:
        if i not in used_source and j not in used_target:
            used_source.add(i), used_target.add(j)
            pairs.append((i, j))
            scores.append(float(margin[i, j]))
    return pairs, scores
