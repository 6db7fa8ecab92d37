"""The search config: :class:`SearchConfig`, its sections (:mod:`.sections`), and the checks that
span sections, run when it is built.

Each section checks its own fields in ``__post_init__``; :func:`validate` checks what spans
sections. Every problem is a :class:`~.coerce.ConfigError` whose one-line message names the field
(dotted path) and what is allowed, raised before Ray starts. The defaults are the embedded toy
search (``configs/toy.yaml``), but for its objectives (:data:`.reading.EMBEDDED_OBJECTIVES`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from stiltsearch.search.config.coerce import ConfigError
from stiltsearch.search.config.sections import MlflowConfig, Objective, SearchSettings, SpaceConfig
from stiltsearch.trainables import objectives as declared_objectives
from stiltsearch.trainables.settings import MeterSettings, ToyModels, Training
from stiltsearch.trainables.tasks import TASKS
from stiltsearch.trainables.tasks.real import HubTask


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
