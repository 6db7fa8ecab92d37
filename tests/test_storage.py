"""The driver's study storage (search/study/storage.py): an in-memory mirror of a real SQLite study that
must always equal what the database holds, and that TPE reads instead of the database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from stiltsearch.search.study.core import open_study, study_directions
from stiltsearch.search.study.storage import MirroredStorage

FIELDS = ("number", "state", "values", "datetime_start", "datetime_complete", "params", "distributions",
          "user_attrs", "system_attrs", "intermediate_values")


def space(trial: optuna.Trial) -> dict[str, Any]:
    """A conditional space, as the STILTs one is: a parameter only some trials have."""
    x = trial.suggest_float("x", 0.0, 1.0)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    return {"x": x, "kind": kind, **({"y": trial.suggest_int("y", 1, 4)} if kind == "a" else {})}


def fields(trial: FrozenTrial) -> dict[str, Any]:
    return {name: getattr(trial, name) for name in FIELDS}


def busy_study(url: str, trials: int = 24, running: int = 6) -> optuna.Study:
    """Trials asked, sampled by TPE with some still running, told complete, failed and pruned,
    with user attributes and an enqueued trial, all through the driver's storage."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(url, "s", ["max", "min"], {"x": 0.5, "kind": "b"})
    study.sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=4)
    live = []
    for i in range(trials):
        if i == 10:
            study.enqueue_trial({"x": 0.25})
        trial = study.ask()
        config = space(trial)
        trial.set_user_attr("config", config)
        live.append((trial, config))
        if len(live) > running:
            old, c = live.pop(0)
            if old.number % 7 == 3:
                study.tell(old, state=TrialState.FAIL)
            elif old.number % 7 == 5:
                study.tell(old, state=TrialState.PRUNED)
            else:
                study.tell(old, [c["x"] + c.get("y", 0), c["x"]])
    return study


def test_the_mirror_equals_the_database_after_asks_tells_attrs_and_an_enqueued_trial(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = busy_study(url)
    mirrored = study.get_trials(deepcopy=False)
    from_disk = optuna.load_study(study_name="s", storage=url).get_trials(deepcopy=False)
    assert len(mirrored) == len(from_disk) == 24
    assert {t.state for t in mirrored} >= {TrialState.RUNNING, TrialState.COMPLETE, TrialState.FAIL,
                                           TrialState.PRUNED}
    assert [fields(t) for t in mirrored] == [fields(t) for t in from_disk]
    assert mirrored[10].params["x"] == 0.25  # the enqueued trial kept its fixed parameter


def test_tpe_with_running_trials_reads_no_trial_from_the_database(tmp_path: Path) -> None:
    """What made the driver slow: constant-liar TPE re-reading RUNNING trials for each parameter."""
    study = busy_study(f"sqlite:///{tmp_path / 'optuna.db'}")
    storage = study._storage
    assert isinstance(storage, MirroredStorage)
    selects: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    engine = storage.backend.engine  # type: ignore[attr-defined]
    sqlalchemy.event.listen(engine, "before_cursor_execute", record)
    try:
        trial = study.ask()
        space(trial)  # TPE (past its startup trials) samples each parameter over every trial, running ones too
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", record)
    trial_reads = [s for s in selects if "FROM trials" in s and "trial_params" in s]
    assert not trial_reads, f"{len(trial_reads)} reads of whole trials from the database"
    assert len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))) == 7


def test_trials_read_before_a_tell_keep_the_state_they_had(tmp_path: Path) -> None:
    """Copy-on-write, as Optuna's in-memory storage: a list TPE or the front got earlier is not
    changed by a later tell (the live Trial's own copy it updates itself, as Optuna always does)."""
    study = open_study(f"sqlite:///{tmp_path / 'optuna.db'}", "s", ["max"], None)
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    before = study.get_trials(deepcopy=False)
    study.tell(trial, 1.0)
    assert before[0].state == TrialState.RUNNING and before[0].value is None
    after = study.get_trials(deepcopy=False)[0]
    assert after.state == TrialState.COMPLETE and after.value == 1.0 and after.params == before[0].params


def test_a_second_session_mirrors_what_the_first_wrote(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    first = [fields(t) for t in busy_study(url).get_trials(deepcopy=False)]
    again = open_study(url, "s", ["max", "min"], {"x": 0.5, "kind": "b"})  # a resumed driver
    assert [fields(t) for t in again.get_trials(deepcopy=False)] == first
    assert again.directions == study_directions(["max", "min"])


def test_a_trials_parameters_are_written_in_one_transaction_before_anything_else_about_it(tmp_path: Path) -> None:
    """Held back while the space is sampled (one commit, not one per parameter); on disk before
    the searcher's next write about the trial, and SQLite's durability is its default."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = open_study(url, "s", ["max", "min"], None)
    storage = study._storage
    assert isinstance(storage, MirroredStorage)
    engine = storage.backend.engine
    commits: list[int] = []
    sqlalchemy.event.listen(engine, "commit", lambda _conn: commits.append(1))
    trial = study.ask()
    before = len(commits)
    config = space(trial)
    assert len(commits) == before  # nothing written yet ...
    assert optuna.load_study(study_name="s", storage=url).trials[0].params == {}
    trial.set_user_attr("config", config)  # ... until the next write about the trial
    assert len(commits) == before + 2  # the parameters in one transaction, then the attribute
    assert optuna.load_study(study_name="s", storage=url).trials[0].params == trial.params == {
        k: v for k, v in config.items()}
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL, SQLite's default
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"  # one file, no WAL


def test_a_parameter_incompatible_with_the_study_is_refused_as_the_database_would(tmp_path: Path) -> None:
    import pytest

    study = open_study(f"sqlite:///{tmp_path / 'optuna.db'}", "s", ["max"], None)
    first = study.ask()
    first.suggest_float("x", 0.0, 1.0)
    study.tell(first, 1.0)
    with pytest.raises(ValueError, match="Cannot set different distribution kind"):
        study.ask().suggest_categorical("x", ["a", "b"])


def test_a_driver_killed_inside_a_write_leaves_a_study_that_resume_can_read(tmp_path: Path) -> None:
    """SIGKILL during a write leaves a hot journal beside optuna.db: the database is intact (the
    last commit), but a read-only check failed with "attempt to write a readonly database" and
    `resume` called it damaged (seen in CI after the MOASHA kill test). The check now lets SQLite
    roll the dead writer's transaction back first."""
    import sqlite3
    import subprocess
    import sys

    import pytest

    from stiltsearch.search.layout import STUDY, SearchError, check_study_file, done_count

    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / STUDY}")
    for value in (1.0, 2.0, 3.0):
        study.add_trial(optuna.trial.create_trial(value=value))
    killed = ("import os, sqlite3, sys; db = sqlite3.connect(sys.argv[1], isolation_level=None); "
              "db.execute('PRAGMA cache_size=1'); db.execute('BEGIN'); db.execute('CREATE TABLE junk(x)'); "
              "db.executemany('INSERT INTO junk VALUES (?)', [(i,) for i in range(20000)]); "
              "db.execute(\"UPDATE trials SET state = 'FAIL'\"); os._exit(0)")  # as SIGKILL: no rollback
    subprocess.run([sys.executable, "-c", killed, str(tmp_path / STUDY)], check=True)
    assert (tmp_path / f"{STUDY}-journal").stat().st_size > 0  # the hot journal is there
    with pytest.raises(sqlite3.OperationalError, match="readonly"):  # what the old check ran into
        sqlite3.connect(f"file:{tmp_path / STUDY}?mode=ro", uri=True).execute("PRAGMA quick_check").fetchone()
    check_study_file(tmp_path, "s")  # intact: no SearchError
    assert done_count(tmp_path, "s") == 3
    assert not (tmp_path / f"{STUDY}-journal").exists()
    tables = {r[0] for r in sqlite3.connect(tmp_path / STUDY).execute("SELECT name FROM sqlite_master")}
    assert "junk" not in tables  # the unfinished transaction was rolled back, the commits kept
    assert [t.state for t in optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / STUDY}").trials] == [
        TrialState.COMPLETE] * 3
    with pytest.raises(SearchError, match="holds no study named 'other'"):
        check_study_file(tmp_path, "other")
