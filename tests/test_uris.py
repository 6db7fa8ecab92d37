"""Tracking URIs as they are kept and shown: no password of any scheme is written, printed or
logged; a resumed search finds it again where the user keeps it."""

from __future__ import annotations

import pytest

from stiltsearch.search.tracking.uris import redact_uri, stored_form, with_password

PASSWORD = "canary-pw-91c4"


@pytest.mark.parametrize(("given", "kept"), [
    (f"http://u:{PASSWORD}@127.0.0.1:5000", "http://127.0.0.1:5000"),
    (f"https://u:{PASSWORD}@mlflow.example.org/x", "https://mlflow.example.org/x"),
    (f"postgresql://u:{PASSWORD}@db.example.org:5432/mlflow", "postgresql://u@db.example.org:5432/mlflow"),
    (f"mysql+pymysql://u:{PASSWORD}@db/mlflow?charset=utf8", "mysql+pymysql://u@db/mlflow?charset=utf8"),
    (f"mssql://u:{PASSWORD}@[::1]:1433/mlflow", "mssql://u@[::1]:1433/mlflow"),
    ("postgresql://u@db/mlflow", "postgresql://u@db/mlflow"),  # no password: as given
    ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
])
def test_every_scheme_is_kept_without_its_password(given: str, kept: str) -> None:
    assert stored_form(given) == kept
    assert PASSWORD not in redact_uri(given)


def test_a_broken_uri_never_shows_its_password() -> None:
    assert PASSWORD not in stored_form(f"http://u:{PASSWORD}@[::1")
    assert PASSWORD not in stored_form(f"postgresql://u:{PASSWORD}@[::1/db")


def test_resume_takes_the_password_from_the_environment_for_the_same_store_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    full = f"postgresql://u:{PASSWORD}@db:5432/mlflow"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", full)
    assert with_password("postgresql://u@db:5432/mlflow") == full
    assert with_password("postgresql://u@other:5432/mlflow") == "postgresql://u@other:5432/mlflow"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert with_password("postgresql://u@db:5432/mlflow") == "postgresql://u@db:5432/mlflow"  # PGPASSWORD, .pgpass


def test_the_resolved_config_shows_no_database_password() -> None:
    """What `validate` prints and a search writes to config.yaml and MLflow params."""
    import yaml

    from stiltsearch.search.config.reading import load_config, to_dict

    cfg = load_config(None, **{"mlflow.tracking_uri": f"postgresql://u:{PASSWORD}@db/mlflow"})
    text = yaml.safe_dump(to_dict(cfg))
    assert PASSWORD not in text and "postgresql://u@db/mlflow" in text
