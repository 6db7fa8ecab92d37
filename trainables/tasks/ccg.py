"""CCG supertagging (CCGbank, LDC-licensed, so never on the hub): read from jiant's files by path.

``data: {ccg: DIR}`` names a directory with ``ccg.train``, ``ccg.dev``, ``ccg.test`` (one sentence a
line: space-separated tokens, a tab, one supertag per token) and ``tags_to_id.json`` (supertag ->
id; 1363 tags in the real set). The tag set is read from that file, so ``labels`` needs the data.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from stiltsearch.trainables.hub import DataUnavailable
from stiltsearch.trainables.tasks.base import TagExample, register
from stiltsearch.trainables.tasks.real import HubTask


@register
class CCG(HubTask):
    name = "ccg"
    role = "intermediate"
    head = "tagging"
    metric = "tag_accuracy"
    dataset = "ccg"  # the key of its directory in the config's ``data``
    on_hub = False
    split_names = {"train": "train", "dev": "dev", "test": "test"}
    train_rows = 38015  # CCGbank sections 00-18

    def _dir(self) -> Path:
        if self.dataset not in self.data:
            raise DataUnavailable("data.ccg: CCG is not on the Hugging Face hub (CCGbank is LDC-licensed); set "
                                  "`data: {ccg: DIR}` to jiant's ccg.train, ccg.dev, ccg.test and tags_to_id.json")
        return Path(self.data[self.dataset])

    @functools.cached_property
    def labels(self) -> tuple[str, ...]:  # type: ignore[override]
        path = self._dir() / "tags_to_id.json"
        if not path.exists():
            raise DataUnavailable(f"data.ccg: {path} does not exist; copy jiant's tags_to_id.json (supertag -> id) "
                                  f"beside ccg.train, ccg.dev and ccg.test")
        mapping = json.loads(path.read_text())
        return tuple(sorted(mapping, key=mapping.__getitem__))

    def convert(self, row: dict, features: object, language: str) -> TagExample:  # not used: files, not rows
        raise NotImplementedError

    def load(self, split: str, language: str) -> list[TagExample]:
        if split not in self.split_names or language != "en":
            raise ValueError(f"task 'ccg' has English {list(self.split_names)} splits; asked for {split!r} in {language!r}")
        path = self._dir() / f"ccg.{split}"
        if not path.exists():
            raise DataUnavailable(f"data.ccg: {path} does not exist; the directory needs ccg.train, ccg.dev, ccg.test")
        ids = {tag: i for i, tag in enumerate(self.labels)}
        examples = []
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            text, _, tags = line.partition("\t")
            words, supertags = text.split(" "), tags.split(" ")
            if len(words) != len(supertags) or any(t not in ids for t in supertags):
                raise ValueError(f"{path}:{number}: expected one known supertag per token (tokens TAB tags)")
            examples.append(TagExample(tuple(words), tuple(ids[t] for t in supertags)))
        return examples
