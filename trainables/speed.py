"""Tokens/sec known before training, and shared between trials with the same deployment.

Inference speed depends on the served architecture, the deployment knobs, the inputs and the
hardware, not on the trained weights (the same matrices are multiplied whatever their values; int8
dynamic quantization and ``torch.compile`` too). So a trial measures it first, before phase 2, on
the phase-1 encoder deployed with the trial's knobs and an untrained head of the served task, and
the measurement is cached under a key of everything it depends on:

- the architecture (the phase-1 model's ``config.json`` values) and the served head (kind, labels);
- every deployment knob (declared with ``applies`` in encoder, inputs, weights or serving);
- the workload itself (a hash of its token ids: the target tasks' dev inputs under the trial's
  max length, batched at its batch size);
- the hardware (the device name and the torch thread count, or the Ray resource a routed meter
  measures on), the meter's settings and :data:`METER_VERSION`.

A trial that finds its key in ``<cache>/speed/`` reuses that measurement: identical deployments get
identical speeds, so the machine's slow and fast spells no longer reorder them on the front, and
the meter runs once per deployment instead of once per trial. ``tests/test_speed.py`` checks the
premise (start-of-trial speed against the trained model's, within the meter's noise).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from stiltsearch.spaces.knobs import KNOBS
from stiltsearch.trainables.params import TrialParams
from stiltsearch.trainables.settings import MeterSettings
from stiltsearch.trainables.throughput import Throughput
from stiltsearch.trainables.trialdir import write_atomic

# Bump when the meter measures differently (passes, workload, latency): older cached speeds are then
# not comparable and are not reused.
METER_VERSION = 2
DEPLOYMENT = ("encoder", "inputs", "weights", "serving")  # knob stages that change what is measured


def deployment(params: TrialParams) -> dict[str, Any]:
    """The trial's knobs that shape the served model or its inputs (read from the declarations)."""
    return {k.name: params[k.name] for k in KNOBS if k.applies in DEPLOYMENT}


def workload_digest(workload: list[dict[str, torch.Tensor]]) -> str:
    digest = hashlib.sha256()
    for batch in workload:
        digest.update(batch["input_ids"].numpy().tobytes())
        digest.update(batch["attention_mask"].numpy().tobytes())
    return digest.hexdigest()[:16]


def speed_key(model_dir: str, head: tuple[str, int], params: TrialParams, workload: list[dict[str, torch.Tensor]],
              meter: MeterSettings, hardware: str) -> str:
    """Content hash of everything a measurement depends on (see the module docstring)."""
    config = Path(model_dir) / "config.json"
    architecture = json.loads(config.read_text()) if config.exists() else {"model": model_dir}
    architecture = {k: v for k, v in architecture.items() if not k.startswith(("_", "transformers_version"))}
    blob = json.dumps({"architecture": architecture, "head": list(head), "knobs": deployment(params),
                       "workload": workload_digest(workload), "hardware": hardware, "threads": torch.get_num_threads(),
                       "meter": {k: v for k, v in asdict(meter).items() if k != "resource"},
                       "version": METER_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class SpeedCache:
    """Measurements by key under ``<cache>/speed/``: one small JSON file each, written atomically."""

    def __init__(self, cache_dir: str | Path) -> None:
        self.root = Path(cache_dir) / "speed"

    def get(self, key: str) -> Throughput | None:
        path = self.root / f"{key}.json"
        try:
            return Throughput(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):  # absent, or damaged: measure again
            return None

    def put(self, key: str, result: Throughput) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomic(self.root / f"{key}.json", json.dumps(asdict(result)))


def hardware(resource: str | None) -> str:
    """What a measurement runs on: this process's device, or the Ray resource a routed meter uses
    (every node holding it is the same kind of node, which is what the resource is for)."""
    from stiltsearch.trainables.throughput import device_name

    if resource is not None:
        return f"routed: {resource}"
    return device_name(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
