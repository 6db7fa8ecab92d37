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

from stiltsearch.trainables import encoding
from stiltsearch.trainables.encoding import IGNORE
from stiltsearch.trainables.tasks.base import HEAD_KINDS
from stiltsearch.trainables.types import Tokenizer

MAX_ANSWER_TOKENS = 30  # longest span a QA head may predict (the SQuAD scripts' max_answer_length)


def encode(kind: str, tokenizer: Tokenizer, examples: Sequence[Any], max_length: int) -> dict[str, torch.Tensor]:
    """Tokenize a batch for a head kind; pads to the longest sequence in the batch."""
    return head_class(kind).encode(tokenizer, examples, max_length)


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
    def encode(tokenizer: Tokenizer, examples: Sequence[Any], max_length: int) -> dict[str, torch.Tensor]:
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
    encode = staticmethod(encoding.pairs)


@register_head
class ChoiceHead(Head):
    """One score per (context, choice) row; the rows of an example become its choices' logits."""

    kind = "choice"
    pooled = True
    encode = staticmethod(encoding.choices)

    def outputs(self, num_labels: int) -> int:
        return 1

    def forward(self, hidden: torch.Tensor, num_choices: int | None = None) -> torch.Tensor:
        return super().forward(hidden).view(-1, num_choices or 1)


@register_head
class TaggingHead(Head):
    """A label per token; a word's label is read at its first sub-token (in its best window)."""

    kind = "tagging"
    encode = staticmethod(encoding.tags)

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
    encode = staticmethod(encoding.spans)

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
    encode = staticmethod(encoding.sources)


@register_head
class DualEncoderHead(Head):
    """XTREME-R's retrieval dual encoder (``BertForRetrieval`` in its ``third_party/bert.py``): one
    encoder for both sides; a text is its <s> vector through a dense+tanh layer (BERT's pooler),
    at unit length; trained with an in-batch softmax of each query over the batch's candidates,
    the cosines scaled by a learnt logit scale that starts at 100. Its output is the vectors."""

    kind = "dual_encoder"
    pooled = True
    encode = staticmethod(encoding.dual)
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
