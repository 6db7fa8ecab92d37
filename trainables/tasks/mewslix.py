"""Mewsli-X (XTREME-R): link an entity mention in a WikiNews article (11 languages) to its entity
among the candidate set, by retrieval; scored by mAP@20 (one relevant entity per mention).

Not on the Hugging Face hub: ``data: {mewsli-x: DIR}`` names the directory that
google-research's ``get-mewsli-x.sh`` fills, with ``candidate_set_entities.jsonl`` and
``wikinews_mentions-{dev,test}.jsonl`` (the release's ``wikinews_mentions_no_text-*`` files have
empty texts: the script restores them). A mention's query is its sentence in the article; an
entity's text is its title and description.

Phase 3, as XTREME-R's ``train_mewslix.sh``: a dual encoder (``heads.DualEncoderHead``) fine-tuned
on the release's English Wikipedia mention-entity pairs (``wikipedia_pairs-train.jsonl``: a
mention's sentence against its entity's title and description), an in-batch softmax; then the
retrieval over the candidate set with its vectors.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stiltsearch.trainables.hub import DataUnavailable
from stiltsearch.trainables.tasks.base import DualExample, Example, MentionExample, register
from stiltsearch.trainables.tasks.real import HubTask
from stiltsearch.trainables.types import Features, Row

FILES = {"dev": "wikinews_mentions-dev.jsonl", "test": "wikinews_mentions-test.jsonl"}
TRAIN_FILE = "wikipedia_pairs-train.jsonl"  # English Wikipedia mention-entity pairs, for the dual encoder


def _sentence(context: dict[str, Any], start: int) -> str:
    """The sentence of the article that holds character ``start`` (the whole text if none is marked)."""
    for span in context.get("sentence_spans") or []:
        if span["start"] <= start < span["end"]:
            return context["text"][span["start"]:span["end"]]
    return context["text"]


@register
class MewsliX(HubTask):
    name = "mewslix"
    head = "dual_encoder"
    labels = ()
    metric = "map_at_20"
    retrieve = "entity_pool"
    languages = ("ar", "de", "en", "es", "fa", "ja", "pl", "ro", "ta", "tr", "uk")
    train_languages = ("en",)  # the Wikipedia pairs, for the dual encoder
    dataset = "mewsli-x"  # the key of its directory in the config's ``data``
    on_hub = False
    split_names = {"train": "train", "dev": "dev", "test": "test"}

    def _path(self, name: str) -> Path:
        if self.dataset not in self.data:
            raise DataUnavailable("data.mewsli-x: Mewsli-X is not on the Hugging Face hub; run google-research's "
                                  "get-mewsli-x.sh and set `data: {mewsli-x: DIR}` to the directory it fills")
        path = Path(self.data[self.dataset]) / name
        if not path.exists():
            raise DataUnavailable(f"data.mewsli-x: {path} does not exist; the directory needs "
                                  f"candidate_set_entities.jsonl and {', '.join(FILES.values())}")
        return path

    def __init__(self, data: Mapping[str, str] | None = None) -> None:
        super().__init__(data)
        self._parsed: dict[str, list[dict[str, Any]]] = {}

    @functools.cached_property
    def candidates(self) -> dict[str, str]:
        """entity id -> "title. description", in file order."""
        entities = {}
        for line in self._path("candidate_set_entities.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                entity = json.loads(line)
                entities[entity["entity_id"]] = f"{entity['title']}. {entity['description']}"
        return entities

    def _documents(self, split: str) -> list[dict[str, Any]]:
        """The split's articles, parsed once per task object (each language reads the same file)."""
        if split not in self._parsed:
            lines = self._path(FILES[split]).read_text(encoding="utf-8").splitlines()
            self._parsed[split] = [json.loads(line) for line in lines if line.strip()]
        return self._parsed[split]

    def convert(self, row: Row, features: Features, language: str) -> MentionExample:  # files, not rows
        raise NotImplementedError

    def pairs(self) -> list[DualExample]:
        """The English training pairs: each mention's sentence, its entity's "title. description"."""
        pairs = []
        for number, line in enumerate(self._path(TRAIN_FILE).read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                pair = json.loads(line)
                mention, entity = pair["contextual_mention"], pair["entity"]
                query = _sentence(mention["context"], mention["mention"]["mention_span"]["start"])
                candidate = f"{entity['title']}. {entity['description']}"
            except (ValueError, KeyError, TypeError) as exc:
                raise DataUnavailable(f"data.mewsli-x: {TRAIN_FILE} line {number} is not a mention-entity pair "
                                      f"({type(exc).__name__}: {exc}); use the file get-mewsli-x.sh writes") from None
            if query:
                pairs.append(DualExample(query, candidate))
        if not pairs:
            raise DataUnavailable(f"data.mewsli-x: {TRAIN_FILE} holds no pair with a text (the no_text release?); "
                                  "run get-mewsli-x.sh to restore them")
        return pairs

    def load(self, split: str, language: str) -> Sequence[Example]:
        if split == "train":
            if language != "en":
                raise ValueError(f"task 'mewslix' trains on its English Wikipedia pairs only, not {language!r}")
            return self.pairs()
        if split not in FILES or language not in self.languages:
            raise ValueError(f"task 'mewslix' has {list(FILES)} in {self.languages}; asked for {split!r} in {language!r}")
        mentions = []
        for document in self._documents(split):
            context = document["context"]
            if context["language"] != language:
                continue
            if not context["text"]:
                raise DataUnavailable(f"data.mewsli-x: {FILES[split]} has no article texts (the no_text release); "
                                      f"run get-mewsli-x.sh to restore them")
            for m in document["mentions"]:
                if not m["entity_id"]:  # XTREME's preprocessing leaves the id blank where it holds no gold
                    continue
                if m["entity_id"] not in self.candidates:
                    raise DataUnavailable(f"data.mewsli-x: {FILES[split]} links a mention to {m['entity_id']!r}, which "
                                          f"candidate_set_entities.jsonl lacks; use both files of one release")
                mentions.append(MentionExample(_sentence(context, m["mention_span"]["start"]), m["entity_id"]))
        if not mentions:
            raise DataUnavailable(f"data.mewsli-x: {FILES[split]} has no mention with an entity id in {language!r} "
                                  f"(blank ids hold no gold); score another split or language")
        return mentions
