"""A trial's progress on disk: what each finished phase produced, so no phase runs twice.

One directory per trial, ``<search dir>/trials/<number>/`` (the Optuna trial number):

  state.json   what each finished phase produced: phase 2's encoder directory and metrics, each
               target task's scores and metrics (updated atomically after every phase)
  served/      the trained model of the task whose throughput is measured (weights, loaded with
               ``weights_only=True``), so a trial resumed after that task does not train it again
  result.json  the trial's final metrics: written before the result is reported, so a driver that
               dies between the two still finds it (``stiltsearch resume`` reconciles from it)
  phases.log   one line per phase run or restored, appended: what actually ran, and where

The directory is the checkpoint both for Ray's retries of a trial whose worker died and for a
resumed search; it must be on storage every node sees (the search directory is).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import torch


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)  # readers see the old file or the new one, never half of one


class TrialCheckpoint:
    """Phase state of one trial; ``directory=None`` keeps it in memory (direct runs, benchmarks).

    ``writable=False`` reads the directory but never writes it: the ranks > 0 of a trial that spans
    several workers (rank 0 writes for all of them).
    """

    def __init__(self, directory: str | Path | None, writable: bool = True) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.writable = writable
        self._state: dict[str, Any] = {}
        self._model: dict[str, Any] | None = None
        if self.directory is not None:
            if writable:
                self.directory.mkdir(parents=True, exist_ok=True)
            if (self.directory / "state.json").exists():
                self._state = json.loads((self.directory / "state.json").read_text())

    def get(self, key: str) -> Any:
        """What a finished phase saved under ``key`` ("phase2", "phase3/<task>"), else None."""
        return self._state.get(key)

    def put(self, key: str, value: Any) -> None:
        self._state[key] = value
        if self.directory is not None and self.writable:
            _write_atomic(self.directory / "state.json", json.dumps(self._state))

    def save_model(self, data: dict[str, Any]) -> None:
        """The served model as :func:`stiltsearch.trainables.model.portable` data."""
        self._model = data
        if self.directory is None or not self.writable:
            return
        staging = self.directory / "served.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        (staging / "config.json").write_text(data["config"].to_json_string())
        (staging / "heads.json").write_text(json.dumps(data["heads"]))
        torch.save(data["state"], staging / "state.pt")
        final = self.directory / "served"
        shutil.rmtree(final, ignore_errors=True)  # a crash here only costs retraining this task
        os.replace(staging, final)

    def load_model(self) -> dict[str, Any] | None:
        if self._model is not None or self.directory is None:
            return self._model
        served = self.directory / "served"
        if not (served / "state.pt").exists():
            return None
        from transformers import AutoConfig

        config = AutoConfig.for_model(**json.loads((served / "config.json").read_text()))
        heads = {name: tuple(spec) for name, spec in json.loads((served / "heads.json").read_text()).items()}
        state = torch.load(served / "state.pt", map_location="cpu", weights_only=True)
        self._model = {"config": config, "heads": heads, "state": state}  # read once per attempt
        return self._model

    def log(self, event: str) -> None:
        """Append one line to the ledger of what ran: ``<unix time> <host>:<pid> <event>``."""
        if self.directory is not None and self.writable:
            with open(self.directory / "phases.log", "a") as f:
                f.write(f"{time.time():.3f} {socket.gethostname()}:{os.getpid()} {event}\n")

    def save_result(self, metrics: dict[str, Any]) -> None:
        if self.directory is not None and self.writable:
            _write_atomic(self.directory / "result.json", json.dumps(metrics))

    def result(self) -> dict[str, Any] | None:
        return read_result(self.directory) if self.directory is not None else None


def read_result(directory: Path) -> dict[str, Any] | None:
    """A finished trial's final metrics, or None if it never finished."""
    path = directory / "result.json"
    return json.loads(path.read_text()) if path.exists() else None


def read_ledger(directory: Path) -> list[str]:
    """The events of a trial's ledger, in order, without time and process ("phase2 trained", ...)."""
    path = directory / "phases.log"
    if not path.exists():
        return []
    return [line.split(" ", 2)[2] for line in path.read_text().splitlines() if line.count(" ") >= 2]
