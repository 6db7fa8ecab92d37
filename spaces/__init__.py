"""Search spaces as pure define-by-run functions ``(optuna.Trial) -> dict``, over the declared knobs."""

from stiltsearch.spaces.knobs import KNOBS, Knob
from stiltsearch.spaces.stilts import SpaceSpec, baseline_point, stilts_space

__all__ = ["KNOBS", "Knob", "SpaceSpec", "baseline_point", "stilts_space"]
