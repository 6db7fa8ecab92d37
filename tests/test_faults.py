"""Faults during a search, with real processes: a trial worker killed with SIGKILL (retried from its
checkpoint; killed again, marked failed with the reason), and a real ``mlflow server`` that goes away
mid-search and comes back (nothing dropped) or is not there at the start (fail fast)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from searchproc import count_events, finish, finished, ledgers, search_dir, start, study_states, wait_for, write_config
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
    proc = start(["run", str(write_config(tmp_path, "flaky", n, uri=uri))], tmp_path, cache, log)
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
