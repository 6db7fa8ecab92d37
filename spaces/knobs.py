"""Every searched knob, declared once.

A knob is one dimension of the search: which intermediate tasks, which translate-train languages,
the two learning rates, the model, and the deployment knobs that set inference speed. Its
declaration says everything the rest of the code needs to know about it:

- ``name``: the key of the sampled value in a trial's config, the :class:`TrialParams` field, the
  ``pareto.csv`` column and the MLflow param;
- ``space_key`` and ``default``: where its choices live in the config (``space.<space_key>``, or a
  top-level list for the subsets) and what they are when the config says nothing;
- :meth:`Knob.problem`: the config check of its choices (a one-line reason, or None);
- :meth:`Knob.suggest` and :meth:`Knob.baseline`: how the space samples it and what the baseline takes;
- ``applies``: where a trial applies it (the code that does is registered under the knob's name in
  :data:`stiltsearch.trainables.deploy.APPLIERS`; a test fails for a declared knob nothing applies);
- ``label`` and :meth:`Knob.show`: how the console, the Pareto table and the dry run show it.

The config (``search/config/schema.py``), the space (:mod:`.stilts`), the baseline, ``TrialParams``, the
front, the console, MLflow and the dry run all read :data:`KNOBS`. A new deployment knob is one
entry here plus the code that applies it, registered in ``trainables/deploy.py``.

Pure data and functions: no I/O, no torch, no Ray (``stiltsearch pareto`` reads this).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import optuna

# One knob's value in a trial: an int, float, str or bool, or a tuple of names (a subset knob). Its
# type is the knob's own (``Knob.kind``), checked where the config is read; here it is any of them.
Value: TypeAlias = Any
Config: TypeAlias = "Mapping[str, Value]"  # {knob: value}: a trial's config, as the trainable receives it
Params: TypeAlias = "dict[str, Value]"  # raw Optuna parameters (a subset's use_<name> flags, ...)
Choices: TypeAlias = "Mapping[str, Value]"  # {config key: its choices}: a space's spec, or the config's

# Where a trial applies a knob, in the order a trial runs (the applier registry uses these names).
APPLIES = ("phase 2", "phase 3", "encoder", "inputs", "weights", "serving")


@dataclass(frozen=True)
class Knob:
    """A categorical knob over the choices in ``space.<name>`` (the common case: a deployment knob)."""

    name: str
    kind: type  # the type of one value: int, str, bool or float
    default: Value  # the config's choices when it gives none (a tuple; a (low, high) pair for ranges)
    applies: str  # one of APPLIES
    label: str  # the console's short name
    doc: str  # one line, with units
    fallback: Value = None  # the value of a trial whose config does not carry the knob (direct runs)
    allowed: tuple[Value, ...] = ()  # the only values a config may list (empty: any of ``kind``)
    bounds: tuple[float, float] | None = None  # inclusive range of a numeric value
    baseline_rule: str = "first"  # which choice the baseline takes: "first" or "max"
    space_key: str = ""  # where the choices live in the config ("": ``space.<name>``)
    in_space_config: bool = True  # False: the choices come from elsewhere in the config (top-level lists)
    # phase 2's result depends on it (trainables/phase2.py: phase2_key): trials equal in every such
    # knob can share one trained phase 2 (search/study/sharing.py)
    phase2: bool = False

    @property
    def key(self) -> str:
        return self.space_key or self.name

    @property
    def config_type(self) -> Any:
        """The config's type for this knob's choices (read by the config loader's coercion)."""
        return tuple[self.kind, ...]  # type: ignore[name-defined]

    def problem(self, choices: Sequence[Value]) -> str | None:
        """Why ``choices`` (from the config) are not allowed, or None."""
        if not choices:
            return f"give one or more of {', '.join(map(str, self.allowed))}" if self.allowed else "give one or more values"
        if len(set(choices)) != len(choices):
            return f"a value is listed twice in {list(choices)}"
        for value in choices:
            if self.allowed and value not in self.allowed:
                return f"{value!r}; allowed: {', '.join(map(str, self.allowed))}"
            if self.bounds is not None and not self.bounds[0] <= value <= self.bounds[1]:
                low, high = self.bounds
                return f"give values in {low:g}..{high:g}, got {list(choices)}"
        return None

    def suggest(self, trial: optuna.Trial, spec: Choices, chosen: Config) -> Value:
        """Sample the knob (``chosen``: the knobs sampled before it, for knobs that depend on them)."""
        return trial.suggest_categorical(self.name, list(spec[self.key]))

    def baseline(self, spec: Choices) -> Params:
        """The raw Optuna parameters the baseline trial takes for this knob."""
        choices = list(spec[self.key])
        return {self.name: max(choices) if self.baseline_rule == "max" else choices[0]}

    def raw_params(self, params: Config) -> Params:
        """This knob's entries among a trial's raw Optuna parameters (to enqueue them again)."""
        return {self.name: params[self.name]} if self.name in params else {}

    def show(self, value: Value) -> str:
        """The value as a table cell or MLflow param (:meth:`parse` reads it back)."""
        return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)

    def parse(self, text: str) -> Value:
        """A value back from :meth:`show`'s text (an MLflow param)."""
        if text == "":
            return None
        if self.kind is bool:
            return text.lower() == "true"
        try:
            return self.kind(text)
        except ValueError:
            return text

    def console(self, value: Value) -> str:
        """The value in a trial's one-line description ("" leaves it out)."""
        return f"{self.label}={self.show(value)}"


@dataclass(frozen=True)
class Subset(Knob):
    """Any subset of a list in the config, sampled as one include/exclude per member (``use_<t>``):
    TPE then learns which single members matter. The value is a tuple in the config's order."""

    prefix: str = ""
    empty: str = "none"  # how the console shows the empty subset (tables and MLflow: "none")

    @property
    def config_type(self) -> Any:
        return tuple[str, ...]

    def problem(self, choices: Sequence[Value]) -> str | None:
        return f"a value is listed twice in {list(choices)}" if len(set(choices)) != len(choices) else None

    def suggest(self, trial: optuna.Trial, spec: Choices, chosen: Config) -> Value:
        return tuple(m for m in spec[self.key] if trial.suggest_categorical(f"{self.prefix}{m}", [False, True]))

    def baseline(self, spec: Choices) -> Params:
        return {f"{self.prefix}{m}": False for m in spec[self.key]}

    def raw_params(self, params: Config) -> Params:
        return {k: v for k, v in params.items() if k.startswith(self.prefix)}

    def show(self, value: Value) -> str:
        return "+".join(value or ()) or "none"

    def parse(self, text: str) -> Value:
        return () if text in ("none", "") else tuple(text.split("+"))

    def console(self, value: Value) -> str:
        return f"{self.label}={'+'.join(str(v).removeprefix('toy_') for v in value or ()) or self.empty}"


@dataclass(frozen=True)
class LogRange(Knob):
    """A log-uniform float in ``[low, high]``; with ``only_with``, sampled only when that knob's value
    is non-empty (the intermediate learning rate exists only when there is a phase 2)."""

    only_with: str = ""

    @property
    def config_type(self) -> Any:
        return tuple[float, float]

    def problem(self, choices: Sequence[Value]) -> str | None:
        low, high = choices
        if not (math.isfinite(low) and math.isfinite(high) and low > 0 and high > 0):
            return f"learning rates must be > 0 and finite, got [{low}, {high}]"
        return None if low <= high else f"the range [{low}, {high}] must be [low, high] with low <= high"

    def suggest(self, trial: optuna.Trial, spec: Choices, chosen: Config) -> Value:
        if self.only_with and not chosen.get(self.only_with):
            return None
        return trial.suggest_float(self.name, *spec[self.key], log=True)

    def baseline(self, spec: Choices) -> Params:
        if self.only_with:  # the baseline has no phase 2
            return {}
        low, high = spec[self.key]
        return {self.name: (low * high) ** 0.5}  # the geometric middle

    def show(self, value: Value) -> str:
        return "" if value is None else str(value)

    def console(self, value: Value) -> str:
        return "" if value is None else f"{self.label}={value:.1e}"


@dataclass(frozen=True)
class Model(Knob):
    """The phase-1 model, when the config offers two or more (``{name: layers}`` in the spec); the
    baseline takes the largest."""

    def suggest(self, trial: optuna.Trial, spec: Choices, chosen: Config) -> Value:
        models = spec[self.key]
        return trial.suggest_categorical(self.name, list(models)) if len(models) >= 2 else next(iter(models), "")

    def baseline(self, spec: Choices) -> Params:
        models = spec[self.key]
        return {self.name: max(models, key=models.get)} if len(models) >= 2 else {}

    def console(self, value: Value) -> str:
        return f"{value}" if value else ""


@dataclass(frozen=True)
class LayersKept(Knob):
    """Encoder layers kept from the bottom. With a choice of models each model has its own Optuna
    parameter (``layers_kept_<model>``) over the counts its depth allows, so no distribution changes."""

    def suggest(self, trial: optuna.Trial, spec: Choices, chosen: Config) -> Value:
        models = spec["models"]
        if len(models) < 2:
            return trial.suggest_categorical(self.name, list(spec[self.key]))
        depth = models[chosen["model"]]
        choices = [n for n in spec[self.key] if n <= depth] or [depth]
        return trial.suggest_categorical(f"{self.name}_{chosen['model']}", choices)

    def baseline(self, spec: Choices) -> Params:
        models = spec["models"]
        if len(models) < 2:
            return {self.name: max(spec[self.key])}
        return {f"{self.name}_{max(models, key=models.get)}": max(spec[self.key])}


# In sampling order: a knob may depend on those before it (layers_kept on model).
KNOBS: tuple[Knob, ...] = (
    Subset("intermediate_tasks", str, (), "phase 2", "intermediate", "the English tasks trained in phase 2 (empty: no phase 2)",
           fallback=(), in_space_config=False, prefix="use_", phase2=True),
    Subset("train_languages", str, (), "phase 3", "langs", "non-English translate-train languages added in phase 3",
           fallback=(), space_key="languages", in_space_config=False, prefix="lang_", empty="en only"),
    LogRange("intermediate_lr", float, (1e-4, 1e-3), "phase 2", "ilr", "phase-2 peak learning rate (log-uniform)",
             only_with="intermediate_tasks", phase2=True),
    LogRange("target_lr", float, (1e-4, 1e-3), "phase 3", "tlr", "phase-3 peak learning rate (log-uniform)", fallback=3e-4),
    Model("model", str, {}, "encoder", "model", "the phase-1 encoder (a knob with two or more models)", fallback="",
          space_key="models", in_space_config=False, phase2=True),
    LayersKept("layers_kept", int, (1, 2, 4), "encoder", "layers", "encoder layers kept from the bottom, then fine-tuned",
               fallback=4, bounds=(1, 1000)),
    Knob("max_seq_length", int, (16, 32, 128), "inputs", "len",
         "tokens per sequence in phase 3 and at inference (toy pairs are <= ~30)", fallback=128, bounds=(8, 512),
         baseline_rule="max"),
    Knob("precision", str, ("fp32", "bf16"), "weights", "precision",
         "inference precision: fp32, bf16, fp16 (CUDA only), int8 (dynamic quantization, CPU only)", fallback="fp32",
         allowed=("fp32", "bf16", "fp16", "int8")),
    Knob("inference_batch_size", int, (64,), "serving", "batch", "sequences per forward pass when serving",
         fallback=64, bounds=(1, 1 << 20)),
    Knob("attention", str, ("sdpa",), "encoder", "attn", "attention implementation (transformers' attn_implementation)",
         fallback="sdpa", allowed=("sdpa", "eager")),
    Knob("compile", bool, (False,), "weights", "compile",
         "torch.compile of the served encoder (inductor, dynamic shapes; compiled in the meter's warm-up passes)",
         fallback=False, allowed=(False, True)),
)

BY_NAME: dict[str, Knob] = {k.name: k for k in KNOBS}


class Values(Mapping[str, Value]):
    """Values held per knob in the instance's ``__dict__``, read as a mapping or as attributes
    (``spec.layers_kept``): the base of a space's choices and of a trial's knob values."""

    def __getitem__(self, key: str) -> Value:
        return self.__dict__[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dict__)

    def __len__(self) -> int:
        return len(self.__dict__)

    def __getattr__(self, name: str) -> Value:  # only reached for names that are not knobs
        raise AttributeError(f"{type(self).__name__} has no knob {name!r}")


SPACE_CONFIG_KNOBS: tuple[Knob, ...] = tuple(k for k in KNOBS if k.in_space_config)
PHASE2_KNOBS: tuple[Knob, ...] = tuple(k for k in KNOBS if k.phase2)


def default_choices() -> Params:
    """``space:``'s defaults: each knob's choices under its key."""
    return {k.key: k.default for k in SPACE_CONFIG_KNOBS}


def describe(config: Config) -> str:
    """A trial's sampled config in one short line (the console, the Pareto table on screen)."""
    parts = [k.console(config.get(k.name, k.fallback)) for k in KNOBS]
    return " ".join(p for p in parts if p)


def row(config: Config) -> list[str]:
    """A trial's knobs as table cells, in :data:`KNOBS` order (``pareto.csv``)."""
    return [k.show(config.get(k.name, k.fallback)) for k in KNOBS]
