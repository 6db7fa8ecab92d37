"""A search directory written by release 0.1 (tests/fixtures/release-0.1-search: a 5-trial MOASHA
search in the flat scheduler form, ``scheduler: moasha`` with ``reduction_factor`` and
``min_budget`` beside it, with a bound that 3 trials missed and one ``stiltsearch confirm`` re-run,
and its MLflow store) still reads, pareto-s, reports, resumes and confirms.

It was made by that release's code (commit 723c429) with ``stiltsearch run`` and
``stiltsearch confirm --seeds 1``; its absolute paths are written as /FIXTURE_ROOT (the output
directory) and /FIXTURE_CACHE (the phase-1 cache), which :func:`moved` points at a copy, as a
user who moves a search directory would.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from stiltsearch.trainables import trialdir

FIXTURE = Path(__file__).parent / "fixtures" / "release-0.1-search"
NAME = "legacy-20261207-174305"


def moved(tmp_path: Path) -> Path:
    """A copy of the fixture with its paths under ``tmp_path``; the search directory."""
    root = tmp_path / "out"
    shutil.copytree(FIXTURE, root)
    subs = [("/FIXTURE_ROOT", str(root)), ("/FIXTURE_CACHE", str(tmp_path / "cache"))]
    for path in root.rglob("*"):
        if path.suffix in (".json", ".yaml", ".log", ".csv"):
            text = path.read_text()
            for old, new in subs:
                text = text.replace(old, new)
            path.write_text(text)
    with sqlite3.connect(root / "mlflow.db") as con:
        for table, column in (("experiments", "artifact_location"), ("runs", "artifact_uri"), ("params", "value"),
                              ("tags", "value")):
            for old, new in subs:
                con.execute(f"update {table} set {column} = replace({column}, ?, ?)", (old, new))
    return root / NAME


def cli(*args: str, cwd: Path, cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"} | ({"STILTSEARCH_CACHE": str(cache)} if cache else {})
    return subprocess.run([sys.executable, "-m", "stiltsearch.search.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def front_rows(output: str) -> list[str]:
    """The rows of the printed front table: trial, mark and objective values."""
    return [m.group(0) for m in re.finditer(r"^ +\d+ [* ] +\S+ +\S+", output, re.M)]


def test_the_old_flat_config_reads_as_the_nested_form() -> None:
    from stiltsearch.search.config.reading import load_config
    from stiltsearch.search.schedulers.moasha import MoashaSettings

    cfg = load_config(FIXTURE / NAME / "config.yaml")
    assert cfg.search.scheduler == MoashaSettings(reduction_factor=3.0, min_budget=1 / 3)


def test_pareto_of_the_directory_and_of_its_experiment_print_the_same_front(tmp_path: Path) -> None:
    """The experiment's child runs hold a confirmation re-run and three trials that missed the
    bound, all FINISHED with both objectives: the front is read through their outcome and confirms
    tags, as the directory's is through the study, so neither lands on it."""
    from mlflow.tracking import MlflowClient

    directory = moved(tmp_path)
    uri = f"sqlite:///{directory.parent / 'mlflow.db'}"
    runs = MlflowClient(uri).search_runs([MlflowClient(uri).get_experiment_by_name("legacy").experiment_id])
    tags = [r.data.tags for r in runs if r.data.tags.get("stiltsearch.kind") == "trial"]
    assert sum("stiltsearch.confirms" in t for t in tags) == 1 and sum(t.get("stiltsearch.outcome") == "infeasible"
                                                                        for t in tags) == 3
    by_dir = cli("pareto", str(directory), "--out", str(tmp_path / "a"), cwd=tmp_path)
    by_experiment = cli("pareto", "legacy", "--tracking-uri", uri, "--out", str(tmp_path / "b"), cwd=tmp_path)
    assert by_dir.returncode == 0 == by_experiment.returncode, by_dir.stderr + by_experiment.stderr
    assert front_rows(by_dir.stdout) == front_rows(by_experiment.stdout) != []
    assert [row.split()[0] for row in front_rows(by_dir.stdout)] == ["3", "1"]  # not 5 (the re-run), 0, 2, 4
    assert (tmp_path / "a" / "pareto.csv").read_text() == (tmp_path / "b" / "pareto.csv").read_text()


def test_the_report_reads_the_confirmation(tmp_path: Path) -> None:
    directory = moved(tmp_path)
    done = cli("report", str(directory), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "trial 3 (STILTs, seeds 0, 1)" in done.stdout
    assert (directory / "report" / "findings.json").is_file()


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_it_resumes_with_one_more_trial_and_confirms_again(tmp_path: Path) -> None:
    directory = moved(tmp_path)
    cache = tmp_path / "cache"
    resumed = cli("resume", str(directory), "--trials", "7", cwd=tmp_path, cache=cache)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "resuming legacy-20261207-174305: 6 of 7 trials done; 1 new" in resumed.stdout
    ended = trialdir.read_result(trialdir.trial_path(directory / "trials", 6)) or trialdir.read_pruned(
        trialdir.trial_path(directory / "trials", 6))  # MOASHA (flat form: a rung at 1/3) may stop it
    assert ended is not None, resumed.stdout[-3000:]
    confirmed = cli("confirm", str(directory), "--seeds", "2", cwd=tmp_path, cache=cache)
    assert confirmed.returncode == 0, confirmed.stdout[-3000:] + confirmed.stderr[-3000:]
    assert "under seeds 1, 2" in confirmed.stdout
    report = cli("report", str(directory), cwd=tmp_path)
    assert report.returncode == 0 and "trial 3 (STILTs, seeds 0, 1, 2)" in report.stdout, report.stdout[-2000:]
