"""The report's figures, one module each: a data function over the findings (or a front) and its
renderer, as Optuna's visualization keeps one module per plot. ``front`` is the Pareto front in
both output formats (plotly for the HTML report, matplotlib for the PNGs); the report draws the
registered list in ``search/results/report.py``."""
