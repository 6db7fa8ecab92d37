"""Resume anything, with real processes and real signals: one search, killed with SIGKILL while
trials run, resumed, stopped with Ctrl-C (SIGINT) while trials run, resumed, stopped with SIGTERM
(as a scheduler or `kill` stops it), resumed again to its end."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from searchproc import (
    TWO_TARGETS,
    count_events,
    finish,
    finished,
    in_flight_past_phase2,
    ledgers,
    search_dir,
    start,
    study_states,
    wait_for,
    write_config,
)

from stiltsearch.search.results.pareto import pareto_ranks

N = 6  # trials; the stops come after 1, 3 and 4 have finished
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> dict[str, Any]:
    from stiltsearch.search.launch.raysession import stray_processes

    out = tmp_path_factory.mktemp("resume")
    config = write_config(out, "resume", N, targets=TWO_TARGETS)
    seen: dict[str, Any] = {"out": out}

    # 1. run; SIGKILL the driver once 1 trial finished and another is past phase 2
    log = out / "run.log"
    proc = start(["run", str(config)], out, cache, log)
    wait_for("a finished trial and one in flight past phase 2", lambda: (
        sum(finished(e) for e in ledgers(search_dir(out, "resume")).values()) >= 1
        and any(in_flight_past_phase2(e) for e in ledgers(search_dir(out, "resume")).values())), proc, log)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    seen["killed_temp"] = _private_ray_dirs_of(proc.pid)  # the killed driver could not remove it
    directory = search_dir(out, "resume")
    seen["dir"] = directory
    seen["killed"] = {n: list(e) for n, e in ledgers(directory).items()}
    seen["states_after_kill"] = study_states(directory)
    seen["strays_after_kill"] = len(stray_processes(directory))  # Ray's own fate sharing may leave none

    # 2. resume; Ctrl-C once 3 trials finished and another is past phase 2
    seen["interrupt"] = _resume_and_stop(out, cache, directory, "resume1.log", 3, signal.SIGINT)
    seen["runs_after_interrupt"] = _runs(out)
    # 3. resume; SIGTERM once 4 trials finished and another is past phase 2
    seen["terminate"] = _resume_and_stop(out, cache, directory, "resume2.log", 4, signal.SIGTERM)

    # 4. resume to the end
    log = out / "resume3.log"
    proc = start(["resume", str(directory)], out, cache, log)
    seen["final_rc"] = finish(proc, log)
    seen["final_log"] = log.read_text()
    seen["strays_at_end"] = [p.pid for p in stray_processes(directory)]
    seen["killed_temp_left"] = [path for path in seen["killed_temp"] if path.exists()]
    seen["ledgers"] = ledgers(directory)
    return seen


def _private_ray_dirs_of(pid: int) -> list[Path]:
    import tempfile

    from stiltsearch.search.launch.raysession import OWNER_FILE, TEMP_PREFIX

    return [path for path in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*")
            if (path / OWNER_FILE).is_file() and (path / OWNER_FILE).read_text() == str(pid)]


def _resume_and_stop(out: Path, cache: Path, directory: Path, log_name: str, after: int, sig: int) -> dict[str, Any]:
    """`stiltsearch resume`, then ``sig`` once ``after`` trials finished and another is past phase 2."""
    from stiltsearch.search.launch.raysession import stray_processes

    log = out / log_name
    proc = start(["resume", str(directory)], out, cache, log)
    wait_for(f"{after} finished trials and one in flight", lambda: (
        sum(finished(e) for e in ledgers(directory).values()) >= after
        and any(in_flight_past_phase2(e) for e in ledgers(directory).values())), proc, log)
    proc.send_signal(sig)
    rc = finish(proc, log, timeout=120)
    return {"rc": rc, "log": log.read_text(), "strays": [p.pid for p in stray_processes(directory)],
            "ledgers": {n: list(e) for n, e in ledgers(directory).items()}}


def _runs(out: Path) -> tuple[Any, list, list]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out}/mlflow.db")
    experiment = client.get_experiment_by_name("resume")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    return (client, [r for r in runs if r.data.tags.get("stiltsearch.kind") == "search"],
            [r for r in runs if r.data.tags.get("stiltsearch.kind") == "trial"])


def test_the_kill_left_finished_and_in_flight_trials(story: dict) -> None:
    killed = story["killed"]
    assert sum(finished(e) for e in killed.values()) >= 1
    assert any(not finished(e) for e in killed.values())
    assert "RUNNING" in story["states_after_kill"].values()  # what a plain restore would have left as orphans


def test_the_search_ends_with_exactly_n_complete_trials_and_no_orphans(story: dict) -> None:
    assert story["final_rc"] == 0, story["final_log"][-3000:]
    states = study_states(story["dir"])
    assert sorted(states) == list(range(N))
    assert set(states.values()) == {"COMPLETE"}


def test_no_phase_ran_twice_in_any_trial(story: dict) -> None:
    """Each trial trained each phase once and was measured at most once, however often it was started."""
    for number, events in story["ledgers"].items():
        assert count_events(events, "result saved") == 1, (number, events)
        assert count_events(events, "speed measured") <= 1, (number, events)  # a later attempt restores or finds it
        trained = [e for e in events if e.endswith((" trained", "cache-hit", "skipped"))]
        assert len(trained) == len(set(trained)), (number, events)


def test_trials_in_flight_at_each_stop_continued_from_their_checkpoints(story: dict) -> None:
    """A trial stopped after phase 2 restores it on its next attempt instead of training it again.
    (A killed driver's workers may log a little more before they go; the next attempt is what counts.)"""
    resumed = 0
    for before in (story["killed"], story["interrupt"]["ledgers"], story["terminate"]["ledgers"]):
        for number, events in before.items():
            if in_flight_past_phase2(events):
                after = story["ledgers"][number][len(events):]
                following = after[after.index("attempt started"):] if "attempt started" in after else after
                assert following[:3] == ["attempt started", "speed restored", "phase2 restored"] or (
                    "result restored" in following), (number, after)
                resumed += 1
    assert resumed >= 1  # the SIGKILL came while one was past phase 2; after Ctrl-C it may have finished


def test_finished_trials_were_not_run_again(story: dict) -> None:
    for number, events in story["killed"].items():
        if finished(events):
            assert count_events(story["ledgers"][number], "attempt started") == 1, number


def test_ctrl_c_stopped_cleanly(story: dict) -> None:
    stop = story["interrupt"]
    assert stop["rc"] == 130, stop["log"][-3000:]
    assert "stiltsearch resume" in stop["log"]
    assert stop["strays"] == []  # Ray and every trial worker are gone
    _, parents, children = story["runs_after_interrupt"]
    assert [p.info.status for p in parents] == ["KILLED"]
    assert "RUNNING" not in {c.info.status for c in children}


def test_sigterm_stops_like_ctrl_c(story: dict) -> None:
    stop = story["terminate"]
    assert stop["rc"] == 130, stop["log"][-3000:]
    assert "stiltsearch resume" in stop["log"]
    assert stop["strays"] == []


def test_nothing_of_the_search_is_left_running_at_its_end(story: dict) -> None:
    assert story["strays_at_end"] == []
    # the SIGKILLed driver's private Ray dir (Ray's logs, the environment in them) is swept by the next session
    assert len(story["killed_temp"]) == 1 and story["killed_temp_left"] == []
    print(f"processes left by the killed driver: {story['strays_after_kill']}")


def test_resumed_sessions_sample_new_configurations(story: dict) -> None:
    """Re-seeding each session's sampler like the first would repeat the first session's draws."""
    import optuna

    study = optuna.load_study(study_name="resume", storage=f"sqlite:///{story['dir']}/optuna.db")
    configs = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(configs)) == len(configs)


def test_mlflow_has_one_parent_and_n_children_none_running_and_current_pareto_tags(story: dict) -> None:
    _, parents, children = _runs(story["out"])
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(int(c.data.tags["stiltsearch.trial_number"]) for c in children) == list(range(N))
    assert {c.info.status for c in children} == {"FINISHED"}
    points = [(c.data.metrics["xtreme_score"], c.data.metrics["tokens_per_sec"]) for c in children]
    ranks = pareto_ranks(points, ("max", "max"))
    assert [int(c.data.tags["pareto_rank"]) for c in children] == ranks
    assert parents[0].data.metrics["trials_completed"] == N


def test_metric_histories_have_no_duplicates_from_restored_phases(story: dict) -> None:
    client, _, children = _runs(story["out"])
    for child in children:
        history = client.get_metric_history(child.info.run_id, "xtreme_score")
        assert len(history) == 1
        if "phase2/loss" in child.data.metrics:
            steps = [m.step for m in client.get_metric_history(child.info.run_id, "phase2/loss")]
            assert len(steps) == len(set(steps))
