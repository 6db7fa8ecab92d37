"""What a search exposes: the sockets it listens on, where secrets end up, what it leaves behind.

A real search (real Ray, Optuna, a real ``mlflow server`` on 127.0.0.1 reached through a URI with
a password in it) runs in a subprocess with a canary secret in its environment. Its trainable makes
what a real trial makes before it trains (the trial's torch.distributed world and a DeepSpeed
engine), then lists the listening sockets of every process of the search (psutil). Afterwards the
canaries are looked for in every file of the search directory, the server's store and artifacts,
and the console: zero hits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from servers import free_port, start_mlflow_server, stop_server

PASSWORD = "canary-pw-7f3a9c"  # in the tracking URI
SECRET = "canary-env-51d2e8"  # in the driver's environment, as a cloud key would be
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}

DRIVER = '''
import json, os, sys
from pathlib import Path
from stiltsearch.search.config.reading import load_config
from stiltsearch.search.driver import run_search

record, driver = Path(sys.argv[2]), os.getpid()


def trainable(config):
    import deepspeed
    import psutil
    import torch
    from ray import tune

    from stiltsearch.trainables.processgroup import ensure_distributed

    # what a real trial opens before it trains: its process group and a DeepSpeed engine
    ensure_distributed()
    layer = torch.nn.Linear(2, 2)
    deepspeed.initialize(model=layer, model_parameters=layer.parameters(),
                         config={"train_batch_size": 1, "optimizer": {"type": "AdamW", "params": {"lr": 1e-3,
                                 "torch_adam": True}}})
    marker = os.environ["STILTSEARCH_SEARCH_DIR"]
    procs = [psutil.Process(driver)]
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("STILTSEARCH_SEARCH_DIR") == marker:
                procs.append(proc)
        except psutil.Error:
            continue
    seen = []
    for proc in procs:
        try:
            seen += [[proc.name(), c.laddr.ip, c.laddr.port] for c in proc.net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN]
        except psutil.Error:
            continue
    record.write_text(json.dumps(seen))
    size = len(config.get("intermediate_tasks", ())) + config["layers_kept"]
    tune.report({"phase": 3, "xtreme_score": 50.0 + size, "tokens_per_sec": 1e5 / size})


result = run_search(load_config(sys.argv[1]), trainable=trainable)
sys.exit(0 if len(result.front.outcomes) == 2 else 1)
'''


def _temp_entries() -> set[str]:
    """Everything in the temp dir (Ray's ``ray``/``stilts-*`` dirs, multiprocessing's ``pymp-*``, ...)."""
    return set(os.listdir(tempfile.gettempdir()))


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, tiny_model: str, cache: Path) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("guarded")
    port = free_port()
    server = start_mlflow_server(root, port, root / "server.log")
    try:
        config = root / "search.yaml"
        config.write_text(f"name: guarded\nmodel: {tiny_model}\nintermediate_tasks: [mnli]\ntarget_tasks: [xnli]\n"
                          f"languages: [de]\noutput_dir: {root / 'runs'}\nsearch: {{num_trials: 2, max_concurrent: 1}}\n"
                          f"space: {{layers_kept: [1, 2]}}\n"
                          f"mlflow: {{tracking_uri: 'http://stilts:{PASSWORD}@127.0.0.1:{port}'}}\n")
        (root / "driver.py").write_text(DRIVER)
        before = _temp_entries()
        env = {**os.environ, "AWS_SECRET_ACCESS_KEY": SECRET, "STILTSEARCH_CACHE": str(cache)}
        env.pop("MLFLOW_TRACKING_PASSWORD", None)
        done = subprocess.run([sys.executable, str(root / "driver.py"), str(config), str(root / "listening.json")],
                              cwd=root, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        runs = _trial_runs(f"http://127.0.0.1:{port}")
    finally:
        stop_server(server)
    (search,) = (root / "runs").iterdir()
    return {"root": root, "search": search, "console": done.stdout + done.stderr, "uri": f"http://127.0.0.1:{port}",
            "listening": json.loads((root / "listening.json").read_text()), "new_temp": _temp_entries() - before,
            "runs": runs}


def _trial_runs(uri: str) -> list[str]:
    """The statuses of the search's trial runs on the server."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("guarded")
    assert experiment is not None
    return [r.info.status for r in client.search_runs([experiment.experiment_id], "tags.`stiltsearch.kind` = 'trial'")]


def test_a_local_search_listens_on_loopback_only(guarded: dict[str, Any]) -> None:
    listening = guarded["listening"]
    print("local search listening:", sorted({(name, ip) for name, ip, _ in listening}))
    names = {name for name, _, _ in listening}
    assert {"gcs_server", "raylet"} <= names, listening  # the search's own Ray was seen
    exposed = [entry for entry in listening if entry[1] not in LOOPBACK]
    assert not exposed, f"listening beyond loopback: {exposed}"


def test_no_secret_reaches_a_file_the_store_or_the_console(guarded: dict[str, Any]) -> None:
    hits = []
    for path in guarded["root"].rglob("*"):  # the search dir, the server's store and artifacts, logs
        if path.is_file() and path.name != "search.yaml" and path.name != "server.log":
            data = path.read_bytes()
            hits += [f"{path}: {canary}" for canary in (PASSWORD, SECRET) if canary.encode() in data]
    hits += [f"console: {canary}" for canary in (PASSWORD, SECRET) if canary in guarded["console"]]
    assert hits == []
    # the credentials went where MLflow reads them: the search's runs reached the server
    where = json.loads((guarded["search"] / "search.json").read_text())
    assert where["tracking_uri"] == guarded["uri"]
    assert guarded["runs"] == ["FINISHED", "FINISHED"]


def test_a_finished_search_leaves_no_process_no_temp_dir_and_nothing_world_writable(guarded: dict[str, Any]) -> None:
    from stiltsearch.search.launch.raysession import stray_processes

    assert stray_processes(guarded["search"]) == []
    assert guarded["new_temp"] == set(), "left in the temp dir"
    open_to_all = [str(p) for p in guarded["search"].rglob("*") if p.stat().st_mode & 0o002 and not p.is_symlink()]
    assert open_to_all == []


def test_a_dead_drivers_private_ray_dir_is_swept_and_nothing_else() -> None:
    """A SIGKILLed driver cannot remove its private Ray dir (Ray's logs hold the environment);
    the next local session removes it: owner gone and no process naming it. A live owner's dir, a
    dir that a surviving Ray server of the dead driver still names, and one with no owner file
    (another user's, or one being made) stay (tests/test_resume.py checks it after a real SIGKILL)."""
    import shutil
    import subprocess

    from stiltsearch.search.launch.raysession import OWNER_FILE, TEMP_PREFIX, sweep_stale_temp_dirs

    gone = subprocess.Popen(["true"])
    gone.wait()

    def made(owner: int | None) -> Path:
        path = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
        (path / "r").mkdir()
        if owner is not None:
            (path / OWNER_FILE).write_text(str(owner))
        return path

    stale, alive, named, unowned = made(gone.pid), made(os.getpid()), made(gone.pid), made(None)
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", f"--session-dir={named}/r/session_1"])
    try:
        removed = sweep_stale_temp_dirs()
        assert stale in removed and not stale.exists()
        assert alive.exists() and named.exists() and unowned.exists()
    finally:
        server.kill()
        server.wait()
        for path in (alive, named, unowned):
            shutil.rmtree(path, ignore_errors=True)


def _listening(roots: list[int]) -> list[tuple[str, str, int]]:
    """(name, ip, port) of every listening socket of ``roots`` and all their descendants."""
    procs = []
    for pid in roots:
        try:
            root = psutil.Process(pid)
            procs += [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
    found = []
    for proc in procs:
        try:
            found += [(proc.name(), c.laddr.ip, c.laddr.port) for c in proc.net_connections(kind="inet")
                      if c.status == psutil.CONN_LISTEN]
        except psutil.Error:
            continue
    return sorted(set(found))


@pytest.mark.cluster
def test_the_local_cluster_listens_on_loopback_only_and_keeps_its_session_files_private(tmp_path: Path) -> None:
    """Every process of every node (GCS, raylets, object managers, agents, workers, the dashboard),
    and a job's driver: loopback only. Nothing of Ray's is left in the temp dir after ``stop``."""
    from stiltsearch.cluster import local

    before = _temp_entries()
    cluster = local.start(tmp_path / "c", workers=2, port=free_port(), dashboard_port=free_port())
    try:
        code = ("import ray, os, time; ray.init(); "  # a job's driver: Ray gives it RAY_ADDRESS
                "ray.get(ray.remote(num_cpus=1)(lambda: time.sleep(8)).remote())")
        job = subprocess.Popen([str(Path(sys.executable).with_name("ray")), "job", "submit", "--address",
                                cluster.dashboard, "--", sys.executable, "-c", code],
                               env={**os.environ, "RAY_AUTH_MODE": "token"}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        listening: list[tuple[str, str, int]] = []
        for _ in range(20):  # until the job's driver and its task's worker listen too
            time.sleep(1)
            listening = _listening(list(cluster.nodes.values()))
            if sum(name.startswith("python") or "::" in name for name, _, _ in listening) >= 4:
                break
        output, _ = job.communicate(timeout=120)
        print("cluster.local listening:", listening)
        names = {name for name, _, _ in listening}
        assert {"gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent"} <= names, listening
        assert sum(name == "raylet" for name, _, _ in listening) >= 3  # the head's and both workers'
        assert [entry for entry in listening if entry[1] not in LOOPBACK] == []
        assert job.returncode == 0 and "succeeded" in output, output[-2000:]
        assert not Path(cluster.temp_dir).stat().st_mode & 0o077  # the parent of Ray's 0777 session dirs
    finally:
        local.stop(tmp_path / "c")
    assert not Path(cluster.temp_dir).exists()
    assert _temp_entries() - before == set(), _temp_entries() - before  # no /tmp/ray, stilts-*, pymp-* left

