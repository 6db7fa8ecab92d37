"""One trial: intermediate training, target fine-tuning, zero-shot evaluation, tokens/sec.

:func:`run_trial` is plain Python (no Ray): it takes the search-wide :class:`TrialSettings`, the
sampled :class:`TrialParams` and a ``report`` callable, so tests run it directly and the Ray Tune
trainable (:mod:`stiltsearch.trainables.trainable`) is a thin wrapper around it. Phase 2 and its
cache are :mod:`.phase2`; one target's phase 3 is :mod:`.target`; the knobs applied to the served
model are :mod:`.deploy`.

Tokens/sec is known before training (:mod:`.speed`): a trial measures it first, on the phase-1
encoder deployed with its knobs, or reuses an identical earlier measurement; a trial whose speed
misses an objective's bound (``objectives: [{name: tokens_per_sec, min: ...}]``) is never trained.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from stiltsearch.trainables import heads, objectives, scoring, speed, trialdir
from stiltsearch.trainables.checkpoint import TrialCheckpoint
from stiltsearch.trainables.deploy import build_encoder, deploy
from stiltsearch.trainables.device import rng_devices
from stiltsearch.trainables.groups import shared_groups
from stiltsearch.trainables.model import MultiTaskModel, load_tokenizer, portable
from stiltsearch.trainables.outcome import CONSTRAINT, INFEASIBLE
from stiltsearch.trainables.params import TrialParams, applies
from stiltsearch.trainables.phase2 import EVENTS, IntermediateRun
from stiltsearch.trainables.processgroup import from_rank0, world
from stiltsearch.trainables.settings import MeterSettings, TrialSettings
from stiltsearch.trainables.target import (
    score_target,
    target_phase,
    train_target,
)
from stiltsearch.trainables.tasks import nli_target
from stiltsearch.trainables.tasks.base import Task
from stiltsearch.trainables.throughput import Throughput, build_workload, measure
from stiltsearch.trainables.types import Metrics, Tokenizer

# report(metrics) -> None: the one way a trial talks to whatever runs it.
Report = Callable[[dict[str, Any]], None]


@applies("inference_batch_size")
def throughput_workload(settings: TrialSettings, params: TrialParams, tasks: list[Task],
                        tokenizer: Tokenizer) -> list[dict[str, torch.Tensor]]:
    """The target tasks' dev inputs in every language, tokenized once under the trial's max length
    and batched at its inference batch size.

    Each language contributes at most its share of ``max_sequences`` examples (real dev sets hold
    thousands), and ``build_workload`` then subsamples the rows evenly.
    """
    pairs = [(task, lang) for task in tasks for lang in settings.languages(task)]
    share = max(1, -(-settings.meter.max_sequences // len(pairs)))  # ceil
    rows: list[list[int]] = []
    for task, lang in pairs:
        examples = task.load(settings.eval_split, lang)[:share]
        batch = heads.encode(task.head, tokenizer, examples, settings.length(task, params.max_seq_length))
        ids, mask = batch["input_ids"].flatten(0, -2), batch["attention_mask"].flatten(0, -2)
        rows += [row[m.bool()].tolist() for row, m in zip(ids, mask)]
    return build_workload(rows, tokenizer.pad_token_id, batch_size=params.inference_batch_size,
                          max_sequences=settings.meter.max_sequences)


# meter(trained model as portable data, the trial's knobs, task name, workload, settings) ->
# Throughput. The model travels as plain data (neither a DeepSpeed-trained nor a quantized module
# can be pickled); the meter deploys it where it measures.
Meter = Callable[[dict[str, Any], TrialParams, str, list[dict[str, torch.Tensor]], MeterSettings], Throughput]


def measure_here(model: dict[str, Any], params: TrialParams, task: str, workload: list[dict[str, torch.Tensor]],
                 settings: MeterSettings) -> Throughput:
    """Deploy and measure in this process."""
    deployed = deploy(model, params)
    device = next(deployed.parameters()).device
    return measure(lambda ids, mask: deployed.logits(task, ids, mask), workload, settings, device)


def _phase2(phase2: IntermediateRun, ckpt: TrialCheckpoint, report: Report) -> tuple[str, dict[str, Any]]:
    """Phase 2 to its end, or what an earlier attempt of this trial left of it."""
    saved = ckpt.get("phase2")
    if saved is not None and Path(saved["encoder_dir"]).exists():
        ckpt.log("phase2 restored")
        return saved["encoder_dir"], {**saved["metrics"], "phase2/resumed": 1}
    encoder_dir, metrics = phase2.finish()
    ckpt.log(f"phase2 {EVENTS[metrics['phase2/cache']]}")
    ckpt.put("phase2", {"encoder_dir": encoder_dir, "metrics": metrics})
    report({"phase": 2, **metrics})
    return encoder_dir, metrics


def _rung_scores(settings: TrialSettings, params: TrialParams, tasks: list[Task], encoder_dir: str, tokenizer: Tokenizer,
                 budget: float) -> dict[str, dict[str, float]]:
    """Every target's score at ``budget`` of its phase 3, one fine-tuning per group of targets that
    train the identical model (:func:`~.groups.shared_groups`)."""
    per_task: dict[str, dict[str, float]] = {}
    for group in shared_groups(settings, params, tasks):
        model, per_task[group[0].name], _ = target_phase(settings, params, group[0], encoder_dir, tokenizer, budget)
        for task in group[1:]:
            per_task[task.name] = score_target(settings, params, task, model, tokenizer, head=group[0].name)
        del model
    return per_task


def _rungs(settings: TrialSettings, params: TrialParams, tasks: list[Task], tokenizer: Tokenizer, phase2: IntermediateRun,
           known: dict[str, Any], ckpt: TrialCheckpoint, report: Report) -> None:
    """Score the trial at each rung of its budget (``settings.rungs``) and report it there.

    At budget ``b`` phase 2 has trained ``ceil(b * steps)`` of its steps and each target is
    fine-tuned ``ceil(b * steps)`` of its own from that encoder (prefixes of the full runs), then
    scored exactly as at the end: same metric, same languages, the deployed model. The speed is
    ``known``. The scheduler may stop the trial after any report; a rung it already let the trial
    pass (a restarted attempt) is not scored again.
    """
    passed = {rung for rung, verdict in trialdir.read_rungs(ckpt.directory).items()
              if verdict.get("goes_on")} if ckpt.directory is not None else set()
    groups = {t.name: t.kind.groups for t in tasks}
    for rung, budget in enumerate(settings.rungs):
        if rung in passed:
            ckpt.log(f"rung {rung} passed before")
            continue
        encoder_dir = phase2.at(budget)
        start = time.perf_counter()
        # in a fork of torch's random state: a rung's heads and dropout draw nothing from the run that
        # goes on, so the trial's end is the same with rungs as without (tests/test_fidelity.py)
        with torch.random.fork_rng(devices=rng_devices()):  # the GPU's generator too, where there is one
            per_task = _rung_scores(settings, params, tasks, encoder_dir, tokenizer, budget)
        scored = known | scoring.breakdown(per_task, groups, nli_target(settings.target_tasks))
        scored |= objectives.values(scored)
        ckpt.log(f"rung {rung} scored")
        # seconds: what scoring at the rung cost (its phase-3 runs and evaluation), over the full run's
        report({**objectives.at_rung(rung, scored, settings.target_tasks), f"rung/{rung}/budget": budget,
                f"rung/{rung}/seconds": time.perf_counter() - start})


def _phase3(settings: TrialSettings, params: TrialParams, tasks: list[Task], encoder_dir: str, tokenizer: Tokenizer,
            ckpt: TrialCheckpoint) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """Every target, each at most once per trial -> (scores per task, metrics). Targets that would
    fine-tune the identical model (:func:`~.groups.shared_groups`) share one: it is trained for the
    first and scored for each. The served task's trained model (the first target with a trained
    head) is saved in the checkpoint."""
    per_task: dict[str, dict[str, float]] = {}
    metrics: Metrics = {}
    for group in shared_groups(settings, params, tasks):
        _phase3_group(settings, params, group, encoder_dir, tokenizer, ckpt, served_task(tasks), per_task, metrics)
    return per_task, metrics


def _phase3_group(settings: TrialSettings, params: TrialParams, group: list[Task], encoder_dir: str, tokenizer: Tokenizer,
                  ckpt: TrialCheckpoint, served: str, per_task: dict[str, dict[str, float]],
                  metrics: Metrics) -> None:
    """One group of :func:`_phase3`, into ``per_task`` and ``metrics``; its model is freed on return."""
    model: MultiTaskModel | None = None
    source = group[0]
    for task in group:
        saved = ckpt.get(f"phase3/{task.name}")
        if saved is not None and (task.name != served or ckpt.load_model() is not None):
            per_task[task.name] = saved["scores"]
            metrics |= saved["metrics"]
            ckpt.log(f"phase3 {task.name} restored")
            continue
        if model is not None:  # trained for the group's first target: scored, not trained again
            per_task[task.name] = score_target(settings, params, task, model, tokenizer, head=source.name)
            phase3: dict[str, Any] = {f"phase3/{task.name}/trained_with": source.name}
            ckpt.log(f"phase3 {task.name} scored with {source.name}'s model")
        elif not task.kind.trained:
            _, per_task[task.name], phase3 = target_phase(settings, params, task, encoder_dir, tokenizer)
            ckpt.log(f"phase3 {task.name} trained")  # the ledger's word for a finished phase 3
        else:
            source = task
            model, phase3 = train_target(settings, params, task, encoder_dir, tokenizer)
            per_task[task.name] = score_target(settings, params, task, model, tokenizer)
            if task.name == served:  # before its scores: scores without the model mean "train again"
                ckpt.save_model(portable(model))
            ckpt.log(f"phase3 {task.name} trained")
        metrics |= phase3
        ckpt.put(f"phase3/{task.name}", {"scores": per_task[task.name], "metrics": phase3})
    if len(group) > 1 and model is not None:
        others = [t.name for t in group if t is not source]
        ckpt.log(f"phase3 {source.name} trained once, reused {len(others)} times ({', '.join(others)})")


def served_task(tasks: list[Task]) -> str:
    return next((t.name for t in tasks if t.kind.trained), tasks[0].name)


def _speed(settings: TrialSettings, params: TrialParams, tasks: list[Task], tokenizer: Tokenizer, ckpt: TrialCheckpoint,
           meter: Meter, policy: str) -> dict[str, Any]:
    """The trial's tokens/sec, before any training: from an earlier attempt of this trial, from an
    identical earlier measurement (the speed cache), or measured now on the phase-1 encoder with the
    trial's knobs and an untrained head of the served task."""
    saved = ckpt.get("speed")
    if saved is not None:
        ckpt.log("speed restored")
        return dict(saved)
    workload = throughput_workload(settings, params, tasks, tokenizer)
    served = next(t for t in tasks if t.name == served_task(tasks))
    model_dir = settings.model_path(params)
    key = speed.speed_key(model_dir, (served.head, served.num_labels), params, workload, settings.meter,
                          speed.hardware(settings.meter.resource))
    cache = speed.SpeedCache(settings.cache_dir)
    result, event = (None if settings.measure_again else cache.get(key)), "cache-hit"
    if result is None:
        untrained = MultiTaskModel(build_encoder(model_dir, params), [served] if served.kind.trained else {})
        result, event = meter(portable(untrained), params, served.name, workload, settings.meter), "measured"
        if not settings.measure_again:  # the search's trials keep reading the measurement they were timed with
            cache.put(key, result)
    ckpt.log(f"speed {event}")
    metrics = {**result.metrics(), "throughput/policy": policy, "throughput/key": key, "throughput/cache": event}
    metrics |= objectives.values(metrics)
    ckpt.put("speed", metrics)
    return metrics


def _trained(settings: TrialSettings, params: TrialParams, tasks: list[Task], tokenizer: Tokenizer,
             known: dict[str, Any], ckpt: TrialCheckpoint, report: Report) -> dict[str, Any]:
    """Phases 2 and 3 (rungs on the way), then the scores: every metric of a trained trial."""
    with IntermediateRun(settings, params, tokenizer) as phase2:  # holds phase 2's lock until it ends
        _rungs(settings, params, tasks, tokenizer, phase2, known, ckpt, report)
        encoder_dir, metrics = _phase2(phase2, ckpt, report)
    per_task, phase3 = _phase3(settings, params, tasks, encoder_dir, tokenizer, ckpt)
    metrics |= known | phase3 | scoring.breakdown(per_task, {t.name: t.kind.groups for t in tasks},
                                                  nli_target(settings.target_tasks))
    return metrics | objectives.values(metrics)  # each declared objective under its own name


def run_trial(settings: TrialSettings, params: TrialParams, report: Report,
              checkpoint: TrialCheckpoint | None = None, meter: Meter = measure_here,
              meter_policy: str = "local: each trial measures on its own node") -> dict[str, Any]:
    """Run the three phases and the measurement; returns (and finally reports) all metrics.

    ``report`` is called once the speed is known, at each rung of ``settings.rungs`` (a
    multi-fidelity scheduler's), after phase 2, and once at the end, with everything. ``checkpoint`` holds
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
    tasks = [settings.task(name) for name in settings.target_tasks]
    # rank 0 measures; every rank of a multi-worker trial follows its verdict on the bounds
    known = from_rank0(_speed(settings, params, tasks, tokenizer, ckpt, meter, meter_policy) if world()[0] == 0 else None)
    missed = objectives.out_of_bounds(known, settings.bounds)
    if missed is None:
        report({"phase": 1, **known})
        metrics = _trained(settings, params, tasks, tokenizer, known, ckpt, report)
        missed = objectives.out_of_bounds(metrics, settings.bounds)
    else:  # never trained: its speed alone rules it out
        ckpt.log("not trained: infeasible")
        metrics = dict(known)
    return _ended(settings, metrics, missed, time.perf_counter() - start, ckpt, report)


def _ended(settings: TrialSettings, metrics: Metrics, missed: str | None, seconds: float, ckpt: TrialCheckpoint,
           report: Report) -> Metrics:
    """The trial's last result: its bounds' verdict, saved before it is reported (a driver that dies
    now still finds it); a multi-worker trial is reported by rank 0 alone."""
    if missed is not None:
        metrics[INFEASIBLE] = missed
    if settings.bounds:  # Optuna's constraint value (<= 0: feasible), which the sampler learns from
        metrics[CONSTRAINT] = objectives.violation(metrics, settings.bounds)
    if world()[0] != 0:
        return metrics
    metrics |= {"trial/seconds": seconds, "phase": 3}
    ckpt.save_result(metrics)
    ckpt.log("result saved")
    report(metrics)
    return metrics
