"""How a batch of examples is tokenized for each head kind (the heads' ``encode``, torch tensors out,
padded to the longest sequence in the batch).

Tagging labels the first sub-token of each word and ignores the rest (label -100), as XTREME does;
a sentence longer than the window is cut into overlapping windows of whole words, so every word is
predicted. A span (extractive QA) that cannot be found in the window is labelled with the <s> token
at position 0, as in SQuAD 2.0 training; a context longer than the window is cut into overlapping
windows (the doc stride of the SQuAD and XTREME scripts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from stiltsearch.trainables.tasks.base import ChoiceExample, DualExample, PairExample, SpanExample, TagExample
from stiltsearch.trainables.types import Tokenizer

IGNORE = -100  # label id that the loss skips
MAX_QUERY_TOKENS = 64  # a question is cut to this many tokens (max_query_length)
DOC_STRIDE = 128  # tokens that consecutive windows of a long context share (doc_stride, at max length 384)


def sources(tokenizer: Tokenizer, examples: Sequence[Any], max_length: int) -> dict[str, torch.Tensor]:
    """Retrieval: the non-English side (the English side is encoded by the caller)."""
    return dict(tokenizer([ex.source for ex in examples], truncation=True, max_length=max_length,
                          padding=True, return_tensors="pt"))


def pairs(tokenizer: Tokenizer, examples: Sequence[PairExample], max_length: int) -> dict[str, torch.Tensor]:
    second = [ex.text_b for ex in examples] if examples[0].text_b is not None else None
    batch = tokenizer([ex.text_a for ex in examples], second, truncation=True, max_length=max_length,
                      padding=True, return_tensors="pt")
    batch["labels"] = torch.tensor([ex.label for ex in examples])
    return dict(batch)


def word_windows(lengths: Sequence[int], room: int) -> list[tuple[int, int]]:
    """[start, end) word ranges that each fit ``room`` sub-tokens, given each word's sub-token
    count: one for a sentence that fits, else windows of whole words that overlap by about half a
    window (each word is then read where it has context on both sides, :meth:`TaggingHead.decode`).
    A word longer than ``room`` on its own is a window alone (its first sub-token, which carries
    its label, always fits)."""
    n = len(lengths)
    if sum(lengths) <= room:
        return [(0, n)]
    windows, start = [], 0
    while True:
        end, used = start, 0
        while end < n and (end == start or used + lengths[end] <= room):
            used += lengths[end]
            end += 1
        windows.append((start, end))
        if end == n:
            return windows
        # the next window starts about half a window back, and always moves on
        back, kept = end, 0
        while back > start + 1 and kept + lengths[back - 1] <= room // 2:
            back -= 1
            kept += lengths[back]
        start = back


def tags(tokenizer: Tokenizer, examples: Sequence[TagExample], max_length: int) -> dict[str, torch.Tensor]:
    """One row per *window*: a sentence longer than ``max_length`` sub-tokens is cut into
    overlapping windows of whole words, so every word is labelled and predicted (truncation used to
    leave the words past the end unpredicted). ``example`` maps a row to its example, ``word_index``
    a row's first sub-tokens to the example's word numbers."""
    room = max(1, max_length - tokenizer.num_special_tokens_to_add(pair=False))
    # each word's sub-token count, from one batched pass without special tokens or truncation
    pieces = tokenizer([list(ex.words) for ex in examples], is_split_into_words=True, add_special_tokens=False)
    rows: list[tuple[int, int, int]] = []  # (example, first word, end word)
    for i, ex in enumerate(examples):
        lengths = [0] * len(ex.words)
        for word in pieces.word_ids(i):
            if word is not None:
                lengths[word] += 1
        rows += [(i, start, end) for start, end in word_windows([max(1, n) for n in lengths], room)]
    batch = tokenizer([list(examples[i].words[a:b]) for i, a, b in rows], is_split_into_words=True, truncation=True,
                      max_length=max_length, padding=True, return_tensors="pt")
    labels = torch.full(batch["input_ids"].shape, IGNORE)
    first_token = torch.full(batch["input_ids"].shape, -1)  # position -> word number, first sub-tokens only
    for row, (i, start, _) in enumerate(rows):
        previous = None
        for position, word in enumerate(batch.word_ids(row)):
            if word is not None and word != previous:
                labels[row, position] = examples[i].tags[start + word]
                first_token[row, position] = start + word
            previous = word
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "labels": labels,
            "word_index": first_token, "example": torch.tensor([i for i, _, _ in rows]),
            "n_words": torch.tensor([len(ex.words) for ex in examples])}


def choices(tokenizer: Tokenizer, examples: Sequence[ChoiceExample], max_length: int) -> dict[str, torch.Tensor]:
    n = len(examples[0].choices)
    firsts = [ex.context for ex in examples for _ in range(n)]
    seconds = [choice for ex in examples for choice in ex.choices]
    batch = tokenizer(firsts, seconds, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    return {"input_ids": batch["input_ids"].view(len(examples), n, -1),
            "attention_mask": batch["attention_mask"].view(len(examples), n, -1),
            "labels": torch.tensor([ex.label for ex in examples])}


def clip_questions(tokenizer: Tokenizer, questions: list[str], limit: int) -> list[str]:
    """Each question cut to its first ``limit`` tokens (at a character boundary), so the context
    always has room in the window."""
    encoded = tokenizer(questions, add_special_tokens=False, truncation=True, max_length=limit,
                        return_offsets_mapping=True)
    return [q[:offsets[-1][1]] if offsets else "" for q, offsets in zip(questions, encoded["offset_mapping"])]


def spans(tokenizer: Tokenizer, examples: Sequence[SpanExample], max_length: int) -> dict[str, torch.Tensor]:
    """One row per *window*: a context longer than the window is cut into overlapping windows (the
    SQuAD/XTREME doc stride), each with the whole question. ``example`` maps a window to its example
    in the batch; ``labels`` is the answer's (start, end) token in that window, or (0, 0) (the <s>
    token) where the window does not hold the whole answer."""
    specials = tokenizer.num_special_tokens_to_add(pair=True)  # <s> q </s></s> c </s> for XLM-R
    limit = min(MAX_QUERY_TOKENS, max(1, (max_length - specials) // 2))  # the context keeps half the room
    questions = clip_questions(tokenizer, [ex.question for ex in examples], limit)
    longest = max(len(ids) for ids in tokenizer(questions, add_special_tokens=False)["input_ids"])
    room = max_length - longest - specials  # context tokens per window
    batch = tokenizer(questions, [ex.context for ex in examples], truncation="only_second", max_length=max_length,
                      stride=max(0, min(DOC_STRIDE, room // 2)), return_overflowing_tokens=True, padding=True,
                      return_offsets_mapping=True, return_tensors="pt")
    offsets = batch["offset_mapping"]  # (windows, seq, 2) character offsets into question or context
    example = batch["overflow_to_sample_mapping"]
    in_context = torch.zeros(batch["input_ids"].shape, dtype=torch.bool)
    labels = torch.zeros(len(example), 2, dtype=torch.long)
    for row in range(len(example)):
        ex = examples[int(example[row])]
        positions = [i for i, s in enumerate(batch.sequence_ids(row)) if s == 1]
        in_context[row, positions] = True
        if ex.answer_start < 0:
            continue
        start_char, end_char = ex.answer_start, ex.answer_start + len(ex.answers[0])
        starts = [i for i in positions if offsets[row, i, 0] <= start_char < offsets[row, i, 1]]
        ends = [i for i in positions if offsets[row, i, 0] < end_char <= offsets[row, i, 1]]
        if starts and ends:
            labels[row] = torch.tensor([starts[0], ends[-1]])
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "labels": labels,
            "offsets": offsets, "in_context": in_context, "example": example}


def dual(tokenizer: Tokenizer, examples: Sequence[Any], max_length: int) -> dict[str, torch.Tensor]:
    """Training pairs (:class:`DualExample`): the queries' rows, then their candidates' rows, one
    batch; ``labels[i] = i``: query i's candidate is row i of the second half. Any other examples
    (a throughput workload, an evaluation): their query side only."""
    if not all(isinstance(ex, DualExample) for ex in examples):
        return sources(tokenizer, examples, max_length)
    batch = tokenizer([ex.query for ex in examples] + [ex.candidate for ex in examples], truncation=True,
                      max_length=max_length, padding=True, return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
            "labels": torch.arange(len(examples))}
