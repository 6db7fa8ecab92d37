"""The report of a search: its findings (:mod:`.findings`) as one self-contained interactive page
(``report.html``, plotly's JavaScript inlined), a PNG and ``findings.json``; the page is its
answers (:mod:`.answers`) over the registered figures (:data:`FIGURES`, one module each)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import optuna

from stiltsearch.search.config.schema import SearchConfig
from stiltsearch.search.results.answers import answers, sentences
from stiltsearch.search.results.figures import confirmed, front, importance, languages, progress, usage
from stiltsearch.search.results.findings import Findings, findings
from stiltsearch.trainables.tasks import nli_target

if TYPE_CHECKING:
    import plotly.graph_objects as go

# the report's figures, in the page's order: each returns None when it has nothing to draw
FIGURES: tuple[Callable[[Findings], go.Figure | None], ...] = (
    front.figure, confirmed.figure, languages.figure, progress.figure, usage.figure, importance.figure)


def report(study: optuna.Study, cfg: SearchConfig, trials_dir: Path, directory: Path, title: str) -> tuple[Findings, list[Path]]:
    """A search's findings (``cfg``: its SearchConfig) and the report written into ``directory``:
    what the driver does at the end of a search and ``stiltsearch report`` does on demand."""
    result = findings(study, cfg.objective_names, cfg.directions, nli=nli_target(cfg.target_tasks),
                      trials_dir=trials_dir, seed=cfg.training.seed)
    return result, write_report(result, directory, title)


def write_report(result: Findings, directory: Path, title: str) -> list[Path]:
    """report.html, report.png and findings.json in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    figures = [f for make in FIGURES if (f := make(result)) is not None]
    # the answers first (with the confirm line while there is no confirmation), then the evidence
    said = answers(result, str(directory.parent)) + sentences(result)
    headline = "".join(f"<p>{line}</p>" for line in said)
    if result.importance_problem:
        headline += f"<p>Parameter importance not computed: {result.importance_problem}.</p>"
    parts = [figure.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, figure in enumerate(figures)]
    html = directory / "report.html"
    html.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{title}: report</title></head>"
                    f"<body style='font-family: sans-serif; max-width: 1100px; margin: auto'>"
                    f"<h1>{title}</h1>{headline}{''.join(parts)}</body></html>")
    data = directory / "findings.json"
    data.write_text(json.dumps({**asdict(result), "trials": [asdict(t) for t in result.trials],
                                "confirmed": [asdict(c) | {"mean": c.mean, "sd": c.sd} for c in result.confirmed]},
                               indent=1, default=str))
    return [html, png(result, directory / "report.png", title), data]


def png(result: Findings, path: Path, title: str) -> Path:
    """The families' fronts as a static image (matplotlib), the confirmed points beside them, for
    places that show no HTML."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = confirmed.data(result)
    fig, axes = plt.subplots(1, 2 if points else 1, figsize=(13 if points else 7, 5), dpi=120, squeeze=False)
    if len(result.names) == 2:
        front.draw(front.of_families(result, f"{title}: STILTs against direct fine-tuning"), axes[0][0])
    if points is not None:
        confirmed.draw(points, result, axes[0][1])
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
