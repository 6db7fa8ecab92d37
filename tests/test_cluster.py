"""The search on a real multi-node Ray cluster on this machine: a head and 2 worker nodes, each its
own ``ray start`` (cluster/local.py), driven from a separate driver process through ``--address``,
through ``ray job submit``, and with a worker node lost mid-search."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from searchproc import (
    TWO_TARGETS,
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

pytestmark = pytest.mark.cluster


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _local(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "stiltsearch.cluster.local", *args], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done


@contextlib.contextmanager
def _started(directory: Path) -> Iterator[dict[str, Any]]:
    """A head (no CPUs) and 2 worker nodes of 1 CPU each; stopped afterwards, whatever happened."""
    from stiltsearch.cluster.local import LocalCluster, alive_nodes

    _local("start", str(directory), "--workers", "2", "--port", str(_free_port()),
           "--dashboard-port", str(_free_port()))
    try:
        state = LocalCluster.load(directory)
        nodes = {}  # node name -> Ray node id; worker nodes declare a resource named after them
        for node in alive_nodes(state.address):
            mark = [k for k in node["Resources"] if k.startswith("stilts-worker-")]
            nodes[mark[0].removeprefix("stilts-") if mark else "head"] = node["NodeID"]
        yield {"dir": directory, "address": state.address, "dashboard": state.dashboard, "nodes": nodes}
    finally:
        subprocess.run([sys.executable, "-m", "stiltsearch.cluster.local", "stop", str(directory)], timeout=300)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One cluster for the tests that leave it whole (starting and stopping one takes about a minute)."""
    with _started(tmp_path_factory.mktemp("shared") / "cluster") as cluster:
        yield cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A cluster of the test's own, for a test that damages it."""
    with _started(tmp_path / "cluster") as started:
        yield started


def _env(cache: Path) -> dict[str, str]:
    """A client of the local cluster: Ray's token authentication is on there."""
    return {**os.environ, "RAY_AUTH_MODE": "token", "STILTSEARCH_CACHE": str(cache)}


def _children(uri: str, experiment: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id], max_results=1000)
    return [r for r in runs if r.data.tags.get("stiltsearch.kind") == "trial"]


# first: its cluster is its own, stopped before the shared one starts
def test_losing_a_worker_node_mid_search_still_finishes_every_trial(cluster: dict, cache: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """worker-2 is killed (its whole process group and its trial workers) while both trials run past
    phase 2; the trial it held is rescheduled on worker-1 and continues from its checkpoint."""
    from stiltsearch.cluster.local import stop_node

    config = write_config(tmp_path, "nodeloss", 4, max_failures=3)
    log = tmp_path / "run.log"
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    proc = start(["run", str(config), "--address", cluster["address"]], tmp_path, cache, log)
    try:
        wait_for("two trials past phase 2", lambda: sum(
            in_flight_past_phase2(e) for e in ledgers(search_dir(tmp_path, "nodeloss")).values()) >= 2, proc, log)
        in_flight = [n for n, e in ledgers(search_dir(tmp_path, "nodeloss")).items() if in_flight_past_phase2(e)]
        stop_node(cluster["dir"], "worker-2")
        lost_at = time.monotonic()
        rc = finish(proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert rc == 0, text[-3000:]
    directory = search_dir(tmp_path, "nodeloss")
    assert study_states(directory) == {i: "COMPLETE" for i in range(4)}
    children = _children(f"sqlite:///{tmp_path}/mlflow.db", "nodeloss")
    assert {c.info.status for c in children} == {"FINISHED"}
    by_number = {int(c.data.tags["stiltsearch.trial_number"]): c.data.tags["trial_node_id"] for c in children}
    restarted = [n for n in in_flight if ledgers(directory)[n].count("attempt started") >= 2]
    assert restarted, ledgers(directory)  # the trial on the lost node ran again ...
    for number in restarted:
        events = ledgers(directory)[number]
        second = events[events.index("attempt started", 1):]
        assert second[1:3] == ["speed restored", "phase2 restored"], events  # ... from its checkpoint, not from scratch
        assert by_number[number] == cluster["nodes"]["worker-1"] and finished(events)
    print(f"search finished {time.monotonic() - lost_at:.0f} s after the node was lost")


def test_a_search_driven_through_address_runs_its_trials_on_both_workers(shared: dict, cache: Path,
                                                                          tmp_path: Path) -> None:
    cluster = shared
    config = write_config(tmp_path, "multinode", 4, targets=TWO_TARGETS)
    # `--address auto` takes $RAY_ADDRESS (checked as a Ray cluster first, and said)
    done = subprocess.run([sys.executable, "-m", "stiltsearch.search.cli", "run", str(config), "--address", "auto"],
                          cwd=tmp_path, env={**_env(cache), "RAY_ADDRESS": cluster["address"]}, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"--address auto: {cluster['address']}, from $RAY_ADDRESS" in done.stdout
    children = _children(f"sqlite:///{tmp_path}/mlflow.db", "multinode")
    assert len(children) == 4 and {c.info.status for c in children} == {"FINISHED"}
    used = {c.data.tags["trial_node_id"] for c in children}
    assert used == {cluster["nodes"]["worker-1"], cluster["nodes"]["worker-2"]}  # both workers; never the head


def test_ray_job_submit_runs_a_search_whose_results_are_readable(shared: dict, cache: Path, tmp_path: Path) -> None:
    cluster = shared
    config = write_config(tmp_path, "submitted", 2, targets=TWO_TARGETS)
    runtime_env = {"env_vars": {"STILTSEARCH_CACHE": str(cache)}}  # the job's driver runs on the head node
    ray = str(Path(sys.executable).with_name("ray"))
    done = subprocess.run([ray, "job", "submit", "--address", cluster["dashboard"], "--runtime-env-json",
                           json.dumps(runtime_env), "--", sys.executable, "-m", "stiltsearch.search.cli", "run",
                           str(config)], env=_env(cache), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "succeeded" in done.stdout.lower()
    directory = search_dir(tmp_path, "submitted")
    assert set(study_states(directory).values()) == {"COMPLETE"} and len(study_states(directory)) == 2
    assert (directory / "pareto.csv").read_text().count("\n") == 3  # header and two trials
    assert {c.info.status for c in _children(f"sqlite:///{tmp_path}/mlflow.db", "submitted")} == {"FINISHED"}
