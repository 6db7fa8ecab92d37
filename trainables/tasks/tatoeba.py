"""Tatoeba: find each sentence's English translation among 1000 by nearest neighbour of pooled
representations; no training. google/xtreme ``tatoeba.<ISO 639-3>`` configs hold validation only
(so it is dev and test), and keep each line's trailing newline, which is stripped here."""

from __future__ import annotations

from stiltsearch.trainables.tasks.base import BitextExample, register
from stiltsearch.trainables.tasks.real import HubTask
from stiltsearch.trainables.types import Features, Row

CODES = {"af": "afr", "ar": "ara", "bg": "bul", "bn": "ben", "de": "deu", "el": "ell", "es": "spa", "et": "est",
         "eu": "eus", "fa": "pes", "fi": "fin", "fr": "fra", "he": "heb", "hi": "hin", "hu": "hun", "id": "ind",
         "it": "ita", "ja": "jpn", "jv": "jav", "ka": "kat", "kk": "kaz", "ko": "kor", "ml": "mal", "mr": "mar",
         "nl": "nld", "pt": "por", "ru": "rus", "sw": "swh", "ta": "tam", "te": "tel", "th": "tha", "tl": "tgl",
         "tr": "tur", "ur": "urd", "vi": "vie", "zh": "cmn"}


@register
class Tatoeba(HubTask):
    name = "tatoeba"
    head = "retrieval"
    labels = ()
    metric = "retrieval_accuracy"
    languages = tuple(CODES)  # xx -> en; there are no English-English pairs
    train_languages = ()
    dataset = "google/xtreme"
    split_names = {"dev": "validation", "test": "validation"}
    pool_layer = "middle"  # XTREME's run_tatoeba.sh: mean of layer 7 of 12 (13 of 24)

    def config(self, language: str) -> str:
        return f"tatoeba.{CODES[language]}"

    def convert(self, row: Row, features: Features, language: str) -> BitextExample:
        return BitextExample(row["source_sentence"].rstrip("\n"), row["target_sentence"].rstrip("\n"))
