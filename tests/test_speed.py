"""Tokens/sec is known before training (trainables/speed.py): the premise (an untrained model of
the served architecture runs as fast as the trained one), the cache that shares a measurement
between identical deployments, and the bound that keeps a too-slow trial from being trained."""

from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path
from typing import Any

import pytest

from stiltsearch.trainables.checkpoint import TrialCheckpoint
from stiltsearch.trainables.outcome import INFEASIBLE, Outcome, classify
from stiltsearch.trainables.params import TrialParams
from stiltsearch.trainables.pipeline import run_trial
from stiltsearch.trainables.settings import MeterSettings, TrialSettings
from stiltsearch.trainables.trialdir import read_ledger

PARAMS = TrialParams(intermediate_tasks=("toy_mnli",), intermediate_lr=1e-3, target_lr=1e-3, layers_kept=2,
                     max_seq_length=64)


def settings(model: str, cache: Path, **overrides: Any) -> TrialSettings:
    values: dict[str, Any] = {"intermediate_steps": 30, "target_steps": 30, "batch_size": 16,
                              "meter": MeterSettings(repeats=5, max_sequences=128, reference=True)}
    return TrialSettings(model=model, target_tasks=("toy_xnli", "toy_tatoeba"), cache_dir=str(cache),
                         **(values | overrides))


def test_the_speed_measured_before_training_is_the_trained_models(tiny_model: str, tmp_path: Path) -> None:
    """The premise: what a trial measures before training (phase-1 weights, untrained head) runs at
    the speed of what it trained, measured side by side with the drift-free relative speed."""
    import torch

    from stiltsearch.trainables.deploy import build_encoder
    from stiltsearch.trainables.model import MultiTaskModel, load_tokenizer, portable
    from stiltsearch.trainables.pipeline import measure_here, throughput_workload

    base = settings(tiny_model, tmp_path / "cache")
    directory = tmp_path / "0000"
    metrics = run_trial(base, PARAMS, lambda _: None, TrialCheckpoint(directory))
    assert metrics["throughput/cache"] == "measured" and metrics["relative_speed"] > 0
    tasks = [base.task(name) for name in base.target_tasks]
    workload = throughput_workload(base, PARAMS, tasks, load_tokenizer(tiny_model))
    trained = TrialCheckpoint(directory).load_model()
    assert trained is not None
    untrained = portable(MultiTaskModel(build_encoder(tiny_model, PARAMS), [tasks[0]]))
    torch.set_num_threads(1)
    before, after = [], []
    for _ in range(3):  # interleaved: both in the same spells of this machine
        before.append(measure_here(untrained, PARAMS, "toy_xnli", workload, base.meter).relative_speed)
        after.append(measure_here(trained, PARAMS, "toy_xnli", workload, base.meter).relative_speed)
    ratio = statistics.median(before) / statistics.median(after)
    print(f"relative speed before / after training: {ratio:.3f} ({before} vs {after})")
    assert 0.9 < ratio < 1.1  # the meter's spread across measurements is ~2.5 % (docs/benchmarks.md)


def test_identical_deployments_share_one_measurement(tiny_model: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = run_trial(settings(tiny_model, cache, target_steps=5), PARAMS, lambda _: None)
    # other training, same deployment: the speed is the first trial's, to the last digit
    other = dataclasses.replace(settings(tiny_model, cache, target_steps=5), seed=1)
    second = run_trial(other, PARAMS.replace(target_lr=5e-4, train_languages=("xa",)), lambda _: None)
    assert (first["throughput/cache"], second["throughput/cache"]) == ("measured", "cache-hit")
    assert second["tokens_per_sec"] == first["tokens_per_sec"] and second["throughput/key"] == first["throughput/key"]
    # another deployment knob: another measurement
    third = run_trial(settings(tiny_model, cache, target_steps=5), PARAMS.replace(max_seq_length=32), lambda _: None)
    assert third["throughput/cache"] == "measured" and third["throughput/key"] != first["throughput/key"]


@pytest.mark.parametrize("bound", [{"tokens_per_sec": (1e12, None)}, {"latency_ms": (None, 1e-6)}])
def test_a_trial_whose_speed_misses_a_bound_is_never_trained(tiny_model: str, tmp_path: Path, bound: dict) -> None:
    reports: list[dict[str, Any]] = []
    directory = tmp_path / "0003"
    metrics = run_trial(settings(tiny_model, tmp_path / "cache", bounds=bound), PARAMS, reports.append,
                        TrialCheckpoint(directory))
    name = next(iter(bound))
    assert metrics[INFEASIBLE].startswith(f"{name} ") and metrics["trial/constraint_violation"] > 0
    assert read_ledger(directory) == ["attempt started", "speed measured", "not trained: infeasible", "result saved"]
    assert not any(key.startswith(("phase2/", "phase3/", "eval/")) for key in metrics)
    assert [m["phase"] for m in reports] == [3]
    assert classify(metrics, ["xtreme_score", name]) is Outcome.INFEASIBLE


def test_a_trial_inside_its_bounds_trains_and_says_it_is_feasible(tiny_model: str, tmp_path: Path) -> None:
    metrics = run_trial(settings(tiny_model, tmp_path / "cache", target_steps=5, bounds={"tokens_per_sec": (1.0, None)}),
                        PARAMS, lambda _: None)
    assert INFEASIBLE not in metrics and metrics["trial/constraint_violation"] == 0.0
    assert "eval/toy_xnli" in metrics and classify(metrics, ["xtreme_score", "tokens_per_sec"]) is Outcome.COMPLETE
