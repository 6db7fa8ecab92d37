"""The process group of a trial over several Ray Train workers, kept off the network when it can be.

Ray Train's ``TorchConfig`` rendezvous through torch's ``TCPStore`` (``env://`` or ``tcp://``),
which listens on every interface whatever ``MASTER_ADDR`` says (measured with torch 2.13 as
``:::PORT``). When every worker of the trial is on one node, :class:`SameNodeTorchConfig`
rendezvous through a ``FileStore`` in the trial's directory instead, and gloo's device is put on
the loopback interface: nothing the group opens listens beyond the machine. Workers spread over
several nodes must reach each other, so they keep Ray Train's own setup.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import ray
from ray.train.backend import BackendConfig
from ray.train.torch import TorchConfig
from ray.train.torch.config import _set_torch_distributed_env_vars, _TorchBackend  # Ray 2.60's own setup steps


def _node() -> str:
    return ray.get_runtime_context().get_node_id()


def _file_group(backend: str, rank: int, world: int, store: str, timeout_s: int) -> None:
    import torch.distributed as dist

    from stiltsearch.trainables.processgroup import loopback_interface

    _set_torch_distributed_env_vars()  # LOCAL_RANK, RANK, WORLD_SIZE, ... as Ray Train sets them
    # DeepSpeed reads these (without them it looks for MPI); the group made here uses none of them
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "0")
    if backend == "gloo" and (loopback := loopback_interface()) is not None:
        os.environ["GLOO_SOCKET_IFNAME"] = loopback
    dist.init_process_group(backend, init_method=f"file://{store}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=timeout_s))


class _SameNodeBackend(_TorchBackend):
    def on_start(self, worker_group: Any, backend_config: BackendConfig) -> None:
        assert isinstance(backend_config, TorchConfig)
        nodes = worker_group.execute(_node)
        if len(set(nodes)) != 1 or not isinstance(backend_config, SameNodeTorchConfig) or not backend_config.store_dir:
            super().on_start(worker_group, backend_config)  # across nodes: Ray Train's TCP rendezvous
            return
        gpus = worker_group.get_resources_per_worker().get("GPU", 0)
        backend = backend_config.backend or ("nccl" if gpus > 0 else "gloo")
        store = Path(backend_config.store_dir) / f"pg-{os.getpid()}-{id(worker_group)}"
        store.unlink(missing_ok=True)  # a FileStore file is one rendezvous: never reused
        ray.get([worker_group.execute_single_async(i, _file_group, backend, i, len(nodes), str(store),
                                                   backend_config.timeout_s) for i in range(len(nodes))])


@dataclass
class SameNodeTorchConfig(TorchConfig):
    """``TorchConfig`` whose workers, when all on one node, rendezvous through a file in ``store_dir``."""

    store_dir: str = ""

    @property
    def backend_cls(self) -> type:
        return _SameNodeBackend
