"""The Ray session a driver runs in, and the processes a killed driver left behind.

The one place the driver starts and stops Ray. Every process of a local Ray inherits
:data:`MARKER_ENV` (set in the driver before Ray starts), so a later ``stiltsearch resume`` finds
what a killed driver left running (its GCS, raylet and trial workers, which may still be writing
checkpoints) and stops it first.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MARKER_ENV = "STILTSEARCH_SEARCH_DIR"  # set in every local Ray process of a search: finds strays


def ray_temp_dir(search_dir: Path) -> str:
    """Ray's session files live under the search dir; a short symlink keeps its Unix socket paths
    under the OS limit of 107 bytes (Ray appends ~70 characters to the temp dir)."""
    real = search_dir / "ray"
    real.mkdir(exist_ok=True)
    if len(str(real)) <= 36:
        return str(real)
    link = Path(tempfile.gettempdir()) / f"stilts-{hashlib.sha256(str(real).encode()).hexdigest()[:10]}"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(real, target_is_directory=True)
    return str(link)


@contextmanager
def ray_session(search_dir: Path, cache: Path, address: str | None = None,
                resources: dict[str, float] | None = None) -> Iterator[None]:
    """Ray for one driver session: a local instance (``address`` None; ``resources``: its custom
    ones) or an existing cluster."""
    import ray

    os.environ[MARKER_ENV] = str(search_dir)
    env = {"TORCH_EXTENSIONS_DIR": str(cache / "torch_extensions"), "PYTHONWARNINGS": "ignore",
           MARKER_ENV: str(search_dir)}
    kwargs: dict[str, Any] = {"runtime_env": {"env_vars": env}, "log_to_driver": False,
                              "logging_level": logging.WARNING, "include_dashboard": False}
    if address is None:
        kwargs["_temp_dir"] = ray_temp_dir(search_dir)
        kwargs["resources"] = resources or {}
    ray.init(address=address, **kwargs)
    try:
        yield
    finally:
        ray.shutdown()


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
