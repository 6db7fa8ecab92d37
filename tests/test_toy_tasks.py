from __future__ import annotations

import pytest

from stiltsearch.trainables import encoding, heads, toyworld
from stiltsearch.trainables.tasks import TASKS, get_task


def test_generation_is_deterministic_and_parallel_across_languages() -> None:
    xnli = get_task("toy_xnli")
    en, xc = xnli.load("dev", "en"), xnli.load("dev", "xc")
    assert en == xnli.load("dev", "en")  # same seed, same data
    assert [e.label for e in en] == [e.label for e in xc]  # the same facts, translated
    assert en[0].text_a != xc[0].text_a


def test_languages_are_graded_in_how_many_words_they_share_with_english() -> None:
    shared = {code: sum(w == e for e, w in toyworld.lexicon(code).items()) for code in toyworld.SYNTHETIC_LANGUAGES}
    assert shared["xa"] > shared["xb"] > shared["xc"]
    # names and numbers are never translated: what every real language shares with English in XLM-R
    sentence = toyworld.sentence(toyworld.Fact("anna", "buys", "7", "cat", city="oslo"), "xc")
    assert {"anna", "7", "oslo"} <= set(sentence.split())


def test_nli_labels_are_balanced() -> None:
    labels = [e.label for e in get_task("toy_mnli").load("train", "en")]
    for label in range(3):
        assert 0.28 < labels.count(label) / len(labels) < 0.38


def test_intermediate_tasks_are_english_only() -> None:
    with pytest.raises(ValueError, match="no train data in language 'xa'"):
        get_task("toy_mnli").load("train", "xa")


@pytest.mark.parametrize("name", sorted(n for n, t in TASKS.items() if t.benchmark == "toy"))
def test_every_task_encodes_with_its_head(name: str, tiny_model: str) -> None:
    from stiltsearch.trainables.model import load_tokenizer

    task = get_task(name)
    examples = task.load("dev", task.languages[-1])[:8]
    tokenizer = load_tokenizer(tiny_model)
    batch = heads.encode(task.head, tokenizer, examples, 64)
    assert batch["input_ids"].shape[0] == 8
    if task.head == "tagging":
        # exactly one labelled position (the first sub-token) per word
        assert ((batch["labels"] != encoding.IGNORE).sum(1) == batch["n_words"]).all()
    elif task.head == "span":
        # the labelled tokens spell the answer; unanswerable questions point at <s>
        for row, ex in enumerate(examples):
            start, end = batch["labels"][row].tolist()
            if ex.answer_start < 0:
                assert (start, end) == (0, 0)
            else:
                text = tokenizer.decode(batch["input_ids"][row, start:end + 1]).strip()
                assert text == ex.answers[0]
    elif task.head == "retrieval":
        assert "labels" not in batch
    else:
        assert int(batch["labels"].max()) < task.num_labels


def test_span_encoding_survives_a_max_length_shorter_than_the_question(tiny_model: str) -> None:
    from stiltsearch.trainables.model import load_tokenizer

    examples = get_task("toy_xquad").load("dev", "xd")[:16]
    batch = heads.encode("span", load_tokenizer(tiny_model), examples, 16)
    # the question is cut to half the window, and the context spread over several windows
    assert batch["input_ids"].shape[1] == 16 and batch["input_ids"].shape[0] > 16
    assert batch["example"].unique().tolist() == list(range(16))
    assert (batch["labels"] < 16).all()  # answers cut off are labelled "no answer" (0, 0)
    assert (batch["labels"][:, 0] > 0).any()  # and some window holds a whole answer
    assert heads.encode("span", load_tokenizer(tiny_model), examples, 8)["input_ids"].shape[1] == 8  # the least allowed


def test_span_decoding_recovers_the_labelled_answer(tiny_model: str) -> None:
    """Logits that peak at the labelled tokens decode to the answer text: EM and F1 are 100."""
    import torch

    from stiltsearch.trainables.model import load_tokenizer

    task = get_task("toy_xquad")
    examples = task.load("dev", "xd")[:16]
    batch = heads.encode("span", load_tokenizer(tiny_model), examples, 128)
    logits = torch.zeros(*batch["input_ids"].shape, 2)
    for row, (start, end) in enumerate(batch["labels"].tolist()):
        logits[row, start, 0] = logits[row, end, 1] = 10.0
    predictions = heads.Head("span", 8, 2).decode(logits, batch)
    assert task.score(predictions, examples, "en") == {"major": 100.0, "exact_match": 100.0, "f1": 100.0}
    # SQuAD 2.0 scoring answers "" where <s> outscores every span
    null = [(s, e, 1.0) for s, e, _ in predictions]
    assert get_task("toy_squad2").score(null, examples, "en")["exact_match"] == 0.0
