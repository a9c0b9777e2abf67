"""Bad-input table, part 1: data that is wrong but may look fine (CTs, LN masks, anatomy maps, DICOM, pipes).

Every row runs the real `lnsynth` command in-process on real files (tiny volumes from the
`bad_data` fixture) and must end in the project's error: exit 2, `lnsynth: error:` naming the
file and the cause, a `Fix:`, no traceback, and nothing changed on disk (see `refused`).
A few rows also run as a real subprocess, as a user types them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CT, LN = "{d}/ct.nii.gz", "{d}/ln.nii.gz"


def prepare(ct: str = CT, ln: str = LN, *extra: str) -> list[str]:
    return ["prepare", "--ct", ct, "--ln", ln, "--out", "{t}/out", "--case-id", "c1",
            *(extra or ("--anatomy-source", "coarse"))]


def predict(*args: str) -> list[str]:
    return ["nnunet", "predict", "--model", "{d}/prepared", "--device", "cpu", *args]


def fifo(name: str):
    return lambda tmp: os.mkfifo(tmp / name)


# (id, argv, names that must appear, cause that must appear, setup(tmp_path) or None)
CT_CASES = [
    ("ct-mr", prepare("{d}/mr.nii.gz"), ["{d}/mr.nii.gz"], "Hounsfield", None),
    ("ct-label-map", prepare("{d}/labelmap_u8.nii.gz"), ["labelmap_u8.nii.gz"], "Hounsfield", None),
    ("ct-all-zero", prepare("{d}/zeros.nii.gz"), ["zeros.nii.gz"], "is blank", None),
    ("ct-constant", prepare("{d}/constant.nii.gz"), ["constant.nii.gz"], "contrast", None),
    ("ct-beyond-hu", prepare("{d}/huge.nii.gz"), ["huge.nii.gz"], "beyond any Hounsfield", None),
    ("ct-8bit", prepare("{d}/png_like.nii.gz"), ["png_like.nii.gz"], "Hounsfield", None),
    ("ct-2d", prepare("{d}/slice_2d.nii.gz"), ["slice_2d.nii.gz"], "2D", None),
    ("ct-4d", prepare("{d}/series_4d.nii.gz"), ["series_4d.nii.gz"], "4D", None),
    ("ct-rgb", prepare("{d}/rgb.nrrd"), ["rgb.nrrd"], "RGB", None),
    ("ct-truncated", prepare("{d}/truncated.nii.gz"), ["truncated.nii.gz"], "truncated", None),
    ("ct-text", prepare("{d}/text.nii.gz"), ["text.nii.gz"], "cannot be read", None),
    ("ct-empty-file", prepare("{d}/empty.nii.gz"), ["empty.nii.gz"], "cannot be read", None),
    ("ct-nan-nifti", prepare("{d}/ct_nan.nii.gz"), ["ct_nan.nii.gz"], "NaN/infinite voxel", None),
    ("ct-inf-nifti", prepare("{d}/ct_inf.nii.gz"), ["ct_inf.nii.gz"], "NaN/infinite voxel", None),
    ("ct-nan-nrrd", prepare("{d}/ct_nan.nrrd"), ["ct_nan.nrrd"], "NaN/infinite voxel", None),
    ("ct-missing", prepare("{d}/nope.nii.gz"), ["nope.nii.gz"], "not found", None),
    ("ct-named-pipe", prepare("{t}/pipe.nii.gz"), ["pipe.nii.gz"], "named pipe", fifo("pipe.nii.gz")),
    ("ct-device", prepare("/dev/null"), ["/dev/null"], "device", None),
    ("ct-folder-without-dicom", prepare("{d}/no_dicom"), ["no_dicom"], "no DICOM series", None),
    ("ct-dicom-one-slice", prepare("{d}/dicom_1slice"), ["dicom_1slice"], "1 slice", None),
    ("ct-dicom-missing-slice", prepare("{d}/dicom_gap"), ["dicom_gap"], "not evenly spaced", None),
    ("anatomy-cmd-mr", ["anatomy", "--ct", "{d}/mr.nii.gz", "--out", "{t}/a.nii.gz", "--method", "coarse"],
     ["mr.nii.gz"], "Hounsfield", None),
    ("anatomy-cmd-nan", ["anatomy", "--ct", "{d}/ct_nan.nii.gz", "--out", "{t}/a.nii.gz", "--method", "coarse"],
     ["ct_nan.nii.gz"], "NaN/infinite voxel", None),
    ("anatomy-cmd-dicom-gap", ["anatomy", "--ct", "{d}/dicom_gap", "--out", "{t}/a.nii.gz", "--method", "coarse"],
     ["dicom_gap"], "not evenly spaced", None),
    ("predict-mr", predict("--ct", "{d}/mr.nii.gz", "--out", "{t}/p.nii.gz"), ["mr.nii.gz"], "Hounsfield", None),
    ("predict-label-map", predict("--ct", "{d}/labelmap_u8.nii.gz", "--out", "{t}/p.nii.gz"),
     ["labelmap_u8.nii.gz"], "Hounsfield", None),
    ("predict-nan", predict("--ct", "{d}/ct_nan.nii.gz", "--out", "{t}/p.nii.gz"), ["ct_nan.nii.gz"],
     "NaN/infinite voxel", None),
    ("predict-folder-mr", predict("--input", "{d}/predict_in", "--out", "{t}/preds"), ["scan_0000.nii.gz"],
     "Hounsfield", None),
    ("predict-pipe", predict("--ct", "{t}/pipe.nii.gz", "--out", "{t}/p.nii.gz"), ["pipe.nii.gz"], "named pipe",
     fifo("pipe.nii.gz")),
    ("predict-dicom-one-slice", predict("--ct", "{d}/dicom_1slice", "--out", "{t}/p.nii.gz"), ["dicom_1slice"],
     "1 slice", None),
]

MASK_CASES = [
    ("ln-other-shape", prepare(CT, "{d}/ln_other_shape.nii.gz"), ["ln_other_shape.nii.gz", CT], "size", None),
    ("ln-other-spacing", prepare(CT, "{d}/ln_other_spacing.nii.gz"), ["ln_other_spacing.nii.gz"], "spacing", None),
    ("ln-other-origin", prepare(CT, "{d}/ln_other_origin.nii.gz"), ["ln_other_origin.nii.gz"], "origin", None),
    ("ln-empty", prepare(CT, "{d}/ln_empty.nii.gz"), ["ln_empty.nii.gz"], "empty", None),
    ("ln-outside-body", prepare(CT, "{d}/ln_in_air.nii.gz"), ["ln_in_air.nii.gz"], "outside the body", None),
    ("ln-is-the-ct", prepare(CT, CT), [CT], "not a lymph-node mask", None),
    ("ln-is-totalseg-map", prepare(CT, "{d}/ln_totalseg_map.nii.gz"), ["ln_totalseg_map.nii.gz"],
     "not a lymph-node mask", None),
    ("ln-is-mr", prepare(CT, "{d}/mr.nii.gz"), ["mr.nii.gz"], "not a lymph-node mask", None),
    ("ln-two-labels", prepare(CT, "{d}/ln_two_labels.nii.gz"), ["ln_two_labels.nii.gz"], "2 different", None),
    ("ln-negative-label", prepare(CT, "{d}/ln_negative.nii.gz"), ["ln_negative.nii.gz"], "positive label", None),
    ("ln-fractional", prepare(CT, "{d}/ln_fractions.nii.gz"), ["ln_fractions.nii.gz"], "non-zero values", None),
    ("ln-140mm-component", prepare(CT, "{d}/ln_rod.nii.gz"), ["ln_rod.nii.gz"], "mm long", None),
    ("ln-1452-components", prepare(CT, "{d}/ln_speckle.nii.gz"), ["ln_speckle.nii.gz"], "separate components",
     None),
    ("ln-18pct-of-body", prepare(CT, "{d}/ln_bulky.nii.gz"), ["ln_bulky.nii.gz"], "of the body", None),
    ("ln-4d", prepare(CT, "{d}/ln_4d.nii.gz"), ["ln_4d.nii.gz"], "4D", None),
    ("ln-named-pipe", prepare(CT, "{t}/ln_pipe.nii.gz"), ["ln_pipe.nii.gz"], "named pipe", fifo("ln_pipe.nii.gz")),
    ("ln-missing", prepare(CT, "{d}/ln_nope.nii.gz"), ["ln_nope.nii.gz"], "not found", None),
    ("ln-text", prepare(CT, "{d}/text.nii.gz"), ["text.nii.gz"], "cannot be read", None),
    ("ln-truncated", prepare(CT, "{d}/truncated.nii.gz"), ["truncated.nii.gz"], "truncated", None),
    ("anatomy-stray-value", prepare(CT, LN, "--anatomy", "{d}/anatomy_stray.nii.gz"), ["anatomy_stray.nii.gz"],
     "77", None),
    ("anatomy-stray-declared", prepare(CT, LN, "--anatomy", "{d}/anatomy_stray.nii.gz", "--anatomy-source",
                                       "anatomy14"), ["anatomy_stray.nii.gz"], "77", None),
    ("anatomy-other-grid", prepare(CT, LN, "--anatomy", "{d}/anatomy_other_shape.nii.gz"),
     ["anatomy_other_shape.nii.gz"], "same voxel grid", None),
    ("anatomy-negative", prepare(CT, LN, "--anatomy", "{d}/anatomy_negative.nii.gz"), ["anatomy_negative.nii.gz"],
     "negative", None),
    ("anatomy-non-integer", prepare(CT, LN, "--anatomy", "{d}/anatomy_float.nii.gz"), ["anatomy_float.nii.gz"],
     "non-integer", None),
    ("anatomy-source-without-file", prepare(CT, LN, "--anatomy-source", "anatomy14"), [CT], "needs a label file",
     None),
    ("anatomy-text", prepare(CT, LN, "--anatomy", "{d}/text.nii.gz"), ["text.nii.gz"], "cannot be read", None),
    ("anatomy-cmd-stray", ["anatomy", "--ct", CT, "--out", "{t}/a.nii.gz", "--method", "labels", "--labels",
                           "{d}/anatomy_stray.nii.gz"], ["anatomy_stray.nii.gz"], "77", None),
    ("anatomy-cmd-labels-missing", ["anatomy", "--ct", CT, "--out", "{t}/a.nii.gz", "--method", "labels"], [CT],
     "--labels", None),
    ("anatomy-cmd-labels-other-grid", ["anatomy", "--ct", CT, "--out", "{t}/a.nii.gz", "--method", "labels",
                                       "--labels", "{d}/anatomy_other_shape.nii.gz"], ["anatomy_other_shape"],
     "same voxel grid", None),
]


@pytest.mark.parametrize(("args", "names", "why", "setup"),
                         [pytest.param(*case[1:], id=case[0]) for case in CT_CASES + MASK_CASES])
@pytest.mark.timeout(60)
def test_bad_data_is_refused(refused, tmp_path: Path, args, names, why, setup):
    if setup is not None:
        setup(tmp_path)
    refused(args, names, why)


def test_valid_tiny_inputs_are_accepted(bad_data: Path, tmp_path: Path, capsys):
    """The table's good files pass, so each row fails for its own defect only (incl. a real 3-slice DICOM)."""
    from LNSynthLib.cli.main import main
    from LNSynthLib.volumes.geometry import Volume
    from LNSynthLib.volumes.io import read_ct, read_volume, write_volume

    def fill(args: list[str]) -> list[str]:
        return [a.format(d=bad_data, t=tmp_path) for a in args]

    assert main(fill(prepare())) == 0, capsys.readouterr().err
    ln = read_volume(bad_data / "ln.nii.gz")
    write_volume(Volume(ln.array * 7, ln.geometry), tmp_path / "ln7.nii.gz")   # one label value other than 1
    args = fill(prepare(CT, "{t}/ln7.nii.gz", "--anatomy", "{d}/anatomy14.nii.gz"))
    assert main(args[:args.index("c1")] + ["c7"] + args[args.index("c1") + 1:]) == 0, capsys.readouterr().err
    assert read_ct(bad_data / "dicom_ok").shape == (5, 32, 32)
    import SimpleITK as sitk

    ok, nan = (sitk.ReadImage(str(bad_data / name)) for name in ("ct.nii.gz", "ct_nan.nii.gz"))
    assert ok.GetDirection() == nan.GetDirection() and ok.GetSpacing() == nan.GetSpacing()  # only values differ
    shared = Path(os.environ.get("LNSYNTH_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
    if (shared / "dcmqi_ct3slice").is_dir():
        assert read_ct(shared / "dcmqi_ct3slice").shape[0] == 3


SUBPROCESS_CASES = [
    ("pipe", prepare("{t}/pipe.nii.gz"), "named pipe", fifo("pipe.nii.gz")),
    ("nan-nifti", prepare("{d}/ct_nan.nii.gz"), "NaN/infinite voxel", None),
    ("ln-is-the-ct", prepare(CT, CT), "not a lymph-node mask", None),
]


@pytest.mark.parametrize(("args", "why", "setup"), [pytest.param(*c[1:], id=c[0]) for c in SUBPROCESS_CASES])
def test_bad_data_refused_by_a_real_process(bad_data: Path, tmp_path: Path, args, why, setup):
    if setup is not None:
        setup(tmp_path)
    argv = [a.format(d=bad_data, t=tmp_path) for a in args]
    res = subprocess.run([sys.executable, "-m", "LNSynthLib", *argv], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert res.returncode == 2, res.stderr
    assert "lnsynth: error:" in res.stderr and "Fix:" in res.stderr and why in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "out").exists()
