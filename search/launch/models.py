"""Phase 1: the models a search may choose from, by name, and their depths.

The embedded toy encoders are pretrained here once each and cached; any other model (an HF id or a
local directory) is used as given, checked to load before Ray starts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from stiltsearch.search.config.coerce import ConfigError
from stiltsearch.search.config.schema import SearchConfig
from stiltsearch.search.tracking.progress import Progress

# Depths of common encoders, so a dry run or a config check needs neither the hub nor a download.
KNOWN_DEPTHS = {"xlm-roberta-base": 12, "xlm-roberta-large": 24, "xlm-roberta-xl": 36, "xlm-roberta-xxl": 48,
                "bert-base-multilingual-cased": 12, "bert-base-multilingual-uncased": 12, "mdeberta-v3-base": 12}


def model_name(model: str) -> str:
    """A short name for an HF id or directory: its last path component ("FacebookAI/xlm-roberta-base"
    -> "xlm-roberta-base"); it names the model in the search space and in MLflow."""
    return Path(model.rstrip("/")).name


def model_depth(model: str) -> int | None:
    """Transformer layers of an HF id or directory: a local config.json, the known table, or the hub
    (its cache first); None when none can tell."""
    config = Path(model).expanduser() / "config.json"
    if config.exists():
        return int(json.loads(config.read_text())["num_hidden_layers"])
    if model_name(model) in KNOWN_DEPTHS:
        return KNOWN_DEPTHS[model_name(model)]
    try:
        from transformers import AutoConfig

        return int(AutoConfig.from_pretrained(model).num_hidden_layers)
    except (OSError, ValueError):
        return None


def check_models(cfg: SearchConfig) -> None:
    """Every real model must load (from its directory, the HF cache or the hub) before Ray starts;
    every length asked for fits its positions (the toy encoders' too, known before they exist)."""
    if cfg.model == "toy":
        from types import SimpleNamespace

        from stiltsearch.trainables.pretrain import SPECIAL_TOKENS
        from stiltsearch.trainables.settings import ToyModelSpec

        toy = SimpleNamespace(model_type="xlm-roberta", max_position_embeddings=ToyModelSpec.max_positions,
                              pad_token_id=SPECIAL_TOKENS.index("<pad>"))
        _check_lengths(cfg, "the toy encoder", toy)
        return
    from transformers import AutoConfig

    for model in cfg.models or (cfg.model,):
        try:
            config = AutoConfig.from_pretrained(model)
        except (OSError, ValueError) as exc:
            reason = str(exc).splitlines()[0][:160]
            raise ConfigError(f"model: cannot load {model!r} ({reason}); give a local directory (a saved "
                              f"checkpoint, or `hf download {model} --local-dir DIR`) or make the hub reachable") from None
        _check_lengths(cfg, model, config)


# Encoders whose positions are absolute and counted from ``pad_token_id + 1`` (RoBERTa's
# create_position_ids_from_input_ids), or from 0 (BERT): a longer sequence indexes past the table.
OFFSET_POSITIONS = ("roberta", "xlm-roberta", "xlm-roberta-xl", "camembert")
ZERO_POSITIONS = ("bert",)


def _check_lengths(cfg: SearchConfig, model: str, config: object) -> None:
    """Every sequence length the config asks for fits the model's position table (a longer one
    would fail inside every trial with an index error)."""
    kind, table = getattr(config, "model_type", ""), getattr(config, "max_position_embeddings", None)
    if table is None or kind not in OFFSET_POSITIONS + ZERO_POSITIONS:
        return  # relative positions, or a kind not checked here
    usable = int(table) - ((int(getattr(config, "pad_token_id", 1) or 0) + 1) if kind in OFFSET_POSITIONS else 0)
    lengths = {"space.max_seq_length": max(cfg.space.choices["max_seq_length"]), "training.max_length":
               cfg.training.max_length, "training.qa_max_length": cfg.training.qa_max_length or 0}
    for field, length in lengths.items():
        if length > usable:
            raise ConfigError(f"{field}: {length} tokens is more than {model_name(model)} holds ({usable} positions); "
                              f"give at most {usable}")


def model_depths(cfg: SearchConfig) -> dict[str, int]:
    """Layers of each model the search may choose (for the layers-kept knob); a real model whose
    depth cannot be found gets the space's largest layer count, checked when a trial loads it."""
    if cfg.model != "toy":
        fallback = max(cfg.space.layers_kept)
        return {model_name(m): model_depth(m) or fallback for m in cfg.models or (cfg.model,)}
    return cfg.toy_model.names


def resolve_models(cfg: SearchConfig, cache: Path) -> dict[str, str]:
    """Phase 1: ``{name: HF id or directory}`` of the models the search may choose from, smallest
    first. The toy encoders are pretrained here once each (cached); any other model is used as given."""
    if cfg.model != "toy":
        return {model_name(m): m for m in sorted(cfg.models or (cfg.model,), key=lambda m: model_depth(m) or 0)}
    import torch

    from stiltsearch.trainables import quiet_libraries
    from stiltsearch.trainables.pretrain import ensure_toy_model

    quiet_libraries()
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)  # pretraining may use the whole machine; the caller's count is restored
    models = {}
    try:
        for name, layers in cfg.toy_model.names.items():
            spec = cfg.toy_model.spec(layers, cfg.training.seed)
            bar = Progress(f"phase 1 {name}", spec.mlm_steps, "step", plain_every=100)

            def step(done: int, loss: float, bar: Progress = bar) -> None:
                bar.update(done, loss=f"{loss:.2f}")
            try:
                models[name] = str(ensure_toy_model(spec, cache, cfg.training.engine_settings(), progress=bar.say,
                                                    on_step=step))
            finally:
                bar.close()
        return models
    finally:
        torch.set_num_threads(threads)
