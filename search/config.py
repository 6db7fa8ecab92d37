"""The search config: typed dataclasses, read from YAML and validated at the edge.

Every problem is a :class:`ConfigError` whose one-line message names the field (dotted path) and what
is allowed, raised before Ray starts. The defaults are the embedded toy search (``configs/toy.yaml``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stiltsearch.trainables.plan import Recipe
from stiltsearch.trainables.tasks import TASKS


class ConfigError(ValueError):
    """A bad search config; the message is one line: ``<field>: <problem>; <what is allowed>``."""


@dataclass(frozen=True)
class Objective:
    """One objective of the multi-objective search: a metric every trial reports, and a direction."""

    name: str
    direction: str = "max"  # "max" or "min"


@dataclass(frozen=True)
class SpaceConfig:
    """Ranges of the searched parameters (task and language subsets come from the top level)."""

    intermediate_lr: tuple[float, float] = (1e-4, 1e-3)  # log-uniform, phase 2
    target_lr: tuple[float, float] = (1e-4, 1e-3)  # log-uniform, phase 3
    layers_kept: tuple[int, ...] = (1, 2, 4)  # deployment: encoder layers kept
    max_seq_length: tuple[int, ...] = (16, 32, 128)  # deployment: tokens per sequence (toy pairs are <= ~30)
    precision: tuple[str, ...] = ("fp32", "bf16")  # deployment: fp32, bf16, fp16 (CUDA), int8 (CPU)
    inference_batch_size: tuple[int, ...] = (64,)  # deployment: sequences per forward pass
    attention: tuple[str, ...] = ("sdpa",)  # deployment: attention implementation, sdpa or eager


@dataclass(frozen=True)
class TrainingConfig:
    intermediate_steps: int = 240  # phase-2 steps in all, shared by the chosen tasks
    target_steps: int = 200  # phase-3 steps per target task
    batch_size: int = 32
    max_length: int = 128  # phase-2 tokens per sequence (phase 3 uses the searched max_seq_length)
    qa_max_length: int | None = None  # extractive QA in both phases (the paper: 384); None: as other tasks
    # {task: {epochs, batch_size}}: a task with an epoch recipe trains for its epochs, not the step budget
    recipes: dict[str, Recipe] = field(default_factory=dict)
    sampling_temperature: float = 1.0  # multi-task sampling; 1 = proportional to dataset size
    zero_stage: int = 0  # DeepSpeed ZeRO stage
    precision: str = "fp32"  # training precision: fp32 or bf16
    seed: int = 0


@dataclass(frozen=True)
class ToyModelConfig:
    """The embedded tiny XLM-R (used when ``model: toy``): one pretrained model per entry of
    ``layers`` (named ``toy-<n>l``); with two or more, the model is itself a searched knob."""

    layers: tuple[int, ...] = (2, 4)
    hidden: int = 128
    heads: int = 4
    mlm_steps: int = 1200
    mlm_batch_size: int = 64
    corpus_per_language: int = 20000


@dataclass(frozen=True)
class ThroughputConfig:
    warmup: int = 2  # untimed passes
    repeats: int = 15  # timed passes; 15 (not 9) ranks a ~9 % speed gap right 49 times in 50 here (9: 36 in 40)
    max_sequences: int = 768
    # A Ray custom resource (e.g. "meter"): every measurement runs on a node that has it, so all
    # trials are timed on the same hardware. None: each trial measures where it trained.
    resource: str | None = None
    # Also time a fixed reference encoder after each pass and report relative_speed (tokens/sec over
    # the reference's): free of the machine's slow/fast spells; name it in objectives to search on it.
    reference: bool = False


@dataclass(frozen=True)
class SearchSettings:
    num_trials: int = 8  # the baseline (first trial) included
    max_concurrent: int = 2
    cpus_per_trial: int = 1  # CPUs of each of a trial's workers; also torch's thread count there
    workers_per_trial: int = 1  # > 1: data-parallel DeepSpeed over a Ray Train TorchTrainer in the trial
    gpus_per_worker: float = 0.0  # GPUs of each of a trial's workers (a one-worker trial: of the trial)
    max_failures: int = 1  # retries of a trial whose worker died (Ray FailureConfig)
    seed: int = 0  # Optuna sampler seed


@dataclass(frozen=True)
class MlflowConfig:
    tracking_uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db
    experiment: str | None = None  # None: the search name


@dataclass(frozen=True)
class SearchConfig:
    name: str = "toy"
    model: str = "toy"  # "toy" (the embedded tiny XLM-R) or an HF encoder id / local directory
    # two or more HF ids / directories: the model is itself a searched knob (``model`` is one of them)
    models: tuple[str, ...] = ()
    # {dataset id: local directory} for real tasks' data (the hub's layout, see trainables/hub.py);
    # CCG, never on the hub, is always given here as ``ccg``
    data: dict[str, str] = field(default_factory=dict)
    intermediate_tasks: tuple[str, ...] = ("toy_anli", "toy_mnli", "toy_qqp", "toy_squad", "toy_squad2", "toy_hellaswag",
                                           "toy_csqa", "toy_cosmosqa", "toy_ccg")
    target_tasks: tuple[str, ...] = ("toy_xnli", "toy_panx", "toy_xquad", "toy_tatoeba")
    languages: tuple[str, ...] = ("xa", "xb", "xc", "xd")  # may add translate-train data in phase 3
    # {target: [languages]}: score a target on some of its languages only (a quick look; the XTREME
    # score proper averages over all of them). Empty: every language.
    eval_languages: dict[str, tuple[str, ...]] = field(default_factory=dict)
    objectives: tuple[Objective, ...] = (Objective("xtreme_score", "max"), Objective("tokens_per_sec", "max"))
    output_dir: str = "runs"  # each search writes to <output_dir>/<name>-<timestamp>
    search: SearchSettings = field(default_factory=SearchSettings)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    toy_model: ToyModelConfig = field(default_factory=ToyModelConfig)
    throughput: ThroughputConfig = field(default_factory=ThroughputConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)

    def __post_init__(self) -> None:
        validate(self)


# --- reading --------------------------------------------------------------------------------


def load_config(path: str | Path | None = None, **overrides: Any) -> SearchConfig:
    """Read a YAML config (None: the defaults) and apply top-level or dotted overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"config file {path}: cannot read it ({exc.strerror}); pass a readable YAML file") from None
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            line = getattr(getattr(exc, "problem_mark", None), "line", None)
            where = f" at line {line + 1}" if line is not None else ""
            raise ConfigError(f"config file {path}: not valid YAML{where}; fix the syntax") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config file {path}: the top level must be a mapping of fields, got {type(raw).__name__}")
    for dotted, value in overrides.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return from_dict(SearchConfig, raw, "")


def from_dict(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from plain data, naming the dotted field of any problem."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        path = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(f"{path}: unknown field; allowed here: {', '.join(names)}")
    values = {name: _coerce(hints[name], data[name], f"{where}.{name}" if where else name)
              for name in names if name in data}
    return cls(**values)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin in (typing.Union, types.UnionType):  # X | None
        if value is None and type(None) in args:
            return None
        return _coerce(next(a for a in args if a is not type(None)), value, where)
    if origin is dict:
        if value is None:  # a YAML key with only comments under it
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): _coerce(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        try:  # YAML 1.1 reads "1e-4" (no dot) as a string
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{where}: unsupported field type {hint}")


# --- checking -------------------------------------------------------------------------------

DIRECTIONS = ("max", "min")
PRECISIONS = ("fp32", "bf16")  # training
INFERENCE_PRECISIONS = ("fp32", "bf16", "fp16", "int8")
ATTENTION = ("sdpa", "eager")
ZERO_STAGES = (0, 1, 2, 3)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _known(kind: str) -> list[str]:
    return sorted(name for name, cls in TASKS.items() if cls.role == kind)


def _datasets(task: str) -> set[str]:
    """The dataset ids a task reads (the keys ``data`` may give), without loading anything."""
    cls = TASKS[task]
    if cls.benchmark == "toy":
        return set()
    probe = cls()
    found = set()
    for split in probe.splits:
        for lang in (probe.train_languages if split == "train" else probe.languages)[:1]:
            found |= {source.dataset for source in probe.sources(split, lang)}
    return found or {cls.dataset}


def validate(cfg: SearchConfig) -> None:
    """Cross-field checks; field types were checked when the config was read."""
    _check(bool(cfg.name.strip()) and "/" not in cfg.name, f"name: {cfg.name!r} must be non-empty without '/'")
    for task in cfg.intermediate_tasks:
        _check(task in TASKS and TASKS[task].role == "intermediate",
               f"intermediate_tasks: unknown intermediate task {task!r}; known: {', '.join(_known('intermediate'))}")
    _check(len(set(cfg.intermediate_tasks)) == len(cfg.intermediate_tasks), "intermediate_tasks: a task is listed twice")
    _check(len(cfg.target_tasks) > 0, f"target_tasks: must name at least one target task; known: {', '.join(_known('target'))}")
    for task in cfg.target_tasks:
        _check(task in TASKS and TASKS[task].role == "target",
               f"target_tasks: unknown target task {task!r}; known: {', '.join(_known('target'))}")
    if cfg.model == "toy":
        for task in cfg.intermediate_tasks + cfg.target_tasks:
            _check(TASKS[task].benchmark == "toy", f"model: 'toy' only runs toy tasks; {task!r} needs a real model id")
        _check(not cfg.models, "models: the toy model's choices are toy_model.layers; list HF ids only with a real model")
    else:
        _check(bool(cfg.model.strip()), "model: give 'toy' or an HF encoder id / local directory")
        for task in cfg.intermediate_tasks + cfg.target_tasks:
            _check(TASKS[task].benchmark != "toy", f"model: toy task {task!r} needs `model: toy`; real models run real tasks")
        if cfg.models:
            _check(len(set(cfg.models)) == len(cfg.models) >= 2,
                   f"models: give two or more distinct HF ids or directories, got {list(cfg.models)}")
            _check(cfg.model in cfg.models, f"model: {cfg.model!r} must be one of models {list(cfg.models)}")
    trainable = sorted({lang for t in cfg.target_tasks for lang in TASKS[t].train_languages} - {"en"})
    for task, langs in cfg.eval_languages.items():
        _check(task in cfg.target_tasks, f"eval_languages.{task}: not one of target_tasks ({', '.join(cfg.target_tasks)})")
        for lang in langs:
            _check(lang in TASKS[task].languages, f"eval_languages.{task}: {task} has no language {lang!r}; it has "
                                                  f"{', '.join(TASKS[task].languages)}")
        _check(len(langs) > 0, f"eval_languages.{task}: give one or more languages, or leave the task out")
    for lang in cfg.languages:
        _check(lang in trainable, f"languages: {lang!r} has no translate-train data in the target tasks; "
                                  f"allowed: {', '.join(trainable) or 'none'}")
    used = {source for t in cfg.intermediate_tasks + cfg.target_tasks for source in _datasets(t)}
    for dataset in cfg.data:
        _check(dataset in used, f"data.{dataset}: no task of this config reads it; datasets read: {', '.join(sorted(used))}")
    _check(1 <= len(cfg.objectives) <= 2, "objectives: give one or two (name, direction) pairs")
    allowed = ["xtreme_score", "tokens_per_sec", "relative_speed"] + [f"eval/{t}" for t in cfg.target_tasks]
    for i, obj in enumerate(cfg.objectives):
        _check(obj.name in allowed, f"objectives[{i}].name: unknown objective {obj.name!r}; allowed: {', '.join(allowed)}")
        _check(obj.name != "relative_speed" or cfg.throughput.reference,
               f"objectives[{i}].name: relative_speed is measured only with throughput.reference: true; set it")
        _check(obj.direction in DIRECTIONS, f"objectives[{i}].direction: {obj.direction!r}; allowed: max, min")
    _check(len({o.name for o in cfg.objectives}) == len(cfg.objectives), "objectives: an objective is listed twice")

    sp = cfg.space
    for name in ("intermediate_lr", "target_lr"):
        low, high = getattr(sp, name)
        _check(low > 0 and high > 0, f"space.{name}: learning rates must be > 0, got [{low}, {high}]")
        _check(low <= high, f"space.{name}: the range [{low}, {high}] must be [low, high] with low <= high")
    _check(len(sp.layers_kept) > 0 and all(n >= 1 for n in sp.layers_kept),
           f"space.layers_kept: give one or more layer counts >= 1, got {list(sp.layers_kept)}")
    if cfg.model == "toy":
        _check(max(sp.layers_kept) <= max(cfg.toy_model.layers),
               f"space.layers_kept: {max(sp.layers_kept)} exceeds the largest toy model's "
               f"{max(cfg.toy_model.layers)} layers")
    _check(len(sp.max_seq_length) > 0 and all(8 <= n <= 512 for n in sp.max_seq_length),
           f"space.max_seq_length: give lengths in 8..512, got {list(sp.max_seq_length)}")
    for name, allowed_values in (("precision", INFERENCE_PRECISIONS), ("attention", ATTENTION)):
        values = getattr(sp, name)
        _check(len(values) > 0, f"space.{name}: give one or more of {', '.join(allowed_values)}")
        for v in values:
            _check(v in allowed_values, f"space.{name}: {v!r}; allowed: {', '.join(allowed_values)}")
    _check(len(sp.inference_batch_size) > 0 and all(b >= 1 for b in sp.inference_batch_size),
           f"space.inference_batch_size: give one or more sizes >= 1, got {list(sp.inference_batch_size)}")

    tr = cfg.training
    for name in ("intermediate_steps", "target_steps", "batch_size"):
        _check(getattr(tr, name) >= 1, f"training.{name}: must be >= 1, got {getattr(tr, name)}")
    for name in ("max_length", "qa_max_length"):
        value = getattr(tr, name)
        _check(value is None or 8 <= value <= 512, f"training.{name}: give a length in 8..512, got {value}")
    for task, recipe in tr.recipes.items():
        _check(task in cfg.intermediate_tasks + cfg.target_tasks,
               f"training.recipes.{task}: not a task of this config; tasks: {', '.join(cfg.intermediate_tasks + cfg.target_tasks)}")
        _check(recipe.epochs is None or recipe.epochs > 0, f"training.recipes.{task}.epochs: must be > 0, got {recipe.epochs}")
        _check(recipe.batch_size is None or recipe.batch_size >= 1,
               f"training.recipes.{task}.batch_size: must be >= 1, got {recipe.batch_size}")
    _check(tr.sampling_temperature > 0, f"training.sampling_temperature: must be > 0, got {tr.sampling_temperature}")
    _check(tr.zero_stage in ZERO_STAGES, f"training.zero_stage: {tr.zero_stage}; allowed: 0, 1, 2, 3")
    _check(tr.precision in PRECISIONS, f"training.precision: {tr.precision!r}; allowed: {', '.join(PRECISIONS)}")

    se = cfg.search
    _check(se.num_trials >= 1, f"search.num_trials: must be >= 1, got {se.num_trials}")
    _check(se.max_concurrent >= 1, f"search.max_concurrent: must be >= 1, got {se.max_concurrent}")
    _check(se.cpus_per_trial >= 1, f"search.cpus_per_trial: must be >= 1, got {se.cpus_per_trial}")
    _check(se.max_failures >= 0, f"search.max_failures: must be >= 0, got {se.max_failures}")
    _check(se.workers_per_trial >= 1, f"search.workers_per_trial: must be >= 1, got {se.workers_per_trial}")
    _check(se.gpus_per_worker >= 0, f"search.gpus_per_worker: must be >= 0, got {se.gpus_per_worker}")

    tm = cfg.toy_model
    _check(len(tm.layers) > 0 and all(n >= 1 for n in tm.layers) and len(set(tm.layers)) == len(tm.layers),
           f"toy_model.layers: give one or more distinct layer counts >= 1, got {list(tm.layers)}")
    _check(tm.hidden >= 8 and tm.heads >= 1 and tm.hidden % tm.heads == 0,
           f"toy_model: hidden ({tm.hidden}) must be a multiple of heads ({tm.heads})")
    for name in ("mlm_steps", "mlm_batch_size", "corpus_per_language"):
        _check(getattr(tm, name) >= 1, f"toy_model.{name}: must be >= 1, got {getattr(tm, name)}")
    th = cfg.throughput
    for name in ("repeats", "max_sequences"):
        _check(getattr(th, name) >= 1, f"throughput.{name}: must be >= 1, got {getattr(th, name)}")
    _check(th.warmup >= 0, f"throughput.warmup: must be >= 0, got {th.warmup}")


def missing_resources(cfg: SearchConfig) -> list[str]:
    """What this machine lacks to run ``cfg`` (local data directories, files of datasets that are not
    on the hub: CCG, Mewsli-X), one line each in
    the ConfigError style; checked before a search starts, and listed by a dry run. (Whether an HF
    model id can be fetched is checked when phase 1 resolves it.)"""
    problems = []
    for dataset, directory in cfg.data.items():
        if not Path(directory).expanduser().is_dir():
            problems.append(f"data.{dataset}: {directory} is not a directory; give a local copy in the hub's layout "
                            f"(<dir>/<config>/<split>-*.parquet)")
    for task in cfg.intermediate_tasks + cfg.target_tasks:
        cls = TASKS[task]
        if not getattr(cls, "on_hub", True) and cls.dataset not in cfg.data:
            problems.append(f"data.{cls.dataset}: {task} is not on the Hugging Face hub; set `data: {{{cls.dataset}: DIR}}` "
                            f"(trainables/tasks/{cls.__module__.rsplit('.', 1)[-1]}.py says which files) or drop {task}")
    return problems


def to_dict(cfg: SearchConfig) -> dict[str, Any]:
    """Plain data (lists, not tuples) for YAML and MLflow."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(cfg))
