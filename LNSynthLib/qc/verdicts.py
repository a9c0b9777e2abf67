"""Reading the quality-control file of a synthetic folder (json only: the export and the Slicer panel use it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from LNSynthLib.errors import InputDataError

QC_FILE = "qc.json"   # <synthetic_root>/qc.json, written by `qc.score.score_synthetic`


def read_qc(synthetic_root: str | Path) -> dict[str, Any] | None:
    """The folder's qc.json, or None when quality control has not scored it."""
    path = Path(synthetic_root) / QC_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputDataError(f"qc.json cannot be read ({exc})", path=path,
                             fix="score the folder again (`lnsynth sample --qc`) or delete qc.json") from exc
    if not isinstance(data, dict) or not isinstance(data.get("samples"), dict):
        raise InputDataError("qc.json has no `samples` table", path=path,
                             fix="score the folder again (`lnsynth sample --qc`) or delete qc.json")
    # Every reader asks `verdict["passed"]`: one malformed entry is the file's error, not a traceback later.
    for name, verdict in data["samples"].items():
        if not isinstance(verdict, dict) or not isinstance(verdict.get("passed"), bool):
            raise InputDataError(f"qc.json's verdict for {name!r} is not an object with `passed: true|false`",
                                 path=path, fix="score the folder again (`lnsynth sample --qc`) or delete qc.json")
    return data


def forget_qc(synthetic_root: str | Path) -> bool:
    """Remove the folder's qc.json before its cases are replaced: its verdicts describe the old cases, and
    the export would otherwise pick the new cases by them. True when there was one."""
    path = Path(synthetic_root) / QC_FILE
    if not path.is_file():
        return False
    path.unlink()
    return True


def rejected_cases(synthetic_root: str | Path) -> set[str] | None:
    """Names of the synthetic cases quality control rejected; None without qc.json."""
    data = read_qc(synthetic_root)
    if data is None:
        return None
    return {name for name, verdict in data["samples"].items() if not verdict.get("passed", False)}


def export_rejections(real_root: str | Path, synthetic_root: str | Path | None, qc: bool) -> set[str] | None:
    """What an nnU-Net export leaves out: the rejected synthetic cases when QC is on and has run, else None.

    Synthetic cases without a folder of their own lie next to the real ones (e.g. a Slicer session).
    """
    return rejected_cases(synthetic_root if synthetic_root is not None else real_root) if qc else None


def merge_qc_files(sources: list[Path], target: Path) -> Path | None:
    """Gather the verdicts of several scored folders into `target/qc.json` (the panel's export of a session).

    Only the per-sample verdicts travel (thresholds differ per folder: each run is scored against its
    own real case); None when no source folder was scored.
    """
    from LNSynthLib.atomic import write_text_atomic

    samples: dict[str, Any] = {}
    merged = []
    for source in sources:
        data = read_qc(source)
        if data is not None:
            samples.update(data["samples"])
            merged.append(str(Path(source) / QC_FILE))
    if not merged:
        return None
    rejected = sum(not s.get("passed", False) for s in samples.values())
    path = Path(target) / QC_FILE
    write_text_atomic(path, json.dumps({"n_samples": len(samples), "n_passed": len(samples) - rejected,
                                        "n_rejected": rejected, "merged_from": merged, "samples": samples},
                                       indent=2), overwrite=True)
    return path
