"""Kill a real search with SIGKILL mid-flight, resume it, and count what the resume saved.

  python benchmarks/kill_and_resume.py [CONFIG] [--after K]

Runs ``stiltsearch run CONFIG`` (default: the embedded toy search) in a fresh output directory and
a fresh phase-2 cache (the phase-1 models are reused from $STILTSEARCH_CACHE), SIGKILLs the driver once
K trials have finished and another is past phase 2, runs ``stiltsearch resume``, then prints: trials
finished before the kill, phase runs the resume restored from checkpoints or found in the phase-2
cache, and whether the study, the trials' ledgers and MLflow agree on exactly N trials.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from stiltsearch.trainables.trialdir import read_ledger

DONE = ("throughput measured", "result restored")
PHASE2 = ("phase2 trained", "phase2 cache-hit", "phase2 skipped", "phase2 restored")


def ledgers(search_dir: Path) -> dict[int, list[str]]:
    trials = search_dir / "trials"
    return {int(p.name): read_ledger(p) for p in sorted(trials.iterdir())} if trials.is_dir() else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", nargs="?", default=str(Path(__file__).parent.parent / "configs" / "toy.yaml"))
    parser.add_argument("--after", type=int, default=3, help="kill once this many trials have finished")
    args = parser.parse_args()
    from stiltsearch.search.config.reading import load_config
    from stiltsearch.search.layout import cache_dir

    cfg = load_config(args.config)
    work = Path(tempfile.mkdtemp(prefix="kill-resume-"))
    cache = work / "cache"
    cache.mkdir()
    for name in ("models", "torch_extensions"):  # phase 1 is reused; phase 2 starts empty
        if (cache_dir() / name).is_dir():
            os.symlink(cache_dir() / name, cache / name)
    env = {**os.environ, "STILTSEARCH_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    cli = [sys.executable, "-m", "stiltsearch.search.cli"]
    with open(work / "run.log", "w") as log:
        driver = subprocess.Popen([*cli, "run", args.config, "--output-dir", str(work / "runs")], cwd=work, env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
    start = time.monotonic()
    while True:
        dirs = list((work / "runs").glob(f"{cfg.name}-*"))
        trials = ledgers(dirs[0]) if dirs else {}
        done = [n for n, e in trials.items() if any(x in e for x in DONE)]
        flying = [n for n, e in trials.items() if n not in done and any(x in e for x in PHASE2)]
        if len(done) >= args.after and flying:
            break
        if driver.poll() is not None:
            sys.exit(f"the search ended before the kill point; see {work / 'run.log'}")
        time.sleep(0.2)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    search_dir = dirs[0]
    print(f"killed the driver after {time.monotonic() - start:.0f} s: {len(done)} of {cfg.search.num_trials} trials "
          f"finished {sorted(done)}; in flight past phase 2: {sorted(flying)}")
    for number in sorted(flying):
        print(f"  trial {number} had done: {', '.join(e for e in trials[number] if e != 'attempt started')}")
    before = {n: len(e) for n, e in ledgers(search_dir).items()}
    started = time.monotonic()
    with open(work / "resume.log", "w") as log:
        rc = subprocess.run([*cli, "resume", str(search_dir)], cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    print(f"resume: exit {rc} after {time.monotonic() - started:.0f} s "
          f"({(work / 'resume.log').read_text().splitlines()[1] if rc == 0 else 'see ' + str(work / 'resume.log')})")

    after = ledgers(search_dir)
    resumed_events = Counter(e for n, e in after.items() for e in e[before.get(n, 0):])
    restored_phase3 = sum(v for k, v in resumed_events.items() if k.startswith("phase3 ") and k.endswith(" restored"))
    print(f"saved by checkpoints in the resume: phase 2 x{resumed_events['phase2 restored']}, "
          f"phase-3 tasks x{restored_phase3}, whole trials reported from result.json x{resumed_events['result restored']}")
    every = Counter(e for events in after.values() for e in events)
    print(f"phase-2 cache over the whole search: {every['phase2 cache-hit']} hits, {every['phase2 trained']} trained, "
          f"{every['phase2 skipped']} baselines/none")
    repeated = sum(1 for events in after.values() for e, k in Counter(events).items()
                   if k > 1 and (e.endswith(" trained") or e == "throughput measured"))
    with sqlite3.connect(search_dir / "optuna.db") as db:
        states = Counter(state for (state,) in db.execute("select state from trials"))
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=cfg.mlflow.tracking_uri or f"sqlite:///{work / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name(cfg.mlflow.experiment or cfg.name).experiment_id],
                              max_results=10000)
    children = [r for r in runs if r.data.tags.get("stiltsearch.kind") == "trial"]
    parents = [r for r in runs if r.data.tags.get("stiltsearch.kind") == "search"]
    print(f"final: study {dict(states)}; phase runs repeated in any trial: {repeated}; MLflow {len(parents)} parent "
          f"({parents[0].info.status}), {len(children)} children "
          f"({dict(Counter(c.info.status for c in children))}); asked for {cfg.search.num_trials}")
    print(f"files: {work}")
    shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
