"""MLflow tracking URIs at the edge: which ones a search takes, the credentials some carry, and
whether the store is there. MLflow-free, so reading a config loads no MLflow.

A search writes to a SQLite file (``sqlite:////abs/path.db``), a database server
(``postgresql://``, ``mysql://``, ``mssql://``) or an MLflow server (``http(s)://host:port``).
MLflow 3's file store (``file://`` or a bare path) is in maintenance mode and refuses new
experiments by default, so it is refused here with the fix instead of a stack trace later.

Credentials: ``http://user:password@host`` is split into the URI without them and MLflow's own
``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` (:func:`split_credentials`). A database
URI's password (``postgresql://user:password@host/db``) is used for the connection and dropped
from what is kept (:func:`stored_form`): only URIs without a password are ever printed, written to
a file (``config.yaml``, ``search.json``) or logged. A resumed search finds the password again in
``$MLFLOW_TRACKING_URI`` when that names the same store (:func:`with_password`), else the database
client's own means (``PGPASSWORD``, ``~/.pgpass``).
"""

from __future__ import annotations

import base64
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

DATABASES = ("sqlite", "postgresql", "mysql", "mssql")
SERVERS = ("http", "https")
USER_ENV, PASSWORD_ENV = "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"


class TrackingUnavailable(RuntimeError):
    """The MLflow tracking server does not answer: the search stops before it starts."""


def _scheme(uri: str) -> str:
    return uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""


def uri_problem(uri: str) -> str | None:
    """Why a search cannot take ``uri`` as its tracking URI, or None (syntax only; no I/O)."""
    fix = "give sqlite:////ABSOLUTE/PATH.db, postgresql://..., or http://HOST:PORT of an MLflow server"
    if not uri.strip() or any(c.isspace() or ord(c) < 32 for c in uri):
        return f"{redact_uri(uri)!r} is not a URI; {fix}"
    scheme = _scheme(uri)
    if scheme in ("", "file"):
        return (f"{redact_uri(uri)!r} is MLflow's file store, in maintenance mode in MLflow 3; "
                f"use sqlite:////ABSOLUTE/PATH.db instead (or {fix.split(', ', 1)[1]})")
    if scheme not in DATABASES + SERVERS:
        return f"{redact_uri(uri)!r}: unknown scheme {scheme!r}; {fix}"
    try:
        parts = urllib.parse.urlsplit(uri)
        _ = parts.port  # reading it parses it: "host:notaport" raises here
    except ValueError as exc:
        return f"{redact_uri(uri)!r} is not a valid URI ({exc}); {fix}"
    if scheme == "sqlite" and not sqlite_path(uri):
        return f"{uri!r} names no database file (an in-memory store is lost with the driver); {fix}"
    if scheme in SERVERS and not parts.hostname:
        return f"{redact_uri(uri)!r} names no host; {fix}"
    return None


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` URI (None: in memory)."""
    rest = uri.split("://", 1)[1]
    path = rest[1:] if rest.startswith("/") else rest
    path = path.split("?", 1)[0]
    return Path(path).expanduser() if path and path != ":memory:" else None


def split_credentials(uri: str) -> tuple[str, str | None, str | None]:
    """``(uri without user:password@, user, password)``; an MLflow server's credentials."""
    parts = urllib.parse.urlsplit(uri)
    if _scheme(uri) not in SERVERS or (parts.username is None and parts.password is None):
        return uri, None, None
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    clean = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return clean, urllib.parse.unquote(parts.username or ""), urllib.parse.unquote(parts.password or "")


def stored_form(uri: str) -> str:
    """``uri`` as it may be kept, shown or logged: an MLflow server's ``user:password@`` dropped
    (they travel as environment variables), a database URI's password dropped (its user kept)."""
    try:
        if _scheme(uri) in SERVERS:
            return split_credentials(uri)[0]
        parts = urllib.parse.urlsplit(uri)
        if parts.password is None:
            return uri
    except ValueError:  # not parseable: everything up to the last "@" goes
        return redact_uri(uri)
    user, _, host = parts.netloc.rpartition("@")
    netloc = f"{user.split(':', 1)[0]}@{host}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def with_password(stored: str) -> str:
    """A stored URI with its password again: ``$MLFLOW_TRACKING_URI`` when that is the same store
    with a password, else ``stored`` (a database client may find the password itself)."""
    given = os.environ.get("MLFLOW_TRACKING_URI", "")
    return given if given and given != stored and stored_form(given) == stored else stored


def use_credentials(uri: str) -> str:
    """The URI without credentials; the ones it had become MLflow's environment variables (where
    those are not set already), which MLflow's client sends as HTTP basic auth."""
    clean, user, password = split_credentials(uri)
    if user:
        os.environ.setdefault(USER_ENV, user)
    if password:
        os.environ.setdefault(PASSWORD_ENV, password)
    return clean


def redact_uri(uri: str) -> str:
    """``uri`` as it may be shown: a password replaced by ``***``."""
    try:
        parts = urllib.parse.urlsplit(uri)
        if parts.password is None:
            return uri
    except ValueError:
        return uri.split("@", 1)[-1] if "@" in uri else uri
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urllib.parse.urlunsplit((parts.scheme, f"{user}:***@{netloc[1]}", parts.path, parts.query, parts.fragment))


def unreachable(uri: str, timeout_s: float = 5.0) -> str | None:
    """Why the MLflow server at ``uri`` does not answer its health check, or None; a database store
    is not a server and always "answers". Sends MLflow's basic-auth credentials if set."""
    if _scheme(uri) not in SERVERS:
        return None
    clean = use_credentials(uri)
    request = urllib.request.Request(f"{clean.rstrip('/')}/health")
    if os.environ.get(USER_ENV) or os.environ.get(PASSWORD_ENV):
        token = f"{os.environ.get(USER_ENV, '')}:{os.environ.get(PASSWORD_ENV, '')}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(token).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - http(s) only
            return None if response.status == 200 else f"/health answered HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"/health answered HTTP {error.code}"
    except (urllib.error.URLError, OSError, ValueError) as error:
        return str(getattr(error, "reason", error))


def store_problem(uri: str, *, create: bool) -> str | None:
    """Why the store at ``uri`` cannot be used now, or None: a server that does not answer, a SQLite
    file that is missing (``create`` False: a command that only reads or continues a search never
    makes a new store) or that cannot be created or written."""
    scheme = _scheme(uri)
    if scheme in SERVERS:
        reason = unreachable(uri)
        return None if reason is None else (f"no MLflow server answers at {redact_uri(split_credentials(uri)[0])} "
                                            f"({reason}); start it, or set mlflow.tracking_uri / MLFLOW_TRACKING_URI")
    if scheme != "sqlite":
        return driver_problem(uri)
    path = sqlite_path(uri)
    assert path is not None  # uri_problem refused the in-memory store
    if path.is_dir():
        return f"{path} is a directory, not a SQLite file"
    if path.exists():
        with open(path, "rb") as db:
            head = db.read(16)
        if head and head != b"SQLite format 3\x00":
            return f"{path} is not a SQLite database"
        return None if os.access(path, os.W_OK) else f"{path} is not writable"
    if not create:
        return f"no MLflow store at {path}"
    problem = writable_dir_problem(path.parent)
    return None if problem is None else f"cannot create {path}: {problem}"


def driver_problem(uri: str) -> str | None:
    """Why this Python cannot talk to the database server of ``uri``: its SQLAlchemy driver (psycopg
    for postgresql://, mysqlclient for mysql://, ...) is not installed; or None."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        dialect = make_url(uri).get_dialect()
        dialect.import_dbapi()
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        return f"{redact_uri(uri)!r}: SQLAlchemy cannot read it ({exc})"
    except ImportError as exc:
        return (f"{_scheme(uri)}:// needs the Python database driver {dialect.driver!r}, not installed here "
                f"({exc}); pip install it (e.g. psycopg[binary] for postgresql), or use sqlite:////ABSOLUTE/PATH.db")
    return None


def writable_dir_problem(directory: Path) -> str | None:
    """Why files cannot be created under ``directory`` (made if missing), or None. Tried, not
    inferred from permission bits: root passes ``os.access`` on read-only mounts and /proc. What the
    try creates is removed; a missing directory is left missing."""
    existing = Path(directory).expanduser().absolute()
    while not existing.exists():
        if existing.is_symlink():
            return f"{existing} is a dangling link"
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a directory"
    try:
        probe = existing / f".stilts-write-test-{os.getpid()}"
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        return f"{existing} is not writable ({exc.strerror})"
    return None


def default_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"
