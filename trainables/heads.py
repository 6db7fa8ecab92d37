"""Task heads on a shared encoder, one registered class per head kind: how a batch is encoded,
what the head computes, its loss, and how its logits decode into predictions. (The kinds' facts,
torch-free, are declared in ``tasks/base.py``'s ``HEAD_KINDS``.)

Every head reads the encoder's last hidden states. Tagging labels the first sub-token of each word
and ignores the rest (label -100), as XTREME does; a sentence longer than the window is cut into
overlapping windows of whole words, so every word is predicted. Span (extractive QA) heads predict a start and an
end token; a span that cannot be found in the window is labelled with the <s> token at position 0,
as in SQuAD 2.0 training. A context longer than the window is cut into overlapping windows (the
doc stride of the SQuAD and XTREME scripts); an example's answer is the best span over its windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import torch
from torch import nn

from stiltsearch.trainables.tasks.base import (
    HEAD_KINDS,
    ChoiceExample,
    DualExample,
    PairExample,
    SpanExample,
    TagExample,
)

IGNORE = -100  # label id that the loss skips
MAX_ANSWER_TOKENS = 30  # longest span a QA head may predict (the SQuAD scripts' max_answer_length)
MAX_QUERY_TOKENS = 64  # a question is cut to this many tokens (max_query_length)
DOC_STRIDE = 128  # tokens that consecutive windows of a long context share (doc_stride, at max length 384)


def encode(kind: str, tokenizer: Any, examples: Sequence[Any], max_length: int) -> dict[str, torch.Tensor]:
    """Tokenize a batch for a head kind; pads to the longest sequence in the batch."""
    return head_class(kind).encode(tokenizer, examples, max_length)


def _encode_sources(tokenizer: Any, examples: Sequence[Any], max_length: int) -> dict[str, torch.Tensor]:
    """Retrieval: the non-English side (the English side is encoded by the caller)."""
    return dict(tokenizer([ex.source for ex in examples], truncation=True, max_length=max_length,
                          padding=True, return_tensors="pt"))


def _encode_pairs(tokenizer: Any, examples: Sequence[PairExample], max_length: int) -> dict[str, torch.Tensor]:
    second = [ex.text_b for ex in examples] if examples[0].text_b is not None else None
    batch = tokenizer([ex.text_a for ex in examples], second, truncation=True, max_length=max_length,
                      padding=True, return_tensors="pt")
    batch["labels"] = torch.tensor([ex.label for ex in examples])
    return dict(batch)


def _word_windows(lengths: Sequence[int], room: int) -> list[tuple[int, int]]:
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


def _encode_tags(tokenizer: Any, examples: Sequence[TagExample], max_length: int) -> dict[str, torch.Tensor]:
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
        rows += [(i, start, end) for start, end in _word_windows([max(1, n) for n in lengths], room)]
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


def _encode_choices(tokenizer: Any, examples: Sequence[ChoiceExample], max_length: int) -> dict[str, torch.Tensor]:
    n = len(examples[0].choices)
    firsts = [ex.context for ex in examples for _ in range(n)]
    seconds = [choice for ex in examples for choice in ex.choices]
    batch = tokenizer(firsts, seconds, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    return {"input_ids": batch["input_ids"].view(len(examples), n, -1),
            "attention_mask": batch["attention_mask"].view(len(examples), n, -1),
            "labels": torch.tensor([ex.label for ex in examples])}


def _clip_questions(tokenizer: Any, questions: list[str], limit: int) -> list[str]:
    """Each question cut to its first ``limit`` tokens (at a character boundary), so the context
    always has room in the window."""
    encoded = tokenizer(questions, add_special_tokens=False, truncation=True, max_length=limit,
                        return_offsets_mapping=True)
    return [q[:offsets[-1][1]] if offsets else "" for q, offsets in zip(questions, encoded["offset_mapping"])]


def _encode_spans(tokenizer: Any, examples: Sequence[SpanExample], max_length: int) -> dict[str, torch.Tensor]:
    """One row per *window*: a context longer than the window is cut into overlapping windows (the
    SQuAD/XTREME doc stride), each with the whole question. ``example`` maps a window to its example
    in the batch; ``labels`` is the answer's (start, end) token in that window, or (0, 0) (the <s>
    token) where the window does not hold the whole answer."""
    specials = tokenizer.num_special_tokens_to_add(pair=True)  # <s> q </s></s> c </s> for XLM-R
    limit = min(MAX_QUERY_TOKENS, max(1, (max_length - specials) // 2))  # the context keeps half the room
    questions = _clip_questions(tokenizer, [ex.question for ex in examples], limit)
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


class Head(nn.Module):
    """Maps hidden states (batch, seq, hidden) to logits; ``decode`` turns logits into predictions.

    One subclass per head kind, registered with :func:`register_head` under a kind that
    :data:`~stiltsearch.trainables.tasks.base.HEAD_KINDS` declares; ``Head(kind, hidden, labels)``
    builds the registered class for ``kind``.
    """

    kind: str = ""
    pooled = False  # reads the <s> token through a dense+tanh layer, as RoBERTa's classifiers do

    def __new__(cls, kind: str = "", *args: Any, **kwargs: Any) -> Head:
        return super().__new__(head_class(kind) if cls is Head else cls)

    def __init__(self, kind: str, hidden_size: int, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size) if self.pooled else None
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, self.outputs(num_labels))

    @staticmethod
    def encode(tokenizer: Any, examples: Sequence[Any], max_length: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def outputs(self, num_labels: int) -> int:
        return num_labels

    def forward(self, hidden: torch.Tensor, num_choices: int | None = None) -> torch.Tensor:
        if not self.pooled:
            return self.out(self.dropout(hidden))
        assert self.dense is not None
        pooled = torch.tanh(self.dense(self.dropout(hidden[:, 0])))
        return self.out(self.dropout(pooled))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits.flatten(0, -2).float(), labels.flatten(), ignore_index=IGNORE)

    def decode(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> list[Any]:
        return list(logits.argmax(-1).tolist())


H = TypeVar("H", bound=type[Head])
HEAD_CLASSES: dict[str, type[Head]] = {}


def register_head(cls: H) -> H:
    """Class decorator: ``cls`` implements the declared head kind ``cls.kind``."""
    if cls.kind not in HEAD_KINDS:
        raise ValueError(f"head class {cls.__name__}: kind {cls.kind!r} is not declared in tasks/base.py HEAD_KINDS")
    HEAD_CLASSES[cls.kind] = cls
    return cls


def head_class(kind: str) -> type[Head]:
    try:
        return HEAD_CLASSES[kind]
    except KeyError:
        raise ValueError(f"unknown head kind {kind!r}; known: {', '.join(HEAD_CLASSES)}") from None


@register_head
class ClassificationHead(Head):
    kind = "classification"
    pooled = True
    encode = staticmethod(_encode_pairs)


@register_head
class ChoiceHead(Head):
    """One score per (context, choice) row; the rows of an example become its choices' logits."""

    kind = "choice"
    pooled = True
    encode = staticmethod(_encode_choices)

    def outputs(self, num_labels: int) -> int:
        return 1

    def forward(self, hidden: torch.Tensor, num_choices: int | None = None) -> torch.Tensor:
        return super().forward(hidden).view(-1, num_choices or 1)


@register_head
class TaggingHead(Head):
    """A label per token; a word's label is read at its first sub-token (in its best window)."""

    kind = "tagging"
    encode = staticmethod(_encode_tags)

    def decode(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> list[Any]:
        """Per *example*, a label per word: read in the window where the word's first sub-token has
        the most context, i.e. is farthest from that window's nearer end (as the QA scripts pick a
        token's "max context" window)."""
        best = logits.argmax(-1)
        n_words = batch["n_words"].tolist()
        tags = [[0] * n for n in n_words]
        context = [[-1] * n for n in n_words]  # per word: the distance to the edge it was read at
        for row in range(best.shape[0]):
            example = int(batch["example"][row])
            positions = (batch["word_index"][row] >= 0).nonzero().flatten().tolist()
            for k, position in enumerate(positions):
                word, room = int(batch["word_index"][row, position]), min(k, len(positions) - 1 - k)
                if room > context[example][word]:
                    tags[example][word], context[example][word] = int(best[row, position]), room
        return tags


@register_head
class SpanHead(Head):
    """Extractive QA: a start and an end logit per token."""

    kind = "span"
    encode = staticmethod(_encode_spans)

    def outputs(self, num_labels: int) -> int:
        return 2

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # the mean of the start and end cross-entropies over positions
        return nn.functional.cross_entropy(logits.float().transpose(1, 2).flatten(0, 1), labels.flatten())

    def decode(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> list[Any]:
        return _decode_spans(logits, batch)


@register_head
class RetrievalHead(Head):
    """Retrieval is scored from the encoder's pooled states: no module is trained (a model never
    builds one); the kind only encodes the query side of a workload."""

    kind = "retrieval"
    encode = staticmethod(_encode_sources)


def _encode_dual(tokenizer: Any, examples: Sequence[Any], max_length: int) -> dict[str, torch.Tensor]:
    """Training pairs (:class:`DualExample`): the queries' rows, then their candidates' rows, one
    batch; ``labels[i] = i``: query i's candidate is row i of the second half. Any other examples
    (a throughput workload, an evaluation): their query side only."""
    if not all(isinstance(ex, DualExample) for ex in examples):
        return _encode_sources(tokenizer, examples, max_length)
    batch = tokenizer([ex.query for ex in examples] + [ex.candidate for ex in examples], truncation=True,
                      max_length=max_length, padding=True, return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
            "labels": torch.arange(len(examples))}


@register_head
class DualEncoderHead(Head):
    """XTREME-R's retrieval dual encoder (``BertForRetrieval`` in its ``third_party/bert.py``): one
    encoder for both sides; a text is its <s> vector through a dense+tanh layer (BERT's pooler),
    at unit length; trained with an in-batch softmax of each query over the batch's candidates,
    the cosines scaled by a learnt logit scale that starts at 100. Its output is the vectors."""

    kind = "dual_encoder"
    pooled = True
    encode = staticmethod(_encode_dual)
    START_SCALE = 100.0

    def __init__(self, kind: str, hidden_size: int, num_labels: int, dropout: float = 0.1) -> None:
        nn.Module.__init__(self)
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.logit_scale = nn.Parameter(torch.tensor([self.START_SCALE]))

    def forward(self, hidden: torch.Tensor, num_choices: int | None = None) -> torch.Tensor:
        assert self.dense is not None
        return nn.functional.normalize(torch.tanh(self.dense(self.dropout(hidden[:, 0]))), dim=-1)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        queries, candidates = logits[: len(labels)].float(), logits[len(labels):].float()
        return nn.functional.cross_entropy(queries @ candidates.T * self.logit_scale.float(), labels)


def _decode_spans(logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> list[tuple[int, int, float]]:
    """Per *example*: the best context span over its windows as (start char, end char), and its
    margin over "no answer".

    In a window the best span maximises start + end logit with start <= end < start +
    MAX_ANSWER_TOKENS. An example's answer is its best window's span; its null score is the lowest
    <s> score (start + end logit at position 0) over its windows, as the SQuAD 2.0 scripts do; the
    margin is null - best span score. SQuAD 2.0-style metrics answer "" when the margin is positive;
    SQuAD 1.1-style metrics ignore it.
    """
    seq = logits.shape[1]
    # start <= end < start + MAX_ANSWER_TOKENS: the same for every row, so built once per batch
    band = torch.ones(seq, seq, dtype=torch.bool, device=logits.device).triu().tril(MAX_ANSWER_TOKENS - 1)
    best: dict[int, tuple[float, int, int]] = {}  # example -> (span score, start char, end char)
    null: dict[int, float] = {}
    for row in range(logits.shape[0]):
        start, end = logits[row, :, 0], logits[row, :, 1]
        allowed = batch["in_context"][row].to(logits.device)
        scores = (start[:, None] + end[None, :]).masked_fill(~(band & allowed[:, None] & allowed[None, :]), float("-inf"))
        s, e = divmod(int(scores.argmax()), seq)
        example = int(batch["example"][row])
        offsets = batch["offsets"][row]
        if example not in best or float(scores[s, e]) > best[example][0]:
            best[example] = (float(scores[s, e]), int(offsets[s, 0]), int(offsets[e, 1]))
        null[example] = min(null.get(example, float("inf")), float(start[0] + end[0]))
    return [(best[i][1], best[i][2], null[i] - best[i][0]) for i in range(len(best))]
