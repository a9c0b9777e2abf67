"""Fixtures for the Slicer suites: a real MRML scene from the slicer-core wheel (no Slicer app).

The module folder `LNSynth/` goes on sys.path as Slicer puts it there, so `LNSynthModuleLib`
imports the same way in tests and in Slicer.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

MODULE_DIR = Path(__file__).resolve().parents[2] / "LNSynth"
if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))


@pytest.fixture
def core():
    """Fresh scene with the Colors and Segmentations logics registered."""
    pytest.importorskip("slicer", reason="slicer-core is not installed (pip install slicer-core)")
    from LNSynthModuleLib.mrml_bridge import create_core_scene

    core = create_core_scene()
    yield core
    core.scene.Clear(1)


@pytest.fixture
def scene_case(core, tmp_path, example_ct, example_totalseg):
    """Real CT loaded through a storage node, anatomy from the TotalSegmentator file, one 6 mm node in fat.

    Returns (logic, ct_node, anatomy_node, ln_node, center_zyx, voxels_added).
    """
    from LNSynthModuleLib import mrml_bridge as mb
    from LNSynthModuleLib.logic import SceneLogic
    from LNSynthModuleLib.selftest import fat_center

    from LNSynthLib.anatomy.groups import LABEL_NAMES

    logic = SceneLogic(core.scene, tmp_path / "work")
    ct_node = mb.load_volume_file(core.scene, example_ct, "example CT")
    anatomy_node = logic.anatomy_from_totalseg_file(ct_node, example_totalseg)
    ct = mb.node_to_volume(ct_node)
    anatomy = mb.segmentation_to_labels(anatomy_node, dict(enumerate(LABEL_NAMES)), ct).array
    center_zyx = fat_center(anatomy, ct.array)
    center_lps = tuple(ct.geometry.index_to_physical(center_zyx[::-1].astype(float)))
    ln_node, _ = logic.lymph_node_segmentation(ct_node)
    added = logic.add_sphere(ln_node, ct_node, center_lps, 6.0)
    return logic, ct_node, anatomy_node, ln_node, center_zyx, added


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text(encoding="utf-8").split(")")[-1].split()[0] == "Z")


@pytest.fixture
def process_alive():
    """`process_alive(pid)`: True while the process runs (zombies count as gone)."""
    return _process_alive
