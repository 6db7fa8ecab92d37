"""One line per trial event on the console, instead of Tune's periodic status tables."""

from __future__ import annotations

import time
from typing import Any

from ray.tune import Callback

from stiltsearch.search.tracking import error_text, trial_number


def describe(config: dict[str, Any]) -> str:
    """A trial's sampled config in one short line."""
    tasks = "+".join(t.removeprefix("toy_") for t in config.get("intermediate_tasks", ())) or "none"
    langs = "+".join(config.get("train_languages", ())) or "en only"
    lr = f" ilr={config['intermediate_lr']:.1e}" if config.get("intermediate_lr") else ""
    model = f"{config['model']} " if config.get("model") else ""
    return (f"intermediate={tasks}{lr} langs={langs} tlr={config.get('target_lr', 0):.1e} {model}"
            f"layers={config.get('layers_kept')} len={config.get('max_seq_length')} {config.get('precision')}")


class ProgressCallback(Callback):
    def __init__(self, total: int, objectives: list[str], start_done: int = 0) -> None:
        self.total = total
        self.objectives = objectives
        self.done = start_done  # trials an earlier session finished
        self.failed = 0
        self.start = time.monotonic()
        self.started: dict[str, float] = {}

    def _say(self, text: str) -> None:
        elapsed = time.monotonic() - self.start
        print(f"[{elapsed:6.0f}s] {text}", flush=True)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.started[trial.trial_id] = time.monotonic()
        self._say(f"trial {trial_number(trial)} started: {describe(trial.config)}")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if result.get("phase") == 2:
            cache = "restored from checkpoint" if result.get("phase2/resumed") else result.get("phase2/cache")
            losses = (f", loss {result['phase2/loss_first']:.2f} -> {result['phase2/loss_last']:.2f}"
                      if "phase2/loss_first" in result else "")
            self._say(f"trial {trial_number(trial)} phase 2 done (cache {cache}{losses})")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        if not all(name in result for name in self.objectives):  # stopped by an interrupt, not finished
            self._say(f"trial {trial_number(trial)} stopped; its finished phases are kept for a resume")
            return
        self.done += 1
        values = ", ".join(f"{name} {result[name]:.4g}" for name in self.objectives if name in result)
        seconds = time.monotonic() - self.started.get(trial.trial_id, self.start)
        self._say(f"trial {trial_number(trial)} done ({self.done + self.failed}/{self.total}) in {seconds:.0f}s: {values}")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.failed += 1
        last = error_text(trial).splitlines()[-1:] or ["?"]
        self._say(f"trial {trial_number(trial)} FAILED ({self.done + self.failed}/{self.total}): {last[0]}\n"
                  f"          traceback: {trial.error_file}")
