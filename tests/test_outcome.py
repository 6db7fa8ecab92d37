"""A trial's outcome has one owner (trainables/outcome.py): PRUNED end to end with a real Ray
search, a real Optuna study and a real MLflow store, the trials stopped by a scheduler that a test
registers; and `stiltsearch pareto` reads a search without importing Ray or torch."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stiltsearch.search.schedulers.base import CONTINUE, Decision, Scheduler, SchedulerSettings
from stiltsearch.search.schedulers.registry import SCHEDULERS
from stiltsearch.trainables import trialdir
from stiltsearch.trainables.outcome import Outcome, classify


def test_classify_names_each_end() -> None:
    objectives = ["xtreme_score", "tokens_per_sec"]
    full = {"xtreme_score": 1.0, "tokens_per_sec": 2.0}
    assert classify(full, objectives) is Outcome.COMPLETE
    assert classify({"phase": 2}, objectives) is Outcome.INTERRUPTED
    assert classify(None, objectives) is Outcome.INTERRUPTED
    assert classify(full, objectives, error=True) is Outcome.FAILED
    assert classify({**full, "infeasible": "tokens_per_sec 2 < its minimum 5"}, objectives) is Outcome.INFEASIBLE
    assert [o.study_state for o in Outcome] == ["COMPLETE", "COMPLETE", "FAIL", "PRUNED", "RUNNING"]
    assert [o.mlflow_status for o in Outcome] == ["FINISHED", "FINISHED", "FAILED", "FINISHED", "KILLED"]


def test_a_pruned_mark_in_the_trial_directory_makes_it_pruned(tmp_path: Path) -> None:
    directory = trialdir.trial_path(tmp_path, 7)
    assert directory.name == "0007"
    assert classify({"phase": 2}, ["xtreme_score"], directory=directory) is Outcome.INTERRUPTED
    trialdir.mark_pruned(directory, 1, {"phase": 2})
    assert classify({"phase": 2}, ["xtreme_score"], directory=directory) is Outcome.PRUNED
    assert trialdir.read_pruned(directory) == {"rung": 1, "metrics": {"phase": 2}}


@dataclass(frozen=True)
class StopOddSettings(SchedulerSettings):
    name = "test-stop-odd"


class StopOddTrials(Scheduler):
    """Stops every odd-numbered trial at its first report (rung 0); the others run to the end."""

    Settings = StopOddSettings

    def decide(self, number: int, result: Mapping[str, Any]) -> Decision:
        return Decision(stop=True, rung=0) if number % 2 == 1 and result.get("phase") == 2 else CONTINUE


@pytest.fixture
def stop_odd() -> Iterator[str]:
    SCHEDULERS[StopOddSettings.name] = StopOddTrials
    yield StopOddSettings.name
    del SCHEDULERS[StopOddSettings.name]


def two_report_trainable() -> Any:
    """A trial that reports after "phase 2" and then its objectives (built here so that Ray ships
    it by value to its workers)."""

    def trainable(config: dict[str, Any]) -> None:
        from ray import tune

        size = len(config.get("intermediate_tasks", ())) + config["layers_kept"]
        tune.report({"phase": 2, "phase2/cache": "skipped"})
        time.sleep(1.0)  # a scheduler that stops the trial does so here
        tune.report({"phase": 3, "xtreme_score": 50.0 + size, "tokens_per_sec": 1e5 / size})

    return trainable


@pytest.mark.timeout(600)
def test_pruned_trials_end_pruned_everywhere_and_a_resume_never_runs_them(
        tmp_path: Path, tiny_model: str, stop_odd: str) -> None:
    import optuna
    from mlflow.tracking import MlflowClient

    from stiltsearch.search.config.reading import load_config
    from stiltsearch.search.driver import resume_search, run_search

    config = tmp_path / "prune.yaml"
    config.write_text(f"name: prune\nmodel: {tiny_model}\nintermediate_tasks: [mnli, qqp]\ntarget_tasks: [xnli]\n"
                      f"languages: [de, fr]\noutput_dir: {tmp_path / 'runs'}\n"
                      f"search: {{num_trials: 6, max_concurrent: 2, scheduler: {stop_odd}}}\n"
                      f"space: {{layers_kept: [1, 2]}}\nmlflow: {{tracking_uri: 'sqlite:///{tmp_path}/mlflow.db'}}\n")
    result = run_search(load_config(config), trainable=two_report_trainable())
    study = optuna.load_study(study_name="prune", storage=f"sqlite:///{result.search_dir}/optuna.db")
    states = {t.number: t.state.name for t in study.get_trials()}
    assert states == {n: "PRUNED" if n % 2 else "COMPLETE" for n in range(6)}
    assert all(t.user_attrs["stopped_at_rung"] == 0 for t in study.get_trials() if t.number % 2)
    assert not result.interrupted and result.front.summary()["trials_pruned"] == 3
    assert {o.number for o in result.front.outcomes} == {0, 2, 4}  # a pruned trial is never on the front

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("prune").experiment_id], "tags.`stiltsearch.kind` = 'trial'")
    by_number = {int(r.data.tags["stiltsearch.trial_number"]): r for r in runs}
    assert set(by_number) == set(range(6)) and {r.info.status for r in runs} == {"FINISHED"}
    for number, run in by_number.items():
        assert run.data.tags["stiltsearch.outcome"] == ("pruned" if number % 2 else "complete")
        if number % 2:
            assert run.data.tags["stopped_at_rung"] == "0" and "xtreme_score" not in run.data.metrics
            assert run.data.tags.get("pareto_optimal") is None  # not ranked: not on the front
        else:
            assert run.data.tags["pareto_rank"] in {"0", "1", "2"}

    # a resume owes nothing (pruned trials are done); with two more trials asked for, only those run
    again = resume_search(result.search_dir, num_trials=8, trainable=two_report_trainable())
    after = {t.number: t.state.name for t in study.get_trials()}
    assert after == {**states, 6: "COMPLETE", 7: "PRUNED"} and not again.interrupted
    assert again.front.summary()["trials_pruned"] == 4


def test_stiltsearch_pareto_imports_neither_ray_nor_torch(tmp_path: Path) -> None:
    import optuna
    import yaml

    from stiltsearch.search.config.reading import to_dict
    from stiltsearch.search.config.schema import SearchConfig
    from stiltsearch.search.study.core import CONFIG_ATTR, open_study

    search_dir = tmp_path / "toy-20260101-000000"
    search_dir.mkdir()
    (search_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(SearchConfig())))
    study = open_study(f"sqlite:///{search_dir}/optuna.db", "toy", ["max", "max"], None)
    for score, speed in ((60.0, 900.0), (55.0, 2000.0), (50.0, 800.0)):
        trial = study.ask()
        trial.set_user_attr(CONFIG_ATTR, {"intermediate_tasks": [], "layers_kept": 4})
        study.tell(trial, [score, speed])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    probe = ("import sys\nfrom stiltsearch.search.cli import main\ncode = main(['pareto', sys.argv[1]])\n"
             "heavy = sorted(m for m in ('ray', 'torch') if m in sys.modules)\nprint('heavy:', heavy)\nsys.exit(code)\n")
    done = subprocess.run([sys.executable, "-c", probe, str(search_dir)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/unused.db"})
    assert done.returncode == 0, done.stderr
    assert "heavy: []" in done.stdout
    assert "Pareto front (2 of 3 completed trials" in done.stdout


def bounded_trainable() -> Any:
    """Odd trials report a speed under the bound and no score, as a trial that was never trained."""

    def trainable(config: dict[str, Any]) -> None:
        from ray import tune

        size = len(config.get("intermediate_tasks", ())) + config["layers_kept"]
        if config["trial_number"] % 2:
            tune.report({"phase": 3, "tokens_per_sec": 10.0, "infeasible": "tokens_per_sec 10 < its minimum 1000",
                         "trial/constraint_violation": 0.99})
            return
        tune.report({"phase": 3, "xtreme_score": 50.0 + size, "tokens_per_sec": 1e5 / size,
                     "trial/constraint_violation": 0.0})

    return trainable


@pytest.mark.timeout(600)
def test_infeasible_trials_teach_the_sampler_and_stay_off_the_front(tmp_path: Path, tiny_model: str) -> None:
    import optuna
    from mlflow.tracking import MlflowClient

    from stiltsearch.search.config.reading import load_config
    from stiltsearch.search.driver import run_search

    config = tmp_path / "bounded.yaml"
    config.write_text(f"name: bounded\nmodel: {tiny_model}\nintermediate_tasks: [mnli, qqp]\ntarget_tasks: [xnli]\n"
                      f"languages: [de]\noutput_dir: {tmp_path / 'runs'}\nsearch: {{num_trials: 4, max_concurrent: 2}}\n"
                      "objectives:\n  - {name: xtreme_score}\n  - {name: tokens_per_sec, min: 1000}\n"
                      f"space: {{layers_kept: [1, 2]}}\nmlflow: {{tracking_uri: 'sqlite:///{tmp_path}/mlflow.db'}}\n")
    result = run_search(load_config(config), trainable=bounded_trainable())
    study = optuna.load_study(study_name="bounded", storage=f"sqlite:///{result.search_dir}/optuna.db")
    for trial in study.get_trials():
        assert trial.state.name == "COMPLETE"
        assert trial.constraints == {"bounds": 0.99 if trial.number % 2 else 0.0}  # what TPE reads
        assert ("infeasible" in trial.user_attrs) == bool(trial.number % 2)
    infeasible = [t for t in study.get_trials() if t.number % 2]
    assert all(t.values[0] == 0.0 for t in infeasible)  # a score it never reached counts as the reference
    assert {o.number for o in result.front.outcomes} == {0, 2} and result.front.summary()["trials_infeasible"] == 2
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("bounded").experiment_id],
                              "tags.`stiltsearch.kind` = 'trial'")
    for run in runs:
        odd = int(run.data.tags["stiltsearch.trial_number"]) % 2
        assert run.info.status == "FINISHED"
        assert run.data.tags["stiltsearch.outcome"] == ("infeasible" if odd else "complete")
        assert (run.data.tags.get("stiltsearch.infeasible") == "tokens_per_sec 10 < its minimum 1000") == bool(odd)
