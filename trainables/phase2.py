"""Phase 2: multi-task intermediate training on the chosen English tasks, cached by content.

A trial whose phase-2 inputs match an earlier one's (same model, tasks, learning rate, steps, seed,
batch, engine and task data versions: :func:`phase2_key`) reuses its encoder from
``<cache>/phase2/<key>/`` instead of training it again. A lock per key makes concurrent trials with
the same key train it once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from stiltsearch.trainables import data, phase2cache, plan
from stiltsearch.trainables.engine import TrainingRun
from stiltsearch.trainables.model import MultiTaskModel, load_encoder
from stiltsearch.trainables.params import TrialParams, applies
from stiltsearch.trainables.processgroup import from_rank0, world
from stiltsearch.trainables.settings import EngineSettings, TrialSettings
from stiltsearch.trainables.tasks import get_task
from stiltsearch.trainables.types import Tokenizer

# phase2/cache value -> the ledger's word for what phase 2 did
EVENTS = {"miss": "trained", "hit": "cache-hit", "skipped": "skipped"}


def phase2_key(settings: TrialSettings, params: TrialParams) -> str:
    """Content hash of everything phase 2's result depends on."""
    blob = json.dumps({
        "model": settings.model_path(params), "tasks": sorted(params.intermediate_tasks), "lr": params.intermediate_lr,
        "steps": settings.intermediate_steps, "seed": settings.seed, "batch": settings.batch_size,
        "max_length": settings.max_length, "temperature": settings.sampling_temperature,
        "engine": _engine_key(settings.trained_with),
        "seeded": 1,  # phase 2 starts from the seed itself (earlier entries drew after a speed measurement)
        "task_versions": {name: getattr(get_task(name), "version", 0) for name in sorted(params.intermediate_tasks)},
        # only what differs from the defaults, so that toy keys stay as they were
        **({"qa_max_length": settings.qa_max_length} if settings.qa_max_length else {}),
        **({"recipes": {t: asdict(settings.recipes[t]) for t in sorted(params.intermediate_tasks) if t in settings.recipes}}
           if any(t in settings.recipes for t in params.intermediate_tasks) else {}),
        **({"workers": settings.workers} if settings.workers > 1 else {}),  # ranks see different batches
    }, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _engine_key(engine: EngineSettings) -> dict[str, Any]:
    """The engine's settings as phase 2's key holds them: memory levers at their defaults left out,
    so that keys written before they existed still match."""
    levers = {"micro_batch": None, "gradient_checkpointing": False}
    return {k: v for k, v in asdict(engine).items() if k not in levers or v != levers[k]}


class IntermediateRun:
    """Phase 2 of one trial, trained in budget segments (``at``) and ended by :meth:`finish`.

    ``at(budget)`` is the encoder directory of phase 2 trained to ``ceil(budget * steps)`` steps:
    a prefix of the full run (the learning-rate schedule spans the full ``steps``,
    :class:`~.engine.TrainingRun`), saved to a scratch directory; ``at(1.0)`` and :meth:`finish`
    are the full result, saved to the cache under :func:`phase2_key` exactly as a one-go run. A
    trial whose phase 2 is already in the cache (or that has no intermediate task) gets the full
    encoder at every budget: that work is paid for. Use as a context manager: the per-key lock
    (concurrent trials with one key train it once) is held from the first training step to the end.
    """

    def __init__(self, settings: TrialSettings, params: TrialParams, tokenizer: Tokenizer) -> None:
        self.settings, self.params, self.tokenizer = settings, params, tokenizer
        self.root = Path(settings.cache_dir) / "phase2"
        self.key = phase2_key(settings, params) if params.intermediate_tasks else ""
        self.target = self.root / self.key
        self.lock: Any = None
        self.run: TrainingRun | None = None
        self.scratch: Path | None = None
        self.result: tuple[str, dict[str, Any]] | None = None

    def __enter__(self) -> IntermediateRun:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.run is not None:  # stopped part-way (a rung's verdict, an error): the engine is released
            self.run.close()
            self.run = None
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
        if self.lock is not None:
            self.lock.close()  # releases the flock
            self.lock = None

    def _cached(self) -> tuple[str, dict[str, Any]] | None:
        """The full result when there is nothing left to train: skipped, or in the cache. Takes
        the key's lock (rank 0 decides; every rank of a multi-worker trial follows)."""
        if self.result is not None:
            return self.result
        if not self.params.intermediate_tasks:
            self.result = self.settings.model_path(self.params), {"phase2/cache": "skipped"}
            return self.result
        if self.lock is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self.lock = open(self.root / f"{self.key}.lock", "w")  # noqa: SIM115  # held until __exit__
            if world()[0] == 0:
                fcntl.flock(self.lock, fcntl.LOCK_EX)
        if self.run is None and from_rank0((self.target / "phase2.json").exists()):
            record = json.loads((self.target / "phase2.json").read_text())
            if world()[0] == 0:
                phase2cache.touch(self.target)  # used now: the last to be evicted
            self.result = str(self.target), {**record["metrics"], "phase2/cache": "hit", "phase2/key": self.key}
            return self.result
        return None

    def _start(self) -> TrainingRun:
        if self.run is not None:
            return self.run
        settings, rank = self.settings, world()[0]
        tasks = [settings.task(name) for name in sorted(self.params.intermediate_tasks)]
        examples = {t.name: t.load("train", "en") for t in tasks}
        # Each rank draws its own batches, but all ranks draw the same task at each step: the heads
        # that get gradients must be the same on every rank, or the gradient all-reduce breaks.
        streams = {t.name: data.batches(t, examples[t.name], self.tokenizer,
                                        batch_size=plan.batch_size(settings.recipes, t.name, settings.batch_size),
                                        max_length=settings.length(t, settings.max_length),
                                        seed=settings.seed + rank) for t in tasks}
        # each phase starts from the trial's seed (heads' init, dropout): its result does not depend on
        # what the process drew before (a speed measurement on a cache miss, another trial)
        torch.manual_seed(settings.seed)

        def model() -> MultiTaskModel:
            return MultiTaskModel(load_encoder(settings.model_path(self.params)), tasks)

        sizes = {n: len(e) for n, e in examples.items()}
        steps = plan.phase2_steps(settings.recipes, sizes, settings.batch_size, settings.intermediate_steps)
        self.run = TrainingRun(model(), data.mixture(streams, sizes, temperature=settings.sampling_temperature,
                                                     seed=settings.seed),
                               steps=steps, lr=float(self.params.intermediate_lr), batch_size=settings.batch_size,
                               settings=settings.trained_with, rebuild=model,
                               sequences=max(plan.batch_size(settings.recipes, t.name, settings.batch_size)
                                             * plan.sequences_per_example(t) for t in tasks))
        return self.run

    def at(self, budget: float) -> str:
        """The encoder directory of phase 2 at ``budget`` (a fraction of its steps, in (0, 1])."""
        if budget >= 1:
            return self.finish()[0]
        cached = self._cached()
        if cached is not None:
            return cached[0]
        run = self._start()
        run.advance(math.ceil(budget * run.steps))
        if self.scratch is None:
            phase2cache.sweep_orphans(self.root)  # what trials that died left of their own scratch
            self.scratch = Path(tempfile.mkdtemp(prefix=phase2cache.scratch_prefix(self.key), dir=self.root))
        encoder = self.scratch / "encoder"
        if world()[0] == 0:
            assert run.model is not None
            shutil.rmtree(encoder, ignore_errors=True)
            # an fp32 copy of the weights (bf16 training: the optimizer's fp32 master weights); the
            # module itself goes on training in its own precision
            run.model.encoder.save_pretrained(encoder, state_dict=run.master_state(run.model.encoder))
            self.tokenizer.save_pretrained(encoder)
        from_rank0(True)  # the others wait until rank 0 has saved it
        if world()[1] == 1:  # parked while the rung's targets train: one engine in memory at a time
            run.park(self.scratch / "parked")
        return str(encoder)

    def finish(self) -> tuple[str, dict[str, Any]]:
        """Phase 2 to its end -> (encoder directory, metrics), saved to the cache."""
        cached = self._cached()
        if cached is not None:
            return cached
        run = self._start()
        run.advance(run.steps)
        model = run.model
        assert model is not None
        # fp32 master weights where bf16 training keeps them (a bf16 copy would round every weight)
        state = run.master_state(model.encoder) if world()[0] == 0 else {}
        metrics = run.close().metrics("phase2")
        self.run = None
        if world()[0] == 0:
            staging = self.root / f"{self.key}.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            model.encoder.save_pretrained(staging, state_dict=state)
            self.tokenizer.save_pretrained(staging)
            (staging / "phase2.json").write_text(json.dumps({"params": dict(self.params), "metrics": metrics}))
            staging.rename(self.target)
            if self.settings.phase2_cache_gib is not None:
                phase2cache.evict(self.root, self.settings.phase2_cache_gib, keep=self.key)
        from_rank0(True)  # the others wait until rank 0 has saved it
        del model, state  # saved: their memory goes back now, not when the trial ends
        self.result = str(self.target), {**metrics, "phase2/cache": "miss", "phase2/key": self.key}
        return self.result


@applies("intermediate_tasks", "intermediate_lr")
def intermediate_phase(settings: TrialSettings, params: TrialParams, tokenizer: Tokenizer) -> tuple[str, dict[str, Any]]:
    """Phase 2 in one go -> (encoder directory, metrics); an empty task subset skips it (the baseline)."""
    with IntermediateRun(settings, params, tokenizer) as run:
        return run.finish()
