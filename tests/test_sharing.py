"""Phase-2 sharing (search/study/sharing.py) on a real SQLite study over the real STILTs space: which
trials reuse a trained phase 2, whose, and that the reuse is a phase-2 cache hit by key."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import optuna
import pytest

from stiltsearch.search.config.compose import space_spec
from stiltsearch.search.config.schema import SearchConfig
from stiltsearch.search.study import sharing
from stiltsearch.search.study.core import SHARED_ATTR
from stiltsearch.search.study.core import open_study
from stiltsearch.search.study.searcher import StudySearcher
from stiltsearch.spaces import baseline_point, stilts_space
from stiltsearch.spaces.knobs import KNOBS, PHASE2_KNOBS
from stiltsearch.trainables.params import NUMBER_KEY, TrialParams
from stiltsearch.trainables.phase2 import phase2_key
from stiltsearch.trainables.settings import TrialSettings

CFG = SearchConfig()
SPEC = space_spec(CFG)
OBJECTIVES, DIRECTIONS = ["xtreme_score", "tokens_per_sec"], ["max", "max"]


def _searcher(tmp_path: Path, n: int, share: float) -> StudySearcher:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(f"sqlite:///{tmp_path / 'optuna.db'}", "s", DIRECTIONS, baseline_point(SPEC))
    study.sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=3)
    return StudySearcher(study, functools.partial(stilts_space, spec=SPEC), OBJECTIVES, DIRECTIONS, n,
                         tmp_path / "trials", share_phase2=share)


def _settings(tmp_path: Path) -> TrialSettings:
    return TrialSettings(model="/m/toy-4l", models={name: f"/m/{name}" for name in SPEC.models},
                         target_tasks=CFG.target_tasks, cache_dir=str(tmp_path))


def _phase2(config: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(config.get(k.name) for k in PHASE2_KNOBS)


@pytest.mark.parametrize(("share", "shares_by_ask"), [
    (0.5, [0, 0, 1, 1, 2, 2, 3, 3]),  # asked before: 0 1 2 3 4 5 6 7 trials
    (0.25, [0, 0, 0, 0, 1, 1, 1, 1]),
    (0.0, [0] * 8),
])
def test_a_share_falls_due_at_the_fraction_of_trials_asked(share: float, shares_by_ask: list[int]) -> None:
    shared = 0
    seen = []
    for asked in range(8):
        if sharing.due(asked, shared, share):
            shared += 1
        seen.append(shared)
    assert seen == shares_by_ask


def test_shared_trials_copy_the_best_phase_2_and_the_sampler_chooses_the_rest(tmp_path: Path) -> None:
    s = _searcher(tmp_path, 12, 0.5)
    settings = _settings(tmp_path)
    configs: dict[int, dict[str, Any]] = {}
    for i in range(12):
        config = s.suggest(f"t{i}")
        assert isinstance(config, dict)
        number = config[NUMBER_KEY]
        configs[number] = config
        # finish at once: more tasks score higher, more layers run slower (a made-up trade-off)
        size = len(config.get("intermediate_tasks", ())) + config.get("layers_kept", 1)
        s.on_trial_complete(f"t{i}", {"xtreme_score": 50.0 + size, "tokens_per_sec": 1e5 / size})
    trials = {t.number: t for t in s.study.get_trials()}
    shared = {n: int(t.user_attrs[SHARED_ATTR]) for n, t in trials.items() if SHARED_ATTR in t.user_attrs}
    # half of the trials asked before each one: due before trials 2, 4, 6, 8 and 10
    assert sorted(shared) == [2, 4, 6, 8, 10], shared
    for number, source in shared.items():
        assert source < number and configs[source]["intermediate_tasks"]
        assert _phase2(configs[number]) == _phase2(configs[source])
        params = TrialParams.from_config(configs[number], ignore=(NUMBER_KEY,))
        assert phase2_key(settings, params) == phase2_key(settings, TrialParams.from_config(configs[source], ignore=(NUMBER_KEY,)))
    # what is not phase 2 is the sampler's: the shared trials do not all copy their source's deployment
    deployment = [k.name for k in KNOBS if not k.phase2]
    assert any(configs[n].get(k) != configs[src].get(k) for n, src in shared.items() for k in deployment)


def test_the_source_is_the_best_ranked_phase_2_trial_shared_the_fewest_times(tmp_path: Path) -> None:
    study = _searcher(tmp_path, 1, 0.0).study
    def add(number_tasks: tuple[str, ...], values: list[float], shared_from: int | None = None) -> int:
        trial = study.ask()
        trial.set_user_attr("config", {"intermediate_tasks": list(number_tasks)})
        if shared_from is not None:
            trial.set_user_attr(SHARED_ATTR, shared_from)
        study.tell(trial, values)
        return trial.number

    baseline = add((), [90.0, 90.0])  # the front alone, but it has no phase 2
    a = add(("toy_mnli",), [80.0, 10.0])  # rank 1: the baseline dominates it
    b = add(("toy_ccg",), [10.0, 80.0])  # rank 1 too
    assert sharing.source(study, DIRECTIONS) == a  # equal rank, unshared: a has the lower number
    add(("toy_mnli",), [1.0, 1.0], shared_from=a)  # a shared once: b is next
    assert sharing.source(study, DIRECTIONS) == b
    worse = add(("toy_qqp",), [5.0, 5.0])
    assert sharing.source(study, DIRECTIONS) == b  # a lower rank loses to the better-ranked ones
    assert baseline == 0 and worse > b


def test_no_source_yet_defers_the_share_to_the_next_trial(tmp_path: Path) -> None:
    s = _searcher(tmp_path, 6, 0.5)
    first = [s.suggest(f"t{i}") for i in range(3)]  # 0 baseline, 1 and 2 running: nothing finished yet
    assert all(SHARED_ATTR not in t.user_attrs for t in s.study.get_trials())
    s.on_trial_complete("t1", {"xtreme_score": 60.0, "tokens_per_sec": 1000.0})
    nxt = s.suggest("t3")
    assert isinstance(nxt, dict) and isinstance(first[1], dict)
    assert first[1]["intermediate_tasks"]  # the seeded draw of trial 1 has a phase 2, so the due share goes to trial 3
    assert s.study.trials[3].user_attrs[SHARED_ATTR] == 1
    assert _phase2(nxt) == _phase2(first[1])


def test_a_resumed_searcher_counts_its_shares_from_the_study(tmp_path: Path) -> None:
    s = _searcher(tmp_path, 8, 0.5)
    for i in range(5):
        s.suggest(f"t{i}")
        s.on_trial_complete(f"t{i}", {"xtreme_score": 50.0 + i, "tokens_per_sec": 1000.0 - i})
    again = _searcher(tmp_path, 8, 0.5)
    assert (again.asked, again.shared) == (s.asked, s.shared) and s.shared >= 1


def test_the_phase_2_knobs_are_exactly_what_the_phase_2_key_reads(tmp_path: Path) -> None:
    """Each declared knob, changed alone, changes the phase-2 key if and only if it says ``phase2``
    (a new knob must get a row here)."""
    other = {"intermediate_tasks": ("toy_ccg",), "train_languages": ("xa",), "intermediate_lr": 2e-4,
             "target_lr": 2e-4, "model": "toy-2l", "layers_kept": 1, "max_seq_length": 16, "precision": "bf16",
             "inference_batch_size": 8, "attention": "eager", "compile": True}
    assert set(other) == {k.name for k in KNOBS}
    settings = _settings(tmp_path)
    base = TrialParams(intermediate_tasks=("toy_mnli",), intermediate_lr=1e-4, model="toy-4l")
    for knob in KNOBS:
        changed = base.replace(**{knob.name: other[knob.name]})
        assert (phase2_key(settings, changed) != phase2_key(settings, base)) == knob.phase2, knob.name
