"""Turn nnU-Net's training log lines into per-epoch records (and LNSynth Progress lines).

nnU-Net v2 prints, per epoch, `<timestamp>: Epoch N`, `train_loss X`, `val_loss X`,
`Pseudo dice [..]` and `Epoch time: X s`. We parse these instead of patching nnU-Net, so any
trainer (ours or the standard one) reports progress the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

_TS = r"^(?:\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d+: )?"
_EPOCH = re.compile(_TS + r"Epoch (\d+)\s*$")
_TRAIN = re.compile(_TS + r"train_loss (-?[\d.eE+-]+|nan)")
_VAL = re.compile(_TS + r"val_loss (-?[\d.eE+-]+|nan)")
_DICE = re.compile(_TS + r"Pseudo dice \[(.*)\]")
_TIME = re.compile(_TS + r"Epoch time: ([\d.]+) s")
_MEAN_VAL = re.compile(_TS + r"Mean Validation Dice:\s+(-?[\d.eE+-]+|nan)")
_FLOAT = re.compile(r"-?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|nan")


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float | None = None
    val_loss: float | None = None
    pseudo_dice: list[float] = field(default_factory=list)
    epoch_time_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class NnUNetLogParser:
    """Feed nnU-Net output line by line; `feed` returns a record when an epoch is complete."""

    def __init__(self) -> None:
        self.epochs: list[EpochRecord] = []
        self.mean_validation_dice: float | None = None
        self._current: EpochRecord | None = None

    def feed(self, line: str) -> EpochRecord | None:
        line = line.strip()
        if m := _EPOCH.match(line):
            self._current = EpochRecord(int(m.group(1)))
            return None
        if m := _MEAN_VAL.match(line):
            self.mean_validation_dice = float(m.group(1))
            return None
        cur = self._current
        if cur is None:
            return None
        if m := _TRAIN.match(line):
            cur.train_loss = float(m.group(1))
        elif m := _VAL.match(line):
            cur.val_loss = float(m.group(1))
        elif m := _DICE.match(line):
            # Values print as `np.float32(0.0099)` or `0.0099` depending on numpy; take the numbers.
            cur.pseudo_dice = [float(v) for v in _FLOAT.findall(re.sub(r"np\.float\d+", "", m.group(1)))]
        elif m := _TIME.match(line):
            cur.epoch_time_s = float(m.group(1))
            self.epochs.append(cur)
            self._current = None
            return cur
        return None


def parse_log_text(text: str) -> NnUNetLogParser:
    parser = NnUNetLogParser()
    for line in text.splitlines():
        parser.feed(line)
    return parser


def parse_training_logs(fold_dir: str | Path) -> list[EpochRecord]:
    """Epoch records of a training folder, from all its `training_log_*.txt` (a resumed run has several)."""
    by_epoch: dict[int, EpochRecord] = {}
    for log in sorted(Path(fold_dir).glob("training_log_*.txt")):
        for record in parse_log_text(log.read_text(encoding="utf-8", errors="replace")).epochs:
            by_epoch[record.epoch] = record  # a resumed run repeats no epoch, but a later log wins if it does
    return [by_epoch[k] for k in sorted(by_epoch)]


# When an nnU-Net program fails, its last `SomeError: message` line is the cause worth one line.
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?([A-Z]\w*(?:Error|Exception|Exit|Interrupt))\b:?\s*(.*)$")
_HINTS = (("out of memory", "the GPU or CPU ran out of memory: use a smaller --patch-size or another device"),
          ("memoryerror", "the CPU ran out of memory: use a smaller --patch-size or a machine with more memory"),
          ("no space left", "the disk is full: free space in the project folder"),
          ("killed", "the process was killed (often the out-of-memory killer): use a smaller --patch-size"))


def failure_cause(lines: Sequence[str], code: int) -> tuple[str, str]:
    """(one-line cause, what to do) from the end of an nnU-Net program's output."""
    cause = next((line.strip() for line in reversed(lines) if _EXCEPTION_LINE.match(line.strip())), None)
    if cause is None:
        cause = next((line.strip() for line in reversed(lines) if line.strip()), "no output")
        if code < 0 or code in (137, 139):
            cause = f"stopped by signal {-code if code < 0 else code - 128} ({cause})"
    text = cause.lower()
    hint = next((h for key, h in _HINTS if key in text), "see the cause above")
    if code in (-9, 137) and hint == "see the cause above":
        hint = _HINTS[3][1]
    return cause[:300], hint
