"""The torch.distributed world a trial's DeepSpeed engines run in.

On a single process (a Tune trial on one CPU or GPU) we set up a world of size 1 on a free port of
our own, because concurrent trials on one node must not share a ``MASTER_PORT``. Under Ray Train
the process group already exists and is reused.
"""

from __future__ import annotations

import importlib
import os
import socket
from typing import Any

import torch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_distributed() -> None:
    """Initialise a torch.distributed world for DeepSpeed once per process.

    Under Ray Train the group already exists and is reused. Otherwise this process is alone: it gets
    a world of one on a fresh free port, whatever ``MASTER_PORT``/``WORLD_SIZE`` it inherited. (A
    driver that trained in-process would otherwise hand its port to every Ray worker it starts, and
    concurrent trials would collide with EADDRINUSE.)
    """
    import deepspeed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return
    # deepspeed.comm's attribute "torch" is the torch package, so `import deepspeed.comm.torch as`
    # would bind that; the module itself comes from importlib
    ds_comm: Any = importlib.import_module("deepspeed.comm.torch")
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), RANK="0", WORLD_SIZE="1",
                      LOCAL_RANK="0")
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    # DeepSpeed's torch backend compiles its shared-memory all-reduce (the C++ op
    # "deepspeed_shm_comm") the first time a process group is made on a CPU: 42 s on 2 cores with an
    # empty TORCH_EXTENSIONS_DIR, and a few seconds to load in every later trial process. A world of
    # one never all-reduces across processes, so it is not built here; a Ray Train group of several
    # ranks (which returns above and lets deepspeed.initialize make the backend) still gets it.
    build = ds_comm.build_shm_op
    ds_comm.build_shm_op = lambda: None
    try:
        deepspeed.init_distributed(dist_backend=backend, verbose=False)
    finally:
        ds_comm.build_shm_op = build


def world() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) unless a multi-worker group already exists."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def from_rank0(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (a decision all ranks must share); as is on one process."""
    if world()[1] == 1:
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]
