"""UDPOS: universal part-of-speech tags in 33 languages, from google/xtreme's ``udpos.<Language>``
configs (named by the English language name). Split availability varies: Kazakh has no validation
set, and Tagalog, Thai and Yoruba have a test set only; they are left out of the dev score (and the
trial's metrics list the languages each split was scored on)."""

from __future__ import annotations

from stiltsearch.trainables.tasks.base import TagExample, register
from stiltsearch.trainables.tasks.real import HubTask
from stiltsearch.trainables.types import Features, Row

NAMES = {"af": "Afrikaans", "ar": "Arabic", "eu": "Basque", "bg": "Bulgarian", "nl": "Dutch", "en": "English",
         "et": "Estonian", "fi": "Finnish", "fr": "French", "de": "German", "el": "Greek", "he": "Hebrew",
         "hi": "Hindi", "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese", "kk": "Kazakh",
         "ko": "Korean", "zh": "Chinese", "mr": "Marathi", "fa": "Persian", "pt": "Portuguese", "ru": "Russian",
         "es": "Spanish", "tl": "Tagalog", "ta": "Tamil", "te": "Telugu", "th": "Thai", "tr": "Turkish",
         "ur": "Urdu", "vi": "Vietnamese", "yo": "Yoruba"}
TEST_ONLY = ("tl", "th", "yo")
NO_VALIDATION = ("kk",) + TEST_ONLY
UPOS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
        "SCONJ", "SYM", "VERB", "X")


@register
class UDPOS(HubTask):
    name = "udpos"
    head = "tagging"
    labels = UPOS
    metric = "seqeval_f1"  # as XTREME scores UDPOS: seqeval reads a tag's first letter as its prefix
    languages = tuple(sorted(NAMES))
    train_languages = tuple(sorted(set(NAMES) - set(TEST_ONLY)))  # in-language gold training data
    dataset = "google/xtreme"
    train_rows = 12543  # UD English-EWT train (google/xtreme udpos.English); not in the notes, EWT's size

    def eval_languages(self, split: str) -> tuple[str, ...]:
        return tuple(lang for lang in self.languages if split != "dev" or lang not in NO_VALIDATION)

    def config(self, language: str) -> str:
        return f"udpos.{NAMES[language]}"

    def convert(self, row: Row, features: Features, language: str) -> TagExample:
        return TagExample(tuple(row["tokens"]), tuple(self.tag_ids(features, "pos_tags", row["pos_tags"])))
