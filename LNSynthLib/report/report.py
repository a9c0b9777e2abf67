"""Evaluate a run and write `report.md`, `metrics.json` and PNG figures into one folder.

Inputs are plain folders (labels, predictions per strategy, prepared real and synthetic cases,
the LN-DDPM run folder, nnU-Net training folders), so the same code reports the demo, a user's
own data and a GPU-server run. Everything it writes is derived, so a new evaluation replaces
the previous report in that folder.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from LNSynthLib.anatomy.provenance import anatomy_section, anatomy_sources
from LNSynthLib.atomic import write_text_atomic
from LNSynthLib.errors import InputDataError
from LNSynthLib.jobs.progress import Progress
from LNSynthLib.metrics.segmentation import ASSD_FORMS, EMPTY_ASSD_RULE, segmentation_metrics, summarize
from LNSynthLib.report import confidence, figures, tables
from LNSynthLib.volumes.grid import labels_onto
from LNSynthLib.volumes.io import read_volume

PREDICTION_GRID_FIX = "predict on the imagesTs images of the same dataset (`lnsynth nnunet predict`)"


@dataclass
class PredictionSet:
    """Predictions of one strategy/method on the test labels (files named like the labels)."""

    strategy: str                  # "Real", "Synt", "Real + Synt"
    method: str                    # "-", "LN-DDPM", "LN-DDPM (pasted)"
    folder: Path
    training_dir: Path | None = None   # nnU-Net fold folder, for its loss curve


@dataclass
class EvaluationInputs:
    out_dir: Path
    labels_dir: Path
    predictions: list[PredictionSet]
    images_dir: Path | None = None
    real_root: Path | None = None
    test_root: Path | None = None                # prepared test cases (their anatomy source is reported)
    synthetic_root: Path | None = None
    ddpm_run: Path | None = None
    generation: dict[str, Any] | None = None     # precomputed generation metrics (see evaluate_generation)
    notes: list[str] = field(default_factory=list)
    assd_form: str = ASSD_FORMS[0]               # "directed-means" or "pooled" (see metrics.segmentation.assd_mm)


def evaluate_predictions(labels_dir: Path, pred_dir: Path,
                         assd_form: str = ASSD_FORMS[0]) -> tuple[dict[str, dict], dict[str, Any]]:
    """Per-case metrics and the dataset summary of one prediction folder against the labels."""
    labels = sorted(Path(labels_dir).glob("*.nii.gz"))
    if not labels:
        raise InputDataError("no label files to evaluate against", path=labels_dir,
                             fix="give the labelsTs folder of the exported dataset")
    per_case = {}
    for label in labels:
        pred_path = Path(pred_dir) / label.name
        if not pred_path.exists():
            raise InputDataError(f"prediction for {label.name} is missing", path=pred_dir,
                                 fix="run `lnsynth nnunet predict` on the test images first")
        gt = read_volume(label)
        # The project's one grid rule (`volumes.grid`): the same voxels in another axis order/direction are
        # reoriented exactly; a prediction on any other grid (shifted, other spacing) is refused, never scored.
        pred = labels_onto(read_volume(pred_path), gt, pred_path, label, refusal_fix=PREDICTION_GRID_FIX)
        per_case[label.name.removesuffix(".nii.gz")] = segmentation_metrics(pred.array, gt.array,
                                                                            gt.geometry.spacing, assd_form)
    return per_case, summarize(per_case, assd_form)


def _pairs_for_mosaic(real_root: Path, synthetic_root: Path, limit: int = 4) -> list:
    from LNSynthLib.cases import list_cases, load_case
    from LNSynthLib.volumes.geometry import Volume

    pairs = []
    for folder in list_cases(synthetic_root)[:limit]:
        synt = load_case(folder)
        source = real_root / str(synt.meta.get("source_case", ""))
        if not source.is_dir():
            continue
        real = load_case(source)
        # The real source cut to the synthetic patch's grid, so both show the same anatomy.
        start = np.round(real.ct.geometry.physical_to_index(np.asarray(synt.ct.geometry.origin)))
        start = start.astype(int)[::-1]
        box = tuple(slice(max(0, int(s)), int(s) + n) for s, n in zip(start, synt.ct.shape, strict=True))
        geo = real.ct.geometry.shifted(tuple(b.start for b in box))
        pairs.append((folder.name, Volume(real.ct.array[box], geo), Volume(real.ln.array[box], geo),
                      synt.ct, synt.ln))
    return pairs


def write_report(inputs: EvaluationInputs) -> tuple[Path, Path]:
    """Compute the segmentation table, draw the figures, write report.md + metrics.json; return both paths."""
    from LNSynthLib.segmentation.nnunet.progress import parse_training_logs

    out = Path(inputs.out_dir)
    rows, per_case_all = [], {}
    with Progress("evaluate", len(inputs.predictions) + 1) as progress:
        for pset in inputs.predictions:
            per_case, summary = evaluate_predictions(inputs.labels_dir, pset.folder, inputs.assd_form)
            rows.append({"strategy": pset.strategy, "method": pset.method, **summary})
            per_case_all[f"{pset.strategy} | {pset.method}"] = per_case
            progress.update()
        out.mkdir(parents=True, exist_ok=True)   # only once every prediction was accepted
        labels = {f"{p.strategy} | {p.method}": (p.strategy, p.method) for p in inputs.predictions}
        differences = confidence.differences_vs_real({k: [v] for k, v in per_case_all.items()}, labels)
        figs: dict[str, str] = {}
        if inputs.real_root and inputs.synthetic_root:
            pairs = _pairs_for_mosaic(Path(inputs.real_root), Path(inputs.synthetic_root))
            if pairs:
                figs["mosaic"] = figures.mosaic(pairs, out / "real_vs_synthetic.png").name
        ddpm_loss: list[tuple[int, float]] = []
        if inputs.ddpm_run and (Path(inputs.ddpm_run) / "loss.csv").exists():
            from LNSynthLib.diffusion.train.loss_plot import read_loss_csv

            ddpm_loss = read_loss_csv(Path(inputs.ddpm_run) / "loss.csv")
        curves = {f"{p.strategy} {p.method}".replace(" -", ""): [r.to_dict() for r in
                                                              parse_training_logs(p.training_dir)]
                  for p in inputs.predictions if p.training_dir is not None}
        figs["curves"] = figures.training_curves(ddpm_loss, curves, out / "training_curves.png").name
        if inputs.images_dir is not None:
            figs["segmentations"] = _segmentation_figure(inputs, out / "segmentations.png").name
        progress.update()
    metrics = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "segmentation": rows,
               "segmentation_per_case": per_case_all, "differences_vs_real": differences,
               "generation": inputs.generation,
               "nnunet_epochs": curves, "ddpm_loss_last": ddpm_loss[-1] if ddpm_loss else None,
               "figures": figs, "notes": inputs.notes, "paper_000_table2": tables.PAPER_000_TABLE2,
               "anatomy_sources": {name: anatomy_sources(root) for name, root in _case_roots(inputs).items()
                                   if root is not None and Path(root).is_dir()}}
    metrics_path = write_text_atomic(out / "metrics.json", json.dumps(_clean(metrics), indent=2, default=_jsonable),
                                     overwrite=True)
    report_path = write_text_atomic(out / "report.md", _markdown(rows, inputs, figs, differences),
                                     overwrite=True)
    return report_path, metrics_path


def _segmentation_figure(inputs: EvaluationInputs, png: Path) -> Path:
    rows = []
    for label in sorted(Path(inputs.labels_dir).glob("*.nii.gz"))[:3]:
        case = label.name.removesuffix(".nii.gz")
        image = Path(inputs.images_dir or "") / f"{case}_0000.nii.gz"
        if not image.exists():
            continue
        preds = {f"{p.strategy} {p.method}".replace(" -", ""): read_volume(p.folder / label.name)
                 for p in inputs.predictions}
        rows.append((case, read_volume(image), read_volume(label), preds))
    return figures.segmentation_mosaic(rows, png)


def _markdown(rows: list[dict], inputs: EvaluationInputs, figs: dict[str, str], differences: list[dict]) -> str:
    assd = ("the mean of the two directed average surface distances (medpy ≤ 0.4's `assd`)"
            if inputs.assd_form == "directed-means" else
            "the pooled form, all surface distances of both directions in one mean (medpy ≥ 0.5's `assd`)")
    parts = ["# LNSynth evaluation", "",
             "Segmentation of held-out real cases by nnU-Net trained under each strategy "
             "(metrics of paper 000 §4.4.2; NodeRecall: a node counts as found when one predicted component "
             "overlaps it with DSC > 0.1; DSC…ASSD are means over test cases, NodeRecall is pooled over nodes). "
             f"ASSD is {assd}. No case is skipped: {EMPTY_ASSD_RULE}.",
             "", tables.table2(rows), ""]
    if rows:
        parts += ["Aggregation: NodeRecall pooled over all nodes (the table) and as the mean of the per-case "
                  "recalls; cases with an empty prediction are scored by the rule above.", "",
                  tables.aggregation_table(rows), ""]
    parts += confidence.report_section(differences)
    if inputs.generation:
        parts += ["## Generation", "", "Synthetic patches against the real images on the same grid "
                  "(window [-120, 240] HU mapped to [0, 1]).", "",
                  tables.generation_table([inputs.generation]), ""]
        if inputs.generation.get("organ_dice"):
            parts += ["Per-organ Dice of TotalSegmentator on the synthetic images against their condition "
                      "(paper 002):", "", tables.organ_dice_table(inputs.generation["organ_dice"],
                                                                  inputs.generation.get("organ_dice_cases", {})),
                      ""]
        if inputs.generation.get("note"):
            parts += [str(inputs.generation["note"]), ""]
    parts += ["## Figures", ""]
    captions = {"mosaic": "Real vs synthetic (axial, coronal) with the LN contour",
                "curves": "Training curves: LN-DDPM loss, nnU-Net loss per epoch",
                "segmentations": "Test cases: ground truth (green) and predictions (red)"}
    parts += [f"![{captions[k]}]({v})\n" for k, v in figs.items()]
    parts += ["## Paper 000, Table 2 (for reference: 88 real training cases, 10× synthetic)", "",
              tables.table2(tables.PAPER_000_TABLE2), ""]
    parts += anatomy_section(_case_roots(inputs))
    if inputs.notes:
        parts += ["## Notes", ""] + [f"- {n}" for n in inputs.notes] + [""]
    return "\n".join(parts)


def _case_roots(inputs: EvaluationInputs) -> dict[str, Path | None]:
    return {"Training": inputs.real_root, "Test": inputs.test_root}


def _clean(value: Any) -> Any:
    """NaN/inf -> null, so metrics.json is strict JSON."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return str(value)
