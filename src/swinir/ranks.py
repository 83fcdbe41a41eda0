"""Batch work shared among processes launched by ``torchrun`` (one per GPU, or several on a CPU).

    torchrun --nproc_per_node=2 -m swinir upscale photos/ -o big/

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address in each
process's environment. :func:`share` gives every process a disjoint part of a list that every
process built the same way (so each item is done exactly once), balanced by a cost per item;
:func:`all_gather` collects each process's result on all of them over a CPU (gloo) group, which
works with or without GPUs. Without ``torchrun`` there is one process and nothing is set up.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

# A process may wait this long for the others at a gather: shares of a big batch finish at
# different times, and gloo's default of 30 minutes would fail a long run.
GATHER_TIMEOUT = datetime.timedelta(days=7)


@dataclass(frozen=True)
class Ranks:
    """This process's place among the ones ``torchrun`` started."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def several(self) -> bool:
        return self.world > 1


def from_environment() -> Ranks:
    """The ranks ``torchrun`` set, or a single process (rank 0 of 1)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        return Ranks()
    if world < 2 or not 0 <= rank < world:
        return Ranks()
    return Ranks(rank, world, local)


def start(ranks: Ranks) -> None:
    """Join the group of ``torchrun``'s processes (gloo, CPU) when there are several."""
    if not ranks.several:
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=GATHER_TIMEOUT)


def stop(ranks: Ranks) -> None:
    if ranks.several:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def share(items: Sequence[T], ranks: Ranks, cost: Callable[[T], float] | None = None) -> list[T]:
    """This process's part of ``items``, in their original order.

    Items are dealt out largest cost first, each to the process with the least total so far, so
    shares take about the same time; the result depends only on ``items`` and ``cost``.
    """
    if not ranks.several:
        return list(items)
    weights = [cost(item) if cost is not None else 1.0 for item in items]
    order = sorted(range(len(items)), key=lambda i: (-weights[i], i))
    load = [0.0] * ranks.world
    owner = [0] * len(items)
    for i in order:
        r = min(range(ranks.world), key=lambda k: (load[k], k))
        owner[i] = r
        load[r] += max(weights[i], 1e-9)
    return [item for i, item in enumerate(items) if owner[i] == ranks.rank]


def all_gather(value: Any, ranks: Ranks) -> list[Any]:
    """``[value of rank 0, value of rank 1, ...]`` on every process (picklable values)."""
    if not ranks.several:
        return [value]
    import torch.distributed as dist

    gathered: list[Any] = [None] * ranks.world
    dist.all_gather_object(gathered, value)
    return gathered


def barrier(ranks: Ranks) -> None:
    if ranks.several:
        import torch.distributed as dist

        dist.barrier()
