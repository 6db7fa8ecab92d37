"""The driver: from a validated config to a finished search with its Pareto front in MLflow.

config -> phase 1 (toy model, built once and cached) -> Ray Tune ``Tuner`` with Optuna's
multi-objective sampler over :func:`stiltsearch.spaces.stilts_space` -> trials run
:func:`stiltsearch.trainables.trainable.stilts_trainable` -> the front is computed, printed, tagged
and logged.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import json
import logging
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml
from stiltsearch.search import pareto, plots
from stiltsearch.search.config import SearchConfig, to_dict
from stiltsearch.search.progress import ProgressCallback, describe
from stiltsearch.search.tracking import MlflowCallback, Tracker, default_tracking_uri
from stiltsearch.spaces import SpaceSpec, baseline_point, stilts_space
from stiltsearch.trainables.engine import EngineSettings
from stiltsearch.trainables.pipeline import TrialSettings
from stiltsearch.trainables.throughput import MeterSettings


def cache_dir() -> Path:
    """Generated artifacts (toy model, phase-2 results, compiled DeepSpeed ops), keyed by inputs."""
    return Path(os.environ.get("STILTSEARCH_CACHE", Path.home() / ".cache" / "stiltsearch")).resolve()


@dataclass
class TrialOutcome:
    trial_id: str
    number: int
    config: dict[str, Any]
    metrics: dict[str, Any]
    finished_at: float  # unix seconds; orders the hypervolume history

    def objectives(self, names: list[str]) -> tuple[float, ...]:
        return tuple(float(self.metrics[n]) for n in names)


@dataclass
class SearchResult:
    search_dir: Path
    outcomes: list[TrialOutcome]  # completed trials with every objective, by trial number
    ranks: dict[str, int]  # trial id -> Pareto rank (0 = front)
    hypervolume: float
    failed: int
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
        return {cfg.model: cfg.model}
    import torch
    from stiltsearch.trainables import quiet_libraries
    from stiltsearch.trainables.pretrain import ToyModelSpec, ensure_toy_model

    quiet_libraries()
    torch.set_num_threads(os.cpu_count() or 1)
    tm = cfg.toy_model
    models = {}
    for layers in sorted(tm.layers):
        spec = ToyModelSpec(layers=layers, hidden=tm.hidden, heads=tm.heads, intermediate=4 * tm.hidden,
                            mlm_steps=tm.mlm_steps, mlm_batch_size=tm.mlm_batch_size,
                            corpus_per_language=tm.corpus_per_language, seed=cfg.training.seed)
        models[f"toy-{layers}l"] = str(ensure_toy_model(spec, cache, engine_settings(cfg)))
    return models


def model_depths(cfg: SearchConfig) -> dict[str, int]:
    """Layers of each model the search may choose (for the layers-kept knob); HF models: the
    space's largest layer count, checked against the real depth when a trial loads it."""
    if cfg.model != "toy":
        return {cfg.model: max(cfg.space.layers_kept)}
    return {f"toy-{n}l": n for n in sorted(cfg.toy_model.layers)}


def engine_settings(cfg: SearchConfig) -> EngineSettings:
    return EngineSettings(zero_stage=cfg.training.zero_stage, precision=cfg.training.precision)


def trial_settings(cfg: SearchConfig, models: dict[str, str], cache: Path) -> TrialSettings:
    tr, th = cfg.training, cfg.throughput
    return TrialSettings(
        model=list(models.values())[-1], models=models, target_tasks=cfg.target_tasks, cache_dir=str(cache),
        intermediate_steps=tr.intermediate_steps, target_steps=tr.target_steps, batch_size=tr.batch_size,
        sampling_temperature=tr.sampling_temperature, seed=tr.seed, threads=cfg.search.cpus_per_trial,
        engine=engine_settings(cfg),
        meter=MeterSettings(warmup=th.warmup, repeats=th.repeats, max_sequences=th.max_sequences),
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
    """The one place the driver starts and stops Ray. ``resources``: custom ones of a local Ray."""
    import ray

    env = {"TORCH_EXTENSIONS_DIR": str(cache / "torch_extensions"), "PYTHONWARNINGS": "ignore"}
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


def build_tuner(cfg: SearchConfig, settings: TrialSettings | None, search_dir: Path, callbacks: list[Any],
                trainable: Any = None) -> Any:
    """Ray Tune + Optuna: multi-objective TPE in a persistent SQLite study; the baseline goes first.

    ``trainable`` replaces the STILTs trainable (benchmarks time the driver with a no-op one)."""
    import optuna
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch
    from stiltsearch.trainables.trainable import stilts_trainable

    # Trials report after phase 2 without the objectives; Tune's strict check would reject that.
    # Multi-objective Optuna only ever reads a trial's final result (notes/stack.md), so it is safe.
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    # One console line per trial event comes from ProgressCallback; Tune's own tables, its end-of-run
    # box and its warning about frequent state snapshots (we snapshot on purpose) stay quiet.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Tune logs each failed attempt's whole traceback; ProgressCallback prints one line and the path
    # of the error file instead, and the error's tail goes to the trial's MLflow run.
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)
    spec = space_spec(cfg)
    n = cfg.search.num_trials
    # TPE needs a few random trials before its model means anything; the baseline counts as one.
    sampler = optuna.samplers.TPESampler(seed=cfg.search.seed, n_startup_trials=min(10, max(3, n // 2)))
    searcher = OptunaSearch(
        space=functools.partial(stilts_space, spec=spec),
        metric=[o.name for o in cfg.objectives], mode=[o.direction for o in cfg.objectives],
        sampler=sampler, storage=optuna.storages.RDBStorage(study_storage(search_dir)), study_name=cfg.name,
        points_to_evaluate=[baseline_point(spec)],
    )
    trainable = trainable or tune.with_parameters(stilts_trainable, settings=settings)
    trainable = tune.with_resources(trainable, {"cpu": cfg.search.cpus_per_trial})
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=n, max_concurrent_trials=cfg.search.max_concurrent),
        run_config=tune.RunConfig(
            name="tune", storage_path=str(search_dir), callbacks=callbacks, verbose=0,
            failure_config=tune.FailureConfig(max_failures=cfg.search.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        ),
    )


def study_storage(search_dir: Path) -> str:
    return f"sqlite:///{search_dir / 'optuna.db'}"


def run_search(cfg: SearchConfig, *, address: str | None = None) -> SearchResult:
    """Run a whole search; see the module docstring."""
    search_dir = new_search_dir(cfg)
    (search_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    cache = cache_dir()
    os.environ["TORCH_EXTENSIONS_DIR"] = str(cache / "torch_extensions")  # phase 1 compiles DeepSpeed's op
    uri = cfg.mlflow.tracking_uri or default_tracking_uri()
    experiment = cfg.mlflow.experiment or cfg.name
    tracker = Tracker(uri, experiment)
    parent = tracker.start_search(search_dir.name, str(search_dir), _flat_params(to_dict(cfg)))
    tracker.client.log_artifact(parent, str(search_dir / "config.yaml"))
    print(f"search {search_dir.name}: {cfg.search.num_trials} trials, {cfg.search.max_concurrent} at a time; "
          f"objectives {', '.join(f'{o.name} ({o.direction})' for o in cfg.objectives)}", flush=True)
    status = "FAILED"
    try:
        models = resolve_models(cfg, cache)
        settings = trial_settings(cfg, models, cache)
        names = [o.name for o in cfg.objectives]
        # a local Ray gets the meter resource (one measurement at a time); a cluster declares its own
        meter = {cfg.throughput.resource: 1.0} if cfg.throughput.resource else None
        with ray_session(search_dir, cache, address, meter):
            tuner = build_tuner(cfg, settings, search_dir,
                                [MlflowCallback(tracker), ProgressCallback(cfg.search.num_trials, names)])
            grid = tuner.fit()
        result = summarize(cfg, grid, tracker, search_dir)
        status = "FINISHED"
        return result
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        tracker.end_search(status)


def _flat_params(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= _flat_params(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def summarize(cfg: SearchConfig, grid: Any, tracker: Tracker, search_dir: Path) -> SearchResult:
    """The front as data, then files, then MLflow tags and artifacts, then the console table."""
    names = [o.name for o in cfg.objectives]
    directions = [o.direction for o in cfg.objectives]
    outcomes, failed = [], 0
    for res in grid:
        metrics = res.metrics or {}
        if res.error is not None or any(n not in metrics for n in names):
            failed += 1
            continue
        number = int(str(metrics.get("experiment_tag", "0")).split("_", 1)[0] or 0)  # Tune's running index
        outcomes.append(TrialOutcome(trial_id=metrics["trial_id"], number=number,
                                     config=res.config, metrics=metrics, finished_at=float(metrics.get("timestamp", 0))))
    outcomes.sort(key=lambda o: o.number)
    points = [o.objectives(names) for o in outcomes]
    ranks = pareto.pareto_ranks(points, directions) if points else []
    reference = [0.0] * len(names)  # both default objectives are maximised and never negative
    by_finish = sorted(range(len(outcomes)), key=lambda i: (outcomes[i].finished_at, outcomes[i].number))
    history = pareto.hypervolume_history([points[i] for i in by_finish], directions, reference)
    hv = history[-1] if history else 0.0
    rank_of = {o.trial_id: r for o, r in zip(outcomes, ranks)}
    tracker.tag_pareto(rank_of)

    files = [write_table(search_dir / "pareto.csv", outcomes, ranks, names)]
    if len(names) == 2 and points:
        labels = [str(o.number) for o in outcomes]
        files.append(plots.plot_front(points, ranks, labels, (names[0], names[1]), search_dir / "pareto.png",
                                      baseline=_baseline_index(outcomes), title=f"{search_dir.name}: Pareto front"))
    if history:
        files.append(plots.plot_hypervolume(history, search_dir / "hypervolume.png", title="hypervolume over trials"))
    summary = {"trials_completed": len(outcomes), "trials_failed": failed, "pareto_size": ranks.count(0),
               "hypervolume_final": hv}
    (search_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    tracker.log_search_results({k: v for k, v in summary.items()}, history, files + [search_dir / "summary.json"])
    print_table(outcomes, ranks, names)
    return SearchResult(search_dir=search_dir, outcomes=outcomes, ranks=rank_of, hypervolume=hv, failed=failed,
                        tracking_uri=tracker.uri, experiment=cfg.mlflow.experiment or cfg.name,
                        parent_run_id=tracker.parent_id or "", study_storage=study_storage(search_dir))


def _baseline_index(outcomes: list[TrialOutcome]) -> int | None:
    return next((i for i, o in enumerate(outcomes) if not o.config.get("intermediate_tasks")
                 and not o.config.get("train_languages")), None)


def write_table(path: Path, outcomes: list[TrialOutcome], ranks: list[int], names: list[str]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["trial", "pareto_rank", *names, "intermediate_tasks", "train_languages", "intermediate_lr",
                         "target_lr", "layers_kept", "max_seq_length", "precision", "trial_id"])
        for o, r in zip(outcomes, ranks):
            c = o.config
            writer.writerow([o.number, r, *(o.metrics[n] for n in names), "+".join(c.get("intermediate_tasks", ())),
                             "+".join(c.get("train_languages", ())), c.get("intermediate_lr", ""), c.get("target_lr"),
                             c.get("layers_kept"), c.get("max_seq_length"), c.get("precision"), o.trial_id])
    return path


def print_table(outcomes: list[TrialOutcome], ranks: list[int], names: list[str]) -> None:
    print(f"\nPareto front ({ranks.count(0)} of {len(outcomes)} completed trials; * = non-dominated):")
    header = f"  {'trial':>5} {'':1} " + " ".join(f"{n:>14}" for n in names) + "  config"
    print(header)
    for o, r in sorted(zip(outcomes, ranks), key=lambda x: (x[1], -x[0].metrics[names[0]])):
        values = " ".join(f"{o.metrics[n]:>14.4g}" for n in names)
        print(f"  {o.number:>5} {'*' if r == 0 else ' '} {values}  {describe(o.config)}")


def report_locations(result: SearchResult) -> None:
    backend = result.tracking_uri
    print(f"\nsearch directory : {result.search_dir}")
    print(f"pareto table/plot: {result.search_dir / 'pareto.csv'}, {result.search_dir / 'pareto.png'}")
    print(f"optuna study     : {result.study_storage} (view: optuna-dashboard {result.study_storage})")
    print(f"mlflow           : experiment '{result.experiment}', parent run {result.parent_run_id}")
    print(f"                   view: mlflow ui --backend-store-uri {backend}")
