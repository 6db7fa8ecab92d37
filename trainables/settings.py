"""The runtime settings of a search, each declared once: the DeepSpeed engine, the throughput
meter, the toy models, :class:`Training` (the ``training:`` section of a config) and
:class:`TrialSettings` (a ``Training`` plus the models, targets, data, engine and meter).

The search config composes these classes instead of mirroring them (``search/config/schema.py``:
``training: Training``, ``throughput: MeterSettings``, ``toy_model: ToyModels``), so a default lives
in one place. Each checks its own fields in ``__post_init__``; the message is one line starting
with the field's name, which the config loader prefixes with its section.

Torch-free, so reading a config (``stiltsearch validate``, ``pareto``) loads no torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stiltsearch.trainables import plan, toyworld
from stiltsearch.trainables.params import TrialParams, applies
from stiltsearch.trainables.plan import Recipe
from stiltsearch.trainables.tasks import get_task
from stiltsearch.trainables.tasks.base import Task
from stiltsearch.trainables.trialdir import trial_path

if TYPE_CHECKING:
    from stiltsearch.trainables.checkpoint import TrialCheckpoint

# ZeRO 3 is not offered: one trial is one rank, so it partitions nothing, and a ZeRO-3 module's
# parameters are empty placeholders outside the engine's forward (a saved phase 2 was a 536 KB
# encoder at XLM-R-base shape). Stages 1 and 2 also partition nothing alone; they are kept for
# multi-worker trials, where they do.
ZERO_STAGES = (0, 1, 2)
TRAINING_PRECISIONS = ("fp32", "bf16")


def check(ok: bool, message: str) -> None:
    """A section's field check: ``message`` is ``<field>: <problem>`` (one line)."""
    if not ok:
        raise ValueError(message)


@dataclass(frozen=True)
class EngineSettings:
    """DeepSpeed settings shared by every phase."""

    zero_stage: int = 0  # ZeRO stage 0-3; 0 is fastest on one process (no partitioning to gather)
    precision: str = "fp32"  # training precision: fp32 or bf16
    gradient_clipping: float = 1.0  # set explicitly: DeepSpeed's default also clips, at 1.0
    warmup_fraction: float = 0.1  # linear warm-up over this share of the steps, then linear decay
    weight_decay: float = 0.01
    # most sequences per forward/backward pass (a multiple-choice example is one per choice); a
    # step with more is accumulated over several passes (the update is the same, activation memory
    # is the micro batch's). None: the whole batch at once
    micro_batch: int | None = None
    # recompute each layer's activations in backward: activation memory of ~one layer instead of all,
    # for ~1/3 more compute (one extra forward)
    gradient_checkpointing: bool = False

    def accumulation(self, sequences: int) -> int:
        """Forward/backward passes per optimizer step for a step of at most ``sequences`` sequences."""
        return 1 if self.micro_batch is None else max(1, math.ceil(sequences / self.micro_batch))

    def deepspeed_config(self, batch_size: int, sequences: int | None = None) -> dict[str, Any]:
        """DeepSpeed's config for steps of ``batch_size`` examples (per rank) holding at most
        ``sequences`` sequences (default: one per example)."""
        passes = self.accumulation(sequences or batch_size)
        return {
            "train_micro_batch_size_per_gpu": math.ceil(batch_size / passes),
            "gradient_accumulation_steps": passes,
            "zero_optimization": {"stage": self.zero_stage},
            "gradient_clipping": self.gradient_clipping,
            "bf16": {"enabled": self.precision == "bf16"},
            "steps_per_print": 10**9,  # we log ourselves
            "wall_clock_breakdown": False,
        }


@dataclass(frozen=True)
class MeterSettings:
    warmup: int = 2  # untimed passes over the workload (allocator, caches, lazy init)
    repeats: int = 15  # timed passes; the median is the figure (benchmarks/meter_stability.py)
    max_sequences: int = 768  # cap on the workload so a measurement takes seconds, not minutes
    reference: bool = False  # also time the reference encoder after each pass (see the module docstring)
    # A Ray custom resource (e.g. "meter"): every measurement runs on a node that has it, so all
    # trials are timed on the same hardware. None: each trial measures where it trained.
    resource: str | None = None

    def __post_init__(self) -> None:
        for name in ("repeats", "max_sequences"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.warmup < 0:
            raise ValueError(f"warmup: must be >= 0, got {self.warmup}")
        if self.resource is not None and not self.resource.strip():
            raise ValueError("resource: give a Ray custom resource name, or null to measure where a trial trained")


# Bumped whenever phase 1 trains differently from the same spec, so that no cached model of the old
# recipe is taken for the new one (2: length-grouped MLM batches, trainables/pretrain.py).
PRETRAIN_RECIPE = 2


@dataclass(frozen=True)
class ToyModelSpec:
    """Shape and pretraining budget of the embedded tiny encoder."""

    layers: int = 4
    hidden: int = 128
    heads: int = 4  # 32-dim attention heads
    intermediate: int = 512  # 4x hidden, as in BERT/XLM-R
    vocab_size: int = 512  # BPE vocabulary: most toy words become one token, rare ones split
    max_positions: int = 130  # 128 tokens + XLM-R's padding offset of 2
    corpus_per_language: int = 20000  # sentences of the MLM corpus per language
    mlm_steps: int = 1200
    mlm_batch_size: int = 64
    mlm_lr: float = 1e-3
    seed: int = 0

    def key(self) -> str:
        blob = json.dumps({**asdict(self), "generator": toyworld.GENERATOR_VERSION, "recipe": PRETRAIN_RECIPE},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ToyModels:
    """The embedded tiny XLM-Rs (the config's ``toy_model:``, used with ``model: toy``): one
    pretrained model per entry of ``layers`` (named ``toy-<n>l``); with two or more, the model is
    itself a searched knob. Shape and budget default to :class:`ToyModelSpec`'s."""

    layers: tuple[int, ...] = (2, 4)
    hidden: int = ToyModelSpec.hidden
    heads: int = ToyModelSpec.heads
    mlm_steps: int = ToyModelSpec.mlm_steps
    mlm_batch_size: int = ToyModelSpec.mlm_batch_size
    corpus_per_language: int = ToyModelSpec.corpus_per_language

    def __post_init__(self) -> None:
        # upper bounds: a toy encoder is pretrained on this machine's CPUs in phase 1
        check(len(self.layers) > 0 and all(1 <= n <= 48 for n in self.layers) and len(set(self.layers)) == len(self.layers),
              f"layers: give one or more distinct layer counts in 1..48, got {list(self.layers)}")
        check(self.heads >= 1, f"heads: must be >= 1, got {self.heads}")
        check(8 <= self.hidden <= 4096 and self.hidden % self.heads == 0,
              f"hidden: {self.hidden} must be in 8..4096 and a multiple of heads ({self.heads})")
        for name in ("mlm_steps", "mlm_batch_size", "corpus_per_language"):
            check(getattr(self, name) >= 1, f"{name}: must be >= 1, got {getattr(self, name)}")

    @property
    def names(self) -> dict[str, int]:
        """``{model name: layers}``, smallest first."""
        return {f"toy-{n}l": n for n in sorted(self.layers)}

    def spec(self, layers: int, seed: int) -> ToyModelSpec:
        return ToyModelSpec(layers=layers, hidden=self.hidden, heads=self.heads, intermediate=4 * self.hidden,
                            mlm_steps=self.mlm_steps, mlm_batch_size=self.mlm_batch_size,
                            corpus_per_language=self.corpus_per_language, seed=seed)



@dataclass(frozen=True, kw_only=True)
class Training:
    """How long and how each phase trains (the config's ``training:`` section)."""

    intermediate_steps: int = 240  # phase-2 steps in all, shared by the chosen tasks (fixed compute)
    target_steps: int = 200  # phase-3 steps per target task
    batch_size: int = 32
    max_length: int = 128  # phase-2 tokens per sequence (phase 3 uses the trial's max_seq_length)
    # extractive QA trains and serves at this length in both phases when set (the paper: 384, and
    # 256 for everything else); None: as other tasks
    qa_max_length: int | None = None
    # {task: {epochs, batch_size}}: a task with an epoch recipe trains for its epochs, not the step budget
    recipes: Mapping[str, Recipe] = field(default_factory=dict)
    sampling_temperature: float = 1.0  # multi-task sampling; 1 = proportional to dataset size
    zero_stage: int = 0  # DeepSpeed ZeRO stage (0-2; see ZERO_STAGES)
    precision: str = "fp32"  # training precision: fp32 or bf16
    micro_batch_size: int | None = None  # most sequences per forward pass (gradient accumulation); None: whole batch
    gradient_checkpointing: bool = False  # trade ~1/3 more compute for activation memory of one layer
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("intermediate_steps", "target_steps", "batch_size"):
            check(getattr(self, name) >= 1, f"{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("max_length", "qa_max_length"):
            value = getattr(self, name)
            check(value is None or 8 <= value <= 512, f"{name}: give a length in 8..512, got {value}")
        for task, recipe in self.recipes.items():
            epochs = recipe.epochs
            check(epochs is None or (math.isfinite(epochs) and epochs > 0),
                  f"recipes.{task}.epochs: must be a finite number > 0, got {epochs}")
            check(recipe.batch_size is None or recipe.batch_size >= 1,
                  f"recipes.{task}.batch_size: must be >= 1, got {recipe.batch_size}")
        check(math.isfinite(self.sampling_temperature) and self.sampling_temperature > 0,
              f"sampling_temperature: must be a finite number > 0, got {self.sampling_temperature}")
        check(self.zero_stage != 3, "zero_stage: 3 is refused: a trial is one rank, so ZeRO 3 partitions nothing, and its "
                                    "parameters are empty outside the engine (a saved phase 2 would be an empty encoder); use 0 (fastest "
                                    "alone), 1 or 2")
        check(self.zero_stage in ZERO_STAGES, f"zero_stage: {self.zero_stage}; allowed: {', '.join(map(str, ZERO_STAGES))}")
        check(self.micro_batch_size is None or self.micro_batch_size >= 1,
              f"micro_batch_size: must be >= 1 (or null for the whole batch), got {self.micro_batch_size}")
        check(0 <= self.seed < 2**32, f"seed: must be in 0..2**32-1 (torch's and numpy's seed range), got {self.seed}")
        check(self.precision in TRAINING_PRECISIONS,
              f"precision: {self.precision!r}; allowed: {', '.join(TRAINING_PRECISIONS)}")

    def length(self, task: Task, phase_length: int) -> int:
        """Tokens per sequence for ``task`` in a phase whose length for other tasks is ``phase_length``."""
        return plan.max_length(task.head, self.qa_max_length, phase_length)

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(zero_stage=self.zero_stage, precision=self.precision, micro_batch=self.micro_batch_size,
                              gradient_checkpointing=self.gradient_checkpointing)


@dataclass(frozen=True, kw_only=True)
class TrialSettings(Training):
    """Fixed for a whole search: the training budgets, the model, the targets, the engine and the meter."""

    model: str  # HF id or local directory of the phase-1 encoder (the default choice)
    target_tasks: tuple[str, ...]
    cache_dir: str  # phase-2 results are cached here by content
    data: Mapping[str, str] = field(default_factory=dict)  # {dataset id: local copy} for real tasks
    # {target: languages} scores a target on some of its languages only (quick looks; the XTREME
    # score is defined over all of them)
    eval_languages: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    eval_split: str = "dev"  # search on dev; test is for the final report
    threads: int = 1  # torch threads per trial (= CPUs the trial holds)
    engine: EngineSettings | None = None  # None: from zero_stage and precision
    meter: MeterSettings = field(default_factory=MeterSettings)
    models: Mapping[str, str] = field(default_factory=dict)  # {name: HF id or directory} a trial may choose
    trials_dir: str = ""  # <search dir>/trials: one checkpoint directory per trial ("" = none)
    workers: int = 1  # data-parallel DeepSpeed ranks per trial (> 1: a Ray Train TorchTrainer in the trial)
    gpus_per_worker: float = 0.0  # with workers > 1
    # {objective: (least, most)}: a trial outside is infeasible; one whose speed is outside is never trained
    bounds: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    # budget fractions (< 1, smallest first) at which a trial is scored and reports to its scheduler
    # before its end: phases 2 and 3 trained that far (search/schedulers/rungs.py); () = none (fifo)
    rungs: tuple[float, ...] = ()
    # the phase-2 cache's cap in GiB: least-recently-used entries are evicted past it (None: no cap)
    phase2_cache_gib: float | None = None
    # True: tokens/sec is measured again rather than read from the speed cache. A confirmation
    # (search/results/confirm.py) does so, so that the meter's run-to-run noise is in its error bars too.
    measure_again: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check(all(0 < b < 1 for b in self.rungs) and list(self.rungs) == sorted(set(self.rungs)),
              f"rungs: give increasing budget fractions in (0, 1), got {list(self.rungs)}")
        if self.engine is None:
            object.__setattr__(self, "engine", self.engine_settings())
        else:  # an explicit engine is the truth; the flat fields follow it
            object.__setattr__(self, "zero_stage", self.engine.zero_stage)
            object.__setattr__(self, "precision", self.engine.precision)
            object.__setattr__(self, "micro_batch_size", self.engine.micro_batch)
            object.__setattr__(self, "gradient_checkpointing", self.engine.gradient_checkpointing)

    @classmethod
    def compose(cls, training: Training, **rest: object) -> TrialSettings:
        """A config's ``training:`` section plus the search-wide rest."""
        return cls(**{f.name: getattr(training, f.name) for f in dataclasses.fields(Training)}, **rest)  # type: ignore[arg-type]

    @property
    def trained_with(self) -> EngineSettings:
        assert self.engine is not None  # set in __post_init__
        return self.engine

    def checkpoint(self, number: int) -> TrialCheckpoint:
        """Trial ``number``'s checkpoint (the Optuna trial number names it)."""
        from stiltsearch.trainables.checkpoint import TrialCheckpoint

        return TrialCheckpoint(trial_path(Path(self.trials_dir), number) if self.trials_dir else None)

    def task(self, name: str) -> Task:
        return get_task(name, self.data)

    def languages(self, task: Task) -> tuple[str, ...]:
        """The languages ``task`` is scored on in the eval split."""
        return plan.scored_languages(task.eval_languages(self.eval_split), self.eval_languages.get(task.name))

    @applies("model")
    def model_path(self, params: TrialParams) -> str:
        """The phase-1 encoder a trial starts from."""
        if not params.model:
            return self.model
        if params.model not in self.models:
            raise ValueError(f"model: {params.model!r} is not one of this search's models {sorted(self.models)}")
        return self.models[params.model]
