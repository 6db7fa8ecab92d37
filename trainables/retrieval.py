"""Retrieval from pooled representations, one evaluation per metric: nearest neighbours (Tatoeba),
margin-based bitext mining (BUCC, as XTREME's ``utils_retrieve.py`` does it after LASER, Artetxe &
Schwenk 2019), and answer retrieval from a multilingual pool (LAReQA, mAP@20).

``vectors(texts)`` gives unit-length sentence vectors (``pipeline.embed``), so a dot product is a cosine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from stiltsearch.trainables import metrics

Vectors = Callable[[list[str]], torch.Tensor]

MARGIN_K = 4  # neighbours whose mean similarity normalises a pair's cosine (XTREME's BUCC setting)


def nearest(source: torch.Tensor, target: torch.Tensor) -> list[int]:
    """For each source vector, the index of its most similar target vector."""
    return (source @ target.T).argmax(-1).tolist()


def mine(source: torch.Tensor, target: torch.Tensor, k: int = MARGIN_K) -> tuple[list[tuple[int, int]], list[float]]:
    """Candidate pairs (source index, target index) and their ratio-margin scores, as XTREME's
    ``mine_bitext`` (LASER's) mines them with its defaults (ratio margin, "max" retrieval, k = 4).

    margin(x, y) = cos(x, y) / ((mean of x's k best cosines + mean of y's k best cosines) / 2).
    Each source proposes the best-margin target among its k nearest targets (by cosine), each
    target the best-margin source among its k nearest sources; then, best score first, a pair is
    kept unless its source or target is already taken. A threshold on the scores
    (``metrics.bucc_f1``) decides which pairs are parallel.
    """
    similarity = source @ target.T  # (n source, n target)
    k = max(1, min(k, similarity.shape[0], similarity.shape[1]))
    near_targets = similarity.topk(k, dim=1)  # each source's k nearest targets: (n source, k)
    near_sources = similarity.topk(k, dim=0)  # each target's k nearest sources: (k, n target)
    source_mean, target_mean = near_targets.values.mean(1), near_sources.values.mean(0)
    margin = similarity / ((source_mean[:, None] + target_mean[None, :]) / 2)
    best = margin.gather(1, near_targets.indices).argmax(1, keepdim=True)
    forward = near_targets.indices.gather(1, best).squeeze(1)
    best = margin.gather(0, near_sources.indices).argmax(0, keepdim=True)
    backward = near_sources.indices.gather(0, best).squeeze(0)
    proposals = [(i, int(forward[i])) for i in range(margin.shape[0])]
    proposals += [(int(backward[j]), j) for j in range(margin.shape[1])]
    proposals.sort(key=lambda pair: -float(margin[pair]))
    pairs, scores, used_source, used_target = [], [], set(), set()
    for i, j in proposals:
        if i not in used_source and j not in used_target:
            used_source.add(i)
            used_target.add(j)
            pairs.append((i, j))
            scores.append(float(margin[i, j]))
    return pairs, scores


# Each evaluation: (task, split, languages, vectors) -> {language: metrics}, every language at once
# (LAReQA's pool spans them; Mewsli-X's candidate entities are encoded once for all).
Scores = dict[str, dict[str, float]]


def pooled_layer(rule: str, depth: int, kept: int) -> int:
    """Which hidden state a retrieval task pools (1 = the first layer's output): the last, or the
    "middle" one, ``depth // 2 + 1`` (XTREME: layer 7 of 12, 13 of 24), of a model of ``depth``
    layers; the last kept one when a deployment keeps fewer (``kept``)."""
    return min(depth if rule == "last" else depth // 2 + 1, kept)


def tatoeba(task: Any, split: str, languages: Sequence[str], vectors: Vectors) -> Scores:
    """Accuracy of each English sentence's nearest neighbour among the other language's sentences:
    XTREME's direction (``utils_retrieve.similarity_search`` indexes the source side and searches
    it with the English side)."""
    scores = {}
    for lang in languages:
        pairs = task.load(split, lang)
        scores[lang] = task.score(nearest(vectors([p.target for p in pairs]), vectors([p.source for p in pairs])), pairs,
                                  lang)
    return scores


def bucc(task: Any, split: str, languages: Sequence[str], vectors: Vectors) -> Scores:
    """Pair F1 of margin-mined pairs from the pool of the split's sentences, at the threshold that
    maximises F1 on dev (a test score first chooses it on dev)."""
    scores = {}
    for lang in languages:
        threshold = None if split == "dev" else bucc_f1(task, "dev", lang, vectors)["threshold"]
        scores[lang] = bucc_f1(task, split, lang, vectors, threshold)
    return scores


def bucc_f1(task: Any, split: str, language: str, vectors: Vectors, threshold: float | None = None) -> dict[str, float]:
    pairs = task.load(split, language)
    sources = {p.source_id: p.source for p in pairs}
    targets = {p.target_id: p.target for p in pairs}
    source_ids, target_ids = list(sources), list(targets)
    candidates, margins = mine(vectors(list(sources.values())), vectors(list(targets.values())))
    return metrics.bucc_f1(margins, [(source_ids[i], target_ids[j]) for i, j in candidates],
                           {(p.source_id, p.target_id) for p in pairs}, threshold)


def _ranked(queries: torch.Tensor, pool: torch.Tensor) -> list[list[int]]:
    """Each query's top-k pool indices, best first (k = metrics.MAP_K)."""
    return (queries @ pool.T).topk(min(metrics.MAP_K, pool.shape[0]), dim=1).indices.tolist()


def answer_pool(task: Any, split: str, languages: Sequence[str], vectors: Vectors) -> Scores:
    """LAReQA: each question ranks every sentence of every scored language's contexts (each with its
    paragraph, :meth:`PooledQAExample.candidate`); its relevant answers are the answer sentences of
    the same question in all of them (11 for XQuAD-R)."""
    questions = {lang: task.load(split, lang) for lang in languages}
    sentences: dict[str, int] = {}  # the pool, each distinct candidate once
    answers: dict[str, set[int]] = {}  # question id -> pool indices of its answer sentences
    for examples in questions.values():
        for ex in examples:
            index = [sentences.setdefault(ex.candidate(i), len(sentences)) for i in range(len(ex.sentences))]
            answers.setdefault(ex.qid, set()).add(index[ex.answer])
    pool = vectors(list(sentences))
    return {lang: metrics.map_at_k(_ranked(vectors([ex.question for ex in asked]), pool),
                                   [answers[ex.qid] for ex in asked]) for lang, asked in questions.items()}


def entity_pool(task: Any, split: str, languages: Sequence[str], vectors: Vectors) -> Scores:
    """Mewsli-X: each mention (its sentence) ranks every candidate entity (title and description);
    the one entity it names is relevant."""
    entities = task.candidates
    ids = {entity_id: i for i, entity_id in enumerate(entities)}
    pool = vectors(list(entities.values()))
    scores = {}
    for lang in languages:
        mentions = task.load(split, lang)
        scores[lang] = metrics.map_at_k(_ranked(vectors([m.query for m in mentions]), pool),
                                        [{ids[m.entity_id]} for m in mentions])
    return scores


# a retrieval task's ``retrieve`` names its evaluation
RETRIEVERS: dict[str, Callable[[Any, str, Sequence[str], Vectors], Scores]] = {
    "nearest": tatoeba, "mine": bucc, "answer_pool": answer_pool, "entity_pool": entity_pool}
