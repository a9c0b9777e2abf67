"""Paper 000's filtering of TotalSegmentator labels to the abdomen, next to the default grouping.

A synthetic TotalSegmentator map (real NIfTI files) holds a heart and a lung at the top of an
abdominal field of view: grouped, both are `other_organs`; filtered, the heart becomes body and
the lung air, by the same thresholding rule as any unlabelled voxel. Abdominal classes are kept.
"""

from __future__ import annotations

import numpy as np
import pytest

from LNSynthLib.anatomy.groups import (
    LABEL_FILTERS,
    LABEL_NAMES,
    dropped_classes,
    load_label_groups,
    totalseg_class_ids,
    totalseg_to_anatomy,
)
from LNSynthLib.cases import load_case
from LNSynthLib.prepare import prepare_case
from LNSynthLib.volumes.geometry import Geometry, Volume
from LNSynthLib.volumes.io import write_volume
from LNSynthLib.volumes.preprocess import PreprocessSettings

AIR, BODY, LIVER, OTHER = (LABEL_NAMES.index(n) for n in ("air", "body", "liver", "other_organs"))
LUNG = np.s_[6:16, 8:20, 8:20]
HEART = np.s_[6:16, 26:38, 26:38]
LIVER_BOX = np.s_[22:34, 8:20, 8:20]
NODE = np.s_[28:32, 30:34, 30:34]


def _synthetic_scan() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CT in HU, TotalSegmentator `total` ids and an LN mask, 40×48×48 voxels of 1 mm."""
    ids = totalseg_class_ids()
    ct = np.full((40, 48, 48), -1000.0, np.float32)
    ct[4:36, 4:44, 4:44] = 40.0                      # body outline, soft tissue
    ct[LUNG] = -850.0                                # lung base inside the body
    ct[LIVER_BOX] = 60.0
    ts = np.zeros(ct.shape, np.uint8)
    ts[LUNG], ts[HEART], ts[LIVER_BOX] = ids["lung_lower_lobe_left"], ids["heart"], ids["liver"]
    ln = np.zeros(ct.shape, np.uint8)
    ln[NODE] = 1
    return ct, ts, ln


def test_grouped_and_filtered_maps_of_a_heart_and_a_lung() -> None:
    ct, ts, _ = _synthetic_scan()
    grouped = totalseg_to_anatomy(ts, ct, "none")
    filtered = totalseg_to_anatomy(ts, ct, "abdominal")
    assert np.all(grouped[HEART] == OTHER) and np.all(grouped[LUNG] == OTHER)
    assert np.all(filtered[HEART] == BODY)           # soft tissue inside the body outline
    assert np.all(filtered[LUNG] == AIR)             # below the air threshold inside the body
    assert np.all(grouped[LIVER_BOX] == LIVER) and np.all(filtered[LIVER_BOX] == LIVER)
    outside = np.ones(ct.shape, bool)
    for box in (HEART, LUNG):
        outside[box] = False
    assert np.array_equal(grouped[outside], filtered[outside])   # only the dropped classes change


def test_filter_table_drops_only_non_abdominal_classes() -> None:
    assert LABEL_FILTERS == ("none", "abdominal") and dropped_classes("none") == ()
    dropped = set(dropped_classes("abdominal"))
    assert {"heart", "trachea", "thyroid_gland", "brain", "skull", "common_carotid_artery_left",
            "subclavian_artery_right", "lung_upper_lobe_left"} <= dropped
    groups = {g.name: set(g.classes) for g in load_label_groups()}
    for abdominal in ("liver", "spleen", "kidneys_adrenals", "pancreas", "small_bowel", "colon", "muscles"):
        assert not groups[abdominal] & dropped, abdominal
    assert {"aorta", "inferior_vena_cava", "vertebrae_L3", "sacrum"}.isdisjoint(dropped)
    with pytest.raises(ValueError, match="label_filter must be one of"):
        dropped_classes("thoracic")


@pytest.mark.parametrize("label_filter,heart,lung", [("none", OTHER, OTHER), ("abdominal", BODY, AIR)])
def test_prepare_records_and_applies_the_filter(tmp_path, label_filter: str, heart: int, lung: int) -> None:
    ct, ts, ln = _synthetic_scan()
    geometry = Geometry((1.0, 1.0, 1.0))
    paths = {name: write_volume(Volume(array, geometry), tmp_path / f"{name}.nii.gz")
             for name, array in (("ct", ct), ("seg_total", ts), ("ln", ln))}
    folder = prepare_case(paths["ct"], paths["ln"], tmp_path / "cases", "case_1", anatomy_path=paths["seg_total"],
                          anatomy_source="file", labels_kind="totalseg", label_filter=label_filter,
                          settings=PreprocessSettings.test(margin_mm=40.0))
    case = load_case(folder)
    assert case.meta["anatomy_source"] == "totalseg" and case.meta["anatomy_label_filter"] == label_filter
    assert case.meta["totalseg_model"] is None       # a given label file: no TotalSegmentator run
    box = [slice(a, b) for a, b in case.meta["crop_box_zyx"]]   # crop of the 1 mm source grid
    anatomy = np.zeros(ct.shape, np.uint8)
    anatomy[tuple(box)] = case.anatomy.array
    inner = np.s_[7:15, 11:19, 11:19]                # inside the lung box and the crop
    heart_inner = np.s_[7:15, 27:37, 27:37]
    assert np.all(anatomy[inner] == lung) and np.all(anatomy[heart_inner] == heart)


def test_paper_pipeline_prepares_raw_cases_filtered_with_full_resolution_totalsegmentator(tmp_path) -> None:
    """`lnsynth run --config paper --raw-cases`: the paper's filter and TotalSegmentator mode, not the defaults."""
    from LNSynthLib.pipeline import PipelineSettings, prepare_raw_cases

    paper, demo = PipelineSettings.paper(), PipelineSettings.demo()
    assert (paper.totalseg_full_resolution, paper.label_filter) == (True, "abdominal")
    assert (demo.totalseg_full_resolution, demo.label_filter) == (False, "none")
    ct, ts, ln = _synthetic_scan()
    raw = tmp_path / "raw" / "case_1"
    raw.mkdir(parents=True)
    for name, array in (("ct", ct), ("totalseg", ts), ("ln", ln)):
        write_volume(Volume(array, Geometry((1.0, 1.0, 1.0))), raw / f"{name}.nii.gz")
    prepared = prepare_raw_cases(tmp_path / "raw", tmp_path / "prepared", settings=paper)
    case = load_case(prepared / "case_1")
    assert case.meta["anatomy_label_filter"] == "abdominal"
    assert OTHER not in np.unique(case.anatomy.array)     # heart and lung dropped
