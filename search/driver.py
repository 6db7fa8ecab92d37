"""The driver: from a validated config to a finished search with its Pareto front in MLflow.

config -> phase 1 (toy model, built once and cached) -> Ray Tune ``Tuner`` whose searcher is the
Optuna study (:mod:`stiltsearch.search.searcher`) over :func:`stiltsearch.spaces.stilts_space` ->
trials run :func:`stiltsearch.trainables.trainable.stilts_trainable` -> each trial told to the
study refreshes the front (files, MLflow tags and artifacts) -> the front is printed.

A search directory holds everything needed to continue it (:func:`resume_search`): config.yaml,
search.json (where its MLflow runs are), optuna.db (the source of truth, see searcher.py) and
trials/<number>/ (each trial's phase checkpoint).
"""

from __future__ import annotations

import dataclasses
import fcntl
import functools
import hashlib
import json
import logging
import os
import signal
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml
from stiltsearch.search import front as fronts
from stiltsearch.search.config import ConfigError, SearchConfig, load_config, missing_resources, to_dict
from stiltsearch.search.progress import ProgressCallback
from stiltsearch.search.searcher import StudySearcher, count, open_study, reconcile
from stiltsearch.search.tracking import MlflowCallback, Tracker, default_tracking_uri
from stiltsearch.spaces import SpaceSpec, baseline_point, stilts_space
from stiltsearch.trainables.engine import EngineSettings
from stiltsearch.trainables.pipeline import TrialSettings
from stiltsearch.trainables.throughput import MeterSettings


def cache_dir() -> Path:
    """Generated artifacts (toy model, phase-2 results, compiled DeepSpeed ops), keyed by inputs."""
    return Path(os.environ.get("STILTSEARCH_CACHE", Path.home() / ".cache" / "stiltsearch")).resolve()


SEARCH_FILE = "search.json"  # where this search's MLflow runs are: tracking URI, experiment, parent run
MARKER_ENV = "STILTSEARCH_SEARCH_DIR"  # set in every local Ray process of a search: finds strays
MLFLOW_FLUSH_S = 600.0  # at the end, how long to wait for an MLflow server that is away


class SearchError(RuntimeError):
    """A search cannot start or continue; the message is one line naming the fix."""


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


def new_search_dir(cfg: SearchConfig) -> Path:
    """A fresh directory per search: a new run never writes over an earlier one."""
    root = Path(cfg.output_dir).resolve()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{cfg.name}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = root / f"{cfg.name}-{stamp}-{suffix}"
    path.mkdir(parents=True)
    return path


def resolve_models(cfg: SearchConfig, cache: Path) -> dict[str, str]:
    """Phase 1: ``{name: HF id or directory}`` of the models the search may choose from. The toy
    encoders are pretrained here once each (cached); any other model is used as given."""
    if cfg.model != "toy":
        return {model_name(m): m for m in sorted(cfg.models or (cfg.model,), key=lambda m: model_depth(m) or 0)}
    import torch
    from stiltsearch.trainables import quiet_libraries
    from stiltsearch.trainables.pretrain import ToyModelSpec, ensure_toy_model

    quiet_libraries()
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)  # pretraining may use the whole machine; the caller's count is restored
    tm = cfg.toy_model
    models = {}
    try:
        for layers in sorted(tm.layers):
            spec = ToyModelSpec(layers=layers, hidden=tm.hidden, heads=tm.heads, intermediate=4 * tm.hidden,
                                mlm_steps=tm.mlm_steps, mlm_batch_size=tm.mlm_batch_size,
                                corpus_per_language=tm.corpus_per_language, seed=cfg.training.seed)
            models[f"toy-{layers}l"] = str(ensure_toy_model(spec, cache, engine_settings(cfg)))
    finally:
        torch.set_num_threads(threads)
    return models


# Depths of common encoders, so a dry run or a config check needs neither the hub nor a download.
KNOWN_DEPTHS = {"xlm-roberta-base": 12, "xlm-roberta-large": 24, "xlm-roberta-xl": 36, "xlm-roberta-xxl": 48,
                "bert-base-multilingual-cased": 12, "bert-base-multilingual-uncased": 12, "mdeberta-v3-base": 12}


def model_name(model: str) -> str:
    """A short name for an HF id or directory: its last path component ("FacebookAI/xlm-roberta-base"
    -> "xlm-roberta-base"); it names the model in the search space and in MLflow."""
    return Path(model.rstrip("/")).name


def model_depth(model: str) -> int | None:
    """Transformer layers of an HF id or directory: a local config.json, the known table, or the hub
    (its cache first); None when none can tell."""
    config = Path(model).expanduser() / "config.json"
    if config.exists():
        return int(json.loads(config.read_text())["num_hidden_layers"])
    if model_name(model) in KNOWN_DEPTHS:
        return KNOWN_DEPTHS[model_name(model)]
    try:
        from transformers import AutoConfig

        return int(AutoConfig.from_pretrained(model).num_hidden_layers)
    except (OSError, ValueError):
        return None


def check_models(cfg: SearchConfig) -> None:
    """Every real model must load (from its directory, the HF cache or the hub) before Ray starts."""
    if cfg.model == "toy":
        return
    from transformers import AutoConfig

    for model in cfg.models or (cfg.model,):
        try:
            AutoConfig.from_pretrained(model)
        except (OSError, ValueError) as exc:
            reason = str(exc).splitlines()[0][:160]
            raise ConfigError(f"model: cannot load {model!r} ({reason}); give a local directory (a saved "
                              f"checkpoint, or `hf download {model} --local-dir DIR`) or make the hub reachable") from None


def model_depths(cfg: SearchConfig) -> dict[str, int]:
    """Layers of each model the search may choose (for the layers-kept knob); a real model whose
    depth cannot be found gets the space's largest layer count, checked when a trial loads it."""
    if cfg.model != "toy":
        fallback = max(cfg.space.layers_kept)
        return {model_name(m): model_depth(m) or fallback for m in cfg.models or (cfg.model,)}
    return {f"toy-{n}l": n for n in sorted(cfg.toy_model.layers)}


def engine_settings(cfg: SearchConfig) -> EngineSettings:
    return EngineSettings(zero_stage=cfg.training.zero_stage, precision=cfg.training.precision)


def trial_settings(cfg: SearchConfig, models: dict[str, str], cache: Path) -> TrialSettings:
    tr, th = cfg.training, cfg.throughput
    return TrialSettings(
        model=list(models.values())[-1], models=models, target_tasks=cfg.target_tasks, cache_dir=str(cache),
        intermediate_steps=tr.intermediate_steps, target_steps=tr.target_steps, batch_size=tr.batch_size,
        train_max_length=tr.max_length, qa_max_length=tr.qa_max_length, recipes=tr.recipes, data=cfg.data,
        eval_languages=cfg.eval_languages,
        sampling_temperature=tr.sampling_temperature, seed=tr.seed, threads=cfg.search.cpus_per_trial,
        engine=engine_settings(cfg), workers=cfg.search.workers_per_trial, gpus_per_worker=cfg.search.gpus_per_worker,
        meter=MeterSettings(warmup=th.warmup, repeats=th.repeats, max_sequences=th.max_sequences,
                            reference=th.reference),
        meter_resource=th.resource,
    )


def largest_model_settings(cfg: SearchConfig, cache: Path) -> TrialSettings:
    """A trial's settings pinned to the config's largest model (phase 1 run if needed): for
    measuring one model outside a search (benchmarks, the toy ground truth)."""
    models = resolve_models(cfg, cache)
    return dataclasses.replace(trial_settings(cfg, models, cache), model=list(models.values())[-1], models={})


def space_spec(cfg: SearchConfig) -> SpaceSpec:
    sp = cfg.space
    return SpaceSpec(intermediate_tasks=cfg.intermediate_tasks, languages=cfg.languages, models=model_depths(cfg),
                     intermediate_lr=sp.intermediate_lr, target_lr=sp.target_lr, layers_kept=sp.layers_kept,
                     max_seq_length=sp.max_seq_length, precision=sp.precision,
                     inference_batch_size=sp.inference_batch_size, attention=sp.attention)


def _ray_temp_dir(search_dir: Path) -> str:
    """Ray's session files live under the search dir; a short symlink keeps its Unix socket paths
    under the OS limit of 107 bytes (Ray appends ~70 characters to the temp dir)."""
    real = search_dir / "ray"
    real.mkdir(exist_ok=True)
    if len(str(real)) <= 36:
        return str(real)
    link = Path(tempfile.gettempdir()) / f"stilts-{hashlib.sha256(str(real).encode()).hexdigest()[:10]}"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(real, target_is_directory=True)
    return str(link)


@contextmanager
def ray_session(search_dir: Path, cache: Path, address: str | None = None,
                resources: dict[str, float] | None = None) -> Iterator[None]:
    """The one place the driver starts and stops Ray. ``resources``: custom ones of a local Ray.

    Every process of a local Ray inherits :data:`MARKER_ENV` (set in this process before Ray
    starts), so a later ``stiltsearch resume`` can find what a killed driver left behind."""
    import ray

    os.environ[MARKER_ENV] = str(search_dir)
    env = {"TORCH_EXTENSIONS_DIR": str(cache / "torch_extensions"), "PYTHONWARNINGS": "ignore",
           MARKER_ENV: str(search_dir)}
    kwargs: dict[str, Any] = {"runtime_env": {"env_vars": env}, "log_to_driver": False,
                              "logging_level": logging.WARNING, "include_dashboard": False}
    if address is None:
        kwargs["_temp_dir"] = _ray_temp_dir(search_dir)
        kwargs["resources"] = resources or {}
    ray.init(address=address, **kwargs)
    try:
        yield
    finally:
        ray.shutdown()


def stray_processes(search_dir: Path) -> list[Any]:
    """Processes of this machine still running for ``search_dir`` (a killed driver's local Ray:
    its GCS, raylet and trial workers, which may still be writing checkpoints)."""
    import psutil

    mine, found = os.getpid(), []
    for proc in psutil.process_iter():
        try:
            if proc.pid != mine and proc.environ().get(MARKER_ENV) == str(search_dir):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def stop_stray_processes(search_dir: Path) -> int:
    """SIGKILL every stray process of ``search_dir`` and wait for them to go; how many there were."""
    import psutil

    procs = stray_processes(search_dir)
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=10)
    return len(procs)


@contextmanager
def driver_lock(search_dir: Path) -> Iterator[None]:
    """One driver per search directory; the lock goes with the process, however it ends."""
    with open(search_dir / "driver.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise SearchError(f"{search_dir}: another driver (pid {lock.read().strip() or '?'}) is running this "
                              "search; stop it first or wait for it") from None
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        yield


@contextmanager
def sigterm_as_sigint() -> Iterator[None]:
    """SIGTERM stops a search the way Ctrl-C does (Tune stops its trials; the driver ends its runs)."""
    previous = signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def build_tuner(cfg: SearchConfig, settings: TrialSettings | None, search_dir: Path, callbacks: list[Any],
                trainable: Any = None, on_told: Callable[[int], None] | None = None) -> Any:
    """Ray Tune over the search's Optuna study: multi-objective TPE; a new study's first trial is
    the baseline. A fresh Tuner per driver session (Ray's own experiment state is never restored).

    ``trainable`` replaces the STILTs trainable (benchmarks time the driver with a no-op one)."""
    import optuna
    from ray import tune
    from stiltsearch.trainables.trainable import stilts_trainable

    # Trials report after phase 2 without the objectives; Tune's strict check would reject that.
    # Only a trial's final result is told to the study (searcher.py), so it is safe.
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    # One console line per trial event comes from ProgressCallback; Tune's own tables, its end-of-run
    # box and its warning about frequent state snapshots stay quiet.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Tune logs each failed attempt's whole traceback; ProgressCallback prints one line and the path
    # of the error file instead, and the error's tail goes to the trial's MLflow run.
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)
    spec = space_spec(cfg)
    names, directions = [o.name for o in cfg.objectives], [o.direction for o in cfg.objectives]
    n = cfg.search.num_trials
    study = open_study(study_storage(search_dir), cfg.name, directions, baseline_point(spec))
    # TPE needs a few random trials before its model means anything; the baseline counts as one.
    # It reads every finished trial from the study, so a resumed search keeps its history. Its seed
    # moves on with the trials already asked for: a resumed session re-seeded as the first would
    # draw the first session's random configurations again.
    asked = len(study.get_trials(deepcopy=False))
    study.sampler = optuna.samplers.TPESampler(seed=cfg.search.seed + asked, n_startup_trials=min(10, max(3, n // 2)))
    searcher = StudySearcher(study, functools.partial(stilts_space, spec=spec), names, directions, n,
                             trials_dir(search_dir), on_told)
    trainable = trainable or tune.with_parameters(stilts_trainable, settings=settings)
    # A multi-worker trial holds a token CPU share itself (0 is refused) and its TorchTrainer asks for
    # the workers' resources; holding them in the trial too would leave none for the workers.
    one = cfg.search.workers_per_trial == 1
    gpus = {"gpu": cfg.search.gpus_per_worker} if cfg.search.gpus_per_worker else {}
    trainable = tune.with_resources(trainable, {"cpu": cfg.search.cpus_per_trial, **gpus} if one else {"cpu": 0.01})
    session = len(list(search_dir.glob("tune*")))
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=max(1, searcher.remaining),
                                    max_concurrent_trials=cfg.search.max_concurrent),
        run_config=tune.RunConfig(
            name="tune" if session == 0 else f"tune-{session}", storage_path=str(search_dir), callbacks=callbacks,
            verbose=0, failure_config=tune.FailureConfig(max_failures=cfg.search.max_failures),
        ),
    )


def study_storage(search_dir: Path) -> str:
    return f"sqlite:///{search_dir / 'optuna.db'}"


def trials_dir(search_dir: Path) -> Path:
    return search_dir / "trials"


def run_search(cfg: SearchConfig, *, address: str | None = None) -> SearchResult:
    """Run a whole search in a new directory; see the module docstring."""
    problems = missing_resources(cfg)
    if problems:
        raise ConfigError(problems[0])
    check_models(cfg)
    uri = cfg.mlflow.tracking_uri or default_tracking_uri()
    experiment = cfg.mlflow.experiment or cfg.name
    tracker = Tracker(uri, experiment)  # an unreachable MLflow server stops the search here
    search_dir = new_search_dir(cfg)
    (search_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    parent = tracker.start_search(search_dir.name, str(search_dir), _flat_params(to_dict(cfg)))
    tracker.client.log_artifact(parent, str(search_dir / "config.yaml"))
    (search_dir / SEARCH_FILE).write_text(json.dumps({"tracking_uri": uri, "experiment": experiment,
                                                      "parent_run_id": parent}, indent=1))
    print(f"search {search_dir.name}: {cfg.search.num_trials} trials, {cfg.search.max_concurrent} at a time; "
          f"objectives {', '.join(f'{o.name} ({o.direction})' for o in cfg.objectives)}", flush=True)
    return _drive(cfg, search_dir, tracker, address)


def resume_search(search_dir: str | Path, *, address: str | None = None, num_trials: int | None = None) -> SearchResult:
    """Continue a search however it stopped: its finished trials are kept, its owed ones continue
    from their checkpoints, new ones are sampled until ``num_trials`` (default: as configured)."""
    search_dir = Path(search_dir).resolve()
    if not (search_dir / SEARCH_FILE).is_file() or not (search_dir / "config.yaml").is_file():
        raise SearchError(f"search_dir: {search_dir} is not a search directory (no {SEARCH_FILE} or config.yaml); "
                          "give the directory `stiltsearch run` printed")
    cfg = load_config(search_dir / "config.yaml", **({"search.num_trials": num_trials} if num_trials else {}))
    if num_trials:
        (search_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    where = json.loads((search_dir / SEARCH_FILE).read_text())
    tracker = Tracker(where["tracking_uri"], where["experiment"])
    tracker.attach(where["parent_run_id"])
    return _drive(cfg, search_dir, tracker, address, resuming=True)


def _drive(cfg: SearchConfig, search_dir: Path, tracker: Tracker, address: str | None,
           resuming: bool = False) -> SearchResult:
    """Reconcile the study, run what is owed under Ray, publish the front; shared by run and resume."""
    from optuna.trial import TrialState

    names, directions = [o.name for o in cfg.objectives], [o.direction for o in cfg.objectives]
    n = cfg.search.num_trials
    status = "FAILED"
    with driver_lock(search_dir), sigterm_as_sigint():
        try:
            if resuming and (stopped := stop_stray_processes(search_dir)):
                print(f"stopped {stopped} processes the previous driver left running", flush=True)
            study = open_study(study_storage(search_dir), cfg.name, directions, baseline_point(space_spec(cfg)))
            told = reconcile(study, trials_dir(search_dir), names)
            done = count(study, TrialState.COMPLETE, TrialState.FAIL)
            owed = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
            if resuming:
                print(f"resuming {search_dir.name}: {done} of {n} trials done"
                      + (f" ({len(told)} finished while no driver listened: {told})" if told else "")
                      + (f"; continuing {len(owed)} from their checkpoints: {owed}" if owed else "")
                      + f"; {max(0, n - done - len(owed))} new", flush=True)
                sync_finished(tracker, study, trials_dir(search_dir), names)

            def publish(_: int | None = None) -> fronts.Front:
                front = fronts.from_study(study, names, directions)
                tracker.tag_pareto(front.rank_of)
                files = fronts.write_files(front, search_dir, search_dir.name)
                tracker.log_search_results(front.summary(), front.history, files)
                return front

            if done < n:
                cache = cache_dir()
                os.environ["TORCH_EXTENSIONS_DIR"] = str(cache / "torch_extensions")  # phase 1 compiles an op
                models = resolve_models(cfg, cache)
                settings = dataclasses.replace(trial_settings(cfg, models, cache), trials_dir=str(trials_dir(search_dir)))
                # a local Ray gets the meter resource (one measurement at a time); a cluster declares its own
                meter = {cfg.throughput.resource: 1.0} if cfg.throughput.resource else None
                # ray.init installs its own SIGTERM handler (it exits at once): ours goes back on top
                with ray_session(search_dir, cache, address, meter), sigterm_as_sigint():
                    callbacks = [MlflowCallback(tracker, names), ProgressCallback(n, names, start_done=done)]
                    build_tuner(cfg, settings, search_dir, callbacks, on_told=publish).fit()
            front = publish()
            done = count(study, TrialState.COMPLETE, TrialState.FAIL)
            interrupted = done < n
            status = "KILLED" if interrupted else "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            delivered = tracker.end_search(status, MLFLOW_FLUSH_S)
    fronts.print_table(front)
    if interrupted:
        print(f"\ninterrupted: {done} of {n} trials done; continue with: stiltsearch resume {search_dir}")
    return SearchResult(search_dir=search_dir, front=front, num_trials=n, interrupted=interrupted,
                        delivered=delivered, tracking_uri=tracker.uri, experiment=cfg.mlflow.experiment or cfg.name,
                        parent_run_id=tracker.parent_id or "", study_storage=study_storage(search_dir))


def sync_finished(tracker: Tracker, study: Any, trials: Path, names: list[str]) -> None:
    """MLflow catches up with the study: a finished trial whose run missed its end (the driver died,
    or MLflow was away and its writes were lost with the driver) gets it from the trial's result."""
    from optuna.trial import TrialState

    from stiltsearch.search.searcher import CONFIG_ATTR, ERROR_ATTR, trial_dir
    from stiltsearch.trainables.checkpoint import read_result

    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)):
        if tracker.is_complete(trial.number, names if trial.state == TrialState.COMPLETE else []):
            continue
        tracker.start_trial(trial.number, trial.user_attrs.get(CONFIG_ATTR) or dict(trial.params))
        result = read_result(trial_dir(trials, trial.number))
        if result is not None:
            tracker.trial_result(trial.number, result)
        if trial.state == TrialState.COMPLETE:
            tracker.end_trial(trial.number, "FINISHED")
        else:
            tracker.end_trial(trial.number, "FAILED", error=trial.user_attrs.get(ERROR_ATTR))


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
    print(f"                   view: mlflow ui --backend-store-uri {backend}")
