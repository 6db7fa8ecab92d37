"""XTREME-R's versions of four XTREME targets: the same task on more languages.

XTREME-R (Ruder et al. 2021) keeps XNLI, MLQA and TyDiQA-GoldP as XTREME has them and evaluates
PAN-X, UDPOS, Tatoeba and XQuAD on more languages; its ``evaluate.py --xtreme_version xtreme-r``
averages each task over these lists (``XTREME_R_TASK2LANGS`` there). A task here is XTREME's
(same head, metric, training data and protocol) with XTREME-R's language list, and reads the new
languages from where XTREME-R's ``download_data.sh`` gets them:

- ``panx_xr`` (48 languages; + az gu lt pa pl qu ro uk): the same Rahimi et al. WikiANN splits,
  which google/xtreme's ``PAN-X.*`` configs lack for these languages: ``unimelb-nlp/wikiann``.
- ``udpos_xr`` (38; + lt pl ro uk wo): XTREME-R takes the new languages from Universal Dependencies
  v2.7 (the others stay on v2.5, google/xtreme's ``udpos.*``). UD v2.7 is not on the hub in
  XTREME's form: ``data: {ud-2.7: DIR}``, the extracted ``ud-treebanks-v2.7.tgz``; every treebank
  of a language is concatenated per split, as XTREME's ``udpos_preprocess`` does. One difference:
  a multiword token (``3-4 della``) counts as its syntactic words (``de``, ``la``), where XTREME's
  conversion puts the fused form in place of one of them; sentences without one score the same.
- ``tatoeba_xr`` (41; + az lt pl ro uk): LASER's Tatoeba v1 files, which XTREME's own download
  reads (``tatoeba.<iso3>-eng.<iso3>`` and ``.eng``, 1000 line-aligned pairs), google/xtreme's
  ``tatoeba.*`` configs lacking the new five: ``data: {laser-tatoeba: DIR}``, LASER's
  ``data/tatoeba/v1``.
- ``xquad_xr`` (12; + ro): XQuAD's Romanian, ``google/xquad`` ``xquad.ro``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from stiltsearch.trainables.hub import DataUnavailable, Source
from stiltsearch.trainables.tasks.base import BitextExample, Example, TagExample, register
from stiltsearch.trainables.tasks.panx import LANGUAGES as PANX_LANGUAGES
from stiltsearch.trainables.tasks.panx import PANX
from stiltsearch.trainables.tasks.real import HubTask
from stiltsearch.trainables.tasks.tatoeba import Tatoeba
from stiltsearch.trainables.tasks.udpos import UDPOS
from stiltsearch.trainables.tasks.xquad import XQuAD
from stiltsearch.trainables.types import Features

PANX_NEW = ("az", "gu", "lt", "pa", "pl", "qu", "ro", "uk")
UDPOS_NEW = ("lt", "pl", "ro", "uk", "wo")
TATOEBA_NEW = {"az": "aze", "lt": "lit", "pl": "pol", "ro": "ron", "uk": "ukr"}  # ISO 639-3, LASER's file names
XQUAD_NEW = ("ro",)
UD_SPLITS = {"train": "train", "dev": "dev", "test": "test"}  # ours -> UD's file names (<tb>-ud-<split>.conllu)


class FilesForNewLanguages(HubTask):
    """A task whose new languages are read from local files (``data: {<files_key>: DIR}``) rather
    than through :meth:`HubTask.sources`; the old ones as the XTREME task reads them (mixed in
    before that task: ``class TatoebaR(FilesForNewLanguages, Tatoeba)``)."""

    files_key: ClassVar[str]
    new_languages: ClassVar[Sequence[str]]
    files_hint: ClassVar[str]  # what the directory is and where it comes from

    def local_datasets(self, languages: Sequence[str]) -> set[str]:
        return {self.files_key} if set(languages) & set(self.new_languages) else set()

    def files_dir(self) -> Path:
        directory = self.data.get(self.files_key)
        if directory is None:
            raise DataUnavailable(f"data.{self.files_key}: {self.name} reads {', '.join(self.new_languages)} "
                                  f"from files; set `data: {{{self.files_key}: DIR}}` to {self.files_hint}")
        return Path(directory)

    def load(self, split: str, language: str) -> Sequence[Example]:
        if language not in self.new_languages:
            return super().load(split, language)
        self._check_split(split, language)
        examples = self.read_files(split, language)
        if not examples:
            raise ValueError(f"task {self.name!r}: {split} split in {language!r} has no usable rows")
        return examples

    @abstractmethod
    def read_files(self, split: str, language: str) -> list[Example]:
        """The examples of one split of a new language, from :meth:`files_dir`."""


@register
class PANXR(PANX):
    name = "panx_xr"
    languages = PANX_LANGUAGES + PANX_NEW
    train_languages = languages

    def sources(self, split: str, language: str) -> list[Source]:
        if language in PANX_NEW:
            return [Source("unimelb-nlp/wikiann", language, self.split_names[split])]
        return super().sources(split, language)


@register
class XQuADR(XQuAD):
    name = "xquad_xr"
    languages = XQuAD.languages + XQUAD_NEW

    def sources(self, split: str, language: str) -> list[Source]:
        if split != "train" and language in XQUAD_NEW:
            return [Source("google/xquad", f"xquad.{language}", "validation")]
        return super().sources(split, language)


@register
class TatoebaR(FilesForNewLanguages, Tatoeba):
    name = "tatoeba_xr"
    languages = Tatoeba.languages + tuple(TATOEBA_NEW)
    files_key = "laser-tatoeba"
    new_languages = tuple(TATOEBA_NEW)
    files_hint = "LASER's data/tatoeba/v1 (github.com/facebookresearch/LASER), with tatoeba.<iso3>-eng.<iso3> and .eng"

    def read_files(self, split: str, language: str) -> list[Example]:
        code = TATOEBA_NEW[language]
        source, english = (self.files_dir() / f"tatoeba.{code}-eng.{side}" for side in (code, "eng"))
        for path in (source, english):
            if not path.is_file():
                raise DataUnavailable(f"data.{self.files_key}: {path} does not exist; the directory must be "
                                      f"{self.files_hint}")
        pairs = source.read_text(encoding="utf-8").splitlines(), english.read_text(encoding="utf-8").splitlines()
        if len(pairs[0]) != len(pairs[1]):
            raise DataUnavailable(f"data.{self.files_key}: {source} has {len(pairs[0])} lines and {english} "
                                  f"{len(pairs[1])}; they must be line-aligned: replace them with LASER's files")
        return [BitextExample(s, e) for s, e in zip(*pairs, strict=True)]


@register
class UDPOSR(FilesForNewLanguages, UDPOS):
    name = "udpos_xr"
    languages = UDPOS.languages + UDPOS_NEW
    train_languages = UDPOS.train_languages + UDPOS_NEW  # every new language has a train split in v2.7
    files_key = "ud-2.7"
    new_languages = UDPOS_NEW
    files_hint = "the extracted ud-treebanks-v2.7.tgz (universaldependencies.org), with UD_*/<lang>_*-ud-<split>.conllu"

    def read_files(self, split: str, language: str) -> list[Example]:
        root = self.files_dir()
        files = sorted(root.glob(f"UD_*/{language}_*-ud-{UD_SPLITS[split]}.conllu"))
        if not files and not any(root.glob("UD_*")):
            raise DataUnavailable(f"data.{self.files_key}: {root} holds no UD_* treebank folders; it must be "
                                  f"{self.files_hint}")
        examples: list[Example] = []
        for file in files:
            for words, tags in read_conllu(file):
                examples.append(TagExample(words, tuple(self.tag_ids(None, "upos", tags))))
        return examples

    def tag_ids(self, features: Features, column: str, values: Sequence[Any]) -> list[int]:
        if features is not None:
            return super().tag_ids(features, column, values)
        bad = [tag for tag in values if tag not in self.labels]
        if bad:
            raise ValueError(f"task {self.name!r}: UPOS tag {bad[0]!r} is not one of {self.labels}")
        return [self.labels.index(tag) for tag in values]


def read_conllu(path: Path) -> list[tuple[tuple[str, ...], list[str]]]:
    """(words, UPOS tags) of each sentence of a CoNLL-U file: its syntactic words (integer ids; a
    multiword token's range line and empty nodes ``3.1`` are skipped), with XTREME's clean-up: a
    zero-width non-joiner and spaces inside a form removed, and a sentence whose forms are all ``_``
    but at most one dropped (XTREME's ``udpos_preprocess``: treebanks that ship without their text)."""
    sentences = []
    words: list[str] = []
    tags: list[str] = []

    def flush() -> None:
        blank = sum(word == "_" for word in words)
        if words and (blank == 0 or blank < len(words) - 1):
            sentences.append((tuple("".join(w.replace("\u200c", "").split(" ")) for w in words), list(tags)))
        words.clear()
        tags.clear()

    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            flush()
            continue
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 10:
            raise DataUnavailable(f"data.ud-2.7: {path} line {line[:40]!r} has {len(fields)} fields, not CoNLL-U's 10; "
                                  "replace it with the file from the UD v2.7 release")
        if fields[0].isdigit():
            words.append(fields[1])
            tags.append(fields[3])
    flush()
    return sentences
