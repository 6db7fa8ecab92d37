"""Multi-fidelity trials: a rung is a prefix of the full run, so a trial that goes on ends exactly
as one that never stopped to be scored (real DeepSpeed training on the tiny model, no Ray)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch

from stiltsearch.trainables import trialdir
from stiltsearch.trainables.checkpoint import TrialCheckpoint
from stiltsearch.trainables.engine import TrainingRun, train
from stiltsearch.trainables.objectives import rung_values
from stiltsearch.trainables.params import TrialParams
from stiltsearch.trainables.pipeline import run_trial
from stiltsearch.trainables.settings import EngineSettings, MeterSettings, TrialSettings
from stiltsearch.trainables.trialdir import read_ledger

PARAMS = TrialParams(intermediate_tasks=("toy_mnli", "toy_squad2"), intermediate_lr=1e-3, train_languages=("xa",),
                     target_lr=1e-3, layers_kept=2, max_seq_length=32)
TARGETS = ("toy_xnli", "toy_panx", "toy_tatoeba")
OBJECTIVES = ["xtreme_score", "tokens_per_sec"]


def settings(model: str, cache: Path, **overrides: Any) -> TrialSettings:
    values: dict[str, Any] = {"intermediate_steps": 36, "target_steps": 36, "batch_size": 16,
                              "meter": MeterSettings(repeats=2, max_sequences=64)}
    return TrialSettings(model=model, target_tasks=TARGETS, cache_dir=str(cache), **(values | overrides))


def _batches(seed: int) -> Any:
    generator = torch.Generator().manual_seed(seed)
    while True:
        x = torch.randn(8, 4, generator=generator)
        yield {"x": x, "y": x.sum(1, keepdim=True), "attention_mask": torch.ones(8, 4)}


class _Regression(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.mse_loss(self.net(x), y)


def test_training_in_segments_is_the_run_in_one_go_step_for_step() -> None:
    torch.manual_seed(0)
    whole, parts = _Regression(), _Regression()
    parts.load_state_dict(whole.state_dict())
    log = train(whole, _batches(1), steps=30, lr=1e-2, batch_size=8, settings=EngineSettings())
    run = TrainingRun(parts, _batches(1), steps=30, lr=1e-2, batch_size=8, settings=EngineSettings())
    for until in (4, 11, 30):  # a rung at 4 and 11 steps, then the end
        run.advance(until)
        assert run.done == until
    segmented = run.close()
    for a, b in zip(whole.parameters(), parts.parameters()):
        assert torch.equal(a, b)
    assert segmented.losses == pytest.approx(log.losses) and len(segmented.losses) == 3  # windows of 10
    # the schedule spans the full run: at a rung the learning rate has not decayed to 0 yet
    with pytest.raises(ValueError, match="steps must be positive"):
        TrainingRun(parts, _batches(1), steps=0, lr=1e-2, batch_size=8, settings=EngineSettings())


@pytest.fixture(scope="module")
def rung_trial(tiny_model: str, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """The same trial twice, each with a cache of its own: without rungs, and with rungs at 1/4, 1/2."""
    plain: list[dict[str, Any]] = []
    plain_end = run_trial(settings(tiny_model, tmp_path_factory.mktemp("plain")), PARAMS, plain.append)
    reports: list[dict[str, Any]] = []
    directory = tmp_path_factory.mktemp("rungs") / "0003"
    cache = tmp_path_factory.mktemp("rungs-cache")
    end = run_trial(settings(tiny_model, cache, rungs=(0.25, 0.5)), PARAMS, reports.append, TrialCheckpoint(directory))
    return plain_end, end, reports, directory, cache


def test_a_trial_reports_at_each_rung_scored_as_at_its_end(rung_trial: tuple) -> None:
    _, end, reports, directory, _ = rung_trial
    at = [rung_values(r, OBJECTIVES) for r in reports]
    rungs = [a for a in at if a is not None]
    assert [r for r, _ in rungs] == [0, 1]
    for rung, (score, speed) in rungs:
        assert 0 <= score <= 100 and speed == end["tokens_per_sec"]  # speed known before training
        assert reports[1 + rung][f"rung/{rung}/budget"] == (0.25, 0.5)[rung]
        for task in TARGETS:  # every target's score, on the same languages as at the end
            assert f"rung/{rung}/eval/{task}" in reports[1 + rung]
    assert "xtreme_score" not in reports[1]  # a rung's values never take the final names
    assert read_ledger(directory) == ["attempt started", "speed measured", "rung 0 scored", "rung 1 scored",
                                      "phase2 trained", *(f"phase3 {t} trained" for t in TARGETS), "result saved"]


def test_a_trial_that_goes_on_ends_exactly_as_one_never_scored_on_the_way(rung_trial: tuple) -> None:
    plain_end, end, _, _, _ = rung_trial
    assert end["phase2/loss_curve"] == plain_end["phase2/loss_curve"]
    for task in TARGETS:
        assert end[f"eval/{task}"] == plain_end[f"eval/{task}"]
    assert end["xtreme_score"] == plain_end["xtreme_score"]


def test_the_full_phase2_is_cached_as_a_one_go_run_and_rung_scratch_is_removed(rung_trial: tuple) -> None:
    _, end, _, _, cache = rung_trial
    assert end["phase2/cache"] == "miss"
    assert (cache / "phase2" / end["phase2/key"] / "phase2.json").exists()
    assert not [p for p in (cache / "phase2").iterdir() if p.name.startswith("phase2-")]  # scratch gone


def test_a_restarted_trial_does_not_score_again_a_rung_it_passed(rung_trial: tuple, tiny_model: str,
                                                                 tmp_path: Path) -> None:
    _, end, _, _, _ = rung_trial
    directory = tmp_path / "0004"
    trialdir.record_rung(directory, 0, [10.0, 1000.0], goes_on=True)  # the scheduler let it pass rung 0
    again: list[dict[str, Any]] = []
    cached = settings(tiny_model, tmp_path / "cache", rungs=(0.25, 0.5))
    metrics = run_trial(cached, PARAMS, again.append, TrialCheckpoint(directory))
    assert [a[0] for a in (rung_values(r, OBJECTIVES) for r in again) if a is not None] == [1]
    assert "rung 0 passed before" in read_ledger(directory) and "rung 0 scored" not in read_ledger(directory)
    assert metrics["xtreme_score"] == end["xtreme_score"]  # and still the same trial at its end
    with pytest.raises(ValueError, match="rungs: give increasing budget fractions"):
        dataclasses.replace(cached, rungs=(0.5, 0.25))
