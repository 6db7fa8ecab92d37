"""What the driver publishes besides trial events: the front after told trials (files, MLflow tags
and artifacts, at a bounded share of its time), the report at the end, and MLflow's catch-up with
the study on a resume."""

from __future__ import annotations

import math
import time
from pathlib import Path

import optuna

from stiltsearch.search.config.schema import SearchConfig
from stiltsearch.search.layout import trials_dir
from stiltsearch.search.planning.spend import Spend
from stiltsearch.search.results import front as fronts
from stiltsearch.search.study.core import CONFIG_ATTR, ERROR_ATTR, INFEASIBLE_ATTR, RUNG_ATTR, outcome_of
from stiltsearch.search.tracking.tracker import Tracker
from stiltsearch.trainables import trialdir
from stiltsearch.trainables.outcome import Outcome

# A told trial republishes the front (pareto tags, CSV, two plots, MLflow artifacts: ~0.25 s of
# driver CPU early on, more as the study grows; benchmarks/driver_scale.py) at most every
# FRONT_REFRESH_S, and never more often than FRONT_SHARE of the driver's time allows; the end of a
# session always does. With trials of minutes that is after each one; with many short ones (early
# stopping) the driver stays free for asking and telling.
FRONT_REFRESH_S = 30.0
FRONT_SHARE = 0.05


class FrontPublisher:
    """The search's front, from the study to its directory and the MLflow parent run."""

    def __init__(self, study: optuna.Study, cfg: SearchConfig, search_dir: Path, tracker: Tracker, spend: Spend) -> None:
        self.study, self.cfg, self.search_dir, self.tracker, self.spend = study, cfg, search_dir, tracker, spend
        self.last, self.took = -math.inf, 0.0  # monotonic time of the last publish, and what it took (s)

    def publish(self) -> fronts.Front:
        start = time.monotonic()
        front = fronts.from_study(self.study, self.cfg.objective_names, self.cfg.directions)
        self.tracker.tag_pareto(front.rank_of)
        files = fronts.write_files(front, self.search_dir, self.search_dir.name)
        self.tracker.log_search_results(front.summary() | self.spend.metrics(), front.history, files,
                                        fronts.description(front))
        self.last, self.took = time.monotonic(), time.monotonic() - start
        return front

    def refresh(self, _: int) -> None:
        """After a trial is told (the searcher's ``on_told``): publish, unless it was done lately."""
        if time.monotonic() - self.last >= max(FRONT_REFRESH_S, self.took / FRONT_SHARE):
            self.publish()


def write_report(study: optuna.Study, cfg: SearchConfig, search_dir: Path, tracker: Tracker) -> list[str]:
    """The report (search/results/report.py) into ``<search dir>/report`` and the parent run; a report
    that cannot be made is said on the console and in MLflow, and the search still ends as it did.
    Returns the answers to the two questions in a line each (:func:`.answers.answers`)."""
    from stiltsearch.search.results.answers import answers
    from stiltsearch.search.results.report import report

    try:
        result, files = report(study, cfg, trials_dir(search_dir), search_dir / "report", search_dir.name)
    except Exception as exc:  # noqa: BLE001 - the report is a view of the study: its failure must not fail the search
        problem = f"not written: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        print(f"report: {problem}", flush=True)
        tracker.log_report([], {}, problem)
        return []
    tracker.log_report(files, result.summary())
    print(f"report           : {files[0]} (also the parent run's report/ artifacts)", flush=True)
    return answers(result, str(search_dir))


def sync_finished(tracker: Tracker, study: optuna.Study, trials: Path, names: list[str]) -> None:
    """MLflow catches up with the study: a trial that ended (complete, failed, pruned) but whose run
    missed its end (the driver died, or MLflow was away and its writes were lost with the driver)
    gets it from the trial's directory."""
    for trial in study.get_trials(deepcopy=False):
        outcome = outcome_of(trial)
        if outcome is None or tracker.is_complete(trial.number, names if outcome is Outcome.COMPLETE else []):
            continue
        tracker.start_trial(trial.number, trial.user_attrs.get(CONFIG_ATTR) or dict(trial.params))
        result = trialdir.read_result(trialdir.trial_path(trials, trial.number))
        if result is None and trial.values is not None:  # its directory is gone: the study still has the objectives
            result = dict(zip(names, trial.values, strict=True))
        if result is not None:
            tracker.trial_result(trial.number, result)
        detail = trial.user_attrs.get(INFEASIBLE_ATTR if outcome is Outcome.INFEASIBLE else ERROR_ATTR)
        tracker.end_trial(trial.number, outcome, error=detail, rung=trial.user_attrs.get(RUNG_ATTR))
