"""Which search parameters move each objective: Optuna's parameter importance (its default
PED-ANOVA evaluator), computed only where it can mean something.

- **Enough trials.** Below :data:`MIN_TRIALS` complete trials none is computed and the report says
  why: on 8 trials PED-ANOVA ranked ``target_lr`` first (0.71) for tokens/sec, a figure measured
  before any training from the deployment knobs alone.
- **The knobs an objective can depend on.** A speed objective (measured on the served model before
  training: :attr:`ObjectiveSpec.deployment_only`) is explained by the deployment knobs only, those
  that apply to the encoder, its inputs, weights or serving (``spaces/knobs.py``: ``applies``).
- **A sign.** For a numeric parameter, the sign of its rank correlation with the objective (+: a
  larger value goes with a larger objective); none for a categorical one.
- **Deterministic.** Ties are ordered by name: two reports of one study are byte-identical (set
  order of parameter names varies between processes with Python's hash seed).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import optuna
from scipy import stats

from stiltsearch.spaces.knobs import KNOBS
from stiltsearch.trainables.objectives import BY_NAME as OBJECTIVES

MIN_TRIALS = 20  # complete trials below which no importance is computed
DEPLOYMENT = ("encoder", "inputs", "weights", "serving")  # knob ``applies`` groups that set inference speed


@dataclass(frozen=True)
class Importance:
    parameter: str
    share: float  # PED-ANOVA's normalised importance (the objective's shares sum to 1)
    sign: int  # +1 / -1: rank correlation of a numeric parameter with the objective; 0: categorical or none


def deployment_parameter(name: str) -> bool:
    """Whether study parameter ``name`` belongs to a deployment knob (``layers_kept_<model>`` too)."""
    return any(name == k.name or name.startswith(f"{k.name}_") for k in KNOBS if k.applies in DEPLOYMENT)


def importances(study: optuna.Study, numbers: set[int], names: Sequence[str],
                directions: Sequence[str]) -> tuple[dict[str, list[Importance]], str | None]:
    """``({objective: importances, largest first}, None)``, or ``({}, why none were computed)``."""
    if len(numbers) < MIN_TRIALS:
        return {}, (f"{len(numbers)} complete trials, fewer than {MIN_TRIALS}: with so few, an importance ranks "
                    "noise (run more trials)")
    trials = [t for t in study.get_trials(deepcopy=False) if t.number in numbers]
    frozen = optuna.create_study(directions=study.directions)  # in memory: the trials the fronts are made of
    frozen.add_trials(trials)
    found: dict[str, list[Importance]] = {}
    every = sorted({p for t in trials for p in t.params})
    for i, name in enumerate(names):
        params = every
        spec = OBJECTIVES.get(name)
        if spec is not None and spec.deployment_only:
            params = [p for p in params if deployment_parameter(p)]
        sign = -1.0 if directions[i] == "max" else 1.0  # PED-ANOVA explains what makes its target low

        def target(trial: optuna.trial.FrozenTrial, i: int = i, sign: float = sign) -> float:
            return sign * trial.values[i]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "computes the importances ... low target values"
                shares = optuna.importance.get_param_importances(frozen, target=target, params=params or None)
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:  # e.g. a parameter that never varied
            return {}, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        ranked = sorted(shares.items(), key=lambda kv: (-round(kv[1], 12), kv[0]))
        found[name] = [Importance(p, float(s), _sign(trials, p, i)) for p, s in ranked]
    return found, None


def _sign(trials: list[optuna.trial.FrozenTrial], param: str, index: int) -> int:
    pairs = [(t.params[param], t.values[index]) for t in trials if param in t.params]
    if len(pairs) < 3 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v, _ in pairs):
        return 0
    rho = stats.spearmanr([v for v, _ in pairs], [o for _, o in pairs]).statistic
    return 0 if rho is None or math.isnan(rho) or rho == 0 else (1 if rho > 0 else -1)
