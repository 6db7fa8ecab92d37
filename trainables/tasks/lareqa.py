"""LAReQA (XTREME-R): language-agnostic answer retrieval. Each XQuAD-R question (11 languages,
google-research-datasets/xquad_r) ranks every sentence of every language's contexts; the answer
sentences of that question in all 11 languages are relevant; scored by mAP@20.

The hub copy drops LAReQA's sentence breaks, so contexts are split here at sentence-final
punctuation (Latin, CJK, Devanagari, Arabic); Thai, which marks sentences with spaces, keeps whole
paragraphs. A candidate is its sentence followed by its paragraph, as XTREME-R encodes it.

Phase 3, as XTREME-R's ``train_lareqa.sh``: a dual encoder (``heads.DualEncoderHead``) fine-tuned
on English SQuAD v1.1 training questions against their answer sentences (with the paragraph), an
in-batch softmax; then the retrieval above with its vectors.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from stiltsearch.trainables import hub
from stiltsearch.trainables.hub import Source
from stiltsearch.trainables.tasks.base import DualExample, Example, PooledQAExample, register
from stiltsearch.trainables.tasks.real import SQUAD_TRAIN, SQUAD_TRAIN_ROWS, HubTask
from stiltsearch.trainables.types import Features, Row

SENTENCE_END = re.compile(r"(?<=[.!?।؟])\s+|(?<=[。！？])")


def split_sentences(text: str) -> list[tuple[int, str]]:
    """(character offset, sentence) of each non-empty sentence of ``text``."""
    pieces, start = [], 0
    for match in SENTENCE_END.finditer(text):
        pieces.append((start, text[start:match.start()]))
        start = match.end()
    pieces.append((start, text[start:]))
    return [(offset, piece) for offset, piece in pieces if piece.strip()]


def answer_sentence(context: str, start: int) -> tuple[tuple[str, ...], int]:
    """The context's sentences and the index of the one holding character ``start``."""
    sentences = split_sentences(context)
    return tuple(s for _, s in sentences), max((i for i, (offset, _) in enumerate(sentences) if offset <= start),
                                              default=0)


@register
class LAReQA(HubTask):
    name = "lareqa"
    head = "dual_encoder"
    labels = ()
    metric = "map_at_20"
    retrieve = "answer_pool"
    languages = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
    train_languages = ("en",)  # SQuAD v1.1's training set, for the dual encoder
    dataset = "google-research-datasets/xquad_r"
    split_names = {"train": "train", "dev": "validation", "test": "validation"}  # XQuAD-R: one split only
    train_rows = SQUAD_TRAIN_ROWS

    def config(self, language: str) -> str:
        return language

    def sources(self, split: str, language: str) -> list[Source]:
        return [SQUAD_TRAIN] if split == "train" else super().sources(split, language)

    def load(self, split: str, language: str) -> Sequence[Example]:
        if split != "train":
            return super().load(split, language)
        if language != "en":
            raise ValueError(f"task 'lareqa' trains on English SQuAD only, not {language!r}")
        pairs: list[Example] = []
        for row in hub.load_rows(SQUAD_TRAIN, self.data):
            if row["answers"]["answer_start"]:
                sentences, answer = answer_sentence(row["context"], row["answers"]["answer_start"][0])
                example = PooledQAExample(row["question"], row["id"], sentences, answer, row["context"])
                pairs.append(DualExample(row["question"], example.candidate(answer)))
        if not pairs:
            raise ValueError("task 'lareqa': SQuAD's train split has no answered question")
        return pairs

    def convert(self, row: Row, features: Features, language: str) -> PooledQAExample | None:
        if not row["answers"]["answer_start"]:
            return None
        sentences, answer = answer_sentence(row["context"], row["answers"]["answer_start"][0])
        return PooledQAExample(row["question"], row["id"], sentences, answer, row["context"])
