"""The plateau stopping rule of the short nnU-Net trainers: one rule for every strategy.

Train until the smoothed validation loss has not improved by more than `min_delta` for
`patience` epochs, or until the max-epoch budget. The validation loss is nnU-Net's own, on the
validation split of the trained fold (fold `all`: the training cases themselves) (`splits_final.json`: training cases only; the test cases are never
in it). Smoothing is an exponential moving average (`SMOOTHING`) because a few validation
iterations per epoch give a noisy loss. The state is recomputed from the whole loss history at
every epoch, so a resumed run (nnU-Net restores its logger from the checkpoint) decides exactly
as an uninterrupted one. Plain Python: the rule is tested without nnU-Net.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SMOOTHING = 0.7           # EMA weight of the previous smoothed value (nnU-Net smooths its pseudo Dice with 0.9)
DEFAULT_PATIENCE = 8      # epochs without improvement before stopping
DEFAULT_MIN_DELTA = 0.005  # smallest drop of the smoothed validation loss that counts as an improvement
DELTA_UNIT = 1e-4         # min_delta is written into the trainer name in these units (`_d50` = 0.005)
RECORD_NAME = "plateau.json"


def smooth(values: Sequence[float], weight: float = SMOOTHING) -> list[float]:
    """Exponential moving average; a NaN loss keeps the previous smoothed value."""
    out: list[float] = []
    for v in values:
        v = float(v)
        if not out:
            out.append(v)
        elif math.isnan(v):
            out.append(out[-1])
        elif math.isnan(out[-1]):
            out.append(v)
        else:
            out.append(weight * out[-1] + (1.0 - weight) * v)
    return out


def plateau_state(val_losses: Sequence[float], *, patience: int, min_delta: float, max_epochs: int,
                  train_losses: Sequence[float] | None = None, fold: int | str = 0) -> dict[str, Any]:
    """Per-epoch curves and whether to stop after the last epoch of `val_losses`.

    An epoch improves when its smoothed loss is below the best so far by more than `min_delta`.
    `stop` is True when the last `patience` epochs brought no improvement (reason `plateau`) or the
    budget is spent (reason `max_epochs`). `fold` names what the loss was measured on.
    """
    smoothed = smooth(val_losses)
    best, best_epoch, epochs = math.inf, -1, []
    for i, s in enumerate(smoothed):
        if not math.isnan(s) and s < best - min_delta:
            best, best_epoch = s, i
        train = None if train_losses is None or i >= len(train_losses) else train_losses[i]
        epochs.append({"epoch": i, "train_loss": _finite(train), "val_loss": _finite(val_losses[i]),
                       "smoothed_val_loss": _finite(s), "best_smoothed_val_loss": _finite(best),
                       "epochs_since_improvement": i - best_epoch})
    done = len(smoothed)
    since = done - 1 - best_epoch if done else 0
    if done and since >= patience and done < max_epochs:
        reason = "plateau"
    elif done >= max_epochs:
        reason = "max_epochs"
    else:
        reason = "running"
    return {"rule": {"patience": int(patience), "min_delta": float(min_delta), "smoothing": SMOOTHING,
                     "max_epochs": int(max_epochs), "monitored": monitored_loss(fold)},
            "epochs_run": done, "best_epoch": best_epoch, "stop": reason != "running", "reason": reason,
            "stopped_epoch": done - 1 if reason != "running" else None, "epochs": epochs}


def monitored_loss(fold: int | str) -> str:
    """What the rule watches: with fold `all` nnU-Net validates on the training cases themselves."""
    if str(fold) == "all":
        return "nnU-Net validation loss (fold all: the training cases themselves, no held-out case)"
    return f"nnU-Net validation loss (fold {fold} validation split of the training cases)"


def _finite(value: Any) -> float | None:
    """A loss for JSON: None when missing, NaN or infinite."""
    return None if value is None or not math.isfinite(float(value)) else float(value)


def write_record(fold_dir: str | Path, state: dict[str, Any]) -> Path:
    from LNSynthLib.atomic import write_text_atomic

    return write_text_atomic(Path(fold_dir) / RECORD_NAME, json.dumps(state, indent=2), overwrite=True)


def read_record(fold_dir: str | Path) -> dict[str, Any] | None:
    """The stopping record of a training folder (None for trainers without the rule)."""
    path = Path(fold_dir) / RECORD_NAME
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
