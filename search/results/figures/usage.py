"""Which intermediate tasks and translate-train languages the search's front uses, and how often."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from stiltsearch.search.results.findings import Findings


def data(result: Findings) -> dict[str, dict[str, int]] | None:
    return result.on_front if any(result.on_front.values()) else None


def plotly(counts: dict[str, dict[str, int]]) -> go.Figure:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=2, subplot_titles=("intermediate tasks", "translate-train languages"))
    for col, kind in enumerate(("tasks", "languages"), start=1):
        found = counts.get(kind, {})
        figure.add_trace(go.Bar(x=list(found), y=list(found.values())), 1, col)
    figure.update_layout(title="on the search's Pareto front: how many of its trials use each", height=360,
                         showlegend=False)
    return figure


def figure(result: Findings) -> go.Figure | None:
    counts = data(result)
    return None if counts is None else plotly(counts)
