"""Confirmed points (``stiltsearch confirm``): each one's mean with ±1 standard deviation bars over
its training seeds, per family; in the HTML report and as the PNG's second panel."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stiltsearch.search.results.figures.front import COLOURS, LABELS
from stiltsearch.search.results.table import FAMILIES

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from matplotlib.axes import Axes

    from stiltsearch.search.results.findings import Confirmed, Findings

TITLE = "confirmed: mean ± standard deviation over training seeds"


def data(result: Findings) -> dict[str, list[Confirmed]] | None:
    """{family: its confirmed points}; None before a confirmation, or with one objective."""
    if not result.confirmed or len(result.names) != 2:
        return None
    return {family: [c for c in result.confirmed if c.family == family] for family in FAMILIES}


def plotly(points: dict[str, list[Confirmed]], result: Findings) -> go.Figure:
    import plotly.graph_objects as go

    figure = go.Figure()
    for family, members in points.items():
        if not members:
            continue
        figure.add_trace(go.Scatter(
            x=[c.mean[1] for c in members], y=[c.mean[0] for c in members], mode="markers+text",
            error_x={"type": "data", "array": [c.sd[1] for c in members]},
            error_y={"type": "data", "array": [c.sd[0] for c in members]},
            marker={"size": 11, "color": COLOURS[family]}, name=LABELS[family],
            text=[str(c.number) for c in members], textposition="top right",
            hovertext=[f"trial {c.number}{' (baseline)' if c.number == result.baseline else ''}<br>{len(c.runs)} runs, "
                       f"seeds {', '.join(map(str, c.seeds))}" for c in members], hoverinfo="text+x+y"))
    figure.update_layout(title=TITLE, xaxis_title=result.names[1], yaxis_title=result.names[0], height=500,
                         legend={"orientation": "h", "y": -0.2})
    return figure


def figure(result: Findings) -> go.Figure | None:
    points = data(result)
    return None if points is None else plotly(points, result)


def draw(points: dict[str, list[Confirmed]], result: Findings, ax: Axes) -> None:
    for family, members in points.items():
        if not members:
            continue
        ax.errorbar([c.mean[1] for c in members], [c.mean[0] for c in members], xerr=[c.sd[1] for c in members],
                    yerr=[c.sd[0] for c in members], fmt="o", c=COLOURS[family], capsize=3, label=LABELS[family])
        for c in members:
            ax.annotate(str(c.number), (c.mean[1], c.mean[0]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(result.names[1])
    ax.set_ylabel(result.names[0])
    ax.set_title("confirmed: mean ± sd over training seeds")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
