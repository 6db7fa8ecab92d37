"""The STILTs search space: which intermediate tasks, which languages, which learning rates, and
which deployment knobs. A pure define-by-run function over the declared knobs
(:data:`stiltsearch.spaces.knobs.KNOBS`): no I/O, testable with ``FixedTrial``."""

from __future__ import annotations

from collections.abc import Mapping

import optuna

from stiltsearch.spaces.knobs import KNOBS, Params, Value, Values


class SpaceSpec(Values):
    """The choices one search offers, one entry per knob key (``intermediate_tasks``, ``languages``,
    ``intermediate_lr``, ..., ``models``: ``{model name: its layer count}``); built from the validated
    search config. A key left out takes its knob's default choices."""

    def __init__(self, **choices: Value) -> None:
        keys = {k.key for k in KNOBS}
        unknown = sorted(set(choices) - keys)
        if unknown:
            raise TypeError(f"SpaceSpec: unknown choice {unknown[0]!r}; knobs: {', '.join(sorted(keys))}")
        for knob in KNOBS:
            value: Value = choices.get(knob.key, knob.default)
            setattr(self, knob.key, dict(value) if isinstance(value, Mapping) else tuple(value))


def stilts_space(trial: optuna.Trial, spec: SpaceSpec) -> Params:
    """Sample one trial's parameters; returns the structured values the trainable reads (a knob
    that does not apply to this trial, such as the intermediate lr of the baseline, is left out)."""
    params: Params = {}
    for knob in KNOBS:
        value = knob.suggest(trial, spec, params)
        if value is not None:
            params[knob.name] = value
    return params


def baseline_point(spec: SpaceSpec) -> Params:
    """The raw Optuna parameters of the baseline: no intermediate task, English-only fine-tuning,
    the largest model, whole, at full length, the first precision, and the geometric middle of the
    target lr range (each knob's :meth:`~stiltsearch.spaces.knobs.Knob.baseline`)."""
    point: Params = {}
    for knob in KNOBS:
        point |= knob.baseline(spec)
    return point
