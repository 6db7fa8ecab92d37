"""One suite over every scheduler in the registry (search/schedulers/registry.py), through the
Ray seam a search uses (``launch.tuner.TuneScheduler``, with Ray Tune's own ``Trial`` objects):
its decisions keep the scheduler contract, a resumed scheduler decides as the one it replaces, and
a trial it stops is PRUNED by the one classifier every part of the search reads."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from stiltsearch.search.launch.tuner import TuneScheduler
from stiltsearch.search.schedulers import registry
from stiltsearch.search.schedulers.registry import SCHEDULERS
from stiltsearch.trainables import trialdir
from stiltsearch.trainables.objectives import at_rung
from stiltsearch.trainables.outcome import Outcome, classify
from stiltsearch.trainables.params import CONFIRMS_KEY, NUMBER_KEY

OBJECTIVES, DIRECTIONS = ["xtreme_score", "tokens_per_sec"], ["max", "max"]
TRIALS = 9


def reports(settings: Any, number: int) -> list[dict[str, Any]]:
    """What trial ``number`` reports, in order: its speed, each rung of ``settings``, its end."""
    rng = random.Random(number)
    score, speed = 40 + 20 * rng.random(), 1000 * (1 + rng.random())
    rungs = [at_rung(k, {"xtreme_score": score * (0.5 + 0.5 * budget), "tokens_per_sec": speed}, ())
             for k, budget in enumerate(settings.rungs)]
    return [{"tokens_per_sec": speed, "phase": 1}, *rungs, {"phase": 3, "xtreme_score": score, "tokens_per_sec": speed}]


def drive(seam: TuneScheduler, settings: Any, numbers: range) -> dict[int, tuple[str, dict[str, Any]]]:
    """Each trial's reports through the seam until it is stopped: {number: (last decision, last result)}."""
    out = {}
    for number in numbers:
        trial = Trial("stilts", config={NUMBER_KEY: number}, stub=True)
        for result in reports(settings, number):
            decision = seam.on_trial_result(None, trial, result)
            out[number] = (decision, result)
            if decision == TrialScheduler.STOP:
                break
    return out


def seam_for(name: str, trials: Path) -> TuneScheduler:
    settings = SCHEDULERS[name].Settings()
    return TuneScheduler(registry.build(settings, OBJECTIVES, DIRECTIONS, trials), trials)


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_a_scheduler_stops_only_at_a_rung_and_never_a_trial_that_reached_its_end(name: str, tmp_path: Path) -> None:
    settings = SCHEDULERS[name].Settings()
    ended = drive(seam_for(name, tmp_path), settings, range(TRIALS))
    for number, (decision, result) in ended.items():
        if decision == TrialScheduler.STOP:
            assert "rung" in result, (number, result)  # a stop is a verdict at a rung, recorded there
            verdict = trialdir.read_rungs(trialdir.trial_path(tmp_path, number))[result["rung"]]
            assert verdict["goes_on"] is False
        else:
            assert result.get("phase") == 3  # ran to its end
    again = drive(seam_for(name, tmp_path / "again"), settings, range(TRIALS))
    assert [d for d, _ in again.values()] == [d for d, _ in ended.values()]  # deterministic
    if settings.rungs:  # a scheduler with rungs stops some of 9 trials with spread-out objectives
        assert any(d == TrialScheduler.STOP for d, _ in ended.values())


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_a_resumed_scheduler_decides_as_the_one_it_replaces(name: str, tmp_path: Path) -> None:
    settings = SCHEDULERS[name].Settings()
    first = seam_for(name, tmp_path)
    drive(first, settings, range(5))
    resumed = seam_for(name, tmp_path)  # a new driver session: its state from the trials' directories
    for number in range(5, TRIALS):
        assert drive(resumed, settings, range(number, number + 1)) == drive(first, settings, range(number, number + 1))


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_a_trial_a_scheduler_stops_is_pruned_and_every_other_is_not(name: str, tmp_path: Path) -> None:
    settings = SCHEDULERS[name].Settings()
    for number, (decision, result) in drive(seam_for(name, tmp_path), settings, range(TRIALS)).items():
        outcome = classify(result, OBJECTIVES, directory=trialdir.trial_path(tmp_path, number))
        assert (outcome is Outcome.PRUNED) == (decision == TrialScheduler.STOP)
        assert outcome in (Outcome.PRUNED, Outcome.COMPLETE)


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_no_scheduler_stops_a_confirmation(name: str, tmp_path: Path) -> None:
    """A confirmation (``stiltsearch confirm``) re-measures a trial's configuration under another
    seed: its error bars need every run to its end, and its rung scores compete with no trial."""
    settings = SCHEDULERS[name].Settings()
    seam = seam_for(name, tmp_path)
    drive(seam, settings, range(TRIALS))  # the search's own trials fill the rungs
    for number in range(TRIALS, TRIALS + 4):  # confirmations of the worst-ranked trials
        trial = Trial("stilts", config={NUMBER_KEY: number, CONFIRMS_KEY: number - TRIALS}, stub=True)
        for result in reports(settings, number - TRIALS + 100):
            assert seam.on_trial_result(None, trial, result) == TrialScheduler.CONTINUE
        assert trialdir.read_pruned(trialdir.trial_path(tmp_path, number)) is None
