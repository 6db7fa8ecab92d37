"""The search's start-up trials as a balanced design over the subset knobs.

Before TPE models the results it needs random trials, and with include/exclude per task and per
language (each a yes/no factor) a handful of independent coin flips leaves some factors in one
start-up trial and others in most (9 random trials over the paper's 9 tasks: each task in 3 to 7 of
them). Here every factor is in half the start-up trials exactly (ceil or floor), each column an
independent seeded shuffle, so each task's and each language's effect is seen both ways from the
start. Only the subset knobs are fixed; the learning rates and deployment knobs stay the sampler's.
Pure: no I/O.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from stiltsearch.spaces.knobs import KNOBS, Subset


def balanced_rows(spec: Mapping[str, Any], rows: int, seed: int) -> list[dict[str, bool]]:
    """``rows`` start-up trials' raw subset parameters (``use_<task>``, ``lang_<language>``): each
    factor True in ``rows // 2`` or ``rows // 2 + 1`` of them (alternating which, factor by factor)."""
    rng = random.Random(seed)
    table: list[dict[str, bool]] = [{} for _ in range(rows)]
    factor = 0
    for knob in KNOBS:
        if not isinstance(knob, Subset):
            continue
        for member in spec[knob.key]:
            ones = rows // 2 + (rows % 2 if factor % 2 == 0 else 0)
            column = [True] * ones + [False] * (rows - ones)
            rng.shuffle(column)
            for row, value in zip(table, column):
                row[f"{knob.prefix}{member}"] = value
            factor += 1
    return table
