"""Data-parallel training on PyTorch's own engine: `torchrun --nproc_per_node N -m LNSynthLib train`.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; we start a process group (NCCL on GPUs, gloo on
CPU). `train.batch_size` is the batch of ONE process, so the paper's batch 1 runs on any number of
GPUs; the global batch is batch_size × world size (recorded in the run). Every rank draws the same
global batch from the same seeded streams and keeps its own slice, so N processes compute the same
update as one process with the whole global batch. Rank 0 alone writes checkpoints, logs and plots.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from LNSynthLib.shards import torchrun_world_size


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

    def global_batch(self, per_rank: int) -> int:
        """Samples per optimizer step over all processes (`train.batch_size` is per process)."""
        return per_rank * self.world_size

    def batch_slice(self, per_rank: int) -> slice:
        """This rank's `per_rank` samples of the global batch that every rank draws."""
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)


def env_world_size() -> int:
    return torchrun_world_size()


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

