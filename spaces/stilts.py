"""The STILTs search space: which intermediate tasks, which languages, which learning rates, and
which deployment knobs. A pure define-by-run function: no I/O, testable with ``FixedTrial``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import optuna


@dataclass(frozen=True)
class SpaceSpec:
    """The choices one search offers; built from the validated search config."""

    intermediate_tasks: tuple[str, ...]  # each is included or not: 2**n subsets, the empty one included
    languages: tuple[str, ...]  # non-English languages that may add translate-train data
    intermediate_lr: tuple[float, float]  # log-uniform range
    target_lr: tuple[float, float]  # log-uniform range
    layers_kept: tuple[int, ...]
    max_seq_length: tuple[int, ...]
    precision: tuple[str, ...] = ("fp32",)
    inference_batch_size: tuple[int, ...] = (64,)
    attention: tuple[str, ...] = ("sdpa",)
    # {model name: its layer count}; with two or more the model is a knob (the largest is the baseline)
    models: Mapping[str, int] = field(default_factory=dict)


def stilts_space(trial: optuna.Trial, spec: SpaceSpec) -> dict[str, Any]:
    """Sample one trial's parameters; returns the structured values the trainable reads.

    One boolean per task and per language (rather than one categorical over subsets) lets TPE learn
    which single tasks and languages matter. The intermediate learning rate only exists when some
    intermediate task was chosen, so the baseline does not spend a dimension on it.
    """
    tasks = tuple(t for t in spec.intermediate_tasks if trial.suggest_categorical(f"use_{t}", [False, True]))
    languages = tuple(lang for lang in spec.languages if trial.suggest_categorical(f"lang_{lang}", [False, True]))
    params: dict[str, Any] = {"intermediate_tasks": tasks, "train_languages": languages}
    if tasks:
        params["intermediate_lr"] = trial.suggest_float("intermediate_lr", *spec.intermediate_lr, log=True)
    params["target_lr"] = trial.suggest_float("target_lr", *spec.target_lr, log=True)
    params["model"], params["layers_kept"] = _model_and_layers(trial, spec)
    params["max_seq_length"] = trial.suggest_categorical("max_seq_length", list(spec.max_seq_length))
    params["precision"] = trial.suggest_categorical("precision", list(spec.precision))
    params["inference_batch_size"] = trial.suggest_categorical("inference_batch_size", list(spec.inference_batch_size))
    params["attention"] = trial.suggest_categorical("attention", list(spec.attention))
    return params


def _model_and_layers(trial: optuna.Trial, spec: SpaceSpec) -> tuple[str, int]:
    """The model (when there is a choice) and how many of its layers to keep. Each model has its own
    layers-kept parameter, with the choices its depth allows, so no distribution ever changes."""
    if len(spec.models) < 2:
        return next(iter(spec.models), ""), trial.suggest_categorical("layers_kept", list(spec.layers_kept))
    model = trial.suggest_categorical("model", list(spec.models))
    choices = [n for n in spec.layers_kept if n <= spec.models[model]] or [spec.models[model]]
    return model, trial.suggest_categorical(f"layers_kept_{model}", choices)


def _largest(spec: SpaceSpec) -> str:
    return max(spec.models, key=lambda name: spec.models[name])


def baseline_point(spec: SpaceSpec) -> dict[str, Any]:
    """The raw Optuna parameters of the baseline: no intermediate task, English-only fine-tuning,
    the largest model, whole, at full length and precision, and the geometric middle of the target lr range."""
    low, high = spec.target_lr
    return {
        **{f"use_{t}": False for t in spec.intermediate_tasks},
        **{f"lang_{lang}": False for lang in spec.languages},
        "target_lr": (low * high) ** 0.5,
        **({"model": _largest(spec), f"layers_kept_{_largest(spec)}": max(spec.layers_kept)}
           if len(spec.models) >= 2 else {"layers_kept": max(spec.layers_kept)}),
        "max_seq_length": max(spec.max_seq_length),
        "precision": spec.precision[0],
        "inference_batch_size": spec.inference_batch_size[0],
        "attention": spec.attention[0],
    }
