"""``stiltsearch pareto`` and ``stiltsearch report``: the current front of a search, and its report
(search/results/findings.py), running or not, from what it left behind.

A search directory is read through its Optuna study (the source of truth); an MLflow experiment
through its latest search's child runs (for stores one can reach but not the directory of).
Neither needs Ray or a running driver.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from stiltsearch.search.config.coerce import ConfigError
from stiltsearch.search.results import front as fronts
from stiltsearch.search.results import table


def show_front(target: str, *, tracking_uri: str | None = None, out: str | None = None) -> fronts.Front:
    """Print the front and its hypervolume, write table and plots; returns the front."""
    from stiltsearch.search.tracking.uris import writable_dir_problem

    if out is not None and (problem := writable_dir_problem(Path(out))) is not None:
        raise ConfigError(f"--out: {problem}; give a directory this user can write")
    path = Path(target)
    if path.is_dir():
        front, title, where = _from_search_dir(path.resolve()), path.resolve().name, path.resolve()
    elif path.exists() or "/" in target or target.startswith("."):
        raise ConfigError(f"target: {target} is {'a file' if path.exists() else 'no directory'}; give a search "
                          "directory `stiltsearch run` printed, or an MLflow experiment name")
    else:
        front, title = _from_experiment(target, tracking_uri)
        where = Path.cwd() / f"{target}-pareto"
    directory = Path(out).resolve() if out else where
    try:
        directory.mkdir(parents=True, exist_ok=True)
        files = fronts.write_files(front, directory, title)
    except OSError as exc:
        raise ConfigError(f"--out: cannot write the front to {directory} ({exc.strerror}); give a writable --out") from None
    fronts.print_table(front)
    print(f"\n{len(front.outcomes)} complete, {front.failed} failed; hypervolume {front.hypervolume:.6g}")
    print("written: " + ", ".join(str(f) for f in files))
    return front


def show_report(target: str, *, out: str | None = None) -> list[Path]:
    """``stiltsearch report DIR``: write the report (search/results/findings.py) of a search directory,
    running or not, and print its answer; returns the files."""
    from stiltsearch.search.layout import trials_dir
    from stiltsearch.search.results.answers import sentences
    from stiltsearch.search.results.report import report
    from stiltsearch.search.tracking.uris import writable_dir_problem

    path = Path(target)
    if not path.is_dir():
        raise ConfigError(f"target: {target} is {'a file' if path.exists() else 'no directory'}; give a search "
                          "directory `stiltsearch run` printed")
    study, cfg = _open_study(path.resolve())
    directory = Path(out).resolve() if out else path.resolve() / "report"
    if (problem := writable_dir_problem(directory)) is not None:
        raise ConfigError(f"--out: {problem}; give a directory this user can write")
    try:
        result, files = report(study, cfg, trials_dir(path.resolve()), directory, path.resolve().name)
    except OSError as exc:
        raise ConfigError(f"--out: cannot write the report to {directory} ({exc.strerror}); give a writable --out") from None
    print("\n".join(sentences(result)))
    print("written: " + ", ".join(str(f) for f in files))
    return files


def _from_search_dir(directory: Path) -> fronts.Front:
    study, cfg = _open_study(directory)
    return fronts.from_study(study, cfg.objective_names, cfg.directions)


def _open_study(directory: Path) -> tuple[Any, Any]:
    """A search directory's study (checked first: a damaged one is reported, never made anew) and
    its config."""
    import optuna

    from stiltsearch.search.config.reading import load_config
    from stiltsearch.search.layout import SearchError, check_study_file, study_storage

    if not (directory / "optuna.db").exists() or not (directory / "config.yaml").is_file():
        raise ConfigError(f"target: {directory} is not a search directory (no optuna.db or config.yaml); "
                          "give the directory `stiltsearch run` printed, or an MLflow experiment name")
    cfg = load_config(directory / "config.yaml")
    try:
        check_study_file(directory, cfg.name)
    except SearchError as exc:
        raise ConfigError(str(exc)) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=cfg.name, storage=study_storage(directory))
    return study, cfg


def _from_experiment(name: str, tracking_uri: str | None) -> tuple[fronts.Front, str]:
    from mlflow.tracking import MlflowClient

    from stiltsearch.search.tracking import uris

    given = tracking_uri or uris.default_tracking_uri()
    if (problem := uris.uri_problem(given)) is not None:
        raise ConfigError(f"--tracking-uri: {problem}; pass --tracking-uri of the search's store")
    uri = uris.use_credentials(given)
    if (problem := uris.store_problem(uri, create=False)) is not None:  # reading makes no store
        raise ConfigError(f"--tracking-uri: {problem}; pass --tracking-uri of the search's store")
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        raise ConfigError(f"target: {name!r} is neither a directory nor an MLflow experiment at {uris.stored_form(uri)}; "
                          "pass --tracking-uri for another store")
    searches = client.search_runs([experiment.experiment_id], "tags.`stiltsearch.kind` = 'search'",
                                  order_by=["attributes.start_time DESC"], max_results=1)
    if not searches:
        raise ConfigError(f"target: MLflow experiment {name!r} holds no stiltsearch search")
    parent = searches[0]
    objectives = ast.literal_eval(parent.data.params["objectives"])
    names, directions = [o["name"] for o in objectives], [o["direction"] for o in objectives]
    children = client.search_runs([experiment.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'", max_results=50000)
    print(f"MLflow experiment {name!r} at {uri}: search {parent.info.run_name} (run {parent.info.run_id})")
    return fronts.from_rows(table.from_runs(children, names), names, directions), parent.info.run_name
