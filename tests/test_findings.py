"""The report's data (search/results/findings.py) on a hand-made study whose answer is known, and its pages."""

from __future__ import annotations

import datetime
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from stiltsearch.search.results.answers import answers, sentences
from stiltsearch.search.results.findings import findings
from stiltsearch.search.results.report import write_report
from stiltsearch.search.study.core import CONFIG_ATTR, INFEASIBLE_ATTR

NAMES, DIRECTIONS = ["xtreme_score", "tokens_per_sec"], ["max", "max"]
START = datetime.datetime(2026, 12, 1, 12, 0, 0)

# (number, tasks, languages, lr, score, tokens/sec, seconds); the first is the baseline
TRIALS = [
    (0, [], [], 3e-4, 60.0, 1000.0, 100),
    (1, [], ["xa"], 5e-4, 62.0, 900.0, 100),     # direct, best score of the direct front
    (2, [], [], 1e-4, 55.0, 2000.0, 50),        # direct, fastest of the direct front
    (3, ["toy_mnli"], [], 2e-4, 63.0, 1500.0, 200),  # STILTs: scores >= 62 at 1.5k tokens/sec
    (4, ["toy_qqp"], [], 6e-4, 58.0, 2500.0, 200),   # STILTs: as fast as 2000 or more, scoring 58
    (5, ["toy_qqp", "toy_mnli"], ["xb"], 9e-4, 40.0, 500.0, 300),  # dominated
]


def _trial(number: int, params: dict, distributions: dict, values: list[float], attrs: dict,
           began: datetime.datetime, seconds: float) -> optuna.trial.FrozenTrial:
    return optuna.trial.FrozenTrial(number, optuna.trial.TrialState.COMPLETE, None, began,
                                    began + datetime.timedelta(seconds=seconds), params, distributions, attrs, {}, {},
                                    number, values=values)


@pytest.fixture
def study() -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "maximize"])
    distributions = {"use_toy_mnli": CategoricalDistribution([False, True]),
                     "use_toy_qqp": CategoricalDistribution([False, True]),
                     "target_lr": FloatDistribution(1e-4, 1e-3, log=True)}
    for number, tasks, langs, lr, score, speed, seconds in TRIALS:
        config = {"intermediate_tasks": tasks, "train_languages": langs, "target_lr": lr}
        began = START + datetime.timedelta(minutes=10 * number)
        study.add_trial(_trial(number, {"use_toy_mnli": "toy_mnli" in tasks, "use_toy_qqp": "toy_qqp" in tasks,
                                        "target_lr": lr}, distributions, [score, speed], {CONFIG_ATTR: config},
                               began, seconds))
    # an infeasible trial that would top both fronts (finished last): never counted
    study.add_trial(_trial(6, {"use_toy_mnli": True, "use_toy_qqp": False, "target_lr": 1e-4}, distributions,
                           [99.0, 9999.0], {CONFIG_ATTR: {"intermediate_tasks": ["toy_mnli"]}, INFEASIBLE_ATTR: "bound"},
                           START + datetime.timedelta(hours=2), 1))
    return study


def test_each_family_gets_its_own_front_and_the_baseline_is_marked(study: optuna.Study) -> None:
    result = findings(study, NAMES, DIRECTIONS)
    assert [t.number for t in result.trials] == [0, 1, 2, 3, 4, 5]  # the infeasible one is left out
    assert result.fronts == {"stilts": [3, 4], "direct": [1, 0, 2]}  # best score first
    assert result.baseline == 0
    # hypervolumes from the declared references (0 for both here): the staircases' areas
    assert result.hypervolume["direct"] == pytest.approx(62 * 900 + 60 * 100 + 55 * 1000)
    assert result.hypervolume["stilts"] == pytest.approx(63 * 1500 + 58 * 1000)
    assert result.hypervolume["all"] >= max(result.hypervolume["direct"], result.hypervolume["stilts"])
    # the search's own front is {3, 4} (63 at 1,500 and 58 at 2,500 dominate every other trial)
    assert result.on_front == {"tasks": {"toy_mnli": 1, "toy_qqp": 1}, "languages": {}}


def test_matched_comparisons_answer_the_trade_off_question(study: optuna.Study) -> None:
    result = findings(study, NAMES, DIRECTIONS)
    # best direct score 62 (trial 1, 900 tokens/s); fastest STILTs trial scoring >= 62: trial 3, 1,500
    assert result.speedup_at_matched_score == pytest.approx(1500 / 900)
    assert result.matched["speedup_at_matched_score"] == (1, 3)
    # fastest direct trial: 2 (2,000 tokens/s, 55); best STILTs trial at >= 2,000 tokens/s: 4, scoring 58
    assert result.score_gain_at_matched_speed == pytest.approx(3.0)
    assert result.matched["score_gain_at_matched_speed"] == (2, 4)
    text = " ".join(sentences(result))
    assert "Speed-up at matched xtreme_score: 1.67× faster (trial 3 against direct trial 1)" in text
    assert "xtreme_score gain at matched tokens_per_sec: +3 (trial 4 against direct trial 2)" in text


def test_progress_over_compute_and_no_importance_from_a_few_trials(study: optuna.Study) -> None:
    result = findings(study, NAMES, DIRECTIONS)
    assert result.importance == {} and result.importance_problem is not None
    assert result.importance_problem.startswith("6 complete trials, fewer than 20")
    assert result.compute_seconds == [100, 200, 250, 450, 650, 950]  # cumulative, in completion order
    assert len(result.hypervolume_history) == 6 and result.hypervolume_history[-1] == pytest.approx(result.hypervolume["all"])


def test_importance_explains_speed_by_the_deployment_knobs_only_with_signs_and_the_same_each_time() -> None:
    """24 trials: the score rises with an intermediate task and falls with the learning rate; the
    speed falls with the layers kept. The speed's importance names deployment knobs only, the
    numeric ones with the sign of their rank correlation; two computations agree exactly."""
    from stiltsearch.search.results.importance import importances

    study = optuna.create_study(directions=["maximize", "maximize"])
    distributions = {"use_toy_mnli": CategoricalDistribution([False, True]),
                     "target_lr": FloatDistribution(1e-4, 1e-3, log=True),
                     "layers_kept": CategoricalDistribution([1, 2, 4]),
                     "precision": CategoricalDistribution(["fp32", "bf16"])}
    for n in range(24):
        params = {"use_toy_mnli": n % 2 == 0, "target_lr": 1e-4 * (1 + n % 7), "layers_kept": (1, 2, 4)[n % 3],
                  "precision": ("fp32", "bf16")[n % 4 // 2]}
        score = 50 + 8 * params["use_toy_mnli"] - 1e4 * params["target_lr"] + 2 * params["layers_kept"]
        speed = 1e5 / params["layers_kept"] + 10 * (n % 5)
        study.add_trial(_trial(n, params, distributions, [score, speed], {}, START, 10))
    found, problem = importances(study, set(range(24)), NAMES, DIRECTIONS)
    assert problem is None
    assert {i.parameter for i in found["tokens_per_sec"]} <= {"layers_kept", "precision"}
    assert {i.parameter for i in found["xtreme_score"]} == {"use_toy_mnli", "target_lr", "layers_kept", "precision"}
    for ranked in found.values():
        assert sum(i.share for i in ranked) == pytest.approx(1.0)
        assert [i.share for i in ranked] == sorted((i.share for i in ranked), reverse=True)
    signs = {i.parameter: i.sign for i in found["xtreme_score"]}
    assert signs["target_lr"] == -1 and signs["use_toy_mnli"] == 0  # numeric: its sign; categorical: none
    assert {i.parameter: i.sign for i in found["tokens_per_sec"]}["layers_kept"] == -1
    assert importances(study, set(range(24)), NAMES, DIRECTIONS) == (found, None)


def test_no_stilts_trial_that_matches_says_so(study: optuna.Study) -> None:
    only_direct = optuna.create_study(directions=["maximize", "maximize"])
    only_direct.add_trials([t for t in study.trials if not t.user_attrs[CONFIG_ATTR].get("intermediate_tasks")])
    result = findings(only_direct, NAMES, DIRECTIONS)
    assert result.speedup_at_matched_score is None and result.fronts["stilts"] == []
    assert "no STILTs trial scores as well as the best direct one" in " ".join(sentences(result))


def test_the_page_is_self_contained_and_shows_each_trials_config(study: optuna.Study, tmp_path: Path) -> None:
    files = write_report(findings(study, NAMES, DIRECTIONS), tmp_path, "hand-made")
    assert [f.name for f in files] == ["report.html", "report.png", "findings.json"]
    html = (tmp_path / "report.html").read_text()
    # the library inlined (~4.7 MB), nothing fetched when opened
    assert "<script src=" not in html and "Plotly.newPlot" in html and len(html) > 3_000_000
    assert "STILTs (intermediate tasks): front" in html and "direct fine-tuning (no intermediate task): front" in html
    assert "trial 3\\u003cbr\\u003eintermediate=mnli" in html  # hover text (JSON-escaped <br>): tasks and knobs
    assert "Speed-up at matched xtreme_score: 1.67× faster" in html
    assert "tokens_per_sec (real tokens" in html and "xtreme_score (points (0-100))" in html  # axes with units
    assert "on the search's Pareto front: how many of its trials use each" in html
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_question_1_reads_non_english_nli_accuracy_from_the_trials_results(study: optuna.Study, tmp_path: Path) -> None:
    """At the baseline's non-English accuracy (mean over xa, xb), the fastest trial of each family
    that reaches it; per-language differences of the front points drawn against the baseline."""
    from stiltsearch.trainables.tasks import nli_target
    from stiltsearch.trainables import trialdir

    accuracy = {0: (70, 60), 1: (72, 62), 2: (50, 40), 3: (75, 66), 4: (60, 50), 5: (90, 90)}  # (xa, xb)
    for number, (xa, xb) in accuracy.items():
        directory = trialdir.trial_path(tmp_path, number)
        directory.mkdir(parents=True)
        trialdir.write_result(directory, {"eval/toy_xnli/en": 95.0, "eval/toy_xnli/xa": xa, "eval/toy_xnli/xb": xb,
                                          "eval/toy_xnli": 80.0, "eval/toy_panx/xa": 1.0})
    assert nli_target(["toy_panx", "toy_xnli", "toy_tatoeba"]) == "toy_xnli" and nli_target(["toy_panx"]) is None
    result = findings(study, NAMES, DIRECTIONS, nli="toy_xnli", trials_dir=tmp_path)
    assert result.non_english[3] == {"xa": 75.0, "xb": 66.0}  # English and the task mean are not languages
    # baseline mean 65: direct trials reaching it: 0 (1,000 tokens/s) and 1 (900); STILTs: 3 (1,500) and 5 (500)
    assert result.fastest_at_baseline_accuracy == {"stilts": 3, "direct": 0}
    text = " ".join(sentences(result))
    assert "At the baseline's non-English toy_xnli accuracy (65.0, trial 0): the fastest STILTs trial reaching it is 3" in text
    # the end of `stiltsearch run`: each question answered first, then its evidence; then how to get error bars
    said = answers(result, "DIR")
    assert said[0] == ("Q1, speed from STILTs without losing non-English toy_xnli: yes: trial 3 is 1.5× faster than "
                       "the baseline (trial 0, tokens_per_sec) at non-English accuracy 70.5 against 65.0")
    assert said[1] == ("Q2, STILTs against direct fine-tuning: at matched xtreme_score, 1.67× faster (trial 3 against "
                       "direct trial 1); at matched tokens_per_sec, +3 xtreme_score")
    assert said[2].endswith("stiltsearch confirm DIR --seeds 3")
    write_report(result, tmp_path / "report", "hand-made")
    assert "non-English toy_xnli accuracy minus the baseline" in (tmp_path / "report" / "report.html").read_text()


def _confirm(study: optuna.Study, number: int, confirms: int, seed: int, values: list[float]) -> None:
    from stiltsearch.search.study.core import CONFIRMS_ATTR, SEED_ATTR

    original = study.get_trials(deepcopy=False)[confirms]
    study.add_trial(_trial(number, dict(original.params), dict(original.distributions), values,
                           {CONFIG_ATTR: original.user_attrs[CONFIG_ATTR], CONFIRMS_ATTR: confirms, SEED_ATTR: seed},
                           START + datetime.timedelta(hours=3, minutes=number), 100))


def test_confirmations_give_means_deviations_and_what_dominates_beyond_noise(study: optuna.Study, tmp_path: Path) -> None:
    """Trial 3 (STILTs) against the baseline 0 under two more seeds each: 3's score holds up (63,
    64, 62 against 60, 59, 61: 3 points apart with sd 1), so it dominates 0 beyond noise; trial 1's
    62 was a lucky draw (61, 57 after it), so on the means 3 dominates it, not beyond noise in score
    (a gap of 3 with sd 2.6 and 1) but beyond it in speed (1500 against 900, sd 0). The baseline and
    trial 1 tie on the means of score (60) and 1's runs at 1000 tokens/sec bring its speed level with
    0's only if measured so: at 900 against 1000 with no spread, 0 dominates 1 beyond noise too."""
    for number, (confirms, seed, values) in enumerate([(0, 1, [59.0, 1000.0]), (0, 2, [61.0, 1000.0]),
                                                       (3, 1, [64.0, 1500.0]), (3, 2, [62.0, 1500.0]),
                                                       (1, 1, [61.0, 900.0]), (1, 2, [57.0, 900.0])], start=7):
        _confirm(study, number, confirms, seed, values)
    result = findings(study, NAMES, DIRECTIONS)
    assert [t.number for t in result.trials] == [0, 1, 2, 3, 4, 5]  # confirmations are not search trials
    assert result.fronts == {"stilts": [3, 4], "direct": [1, 0, 2]}  # the search's fronts are as before
    by_number = {c.number: c for c in result.confirmed}
    assert sorted(by_number) == [0, 1, 3]
    assert by_number[3].seeds == [0, 1, 2] and by_number[3].runs == [(63.0, 1500.0), (64.0, 1500.0), (62.0, 1500.0)]
    assert by_number[3].mean == (63.0, 1500.0) and by_number[3].sd == pytest.approx((1.0, 0.0))
    assert by_number[1].mean[0] == pytest.approx(60.0)
    assert result.confirmed_front == [3]  # 3 dominates both on the means
    assert (3, 0) in result.beyond_noise and (3, 1) in result.beyond_noise
    assert (0, 1) in result.beyond_noise and (1, 0) not in result.beyond_noise and (0, 3) not in result.beyond_noise
    assert result.confirmed_matched == {"speedup_at_matched_score": 1.5, "score_gain_at_matched_speed": 3.0}
    text = "\n".join(sentences(result))
    assert "Read the comparison with care" not in text  # three trials in each family
    assert "trial 3 (STILTs, seeds 0, 1, 2): xtreme_score 63 ± 1" in text and "On the means, the front is trial 3." in text
    assert text.startswith("Confirmed: ")  # after a confirmation its verdict leads; the single draws follow
    assert not answers(result, "DIR")[-1].startswith("Each trial trained under one seed")  # no confirm line now
    files = write_report(result, tmp_path, "hand-made")
    page = files[0].read_text()
    assert "confirmed: mean" in page and "over training seeds" in page and "\"error_y\"" in page
    assert '"shape":"vh"' in page  # the fronts' staircases: down from each point, then across to the next
    import json

    saved = json.loads(files[2].read_text())
    assert [c["number"] for c in saved["confirmed"]] == [0, 1, 3] and saved["confirmed"][2]["sd"][0] == pytest.approx(1.0)


def test_a_confirmation_plan_is_the_front_and_the_baseline_under_new_seeds_never_twice(study: optuna.Study) -> None:
    from stiltsearch.search.results import confirm

    front = confirm.confirmable(study, NAMES, DIRECTIONS)
    assert front == [0, 3, 4]  # the search's front over all its trials (3 and 4) and the baseline
    assert confirm.seeds(0, 2) == [1, 2]
    _confirm(study, 7, 3, 1, [64.0, 1500.0])
    assert confirm.confirmable(study, NAMES, DIRECTIONS) == front  # a confirmation never joins the front
    plan = confirm.planned(study, front, [1, 2])
    assert (3, 1) not in plan and (3, 2) in plan and len(plan) == 5
    confirm.enqueue(study, plan)
    waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    assert len(waiting) == 5 and confirm.pending(study) == 5
    assert [w.system_attrs["fixed_params"] for w in waiting[:2]] == [study.trials[0].params] * 2  # its own parameters
    assert confirm.planned(study, front, [1, 2]) == []  # enqueued ones count: nothing twice
    assert confirm.unfinished(study, num_trials=8 + 5) is None
    assert confirm.unfinished(study, num_trials=30) == "8 of 30 trials done"


def test_a_family_with_few_trials_is_flagged_in_the_headline(study: optuna.Study) -> None:
    """A search samples the empty task subset rarely (1 of 512): the default 8-trial search had the
    baseline as its only direct trial, so the headline says the direct front is a point or two."""
    few = optuna.create_study(directions=["maximize", "maximize"])
    few.add_trials([t for t in study.trials if t.number in (0, 3, 4, 5)])  # one direct trial, three STILTs
    text = " ".join(sentences(findings(few, NAMES, DIRECTIONS)))
    assert "Read the comparison with care: the direct fine-tuning (no intermediate task) family has fewer than 3" in text
