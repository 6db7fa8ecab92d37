from __future__ import annotations

import pytest

from stiltsearch.search.results.pareto import dominates, hypervolume, hypervolume_history, nondominated, pareto_ranks

MAX2 = ("max", "max")


def test_dominance_needs_one_strict_improvement() -> None:
    assert dominates((2, 2), (1, 2), MAX2)
    assert not dominates((2, 2), (2, 2), MAX2)
    assert not dominates((3, 1), (1, 3), MAX2)
    assert dominates((1, 1), (2, 1), ("min", "max"))


def test_front_and_ranks_on_hand_made_points() -> None:
    points = [(3, 1), (2, 2), (1, 3), (1, 1), (2, 1), (0.5, 0.5)]
    assert nondominated(points, MAX2) == [True, True, True, False, False, False]
    # (2, 1) and (1, 1) -> (2, 1) is only dominated by front points; (1, 1) by (2, 1) as well
    assert pareto_ranks(points, MAX2) == [0, 0, 0, 2, 1, 3]


def test_hypervolume_of_a_staircase() -> None:
    # union of [0,3]x[0,1], [0,2]x[0,2], [0,1]x[0,3] = 3 + 2 + 1
    assert hypervolume([(3, 1), (2, 2), (1, 3)], MAX2, (0, 0)) == pytest.approx(6.0)
    assert hypervolume([(3, 1), (2, 2), (1, 3), (1, 1)], MAX2, (0, 0)) == pytest.approx(6.0)  # dominated adds 0
    assert hypervolume([(2, 3)], ("min", "max"), (4, 0)) == pytest.approx(6.0)  # (4-2) * 3


def test_hypervolume_history_never_decreases() -> None:
    history = hypervolume_history([(1, 1), (0.5, 0.5), (2, 0.5), (1, 3)], MAX2, (0, 0))
    assert history == pytest.approx([1.0, 1.0, 1.5, 3.5])


def _brute_ranks(points: list[tuple[float, ...]], directions: tuple[str, ...]) -> list[int]:
    """The definition, peeled one front at a time with the pairwise dominance test."""
    ranks, remaining, rank = [-1] * len(points), set(range(len(points))), 0
    while remaining:
        front = {i for i in remaining if not any(dominates(points[j], points[i], directions) for j in remaining)}
        for i in front:
            ranks[i] = rank
        remaining -= front
        rank += 1
    return ranks


@pytest.mark.parametrize("directions", [("max", "max"), ("max", "min"), ("min", "max", "max")])
def test_ranks_and_history_equal_the_definition_on_random_points_with_ties(directions: tuple[str, ...]) -> None:
    import random

    rng = random.Random(len(directions))
    for n in (1, 2, 7, 60):
        # few distinct values: many ties and duplicates, where >= and > matter
        points = [tuple(float(rng.randint(0, 5)) for _ in directions) for _ in range(n)]
        assert pareto_ranks(points, directions) == _brute_ranks(points, directions)
        if len(directions) == 2:
            reference = (-1.0 if directions[0] == "max" else 9.0, -1.0 if directions[1] == "max" else 9.0)
            assert hypervolume_history(points, directions, reference) == pytest.approx(
                [hypervolume(points[: i + 1], directions, reference) for i in range(n)])
    assert pareto_ranks([], directions) == []
