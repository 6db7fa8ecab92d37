"""A trial over 2 workers: a Ray Train TorchTrainer inside the trial, DeepSpeed ZeRO-2 over gloo, on a
real local Ray; compared with the same trial on one worker."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import pytest

from stiltsearch.trainables.checkpoint import TrialCheckpoint
from stiltsearch.trainables.params import TrialParams
from stiltsearch.trainables.pipeline import run_trial
from stiltsearch.trainables.settings import EngineSettings, MeterSettings, TrialSettings
from stiltsearch.trainables.trialdir import read_ledger

pytestmark = pytest.mark.cluster

# two intermediate tasks with different heads: every rank must train the same head at each step
PARAMS = TrialParams(intermediate_tasks=("toy_mnli", "toy_ccg"), intermediate_lr=1e-3, target_lr=1e-3, layers_kept=2,
                     max_seq_length=64)


@pytest.fixture(scope="module")
def runs(tiny_model: str, cache: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from stiltsearch.search.launch.raysession import local_ray
    from stiltsearch.trainables.distributed import run_distributed_trial

    base = TrialSettings(model=tiny_model, target_tasks=("toy_xnli", "toy_panx"), cache_dir=str(cache),
                         intermediate_steps=60, target_steps=60, batch_size=16, engine=EngineSettings(zero_stage=2),
                         meter=MeterSettings(repeats=2, max_sequences=128))
    one = run_trial(base, PARAMS, lambda m: None, TrialCheckpoint(tmp_path_factory.mktemp("one") / "0000"))
    directory = tmp_path_factory.mktemp("two") / "0000"
    exposed: set[tuple[str, str, int]] = set()
    stop = threading.Event()
    sampler = threading.Thread(target=_listeners, args=(exposed, stop), daemon=True)
    with local_ray(num_cpus=2, include_dashboard=False, log_to_driver=False):
        sampler.start()
        try:
            two = run_distributed_trial(dataclasses.replace(base, workers=2), PARAMS, directory)
        finally:
            stop.set()
            sampler.join()
    return {"one": one, "two": two, "dir": directory, "exposed": exposed}


def _listeners(exposed: set[tuple[str, str, int]], stop: threading.Event) -> None:
    """Every LISTEN socket of a Ray worker process not on loopback, sampled while the trial runs."""
    import psutil

    while not stop.wait(0.5):
        for proc in psutil.process_iter():
            try:
                if not proc.name().startswith("ray::"):  # Ray's workers name themselves so (setproctitle)
                    continue
                for c in proc.net_connections(kind="inet"):
                    if c.status == psutil.CONN_LISTEN and c.laddr.ip not in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
                        exposed.add((proc.name(), c.laddr.ip, c.laddr.port))
            except psutil.Error:
                continue


def test_the_workers_process_group_listens_on_loopback_only(runs: dict) -> None:
    """Two workers on one node rendezvous through a file (trainables/traingroup.py), not torch's
    TCPStore, which would listen on every interface."""
    assert runs["exposed"] == set()


def test_two_workers_train_as_one_deepspeed_world_and_the_loss_goes_down(runs: dict) -> None:
    two = runs["two"]
    assert two["phase2/world_size"] == 2 and two["phase3/toy_xnli/world_size"] == 2
    assert runs["one"]["phase2/world_size"] == 1
    for prefix in ("phase2", "phase3/toy_xnli", "phase3/toy_panx"):
        assert two[f"{prefix}/loss_last"] < two[f"{prefix}/loss_first"], prefix


def test_two_workers_score_on_the_scale_of_one(runs: dict) -> None:
    """Twice the examples per step (each rank its own batches), so not the same numbers, but the
    same scale: both far above chance and within 15 points of each other."""
    one, two = runs["one"], runs["two"]
    print({k: (round(one[k], 2), round(two[k], 2)) for k in ("eval/toy_xnli", "eval/toy_panx", "xtreme_score",
                                                            "phase2/train_tokens_per_sec", "tokens_per_sec")})
    for task in ("toy_xnli", "toy_panx"):
        assert abs(one[f"eval/{task}"] - two[f"eval/{task}"]) < 15.0, (task, one[f"eval/{task}"], two[f"eval/{task}"])
    assert abs(one["xtreme_score"] - two["xtreme_score"]) < 10.0
    assert two["tokens_per_sec"] > 0 and two["throughput/device"]


def test_rank_0_alone_wrote_the_checkpoint_and_the_ledger(runs: dict) -> None:
    events = read_ledger(runs["dir"])
    # the one-worker run measured the same deployment first, so this one may find its speed cached
    assert events[1] in ("speed measured", "speed cache-hit")
    assert events == ["attempt started", events[1], "phase2 trained", "phase3 toy_xnli trained",
                      "phase3 toy_panx trained", "result saved"]
    assert len({line.split(" ")[1] for line in (runs["dir"] / "phases.log").read_text().splitlines()}) == 1


def test_a_search_with_two_workers_per_trial_finishes_through_tune(cache: Path, tmp_path: Path) -> None:
    """The same path through the CLI, Tune and Optuna: each trial holds a token CPU share and its
    TorchTrainer the workers' CPUs, so 2 workers fit on this 2-CPU machine."""
    import os
    import subprocess
    import sys

    from searchproc import TWO_TARGETS, search_dir, study_states, write_config

    config = write_config(tmp_path, "mw", 2, max_failures=0, targets=TWO_TARGETS)
    config.write_text(config.read_text().replace("max_concurrent: 2", "max_concurrent: 1, workers_per_trial: 2"))
    done = subprocess.run([sys.executable, "-m", "stiltsearch.search.cli", "run", str(config)], cwd=tmp_path,
                          env={**os.environ, "STILTSEARCH_CACHE": str(cache)}, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    directory = search_dir(tmp_path, "mw")
    assert study_states(directory) == {0: "COMPLETE", 1: "COMPLETE"}
    assert "FAILED" not in done.stdout
