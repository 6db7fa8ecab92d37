"""Question 1, per language: each front point's non-English NLI accuracy minus the baseline's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from stiltsearch.search.results.table import FAMILIES

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from stiltsearch.search.results.findings import Findings


@dataclass(frozen=True)
class Gains:
    languages: list[str]
    labels: list[str]  # one per front point: "trial 3 (STILTs)"
    rows: list[list[float]]  # accuracy minus the baseline's, in points, per language
    nli: str


def data(result: Findings) -> Gains | None:
    base = result.non_english.get(result.baseline) if result.baseline is not None else None
    points = [n for family in FAMILIES for n in result.fronts[family] if n in result.non_english]
    if not base or not points or result.nli is None:
        return None
    languages = sorted(base)
    rows = [[result.non_english[n].get(lang, float("nan")) - base[lang] for lang in languages] for n in points]
    labels = [f"trial {n} ({'STILTs' if n in result.fronts['stilts'] else 'direct'})" for n in points]
    return Gains(languages, labels, rows, result.nli)


def plotly(gains: Gains) -> go.Figure:
    import plotly.graph_objects as go

    figure = go.Figure(go.Heatmap(z=gains.rows, x=gains.languages, y=gains.labels, colorscale="RdBu", zmid=0,
                                  text=[[f"{v:+.1f}" for v in row] for row in gains.rows], texttemplate="%{text}"))
    figure.update_layout(title=f"front points: non-English {gains.nli} accuracy minus the baseline's (points)",
                         height=120 + 40 * len(gains.labels))
    return figure


def figure(result: Findings) -> go.Figure | None:
    gains = data(result)
    return None if gains is None else plotly(gains)
