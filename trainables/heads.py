"""Task heads on a shared encoder, one per head kind: how a batch is encoded, scored and decoded.

Every head reads the encoder's last hidden states. Tagging labels the first sub-token of each word
and ignores the rest (label -100), as XTREME does. Span (extractive QA) heads predict a start and an
end token; a span that cannot be found in the window is labelled with the <s> token at position 0,
as in SQuAD 2.0 training. The toy's contexts fit in one window; the doc-stride windowing of long
contexts belongs to the real QA loaders.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from stiltsearch.trainables.tasks.base import ChoiceExample, PairExample, SpanExample, TagExample

IGNORE = -100  # label id that the loss skips
MAX_ANSWER_TOKENS = 30  # longest span a QA head may predict (the SQuAD scripts' max_answer_length)


def encode(kind: str, tokenizer: Any, examples: Sequence[Any], max_length: int) -> dict[str, torch.Tensor]:
    """Tokenize a batch for a head kind; pads to the longest sequence in the batch."""
    if kind == "classification":
        return _encode_pairs(tokenizer, examples, max_length)
    if kind == "tagging":
        return _encode_tags(tokenizer, examples, max_length)
    if kind == "choice":
        return _encode_choices(tokenizer, examples, max_length)
    if kind == "span":
        return _encode_spans(tokenizer, examples, max_length)
    if kind == "retrieval":  # the non-English side; the English side is encoded by the caller
        return dict(tokenizer([ex.source for ex in examples], truncation=True, max_length=max_length,
                              padding=True, return_tensors="pt"))
    raise ValueError(f"unknown head kind {kind!r}")


def _encode_pairs(tokenizer: Any, examples: Sequence[PairExample], max_length: int) -> dict[str, torch.Tensor]:
    second = [ex.text_b for ex in examples] if examples[0].text_b is not None else None
    batch = tokenizer([ex.text_a for ex in examples], second, truncation=True, max_length=max_length,
                      padding=True, return_tensors="pt")
    batch["labels"] = torch.tensor([ex.label for ex in examples])
    return dict(batch)


def _encode_tags(tokenizer: Any, examples: Sequence[TagExample], max_length: int) -> dict[str, torch.Tensor]:
    batch = tokenizer([list(ex.words) for ex in examples], is_split_into_words=True, truncation=True,
                      max_length=max_length, padding=True, return_tensors="pt")
    labels = torch.full(batch["input_ids"].shape, IGNORE)
    first_token = torch.full(batch["input_ids"].shape, -1)  # position -> word index, first sub-tokens only
    for row, ex in enumerate(examples):
        previous = None
        for position, word in enumerate(batch.word_ids(row)):
            if word is not None and word != previous:
                labels[row, position] = ex.tags[word]
                first_token[row, position] = word
            previous = word
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "labels": labels,
            "word_index": first_token, "n_words": torch.tensor([len(ex.words) for ex in examples])}


def _encode_choices(tokenizer: Any, examples: Sequence[ChoiceExample], max_length: int) -> dict[str, torch.Tensor]:
    n = len(examples[0].choices)
    firsts = [ex.context for ex in examples for _ in range(n)]
    seconds = [choice for ex in examples for choice in ex.choices]
    batch = tokenizer(firsts, seconds, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    return {"input_ids": batch["input_ids"].view(len(examples), n, -1),
            "attention_mask": batch["attention_mask"].view(len(examples), n, -1),
            "labels": torch.tensor([ex.label for ex in examples])}


def _encode_spans(tokenizer: Any, examples: Sequence[SpanExample], max_length: int) -> dict[str, torch.Tensor]:
    # longest_first, not only_second: at a short max length (a deployment knob) the question alone may
    # not fit, and then the question is cut too rather than the batch failing
    batch = tokenizer([ex.question for ex in examples], [ex.context for ex in examples], truncation="longest_first",
                      max_length=max_length, padding=True, return_offsets_mapping=True, return_tensors="pt")
    offsets = batch["offset_mapping"]  # (batch, seq, 2) character offsets into question or context
    in_context = torch.zeros(batch["input_ids"].shape, dtype=torch.bool)
    labels = torch.zeros(len(examples), 2, dtype=torch.long)  # (start, end) token; (0, 0) = no answer
    for row, ex in enumerate(examples):
        sequence_ids = batch.sequence_ids(row)
        positions = [i for i, s in enumerate(sequence_ids) if s == 1]
        in_context[row, positions] = True
        if ex.answer_start < 0:
            continue
        start_char, end_char = ex.answer_start, ex.answer_start + len(ex.answers[0])
        starts = [i for i in positions if offsets[row, i, 0] <= start_char < offsets[row, i, 1]]
        ends = [i for i in positions if offsets[row, i, 0] < end_char <= offsets[row, i, 1]]
        if starts and ends:  # otherwise the answer was cut off: labelled as no answer
            labels[row] = torch.tensor([starts[0], ends[-1]])
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "labels": labels,
            "offsets": offsets, "in_context": in_context}


class Head(nn.Module):
    """Maps hidden states (batch, seq, hidden) to logits; ``decode`` turns logits into predictions."""

    def __init__(self, kind: str, hidden_size: int, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.kind = kind
        out = {"choice": 1, "span": 2}.get(kind, num_labels)  # span: a start and an end logit per token
        # classification and choice read the <s> token through a dense+tanh layer, as RoBERTa does
        self.dense = nn.Linear(hidden_size, hidden_size) if kind in ("classification", "choice") else None
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, out)

    def forward(self, hidden: torch.Tensor, num_choices: int | None = None) -> torch.Tensor:
        if self.kind in ("tagging", "span"):
            return self.out(self.dropout(hidden))  # span: (batch, seq, 2)
        pooled = torch.tanh(self.dense(self.dropout(hidden[:, 0])))
        logits = self.out(self.dropout(pooled))
        return logits.view(-1, num_choices) if self.kind == "choice" else logits

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.kind == "span":  # mean of the start and end cross-entropies over positions
            return nn.functional.cross_entropy(logits.float().transpose(1, 2).flatten(0, 1), labels.flatten())
        return nn.functional.cross_entropy(logits.flatten(0, -2).float(), labels.flatten(), ignore_index=IGNORE)

    def decode(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> list[Any]:
        if self.kind == "span":
            return _decode_spans(logits, batch)
        if self.kind != "tagging":
            return logits.argmax(-1).tolist()
        best = logits.argmax(-1)
        predictions = []
        for row in range(best.shape[0]):
            words = batch["word_index"][row]
            n_words = int(batch["n_words"][row])
            tags = [0] * n_words  # words cut off by max_length are predicted as label 0 ("O")
            for position in (words >= 0).nonzero().flatten().tolist():
                tags[int(words[position])] = int(best[row, position])
            predictions.append(tags)
        return predictions


def _decode_spans(logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> list[tuple[int, int, float]]:
    """Per row: the best context span as (start char, end char) and its margin over "no answer".

    The best span maximises start + end logit with start <= end < start + MAX_ANSWER_TOKENS; the
    margin is (null score - best span score), where null is <s>'s start + end logits. SQuAD 2.0-style
    metrics answer "" when the margin is positive; SQuAD 1.1-style metrics ignore it.
    """
    predictions = []
    seq = logits.shape[1]
    # start <= end < start + MAX_ANSWER_TOKENS: the same for every row, so built once per batch
    band = torch.ones(seq, seq, dtype=torch.bool, device=logits.device).triu().tril(MAX_ANSWER_TOKENS - 1)
    for row in range(logits.shape[0]):
        start, end = logits[row, :, 0], logits[row, :, 1]
        allowed = batch["in_context"][row].to(logits.device)
        scores = start[:, None] + end[None, :]  # (start position, end position)
        valid = band & allowed[:, None] & allowed[None, :]
        scores = scores.masked_fill(~valid, float("-inf"))
        best = int(scores.argmax())
        s, e = divmod(best, seq)
        null = float(start[0] + end[0])
        offsets = batch["offsets"][row]
        predictions.append((int(offsets[s, 0]), int(offsets[e, 1]), null - float(scores[s, e])))
    return predictions
