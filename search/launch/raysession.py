"""The Ray session a driver runs in, and the processes a killed driver left behind.

The one place the driver starts and stops Ray. Every process of a local Ray inherits
:data:`MARKER_ENV` (set in the driver before Ray starts), so a later ``stiltsearch resume`` finds
what a killed driver left running (its GCS, raylet and trial workers, which may still be writing
checkpoints) and stops it first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray binds loopback only (loopback_only)
MARKER_ENV = "STILTSEARCH_SEARCH_DIR"  # set in every local Ray process of a search: finds strays
TEMP_PREFIX = "stilts-ray-"  # the private temp dirs of local Ray sessions (ray_temp_dir)
OWNER_FILE = "owner.pid"  # in each: the pid of the driver that made it (sweep_stale_temp_dirs)


@contextmanager
def ray_temp_dir() -> Iterator[str]:
    """A private directory for a local Ray's session files, removed when the session ends.

    Not under the search directory: that one is meant for shared storage, and Ray's logs there
    (``runtime_env_agent.log``) hold the driver's environment, secrets included, in directories Ray
    makes world-writable. ``mkdtemp`` makes a 0700 directory with an unpredictable name; Ray gets a
    folder inside it (Ray sets its own temp dir to 0777, the private parent keeps others out), and
    the path stays short (Ray's Unix socket paths under it must stay below the OS limit of 107 bytes)."""
    sweep_stale_temp_dirs()
    private = tempfile.mkdtemp(prefix=TEMP_PREFIX)
    Path(private, OWNER_FILE).write_text(str(os.getpid()))
    try:
        yield os.path.join(private, "r")
    finally:
        shutil.rmtree(private, ignore_errors=True)


def sweep_stale_temp_dirs() -> list[Path]:
    """Remove the private Ray dirs of drivers that died without removing their own (SIGKILL, a
    crash of the machine's OOM killer): their owner's pid is gone and no live process names the
    dir on its command line (a killed driver's Ray servers may outlive it until a resume stops
    them: theirs is kept). A dir without an owner file is another user's or still being made: kept.
    Returns what was removed."""
    import psutil

    stale = []
    for path in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*"):
        try:
            owner = int((path / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if not psutil.pid_exists(owner):
            stale.append(path)
    if not stale:
        return []
    in_use = set()
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info.get("cmdline") or [])
        in_use |= {path for path in stale if str(path) in line}
    removed = [path for path in stale if path not in in_use]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


@contextmanager
def loopback_only() -> Iterator[None]:
    """A local Ray that listens on 127.0.0.1 only (GCS, raylet, workers, agents).

    Ray 2.60 on Linux binds its servers to every interface and resolves a node address of
    127.0.0.1 to the machine's outward address (``services.resolve_ip_for_localhost``), so
    ``_node_ip_address`` alone does not help. Its single-machine mode (the default on macOS and
    Windows, ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``) takes loopback as the node address, and every
    server then binds there (measured with psutil: tests/test_security.py). Ray reads the variable
    once, at import, into ``ray_constants.ENABLE_RAY_CLUSTER``, and each process it starts reads it
    from its environment: both are set for the session and put back after it."""
    from ray._private import ray_constants

    previous = os.environ.get(SINGLE_MACHINE_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[SINGLE_MACHINE_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = previous[1]
        if previous[0] is None:
            os.environ.pop(SINGLE_MACHINE_ENV, None)
        else:
            os.environ[SINGLE_MACHINE_ENV] = previous[0]


def loopback_host(host: str) -> bool:
    """Whether ``host`` (an IP or a name, brackets allowed) names this machine's loopback."""
    import ipaddress

    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_address(address: str | None) -> bool:
    """Whether a Ray ``address`` (``host:port``, ``ray://host:port``) is a cluster on this machine's
    loopback, as ``cluster/local.py`` starts one: its clients must keep 127.0.0.1 too (loopback_only)."""
    if not address or address == "auto":
        return False
    return loopback_host(address.removeprefix("ray://").rpartition(":")[0])


@contextmanager
def local_ray(**init: Any) -> Iterator[None]:
    """A bare local Ray (``ray.init(**init)``) on loopback, with private session files removed after
    it: for code that runs Ray without a search (a trial over several workers, the throughput meter)."""
    import ray

    with ray_temp_dir() as temp, loopback_only():
        ray.init(_temp_dir=temp, **init)
        try:
            yield
        finally:
            ray.shutdown()


@contextmanager
def ray_session(search_dir: Path, cache: Path, address: str | None = None,
                resources: dict[str, float] | None = None, trial_env: dict[str, str] | None = None) -> Iterator[None]:
    """Ray for one driver session: a local instance (``address`` None; ``resources``: its custom
    ones) or an existing cluster; ``trial_env``: more environment for every trial process."""
    import ray

    os.environ[MARKER_ENV] = str(search_dir)
    env = {"TORCH_EXTENSIONS_DIR": str(cache / "torch_extensions"), "PYTHONWARNINGS": "ignore",
           MARKER_ENV: str(search_dir), **(trial_env or {})}
    kwargs: dict[str, Any] = {"runtime_env": {"env_vars": env}, "log_to_driver": False,
                              "logging_level": logging.WARNING, "include_dashboard": False}
    with contextlib.ExitStack() as stack:
        if address is None:
            kwargs["_temp_dir"] = stack.enter_context(ray_temp_dir())
            kwargs["resources"] = resources or {}
            # last out: Ray's agents can outlive ray.shutdown (seen with Ray 2.60); nothing stays behind
            stack.callback(stop_stray_processes, search_dir)
            stack.enter_context(loopback_only())
        elif loopback_address(address):  # else Ray turns 127.0.0.1 into the machine's outward address
            stack.enter_context(loopback_only())
        ray.init(address=address, **kwargs)
        stack.callback(ray.shutdown)
        yield


def unschedulable(cpus_per_worker: float, gpus_per_worker: float) -> str | None:
    """Why one worker of a trial fits on no node of the Ray it runs on, or None (each worker's CPUs
    and GPUs must sit on one node; a local Ray was checked before it started, a cluster is here)."""
    import ray

    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    cpus = max((r.get("CPU", 0.0) for r in nodes), default=0.0)
    gpus = max((r.get("GPU", 0.0) for r in nodes), default=0.0)
    if cpus_per_worker > cpus:
        return (f"a trial's worker needs {cpus_per_worker:g} CPUs and the largest node of this Ray has {cpus:g}; "
                "lower cpus_per_trial or add larger nodes")
    if gpus_per_worker > gpus:
        return (f"a trial's worker needs {gpus_per_worker:g} GPUs and the largest node of this Ray has {gpus:g}; "
                "lower gpus_per_worker or add GPU nodes")
    return None


def missing_resource(name: str) -> bool:
    """Whether no live node of this Ray offers the custom resource ``name``."""
    import ray

    return not any(n.get("Resources", {}).get(name, 0) > 0 for n in ray.nodes() if n.get("Alive"))


def stray_processes(search_dir: Path) -> list[Any]:
    """Processes of this machine still running for ``search_dir``."""
    import psutil

    mine, found = os.getpid(), []
    for proc in psutil.process_iter():
        try:
            if proc.pid != mine and proc.environ().get(MARKER_ENV) == str(search_dir):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def stop_stray_processes(search_dir: Path) -> int:
    """SIGKILL every stray process of ``search_dir`` and wait for them to go; how many there were."""
    import psutil

    procs = stray_processes(search_dir)
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(procs, timeout=10)
    return len(procs)


@contextmanager
def sigterm_as_sigint() -> Iterator[None]:
    """SIGTERM stops a search the way Ctrl-C does (Tune stops its trials; the driver ends its runs)."""
    previous = signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
