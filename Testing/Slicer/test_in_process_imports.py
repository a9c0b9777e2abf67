"""What runs inside Slicer's process imports only what Slicer bundles.

The scene logic, MRML bridge, terminology, dependency check and self-test helpers are imported and
every in-process action is exercised in a fresh Python where torch, MONAI, nnU-Net, nibabel,
TotalSegmentator, scikit-image, matplotlib and PyYAML cannot be imported (they live in the job processes).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("slicer")

REPO = Path(__file__).resolve().parents[2]
NOT_IN_SLICER = ("torch", "monai", "nnunetv2", "nibabel", "totalsegmentator", "skimage", "matplotlib", "yaml")

SCRIPT = textwrap.dedent('''
    import sys
    BLOCKED = set(sys.argv[2].split(","))

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is not bundled with Slicer")
            return None

    sys.meta_path.insert(0, Block())
    sys.path[:0] = [sys.argv[1] + "/LNSynth", sys.argv[1]]
    from pathlib import Path
    import numpy as np
    from LNSynthModuleLib import dependencies, mrml_bridge as mb, terminology  # noqa: F401
    from LNSynthModuleLib.logic import ANATOMY_NAMES, SceneLogic
    from LNSynthModuleLib.selftest import fat_center
    from LNSynthLib.anatomy.build import ANATOMY_SOURCES  # noqa: F401  (the panel's choice lists)
    from LNSynthLib.devices import DEVICE_CHOICES  # noqa: F401
    from LNSynthLib.diffusion.choices import BUNDLED_CONFIGS, SAMPLERS  # noqa: F401
    from LNSynthLib.cases import CT_FILE, LN_FILE
    from LNSynthLib.phantom import generate_phantom
    from LNSynthLib.volumes.io import write_volume

    work = Path(sys.argv[3])
    core = mb.create_core_scene()
    logic = SceneLogic(core.scene, work)
    phantom = generate_phantom(seed=1, shape_zyx=(40, 64, 64))
    ct_node = mb.volume_to_node(phantom.ct, core.scene, "CT")
    write_volume(phantom.totalseg, work / "totalseg.nii.gz")
    anatomy = logic.anatomy_from_totalseg_file(ct_node, work / "totalseg.nii.gz")      # Group
    ln_node, _ = logic.lymph_node_segmentation(ct_node)                                 # Edit lymph nodes
    ct = mb.node_to_volume(ct_node)
    center = fat_center(mb.segmentation_to_labels(anatomy, ANATOMY_NAMES, ct).array, ct.array, 2)
    assert logic.add_sphere(ln_node, ct_node, tuple(ct.geometry.index_to_physical(center[::-1] * 1.0)), 5.0) > 0
    inputs = logic.export_inputs(ct_node, anatomy, ln_node, work / "inputs")            # before every job
    synthetic = work / "synthetic" / "case_synt_0"                                      # a job's output ...
    write_volume(phantom.ct, synthetic / CT_FILE)
    write_volume(phantom.ln, synthetic / LN_FILE)
    (synthetic / "case.json").write_text("{}")
    loaded = logic.load_synthetic(work / "synthetic", ct_node, inputs["ln"])            # ... loaded and pasted
    assert len(loaded) == 2
    print("in-process actions ok; modules:", ",".join(sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)))
''')


def test_in_process_code_runs_with_only_slicers_bundled_packages(tmp_path: Path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(REPO), ",".join(NOT_IN_SLICER), str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "in-process actions ok; modules: \n" in done.stdout + "\n"


def test_the_block_really_blocks(tmp_path: Path):
    done = subprocess.run([sys.executable, "-c", SCRIPT.replace("from pathlib import Path", "import yaml", 1),
                           str(REPO), ",".join(NOT_IN_SLICER), str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode != 0 and "yaml is not bundled with Slicer" in done.stderr


def test_the_library_imports_no_slicer_module():
    """The Slicer boundary is a folder boundary: LNSynthLib imports no slicer, vtk, qt or ctk."""
    import ast

    offenders = []
    for path in (REPO / "LNSynthLib").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names
                          if n.split(".")[0] in ("slicer", "vtk", "qt", "ctk", "LNSynthModuleLib")]
    assert not offenders
