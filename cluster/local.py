"""A multi-node Ray cluster on one machine: a head and N worker nodes, each its own ``ray start``.

  python -m stiltsearch.cluster.local start DIR [--workers 2] [--cpus-per-worker 1] [--port 6390]
  python -m stiltsearch.cluster.local stop DIR                 # the whole cluster
  python -m stiltsearch.cluster.local stop-node DIR worker-2   # one node: what losing a machine looks like

Each node is ``ray start --block`` in its own process group, so a node can be stopped alone. Node
``worker-<i>`` declares the custom resource ``stilts-worker-<i>`` (tests see where trials ran). The
head has no CPUs by default: trials run on workers only, as on a real cluster with a CPU head.
``DIR/cluster.json`` holds the address and each node's process; ``DIR/<node>.log`` its output.
Everything binds to 127.0.0.1. Token authentication stays on (Ray's default): clients need
``RAY_AUTH_MODE=token`` (``start`` prints the line to export).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE = "cluster.json"


@dataclass
class LocalCluster:
    directory: str
    address: str  # host:port of the head's GCS, for --address / RAY_ADDRESS
    dashboard: str  # http://host:port, for `ray job submit --address`
    nodes: dict[str, int] = field(default_factory=dict)  # node name -> pid of its `ray start --block`

    def save(self) -> None:
        (Path(self.directory) / STATE).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, directory: str | Path) -> LocalCluster:
        path = Path(directory) / STATE
        if not path.is_file():
            raise SystemExit(f"cluster: {directory} holds no {STATE}; start a cluster there first")
        return cls(**json.loads(path.read_text()))


def _ray() -> str:
    """The `ray` executable of this environment (not whatever is first on PATH)."""
    beside = Path(sys.executable).with_name("ray")
    return str(beside) if beside.exists() else (shutil.which("ray") or "ray")


NODE_ENV = "STILTSEARCH_LOCAL_NODE"  # "<dir>:<node>", inherited by every process of a node


def node_env(marker: str | None = None) -> dict[str, str]:
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONWARNINGS": "ignore"}
    if marker:
        env[NODE_ENV] = marker
    return env


def _launch(directory: Path, name: str, args: list[str]) -> int:
    with open(directory / f"{name}.log", "w") as log:  # the node keeps its own copy of the descriptor
        proc = subprocess.Popen([_ray(), "start", "--block", *args], stdout=log, stderr=subprocess.STDOUT,
                                env=node_env(f"{directory}:{name}"), start_new_session=True, cwd=directory)
    return proc.pid


def alive_nodes(address: str) -> list[dict]:
    """The cluster's live nodes, as Ray reports them (a short-lived client connection)."""
    code = (f"import json, ray; ray.init(address={address!r}, log_to_driver=False, logging_level='ERROR'); "
            "print('NODES=' + json.dumps([n for n in ray.nodes() if n['Alive']], default=str))")
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=node_env(), timeout=30)
    except subprocess.TimeoutExpired:
        return []
    lines = [line for line in done.stdout.splitlines() if line.startswith("NODES=")]
    return json.loads(lines[-1].removeprefix("NODES=")) if done.returncode == 0 and lines else []


def start(directory: str | Path, workers: int = 2, cpus_per_worker: int = 1, head_cpus: int = 0, port: int = 6390,
          dashboard_port: int = 8265, object_store_mb: int = 256, timeout_s: float = 120) -> LocalCluster:
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / STATE).exists():
        raise SystemExit(f"cluster: {directory} already holds a cluster; stop it first")
    common = ["--object-store-memory", str(object_store_mb * 2**20), "--disable-usage-stats"]
    cluster = LocalCluster(str(directory), f"127.0.0.1:{port}", f"http://127.0.0.1:{dashboard_port}")
    # Ray's session files go to a short temp dir (Unix socket paths must stay under 107 bytes)
    temp = Path("/tmp") / f"ray-local-{port}"
    cluster.nodes["head"] = _launch(directory, "head", [
        "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", str(head_cpus),
        "--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard_port),
        "--temp-dir", str(temp), *common])
    cluster.save()
    _wait_for(cluster, 1, timeout_s)
    for i in range(1, workers + 1):
        cluster.nodes[f"worker-{i}"] = _launch(directory, f"worker-{i}", [
            "--address", cluster.address, "--node-ip-address", "127.0.0.1", "--num-cpus", str(cpus_per_worker),
            "--resources", json.dumps({f"stilts-worker-{i}": 1}), *common])
        cluster.save()
        # one node at a time: raylets starting together on one host race for the same free ports
        _wait_for(cluster, 1 + i, timeout_s)
    return cluster


def _wait_for(cluster: LocalCluster, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while len(alive_nodes(cluster.address)) < count:
        dead = [name for name, pid in cluster.nodes.items() if not _running(pid)]
        if dead:
            tail = (Path(cluster.directory) / f"{dead[0]}.log").read_text().strip().splitlines()[-1:]
            stop(cluster.directory)
            raise SystemExit(f"cluster: node {dead[0]} exited: {tail[0] if tail else '?'}")
        if time.monotonic() > deadline:
            stop(cluster.directory)
            raise SystemExit(f"cluster: {count} nodes did not come up in {timeout_s:.0f}s; see {cluster.directory}/*.log")
        time.sleep(1)


def _running(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reaps it if it is our child and has exited
        return waited == 0
    except ChildProcessError:  # not our child: ask the kernel
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False


def stop_node(directory: str | Path, name: str, sig: int = signal.SIGKILL) -> None:
    """Stop one node's whole process group (raylet, its workers): the machine is gone."""
    cluster = LocalCluster.load(directory)
    if name not in cluster.nodes:
        raise SystemExit(f"cluster: no node {name!r}; nodes are {sorted(cluster.nodes)}")
    _kill_group(cluster.nodes.pop(name), sig)
    _kill_marked(f"{cluster.directory}:{name}", sig)
    cluster.save()


def stop(directory: str | Path) -> None:
    cluster = LocalCluster.load(directory)
    for name in [n for n in cluster.nodes if n != "head"] + ["head"]:
        if name in cluster.nodes:
            _kill_group(cluster.nodes[name], signal.SIGTERM)
    for name in cluster.nodes:
        _kill_marked(f"{cluster.directory}:{name}", signal.SIGKILL)  # workers run in their own process groups
    (Path(directory) / STATE).unlink()


def _kill_marked(marker: str, sig: int) -> None:
    """Every process that inherited a node's marker (Ray puts trial workers in their own groups)."""
    import psutil

    procs = []
    for proc in psutil.process_iter():
        try:
            if proc.pid != os.getpid() and proc.environ().get(NODE_ENV) == marker:
                proc.send_signal(sig)
                procs.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    psutil.wait_procs(procs, timeout=10)


def _kill_group(pid: int, sig: int) -> None:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stiltsearch.cluster.local", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("start", help="start a head and N worker nodes")
    up.add_argument("dir")
    up.add_argument("--workers", type=int, default=2)
    up.add_argument("--cpus-per-worker", type=int, default=1)
    up.add_argument("--head-cpus", type=int, default=0)
    up.add_argument("--port", type=int, default=6390)
    up.add_argument("--dashboard-port", type=int, default=8265)
    down = sub.add_parser("stop", help="stop every node")
    down.add_argument("dir")
    one = sub.add_parser("stop-node", help="kill one node (SIGKILL of its process group)")
    one.add_argument("dir")
    one.add_argument("node")
    args = parser.parse_args(argv)
    if args.command == "start":
        if args.workers < 1:
            parser.error("--workers: at least 1")
        cluster = start(args.dir, args.workers, args.cpus_per_worker, args.head_cpus, args.port, args.dashboard_port)
        print(f"cluster up: {', '.join(cluster.nodes)}\n"
              f"  export RAY_AUTH_MODE=token RAY_ADDRESS={cluster.address}\n"
              f"  stiltsearch run configs/toy.yaml                      # drives a search on it\n"
              f"  ray job submit --address {cluster.dashboard} -- stiltsearch run configs/toy.yaml\n"
              f"  python -m stiltsearch.cluster.local stop {args.dir}")
    elif args.command == "stop":
        stop(args.dir)
        print("cluster stopped")
    else:
        stop_node(args.dir, args.node)
        print(f"node {args.node} stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
