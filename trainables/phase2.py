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
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from stiltsearch.trainables import data, plan
from stiltsearch.trainables.engine import from_rank0, train, world
from stiltsearch.trainables.model import MultiTaskModel, load_encoder
from stiltsearch.trainables.params import TrialParams, applies
from stiltsearch.trainables.settings import TrialSettings
from stiltsearch.trainables.tasks import get_task

# phase2/cache value -> the ledger's word for what phase 2 did
EVENTS = {"miss": "trained", "hit": "cache-hit", "skipped": "skipped"}


def phase2_key(settings: TrialSettings, params: TrialParams) -> str:
    """Content hash of everything phase 2's result depends on."""
    blob = json.dumps({
        "model": settings.model_path(params), "tasks": sorted(params.intermediate_tasks), "lr": params.intermediate_lr,
        "steps": settings.intermediate_steps, "seed": settings.seed, "batch": settings.batch_size,
        "max_length": settings.max_length, "temperature": settings.sampling_temperature,
        "engine": asdict(settings.trained_with),
        "task_versions": {name: getattr(get_task(name), "version", 0) for name in sorted(params.intermediate_tasks)},
        # only what differs from the defaults, so that toy keys stay as they were
        **({"qa_max_length": settings.qa_max_length} if settings.qa_max_length else {}),
        **({"recipes": {t: asdict(settings.recipes[t]) for t in sorted(params.intermediate_tasks) if t in settings.recipes}}
           if any(t in settings.recipes for t in params.intermediate_tasks) else {}),
        **({"workers": settings.workers} if settings.workers > 1 else {}),  # ranks see different batches
    }, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@applies("intermediate_tasks", "intermediate_lr")
def intermediate_phase(settings: TrialSettings, params: TrialParams, tokenizer: Any) -> tuple[str, dict[str, Any]]:
    """Phase 2 -> (encoder directory, metrics); an empty task subset skips it (the baseline)."""
    if not params.intermediate_tasks:
        return settings.model_path(params), {"phase2/cache": "skipped"}
    key = phase2_key(settings, params)
    root = Path(settings.cache_dir) / "phase2"
    root.mkdir(parents=True, exist_ok=True)
    target = root / key
    rank, _ = world()
    # Only rank 0 takes the lock and decides hit or miss; every rank of a multi-worker trial follows
    # it (they train together, so they must agree).
    with open(root / f"{key}.lock", "w") as lock:
        if rank == 0:
            fcntl.flock(lock, fcntl.LOCK_EX)
        if from_rank0((target / "phase2.json").exists()):
            record = json.loads((target / "phase2.json").read_text())
            return str(target), {**record["metrics"], "phase2/cache": "hit", "phase2/key": key}
        tasks = [settings.task(name) for name in sorted(params.intermediate_tasks)]
        examples = {t.name: t.load("train", "en") for t in tasks}
        # Each rank draws its own batches, but all ranks draw the same task at each step: the heads
        # that get gradients must be the same on every rank, or the gradient all-reduce breaks.
        streams = {t.name: data.batches(t, examples[t.name], tokenizer,
                                        batch_size=plan.batch_size(settings.recipes, t.name, settings.batch_size),
                                        max_length=settings.length(t, settings.max_length),
                                        seed=settings.seed + rank) for t in tasks}
        model = MultiTaskModel(load_encoder(settings.model_path(params)), tasks)
        sizes = {n: len(e) for n, e in examples.items()}
        steps = plan.phase2_steps(settings.recipes, sizes, settings.batch_size, settings.intermediate_steps)
        log = train(model, data.mixture(streams, sizes, temperature=settings.sampling_temperature, seed=settings.seed),
                    steps=steps, lr=float(params.intermediate_lr),
                    micro_batch_size=settings.batch_size, settings=settings.trained_with)
        metrics = log.metrics("phase2")
        if rank == 0:
            staging = root / f"{key}.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            model.encoder.float().save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            (staging / "phase2.json").write_text(json.dumps({"params": dict(params), "metrics": metrics}))
            staging.rename(target)
        from_rank0(True)  # the others wait until rank 0 has saved it
    return str(target), {**metrics, "phase2/cache": "miss", "phase2/key": key}
