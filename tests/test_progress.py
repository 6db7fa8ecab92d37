"""The console's progress line (search/tracking/progress.py): a live tqdm bar on a terminal, plain lines
elsewhere, an ETA from the units finished in this session; and phase 1 showing its steps."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from stiltsearch.search.tracking import progress as progress_module
from stiltsearch.search.tracking.progress import Progress


class Clock:
    """time.monotonic for the module under test, moved by hand (the ETA is arithmetic on it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", fake)
    return fake


def test_plain_lines_count_running_and_failed_with_an_eta_from_this_sessions_trials(
        clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    bar = Progress("search", 10, "trial", initial=2, live=False)  # 2 done by an earlier session
    bar.update(2, running=2, failed=0)  # a trial started: the count did not move, no line
    assert capsys.readouterr().out == ""
    clock.now += 60
    bar.update(3, running=1, failed=0)
    clock.now += 60
    bar.update(4, running=2, failed=1)
    lines = capsys.readouterr().out.splitlines()
    # 1 trial in 60 s -> 7 to go in 7:00; then 2 in 120 s -> 6 to go in 6:00
    assert lines == ["search: 3/10 trials, running 1, failed 0; 01:00 elapsed, ETA 07:00",
                     "search: 4/10 trials, running 2, failed 1; 02:00 elapsed, ETA 06:00"]
    bar.say("trial 5 started")
    assert capsys.readouterr().out == "trial 5 started\n"


def test_plain_lines_every_n_units_and_always_at_the_end(clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    bar = Progress("phase 1 toy-4l", 250, "step", plain_every=100, live=False)
    for step in [*range(20, 250, 20), 250]:  # as training calls it: every 20 steps and at the last
        clock.now += 2
        bar.update(step, loss="3.00")
    lines = capsys.readouterr().out.splitlines()
    assert [re.match(r"phase 1 toy-4l: (\d+)/250 steps, loss 3.00;", line).group(1) for line in lines] == ["100", "200", "250"]
    assert lines[-1].endswith("ETA 00:00")


def test_live_bar_draws_on_its_stream_and_prints_events_above_it(clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    bar = Progress("search", 4, "trial", live=True, stream=stream)
    assert stream.getvalue() == ""  # nothing is drawn before the first update (cached work shows no bar)
    bar.update(0, running=2, failed=0)
    clock.now += 30
    bar.update(1, running=1, failed=0)
    bar.say("trial 2 started")
    bar.close()
    drawn = stream.getvalue()
    assert "search 1/4 trials" in drawn and "running 1, failed 0" in drawn and "\r" in drawn
    assert "trial 2 started" in capsys.readouterr().out


def test_phase_1_shows_its_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from stiltsearch.search.config.reading import load_config
    from stiltsearch.search.launch.models import resolve_models

    (tmp_path / "tiny.yaml").write_text("space: {layers_kept: [1]}\ntoy_model: {layers: [1], hidden: 32, heads: 2, "
                                        "mlm_steps: 40, mlm_batch_size: 16, corpus_per_language: 300}\n")
    cfg = load_config(tmp_path / "tiny.yaml")
    resolve_models(cfg, tmp_path)
    out = capsys.readouterr().out
    assert "phase 1: pretraining the toy encoder (1 layers x 32" in out
    assert re.search(r"^phase 1 toy-1l: 40/40 steps, loss \d+\.\d\d; \S+ elapsed, ETA 00:00$", out, re.M), out
    resolve_models(cfg, tmp_path)  # cached: no bar, no line
    assert capsys.readouterr().out == ""
