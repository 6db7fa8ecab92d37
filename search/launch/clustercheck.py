"""Whether a Ray address (``--address``, ``$RAY_ADDRESS``) is a running Ray cluster, known within a
bounded time and before a command writes anything.

A TCP connection alone proves nothing (any listening port accepts one, and Ray's client then
retries "Failed to connect to GCS" for minutes). So, in order, each step bounded:

1. the address is ``HOST:PORT``, ``ray://HOST:PORT`` or ``auto``;
2. something listens there (3 s), and it speaks HTTP/2, as Ray's GCS (gRPC) does (3 s);
3. a Ray client in a child process joins it and reports the cluster (:data:`ANSWER_TIMEOUT_S`);
   the child is killed past that, so nothing of it lingers.

``auto`` is resolved first, as Ray would, but stricter: ``$RAY_ADDRESS``, else the cluster of the
last ``ray start`` on this machine (Ray's ``ray_current_cluster`` file). Ray's last resort, any GCS
process it finds running, is refused: on a shared machine that is another user's or another
search's private Ray. The cluster found is said before the search joins it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass

from stiltsearch.search.launch.raysession import SINGLE_MACHINE_ENV, loopback_address

ANSWER_TIMEOUT_S = 30.0  # how long a Ray cluster has to answer a client (its GCS, then the node table)
CONNECT_TIMEOUT_S = 3.0
FIX = "give HOST:PORT of a running Ray head (ray start --head prints it), ray://HOST:PORT, or auto"
# HTTP/2's client preface and an empty SETTINGS frame; a gRPC server answers with its own SETTINGS
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
SETTINGS_FRAME = 4

# run by the child: join, describe, leave (stdout's last CLUSTER= line is the answer)
PROBE = """
import json, sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
nodes = [n for n in ray.nodes() if n["Alive"]]
total = ray.cluster_resources()
print("CLUSTER=" + json.dumps({"address": ray.get_runtime_context().gcs_address, "nodes": len(nodes),
                               "cpus": total.get("CPU", 0), "gpus": total.get("GPU", 0)}), flush=True)
ray.shutdown()
"""


@dataclass(frozen=True)
class Found:
    """The cluster an address led to, as its GCS described it."""

    address: str  # the GCS's host:port
    nodes: int  # alive
    cpus: float
    gpus: float

    def __str__(self) -> str:
        return f"{self.address} ({self.nodes} nodes, {self.cpus:g} CPUs, {self.gpus:g} GPUs)"


def address_problem(address: str) -> str | None:
    """Why ``address`` (``HOST:PORT``, ``ray://HOST:PORT``) is not a running Ray cluster, or None."""
    found = probe(address)
    return found if isinstance(found, str) else None


def probe(address: str, timeout_s: float = ANSWER_TIMEOUT_S) -> Found | str:
    """The cluster at ``address``, or why there is none (one line, naming the address and the fix)."""
    target = address.removeprefix("ray://")
    host, _, port_text = target.rpartition(":")
    host = host.strip("[]")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return f"{address!r} is not a Ray address; {FIX}"
    if (problem := _not_grpc(host, int(port_text))) is not None:
        return f"{problem} at {address}; start the cluster, or {FIX}"
    return _joined(address, timeout_s)


def resolve_auto() -> tuple[str | None, str]:
    """What ``auto`` names, and how it was found: ``$RAY_ADDRESS``, else the cluster of the last
    ``ray start`` here; ``(None, why none)`` otherwise."""
    from ray._private import services, utils

    given = os.environ.get("RAY_ADDRESS", "").strip()
    if given and given != "auto":
        return given, "from $RAY_ADDRESS"
    started = utils.read_ray_address(None)  # Ray's ray_current_cluster file: the last `ray start` here
    if started:
        return started, "the cluster of the last `ray start` on this machine"
    running = sorted(services.find_gcs_addresses())
    if running:
        return None, (f"auto found no cluster started with `ray start` here, only Ray instances nobody asked this "
                      f"search to join ({', '.join(running)}: another user's or search's own); give the address of "
                      "the one to join")
    return None, f"auto found no running Ray cluster on this machine; start one (ray start --head), or {FIX}"


def _not_grpc(host: str, port: int) -> str | None:
    """Why nothing at ``host:port`` can be a Ray GCS (nothing listens; it does not speak HTTP/2)."""
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S) as conn:
            if os.environ.get("RAY_USE_TLS", "0") not in ("", "0"):
                return None  # a TLS GCS answers the preface only after a handshake
            conn.sendall(HTTP2_PREFACE)
            head = conn.recv(9)
    except TimeoutError:
        return "something listens but does not answer as Ray's GCS (no HTTP/2 reply in 3 s)"
    except OSError as exc:
        return f"nothing answers ({exc.strerror or exc})"
    if len(head) < 9 or head[3] != SETTINGS_FRAME:
        return "something listens but is not a Ray head (it does not speak gRPC)"
    return None


def _joined(address: str, timeout_s: float) -> Found | str:
    """A Ray client in a child process joins ``address`` and describes the cluster, within ``timeout_s``."""
    env = dict(os.environ)
    if loopback_address(address):  # else Ray turns 127.0.0.1 into the machine's outward address
        env[SINGLE_MACHINE_ENV] = "0"
    child = subprocess.Popen([sys.executable, "-c", PROBE, address], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env, start_new_session=True)
    try:
        out, err = child.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        return (f"no Ray cluster answered at {address} within {timeout_s:g} s; start the cluster (ray start --head), "
                f"or {FIX}")
    answers = [line for line in out.splitlines() if line.startswith("CLUSTER=")]
    if child.returncode != 0 or not answers:
        reason = _last_error(err) or f"exit {child.returncode}"
        if address == "auto":
            return f"auto found no running Ray cluster on this machine ({reason}); start one, or {FIX}"
        return f"no Ray cluster at {address} ({reason}); start the cluster, or {FIX}"
    return Found(**json.loads(answers[-1].removeprefix("CLUSTER=")))


def _last_error(stderr: str) -> str:
    """The last line of a Python error in ``stderr``, without its traceback, shortened."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.split(":", 1)[0].endswith(("Error", "Exception"))]
    return (errors or lines or [""])[-1][:200]
