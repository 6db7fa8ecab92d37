"""A trial over 2 workers: a Ray Train TorchTrainer inside the trial, DeepSpeed ZeRO-2 over gloo, on a
real local Ray; compared with the same trial on one worker."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from stiltsearch.trainables.checkpoint import TrialCheckpoint, read_ledger
from stiltsearch.trainables.engine import EngineSettings
from stiltsearch.trainables.pipeline import TrialParams, TrialSettings, run_trial
from stiltsearch.trainables.throughput import MeterSettings

pytestmark = pytest.mark.cluster

PARAMS = TrialParams(intermediate_tasks=("toy_mnli",), intermediate_lr=1e-3, target_lr=1e-3, layers_kept=2,
                     max_seq_length=64)


@pytest.fixture(scope="module")
def runs(tiny_model: str, cache: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import ray

    from stiltsearch.trainables.distributed import run_distributed_trial

    base = TrialSettings(model=tiny_model, target_tasks=("toy_xnli", "toy_panx"), cache_dir=str(cache),
                         intermediate_steps=60, target_steps=60, batch_size=16, engine=EngineSettings(zero_stage=2),
                         meter=MeterSettings(repeats=2, max_sequences=128))
    one = run_trial(base, PARAMS, lambda m: None, TrialCheckpoint(tmp_path_factory.mktemp("one") / "0000"))
    directory = tmp_path_factory.mktemp("two") / "0000"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        two = run_distributed_trial(dataclasses.replace(base, workers=2), PARAMS, directory)
    finally:
        ray.shutdown()
    return {"one": one, "two": two, "dir": directory}


def test_two_workers_train_as_one_deepspeed_world_and_the_loss_goes_down(runs: dict) -> None:
    two = runs["two"]
    assert two["phase2/world_size"] == 2 and two["phase3/toy_xnli/world_size"] == 2
    assert runs["one"]["phase2/world_size"] == 1
    for prefix in ("phase2", "phase3/toy_xnli", "phase3/toy_panx"):
        assert two[f"{prefix}/loss_last"] < two[f"{prefix}/loss_first"], prefix


def test_two_workers_score_on_the_scale_of_one(runs: dict) -> None:
    """Twice the examples per step (each rank its own batches), so not the same numbers, but the
    same scale: both far above chance and within 15 points of each other."""
    one, two = runs["one"], runs["two"]
    print({k: (round(one[k], 2), round(two[k], 2)) for k in ("eval/toy_xnli", "eval/toy_panx", "xtreme_score",
                                                            "phase2/train_tokens_per_sec", "tokens_per_sec")})
    for task in ("toy_xnli", "toy_panx"):
        assert abs(one[f"eval/{task}"] - two[f"eval/{task}"]) < 15.0, (task, one[f"eval/{task}"], two[f"eval/{task}"])
    assert abs(one["xtreme_score"] - two["xtreme_score"]) < 10.0
    assert two["tokens_per_sec"] > 0 and two["throughput/device"]


def test_rank_0_alone_wrote_the_checkpoint_and_the_ledger(runs: dict) -> None:
    events = read_ledger(runs["dir"])
    assert events == ["attempt started", "phase2 trained", "phase3 toy_xnli trained", "phase3 toy_panx trained",
                      "throughput measured"]
    assert len({line.split(" ")[1] for line in (runs["dir"] / "phases.log").read_text().splitlines()}) == 1
