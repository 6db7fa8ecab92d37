"""Optuna's parameter importance (PED-ANOVA), one panel per objective, the top 12 parameters, each
with the sign of its rank correlation with the objective where it is numeric (``results/importance.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from stiltsearch.search.results.findings import Findings

TOP = 12


def data(result: Findings) -> dict[str, list[tuple[str, float]]] | None:
    """{objective: its top parameters (name and sign), least important first}; None when not computed."""
    if not result.importance:
        return None
    marks = {1: " (+)", -1: " (-)", 0: ""}
    return {name: [(f"{i.parameter}{marks[i.sign]}", i.share) for i in ranked[:TOP]][::-1]
            for name, ranked in result.importance.items()}


def plotly(top: dict[str, list[tuple[str, float]]]) -> go.Figure:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=len(top), subplot_titles=list(top))
    for col, scores in enumerate(top.values(), start=1):
        figure.add_trace(go.Bar(x=[v for _, v in scores], y=[k for k, _ in scores], orientation="h"), 1, col)
    figure.update_layout(title="parameter importance (Optuna, PED-ANOVA)", height=420, showlegend=False)
    return figure


def figure(result: Findings) -> go.Figure | None:
    top = data(result)
    return None if top is None else plotly(top)
