"""A real search end to end: CLI in a subprocess, local Ray, Optuna in SQLite, MLflow in SQLite."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stiltsearch.search.results.pareto import nondominated

TINY = """
name: e2e
output_dir: {out}
search: {{num_trials: 4, max_concurrent: 2}}
space: {{layers_kept: [1, 2], precision: [fp32]}}  # fp32: see searchproc.TINY
training: {{intermediate_steps: 20, target_steps: 20, batch_size: 16}}
toy_model: {{layers: [2], hidden: 64, heads: 2, mlm_steps: 60, mlm_batch_size: 32, corpus_per_language: 2000}}
throughput: {{repeats: 2, max_sequences: 128, reference: true}}
mlflow: {{tracking_uri: "sqlite:///{out}/mlflow.db"}}
"""


@pytest.fixture(scope="module")
def search(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> dict:
    out = tmp_path_factory.mktemp("e2e")
    config = out / "e2e.yaml"
    config.write_text(TINY.format(out=out))
    env = {**os.environ, "STILTSEARCH_CACHE": str(cache)}
    done = subprocess.run([sys.executable, "-m", "stiltsearch.search.cli", "run", str(config)], cwd=out, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (search_dir,) = [p for p in out.iterdir() if p.is_dir() and p.name.startswith("e2e-")]
    return {"out": out, "dir": search_dir, "stdout": done.stdout}


def _runs(out: Path, name: str = "e2e") -> tuple:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out}/mlflow.db")
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("stiltsearch.kind") == "search"]
    children = [r for r in runs if r.data.tags.get("stiltsearch.kind") == "trial"]
    return client, parents, children


def test_mlflow_holds_one_parent_and_four_finished_children_with_both_objectives(search: dict) -> None:
    _, parents, children = _runs(search["out"])
    assert len(parents) == 1 and len(children) == 4
    assert all(c.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for c in children)
    assert {r.info.status for r in parents + children} == {"FINISHED"}
    for child in children:
        assert {"xtreme_score", "tokens_per_sec", "eval/toy_xnli/xc", "phase3/toy_xnli/loss"} <= set(child.data.metrics)
        assert 0 <= child.data.metrics["xtreme_score"] <= 100 and child.data.metrics["tokens_per_sec"] > 0
        assert child.data.metrics["relative_speed"] > 0  # throughput.reference: on
        # its family, for MLflow's filters: "stilts" with an intermediate task (its param), else "direct"
        assert child.data.tags["stiltsearch.family"] == ("direct" if child.data.params["intermediate_tasks"] in ("", "none")
                                                         else "stilts"), child.data.params["intermediate_tasks"]


def test_pareto_tags_agree_with_non_dominance_recomputed_from_the_runs(search: dict) -> None:
    _, _, children = _runs(search["out"])
    points = [(c.data.metrics["xtreme_score"], c.data.metrics["tokens_per_sec"]) for c in children]
    expected = nondominated(points, ("max", "max"))
    assert [c.data.tags["pareto_optimal"] == "true" for c in children] == expected
    assert any(expected)


def test_the_baseline_is_trial_0(search: dict) -> None:
    _, _, children = _runs(search["out"])
    first = next(c for c in children if c.data.tags["stiltsearch.trial_number"] == "0")
    assert first.data.params["intermediate_tasks"] == "none" and first.data.params["train_languages"] == "none"


def test_optuna_study_holds_four_complete_trials(search: dict) -> None:
    import optuna

    study = optuna.load_study(study_name="e2e", storage=f"sqlite:///{search['dir']}/optuna.db")
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert all(len(t.values) == 2 for t in trials)
    assert not any(v for k, v in trials[0].params.items() if k.startswith(("use_", "lang_")))


def test_parent_run_holds_the_front_and_the_console_shows_it(search: dict) -> None:
    client, parents, _ = _runs(search["out"])
    names = {a.path for a in client.list_artifacts(parents[0].info.run_id, "pareto")}
    assert {"pareto/pareto.csv", "pareto/pareto.png", "pareto/hypervolume.png"} <= names
    assert "hypervolume" in parents[0].data.metrics
    assert "Pareto front (" in search["stdout"] and "mlflow ui --backend-store-uri" in search["stdout"]
    assert not (search["dir"] / "ray").exists()  # Ray's session files (the environment in its logs) stay off it


def test_the_console_counts_the_trials_off_a_terminal(search: dict) -> None:
    """Captured output is not a terminal: the progress is plain lines, one per finished trial."""
    lines = [line for line in search["stdout"].splitlines() if line.startswith("search: ")]
    counts = [int(re.match(r"search: (\d)/4 trials, running (\d), failed 0; ", line).group(1)) for line in lines]
    assert counts == [1, 2, 3, 4], lines
    assert lines[-1].startswith("search: 4/4 trials, running 0, failed 0;") and lines[-1].endswith("ETA 00:00")
    assert "\r" not in search["stdout"]


def test_mlflow_opens_on_the_runs_with_the_front_described_and_two_saved_views(search: dict) -> None:
    """The experiment is of MLflow 3's model-training kind (not GenAI), the parent run's description
    lists the front, and each saved view's filter selects what it says (checked in a browser by
    tests/test_browser.py)."""
    import json

    from stiltsearch.search.tracking.tracker import NOTE
    from stiltsearch.search.tracking.views import VIEW_TAG_PREFIX

    client, parents, children = _runs(search["out"])
    experiment = client.get_experiment_by_name("e2e")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    front = sorted(int(c.data.tags["stiltsearch.trial_number"]) for c in children if c.data.tags["pareto_optimal"] == "true")
    note = parents[0].data.tags[NOTE]
    assert note.startswith(f"**Pareto front: {len(front)} of 4 completed trials**")
    assert {int(row.split("|")[1]) for row in note.splitlines() if re.match(r"^\| \d+ \|", row)} == set(front)
    views = {k: json.loads(v) for k, v in experiment.tags.items() if k.startswith(VIEW_TAG_PREFIX)}
    assert len(views) == 2
    for view in views.values():
        state = json.loads(view["state"])
        assert state["selectedColumns"][:2] == ["metrics.`xtreme_score`", "metrics.`tokens_per_sec`"]
        found = client.search_runs([experiment.experiment_id], state["searchFilter"], max_results=100)
        numbers = sorted(int(r.data.tags["stiltsearch.trial_number"]) for r in found)
        assert numbers == (front if view["name"].endswith("Pareto front") else [0, 1, 2, 3]), view["name"]
    assert f"viewStateShareKey=stiltsearch-{parents[0].info.run_id}-front" in search["stdout"]


def test_the_report_is_written_logged_and_made_again_by_its_command(search: dict) -> None:
    import json

    client, parents, _ = _runs(search["out"])
    parent = parents[0]
    names = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/report.html", "report/report.png", "report/findings.json"} <= names
    assert {"hypervolume_stilts", "hypervolume_direct"} <= set(parent.data.metrics)
    assert parent.data.tags["stiltsearch.report"] == "report/report.html"
    assert "report           : " in search["stdout"]
    again = search["out"] / "report-again"
    cli = [sys.executable, "-m", "stiltsearch.search.cli", "report"]
    done = subprocess.run([*cli, str(search["dir"]), "--out", str(again)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Hypervolume of the STILTs front" in done.stdout
    first = json.loads((search["dir"] / "report" / "findings.json").read_text())
    assert json.loads((again / "findings.json").read_text())["fronts"] == first["fronts"]
    front = {int(c.data.tags["stiltsearch.trial_number"]) for c in _runs(search["out"])[2]
             if c.data.tags["pareto_optimal"] == "true"}
    assert front <= set(first["fronts"]["stilts"]) | set(first["fronts"]["direct"])  # the search's front is in theirs
    bad = subprocess.run([*cli, str(search["dir"] / "config.yaml")], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "is a file" in bad.stderr


def _reporting() -> Any:
    """A trainable that reports a trial's objectives at once (made in a function: Ray ships it by value)."""
    def trainable(config: dict[str, Any]) -> None:
        from ray import tune

        size = len(config.get("intermediate_tasks", ())) + config["layers_kept"]
        tune.report({"phase": 3, "xtreme_score": 50.0 + size, "tokens_per_sec": 1e5 / size})

    return trainable


@pytest.mark.slow  # two searches under Ray (their trials report at once: what is tested is the store)
def test_a_second_search_adds_to_the_store_and_deletes_nothing(tmp_path: Path, tiny_model: str) -> None:
    from stiltsearch.search.config.reading import load_config
    from stiltsearch.search.driver import run_search

    config = tmp_path / "twice.yaml"
    config.write_text(f"name: twice\nmodel: {tiny_model}\nintermediate_tasks: [mnli]\ntarget_tasks: [xnli]\n"
                      f"languages: [de]\noutput_dir: {tmp_path}\nsearch: {{num_trials: 3, max_concurrent: 1}}\n"
                      f"space: {{layers_kept: [1, 2]}}\nmlflow: {{tracking_uri: 'sqlite:///{tmp_path}/mlflow.db'}}\n")
    first = run_search(load_config(config), trainable=_reporting())
    before = {p: p.read_bytes() for p in first.search_dir.rglob("*") if p.is_file() and "ray" not in p.parts}
    second = run_search(load_config(config, **{"search.num_trials": 2}), trainable=_reporting())
    assert second.search_dir != first.search_dir and first.search_dir.is_dir()
    _, parents, children = _runs(tmp_path, "twice")
    assert len(parents) == 2 and len(children) == 5
    assert {p: p.read_bytes() for p in before} == before  # the first search's files are all there, unchanged


def test_the_run_ends_with_the_answers_to_both_questions(search: dict) -> None:
    """Where people look: the last lines of `stiltsearch run` (answer first, then the evidence)."""
    tail = search["stdout"].strip().splitlines()[-3:]
    assert tail[0].startswith("Q1, speed from STILTs without losing non-English toy_xnli: "), tail
    assert tail[1].startswith("Q2, STILTs against direct fine-tuning: at matched xtreme_score, "), tail
    assert tail[2].endswith(f"stiltsearch confirm {search['dir']} --seeds 3"), tail


def test_pareto_command_reads_the_front_from_the_directory_and_from_mlflow_alike(search: dict) -> None:
    """`stiltsearch pareto` on a search that is not running: same front and hypervolume both ways."""
    out = search["out"]
    cli = [sys.executable, "-m", "stiltsearch.search.cli", "pareto"]
    by_dir = subprocess.run([*cli, str(search["dir"]), "--out", str(out / "p-dir")], cwd=out, capture_output=True,
                            text=True, timeout=120)
    by_mlflow = subprocess.run([*cli, "e2e", "--tracking-uri", f"sqlite:///{out}/mlflow.db", "--out", str(out / "p-ml")],
                               cwd=out, capture_output=True, text=True, timeout=120)
    assert by_dir.returncode == 0 and by_mlflow.returncode == 0, by_dir.stderr + by_mlflow.stderr
    hv = [line for line in by_dir.stdout.splitlines() if "hypervolume" in line and "complete" in line]
    assert hv and hv[-1] in by_mlflow.stdout
    assert (out / "p-dir" / "pareto.png").stat().st_size > 0 and (out / "p-ml" / "pareto.png").stat().st_size > 0
    _, _, children = _runs(out)
    front = {c.data.tags["stiltsearch.trial_number"] for c in children if c.data.tags["pareto_optimal"] == "true"}
    rows = [line.split() for line in by_dir.stdout.splitlines() if line.split() and line.split()[0].isdigit()]
    starred = {row[0] for row in rows if row[1] == "*"}
    assert starred == front
    bad = subprocess.run([*cli, "no-such-search"], cwd=out, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "neither a directory nor an MLflow experiment" in bad.stderr


def test_resolving_the_toy_models_leaves_the_callers_torch_threads(search: dict, cache: Path) -> None:
    """Pretraining uses every core; the caller's thread count (a benchmark's 1, as in a trial) must
    survive it, cached or not. A benchmark once timed at 2 threads while it said 1."""
    import torch

    from stiltsearch.search.config.reading import load_config
    from stiltsearch.search.launch.models import resolve_models

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        (model,) = resolve_models(load_config(search["out"] / "e2e.yaml"), cache).values()
        assert Path(model, "config.json").exists() and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_each_front_trials_served_model_is_in_mlflow(search: dict) -> None:
    import torch

    client, _, children = _runs(search["out"])
    front = [r for r in children if r.data.tags.get("pareto_optimal") == "true"]
    assert front
    for run in front:
        assert run.data.tags["stiltsearch.served_model"] == "artifact: served_model/"
        names = {a.path for a in client.list_artifacts(run.info.run_id, "served_model")}
        assert names == {"served_model/config.json", "served_model/heads.json", "served_model/state.pt"}
        local = client.download_artifacts(run.info.run_id, "served_model/state.pt", str(search["out"] / run.info.run_id))
        assert torch.load(local, weights_only=True)  # loads as the checkpoint does
    assert all("stiltsearch.served_model" not in r.data.tags for r in children if r not in front)
