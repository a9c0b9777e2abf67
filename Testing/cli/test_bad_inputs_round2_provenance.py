"""Bad-input table, round 2, classes 1 and 2 (stale state; matching by name instead of content): an export
rerun is "the same export" only when every input's content matches; synthetic cases belong to their source
case by content, not by id; one patient on both sides of the train/test split is refused whatever the
margin, file name or file type.

Rows run the real `lnsynth` command in-process through `refused` (exit 2, `lnsynth: error:` naming the
file or option and the cause, a `Fix:`, no traceback, nothing changed on disk).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from .round2_inputs import SPACING_MM, _body_ct, export, other_patient, prepared, rows, synthetic_from


def _samples_of_other_folder(tmp: Path, data: Path) -> None:
    """{t}/cases_b: other patients under bad_data's ids; {t}/synt: samples made from bad_data's cases."""
    for case, shift in (("case_a", 1), ("case_b", 2)):
        prepared(tmp / "cases_b", case, other_patient(shift), data=data)
    synthetic_from(data / "prepared", tmp / "synt", {"case_a": "case_a", "case_b": "case_b"})


def _sample_of_the_other_case(tmp: Path, data: Path) -> None:
    """{t}/cases: case_a and case_b are two patients; {t}/synt holds a sample of case_b that says case_a."""
    prepared(tmp / "cases", "case_a", _body_ct(), data=data)
    prepared(tmp / "cases", "case_b", other_patient(2), data=data)
    synthetic_from(tmp / "cases", tmp / "synt", {"case_a": "case_b", "case_b": "case_b"})


def _same_patient_again(how: str):
    """{t}/test: bad_data's patient (case_a's CT) prepared once more as `held_out`: with another margin from the
    same file, from a copy of the file, or from a float32 copy."""
    def make(tmp: Path, data: Path) -> None:
        from LNSynthLib.prepare import prepare_case
        from LNSynthLib.volumes.io import read_volume, write_volume
        from LNSynthLib.volumes.preprocess import PreprocessSettings

        ct = data / "ct.nii.gz"
        if how == "copy":
            ct = Path(shutil.copy(ct, tmp / "renamed_scan.nii.gz"))
        elif how == "float32":
            vol = read_volume(ct)
            ct = write_volume(type(vol)(vol.array.astype(np.float32), vol.geometry), tmp / "scan_f32.nrrd")
        prepare_case(ct, data / "ln.nii.gz", tmp / "test", "held_out", anatomy_path=data / "anatomy14.nii.gz",
                     settings=PreprocessSettings(margin_mm=10.0, spacing=SPACING_MM))
    return make


def _exported_then(change):
    """Setup: a finished export of `{t}/cases` (+ `{t}/test`) into {t}/proj, then `change(tmp, data)`."""
    def make(tmp: Path, data: Path) -> None:
        from LNSynthLib.cli.main import main

        for case, ct in (("case_a", _body_ct()), ("case_b", other_patient(2))):
            prepared(tmp / "cases", case, ct, data=data)
        prepared(tmp / "test", "t1", other_patient(3), data=data)
        assert main(["nnunet", "export", "--cases", str(tmp / "cases"), "--test-cases", str(tmp / "test"),
                     "--out", str(tmp / "proj")]) == 0
        change(tmp, data)
    return make


def _other_test_folder(tmp: Path, data: Path) -> None:
    prepared(tmp / "test2", "t1", other_patient(4), data=data)   # the same id, another patient


def _other_cases_same_ids(tmp: Path, data: Path) -> None:
    for case, shift in (("case_a", 5), ("case_b", 6)):
        prepared(tmp / "cases2", case, other_patient(shift), data=data)


def _case_prepared_again(tmp: Path, data: Path) -> None:
    """case_b of {t}/cases prepared again (another margin) in place: the same id, other voxels."""
    shutil.rmtree(tmp / "cases" / "case_b")
    prepared(tmp / "cases", "case_b", other_patient(2), margin_mm=10.0, data=data)


def _test_case_edited(tmp: Path, data: Path) -> None:
    """The test case's LN mask replaced (a corrected annotation): same id, same CT, other labels."""
    from LNSynthLib.volumes.io import read_volume, write_volume

    ln = read_volume(tmp / "test" / "t1" / "ln.nii.gz")
    ln.array[...] = 0
    ln.array[2:4, 2:4, 2:4] = 1
    write_volume(ln, tmp / "test" / "t1" / "ln.nii.gz", overwrite=True)


EXPORTED = ["nnunet", "export", "--out", "{t}/proj"]


def _export_synthetic(cases: str, *extra: str) -> list[str]:
    return ["nnunet", "export", "--cases", cases, "--out", "{t}/proj", "--synthetic", "{t}/synt", "--synt-per-case",
            "1", *extra]


TABLE = [
    # class 2: synthetic cases belong to their source case by content, not by id
    ("export-samples-of-another-folder", _export_synthetic("{t}/cases_b"), ["case_a_synt_0"], "not made from",
     _samples_of_other_folder),
    ("export-paste-samples-of-another-folder", _export_synthetic("{t}/cases_b", "--paste"), ["case_a_synt_0"],
     "not made from", _samples_of_other_folder),
    ("export-sample-of-the-other-case", _export_synthetic("{t}/cases", "--strategy", "synt"), ["case_a_synt_0"],
     "not made from", _sample_of_the_other_case),
    # class 2: one patient on both sides of the train/test split, whatever the margin, file name or type
    ("leak-same-patient-other-margin", export("--test-cases", "{t}/test"), ["held_out"], "same source CT",
     _same_patient_again("margin")),
    ("leak-same-patient-copied-file", export("--test-cases", "{t}/test"), ["held_out"], "same source CT",
     _same_patient_again("copy")),
    ("leak-same-patient-float32-nrrd", export("--test-cases", "{t}/test"), ["held_out"], "same source CT",
     _same_patient_again("float32")),
    # class 1: an export rerun over a finished dataset is "the same" only when every input's content matches
    ("export-rerun-other-test-folder",
     [*EXPORTED, "--cases", "{t}/cases", "--test-cases", "{t}/test2"], ["Dataset501_Real"], "other cases",
     _exported_then(_other_test_folder)),
    ("export-rerun-other-cases-same-ids",
     [*EXPORTED, "--cases", "{t}/cases2", "--test-cases", "{t}/test"], ["Dataset501_Real"], "other cases",
     _exported_then(_other_cases_same_ids)),
    ("export-rerun-case-prepared-again",
     [*EXPORTED, "--cases", "{t}/cases", "--test-cases", "{t}/test"], ["Dataset501_Real"], "other cases",
     _exported_then(_case_prepared_again)),
    ("export-rerun-test-labels-edited",
     [*EXPORTED, "--cases", "{t}/cases", "--test-cases", "{t}/test"], ["Dataset501_Real"], "other cases",
     _exported_then(_test_case_edited)),
]


@pytest.mark.parametrize(("args", "names", "why", "setup"), rows(TABLE))
@pytest.mark.timeout(300)   # the first export of a session imports nnU-Net
def test_bad_input_is_refused(refused, bad_data: Path, tmp_path: Path, args, names, why, setup):
    setup(tmp_path, bad_data)
    refused(args, names, why)


def test_export_rerun_of_the_same_content_is_kept_and_overwrite_redoes_it(bad_data: Path, tmp_path: Path, capsys):
    """Same content: nothing rewritten. Other content under the same ids with --overwrite: the images are new."""
    from LNSynthLib.cli.main import main

    _exported_then(lambda tmp, data: None)(tmp_path, bad_data)
    dataset = tmp_path / "proj" / "nnUNet_raw" / "Dataset501_Real"
    image = dataset / "imagesTs" / "t1_0000.nii.gz"
    before = (image.stat().st_mtime_ns, image.read_bytes())
    base = ["nnunet", "export", "--cases", str(tmp_path / "cases"), "--out", str(tmp_path / "proj")]
    assert main([*base, "--test-cases", str(tmp_path / "test")]) == 0, capsys.readouterr().err
    assert (image.stat().st_mtime_ns, image.read_bytes()) == before
    _other_test_folder(tmp_path, bad_data)
    assert main([*base, "--test-cases", str(tmp_path / "test2"), "--overwrite"]) == 0, capsys.readouterr().err
    assert image.read_bytes() != before[1]


def test_qc_label_maps_follow_the_case_id_and_a_rewritten_case_is_predicted_again(bad_data: Path, tmp_path: Path,
                                                                                   monkeypatch):
    """`segment_cases` (QC's NodeRecall rule, NodeRecall_synt) returns each case's label map under its id, whatever
    the order of the folders; a case written again under its id (`sample --overwrite`) is predicted again instead
    of being scored with the map of the case it replaced. nnU-Net is stood in for by a threshold with its rule:
    every image without an output is segmented."""
    from LNSynthLib.cases import load_case
    from LNSynthLib.segmentation import apply
    from LNSynthLib.volumes.geometry import Volume
    from LNSynthLib.volumes.io import read_volume, write_volume

    segmented: list[str] = []

    def threshold(model, images: Path, preds: Path, device: str = "cpu") -> Path:
        preds.mkdir(parents=True, exist_ok=True)
        for image in sorted(images.glob("*_0000.nii.gz")):
            out = preds / image.name.replace("_0000.nii.gz", ".nii.gz")
            if not out.exists():
                ct = read_volume(image)
                write_volume(Volume((ct.array > 0).astype(np.uint8), ct.geometry), out)
                segmented.append(image.name.split("-")[0])
        return preds

    monkeypatch.setattr(apply, "predict", threshold)
    synt, work = tmp_path / "synt", tmp_path / "work"
    folders = [prepared(synt, "s_b", other_patient(2), data=bad_data), prepared(synt, "s_a", _body_ct(), data=bad_data)]
    maps = apply.segment_cases(folders, "model", work, "cpu")
    assert sorted(maps) == ["s_a", "s_b"] and sorted(segmented) == ["s_a", "s_b"]
    for folder in folders:
        assert np.array_equal(maps[folder.name], load_case(folder).ct.array > 0)
    shutil.rmtree(synt / "s_a")
    rewritten = prepared(synt, "s_a", other_patient(5), data=bad_data)
    again = apply.segment_cases(list(reversed(folders)), "model", work, "cpu")
    assert np.array_equal(again["s_a"], load_case(rewritten).ct.array > 0) and segmented[2:] == ["s_a"]
    assert len(list((work / "synthetic_images").iterdir())) == 2   # the replaced case's image is gone
