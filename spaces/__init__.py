"""Search spaces as pure define-by-run functions ``(optuna.Trial) -> dict``."""

from stiltsearch.spaces.stilts import SpaceSpec, baseline_point, stilts_space

__all__ = ["SpaceSpec", "baseline_point", "stilts_space"]
