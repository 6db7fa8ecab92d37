"""The real path on a CUDA device (skipped without one; CI never has a GPU): every phase on the
trial's GPU, retrieval included; memory given back after every phase; a trial's end the same with
rungs as without (the GPU's random state forked too); fp16 serving with a retrieval target.
``benchmarks/gpu_check.py`` prints the figures at XLM-R-Large shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from stiltsearch.trainables import target
from stiltsearch.trainables.params import TrialParams
from stiltsearch.trainables.pipeline import run_trial
from stiltsearch.trainables.settings import MeterSettings, TrialSettings

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

TARGETS = ("toy_xnli", "toy_panx", "toy_tatoeba")
PARAMS = TrialParams(intermediate_tasks=("toy_mnli",), intermediate_lr=1e-3, train_languages=("xa",), target_lr=1e-3,
                     layers_kept=2, max_seq_length=32, precision="bf16")


def _settings(model: str, cache: Path, **overrides: Any) -> TrialSettings:
    values: dict[str, Any] = {"intermediate_steps": 18, "target_steps": 18, "batch_size": 16, "precision": "bf16",
                              "meter": MeterSettings(warmup=1, repeats=2, max_sequences=64)}
    return TrialSettings(model=model, target_tasks=TARGETS, cache_dir=str(cache), **(values | overrides))


def test_every_phase_evaluation_and_retrieval_run_on_the_trials_gpu(tiny_model: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, set[str]] = {}
    for name in ("embed", "predict"):
        original = getattr(target, name)

        def spy(model: Any, *args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            seen.setdefault(_name, set()).add(next(model.parameters()).device.type)
            return _original(model, *args, **kwargs)

        monkeypatch.setattr(target, name, spy)
    metrics = run_trial(_settings(tiny_model, tmp_path), PARAMS, lambda _: None)
    assert seen == {"embed": {"cuda"}, "predict": {"cuda"}}
    assert metrics["throughput/device"].startswith("cuda")


def test_gpu_memory_is_flat_across_phases(tiny_model: str, tmp_path: Path) -> None:
    after: list[int] = []
    torch.cuda.empty_cache()
    start = torch.cuda.memory_allocated()
    run_trial(_settings(tiny_model, tmp_path, rungs=(1 / 3,)), PARAMS, lambda _: after.append(torch.cuda.memory_allocated()))
    growth = [a - after[0] for a in after]
    assert max(growth) <= 0.10 * max(after[0] - start, 1) + 2 ** 20, (start, after)


def test_a_trials_end_is_the_same_with_rungs_and_without_on_cuda(tiny_model: str, tmp_path: Path) -> None:
    plain = run_trial(_settings(tiny_model, tmp_path / "a", precision="fp32"), PARAMS, lambda _: None)
    rungs = run_trial(_settings(tiny_model, tmp_path / "b", precision="fp32", rungs=(1 / 3,)), PARAMS, lambda _: None)
    for key in ("phase2/loss_last", "phase3/toy_xnli/loss_last", "eval/toy_xnli", "eval/toy_tatoeba"):
        assert plain[key] == pytest.approx(rungs[key], rel=1e-5), key


def test_fp16_serving_with_a_retrieval_target(tiny_model: str, tmp_path: Path) -> None:
    metrics = run_trial(_settings(tiny_model, tmp_path), PARAMS.replace(precision="fp16"), lambda _: None)
    assert 0 <= metrics["eval/toy_tatoeba"] <= 100
