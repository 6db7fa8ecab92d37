"""Task heads on a shared encoder, one per head kind: how a batch is encoded, scored and decoded.

Every head reads the encoder's last hidden states. Tagging labels the first sub-token of each word
and ignores the rest (label -100), as XTREME does.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from stiltsearch.trainables.tasks.base import ChoiceExample, PairExample, TagExample

IGNORE = -100  # label id that the loss skips


def encode(kind: str, tokenizer: Any, examples: Sequence[Any], max_length: int) -> dict[str, torch.Tensor]:
    """Tokenize a batch for a head kind; pads to the longest sequence in the batch."""
    if kind == "classification":
        return _encode_pairs(tokenizer, examples, max_length)
    if kind == "tagging":
        return _encode_tags(tokenizer, examples, max_length)
    if kind == "choice":
        return _encode_choices(tokenizer, examples, max_length)
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


class Head(nn.Module):
    """Maps hidden states (batch, seq, hidden) to logits; ``decode`` turns logits into predictions."""

    def __init__(self, kind: str, hidden_size: int, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.kind = kind
        out = 1 if kind == "choice" else num_labels
        # classification and choice read the <s> token through a dense+tanh layer, as RoBERTa does
        self.dense = nn.Linear(hidden_size, hidden_size) if kind != "tagging" else None
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, out)

    def forward(self, hidden: torch.Tensor, num_choices: int | None = None) -> torch.Tensor:
        if self.kind == "tagging":
            return self.out(self.dropout(hidden))
        pooled = torch.tanh(self.dense(self.dropout(hidden[:, 0])))
        logits = self.out(self.dropout(pooled))
        return logits.view(-1, num_choices) if self.kind == "choice" else logits

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits.flatten(0, -2).float(), labels.flatten(), ignore_index=IGNORE)

    def decode(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> list[Any]:
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
