"""nnU-Net training checkpoints that survive a stop: atomic writes, and resume from the newest one that loads.

nnU-Net writes `checkpoint_latest.pth` with a plain `torch.save`; a SIGTERM during that write left
a 0-byte file, and `--c` then failed with EOFError every time. In the training process LNSynth
starts, `atomic_save_checkpoint` replaces nnU-Net's `save_checkpoint` (installed by
`entry`); before resuming, `resume_point` checks the checkpoints nnU-Net would pick (latest,
then best), sets aside any that does not load, and says so.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from LNSynthLib.safe_checkpoints import UnsafeCheckpointError, load_checkpoint

RESUME_ORDER = ("checkpoint_latest.pth", "checkpoint_best.pth")   # nnU-Net's `--c` order after final
UNREADABLE_SUFFIX = ".unreadable"


def atomic_save_checkpoint(original: Any) -> Any:
    """Wrap `nnUNetTrainer.save_checkpoint(self, filename)`: write beside, fsync, then rename onto `filename`."""

    def save_checkpoint(self: Any, filename: str) -> None:
        folder, name = os.path.split(filename)
        tmp = os.path.join(folder, f".{name}.tmp-{os.getpid()}")
        try:
            original(self, tmp)
            if not os.path.exists(tmp):   # not rank 0, or checkpointing disabled
                return
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, filename)
            dir_fd = os.open(folder or ".", os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    save_checkpoint.lnsynth_atomic = True  # type: ignore[attr-defined]
    return save_checkpoint


def _warn(message: str) -> None:
    print(f"lnsynth: warning: {message}", file=sys.stderr, flush=True)


def resume_point(fold_dir: str | Path) -> tuple[Path | None, int]:
    """(checkpoint nnU-Net's `--c` will load, its epoch), or (None, 0) when training must start over.

    A checkpoint that cannot be loaded (truncated, empty, corrupt) is renamed to
    `<name>.unreadable` so nnU-Net falls back to the next one; temporary files of an interrupted
    atomic write are removed. A checkpoint that would run code is an error, not skipped.
    """
    fold_dir = Path(fold_dir)
    if not fold_dir.is_dir():
        return None, 0
    for leftover in fold_dir.glob(".checkpoint_*.tmp-*"):
        leftover.unlink()
    set_aside: list[str] = []
    for name in RESUME_ORDER:
        path = fold_dir / name
        if not path.exists():
            continue
        try:
            payload = load_checkpoint(path)
            epoch = int(payload["current_epoch"])
        except UnsafeCheckpointError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure to load means nnU-Net cannot resume from it
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            aside = path.with_name(name + UNREADABLE_SUFFIX)
            os.replace(path, aside)
            _warn(f"{path} cannot be loaded ({type(exc).__name__}: {reason}); kept as {aside.name}")
            set_aside.append(name)
            continue
        if set_aside:
            _warn(f"resuming nnU-Net training from {path} (epoch {epoch})")
        return path, epoch
    if set_aside:
        _warn(f"no usable checkpoint in {fold_dir}: nnU-Net training starts over from epoch 0")
    return None, 0
