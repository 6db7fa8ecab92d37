from __future__ import annotations

import pytest

from stiltsearch.trainables.metrics import accuracy, retrieval_accuracy, seqeval_f1, squad, squad_v2, tag_accuracy
from stiltsearch.trainables.scoring import breakdown, task_score, xtreme_score
from stiltsearch.trainables.tasks.base import BitextExample, PairExample, SpanExample, TagExample
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
    assert tag_accuracy([[0, 1, 2], [3]], gold, ())["major"] == 100.0
    assert tag_accuracy([[0, 1, 0], [3]], gold, ())["major"] == pytest.approx(75.0)


def test_squad_exact_match_and_token_f1_as_the_official_script() -> None:
    context = "The red cat sat in Oslo."
    examples = [SpanExample("where?", context, ("in Oslo", "Oslo"), 15), SpanExample("what?", context, ("red cat",), 4)]
    # "Oslo." normalises to "oslo" (punctuation dropped): an exact match with the second gold answer;
    # "The red cat" drops "the" (an article): exact match too
    predictions = [(19, 24, -1.0), (0, 11, -1.0)]
    assert squad(predictions, examples, ()) == {"major": 100.0, "exact_match": 100.0, "f1": 100.0}
    # "cat sat": one of two tokens shared with "red cat" -> P = R = 1/2 -> F1 = 0.5; EM 0
    scores = squad([(19, 24, -1.0), (8, 15, -1.0)], examples, ())
    assert scores["exact_match"] == 50.0 and scores["f1"] == pytest.approx(75.0)
    assert scores["major"] == pytest.approx((50.0 + 75.0) / 2)  # XTREME's QA score: (EM + F1) / 2


def test_squad_v2_answers_nothing_when_the_null_score_wins() -> None:
    context = "anna buys 7 cat ."
    examples = [SpanExample("who sells?", context, (), -1), SpanExample("who buys?", context, ("anna",), 0)]
    # null margin > 0: "" (right for the unanswerable one, wrong for the other)
    assert squad_v2([(0, 4, 2.0), (0, 4, 2.0)], examples, ())["exact_match"] == 50.0
    assert squad_v2([(0, 4, 2.0), (0, 4, -2.0)], examples, ())["exact_match"] == 100.0
    assert squad([(0, 4, 2.0), (0, 4, 2.0)], examples[1:2] * 2, ())["exact_match"] == 100.0  # 1.1 ignores null


def test_retrieval_accuracy_counts_sentences_that_find_their_own_translation() -> None:
    pairs = [BitextExample(f"x{i}", f"e{i}") for i in range(4)]
    assert retrieval_accuracy([0, 1, 2, 3], pairs, ())["major"] == 100.0
    assert retrieval_accuracy([0, 0, 2, 2], pairs, ())["major"] == 50.0


def test_the_aggregation_gives_back_the_xtreme_papers_published_average() -> None:
    """mBERT, XTREME paper (Hu et al. 2020) Table 2: nine task scores, QA as (F1 + EM) / 2 per
    task, the plain mean over the nine tasks = the published Avg, 59.6."""
    qa = {"xquad": (64.5, 49.4), "mlqa": (61.4, 44.2), "tydiqa": (59.7, 43.9)}  # (F1, EM)
    scores = {"xnli": 65.4, "pawsx": 81.9, "udpos": 70.3, "panx": 62.2, "bucc": 56.7, "tatoeba": 38.7,
              **{task: (f1 + em) / 2 for task, (f1, em) in qa.items()}}
    per_task = {task: {"all": score} for task, score in scores.items()}
    assert round(xtreme_score(per_task), 1) == 59.6
    groups = {"xnli": "classification", "pawsx": "classification", "udpos": "structured_prediction",
              "panx": "structured_prediction", "xquad": "qa", "mlqa": "qa", "tydiqa": "qa", "bucc": "retrieval",
              "tatoeba": "retrieval"}
    flat = breakdown(per_task, groups)
    assert flat["eval/group/classification"] == pytest.approx((65.4 + 81.9) / 2)
    assert flat["eval/group/qa"] == pytest.approx(sum((f + e) / 2 for f, e in qa.values()) / 3)
    # the overall score is a mean over tasks, not over groups (that would be 60.4 here)
    assert round(sum(v for k, v in flat.items() if k.startswith("eval/group/")) / 4, 1) == 60.4


def test_bucc_f1_chooses_the_threshold_that_maximises_f1_then_applies_a_given_one() -> None:
    from stiltsearch.trainables.metrics import bucc_f1

    gold = {("de-1", "en-1"), ("de-2", "en-2"), ("de-3", "en-3")}
    candidates = [("de-1", "en-1"), ("de-2", "en-9"), ("de-2", "en-2"), ("de-4", "en-4"), ("de-3", "en-3")]
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    # cuts after 1..5 candidates: F1 = 2*hits/(kept + 3) = 0.5, 0.4, 0.667, 0.571, 0.75 -> keep all 5
    dev = bucc_f1(scores, candidates, gold)
    assert dev["major"] == pytest.approx(75.0) and dev["precision"] == pytest.approx(60.0) and dev["recall"] == 100.0
    assert dev["threshold"] < 0.5
    # the perfect case, and the dev threshold given back on a "test" split
    assert bucc_f1([0.9, 0.1], [("a", "x"), ("b", "y")], {("a", "x")})["major"] == 100.0
    test = bucc_f1(scores, candidates, gold, threshold=0.65)  # keeps the top 3: 2 hits
    assert test["major"] == pytest.approx(100 * 2 * (2 / 3) * (2 / 3) / (4 / 3)) and test["threshold"] == 0.65


def test_seqeval_reads_prefixless_pos_tags_as_xtreme_does() -> None:
    """UDPOS is scored with seqeval too: a tag's first letter is its "prefix", so a run of one tag is
    one chunk. Hand count: gold DET NOUN NOUN VERB = chunks {DET}, {NOUN NOUN}, {VERB}."""
    from stiltsearch.trainables.tasks.udpos import UPOS

    def ids(*tags: str) -> tuple[int, ...]:
        return tuple(UPOS.index(t) for t in tags)

    gold = [TagExample(("the", "dog", "food", "smells"), ids("DET", "NOUN", "NOUN", "VERB"))]
    assert seqeval_f1([list(gold[0].tags)], gold, UPOS)["major"] == 100.0
    # one word wrong splits the NOUN run: predicted {DET}, {NOUN}, {PROPN}, {VERB}: 2 of 4 right, 2 of 3 found
    pred = [list(ids("DET", "NOUN", "PROPN", "VERB"))]
    assert seqeval_f1(pred, gold, UPOS) == pytest.approx({"major": 100 * 2 * 0.5 * (2 / 3) / (0.5 + 2 / 3),
                                                          "precision": 50.0, "recall": 100 * 2 / 3})


def test_margin_mining_finds_each_translation_once() -> None:
    """Orthogonal sentence vectors pair up perfectly; a source with no translation is left out or
    scores below the real pairs."""
    import torch

    from stiltsearch.trainables.retrieval import mine, nearest

    source, target = torch.eye(4)[:3], torch.eye(4)[[2, 0, 1, 3]]  # source i is target (i+1) % 3
    assert nearest(source, target) == [1, 2, 0]
    pairs, scores = mine(source, target, k=2)
    assert sorted(pairs) == [(0, 1), (1, 2), (2, 0)] and min(scores) > 0
    noisy = torch.nn.functional.normalize(torch.eye(4)[:3] + 0.1, dim=-1)
    pairs, _ = mine(noisy, target, k=2)
    assert {(0, 1), (1, 2), (2, 0)} <= set(pairs) and len(set(i for i, _ in pairs)) == len(pairs)


def test_map_at_20_as_lareqa_computes_it() -> None:
    from stiltsearch.trainables.metrics import map_at_k

    assert map_at_k([[3, 7, 1]], [{3, 7}])["major"] == 100.0  # both relevant ranked first
    # relevant {1, 2}: found at ranks 2 and 4 -> (1/2 + 2/4) / 2 = 0.5; second query misses its one -> 0
    assert map_at_k([[9, 1, 8, 2], [5, 6]], [{1, 2}, {4}])["major"] == pytest.approx(25.0)
    # only the top k count, and the divisor is min(relevant, k)
    assert map_at_k([[0, 1, 2]], [{2, 5, 6}], k=2)["major"] == 0.0
    assert map_at_k([[2, 0, 1]], [{2, 5, 6}], k=1)["major"] == 100.0


@pytest.mark.parametrize(("rule", "depth", "kept", "layer"), [
    ("middle", 12, 12, 7), ("middle", 24, 24, 13),  # XTREME's layer 7 of 12 (base), 13 of 24 (Large)
    ("middle", 4, 4, 3), ("middle", 4, 2, 2), ("middle", 4, 1, 1),  # fewer kept: the last kept one
    ("last", 12, 12, 12), ("last", 12, 6, 6)])
def test_a_retrieval_task_pools_the_layer_its_protocol_names(rule: str, depth: int, kept: int, layer: int) -> None:
    from stiltsearch.trainables.retrieval import pooled_layer

    assert pooled_layer(rule, depth, kept) == layer


def test_tatoeba_and_bucc_declare_xtremes_pooling() -> None:
    from stiltsearch.trainables.tasks import TASKS

    assert (TASKS["tatoeba"].pool, TASKS["tatoeba"].pool_layer) == ("mean", "middle")
    assert (TASKS["bucc2018"].pool, TASKS["bucc2018"].pool_layer) == ("cls", "middle")
    assert (TASKS["toy_tatoeba"].pool, TASKS["toy_tatoeba"].pool_layer) == ("mean", "middle")


def test_tatoeba_searches_with_the_english_side_over_the_other_language() -> None:
    """XTREME indexes the source sentences and queries with the English ones; the two directions
    disagree on these vectors (English -> source: 0 of 2 right; source -> English: 1 of 2)."""
    import torch

    from stiltsearch.trainables import metrics, retrieval

    pairs = [BitextExample("s0", "t0"), BitextExample("s1", "t1")]
    table = {"t0": [1.0, 0.0], "t1": [0.0, 1.0], "s0": [0.9, 0.436], "s1": [0.95, 0.312]}

    class Bitext:  # the two methods retrieval.tatoeba reads of a task
        def load(self, split: str, language: str) -> list[BitextExample]:
            return pairs

        def score(self, predictions: list[int], examples: list[BitextExample], language: str) -> dict[str, float]:
            return metrics.retrieval_accuracy(predictions, examples, ())

    def vectors(texts: list[str]) -> torch.Tensor:
        return torch.nn.functional.normalize(torch.tensor([table[t] for t in texts]), dim=-1)

    assert retrieval.tatoeba(Bitext(), "test", ["xx"], vectors)["xx"]["major"] == 0.0
    assert metrics.retrieval_accuracy(retrieval.nearest(vectors(["s0", "s1"]), vectors(["t0", "t1"])), pairs,
                                      ())["major"] == 50.0  # the other direction


def test_embed_pools_the_asked_layer_as_the_model_cut_there_would(tiny_model: str) -> None:
    """Layer k of the full encoder is what an encoder cut to k layers outputs; "cls" is token 0."""
    import copy

    import torch
    from transformers import AutoTokenizer

    from stiltsearch.trainables.model import MultiTaskModel, keep_layers, load_encoder
    from stiltsearch.trainables.target import embed

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    full = MultiTaskModel(load_encoder(tiny_model), {}).eval()
    cut = MultiTaskModel(keep_layers(copy.deepcopy(full.encoder), 1), {}).eval()
    texts = ["the cat sleeps", "a dog runs far away"]
    assert torch.allclose(embed(full, texts, tokenizer, max_length=32, layer=1), embed(cut, texts, tokenizer, max_length=32),
                          atol=1e-5)
    assert not torch.allclose(embed(full, texts, tokenizer, max_length=32, layer=1),
                              embed(full, texts, tokenizer, max_length=32), atol=1e-3)
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        first = full.encoder(**batch).last_hidden_state[:, 0]
    assert torch.allclose(embed(full, texts, tokenizer, max_length=32, pool="cls"),
                          torch.nn.functional.normalize(first, dim=-1), atol=1e-5)


def test_xtreme_r_groups_follow_its_evaluator_with_lareqa_among_the_retrieval_tasks() -> None:
    """XTREME-R's evaluate.py: classification = xnli + xcopa, multi_choice = xcopa alone, retrieval =
    tatoeba + mewslix (+ lareqa here, as the XTREME-R paper groups it; the evaluator has no LAReQA
    entry); the overall score stays the mean over tasks."""
    from stiltsearch.trainables.tasks import SUITES, TASKS

    scores = {task: float(10 * i) for i, task in enumerate(SUITES["xtreme-r"], start=1)}
    per_task = {task: {"xx": score} for task, score in scores.items()}
    flat = breakdown(per_task, {task: TASKS[task]().kind.groups for task in per_task})
    assert flat["eval/group/classification"] == pytest.approx((scores["xnli"] + scores["xcopa"]) / 2)
    assert flat["eval/group/multi_choice"] == scores["xcopa"]
    assert flat["eval/group/retrieval"] == pytest.approx((scores["tatoeba_xr"] + scores["mewslix"] + scores["lareqa"]) / 3)
    assert flat["eval/group/qa"] == pytest.approx((scores["xquad_xr"] + scores["mlqa"] + scores["tydiqa"]) / 3)
    assert flat["eval/group/structured_prediction"] == pytest.approx((scores["udpos_xr"] + scores["panx_xr"]) / 2)
    assert flat["xtreme_score"] == pytest.approx(sum(scores.values()) / len(scores))
