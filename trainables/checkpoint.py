"""A trial's progress on disk: what each finished phase produced, so no phase runs twice.

It lives in the trial's directory (:mod:`.trialdir` owns its layout):

  state.json   what each finished phase produced: phase 2's encoder directory and metrics, each
               target task's scores and metrics (updated atomically after every phase, with the
               SHA-256 of its content; the previous state is kept as state.prev.json). A state
               that fails its check is set aside (state.json.damaged) and the trial continues
               from the previous state, else from its start, with a line in phases.log saying so
  served/      the trained model of the served task (the first with a trained head; loaded with
               ``weights_only=True``), so a trial resumed after that task does not train it again
  result.json  the trial's final metrics: written before the result is reported, so a driver that
               dies between the two still finds it (``stiltsearch resume`` reconciles from it)
  phases.log   one line per phase run or restored, appended: what actually ran, and where

The directory is the checkpoint both for Ray's retries of a trial whose worker died and for a
resumed search; it must be on storage every node sees (the search directory is).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from stiltsearch.trainables.trialdir import (
    log_event,
    log_failure,
    read_result,
    write_atomic,
    write_result,
)
from stiltsearch.trainables.types import Metrics

STATE, PREVIOUS = "state.json", "state.prev.json"


def _digest(state: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


def _checked(path: Path) -> tuple[dict[str, Any] | None, str]:
    """A state file's content if it passes its check, else (None, what is wrong). A state written
    before checksums (release 0.1: the bare mapping) is taken as it is."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None, type(exc).__name__
    if not isinstance(data, dict):
        return None, "not a JSON object"
    if set(data) != {"sha256", "state"}:
        return data, ""  # the unchecked format of release 0.1
    if not isinstance(data["state"], dict) or data["sha256"] != _digest(data["state"]):
        return None, "checksum mismatch"
    return data["state"], ""


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
            self._state = self._read_state()

    def get(self, key: str) -> Any:
        """What a finished phase saved under ``key`` ("phase2", "phase3/<task>"), else None."""
        return self._state.get(key)

    def put(self, key: str, value: Any) -> None:
        self._state[key] = value
        if self.directory is not None and self.writable:
            current = self.directory / STATE
            if current.exists():  # a crash between these two leaves the previous state, still good
                os.replace(current, self.directory / PREVIOUS)
            write_atomic(current, json.dumps({"sha256": _digest(self._state), "state": self._state}))

    def _read_state(self) -> dict[str, Any]:
        """The last state that passes its check: state.json, else state.prev.json, else none."""
        assert self.directory is not None
        damaged = False
        for name in (STATE, PREVIOUS):
            path = self.directory / name
            if not path.exists():
                continue
            state, problem = _checked(path)
            if state is not None:
                if name == PREVIOUS:
                    self.log("state restored from state.prev.json: state.json was damaged or missing")
                return state
            self.log(f"checkpoint {name} damaged ({problem}); set aside as {name}.damaged")
            damaged = True
            if self.writable:
                os.replace(path, path.with_name(path.name + ".damaged"))
        if damaged:
            self.log("no good checkpoint state: the trial starts again from its start")
        return {}

    def save_model(self, data: dict[str, Any]) -> None:
        """The served model as :func:`stiltsearch.trainables.model.portable` data: kept in memory
        only where there is no directory to write it to (at XLM-R Large it is 2.2 GB a trial would
        otherwise hold through every later target)."""
        if self.directory is None or not self.writable:
            self._model = data
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
        import pickle

        from transformers import AutoConfig

        try:
            config = AutoConfig.for_model(**json.loads((served / "config.json").read_text()))
            heads = {name: tuple(spec) for name, spec in json.loads((served / "heads.json").read_text()).items()}
            state = torch.load(served / "state.pt", map_location="cpu", weights_only=True)
        except (OSError, EOFError, RuntimeError, ValueError, KeyError, TypeError, pickle.UnpicklingError) as exc:
            # cut short (a full disk, a copy that stopped) or not ours: the task is trained again,
            # never served from a damaged file nor taken for a failed trial
            self.log(f"served model damaged ({type(exc).__name__}); its task trains again")
            if self.writable:
                shutil.rmtree(served, ignore_errors=True)
            return None
        return {"config": config, "heads": heads, "state": state}  # not kept: the caller checks and drops it

    def log(self, event: str) -> None:
        """Append one line to the ledger of what ran (:func:`.trialdir.log_event`)."""
        if self.directory is not None and self.writable:
            log_event(self.directory, event)

    def log_failure(self, error: BaseException) -> None:
        """The ledger keeps the reason an attempt failed (the searcher reads it back)."""
        if self.directory is not None and self.writable:
            log_failure(self.directory, error)

    def restore(self, state: dict[str, Any]) -> None:
        """Take another process's view of the finished phases (the ranks > 0 of a multi-worker trial)."""
        self._state = dict(state)

    @property
    def state(self) -> dict[str, Any]:
        return dict(self._state)

    def save_result(self, metrics: Metrics) -> None:
        if self.directory is not None and self.writable:
            write_result(self.directory, metrics)

    def result(self) -> dict[str, Any] | None:
        return read_result(self.directory) if self.directory is not None else None
