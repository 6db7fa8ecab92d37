"""Faults during a search, with real processes: a trial worker killed with SIGKILL (retried from its
checkpoint; killed again, marked failed with the reason), and a real ``mlflow server`` that goes away
mid-search and comes back (nothing dropped) or is not there at the start (fail fast)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from searchproc import (
    TWO_TARGETS,
    count_events,
    finish,
    finished,
    ledgers,
    search_dir,
    start,
    study_states,
    wait_for,
    write_config,
)
from servers import free_port, start_mlflow_server, stop_server

from stiltsearch.search.results.pareto import pareto_ranks


def _pids(directory: Path, number: int) -> list[tuple[int, str]]:
    """(pid, event) of every ledger line of trial ``number``."""
    path = directory / "trials" / f"{number:04d}" / "phases.log"
    if not path.exists():
        return []
    rows = [line.split(" ", 2) for line in path.read_text().splitlines() if line.count(" ") >= 2]
    return [(int(where.rsplit(":", 1)[1]), event) for _, where, event in rows]


def _children(uri: str, experiment: str) -> tuple[list, list, Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id], max_results=1000)
    return ([r for r in runs if r.data.tags.get("stiltsearch.kind") == "search"],
            [r for r in runs if r.data.tags.get("stiltsearch.kind") == "trial"], client)


@pytest.fixture(scope="module")
def worker_kills(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> dict[str, Any]:
    """5 trials, max_failures 1: trial 1's worker is killed once after its first target task; trial
    2's worker is killed at the start of both of its attempts."""
    out = tmp_path_factory.mktemp("workers")
    log = out / "run.log"
    proc = start(["run", str(write_config(out, "workers", 5, max_failures=1))], out, cache, log)
    killed: dict[int, list[int]] = {1: [], 2: []}
    deadline = time.monotonic() + 600
    while (len(killed[1]) < 1 or len(killed[2]) < 2) and proc.poll() is None and time.monotonic() < deadline:
        directory = search_dir(out, "workers")
        one = [pid for pid, event in _pids(directory, 1) if event == "phase3 toy_xnli trained"]
        if one and not killed[1]:
            os.kill(one[0], signal.SIGKILL)
            killed[1].append(one[0])
        two = [pid for pid, event in _pids(directory, 2) if event == "attempt started" and pid not in killed[2]]
        if two and len(killed[2]) < 2:
            os.kill(two[0], signal.SIGKILL)
            killed[2].append(two[0])
        time.sleep(0.1)
    rc = finish(proc, log)
    return {"rc": rc, "log": log.read_text(), "killed": killed, "dir": search_dir(out, "workers"),
            "uri": f"sqlite:///{out}/mlflow.db"}


@pytest.mark.slow
def test_a_killed_worker_is_retried_from_its_checkpoint(worker_kills: dict) -> None:
    assert worker_kills["rc"] == 0, worker_kills["log"][-3000:]
    assert len(worker_kills["killed"][1]) == 1
    events = ledgers(worker_kills["dir"])[1]
    assert count_events(events, "attempt started") == 2
    second = events[events.index("attempt started", 1):]
    assert second[1:4] == ["speed restored", "phase2 restored", "phase3 toy_xnli restored"], events
    assert count_events(events, "phase3 toy_xnli trained") == 1 and finished(events)


@pytest.mark.slow
def test_a_worker_killed_past_max_failures_fails_its_trial_with_the_reason_and_the_search_goes_on(
        worker_kills: dict) -> None:
    import optuna

    assert len(worker_kills["killed"][2]) == 2
    states = study_states(worker_kills["dir"])
    assert states == {0: "COMPLETE", 1: "COMPLETE", 2: "FAIL", 3: "COMPLETE", 4: "COMPLETE"}
    study = optuna.load_study(study_name="workers", storage=f"sqlite:///{worker_kills['dir']}/optuna.db")
    assert study.trials[2].user_attrs["error"].startswith("worker process died (no Python error)")
    _, children, _ = _children(worker_kills["uri"], "workers")
    status = {int(c.data.tags["stiltsearch.trial_number"]): c.info.status for c in children}
    assert status == {0: "FINISHED", 1: "FINISHED", 2: "FAILED", 3: "FINISHED", 4: "FINISHED"}
    failed = next(c for c in children if c.info.status == "FAILED")
    assert failed.data.tags["stiltsearch.error"]
    assert "trial 2 FAILED" in worker_kills["log"]


@pytest.mark.slow
def test_mlflow_server_stopped_and_restarted_mid_search_loses_nothing(tmp_path: Path, cache: Path) -> None:
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server_log = tmp_path / "server.log"
    server = start_mlflow_server(tmp_path, port, server_log)
    n = 5
    log = tmp_path / "run.log"
    proc = start(["run", str(write_config(tmp_path, "flaky", n, uri=uri, targets=TWO_TARGETS))], tmp_path, cache, log)
    try:
        wait_for("a finished trial", lambda: sum(finished(e) for e in ledgers(search_dir(tmp_path, "flaky")).values()) >= 1,
                 proc, log)
        stop_server(server)
        # trials go on without MLflow
        wait_for("two more finished trials", lambda: sum(
            finished(e) for e in ledgers(search_dir(tmp_path, "flaky")).values()) >= 3, proc, log)
        server = start_mlflow_server(tmp_path, port, server_log)
        rc = finish(proc, log)
        text = log.read_text()
        assert rc == 0, text[-3000:]
        assert "mlflow: server unreachable" in text and "mlflow: server back" in text
        parents, children, client = _children(uri, "flaky")
        assert len(parents) == 1 and parents[0].info.status == "FINISHED"
        assert sorted(int(c.data.tags["stiltsearch.trial_number"]) for c in children) == list(range(n))
        assert {c.info.status for c in children} == {"FINISHED"}
        for child in children:
            assert {"xtreme_score", "tokens_per_sec", "phase3/toy_xnli/loss"} <= set(child.data.metrics)
        points = [(c.data.metrics["xtreme_score"], c.data.metrics["tokens_per_sec"]) for c in children]
        assert [int(c.data.tags["pareto_rank"]) for c in children] == pareto_ranks(points, ("max", "max"))
        names = {a.path for a in client.list_artifacts(parents[0].info.run_id, "pareto")}
        assert {"pareto/pareto.csv", "pareto/pareto.png"} <= names
    finally:
        if proc.poll() is None:
            proc.kill()
        stop_server(server)


def test_an_unreachable_mlflow_server_fails_the_search_at_its_start(tmp_path: Path, cache: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, "nomlflow", 2, uri=f"http://127.0.0.1:{port}")
    env = {**os.environ, "STILTSEARCH_CACHE": str(cache)}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "stiltsearch.search.cli", "run", str(config)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(
        f"stiltsearch: error: mlflow.tracking_uri: no MLflow server answers at http://127.0.0.1:{port}")
    assert time.monotonic() - started < 60
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]  # nothing was started


@pytest.mark.slow  # a real search (about 30 s): the slow tests run on both cores
def test_a_lost_mlflow_store_ends_the_search_with_exit_1_and_resume_makes_it_whole_again(
        tmp_path: Path, tiny_model: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The SQLite store is deleted while the first trial runs (a cleanup script, a full disk): the
    search goes on, then ends with exit code 1 and a line saying what MLflow is missing; `resume
    --new-mlflow-run` makes a new parent run and logs every finished trial there from the study."""
    from mlflow.tracking import MlflowClient

    from stiltsearch.search.cli import _finish
    from stiltsearch.search.config.reading import load_config
    from stiltsearch.search.driver import run_search
    from stiltsearch.search.tracking import outbox

    monkeypatch.setattr(outbox, "RETRY_S", 0.05)  # each refused write is tried 3 times: not 2 s apart here
    store = tmp_path / "mlflow.db"

    def trainable(config: dict[str, Any]) -> None:
        from ray import tune

        store.unlink(missing_ok=True)  # gone under the driver's feet
        size = len(config.get("intermediate_tasks", ())) + config["layers_kept"]
        tune.report({"phase": 3, "xtreme_score": 50.0 + size, "tokens_per_sec": 1e5 / size})

    config = tmp_path / "lost.yaml"
    config.write_text(f"name: lost\nmodel: {tiny_model}\nintermediate_tasks: [mnli]\ntarget_tasks: [xnli]\n"
                      f"languages: [de]\noutput_dir: {tmp_path / 'runs'}\nsearch: {{num_trials: 2, max_concurrent: 1}}\n"
                      f"space: {{layers_kept: [1, 2]}}\nmlflow: {{tracking_uri: 'sqlite:///{store}'}}\n")
    result = run_search(load_config(config), trainable=trainable)
    assert len(result.front.outcomes) == 2  # the search itself lost nothing
    capsys.readouterr()
    assert _finish(result) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"stiltsearch: error: MLflow at sqlite:///{store} did not receive every write"), line
    assert "--new-mlflow-run" in line

    # a new driver process, as a user resumes (this one's MLflow client keeps the deleted file open)
    done = subprocess.run([sys.executable, "-m", "stiltsearch.search.cli", "resume", str(result.search_dir),
                           "--new-mlflow-run"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "mlflow: a new parent run" in done.stdout
    parent = json.loads((result.search_dir / "search.json").read_text())["parent_run_id"]
    assert parent != result.parent_run_id
    shutil.copy(store, tmp_path / "read.db")  # this process's MLflow still holds the deleted file under the old URI
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'read.db'}")
    experiment = client.get_experiment_by_name("lost")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    children = [r for r in runs if r.data.tags.get("stiltsearch.kind") == "trial"]
    assert sorted(int(c.data.tags["stiltsearch.trial_number"]) for c in children) == [0, 1]
    assert {c.info.status for c in children} == {"FINISHED"} and all("xtreme_score" in c.data.metrics for c in children)
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent}
