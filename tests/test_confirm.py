"""``stiltsearch confirm`` on a real tiny search: the front and the baseline re-run under two new
training seeds as trials of the same search (Ray, Optuna in SQLite, MLflow in SQLite), then the
report's error bars."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY = """
name: confirm
output_dir: {out}
target_tasks: [toy_xnli, toy_tatoeba]
search: {{num_trials: 3, max_concurrent: 2}}
space: {{layers_kept: [1, 2], precision: [fp32]}}  # fp32: see searchproc.TINY
training: {{intermediate_steps: 20, target_steps: 20, batch_size: 16}}
toy_model: {{layers: [2], hidden: 64, heads: 2, mlm_steps: 60, mlm_batch_size: 32, corpus_per_language: 2000}}
throughput: {{repeats: 2, max_sequences: 128}}
mlflow: {{tracking_uri: "sqlite:///{out}/mlflow.db"}}
"""
CLI = [sys.executable, "-m", "stiltsearch.search.cli"]
# A search and its confirmation, end to end (~2.5 min on 2 cores): with the slow tests. The default
# run reads a confirmation from tests/fixtures/release-0.1-search (test_release_fixture.py).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def confirmed(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> dict:
    out = tmp_path_factory.mktemp("confirm")
    (out / "confirm.yaml").write_text(TINY.format(out=out))
    env = {**os.environ, "STILTSEARCH_CACHE": str(cache)}
    ran = subprocess.run([*CLI, "run", str(out / "confirm.yaml")], cwd=out, env=env, capture_output=True, text=True,
                         timeout=900)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    (search_dir,) = [p for p in out.iterdir() if p.is_dir() and p.name.startswith("confirm-")]
    front = json.loads((search_dir / "report" / "findings.json").read_text())
    again = subprocess.run([*CLI, "confirm", str(search_dir), "--seeds", "2"], cwd=out, env=env, capture_output=True,
                           text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    return {"out": out, "dir": search_dir, "env": env, "before": front, "stdout": again.stdout}


def _study(search_dir: Path):  # noqa: ANN202
    import optuna

    return optuna.load_study(study_name="confirm", storage=f"sqlite:///{search_dir}/optuna.db")


def test_each_front_point_and_the_baseline_runs_again_under_each_new_seed(confirmed: dict) -> None:
    from optuna.trial import TrialState

    from stiltsearch.search.study.core import CONFIRMS_ATTR, SEED_ATTR

    trials = _study(confirmed["dir"]).get_trials(deepcopy=False)
    search, again = trials[:3], trials[3:]
    complete = {o["number"] for o in confirmed["before"]["trials"]}  # every complete trial of the search
    numbers = sorted({int(t.user_attrs[CONFIRMS_ATTR]) for t in again})
    assert 0 in numbers and set(numbers) <= complete
    assert sorted((int(t.user_attrs[CONFIRMS_ATTR]), int(t.user_attrs[SEED_ATTR])) for t in again) == \
        [(n, s) for n in numbers for s in (1, 2)]
    assert all(t.state == TrialState.COMPLETE for t in again)
    for t in again:  # the same knobs as the trial it confirms
        assert t.params == search[int(t.user_attrs[CONFIRMS_ATTR])].params
    # another seed trains another model: the NLI score moves for at least one point
    assert any(t.values[0] != search[int(t.user_attrs[CONFIRMS_ATTR])].values[0] for t in again)
    config = (confirmed["dir"] / "config.yaml").read_text()
    assert f"num_trials: {len(trials)}" in config
    assert f"under seeds 1, 2: {len(again)} new runs" in confirmed["stdout"]


def test_confirmations_are_child_runs_tagged_with_the_trial_they_confirm(confirmed: dict) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{confirmed['out']}/mlflow.db")
    experiment = client.get_experiment_by_name("confirm")
    runs = client.search_runs([experiment.experiment_id], "tags.`stiltsearch.kind` = 'trial'", max_results=100)
    tagged = [r for r in runs if "stiltsearch.confirms" in r.data.tags]
    assert len(tagged) == len(_study(confirmed["dir"]).trials) - 3
    assert all(r.info.status == "FINISHED" and "xtreme_score" in r.data.metrics for r in tagged)
    assert {r.data.tags["stiltsearch.seed"] for r in tagged} == {"1", "2"}
    parent = client.search_runs([experiment.experiment_id], "tags.`stiltsearch.kind` = 'search'")[0]
    assert parent.info.status == "FINISHED"
    assert "report/report.html" in {a.path for a in client.list_artifacts(parent.info.run_id, "report")}


def test_the_search_front_is_unchanged_and_the_report_has_error_bars(confirmed: dict) -> None:
    after = json.loads((confirmed["dir"] / "report" / "findings.json").read_text())
    assert after["fronts"] == confirmed["before"]["fronts"]
    assert [t["number"] for t in after["trials"]] == [t["number"] for t in confirmed["before"]["trials"]]
    assert all(len(c["runs"]) == 3 and c["seeds"] == [0, 1, 2] and len(c["sd"]) == 2 for c in after["confirmed"])
    assert after["confirmed_front"] and set(after["confirmed_front"]) <= {c["number"] for c in after["confirmed"]}
    page = (confirmed["dir"] / "report" / "report.html").read_text()
    assert "over training seeds" in page and "error_y" in page
    assert "report           : " in confirmed["stdout"]


def test_confirming_again_adds_nothing_and_bad_requests_are_one_line(confirmed: dict) -> None:
    n = len(_study(confirmed["dir"]).trials)
    again = subprocess.run([*CLI, "confirm", str(confirmed["dir"]), "--seeds", "2"], cwd=confirmed["out"],
                           env=confirmed["env"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert ": 0 new runs" in again.stdout and len(_study(confirmed["dir"]).trials) == n
    for args, says in ((["--seeds", "0"], "--seeds: give 1 to 100"),
                       (["--seeds", "x"], "invalid int value"),
                       ([], None)):
        target = [str(confirmed["dir"] / "config.yaml")] if says is None else [str(confirmed["dir"])]
        bad = subprocess.run([*CLI, "confirm", *target, *args], capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
        assert (says or "is not a search directory") in bad.stderr
    assert len(_study(confirmed["dir"]).trials) == n
