"""Training engine: training tokens/sec of the project's DeepSpeed engine vs HF ``Trainer`` (given
the same DeepSpeed config) vs a plain torch loop, on the same model (the default 4-layer toy
encoder with an XNLI-like head), the same pre-encoded batches and the same optimizer and schedule.

    python benchmarks/training_engine.py [--steps 120] [--batch 32] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Any, Callable

import torch


def plain_loop(model: torch.nn.Module, batches: list[dict[str, Any]], lr: float) -> float:
    """The floor: AdamW, the same schedule and clipping, nothing else. Returns seconds."""
    from stiltsearch.trainables.engine import EngineSettings, _linear_schedule

    settings = EngineSettings()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _linear_schedule(len(batches), settings.warmup_fraction))
    model.train()
    start = time.perf_counter()
    for batch in batches:
        loss = model(**batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.gradient_clipping)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def ours(model: torch.nn.Module, batches: list[dict[str, Any]], lr: float) -> float:
    from stiltsearch.trainables.engine import EngineSettings, train

    log = train(model, iter(batches), steps=len(batches), lr=lr, micro_batch_size=batches[0]["labels"].shape[0],
                settings=EngineSettings())
    return log.seconds


def hf_trainer(model: torch.nn.Module, batches: list[dict[str, Any]], lr: float, deepspeed: bool) -> float:
    """HF Trainer over the same batches (a dataset of whole batches, unwrapped by the collator)."""
    from transformers import Trainer, TrainingArguments
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    from stiltsearch.trainables.engine import EngineSettings

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
    parser.add_argument("--rounds", type=int, default=3, help="each engine runs once per round; medians reported")
    args = parser.parse_args()
    # accelerate (under HF Trainer) sets OMP_NUM_THREADS itself when it is unset; pin it for all four
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)

    from stiltsearch.search.config import SearchConfig
    from stiltsearch.search.driver import cache_dir, largest_model_settings
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
    print(f"workload: {args.steps} steps x batch {args.batch}, {tokens} real tokens, {args.threads} thread(s), "
          f"{args.rounds} rounds (engines interleaved; median reported)")
    measured: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for name, fn in runs:
            try:
                measured.setdefault(name, []).append(tokens / fn())
            except Exception as error:  # noqa: BLE001 - a figure we could not take is a finding: report, go on
                print(f"{name}: could not run here: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
    speeds = {name: statistics.median(values) for name, values in measured.items() if values}
    for name, speed in speeds.items():
        spread = ", ".join(f"{v:.0f}" for v in measured[name])
        print(f"{name}: {speed:.0f} training tokens/sec (median of {spread})")
    base = speeds.get("plain torch loop")
    for name, speed in speeds.items():
        if base and name != "plain torch loop":
            print(f"{name} / plain loop: {speed / base:.3f}")
    ours_speed = speeds.get("stiltsearch DeepSpeed engine")
    for name in ("HF Trainer + the same DeepSpeed config", "HF Trainer, no DeepSpeed"):
        if ours_speed and name in speeds:
            print(f"stiltsearch engine / {name}: {ours_speed / speeds[name]:.3f}")


if __name__ == "__main__":
    main()
