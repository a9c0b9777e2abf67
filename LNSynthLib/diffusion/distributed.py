"""Data-parallel training on PyTorch's own engine: `torchrun --nproc_per_node N -m LNSynthLib train`.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; we start a process group (NCCL on GPUs, gloo on
CPU), every rank draws the same global batch from the same seeded streams and keeps its own
slice, so N processes compute the same update as one process with the whole batch. Rank 0 alone
writes checkpoints, logs and plots.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def batch_slice(self, global_batch: int) -> slice:
        """This rank's part of a global batch (which must split evenly)."""
        if global_batch % self.world_size:
            from LNSynthLib.errors import InputDataError

            raise InputDataError(f"train.batch_size {global_batch} does not split over {self.world_size} processes",
                                 fix="use --set train.batch_size=<a multiple of the process count>")
        per = global_batch // self.world_size
        return slice(self.rank * per, (self.rank + 1) * per)


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup(device: torch.device) -> DistContext:
    """Join the torchrun process group when WORLD_SIZE > 1; a no-op for a single process."""
    world = env_world_size()
    if world <= 1:
        return DistContext()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return DistContext(rank=rank, world_size=world, local_rank=local_rank)


def barrier(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.barrier()


def cleanup(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()

