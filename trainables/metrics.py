"""Task metrics, as google-research/xtreme computes them. Scores are on a 0-100 scale."""

from __future__ import annotations

import collections
import functools
import re
import string
import sys
import unicodedata
import warnings
from collections.abc import Callable, Sequence
from typing import Any


def accuracy(predictions: Sequence[Any], examples: Sequence[Any], labels: Sequence[str],
             language: str = "en") -> dict[str, float]:
    if not examples:
        raise ValueError("accuracy of an empty split")
    correct = sum(int(p == ex.label) for p, ex in zip(predictions, examples, strict=True))
    return {"major": 100.0 * correct / len(examples)}


def seqeval_f1(predictions: Sequence[Sequence[int]], examples: Sequence[Any], labels: Sequence[str],
               language: str = "en") -> dict[str, float]:
    """Micro chunk F1 over all sentences, plus precision and recall, by seqeval, which XTREME's
    run_tag.py calls, in its default (non-strict) mode: a tag's first character is its prefix and
    the rest after a "-" its type. For IOB2 tags (PAN-X) that is the usual reading; for UDPOS's
    prefix-less tags ("NOUN": prefix "N") a run of one tag is one chunk, as in XTREME's scores."""
    from seqeval.metrics import f1_score, precision_score, recall_score

    if len(predictions) != len(examples):
        raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples")
    pred = [[labels[i] for i in p] for p in predictions]
    gold = [[labels[i] for i in ex.tags] for ex in examples]
    with warnings.catch_warnings():  # "NOUN seems not to be NE tag" (UDPOS, by design) and 0/0 warnings
        warnings.simplefilter("ignore")
        return {"major": 100.0 * f1_score(gold, pred), "precision": 100.0 * precision_score(gold, pred),
                "recall": 100.0 * recall_score(gold, pred)}


def tag_accuracy(predictions: Sequence[Sequence[int]], examples: Sequence[Any], labels: Sequence[str],
                 language: str = "en") -> dict[str, float]:
    """Per-word accuracy, for tag sets without chunks (supertags)."""
    total = sum(len(ex.tags) for ex in examples)
    correct = sum(int(p == g) for pred, ex in zip(predictions, examples, strict=True) for p, g in zip(pred, ex.tags))
    return {"major": 100.0 * correct / max(total, 1)}


def _normalize(text: str) -> str:
    """SQuAD's answer normalisation (v1.1 and v2.0 alike): lower case, no ASCII punctuation, no
    English articles, single spaces. XQuAD and TyDiQA-GoldP are scored with it in every language."""
    text = "".join(ch for ch in text.lower() if ch not in _ASCII_PUNCTUATION)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


_ASCII_PUNCTUATION = frozenset(string.punctuation)
# MLQA's own evaluation (mlqa_evaluation_v1.py; XTREME's third_party/evaluate_mlqa.py): articles per
# language (none for hi and zh; ar's rule removes every "ال", as the official pattern does)
MLQA_ARTICLES = {"en": r"\b(a|an|the)\b", "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
                 "vi": r"\b(của|là|cái|chiếc|những)\b",
                 "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b", "ar": r"\sال^|ال",
                 "hi": None, "zh": None}
_CJK = re.compile(r"[\u4e00-\u9fa5]")  # MLQA's mixed segmentation: each of these characters is a token


@functools.cache
def _unicode_punctuation() -> frozenset[str]:
    """Every character of a Unicode punctuation category (P*), plus ASCII's: what MLQA removes."""
    return frozenset(ch for ch in map(chr, range(sys.maxunicode)) if unicodedata.category(ch).startswith("P")) \
        | _ASCII_PUNCTUATION


def mlqa_normalize(text: str, language: str) -> str:
    """MLQA's answer normalisation: lower case, Unicode punctuation removed, the language's articles
    removed, then whitespace tokens, except zh, where each CJK character is a token of its own."""
    if language not in MLQA_ARTICLES:
        raise ValueError(f"MLQA has no evaluation rules for language {language!r}; it has {sorted(MLQA_ARTICLES)}")
    punctuation = _unicode_punctuation()
    text = "".join(ch for ch in text.lower() if ch not in punctuation)
    if (articles := MLQA_ARTICLES[language]) is not None:
        text = re.sub(articles, " ", text)
    if language != "zh":
        return " ".join(text.split())
    tokens: list[str] = []
    for piece in re.split(f"({_CJK.pattern})", text):  # CJK characters, and the text between them
        tokens += [piece] if _CJK.fullmatch(piece) else piece.split()
    return " ".join(tokens)


def _f1(prediction: str, gold: str, empty_is_match: bool) -> float:
    """Token F1 of two normalised answers. Both empty: a match under SQuAD 2.0's rule
    (``empty_is_match``), 0 under v1.1's and MLQA's (no token in common)."""
    pred, ref = prediction.split(), gold.split()
    if empty_is_match and (not pred or not ref):
        return float(pred == ref)
    common = sum((collections.Counter(pred) & collections.Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def _qa(predictions: Sequence[tuple[int, int, float]], examples: Sequence[Any], normalize: Callable[[str], str],
        v2: bool) -> dict[str, float]:
    """Mean exact match and F1 against the best-matching gold answer; major = (EM + F1) / 2, as
    XTREME averages the two for XQuAD, MLQA and TyDiQA. ``v2``: SQuAD 2.0's rules (the null answer
    when <s> outscores the best span; golds that normalise to nothing are dropped first; both empty
    is a match)."""
    if not examples:
        raise ValueError("SQuAD metrics of an empty split")
    em = f1 = 0.0
    for (start, end, null_margin), ex in zip(predictions, examples, strict=True):
        text = normalize("" if v2 and null_margin > 0 else ex.context[start:end])
        golds = [normalize(g) for g in ex.answers]
        golds = [g for g in golds if g] if v2 else golds
        golds = golds or [""]
        em += max(float(text == g) for g in golds)
        f1 += max(_f1(text, g, empty_is_match=v2) for g in golds)
    em, f1 = 100.0 * em / len(examples), 100.0 * f1 / len(examples)
    return {"major": (em + f1) / 2, "exact_match": em, "f1": f1}


def squad(predictions: Sequence[Any], examples: Sequence[Any], labels: Sequence[str],
          language: str = "en") -> dict[str, float]:
    """SQuAD 1.1 (its official evaluate-v1.1.py), also for XQuAD and TyDiQA-GoldP in every
    language: every question has an answer, so the best span is always given."""
    return _qa(predictions, examples, _normalize, v2=False)


def squad_v2(predictions: Sequence[Any], examples: Sequence[Any], labels: Sequence[str],
             language: str = "en") -> dict[str, float]:
    """SQuAD 2.0 (its official evaluate-v2.0.py): "no answer" when <s> scores higher than the best
    span (null threshold 0)."""
    return _qa(predictions, examples, _normalize, v2=True)


def mlqa(predictions: Sequence[Any], examples: Sequence[Any], labels: Sequence[str], language: str) -> dict[str, float]:
    """MLQA (its official mlqa_evaluation_v1.py, which XTREME runs): SQuAD 1.1's rules with
    :func:`mlqa_normalize` for the language of the answers."""
    return _qa(predictions, examples, functools.partial(mlqa_normalize, language=language), v2=False)


def retrieval_accuracy(predictions: Sequence[int], examples: Sequence[Any], labels: Sequence[str],
                       language: str = "en") -> dict[str, float]:
    """Tatoeba: the fraction of English sentences whose nearest neighbour in the other language is
    their translation; ``predictions[i]`` is the index of the sentence retrieved for English sentence i."""
    if not examples:
        raise ValueError("retrieval accuracy of an empty split")
    return {"major": 100.0 * sum(int(p == i) for i, p in enumerate(predictions)) / len(examples)}


MAP_K = 20  # LAReQA and Mewsli-X (XTREME-R) are scored by mAP@20


def map_at_k(ranked: Sequence[Sequence[int]], relevant: Sequence[set[int]], k: int = MAP_K) -> dict[str, float]:
    """Mean average precision at k, as LAReQA computes it: for each query, the precision at the rank
    of each relevant item found in its top k, summed and divided by min(number relevant, k)."""
    if not ranked:
        raise ValueError("mAP of no queries")
    total = 0.0
    for ranking, targets in zip(ranked, relevant, strict=True):
        hits, score = 0, 0.0
        for rank, item in enumerate(ranking[:k], start=1):
            if item in targets:
                hits += 1
                score += hits / rank
        total += score / min(len(targets), k)
    return {"major": 100.0 * total / len(ranked)}


# (predictions, examples, label names, language of the examples) -> {"major": score, ...}
Metric = Callable[[Sequence[Any], Sequence[Any], Sequence[str], str], dict[str, float]]

METRICS: dict[str, Metric] = {
    "accuracy": accuracy,
    "seqeval_f1": seqeval_f1,
    "tag_accuracy": tag_accuracy,
    "squad": squad,
    "squad_v2": squad_v2,
    "mlqa": mlqa,
    "retrieval_accuracy": retrieval_accuracy,
}


def bucc_f1(scores: Sequence[float], candidates: Sequence[tuple[str, str]], gold: set[tuple[str, str]],
            threshold: float | None = None) -> dict[str, float]:
    """BUCC bitext mining, as XTREME scores it: each candidate pair (source id, target id) has a
    similarity score; pairs scoring at or above the threshold are predicted parallel; F1 against the gold
    pairs. With no ``threshold`` (the dev split), the one that maximises F1 here is chosen, halfway
    between the last kept and the first dropped score (XTREME's ``bucc_optimize``); give it back for
    the test split. Returns F1, precision, recall (0-100) and the threshold.
    """
    order = sorted(range(len(candidates)), key=lambda i: -scores[i])
    if threshold is None:
        best, best_cut, found = -1.0, 0, 0
        for rank, i in enumerate(order, start=1):
            found += candidates[i] in gold
            f1 = 2 * found / (rank + len(gold)) if gold else 0.0  # = 2PR / (P + R)
            if f1 > best:
                best, best_cut = f1, rank
        kept = [scores[i] for i in order[:best_cut]]
        after = scores[order[best_cut]] if best_cut < len(order) else kept[-1] - 1.0
        threshold = (kept[-1] + after) / 2 if kept else float("inf")
    predicted = {candidates[i] for i in order if scores[i] >= threshold}  # >=, as XTREME's bucc_extract
    hits = len(predicted & gold)
    precision = hits / len(predicted) if predicted else 0.0
    recall = hits / len(gold) if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return {"major": 100 * f1, "precision": 100 * precision, "recall": 100 * recall, "threshold": threshold}
