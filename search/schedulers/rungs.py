"""Multi-objective asynchronous successive halving: which trials go on at a rung.

The decision rule of a MOASHA scheduler (Schmucker et al. 2021, "Multi-objective asynchronous
successive halving"), as pure data: rungs at geometric fractions of a trial's budget
(``min_budget * reduction_factor**k`` up to 1), and at each rung a trial goes on only if it ranks
in the top ``1 / reduction_factor`` of the trials that have reached that rung so far. Asynchronous,
as ASHA: nothing waits for a rung to fill; a trial is judged against what is recorded when it
arrives (the first to arrive always goes on, as in ASHA).

Ranking: non-dominated sorting first (a trial on a better front ranks higher), then, inside a
front, by **hypervolume contribution** (the area the front loses without the trial, counted from
the objectives' declared references). Why that tie-break rather than Syne Tune's epsilon-net: the
search is judged by its front's hypervolume, and the contribution is exactly what keeping a trial
is worth to it; with two objectives it is exact and cheap; the two ends of a front extend to the
references, so the extremes are kept, which is what an epsilon-net's spread protects. Ties in
contribution go to the earlier trial (lower number), so the order is total and repeatable.

The fidelity (registered as ``search.scheduler: moasha`` in :mod:`.schedulers`; the trial side is
``trainables/pipeline.py: _rungs``). A trial's budget is its training: phase 2's steps and each
target's phase-3 steps, the two phases that cost the GPU-hours. At rung ``k`` (budget ``b``):

- phase 2 has trained ``ceil(b * S2)`` of its ``S2`` steps. Its learning-rate schedule (linear
  warmup, linear decay) is laid over the full ``S2`` steps, so the first ``ceil(b * S2)`` steps
  are exactly those of the full run; a trial that goes on continues the same engine, optimizer
  and batch stream in its process (``trainables/engine.py: TrainingRun``), it never starts over,
  and its end equals a run that was never scored on the way (``tests/test_fidelity.py`` checks
  equality of the loss curve and every score);
- each target is fine-tuned ``ceil(b * S3)`` of its ``S3`` steps from that encoder (again a
  prefix: the schedule spans ``S3``), then scored exactly as at the end: the same metric, the same
  languages, the model as deployed; the speed is known before training. This phase-3 work is not
  carried on (the encoder under it moves on); it is what scoring a rung costs, ``rung/<k>/seconds``
  (with the defaults, a promoted trial trains phase 3 for ``1/9 + 1/3 + 1 = 1.44`` of its budget,
  phase 2 exactly once);
- the rung's heads and dropout draw from a fork of torch's random state, so they change nothing
  of what follows;
- a trial whose phase 2 is in the cache (or that has none) has paid for it: it is scored on the
  full phase-2 encoder at every rung, and only phase 3 is cut.

The scheduler's verdict at each rung is written to the trial's ``rungs.json`` by the driver
(``search/launch/tuner.py``); a resumed search rebuilds the rungs' records from these, and a restarted
trial does not score again a rung it passed. A stopped trial ends PRUNED in the study (Optuna's TPE
then counts it among its "bad" trials, ``search/study/core.py: make_sampler``), FINISHED in MLflow with
``stopped_at_rung`` and its ``rung/<k>/<objective>`` metrics, and off the front. A multi-worker
trial reports only its end, so ``moasha`` asks for ``workers_per_trial: 1``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from stiltsearch.search.results.pareto import pareto_ranks

Point = tuple[float, ...]


def rung_budgets(min_budget: float, reduction_factor: float) -> list[float]:
    """Budget fractions of the rungs below the full budget, smallest first (1/9, 1/3 for 1/9 and 3)."""
    if not 0 < min_budget <= 1:
        raise ValueError(f"min_budget: give a fraction of the budget in (0, 1], got {min_budget}")
    if reduction_factor <= 1:
        raise ValueError(f"reduction_factor: must be > 1, got {reduction_factor}")
    budgets, budget = [], min_budget
    while budget < 1 - 1e-9:
        budgets.append(budget)
        budget *= reduction_factor
    return budgets


def contributions(points: Sequence[Point], reference: Point) -> list[float]:
    """Hypervolume contribution of each point of a front of mutually non-dominated, maximised
    points (one or two objectives), counted from ``reference``."""
    if not points:
        return []
    if len(reference) == 1:
        ordered = sorted(range(len(points)), key=lambda i: -points[i][0])
        out = [0.0] * len(points)
        for position, i in enumerate(ordered):
            below = points[ordered[position + 1]][0] if position + 1 < len(ordered) else reference[0]
            out[i] = max(0.0, points[i][0] - below)
        return out
    if len(reference) != 2:
        raise ValueError("hypervolume contributions are implemented for one or two objectives")
    ordered = sorted(range(len(points)), key=lambda i: (-points[i][0], points[i][1]))  # x down, so y up
    out = [0.0] * len(points)
    for position, i in enumerate(ordered):
        x, y = points[i]
        right = points[ordered[position + 1]][0] if position + 1 < len(ordered) else reference[0]
        below = points[ordered[position - 1]][1] if position > 0 else reference[1]
        out[i] = max(0.0, x - right) * max(0.0, y - below)
    return out


def order(points: Mapping[int, Point], reference: Point) -> list[int]:
    """Trial numbers best first: by non-dominated rank, then by hypervolume contribution inside
    the front, then by trial number."""
    numbers = sorted(points)
    ranks = pareto_ranks([points[n] for n in numbers], ["max"] * len(reference))
    key: dict[int, tuple[int, float, int]] = {}
    for rank in set(ranks):
        members = [n for n, r in zip(numbers, ranks) if r == rank]
        for n, c in zip(members, contributions([points[m] for m in members], reference)):
            key[n] = (rank, -c, n)
    return sorted(numbers, key=lambda n: key[n])


@dataclass
class Rungs:
    """What each rung has recorded, and the rule that decides who goes on.

    ``directions`` and ``reference`` are per objective, in the config's order; points are kept
    maximised (a minimised objective's values negated), so one rule serves both.
    """

    directions: Sequence[str]
    reference: Sequence[float]
    reduction_factor: float = 3.0
    min_budget: float = 1 / 9
    recorded: dict[int, dict[int, Point]] = field(default_factory=dict)  # rung -> {trial: point}

    @property
    def budgets(self) -> list[float]:
        return rung_budgets(self.min_budget, self.reduction_factor)

    def _maximised(self, values: Sequence[float]) -> Point:
        return tuple(v if d == "max" else -v for v, d in zip(values, self.directions, strict=True))

    def record(self, rung: int, number: int, values: Sequence[float]) -> dict[int, Point]:
        """Record trial ``number``'s objectives at ``rung`` (again: replaced); that rung's records."""
        if not 0 <= rung < len(self.budgets):
            raise ValueError(f"rung {rung}: the rungs are 0..{len(self.budgets) - 1} (budgets {self.budgets})")
        at = self.recorded.setdefault(rung, {})
        at[number] = self._maximised(values)
        return at

    def goes_on(self, rung: int, number: int, values: Sequence[float]) -> bool:
        """Record trial ``number``'s objectives at ``rung``; whether it is in the top
        ``1 / reduction_factor`` of the trials recorded there (itself included)."""
        at = self.record(rung, number, values)
        keep = max(1, math.ceil(len(at) / self.reduction_factor))
        reference = self._maximised(self.reference)
        return order(at, reference).index(number) < keep
