"""The search config: typed dataclasses, read from YAML and validated at the edge.

The sections are the runtime settings themselves (``training: Training``, ``throughput:
MeterSettings``, ``toy_model: ToyModels`` from ``trainables/settings.py``; ``space:`` holds each
declared knob's choices), so a default lives in one place. Each section checks its own fields in
``__post_init__``; :func:`validate` checks what spans sections. Every problem is a
:class:`ConfigError` whose one-line message names the field (dotted path) and what is allowed,
raised before Ray starts. The defaults are the embedded toy search (``configs/toy.yaml``), but for
its objectives (:data:`EMBEDDED_OBJECTIVES`).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stiltsearch.search.config.coerce import ConfigError, coerce_value, from_dict
from stiltsearch.search.planning.cost import ACCELERATORS
from stiltsearch.search.schedulers.base import SCHEDULERS
from stiltsearch.search.schedulers.rungs import rung_budgets
from stiltsearch.search.tracking.uris import split_credentials, uri_problem
from stiltsearch.spaces import knobs
from stiltsearch.trainables import objectives as declared_objectives
from stiltsearch.trainables.settings import MeterSettings, ToyModels, Training, check
from stiltsearch.trainables.tasks import TASKS
from stiltsearch.trainables.tasks.real import HubTask


@dataclass(frozen=True)
class Objective:
    """One objective of the multi-objective search: a declared objective
    (``trainables/objectives.py``) and its direction ("" : the declared one)."""

    name: str
    direction: str = ""
    # bounds: a trial below ``min`` or above ``max`` is infeasible (told to the study as such, off the
    # front); one whose speed misses its bound is never trained (its speed is known before training)
    min: float | None = None  # noqa: A003 - the config's own word
    max: float | None = None  # noqa: A003


@dataclass(frozen=True)
class SpaceConfig:
    """``space:``: the choices of every knob declared with a place there (``spaces/knobs.py``),
    under the knob's name; a knob the config leaves out keeps its declared default choices."""

    choices: Mapping[str, Any] = field(default_factory=knobs.default_choices)

    @classmethod
    def from_raw(cls, data: Any, where: str) -> SpaceConfig:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping, got {data!r}")
        declared = {k.key: k for k in knobs.SPACE_CONFIG_KNOBS}
        unknown = sorted(set(data) - set(declared))
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: unknown field; allowed here: {', '.join(declared)}")
        choices = knobs.default_choices()
        for key, raw in data.items():
            value = coerce_value(declared[key].config_type, raw, f"{where}.{key}")
            problem = declared[key].problem(value)
            if problem is not None:
                raise ConfigError(f"{where}.{key}: {problem}")
            choices[key] = value
        return cls(choices)

    def __getattr__(self, name: str) -> Any:  # cfg.space.layers_kept: a knob's choices
        choices = self.__dict__.get("choices", {})
        if name in choices:
            return choices[name]
        raise AttributeError(f"space has no knob {name!r}")


@dataclass(frozen=True)
class Budget:
    """``search.budget``: what the search may spend; no new trial starts once its projected spend
    (what ended trials took, the running ones, and one more at the mean so far) would pass a limit.
    A resumed search counts what earlier sessions spent."""

    gpu_hours: float | None = None  # GPU-hours of trials: each trial's hours x its GPUs
    wall_hours: float | None = None  # hours the driver ran, all sessions together

    def __post_init__(self) -> None:
        for name in ("gpu_hours", "wall_hours"):
            value = getattr(self, name)
            check(value is None or (math.isfinite(value) and value > 0),
                  f"{name}: give a positive number of hours, or null for no limit, got {value}")


@dataclass(frozen=True)
class SearchSettings:
    num_trials: int = 8  # the baseline (first trial) included
    max_concurrent: int = 2
    cpus_per_trial: int = 1  # CPUs of each of a trial's workers; also torch's thread count there
    workers_per_trial: int = 1  # > 1: data-parallel DeepSpeed over a Ray Train TorchTrainer in the trial
    gpus_per_worker: float = 0.0  # GPUs of each of a trial's workers (a one-worker trial: of the trial)
    max_failures: int = 1  # retries of a trial whose worker died (Ray FailureConfig)
    seed: int = 0  # Optuna sampler seed
    scheduler: str = "fifo"  # when to stop a trial early: a name in search/schedulers/base.py
    # a multi-fidelity scheduler's (moasha) rungs: at min_budget * reduction_factor**k of a trial's
    # training budget, below 1 (1/9 and 1/3 for the defaults); the top 1/reduction_factor go on
    reduction_factor: float = 3.0
    min_budget: float = 1 / 9
    # the fraction of new trials that reuse the trained phase 2 of the best trial so far, with new
    # phase-3 and deployment settings (search/study/sharing.py); 0: every trial samples its own phase 2
    share_phase2: float = 0.5
    # the GPU model the dry run prices GPU-hours for (search/planning/cost.py: ACCELERATORS), at ``mfu``, the
    # share of its peak bf16 FLOP/s a trial is assumed to reach (0.4: a well-fed encoder fine-tune)
    accelerator: str | None = None
    mfu: float = 0.4
    budget: Budget = field(default_factory=Budget)
    # a Ray custom resource each trial's worker holds one unit of (e.g. "stilts-trial"), declared on
    # the nodes that train and not on the meter's node: with GPU trials and a routed meter
    # (throughput.resource) the meter holds a GPU of its own, which no trial may take
    trial_resource: str | None = None
    # the phase-2 cache's cap in GiB (each entry is a saved encoder: ~2.2 GB at XLM-R Large); least
    # recently used entries go past it, never one a trial is using. None: no cap
    phase2_cache_gib: float | None = None

    def __post_init__(self) -> None:
        check(self.accelerator is None or self.accelerator.lower() in ACCELERATORS,
              f"accelerator: {self.accelerator!r} is not in the table; allowed: {', '.join(ACCELERATORS)} (or null)")
        check(math.isfinite(self.mfu) and 0 < self.mfu <= 1,
              f"mfu: give the assumed share of the accelerator's peak in (0, 1], got {self.mfu}")
        check(self.phase2_cache_gib is None or (math.isfinite(self.phase2_cache_gib) and self.phase2_cache_gib > 0),
              f"phase2_cache_gib: give a positive size in GiB, or null for no cap, got {self.phase2_cache_gib}")
        check(self.budget.gpu_hours is None or self.gpus_per_worker > 0,
              "budget.gpu_hours: this search's trials hold no GPU (gpus_per_worker: 0); limit it with budget.wall_hours")
        for name in ("num_trials", "max_concurrent", "cpus_per_trial", "workers_per_trial"):
            check(getattr(self, name) >= 1, f"{name}: must be >= 1, got {getattr(self, name)}")
        check(self.max_failures >= 0, f"max_failures: must be >= 0, got {self.max_failures}")
        check(0 <= self.gpus_per_worker <= 1024, f"gpus_per_worker: must be in 0..1024, got {self.gpus_per_worker}")
        check(0 <= self.seed < 2**32, f"seed: must be in 0..2**32-1 (Optuna's seed range), got {self.seed}")
        check(self.scheduler in SCHEDULERS, f"scheduler: {self.scheduler!r}; allowed: {', '.join(SCHEDULERS)}")
        check(math.isfinite(self.reduction_factor) and self.reduction_factor > 1,
              f"reduction_factor: must be a finite number > 1 (3 keeps the top third), got {self.reduction_factor}")
        check(math.isfinite(self.min_budget) and 0 < self.min_budget < 1,
              f"min_budget: give the smallest rung as a fraction of a trial's budget in (0, 1), got {self.min_budget}")
        check(math.isfinite(self.share_phase2) and 0 <= self.share_phase2 < 1,
              f"share_phase2: give the fraction of trials that reuse a trained phase 2, in [0, 1), got {self.share_phase2}")
        check(not SCHEDULERS[self.scheduler].fidelity or self.workers_per_trial == 1,
              f"scheduler: {self.scheduler} needs workers_per_trial: 1 (a multi-worker trial reports only its end)")

    @property
    def rungs(self) -> tuple[float, ...]:
        """The budget fractions a trial reports at before its end (none unless the scheduler uses them)."""
        if not SCHEDULERS[self.scheduler].fidelity:
            return ()
        return tuple(rung_budgets(self.min_budget, self.reduction_factor))


@dataclass(frozen=True)
class MlflowConfig:
    # None: $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db. Credentials in the URI
    # (http://user:password@host) are moved to MLflow's own MLFLOW_TRACKING_USERNAME/PASSWORD and
    # never written anywhere (search/tracking/tracker.py)
    tracking_uri: str | None = None
    experiment: str | None = None  # None: the search name

    def __post_init__(self) -> None:
        if self.tracking_uri is not None:
            problem = uri_problem(self.tracking_uri)
            check(problem is None, f"tracking_uri: {problem}")
        check(self.experiment is None or bool(self.experiment.strip()),
              "experiment: give an MLflow experiment name, or null for the search name")


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
    training: Training = field(default_factory=Training)
    toy_model: ToyModels = field(default_factory=ToyModels)
    throughput: MeterSettings = field(default_factory=MeterSettings)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)

    def __post_init__(self) -> None:
        validate(self)
        # each objective's direction, as declared where the config leaves it out
        resolved = tuple(Objective(o.name, o.direction or _declared(o.name, self.target_tasks).direction, o.min, o.max)
                         for o in self.objectives)
        object.__setattr__(self, "objectives", resolved)

    @property
    def objective_names(self) -> list[str]:
        return [o.name for o in self.objectives]

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    @property
    def bounds(self) -> dict[str, tuple[float | None, float | None]]:
        """``{objective: (min, max)}`` of the objectives that carry a bound."""
        return {o.name: (o.min, o.max) for o in self.objectives if o.min is not None or o.max is not None}


NAME = re.compile(r"[^\W][\w.+-]*")  # a search name: also a directory name, a study and an experiment

# --- reading --------------------------------------------------------------------------------


# The embedded toy search (no CONFIG, configs/toy.yaml) is every default but one: it optimises
# question 1 rather than xtreme_score, which a config that names no objectives gets (toy.yaml says why).
EMBEDDED_OBJECTIVES = ({"name": "non_english_nli", "direction": "max"}, {"name": "tokens_per_sec", "direction": "max"})


def load_config(path: str | Path | None = None, **overrides: Any) -> SearchConfig:
    """Read a YAML config (None: the embedded toy search) and apply top-level or dotted overrides."""
    raw: dict[str, Any] = {"objectives": [dict(o) for o in EMBEDDED_OBJECTIVES]}
    if path is not None:
        raw = read_yaml(path)
    for dotted, value in overrides.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return from_dict(SearchConfig, raw, "")


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (plain YAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise ConfigError(f"{key}: given twice (line {key_node.start_mark.line + 1}); keep one")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A config file's top-level mapping: readable, UTF-8, YAML, no key twice."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read it ({exc.strerror}); pass a readable YAML file") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path}: not UTF-8 text (byte {exc.start}); save it as UTF-8 YAML") from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader) or {}  # noqa: S506 - a SafeLoader subclass
    except ConfigError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise ConfigError(f"config file {path}: not valid YAML{where}; fix the syntax") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping of fields, got {type(raw).__name__}")
    return raw


# --- checking (what spans sections; each section checks its own fields) -----------------------


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _known(kind: str) -> list[str]:
    return sorted(name for name, cls in TASKS.items() if cls.role == kind)


def _datasets(task: str) -> set[str]:
    """The dataset ids a task reads (the keys ``data`` may give), without loading anything."""
    cls = TASKS[task]
    if not issubclass(cls, HubTask):  # the toy tasks are generated here
        return set()
    return cls().datasets()


def _declared(name: str, targets: tuple[str, ...]) -> declared_objectives.ObjectiveSpec:
    spec = declared_objectives.find(name, targets)
    assert spec is not None  # validate() checked it
    return spec


def _field(cfg: SearchConfig, dotted: str) -> Any:
    value: Any = cfg
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _check_tasks(cfg: SearchConfig) -> None:
    for task in cfg.intermediate_tasks:
        _check(task in TASKS and TASKS[task].role == "intermediate",
               f"intermediate_tasks: unknown intermediate task {task!r}; known: {', '.join(_known('intermediate'))}")
    _check(len(set(cfg.intermediate_tasks)) == len(cfg.intermediate_tasks), "intermediate_tasks: a task is listed twice")
    _check(len(cfg.target_tasks) > 0, f"target_tasks: must name at least one target task; known: {', '.join(_known('target'))}")
    for task in cfg.target_tasks:
        _check(task in TASKS and TASKS[task].role == "target",
               f"target_tasks: unknown target task {task!r}; known: {', '.join(_known('target'))}")
    _check(len(set(cfg.target_tasks)) == len(cfg.target_tasks), "target_tasks: a task is listed twice")
    _check(len(set(cfg.languages)) == len(cfg.languages), "languages: a language is listed twice")


def _check_models(cfg: SearchConfig) -> None:
    if cfg.model == "toy":
        for task in cfg.intermediate_tasks + cfg.target_tasks:
            _check(TASKS[task].benchmark == "toy", f"model: 'toy' only runs toy tasks; {task!r} needs a real model id")
        _check(not cfg.models, "models: the toy model's choices are toy_model.layers; list HF ids only with a real model")
        _check(max(cfg.space.layers_kept) <= max(cfg.toy_model.layers),
               f"space.layers_kept: {max(cfg.space.layers_kept)} exceeds the largest toy model's "
               f"{max(cfg.toy_model.layers)} layers")
        return
    _check(bool(cfg.model.strip()), "model: give 'toy' or an HF encoder id / local directory")
    for task in cfg.intermediate_tasks + cfg.target_tasks:
        _check(TASKS[task].benchmark != "toy", f"model: toy task {task!r} needs `model: toy`; real models run real tasks")
    if cfg.models:
        _check(len(set(cfg.models)) == len(cfg.models) >= 2,
               f"models: give two or more distinct HF ids or directories, got {list(cfg.models)}")
        _check(cfg.model in cfg.models, f"model: {cfg.model!r} must be one of models {list(cfg.models)}")


def _check_languages_and_data(cfg: SearchConfig) -> None:
    trainable = sorted({lang for t in cfg.target_tasks for lang in TASKS[t].train_languages} - {"en"})
    for task, langs in cfg.eval_languages.items():
        _check(task in cfg.target_tasks, f"eval_languages.{task}: not one of target_tasks ({', '.join(cfg.target_tasks)})")
        for lang in langs:
            _check(lang in TASKS[task].languages, f"eval_languages.{task}: {task} has no language {lang!r}; it has "
                                                  f"{', '.join(TASKS[task].languages)}")
        _check(len(langs) > 0, f"eval_languages.{task}: give one or more languages, or leave the task out")
        _check(len(set(langs)) == len(langs), f"eval_languages.{task}: a language is listed twice")
    for lang in cfg.languages:
        _check(lang in trainable, f"languages: {lang!r} has no translate-train data in the target tasks; "
                                  f"allowed: {', '.join(trainable) or 'none'}")
    used = {source for t in cfg.intermediate_tasks + cfg.target_tasks for source in _datasets(t)}
    for dataset in cfg.data:
        _check(dataset in used, f"data.{dataset}: no task of this config reads it; datasets read: {', '.join(sorted(used))}")
    tasks = cfg.intermediate_tasks + cfg.target_tasks
    for task in cfg.training.recipes:
        _check(task in tasks, f"training.recipes.{task}: not a task of this config; tasks: {', '.join(tasks)}")


def _check_objectives(cfg: SearchConfig) -> None:
    _check(1 <= len(cfg.objectives) <= 2, "objectives: give one or two (name, direction) pairs")
    for i, obj in enumerate(cfg.objectives):
        spec = declared_objectives.find(obj.name, cfg.target_tasks)
        _check(spec is not None, f"objectives[{i}].name: unknown objective {obj.name!r}; "
                                 f"allowed: {', '.join(declared_objectives.allowed(cfg.target_tasks))}")
        assert spec is not None
        if spec.needs_nli:
            from stiltsearch.trainables.tasks import nli_target

            _check(nli_target(cfg.target_tasks) is not None,
                   f"objectives[{i}].name: {obj.name} is read from an NLI target (xnli, toy_xnli), and target_tasks "
                   "has none; add one or choose another objective")
        if spec.requires is not None:
            dotted, wanted = spec.requires
            _check(_field(cfg, dotted) == wanted,
                   f"objectives[{i}].name: {obj.name} is measured only with {dotted}: {str(wanted).lower()}; set it")
        _check(obj.direction in ("", "max", "min"), f"objectives[{i}].direction: {obj.direction!r}; allowed: max, min")
        _check(obj.direction in ("", spec.direction),
               f"objectives[{i}].direction: {obj.name} is better when {'larger' if spec.direction == 'max' else 'smaller'}; "
               f"give {spec.direction} or leave direction out")
    _check(len({o.name for o in cfg.objectives}) == len(cfg.objectives), "objectives: an objective is listed twice")
    for i, obj in enumerate(cfg.objectives):
        if obj.min is not None and obj.max is not None:
            _check(obj.min <= obj.max, f"objectives[{i}]: min {obj.min:g} is above max {obj.max:g}; give min <= max")


def _check_devices(cfg: SearchConfig) -> None:
    """Precision and device combinations that cannot work, refused before anything runs (a trial
    would otherwise fail only after its speed measurement, and be retried ``max_failures`` times)."""
    gpus = cfg.search.gpus_per_worker
    precisions = cfg.space.precision
    _check(gpus > 0 or "fp16" not in precisions,
           "space.precision: fp16 needs a CUDA device, and this search's trials hold none (search.gpus_per_worker: 0); "
           "use bf16 or int8, or give each trial a GPU")
    _check(gpus == 0 or "int8" not in precisions,
           "space.precision: int8 (dynamic quantization) runs on CPU only, and this search's trials run on GPUs "
           "(search.gpus_per_worker > 0); use bf16 or fp16")
    _check(gpus == 0 or cfg.throughput.resource is None or cfg.search.trial_resource is not None,
           f"search.trial_resource: with GPU trials the routed meter (throughput.resource: {cfg.throughput.resource}) "
           "holds a GPU of its own, and a trial that took the meter node's GPU would wait forever for its own "
           "measurement; name a resource declared on the training nodes only (e.g. stilts-trial, as cluster/aws.yaml does)")
    _check(gpus == int(gpus) or cfg.throughput.resource is not None,
           f"search.gpus_per_worker: {gpus:g} shares a GPU between trials, and each trial times its tokens/sec where "
           "it trains (throughput.resource: null), so the trials sharing it would slow each other's measurement; "
           "give whole GPUs or route the measurement to a meter node (throughput.resource)")


def validate(cfg: SearchConfig) -> None:
    """Cross-field checks; field types and each section's own fields were checked when it was read."""
    _check(NAME.fullmatch(cfg.name) is not None and len(cfg.name.encode()) <= 100,
           f"name: {cfg.name[:40]!r} must be 1 to 100 bytes of letters, digits and . _ + - (it names a directory, "
           "the study and the MLflow experiment), not starting with '.'")
    _check(bool(cfg.output_dir.strip()) and "\x00" not in cfg.output_dir,
           "output_dir: give a directory for the searches (e.g. runs)")
    _check_tasks(cfg)
    _check_models(cfg)
    _check_languages_and_data(cfg)
    _check_objectives(cfg)
    _check_devices(cfg)


def to_dict(cfg: SearchConfig) -> dict[str, Any]:
    """Plain data (lists, not tuples) for YAML and MLflow; ``space`` as the config writes it; the
    tracking URI without credentials."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    tree = dataclasses.asdict(cfg)
    tree["space"] = dict(cfg.space.choices)
    if cfg.mlflow.tracking_uri:  # credentials are never written (search/tracking/uris.py)
        tree["mlflow"]["tracking_uri"] = split_credentials(cfg.mlflow.tracking_uri)[0]
    return dict(plain(tree))
