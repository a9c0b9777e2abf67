"""Module logic on slicer-core with the real example CT: anatomy, painted node, inputs, results."""

from __future__ import annotations

import numpy as np
import pytest

from LNSynthLib.anatomy.groups import LABEL_NAMES, LYMPH_NODE_SEGMENT_NAME, totalseg_to_anatomy
from LNSynthLib.cases import Case, save_case
from LNSynthLib.errors import InputDataError
from LNSynthLib.volumes.geometry import Volume
from LNSynthLib.volumes.io import read_volume

pytest.importorskip("slicer")

from LNSynthScene import mrml_bridge as mb  # noqa: E402
from LNSynthScene.logic import SceneLogic  # noqa: E402


def test_anatomy_from_totalsegmentator_file_uses_library_grouping(scene_case, example_ct, example_totalseg):
    logic, ct_node, anatomy_node, *_ = scene_case
    assert mb.segment_names(anatomy_node) == LABEL_NAMES
    ct = read_volume(example_ct)
    expected = totalseg_to_anatomy(read_volume(example_totalseg).array.astype(np.int32), ct.array)
    got = mb.segmentation_to_labels(anatomy_node, dict(enumerate(LABEL_NAMES)), ct_node)
    assert np.array_equal(got.array, expected)
    assert len(np.unique(expected)) >= 10  # a real abdomen: most groups present
    air = anatomy_node.GetSegmentation().GetSegmentIdBySegmentName("air")
    assert not anatomy_node.GetDisplayNode().GetSegmentVisibility(air)


def test_painted_node_exports_on_the_ct_grid(scene_case, tmp_path):
    logic, ct_node, anatomy_node, ln_node, center_zyx, added = scene_case
    # 6 mm radius on a 3 mm grid: the 33 voxel centres within 2 voxels of the centre.
    assert added == 33
    paths = logic.export_inputs(ct_node, anatomy_node, ln_node, tmp_path / "inputs")
    ln = read_volume(paths["ln"])
    ct = read_volume(paths["ct"])
    assert ln.geometry.isclose(ct.geometry) and ln.shape == ct.shape
    assert ln.array.sum() == 33 and ln.array[tuple(center_zyx)] == 1
    anatomy = read_volume(paths["anatomy"]).array
    assert anatomy[tuple(center_zyx)] == 1 and anatomy.max() <= 13
    segment = ln_node.GetSegmentation().GetSegment(
        ln_node.GetSegmentation().GetSegmentIdBySegmentName(LYMPH_NODE_SEGMENT_NAME))
    assert "59441001" in segment.GetTerminology()


def test_empty_lymph_node_segment_is_refused_with_the_fix(core, tmp_path, example_ct, example_totalseg):
    logic = SceneLogic(core.scene, tmp_path / "work")
    ct_node = mb.load_volume_file(core.scene, example_ct, "ct")
    anatomy_node = logic.anatomy_from_totalseg_file(ct_node, example_totalseg)
    ln_node, _ = logic.lymph_node_segmentation(ct_node)
    with pytest.raises(InputDataError, match="paint at least one lymph node"):
        logic.export_inputs(ct_node, anatomy_node, ln_node, tmp_path / "inputs")


def test_synthetic_results_load_at_their_place_and_paste_into_the_ct(scene_case, tmp_path):
    """A synthetic case folder (a crop of the CT with a brighter node) loads where it was cut out."""
    logic, ct_node, anatomy_node, ln_node, center_zyx, _ = scene_case
    inputs = logic.export_inputs(ct_node, anatomy_node, ln_node, tmp_path / "inputs")
    ct, ln = read_volume(inputs["ct"]), read_volume(inputs["ln"])
    start = np.maximum(center_zyx - 6, 0)
    crop = tuple(slice(s, s + 12) for s in start)
    patch_geometry = ct.geometry.shifted(tuple(int(s) for s in start))
    patch_ct = ct.array[crop].astype(np.float32)
    patch_ln = ln.array[crop]
    patch_ct[patch_ln > 0] = 60.0
    root = tmp_path / "synthetic"
    save_case(Case("example_synt_0", Volume(patch_ct, patch_geometry), Volume(np.ones_like(patch_ln),
                                                                                 patch_geometry),
                   Volume(patch_ln, patch_geometry), {"synthetic": True}), root)
    loaded = logic.load_synthetic(root, ct_node, inputs["ln"])
    assert [c.ct.GetName() for c in loaded] == ["example CT synthetic 0", "example CT + synthetic 0"]
    synthetic, pasted = loaded
    assert mb.node_geometry(synthetic.ct).isclose(patch_geometry)
    ln_on_patch = mb.segment_to_mask(synthetic.segmentation, LYMPH_NODE_SEGMENT_NAME, synthetic.ct).array
    assert np.array_equal(ln_on_patch, patch_ln)
    # Pasted: the CT grid, the node's voxels carry the synthetic value, far away the CT is untouched.
    pasted_ct = mb.node_to_volume(pasted.ct)
    assert pasted_ct.geometry.isclose(ct.geometry)
    assert np.allclose(pasted_ct.array[ln.array > 0], 60.0, atol=1.0)
    far = np.ones(ct.shape, bool)
    far[tuple(slice(max(s - 1, 0), s + 13) for s in start)] = False
    assert np.array_equal(pasted_ct.array[far], ct.array[far].astype(np.float32))
    pasted_ln = mb.segment_to_mask(pasted.segmentation, LYMPH_NODE_SEGMENT_NAME, pasted.ct).array
    assert np.array_equal(pasted_ln, ln.array)


def test_synthesis_needs_a_checkpoint(scene_case, tmp_path):
    from LNSynthScene.logic import SynthesisSettings

    logic, ct_node, anatomy_node, ln_node, *_ = scene_case
    with pytest.raises(InputDataError, match="checkpoint not found"):
        logic.start_synthesis(ct_node, anatomy_node, ln_node, SynthesisSettings(tmp_path / "none.pt"))
    assert not any((tmp_path / "work").glob("synthesis-*"))


def test_quality_control_setting_reaches_the_sample_and_export_command_lines(scene_case, tmp_path):
    from LNSynthScene.logic import SynthesisSettings

    logic, ct_node, anatomy_node, ln_node, *_ = scene_case
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"only the file's presence is checked before the job starts")
    assert SynthesisSettings(checkpoint).qc is True                       # the panel's default: on
    for qc in (True, False):
        chain = logic.start_synthesis(ct_node, anatomy_node, ln_node, SynthesisSettings(checkpoint, qc=qc))
        chain.cancel()
        sample = chain.steps[1].args
        assert sample[0] == "sample" and ("--qc" in sample) is qc
    for qc, flag in ((True, "--qc"), (False, "--no-qc")):
        chain = logic.start_nnunet_export(tmp_path / "project", tmp_path / "cases", qc=qc)
        chain.cancel()
        assert chain.steps[0].args[:2] == ["nnunet", "export"] and chain.steps[0].args[-1] == flag


def test_anatomy_groups_survive_a_terminology_edit_and_a_foreign_segmentation_is_refused(scene_case, tmp_path):
    """The anatomy segments carry their label in a tag (vtkSegment::SetTag) and keep their names when the user
    edits the terminology; a segmentation lacking groups is refused naming them (was: silently partial)."""
    logic, ct_node, anatomy_node, ln_node, _, _ = scene_case
    segmentation = anatomy_node.GetSegmentation()
    kidneys = segmentation.GetSegment(mb.find_segment(segmentation, "kidneys_adrenals"))
    assert not kidneys.GetNameAutoGenerated() and not kidneys.GetColorAutoGenerated()
    before = read_volume(logic.export_inputs(ct_node, anatomy_node, ln_node, tmp_path / "a")["anatomy"]).array
    assert (before == LABEL_NAMES.index("kidneys_adrenals")).any()
    kidneys.SetName("Kidney")   # what picking "Kidney" in the terminology dialog or renaming the segment leaves
    after = read_volume(logic.export_inputs(ct_node, anatomy_node, ln_node, tmp_path / "b")["anatomy"]).array
    assert np.array_equal(before, after)
    # Another tool's segmentation (names only, some groups absent): refused, the missing groups named.
    foreign = mb.new_segmentation_node(ct_node.GetScene(), "TotalSegmentator extension result")
    ct = mb.node_to_volume(ct_node)
    for name in ("body", "bones"):
        mb.set_segment_mask(foreign, name, Volume(before == LABEL_NAMES.index(name), ct.geometry))
    with pytest.raises(InputDataError, match="has no segment for .*kidneys_adrenals") as refused:
        logic.export_inputs(ct_node, foreign, ln_node, tmp_path / "c")
    missing = refused.value.problem.split("has no segment for ")[1].split(", ")
    assert set(missing) == set(LABEL_NAMES[1:]) - {"body", "bones"}   # value 0 (air) needs no segment
