"""One trial: intermediate training, target fine-tuning, zero-shot evaluation, tokens/sec.

:func:`run_trial` is plain Python (no Ray): it takes the search-wide :class:`TrialSettings`, the
sampled :class:`TrialParams` and a ``report`` callable, so tests run it directly and the Ray Tune
trainable (:mod:`stiltsearch.trainables.trainable`) is a thin wrapper around it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from stiltsearch.trainables import data, heads, plan, retrieval, scoring
from stiltsearch.trainables.checkpoint import TrialCheckpoint
from stiltsearch.trainables.deploy import apply_precision
from stiltsearch.trainables.engine import EngineSettings, TrainLog, from_rank0, train, world
from stiltsearch.trainables.model import MultiTaskModel, keep_layers, load_encoder, load_tokenizer, portable, rebuild
from stiltsearch.trainables.plan import Recipe
from stiltsearch.trainables.tasks import get_task
from stiltsearch.trainables.tasks.base import Task
from stiltsearch.trainables.throughput import MeterSettings, Throughput, build_workload, measure

# report(metrics) -> None: the one way a trial talks to whatever runs it.
Report = Callable[[dict[str, Any]], None]
# phase2/cache value -> the ledger's word for what phase 2 did
PHASE2_EVENTS = {"miss": "trained", "hit": "cache-hit", "skipped": "skipped"}


@dataclass(frozen=True)
class TrialParams:
    """What the search space samples for one trial."""

    model: str = ""  # a name in TrialSettings.models; "" = TrialSettings.model
    intermediate_tasks: tuple[str, ...] = ()  # empty: no phase 2 (the baseline)
    train_languages: tuple[str, ...] = ()  # non-English translate-train languages for phase 3
    intermediate_lr: float | None = None  # only when intermediate_tasks is non-empty
    target_lr: float = 3e-4
    layers_kept: int = 4  # deployment knob: encoder layers kept from the bottom
    max_seq_length: int = 128  # deployment knob: tokens per sequence, training and inference
    precision: str = "fp32"  # deployment knob: inference precision (fp32, bf16, fp16 on CUDA, int8 on CPU)
    inference_batch_size: int = 64  # deployment knob: sequences per forward pass when serving
    attention: str = "sdpa"  # deployment knob: attention implementation (sdpa or eager)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TrialParams:
        """Read the fields it knows from a Tune config (which also holds the raw sampled values)."""
        names = cls.__dataclass_fields__
        values = {k: v for k, v in config.items() if k in names}
        for key in ("intermediate_tasks", "train_languages"):
            values[key] = tuple(values.get(key, ()))
        return cls(**values)


@dataclass(frozen=True)
class TrialSettings:
    """Fixed for a whole search: the model, the tasks' budgets, the engine and the meter."""

    model: str  # HF id or local directory of the phase-1 encoder (the default choice)
    target_tasks: tuple[str, ...]
    cache_dir: str  # phase-2 results are cached here by content
    intermediate_steps: int = 300  # phase-2 steps in all, shared by the chosen tasks (fixed compute)
    target_steps: int = 300  # per target task
    batch_size: int = 32
    train_max_length: int = 128  # phase-2 truncation (phase 3 uses the trial's max_seq_length)
    # extractive QA trains and serves at this length in both phases when set (the paper: 384, and
    # 256 for everything else); None: as other tasks
    qa_max_length: int | None = None
    recipes: Mapping[str, Recipe] = field(default_factory=dict)  # per-task epochs and batch size
    data: Mapping[str, str] = field(default_factory=dict)  # {dataset id: local copy} for real tasks
    # {target: languages} scores a target on some of its languages only (quick looks; the XTREME
    # score is defined over all of them)
    eval_languages: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    sampling_temperature: float = 1.0  # multi-task sampling: 1 = proportional to dataset size
    seed: int = 0
    eval_split: str = "dev"  # search on dev; test is for the final report
    threads: int = 1  # torch threads per trial (= CPUs the trial holds)
    engine: EngineSettings = field(default_factory=EngineSettings)
    meter: MeterSettings = field(default_factory=MeterSettings)
    meter_resource: str | None = None  # Ray custom resource that every measurement must run on
    models: Mapping[str, str] = field(default_factory=dict)  # {name: HF id or directory} a trial may choose
    trials_dir: str = ""  # <search dir>/trials: one checkpoint directory per trial ("" = none)
    workers: int = 1  # data-parallel DeepSpeed ranks per trial (> 1: a Ray Train TorchTrainer in the trial)
    gpus_per_worker: float = 0.0  # with workers > 1

    def checkpoint(self, number: int) -> TrialCheckpoint:
        """Trial ``number``'s checkpoint (the Optuna trial number names it)."""
        return TrialCheckpoint(Path(self.trials_dir) / f"{number:04d}" if self.trials_dir else None)

    def task(self, name: str) -> Task:
        return get_task(name, self.data)

    def languages(self, task: Task) -> tuple[str, ...]:
        """The languages ``task`` is scored on in the eval split."""
        return plan.scored_languages(task.eval_languages(self.eval_split), self.eval_languages.get(task.name))

    def max_length(self, task: Task, phase_length: int) -> int:
        """Tokens per sequence for ``task`` in a phase whose length for other tasks is ``phase_length``."""
        return plan.max_length(task.head, self.qa_max_length, phase_length)

    def model_path(self, params: TrialParams) -> str:
        """The phase-1 encoder a trial starts from."""
        if not params.model:
            return self.model
        if params.model not in self.models:
            raise ValueError(f"model: {params.model!r} is not one of this search's models {sorted(self.models)}")
        return self.models[params.model]


def phase2_key(settings: TrialSettings, params: TrialParams) -> str:
    """Content hash of everything phase 2's result depends on."""
    blob = json.dumps({
        "model": settings.model_path(params), "tasks": sorted(params.intermediate_tasks), "lr": params.intermediate_lr,
        "steps": settings.intermediate_steps, "seed": settings.seed, "batch": settings.batch_size,
        "max_length": settings.train_max_length, "temperature": settings.sampling_temperature,
        "engine": asdict(settings.engine),
        "task_versions": {name: getattr(get_task(name), "version", 0) for name in sorted(params.intermediate_tasks)},
        # only what differs from the defaults, so that toy keys stay as they were
        **({"qa_max_length": settings.qa_max_length} if settings.qa_max_length else {}),
        **({"recipes": {t: asdict(settings.recipes[t]) for t in sorted(params.intermediate_tasks) if t in settings.recipes}}
           if any(t in settings.recipes for t in params.intermediate_tasks) else {}),
        **({"workers": settings.workers} if settings.workers > 1 else {}),  # ranks see different batches
    }, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _curve(prefix: str, log: TrainLog) -> dict[str, Any]:
    return {f"{prefix}/loss_first": log.losses[0], f"{prefix}/loss_last": log.losses[-1],
            f"{prefix}/loss_curve": log.losses, f"{prefix}/log_every": log.log_every,
            f"{prefix}/seconds": log.seconds, f"{prefix}/train_tokens_per_sec": log.tokens_per_sec,
            f"{prefix}/world_size": log.world_size}


def intermediate_phase(settings: TrialSettings, params: TrialParams, tokenizer: Any) -> tuple[str, dict[str, Any]]:
    """Phase 2: multi-task training on the chosen English tasks -> (encoder directory, metrics).

    Cached under ``cache_dir/phase2/<key>``; a trial that finds its key there reuses it. A lock per
    key makes concurrent trials with the same key train it once.
    """
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
                                        max_length=settings.max_length(t, settings.train_max_length),
                                        seed=settings.seed + rank) for t in tasks}
        model = MultiTaskModel(load_encoder(settings.model_path(params)), tasks)
        sizes = {n: len(e) for n, e in examples.items()}
        steps = plan.phase2_steps(settings.recipes, sizes, settings.batch_size, settings.intermediate_steps)
        log = train(model, data.mixture(streams, sizes, temperature=settings.sampling_temperature, seed=settings.seed),
                    steps=steps, lr=float(params.intermediate_lr),
                    micro_batch_size=settings.batch_size, settings=settings.engine)
        metrics = _curve("phase2", log)
        if rank == 0:
            staging = root / f"{key}.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            model.encoder.float().save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            (staging / "phase2.json").write_text(json.dumps({"params": asdict(params), "metrics": metrics}))
            staging.rename(target)
        from_rank0(True)  # the others wait until rank 0 has saved it
    return str(target), {**metrics, "phase2/cache": "miss", "phase2/key": key}


def predict(model: MultiTaskModel, task: Task, examples: list[Any], tokenizer: Any, *, max_length: int,
            batch_size: int = 128) -> list[Any]:
    model.eval()
    device = next(model.parameters()).device
    predictions: list[Any] = [None] * len(examples)
    with torch.inference_mode():
        for index, batch in data.eval_batches(task, examples, tokenizer, batch_size=batch_size, max_length=max_length):
            logits = model.logits(task.name, batch["input_ids"].to(device), batch["attention_mask"].to(device))
            for i, p in zip(index, model.heads[task.name].decode(logits.float(), batch)):
                predictions[i] = p
    return predictions


def embed(model: MultiTaskModel, texts: list[str], tokenizer: Any, *, max_length: int,
          batch_size: int = 128) -> torch.Tensor:
    """Unit-length sentence vectors: the mean of the last hidden states over real tokens."""
    device = next(model.parameters()).device
    vectors = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], truncation=True, max_length=max_length, padding=True,
                              return_tensors="pt").to(device)
            hidden = model.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            vectors.append(((hidden * mask).sum(1) / mask.sum(1)).float())
    return torch.nn.functional.normalize(torch.cat(vectors), dim=-1)


def retrieval_phase(settings: TrialSettings, params: TrialParams, task: Task, encoder_dir: str,
                    tokenizer: Any) -> tuple[MultiTaskModel, dict[str, float], dict[str, Any]]:
    """A retrieval target: no training; texts are matched by the cosine similarity of pooled
    representations of the phase-2 encoder, as deployed, in the way the task asks
    (:data:`retrieval.RETRIEVERS`)."""
    encoder = keep_layers(load_encoder(encoder_dir, attention=params.attention), params.layers_kept)
    model = MultiTaskModel(encoder, {})
    deployed = deploy(model, params.precision)
    length = settings.max_length(task, params.max_seq_length)

    def vectors(texts: list[str]) -> torch.Tensor:
        return embed(deployed, texts, tokenizer, max_length=length)

    scores, extra = {}, {}
    for lang, result in retrieval.RETRIEVERS[task.retrieve](task, settings.eval_split, settings.languages(task),
                                                            vectors).items():
        scores[lang] = result["major"]
        if "threshold" in result:  # BUCC's chosen similarity threshold
            extra[f"phase3/{task.name}/{lang}/threshold"] = result["threshold"]
    return model, scores, extra


def target_phase(settings: TrialSettings, params: TrialParams, task: Task, encoder_dir: str,
                 tokenizer: Any) -> tuple[MultiTaskModel, dict[str, float], dict[str, Any]]:
    """Phase 3 for one target: fine-tune on English + chosen languages, then score every language.

    Returns the trained model in its training precision; scores are of its deployed precision.
    """
    if task.head == "retrieval":
        return retrieval_phase(settings, params, task, encoder_dir, tokenizer)
    languages = ["en"] + [lang for lang in params.train_languages if lang in task.train_languages]
    examples = [ex for lang in languages for ex in task.load("train", lang)]
    encoder = keep_layers(load_encoder(encoder_dir, attention=params.attention), params.layers_kept)
    model = MultiTaskModel(encoder, [task])
    length = settings.max_length(task, params.max_seq_length)
    batch = plan.batch_size(settings.recipes, task.name, settings.batch_size)
    stream = data.batches(task, examples, tokenizer, batch_size=batch, max_length=length,
                          seed=settings.seed + world()[0])
    steps = plan.phase3_steps(settings.recipes, task.name, len(examples), settings.batch_size, settings.target_steps)
    log = train(model, stream, steps=steps, lr=params.target_lr, micro_batch_size=batch, settings=settings.engine)
    deployed = deploy(model, params.precision)  # scored as it will be served
    scores = {}
    for lang in settings.languages(task):
        dev = task.load(settings.eval_split, lang)
        scores[lang] = task.score(predict(deployed, task, dev, tokenizer, max_length=length), dev)["major"]
    return model, scores, {**_curve(f"phase3/{task.name}", log), f"phase3/{task.name}/train_languages": ",".join(languages),
                           f"phase3/{task.name}/steps": steps}


def throughput_workload(settings: TrialSettings, params: TrialParams, tasks: list[Task],
                        tokenizer: Any) -> list[dict[str, torch.Tensor]]:
    """The target tasks' dev inputs in every language, tokenized once under the trial's max length.

    Each language contributes at most its share of ``max_sequences`` examples (real dev sets hold
    thousands), and ``build_workload`` then subsamples the rows evenly.
    """
    pairs = [(task, lang) for task in tasks for lang in settings.languages(task)]
    share = max(1, -(-settings.meter.max_sequences // len(pairs)))  # ceil
    rows: list[list[int]] = []
    for task, lang in pairs:
        examples = task.load(settings.eval_split, lang)[:share]
        batch = heads.encode(task.head, tokenizer, examples, settings.max_length(task, params.max_seq_length))
        ids, mask = batch["input_ids"].flatten(0, -2), batch["attention_mask"].flatten(0, -2)
        rows += [row[m.bool()].tolist() for row, m in zip(ids, mask)]
    return build_workload(rows, tokenizer.pad_token_id, batch_size=params.inference_batch_size,
                          max_sequences=settings.meter.max_sequences)


def deploy(model: MultiTaskModel | dict[str, Any], precision: str) -> MultiTaskModel:
    """A fresh copy of the trained model (no training-time hooks) in its deployment precision, on
    the module's own device (portable data: on CUDA if there is one)."""
    if isinstance(model, dict):
        data, device = model, torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        data, device = portable(model), next(model.parameters()).device
    return apply_precision(rebuild(data).to(device), precision, device).eval()


# meter(trained model as portable data, precision, task name, workload, settings) -> Throughput. The
# model travels as plain data (neither a DeepSpeed-trained nor a quantized module can be pickled);
# the meter deploys it where it measures.
Meter = Callable[[dict[str, Any], str, str, list[dict[str, torch.Tensor]], MeterSettings], Throughput]


def measure_here(model: dict[str, Any], precision: str, task: str, workload: list[dict[str, torch.Tensor]],
                 settings: MeterSettings) -> Throughput:
    """Deploy and measure in this process."""
    deployed = deploy(model, precision)
    device = next(deployed.parameters()).device
    return measure(lambda ids, mask: deployed.logits(task, ids, mask), workload, settings, device)


def run_trial(settings: TrialSettings, params: TrialParams, report: Report,
              checkpoint: TrialCheckpoint | None = None, meter: Meter = measure_here,
              meter_policy: str = "local: each trial measures on its own node") -> dict[str, Any]:
    """Run the three phases and the measurement; returns (and finally reports) all metrics.

    ``report`` is called after phase 2 and once at the end, with everything. ``checkpoint`` holds
    what earlier attempts of this trial finished: phase 2 and each target task run at most once per
    trial (its ledger says which ran and which were restored). ``meter`` measures tokens/sec (here
    by default; the trainable may route it to other hardware).
    """
    start = time.perf_counter()
    ckpt = checkpoint or TrialCheckpoint(None)
    ckpt.log("attempt started")
    finished = ckpt.result()
    if finished is not None:  # finished before its driver heard of it: report it again, run nothing
        ckpt.log("result restored")
        report(finished)
        return finished
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    tokenizer = load_tokenizer(settings.model_path(params))
    metrics: dict[str, Any] = {}
    saved = ckpt.get("phase2")
    if saved is not None and Path(saved["encoder_dir"]).exists():
        encoder_dir = saved["encoder_dir"]
        metrics |= {**saved["metrics"], "phase2/resumed": 1}
        ckpt.log("phase2 restored")
    else:
        encoder_dir, phase2 = intermediate_phase(settings, params, tokenizer)
        metrics |= phase2
        ckpt.log(f"phase2 {PHASE2_EVENTS[phase2['phase2/cache']]}")
        ckpt.put("phase2", {"encoder_dir": encoder_dir, "metrics": metrics})
        report({"phase": 2, **metrics})

    tasks = [settings.task(name) for name in settings.target_tasks]
    # tokens/sec is measured on the first target with a trained head (the encoder alone if none)
    served = next((t.name for t in tasks if t.head != "retrieval"), tasks[0].name)
    per_task: dict[str, dict[str, float]] = {}
    served_model: dict[str, Any] | None = None
    for task in tasks:
        saved = ckpt.get(f"phase3/{task.name}")
        if saved is not None and (task.name != served or ckpt.load_model() is not None):
            per_task[task.name] = saved["scores"]
            metrics |= saved["metrics"]
            ckpt.log(f"phase3 {task.name} restored")
            continue
        model, per_task[task.name], phase3 = target_phase(settings, params, task, encoder_dir, tokenizer)
        metrics |= phase3
        if task.name == served:
            served_model = portable(model)
            ckpt.save_model(served_model)  # before its scores: scores without the model mean "train again"
        ckpt.put(f"phase3/{task.name}", {"scores": per_task[task.name], "metrics": phase3})
        ckpt.log(f"phase3 {task.name} trained")
    metrics |= scoring.breakdown(per_task, {t.name: scoring.GROUP_OF_HEAD[t.head] for t in tasks})

    if world()[0] != 0:  # a multi-worker trial is measured and reported by rank 0 alone
        return metrics
    workload = throughput_workload(settings, params, tasks, tokenizer)
    result = meter(served_model or ckpt.load_model(), params.precision, served, workload, settings.meter)
    ckpt.log("throughput measured")
    metrics |= result.metrics()
    metrics["throughput/policy"] = meter_policy
    metrics["tokens_per_sec"] = result.tokens_per_sec
    if result.relative_speed is not None:  # throughput.reference: the drift-free figure, an objective to choose
        metrics["relative_speed"] = result.relative_speed
    metrics["trial/seconds"] = time.perf_counter() - start
    metrics["phase"] = 3
    ckpt.save_result(metrics)  # before the report: a driver that dies now still finds the result
    report(metrics)
    return metrics
