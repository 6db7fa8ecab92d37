"""A multi-node Ray cluster on one machine: a head and N worker nodes, each its own ``ray start``.

  python -m stiltsearch.cluster.local start DIR [--workers 2] [--cpus-per-worker 1] [--port 6390]
  python -m stiltsearch.cluster.local stop DIR                 # the whole cluster
  python -m stiltsearch.cluster.local stop-node DIR worker-2   # one node: what losing a machine looks like

Each node is ``ray start --block`` in its own process group, so a node can be stopped alone. Node
``worker-<i>`` declares the custom resource ``stilts-worker-<i>`` (tests see where trials ran). The
head has no CPUs by default: trials run on workers only, as on a real cluster with a CPU head.
``DIR/cluster.json`` holds the address and each node's process; ``DIR/<node>.log`` its output.
Every node listens on 127.0.0.1 only (GCS, raylets, object managers, agents, workers, the
dashboard): each is Ray's own ``ray start`` run through :func:`ray_start`, which keeps a loopback
node address as given (Ray's CLI would turn it into the machine's outward address, and then bind its
servers to every interface; see :func:`ray_start`). ``--host ADDRESS`` opens the cluster on purpose:
an address of this machine that other machines reach, Ray's own binding. Token authentication stays
on either way (Ray's default): clients need ``RAY_AUTH_MODE=token`` and, for a loopback cluster,
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (``start`` prints the line to export; ``stiltsearch run
--address 127.0.0.1:PORT`` sets the latter itself). Ray's session files go to a private (0700)
temporary directory, removed by ``stop``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from stiltsearch.cluster import processes
from stiltsearch.search.cli import OneLineParser  # argparse errors as one line, exit 2
from stiltsearch.search.launch.raysession import SINGLE_MACHINE_ENV, loopback_host

STATE = "cluster.json"
LOOPBACK = "127.0.0.1"


class ClusterError(RuntimeError):
    """A cluster command cannot run; the message is one line naming the fix."""


@dataclass
class LocalCluster:
    directory: str
    address: str  # host:port of the head's GCS, for --address / RAY_ADDRESS
    dashboard: str  # http://host:port, for `ray job submit --address`
    nodes: dict[str, int] = field(default_factory=dict)  # node name -> pid of its `ray start --block`
    temp_dir: str = ""  # Ray's session files (private; removed by stop)

    def save(self) -> None:
        (Path(self.directory) / STATE).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, directory: str | Path) -> LocalCluster:
        path = Path(directory) / STATE
        if not path.is_file():
            raise ClusterError(f"dir: {directory} holds no {STATE}; start a cluster there first")
        try:
            state = json.loads(path.read_bytes().decode("utf-8"))
            cluster = cls(**state)
            if not all(isinstance(pid, int) for pid in cluster.nodes.values()):
                raise TypeError("node pids")
        except (ValueError, TypeError, UnicodeDecodeError):
            raise ClusterError(f"{STATE}: {path} is not a cluster state file; stop its Ray processes "
                               "(`ray stop`) and remove it") from None
        return cluster


def _ray() -> str:
    """The `ray` executable of this environment (not whatever is first on PATH)."""
    beside = Path(sys.executable).with_name("ray")
    return str(beside) if beside.exists() else (shutil.which("ray") or "ray")


NODE_ENV = "STILTSEARCH_LOCAL_NODE"  # "<dir>:<node>", inherited by every process of a node


def node_env(host: str = LOOPBACK, marker: str | None = None) -> dict[str, str]:
    """The environment of a node's processes, and of a client of the cluster (``marker`` None)."""
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONWARNINGS": "ignore"}
    if loopback_host(host):  # every process, a job's driver too, takes 127.0.0.1 as its node address
        env[SINGLE_MACHINE_ENV] = "0"
    else:
        env.pop(SINGLE_MACHINE_ENV, None)
    if marker:
        env[NODE_ENV] = marker
    return env


# `ray start ARGS` in a fresh interpreter, through ray_start (python -c CODE ARGS: ARGS in sys.argv[1:])
RAY_START = "from stiltsearch.cluster.local import ray_start; ray_start()"


def ray_start() -> None:
    """Ray's ``ray start`` CLI, with a loopback node address kept as given.

    Ray 2.60's CLI passes ``--node-ip-address`` and the head's address through
    ``services.resolve_ip_for_localhost``, which in Ray's cluster mode turns 127.0.0.1 into the
    machine's outward address; each server then binds every interface (the GCS, raylet and object
    manager bind 127.0.0.1 only when their node address *is* 127.0.0.1, the agents likewise). Ray's
    single-machine mode keeps loopback but refuses ``ray start --address`` (a worker node). So this
    process runs in cluster mode with that one function keeping loopback, and the processes it starts
    inherit the single-machine mode from :func:`node_env`, so they too resolve to 127.0.0.1 (Ray's own
    ``cluster_utils.Cluster`` runs every node at 127.0.0.1 the same way)."""
    from ray._private import ray_constants, services
    from ray.scripts.scripts import main as ray_main

    resolve = services.resolve_ip_for_localhost
    ray_constants.ENABLE_RAY_CLUSTER = True  # worker nodes may join
    services.resolve_ip_for_localhost = lambda host: host if loopback_host(host) else resolve(host)
    sys.argv = ["ray", "start", *sys.argv[1:]]
    ray_main()


def _launch(directory: Path, name: str, host: str, temp: str, args: list[str]) -> int:
    command = [sys.executable, "-c", RAY_START] if loopback_host(host) else [_ray(), "start"]
    # TMPDIR: the node's own temporary files (the dashboard's multiprocessing forkserver socket dir,
    # left behind when a node is killed) go to the cluster's private directory, which stop removes
    env = {**node_env(host, f"{directory}:{name}"), "TMPDIR": temp}
    with open(directory / f"{name}.log", "w") as log:  # the node keeps its own copy of the descriptor
        proc = subprocess.Popen([*command, "--block", *args], stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True, cwd=directory)
    return proc.pid


def alive_nodes(address: str) -> list[dict]:
    """The cluster's live nodes, as Ray reports them (a short-lived client connection)."""
    code = (f"import json, ray; ray.init(address={address!r}, log_to_driver=False, logging_level='ERROR'); "
            "print('NODES=' + json.dumps([n for n in ray.nodes() if n['Alive']], default=str))")
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=node_env(address.rpartition(":")[0]), timeout=30)
    except subprocess.TimeoutExpired:
        return []
    lines = [line for line in done.stdout.splitlines() if line.startswith("NODES=")]
    return json.loads(lines[-1].removeprefix("NODES=")) if done.returncode == 0 and lines else []


def start(directory: str | Path, workers: int = 2, cpus_per_worker: int = 1, head_cpus: int = 0, port: int = 6390,
          dashboard_port: int = 8265, object_store_mb: int = 256, timeout_s: float = 120,
          host: str = LOOPBACK) -> LocalCluster:
    """``host``: the address every node listens on (loopback, or one of this machine's to open it)."""
    if not loopback_host(host) and host not in (own := _own_addresses()):
        raise ClusterError(f"--host: {host} is not an address of this machine; give 127.0.0.1 (this machine only) "
                           f"or one of {', '.join(sorted(own)) or 'its addresses'}")
    host = LOOPBACK if loopback_host(host) else host
    directory = Path(directory).resolve()
    if directory.exists() and not directory.is_dir():
        raise ClusterError(f"dir: {directory} is a file; give a directory for the cluster's state and logs")
    if (directory / STATE).exists():
        raise ClusterError(f"dir: {directory} already holds a {STATE}; stop that cluster first "
                           f"(python -m stiltsearch.cluster.local stop {directory})")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ClusterError(f"dir: cannot create {directory} ({exc.strerror})") from None
    common = ["--object-store-memory", str(object_store_mb * 2**20), "--disable-usage-stats"]
    # Ray's session files: a private temp dir (Ray makes its own directories world-writable, and its
    # Unix socket paths must stay under 107 bytes), recorded in cluster.json and removed by stop
    temp = tempfile.mkdtemp(prefix="stilts-cluster-")
    cluster = LocalCluster(str(directory), f"{host}:{port}", f"http://{LOOPBACK}:{dashboard_port}", temp_dir=temp)
    cluster.nodes["head"] = _launch(directory, "head", host, temp, [
        "--head", "--node-ip-address", host, "--port", str(port), "--num-cpus", str(head_cpus),
        "--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard_port),
        "--temp-dir", str(Path(temp) / "ray"), *common])
    cluster.save()
    _wait_for(cluster, 1, timeout_s)
    for i in range(1, workers + 1):
        cluster.nodes[f"worker-{i}"] = _launch(directory, f"worker-{i}", host, temp, [
            "--address", cluster.address, "--node-ip-address", host, "--num-cpus", str(cpus_per_worker),
            "--resources", json.dumps({f"stilts-worker-{i}": 1}), *common])
        cluster.save()
        # one node at a time: raylets starting together on one host race for the same free ports
        _wait_for(cluster, 1 + i, timeout_s)
    return cluster


def _own_addresses() -> set[str]:
    """This machine's IP addresses (every interface)."""
    import psutil

    return {a.address.split("%")[0] for addrs in psutil.net_if_addrs().values() for a in addrs
            if a.family in (socket.AF_INET, socket.AF_INET6)}


def _wait_for(cluster: LocalCluster, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while len(alive_nodes(cluster.address)) < count:
        dead = [name for name, pid in cluster.nodes.items() if not processes.running(pid)]
        if dead:
            tail = (Path(cluster.directory) / f"{dead[0]}.log").read_text().strip().splitlines()[-1:]
            stop(cluster.directory)
            raise ClusterError(f"cluster: node {dead[0]} exited: {tail[0] if tail else '?'}")
        if time.monotonic() > deadline:
            stop(cluster.directory)
            raise ClusterError(f"cluster: {count} nodes did not come up in {timeout_s:.0f}s; see {cluster.directory}/*.log")
        time.sleep(1)


def stop_node(directory: str | Path, name: str, sig: int = signal.SIGKILL) -> None:
    """Stop one node's whole process group (raylet, its workers): the machine is gone."""
    cluster = LocalCluster.load(directory)
    if name not in cluster.nodes:
        raise ClusterError(f"node: no node {name!r}; nodes are {', '.join(sorted(cluster.nodes)) or 'none'}")
    processes.kill_group(cluster.nodes.pop(name), sig)
    processes.kill_marked(NODE_ENV, f"{cluster.directory}:{name}", sig)
    cluster.save()


def stop(directory: str | Path) -> None:
    cluster = LocalCluster.load(directory)
    for name in [n for n in cluster.nodes if n != "head"] + ["head"]:
        if name in cluster.nodes:
            processes.kill_group(cluster.nodes[name], signal.SIGTERM)
    for name in cluster.nodes:
        processes.kill_marked(NODE_ENV, f"{cluster.directory}:{name}", signal.SIGKILL)  # workers run in their own process groups
    if cluster.temp_dir.startswith(tempfile.gettempdir()):
        shutil.rmtree(cluster.temp_dir, ignore_errors=True)
    (Path(directory) / STATE).unlink()


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m stiltsearch.cluster.local", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    up = sub.add_parser("start", help="start a head and N worker nodes")
    up.add_argument("dir")
    up.add_argument("--workers", type=int, default=2)
    up.add_argument("--cpus-per-worker", type=int, default=1)
    up.add_argument("--head-cpus", type=int, default=0)
    up.add_argument("--port", type=int, default=6390)
    up.add_argument("--dashboard-port", type=int, default=8265)
    up.add_argument("--host", default=LOOPBACK, help="the address the nodes listen on: 127.0.0.1 (default: this "
                    "machine only) or an address of this machine that others reach (opens the cluster; the "
                    "dashboard stays on 127.0.0.1, token authentication stays on)")
    down = sub.add_parser("stop", help="stop every node")
    down.add_argument("dir")
    one = sub.add_parser("stop-node", help="kill one node (SIGKILL of its process group)")
    one.add_argument("dir")
    one.add_argument("node")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return _command(args)
    except ClusterError as exc:
        print(f"cluster: error: {exc}", file=sys.stderr)
        return 2


def _command(args: argparse.Namespace) -> int:
    if args.command == "start":
        for flag, value, low, high in (("--workers", args.workers, 1, 64), ("--cpus-per-worker", args.cpus_per_worker, 1, 1024),
                                       ("--head-cpus", args.head_cpus, 0, 1024), ("--port", args.port, 1024, 65535),
                                       ("--dashboard-port", args.dashboard_port, 1024, 65535)):
            if not low <= value <= high:
                raise ClusterError(f"{flag}: give a number in {low}..{high}, got {value}")
        cluster = start(args.dir, args.workers, args.cpus_per_worker, args.head_cpus, args.port, args.dashboard_port,
                        host=args.host)
        loopback = f" {SINGLE_MACHINE_ENV}=0" if loopback_host(args.host) else ""  # see ray_start
        print(f"cluster up: {', '.join(cluster.nodes)}, listening on {cluster.address.rpartition(':')[0]}\n"
              f"  export RAY_AUTH_MODE=token RAY_ADDRESS={cluster.address}{loopback}\n"
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
