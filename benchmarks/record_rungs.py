"""Record real toy trials at every rung of their budget, for the early-stopping replay.

Runs the real trial pipeline (``run_trial``: real DeepSpeed training, the real meter) on
configurations drawn at random from the default search's space, each at its full budget with rungs
at 1/9 and 1/3 of it (MOASHA's defaults, reduction factor 3), and records what each reported:
its objectives at each rung and at the end, and when (trial-seconds since its start). One
full-budget run records every rung on the way, because a rung is a prefix of the full run
(``trainables/engine.py: TrainingRun``). It also records what scoring at each rung cost
, so a replay charges a FIFO trial its full run without the rungs.

Times are CPU seconds of the trial's process (``time.process_time``; one torch thread, as a search
gives each trial), not wall time: other work on the machine does not inflate them, so the table can
be recorded while the machine does other things, and continued in another session.

Smaller than the default search, so that 150 configurations fit in about an hour on 2 cores
(stated with the figures): a quarter of its training budgets (``--intermediate-steps 60
--target-steps 50``, against 240/200), fp32 deployments only (bf16 on a CPU is slow to train,
score and time; every other knob as in the default space), and a shorter meter (5 timed passes
over 256 sequences, against 15 over 768). The meter also times its reference encoder after each
pass (``throughput.reference: true``), so each row has ``relative_speed``, which the machine's other
work does not move as it moves raw tokens/sec: the replay's speed objective. Lines are appended to a JSON-lines
file as trials end, so a run that is stopped resumes where it was; the table it leaves is small
(about 1 kB a configuration).

    python benchmarks/record_rungs.py [--configs 150] [--workers 2] [--out benchmarks/data/toy_rungs.jsonl]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

RUNGS = (1 / 9, 1 / 3)
OBJECTIVE_KEYS = ("xtreme_score", "tokens_per_sec", "relative_speed", "latency_ms")


def recorded_config() -> Any:
    """The default search (its space as of 2026-12, written out so that the table's draws stay
    the same if the defaults change), deployed in fp32 only."""
    from stiltsearch.search.config.reading import load_config

    return load_config(space={"intermediate_lr": [1e-4, 1e-3], "target_lr": [1e-4, 1e-3], "layers_kept": [1, 2, 4],
                              "max_seq_length": [16, 32, 128], "precision": ["fp32"], "inference_batch_size": [64],
                              "attention": ["sdpa"], "compile": [False]})


def configurations(count: int, seed: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``count`` parameter sets drawn at random from the default search's own space: (structured
    values, as a trial reads them; Optuna's raw parameters, as a study enqueues them). The same
    ``seed`` draws the same sets (the replay regenerates the raw ones this way)."""
    import optuna

    from stiltsearch.search.config.compose import space_spec
    from stiltsearch.spaces import stilts_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    spec = space_spec(recorded_config())
    drawn = []
    for _ in range(count):
        trial = study.ask()
        drawn.append((stilts_space(trial, spec), dict(trial.params)))
    return drawn


def record(index: int, sampled: dict[str, Any], intermediate_steps: int, target_steps: int, cache: str) -> dict[str, Any]:
    """Run one configuration to its end, noting each report's time."""
    from stiltsearch.search.config.compose import trial_settings
    from stiltsearch.search.launch.models import resolve_models
    from stiltsearch.search.layout import cache_dir
    from stiltsearch.trainables import pipeline, quiet_libraries
    from stiltsearch.trainables.objectives import RUNG
    from stiltsearch.trainables.params import TrialParams

    quiet_libraries()
    cfg = recorded_config()
    settings = trial_settings(cfg, resolve_models(cfg, cache_dir()), Path(cache))
    settings = dataclasses.replace(settings, intermediate_steps=intermediate_steps, target_steps=target_steps,
                                   rungs=RUNGS, meter=dataclasses.replace(settings.meter, repeats=5, max_sequences=256,
                                                                         reference=True))
    params = TrialParams.from_config(sampled)
    start = time.process_time()
    rungs: list[dict[str, Any]] = []
    trained_to: list[float] = []  # when phase 2 reached each rung: the rung's scoring starts there
    advance = pipeline.IntermediateRun.at

    def at(run: Any, budget: float) -> str:
        encoder = advance(run, budget)
        trained_to.append(time.process_time())
        return encoder

    def report(metrics: dict[str, Any]) -> None:
        if RUNG in metrics:
            k, now = metrics[RUNG], time.process_time()
            rungs.append({"budget": RUNGS[k], "at_seconds": now - start, "scoring_seconds": now - trained_to[-1],
                          **{name: metrics[f"rung/{k}/{name}"] for name in OBJECTIVE_KEYS}})

    pipeline.IntermediateRun.at = at  # type: ignore[method-assign]  # this process records one trial at a time
    try:
        end = pipeline.run_trial(settings, params, report)
    finally:
        pipeline.IntermediateRun.at = advance  # type: ignore[method-assign]
    return {"index": index, "params": sampled, "rungs": rungs,
            "end": {"at_seconds": time.process_time() - start, **{name: end[name] for name in OBJECTIVE_KEYS}},
            "phase2_cache": end.get("phase2/cache"), "speed_cache": end.get("throughput/cache")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", type=int, default=150)
    parser.add_argument("--workers", type=int, default=2, help="trials run side by side, one CPU each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--intermediate-steps", type=int, default=60)
    parser.add_argument("--target-steps", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data" / "toy_rungs.jsonl")
    args = parser.parse_args()

    from stiltsearch.search.launch.models import resolve_models
    from stiltsearch.search.layout import cache_dir

    resolve_models(recorded_config(), cache_dir())  # phase 1 once, here, not in each worker
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = {json.loads(line)["index"] for line in args.out.read_text().splitlines()} if args.out.exists() else set()
    todo = [(i, c) for i, (c, _) in enumerate(configurations(args.configs, args.seed)) if i not in done]
    print(f"{len(done)} recorded, {len(todo)} to run, {args.workers} at a time "
          f"(steps {args.intermediate_steps}/{args.target_steps}, rungs {', '.join(f'{b:.3f}' for b in RUNGS)})",
          flush=True)
    started = time.perf_counter()
    # one phase-2 and speed cache for the whole recording, as in one search
    with tempfile.TemporaryDirectory(prefix="record-rungs-") as cache, \
            ProcessPoolExecutor(max_workers=args.workers) as pool, open(args.out, "a") as out:
        futures = [pool.submit(record, i, c, args.intermediate_steps, args.target_steps, cache) for i, c in todo]
        for n, future in enumerate(as_completed(futures), 1):
            row = future.result()
            out.write(json.dumps(row) + "\n")
            out.flush()
            elapsed = time.perf_counter() - started
            on_the_way = ", ".join(f"{r['xtreme_score']:.1f}" for r in row["rungs"])
            print(f"[{elapsed:6.0f}s] {n}/{len(todo)} config {row['index']}: {row['end']['at_seconds']:.0f}s, "
                  f"score {row['end']['xtreme_score']:.1f} (rungs {on_the_way}), "
                  f"{row['end']['tokens_per_sec']:.0f} tok/s", flush=True)


if __name__ == "__main__":
    main()
