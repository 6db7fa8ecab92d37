"""Does multi-objective early stopping pay? Hypervolume against training compute, replayed.

Replays the table of real toy trials ``benchmarks/record_rungs.py`` recorded (each configuration's
objectives at rungs 1/9 and 1/3 of its budget and at its end, and when it reported them) under an
asynchronous simulation of ``--workers`` trial slots, for three searches on the same problem:

- **FIFO + TPE** (today's default): every trial runs to its end; it is charged its full run
  without the rung scoring it did for the table (``rung/<k>/seconds``);
- **MOASHA + TPE** (ours): the search's own sampler (``search/study/core.py: make_sampler``), the
  search's own space (``stilts_space``) and the registered ``moasha`` scheduler
  (``search/schedulers/base.py``, η = 3, smallest budget 1/9) decide; a trial stopped at rung k is
  charged up to its rung-k report, and told to the study as PRUNED;
- **Syne Tune's MOASHA** (``syne-tune``, the peer): its ``MOASHA`` scheduler (non-dominated sort
  with an ε-net, one bracket, grace 1, max 9, η = 3) with its own random suggestions.

A suggestion becomes the nearest configuration of the table not used yet in that search (the
table is a sample of the same space), so a search never pays twice for one configuration. The
hypervolume is the search's (``search/results/pareto.py``, from the declared references). Compute is
trial-seconds (phase 1 excluded), summed over slots. For each seed, FIFO runs ``--fifo-trials``
trials; each early-stopping search then runs until its front's hypervolume reaches FIFO's final
one, or the table runs out (``never``). Figures are medians over seeds, with quartiles.
``--charge training`` replays the same table with a rung's scoring free (see :func:`load`).

    python benchmarks/early_stopping.py [--seeds 10] [--fifo-trials 40] [--workers 2] [--charge all|training]
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# relative_speed: tokens/sec over the meter's reference encoder in the same spell, which the
# recording machine's other work does not move (raw tokens/sec it does, by up to 2x)
OBJECTIVES = ("xtreme_score", "relative_speed")
DIRECTIONS = ("max", "max")
TABLE = Path(__file__).parent / "data" / "toy_rungs.jsonl"


@dataclass(frozen=True)
class Record:
    """One recorded configuration: its objectives at each rung and at its end, and when."""

    params: dict[str, Any]  # as the trial read them
    raw: dict[str, Any]  # Optuna's parameters of the same configuration
    rungs: list[tuple[float, ...]]  # objectives at rung k
    at_rung: list[float]  # trial-seconds at its rung-k report (what stopping there costs)
    end: tuple[float, ...]
    end_seconds: float  # a trial scored at every rung on the way
    fifo_seconds: float  # the same trial with no rung scoring (FIFO's cost)


def load(path: Path, charge: str = "all") -> list[Record]:
    """The table, with each configuration's raw Optuna parameters drawn again as the recorder drew them.

    ``charge="training"`` charges nothing for scoring at a rung: what a rung costs at XLM-R scale,
    where scoring a dev set (XNLI: 37k sentence pairs, forward only) is about 1 % of the training
    before it (392k pairs, forward and backward, several epochs). On the toy it is not: scoring a
    rung costs about as much as training to it, so ``"all"`` (the measured cost) is the default."""
    from record_rungs import configurations

    rows = [json.loads(line) for line in path.read_text().splitlines()]
    drawn = configurations(max(r["index"] for r in rows) + 1, seed=0)
    records = []
    for row in sorted(rows, key=lambda r: r["index"]):
        structured, raw = drawn[row["index"]]
        assert json.loads(json.dumps(structured)) == row["params"], f"config {row['index']} does not draw again"
        rungs = [tuple(float(r[name]) for name in OBJECTIVES) for r in row["rungs"]]
        scoring = [r["scoring_seconds"] for r in row["rungs"]]
        free = charge == "training"  # each rung's scoring up to it is not charged
        at_rung = [r["at_seconds"] - (sum(scoring[:k + 1]) if free else 0.0) for k, r in enumerate(row["rungs"])]
        fifo = row["end"]["at_seconds"] - sum(scoring)
        records.append(Record(row["params"], raw, rungs, at_rung, tuple(float(row["end"][name]) for name in OBJECTIVES),
                              fifo if free else row["end"]["at_seconds"], fifo))
    return records


def _vector(params: dict[str, Any], tasks: Sequence[str], languages: Sequence[str]) -> list[float]:
    """A configuration as numbers for nearest-neighbour matching: subset membership, log10 learning
    rates, and each categorical knob as its own value (compared for equality)."""
    chosen, langs = set(params["intermediate_tasks"]), set(params["train_languages"])
    return ([float(t in chosen) for t in tasks] + [float(lang in langs) for lang in languages]
            # no phase 2, no intermediate rate: any fixed value (the subsets already differ)
            + [math.log10(params.get("intermediate_lr", 3e-4)), math.log10(params["target_lr"])])


def _distance(a: dict[str, Any], b: dict[str, Any], tasks: Sequence[str], languages: Sequence[str]) -> float:
    va, vb = _vector(a, tasks, languages), _vector(b, tasks, languages)
    n_sets = len(tasks) + len(languages)
    subsets = sum(abs(x - y) for x, y in zip(va[:n_sets], vb[:n_sets])) / n_sets
    rates = sum(abs(x - y) for x, y in zip(va[n_sets:], vb[n_sets:]))  # decades
    categorical = sum(a[k] != b[k] for k in ("model", "layers_kept", "max_seq_length", "precision"))
    return subsets + rates + categorical


class Table:
    """The records one search may still use."""

    def __init__(self, records: list[Record], tasks: Sequence[str], languages: Sequence[str]) -> None:
        self.records, self.tasks, self.languages = records, tasks, languages
        self.unused = set(range(len(records)))

    def nearest(self, params: dict[str, Any]) -> int | None:
        if not self.unused:
            return None
        best = min(self.unused, key=lambda i: (_distance(params, self.records[i].params, self.tasks, self.languages), i))
        self.unused.discard(best)
        return best


class Search:
    """One search's decisions: what to try next, and whether a trial goes on at a rung."""

    uses_rungs = True

    def propose(self) -> tuple[Any, int] | None: ...  # (handle, record index)
    def at_rung(self, handle: Any, rung: int, values: tuple[float, ...]) -> bool: ...  # goes on?
    def ended(self, handle: Any, values: tuple[float, ...] | None) -> None: ...  # None: stopped


class OptunaSearch(Search):
    """Our search: the study's TPE over the search space, and optionally our MOASHA scheduler."""

    def __init__(self, table: Table, seed: int, num_trials: int, moasha: bool) -> None:
        import optuna
        from record_rungs import recorded_config

        from stiltsearch.search.config.compose import space_spec
        from stiltsearch.search.config.reading import load_config
        from stiltsearch.search.schedulers import registry
        from stiltsearch.search.study.core import make_sampler, study_directions

        space = recorded_config().space.choices  # the table's space
        cfg = load_config(space=dict(space), search={"scheduler": "moasha" if moasha else "fifo"},
                          objectives=[{"name": name} for name in OBJECTIVES], throughput={"reference": True})
        assert tuple(cfg.objective_names) == OBJECTIVES and tuple(cfg.directions) == DIRECTIONS
        self.table, self.spec, self.uses_rungs = table, space_spec(cfg), moasha
        self.study = optuna.create_study(directions=study_directions(DIRECTIONS),
                                         sampler=make_sampler(seed, num_trials, 0))
        self.scheduler = registry.build(cfg.search.scheduler, cfg.objective_names, cfg.directions, Path(tempfile.mkdtemp()))

    def propose(self) -> tuple[Any, int] | None:
        import optuna

        from stiltsearch.spaces import stilts_space

        probe = self.study.ask()  # what TPE would try ...
        index = self.table.nearest(stilts_space(probe, self.spec))
        self.study.tell(probe, state=optuna.trial.TrialState.FAIL)  # ... FAIL: TPE reads none of it
        if index is None:
            return None
        self.study.enqueue_trial(self.table.records[index].raw)  # ... and the configuration it gets
        trial = self.study.ask()
        stilts_space(trial, self.spec)
        return trial, index

    def at_rung(self, handle: Any, rung: int, values: tuple[float, ...]) -> bool:
        from stiltsearch.trainables.objectives import at_rung

        result = at_rung(rung, dict(zip(OBJECTIVES, values)), ())
        return not self.scheduler.decide(handle.number, result).stop

    def ended(self, handle: Any, values: tuple[float, ...] | None) -> None:
        import optuna

        if values is None:
            self.study.tell(handle, state=optuna.trial.TrialState.PRUNED)
        else:
            self.study.tell(handle, list(values))


class SyneTuneMoasha(Search):
    """Syne Tune's MOASHA with its own (random) suggestions."""

    MAX_T = 9  # rungs at 1 and 3 of 9: the table's 1/9 and 1/3

    def __init__(self, table: Table, seed: int) -> None:
        from syne_tune.config_space import randint
        from syne_tune.optimizer.schedulers.multiobjective.moasha import MOASHA

        self.table = table
        self.scheduler = MOASHA(config_space={"index": randint(0, len(table.records) - 1)}, metrics=list(OBJECTIVES),
                                do_minimize=False, time_attr="budget", max_t=self.MAX_T, grace_period=1,
                                reduction_factor=3, random_seed=seed)
        self.rng = random.Random(seed)
        self.count = 0

    def propose(self) -> tuple[Any, int] | None:
        from datetime import datetime

        from syne_tune.backend.trial_status import Trial

        suggestion = self.scheduler.suggest()
        index = suggestion.config["index"]
        if index not in self.table.unused:  # drawn before: another unused one, at random
            if not self.table.unused:
                return None
            index = self.rng.choice(sorted(self.table.unused))
        self.table.unused.discard(index)
        trial = Trial(trial_id=self.count, config={"index": index}, creation_time=datetime.now())
        self.count += 1
        self.scheduler.on_trial_add(trial)
        return trial, index

    def at_rung(self, handle: Any, rung: int, values: tuple[float, ...]) -> bool:
        from syne_tune.optimizer.scheduler import SchedulerDecision

        result = {"budget": 3**rung, **dict(zip(OBJECTIVES, values))}
        return self.scheduler.on_trial_result(handle, result) == SchedulerDecision.CONTINUE

    def ended(self, handle: Any, values: tuple[float, ...] | None) -> None:
        if values is not None:
            self.scheduler.on_trial_complete(handle, {"budget": self.MAX_T, **dict(zip(OBJECTIVES, values))})
        else:
            self.scheduler.on_trial_remove(handle)


def simulate(search: Search, records: list[Record], workers: int, stop: Callable[[int, float], bool]) -> dict[str, Any]:
    """Run ``search`` over the table with ``workers`` asynchronous slots until ``stop(finished,
    hypervolume)`` or nothing is left -> the hypervolume after each finished trial, against the
    compute spent by then, and the trials started and stopped."""
    from stiltsearch.search.results.pareto import hypervolume
    from stiltsearch.trainables.objectives import reference

    ref = tuple(reference(name) for name in OBJECTIVES)
    events: list[tuple[float, int, int, Any, int]] = []  # (time, order, rung or -1 for the end, handle, index)
    starts: dict[int, float] = {}  # order -> start time, while running
    spent, order, points = 0.0, 0, []
    history: list[tuple[float, float]] = []  # (compute, hypervolume) after each finished trial
    started = stopped = 0
    now = 0.0

    def launch() -> bool:
        nonlocal order, started
        proposed = search.propose()
        if proposed is None:
            return False
        handle, index = proposed
        record = records[index]
        first = (now + record.at_rung[0], 0) if search.uses_rungs and record.rungs else (now + record.fifo_seconds, -1)
        heapq.heappush(events, (first[0], order, first[1], handle, index))
        starts[order] = now
        order, started = order + 1, started + 1
        return True

    for _ in range(workers):
        if not launch():
            break
    while events:
        now, key, rung, handle, index = heapq.heappop(events)
        record = records[index]
        if rung >= 0 and search.at_rung(handle, rung, record.rungs[rung]):  # goes on
            nxt = (starts[key] + record.at_rung[rung + 1], rung + 1) if rung + 1 < len(record.rungs) else (
                starts[key] + record.end_seconds, -1)
            heapq.heappush(events, (nxt[0], key, nxt[1], handle, index))
            continue
        spent += now - starts.pop(key)
        if rung >= 0:  # stopped at this rung
            search.ended(handle, None)
            stopped += 1
        else:
            search.ended(handle, record.end)
            points.append(record.end)
        running = sum(now - s for s in starts.values())
        history.append((spent + running, hypervolume(points, DIRECTIONS, ref) if points else 0.0))
        if stop(len(points), history[-1][1]):
            break
        launch()
    return {"history": history, "started": started, "stopped": stopped}


def compute_to_reach(history: list[tuple[float, float]], target: float) -> float | None:
    return next((compute for compute, hv in history if hv >= target * (1 - 1e-12)), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--fifo-trials", type=int, default=40, help="the FIFO search's size, whose hypervolume is the target")
    parser.add_argument("--workers", type=int, default=2, help="concurrent trial slots")
    parser.add_argument("--charge", choices=("all", "training"), default="all",
                        help="all: the measured cost; training: a rung's scoring is free, as at XLM-R scale")
    args = parser.parse_args()

    import optuna

    from stiltsearch.search.config.schema import SearchConfig

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    records = load(args.table, args.charge)
    cfg = SearchConfig()
    tasks, languages = cfg.intermediate_tasks, cfg.languages
    print(f"table: {len(records)} recorded toy trials ({args.table.name}); FIFO runs {args.fifo_trials}, "
          f"{args.workers} slots, {args.seeds} seeds; charged: {args.charge}")
    # what early stopping can save at best: a stopped trial's cost against a FIFO trial's
    for k in range(len(records[0].rungs)):
        share = statistics.median(r.at_rung[k] / r.fifo_seconds for r in records)
        budget = 3.0 ** (k - len(records[0].rungs))
        print(f"a trial stopped at rung {k} (budget {budget:.3f}) costs {share:.2f} of its FIFO run (median)")
    print(f"a trial that goes on to its end costs {statistics.median(r.end_seconds / r.fifo_seconds for r in records):.2f} "
          f"of its FIFO run (it also scored at the rungs)")
    fractions: dict[str, list[float | None]] = {"ours": [], "syne-tune": []}
    for seed in range(args.seeds):
        fifo = simulate(OptunaSearch(Table(records, tasks, languages), seed, args.fifo_trials, moasha=False),
                        records, args.workers, lambda n, hv: n >= args.fifo_trials)
        compute, target = fifo["history"][-1]
        line = [f"seed {seed}: FIFO hypervolume {target:.4g} after {compute:.0f} trial-s"]
        for name, search in (("ours", OptunaSearch(Table(records, tasks, languages), seed, args.fifo_trials, moasha=True)),
                             ("syne-tune", SyneTuneMoasha(Table(records, tasks, languages), seed))):
            run = simulate(search, records, args.workers, lambda n, hv, t=target: hv >= t)
            reached = compute_to_reach(run["history"], target)
            fractions[name].append(None if reached is None else reached / compute)
            shown = "never" if reached is None else f"{reached / compute:.2f}"
            line.append(f"{name} {shown} ({run['started']} started, {run['stopped']} stopped)")
        print("; ".join(line), flush=True)

    def summary(values: list[float | None]) -> str:
        """The median over seeds, a seed that never got there counting as worse than any that did."""
        ordered = sorted(values, key=lambda v: math.inf if v is None else v)
        median = ordered[len(ordered) // 2] if len(ordered) % 2 else None
        if len(ordered) % 2 == 0:
            a, b = ordered[len(ordered) // 2 - 1], ordered[len(ordered) // 2]
            median = None if a is None or b is None else (a + b) / 2
        return "never" if median is None else f"{median:.2f}"

    for name, values in fractions.items():
        reached = [v for v in values if v is not None]
        quartiles = statistics.quantiles(reached, n=4, method="inclusive") if len(reached) >= 2 else []
        spread = (f"quartiles {quartiles[0]:.2f}-{quartiles[2]:.2f}" if quartiles
                  else f"at {reached[0]:.2f}" if reached else "")
        print(f"{name}: reached FIFO's hypervolume in {len(reached)}/{len(values)} seeds; {spread}")
    print(f"compute to reach FIFO's hypervolume: ours {summary(fractions['ours'])}, "
          f"syne-tune {summary(fractions['syne-tune'])}")


if __name__ == "__main__":
    main()
