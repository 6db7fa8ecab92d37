from __future__ import annotations

import optuna
import pytest

from stiltsearch.spaces import SpaceSpec, baseline_point, stilts_space

SPEC = SpaceSpec(intermediate_tasks=("toy_mnli", "toy_ccg"), languages=("xa", "xb"), intermediate_lr=(1e-4, 1e-3),
                 target_lr=(1e-4, 1e-3), layers_kept=(1, 2, 4), max_seq_length=(16, 128), precision=("fp32", "bf16"))


def test_baseline_point_is_the_empty_subset_in_english_at_full_size() -> None:
    params = stilts_space(optuna.trial.FixedTrial(baseline_point(SPEC)), SPEC)
    assert params["intermediate_tasks"] == () and params["train_languages"] == ()
    assert "intermediate_lr" not in params  # no phase 2, no phase-2 learning rate
    assert params["layers_kept"] == 4 and params["max_seq_length"] == 128 and params["precision"] == "fp32"
    assert params["target_lr"] == pytest.approx((1e-4 * 1e-3) ** 0.5)


def test_chosen_tasks_and_languages_come_back_in_spec_order_with_an_intermediate_lr() -> None:
    fixed = {**baseline_point(SPEC), "use_toy_ccg": True, "use_toy_mnli": True, "lang_xb": True,
             "intermediate_lr": 2e-4, "layers_kept": 2, "precision": "bf16"}
    params = stilts_space(optuna.trial.FixedTrial(fixed), SPEC)
    assert params["intermediate_tasks"] == ("toy_mnli", "toy_ccg")
    assert params["train_languages"] == ("xb",)
    assert params["intermediate_lr"] == 2e-4 and params["layers_kept"] == 2 and params["precision"] == "bf16"


def test_sampled_values_stay_inside_the_declared_ranges() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen_subsets = set()
    for _ in range(40):
        trial = study.ask()
        params = stilts_space(trial, SPEC)
        seen_subsets.add(params["intermediate_tasks"])
        assert set(params["intermediate_tasks"]) <= set(SPEC.intermediate_tasks)
        assert 1e-4 <= params["target_lr"] <= 1e-3
        assert ("intermediate_lr" in params) == bool(params["intermediate_tasks"])
        assert params["layers_kept"] in SPEC.layers_kept and params["max_seq_length"] in SPEC.max_seq_length
        study.tell(trial, 0.0)
    assert len(seen_subsets) == 4  # all 2**2 subsets of two tasks are reachable, the empty one included


def test_with_two_models_the_model_is_a_knob_and_layers_kept_respects_its_depth() -> None:
    spec = SpaceSpec(**{**SPEC.__dict__, "models": {"toy-2l": 2, "toy-4l": 4}})
    params = stilts_space(optuna.trial.FixedTrial(baseline_point(spec)), spec)
    assert params["model"] == "toy-4l" and params["layers_kept"] == 4  # the baseline: the largest, whole
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(40):
        trial = study.ask()
        params = stilts_space(trial, spec)
        seen.add((params["model"], params["layers_kept"]))
        assert params["layers_kept"] <= spec.models[params["model"]]
        study.tell(trial, 0.0)
    assert seen == {("toy-2l", 1), ("toy-2l", 2), ("toy-4l", 1), ("toy-4l", 2), ("toy-4l", 4)}
