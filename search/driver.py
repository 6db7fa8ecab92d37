"""The driver: run or resume a search, from a validated config to its Pareto front in MLflow.

config -> phase 1 (:mod:`.models`) -> a Ray session (:mod:`.raysession`) -> a Tune ``Tuner`` whose
searcher is the Optuna study (:mod:`.tuner`) -> each trial told to the study refreshes the front
(files, MLflow tags and artifacts) -> the front is printed. A search directory (:mod:`.layout`)
holds everything needed to continue it (:func:`resume_search`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from optuna.trial import TrialState

from stiltsearch.search.config.coerce import ConfigError
from stiltsearch.search.config.compose import (
    space_spec,
    trial_settings,
)
from stiltsearch.search.config.reading import load_config, to_dict
from stiltsearch.search.config.schema import SearchConfig
from stiltsearch.search.launch import preflight
from stiltsearch.search.launch.models import resolve_models
from stiltsearch.search.launch.raysession import (
    missing_resource,
    ray_session,
    sigterm_as_sigint,
    stop_stray_processes,
    unschedulable,
)
from stiltsearch.search.launch.resolve import OFFLINE, offline_for_trials, resolve_once
from stiltsearch.search.launch.tuner import build_tuner
from stiltsearch.search.layout import (
    CONFIG,
    SEARCH_FILE,
    SearchError,
    cache_dir,
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
    CONFIG_ATTR,
    ERROR_ATTR,
    INFEASIBLE_ATTR,
    RUNG_ATTR,
    count,
    done,
    open_study,
    outcome_of,
    owed,
    reconcile,
)
from stiltsearch.search.tracking.callbacks import MlflowCallback, ProgressCallback
from stiltsearch.search.tracking.tracker import Tracker, default_tracking_uri
from stiltsearch.search.tracking.uris import address_problem
from stiltsearch.spaces import baseline_point
from stiltsearch.trainables import trialdir
from stiltsearch.trainables.outcome import Outcome

# Names other modules and tests import from here (their homes are the modules above).

MLFLOW_FLUSH_S = 600.0  # at the end, how long to wait for an MLflow server that is away
# A told trial republishes the front (pareto tags, CSV, two plots, MLflow artifacts: ~0.25 s of
# driver CPU early on, more as the study grows; benchmarks/driver_scale.py) at most every
# FRONT_REFRESH_S, and never more often than FRONT_SHARE of the driver's time allows; the end of a
# session always does. With trials of minutes that is after each one; with many short ones (early
# stopping) the driver stays free for asking and telling.
FRONT_REFRESH_S = 30.0
FRONT_SHARE = 0.05


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
    front_view: str = ""  # the MLflow UI path of the search's saved views (Tracker.view_url)
    trials_view: str = ""


def run_search(cfg: SearchConfig, *, address: str | None = None, trainable: Any = None) -> SearchResult:
    """Run a whole search in a new directory. ``trainable`` replaces the STILTs trainable (tests).
    Every check that needs nothing created runs first (:func:`preflight.check`)."""
    preflight.check(cfg, address=address)
    experiment = cfg.mlflow.experiment or cfg.name
    tracker = Tracker(cfg.mlflow.tracking_uri or default_tracking_uri(), experiment)  # an unreachable store stops here
    try:
        search_dir = new_search_dir(cfg.output_dir, cfg.name)
    except OSError as exc:
        raise SearchError(f"output_dir: cannot create a search directory in {cfg.output_dir} ({exc.strerror})") from None
    (search_dir / CONFIG).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    parent = tracker.start_search(search_dir.name, str(search_dir), _flat_params(to_dict(cfg)),
                                  [(o.name, o.direction) for o in cfg.objectives])
    tracker.client.log_artifact(parent, str(search_dir / CONFIG))
    (search_dir / SEARCH_FILE).write_text(json.dumps({"tracking_uri": tracker.uri, "experiment": experiment,
                                                      "parent_run_id": parent}, indent=1))
    print(f"search {search_dir.name}: {cfg.search.num_trials} trials, {cfg.search.max_concurrent} at a time; "
          f"objectives {', '.join(f'{o.name} ({o.direction})' for o in cfg.objectives)}", flush=True)
    with driver_lock(search_dir):
        return _drive(cfg, search_dir, tracker, address, trainable=trainable)


def resume_search(search_dir: str | Path, *, address: str | None = None, num_trials: int | None = None,
                  trainable: Any = None) -> SearchResult:
    """Continue a search however it stopped: its finished trials are kept, its owed ones continue
    from their checkpoints, new ones are sampled until ``num_trials`` (default: as configured).

    Nothing is changed until the search can continue: the lock first (a second driver is refused
    before it touches anything), then the search's files are checked (a damaged ``optuna.db`` is
    reported, never taken for an empty study), then MLflow, and only then is the raised trial
    count written to ``config.yaml``."""
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
        tracker = _attached(where)
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


def _attached(where: dict[str, str]) -> Tracker:
    """The search's MLflow parent run, reopened (an unreachable store or a missing run stops here)."""
    tracker = Tracker(where["tracking_uri"], where["experiment"], create=False)
    tracker.attach(where["parent_run_id"])
    return tracker


def confirm_search(search_dir: str | Path, seeds: int, *, address: str | None = None,
                   trainable: Any = None) -> SearchResult:
    """Re-run the search's front and its baseline under ``seeds`` new training seeds, as trials of
    the same search (:mod:`.confirm` says how); the report then gives each point's mean and standard
    deviation. Checked as :func:`resume_search` is, and refused while the search's own trials are
    unfinished (the front is not yet known)."""
    import optuna

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
        tracker = _attached(where)
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
    names, directions = cfg.objective_names, cfg.directions
    n = cfg.search.num_trials
    status = "FAILED"
    with sigterm_as_sigint():  # the caller holds the driver lock
        try:
            if resuming and (stopped := stop_stray_processes(search_dir)):
                print(f"stopped {stopped} processes the previous driver left running", flush=True)
            study = open_study(study_storage(search_dir), cfg.name, directions, baseline_point(space_spec(cfg)), names)
            told = reconcile(study, trials_dir(search_dir), names)
            finished, waiting = done(study), owed(study)
            if resuming:
                queued = count(study, TrialState.WAITING)  # enqueued, never asked: confirmations
                print(f"resuming {search_dir.name}: {finished} of {n} trials done"
                      + (f" ({len(told)} finished while no driver listened: {told})" if told else "")
                      + (f"; continuing {len(waiting)} from their checkpoints: {waiting}" if waiting else "")
                      + (f"; {queued} queued (confirmations)" if queued else "")
                      + f"; {max(0, n - finished - len(waiting) - queued)} new", flush=True)
                sync_finished(tracker, study, trials_dir(search_dir), names)

            published = [-math.inf, 0.0]  # monotonic time of the last publish, and what it took (s)
            spend = Spend(study, cfg.search.budget, cfg.search.workers_per_trial * cfg.search.gpus_per_worker)

            def publish() -> fronts.Front:
                start = time.monotonic()
                front = fronts.from_study(study, names, directions)
                tracker.tag_pareto(front.rank_of)
                files = fronts.write_files(front, search_dir, search_dir.name)
                tracker.log_search_results(front.summary() | spend.metrics(), front.history, files,
                                           fronts.description(front))
                published[:] = [time.monotonic(), time.monotonic() - start]
                return front

            def refresh(_: int) -> None:  # on_told
                if time.monotonic() - published[0] >= max(FRONT_REFRESH_S, published[1] / FRONT_SHARE):
                    publish()

            if finished < n:
                cache = cache_dir()
                os.environ["TORCH_EXTENSIONS_DIR"] = str(cache / "torch_extensions")  # where DeepSpeed builds its C++ ops, if any
                models = resolve_models(cfg, cache)
                # the model and hub datasets once, here (search/launch/resolve.py); then the trials read that cache
                # (a replaced trainable, as benchmarks and tests time the driver with, reads nothing)
                offline = trainable is None and resolve_once(cfg) and offline_for_trials(address)
                settings = dataclasses.replace(trial_settings(cfg, models, cache), trials_dir=str(trials_dir(search_dir)))
                # a local Ray gets the meter resource (one measurement at a time) and the trials' own; a
                # cluster declares its own (checked below)
                meter = {cfg.throughput.resource: 1.0} if cfg.throughput.resource else {}
                if cfg.search.trial_resource:
                    meter[cfg.search.trial_resource] = float(cfg.search.max_concurrent * cfg.search.workers_per_trial)
                # ray.init installs its own SIGTERM handler (it exits at once): ours goes back on top
                with ray_session(search_dir, cache, address, meter or None, OFFLINE if offline else None), \
                        sigterm_as_sigint():
                    check_cluster_resources(cfg)
                    # a local Ray was checked before it started; a cluster may autoscale, so this is said, not refused
                    if (problem := unschedulable(cfg.search.cpus_per_trial, cfg.search.gpus_per_worker)) is not None:
                        print(f"warning: {problem}; trials wait until such a node joins", flush=True)
                    callbacks = [MlflowCallback(tracker, names, trials_dir(search_dir)),
                                 ProgressCallback(n, names, start_done=finished, trials_dir=trials_dir(search_dir),
                                                  extra=spend.postfix if spend.limited else None)]
                    build_tuner(cfg, settings, search_dir, study, callbacks, trainable=trainable, on_told=refresh,
                                spend=spend).fit()
            spend.save()
            front = publish()
            tracker.log_served_models([n for n, rank in front.rank_of.items() if rank == 0], trials_dir(search_dir))
            _write_report(study, cfg, search_dir, tracker)
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
                        delivered=delivered, tracking_uri=tracker.uri, experiment=cfg.mlflow.experiment or cfg.name,
                        parent_run_id=tracker.parent_id or "", study_storage=study_storage(search_dir),
                        front_view=tracker.view_url("front"), trials_view=tracker.view_url("trials"))


def check_cluster_resources(cfg: SearchConfig) -> None:
    """The custom resources the config names, against the live Ray: the meter's must be offered by
    a running node (every trial would otherwise wait on its measurement forever); the trials' may
    come with nodes an autoscaler adds (a warning)."""
    if cfg.throughput.resource and missing_resource(cfg.throughput.resource):
        raise ConfigError(f"throughput.resource: no node of this Ray offers {cfg.throughput.resource!r}, so no trial "
                          "could be timed; start the meter node (cluster/aws.yaml keeps one running) or give the "
                          "resource the cluster declares (cluster/aws.yaml, cluster/kuberay: stilts-meter)")
    if cfg.search.trial_resource and missing_resource(cfg.search.trial_resource):
        print(f"warning: no node of this Ray offers {cfg.search.trial_resource!r} (search.trial_resource) yet; "
              "trials wait until such a node joins", flush=True)


def _write_report(study: Any, cfg: SearchConfig, search_dir: Path, tracker: Tracker) -> None:
    """The report (search/results/findings.py) into ``<search dir>/report`` and the parent run; a report
    that cannot be made is said on the console and in MLflow, and the search still ends as it did."""
    from stiltsearch.search.results.report import report

    try:
        result, files = report(study, cfg, trials_dir(search_dir), search_dir / "report", search_dir.name)
    except Exception as exc:  # noqa: BLE001 - the report is a view of the study: its failure must not fail the search
        problem = f"not written: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        print(f"report: {problem}", flush=True)
        tracker.log_report([], {}, problem)
        return
    tracker.log_report(files, result.summary())
    print(f"report           : {files[0]} (also the parent run's report/ artifacts)", flush=True)


def sync_finished(tracker: Tracker, study: Any, trials: Path, names: list[str]) -> None:
    """MLflow catches up with the study: a trial that ended (complete, failed, pruned) but whose run
    missed its end (the driver died, or MLflow was away and its writes were lost with the driver)
    gets it from the trial's directory."""
    for trial in study.get_trials(deepcopy=False):
        outcome = outcome_of(trial)
        if outcome is None or tracker.is_complete(trial.number, names if outcome is Outcome.COMPLETE else []):
            continue
        tracker.start_trial(trial.number, trial.user_attrs.get(CONFIG_ATTR) or dict(trial.params))
        result = trialdir.read_result(trialdir.trial_path(trials, trial.number))
        if result is not None:
            tracker.trial_result(trial.number, result)
        detail = trial.user_attrs.get(INFEASIBLE_ATTR if outcome is Outcome.INFEASIBLE else ERROR_ATTR)
        tracker.end_trial(trial.number, outcome, error=detail, rung=trial.user_attrs.get(RUNG_ATTR))


def _flat_params(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= _flat_params(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


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
