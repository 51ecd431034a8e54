"""Data parallelism over a global batch with torch DDP, for training loops written for one process.

A training loop calls ``model(x)`` on a global batch and averages a loss over it. `SplitBatch` keeps that
contract under ``torchrun``: each rank runs its contiguous share of the batch through DDP, the shares' logits are
all-gathered with their gradients, and every rank computes the same loss over the whole batch. The gradient
reaching each parameter is then exactly the single-process gradient of that global batch (the gather's backward
sums each share's gradient over ranks, DDP averages over ranks), so the loss curve matches one process up to
float summation order, and the loop itself does not change. In eval mode the model runs unsplit, with no
collective, on whatever each rank passes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Rank:
    rank: int  # this process's index, 0 .. world - 1
    world: int  # processes in the job
    device: torch.device  # cuda:<local rank> under NCCL, cpu under gloo

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(threads: int = 1) -> Rank:
    """Join the process group ``torchrun`` describes in the environment: NCCL on GPUs, gloo on CPUs."""
    torch.set_num_threads(threads)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    device = torch.device(f"cuda:{local}") if backend == "nccl" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return Rank(dist.get_rank(), dist.get_world_size(), device)


class SplitBatch(nn.Module):
    """Wraps a ``forward(x) -> logits (batch,)`` model: see the module docstring. ``unwrapped`` is the model."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.ddp = DistributedDataParallel(model)

    @property
    def unwrapped(self) -> nn.Module:
        return self.ddp.module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.unwrapped(x)
        world, rank = dist.get_world_size(), dist.get_rank()
        share = -(-len(x) // world)
        local = x[rank * share : (rank + 1) * share]  # (<= share, ...)
        if len(local) < share:  # the last ranks of an uneven batch: pad with copies of row 0, trimmed below
            local = torch.cat([local, x[:1].expand(share - len(local), *x.shape[1:])])
        logits = self.ddp(local)  # (share,)
        gathered = torch.cat(dist_nn.all_gather(logits))  # (world * share,), rank order = batch order
        return gathered[: len(x)]  # padding rows sit at the end: dropped, so they get no gradient
