"""Training engine: training tokens/sec of the project's DeepSpeed engine vs HF ``Trainer`` (given
the same DeepSpeed config) vs a plain torch loop, on the same model (the default 4-layer toy
encoder with an XNLI-like head), the same pre-encoded batches and the same optimizer and schedule.

    python benchmarks/training_engine.py [--steps 120] [--batch 32] [--threads 1] [--profile-steps 60] [--profile-rounds 3]

After the timed rounds, ``--profile-rounds`` more runs of the plain loop and of our engine, interleaved,
go under torch's profiler (CPU) to say where the gap between them goes: per step and median over the
runs, the torch ops' self time by op, and the wall time spent outside any torch op (Python: the loop
itself, DeepSpeed's bookkeeping). The profiler adds its own cost per op to both, so its per-step
times run above the timed ones.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

Hook = Callable[[int, float], None]  # (steps done, loss): the engine's progress callback


def plain_loop(model: torch.nn.Module, batches: list[dict[str, Any]], lr: float, progress: Hook | None = None) -> float:
    """The floor: AdamW, the same schedule and clipping, nothing else. Returns seconds."""
    from stiltsearch.trainables.engine import _linear_schedule
    from stiltsearch.trainables.settings import EngineSettings

    settings = EngineSettings()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _linear_schedule(len(batches), settings.warmup_fraction))
    model.train()
    start = time.perf_counter()
    for step, batch in enumerate(batches, 1):
        loss = model(**batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.gradient_clipping)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if progress and (step % LOG_EVERY == 0 or step == len(batches)):  # as the engine calls it
            progress(step, float(loss.detach()))
    return time.perf_counter() - start


LOG_EVERY = 10  # steps between progress calls, in both loops (the engine's default)


def ours(model: torch.nn.Module, batches: list[dict[str, Any]], lr: float, progress: Hook | None = None) -> float:
    from stiltsearch.trainables.engine import train
    from stiltsearch.trainables.settings import EngineSettings

    log = train(model, iter(batches), steps=len(batches), lr=lr, batch_size=batches[0]["labels"].shape[0],
                settings=EngineSettings(), log_every=LOG_EVERY, progress=progress)
    return log.seconds


@dataclass
class Profiled:
    """One profiled run, per step: wall ms, and each op's (self ms, calls)."""

    wall_ms: float
    ops: dict[str, tuple[float, float]]

    @property
    def outside_ops_ms(self) -> float:  # Python between ops; record_function ranges count as ops
        return self.wall_ms - sum(ms for ms, _ in self.ops.values())


def profile_run(run: Callable[[Hook], float], steps: int) -> Profiled:
    """Profile the steps after the first progress call up to the last, so that neither DeepSpeed's
    engine setup nor the first steps' lazy initialisation is in the window."""
    from torch.profiler import ProfilerActivity, profile

    profiler = profile(activities=[ProfilerActivity.CPU])
    window: dict[str, float] = {}

    def hook(step: int, loss: float) -> None:
        if "start" not in window:
            window.update(start=time.perf_counter(), first=step)
            profiler.start()
        elif step == steps:
            profiler.stop()
            window.update(stop=time.perf_counter(), last=step)

    run(hook)
    n = window["last"] - window["first"]
    ops = {e.key: (e.self_cpu_time_total / 1000 / n, e.count / n) for e in profiler.key_averages()}
    return Profiled(wall_ms=(window["stop"] - window["start"]) * 1000 / n, ops=ops)


def median_profile(runs: list[Profiled]) -> Profiled:
    """Per op, the median over interleaved runs (an op missing from a run counts as 0 there)."""
    names = set().union(*(r.ops for r in runs))
    ops = {k: (statistics.median(r.ops.get(k, (0.0, 0.0))[0] for r in runs),
               statistics.median(r.ops.get(k, (0.0, 0.0))[1] for r in runs)) for k in names}
    return Profiled(wall_ms=statistics.median(r.wall_ms for r in runs), ops=ops)


def where_the_gap_goes(plain: Profiled, ours: Profiled, top: int = 8) -> None:
    print(f"profiled per step: plain loop {plain.wall_ms:.2f} ms, ours {ours.wall_ms:.2f} ms "
          f"(gap {ours.wall_ms - plain.wall_ms:+.2f} ms); outside torch ops: plain {plain.outside_ops_ms:.2f} ms, "
          f"ours {ours.outside_ops_ms:.2f} ms ({ours.outside_ops_ms - plain.outside_ops_ms:+.2f} ms)")
    none = (0.0, 0.0)
    names = set(plain.ops) | set(ours.ops)
    # what the two loops do differently (calls per step), whatever the machine's noise did to the times
    delta = {k: ours.ops.get(k, none)[0] - plain.ops.get(k, none)[0] for k in names}
    different = sorted((k for k in names if plain.ops.get(k, none)[1] != ours.ops.get(k, none)[1]),
                       key=lambda k: -abs(delta[k]))
    print(f"  ops called a different number of times per step: {sum(delta[k] for k in different):+.3f} ms/step in all "
          f"({len(different)} ops); largest: " + "; ".join(
              f"{k} {plain.ops.get(k, none)[1]:g} -> {ours.ops.get(k, none)[1]:g} calls ({delta[k]:+.3f} ms)"
              for k in different[:top]))
    print("  largest time differences among ops called equally often (the same work: the machine's noise):")
    for name in sorted(names - set(different), key=lambda k: -abs(delta[k]))[:top]:
        (p_ms, p_calls), (o_ms, o_calls) = plain.ops.get(name, none), ours.ops.get(name, none)
        print(f"    {name}: {delta[name]:+.3f} ms/step (plain {p_ms:.3f} ms in {p_calls:g} calls, "
              f"ours {o_ms:.3f} ms in {o_calls:g} calls)")


def hf_trainer(model: torch.nn.Module, batches: list[dict[str, Any]], lr: float, deepspeed: bool) -> float:
    """HF Trainer over the same batches (a dataset of whole batches, unwrapped by the collator)."""
    from transformers import Trainer, TrainingArguments
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    from stiltsearch.trainables.settings import EngineSettings

    class AsDict(torch.nn.Module):  # Trainer reads outputs["loss"]
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, **batch: Any) -> dict[str, torch.Tensor]:
            return {"loss": self.inner(**batch)}

    settings = EngineSettings()
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, max_steps=len(batches), per_device_train_batch_size=1, learning_rate=lr,
            weight_decay=settings.weight_decay, warmup_steps=int(len(batches) * settings.warmup_fraction),
            lr_scheduler_type="linear", max_grad_norm=settings.gradient_clipping, logging_strategy="no",
            save_strategy="no", report_to=[], use_cpu=not torch.cuda.is_available(), disable_tqdm=True,
            dataloader_num_workers=0, remove_unused_columns=False,
            deepspeed=settings.deepspeed_config(batches[0]["labels"].shape[0]) | {
                "train_micro_batch_size_per_gpu": "auto"} if deepspeed else None,
        )
        trainer = Trainer(model=AsDict(), args=args, train_dataset=batches, data_collator=lambda items: items[0])
        if trainer.is_deepspeed_enabled != deepspeed:
            raise RuntimeError(f"Trainer's DeepSpeed is {'on' if trainer.is_deepspeed_enabled else 'off'}, wanted the opposite")
        start = time.perf_counter()
        try:
            trainer.train()
        finally:
            # process-wide settings that TrainingArguments(deepspeed=...) leaves behind for the next Trainer
            unset_hf_deepspeed_config()
            os.environ.pop("ACCELERATE_USE_DEEPSPEED", None)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a trial uses 1)")
    parser.add_argument("--rounds", type=int, default=5, help="each engine runs once per round")
    parser.add_argument("--profile-steps", type=int, default=60, help="steps of the profiled runs (0: no profile)")
    parser.add_argument("--profile-rounds", type=int, default=3, help="profiled runs of each loop")
    args = parser.parse_args()
    # accelerate (under HF Trainer) sets OMP_NUM_THREADS itself when it is unset; pin it for all four
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)

    from stiltsearch.search.config.compose import largest_model_settings
    from stiltsearch.search.config.schema import SearchConfig
    from stiltsearch.search.layout import cache_dir
    from stiltsearch.trainables import heads, quiet_libraries
    from stiltsearch.trainables.model import MultiTaskModel, load_encoder, load_tokenizer
    from stiltsearch.trainables.tasks import get_task

    quiet_libraries()
    settings = largest_model_settings(SearchConfig(), cache_dir())
    tokenizer = load_tokenizer(settings.model)
    task = get_task("toy_mnli")
    examples = task.load("train", "en")
    batches = []
    for i in range(args.steps):
        chunk = examples[(i * args.batch) % (len(examples) - args.batch):][:args.batch]
        batches.append({"task": task.name, **heads.encode(task.head, tokenizer, chunk, 128)})
    tokens = sum(int(b["attention_mask"].sum()) for b in batches)

    def fresh() -> torch.nn.Module:
        torch.manual_seed(0)
        return MultiTaskModel(load_encoder(settings.model), [task])

    runs: list[tuple[str, Callable[[], float]]] = [
        ("plain torch loop", lambda: plain_loop(fresh(), batches, 1e-4)),
        ("stiltsearch DeepSpeed engine", lambda: ours(fresh(), batches, 1e-4)),
        ("HF Trainer + the same DeepSpeed config", lambda: hf_trainer(fresh(), batches, 1e-4, deepspeed=True)),
        ("HF Trainer, no DeepSpeed", lambda: hf_trainer(fresh(), batches, 1e-4, deepspeed=False)),
    ]
    print(f"workload: {args.steps} steps x batch {args.batch}, {tokens} real tokens, {torch.get_num_threads()} torch thread(s), "
          f"{args.rounds} rounds (engines interleaved; ratios are the median of each round's own ratio, since the "
          f"machine's speed drifts between rounds more than between engines within one)")
    measured: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for name, fn in runs:
            try:
                speed = tokens / fn()
            except Exception as error:  # noqa: BLE001 - a figure we could not take is a finding: report, go on
                print(f"{name}: could not run here: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
                speed = float("nan")
            measured.setdefault(name, []).append(speed)
    for name, values in measured.items():
        spread = ", ".join(f"{v:.0f}" for v in values)
        print(f"{name}: {statistics.median(values):.0f} training tokens/sec (median of {spread})")

    def ratio(a: str, b: str) -> str:
        paired = [x / y for x, y in zip(measured[a], measured[b]) if x == x and y == y]  # skip failed runs (NaN)
        if not paired:
            return "n/a"
        return f"{statistics.median(paired):.3f} (rounds: {', '.join(f'{r:.3f}' for r in paired)})"

    ours_name = "stiltsearch DeepSpeed engine"
    for name in measured:
        if name != "plain torch loop":
            print(f"{name} / plain loop: {ratio(name, 'plain torch loop')}")
    for name in ("HF Trainer + the same DeepSpeed config", "HF Trainer, no DeepSpeed"):
        print(f"stiltsearch engine / {name}: {ratio(ours_name, name)}")
    if args.profile_steps > LOG_EVERY:
        few = batches[:args.profile_steps]
        profiles: dict[str, list[Profiled]] = {"plain": [], "ours": []}
        for _ in range(args.profile_rounds):
            profiles["plain"].append(profile_run(lambda hook: plain_loop(fresh(), few, 1e-4, hook), len(few)))
            profiles["ours"].append(profile_run(lambda hook: ours(fresh(), few, 1e-4, hook), len(few)))
        print(f"profile: {args.profile_steps - LOG_EVERY} steps per run, {args.profile_rounds} interleaved runs each, "
              f"median per op")
        where_the_gap_goes(median_profile(profiles["plain"]), median_profile(profiles["ours"]))


if __name__ == "__main__":
    main()
