"""Bad-input table, round 2, class 3 (plausible but wrong CTs): the physics a radiologist checks first (HU of
air, fat and soft tissue; body size, so spacing units) and one DICOM series per folder.

Rows run the real `lnsynth` command in-process through `refused` (exit 2, `lnsynth: error:` naming the
file or option and the cause, a `Fix:`, no traceback, nothing changed on disk).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .round2_inputs import SPACING_MM, _body_ct, anatomy_of, ct_file, predict_ct, prepare_ct, rows


def _write_series(folder: Path, ct: np.ndarray, series: str, description: str, spacing_z: float = 2.0) -> None:
    """One CT series (SimpleITK's DICOM writer) into `folder`, files named after the series."""
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(ct)
    image.SetSpacing((0.8, 0.8, spacing_z))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(ct.shape[0]):
        s = image[:, :, k]
        for tag, value in (("0008|0060", "CT"), ("0020|000e", series), ("0020|000d", "1.2.826.0.1.3680043.2.1125.9"),
                           ("0008|103e", description), ("0020|0011", series.rsplit(".", 1)[-1]),
                           ("0020|0037", "1\\0\\0\\0\\1\\0"), ("0008|0018", f"{series}.{k + 1}"),
                           ("0020|0013", str(k + 1)),
                           ("0020|0032", "\\".join(map(str, image.TransformIndexToPhysicalPoint((0, 0, k))))),
                           ("0028|1052", "0"), ("0028|1053", "1")):
            s.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{series.rsplit('.', 1)[-1]}_{k:03d}.dcm"))
        writer.Execute(s)


def _dicom_series(*kinds: str):
    """Setup: `{t}/dicom` holding one series per entry of `kinds` (soft/bone kernel reconstructions, a scout)."""
    def make(tmp: Path, data: Path) -> None:
        ct = _body_ct((5, 32, 32))
        for n, kind in enumerate(kinds, start=2):
            slices = ct[:1] if kind == "scout" else ct
            _write_series(tmp / "dicom", slices, f"1.2.826.0.1.3680043.2.1125.1.{n}", kind,
                          spacing_z=1.0 if kind == "bone" else 2.0)
    return make


def _blank(value: float):
    """Every voxel at `value` (an export that failed: air or the scanner's padding only)."""
    return lambda a: np.full_like(a, value)


def _almost_blank(a: np.ndarray) -> np.ndarray:
    """Padding at -1024 everywhere but a 3x3x3 block of soft tissue (0.08% of the voxels)."""
    out = np.full_like(a, -1024)
    out[14:17, 14:17, 14:17] = 40
    return out


def predict_folder() -> list[str]:
    """`nnunet predict --input` of an imagesTs-style folder ({t}/images); the images are checked before the model."""
    return ["nnunet", "predict", "--model", "{d}/prepared", "--input", "{t}/images", "--out", "{t}/pred", "--device",
            "cpu"]


TABLE = [
    # HU scale and units (the issue's +1024 and cm spacing; -1024, slope applied twice, micrometres)
    ("ct-hu-plus-1024", prepare_ct(), ["ct_bad.nii.gz"], "look offset", ct_file(lambda a: a + 1024, padding=-2000)),
    ("ct-hu-minus-1024", prepare_ct(), ["ct_bad.nii.gz"], "look offset or scaled", ct_file(lambda a: a - 1024)),
    ("ct-hu-slope-twice", prepare_ct(), ["ct_bad.nii.gz"], "look offset or scaled", ct_file(lambda a: a * 2)),
    ("ct-hu-plus-1024-no-padding", prepare_ct(), ["ct_bad.nii.gz"], "hounsfield", ct_file(lambda a: a + 1024)),
    ("ct-spacing-in-cm", prepare_ct(), ["ct_bad.nii.gz"], "spacing looks given in cm",
     ct_file(spacing=SPACING_MM / 10)),
    ("ct-spacing-in-cm-fine-matrix", prepare_ct(), ["ct_bad.nii.gz"], "spacing looks given in cm",
     ct_file(spacing=0.015 * 5, zoom=15)),   # 390 voxels of 0.75 mm across, written as 0.075 (cm): "29 mm"
    ("ct-spacing-in-cm-wide-patient", prepare_ct(), ["ct_bad.nii.gz"], "spacing looks given in cm",
     ct_file(spacing=0.15, zoom=15)),        # 390 voxels of 1.5 mm (a 585 mm patient) in cm: "58 mm"
    ("ct-spacing-in-micrometres", prepare_ct(), ["ct_bad.nii.gz"], "spacing looks given in micrometres",
     ct_file(spacing=SPACING_MM * 1000)),
    # a DICOM folder with several series is not read as its first one
    ("dicom-two-reconstructions", prepare_ct("{t}/dicom"), ["dicom", "soft", "bone"], "2 DICOM series",
     _dicom_series("soft", "bone")),
    ("dicom-scout-and-axial", prepare_ct("{t}/dicom"), ["dicom", "scout"], "2 DICOM series",
     _dicom_series("scout", "axial")),
    # a blank CT (one value everywhere, or padding with almost nothing else): "is blank", not a physics rule
    ("ct-blank-minus-1024", prepare_ct(), ["ct_bad.nii.gz"], "every voxel is -1024", ct_file(_blank(-1024))),
    ("ct-blank-minus-1024-anatomy", anatomy_of(), ["ct_bad.nii.gz"], "every voxel is -1024", ct_file(_blank(-1024))),
    ("ct-blank-minus-1024-predict", predict_ct(), ["ct_bad.nii.gz"], "every voxel is -1024", ct_file(_blank(-1024))),
    ("ct-blank-minus-3024-predict-folder", predict_folder(), ["scan_0000.nii.gz"], "every voxel is -3024",
     ct_file(_blank(-3024), name="images/scan_0000.nii.gz")),
    ("ct-blank-zero-float", prepare_ct(), ["ct_bad.nii.gz"], "is blank", ct_file(_blank(0.0))),
    ("ct-almost-all-padding", prepare_ct(), ["ct_bad.nii.gz"], "are the padding value -1024", ct_file(_almost_blank)),
    # anatomy and nnunet predict run the same physics as prepare (`io.read_patient_ct`)
    ("anatomy-ct-hu-plus-1024", anatomy_of(), ["ct_bad.nii.gz"], "look offset",
     ct_file(lambda a: a + 1024, padding=-2000)),
    ("anatomy-ct-spacing-in-cm", anatomy_of(), ["ct_bad.nii.gz"], "spacing looks given in cm",
     ct_file(spacing=SPACING_MM / 10)),
    ("predict-ct-hu-minus-1024", predict_ct(), ["ct_bad.nii.gz"], "look offset or scaled",
     ct_file(lambda a: a - 1024)),
    ("predict-ct-slope-twice", predict_ct(), ["ct_bad.nii.gz"], "look offset or scaled", ct_file(lambda a: a * 2)),
    ("predict-folder-spacing-in-micrometres", predict_folder(), ["scan_0000.nii.gz"],
     "spacing looks given in micrometres", ct_file(spacing=SPACING_MM * 1000, name="images/scan_0000.nii.gz")),
    ("dicom-three-series-anatomy", ["anatomy", "--ct", "{t}/dicom", "--out", "{t}/a.nii.gz", "--method", "coarse"],
     ["dicom"], "3 DICOM series", _dicom_series("soft", "bone", "lung")),
]


@pytest.mark.parametrize(("args", "names", "why", "setup"), rows(TABLE))
@pytest.mark.timeout(120)
def test_bad_input_is_refused(refused, bad_data: Path, tmp_path: Path, args, names, why, setup):
    setup(tmp_path, bad_data)
    refused(args, names, why)


@pytest.mark.parametrize("variant", ["noisy", "air-clipped-with-padding", "small-child-0.5mm"])
def test_plausible_ct_is_prepared(bad_data: Path, tmp_path: Path, capsys, variant: str):
    """The physics rules pass real-looking CTs: noise, air clipped at -1024 with -3024 padding, a small body."""
    transform, spacing, padding = {"noisy": (lambda a: a, SPACING_MM, None),
                                   "air-clipped-with-padding": (lambda a: np.maximum(a, -1024), SPACING_MM, -3024),
                                   "small-child-0.5mm": (lambda a: a, 3.5, None)}[variant]
    ct_file(transform, spacing=spacing, padding=padding)(tmp_path, bad_data)
    from LNSynthLib.cli.main import main

    args = [a.format(d=bad_data, t=tmp_path) for a in prepare_ct()]
    if spacing != SPACING_MM:
        args += ["--resample-labels"]
    assert main(args) == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "c1" / "case.json").is_file()


def test_plausible_ct_gets_its_anatomy(tmp_path: Path, bad_data: Path, capsys):
    """`anatomy` with the physics check still maps a real-looking CT (noise, air clipped at -1024, -3024 padding)."""
    from LNSynthLib.cli.main import main

    ct_file(lambda a: np.maximum(a, -1024), padding=-3024)(tmp_path, bad_data)
    assert main([a.format(d=bad_data, t=tmp_path) for a in anatomy_of()]) == 0, capsys.readouterr().err
    assert (tmp_path / "a.nii.gz").is_file()
