"""The Pareto front as a figure: points in series (every trial light, each front as a stepped
line), the baseline ringed, each point numbered; data first (:func:`of_front`, :func:`of_families`),
then one renderer per output format (:func:`plotly`, :func:`draw` on matplotlib axes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stiltsearch.search.results.table import FAMILIES, Row
from stiltsearch.spaces.knobs import describe
from stiltsearch.trainables.objectives import axis_label

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from matplotlib.axes import Axes

    from stiltsearch.search.results.findings import Findings

COLOURS = {"stilts": "#d62728", "direct": "#1f77b4", "front": "#d62728", "others": "#999999"}
LABELS = {"stilts": "STILTs (intermediate tasks)", "direct": "direct fine-tuning (no intermediate task)"}


@dataclass(frozen=True)
class Series:
    label: str
    colour: str
    rows: list[Row]  # its trials; x is the second objective, y the first
    line: bool = False  # a front: joined by a step line, by x
    faded: bool = False  # every trial of a family, drawn light under its front


@dataclass(frozen=True)
class FrontPlot:
    title: str
    names: tuple[str, str]  # (y: the first objective, x: the second)
    series: list[Series]
    baseline: Row | None


def of_front(rows: Sequence[Row], ranks: Sequence[int], names: Sequence[str], title: str) -> FrontPlot:
    """A search's front (``stiltsearch pareto``): its trials by Pareto rank, the front and the rest."""
    on = [o for o, r in zip(rows, ranks) if r == 0]
    off = [o for o, r in zip(rows, ranks) if r != 0]
    baseline = next((o for o in rows if o.is_baseline), None)
    return FrontPlot(title, (names[0], names[1]),
                     [Series("dominated trials", COLOURS["others"], off), Series("Pareto front", COLOURS["front"], on, line=True)],
                     baseline)


def of_families(result: Findings, title: str) -> FrontPlot:
    """The report's front: each family's trials and its own front."""
    by_number = {t.number: t for t in result.trials}
    series = []
    for family in FAMILIES:
        members = [t for t in result.trials if t.family == family]
        series.append(Series(f"{LABELS[family]}: all", COLOURS[family], members, faded=True))
        series.append(Series(f"{LABELS[family]}: front", COLOURS[family], [by_number[n] for n in result.fronts[family]],
                             line=True))
    baseline = by_number.get(result.baseline) if result.baseline is not None else None
    return FrontPlot(title, (result.names[0], result.names[1]), series, baseline)


def _xy(rows: list[Row], line: bool) -> tuple[list[float], list[float], list[Row]]:
    ordered = sorted(rows, key=lambda r: r.values[1]) if line else rows
    return [r.values[1] for r in ordered], [r.values[0] for r in ordered], ordered


def plotly(plot: FrontPlot) -> go.Figure:
    import plotly.graph_objects as go

    figure = go.Figure()
    for s in plot.series:
        x, y, rows = _xy(s.rows, s.line)
        figure.add_trace(go.Scatter(
            x=x, y=y, mode="lines+markers+text" if s.line else "markers", name=s.label,
            # vertical first: between two front points (by speed) the area reached is the slower
            # point's score down to the faster one's, as the PNG's steps-pre draws it
            line={"shape": "vh", "color": s.colour} if s.line else None,
            marker={"color": s.colour, "size": 11 if s.line else 8, "opacity": 0.35 if s.faded else 1.0},
            text=[str(r.number) for r in rows] if s.line else None, textposition="top right",
            hovertext=[f"trial {r.number}<br>{describe(r.config)}" for r in rows], hoverinfo="text+x+y"))
    if plot.baseline is not None:
        b = plot.baseline
        figure.add_trace(go.Scatter(x=[b.values[1]], y=[b.values[0]], mode="markers", name="baseline",
                                    marker={"size": 18, "symbol": "circle-open", "color": "black", "line": {"width": 2}},
                                    hovertext=[f"baseline, trial {b.number}"], hoverinfo="text+x+y"))
    figure.update_layout(title=plot.title, xaxis_title=axis_label(plot.names[1]), yaxis_title=axis_label(plot.names[0]),
                         height=600,
                         legend={"orientation": "h", "y": -0.18})
    return figure


def draw(plot: FrontPlot, ax: Axes) -> None:
    """The same figure on matplotlib axes (the PNGs), every point numbered with its trial."""
    numbered: set[int] = set()  # a front point is also among its family's trials: one number each
    for s in plot.series:
        x, y, rows = _xy(s.rows, s.line)
        ax.scatter(x, y, c=s.colour, alpha=0.3 if s.faded else 1.0, zorder=3 if s.line else 2, label=s.label)
        if s.line:
            ax.plot(x, y, c=s.colour, alpha=0.6, drawstyle="steps-pre")
        for r in (r for r in rows if r.number not in numbered):
            numbered.add(r.number)
            ax.annotate(str(r.number), (r.values[1], r.values[0]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    if plot.baseline is not None:
        b = plot.baseline
        ax.scatter([b.values[1]], [b.values[0]], s=160, facecolors="none", edgecolors="k", zorder=4,
                   label="baseline (no intermediate task)")
    ax.set_xlabel(axis_label(plot.names[1]))
    ax.set_ylabel(axis_label(plot.names[0]))
    ax.set_title(plot.title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def figure(result: Findings) -> go.Figure | None:
    """The report's first figure: each family's front (two objectives only)."""
    if len(result.names) != 2:
        return None
    return plotly(of_families(result, "STILTs against direct fine-tuning"))
