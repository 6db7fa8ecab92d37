"""PAN-X (WikiANN) named entities in 40 languages, from google/xtreme's ``PAN-X.<lang>`` configs.

Every language has gold training data (XTREME's in-language setting), so each may join phase 3.
"""

from __future__ import annotations

from stiltsearch.trainables.tasks.base import TagExample, register
from stiltsearch.trainables.tasks.real import HubTask
from stiltsearch.trainables.types import Features, Row

LANGUAGES: tuple[str, ...] = ("af", "ar", "bg", "bn", "de", "el", "en", "es", "et", "eu", "fa", "fi", "fr", "he", "hi", "hu", "id",
             "it", "ja", "jv", "ka", "kk", "ko", "ml", "mr", "ms", "my", "nl", "pt", "ru", "sw", "ta", "te", "th",
             "tl", "tr", "ur", "vi", "yo", "zh")


@register
class PANX(HubTask):
    name = "panx"
    head = "tagging"
    labels = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
    metric = "seqeval_f1"
    languages = LANGUAGES
    train_languages = LANGUAGES
    dataset = "google/xtreme"
    train_rows = 20000

    def config(self, language: str) -> str:
        return f"PAN-X.{language}"

    def convert(self, row: Row, features: Features, language: str) -> TagExample:
        return TagExample(tuple(row["tokens"]), tuple(self.tag_ids(features, "ner_tags", row["ner_tags"])))
