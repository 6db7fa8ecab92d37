"""The torch.distributed world a trial's DeepSpeed engines run in.

On a single process (a Tune trial on one CPU or GPU) we set up a world of size 1 of our own, with
no network rendezvous at all: its store is an in-process ``HashStore`` (torch's ``TCPStore``, which
``env://`` would start, listens on every interface whatever ``MASTER_ADDR`` says: measured with
torch 2.13 as ``:::PORT``), and gloo's own listener is put on the loopback interface. Under Ray Train
the process group already exists and is reused.
"""

from __future__ import annotations

import importlib
import os
import socket
from typing import Any

import torch


def loopback_interface() -> str | None:
    """The name of this machine's loopback interface ("lo" on Linux, "lo0" on macOS), if any."""
    import psutil

    for name, addresses in psutil.net_if_addrs().items():
        if any(a.family == socket.AF_INET and a.address.startswith("127.") for a in addresses):
            return name
    return None


def ensure_distributed() -> None:
    """Initialise a torch.distributed world for DeepSpeed once per process.

    Under Ray Train the group already exists and is reused. Otherwise this process is alone: it gets
    a world of one over an in-process store, whatever ``MASTER_PORT``/``WORLD_SIZE`` it inherited
    (concurrent trials share no port), its gloo device on the loopback interface: nothing it opens
    listens beyond this machine.
    """
    import deepspeed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return
    # deepspeed.comm's attribute "torch" is the torch package, so `import deepspeed.comm.torch as`
    # would bind that; the module itself comes from importlib
    ds_comm: Any = importlib.import_module("deepspeed.comm.torch")
    # DeepSpeed reads these (without them it looks for MPI); the group made here uses none of them
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="0", RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    if (loopback := loopback_interface()) is not None:
        os.environ["GLOO_SOCKET_IFNAME"] = loopback  # gloo binds its device's listener there
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    torch.distributed.init_process_group(backend, store=torch.distributed.HashStore(), rank=0, world_size=1)
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
