"""BUCC 2018: mine the parallel sentence pairs between a language and English; F1 over pairs, with
the similarity threshold chosen on the dev (sample) set, as XTREME does.

google/xtreme's ``bucc18.<lang>`` rows are the *gold pairs*, with the sentence ids in
``source_lang``/``target_lang`` (not language codes). The pool mined here is the sentences of those
pairs, not BUCC's full monolingual corpora, so scores run higher than on the original shared task.
"""

from __future__ import annotations

from stiltsearch.trainables.tasks.base import BitextExample, register
from stiltsearch.trainables.tasks.real import HubTask
from stiltsearch.trainables.types import Features, Row


@register
class BUCC(HubTask):
    name = "bucc2018"
    head = "retrieval"
    labels = ()
    metric = "bucc_f1"
    retrieve = "mine"
    pool, pool_layer = "cls", "middle"  # XTREME's run_bucc2018.sh: the <s> vector of layer 7 of 12
    languages = ("de", "fr", "ru", "zh")
    train_languages = ()
    dataset = "google/xtreme"
    split_names = {"dev": "validation", "test": "test"}

    def config(self, language: str) -> str:
        return f"bucc18.{language}"

    def convert(self, row: Row, features: Features, language: str) -> BitextExample:
        return BitextExample(row["source_sentence"].rstrip("\n"), row["target_sentence"].rstrip("\n"),
                             source_id=row["source_lang"], target_id=row["target_lang"])
