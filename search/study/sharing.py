"""Phase-2 work shared within a search: which new trials reuse a phase 2 that is already trained.

Phase 2 (intermediate-task training) is a share of a trial's cost (in ``configs/paper.yaml``'s plan a
median 20 % of a trial's training FLOPs, with phase 2's tasks priced as the trial samples them; phase 3 is the rest), and its result depends only on the knobs declared with ``phase2=True`` in ``spaces/knobs.py`` (the model, the
intermediate tasks, the intermediate learning rate) and on the search's fixed settings: the
phase-2 cache (``trainables/phase2.py: phase2_key``) serves any trial whose key matches. Sampled
freely, two trials practically never match (512 task subsets times a continuous learning rate: 0
hits in the default search), so the searcher matches them on purpose. A share of the new trials,
``search.share_phase2`` (default 0.5), is spent on new phase-3 and deployment settings over a phase
2 already paid for: the searcher enqueues the phase-2 parameters of the best complete trial that
has a phase 2, and the sampler (TPE) chooses every other knob as usual. The learning rate stays
continuous: a shared trial copies its source's exact value, so the key matches without a grid.

- **Which trial is the source**: among the complete, feasible trials with a phase 2, the lowest
  Pareto rank over all complete trials (the front first), then the one shared the fewest times, then
  the lowest number. So the front's phase-2 results get new deployments, spread over the front.
- **When**: a share falls due once the shared trials are fewer than ``share_phase2`` times the
  trials asked so far; while no source exists (no phase-2 trial has finished yet) it waits, and the
  next new trial takes it.
- **What it costs the search**: a shared trial's phase 2 is a cache hit (seconds), so its cost is its
  phase 3 and its scoring. It explores only phase 3 and deployment, which is where the speed axis
  of the front is made (layers kept, length, precision).
- **Told to the study**: a shared trial carries the user attribute ``phase2_from`` (its source's
  number), so a resumed search counts its shares from the study.

Ray-free, pure functions over the study.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from stiltsearch.search.results import pareto, table
from stiltsearch.search.study.core import SHARED_ATTR
from stiltsearch.spaces.knobs import PHASE2_KNOBS


def due(asked: int, shared: int, share: float) -> bool:
    """Whether the next new trial should reuse a phase 2: ``asked`` trials exist, ``shared`` of them
    reused one, and ``share`` is the fraction to reuse (a small epsilon keeps 0.5 * 4 at 2)."""
    return shared < math.floor(share * asked + 1e-9)


def shared_count(study: optuna.Study) -> int:
    return sum(SHARED_ATTR in t.user_attrs for t in study.get_trials(deepcopy=False))


def source(study: optuna.Study, directions: Sequence[str]) -> int | None:
    """The number of the trial whose phase 2 the next shared trial reuses, or None (see the module doc)."""
    rows = table.from_study(study)
    complete = table.searched(rows)
    if not complete:
        return None
    ranks = pareto.pareto_ranks([r.values for r in complete], directions)
    uses = Counter(r.phase2_from for r in rows if r.phase2_from is not None)
    candidates = [(rank, uses.get(r.number, 0), r.number) for r, rank in zip(complete, ranks)
                  if r.config.get("intermediate_tasks")]
    return min(candidates)[2] if candidates else None


def phase2_params(trial: FrozenTrial) -> dict[str, Any]:
    """The trial's raw Optuna parameters that decide its phase 2, to enqueue for a new trial."""
    params: dict[str, Any] = {}
    for knob in PHASE2_KNOBS:
        params |= knob.raw_params(trial.params)
    return params
