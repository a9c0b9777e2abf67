"""The module's self-test flow (what `LNSynthTest` runs inside Slicer) on a slicer-core scene."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("slicer")

from LNSynthModuleLib.selftest import run_flow  # noqa: E402


def test_self_test_flow_paints_trains_synthesizes_and_finds_the_node(core, tmp_path):
    started = time.monotonic()
    report = run_flow(core.scene, tmp_path / "work", wait=lambda chain: chain.wait(timeout_s=900),
                      progress=print)
    print(f"self-test flow: {report} in {time.monotonic() - started:.0f} s")
    assert report.painted_voxels > 500  # a 6 mm ball at 1 mm
    assert report.synthetic_cases == 1
    assert report.checkpoint.endswith(".pt")
    assert report.dice > 0.8
    # Each action adds exactly the nodes it is for: no export helpers, colour tables or labelmaps left.
    volume = {"vtkMRMLScalarVolumeNode": 1, "vtkMRMLScalarVolumeDisplayNode": 1}
    segmentation = {"vtkMRMLSegmentationNode": 1, "vtkMRMLSegmentationDisplayNode": 1}
    assert report.added_nodes == {
        "load CT": volume, "anatomy": segmentation, "paint": segmentation, "training case": {},
        "LN-DDPM training": {}, "synthesis": {**volume, **segmentation},
    }
