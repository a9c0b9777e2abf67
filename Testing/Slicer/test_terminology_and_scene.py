"""Standard terminology of every segment the module creates, and no node left behind by any action."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from LNSynthLib.anatomy.groups import LABEL_NAMES, LYMPH_NODE_SEGMENT_NAME

pytest.importorskip("slicer")

from LNSynthScene import mrml_bridge as mb  # noqa: E402
from LNSynthScene import terminology  # noqa: E402
from LNSynthScene.logic import ANATOMY_NAMES  # noqa: E402

EXCERPT = Path(__file__).parent / "data" / "slicer_terminology_excerpt.json"


def _slicer_entries() -> tuple[str, set[tuple[tuple[str, ...], tuple[str, ...]]]]:
    data = json.loads(EXCERPT.read_text(encoding="utf-8"))
    return data["context"], {(tuple(e["category"]), tuple(e["type"])) for e in data["entries"]}


def test_every_segment_name_has_a_code_from_slicers_dicom_master_list():
    context, entries = _slicer_entries()
    assert set(terminology.CODES) == {*LABEL_NAMES, LYMPH_NODE_SEGMENT_NAME}
    for name, (category, type_) in terminology.CODES.items():
        assert (category, type_) in entries, f"{name}: {category} / {type_} is not in Slicer's terminology"
        fields = terminology.entry(name).split("~")
        assert len(fields) == 7 and fields[0] == context
    assert terminology.LYMPH_NODE.split("~")[1:3] == ["SCT^123037004^Anatomical Structure", "SCT^59441001^Lymph node"]


def test_segments_carry_their_terminology_and_exports_leave_no_nodes(scene_case):
    logic, ct_node, anatomy_node, ln_node, _, added = scene_case
    assert added > 0
    scene = logic.scene
    segmentation = anatomy_node.GetSegmentation()
    for name in LABEL_NAMES:
        segment = segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName(name))
        assert segment.GetTerminology() == terminology.entry(name)
    ln_segment = ln_node.GetSegmentation().GetSegment(
        ln_node.GetSegmentation().GetSegmentIdBySegmentName(LYMPH_NODE_SEGMENT_NAME))
    assert ln_segment.GetTerminology() == terminology.LYMPH_NODE
    before = mb.node_classes(scene)
    ct = mb.node_to_volume(ct_node)
    labels = mb.segmentation_to_labels(anatomy_node, ANATOMY_NAMES, ct)
    mask = mb.segment_to_mask(ln_node, LYMPH_NODE_SEGMENT_NAME, ct)
    assert labels.array.max() > 0 and mask.array.sum() == added
    assert mb.node_classes(scene) == before, "an export left nodes in the scene (e.g. a _ColorTable)"


def test_each_in_process_action_adds_only_what_it_is_for(scene_case, tmp_path, example_totalseg):
    logic, ct_node, anatomy_node, ln_node, center, _ = scene_case
    scene = logic.scene

    def delta(action) -> Counter:
        before = mb.node_classes(scene)
        action()
        after = mb.node_classes(scene)
        after.subtract(before)
        return +after

    ct = mb.node_to_volume(ct_node)
    center_lps = tuple(ct.geometry.index_to_physical(np.asarray(center[::-1], float) + 8))
    assert delta(lambda: logic.add_sphere(ln_node, ct_node, center_lps, 4.0)) == Counter()
    assert delta(lambda: logic.export_inputs(ct_node, anatomy_node, ln_node, tmp_path / "inputs")) == Counter()
    assert delta(lambda: logic.anatomy_from_labels(mb.segmentation_to_labels(anatomy_node, ANATOMY_NAMES, ct),
                                                   "again")) == Counter(
        {"vtkMRMLSegmentationNode": 1, "vtkMRMLSegmentationDisplayNode": 1})
    assert delta(lambda: logic.lymph_node_segmentation(ct_node)) == Counter(
        {"vtkMRMLSegmentationNode": 1, "vtkMRMLSegmentationDisplayNode": 1})
    assert delta(lambda: logic.anatomy_from_totalseg_file(ct_node, example_totalseg)) == Counter(  # Group
        {"vtkMRMLSegmentationNode": 1, "vtkMRMLSegmentationDisplayNode": 1})
