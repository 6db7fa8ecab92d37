"""The driver: run or resume a search, from a validated config to its Pareto front in MLflow.

config -> the study (``study/``) -> the trials under Ray (``launch/runner.py``: phase 1, a Ray
session, a Tune ``Tuner`` whose searcher is the study) -> each trial told to the study refreshes the
front (``tracking/publish.py``: files, MLflow tags and artifacts) -> the report and the front are
printed. A search directory (:mod:`.layout`) holds everything needed to continue it
(:func:`resume_search`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState

from stiltsearch.search.config.compose import (
    space_spec,
)
from stiltsearch.search.config.reading import load_config, to_dict
from stiltsearch.search.config.schema import SearchConfig
from stiltsearch.search.launch import preflight
from stiltsearch.search.launch.clustercheck import address_problem
from stiltsearch.search.launch.raysession import (
    sigterm_as_sigint,
    stop_stray_processes,
)
from stiltsearch.search.launch.runner import run_trials
from stiltsearch.search.layout import (
    CONFIG,
    SEARCH_FILE,
    SearchError,
    check_study_file,
    done_count,
    driver_lock,
    is_search_dir,
    new_search_dir,
    read_search_file,
    study_storage,
    trials_dir,
)
from stiltsearch.search.planning.spend import Spend
from stiltsearch.search.results import front as fronts
from stiltsearch.search.study.core import (
    count,
    done,
    open_study,
    owed,
    reconcile,
)
from stiltsearch.search.tracking.parent import reattach, start_parent
from stiltsearch.search.tracking.publish import FrontPublisher, sync_finished, write_report
from stiltsearch.search.tracking.tracker import Tracker
from stiltsearch.search.tracking.uris import default_tracking_uri
from stiltsearch.spaces import baseline_point

MLFLOW_FLUSH_S = 600.0  # at the end, how long to wait for an MLflow server that is away


@dataclass
class SearchResult:
    search_dir: Path
    front: fronts.Front
    num_trials: int  # asked for
    interrupted: bool  # stopped before num_trials trials finished; `stiltsearch resume` continues it
    delivered: bool  # every MLflow write arrived
    tracking_uri: str
    experiment: str
    parent_run_id: str
    study_storage: str
    missing: tuple[str, ...] = ()  # the writes MLflow refused for good (when not delivered)
    answers: tuple[str, ...] = ()  # the two questions, a line each (results/answers.py)
    front_view: str = ""  # the MLflow UI path of the search's saved views (Tracker.view_url)
    trials_view: str = ""


def run_search(cfg: SearchConfig, *, address: str | None = None, trainable: Any = None) -> SearchResult:
    """Run a whole search in a new directory. ``trainable`` replaces the STILTs trainable (tests).
    Every check that needs nothing created runs first (:func:`preflight.check`)."""
    preflight.check(cfg, address=address)
    search_dir, tracker = _created(cfg)
    print(f"search {search_dir.name}: {cfg.search.num_trials} trials, {cfg.search.max_concurrent} at a time; "
          f"objectives {', '.join(f'{o.name} ({o.direction})' for o in cfg.objectives)}", flush=True)
    with driver_lock(search_dir):
        return _drive(cfg, search_dir, tracker, address, trainable=trainable)


def _created(cfg: SearchConfig) -> tuple[Path, Tracker]:
    """A new search directory, whole or not at all: the study first (nothing continues without
    it), then ``config.yaml``, then MLflow (its experiment, the parent run) and ``search.json``. A
    write that fails (a full disk, a quota; MLflow's store away) removes what was made and ends a
    parent run already made FAILED: one line, nothing half-made that `resume` could not continue."""
    from sqlalchemy.exc import SQLAlchemyError

    root = Path(cfg.output_dir).resolve()
    first = next(p for p in (root, *root.parents) if p.parent.exists())  # the first directory a search makes
    made = None if first.exists() else first  # taken back, with all below it, if the search cannot be made
    try:
        search_dir = new_search_dir(cfg.output_dir, cfg.name)
    except OSError as exc:
        raise SearchError(f"output_dir: cannot create a search directory in {cfg.output_dir} ({exc.strerror})") from None
    tracker: Tracker | None = None
    try:
        open_study(study_storage(search_dir), cfg.name, cfg.directions, baseline_point(space_spec(cfg)),
                   cfg.objective_names)
        (search_dir / CONFIG).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        tracker = Tracker(cfg.mlflow.tracking_uri or default_tracking_uri(), cfg.mlflow.experiment or cfg.name)
        start_parent(tracker, cfg, search_dir)
    except BaseException as exc:
        shutil.rmtree(made or search_dir, ignore_errors=True)
        if tracker is not None and tracker.parent_id is not None:
            tracker.end_search("FAILED", 10.0)
        if not isinstance(exc, (OSError, SQLAlchemyError)):
            raise  # an MLflow store that refuses is its own line (TrackingUnavailable)
        reason = getattr(exc, "strerror", None) or str(getattr(exc, "orig", exc)).splitlines()[0][:120]
        raise SearchError(f"output_dir: cannot write the new search in {search_dir.parent} ({reason}); nothing of it "
                          "was kept; free space (or fix the directory) and run again") from None
    return search_dir, tracker


def resume_search(search_dir: str | Path, *, address: str | None = None, num_trials: int | None = None,
                  new_mlflow_run: bool = False, trainable: Any = None) -> SearchResult:
    """Continue a search however it stopped: its finished trials are kept, its owed ones continue
    from their checkpoints, new ones are sampled until ``num_trials`` (default: as configured).

    Nothing is changed until the search can continue: the lock first (a second driver is refused
    before it touches anything), then the search's files are checked (a damaged ``optuna.db`` is
    reported, never taken for an empty study), then MLflow, and only then is the raised trial
    count written to ``config.yaml``. ``new_mlflow_run``: the store lost the parent run; make a new
    one there (:func:`.parent.reattach`)."""
    search_dir = _existing(search_dir)
    with driver_lock(search_dir):
        where = read_search_file(search_dir)
        cfg = load_config(search_dir / CONFIG, **({"search.num_trials": num_trials} if num_trials else {}))
        check_study_file(search_dir, cfg.name)
        finished = done_count(search_dir, cfg.name)
        if num_trials is not None and num_trials < finished:
            raise SearchError(f"--trials: {num_trials} is fewer than the {finished} trials this search has done; "
                              f"give at least {finished}")
        if address is not None and (problem := address_problem(address)) is not None:
            raise SearchError(f"--address: {problem}")
        tracker = reattach(where, cfg, search_dir, new_run=new_mlflow_run)
        if num_trials:
            (search_dir / CONFIG).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        return _drive(cfg, search_dir, tracker, address, resuming=True, trainable=trainable)


def _existing(search_dir: str | Path) -> Path:
    """A search directory `stiltsearch run` made, resolved; anything else is one line."""
    path = Path(search_dir).resolve()
    if not is_search_dir(path):
        raise SearchError(f"search_dir: {path} is not a search directory (no {SEARCH_FILE} or {CONFIG}); "
                          "give the directory `stiltsearch run` printed")
    return path


def confirm_search(search_dir: str | Path, seeds: int, *, address: str | None = None,
                   trainable: Any = None) -> SearchResult:
    """Re-run the search's front and its baseline under ``seeds`` new training seeds, as trials of
    the same search (:mod:`.confirm` says how); the report then gives each point's mean and standard
    deviation. Checked as :func:`resume_search` is, and refused while the search's own trials are
    unfinished (the front is not yet known)."""

    from stiltsearch.search.results import confirm

    search_dir = _existing(search_dir)
    if not 1 <= seeds <= confirm.MAX_SEEDS:
        raise SearchError(f"--seeds: give 1 to {confirm.MAX_SEEDS} new seeds per point, got {seeds}")
    with driver_lock(search_dir):
        where = read_search_file(search_dir)
        cfg = load_config(search_dir / CONFIG)
        check_study_file(search_dir, cfg.name)
        if address is not None and (problem := address_problem(address)) is not None:
            raise SearchError(f"--address: {problem}")
        wanted = confirm.seeds(cfg.training.seed, seeds)
        if wanted[-1] >= 2**32:
            raise SearchError(f"--seeds: training.seed {cfg.training.seed} + {seeds} passes torch's seed range 2**32; "
                              "give fewer seeds")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(study_name=cfg.name, storage=study_storage(search_dir))
        if (problem := confirm.unfinished(study, cfg.search.num_trials)) is not None:
            raise SearchError(f"search_dir: {search_dir.name} has {problem}; finish it first with "
                              f"`stiltsearch resume {search_dir}`, then confirm")
        numbers = confirm.confirmable(study, cfg.objective_names, cfg.directions)
        if not numbers:
            raise SearchError(f"search_dir: {search_dir.name} has no complete trial to confirm")
        todo = confirm.planned(study, numbers, wanted)
        tracker = reattach(where, cfg, search_dir)
        confirm.enqueue(study, todo)
        cfg = load_config(search_dir / CONFIG, **{"search.num_trials": len(study.get_trials(deepcopy=False))})
        (search_dir / CONFIG).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        print(f"confirming {search_dir.name}: trials {', '.join(map(str, numbers))} (the front and the baseline) "
              f"under seeds {', '.join(map(str, wanted))}: {len(todo)} new runs, "
              f"{confirm.pending(study) - len(todo)} from an earlier confirm", flush=True)
        return _drive(cfg, search_dir, tracker, address, resuming=True, trainable=trainable)


def _drive(cfg: SearchConfig, search_dir: Path, tracker: Tracker, address: str | None,
           resuming: bool = False, trainable: Any = None) -> SearchResult:
    """Reconcile the study, run what is owed under Ray, publish the front; shared by run and resume."""
    n = cfg.search.num_trials
    status = "FAILED"
    with sigterm_as_sigint():  # the caller holds the driver lock
        try:
            study = _opened(cfg, search_dir, tracker, resuming)
            spend = Spend(study, cfg.search.budget, cfg.search.workers_per_trial * cfg.search.gpus_per_worker)
            publisher = FrontPublisher(study, cfg, search_dir, tracker, spend)
            if (finished := done(study)) < n:
                run_trials(cfg, search_dir, study, tracker, address, finished=finished, spend=spend,
                           on_told=publisher.refresh, trainable=trainable)
            spend.save()
            front = publisher.publish()
            tracker.log_served_models(front.numbers, trials_dir(search_dir))
            said = write_report(study, cfg, search_dir, tracker)
            finished = done(study)
            interrupted = finished < n and spend.stopped is None
            status = "KILLED" if interrupted else "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            delivered = tracker.end_search(status, MLFLOW_FLUSH_S)
    fronts.print_table(front)
    if interrupted:
        print(f"\ninterrupted: {finished} of {n} trials done; continue with: stiltsearch resume {search_dir}")
    elif spend.stopped is not None and finished < n:
        print(f"\nstopped by the budget after {finished} of {n} trials ({spend.stopped}); to go on, raise "
              f"search.budget in {search_dir / 'config.yaml'}, then: stiltsearch resume {search_dir}")
    return SearchResult(search_dir=search_dir, front=front, num_trials=n, interrupted=interrupted,
                        delivered=delivered, missing=tuple(tracker.outbox.dropped), answers=tuple(said),
                        tracking_uri=tracker.uri,
                        experiment=cfg.mlflow.experiment or cfg.name,
                        parent_run_id=tracker.parent_id or "", study_storage=study_storage(search_dir),
                        front_view=tracker.view_url("front"), trials_view=tracker.view_url("trials"))


def _opened(cfg: SearchConfig, search_dir: Path, tracker: Tracker, resuming: bool) -> optuna.Study:
    """The study, with trials that ended while no driver listened told; on a resume, the processes a
    killed driver left stopped, what is owed said, and MLflow caught up with the study."""
    names = cfg.objective_names
    if resuming and (stopped := stop_stray_processes(search_dir)):
        print(f"stopped {stopped} processes the previous driver left running", flush=True)
    study = open_study(study_storage(search_dir), cfg.name, cfg.directions, baseline_point(space_spec(cfg)), names)
    told = reconcile(study, trials_dir(search_dir), names)
    if resuming:
        finished, waiting, n = done(study), owed(study), cfg.search.num_trials
        queued = count(study, TrialState.WAITING)  # enqueued, never asked: confirmations
        print(f"resuming {search_dir.name}: {finished} of {n} trials done"
              + (f" ({len(told)} finished while no driver listened: {told})" if told else "")
              + (f"; continuing {len(waiting)} from their checkpoints: {waiting}" if waiting else "")
              + (f"; {queued} queued (confirmations)" if queued else "")
              + f"; {max(0, n - finished - len(waiting) - queued)} new", flush=True)
        sync_finished(tracker, study, trials_dir(search_dir), names)
    return study


def report_locations(result: SearchResult) -> None:
    backend = result.tracking_uri
    print(f"\nsearch directory : {result.search_dir}")
    print(f"pareto table/plot: {result.search_dir / 'pareto.csv'}, {result.search_dir / 'pareto.png'}")
    print(f"optuna study     : {result.study_storage} (view: optuna-dashboard {result.study_storage})")
    print(f"mlflow           : experiment '{result.experiment}', parent run {result.parent_run_id}")
    served = backend.startswith(("http://", "https://"))
    if not served:
        print(f"                   view: mlflow ui --backend-store-uri {backend}")
    if result.front_view:  # a served store's own UI, else `mlflow ui`'s default address
        ui = backend.rstrip("/") if served else "http://127.0.0.1:5000"
        print(f"                   the front: {ui}/{result.front_view}")
        print(f"                   all trials: {ui}/{result.trials_view}")
    if result.answers:
        print("\n" + "\n".join(result.answers))
