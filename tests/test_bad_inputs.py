"""Bad input at every edge: config fields, CLI flags, damaged search directories, MLflow URIs, the
local cluster's commands. Each case must end as the CLI promises: exit 2, one line naming the field
and the fix, no traceback, and nothing changed: a checksum of the existing search directory and of
its MLflow store is the same before and after, and a refused ``run`` creates nothing.

The commands run in this process (``main(argv)``, stdout and stderr captured at the file
descriptors, so a library's log line counts as output). Ray and phase 1 are replaced by a function
that raises: a case that gets that far was not refused before it started anything.
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml


class ReachedStart(BaseException):  # noqa: N818 - BaseException: no `except Exception` of the CLI swallows it
    """A case got past every check into phase 1 or Ray."""


# --- the finished search the damaged-directory cases copy ------------------------------------------


def _trainable() -> Callable[[dict[str, Any]], None]:
    def trainable(config: dict[str, Any]) -> None:
        from ray import tune

        size = len(config.get("intermediate_tasks", ())) + config["layers_kept"]
        tune.report({"phase": 3, "xtreme_score": 50.0 + size, "tokens_per_sec": 1e5 / size})

    return trainable


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, tiny_model: str) -> dict[str, Path]:
    """A real search of 3 trials (real Ray, Optuna, MLflow; a trainable that reports at once)."""
    from stiltsearch.search.config.reading import load_config
    from stiltsearch.search.driver import run_search

    root = tmp_path_factory.mktemp("finished")
    config = root / "search.yaml"
    config.write_text(f"name: done\nmodel: {tiny_model}\nintermediate_tasks: [mnli, qqp]\ntarget_tasks: [xnli]\n"
                      f"languages: [de]\noutput_dir: {root / 'runs'}\nsearch: {{num_trials: 3, max_concurrent: 1}}\n"
                      f"space: {{layers_kept: [1, 2]}}\nmlflow: {{tracking_uri: 'sqlite:///{root}/mlflow.db'}}\n")
    result = run_search(load_config(config), trainable=_trainable())
    assert not result.interrupted and len(result.front.outcomes) == 3
    return {"dir": result.search_dir, "store": root / "mlflow.db", "model": Path(tiny_model)}


# --- one case ---------------------------------------------------------------------------------


@dataclass
class World:
    """What a case sees: a scratch directory, a copy of the finished search and of its store."""

    tmp: Path
    search: Path  # a copy of the finished search; its search.json points at `store`
    store: Path  # a copy of the finished search's MLflow store
    model: Path  # the tiny real encoder (a local directory)
    held: list[Any] = field(default_factory=list)  # open files a case keeps (a lock held by "another driver")

    @property
    def out(self) -> Path:  # where a refused `run` must create nothing
        return self.tmp / "out"

    def config(self, text: str | bytes, name: str = "bad.yaml") -> str:
        path = self.tmp / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return str(path)

    def where(self) -> dict[str, Any]:
        return json.loads((self.search / "search.json").read_text())


@dataclass(frozen=True)
class Case:
    id: str  # noqa: A003
    argv: Callable[[World], list[str]]
    setup: Callable[[World], None] | None = None
    says: str = ""  # a word the error line must contain (the field it names)


def _checksum(*roots: Path) -> dict[str, str]:
    """Every file's bytes and mode under ``roots`` (the lock file's content is its holder's pid)."""
    sums = {}
    for root in roots:
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*"))
        for path in paths:
            if path.name == "driver.lock" or not (path.is_file() or path.is_dir()):
                continue
            mode = stat.S_IMODE(path.stat().st_mode)
            sums[str(path)] = f"{mode:o}:" + (hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir")
    return sums


# --- the table ----------------------------------------------------------------------------------

TOY = yaml.safe_load((Path(__file__).parents[1] / "configs" / "toy.yaml").read_text())


def _with(dotted: str, value: Any) -> dict[str, Any]:
    tree = copy.deepcopy(TOY)
    node = tree
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return tree


def _toy_yaml(w: World, tree: dict[str, Any]) -> str:
    """The config as YAML, writing under the scratch dir and to a new MLflow store there (unless
    the case sets its own URI)."""
    if tree.get("output_dir") == TOY["output_dir"]:  # the case is not about output_dir
        tree = {**tree, "output_dir": str(w.out)}
    if isinstance(tree.get("mlflow"), dict) and tree["mlflow"].get("tracking_uri") is None:
        tree["mlflow"] = {**tree["mlflow"], "tracking_uri": f"sqlite:///{w.tmp}/new-mlflow.db"}
    return yaml.safe_dump(tree, sort_keys=False)


CANARY = "canary-pw-3e1b"  # a password in a bad URI: no error line may show it

# (dotted field, bad value): each becomes a `validate`, a `run` and (every third) a `run --dry-run` case
FIELDS: list[tuple[str, Any]] = [
    ("name", ""), ("name", "a/b"), ("name", "x" * 300), ("name", 5), ("model", ""), ("model", 3),
    ("models", ["a", "b"]),
    ("intermediate_tasks", ["nope"]), ("intermediate_tasks", ["toy_mnli", "toy_mnli"]),
    ("intermediate_tasks", "toy_mnli"), ("target_tasks", []), ("target_tasks", ["toy_xnli", "toy_xnli"]),
    ("target_tasks", ["toy_mnli"]), ("languages", ["xa", "xa"]), ("languages", ["zz"]), ("languages", "xa"),
    ("eval_languages", {"toy_xnli": []}), ("eval_languages", {"nope": ["xa"]}),
    ("eval_languages", {"toy_xnli": ["zz"]}), ("eval_languages", {"toy_xnli": ["xa", "xa"]}),
    ("objectives", []), ("objectives", [{"name": "nope"}]),
    ("objectives", [{"name": "xtreme_score", "direction": "min"}]),
    ("objectives", [{"name": "xtreme_score", "direction": "up"}]),
    ("objectives", [{"name": "xtreme_score"}, {"name": "tokens_per_sec"}, {"name": "toy_xnli"}]),
    ("objectives", [{"name": "xtreme_score"}, {"name": "xtreme_score"}]),
    ("objectives", [{"name": "xtreme_score", "min": float("inf")}]),
    ("objectives", [{"name": "xtreme_score", "min": 60, "max": 50}]),
    ("objectives", [{"name": "xtreme_score", "min": True}]),
    ("objectives", [{"name": "xtreme_score", "min": float("nan")}]),
    ("objectives", "xtreme_score"), ("output_dir", 5), ("output_dir", ""),
    ("search.num_trials", 0), ("search.num_trials", 2.5), ("search.num_trials", True), ("search.num_trials", "8"),
    ("search.max_concurrent", -1), ("search.cpus_per_trial", 0), ("search.cpus_per_trial", 1000000),
    ("search.workers_per_trial", 0), ("search.workers_per_trial", 1000), ("search.gpus_per_worker", float("inf")),
    ("search.gpus_per_worker", -1), ("search.gpus_per_worker", True), ("search.gpus_per_worker", 1),
    ("search.max_failures", -1), ("search.seed", -1), ("search.seed", 2**32), ("search.seed", 1.5),
    ("search.scheduler", "nope"), ("search.reduction_factor", 1), ("search.reduction_factor", float("inf")),
    ("search.min_budget", 0), ("search.min_budget", 1.5), ("search.share_phase2", 1),
    ("search.share_phase2", float("nan")), ("search.nope", 1), ("search", [1]),
    ("space.intermediate_lr", [float("inf")]), ("space.intermediate_lr", []), ("space.intermediate_lr", [-1e-4]),
    ("space.intermediate_lr", [True]), ("space.intermediate_lr", [1e-3, 1e-4]), ("space.target_lr", [0]),
    ("space.target_lr", "1e-4"), ("space.layers_kept", [0]), ("space.layers_kept", [9]),
    ("space.layers_kept", [1, 1]), ("space.max_seq_length", [4]), ("space.max_seq_length", [100000]),
    ("space.precision", ["fp64"]), ("space.inference_batch_size", [0]), ("space.attention", ["flash"]),
    ("space.compile", [1]), ("space.nope", [1]),
    ("training.intermediate_steps", 0), ("training.batch_size", float("inf")), ("training.max_length", 4),
    ("training.qa_max_length", 1024), ("training.recipes", {"toy_mnli": {"epochs": float("inf")}}),
    ("training.recipes", {"toy_mnli": {"epochs": 0}}), ("training.recipes", {"nope": {"epochs": 1}}),
    ("training.recipes", {"toy_mnli": {"batch_size": 0}}), ("training.recipes", {"toy_mnli": {"lr": 1}}),
    ("training.sampling_temperature", float("inf")), ("training.sampling_temperature", 0),
    ("training.zero_stage", 4), ("training.precision", "fp8"), ("training.seed", -1), ("training.seed", 2**40),
    ("toy_model.layers", []), ("toy_model.layers", [0]), ("toy_model.layers", [2, 2]), ("toy_model.hidden", 130),
    ("toy_model.heads", 0), ("toy_model.mlm_steps", 0), ("toy_model.layers", [100000]),
    ("throughput.repeats", 0), ("throughput.warmup", -1), ("throughput.max_sequences", 0),
    ("throughput.resource", ""), ("throughput.reference", "yes"),
    ("mlflow.tracking_uri", "not a uri"), ("mlflow.tracking_uri", "foo://bar"), ("mlflow.tracking_uri", "http://[::1"),
    ("mlflow.tracking_uri", "file:///tmp/stilts-bad-inputs-store"), ("mlflow.tracking_uri", "sqlite:////proc/x.db"),
    ("mlflow.tracking_uri", "http://127.0.0.1:1"), ("mlflow.tracking_uri", f"http://u:{CANARY}@127.0.0.1:1"),
    ("mlflow.tracking_uri", f"postgresql://u:{CANARY}@127.0.0.1:1/x y"), ("mlflow.tracking_uri", ""), ("mlflow.tracking_uri", "sqlite://"),
    # a database store whose Python driver is not installed (psycopg, mysqlclient): one line, no password
    ("mlflow.tracking_uri", f"postgresql://u:{CANARY}@127.0.0.1:1/db"), ("mlflow.tracking_uri", f"mysql://u:{CANARY}@127.0.0.1:1/db"),
    # longer than the toy encoders' 128 positions
    ("training.max_length", 256), ("space.max_seq_length", [256]),
    ("mlflow.experiment", ""), ("mlflow", "x"), ("data", {"nope": "/tmp"}), ("nope", 1),
]


# what only this machine refuses (a dry run lists it under "needs before running" and exits 0)
ENVIRONMENT = {("search.cpus_per_trial", "1000000"), ("search.workers_per_trial", "1000"),
               ("search.gpus_per_worker", "1"), ("mlflow.tracking_uri", "http://127.0.0.1:1"),
               ("mlflow.tracking_uri", f"http://u:{CANARY}@127.0.0.1:1"),
               ("mlflow.tracking_uri", "sqlite:////proc/x.db"),
               ("mlflow.tracking_uri", f"postgresql://u:{CANARY}@127.0.0.1:1/db"),
               ("mlflow.tracking_uri", f"mysql://u:{CANARY}@127.0.0.1:1/db")}


def _field_cases() -> Iterator[Case]:
    for i, (dotted, value) in enumerate(FIELDS):
        name = f"{dotted}={str(value)[:24]}"
        leaf = dotted.split(".")[-1]

        def argv(w: World, dotted: str = dotted, value: Any = value, command: str = "validate") -> list[str]:
            return [command, w.config(_toy_yaml(w, _with(dotted, value)))]

        yield Case(f"validate {name}", argv, says=leaf)
        yield Case(f"run {name}", lambda w, a=argv: ["run", *a(w)[1:]], says=leaf)
        if i % 3 == 0 and (dotted, str(value)) not in ENVIRONMENT:
            yield Case(f"dry-run {name}", lambda w, a=argv: ["run", "--dry-run", *a(w)[1:]], says=leaf)


def _toy_text(w: World) -> str:
    return _toy_yaml(w, copy.deepcopy(TOY))


RAW: list[tuple[str, Callable[[World], str | bytes], str]] = [
    ("not UTF-8", lambda w: b"name: \xff\xfe toy\n", "UTF-8"),
    ("binary", lambda w: bytes(range(256)) * 4, "config"),
    ("duplicate top-level key", lambda w: _toy_text(w) + "name: other\n", "name"),
    ("duplicate nested key", lambda w: _toy_text(w).replace("  num_trials: 8\n", "  num_trials: 8\n  num_trials: 9\n"),
     "num_trials"),
    ("bad YAML", lambda w: "name: [toy\n", "YAML"),
    ("python tag", lambda w: "name: !!python/object/apply:os.system ['true']\n", "config"),
    ("a list", lambda w: "- a\n- b\n", "mapping"),
    ("a scalar", lambda w: "toy\n", "mapping"),
    ("tab indent", lambda w: "search:\n\tnum_trials: 3\n", "YAML"),
    ("a number and a word as keys", lambda w: "1: x\nnope: y\n", "unknown field"),
]


def _raw_cases() -> Iterator[Case]:
    for label, text, says in RAW:
        for command in ("validate", "run"):
            yield Case(f"{command} config {label}", lambda w, t=text, c=command: [c, w.config(t(w))], says=says)
    yield Case("validate a missing file", lambda w: ["validate", str(w.tmp / "missing.yaml")], says="config")
    yield Case("run a missing file", lambda w: ["run", str(w.tmp / "missing.yaml")], says="config")
    yield Case("run a directory", lambda w: ["run", str(w.tmp)], says="config")
    yield Case("validate a directory", lambda w: ["validate", str(w.tmp)], says="config")
    yield Case("validate /dev/zero", lambda w: ["validate", "/dev/zero"], says="config")  # endless: read 1 MiB + 1


def _good(w: World) -> str:
    return w.config(_toy_text(w), "good.yaml")


def _file(w: World) -> str:
    (w.tmp / "a-file").write_text("x")
    return str(w.tmp / "a-file")


def _readonly(w: World) -> str:
    if os.geteuid() == 0:  # root writes through permission bits; sysfs refuses even root
        return "/sys/stilts"
    path = w.tmp / "readonly"
    path.mkdir()
    path.chmod(0o555)
    return str(path)


class _Undo:
    """Something a case changed outside its files (an environment variable, a mount, a listener),
    put back when the case ends (World.held)."""

    def __init__(self, undo: Callable[[], Any]) -> None:
        self.close = undo


def _not_ray(w: World) -> str:
    """The address of a port that accepts connections and never answers: not a Ray head."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    w.held.append(listener)
    return f"127.0.0.1:{listener.getsockname()[1]}"


def _http_server(w: World) -> str:
    """The address of a plain HTTP/1 server: it answers, but not as Ray's GCS (gRPC)."""
    import http.server
    import threading

    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:  # its log would be the case's output
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    w.held.append(_Undo(lambda: (server.shutdown(), server.server_close())))
    return f"127.0.0.1:{server.server_address[1]}"


def _cache_a_file(w: World) -> None:
    before = os.environ.get("STILTSEARCH_CACHE")
    os.environ["STILTSEARCH_CACHE"] = _file(w)
    w.held.append(_Undo(lambda: os.environ.__setitem__("STILTSEARCH_CACHE", before) if before is not None
                        else os.environ.pop("STILTSEARCH_CACHE", None)))


def _read_only(w: World) -> None:
    """The search directory on a read-only mount (a bind mount remounted read-only: root's writes fail too)."""
    import subprocess

    subprocess.run(["mount", "--bind", str(w.search), str(w.search)], check=True)
    w.held.append(_Undo(lambda: subprocess.run(["umount", str(w.search)], check=True)))
    subprocess.run(["mount", "-o", "remount,bind,ro", str(w.search)], check=True)


def _full_disk(w: World) -> str:
    """An output directory on a filesystem with 40 KiB left (a 512 KiB tmpfs, filled): the new
    study's schema does not fit."""
    import subprocess

    disk = w.tmp / "full"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)], check=True)
    # lazily: the refused driver, this process, may still hold the SQLite file it could not fill
    w.held.append(_Undo(lambda: subprocess.run(["umount", "--lazy", str(disk)], check=True)))
    (disk / "filler").write_bytes(b"\0" * (512 - 40) * 1024)
    return str(disk / "out")


def _lock_store(w: World) -> None:
    """Another process holds the MLflow SQLite store's write lock for the whole case."""
    db = sqlite3.connect(w.store, isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    w.held.append(_Undo(lambda: (db.execute("ROLLBACK"), db.close())))


FLAG_CASES = [
    Case("run --trials 0", lambda w: ["run", _good(w), "--trials", "0"], says="num_trials"),
    Case("run --trials -3", lambda w: ["run", _good(w), "--trials", "-3"], says="num_trials"),
    Case("run --trials abc", lambda w: ["run", _good(w), "--trials", "abc"], says="trials"),
    Case("run --concurrency 0", lambda w: ["run", _good(w), "--concurrency", "0"], says="max_concurrent"),
    Case("run --name empty", lambda w: ["run", _good(w), "--name", ""], says="name"),
    Case("run --name slash", lambda w: ["run", _good(w), "--name", "a/b"], says="name"),
    Case("run --name long", lambda w: ["run", _good(w), "--name", "n" * 250], says="name"),
    Case("run --name NUL", lambda w: ["run", _good(w), "--name", "a\x01b"], says="name"),
    Case("run --output-dir a file", lambda w: ["run", _good(w), "--output-dir", _file(w)], says="output_dir"),
    Case("run --output-dir under a file", lambda w: ["run", _good(w), "--output-dir", _file(w) + "/x"],
         says="output_dir"),
    Case("run --output-dir read-only", lambda w: ["run", _good(w), "--output-dir", _readonly(w)], says="output_dir"),
    Case("run --output-dir /proc", lambda w: ["run", _good(w), "--output-dir", "/proc/stilts"], says="output_dir"),
    Case("run --address garbage", lambda w: ["run", _good(w), "--address", "garbage"], says="address"),
    Case("run --address nothing there", lambda w: ["run", _good(w), "--address", "127.0.0.1:1"], says="address"),
    Case("run --address bad port", lambda w: ["run", _good(w), "--address", "127.0.0.1:notaport"], says="address"),
    Case("run --address ray://", lambda w: ["run", _good(w), "--address", "ray://"], says="address"),
    Case("run --address port 99999", lambda w: ["run", _good(w), "--address", "127.0.0.1:99999"], says="address"),
    Case("run --address a port that is not Ray", lambda w: ["run", _good(w), "--address", _not_ray(w)], says="address"),
    Case("run --address an HTTP server", lambda w: ["run", _good(w), "--address", _http_server(w)], says="address"),
    Case("run --address auto, no cluster", lambda w: ["run", _good(w), "--address", "auto"], says="auto"),
    Case("run, STILTSEARCH_CACHE a file", lambda w: ["run", _good(w)], _cache_a_file, says="STILTSEARCH_CACHE"),
    Case("validate, STILTSEARCH_CACHE a file", lambda w: ["validate", _good(w)], _cache_a_file,
         says="STILTSEARCH_CACHE"),
    Case("run unknown flag", lambda w: ["run", _good(w), "--nope"], says="nope"),
    Case("no command", lambda w: [], says="command"),
    Case("unknown command", lambda w: ["fly"], says="fly"),
    Case("validate without a config", lambda w: ["validate"], says="config"),
    Case("resume without a dir", lambda w: ["resume"], says="search_dir"),
    Case("resume a missing dir", lambda w: ["resume", str(w.tmp / "missing")], says="search_dir"),
    Case("resume a file", lambda w: ["resume", _file(w)], says="search_dir"),
    Case("resume an empty dir", lambda w: ["resume", str(w.tmp)], says="search_dir"),
    Case("resume --trials 0", lambda w: ["resume", str(w.search), "--trials", "0"], says="trials"),
    Case("resume --trials abc", lambda w: ["resume", str(w.search), "--trials", "abc"], says="trials"),
    Case("resume --trials fewer than done", lambda w: ["resume", str(w.search), "--trials", "2"], says="trials"),
    Case("resume --address garbage", lambda w: ["resume", str(w.search), "--trials", "5", "--address", "garbage"],
         says="address"),
    Case("resume --address nothing there",
         lambda w: ["resume", str(w.search), "--trials", "5", "--address", "127.0.0.1:1"], says="address"),
    Case("resume --address a port that is not Ray",
         lambda w: ["resume", str(w.search), "--trials", "5", "--address", _not_ray(w)], says="address"),
    Case("resume --address auto, no cluster",
         lambda w: ["resume", str(w.search), "--trials", "5", "--address", "auto"], says="auto"),
    Case("resume, the MLflow store locked", lambda w: ["resume", str(w.search), "--trials", "5"], _lock_store,
         says="tracking_uri"),
    *([Case("run on a full disk", lambda w: ["run", _good(w), "--output-dir", _full_disk(w)], says="output_dir"),
       Case("resume on a read-only mount", lambda w: ["resume", str(w.search), "--trials", "5"], _read_only,
            says="search_dir"),
       Case("confirm on a read-only mount", lambda w: ["confirm", str(w.search)], _read_only, says="search_dir")]
      if os.geteuid() == 0 else []),  # a mount needs root (CI runs as root)
    Case("confirm without a dir", lambda w: ["confirm"], says="search_dir"),
    Case("confirm a missing dir", lambda w: ["confirm", str(w.tmp / "missing")], says="search_dir"),
    Case("confirm a file", lambda w: ["confirm", _file(w)], says="search_dir"),
    Case("confirm an empty dir", lambda w: ["confirm", str(w.tmp)], says="search_dir"),
    Case("confirm --seeds 0", lambda w: ["confirm", str(w.search), "--seeds", "0"], says="seeds"),
    Case("confirm --seeds -2", lambda w: ["confirm", str(w.search), "--seeds", "-2"], says="seeds"),
    Case("confirm --seeds 101", lambda w: ["confirm", str(w.search), "--seeds", "101"], says="seeds"),
    Case("confirm --seeds abc", lambda w: ["confirm", str(w.search), "--seeds", "abc"], says="seeds"),
    Case("confirm --seeds 1.5", lambda w: ["confirm", str(w.search), "--seeds", "1.5"], says="seeds"),
    Case("confirm --address garbage", lambda w: ["confirm", str(w.search), "--address", "garbage"], says="address"),
    Case("confirm --address nothing there", lambda w: ["confirm", str(w.search), "--address", "127.0.0.1:1"],
         says="address"),
    Case("confirm --address a port that is not Ray", lambda w: ["confirm", str(w.search), "--address", _not_ray(w)],
         says="address"),
    Case("confirm --address auto, no cluster", lambda w: ["confirm", str(w.search), "--address", "auto"], says="auto"),
    Case("confirm an unfinished search", lambda w: ["confirm", str(w.search)],
         lambda w: _edit_config(w, lambda c: c["search"].update(num_trials=5)), says="finish it first"),
    Case("confirm past the seed range", lambda w: ["confirm", str(w.search), "--seeds", "2"],
         lambda w: _edit_config(w, lambda c: c["training"].update(seed=2**32 - 2)), says="seeds"),
    Case("pareto a missing dir", lambda w: ["pareto", str(w.tmp / "missing" / "dir")], says="target"),
    Case("pareto an unknown experiment", lambda w: ["pareto", "nope", "--tracking-uri", f"sqlite:///{w.store}"],
         says="target"),
    Case("pareto a file", lambda w: ["pareto", _file(w)], says="target"),
    Case("pareto --tracking-uri garbage", lambda w: ["pareto", "done", "--tracking-uri", "garbage"],
         says="tracking-uri"),
    Case("pareto --tracking-uri foo://", lambda w: ["pareto", "done", "--tracking-uri", "foo://bar"],
         says="tracking-uri"),
    Case("pareto --tracking-uri a broken IPv6 host", lambda w: ["pareto", "done", "--tracking-uri", "http://u:p@[::1"],
         says="tracking-uri"),
    Case("pareto --tracking-uri a missing store",
         lambda w: ["pareto", "done", "--tracking-uri", f"sqlite:///{w.tmp}/missing.db"], says="tracking-uri"),
    Case("pareto --out a file", lambda w: ["pareto", str(w.search), "--out", _file(w)], says="out"),
    Case("pareto --out read-only", lambda w: ["pareto", str(w.search), "--out", _readonly(w)], says="out"),
    Case("pareto --out under /proc", lambda w: ["pareto", str(w.search), "--out", "/proc/stilts"], says="out"),
]


def _edit_config(w: World, change: Callable[[dict[str, Any]], Any]) -> None:
    config = yaml.safe_load((w.search / "config.yaml").read_text())
    change(config)
    (w.search / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def _edit_json(w: World, change: Callable[[dict[str, Any]], Any]) -> None:
    where = w.where()
    out = change(where)
    (w.search / "search.json").write_text(json.dumps(where if out is None else out))


def _write(relative: str, data: bytes) -> Callable[[World], None]:
    def setup(w: World) -> None:
        (w.search / relative).write_bytes(data)
    return setup


def _truncate_db(w: World) -> None:
    path = w.search / "optuna.db"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _hold_lock(w: World) -> None:
    lock = open(w.search / "driver.lock", "a+")  # noqa: SIM115 - held open for the whole case
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    w.held.append(lock)


def _rename_study(w: World) -> None:
    config = yaml.safe_load((w.search / "config.yaml").read_text())
    config["name"] = "other"
    (w.search / "config.yaml").write_text(yaml.safe_dump(config))


def _drop_table(w: World) -> None:
    with sqlite3.connect(w.search / "optuna.db") as db:
        db.execute("DROP TABLE trial_values")


def _truncate_state(w: World) -> None:  # a served model cut short, in the finished trial 0
    for path in (w.search / "trials").rglob("*.pt"):
        path.write_bytes(path.read_bytes()[:10])


DAMAGE: list[tuple[str, Callable[[World], None], str]] = [
    ("search.json not JSON", _write("search.json", b"{not json"), "search.json"),
    ("search.json empty", _write("search.json", b""), "search.json"),
    ("search.json a list", _write("search.json", b"[1, 2]"), "search.json"),
    ("search.json binary", _write("search.json", bytes(range(256))), "search.json"),
    ("search.json without tracking_uri", lambda w: _edit_json(w, lambda d: d.pop("tracking_uri")), "search.json"),
    ("search.json without parent_run_id", lambda w: _edit_json(w, lambda d: d.pop("parent_run_id")), "search.json"),
    ("search.json tracking_uri a number", lambda w: _edit_json(w, lambda d: d.update(tracking_uri=5)), "search.json"),
    ("search.json unknown parent run", lambda w: _edit_json(w, lambda d: d.update(parent_run_id="0" * 32)),
     "parent"),
    ("search.json unreachable server", lambda w: _edit_json(w, lambda d: d.update(tracking_uri="http://127.0.0.1:1")),
     "tracking_uri"),
    ("search.json garbage uri", lambda w: _edit_json(w, lambda d: d.update(tracking_uri="foo://bar")), "tracking_uri"),
    ("search.json missing store", lambda w: _edit_json(w, lambda d: d.update(tracking_uri=f"sqlite:///{w.tmp}/gone.db")),
     "tracking_uri"),
    ("config.yaml binary", _write("config.yaml", bytes(range(256))), "config"),
    ("config.yaml not UTF-8", _write("config.yaml", b"name: \xff\n"), "config"),
    ("config.yaml invalid", _write("config.yaml", b"search: {max_concurrent: 0}\n"), "max_concurrent"),
    ("config.yaml empty", _write("config.yaml", b""), "config"),
    ("config.yaml another study", _rename_study, "optuna.db"),
    ("optuna.db empty", _write("optuna.db", b""), "optuna.db"),
    ("optuna.db garbage", _write("optuna.db", b"not a database" * 100), "optuna.db"),
    ("optuna.db truncated", _truncate_db, "optuna.db"),
    ("optuna.db without a table", _drop_table, "optuna.db"),
    ("optuna.db missing", lambda w: (w.search / "optuna.db").unlink(), "optuna.db"),
    ("optuna.db a directory", lambda w: ((w.search / "optuna.db").unlink(), (w.search / "optuna.db").mkdir()),
     "optuna.db"),
    ("driver lock held", _hold_lock, "driver"),
]


def _damage_cases() -> Iterator[Case]:
    for label, setup, says in DAMAGE:
        yield Case(f"resume, {label}", lambda w: ["resume", str(w.search), "--trials", "5"], setup, says)
        yield Case(f"confirm, {label}", lambda w: ["confirm", str(w.search), "--seeds", "2"], setup, says)
        if not label.startswith(("search.json", "driver")):
            yield Case(f"pareto, {label}", lambda w: ["pareto", str(w.search)], setup, says)


CLUSTER_CASES = [
    Case("cluster start on a file", lambda w: ["start", _file(w)], says="dir"),
    Case("cluster start on garbage cluster.json",
         lambda w: ["start", str(w.tmp)], lambda w: (w.tmp / "cluster.json").write_text("{garbage"), "cluster.json"),
    Case("cluster stop a missing dir", lambda w: ["stop", str(w.tmp / "missing")], says="cluster"),
    Case("cluster stop garbage cluster.json",
         lambda w: ["stop", str(w.tmp)], lambda w: (w.tmp / "cluster.json").write_text("{garbage"), "cluster.json"),
    Case("cluster stop cluster.json of a list",
         lambda w: ["stop", str(w.tmp)], lambda w: (w.tmp / "cluster.json").write_text("[1]"), "cluster.json"),
    Case("cluster stop-node unknown",
         lambda w: ["stop-node", str(w.tmp), "worker-9"],
         lambda w: (w.tmp / "cluster.json").write_text(json.dumps(
             {"directory": str(w.tmp), "address": "127.0.0.1:1", "dashboard": "http://127.0.0.1:2", "nodes": {}})),
         "worker-9"),
    Case("cluster start --workers 0", lambda w: ["start", str(w.tmp / "c"), "--workers", "0"], says="workers"),
    Case("cluster start --port 99999", lambda w: ["start", str(w.tmp / "c"), "--port", "99999"], says="port"),
    Case("cluster start --port abc", lambda w: ["start", str(w.tmp / "c"), "--port", "abc"], says="port"),
    Case("cluster start --cpus-per-worker 0", lambda w: ["start", str(w.tmp / "c"), "--cpus-per-worker", "0"],
         says="cpus"),
    Case("cluster start --host of another machine", lambda w: ["start", str(w.tmp / "c"), "--host", "203.0.113.7"],
         says="host"),  # TEST-NET-3: nobody's address
    Case("cluster start --host garbage", lambda w: ["start", str(w.tmp / "c"), "--host", "not an address"],
         says="host"),
    Case("cluster start --head-cpus -1", lambda w: ["start", str(w.tmp / "c"), "--head-cpus", "-1"], says="cpus"),
]

CLI_CASES = [*_field_cases(), *_raw_cases(), *FLAG_CASES, *_damage_cases()]


@pytest.fixture
def world(tmp_path: Path, finished: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    from stiltsearch.search.launch import runner

    def refuse(*_: Any, **__: Any) -> Any:
        raise ReachedStart("the command got past every check and started phase 1 or Ray")

    monkeypatch.setattr(runner, "resolve_models", refuse)  # where a run starts phase 1, then Ray
    monkeypatch.setattr(runner, "ray_session", refuse)
    monkeypatch.chdir(tmp_path)  # a default ./mlflow.db would appear here
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    search = tmp_path / "search" / finished["dir"].name
    shutil.copytree(finished["dir"], search)
    store = tmp_path / "search" / "mlflow.db"
    shutil.copy2(finished["store"], store)
    w = World(tmp_path / "scratch", search, store, finished["model"])
    w.tmp.mkdir()
    _edit_json(w, lambda d: d.update(tracking_uri=f"sqlite:///{store}"))
    yield w
    for held in w.held:
        held.close()
    for path in tmp_path.rglob("*"):  # read-only dirs a case made must not stop the cleanup
        if path.is_dir():
            path.chmod(0o755)


def _expect_refusal(code: int, err: str, out: str, says: str) -> None:
    text = out + err
    assert "Traceback" not in text, text
    assert CANARY not in text, text
    assert code == 2, f"exit {code}: {text}"
    lines = [line for line in err.splitlines() if line.strip()]
    usage = [line for line in lines if line.startswith(("usage:", " ")) and "error:" not in line]
    rest = [line for line in lines if line not in usage]
    assert len(rest) == 1 and "error:" in rest[0], f"expected one error line, got: {err!r}"
    assert says.lower() in rest[0].lower(), f"the line does not name {says!r}: {rest[0]}"
    assert not out.strip() or out.startswith("dry run"), f"stdout: {out!r}"


@pytest.mark.parametrize("case", CLI_CASES, ids=lambda c: c.id)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(case: Case, world: World,
                                                         capfd: pytest.CaptureFixture[str]) -> None:
    from stiltsearch.search.cli import main

    if case.setup:
        case.setup(world)
    argv = case.argv(world)
    before = _checksum(world.search, world.store)
    around = sorted(world.tmp.parent.rglob("*"))  # the scratch dir and the cwd: a refusal creates nothing
    code = main(argv)
    out, err = capfd.readouterr()
    _expect_refusal(code, err, out, case.says)
    assert _checksum(world.search, world.store) == before, "the existing search or its MLflow store changed"
    assert sorted(world.tmp.parent.rglob("*")) == around, "a refused command created files"


@pytest.mark.parametrize("case", CLUSTER_CASES, ids=lambda c: c.id)
def test_bad_cluster_input_is_one_line_exit_2(case: Case, world: World, capfd: pytest.CaptureFixture[str]) -> None:
    from stiltsearch.cluster.local import main

    if case.setup:
        case.setup(world)
    argv = case.argv(world)
    before = _checksum(world.tmp)
    code = main(argv)
    out, err = capfd.readouterr()
    _expect_refusal(code, err, out, case.says)
    assert _checksum(world.tmp) == before


def test_the_table_is_big_enough() -> None:
    assert len(CLI_CASES) + len(CLUSTER_CASES) >= 150
