"""A search's MLflow parent run: made for a new search, reopened for a resumed one, or made again
when the store the search wrote to was lost (``stiltsearch resume DIR --new-mlflow-run``).

``search.json`` in the search directory says where the parent run is (tracking URI without its
password, experiment, run id); it is written only once the run exists.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from stiltsearch.search.config.reading import to_dict
from stiltsearch.search.config.schema import SearchConfig
from stiltsearch.search.layout import CONFIG, SEARCH_FILE
from stiltsearch.search.tracking.tracker import Tracker
from stiltsearch.search.tracking.uris import with_password
from stiltsearch.trainables.trialdir import write_atomic


def start_parent(tracker: Tracker, cfg: SearchConfig, search_dir: Path) -> str:
    """The search's parent run (its config as params and as an artifact), then ``search.json``."""
    parent = tracker.start_search(search_dir.name, str(search_dir), flat_params(to_dict(cfg)),
                                  [(o.name, o.direction) for o in cfg.objectives])
    if not (search_dir / CONFIG).exists():  # a new search writes it first; a lost store's search has it
        (search_dir / CONFIG).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    tracker.client.log_artifact(parent, str(search_dir / CONFIG))
    write_atomic(search_dir / SEARCH_FILE, json.dumps({"tracking_uri": tracker.uri,
                                                        "experiment": cfg.mlflow.experiment or cfg.name,
                                                        "parent_run_id": parent}, indent=1))
    return parent


def reattach(where: dict[str, str], cfg: SearchConfig, search_dir: Path, new_run: bool = False) -> Tracker:
    """The search's parent run, reopened (an unreachable store or a missing run stops here); with
    ``new_run``, a new parent run in the same store and experiment (made if missing), for a search
    whose store was lost: the resume then logs every finished trial there from the study."""
    if not new_run:
        tracker = Tracker(with_password(where["tracking_uri"]), where["experiment"], create=False)
        tracker.attach(where["parent_run_id"])
        return tracker
    tracker = Tracker(with_password(where["tracking_uri"]), where["experiment"], create=True)
    parent = start_parent(tracker, cfg, search_dir)
    tracker.parent_status = "KILLED"  # a resume that fails leaves it as a stopped search, resumable
    print(f"mlflow: a new parent run {parent} for {search_dir.name} in {tracker.uri} (was {where['parent_run_id']}); "
          "the finished trials are logged there from the study", flush=True)
    return tracker


def flat_params(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as dotted MLflow params (``search.num_trials``)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= flat_params(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat
