"""Feeding the device: a training step's wall time with its batches prepared ahead on a thread
(``data.Prefetch``, what a trial does on CUDA), against preparing each batch inside the step (what
it does on a CPU, where the thread would compete for the step's own cores), and against the two
parts alone (preparing batches; training on batches already made). Target: the prefetched step
within max(preparation, compute) + 10 %. Measured on this CPU with torch on one thread, so that the
preparing thread has the other core; interleaved repeats, the median and the spread.

    python benchmarks/step_overlap.py [--steps 40] [--repeats 3] [--task toy_squad]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--task", default="toy_squad")
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()

    import torch

    from stiltsearch.trainables import data, quiet_libraries
    from stiltsearch.trainables.engine import TrainingRun
    from stiltsearch.trainables.model import MultiTaskModel, load_encoder, load_tokenizer
    from stiltsearch.trainables.pretrain import ensure_toy_model
    from stiltsearch.trainables.settings import EngineSettings, ToyModelSpec
    from stiltsearch.trainables.tasks import get_task

    quiet_libraries()
    torch.set_num_threads(1)
    cache = Path(tempfile.gettempdir()) / "stiltsearch-bench"
    model_dir = ensure_toy_model(ToyModelSpec(layers=4, hidden=128, mlm_steps=1), cache, progress=lambda _: None)
    tokenizer = load_tokenizer(model_dir)
    task = get_task(args.task)
    examples = task.load("train", "en")

    def stream() -> Any:
        return data.batches(task, examples, tokenizer, batch_size=args.batch, max_length=128, seed=0)

    def prepare() -> float:
        batches = stream()
        start = time.perf_counter()
        for _ in range(args.steps):
            next(batches)
        return (time.perf_counter() - start) / args.steps

    def train(batches: Any, feeder: Any) -> float:
        data.feed = lambda b, device: feeder(b)  # the seam under test: how batches reach the step (CPU: inline)
        torch.manual_seed(0)
        model = MultiTaskModel(load_encoder(model_dir), [task])
        run = TrainingRun(model, batches, steps=args.steps + 2, lr=1e-4, batch_size=args.batch,
                          settings=EngineSettings(), log_every=args.steps + 2)
        run.advance(2)  # warm-up steps, untimed
        start = time.perf_counter()
        run.advance(args.steps + 2)
        seconds = (time.perf_counter() - start) / args.steps
        run.close()
        return seconds

    prefetch = data.Prefetch  # forced here; a trial prefetches on CUDA only (data.feed)
    made = [b for _, b in zip(range(args.steps + 2), stream())]
    figures: dict[str, list[float]] = {"prepare": [], "compute": [], "inline": [], "prefetched": []}
    for _ in range(args.repeats):  # interleaved
        figures["prepare"].append(prepare())
        figures["compute"].append(train(iter(made), prefetch))
        figures["inline"].append(train(stream(), data.Inline))
        figures["prefetched"].append(train(stream(), prefetch))
    median = {k: statistics.median(v) for k, v in figures.items()}
    for name, values in figures.items():
        print(f"{name:>10}: {1000 * median[name]:7.1f} ms/step (spread {1000 * min(values):.1f}..{1000 * max(values):.1f})")
    bound = max(median["prepare"], median["compute"])
    ratio = median["prefetched"] / bound
    print(f"prefetched step / max(preparation, compute): {ratio:.2f} (target <= 1.10: {'met' if ratio <= 1.10 else 'missed'}); "
          f"inline step / max: {median['inline'] / bound:.2f}; task {args.task}, batch {args.batch}, torch on 1 thread")


if __name__ == "__main__":
    main()
