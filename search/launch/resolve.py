"""The model and datasets of a real search, resolved once by the driver before any trial starts.

Without this every trial process resolves the model (``xlm-roberta-large``: ~2.2 GB) and some 160
dataset splits into the hub cache of the node it runs on. The driver instead downloads the
model's files and every hub split the config's trials will read (the intermediate tasks' English
training sets; each target's English and translate-train training sets and its dev sets in the
evaluated languages) into ``HF_HOME`` — on a cluster, the shared path the cluster files set
(``/mnt/shared/hf``, ``/shared/hf``) — and its trials then run with the hub off
(``HF_HUB_OFFLINE``, ``HF_DATASETS_OFFLINE``), reading that cache. Local directories and the
``data:`` copies need nothing. Trials go offline only where the cache is theirs too: a local Ray, or
a cluster whose driver has ``HF_HOME`` set (the shared path); elsewhere they resolve as before.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from stiltsearch.search.config.coerce import ConfigError
from stiltsearch.search.config.schema import SearchConfig
from stiltsearch.trainables import plan
from stiltsearch.trainables.hub import DataUnavailable, Source, load_rows
from stiltsearch.trainables.tasks import get_task
from stiltsearch.trainables.tasks.real import HubTask

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
MODEL_FILES = ["*.json", "*.safetensors", "*.model", "*.txt"]  # config, weights, tokenizer (no other formats)


def hub_models(cfg: SearchConfig) -> list[str]:
    """The config's models that are hub ids, not local directories."""
    if cfg.model == "toy":
        return []
    return [m for m in (cfg.models or (cfg.model,)) if not Path(m).expanduser().is_dir()]


def hub_sources(cfg: SearchConfig) -> list[Source]:
    """Every hub split the config's trials may read (local ``data:`` copies left out), in order."""
    found: dict[Source, None] = {}
    for name in cfg.intermediate_tasks + cfg.target_tasks:
        task = get_task(name, cfg.data)
        if not isinstance(task, HubTask) or not task.on_hub:
            continue
        needed = [("train", lang) for lang in ("en", *cfg.languages) if lang in task.train_languages]
        if name in cfg.target_tasks:
            evaluated = plan.scored_languages(task.eval_languages("dev"), cfg.eval_languages.get(name))
            needed += [("dev", lang) for lang in evaluated]
        for split, lang in needed:
            if task.local_datasets([lang]):
                continue  # read from files
            for source in task.sources(split, lang):
                if source.dataset not in cfg.data:
                    found[source] = None
    return list(found)


def resolve_once(cfg: SearchConfig, say: Callable[[str], None] = print) -> bool:
    """Download what the trials would, here and once; True when the trials may then run offline."""
    models, sources = hub_models(cfg), hub_sources(cfg)
    if not models and not sources:
        return False
    from huggingface_hub import snapshot_download

    say(f"resolving {len(models)} model(s) and {len(sources)} dataset split(s) once, into "
        f"{os.environ.get('HF_HOME', 'the default Hugging Face cache')}")
    for model in models:
        try:
            snapshot_download(model, allow_patterns=MODEL_FILES)
        except (OSError, ValueError) as exc:  # the hub's errors (HfHubHTTPError, offline mode) are OSErrors
            reason = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
            raise ConfigError(f"model: cannot download {model!r} ({reason}); give a local directory or make the "
                              "hub reachable") from None
    for source in sources:
        try:
            load_rows(source, cfg.data)
        except DataUnavailable as exc:
            raise ConfigError(str(exc)) from None
    return True


def offline_for_trials(address: str | None) -> bool:
    """Whether the trials read the driver's cache: a local Ray, or a cluster with HF_HOME set."""
    return address is None or bool(os.environ.get("HF_HOME"))
