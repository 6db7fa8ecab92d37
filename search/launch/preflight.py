"""What a config needs on this machine before a search starts: local data directories, the files
of datasets that are not on the hub (CCG, Mewsli-X), an output directory it can write, an MLflow
store it can reach, a Ray cluster that answers, trials that fit the machine, and models that load.
Checked by ``run`` before anything is created and by ``validate`` (:func:`check`), and listed by a
dry run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from stiltsearch.search.config.coerce import ConfigError
from stiltsearch.search.config.schema import SearchConfig
from stiltsearch.search.launch.clustercheck import address_problem
from stiltsearch.search.launch.models import check_models
from stiltsearch.search.tracking.uris import store_problem, uri_problem, writable_dir_problem
from stiltsearch.trainables.tasks import TASKS
from stiltsearch.trainables.tasks.real import HubTask


def missing_resources(cfg: SearchConfig, address: str | None = None) -> list[str]:
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
        if not issubclass(cls, HubTask):
            continue
        languages = cfg.eval_languages.get(task, cls.languages)
        for dataset in sorted(cls().local_datasets(languages) - set(cfg.data)):
            problems.append(f"data.{dataset}: {task} reads {dataset} from files, not from the Hugging Face hub; set "
                            f"`data: {{{dataset}: DIR}}` (trainables/tasks/{cls.__module__.rsplit('.', 1)[-1]}.py "
                            f"says which files) or drop {task}")
    return problems + environment_problems(cfg, address)


def local_gpus() -> int:
    """NVIDIA GPUs a local Ray would find (it counts what ``CUDA_VISIBLE_DEVICES`` leaves visible)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(line.startswith("GPU ") for line in listed.stdout.splitlines()) if listed.returncode == 0 else 0


def environment_problems(cfg: SearchConfig, address: str | None) -> list[str]:
    """What stops ``cfg`` on this machine before anything is created: the output directory, the MLflow
    store, the Ray address, and (for a local Ray) whether one trial fits the machine at all; a trial
    that never fits would wait forever (a cluster's nodes are checked when the driver joins it)."""
    from stiltsearch.search.layout import cache_dir
    from stiltsearch.search.tracking.uris import default_tracking_uri

    problems = []
    if (problem := writable_dir_problem(Path(cfg.output_dir))) is not None:
        problems.append(f"output_dir: {problem}; give a directory this user can write")
    if (problem := writable_dir_problem(cache_dir())) is not None:  # phase 1's models, phase 2's results
        problems.append(f"STILTSEARCH_CACHE: the cache {cache_dir()}: {problem}; point STILTSEARCH_CACHE at a "
                        "directory this user can write")
    uri = cfg.mlflow.tracking_uri or default_tracking_uri()
    # $MLFLOW_TRACKING_URI is read here, not in the config
    if (problem := uri_problem(uri) or store_problem(uri, create=True)) is not None:
        problems.append(f"mlflow.tracking_uri: {problem}")
    if address is not None:
        if (problem := address_problem(address)) is not None:
            problems.append(f"--address: {problem}")
        return problems
    search = cfg.search
    cpus = os.cpu_count() or 1  # what a local Ray declares
    if search.cpus_per_trial * search.workers_per_trial > cpus:
        problems.append(f"search.cpus_per_trial: a trial needs {search.workers_per_trial} x {search.cpus_per_trial} "
                        f"CPUs and this machine has {cpus}; lower cpus_per_trial or workers_per_trial, or give "
                        "--address of a cluster with larger nodes")
    gpus = search.gpus_per_worker * search.workers_per_trial
    if gpus > 0 and gpus > (found := local_gpus()):
        problems.append(f"search.gpus_per_worker: a trial needs {gpus:g} GPUs and this machine has {found}; "
                        "set gpus_per_worker: 0, or give --address of a cluster with GPUs")
    return problems


def check(cfg: SearchConfig, address: str | None = None) -> None:
    """Every check ``run`` makes before it creates anything (``validate`` makes the same ones, with
    ``$RAY_ADDRESS``): the first problem as a ConfigError."""
    problems = missing_resources(cfg, address)
    if problems:
        raise ConfigError(problems[0])
    check_models(cfg)
