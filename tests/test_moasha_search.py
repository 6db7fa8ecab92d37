"""MOASHA end to end on the toy world: a real search (CLI in a subprocess, local Ray, Optuna in
SQLite, MLflow in SQLite, the real trainable) whose trials report at rungs of their budget and
are pruned there; and (slow) the same search killed with SIGKILL after some trials were pruned,
then resumed."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from searchproc import TWO_TARGETS, finish, ledgers, search_dir, start, study_states, wait_for, write_config

from stiltsearch.trainables import trialdir

N = 6
# one rung at a quarter of each trial's budget; the top quarter of the trials that reached it go on
MOASHA = "scheduler: moasha, reduction_factor: 4, min_budget: 0.25"
# short deployments (fp32, from searchproc.TINY): the rule does not care
SPACE = "max_seq_length: [32, 64]"


def _runs(out: Path, name: str) -> dict[int, Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name(name).experiment_id], "tags.`stiltsearch.kind` = 'trial'")
    return {int(r.data.tags["stiltsearch.trial_number"]): r for r in runs}


@pytest.fixture(scope="module")
def search(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("moasha")
    log = out / "run.log"
    config = write_config(out, "moasha", N, search=MOASHA, space=SPACE, targets=TWO_TARGETS)
    proc = start(["run", str(config)], out, cache, log)
    try:
        assert finish(proc, log) == 0, log.read_text()[-4000:]
    finally:  # a test timeout too: never leave a search running behind the test
        if proc.poll() is None:
            proc.kill()
    return {"out": out, "dir": search_dir(out, "moasha"), "log": log.read_text()}


@pytest.mark.slow  # a 6-trial search (~2 min); the default run checks the rule through the Ray seam (test_schedulers.py)
@pytest.mark.timeout(900)
def test_a_moasha_search_prunes_at_a_rung_and_the_study_mlflow_and_front_agree(search: dict[str, Any]) -> None:
    directory, out = search["dir"], search["out"]
    states = study_states(directory)
    assert len(states) == N and set(states.values()) <= {"COMPLETE", "PRUNED"}
    pruned = {n for n, s in states.items() if s == "PRUNED"}
    assert pruned, search["log"][-3000:]  # at least one trial was stopped at its rung
    for number in range(N):
        verdict = trialdir.read_rungs(trialdir.trial_path(directory / "trials", number))
        assert set(verdict) == {0}  # every trial was judged at the one rung
        assert verdict[0]["goes_on"] == (number not in pruned)
        events = ledgers(directory)[number]
        assert "rung 0 scored" in events
        assert ("result saved" in events) == (number not in pruned)  # a pruned trial never finished
    runs = _runs(out, "moasha")
    assert {r.info.status for r in runs.values()} == {"FINISHED"}  # none RUNNING
    for number, run in runs.items():
        assert run.data.tags["stiltsearch.outcome"] == ("pruned" if number in pruned else "complete")
        assert "rung/0/xtreme_score" in run.data.metrics and "rung/0/tokens_per_sec" in run.data.metrics
        if number in pruned:
            assert run.data.tags["stopped_at_rung"] == "0" and "xtreme_score" not in run.data.metrics
            assert "pareto_rank" not in run.data.tags  # not on the front
    assert "rung 0 (25% of its budget): xtreme_score" in search["log"]
    assert "pruned at rung 0" in search["log"]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_moasha_search_killed_after_pruning_resumes_without_running_a_pruned_trial(
        tmp_path: Path, cache: Path) -> None:
    from stiltsearch.search.config.reading import load_config
    from stiltsearch.search.schedulers import registry

    n = 8
    config = write_config(tmp_path, "killed", n, search=MOASHA, space=SPACE, targets=TWO_TARGETS)
    log = tmp_path / "run.log"
    proc = start(["run", str(config)], tmp_path, cache, log)

    def pruned_and_one_in_flight() -> bool:
        directory = search_dir(tmp_path, "killed")
        marked = {int(p.parent.name) for p in (directory / "trials").glob("*/pruned.json")}
        flying = [k for k, e in ledgers(directory).items() if k not in marked and "result saved" not in e]
        return bool(marked) and bool(flying)

    try:
        wait_for("a pruned trial and one in flight", pruned_and_one_in_flight, proc, log, timeout=900)
    finally:  # on a timeout too: never leave a search running behind the test
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    directory = search_dir(tmp_path, "killed")
    pruned_before = {int(p.parent.name) for p in (directory / "trials").glob("*/pruned.json")}
    starts_before = {k: e.count("attempt started") for k, e in ledgers(directory).items() if k in pruned_before}

    log = tmp_path / "resume.log"
    proc = start(["resume", str(directory)], tmp_path, cache, log)
    assert finish(proc, log) == 0, log.read_text()[-4000:]
    states = study_states(directory)
    assert len(states) == n and set(states.values()) <= {"COMPLETE", "PRUNED"}  # the total is still n
    assert all(states[k] == "PRUNED" for k in pruned_before)  # pruned stay pruned
    after = ledgers(directory)
    assert {k: after[k].count("attempt started") for k in pruned_before} == starts_before  # none re-run
    # the resumed scheduler held every rung verdict of the first session
    cfg = load_config(config)
    rebuilt = registry.build(cfg.search.scheduler, cfg.objective_names, cfg.directions, directory / "trials")
    assert pruned_before <= set(rebuilt.rungs.recorded[0])  # type: ignore[attr-defined]
