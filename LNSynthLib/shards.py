"""Sharding a job's cases over processes: `--shard i/n`, or one shard per rank when torchrun started it.

Shard i of n takes the cases i, i+n, i+2n, ... of the sorted list, so n processes (a SLURM array
task each, or torchrun's ranks) share one folder without overlap and without talking to each other.
Used by `lnsynth sample` and `lnsynth prepare --raw-cases`; torch is not needed to read it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TypeVar

from LNSynthLib.errors import InputDataError

T = TypeVar("T")


def parse_shard(text: str) -> tuple[int, int]:
    """(i, n) from the `--shard` text `i/n`, with 0 <= i < n."""
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError as exc:
        raise InputDataError(f"--shard {text!r} is not i/n", fix="write e.g. --shard 0/4") from exc
    if not 0 <= index < count:
        raise InputDataError(f"--shard {text!r}: need 0 <= i < n", fix="write e.g. --shard 0/4")
    return index, count


def torchrun_world_size() -> int:
    """How many processes torchrun started (1 when it did not start this one)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def this_shard(shard: tuple[int, int]) -> tuple[int, int]:
    """The shard this process does: `shard`, or (rank, world size) under torchrun when `shard` is 0/1."""
    index, count = int(shard[0]), int(shard[1])
    if count == 1 and torchrun_world_size() > 1:
        return int(os.environ["RANK"]), torchrun_world_size()
    if not 0 <= index < count:
        raise ValueError(f"shard must be i/n with 0 <= i < n, got {index}/{count}")
    return index, count


def shard_items(items: Sequence[T], shard: tuple[int, int]) -> list[T]:
    """The items of this process's shard (`this_shard`), in their order."""
    index, count = this_shard(shard)
    return [item for i, item in enumerate(items) if i % count == index]
