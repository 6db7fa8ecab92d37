"""The multi-objective successive-halving rule (search/schedulers/rungs.py) on hand-made rung records: who
goes on, the tie-break inside a front, the reduction factor and the smallest budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from stiltsearch.search.schedulers.rungs import Rungs, contributions, order, rung_budgets


def test_rungs_sit_at_geometric_fractions_of_the_budget() -> None:
    assert rung_budgets(1 / 9, 3) == pytest.approx([1 / 9, 1 / 3])
    assert rung_budgets(1 / 27, 3) == pytest.approx([1 / 27, 1 / 9, 1 / 3])
    assert rung_budgets(1 / 4, 2) == pytest.approx([1 / 4, 1 / 2])
    assert rung_budgets(1.0, 3) == []  # the smallest budget is the whole: no rung, nothing stopped
    with pytest.raises(ValueError, match="reduction_factor: must be > 1"):
        rung_budgets(1 / 9, 1)
    with pytest.raises(ValueError, match="min_budget"):
        rung_budgets(0, 3)


def test_hypervolume_contribution_is_the_area_a_front_loses_without_the_point() -> None:
    assert contributions([(3.0, 1.0), (2.0, 2.0), (1.0, 3.0)], (0.0, 0.0)) == [1.0, 1.0, 1.0]
    # widening the first point's lead widens only its own exclusive area
    assert contributions([(4.0, 1.0), (2.0, 2.0), (1.0, 3.0)], (0.0, 0.0)) == [2.0, 1.0, 1.0]
    assert contributions([(5.0,), (2.0,)], (0.0,)) == [3.0, 2.0]


def test_order_is_front_first_then_contribution_then_number() -> None:
    points = {0: (3.0, 1.0), 1: (2.0, 2.0), 2: (1.0, 3.0), 3: (1.5, 1.5), 4: (6.0, 1.0)}
    # 4 dominates 0; the front is {4, 1, 2}: 4's area (6-2)*1 = 4, then 1 and 2 (1 each, 1 first)
    assert order(points, (0.0, 0.0)) == [4, 1, 2, 0, 3]


def test_a_trial_goes_on_only_in_the_top_third_of_its_rung_as_it_arrives() -> None:
    rungs = Rungs(directions=["max", "max"], reference=[0.0, 0.0])
    assert rungs.goes_on(0, 0, (60.0, 1000.0))  # the first to arrive always goes on
    assert not rungs.goes_on(0, 1, (50.0, 900.0))  # dominated by trial 0; top 1 of 2
    assert rungs.goes_on(0, 2, (70.0, 1100.0))  # dominates both
    assert not rungs.goes_on(0, 3, (55.0, 950.0))  # 4 recorded: top 2 are 2 and 0
    assert rungs.goes_on(0, 4, (40.0, 5000.0))  # a new extreme of the front: a large contribution
    assert rungs.recorded[0][4] == (40.0, 5000.0)
    assert rungs.goes_on(1, 2, (72.0, 1100.0))  # each rung keeps its own records
    with pytest.raises(ValueError, match="rung 2: the rungs are 0..1"):
        rungs.goes_on(2, 2, (72.0, 1100.0))


def test_a_minimised_objective_ranks_smaller_first_and_eta_sets_the_share_kept() -> None:
    rungs = Rungs(directions=["max", "min"], reference=[0.0, 10_000.0], reduction_factor=2, min_budget=1 / 4)
    assert len(rungs.budgets) == 2
    assert rungs.goes_on(0, 0, (60.0, 5.0))
    assert not rungs.goes_on(0, 1, (60.0, 9.0))  # slower at the same score: dominated
    assert rungs.goes_on(0, 2, (65.0, 4.0))  # 3 recorded, eta 2: top 2 go on
    assert rungs.goes_on(0, 3, (59.0, 4.5)) is False  # dominated by 2


def test_the_registered_scheduler_judges_rung_reports_and_a_resume_rebuilds_its_records(tmp_path: Path) -> None:
    from stiltsearch.search.config.reading import load_config
    from stiltsearch.search.schedulers import registry
    from stiltsearch.trainables import trialdir
    from stiltsearch.trainables.objectives import at_rung

    cfg = load_config(search={"scheduler": "moasha"})
    assert cfg.search.scheduler.rungs == pytest.approx((1 / 9, 1 / 3))
    assert load_config().search.scheduler.rungs == ()  # fifo: trials report at no rung
    trials = tmp_path / "trials"
    scheduler = registry.build(cfg.search.scheduler, cfg.objective_names, cfg.directions, trials)

    def report(rung: int, score: float, speed: float) -> dict:
        return {**at_rung(rung, {cfg.objective_names[0]: score, "tokens_per_sec": speed, "phase2/seconds": 3.0}, ()),
                f"rung/{rung}/budget": 1 / 9}

    assert not scheduler.decide(0, {"phase": 1, "tokens_per_sec": 5.0}).stop  # not a rung report
    first = scheduler.decide(0, report(0, 60.0, 1000.0))
    assert (first.stop, first.rung, first.values) == (False, 0, (60.0, 1000.0))
    assert scheduler.decide(1, report(0, 50.0, 900.0)).stop  # dominated: not in the top third of 2
    for number, decision in ((0, first), (1, scheduler.decide(1, report(0, 50.0, 900.0)))):
        trialdir.record_rung(trialdir.trial_path(trials, number), 0, list(decision.values), goes_on=not decision.stop)
    # a new driver session: the same verdict for the next arrival as if it had never stopped
    resumed = registry.build(cfg.search.scheduler, cfg.objective_names, cfg.directions, trials)
    assert resumed.rungs.recorded == scheduler.rungs.recorded
    assert resumed.decide(2, report(0, 55.0, 950.0)).stop == scheduler.decide(2, report(0, 55.0, 950.0)).stop
    assert trialdir.read_rungs(trialdir.trial_path(trials, 1)) == {0: {"values": [50.0, 900.0], "goes_on": False}}
