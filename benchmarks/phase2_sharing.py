"""Phase-2 sharing in a real default search: how much phase-2 compute the cache serves, and the
hypervolume with and without sharing (issue 15).

    python benchmarks/phase2_sharing.py [--trials 8] [--shares 0.5 0]

Runs ``stiltsearch run`` on the embedded toy search once per ``search.share_phase2`` value, one
after the other, each as ``toysearch.py`` runs it (fresh phase-2 and speed caches, speed objective
``relative_speed``). Per search it prints: trials with a phase 2, how many of those were cache
hits, the phase-2 seconds the cache served against those trained (each hit counts what its phase 2
cost when it was trained), the trial-seconds in all, and the final hypervolume.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from toysearch import results, run_toy_search, summary


def run_search(share: float, trials: int, work: Path) -> dict[str, float]:
    search, wall = run_toy_search(work, {"share_phase2: 0.5": f"share_phase2: {share}",
                                         "num_trials: 8": f"num_trials: {trials}"})
    done = results(search)
    with_phase2 = [r for r in done if r.get("phase2/cache") in ("miss", "hit")]
    served = sum(r["phase2/seconds"] for r in with_phase2 if r["phase2/cache"] == "hit")
    trained = sum(r["phase2/seconds"] for r in with_phase2 if r["phase2/cache"] == "miss")
    end = summary(search)
    return {"wall": wall, "phase2_trials": len(with_phase2),
            "hits": sum(r["phase2/cache"] == "hit" for r in with_phase2), "served": served, "trained": trained,
            "trial_seconds": sum(r.get("trial/seconds", 0.0) for r in done),
            "hypervolume": end["hypervolume_final"], "completed": end["trials_completed"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--shares", type=float, nargs="+", default=[0.5, 0.0])
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="phase2-sharing-"))
    for share in args.shares:
        r = run_search(share, args.trials, root / f"share-{share}")
        fraction = r["served"] / max(r["served"] + r["trained"], 1e-9)
        print(f"share_phase2 {share}: {r['completed']:.0f} trials complete in {r['wall']:.0f} s; "
              f"{r['hits']:.0f} of {r['phase2_trials']:.0f} trials with a phase 2 were cache hits; phase-2 compute "
              f"served from the cache {r['served']:.0f} s of {r['served'] + r['trained']:.0f} s ({fraction:.0%}); "
              f"trial-seconds {r['trial_seconds']:.0f}; hypervolume (xtreme_score x relative_speed) "
              f"{r['hypervolume']:.2f}", flush=True)


if __name__ == "__main__":
    main()
