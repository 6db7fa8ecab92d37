"""Rendering of the Pareto front and the hypervolume history (PNG, via matplotlib's Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stiltsearch.search.results.pareto import Point


def plot_front(points: Sequence[Point], ranks: Sequence[int], labels: Sequence[str], axes: tuple[str, str],
               path: str | Path, *, baseline: int | None = 0, title: str = "") -> Path:
    """Scatter of every trial (x = second objective, y = first) with the front as a step line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    xs, ys = [p[1] for p in points], [p[0] for p in points]
    others = [i for i, r in enumerate(ranks) if r != 0]
    front = sorted((i for i, r in enumerate(ranks) if r == 0), key=lambda i: xs[i])
    ax.scatter([xs[i] for i in others], [ys[i] for i in others], c="0.6", label="dominated trials")
    ax.scatter([xs[i] for i in front], [ys[i] for i in front], c="tab:red", zorder=3, label="Pareto front")
    ax.plot([xs[i] for i in front], [ys[i] for i in front], c="tab:red", alpha=0.5, drawstyle="steps-pre")
    if baseline is not None and baseline < len(points):
        ax.scatter([xs[baseline]], [ys[baseline]], s=160, facecolors="none", edgecolors="k", zorder=4,
                   label="baseline (no intermediate task)")
    for i, label in enumerate(labels):
        ax.annotate(label, (xs[i], ys[i]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel(axes[1])
    ax.set_ylabel(axes[0])
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_hypervolume(history: Sequence[float], path: str | Path, *, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.plot(range(1, len(history) + 1), history, marker="o")
    ax.set_xlabel("completed trials")
    ax.set_ylabel("hypervolume")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
