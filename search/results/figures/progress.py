"""How the search's hypervolume grew: over completed trials and over the trial-seconds they took."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from stiltsearch.search.results.findings import Findings


def data(result: Findings) -> tuple[list[float], list[float]]:
    """(hypervolume after each completion, trial-seconds spent by then)."""
    return result.hypervolume_history, result.compute_seconds


def plotly(history: list[float], seconds: list[float]) -> go.Figure:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=2, subplot_titles=("hypervolume over trials", "hypervolume over compute"))
    figure.add_trace(go.Scatter(x=list(range(1, len(history) + 1)), y=history, mode="lines+markers",
                                name="over trials"), 1, 1)
    figure.add_trace(go.Scatter(x=seconds, y=history, mode="lines+markers", name="over trial-seconds"), 1, 2)
    figure.update_xaxes(title_text="trials completed", row=1, col=1)
    figure.update_xaxes(title_text="trial-seconds spent", row=1, col=2)
    figure.update_layout(height=380, showlegend=False)
    return figure


def figure(result: Findings) -> go.Figure | None:
    return plotly(*data(result))
