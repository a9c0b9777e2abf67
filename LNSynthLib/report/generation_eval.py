"""Generation metrics of a set of synthetic cases against their real source cases (paper 000 Table 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from LNSynthLib.cases import LN_FILE, list_cases
from LNSynthLib.jobs.progress import Progress
from LNSynthLib.metrics import generation as gm
from LNSynthLib.metrics.fid import FID_FEATURES, fid_feature, frechet_distance
from LNSynthLib.report.organ_eval import evaluate_organ_dice
from LNSynthLib.segmentation.apply import segment_cases
from LNSynthLib.volumes.io import read_volume


def evaluate_generation(real_root: str | Path, synthetic_root: str | Path, *, work_dir: str | Path,
                        lpips_weights: str | Path | None = None, real_model: str | Path | None = None,
                        device: str = "cpu", limit: int | None = None,
                        fid_weights: str | Path | None = None, organ_dice: str = "off",
                        totalseg_weights_dir: str | Path | None = None,
                        totalseg_fast: bool = True, method: str = "LN-DDPM") -> dict[str, Any]:
    """Mean MSE/PSNR/MS-SSIM/SSIM (+ LPIPS with weights) over synthetic/real pairs, FID, NodeRecall_synt, organ Dice.

    `method` labels the row (the variant that made the samples). The figures cover every sample in
    `synthetic_root`, quality-control rejects included; `samples` in the result says so, with the
    number of rejects when the folder holds a qc.json (`samples_note`).

    FID compares the set of real crops with the set of synthetic patches on features of the
    MedicalNet file `fid_weights` (default: the LPIPS file, the same network). NodeRecall_synt
    needs `real_model`, an nnU-Net model folder trained on real data only: it segments the
    synthetic images and counts how many synthetic nodes it finds. `organ_dice="auto"` runs
    TotalSegmentator on the synthetic images when its weights are installed (`report.organ_eval`).
    """
    from LNSynthLib.metrics.lpips3d import load_medicalnet_features

    real_root, synthetic_root, work_dir = Path(real_root), Path(synthetic_root), Path(work_dir)
    folders = list_cases(synthetic_root)[:limit]
    features = None
    notes = []
    if lpips_weights is not None:
        features = load_medicalnet_features(lpips_weights)
    else:
        notes.append("LPIPS not computed: pass --lpips-weights with MedicalNet's resnet_10_23dataset.pth")
    if fid_weights is None or (lpips_weights is not None and Path(fid_weights) == Path(lpips_weights)):
        fid_net = features                   # the LPIPS network, loaded once
    else:
        fid_net = load_medicalnet_features(fid_weights, purpose="FID", option="--fid-weights")
    if fid_net is None:
        notes.append("FID not computed: pass --fid-weights (or --lpips-weights) with MedicalNet's "
                     "resnet_10_23dataset.pth")
    values: dict[str, list[float]] = {"MSE": [], "PSNR": [], "MS-SSIM": [], "SSIM": [], "LPIPS": []}
    fid_real: list[np.ndarray] = []
    fid_synt: list[np.ndarray] = []
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
                if fid_net is not None:
                    fid_real.append(fid_feature(gm.to_unit(pair[0]), fid_net))
                    fid_synt.append(fid_feature(gm.to_unit(pair[1]), fid_net))
            progress.update()
    result: dict[str, Any] = {"method": method, "pairs": len(values["MSE"]),
                              "samples": samples_covered(synthetic_root, folders)}
    for key, vals in values.items():
        finite = [v for v in vals if np.isfinite(v)]
        result[key] = float(np.mean(finite)) if finite else float("nan")
    if msssim_note:
        notes.append(msssim_note)
    notes.append(f"SSIM: 3D, MONAI SSIMMetric, Gaussian window {gm.SSIM_KERNEL} (σ {gm.SSIM_SIGMA}), "
                 "on the [0, 1] window")
    result["FID"] = frechet_distance(np.array(fid_real), np.array(fid_synt)) if fid_real else float("nan")
    if fid_net is not None:
        notes.append(f"FID: 3D, {FID_FEATURES}, {len(fid_real)} real crops vs {len(fid_synt)} synthetic patches "
                     "(not on the scale of 2D Inception FIDs; few samples make it noisy)")
    if real_model is not None and folders:
        result["NodeRecall_synt"] = gm.node_recall_synt(segment_cases(folders, real_model, work_dir, device),
                                                        {f.name: read_volume(f / LN_FILE).array for f in folders})
    organs, organ_cases, organ_note = evaluate_organ_dice(folders, work_dir, mode=organ_dice,
                                                         weights_dir=totalseg_weights_dir, fast=totalseg_fast,
                                                         device=device, real_root=real_root)
    if organs is not None:
        result["organ_dice"], result["organ_dice_cases"] = organs, organ_cases
    notes.append(organ_note)
    notes.append(f"Generation metrics cover {result['samples']}")
    result["note"] = "; ".join(notes)
    return result


def samples_covered(synthetic_root: Path, folders: list[Path]) -> str:
    """Which samples Table 1's figures are over: all of them; how many of those quality control rejected."""
    from LNSynthLib.qc.verdicts import rejected_cases

    rejected = rejected_cases(synthetic_root)
    if rejected is None:
        return f"all {len(folders)} samples (no quality control)"
    return (f"all {len(folders)} samples, the {len(rejected & {f.name for f in folders})} that quality control "
            "rejected included")
