"""What the search samples for one trial (:class:`TrialParams`), and who applies each knob.

A trial's parameters hold one value per knob declared in :data:`stiltsearch.spaces.knobs.KNOBS`, so
a new knob needs no field here. The code that applies a knob registers itself with
:func:`applies`; ``tests/test_knobs.py`` fails for a declared knob that nothing applies, and for an
applier of a knob nobody declared.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from stiltsearch.spaces.knobs import BY_NAME, KNOBS, Config, Values

F = TypeVar("F", bound=Callable[..., Any])

NUMBER_KEY = "trial_number"  # the Tune config key that carries the Optuna trial number (not a knob)
# A confirmation (search/results/confirm.py) re-runs an earlier trial's knobs under another training seed:
SEED_KEY = "training_seed"  # its seed of phases 2 and 3, in place of training.seed (not a knob)
CONFIRMS_KEY = "confirms"  # the number of the trial it re-runs (not a knob)
NOT_KNOBS = (NUMBER_KEY, SEED_KEY, CONFIRMS_KEY)  # the Tune config keys the searcher adds beside the knobs

# knob name -> the function that applies it (for "weights" knobs: ``(module, value, device) -> module``)
APPLIERS: dict[str, Callable[..., Any]] = {}


def applies(*names: str) -> Callable[[F], F]:
    """Decorator: the function applies these knobs (read by the registry test, and by
    :func:`stiltsearch.trainables.deploy.deploy` for knobs applied to the trained weights)."""

    def register(fn: F) -> F:
        for name in names:
            if name not in BY_NAME:
                raise ValueError(f"{fn.__qualname__} applies {name!r}, which spaces/knobs.py does not declare")
            APPLIERS[name] = fn
        return fn

    return register


class TrialParams(Values):
    """One value per declared knob; read as attributes (``params.layers_kept``) or as a mapping.

    A knob the caller does not give takes its declared fallback. An unknown name is an error, not
    silently dropped: a config key that no knob declares would otherwise never reach a trial.
    """

    def __init__(self, **values: Any) -> None:
        unknown = sorted(set(values) - set(BY_NAME))
        if unknown:
            raise TypeError(f"TrialParams: {unknown[0]!r} is not a declared knob; knobs: {', '.join(BY_NAME)}")
        for knob in KNOBS:
            value = values.get(knob.name, knob.fallback)
            self.__dict__[knob.name] = tuple(value) if isinstance(value, list) else value

    @classmethod
    def from_config(cls, config: Config, ignore: tuple[str, ...] = ()) -> TrialParams:
        """From a Tune config: every key must be a knob or in ``ignore`` (the trial number)."""
        return cls(**{k: v for k, v in config.items() if k not in ignore})

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("TrialParams is immutable")

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, repr(v)) for k, v in self.__dict__.items())))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrialParams) and dict(self) == dict(other)

    def __repr__(self) -> str:
        return f"TrialParams({', '.join(f'{k}={v!r}' for k, v in self.items())})"

    def replace(self, **changes: Any) -> TrialParams:
        """A copy with some knobs changed (as ``dataclasses.replace`` does)."""
        return TrialParams(**{**self, **changes})

    def __reduce__(self) -> tuple[Any, ...]:  # pickles to Ray workers by value
        return (_rebuild, (dict(self),))


def _rebuild(values: dict[str, Any]) -> TrialParams:
    return TrialParams(**values)
