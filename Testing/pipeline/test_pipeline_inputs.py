"""User data for `lnsynth run`: unprepared case folders are prepared once, then reused."""

from __future__ import annotations

from pathlib import Path

import pytest

from LNSynthLib.cases import list_cases, load_case
from LNSynthLib.errors import InputDataError
from LNSynthLib.pipeline import prepare_raw_cases
from LNSynthLib.volumes.io import write_volume


def test_raw_case_folders_are_prepared_and_resumed(tmp_path):
    from LNSynthLib.phantom import generate_phantom

    raw = tmp_path / "raw"
    phantom = generate_phantom(3, (64, 64, 64), (1.0, 1.0, 1.0))
    write_volume(phantom.ct, raw / "patient_a" / "ct.nii.gz")
    write_volume(phantom.ln, raw / "patient_a" / "ln.nii.gz")
    write_volume(phantom.anatomy, raw / "patient_a" / "anatomy.nii.gz")
    out = prepare_raw_cases(raw, tmp_path / "prepared", device="cpu")
    (case,) = list_cases(out)
    prepared = load_case(case)
    assert case.name == "patient_a" and prepared.ln.array.sum() == phantom.ln.array.sum()
    stamp = (case / "case.json").stat().st_mtime_ns
    prepare_raw_cases(raw, out, device="cpu")                       # second call: nothing redone
    assert (case / "case.json").stat().st_mtime_ns == stamp


def test_raw_case_without_mask_is_named(tmp_path):
    (tmp_path / "raw" / "p").mkdir(parents=True)
    (tmp_path / "raw" / "p" / "ct.nii.gz").write_bytes(b"")
    with pytest.raises(InputDataError, match="lymph-node mask"):
        prepare_raw_cases(tmp_path / "raw", tmp_path / "out")


def test_a_rerun_with_other_settings_is_refused_before_any_work(tmp_path: Path) -> None:
    """A finished or interrupted job folder continues only with the settings it was started with."""
    from dataclasses import replace

    from LNSynthLib.errors import InputDataError
    from LNSynthLib.pipeline import SETTINGS_RECORD, PipelineSettings, check_settings_record, run_pipeline

    first = PipelineSettings.demo(n_train_cases=2)
    check_settings_record(tmp_path, first)
    check_settings_record(tmp_path, first)                                   # the same job: continues
    check_settings_record(tmp_path, replace(first, device="cpu"))            # where it runs is not what it is
    with pytest.raises(InputDataError, match="nnunet_epochs, synt_per_case"):
        check_settings_record(tmp_path, replace(first, nnunet_epochs=7, synt_per_case=5))
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(InputDataError, match="other settings"):
        run_pipeline(tmp_path, replace(first, seed=3))
    assert sorted(p.name for p in tmp_path.iterdir()) == before == [SETTINGS_RECORD]
