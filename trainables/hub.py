"""Where a real task's rows come from: the Hugging Face hub by dataset id, or a local copy of it.

A real task names its data as a :class:`Source` (dataset id, config, split). :func:`load_rows`
reads it from ``local[dataset id]`` when the search config points that dataset at a directory, and
from the hub otherwise. A local directory has the hub repository's own layout, so a snapshot
(``hf download <id> --repo-type dataset --local-dir DIR``) works as it is::

    DIR/<config>/<split>-00000-of-00001.parquet      (the hub's parquet layout; also .jsonl/.json/.csv)
    DIR/<config>/<split>.parquet                     (one file per split)
    DIR/<config>/<split>/*.parquet                   (the parquet-converter layout, e.g. facebook/anli)
    DIR/<config>/<split>/dataset_info.json           (``Dataset.save_to_disk``)

A dataset without configs (``config=None``) keeps its splits in ``DIR/data/``, ``DIR/default/``
(the parquet converter's ``default/<split>/0000.parquet``) or ``DIR/``. Both
routes return a ``datasets.Dataset`` whose features (ClassLabel names, nested answers) are the
real ones, so the tasks read labels by name whichever route was taken.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stiltsearch.trainables.types import Features

FORMATS = {"parquet": "parquet", "jsonl": "json", "json": "json", "csv": "csv"}


class DataUnavailable(RuntimeError):
    """A dataset could not be read; the message names it and the config field that fixes it."""


@dataclass(frozen=True)
class Source:
    dataset: str  # HF dataset id, e.g. "facebook/xnli" (or a name for data that is never on the hub)
    config: str | None  # HF config name, e.g. "de"; None: the dataset has one unnamed config
    split: str  # the dataset's own split name, e.g. "validation_matched"

    def __str__(self) -> str:
        return f"{self.dataset} (config {self.config or 'default'}, split {self.split})"


def _local_files(root: Path, source: Source) -> tuple[str, list[str]] | None:
    """(datasets builder, files) of one split in a local copy, or None when it is not there."""
    bases = [root / source.config] if source.config else [root / "data", root / "default", root]
    for base in bases:
        for ext, builder in FORMATS.items():
            for pattern in (f"{source.split}-*.{ext}", f"{source.split}.{ext}", f"{source.split}/*.{ext}"):
                files = sorted(str(p) for p in base.glob(pattern))
                if files:
                    return builder, files
    return None


def load_rows(source: Source, local: Mapping[str, str] | None = None) -> Any:
    """The rows of one split as a ``datasets.Dataset``; raises :class:`DataUnavailable`."""
    import datasets

    datasets.disable_progress_bars()  # a trial loads dozens of splits; their bars drown the log
    directory = (local or {}).get(source.dataset)
    if directory is not None:
        root = Path(directory)
        saved = (root / source.config if source.config else root) / source.split
        if (saved / "dataset_info.json").exists():
            return datasets.load_from_disk(str(saved))
        found = _local_files(root, source)
        if found is None:
            raise DataUnavailable(
                f"data.{source.dataset}: {directory} has no files for {source}; expected "
                f"{root / (source.config or 'data')}/{source.split}-*.parquet (the hub's layout)")
        builder, files = found
        for file in files:
            _check_not_a_pointer(Path(file), source)
        features = _shipped_features(Path(files[0]).parent, root)
        try:
            return datasets.load_dataset(builder, data_files={source.split: files}, split=source.split,
                                         features=features)
        except Exception as exc:  # noqa: BLE001 - pyarrow's and datasets' errors have no common base
            reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise DataUnavailable(f"data.{source.dataset}: cannot read {', '.join(files)} ({reason}); "
                                  f"replace it with a complete copy of {source}") from None
    try:
        return datasets.load_dataset(source.dataset, source.config, split=source.split)
    except (ConnectionError, OSError, datasets.exceptions.DatasetNotFoundError) as exc:
        reason = str(exc).splitlines()[0][:160]
        raise DataUnavailable(
            f"data.{source.dataset}: cannot load {source} from the Hugging Face hub ({reason}); download it "
            f"where the hub is reachable (hf download {source.dataset} --repo-type dataset --local-dir DIR) "
            f"and set `data: {{{source.dataset}: DIR}}` in the search config") from None


def _shipped_features(folder: Path, root: Path) -> Any:
    """The features a copy ships beside its files (``dataset_info.json``, as ``DatasetInfo`` writes
    it, in the split's folder or the copy's root), so that ``.jsonl``/``.csv`` files keep their
    ClassLabel names; None when there is none (parquet carries its own)."""
    import json

    import datasets

    for info in (folder / "dataset_info.json", root / "dataset_info.json"):
        if info.is_file():
            try:
                return datasets.Features.from_dict(json.loads(info.read_text())["features"])
            except (ValueError, KeyError, TypeError) as exc:
                raise DataUnavailable(f"data: {info} does not describe features ({type(exc).__name__}: {exc}); "
                                      "remove it or write it with DatasetInfo.write_to_directory") from None
    return None


LFS_POINTER = b"version https://git-lfs.github.com/spec/"  # how a Git LFS pointer file begins


def _check_not_a_pointer(file: Path, source: Source) -> None:
    """A clone made without Git LFS holds ~130-byte pointer files where the data should be."""
    with open(file, "rb") as f:
        if f.read(len(LFS_POINTER)) == LFS_POINTER:
            raise DataUnavailable(f"data.{source.dataset}: {file} is a Git LFS pointer, not the data; fetch the "
                                  f"files (`git lfs pull` in the clone, or hf download {source.dataset} "
                                  f"--repo-type dataset --local-dir DIR)")


def label_name(features: Features, column: str, value: Any) -> str:
    """A label's name whatever its storage: ClassLabel id -> name; strings and plain ints as text."""
    from datasets import ClassLabel

    feature = features[column]
    if isinstance(feature, ClassLabel):
        return feature.int2str(int(value))
    return str(value)
