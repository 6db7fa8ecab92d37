"""The Pareto front as data: non-dominated trials, non-dominated-sorting ranks, hypervolume.

Pure functions over plain points (one tuple of objective values per trial); rendering and logging
live elsewhere (:mod:`stiltsearch.search.plots`, :mod:`stiltsearch.search.tracking`).
"""

from __future__ import annotations

from collections.abc import Sequence

Point = Sequence[float]


def _as_max(point: Point, directions: Sequence[str]) -> tuple[float, ...]:
    """Flip minimised objectives so that larger is better everywhere."""
    return tuple(v if d == "max" else -v for v, d in zip(point, directions, strict=True))


def dominates(a: Point, b: Point, directions: Sequence[str]) -> bool:
    """True if ``a`` is at least as good as ``b`` in every objective and better in one."""
    a, b = _as_max(a, directions), _as_max(b, directions)
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def pareto_ranks(points: Sequence[Point], directions: Sequence[str]) -> list[int]:
    """Non-dominated sorting: rank 0 is the front, rank 1 the front once rank 0 is removed, ..."""
    ranks = [-1] * len(points)
    remaining = set(range(len(points)))
    rank = 0
    while remaining:
        front = {i for i in remaining
                 if not any(dominates(points[j], points[i], directions) for j in remaining if j != i)}
        for i in front:
            ranks[i] = rank
        remaining -= front
        rank += 1
    return ranks


def nondominated(points: Sequence[Point], directions: Sequence[str]) -> list[bool]:
    return [r == 0 for r in pareto_ranks(points, directions)]


def hypervolume(points: Sequence[Point], directions: Sequence[str], reference: Point) -> float:
    """Area dominated by ``points`` and bounded by ``reference`` (1 or 2 objectives).

    The reference must be worse than every point worth counting in each objective (for maximised
    objectives that are never negative, the origin); points not better than it add nothing.
    """
    if len(directions) == 1:
        best = max((_as_max(p, directions)[0] for p in points), default=None)
        return max(0.0, best - _as_max(reference, directions)[0]) if best is not None else 0.0
    if len(directions) != 2:
        raise ValueError("hypervolume is implemented for one or two objectives")
    ref = _as_max(reference, directions)
    flipped = sorted((_as_max(p, directions) for p in points), reverse=True)  # by first objective, descending
    area, best_second = 0.0, ref[1]
    for x, y in flipped:
        if x <= ref[0] or y <= best_second:
            continue
        area += (x - ref[0]) * (y - best_second)
        best_second = y
    return area


def hypervolume_history(points: Sequence[Point], directions: Sequence[str], reference: Point) -> list[float]:
    """Hypervolume after each trial, in the order given (completion order)."""
    return [hypervolume(points[: i + 1], directions, reference) for i in range(len(points))]
