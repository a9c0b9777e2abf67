"""Progress reporting shared by every long job.

A job reports through `Progress`; what the user sees depends on who runs it:
- `json` mode (the job runner, Slicer, CI logs): one JSON object per line on stdout,
  `{"stage", "step", "total", "eta_s", ...}`, flushed at once so a parent process can
  parse it while the job runs;
- `bar` mode (a person in a terminal): a tqdm bar;
- `quiet` mode: nothing.
The mode comes from the `LNSYNTH_PROGRESS` environment variable, else a terminal gets a
bar and anything else JSON lines.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, TextIO

PROGRESS_ENV = "LNSYNTH_PROGRESS"


def progress_mode() -> str:
    """Return `json`, `bar` or `quiet` for this process."""
    mode = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if mode in {"json", "bar", "quiet"}:
        return mode
    return "bar" if sys.stdout.isatty() else "json"


class Progress:
    """Progress of one stage of a job: `update()` after each step, `close()` at the end.

    ETA is the mean time per step so far times the steps left; extra keyword
    arguments (loss, dice, epoch...) travel with each line.
    """

    def __init__(self, stage: str, total: int, *, mode: str | None = None, stream: TextIO | None = None,
                 min_interval_s: float = 0.5, start_step: int = 0) -> None:
        self.stage = stage
        self.total = int(total)
        self.mode = mode or progress_mode()
        self.stream = stream or sys.stdout
        self.min_interval_s = min_interval_s
        self.step = start_step
        self._start_step = start_step
        self._t0 = time.monotonic()
        self._last_emit = 0.0
        self._bar = None
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, initial=start_step, desc=stage, file=sys.stderr,
                             dynamic_ncols=True)
        self._emit(force=True)

    def eta_s(self) -> float | None:
        done = self.step - self._start_step
        if done <= 0:
            return None
        per_step = (time.monotonic() - self._t0) / done
        return max(0.0, per_step * (self.total - self.step))

    def update(self, step: int | None = None, **info: Any) -> None:
        """Advance to `step` (default: one more) and report, at most every `min_interval_s`."""
        new_step = self.step + 1 if step is None else int(step)
        if self._bar is not None:
            self._bar.update(new_step - self.step)
            if info:
                self._bar.set_postfix({k: _short(v) for k, v in info.items()}, refresh=False)
        self.step = new_step
        self._emit(force=self.step >= self.total, **info)

    def message(self, text: str, **info: Any) -> None:
        """Report a free-text status line (e.g. 'writing dataset.json')."""
        self._emit(force=True, message=text, **info)

    def close(self, **info: Any) -> None:
        if self._bar is not None:
            self._bar.close()
        self._emit(force=True, done=True, **info)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        elif self._bar is not None:
            self._bar.close()

    def _emit(self, force: bool = False, **info: Any) -> None:
        if self.mode != "json":
            return
        now = time.monotonic()
        if not force and now - self._last_emit < self.min_interval_s:
            return
        self._last_emit = now
        eta = self.eta_s()
        record = {"stage": self.stage, "step": self.step, "total": self.total,
                  "eta_s": None if eta is None else round(eta, 1), **info}
        self.stream.write(json.dumps(record, default=_jsonable) + "\n")
        self.stream.flush()


def emit_event(stage: str, **info: Any) -> None:
    """One-off JSON line (e.g. a result path) in json mode; printed plainly in a terminal."""
    mode = progress_mode()
    if mode == "json":
        sys.stdout.write(json.dumps({"stage": stage, **info}, default=_jsonable) + "\n")
        sys.stdout.flush()
    elif mode == "bar":
        details = ", ".join(f"{k}={v}" for k, v in info.items())
        print(f"[{stage}] {details}", file=sys.stderr)


def _short(value: Any) -> Any:
    return f"{value:.4g}" if isinstance(value, float) else value


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)
