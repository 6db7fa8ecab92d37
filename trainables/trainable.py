"""The Ray Tune trainable: a thin seam between Ray's session API and :func:`run_trial`.

Every Ray call a trial makes is here (Ray's reporting API has moved between versions; see
notes/stack.md for the 2.60 names), so the pipeline itself stays plain Python.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from stiltsearch.trainables import quiet_libraries
from stiltsearch.trainables.pipeline import TrialParams, TrialSettings, run_trial

STATE_FILE = "stilts_state.json"  # the phase checkpoint: which phase is done and where its result is


def stilts_trainable(config: dict[str, Any], settings: TrialSettings) -> None:
    """Tune function trainable: resumes from the last phase checkpoint if Ray restarted it."""
    from ray import tune

    quiet_libraries()
    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            resume = json.loads((Path(directory) / STATE_FILE).read_text())

    def report(metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
        if state is None:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as directory:
            (Path(directory) / STATE_FILE).write_text(json.dumps(state))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))

    run_trial(settings, TrialParams.from_config(config), report, resume)
