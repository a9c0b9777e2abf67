"""Segmentation metrics against cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from LNSynthLib.metrics import segmentation as sm


def _cube(shape, start, size):
    a = np.zeros(shape, dtype=np.uint8)
    z, y, x = start
    a[z:z + size, y:y + size, x:x + size] = 1
    return a


def test_overlap_metrics_of_shifted_cubes():
    # 4³ cubes shifted by one voxel along x: overlap 4*4*3 = 48, each 64 voxels.
    gt = _cube((10, 10, 10), (2, 2, 2), 4)
    pred = _cube((10, 10, 10), (2, 2, 3), 4)
    assert sm.dice(pred, gt) == pytest.approx(2 * 48 / 128)
    assert sm.iou(pred, gt) == pytest.approx(48 / 80)
    assert sm.recall(pred, gt) == pytest.approx(48 / 64)
    assert sm.precision(pred, gt) == pytest.approx(48 / 64)


def test_recall_and_precision_differ_for_a_larger_prediction():
    gt = _cube((12, 12, 12), (4, 4, 4), 2)     # 8 voxels inside
    pred = _cube((12, 12, 12), (3, 3, 3), 4)   # 64 voxels, containing gt
    assert sm.recall(pred, gt) == 1.0
    assert sm.precision(pred, gt) == pytest.approx(8 / 64)
    assert sm.dice(pred, gt) == pytest.approx(16 / 72)


def test_empty_masks():
    empty = np.zeros((5, 5, 5), np.uint8)
    one = empty.copy()
    one[2, 2, 2] = 1
    assert sm.dice(empty, empty) == 1.0 and sm.assd_mm(empty, empty) == 0.0
    assert sm.dice(empty, one) == 0.0
    assert math.isnan(sm.precision(empty, one)) and sm.recall(empty, one) == 0.0
    assert math.isnan(sm.assd_mm(empty, one))


def test_assd_uses_anisotropic_spacing():
    # Single voxels three slices apart along z; z spacing 2.5 mm -> 7.5 mm both ways.
    a = np.zeros((8, 4, 4), np.uint8)
    b = a.copy()
    a[1, 2, 2] = 1
    b[4, 2, 2] = 1
    assert sm.assd_mm(a, b, spacing_xyz=(0.7, 0.7, 2.5)) == pytest.approx(7.5)
    # The same offset along x uses the x spacing.
    c = np.zeros((4, 4, 8), np.uint8)
    d = c.copy()
    c[2, 2, 1] = 1
    d[2, 2, 4] = 1
    assert sm.assd_mm(c, d, spacing_xyz=(0.7, 0.7, 2.5)) == pytest.approx(2.1)


def test_assd_of_shifted_slabs_by_hand():
    # Two 2-voxel-thick slabs covering the whole x-y plane, one voxel apart in z (spacing z = 3 mm).
    # Surfaces are the whole slabs (the array border counts as outside). a = z 2,3; b = z 3,4.
    # a->b: z=2 is 3 mm from z=3, z=3 is on b (0); b->a: z=3 (0), z=4 is 3 mm from z=3. Mean = 6 / 4 = 1.5 mm.
    a = np.zeros((8, 3, 3), np.uint8)
    b = a.copy()
    a[2:4] = 1
    b[3:5] = 1
    assert sm.assd_mm(a, b, spacing_xyz=(1.0, 1.0, 3.0)) == pytest.approx(1.5)


def test_node_recall_boundary_at_dsc_point_one():
    # Ground-truth node: a line of 10 voxels. A predicted line of 10 voxels overlapping 1 voxel
    # has DSC = 2*1/20 = 0.1 exactly: NOT detected (the paper needs DSC > 0.1). Overlap 2 -> 0.2: detected.
    gt = np.zeros((3, 3, 40), np.uint8)
    gt[1, 1, 10:20] = 1
    touch_one = np.zeros_like(gt)
    touch_one[1, 1, 19:29] = 1
    touch_two = np.zeros_like(gt)
    touch_two[1, 1, 18:28] = 1
    assert sm.node_detection(touch_one, gt) == (0, 1)
    assert sm.node_detection(touch_two, gt) == (1, 1)


def test_node_recall_counts_each_node_and_ignores_merged_large_components():
    gt = np.zeros((10, 10, 30), np.uint8)
    gt[2:5, 2:5, 2:5] = 1      # node A, 27 voxels
    gt[2:5, 2:5, 20:23] = 1    # node B, 27 voxels
    pred = np.zeros_like(gt)
    pred[2:5, 2:5, 2:5] = 1    # A exactly
    assert sm.node_detection(pred, gt) == (1, 2)
    assert sm.node_recall(pred, gt) == 0.5
    # One huge component covering everything overlaps each node with DSC 54/3027 < 0.1: none found.
    huge = np.ones_like(gt)
    assert sm.node_detection(huge, gt) == (0, 2)


def test_case_metrics_and_pooled_node_recall():
    gt = _cube((10, 10, 10), (2, 2, 2), 4)
    case_a = sm.segmentation_metrics(gt, gt)
    case_b = sm.segmentation_metrics(np.zeros_like(gt), gt)
    assert case_a["DSC"] == 1.0 and case_a["ASSD"] == 0.0 and case_a["NodeRecall"] == 1.0
    summary = sm.summarize({"a": case_a, "b": case_b})
    assert summary["DSC"] == pytest.approx(0.5)
    assert summary["ASSD"] == 0.0            # NaN of the empty prediction is skipped
    assert summary["NodeRecall"] == 0.5 and summary["nodes_total"] == 2
    with pytest.raises(ValueError):
        sm.segmentation_metrics(np.zeros((2, 2, 2)), gt)
