"""The PNG files of ``stiltsearch pareto`` (matplotlib's Agg backend): the front, drawn by the
front figure's matplotlib renderer (:mod:`.figures.front`), and the hypervolume history."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stiltsearch.search.results.figures import front as front_figure

if TYPE_CHECKING:
    from stiltsearch.search.results.table import Row


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_front(rows: Sequence[Row], ranks: Sequence[int], names: Sequence[str], path: str | Path, *,
               title: str = "") -> Path:
    """Every complete trial (x = the second objective, y = the first), the front as a step line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    front_figure.draw(front_figure.of_front(rows, ranks, names, title), ax)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_hypervolume(history: Sequence[float], path: str | Path, *, title: str = "") -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.plot(range(1, len(history) + 1), history, marker="o")
    ax.set_xlabel("completed trials")
    ax.set_ylabel("hypervolume (product of the objectives' units)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
