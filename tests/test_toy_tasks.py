from __future__ import annotations

import pytest

from stiltsearch.trainables import heads, toyworld
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


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_encodes_with_its_head(name: str, tiny_model: str) -> None:
    from stiltsearch.trainables.model import load_tokenizer

    task = get_task(name)
    examples = task.load("dev", task.languages[-1])[:8]
    batch = heads.encode(task.head, load_tokenizer(tiny_model), examples, 64)
    assert batch["input_ids"].shape[0] == 8
    if task.head == "tagging":
        # exactly one labelled position (the first sub-token) per word
        assert ((batch["labels"] != heads.IGNORE).sum(1) == batch["n_words"]).all()
    else:
        assert int(batch["labels"].max()) < task.num_labels
