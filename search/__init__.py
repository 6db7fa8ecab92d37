"""The driver side of stiltsearch: from a config to a search's front, in wings.

- ``config/``: the search config as typed dataclasses, read from YAML and checked at the edge,
  and composed into what trials receive.
- ``launch/``: what starts a search: the models of phase 1, preflight checks, the resolved hub
  data, the Ray session and the Tune ``Tuner``.
- ``study/``: the Optuna study (the search's source of truth), its storage, the searcher Tune
  asks, and phase-2 sharing.
- ``schedulers/``: when a running trial stops early; each scheduler owns its settings.
- ``results/``: the table of trials and everything read from it: fronts, findings, figures,
  the report, ``stiltsearch pareto`` and ``stiltsearch confirm``.
- ``tracking/``: MLflow (the tracker, its outbox, URIs, Tune callbacks) and console progress.
- ``planning/``: what a search will cost (the dry run) and what it has spent (its budget).

``driver.py`` runs or resumes a search, ``cli.py`` is the command line, ``layout.py`` a search
directory. Imports go one way: a wing never imports the driver or the command line.
"""
