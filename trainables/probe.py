"""One target's per-language scores for one configuration, outside any search.

What the toy benchmark's ground-truth tests and ``benchmarks/toy_ground_truth.py`` measure: the
same phases a trial runs (:mod:`stiltsearch.trainables.pipeline`), without Ray, MLflow or Optuna,
spread over worker processes (one thread each) because each run is independent.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from stiltsearch.trainables.params import TrialParams
from stiltsearch.trainables.settings import TrialSettings


@dataclass(frozen=True)
class Probe:
    """One run: a configuration of the three phases, and the seed of phases 2 and 3."""

    label: str  # what the run stands for in a report, e.g. "+toy_mnli"
    settings: TrialSettings
    params: TrialParams = field(default_factory=TrialParams)
    timed: bool = False  # tokens/sec measured too (the probes a speed property compares; ~10 s each)

    def seeded(self, seed: int) -> Probe:
        return replace(self, settings=replace(self.settings, seed=seed))


@dataclass(frozen=True)
class Outcome:
    probe: Probe
    scores: dict[str, float]  # target task's score per language
    tokens_per_sec: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # a whole trial's (run_trial_probe): every objective


def run(probe: Probe, measure_speed: bool = False) -> Outcome:
    """Phases 2 and 3 for the settings' first target task (and tokens/sec if asked or the probe is
    ``timed``), in this process."""
    import torch

    from stiltsearch.trainables import quiet_libraries
    from stiltsearch.trainables.model import load_tokenizer, portable
    from stiltsearch.trainables.phase2 import intermediate_phase
    from stiltsearch.trainables.pipeline import measure_here, throughput_workload
    from stiltsearch.trainables.target import target_phase
    from stiltsearch.trainables.tasks import get_task

    quiet_libraries()
    torch.set_num_threads(probe.settings.threads)
    torch.manual_seed(probe.settings.seed)
    tokenizer = load_tokenizer(probe.settings.model_path(probe.params))
    encoder_dir, _ = intermediate_phase(probe.settings, probe.params, tokenizer)
    task = get_task(probe.settings.target_tasks[0])
    model, scores, _ = target_phase(probe.settings, probe.params, task, encoder_dir, tokenizer)
    speed = None
    if measure_speed or probe.timed:
        workload = throughput_workload(probe.settings, probe.params, [task], tokenizer)
        speed = measure_here(portable(model), probe.params, task.name, workload,
                             probe.settings.meter).tokens_per_sec
    return Outcome(probe, scores, speed)


def run_trial_probe(probe: Probe, measure_speed: bool = True) -> Outcome:
    """A whole trial as the search runs it (every target, the speed measured, no Ray): what the
    objective-level ground truth compares. ``scores`` are the NLI target's per-language scores."""
    from stiltsearch.trainables import quiet_libraries
    from stiltsearch.trainables.pipeline import run_trial
    from stiltsearch.trainables.tasks import nli_target

    quiet_libraries()
    metrics = run_trial(probe.settings, probe.params, lambda _: None)
    numbers = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    nli = nli_target(probe.settings.target_tasks)
    prefix = f"eval/{nli}/"
    scores = {k[len(prefix):]: v for k, v in numbers.items() if nli and k.startswith(prefix) and "/" not in k[len(prefix):]}
    return Outcome(probe, scores, numbers.get("tokens_per_sec"), numbers)


def run_all(probes: list[Probe], *, workers: int | None = None, measure_speed: bool = False,
            whole_trials: bool = False) -> list[Outcome]:
    """Run probes in parallel worker processes (spawned: DeepSpeed and torch state stay per run);
    ``whole_trials``: each as a whole trial (:func:`run_trial_probe`)."""
    workers = workers or min(len(probes), os.cpu_count() or 1)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(run_trial_probe if whole_trials else run, probes, [measure_speed] * len(probes)))


def mean_and_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean across seeds."""
    return statistics.fmean(values), statistics.stdev(values) / len(values) ** 0.5


def random_init_copy(model_dir: str | Path, out_dir: str | Path, seed: int = 0) -> str:
    """The same architecture and tokenizer with freshly initialised weights: phase 1 undone."""
    import torch
    from transformers import AutoConfig, AutoModelForMaskedLM

    from stiltsearch.trainables.model import load_tokenizer

    out = Path(out_dir)
    if not (out / "config.json").exists():
        torch.manual_seed(seed)
        AutoModelForMaskedLM.from_config(AutoConfig.from_pretrained(str(model_dir))).save_pretrained(out)
        load_tokenizer(model_dir).save_pretrained(out)
    return str(out)


def synthetic_mean(scores: dict[str, float]) -> float:
    """Mean over the non-English languages: what zero-shot transfer is judged on."""
    return statistics.fmean(v for k, v in scores.items() if k != "en")


# --- the toy benchmark's designed ground truth (docs/toy-world.md) -----------------------

HELPFUL = "toy_mnli"  # designed to help the XNLI-like target: the same skill on 8x the data
UNRELATED = "toy_csqa"  # designed not to: memorised world knowledge, no sentence comparison
ADDED_LANGUAGE = "xc"  # the language whose translate-train data the multilingual probe adds


def ground_truth_probes(settings: TrialSettings, *, intermediate_lr: float = 1e-3,
                        target_lr: float = 3e-4) -> list[Probe]:
    """The configurations the five designed properties compare, on the XNLI-like target.

    ``settings`` is a trial's (the default search's budgets, ``settings.model`` the toy encoder);
    the target becomes ``toy_xnli``. Deployment knobs are the whole model at length 128 in fp32,
    except in the two knob probes. The random-init copy is saved beside the model in the cache.
    Only the baseline and the two knob probes are timed: they are what the speed property compares.
    """
    random_model = random_init_copy(settings.model, Path(settings.cache_dir) / "models" /
                                    f"{Path(settings.model).name}-random-init")
    base = replace(settings, target_tasks=("toy_xnli",))
    whole = TrialParams(target_lr=target_lr, layers_kept=_depth(settings.model), max_seq_length=128)
    return [
        Probe("baseline", base, whole, timed=True),
        Probe("random init", replace(base, model=random_model, models={}), whole),
        Probe(f"+{HELPFUL}", base, whole.replace(intermediate_tasks=(HELPFUL,), intermediate_lr=intermediate_lr)),
        Probe(f"+{UNRELATED}", base, whole.replace(intermediate_tasks=(UNRELATED,), intermediate_lr=intermediate_lr)),
        Probe(f"+translate-train {ADDED_LANGUAGE}", base, whole.replace(train_languages=(ADDED_LANGUAGE,))),
        Probe("1 layer", base, whole.replace(layers_kept=1), timed=True),
        Probe("length 16", base, whole.replace(max_seq_length=16), timed=True),
    ]


def ground_truth(settings: TrialSettings, seeds: tuple[int, ...], *, workers: int = 2) -> dict[str, list[Outcome]]:
    """``{probe label: one outcome per seed}`` for every ground-truth probe, tokens/sec for the timed ones."""
    probes = ground_truth_probes(settings)
    outcomes = run_all([p.seeded(seed) for seed in seeds for p in probes], workers=workers)
    by_label: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_label.setdefault(outcome.probe.label, []).append(outcome)
    return by_label


def objective_probes(settings: TrialSettings, model: str, *, intermediate_lr: float = 1e-3,
                     target_lr: float = 10 ** -3.5) -> list[Probe]:
    """The configurations the objective-level properties compare: whole trials of the default
    search (``settings``: its trial settings, every target), the baseline's knobs (``model`` whole,
    length 128, fp32, the target lr the search's baseline gets: the geometric middle of its range)."""
    whole = TrialParams(model=model, target_lr=target_lr, layers_kept=_depth(settings.models[model]), max_seq_length=128)
    return [
        Probe("baseline", settings, whole),
        Probe(f"+{HELPFUL}", settings, whole.replace(intermediate_tasks=(HELPFUL,), intermediate_lr=intermediate_lr)),
        Probe(f"+{UNRELATED}", settings, whole.replace(intermediate_tasks=(UNRELATED,), intermediate_lr=intermediate_lr)),
        Probe(f"+translate-train {ADDED_LANGUAGE}", settings, whole.replace(train_languages=(ADDED_LANGUAGE,))),
        Probe("1 layer", settings, whole.replace(layers_kept=1)),
    ]


def objective_ground_truth(settings: TrialSettings, model: str, seeds: tuple[int, ...], *,
                           workers: int = 2) -> dict[str, list[Outcome]]:
    """``{probe label: one whole-trial outcome per seed}`` for :func:`objective_probes`."""
    probes = objective_probes(settings, model)
    outcomes = run_all([p.seeded(seed) for seed in seeds for p in probes], workers=workers, whole_trials=True)
    by_label: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_label.setdefault(outcome.probe.label, []).append(outcome)
    return by_label


def _depth(model: str) -> int:
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(model).num_hidden_layers)


