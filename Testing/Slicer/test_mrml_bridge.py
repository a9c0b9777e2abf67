"""MRML bridge on real MRML nodes (slicer-core): exact round trips, oblique grids, named segments."""

from __future__ import annotations

import numpy as np
import pytest

from LNSynthLib.cases import Case, save_case
from LNSynthLib.volumes.geometry import Geometry, Volume
from LNSynthLib.volumes.io import read_volume, write_volume

pytest.importorskip("slicer")

from LNSynthScene import mrml_bridge as mb  # noqa: E402


def _rotation(ax: float, ay: float, az: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


OBLIQUE = Geometry((0.7, 1.3, 2.9), (-12.25, 40.5, 101.125), tuple(_rotation(0.3, -0.5, 1.1).ravel()))


def test_volume_round_trip_oblique_is_exact(core):
    rng = np.random.default_rng(0)
    array = rng.normal(0, 300, (7, 9, 11)).astype(np.float32)
    node = mb.volume_to_node(Volume(array, OBLIQUE), core.scene, "ct")
    back = mb.node_to_volume(node)
    assert back.array.dtype == np.float32 and np.array_equal(back.array, array)
    assert back.geometry == OBLIQUE  # bit-exact spacing, origin and direction


def test_ijk_to_ras_matches_lps_geometry(core):
    node = mb.volume_to_node(Volume(np.zeros((4, 5, 6), np.int16), OBLIQUE), core.scene, "ct")
    import vtk

    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    ijk = np.array([[0, 0, 0], [5, 4, 3], [2.5, 1.0, 0.5]])
    for point in ijk:
        ras = np.array(matrix.MultiplyPoint([*point, 1.0]))[:3]
        lps = OBLIQUE.index_to_physical(point)
        np.testing.assert_allclose(ras, lps * np.array([-1, -1, 1]), atol=1e-9)


def test_file_loaded_by_slicer_reader_matches_library(core, tmp_path):
    array = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    path = write_volume(Volume(array, OBLIQUE), tmp_path / "ct.nii.gz")
    node = mb.load_volume_file(core.scene, path)
    back = mb.node_to_volume(node)
    assert np.array_equal(back.array, array)
    assert back.geometry.isclose(read_volume(path).geometry, tol=1e-5)
    assert node.GetStorageNode() is not None


def test_segmentation_round_trip_with_named_segments(core):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 5, (6, 8, 10)).astype(np.uint8)
    names = {1: "liver", 2: "spleen", 3: "fat", 4: "muscle", 5: "empty organ"}
    node = mb.labels_to_segmentation(Volume(labels, OBLIQUE), names, core.scene, "anatomy")
    assert mb.segment_names(node) == ["liver", "spleen", "fat", "muscle", "empty organ"]
    # The source representation is Slicer's own labelmap representation, by the converter's name.
    import slicer

    labelmap = slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName()
    assert node.GetSegmentation().GetSourceRepresentationName() == labelmap == mb.LABELMAP
    back = mb.segmentation_to_labels(node, names, OBLIQUE, labels.shape)
    assert np.array_equal(back.array, labels) and back.geometry == OBLIQUE
    # Different label values on export: mapping goes by name, not by position.
    renamed = mb.segmentation_to_labels(node, {7: "spleen", 9: "liver"}, Volume(labels, OBLIQUE))
    expected = np.where(labels == 2, 7, np.where(labels == 1, 9, 0))
    assert np.array_equal(renamed.array, expected)


def test_anatomy_map_with_named_value_zero_round_trips(core):
    """The anatomy map names value 0 (`air`): it becomes a segment and still round-trips exactly."""
    from LNSynthLib.anatomy.groups import LABEL_NAMES, NUM_LABELS

    rng = np.random.default_rng(2)
    labels = rng.integers(0, NUM_LABELS, (5, 6, 7)).astype(np.uint8)
    names = dict(enumerate(LABEL_NAMES))
    node = mb.labels_to_segmentation(Volume(labels, OBLIQUE), names, core.scene, "anatomy")
    assert mb.segment_names(node) == LABEL_NAMES
    air = mb.segment_to_mask(node, LABEL_NAMES[0], OBLIQUE, labels.shape).array
    assert np.array_equal(air, (labels == 0).astype(np.uint8))
    back = mb.segmentation_to_labels(node, names, OBLIQUE, labels.shape)
    assert np.array_equal(back.array, labels)


def test_lymph_node_segment_has_standard_terminology(core):
    mask = np.zeros((5, 5, 5), np.uint8)
    mask[1:4, 2, 2] = 1
    node = mb.new_segmentation_node(core.scene, "ln")
    segment_id = mb.set_segment_mask(node, "lymph node", Volume(mask, OBLIQUE), mb.LYMPH_NODE_TERMINOLOGY)
    segment = node.GetSegmentation().GetSegment(segment_id)
    assert "SCT^59441001^Lymph node" in segment.GetTerminology()
    back = mb.segment_to_mask(node, "lymph node", OBLIQUE, mask.shape)
    assert np.array_equal(back.array, mask)
    with pytest.raises(Exception, match="no segment named 'tumour'"):
        mb.segment_to_mask(node, "tumour", OBLIQUE, mask.shape)


def test_segment_resampled_onto_another_grid(core):
    """A mask drawn on a coarse grid lands on the same physical voxels of a finer, shifted grid."""
    coarse = Geometry((2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
    mask = np.zeros((6, 6, 6), np.uint8)
    mask[2:4, 2:4, 2:4] = 1
    node = mb.new_segmentation_node(core.scene, "ln")
    mb.set_segment_mask(node, "lymph node", Volume(mask, coarse))
    fine = Geometry((1.0, 1.0, 1.0), (2.0, 2.0, 2.0))
    out = mb.segment_to_mask(node, "lymph node", fine, (10, 10, 10)).array
    # Coarse voxels 2..3 cover physical 3..7 mm; fine voxel i sits at 2 + i mm: indices 1..4.
    idx = np.argwhere(out)
    assert out.sum() == 64 and idx.min() == 1 and idx.max() == 4


def test_case_folder_loads_at_physical_place(core, tmp_path):
    geometry = Geometry((1.0, 1.0, 1.0), (-30.0, 12.5, 80.0), tuple(_rotation(0.0, 0.0, 0.2).ravel()))
    ct = np.full((8, 8, 8), -100, np.float32)
    ln = np.zeros((8, 8, 8), np.uint8)
    ln[3:5, 3:5, 3:5] = 1
    ct[ln > 0] = 40
    anatomy = np.ones((8, 8, 8), np.uint8)
    case = Case("p1_synt_0", Volume(ct, geometry), Volume(anatomy, geometry), Volume(ln, geometry),
                {"synthetic": True})
    folder = save_case(case, tmp_path)
    nodes = mb.load_case_folder(core.scene, folder, {1: "fat"}, "lymph node")
    assert mb.node_geometry(nodes.ct).isclose(geometry, tol=1e-6)
    assert np.array_equal(mb.node_to_volume(nodes.ct).array, ct)
    assert sorted(mb.segment_names(nodes.segmentation)) == ["fat", "lymph node"]
    back = mb.segment_to_mask(nodes.segmentation, "lymph node", nodes.ct)
    assert np.array_equal(back.array, ln)


def test_transformed_node_is_refused(core):
    node = mb.volume_to_node(Volume(np.zeros((2, 2, 2), np.int16), OBLIQUE), core.scene, "ct")
    transform = core.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    node.SetAndObserveTransformNodeID(transform.GetID())
    with pytest.raises(Exception, match="Harden transform"):
        mb.node_to_volume(node)
