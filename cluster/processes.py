"""Stopping a local cluster's processes: whole process groups, and the processes that inherited a
node's marker in their environment."""

from __future__ import annotations

import contextlib
import os
import signal
import time


def running(pid: int) -> bool:
    """Whether ``pid`` is alive (reaped if it is our child and has exited)."""
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reaps it if it is our child and has exited
        return waited == 0
    except ChildProcessError:  # not our child: ask the kernel
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False


def kill_marked(key: str, marker: str, sig: int) -> None:
    """Every process whose environment holds ``key=marker`` (Ray puts trial workers in groups of their own)."""
    import psutil

    procs = []
    for proc in psutil.process_iter():
        try:
            if proc.pid != os.getpid() and proc.environ().get(key) == marker:
                proc.send_signal(sig)
                procs.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    psutil.wait_procs(procs, timeout=10)


def kill_group(pid: int, sig: int) -> None:
    """``sig`` to a process group; SIGKILL after 20 s if it is still there."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
