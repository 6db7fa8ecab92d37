"""MLflow, written from one place: the driver.

One experiment per search name, one parent run per search, one child run per trial (tag
``mlflow.parentRunId``). Trials never talk to MLflow themselves: what they report through Ray reaches
the driver, and :class:`MlflowCallback` writes it here. Runs are addressed by id through
``MlflowClient`` (no global "active run" state).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Mapping

from ray.tune import Callback

# Prefixes of the metrics a trial reports (everything else in a Tune result is Ray's bookkeeping).
TRIAL_METRIC_PREFIXES = ("phase2/", "phase3/", "eval/", "throughput/", "trial/")
TRIAL_METRICS = ("xtreme_score", "tokens_per_sec")
SECRET = re.compile(r"token|password|passwd|secret|api[_-]?key|credential", re.IGNORECASE)


def default_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def redact(params: Mapping[str, Any]) -> dict[str, str]:
    """Params as MLflow strings, minus anything that looks like a secret or embeds credentials."""
    clean = {}
    for key, value in params.items():
        text = str(value)
        if SECRET.search(key) or re.search(r"://[^/\s]*:[^/\s]*@", text):
            continue
        clean[key] = text[:6000]  # MLflow's param value limit
    return clean


def trial_params(config: Mapping[str, Any]) -> dict[str, str]:
    """A trial's sampled config as params; subsets as readable '+'-joined lists."""
    params = {}
    for key, value in config.items():
        if isinstance(value, (list, tuple)):
            value = "+".join(map(str, value)) or "none"
        params[key] = value
    return redact(params)


class Tracker:
    """The search's MLflow experiment, its parent run, and one child run per trial."""

    def __init__(self, tracking_uri: str, experiment: str) -> None:
        from mlflow.tracking import MlflowClient

        self.uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri)
        # Creating the experiment here also creates the SQLite schema before any trial runs:
        # two processes creating it at once race (notes/stack.md).
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
        self.parent_id: str | None = None
        self.children: dict[str, str] = {}  # Tune trial id -> MLflow run id

    def start_search(self, name: str, search_dir: str, params: Mapping[str, Any]) -> str:
        run = self.client.create_run(self.experiment_id, run_name=name,
                                     tags={"stiltsearch.kind": "search", "stiltsearch.search_dir": search_dir})
        self.parent_id = run.info.run_id
        self._log(self.parent_id, params=redact(params))
        return self.parent_id

    def start_trial(self, trial_id: str, number: int, config: Mapping[str, Any]) -> str:
        if trial_id in self.children:  # a restarted trial keeps its run
            return self.children[trial_id]
        run = self.client.create_run(self.experiment_id, run_name=f"trial-{number:03d}", tags={
            "mlflow.parentRunId": self.parent_id or "", "stiltsearch.kind": "trial",
            "stiltsearch.trial_id": trial_id, "stiltsearch.trial_number": str(number),
        })
        self.children[trial_id] = run.info.run_id
        self._log(run.info.run_id, params=trial_params(config))
        return run.info.run_id

    def trial_result(self, trial_id: str, result: Mapping[str, Any]) -> None:
        from mlflow.entities import Metric

        run_id = self.children[trial_id]
        now = int(time.time() * 1000)
        step = int(result.get("phase", 0))
        metrics, tags = [], {}
        for key, value in result.items():
            if not (key.startswith(TRIAL_METRIC_PREFIXES) or key in TRIAL_METRICS):
                continue
            if key.endswith("/loss_curve"):  # a loss curve becomes one metric with a step per window
                every = int(result.get(key.replace("loss_curve", "log_every"), 1))
                name = key.replace("loss_curve", "loss")
                metrics += [Metric(name, float(v), now, (i + 1) * every) for i, v in enumerate(value)]
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                tags[key.replace("/", "_")] = str(value)  # e.g. phase2/cache -> tag phase2_cache
            else:
                metrics.append(Metric(key, float(value), now, step))
        self._log(run_id, metrics=metrics, tags=tags)

    def end_trial(self, trial_id: str, status: str, error: str | None = None) -> None:
        run_id = self.children.get(trial_id)
        if run_id is None:
            return
        if error:
            self._log(run_id, tags={"stiltsearch.error": error[:5000]})
        self.client.set_terminated(run_id, status=status)

    def tag_pareto(self, ranks: Mapping[str, int]) -> None:
        """``{trial id: rank}`` -> tags ``pareto_rank`` and ``pareto_optimal`` on the child runs."""
        for trial_id, rank in ranks.items():
            if trial_id in self.children:
                self._log(self.children[trial_id], tags={"pareto_rank": str(rank),
                                                         "pareto_optimal": str(rank == 0).lower()})

    def log_search_results(self, metrics: Mapping[str, float], history: list[float], files: list[Path]) -> None:
        from mlflow.entities import Metric

        assert self.parent_id is not None
        now = int(time.time() * 1000)
        self._log(self.parent_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()]
                  + [Metric("hypervolume", h, now, i + 1) for i, h in enumerate(history)])
        for path in files:
            self.client.log_artifact(self.parent_id, str(path), artifact_path="pareto")

    def end_search(self, status: str = "FINISHED") -> None:
        if self.parent_id:
            self.client.set_terminated(self.parent_id, status=status)

    def _log(self, run_id: str, *, metrics: list[Any] | None = None, params: Mapping[str, str] | None = None,
             tags: Mapping[str, str] | None = None) -> None:
        from mlflow.entities import Param, RunTag

        self.client.log_batch(run_id, metrics=metrics or [],
                              params=[Param(k, v) for k, v in (params or {}).items()],
                              tags=[RunTag(k, v) for k, v in (tags or {}).items()])


def trial_number(trial: Any) -> int:
    """Tune's running index of a trial, from its experiment tag ("3_use_toy_mnli=..." -> 3).

    Trials are numbered from 1 in the order the searcher created them; the baseline is trial 1.
    """
    head = str(getattr(trial, "experiment_tag", "")).split("_", 1)[0]
    return int(head) if head.isdigit() else 0


def error_text(trial: Any) -> str:
    """The tail of a failed trial's error file (Ray writes the traceback there), ending with the
    last line that names an exception, so its last line is the one-line reason."""
    try:
        with open(trial.error_file) as f:
            lines = [line for line in f.read().strip().splitlines() if line.strip()]
    except (OSError, TypeError):
        return "trial failed (no error file)"
    named = [i for i, line in enumerate(lines) if re.match(r"^\s*[\w.]*(Error|Exception|Interrupt)\b", line)]
    end = named[-1] + 1 if named else len(lines)
    return "\n".join(lines[max(0, end - 8):end])


class MlflowCallback(Callback):
    """Feeds the :class:`Tracker` from Tune's trial events (runs in the driver)."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.tracker.start_trial(trial.trial_id, trial_number(trial), trial.config)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self.tracker.start_trial(trial.trial_id, trial_number(trial), trial.config)
        self.tracker.trial_result(trial.trial_id, result)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.tracker.end_trial(trial.trial_id, "FINISHED")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.tracker.end_trial(trial.trial_id, "FAILED", error=error_text(trial))
