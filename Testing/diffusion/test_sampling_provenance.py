"""Each synthetic case records what made it; a folder never mixes checkpoints; incomplete cases are redone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from LNSynthLib.atomic import OUTPUT_MARKER
from LNSynthLib.cases import LN_FILE, META_FILE
from LNSynthLib.diffusion.sample.provenance import file_sha256
from LNSynthLib.diffusion.sample.sampling import sample_cases
from LNSynthLib.diffusion.train.checkpoint import load_checkpoint, save_checkpoint
from LNSynthLib.errors import OutputExistsError

SETTINGS = {"samples_per_case": 1, "sampler": "ddim", "steps": 2, "eta": 1.0, "seed": 3, "transforms": False,
            "device": "cpu", "progress": False}


def _snapshot(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}


def test_cases_record_their_origin_and_a_second_checkpoint_is_refused(straight_run: Path, phantom_cases: Path,
                                                                       tmp_path: Path, one_thread: None) -> None:
    out = tmp_path / "synthetic"
    folders = sample_cases(straight_run, phantom_cases, out, **SETTINGS)
    meta = json.loads((folders[0] / META_FILE).read_text(encoding="utf-8"))
    assert meta["checkpoint_sha256"] == file_sha256(straight_run) and meta["checkpoint"] == str(straight_run)
    assert (meta["sampler"], meta["steps"], meta["seed"], meta["transforms"]) == ("ddim", 2, 3, False)

    other = tmp_path / "other" / "checkpoint.pt"     # another model: same format, other content
    payload = load_checkpoint(straight_run)
    payload["step"] = int(payload["step"]) + 1
    save_checkpoint(other, {k: v for k, v in payload.items() if k != "format"})
    before = _snapshot(out)
    with pytest.raises(OutputExistsError, match="another checkpoint_sha256") as err:
        sample_cases(other, phantom_cases, out, **{**SETTINGS, "samples_per_case": 2})
    assert err.value.path.parent == out and "--overwrite" in err.value.fix
    with pytest.raises(OutputExistsError, match="another seed"):
        sample_cases(straight_run, phantom_cases, out, **{**SETTINGS, "seed": 4})
    assert _snapshot(out) == before                    # nothing written by the refused runs
    sample_cases(other, phantom_cases, out, **{**SETTINGS, "samples_per_case": 1}, overwrite=True)
    assert json.loads((folders[0] / META_FILE).read_text(encoding="utf-8"))["checkpoint_sha256"] == file_sha256(other)


def test_a_case_missing_its_ln_mask_is_redone(straight_run: Path, phantom_cases: Path, tmp_path: Path,
                                              one_thread: None) -> None:
    out = tmp_path / "synthetic"
    folders = sample_cases(straight_run, phantom_cases, out, **SETTINGS)
    (folders[1] / LN_FILE).unlink()
    before = _snapshot(out)
    again = sample_cases(straight_run, phantom_cases, out, **SETTINGS)
    assert again == folders and (folders[1] / LN_FILE).is_file()
    after = _snapshot(out)
    changed = sorted(name for name in after if before.get(name) != after[name])
    assert changed == sorted(f"{folders[1].name}/{name}" for name in
                             ("ct.nii.gz", "anatomy.nii.gz", "ln.nii.gz", "case.json", OUTPUT_MARKER))
