"""The module's self-test flow (what `LNSynthTest` runs inside Slicer) on a slicer-core scene."""

from __future__ import annotations

import io
import subprocess
import sys
import time
import unittest
from pathlib import Path

import pytest

pytest.importorskip("slicer")

from LNSynthModuleLib.selftest import missing_job_package, run_flow, skip_unless_job_packages  # noqa: E402

JOB_PACKAGES = ("numpy", "scipy", "SimpleITK", "torch", "monai", "yaml", "tqdm", "matplotlib")


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


def test_self_test_skips_with_a_clear_message_where_the_job_packages_are_missing(tmp_path: Path):
    """The extension factory runs `py_LNSynth` (Slicer's `slicer.testing.runUnitTest`: unittest's runner) in a
    Slicer without the job packages: that is a skip with its reason, not a failure. A fresh Python with no
    packages at all stands in for that Slicer's PythonSlicer."""
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=120)
    python = bare / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")

    class FlowTest(unittest.TestCase):
        def test_flow(self):
            skip_unless_job_packages(self, python=str(python))
            raise AssertionError("the flow ran where its packages are missing")

    out = io.StringIO()
    result = unittest.TextTestRunner(stream=out, verbosity=2).run(unittest.TestLoader().loadTestsFromTestCase(FlowTest))
    assert result.wasSuccessful() and len(result.skipped) == 1, out.getvalue()
    reason = result.skipped[0][1]
    missing = missing_job_package(str(python))
    assert missing in JOB_PACKAGES and f"first missing: {missing}" in reason
    assert reason.startswith("LNSynth self-test skipped") and "Install Python dependencies" in reason


def test_where_the_job_packages_are_installed_the_self_test_runs():
    assert missing_job_package() is None   # this suite's job Python has them: the flow above is not skipped


def test_the_modules_self_test_checks_the_packages_first_and_reports_a_skip_outside_unittest():
    """`LNSynthTest` (LNSynth.py, which needs Slicer to import): the check comes before the flow, and
    `runTest` (Reload and Test, the SelfTests module: no unittest runner there) turns the skip into a message."""
    import ast

    source = (Path(__file__).resolve().parents[2] / "LNSynth" / "LNSynth.py").read_text(encoding="utf-8")
    test_class = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ClassDef) and n.name == "LNSynthTest")
    methods = {f.name: f for f in test_class.body if isinstance(f, ast.FunctionDef)}
    calls = [c.func.id for c in ast.walk(methods["test_LNSynth_flow"])
             if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)]
    assert "skip_unless_job_packages" in calls and calls.index("skip_unless_job_packages") < calls.index("run_flow")
    handlers = [h for h in ast.walk(methods["runTest"]) if isinstance(h, ast.ExceptHandler)]
    assert any(ast.unparse(h.type) == "unittest.SkipTest" for h in handlers)
