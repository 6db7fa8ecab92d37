"""What a config needs on this machine before a search starts: local data directories, the files
of datasets that are not on the hub (CCG, Mewsli-X), and models that load. Checked by ``run`` before
anything is created and by ``validate`` (:func:`check`), and listed by a dry run.
"""

from __future__ import annotations

from pathlib import Path

from stiltsearch.search.config import ConfigError, SearchConfig
from stiltsearch.search.models import check_models
from stiltsearch.trainables.tasks import TASKS
from stiltsearch.trainables.tasks.real import HubTask


def missing_resources(cfg: SearchConfig) -> list[str]:
    """What this machine lacks to run ``cfg`` (local data directories, files of datasets that are not
    on the hub: CCG, Mewsli-X), one line each in
    the ConfigError style; checked before a search starts, and listed by a dry run. (Whether an HF
    model id can be fetched is checked when phase 1 resolves it.)"""
    problems = []
    for dataset, directory in cfg.data.items():
        if not Path(directory).expanduser().is_dir():
            problems.append(f"data.{dataset}: {directory} is not a directory; give a local copy in the hub's layout "
                            f"(<dir>/<config>/<split>-*.parquet)")
    for task in cfg.intermediate_tasks + cfg.target_tasks:
        cls = TASKS[task]
        dataset = cls.dataset if issubclass(cls, HubTask) else ""
        if not getattr(cls, "on_hub", True) and dataset not in cfg.data:
            problems.append(f"data.{dataset}: {task} is not on the Hugging Face hub; set `data: {{{dataset}: DIR}}` "
                            f"(trainables/tasks/{cls.__module__.rsplit('.', 1)[-1]}.py says which files) or drop {task}")
    return problems


def check(cfg: SearchConfig) -> None:
    """Every check ``run`` makes before it creates anything (``validate`` makes the same ones):
    the first problem as a ConfigError."""
    problems = missing_resources(cfg)
    if problems:
        raise ConfigError(problems[0])
    check_models(cfg)
