"""Is the tokens/sec objective stable enough to rank trials? (issue 7 targets, measured here)

1. Repeatability: the same model and knobs measured N times. Target: coefficient of variation <= 3 %.
2. Resolution: two settings whose true speeds differ by ~10 %, compared 20 times. Target: >= 19 right.
   The slower setting is the same model and workload with every 10th forward call run twice, so it
   does (batches + batches // 10) / batches times the work per counted token: "true" below (1.083 for
   the toy's 12 batches; approximate, since batches differ in length).

Both figures are reported side by side from the same passes: raw tokens/sec, and relative_speed
(each pass over a pass of the fixed reference encoder right after it; ``throughput.reference``).

Workload: the toy search's own (target dev inputs across languages, as a trial measures them), on
the cached toy encoder (built on first use, ~2 min). Usage:
    python benchmarks/meter_stability.py [--measurements 10] [--comparisons 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measurements", type=int, default=10)
    parser.add_argument("--comparisons", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, as in a trial (cpus_per_trial)")
    parser.add_argument("--repeats", type=int, help="timed passes per measurement (default: the toy config's)")
    parser.add_argument("--warmup", type=int, help="untimed passes per measurement (default: the toy config's)")
    args = parser.parse_args()

    from stiltsearch.search.config.compose import trial_settings
    from stiltsearch.search.config.schema import SearchConfig
    from stiltsearch.search.launch.models import resolve_models
    from stiltsearch.search.layout import cache_dir
    from stiltsearch.trainables.model import MultiTaskModel, load_encoder, load_tokenizer
    from stiltsearch.trainables.params import TrialParams
    from stiltsearch.trainables.pipeline import throughput_workload
    from stiltsearch.trainables.tasks import get_task
    from stiltsearch.trainables.throughput import measure

    cfg = SearchConfig()
    models = resolve_models(cfg, cache_dir())
    model_dir = list(models.values())[-1]  # the largest toy model
    settings = trial_settings(cfg, models, cache_dir())
    meter = dataclasses.replace(settings.meter, reference=True, repeats=args.repeats or settings.meter.repeats,
                                warmup=settings.meter.warmup if args.warmup is None else args.warmup)
    settings = dataclasses.replace(settings, meter=meter)
    tasks = [get_task(t) for t in cfg.target_tasks]
    params = TrialParams()
    workload = throughput_workload(settings, params, tasks, load_tokenizer(model_dir))
    model = MultiTaskModel(load_encoder(model_dir), tasks).eval()
    torch.set_num_threads(args.threads)
    first = tasks[0].name

    def fast(ids: torch.Tensor, mask: torch.Tensor) -> None:
        model.logits(first, ids, mask)

    calls = {"n": 0}

    def slow(ids: torch.Tensor, mask: torch.Tensor) -> None:  # 1.1x the work per counted token
        model.logits(first, ids, mask)
        calls["n"] += 1
        if calls["n"] % 10 == 0:
            model.logits(first, ids, mask)

    n_batches = len(workload)
    exact = 1 + (n_batches // 10) / n_batches  # the extra batches need not be exactly a tenth
    start = time.perf_counter()
    runs = [measure(fast, workload, settings.meter) for _ in range(args.measurements)]
    medians = [r.tokens_per_sec for r in runs]
    relatives = [r.relative_speed for r in runs]
    across = statistics.stdev(medians) / statistics.fmean(medians)
    across_relative = statistics.stdev(relatives) / statistics.fmean(relatives)
    within = statistics.median(r.cv for r in runs)
    right, right_relative, ratios, ratios_relative = 0, 0, [], []
    for _ in range(args.comparisons):
        a = measure(fast, workload, settings.meter)
        b = measure(slow, workload, settings.meter)
        right += a.tokens_per_sec > b.tokens_per_sec
        right_relative += a.relative_speed > b.relative_speed
        ratios.append(a.tokens_per_sec / b.tokens_per_sec)
        ratios_relative.append(a.relative_speed / b.relative_speed)
    seconds = time.perf_counter() - start

    print(f"device: {runs[0].device}, {runs[0].threads} torch thread(s); workload {runs[0].tokens} real tokens in "
          f"{runs[0].sequences} sequences, {n_batches} batches; {settings.meter.repeats} timed passes per measurement")
    print(f"tokens_per_sec median of medians: {statistics.median(medians):.0f} tokens/s")
    print(f"cv across {args.measurements} measurements (target <= 3%): tokens/sec {100 * across:.2f} %, "
          f"relative_speed {100 * across_relative:.2f} % (median relative_speed {statistics.median(relatives):.3f})")
    print(f"cv within a measurement (median over measurements): {100 * within:.2f} %")
    print(f"10% comparisons ranked right (target >= 19 of 20): tokens/sec {right} of {args.comparisons}, "
          f"relative_speed {right_relative} of {args.comparisons}")
    for name, values in (("tokens/sec", ratios), ("relative_speed", ratios_relative)):
        print(f"measured speed ratio fast/slow by {name}: median {statistics.median(values):.3f} (true {exact:.3f}), "
              f"min {min(values):.3f}, max {max(values):.3f}")
    print(f"benchmark wall time: {seconds:.0f} s")


if __name__ == "__main__":
    main()
