"""FIFO against MOASHA in real toy searches at the same wall-clock budget (issue 15): trials
started, trials stopped at a rung, trials completed, and the hypervolume at the end.

    python benchmarks/scheduler_wallclock.py [--budget 600] [--schedulers fifo moasha]

Each search is the embedded default (``configs/toy.yaml``: 2 trials at a time, share_phase2 0.5),
run as ``toysearch.py`` runs it (fresh phase-2 and speed caches, ``relative_speed``), with room for
more trials than the budget allows (``search.num_trials: 200``) and only ``search.scheduler``
changed. The searches run one after the other, so each has both cores; each is interrupted
(Ctrl-C) ``--budget`` seconds after its first trial started, and its front is what it completed by
then. A trial still running at the cut counts as started, not completed.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from toysearch import results, run_toy_search, summary


def run_one(scheduler: str, budget: float, work: Path) -> dict[str, float]:
    import optuna

    search, wall = run_toy_search(work, {"scheduler: fifo ": f"scheduler: {scheduler} ",
                                         "num_trials: 8 ": "num_trials: 200 "}, budget_s=budget)
    study = optuna.load_study(study_name="toy", storage=f"sqlite:///{search / 'optuna.db'}")
    started = [t for t in study.get_trials(deepcopy=False) if t.state.name != "WAITING"]
    end = summary(search)
    return {"wall": wall, "started": len(started), "pruned": end["trials_pruned"], "completed": end["trials_completed"],
            "failed": end["trials_failed"], "hypervolume": end["hypervolume_final"],
            "trial_seconds": sum(r.get("trial/seconds", 0.0) for r in results(search))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=600.0, help="seconds from the first trial's start")
    parser.add_argument("--schedulers", nargs="+", default=["fifo", "moasha"])
    args = parser.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="scheduler-wallclock-"))
    for name in args.schedulers:
        r = run_one(name, args.budget, root / name)
        print(f"{name}: budget {args.budget:.0f} s after the first trial started; trials started {r['started']:.0f}, "
              f"stopped at a rung {r['pruned']:.0f}, completed {r['completed']:.0f}, failed {r['failed']:.0f}; "
              f"hypervolume (xtreme_score x relative_speed) {r['hypervolume']:.2f}", flush=True)


if __name__ == "__main__":
    main()
