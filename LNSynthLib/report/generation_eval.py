"""Generation metrics of a set of synthetic cases against their real source cases (paper 000 Table 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from LNSynthLib.cases import CT_FILE, LN_FILE, list_cases
from LNSynthLib.jobs.progress import Progress
from LNSynthLib.metrics import generation as gm
from LNSynthLib.volumes.geometry import Volume
from LNSynthLib.volumes.io import read_volume, write_volume


def evaluate_generation(real_root: str | Path, synthetic_root: str | Path, *, work_dir: str | Path,
                        lpips_weights: str | Path | None = None, real_model: str | Path | None = None,
                        device: str = "cpu", limit: int | None = None) -> dict[str, Any]:
    """Mean MSE/PSNR/MS-SSIM (+ LPIPS with weights) over synthetic/real pairs, and NodeRecall_synt.

    NodeRecall_synt needs `real_model`, an nnU-Net model folder trained on real data only: it
    segments the synthetic images and counts how many synthetic nodes it finds.
    """
    real_root, synthetic_root, work_dir = Path(real_root), Path(synthetic_root), Path(work_dir)
    folders = list_cases(synthetic_root)[:limit]
    features = None
    notes = []
    if lpips_weights is not None:
        from LNSynthLib.metrics.lpips3d import load_medicalnet_features

        features = load_medicalnet_features(lpips_weights)
    else:
        notes.append("LPIPS not computed: pass --lpips-weights with MedicalNet's resnet_10_23dataset.pth")
    values: dict[str, list[float]] = {"MSE": [], "PSNR": [], "MS-SSIM": [], "LPIPS": []}
    msssim_note = ""
    with Progress("generation_metrics", len(folders)) as progress:
        for folder in folders:
            pair = gm.real_crop_for(folder, real_root)
            if pair is not None:
                m = gm.pair_metrics(pair[0], pair[1], features)
                for key in values:
                    if key in m:
                        values[key].append(float(m[key]))  # type: ignore[arg-type]
                msssim_note = str(m["msssim_note"])
            progress.update()
    result: dict[str, Any] = {"method": "LN-DDPM", "pairs": len(values["MSE"])}
    for key, vals in values.items():
        finite = [v for v in vals if np.isfinite(v)]
        result[key] = float(np.mean(finite)) if finite else float("nan")
    if msssim_note:
        notes.append(msssim_note)
    if real_model is not None and folders:
        from LNSynthLib.segmentation.nnunet_runner import predict

        images, preds = work_dir / "synthetic_images", work_dir / "synthetic_predictions"
        for folder in folders:
            target = images / f"{folder.name}_0000.nii.gz"
            if not target.exists():
                ct = read_volume(folder / CT_FILE)
                write_volume(Volume(ct.array.astype(np.float32), ct.geometry), target)
        predict(real_model, images, preds, device=device)
        result["NodeRecall_synt"] = gm.node_recall_synt(
            [read_volume(preds / f"{f.name}.nii.gz").array for f in folders],
            [read_volume(f / LN_FILE).array for f in folders])
    result["note"] = "; ".join(notes)
    return result
