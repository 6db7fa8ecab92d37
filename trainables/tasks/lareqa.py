"""LAReQA (XTREME-R): language-agnostic answer retrieval. Each XQuAD-R question (11 languages,
google-research-datasets/xquad_r) ranks every sentence of every language's contexts; the answer
sentences of that question in all 11 languages are relevant; scored by mAP@20.

The hub copy drops LAReQA's sentence breaks, so contexts are split here at sentence-final
punctuation (Latin, CJK, Devanagari, Arabic); Thai, which marks sentences with spaces, keeps whole
paragraphs. As for BUCC and Tatoeba, the encoder is used as phase 2 left it: XTREME-R first
fine-tunes a dual encoder on SQuAD, which this does not.
"""

from __future__ import annotations

import re
from typing import Any

from stiltsearch.trainables.tasks.base import PooledQAExample, register
from stiltsearch.trainables.tasks.real import HubTask

SENTENCE_END = re.compile(r"(?<=[.!?।؟])\s+|(?<=[。！？])")


def split_sentences(text: str) -> list[tuple[int, str]]:
    """(character offset, sentence) of each non-empty sentence of ``text``."""
    pieces, start = [], 0
    for match in SENTENCE_END.finditer(text):
        pieces.append((start, text[start:match.start()]))
        start = match.end()
    pieces.append((start, text[start:]))
    return [(offset, piece) for offset, piece in pieces if piece.strip()]


@register
class LAReQA(HubTask):
    name = "lareqa"
    head = "retrieval"
    labels = ()
    metric = "map_at_20"
    retrieve = "answer_pool"
    languages = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
    train_languages = ()
    dataset = "google-research-datasets/xquad_r"
    split_names = {"dev": "validation", "test": "validation"}  # one split only

    def config(self, language: str) -> str:
        return language

    def convert(self, row: dict[str, Any], features: Any, language: str) -> PooledQAExample | None:
        if not row["answers"]["answer_start"]:
            return None
        sentences = split_sentences(row["context"])
        at = row["answers"]["answer_start"][0]
        answer = max((i for i, (offset, _) in enumerate(sentences) if offset <= at), default=0)
        return PooledQAExample(row["question"], row["id"], tuple(s for _, s in sentences), answer)
