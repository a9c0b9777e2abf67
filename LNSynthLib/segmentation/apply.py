"""Segment lymph nodes in new CTs with a trained nnU-Net model, writing label maps on the input grid.

The model can see the whole CT, or (as in paper 000 at test time) only the LN region: give a
`region` mask (e.g. a rough LN region or known nodes) and the CT is cropped to it with a 5 cm
margin, segmented, and the result placed back into a label map of the full input geometry.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from LNSynthLib.atomic import check_writable, sweep_leftovers, temp_folder
from LNSynthLib.cases import CT_FILE
from LNSynthLib.errors import InputDataError
from LNSynthLib.segmentation.nnunet.runner import predict
from LNSynthLib.volumes.geometry import Volume
from LNSynthLib.volumes.io import read_patient_ct, read_volume, write_volume
from LNSynthLib.volumes.preprocess import TEST_MARGIN_MM

IMAGE_SUFFIX = "_0000.nii.gz"   # nnU-Net's name of a case's only channel
NNUNET_IMAGE_GLOB = f"*{IMAGE_SUFFIX}"
DIGEST_CHARS = 12
_STORED_NAME = re.compile(rf"[0-9a-f]{{{DIGEST_CHARS}}}{re.escape(IMAGE_SUFFIX)}")   # after `<case id>-`


def check_input_images(input_dir: str | Path) -> list[Path]:
    """Run the CT checks of `prepare` on every image nnU-Net would segment (an MR, a label map or a CT with
    offset HU or spacing in cm is refused)."""
    images = sorted(Path(input_dir).glob(NNUNET_IMAGE_GLOB))
    for image in images:
        read_patient_ct(image)
    return images


def segment_ct(model: str | Path, ct_path: str | Path, out_path: str | Path, *, fold: int | str | None = None,
               device: str = "cpu", region: str | Path | None = None, margin_mm: float = TEST_MARGIN_MM,
               overwrite: bool = False) -> Path:
    """Write the LN label map (uint8 0/1) of one CT to `out_path`, on the CT's own grid."""
    out_path = check_writable(out_path, overwrite)
    ct = read_patient_ct(ct_path)
    box = None
    if region is not None:
        from LNSynthLib.volumes.preprocess import crop, ln_region_box

        mask = read_volume(region)
        if mask.shape != ct.shape or not mask.geometry.isclose(ct.geometry):
            raise InputDataError("region mask is not on the CT's grid", path=region,
                                 fix="give a mask with the same size, spacing, origin and direction as the CT")
        box = ln_region_box(mask, margin_mm)
        ct_in = crop(ct, box)
    else:
        ct_in = ct
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(out_path.parent)   # a killed run's scratch folder (never a live run's)
    with temp_folder(out_path.name, out_path.parent) as tmp:
        tmp_in, tmp_out = Path(tmp) / "in", Path(tmp) / "out"
        write_volume(Volume(ct_in.array.astype(np.float32), ct_in.geometry), tmp_in / "case_0000.nii.gz")
        predict(model, tmp_in, tmp_out, fold=fold, device=device, log_dir=out_path.parent)
        pred = read_volume(tmp_out / "case.nii.gz")
    full = np.zeros(ct.shape, np.uint8)
    if box is None:
        full[...] = pred.array > 0
    else:
        full[box] = pred.array > 0
    return write_volume(Volume(full, ct.geometry), out_path, overwrite=overwrite)


def segment_cases(folders: list[Path], model: str | Path, work_dir: Path, device: str,
                  kind: str = "synthetic") -> dict[str, np.ndarray]:
    """Label maps of an nnU-Net model on the cases' CTs, by case id (NodeRecall_synt; quality control per sample).

    Images and predictions stay in `work_dir/<kind>_images|_predictions` under the case id and the digest of
    its CT file, so a second caller with the same cases (the pipeline's QC, then its evaluation) predicts
    nothing twice, and a case written again under its id (`sample --overwrite`) is predicted again instead of
    being scored with the label map of the case it replaced.
    """
    from LNSynthLib.output_claims import content_digest

    images, preds = work_dir / f"{kind}_images", work_dir / f"{kind}_predictions"
    names = {folder.name: f"{folder.name}-{content_digest(folder / CT_FILE)[:DIGEST_CHARS]}" for folder in folders}
    for folder in folders:
        target = images / f"{names[folder.name]}{IMAGE_SUFFIX}"
        for old in images.glob(f"{folder.name}-*{IMAGE_SUFFIX}") if images.is_dir() else ():
            if old != target and _STORED_NAME.fullmatch(old.name[len(folder.name) + 1:]):   # this case's old CT
                old.unlink()
                (preds / old.name.replace(IMAGE_SUFFIX, ".nii.gz")).unlink(missing_ok=True)
        if not target.exists():
            ct = read_volume(folder / CT_FILE)
            write_volume(Volume(ct.array.astype(np.float32), ct.geometry), target)
    predict(model, images, preds, device=device)
    return {case: read_volume(preds / f"{name}.nii.gz").array for case, name in names.items()}
