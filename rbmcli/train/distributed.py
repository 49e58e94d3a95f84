"""Data-parallel training across processes launched by torchrun (one process per GPU/node).

Each rank takes an equal slice of every global batch; after backward the gradients are
averaged with one all_reduce per parameter, so W ranks with batch B/W compute exactly the
step of one process with batch B (up to float summation order). Checkpoints, logs and
pictures come from rank 0 only; persistent chains and sampling generators are per rank.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_world(device_type: str) -> World:
    """Join the process group torchrun describes (WORLD_SIZE, RANK, LOCAL_RANK); a single
    process without those variables is World(0, 1, 0)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def average_gradients(params, world: World) -> None:
    """grad ← mean over ranks of grad (a no-op for one process)."""
    if world.size == 1:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= world.size


def rank_slice(idx: torch.Tensor, world: World) -> torch.Tensor:
    """This rank's contiguous share of a global batch of indices."""
    share = len(idx) // world.size
    return idx[world.rank * share:(world.rank + 1) * share]


def all_mean(values: list[float], world: World) -> list[float]:
    """Mean of per-rank scalars (for reporting the global loss)."""
    if world.size == 1:
        return values
    return all_mean_tensor(torch.tensor(values, dtype=torch.float64), world).tolist()


def all_mean_tensor(t: torch.Tensor, world: World) -> torch.Tensor:
    """Mean over ranks of a tensor (itself for one process)."""
    if world.size == 1:
        return t
    t = t.clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / world.size
