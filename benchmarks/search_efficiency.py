"""Search efficiency: Optuna's multi-objective TPE vs random search, hypervolume after N trials.

A full toy trial takes ~30-60 s, so this uses a cheap SURROGATE objective over the real search
space (``stilts_space`` with the toy config's choices), built to mirror the toy benchmark's
structure: some intermediate tasks help, one hurts, languages help a little, learning rates have an
optimum, and the deployment knobs trade score for tokens/sec. Its front is known by enumeration.
Target (issue 7): the sampler reaches random search's 64-trial hypervolume in at most 32 trials.

    python benchmarks/search_efficiency.py [--seeds 5] [--trials 64]
"""

from __future__ import annotations

import argparse
import math
import statistics
from typing import Any

import optuna

from stiltsearch.search.config.compose import space_spec
from stiltsearch.search.config.schema import SearchConfig
from stiltsearch.search.results.pareto import hypervolume_history
from stiltsearch.spaces import stilts_space

TASK_EFFECT = {"toy_mnli": 6.0, "toy_anli": 4.0, "toy_qqp": 2.0, "toy_ccg": -1.5, "toy_hellaswag": 0.5}  # score points; others 0
LANG_EFFECT = 1.5  # per translate-train language
LAYER_SPEED = {1: 3.2, 2: 1.9, 4: 1.0}  # relative tokens/sec
LAYER_SCORE = {1: -14.0, 2: -5.0, 4: 0.0}
LENGTH = {16: (1.05, -9.0), 32: (1.02, -0.5), 128: (1.0, 0.0)}  # (speed factor, score change)
PRECISION = {"fp32": (1.0, 0.0), "bf16": (1.45, -0.3)}


def surrogate(params: dict[str, Any]) -> tuple[float, float]:
    """(score, tokens/sec) for one sampled configuration; deterministic."""
    score = 60.0 + sum(TASK_EFFECT.get(t, 0.0) for t in params["intermediate_tasks"])
    score += LANG_EFFECT * len(params["train_languages"])
    score -= 8.0 * (math.log10(params["target_lr"]) - math.log10(4e-4)) ** 2  # optimum at 4e-4
    if params["intermediate_tasks"]:
        score -= 6.0 * (math.log10(params["intermediate_lr"]) - math.log10(3e-4)) ** 2
    score += LAYER_SCORE[params["layers_kept"]] + LENGTH[params["max_seq_length"]][1] + PRECISION[params["precision"]][1]
    speed = 36000.0 * LAYER_SPEED[params["layers_kept"]] * LENGTH[params["max_seq_length"]][0]
    speed *= PRECISION[params["precision"]][0]
    return score, speed


def run(sampler: optuna.samplers.BaseSampler, n: int) -> list[float]:
    spec = space_spec(SearchConfig())
    study = optuna.create_study(directions=["maximize", "maximize"], sampler=sampler)
    points = []
    for _ in range(n):
        trial = study.ask()
        values = surrogate(stilts_space(trial, spec))
        study.tell(trial, values)
        points.append(values)
    return hypervolume_history(points, ("max", "max"), (0.0, 0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--tpe", choices=["independent", "group"], default="independent",
                        help="group: multivariate TPE over the space's conditional groups")
    args = parser.parse_args()
    import warnings

    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # multivariate TPE is "experimental"
    options = {"multivariate": True, "group": True} if args.tpe == "group" else {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    reached = []
    for seed in range(args.seeds):
        random_hv = run(optuna.samplers.RandomSampler(seed=seed), args.trials)
        tpe_hv = run(optuna.samplers.TPESampler(seed=seed, n_startup_trials=10, **options), args.trials)
        target = random_hv[-1]
        n_needed = next((i + 1 for i, hv in enumerate(tpe_hv) if hv >= target), None)
        reached.append(n_needed if n_needed is not None else math.inf)
        print(f"seed {seed}: random HV@{args.trials} {target:.4g}; TPE HV@32 {tpe_hv[31]:.4g}, HV@{args.trials} "
              f"{tpe_hv[-1]:.4g}; TPE reaches random's HV@{args.trials} after {n_needed or 'never'} trials")
    print(f"trials TPE needs to match random search's {args.trials}-trial hypervolume (target <= 32), "
          f"median over {args.seeds} seeds: {statistics.median(reached)}")
    print(f"seeds meeting the target: {sum(r <= 32 for r in reached)} of {args.seeds}")


if __name__ == "__main__":
    main()
