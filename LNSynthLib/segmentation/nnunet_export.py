"""Prepared cases → an nnU-Net v2 raw dataset for one training strategy of paper 000 (Table 2).

Strategies: `real` (real cases only), `synt` (synthetic only), `real+synt` (both); synthetic
cases are taken `synt_per_case` per real source case (5×/10×/20× in the paper). Real training
cases are cropped to the LN region with a 10 cm margin and test cases with 5 cm (§4.2.2).
Synthetic patches are used as they are, or pasted back into their source CT (`paste_into_ct`)
and then cropped like a real case, so the segmenter sees full abdominal context.

Besides nnU-Net's files the dataset gets `lnsynth_export.json`: the export settings and, per
training case, its source case; `write_splits` uses it so that a synthetic case never lands in
the validation fold of its own source case.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from LNSynthLib.atomic import write_text_atomic
from LNSynthLib.cases import CT_FILE, LN_FILE, META_FILE, list_cases
from LNSynthLib.errors import InputDataError, OutputExistsError
from LNSynthLib.jobs.progress import Progress
from LNSynthLib.segmentation.leakage import check_prepared_disjoint
from LNSynthLib.segmentation.paste import DEFAULT_BLEND_MM, paste_patch
from LNSynthLib.volumes.geometry import Volume
from LNSynthLib.volumes.io import read_volume, write_volume

STRATEGIES = ("real", "synt", "real+synt")
MANIFEST = "lnsynth_export.json"
TRAIN_MARGIN_MM = 100.0
TEST_MARGIN_MM = 50.0


@dataclass(frozen=True)
class ExportSettings:
    strategy: str = "real+synt"
    synt_per_case: int | None = 10   # None: every synthetic case of each source case
    paste_into_ct: bool = False
    blend_mm: float = DEFAULT_BLEND_MM
    train_margin_mm: float | None = TRAIN_MARGIN_MM  # None: use the prepared case as it is
    test_margin_mm: float | None = TEST_MARGIN_MM

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise InputDataError(f"unknown strategy {self.strategy!r}", fix=f"use one of {', '.join(STRATEGIES)}")
        if self.strategy != "real" and self.synt_per_case is not None and self.synt_per_case < 1:
            raise InputDataError("synt_per_case must be at least 1 for a strategy with synthetic data",
                                 fix="pass --synt-per-case 5, 10 or 20 (paper 000)")


@dataclass(frozen=True)
class TrainingItem:
    case_id: str
    folder: Path
    kind: str          # "real", "synt" or "pasted"
    source_case: str


def _meta(folder: Path) -> dict[str, Any]:
    return json.loads((folder / META_FILE).read_text(encoding="utf-8"))


def synthetic_by_source(synthetic_root: str | Path) -> dict[str, list[Path]]:
    """Synthetic case folders grouped by their `source_case` (sorted by name within a group)."""
    groups: dict[str, list[Path]] = {}
    for folder in list_cases(synthetic_root):
        meta = _meta(folder)
        if not meta.get("synthetic"):
            continue  # a real case next to the synthetic ones
        source = meta.get("source_case")
        if not source:
            raise InputDataError("synthetic case.json lacks `source_case`", path=folder / META_FILE,
                                 fix="give the folder written by `lnsynth sample` as the synthetic cases")
        groups.setdefault(str(source), []).append(folder)
    return groups


def select_training_items(real_root: str | Path, synthetic_root: str | Path | None,
                          settings: ExportSettings) -> list[TrainingItem]:
    """The training cases of a strategy: real cases and/or `synt_per_case` synthetic cases per real case."""
    # A folder may hold real and synthetic cases side by side (e.g. a Slicer session); split them.
    listed = list_cases(real_root)
    real = [f for f in listed if not _meta(f).get("synthetic")]
    if synthetic_root is None and len(real) < len(listed):
        synthetic_root = real_root
    if not real:
        raise InputDataError("no prepared real cases found", path=real_root, fix="run `lnsynth prepare` first")
    items: list[TrainingItem] = []
    if settings.strategy in ("real", "real+synt"):
        items += [TrainingItem(f.name, f, "real", f.name) for f in real]
    if settings.strategy in ("synt", "real+synt"):
        if synthetic_root is None:
            raise InputDataError(f"strategy {settings.strategy} needs synthetic cases",
                                 fix="pass --synthetic with the folder written by `lnsynth sample`")
        groups = synthetic_by_source(synthetic_root)
        kind = "pasted" if settings.paste_into_ct else "synt"
        wanted = settings.synt_per_case
        for source in real:
            found = groups.get(source.name, [])
            if wanted is None:
                items += [TrainingItem(f.name, f, kind, source.name) for f in found]
                continue
            if len(found) < wanted:
                raise InputDataError(f"only {len(found)} synthetic case(s) for {source.name}, "
                                     f"{settings.synt_per_case} requested", path=synthetic_root,
                                     fix=f"sample more (`lnsynth sample --n {settings.synt_per_case}`) "
                                         "or lower --synt-per-case")
            items += [TrainingItem(f.name, f, kind, source.name) for f in found[:wanted]]
        if not any(i.kind != "real" for i in items):
            raise InputDataError("no synthetic case belongs to these real cases", path=synthetic_root,
                                 fix="sample from these cases first (`lnsynth sample --cases` with the same folder)")
    return items


def _crop_to_ln(ct: Volume, ln: Volume, margin_mm: float | None) -> tuple[Volume, Volume]:
    if margin_mm is None or not (ln.array > 0).any():
        return ct, ln
    from LNSynthLib.volumes.preprocess import crop, ln_region_box

    box = ln_region_box(ln, margin_mm)
    return crop(ct, box), crop(ln, box)


def training_pair(item: TrainingItem, real_root: Path, settings: ExportSettings) -> tuple[Volume, Volume]:
    """(CT, LN) of one training case as the segmenter will see it."""
    ct, ln = read_volume(item.folder / CT_FILE), read_volume(item.folder / LN_FILE)
    if item.kind == "synt":
        return ct, ln
    if item.kind == "pasted":
        source = real_root / item.source_case
        ct, ln = paste_patch(read_volume(source / CT_FILE), ct, read_volume(source / LN_FILE), ln,
                             blend_mm=settings.blend_mm)
    return _crop_to_ln(ct, ln, settings.train_margin_mm)


def _write_pair(ct: Volume, ln: Volume, image: Path, label: Path) -> None:
    # Label first, image last: nnU-Net lists cases by image, so a case without its label never appears.
    write_volume(Volume((ln.array > 0).astype(np.uint8), ln.geometry), label, overwrite=True)
    write_volume(Volume(ct.array.astype(np.float32), ct.geometry), image, overwrite=True)


def dataset_json(num_training: int) -> dict[str, Any]:
    return {"channel_names": {"0": "CT"}, "labels": {"background": 0, "lymph_node": 1},
            "numTraining": int(num_training), "file_ending": ".nii.gz",
            "name": "LNSynth abdominal lymph nodes", "description": "written by lnsynth nnunet export"}


def export_dataset(real_root: str | Path, dataset_dir: str | Path, *, synthetic_root: str | Path | None = None,
                   test_root: str | Path | None = None, settings: ExportSettings | None = None,
                   overwrite: bool = False) -> Path:
    """Write `dataset_dir` (imagesTr, labelsTr, optional imagesTs/labelsTs, dataset.json, lnsynth_export.json).

    Resumes: cases already written are kept; `dataset.json` is written last and marks a complete
    export. An existing complete export with other settings is refused unless `overwrite`.
    """
    settings = settings or ExportSettings()
    real_root, dataset_dir = Path(real_root), Path(dataset_dir)
    if test_root is not None:
        check_prepared_disjoint(real_root, test_root)
    items = select_training_items(real_root, synthetic_root, settings)
    test = list_cases(test_root) if test_root is not None else []
    manifest = {"settings": asdict(settings), "real_root": str(real_root.resolve()),
                "synthetic_root": None if synthetic_root is None else str(Path(synthetic_root).resolve()),
                "test_root": None if test_root is None else str(Path(test_root).resolve()),
                "training": [{"case_id": i.case_id, "kind": i.kind, "source_case": i.source_case} for i in items],
                "test": [f.name for f in test]}
    done_marker = dataset_dir / "dataset.json"
    manifest_path = dataset_dir / MANIFEST
    if done_marker.exists():
        if manifest_path.exists() and json.loads(manifest_path.read_text())["training"] == manifest["training"] \
                and json.loads(manifest_path.read_text())["settings"] == manifest["settings"]:
            return dataset_dir
        if not overwrite:
            raise OutputExistsError("an nnU-Net dataset with other cases or settings is already here",
                                    path=dataset_dir, fix="choose another dataset id/folder or pass --overwrite")
        done_marker.unlink()
    dirs = {k: dataset_dir / k for k in ("imagesTr", "labelsTr", "imagesTs", "labelsTs")}
    with Progress("nnunet_export", len(items) + len(test)) as progress:
        for item in items:
            image = dirs["imagesTr"] / f"{item.case_id}_0000.nii.gz"
            label = dirs["labelsTr"] / f"{item.case_id}.nii.gz"
            if not (image.exists() and label.exists()) or overwrite:
                _write_pair(*training_pair(item, real_root, settings), image, label)
            progress.update()
        for folder in test:
            image = dirs["imagesTs"] / f"{folder.name}_0000.nii.gz"
            label = dirs["labelsTs"] / f"{folder.name}.nii.gz"
            if not (image.exists() and label.exists()) or overwrite:
                ct, ln = _crop_to_ln(read_volume(folder / CT_FILE), read_volume(folder / LN_FILE),
                                     settings.test_margin_mm)
                _write_pair(ct, ln, image, label)
            progress.update()
    write_text_atomic(manifest_path, json.dumps(manifest, indent=2), overwrite=True)
    write_text_atomic(done_marker, json.dumps(dataset_json(len(items)), indent=2), overwrite=True)
    return dataset_dir


def write_splits(dataset_dir: str | Path, preprocessed_dir: str | Path, n_folds: int = 5,
                 seed: int = 12345) -> Path:
    """`splits_final.json` with folds grouped by source case; validation only on real cases when there are any.

    nnU-Net's own random split would put a synthetic copy of a validation case into training and
    judge the model on synthetic images; grouping keeps validation honest. Needs ≥ 2 source cases.
    """
    manifest = json.loads((Path(dataset_dir) / MANIFEST).read_text(encoding="utf-8"))
    items = manifest["training"]
    groups = sorted({i["source_case"] for i in items})
    if len(groups) < 2:
        raise InputDataError("at least two source cases are needed for a train/validation split",
                             path=dataset_dir, fix="prepare more real cases, or train with fold `all`")
    rng = np.random.default_rng(seed)
    order = [groups[k] for k in rng.permutation(len(groups))]
    n_folds = max(2, min(n_folds, len(groups)))
    has_real = any(i["kind"] == "real" for i in items)
    splits = []
    for fold in range(n_folds):
        val_groups = set(order[fold::n_folds])
        train = [i["case_id"] for i in items if i["source_case"] not in val_groups]
        val = [i["case_id"] for i in items if i["source_case"] in val_groups
               and (i["kind"] == "real" or not has_real)]
        splits.append({"train": sorted(train), "val": sorted(val)})
    path = Path(preprocessed_dir) / "splits_final.json"
    write_text_atomic(path, json.dumps(splits, indent=2), overwrite=True)
    return path
