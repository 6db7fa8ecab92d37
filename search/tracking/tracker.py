"""MLflow, written from one place: the driver (Ray-free; the Tune callbacks that feed it: :mod:`.callbacks`).

One experiment per search name, one parent run per search, one child run per trial (tag
``mlflow.parentRunId`` and ``stiltsearch.trial_number``, the Optuna trial number). Trials never talk
to MLflow themselves: what they report through Ray reaches the driver, and :class:`MlflowCallback`
writes it here. Runs are addressed by id through ``MlflowClient`` (no global "active run" state).

Exactness across failures: every write goes through an outbox (:mod:`.outbox`: in order, retried
while the server is away, so trials never wait on MLflow and nothing is dropped); a resumed search
attaches to its parent run and finds each trial's run by its number; each metric key is logged once
per run, so a trial that reports its restored phase-2 metrics again adds no duplicate history.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stiltsearch.search.results.table import CONFIRMS_TAG, FAMILIES, FAMILY_TAG, NUMBER_TAG, OUTCOME_TAG, SEED_TAG
from stiltsearch.search.tracking import uris
from stiltsearch.search.tracking.outbox import Outbox
from stiltsearch.search.tracking.redact import redact, trial_params
from stiltsearch.search.tracking.views import VIEW_KEY_PARAM, WORKFLOW_PARAM, open_experiment, saved_views, view_id
from stiltsearch.spaces.knobs import Config
from stiltsearch.trainables.objectives import OBJECTIVES, RUNG_PREFIX
from stiltsearch.trainables.outcome import Outcome
from stiltsearch.trainables.params import CONFIRMS_KEY, SEED_KEY
from stiltsearch.trainables.types import Metrics

# Prefixes of the metrics a trial reports (everything else in a Tune result is Ray's bookkeeping).
TRIAL_METRIC_PREFIXES = ("phase2/", "phase3/", "eval/", "throughput/", "trial/", RUNG_PREFIX)
TRIAL_METRICS = tuple(o.name for o in OBJECTIVES)  # the declared objectives, under their own names
NOTE = "mlflow.note.content"  # a run's description in the MLflow UI (Markdown)


def _snapshot(files: list[Path], prefix: str) -> Path:
    """Copies of ``files`` in a temporary directory, taken now: the outbox sends them later, and the
    next refresh may rewrite the originals before then."""
    snapshot = Path(tempfile.mkdtemp(prefix=prefix))
    for path in files:
        shutil.copy2(path, snapshot / path.name)
    return snapshot


SERVED_TAG = "stiltsearch.served_model"  # on a front trial's run: where its served model is
SERVED_MODEL_LIMIT_MIB = 1024.0  # a larger served model is recorded by path, not uploaded


class Tracker:
    """The search's MLflow experiment, its parent run, and one child run per trial number.

    The experiment and the parent run are written at once (so an unreachable server fails the search
    at its start); everything after that goes through the outbox."""

    def __init__(self, tracking_uri: str, experiment: str, *, create: bool = True) -> None:
        # a server's credentials go to MLflow's environment variables, a database's password stays
        # in the URI used to connect; only the URI without them is kept (search.json) and shown
        tracking_uri = uris.use_credentials(tracking_uri)
        self.uri = uris.stored_form(tracking_uri)
        problem = uris.store_problem(tracking_uri, create=create)
        if problem is not None:
            raise uris.TrackingUnavailable(f"mlflow.tracking_uri: {problem}")
        # Fail over to the outbox quickly instead of MLflow's own minutes of HTTP retries.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        self.client, self.experiment_id = open_experiment(tracking_uri, experiment, create)
        self.parent_id: str | None = None
        self.parent_status: str | None = None  # the parent run's status before this session attached
        self.children: dict[int, str] = {}  # trial number -> MLflow run id
        self.logged: dict[str, set[str]] = {}  # run id -> metric keys already logged there
        self.running: set[int] = set()  # trials whose run this session set RUNNING and has not ended
        self.ended: set[int] = set()  # trials whose run was found terminated when attaching
        self.hypervolume_steps = 0  # entries of the parent's hypervolume history already logged
        self.outbox = Outbox(lambda: uris.unreachable(tracking_uri) is None)

    # -- the parent run (written at once) ---------------------------------------------------------

    def start_search(self, name: str, search_dir: str, params: Mapping[str, Any],
                     objectives: Sequence[tuple[str, str]] = ()) -> str:
        """The parent run, and the experiment's saved views of its trials (``objectives``: the
        (name, direction) pairs, shown as the first columns)."""
        run = self.client.create_run(self.experiment_id, run_name=name,
                                     tags={"stiltsearch.kind": "search", "stiltsearch.search_dir": search_dir})
        self.parent_id = run.info.run_id
        self._log(self.parent_id, params=redact(params))
        for key, value in saved_views(name, self.parent_id, objectives).items():
            self.client.set_experiment_tag(self.experiment_id, key, value)
        return self.parent_id

    def view_url(self, which: str) -> str:
        """The UI path (after the server's address) of one of this search's saved views."""
        return (f"#/experiments/{self.experiment_id}/runs?{WORKFLOW_PARAM}&"
                f"{VIEW_KEY_PARAM}={view_id(self.parent_id or '', which)}")

    def attach(self, parent_id: str) -> None:
        """Continue a search's parent run (``stiltsearch resume``): its trials' runs are found by number."""
        from mlflow.exceptions import MlflowException

        try:
            parent = self.client.get_run(parent_id)
        except MlflowException:
            raise uris.TrackingUnavailable(f"search.json: parent run {parent_id!r} is not in {self.uri}; give the "
                                           "store the search was run with (a lost one: --new-mlflow-run)") from None
        self.parent_id = parent_id
        self.parent_status = parent.info.status  # a resume that fails puts it back (end_search)
        self.client.update_run(parent_id, status="RUNNING")
        self.hypervolume_steps = len(self.client.get_metric_history(parent_id, "hypervolume"))
        for run in self._child_runs():
            number = int(run.data.tags[NUMBER_TAG])
            self.children[number] = run.info.run_id
            self.logged[run.info.run_id] = set(run.data.metrics)
            if run.info.status in ("FINISHED", "FAILED"):
                self.ended.add(number)

    def is_complete(self, number: int, metrics: Sequence[str]) -> bool:
        """Whether a trial's run was found ended, with ``metrics`` logged, when attaching."""
        run_id = self.children.get(number)
        return run_id is not None and number in self.ended and set(metrics) <= self.logged.get(run_id, set())

    def _child_runs(self, number: int | None = None) -> list[Any]:
        query = f"tags.mlflow.parentRunId = '{self.parent_id}' and tags.`stiltsearch.kind` = 'trial'"
        if number is not None:
            query += f" and tags.`stiltsearch.trial_number` = '{number}'"
        return list(self.client.search_runs([self.experiment_id], query, max_results=50000))

    # -- trials (through the outbox) -----------------------------------------------------------------

    def start_trial(self, number: int, config: Config) -> None:
        if number not in self.running:
            self.running.add(number)
            self.outbox.put(f"start trial {number}", lambda: self._start_trial(number, dict(config)))

    def _start_trial(self, number: int, config: Config) -> None:
        if number not in self.children:  # maybe created by a write whose answer was lost
            for run in self._child_runs(number):
                self.children[number] = run.info.run_id
        if number in self.children:  # a resumed or restarted trial keeps its run
            self.client.update_run(self.children[number], status="RUNNING")
            return
        tags = {"mlflow.parentRunId": self.parent_id or "", "stiltsearch.kind": "trial", NUMBER_TAG: str(number),
                FAMILY_TAG: FAMILIES[0] if config.get("intermediate_tasks") else FAMILIES[1]}
        if CONFIRMS_KEY in config:  # a confirmation: the trial it re-runs, under which seed (search/results/confirm.py)
            tags |= {CONFIRMS_TAG: str(config[CONFIRMS_KEY]), SEED_TAG: str(config[SEED_KEY])}
        run = self.client.create_run(self.experiment_id, run_name=f"trial-{number:03d}", tags=tags)
        self.children[number] = run.info.run_id
        self.logged[run.info.run_id] = set()
        self._log(run.info.run_id, params=trial_params(config))

    def trial_result(self, number: int, result: Metrics) -> None:
        self.outbox.put(f"result of trial {number}", lambda: self._trial_result(number, dict(result)))

    def _trial_result(self, number: int, result: Metrics) -> None:
        from mlflow.entities import Metric

        run_id = self.children[number]
        logged = self.logged.setdefault(run_id, set())
        now = int(time.time() * 1000)
        step = int(result.get("phase", 0))
        metrics, tags = [], {}
        for key, value in result.items():
            if not (key.startswith(TRIAL_METRIC_PREFIXES) or key in TRIAL_METRICS):
                continue
            if key.endswith("/loss_curve"):  # a loss curve becomes one metric with a step per window
                every = int(result.get(key.replace("loss_curve", "log_every"), 1))
                name = key.replace("loss_curve", "loss")
                if name not in logged:
                    metrics += [Metric(name, float(v), now, (i + 1) * every) for i, v in enumerate(value)]
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                tags[key.replace("/", "_")] = str(value)  # e.g. phase2/cache -> tag phase2_cache
            elif key not in logged:
                metrics.append(Metric(key, float(value), now, step))
        self._log(run_id, metrics=metrics, tags=tags)
        logged.update(m.key for m in metrics)

    def end_trial(self, number: int, outcome: Outcome, error: str | None = None, rung: int | None = None) -> None:
        """The run ends as the outcome says (:attr:`Outcome.mlflow_status`), tagged with it; a
        failed run also gets its error, an infeasible one the bound it missed, a pruned one the
        rung it was stopped at."""
        self.running.discard(number)
        self.outbox.put(f"end trial {number}", lambda: self._end_trial(number, outcome, error, rung))

    def _end_trial(self, number: int, outcome: Outcome, error: str | None, rung: int | None) -> None:
        run_id = self.children.get(number)
        if run_id is None:
            return
        tags = {OUTCOME_TAG: outcome.value}
        if error:
            tags["stiltsearch.error" if outcome is not Outcome.INFEASIBLE else "stiltsearch.infeasible"] = error[:5000]
        if outcome is Outcome.PRUNED:
            tags["stopped_at_rung"] = str(rung)
        self._log(run_id, tags=tags)
        self.client.set_terminated(run_id, status=outcome.mlflow_status)

    def tag_pareto(self, ranks: Mapping[int, int]) -> None:
        """``{trial number: rank}`` -> tags ``pareto_rank`` and ``pareto_optimal`` on the child runs."""
        ranks = dict(ranks)

        def write() -> None:
            for number, rank in ranks.items():
                if number in self.children:
                    self._log(self.children[number], tags={"pareto_rank": str(rank),
                                                            "pareto_optimal": str(rank == 0).lower()})
        self.outbox.put("pareto tags", write)

    def log_served_models(self, front: Sequence[int], trials: Path, limit_mib: float = SERVED_MODEL_LIMIT_MIB) -> None:
        """Each front trial's served model (its trial directory's ``served/``: config, heads and
        weights) as its child run's ``served_model/`` artifacts, or, past ``limit_mib``, its path as
        the tag ``stiltsearch.served_model`` (an XLM-R Large in fp32 is ~2.2 GB). Once per run."""
        chosen = {n: trials / f"{n:04d}" / "served" for n in front}

        def write() -> None:
            for number, served in chosen.items():
                run_id = self.children.get(number)
                if run_id is None or not (served / "state.pt").exists():
                    continue
                if SERVED_TAG in self.client.get_run(run_id).data.tags:
                    continue
                size = sum(f.stat().st_size for f in served.iterdir() if f.is_file()) / 2 ** 20
                if size <= limit_mib:
                    self.client.log_artifacts(run_id, str(served), artifact_path="served_model")
                    where = "artifact: served_model/"
                else:
                    where = f"path: {served} ({size:,.0f} MiB, over the {limit_mib:g} MiB artifact limit)"
                self._log(run_id, tags={SERVED_TAG: where})
        self.outbox.put("served models", write)

    def log_search_results(self, metrics: Mapping[str, float], history: list[float], files: list[Path],
                           note: str = "") -> None:
        """The parent run's summary metrics (step = trials completed), new hypervolume entries, the
        Pareto files (copied now: the next refresh may rewrite them before this one is sent), and
        its description ``note`` (Markdown: what the search found so far)."""
        from mlflow.entities import Metric

        assert self.parent_id is not None
        parent = self.parent_id
        now = int(time.time() * 1000)
        step = int(metrics.get("trials_completed", 0))
        values = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        values += [Metric("hypervolume", h, now, i + 1) for i, h in enumerate(history) if i >= self.hypervolume_steps]
        self.hypervolume_steps = max(self.hypervolume_steps, len(history))
        snapshot = _snapshot(files, "stilts-pareto-")

        if note:
            note += (f"\n\nViews of the trials: [all]({self.view_url('trials')}), "
                     f"[the Pareto front]({self.view_url('front')}); files: the `pareto/` artifacts.")

        def write() -> None:
            self._log(parent, metrics=values, tags={NOTE: note[:5000]} if note else None)
            self.client.log_artifacts(parent, str(snapshot), artifact_path="pareto")
            shutil.rmtree(snapshot, ignore_errors=True)
        self.outbox.put("pareto results", write)

    def log_report(self, files: list[Path], metrics: Mapping[str, float], problem: str | None = None) -> None:
        """The search's report (search/results/findings.py) as the parent run's ``report/`` artifacts and its
        figures as metrics; or, when it could not be written, why (tag ``stiltsearch.report``)."""
        from mlflow.entities import Metric

        assert self.parent_id is not None
        parent = self.parent_id
        now = int(time.time() * 1000)
        snapshot = _snapshot(files, "stilts-report-")

        def write() -> None:
            self._log(parent, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
                      tags={"stiltsearch.report": problem or "report/report.html"})
            if files:
                self.client.log_artifacts(parent, str(snapshot), artifact_path="report")
            shutil.rmtree(snapshot, ignore_errors=True)
        self.outbox.put("report", write)

    def end_search(self, status: str, timeout_s: float | None = None) -> bool:
        """End the runs this session left open (``status`` for them too), then deliver every waiting
        write. True if all reached MLflow within ``timeout_s``, none refused (``outbox.dropped``)."""
        for number in sorted(self.running):
            self.end_trial(number, Outcome.INTERRUPTED if status != "FAILED" else Outcome.FAILED)
        if self.parent_id:
            parent = self.parent_id
            # a resumed session that crashed leaves the search's run as it found it: the study, not
            # this session, says what the search holds, and it is as resumable as before
            final = self.parent_status if status == "FAILED" and self.parent_status in ("FINISHED", "KILLED") else status
            self.outbox.put("end search", lambda: self.client.set_terminated(parent, status=final))
        delivered = self.outbox.flush(timeout_s)
        if (gone := uris.store_problem(self.uri, create=False)) is not None:  # e.g. its SQLite file deleted
            self.outbox.dropped.append(f"every write ({gone})")
        return delivered and not self.outbox.dropped

    def _log(self, run_id: str, *, metrics: list[Any] | None = None, params: Mapping[str, str] | None = None,
             tags: Mapping[str, str] | None = None) -> None:
        from mlflow.entities import Param, RunTag

        metrics = metrics or []
        for start in range(0, max(1, len(metrics)), 1000):  # MLflow takes at most 1,000 metrics a batch
            self.client.log_batch(run_id, metrics=metrics[start:start + 1000],
                                  params=[Param(k, v) for k, v in (params or {}).items()] if start == 0 else [],
                                  tags=[RunTag(k, v) for k, v in (tags or {}).items()] if start == 0 else [])
