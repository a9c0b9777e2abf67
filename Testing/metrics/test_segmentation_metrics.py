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
    # A missed case counts: Precision 0, ASSD the image diagonal (5 mm sides -> sqrt(75) mm), both directions.
    assert sm.precision(empty, one) == 0.0 and sm.recall(empty, one) == 0.0
    assert sm.precision(empty, empty) == 1.0 and math.isnan(sm.recall(empty, empty))
    assert sm.assd_mm(empty, one) == pytest.approx(math.sqrt(75))
    assert sm.assd_mm(one, empty, form="pooled") == pytest.approx(math.sqrt(75))


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


def test_case_metrics_count_a_missed_case():
    gt = _cube((10, 10, 10), (2, 2, 2), 4)
    case_a = sm.segmentation_metrics(gt, gt, spacing_xyz=(1.0, 1.0, 2.0))
    case_b = sm.segmentation_metrics(np.zeros_like(gt), gt, spacing_xyz=(1.0, 1.0, 2.0))
    assert case_a["DSC"] == 1.0 and case_a["ASSD"] == 0.0 and case_a["NodeRecall"] == 1.0
    assert not case_a["empty_prediction"] and case_b["empty_prediction"]
    # Extent 10 x 10 x 20 mm: diagonal sqrt(100 + 100 + 400) = sqrt(600) mm.
    assert case_b["Precision"] == 0.0 and case_b["ASSD"] == pytest.approx(math.sqrt(600))
    summary = sm.summarize({"a": case_a, "b": case_b})
    assert summary["DSC"] == pytest.approx(0.5)
    assert summary["Precision"] == pytest.approx(0.5)            # (1 + 0) / 2, the missed case is not skipped
    assert summary["ASSD"] == pytest.approx(math.sqrt(600) / 2)  # (0 + diagonal) / 2
    assert summary["empty_predictions"] == 1 and summary["cases"] == 2 and summary["assd_form"] == "directed-means"
    assert summary["NodeRecall"] == 0.5 and summary["nodes_total"] == 2
    with pytest.raises(ValueError):
        sm.segmentation_metrics(np.zeros((2, 2, 2)), gt)


def test_node_recall_pooled_and_per_case_mean():
    # Case 1: its one node found (1/1). Case 2: one of three nodes found (1/3). Case 3: no nodes, no recall.
    one = np.zeros((8, 8, 30), np.uint8)
    one[2:4, 2:4, 2:4] = 1
    three = one.copy()
    three[2:4, 2:4, 12:14] = 1
    three[2:4, 2:4, 22:24] = 1
    none = np.zeros_like(one)
    cases = {"c1": sm.segmentation_metrics(one, one), "c2": sm.segmentation_metrics(one, three),
             "c3": sm.segmentation_metrics(none, none)}
    assert math.isnan(cases["c3"]["NodeRecall"]) and not cases["c3"]["empty_prediction"]
    summary = sm.summarize(cases)
    assert summary["NodeRecall"] == pytest.approx(2 / 4)                       # pooled: nodes found / all nodes
    assert summary["NodeRecall_case_mean"] == pytest.approx((1 + 1 / 3) / 2)   # cases with nodes only
    assert summary["nodes_found"] == 2 and summary["nodes_total"] == 4 and summary["empty_predictions"] == 0


def test_assd_directed_means_and_pooled_differ_when_surfaces_differ_in_size():
    # a: one voxel at z=1; b: two voxels at z=4, 5 (same y, x). Every voxel is surface. z spacing 2 mm.
    # a->b: 3 slices = 6 mm. b->a: 6 mm and 8 mm, mean 7 mm.
    # directed means = (6 + 7) / 2 = 6.5 mm; pooled = (6 + 6 + 8) / 3 = 20/3 mm.
    a = np.zeros((8, 4, 4), np.uint8)
    b = a.copy()
    a[1, 2, 2] = 1
    b[4:6, 2, 2] = 1
    spacing = (0.7, 0.7, 2.0)
    assert sm.assd_mm(a, b, spacing) == pytest.approx(6.5)
    assert sm.assd_mm(a, b, spacing, form="directed-means") == pytest.approx(6.5)
    assert sm.assd_mm(a, b, spacing, form="pooled") == pytest.approx(20 / 3)
    # The same layout along x uses the x spacing 0.7: directed means (2.1 + 2.45) / 2, pooled (2.1 + 2.1 + 2.8) / 3.
    c, d = np.moveaxis(a, 0, 2), np.moveaxis(b, 0, 2)
    assert sm.assd_mm(c, d, spacing) == pytest.approx((2.1 + 2.45) / 2)
    assert sm.assd_mm(c, d, spacing, form="pooled") == pytest.approx(7.0 / 3)
    with pytest.raises(ValueError):
        sm.assd_mm(a, b, spacing, form="hausdorff")


def test_assd_of_a_cube_shell_against_its_centre_by_hand():
    # gt: a 3³ cube, whose surface is the 26-voxel shell (the centre is eroded); pred: the centre voxel alone.
    gt = _cube((7, 7, 7), (2, 2, 2), 3)
    pred = np.zeros_like(gt)
    pred[3, 3, 3] = 1
    # Isotropic 1 mm: pred->gt = 1 (a face neighbour). gt->pred: 6 faces at 1, 12 edges at sqrt(2), 8 corners at
    # sqrt(3).
    shell = 6 + 12 * math.sqrt(2) + 8 * math.sqrt(3)
    assert sm.assd_mm(pred, gt) == pytest.approx((1 + shell / 26) / 2)
    assert sm.assd_mm(pred, gt, form="pooled") == pytest.approx((1 + shell) / 27)
    # Anisotropic (x 1, y 1, z 2 mm): faces 2 at 2 (z) and 4 at 1; edges 4 at sqrt(2) (in-plane) and 8 at sqrt(5);
    # corners 8 at sqrt(6). pred->gt is still 1 (an in-plane face).
    shell = 2 * 2 + 4 * 1 + 4 * math.sqrt(2) + 8 * math.sqrt(5) + 8 * math.sqrt(6)
    assert sm.assd_mm(pred, gt, (1.0, 1.0, 2.0)) == pytest.approx((1 + shell / 26) / 2)
    assert sm.assd_mm(pred, gt, (1.0, 1.0, 2.0), form="pooled") == pytest.approx((1 + shell) / 27)
