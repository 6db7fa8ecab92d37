"""How a search shows in the MLflow UI: the experiment's kind, and two saved views of its trials."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from stiltsearch.search.tracking.uris import TrackingUnavailable, stored_form
from stiltsearch.spaces.knobs import KNOBS

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")  # MLflow 3's "model training" kind

# Saved views of the experiment page (MLflow 3.17's "shared view state"): an experiment tag
# ``mlflow.sharedViewState.<id>`` holding {name, createdAt (ms), updatedAt, state: JSON text of the
# page's search facets and UI state}, listed by name in the page's view menu and opened by
# ``?viewStateShareKey=<id>``. Without one the trials are folded under their parent run and no
# metric is a column (MLflow's default columns are Source, Models and Dataset). The layout is the
# UI's own (mlflow/server/js, not a documented API): tests/test_browser.py checks it in Chromium.
VIEW_TAG_PREFIX = "mlflow.sharedViewState."
VIEW_KEY_PARAM = "viewStateShareKey"
# MLflow 3.17.2's UI opens every experiment in its GenAI workflow (traces, "No data available")
# unless the URL says otherwise or the user flips its "Model training" toggle (remembered per
# browser); the experiment's kind tag above is not what it reads. So every link a search gives says so.
WORKFLOW_PARAM = "workflowType=machine_learning"


def view_id(parent_id: str, which: str) -> str:
    return f"stiltsearch-{parent_id}-{which}"


def saved_views(search: str, parent_id: str, objectives: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Experiment tags of two views of one search's trials, flat, objectives and knobs as columns,
    best first by the first objective: "trials" (all of them) and "front" (the Pareto front)."""
    trials = f"tags.mlflow.parentRunId = '{parent_id}' and tags.`stiltsearch.kind` = 'trial'"
    columns = ([f"metrics.`{name}`" for name, _ in objectives] + ["tags.`pareto_optimal`", "tags.`stiltsearch.outcome`"]
               + [f"params.`{k.name}`" for k in KNOBS] + ["attributes.`Duration`"])
    first = objectives[0] if objectives else None
    order = {"orderByKey": f"metrics.`{first[0]}`", "orderByAsc": first[1] == "min"} if first else {}
    now = int(time.time() * 1000)
    views = {}
    for which, title, where in (("trials", "trials", trials), ("front", "Pareto front", f"{trials} and tags.pareto_optimal = 'true'")):
        state = {"searchFilter": where, **order, "selectedColumns": columns}
        views[VIEW_TAG_PREFIX + view_id(parent_id, which)] = json.dumps(
            {"name": f"{search}: {title}", "createdAt": now, "updatedAt": now, "state": json.dumps(state)})
    return views


def open_experiment(uri: str, name: str, create: bool) -> tuple[MlflowClient, str]:
    """A client of the store at ``uri`` and the experiment's id, created when missing (``create``),
    with its kind tag; a store MLflow refuses is :class:`TrackingUnavailable`. Creating it here
    also creates the SQLite schema before any trial runs: two processes creating it at once race
    (MLflow 3.17: "table latest_metrics already exists")."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient
    from sqlalchemy.exc import SQLAlchemyError

    try:
        client = MlflowClient(tracking_uri=uri)
        found = client.get_experiment_by_name(name)
        if found is None and not create:
            raise TrackingUnavailable(f"mlflow.experiment: {uri} holds no experiment {name!r}; "
                                      "give the store the search was run with")
        experiment_id = found.experiment_id if found else client.create_experiment(name)
        if found is None or EXPERIMENT_KIND[0] not in found.tags:
            # a search is model training, not GenAI: the kind MLflow 3 records for an experiment.
            # (3.17.2's UI picks its workflow from the URL or a per-browser toggle instead, so
            # the links a search gives also say it: WORKFLOW_PARAM.)
            client.set_experiment_tag(experiment_id, *EXPERIMENT_KIND)
    except (MlflowException, SQLAlchemyError) as exc:  # a database server that refuses or is away
        first = (str(getattr(exc, "message", exc)).strip().splitlines() or ["?"])[0][:200]
        raise TrackingUnavailable(f"mlflow.tracking_uri: {stored_form(uri)} refused the experiment ({first})") from None
    return client, str(experiment_id)
