"""Fixtures for the Slicer suites: a real MRML scene from the slicer-core wheel (no Slicer app).

The module folder `LNSynth/` goes on sys.path as Slicer puts it there, so `LNSynthModuleLib`
imports the same way in tests and in Slicer; `LNSynthScene` and `LNSynthLib` sit in the repository root,
as they sit next to the module in the extension.
"""

from __future__ import annotations

import os
import subprocess
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
    from LNSynthScene.mrml_bridge import create_core_scene

    core = create_core_scene()
    yield core
    core.scene.Clear(1)


@pytest.fixture
def scene_case(core, tmp_path, example_ct, example_totalseg):
    """Real CT loaded through a storage node, anatomy from the TotalSegmentator file, one 6 mm node in fat.

    Returns (logic, ct_node, anatomy_node, ln_node, center_zyx, voxels_added).
    """
    from LNSynthModuleLib.selftest import fat_center

    from LNSynthLib.anatomy.groups import LABEL_NAMES
    from LNSynthScene import mrml_bridge as mb
    from LNSynthScene.logic import SceneLogic

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


def _lnsynth(*args: object, timeout: float = 600) -> None:
    done = subprocess.run([sys.executable, "-m", "LNSynthLib", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={"LNSYNTH_PROGRESS": "quiet", **os.environ})
    assert done.returncode == 0, f"lnsynth {args[0]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, example_ct, example_totalseg) -> Path:
    """A real tiny LN-DDPM checkpoint (32³ patches, 2 iterations) trained on the example CT with a node in fat."""
    import numpy as np
    from scipy import ndimage

    from LNSynthLib.anatomy.groups import totalseg_to_anatomy
    from LNSynthLib.volumes.geometry import Volume
    from LNSynthLib.volumes.io import read_volume, write_volume

    root = tmp_path_factory.mktemp("tiny_ckpt")
    ct = read_volume(example_ct)
    anatomy = totalseg_to_anatomy(read_volume(example_totalseg).array.astype(np.int32), ct.array)
    depth = ndimage.distance_transform_edt(anatomy == 1)
    center = np.argwhere((depth >= 4) & (ct.array > -150) & (ct.array < -50))[0]
    zz, yy, xx = np.indices(ct.shape)
    ln = ((zz - center[0]) ** 2 + (yy - center[1]) ** 2 + (xx - center[2]) ** 2 <= 4).astype(np.uint8)
    write_volume(Volume(anatomy, ct.geometry), root / "anatomy.nii.gz")
    write_volume(Volume(ln, ct.geometry), root / "ln.nii.gz")
    _lnsynth("prepare", "--ct", example_ct, "--ln", root / "ln.nii.gz", "--anatomy", root / "anatomy.nii.gz",
             "--anatomy-source", "anatomy14", "--out", root / "cases", "--case-id", "train0", "--margin-mm", 50)
    _lnsynth("train", "--config", "tiny", "--cases", root / "cases", "--run-dir", root / "run", "--set",
             "train.iterations=2", "--set", "train.batch_size=1", "--device", "cpu")
    checkpoint = root / "run" / "checkpoint.pt"
    assert checkpoint.is_file()
    return checkpoint


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
