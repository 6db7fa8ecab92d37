"""The study as searcher and source of truth, on a real SQLite study (no Ray cluster needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from stiltsearch.search.study.core import ERROR_ATTR, open_study, reconcile
from stiltsearch.search.study.searcher import StudySearcher
from stiltsearch.trainables.checkpoint import TrialCheckpoint

OBJECTIVES, DIRECTIONS = ["score", "speed"], ["max", "max"]


def space(trial: optuna.Trial) -> dict[str, Any]:
    return {"x": trial.suggest_float("x", 0.0, 1.0), "tasks": ["a"] if trial.suggest_categorical("a", [0, 1]) else []}


def searcher(tmp_path: Path, n: int, told: list[int] | None = None) -> StudySearcher:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(f"sqlite:///{tmp_path / 'optuna.db'}", "s", DIRECTIONS, {"x": 0.5, "a": 0})
    return StudySearcher(study, space, OBJECTIVES, DIRECTIONS, n, tmp_path / "trials",
                         None if told is None else told.append)


def test_first_trial_is_the_enqueued_baseline_and_the_searcher_stops_at_n(tmp_path: Path) -> None:
    told: list[int] = []
    s = searcher(tmp_path, 3, told)
    configs = [s.suggest(f"t{i}") for i in range(3)]
    assert configs[0] == {"x": 0.5, "tasks": [], "trial_number": 0}
    assert [c["trial_number"] for c in configs] == [0, 1, 2]
    assert s.suggest("t3") == "FINISHED"
    for i in range(3):
        s.on_trial_complete(f"t{i}", {"score": float(i), "speed": 1.0})
    assert told == [0, 1, 2] and s.suggest("t4") == "FINISHED"
    assert s.study.trials[1].user_attrs["config"]["x"] == configs[1]["x"]


def test_owed_trials_come_back_first_with_their_own_config_then_new_ones_up_to_n(tmp_path: Path) -> None:
    first = searcher(tmp_path, 4)
    configs = {i: first.suggest(f"t{i}") for i in range(3)}
    first.on_trial_complete("t0", {"score": 1.0, "speed": 1.0})
    first.on_trial_complete("t1", {"phase": 2})  # stopped by Ctrl-C: not finished, stays owed
    # a new driver session on the same study: trials 1 and 2 are owed, one new trial is left
    second = searcher(tmp_path, 4)
    assert second.owed == [1, 2] and second.remaining == 3
    again = [second.suggest(f"u{i}") for i in range(4)]
    assert again[0] == configs[1] and again[1] == configs[2]
    assert again[2]["trial_number"] == 3 and again[3] == "FINISHED"


def test_a_failed_trial_is_told_fail_with_the_reason_from_its_ledger(tmp_path: Path) -> None:
    s = searcher(tmp_path, 2)
    s.suggest("t0")
    ckpt = TrialCheckpoint(tmp_path / "trials" / "0000")
    ckpt.log("attempt started")
    ckpt.log("failed: ValueError: model: 'x' is not one of this search's models")
    s.on_trial_complete("t0", error=True)
    trial = s.study.trials[0]
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs[ERROR_ATTR] == "ValueError: model: 'x' is not one of this search's models"
    s.suggest("t1")
    TrialCheckpoint(tmp_path / "trials" / "0001").log("phase2 trained")
    s.on_trial_complete("t1", error=True)
    assert s.study.trials[1].user_attrs[ERROR_ATTR].startswith("worker process died (no Python error); last event: phase2")


def test_reconcile_tells_trials_that_finished_while_no_driver_listened(tmp_path: Path) -> None:
    s = searcher(tmp_path, 3)
    for i in range(3):
        s.suggest(f"t{i}")
    (tmp_path / "trials" / "0001").mkdir(parents=True)
    (tmp_path / "trials" / "0001" / "result.json").write_text(json.dumps({"score": 3.0, "speed": 4.0}))
    assert reconcile(s.study, tmp_path / "trials", OBJECTIVES) == [1]
    states = [t.state for t in s.study.trials]
    assert states == [TrialState.RUNNING, TrialState.COMPLETE, TrialState.RUNNING]
    assert s.study.trials[1].values == [3.0, 4.0]


def test_stray_processes_of_a_search_are_found_and_stopped(tmp_path: Path) -> None:
    from stiltsearch.search.launch.raysession import MARKER_ENV, stop_stray_processes, stray_processes

    env = {**os.environ, MARKER_ENV: str(tmp_path)}
    stray = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             env={**os.environ, MARKER_ENV: str(tmp_path / "other")})
    try:
        deadline = time.monotonic() + 10
        while not stray_processes(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p.pid for p in stray_processes(tmp_path)] == [stray.pid]
        assert stop_stray_processes(tmp_path) == 1
        import psutil

        assert not psutil.pid_exists(stray.pid) and other.poll() is None
    finally:
        other.kill()
        stray.kill()


def test_a_second_driver_on_the_same_search_is_refused(tmp_path: Path) -> None:
    from stiltsearch.search.layout import SearchError, driver_lock

    with driver_lock(tmp_path), pytest.raises(SearchError, match=f"another driver \\(pid {os.getpid()}\\)"):
        with driver_lock(tmp_path):
            pass
    with driver_lock(tmp_path):  # released with its holder
        pass


def test_start_up_trials_follow_the_balanced_design_then_the_sampler(tmp_path: Path) -> None:
    from stiltsearch.search.config.compose import space_spec
    from stiltsearch.search.config.schema import SearchConfig
    from stiltsearch.spaces import baseline_point, stilts_space
    from stiltsearch.spaces.startup import balanced_rows

    spec = space_spec(SearchConfig())
    design = balanced_rows(spec, 5, seed=0)
    assert design == balanced_rows(spec, 5, seed=0) != balanced_rows(spec, 5, seed=1)  # seeded
    factors = list(design[0])
    assert len(factors) == len(spec["intermediate_tasks"]) + len(spec["languages"])
    assert all(sum(row[f] for row in design) in (2, 3) for f in factors)  # each in half of the rows

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(f"sqlite:///{tmp_path / 'optuna.db'}", "s", DIRECTIONS, baseline_point(spec))
    s = StudySearcher(study, lambda t: stilts_space(t, spec), OBJECTIVES, DIRECTIONS, 8, tmp_path / "trials",
                      design=design)
    configs = [s.suggest(f"t{i}") for i in range(7)]
    assert configs[0]["intermediate_tasks"] == () and configs[0]["train_languages"] == ()  # the baseline
    for row, trial in zip(design, study.get_trials()[1:6]):
        assert {k: trial.params[k] for k in row} == row
    assert {k: study.get_trials()[6].params[k] for k in factors} not in design  # then the sampler's own
