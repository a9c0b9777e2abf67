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
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from LNSynthLib.atomic import (
    OUTPUT_MARKER,
    check_removable,
    mark_output_folder,
    remove_output_folder,
    write_text_atomic,
)
from LNSynthLib.cases import CT_FILE, LN_FILE, META_FILE, is_synthetic, list_cases, read_meta
from LNSynthLib.errors import InputDataError, OutputExistsError
from LNSynthLib.jobs.progress import Progress, emit_event
from LNSynthLib.output_claims import claim_output_folder
from LNSynthLib.segmentation.export_inputs import check_made_from, export_content
from LNSynthLib.segmentation.leakage import check_prepared_disjoint
from LNSynthLib.segmentation.paste import DEFAULT_BLEND_MM, paste_patch
from LNSynthLib.volumes.geometry import Volume
from LNSynthLib.volumes.io import read_volume, write_volume
from LNSynthLib.volumes.preprocess import TEST_MARGIN_MM, TRAIN_MARGIN_MM

STRATEGIES = ("real", "synt", "real+synt")
MANIFEST = "lnsynth_export.json"
PENDING = "lnsynth_export.partial.json"   # in the folder being built: the manifest it is being built for
STAMP_FILE = "lnsynth_export_stamp.json"  # in preprocessed / training folders: the export they came from
EXPORT_NAMES = ("imagesTr", "labelsTr", "imagesTs", "labelsTs", "dataset.json")


@dataclass(frozen=True)
class ExportSettings:
    strategy: str = "real+synt"
    synt_per_case: int | None = 10   # None: every synthetic case of each source case
    paste_into_ct: bool = False
    blend_mm: float = DEFAULT_BLEND_MM
    train_margin_mm: float | None = TRAIN_MARGIN_MM  # None: use the prepared case as it is
    test_margin_mm: float | None = TEST_MARGIN_MM
    qc: bool = True      # leave out the synthetic cases quality control rejected (qc.json, when there is one)

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


def synthetic_by_source(synthetic_root: str | Path) -> dict[str, list[Path]]:
    """Synthetic case folders grouped by their `source_case` (sorted by name within a group)."""
    groups: dict[str, list[Path]] = {}
    for folder in list_cases(synthetic_root):
        meta = read_meta(folder)
        if not meta.get("synthetic"):
            continue  # a real case next to the synthetic ones
        source = meta.get("source_case")
        if not source:
            raise InputDataError("synthetic case.json lacks `source_case`", path=folder / META_FILE,
                                 fix="give the folder written by `lnsynth sample` as the synthetic cases")
        groups.setdefault(str(source), []).append(folder)
    return groups


def select_training_items(real_root: str | Path, synthetic_root: str | Path | None, settings: ExportSettings,
                          rejected: set[str] | None = None) -> list[TrainingItem]:
    """The training cases of a strategy: real cases and/or `synt_per_case` synthetic cases per real case.

    `rejected`: the synthetic cases quality control rejected, left out (the caller reads the verdicts).
    """
    # A folder may hold real and synthetic cases side by side (e.g. a Slicer session); split them.
    listed = list_cases(real_root)
    real = [f for f in listed if not is_synthetic(f)]
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
        rejected = rejected or set()
        for source in real:
            found = groups.get(source.name, [])
            if wanted is not None and len(found) < wanted:
                raise InputDataError(f"only {len(found)} synthetic case(s) for {source.name}, "
                                     f"{settings.synt_per_case} requested", path=synthetic_root,
                                     fix=f"sample more (`lnsynth sample --samples-per-case {settings.synt_per_case}`) "
                                         "or lower --synt-per-case")
            passed = [f for f in found if f.name not in rejected]
            check_made_from(passed[:wanted], source)   # by content: ids repeat across folders
            items += [TrainingItem(f.name, f, kind, source.name) for f in passed[:wanted]]
        if rejected and not any(i.kind != "real" for i in items):
            raise InputDataError("quality control rejected every synthetic case of these real cases",
                                 path=Path(synthetic_root),
                                 fix="read the reasons in qc.json; train LN-DDPM longer, or export with --no-qc")
        if not any(i.kind != "real" for i in items):
            raise InputDataError("no synthetic case belongs to these real cases", path=synthetic_root,
                                 fix="sample from these cases first (`lnsynth sample --cases` with the same folder)")
    return items


def qc_summary(real_root: str | Path, synthetic_root: str | Path | None, settings: ExportSettings,
               items: list[TrainingItem], rejected: set[str] | None) -> str | None:
    """One line for the export's log: how many synthetic cases quality control dropped (None: QC not in play)."""
    if settings.strategy == "real":
        return None
    root = synthetic_root
    if root is None:   # synthetic cases next to the real ones
        root = real_root
    if rejected is None or not settings.qc:
        return None if settings.qc else "QC off: every synthetic case may be exported (--no-qc)"
    sources = {i.source_case for i in items}
    groups = synthetic_by_source(root)
    dropped = sorted(f.name for s, found in groups.items() if s in sources for f in found if f.name in rejected)
    short = sorted(s for s in sources if settings.synt_per_case is not None
                   and sum(i.source_case == s and i.kind != "real" for i in items) < settings.synt_per_case)
    line = f"QC ({Path(root)}): dropped {len(dropped)} rejected synthetic case(s)"
    if short:
        line += f"; {len(short)} real case(s) got fewer than {settings.synt_per_case} synthetic cases"
    return line


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
                   overwrite: bool = False, rejected: set[str] | None = None) -> Path:
    """Write `dataset_dir` (imagesTr, labelsTr, optional imagesTs/labelsTs, dataset.json, lnsynth_export.json).

    Built aside in a hidden sibling folder and swapped in only when complete, so a failed export
    (or one with --overwrite) never damages the dataset that is there, and never leaves stale cases
    in it. An interrupted export resumes from the sibling folder when cases and settings are the
    same. An existing complete export with other settings is refused unless `overwrite`.
    `rejected`: the synthetic cases quality control rejected (`qc.verdicts.export_rejections`), left out.
    """
    settings = settings or ExportSettings()
    real_root, dataset_dir = Path(real_root), Path(dataset_dir)
    if test_root is not None:
        check_prepared_disjoint(real_root, test_root)
    rejected = rejected if settings.qc else None
    items = select_training_items(real_root, synthetic_root, settings, rejected)
    qc_note = qc_summary(real_root, synthetic_root, settings, items, rejected)
    if qc_note:
        emit_event("nnunet_export", message=qc_note)
    test = list_cases(test_root) if test_root is not None else []
    manifest = {"settings": asdict(settings), "real_root": str(real_root.resolve()),
                "synthetic_root": None if synthetic_root is None else str(Path(synthetic_root).resolve()),
                "test_root": None if test_root is None else str(Path(test_root).resolve()),
                "training": [{"case_id": i.case_id, "kind": i.kind, "source_case": i.source_case} for i in items],
                "test": [f.name for f in test], "content": export_content(items, real_root, test)}
    if _check_target(dataset_dir, manifest, overwrite):
        return dataset_dir
    check_removable(dataset_dir)   # only a dataset an export wrote (its marker) is ever replaced
    claim = claim_output_folder(dataset_dir.parent, manifest["content"], "lnsynth nnunet export", exclusive=True,
                                output=dataset_dir.name)   # one export into a dataset at a time
    staging = _staging_folder(dataset_dir, manifest)
    dirs = {k: staging / k for k in ("imagesTr", "labelsTr", "imagesTs", "labelsTs")}
    with Progress("nnunet_export", len(items) + len(test)) as progress:
        for item in items:
            image = dirs["imagesTr"] / f"{item.case_id}_0000.nii.gz"
            label = dirs["labelsTr"] / f"{item.case_id}.nii.gz"
            if not (image.exists() and label.exists()):
                _write_pair(*training_pair(item, real_root, settings), image, label)
            progress.update()
        for folder in test:
            image = dirs["imagesTs"] / f"{folder.name}_0000.nii.gz"
            label = dirs["labelsTs"] / f"{folder.name}.nii.gz"
            if not (image.exists() and label.exists()):
                ct, ln = _crop_to_ln(read_volume(folder / CT_FILE), read_volume(folder / LN_FILE),
                                     settings.test_margin_mm)
                _write_pair(ct, ln, image, label)
            progress.update()
    write_text_atomic(staging / MANIFEST, json.dumps(manifest, indent=2), overwrite=True)
    write_text_atomic(staging / "dataset.json", json.dumps(dataset_json(len(items)), indent=2), overwrite=True)
    (staging / PENDING).unlink()
    _swap_in(staging, dataset_dir)
    claim.release()
    return dataset_dir


def _check_target(dataset_dir: Path, manifest: dict[str, Any], overwrite: bool) -> bool:
    """True when `dataset_dir` already is this export; raise when it may not be replaced."""
    if (dataset_dir / "dataset.json").exists():
        manifest_path = dataset_dir / MANIFEST
        if manifest_path.exists():
            done = json.loads(manifest_path.read_text(encoding="utf-8"))
            # the same export: the same cases by content (training, test, pasted sources), settings and code
            if all(done.get(key) == manifest[key] for key in ("training", "settings", "test", "content")):
                return True
        if not overwrite:
            raise OutputExistsError("an nnU-Net dataset with other cases or settings is already here",
                                    path=dataset_dir, fix="choose another dataset id/folder or pass --overwrite")
    elif dataset_dir.exists() and not overwrite:
        # An incomplete folder (no dataset.json): replaced when it only holds what an export writes.
        foreign = [p.name for p in dataset_dir.iterdir() if p.name not in (*EXPORT_NAMES, MANIFEST, OUTPUT_MARKER)]
        if foreign:
            raise OutputExistsError(f"the dataset folder holds files an export does not write ({foreign[0]}, ...)",
                                    path=dataset_dir, fix="choose another dataset id/folder or pass --overwrite")
    return False


def _staging_folder(dataset_dir: Path, manifest: dict[str, Any]) -> Path:
    """Hidden sibling to build in; kept from an interrupted export of the same cases and settings."""
    staging = dataset_dir.with_name(f".{dataset_dir.name}.partial")
    pending = staging / PENDING
    if staging.exists() and not (pending.exists() and json.loads(pending.read_text(encoding="utf-8")) == manifest):
        remove_output_folder(staging)
    staging.mkdir(parents=True, exist_ok=True)
    mark_output_folder(staging, "lnsynth nnunet export")
    write_text_atomic(pending, json.dumps(manifest, indent=2), overwrite=True)
    return staging


def _swap_in(staging: Path, dataset_dir: Path) -> None:
    """Rename the finished folder onto `dataset_dir`; the previous one is removed only afterwards."""
    if not dataset_dir.exists():
        os.replace(staging, dataset_dir)
        return
    old = dataset_dir.with_name(f".{dataset_dir.name}.old-{os.getpid()}")
    os.replace(dataset_dir, old)
    os.replace(staging, dataset_dir)
    shutil.rmtree(old)


def export_stamp(dataset_dir: str | Path) -> str:
    """Fingerprint of one export (its dataset.json and manifest): what was planned or trained from it."""
    import hashlib

    digest = hashlib.sha256()
    for name in ("dataset.json", MANIFEST):
        path = Path(dataset_dir) / name
        digest.update(path.read_bytes() if path.exists() else b"-")
    return digest.hexdigest()


def stamp_state(folder: str | Path, dataset_dir: str | Path) -> bool | None:
    """Whether `folder` (preprocessed data, a training fold) was made from this export; None: no stamp."""
    path = Path(folder) / STAMP_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("export") == export_stamp(dataset_dir)


def write_stamp(folder: str | Path, dataset_dir: str | Path) -> None:
    write_text_atomic(Path(folder) / STAMP_FILE, json.dumps({"export": export_stamp(dataset_dir),
                                                            "dataset": str(Path(dataset_dir).resolve())}),
                      overwrite=True)


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
