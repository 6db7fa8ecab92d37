"""``search.budget``: the spend is read from the study (so a resume counts earlier sessions), no new
trial starts once the projected spend passes a limit, and the dry run prices a search before it runs."""

from __future__ import annotations

import datetime
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import FloatDistribution

from stiltsearch.search.config.coerce import ConfigError
from stiltsearch.search.config.reading import load_config
from stiltsearch.search.config.sections import Budget
from stiltsearch.search.planning.spend import WALL_ATTR, Spend
from stiltsearch.search.study.core import open_study
from stiltsearch.search.study.searcher import StudySearcher

START = datetime.datetime(2026, 1, 1, 12, 0, 0)


def _study(tmp_path: Path, hours: list[float]) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(f"sqlite:///{tmp_path / 'optuna.db'}", "s", ["max", "max"], {"x": 0.5})
    study.get_trials()  # the baseline stays WAITING
    for h in hours:  # trials that ended, each ``h`` hours long
        study.add_trial(optuna.trial.FrozenTrial(
            number=0, trial_id=0, state=optuna.trial.TrialState.COMPLETE, value=None, values=[1.0, 1.0],
            datetime_start=START, datetime_complete=START + datetime.timedelta(hours=h), params={"x": 0.1},
            distributions={"x": FloatDistribution(0, 1)}, user_attrs={}, system_attrs={}, intermediate_values={}))
    return study


def test_gpu_hours_are_ended_trials_hours_times_their_gpus_and_project_one_more_at_the_mean(tmp_path: Path) -> None:
    study = _study(tmp_path, [1.0, 3.0])  # mean 2 h
    spend = Spend(study, Budget(gpu_hours=20.0), gpus_per_trial=2)
    assert spend.gpu_hours() == pytest.approx(8.0)
    assert spend.stop_reason(running=2) is None  # (4 + 3 x 2) x 2 = 20: not over
    assert spend.postfix() == {"GPU-h": "8/20"}
    assert spend.metrics()["budget/gpu_hours_spent"] == pytest.approx(8.0)
    tighter = Spend(study, Budget(gpu_hours=19.0), gpus_per_trial=2)
    reason = tighter.stop_reason(running=2)
    assert reason is not None and reason.startswith("search.budget.gpu_hours: 8 spent and 20 projected")
    assert tighter.stop_reason(running=0) == reason  # decided once: no trial starts after that


def test_wall_hours_add_up_across_sessions_through_the_study(tmp_path: Path) -> None:
    study = _study(tmp_path, [])
    study.set_user_attr(WALL_ATTR, 3600.0)  # an earlier session ran an hour
    spend = Spend(study, Budget(wall_hours=1.5), gpus_per_trial=0)
    time.sleep(0.05)
    spend.save()
    assert study.user_attrs[WALL_ATTR] > 3600.0
    assert Spend(study, Budget(wall_hours=1.0), gpus_per_trial=0).stop_reason(0) is not None
    assert Spend(study, Budget(wall_hours=2.0), gpus_per_trial=0).stop_reason(0) is None


def test_the_searcher_starts_no_trial_once_the_budget_is_spent(tmp_path: Path) -> None:
    study = _study(tmp_path, [5.0])
    before = len(study.get_trials())

    def space(trial: optuna.Trial) -> dict[str, Any]:
        return {"x": trial.suggest_float("x", 0.0, 1.0)}

    spent = StudySearcher(study, space, ["a", "b"], ["max", "max"], 10, tmp_path / "trials",
                          spend=Spend(study, Budget(gpu_hours=4.0), gpus_per_trial=1))
    assert spent.suggest("t0") == "FINISHED"
    assert len(study.get_trials()) == before  # nothing asked of the study
    room = StudySearcher(study, space, ["a", "b"], ["max", "max"], 10, tmp_path / "trials",
                         spend=Spend(study, Budget(gpu_hours=100.0), gpus_per_trial=1))
    assert isinstance(room.suggest("t1"), dict)


def test_a_budget_is_checked_when_the_config_is_read(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("search:\n  budget: {gpu_hours: 10}\n")
    with pytest.raises(ConfigError, match="^search.budget.gpu_hours: this search's trials hold no GPU"):
        load_config(path)
    path.write_text("search:\n  budget: {wall_hours: -1}\n")
    with pytest.raises(ConfigError, match="^search.budget.wall_hours: give a positive number"):
        load_config(path)
    path.write_text("search:\n  accelerator: tpu9\n")
    with pytest.raises(ConfigError, match="^search.accelerator: 'tpu9' is not in the table"):
        load_config(path)


def test_the_dry_run_prices_each_trial_and_the_search_for_the_declared_accelerator() -> None:
    from stiltsearch.search.planning.dryrun import plan_lines

    paper = load_config(Path(__file__).parents[1] / "configs" / "paper.yaml")
    text = "\n".join(plan_lines(paper, trials=2))
    assert "cost to its end:" in text and "H100-hours at 40% MFU" in text
    assert "cost of the search (48 trials, moasha" in text and "wall time ~" in text
    assert "phase 3: mlqa: scored with xquad's model" in text  # trained once per trial, priced once
    assert "coverage: 48 trials sample at most 48 of the 131,072" in text


def test_the_search_cost_follows_the_scheduler_and_the_shape(tmp_path: Path) -> None:
    """Arithmetic checked by hand on a one-target plan: FIFO trains everything once; MOASHA's
    expected cost is below it and its finisher's (which re-trains phase-3 prefixes at each rung) above."""
    from stiltsearch.search.planning import cost
    from stiltsearch.search.planning.dryrun import TrialPlan, trial_cost

    path = tmp_path / "c.yaml"
    path.write_text("model: xlm-roberta-large\nintermediate_tasks: [mnli]\ntarget_tasks: [xnli]\nlanguages: []\n"
                    "search: {accelerator: h100, mfu: 0.5, gpus_per_worker: 1}\nspace: {layers_kept: [24]}\n"
                    "training: {intermediate_steps: 100, target_steps: 50, batch_size: 8, max_length: 128}\n")
    fifo = load_config(path)
    params = {"intermediate_tasks": ["mnli"], "intermediate_lr": 1e-5, "train_languages": [], "target_lr": 1e-5,
              "layers_kept": 24, "max_seq_length": 128, "model": ""}
    expected, finisher = trial_cost(fifo, params) or (None, None)
    assert expected == finisher
    large = cost.KNOWN_SHAPES["xlm-roberta-large"]
    by_hand = large.train_flops((100 + 50) * 8 * 128, 128)
    assert finisher.flops == pytest.approx(by_hand) and finisher.tokens == (100 + 50) * 8 * 128
    assert finisher.gpu_hours == pytest.approx(by_hand / (989e12 * 0.5) / 3600)
    path.write_text(path.read_text().replace("gpus_per_worker: 1}", "gpus_per_worker: 1, scheduler: moasha}"))
    moasha = load_config(path)
    m_expected, m_finisher = trial_cost(moasha, params) or (None, None)
    assert m_expected.flops < finisher.flops < m_finisher.flops
    assert m_finisher.flops == pytest.approx(large.train_flops((100 + 50 * (1 + 1 / 9 + 1 / 3)) * 8 * 128, 128))
    assert TrialPlan(fifo, params).lines[0].startswith("  phase 2: 100 steps")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_search_stops_starting_trials_at_its_budget_and_a_resume_honours_it(tmp_path: Path, tiny_model: str) -> None:
    """A real search (local Ray, Optuna, MLflow) with 30-second trials and a 54-second wall budget:
    the first trial starts, the second would end past the budget, so none does; the search ends as
    finished (not interrupted) and says how to go on; a resume with the same budget starts nothing."""
    from mlflow.tracking import MlflowClient

    config = tmp_path / "budget.yaml"
    config.write_text(f"name: budget\nmodel: {tiny_model}\nintermediate_tasks: [mnli]\ntarget_tasks: [xnli]\n"
                      f"languages: [de]\noutput_dir: {tmp_path / 'runs'}\n"
                      "search: {num_trials: 6, max_concurrent: 1, budget: {wall_hours: 0.015}}\n"
                      f"space: {{layers_kept: [1, 2]}}\nmlflow: {{tracking_uri: 'sqlite:///{tmp_path}/mlflow.db'}}\n")
    script = tmp_path / "drive.py"
    script.write_text(
        "import sys, time\n"
        "from stiltsearch.search.config.reading import load_config\n"
        "from stiltsearch.search.driver import resume_search, run_search\n"
        "def trainable(config):\n"
        "    from ray import tune\n"
        "    time.sleep(30)\n"
        "    tune.report({'phase': 3, 'xtreme_score': 50.0, 'tokens_per_sec': 100.0 * config['layers_kept']})\n"
        "if sys.argv[1] == 'run':\n"
        "    print('dir', run_search(load_config(sys.argv[2]), trainable=trainable).search_dir)\n"
        "else:\n"
        "    print('resumed', resume_search(sys.argv[2], trainable=trainable).interrupted)\n")
    first = subprocess.run([sys.executable, str(script), "run", str(config)], capture_output=True, text=True,
                           timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "budget: no new trial starts (search.budget.wall_hours:" in first.stdout
    assert "stopped by the budget after 1 of 6 trials" in first.stdout
    search_dir = next(line.split(" ", 1)[1] for line in first.stdout.splitlines() if line.startswith("dir "))
    study = optuna.load_study(study_name="budget", storage=f"sqlite:///{search_dir}/optuna.db")
    assert [t.state.name for t in study.get_trials() if t.state.name != "WAITING"] == ["COMPLETE"]
    assert study.user_attrs[WALL_ATTR] > 30
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    parent = client.search_runs([client.get_experiment_by_name("budget").experiment_id],
                                "tags.`stiltsearch.kind` = 'search'")[0]
    assert parent.data.metrics["budget/wall_hours"] == 0.015 and parent.data.metrics["budget/wall_hours_spent"] > 0
    again = subprocess.run([sys.executable, str(script), "resume", search_dir], capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resumed False" in again.stdout and "budget: no new trial starts" in again.stdout
    assert len([t for t in study.get_trials() if t.state.name == "COMPLETE"]) == 1


def test_the_driver_resolves_the_real_searchs_hub_model_and_splits_once() -> None:
    """What a real search's trials would each download, listed for the driver to fetch once:
    the hub model, every hub split of its tasks (none of a local copy), nothing for the toy world."""
    from stiltsearch.search.launch.resolve import hub_models, hub_sources, offline_for_trials

    paper = load_config(Path(__file__).parents[1] / "configs" / "paper.yaml")
    assert hub_models(paper) == ["xlm-roberta-large"]
    sources = hub_sources(paper)
    assert len(sources) == len(set(sources)) > 100
    xnli = {(s.config, s.split) for s in sources if s.dataset == "facebook/xnli"}
    assert ("de", "train") in xnli and ("sw", "validation") in xnli and ("ur", "train") not in xnli  # ur: not a searched language
    local = load_config(Path(__file__).parents[1] / "configs" / "paper.yaml", data={"facebook/xnli": "/copies/xnli"})
    assert not any(s.dataset == "facebook/xnli" for s in hub_sources(local))
    assert hub_models(load_config(None)) == [] and hub_sources(load_config(None)) == []
    assert offline_for_trials(None)
