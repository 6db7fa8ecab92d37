"""Phase-2 cache: what fraction of intermediate-training compute a search reused.

Reads a finished search's child runs from MLflow: each trial's ``phase2_cache`` tag (miss = trained,
hit = reused, skipped = no intermediate task) and ``phase2/seconds``. A hit is credited with the
seconds its key took when it was trained (in this search or an earlier one).

    python benchmarks/phase2_cache.py [--tracking-uri sqlite:///mlflow.db] [--experiment toy] [--run PARENT_ID]
"""

from __future__ import annotations

import argparse
from collections import Counter

from stiltsearch.search.tracking.uris import default_tracking_uri


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", default=default_tracking_uri())
    parser.add_argument("--experiment", default="toy")
    parser.add_argument("--run", help="parent run id (default: the newest search in the experiment)")
    args = parser.parse_args()

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=args.tracking_uri)
    experiment = client.get_experiment_by_name(args.experiment)
    if experiment is None:
        raise SystemExit(f"no MLflow experiment {args.experiment!r} at {args.tracking_uri}; run a search first")
    parent = args.run or client.search_runs([experiment.experiment_id], "tags.`stiltsearch.kind` = 'search'",
                                            order_by=["attributes.start_time DESC"], max_results=1)[0].info.run_id
    children = client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'",
                                  max_results=10000)
    states = Counter(c.data.tags.get("phase2_cache", "unknown") for c in children)
    # A hit's run carries the phase-2 metrics of the training it reused (read from the cache record),
    # so its phase2/seconds is the compute it saved, even when an earlier search trained it.
    seconds = {state: sum(c.data.metrics.get("phase2/seconds", 0.0) for c in children
                          if c.data.tags.get("phase2_cache") == state) for state in ("miss", "hit")}
    reused, needed = seconds["hit"], seconds["miss"] + seconds["hit"]
    print(f"search run {parent}: {len(children)} trials; phase 2 trained {states['miss']}, reused {states['hit']}, "
          f"skipped (baseline-like) {states['skipped']}")
    print(f"phase-2 compute reused: {reused:.0f} s of {needed:.0f} s needed = "
          f"{100 * reused / needed if needed else 0:.1f} %")


if __name__ == "__main__":
    main()
