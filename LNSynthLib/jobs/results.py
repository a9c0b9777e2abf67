"""The one shape in which every `lnsynth` command announces what it made, and the one reader of it.

A command ends with exactly one JSON line `{"stage": "result", "kind": <kind>, "path": <file or
folder>, ...extra facts}` (`emit_result`). A caller that ran it (the Slicer module, the headless
script, `JobProcess`, tests) reads it back with `result_path(events, kind)` instead of guessing
keys such as `model_dir`, `model` or `path`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from LNSynthLib.jobs.progress import emit_event

RESULT_STAGE = "result"
# kind -> what `path` is
RESULT_KINDS = {
    "checkpoint": "LN-DDPM checkpoint.pt (lnsynth train)",
    "cases": "folder of case folders (lnsynth sample, lnsynth phantom)",
    "case": "one prepared case folder (lnsynth prepare)",
    "anatomy": "14-label anatomy map file (lnsynth anatomy)",
    "figure": "PNG figure (lnsynth phantom --figure without --out)",
    "dataset": "nnU-Net raw dataset folder (lnsynth nnunet export)",
    "model_dir": "trained nnU-Net model folder (lnsynth nnunet train)",
    "prediction": "label map file or folder of label maps (lnsynth nnunet predict)",
    "report": "report.md (lnsynth evaluate, demo, run)",
    "benchmark": "benchmark JSON result (lnsynth bench)",
}


def emit_result(kind: str, path: str | Path, **info: Any) -> None:
    """Announce the command's result; call it once, as the command's last event."""
    if kind not in RESULT_KINDS:
        raise ValueError(f"result kind must be one of {tuple(RESULT_KINDS)}, got {kind!r}")
    emit_event(RESULT_STAGE, kind=kind, path=str(path), **info)


def result_event(events: Iterable[dict[str, Any]], kind: str | None = None) -> dict[str, Any] | None:
    """The last result event (of `kind`, when given) among a job's parsed JSON lines, or None."""
    found = None
    for event in events:
        if event.get("stage") == RESULT_STAGE and (kind is None or event.get("kind") == kind):
            found = event
    return found


def result_path(events: Iterable[dict[str, Any]], kind: str | None = None) -> Path | None:
    """The `path` of the last result event (of `kind`, when given), or None when there is none."""
    event = result_event(events, kind)
    return None if event is None or event.get("path") is None else Path(event["path"])
