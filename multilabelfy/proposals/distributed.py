"""Sharding under ``torchrun``: which process am I, and waiting for the others.

Without ``torchrun`` (no ``WORLD_SIZE`` > 1 in the environment) this is a single process and every call is
trivial. With it, a process group is started once (NCCL on CUDA, gloo on the CPU).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

# A shard may take hours on a large dataset; the default 30 min would kill the fast ranks at the final barrier.
_BARRIER_TIMEOUT = datetime.timedelta(hours=48)


@dataclass(frozen=True)
class Shard:
    rank: int
    world_size: int
    device: torch.device | None  # this process's GPU under torchrun with CUDA; None = let the engine choose

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def current_shard() -> Shard:
    """This process's place in a ``torchrun`` launch (starting the process group on first use)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Shard(rank=0, world_size=1, device=None)
    cuda = torch.cuda.is_available()
    device = None
    if cuda:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo", timeout=_BARRIER_TIMEOUT)
    return Shard(rank=dist.get_rank(), world_size=dist.get_world_size(), device=device)
