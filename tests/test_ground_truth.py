"""The toy benchmark's designed ground truth (docs/toy-world.md), on the default model and
the default search's budgets: three seeds, every effect larger than two standard errors.

Slow: 21 fine-tuning runs (about 8 minutes on 2 cores), plus phase 1 if it is not cached yet.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import pytest

from stiltsearch.trainables.probe import (
    ADDED_LANGUAGE,
    HELPFUL,
    UNRELATED,
    Outcome,
    ground_truth,
    mean_and_se,
    synthetic_mean,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

SEEDS = (0, 1, 2)
CHANCE = 100 / 3  # three NLI labels


@pytest.fixture(scope="module")
def runs() -> dict[str, list[Outcome]]:
    """{probe label: one outcome per seed}, on the default search's largest toy model."""
    from stiltsearch.search.config.compose import largest_model_settings
    from stiltsearch.search.config.schema import SearchConfig
    from stiltsearch.search.layout import cache_dir

    return ground_truth(largest_model_settings(SearchConfig(), cache_dir()), SEEDS, workers=2)


def effect(runs: dict[str, list[Outcome]], label: str, key: Callable[[Outcome], float]) -> tuple[float, float]:
    """Mean and standard error of (probe - baseline), paired by seed."""
    return mean_and_se([key(o) - key(b) for o, b in zip(runs[label], runs["baseline"], strict=True)])


def test_1_the_target_is_learnable_and_pretraining_matters(runs: dict[str, list[Outcome]]) -> None:
    english = [o.scores["en"] for o in runs["baseline"]]
    assert statistics.fmean(english) >= 85.0
    gain, se = effect(runs, "random init", lambda o: -o.scores["en"])  # pretrained minus random init
    assert gain > 2 * se and gain > 0


def test_2_zero_shot_transfer_works_and_degrades_with_distance(runs: dict[str, list[Outcome]]) -> None:
    from stiltsearch.trainables.toyworld import LANGUAGES, SYNTHETIC_LANGUAGES

    by_distance = sorted(SYNTHETIC_LANGUAGES, key=lambda lang: LANGUAGES[lang].distance)
    stats = {lang: mean_and_se([o.scores[lang] for o in runs["baseline"]]) for lang in by_distance}
    closest, farthest = by_distance[0], by_distance[-1]
    assert stats[closest][0] - CHANCE >= 15 and stats[closest][0] - CHANCE > 2 * stats[closest][1]
    for lang in by_distance:
        mean, se = stats[lang]
        assert mean - CHANCE >= 5 and mean - CHANCE > 2 * se, f"{lang}: {mean:.1f} ± {se:.1f}"
    means = [stats[lang][0] for lang in by_distance]
    assert means == sorted(means, reverse=True), dict(zip(by_distance, means))
    gap, se = mean_and_se([o.scores[closest] - o.scores[farthest] for o in runs["baseline"]])
    assert gap > 2 * se


def test_3_the_helpful_task_helps_and_the_unrelated_one_does_not(runs: dict[str, list[Outcome]]) -> None:
    gain, se = effect(runs, f"+{HELPFUL}", lambda o: synthetic_mean(o.scores))
    assert gain >= 3.0 and gain > 2 * se
    unrelated, _ = effect(runs, f"+{UNRELATED}", lambda o: synthetic_mean(o.scores))
    assert unrelated < 1.0
    difference, se = mean_and_se([synthetic_mean(h.scores) - synthetic_mean(u.scores) for h, u in
                                  zip(runs[f"+{HELPFUL}"], runs[f"+{UNRELATED}"], strict=True)])
    assert difference > 2 * se


def test_4_translate_train_data_helps_the_language_it_adds(runs: dict[str, list[Outcome]]) -> None:
    gain, se = effect(runs, f"+translate-train {ADDED_LANGUAGE}", lambda o: o.scores[ADDED_LANGUAGE])
    assert gain > 0 and gain > 2 * se


@pytest.mark.parametrize(("knob", "min_speedup"), [("1 layer", 2.0), ("length 16", 0.9)])
def test_5_deployment_knobs_trade_speed_for_score(runs: dict[str, list[Outcome]], knob: str, min_speedup: float) -> None:
    # Dropping 3 of 4 layers saves most of the work (measured 3.5x). Tokens/sec counts real tokens
    # only, so truncating the toy's ~25-token inputs to 16 saves little per token: its speedup is
    # within the meter's noise (1.07x in one run, 0.96-1.13x per seed in another), so only "not
    # slower beyond noise" is asserted for it; its cost in score is the robust half.
    speedup = [k.tokens_per_sec / b.tokens_per_sec for k, b in zip(runs[knob], runs["baseline"], strict=True)]
    assert statistics.median(speedup) > min_speedup, speedup
    loss, se = effect(runs, knob, lambda o: -o.scores["en"])
    assert loss > 0 and loss > 2 * se  # and, this far down, worse


# --- the same properties at the level of the objective the default search optimises -----------------
# Whole trials as the embedded search runs them (every target, tokens/sec measured; 15 trials, about
# 10 minutes on 2 cores): its objective non_english_nli, and xtreme_score beside it.


@pytest.fixture(scope="module")
def trials() -> dict[str, list[Outcome]]:
    from stiltsearch.search.config.compose import space_spec, trial_settings
    from stiltsearch.search.config.reading import load_config
    from stiltsearch.search.launch.models import resolve_models
    from stiltsearch.search.layout import cache_dir
    from stiltsearch.spaces import baseline_point
    from stiltsearch.trainables.probe import objective_ground_truth

    cfg = load_config(None)
    assert cfg.objective_names == ["non_english_nli", "tokens_per_sec"]
    settings = trial_settings(cfg, resolve_models(cfg, cache_dir()), cache_dir())
    base = baseline_point(space_spec(cfg))
    return objective_ground_truth(settings, base["model"], SEEDS, workers=2)


def metric(name: str) -> Callable[[Outcome], float]:
    return lambda o: o.metrics[name]


def test_6_on_the_default_objective_the_helpful_task_helps_and_the_unrelated_one_does_not(
        trials: dict[str, list[Outcome]]) -> None:
    gain, se = effect(trials, f"+{HELPFUL}", metric("non_english_nli"))
    assert gain >= 3.0 and gain > 2 * se, (gain, se)
    unrelated, _ = effect(trials, f"+{UNRELATED}", metric("non_english_nli"))
    assert unrelated < 1.0, unrelated


def test_7_on_the_default_objective_translate_train_data_helps_its_language(trials: dict[str, list[Outcome]]) -> None:
    label = f"+translate-train {ADDED_LANGUAGE}"
    # its NLI accuracy (measured +16.4 ± 3.4); the objective, the mean over four languages, moves
    # by a quarter of that less what the others lose (+1.1 ± 0.5): not asserted
    gain, se = effect(trials, label, metric(f"eval/toy_xnli/{ADDED_LANGUAGE}"))
    assert gain > 0 and gain > 2 * se, (gain, se)
    # and the XTREME score's view of that language: its mean over the targets that have it
    mean = lambda o: statistics.fmean(v for k, v in o.metrics.items()  # noqa: E731
                                      if k.startswith("eval/toy_") and k.endswith(f"/{ADDED_LANGUAGE}"))
    gain, se = effect(trials, label, mean)
    assert gain > 0 and gain > 2 * se, (gain, se)


def test_8_one_layer_kept_is_twice_as_fast_and_costs_both_scores(trials: dict[str, list[Outcome]]) -> None:
    speedup = [k.tokens_per_sec / b.tokens_per_sec for k, b in zip(trials["1 layer"], trials["baseline"], strict=True)]
    assert statistics.median(speedup) >= 2.0, speedup
    for name in ("non_english_nli", "xtreme_score"):
        loss, se = effect(trials, "1 layer", lambda o, name=name: -o.metrics[name])
        assert loss >= 5.0 and loss > 2 * se, (name, loss, se)
