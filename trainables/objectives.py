"""Every objective a search can optimise, declared once.

An objective's declaration says what it is (name, unit, direction), where the hypervolume of a
front counts from (``reference``: a value worse than any point worth counting), what the config
must enable for a trial to report it (``requires``), and how a trial computes it: it is read from
the trial's metric ``source`` (:func:`values`). The config check, the pipeline, MLflow tracking and
the front all read :data:`OBJECTIVES`; a new objective is one entry here plus the code that produces
its source metric.

Pure data: no torch, no Ray (``stiltsearch pareto`` reads this).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stiltsearch.trainables.types import Metrics


@dataclass(frozen=True)
class ObjectiveSpec:
    name: str  # as named in a config's ``objectives`` and logged on every trial
    direction: str  # "max" or "min": what is better
    reference: float  # the hypervolume reference in this objective: worse than any point worth counting
    unit: str
    doc: str
    source: str = ""  # the trial metric it is read from ("": its own name)
    requires: tuple[str, Any] | None = None  # (dotted config field, the value it must have)
    needs_nli: bool = False  # read from the search's NLI target (tasks.nli_target): the config must have one
    deployment_only: bool = False  # measured on the served model before training: the deployment knobs set it

    def value(self, metrics: Metrics) -> float | None:
        raw = metrics.get(self.source or self.name)
        return None if raw is None else float(raw)


OBJECTIVES: tuple[ObjectiveSpec, ...] = (
    ObjectiveSpec("xtreme_score", "max", 0.0, "points (0-100)",
                  "the mean over the target tasks of each task's mean over its languages, as XTREME averages"),
    # Question 1's score, and the embedded toy search's (configs/toy.yaml says why)
    ObjectiveSpec("non_english_nli", "max", 0.0, "% accuracy",
                  "the NLI target's (xnli, toy_xnli) mean accuracy over its non-English languages: zero-shot "
                  "transfer, or translate-train where a language's data is added", needs_nli=True),
    ObjectiveSpec("tokens_per_sec", "max", 0.0, "real tokens/s",
                  "measured inference throughput of the served model, padding excluded (median of timed passes)",
                  source="throughput/tokens_per_sec", deployment_only=True),
    ObjectiveSpec("relative_speed", "max", 0.0, "x the reference encoder",
                  "tokens/sec over a fixed reference encoder's in the same spell: free of the machine's drift",
                  source="throughput/relative_speed", requires=("throughput.reference", True), deployment_only=True),
    # 10 s a sequence: slower than any served encoder worth counting, so every measured point adds area
    ObjectiveSpec("latency_ms", "min", 10_000.0, "ms per sequence",
                  "median batch-1 latency of the served model (online serving), measured by the same meter",
                  source="throughput/latency_ms", deployment_only=True),
)
EVAL_PREFIX = "eval/"  # eval/<target task>: one target's score, an objective of its own
EVAL = ObjectiveSpec(EVAL_PREFIX, "max", 0.0, "points (0-100)", "one target task's score (the mean over its languages)")
BY_NAME: dict[str, ObjectiveSpec] = {o.name: o for o in OBJECTIVES}


def find(name: str, targets: Sequence[str] = ()) -> ObjectiveSpec | None:
    """The declaration of objective ``name`` (``eval/<task>`` for any task of ``targets``)."""
    if name in BY_NAME:
        return BY_NAME[name]
    if name.startswith(EVAL_PREFIX) and name.removeprefix(EVAL_PREFIX) in targets:
        return ObjectiveSpec(name, EVAL.direction, EVAL.reference, EVAL.unit, EVAL.doc)
    return None


def allowed(targets: Sequence[str]) -> list[str]:
    return [o.name for o in OBJECTIVES] + [f"{EVAL_PREFIX}{t}" for t in targets]


def values(metrics: Metrics) -> dict[str, float]:
    """The declared objectives a trial's metrics hold, under their own names (the pipeline adds
    these to what a trial reports)."""
    found = {o.name: o.value(metrics) for o in OBJECTIVES}
    return {name: v for name, v in found.items() if v is not None}


RUNG = "rung"  # a rung report's key: the rung of the trial's budget it was scored at (0 = smallest)
RUNG_PREFIX = "rung/"  # rung/<k>/<objective>: the objectives as scored at rung k


def at_rung(rung: int, metrics: Metrics, targets: Sequence[str]) -> dict[str, Any]:
    """A rung report: every objective ``metrics`` hold (``eval/<task>`` included), under
    ``rung/<k>/``, so that the final values keep their own names."""
    return {RUNG: rung, **{f"{RUNG_PREFIX}{rung}/{name}": float(v) for name, v in metrics.items()
                           if find(name, targets) is not None and isinstance(v, (int, float))}}


def rung_values(result: Metrics, names: Sequence[str]) -> tuple[int, list[float]] | None:
    """(rung, the objectives ``names`` in order) of a rung report; None for any other report."""
    rung = result.get(RUNG)
    if not isinstance(rung, int) or isinstance(rung, bool):
        return None
    keys = [f"{RUNG_PREFIX}{rung}/{name}" for name in names]
    if not all(k in result for k in keys):
        return None
    return rung, [float(result[k]) for k in keys]


Bounds = Mapping[str, tuple[float | None, float | None]]  # objective -> (least, most) a trial may have


def out_of_bounds(metrics: Metrics, bounds: Bounds) -> str | None:
    """Why ``metrics`` miss a bound (checked for the objectives they hold), or None."""
    for name, (least, most) in bounds.items():
        value = metrics.get(name)
        if value is None:
            continue
        if least is not None and value < least:
            return f"{name} {value:.6g} < its minimum {least:.6g}"
        if most is not None and value > most:
            return f"{name} {value:.6g} > its maximum {most:.6g}"
    return None


def violation(metrics: Metrics, bounds: Bounds) -> float:
    """How far ``metrics`` are outside the bounds, relative to each bound (0: inside): Optuna's
    constraint value, which its samplers read as feasible when <= 0."""
    total = 0.0
    for name, (least, most) in bounds.items():
        value = metrics.get(name)
        if value is None:
            continue
        if least is not None and value < least:
            total += (least - value) / max(abs(least), 1e-12)
        if most is not None and value > most:
            total += (value - most) / max(abs(most), 1e-12)
    return total


def axis_label(name: str) -> str:
    """An objective as a plot axis names it: with its unit, e.g. "tokens_per_sec (real tokens/s)"."""
    spec = BY_NAME.get(name) or (EVAL if name.startswith(EVAL_PREFIX) else None)
    return f"{name} ({spec.unit})" if spec else name


def reference(name: str) -> float:
    """The hypervolume reference of objective ``name`` (``eval/<task>``: the task score's)."""
    spec = BY_NAME.get(name) or (EVAL if name.startswith(EVAL_PREFIX) else None)
    if spec is None:
        raise KeyError(f"objective {name!r} is not declared in trainables/objectives.py")
    return spec.reference
