"""Memory back after every phase, at XLM-R-base shape on this CPU: the peak RSS of a whole trial
(three trained targets, MOASHA rungs at 1/9 and 1/3: 10 DeepSpeed engines) against the peak of one
phase alone, each in a fresh process, side by side with a one-target trial (4 engines) as it ran
and as it ran before finished engines were released (DeepSpeed's ``destroy()`` only, which leaves
each engine, optimizer and model to Python's cycle collector; with three targets that would not fit
this 24 GiB machine). Target: the trial's peak within one phase's + 10 %.

The model is XLM-R base's shape with random weights and a 250,002-piece tokenizer (``realshape.py``,
built offline); the tasks are the toy world's. Steps are few: memory, not accuracy, is measured.

    python benchmarks/phase_memory.py [--shape base] [--steps 3] [--no-before]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

TARGETS = ("toy_xnli", "toy_panx", "toy_xquad")
GIB = 2 ** 30


class Sampler:
    """The process's resident set, sampled every 50 ms; the peak per labelled stretch, of all of it
    and of its anonymous part (resident minus file-backed pages: safetensors weights are read
    through ``mmap``, and the page cache they occupy is counted in RSS but is not the process's own)."""

    def __init__(self) -> None:
        import psutil

        self.process = psutil.Process()
        self.label = "start"
        self.peaks: dict[str, float] = {}
        self.anon: dict[str, float] = {}
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stop.is_set():
            info = self.process.memory_info()
            self.peaks[self.label] = max(self.peaks.get(self.label, 0.0), info.rss / GIB)
            self.anon[self.label] = max(self.anon.get(self.label, 0.0), (info.rss - info.shared) / GIB)
            time.sleep(0.05)

    def mark(self, label: str) -> None:
        self.label = label


def _settings(model: str, cache: Path, steps: int, rungs: tuple[float, ...], targets: tuple[str, ...] = TARGETS) -> Any:
    from stiltsearch.trainables.settings import MeterSettings, TrialSettings

    return TrialSettings(model=model, target_tasks=targets, cache_dir=str(cache), intermediate_steps=steps,
                         target_steps=steps, batch_size=8, max_length=64, rungs=rungs, threads=2,
                         eval_languages={t: ("xa",) for t in targets},  # one language: memory, not accuracy
                         meter=MeterSettings(warmup=0, repeats=1, max_sequences=32))


def child(kind: str, model: str, cache: Path, steps: int) -> dict[str, Any]:
    """One measurement in this (fresh) process: "phase" (phase 2 alone), "phase-qa" (phase 3 of
    toy_xquad alone, the trial's largest: QA's longer sequences), "trial" (three targets), "trial-1"
    (one target) or "before-1" (one target, engines not released)."""
    import resource

    import torch

    from stiltsearch.trainables import engine, quiet_libraries
    from stiltsearch.trainables.checkpoint import TrialCheckpoint
    from stiltsearch.trainables.model import load_tokenizer
    from stiltsearch.trainables.params import TrialParams
    from stiltsearch.trainables.phase2 import intermediate_phase
    from stiltsearch.trainables.pipeline import run_trial
    from stiltsearch.trainables.target import target_phase

    quiet_libraries()
    torch.set_num_threads(2)
    if kind.startswith("before"):  # the release as it was: DeepSpeed's destroy() alone
        engine.release = lambda e: e.destroy()
    sampler = Sampler()
    params = TrialParams(intermediate_tasks=("toy_mnli",), intermediate_lr=1e-5, train_languages=("xa",),
                         target_lr=1e-5, layers_kept=12, max_seq_length=64)
    start = time.perf_counter()
    if kind == "phase":
        intermediate_phase(_settings(model, cache, steps, ()), params, load_tokenizer(model))
    elif kind == "phase-qa":
        settings = _settings(model, cache, steps, (), TARGETS[-1:])
        target_phase(settings, params, settings.task(TARGETS[-1]), model, load_tokenizer(model))
    else:
        # each report starts the next stretch: the speed report, each rung's, phase 2's, the end's
        labels = iter(["phase 2 to 1/9 + rung 1/9's targets", "phase 2 to 1/3 + rung 1/3's targets",
                       "phase 2 to its end", "phase 3", "after"])

        def report(metrics: dict[str, Any]) -> None:
            sampler.mark(next(labels, "after"))

        sampler.mark("speed measurement")
        targets = TARGETS if kind == "trial" else TARGETS[:1]
        # a trial directory, as every trial of a search has (without one, the served model stays in memory)
        checkpoint = TrialCheckpoint(cache / "trials" / "0000")
        run_trial(_settings(model, cache, steps, (1 / 9, 1 / 3), targets), params, report, checkpoint)
    sampler.stop.set()
    return {"kind": kind, "seconds": time.perf_counter() - start,
            "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, "peaks": sampler.peaks,
            "anon_gib": max(sampler.anon.values()), "anon": sampler.anon}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="base", choices=("base", "large"))
    parser.add_argument("--steps", type=int, default=3, help="training steps of each phase")
    parser.add_argument("--no-before", action="store_true", help="skip the trial without the release")
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "stiltsearch" / "bench"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    cache = Path(args.cache)
    if args.child:
        print("RESULT " + json.dumps(child(args.child, args.model, cache / "run", args.steps)), flush=True)
        return

    sys.path.insert(0, str(Path(__file__).parent))
    import torch
    from realshape import build

    print(f"building the {args.shape}-shaped model (random weights, 250,002-piece tokenizer) ...", flush=True)
    model = str(build(args.shape, cache))
    print(f"cpu: {torch.get_num_threads()} threads; trial: phase 2 on toy_mnli, phase 3 on {', '.join(TARGETS)} "
          f"(trial-1: the first only), rungs 1/9 and 1/3 (10 engines; 4 with one target); {args.steps} steps a phase",
          flush=True)
    results = {}
    for kind in ("phase", "phase-qa", "trial", "trial-1") + (() if args.no_before else ("before-1",)):
        import shutil

        shutil.rmtree(cache / "run", ignore_errors=True)  # no phase-2 cache hit: every run trains
        done = subprocess.run([sys.executable, __file__, "--child", kind, "--model", model, "--steps", str(args.steps),
                               "--cache", str(cache)], capture_output=True, text=True)
        line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(f"{kind}: failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
            continue
        results[kind] = json.loads(line.removeprefix("RESULT "))
        r = results[kind]
        stretches = "; ".join(f"{k} {v:.2f} ({r['anon'][k]:.2f})" for k, v in r["peaks"].items())
        print(f"{kind:>8}: peak RSS {r['peak_gib']:.2f} GiB, anonymous {r['anon_gib']:.2f} GiB, in {r['seconds']:.0f} s; "
              f"peak per stretch, RSS (anonymous) in GiB: {stretches}", flush=True)
    if "phase" in results and "phase-qa" in results and "trial" in results:
        for what, key in (("RSS", "peak_gib"), ("anonymous", "anon_gib")):
            one = max(results["phase"][key], results["phase-qa"][key])
            ratio = results["trial"][key] / one
            print(f"trial peak / the largest phase's peak alone, {what}: {ratio:.2f} (target <= 1.10: "
                  f"{'met' if ratio <= 1.10 else 'missed'})")
    if "before-1" in results and "trial-1" in results:
        before, after = results["before-1"]["peak_gib"], results["trial-1"]["peak_gib"]
        print(f"one target with rungs: peak {after:.2f} GiB with the release, {before:.2f} GiB without it "
              f"({before / after:.2f}x)")


if __name__ == "__main__":
    main()
