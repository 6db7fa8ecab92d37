"""Base for real tasks: rows read from a Hugging Face dataset (or a local copy) and converted to examples.

A real task says where each split lives (:meth:`HubTask.sources`) and how one row becomes an
example (:meth:`HubTask.convert`); loading, label-name mapping and the errors are shared here.
Labels are always mapped by *name* (``hub.label_name``): label ids differ between sources.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from stiltsearch.trainables import hub
from stiltsearch.trainables.hub import Source
from stiltsearch.trainables.tasks.base import Example, Task
from stiltsearch.trainables.types import Features, Row

SQUAD_TRAIN = Source("rajpurkar/squad", "plain_text", "train")  # XTREME trains its three QA targets on it
SQUAD_TRAIN_ROWS = 87599


class HubTask(Task):
    benchmark: ClassVar[str] = "real"
    dataset: ClassVar[str]  # HF dataset id of the evaluation data
    on_hub: ClassVar[bool] = True  # False: files only, given as ``data: {<dataset>: DIR}``
    # our split name -> the dataset's; a split missing here does not exist for this task
    split_names: ClassVar[Mapping[str, str]] = {"train": "train", "dev": "validation", "test": "test"}
    train_rows: ClassVar[int] = 0  # rows of the English training split (the dry run's step counts)

    @property
    def splits(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.split_names)

    def config(self, language: str) -> str | None:
        """The dataset config that holds ``language`` (None: the dataset's only config)."""
        return None

    def sources(self, split: str, language: str) -> list[Source]:
        """Where one split of one language lives; several sources are concatenated."""
        return [Source(self.dataset, self.config(language), self.split_names[split])]

    @abstractmethod
    def convert(self, row: Row, features: Features, language: str) -> Example | None:
        """One row -> an example; None drops it (an unlabelled test row)."""

    def selects(self, row: Row, source: Source, language: str) -> bool:
        """Whether a row of ``source`` belongs to ``language``: a config that holds several
        languages (TyDiQA's) filters here, per source, so a borrowed training set is never filtered."""
        return True

    def label_id(self, features: Features, column: str, value: Any) -> int | None:
        """Our id of a row's label, by name; None for the "no label" markers (-1, "")."""
        if value is None or value == "" or (isinstance(value, int) and value < 0):
            return None
        return self.tag_ids(features, column, [value])[0]

    def tag_ids(self, features: Features, column: str, values: Sequence[Any]) -> list[int]:
        """Our ids of a row's labels (one, or one per token), by name.

        A ClassLabel feature gives the names. A copy that lost it (``.jsonl``/``.csv`` holding the
        hub's integer ids, with no ``dataset_info.json`` beside it: ``hub.load_rows``) holds plain
        ints: those are read in the hub's label order, which is this task's ``labels`` order, and
        the log says so once. Anything else is one line naming the value and the allowed names.
        """
        names = tag_names(features, column, list(values))
        if all(name in self.labels for name in names):
            return [self.labels.index(name) for name in names]
        if _class_label(features, column) is None and all(str(v).isdigit() and int(v) < len(self.labels) for v in values):
            if (self.name, column) not in _ORDER_SAID:
                _ORDER_SAID.add((self.name, column))
                print(f"task {self.name}: column {column!r} holds integer ids, not names (a copy without its "
                      f"ClassLabel features); read in the hub's label order {self.labels}", flush=True)
            return [int(v) for v in values]
        bad = next(name for name in names if name not in self.labels)
        raise ValueError(f"task {self.name!r}: label {bad!r} in column {column!r} is not one of {self.labels} "
                         f"(nor an id 0..{len(self.labels) - 1} in that order)")

    def local_datasets(self, languages: Sequence[str]) -> set[str]:
        """The ``data`` keys these languages need, being on no hub (files only)."""
        return set() if self.on_hub else {self.dataset}

    def datasets(self) -> set[str]:
        """Every dataset id (or ``data`` key) this task may read, without loading anything."""
        found = {source.dataset for split in self.splits
                 for lang in (self.train_languages if split == "train" else self.languages)
                 if not self.local_datasets([lang])  # a language read from files has no hub source
                 for source in self.sources(split, lang)} if self.on_hub else set()
        return found | self.local_datasets(self.languages) or {self.dataset}

    def _check_split(self, split: str, language: str) -> None:
        if split not in self.split_names:
            raise ValueError(f"task {self.name!r} has no split {split!r}; it has {list(self.split_names)}")
        allowed = self.train_languages if split == "train" else self.eval_languages(split)
        if language not in allowed:
            raise ValueError(f"task {self.name!r} has no {split} data in language {language!r}; it has {allowed}")

    def load(self, split: str, language: str) -> Sequence[Example]:
        self._check_split(split, language)
        examples: list[Example] = []
        for source in self.sources(split, language):
            rows = hub.load_rows(source, self.data)
            examples += [ex for row in rows if self.selects(row, source, language)
                         and (ex := self.convert(row, rows.features, language)) is not None]
        if not examples:
            raise ValueError(f"task {self.name!r}: {split} split in {language!r} has no usable rows")
        return examples


_ORDER_SAID: set[tuple[str, str]] = set()  # (task, column) whose integer ids were read in label order


def _class_label(features: Features, column: str) -> Any:
    """The ClassLabel of a column (one label, or each of a ``List(ClassLabel)``), or None."""
    feature = features[column]
    inner = getattr(feature, "feature", feature)
    return inner if hasattr(inner, "int2str") else None


def tag_names(features: Features, column: str, values: list[Any]) -> list[str]:
    """Names of a column's labels through its ClassLabel; plain values as text."""
    label = _class_label(features, column)
    return [label.int2str(int(v)) for v in values] if label is not None else [str(v) for v in values]
