"""The driver's Tune callbacks: every trial event goes to MLflow (:class:`MlflowCallback`) and to
the console (:class:`ProgressCallback`, one line per event and a progress line instead of Tune's
status tables).

Both classify an ended trial with the one classifier
(:func:`~stiltsearch.trainables.outcome.classify`), so the study, MLflow and the console agree.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune import Callback

from stiltsearch.search.tracking.progress import Progress
from stiltsearch.search.tracking.tracker import Tracker
from stiltsearch.spaces.knobs import describe
from stiltsearch.trainables import trialdir
from stiltsearch.trainables.objectives import rung_values
from stiltsearch.trainables.outcome import INFEASIBLE, Outcome, classify
from stiltsearch.trainables.params import CONFIRMS_KEY, NUMBER_KEY, SEED_KEY

if TYPE_CHECKING:
    from ray.tune.experiment import Trial


def trial_number(trial: Trial) -> int:
    """A Tune trial's Optuna trial number (the searcher puts it in the config; the baseline is 0)."""
    return int(trial.config.get(NUMBER_KEY, -1))


def error_text(trial: Trial) -> str:
    """The tail of a failed trial's error file (Ray writes the traceback there), ending with the
    last line that names an exception, so its last line is the one-line reason."""
    try:
        with open(trial.error_file) as f:
            lines = [line for line in f.read().strip().splitlines() if line.strip()]
    except (OSError, TypeError):
        return "trial failed (no error file)"
    named = [i for i, line in enumerate(lines) if re.match(r"^\s*[\w.]*(Error|Exception|Interrupt)\b", line)]
    end = named[-1] + 1 if named else len(lines)
    return "\n".join(lines[max(0, end - 8):end])


class _Classifying(Callback):
    def __init__(self, objectives: Sequence[str], trials_dir: Path | None) -> None:
        self.objectives = list(objectives)
        self.trials_dir = trials_dir

    def directory(self, trial: Trial) -> Path | None:
        return trialdir.trial_path(self.trials_dir, trial_number(trial)) if self.trials_dir else None

    def outcome(self, trial: Trial) -> Outcome:
        """How a trial Tune "completed" ended (Tune also completes the trials it stops when the
        search is interrupted, and those a scheduler stops)."""
        return classify(trial.last_result, self.objectives, directory=self.directory(trial))

    def rung(self, trial: Trial) -> int | None:
        directory = self.directory(trial)
        pruned = trialdir.read_pruned(directory) if directory else None
        return None if pruned is None else pruned.get("rung")


class MlflowCallback(_Classifying):
    """Feeds the :class:`Tracker` from Tune's trial events (runs in the driver)."""

    def __init__(self, tracker: Tracker, objectives: Sequence[str], trials_dir: Path | None = None) -> None:
        super().__init__(objectives, trials_dir)
        self.tracker = tracker

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles callbacks it never reads back; the tracker stays
        return {"objectives": self.objectives, "trials_dir": self.trials_dir}

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: object) -> None:
        self.tracker.start_trial(trial_number(trial), trial.config)

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: object) -> None:
        self.tracker.start_trial(trial_number(trial), trial.config)
        self.tracker.trial_result(trial_number(trial), result)

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: object) -> None:
        outcome = self.outcome(trial)
        reason = (trial.last_result or {}).get(INFEASIBLE) if outcome is Outcome.INFEASIBLE else None
        self.tracker.end_trial(trial_number(trial), outcome, error=reason, rung=self.rung(trial))

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: object) -> None:
        self.tracker.end_trial(trial_number(trial), Outcome.FAILED, error=error_text(trial))


class ProgressCallback(_Classifying):
    """One console line per trial event, and the search's progress (:class:`Progress`: done,
    running and failed trials, elapsed time and an ETA from the trials finished so far)."""

    def __init__(self, total: int, objectives: list[str], start_done: int = 0, trials_dir: Path | None = None,
                 live: bool | None = None, extra: Callable[[], dict[str, str]] | None = None) -> None:
        super().__init__(objectives, trials_dir)
        self.extra = extra  # more fields for the progress line (the budget's spent / limit)
        self.total = total
        self.done = start_done  # trials an earlier session finished
        self.failed = 0
        self.started: dict[str, float] = {}  # running trials: Tune id -> monotonic start
        self.progress = Progress("search", total, "trial", initial=start_done, live=live)
        self.start = self.progress.start  # the console's clock is the progress line's

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles callbacks it never reads back; the console stays
        return {"objectives": self.objectives, "trials_dir": self.trials_dir, "total": self.total, "extra": None}

    def _say(self, text: str) -> None:
        elapsed = time.monotonic() - self.start
        self.progress.say(f"[{elapsed:6.0f}s] {text}")

    def _ended(self, trial: Trial) -> float:
        """Seconds the trial ran; it no longer counts as running."""
        return time.monotonic() - self.started.pop(trial.trial_id, self.start)

    def _show(self) -> None:
        self.progress.update(self.done + self.failed, running=len(self.started), failed=self.failed,
                             **(self.extra() if self.extra is not None else {}))

    def on_experiment_end(self, trials: list[Trial], **info: object) -> None:
        self.progress.close()

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: object) -> None:
        self.started[trial.trial_id] = time.monotonic()
        confirms = (f" (confirms trial {trial.config[CONFIRMS_KEY]}, seed {trial.config[SEED_KEY]})"
                    if CONFIRMS_KEY in trial.config else "")
        self._say(f"trial {trial_number(trial)} started{confirms}: {describe(trial.config)}")
        self._show()

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: object) -> None:
        if result.get("phase") == 2:
            cache = "restored from checkpoint" if result.get("phase2/resumed") else result.get("phase2/cache")
            losses = (f", loss {result['phase2/loss_first']:.2f} -> {result['phase2/loss_last']:.2f}"
                      if "phase2/loss_first" in result else "")
            self._say(f"trial {trial_number(trial)} phase 2 done (cache {cache}{losses})")
        found = rung_values(result, self.objectives)
        if found is not None:
            rung, values = found
            budget = result.get(f"rung/{rung}/budget", 0.0)
            shown = ", ".join(f"{name} {v:.4g}" for name, v in zip(self.objectives, values))
            self._say(f"trial {trial_number(trial)} rung {rung} ({budget:.0%} of its budget): {shown}")

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: object) -> None:
        outcome = self.outcome(trial)
        seconds = self._ended(trial)
        if outcome is Outcome.INTERRUPTED:
            self._say(f"trial {trial_number(trial)} stopped; its finished phases are kept for a resume")
            self._show()
            return
        self.done += 1
        self._report(trial, outcome, seconds)
        self._show()

    def _report(self, trial: Trial, outcome: Outcome, seconds: float) -> None:
        if outcome is Outcome.INFEASIBLE:
            trained = "" if "phase2/cache" in (trial.last_result or {}) else ", never trained"
            self._say(f"trial {trial_number(trial)} infeasible ({self.done + self.failed}/{self.total}) in {seconds:.0f}s: "
                      f"{(trial.last_result or {}).get(INFEASIBLE)}{trained}")
            return
        if outcome is Outcome.PRUNED:
            self._say(f"trial {trial_number(trial)} pruned at rung {self.rung(trial)} "
                      f"({self.done + self.failed}/{self.total}) after {seconds:.0f}s")
            return
        result = trial.last_result or {}
        values = ", ".join(f"{name} {result[name]:.4g}" for name in self.objectives if name in result)
        self._say(f"trial {trial_number(trial)} done ({self.done + self.failed}/{self.total}) in {seconds:.0f}s: {values}")

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: object) -> None:
        self.failed += 1
        self._ended(trial)
        last = error_text(trial).splitlines()[-1:] or ["?"]
        self._say(f"trial {trial_number(trial)} FAILED ({self.done + self.failed}/{self.total}): {last[0]}\n"
                  f"          traceback: {trial.error_file}")
        self._show()
