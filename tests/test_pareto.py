from __future__ import annotations

import pytest

from stiltsearch.search.pareto import dominates, hypervolume, hypervolume_history, nondominated, pareto_ranks

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
