"""Retrieval from pooled representations, one evaluation per metric: nearest neighbours (Tatoeba),
margin-based bitext mining (BUCC, as XTREME's ``utils_retrieve.py`` does it after LASER, Artetxe &
Schwenk 2019), and answer retrieval from a multilingual pool (LAReQA, mAP@20).

``vectors(texts)`` gives unit-length sentence vectors (``pipeline.embed``), so a dot product is a cosine.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from stiltsearch.trainables import metrics

Vectors = Callable[[list[str]], torch.Tensor]

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


# Each evaluation: (task, split, language, vectors, languages) -> metrics; ``languages`` are all the
# languages the task is scored on in this trial (LAReQA's pool spans them).


def tatoeba(task: Any, split: str, language: str, vectors: Vectors, languages: Sequence[str] = ()) -> dict[str, float]:
    """Accuracy of each sentence's nearest neighbour among the English sides."""
    pairs = task.load(split, language)
    return task.score(nearest(vectors([p.source for p in pairs]), vectors([p.target for p in pairs])), pairs)


def bucc(task: Any, split: str, language: str, vectors: Vectors, languages: Sequence[str] = (),
         threshold: float | None = None) -> dict[str, float]:
    """Pair F1 of margin-mined pairs from the pool of the split's sentences. The threshold is the
    one that maximises F1 on dev; a test score first chooses it on dev."""
    if threshold is None and split != "dev":
        threshold = bucc(task, "dev", language, vectors)["threshold"]
    pairs = task.load(split, language)
    sources = {p.source_id: p.source for p in pairs}
    targets = {p.target_id: p.target for p in pairs}
    source_ids, target_ids = list(sources), list(targets)
    candidates, margins = mine(vectors(list(sources.values())), vectors(list(targets.values())))
    return metrics.bucc_f1(margins, [(source_ids[i], target_ids[j]) for i, j in candidates],
                           {(p.source_id, p.target_id) for p in pairs}, threshold)


def answer_pool(task: Any, split: str, language: str, vectors: Vectors, languages: Sequence[str] = ()) -> dict[str, float]:
    """LAReQA: each question of ``language`` ranks every sentence of every language's contexts; its
    relevant answers are the answer sentences of the same question in all languages (11 for XQuAD-R)."""
    questions = {lang: task.load(split, lang) for lang in languages or task.eval_languages(split)}
    sentences: dict[str, int] = {}  # the pool, each distinct sentence once
    answers: dict[str, set[int]] = {}  # question id -> pool indices of its answer sentences
    for examples in questions.values():
        for ex in examples:
            index = [sentences.setdefault(s, len(sentences)) for s in ex.sentences]
            answers.setdefault(ex.qid, set()).add(index[ex.answer])
    pool = vectors(list(sentences))
    asked = questions[language]
    ranked = (vectors([ex.question for ex in asked]) @ pool.T).topk(min(metrics.MAP_K, len(sentences)), dim=1).indices
    return metrics.map_at_k(ranked.tolist(), [answers[ex.qid] for ex in asked])


RETRIEVERS: dict[str, Callable[..., dict[str, float]]] = {
    "retrieval_accuracy": tatoeba, "bucc_f1": bucc, "map_at_20": answer_pool}
