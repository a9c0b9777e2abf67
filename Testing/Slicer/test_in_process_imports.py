"""What runs inside Slicer's process imports only what Slicer bundles.

The scene logic, MRML bridge, terminology, dependency check and self-test helpers are imported and
every in-process action is exercised in a fresh Python where torch, MONAI, nnU-Net, nibabel,
TotalSegmentator, scikit-image, matplotlib and PyYAML cannot be imported (they live in the job processes):
Group, Edit, painting, the inputs written before a job, every button's job (each `start_*` of the scene
logic builds its command line and starts its real process, then is cancelled) and the loaders of their
results. The web page's session runs the same in its own process (a job-stack import crashed it next to
the EGL views), so each of its actions is exercised as well.
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

# argv: repository, blocked top-level packages (comma-separated), work folder
BLOCKER = textwrap.dedent('''
    import sys
    BLOCKED = set(sys.argv[2].split(","))

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is not bundled with Slicer")
            return None

    sys.meta_path.insert(0, Block())
    sys.path[:0] = [sys.argv[1] + "/LNSynth", sys.argv[1]]
''')

SCRIPT = BLOCKER + textwrap.dedent('''
    import shutil
    from pathlib import Path
    import numpy as np
    from LNSynthModuleLib import dependencies  # noqa: F401
    from LNSynthScene import form, mrml_bridge as mb, terminology  # noqa: F401  (form: the panel's choice lists)
    from LNSynthScene.logic import ANATOMY_NAMES, SceneLogic, SynthesisSettings
    from LNSynthModuleLib.selftest import fat_center
    from LNSynthLib.anatomy.choices import ANATOMY_SOURCES  # noqa: F401  (the panel's choice lists)
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
    session_run = work / "synthesis-20260101-000000"                                    # a Synthesize's output ...
    for kind, name, meta in (("cases", "CT", '{"synthetic": false}'),
                             ("synthetic", "CT_synt_0", '{"synthetic": true, "source_case": "CT"}')):
        write_volume(phantom.ct, session_run / kind / name / CT_FILE)
        write_volume(phantom.ln, session_run / kind / name / LN_FILE)
        (session_run / kind / name / "case.json").write_text(meta)
    loaded = logic.load_synthetic(session_run / "synthetic", ct_node, inputs["ln"])     # ... loaded and pasted
    assert len(loaded) == 2

    # Every button's job: its command line is built and its real process started in Slicer's process.
    def started(chain, outputs=()):
        assert chain.process.pid > 0 and chain.steps[0].args, chain.steps
        chain.cancel()
        assert chain.state.cancelled and not chain.state.error, chain.state.error
        for path, volume in outputs:  # what the job would have written, for its result loader
            write_volume(volume, path)
        return chain

    checkpoint = work / "ln_ddpm.pt"
    checkpoint.write_bytes(b"not read in this process")
    settings = SynthesisSettings(checkpoint, n_samples=1, device="cpu")
    chains = {
        "Create anatomy": started(logic.start_anatomy(ct_node, "coarse", "cpu")),
        "Add current case": started(logic.start_training_case(ct_node, anatomy, ln_node, work / "cases")),
        "Train LN-DDPM": started(logic.start_ddpm_training(session_run / "cases", work / "run", "tiny", 1, "cpu")),
        "Synthesize": started(logic.start_synthesis(ct_node, anatomy, ln_node, settings)),
        "Export (session)": started(logic.start_nnunet_export(work / "nnunet_a")),
        "Export (cases folder)": started(logic.start_nnunet_export(work / "nnunet_b", session_run / "cases")),
        "Train nnU-Net": started(logic.start_nnunet_train(work / "nnunet_a", 5, "cpu")),
        "Train nnU-Net (standard)": started(logic.start_nnunet_train(work / "nnunet_a", 1000, "cpu")),
        "Predict": started(logic.start_nnunet_predict(ct_node, work / "model", "cpu")),
    }
    # In-CT synthesis: its chain, then its result loader on what the job leaves (the placing step run here).
    import dataclasses
    from LNSynthLib.volumes.geometry import Volume
    from LNSynthScene.inct_job import write_results

    inct = started(logic.start_synthesis(ct_node, anatomy, ln_node, dataclasses.replace(settings, mode="in-ct")))
    assert inct.steps[2].command[1:3] == ["-m", "LNSynthScene.inct_job"], inct.steps[2].command
    write_volume(phantom.ct, inct.run_dir / "input" / CT_FILE)
    write_volume(phantom.ln, inct.run_dir / "input" / LN_FILE)
    write_volume(phantom.ct, inct.run_dir / "cases" / "CT" / CT_FILE)
    brighter = phantom.ct.array + 100 * (phantom.ln.array > 0).astype(phantom.ct.array.dtype)
    write_volume(Volume(brighter, phantom.ct.geometry), inct.run_dir / "synthetic" / "CT_inct_0" / CT_FILE)
    (inct.run_dir / "synthetic" / "CT_inct_0" / "case.json").write_text('{"synthetic": true}')
    write_results(inct.run_dir, "CT")
    assert inct.on_success().shown.ct.GetImageData() is not None
    anatomy_chain, predict_chain = chains["Create anatomy"], chains["Predict"]
    write_volume(phantom.anatomy, anatomy_chain.run_dir / "anatomy.nii.gz")
    assert anatomy_chain.on_success().GetSegmentation().GetNumberOfSegments() > 1        # result loaders
    write_volume(phantom.ln, predict_chain.run_dir / "prediction.nii.gz")
    assert predict_chain.on_success().GetSegmentation().GetNumberOfSegments() == 1
    assert "--synthetic" in chains["Export (cases folder)"].steps[0].args

    # The web page's session: the same actions through its own code.
    from LNSynthScene.web.session import WebSession

    web = WebSession(core.scene, work / "web")   # its files in its own folder: the page may read only there
    write_volume(phantom.ct, web.folder / "ct.nii.gz")
    write_volume(phantom.totalseg, web.folder / "totalseg.nii.gz")
    web.load_ct(web.folder / "ct.nii.gz", "CT")
    web.anatomy_from_totalseg_file(web.folder / "totalseg.nii.gz")
    web.lymph_node_segment()
    assert web.painted_voxels() == 0 and web.scene_rows()
    web.nodes.ct, web.nodes.lymph_nodes = ct_node, ln_node
    started(web.start_anatomy("coarse", "cpu", None))
    started(web.start_training_case())
    (web.cases_root / "CT").mkdir(parents=True)
    (web.cases_root / "CT" / "case.json").write_text("{}")
    started(web.start_ddpm_training("tiny", 1, "cpu"))
    (web.folder / "ln_ddpm.pt").write_bytes(b"not read in this process")
    started(web.start_synthesis(SynthesisSettings(web.folder / "ln_ddpm.pt", n_samples=1, device="cpu")))
    shutil.copytree(session_run, web.folder / session_run.name)
    started(web.start_nnunet_export(paste=False))
    started(web.start_nnunet_train(None, 5, 30, "cpu"))
    (web.folder / "model").mkdir()
    started(web.start_nnunet_predict(str(web.folder / "model"), "cpu"))
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


MODULE_FILE = REPO / "LNSynth" / "LNSynth.py"
# What LNSynth.py may import at the top: Slicer runs these at every start, before anyone opens the panel.
START_UP_ROOTS = ("__future__", "logging", "pathlib", "typing", "qt", "ctk", "vtk", "slicer",
                  "LNSynthLib", "LNSynthModuleLib", "LNSynthScene")
START_UP_BLOCKED = (*NOT_IN_SLICER, "SimpleITK", "scipy")   # bundled, but seconds of start-up for a choice list


def _start_up_library_imports() -> list[str]:
    """The top-level import statements of LNSynth.py; asserts they stay within `START_UP_ROOTS`."""
    import ast

    statements = []
    for node in ast.parse(MODULE_FILE.read_text(encoding="utf-8")).body:
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        roots = {n.split(".")[0] for n in names}
        assert roots <= set(START_UP_ROOTS), f"LNSynth.py imports {sorted(roots)} at Slicer start-up"
        if roots & {"LNSynthLib", "LNSynthModuleLib", "LNSynthScene"}:
            statements.append(ast.unparse(node))
    return statements


def test_slicer_start_up_imports_neither_simpleitk_nor_scipy(tmp_path: Path):
    """What Slicer runs when it loads the module (the top of LNSynth.py) fills choice lists from modules that
    import nothing heavy: no SimpleITK or scipy (they cost Slicer's start-up), no job package."""
    statements = _start_up_library_imports()
    assert any("LNSynthScene import form" in line for line in statements) and len(statements) >= 4
    script = BLOCKER + "\n".join(statements) + (
        "\nprint('start-up ok; modules:', ','.join(sorted(m for m in sys.modules if m.split('.')[0] in BLOCKED)))")
    done = subprocess.run([sys.executable, "-c", script, str(REPO), ",".join(START_UP_BLOCKED), str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "start-up ok; modules: \n" in done.stdout + "\n"


def _imports_of(package: str, roots: tuple[str, ...]) -> list[str]:
    """`file: module` for every import (module level or inside a function) of `package` whose root is in `roots`."""
    import ast

    found = []
    for path in (REPO / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            found += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] in roots]
    return found


def test_the_library_imports_no_slicer_module():
    """The Slicer boundary is a folder boundary: LNSynthLib imports no slicer, vtk, qt or ctk."""
    assert not _imports_of("LNSynthLib", ("slicer", "vtk", "qt", "ctk", "LNSynthModuleLib", "LNSynthScene"))


def test_the_scene_package_imports_no_panel_part():
    """LNSynthScene runs in the web page's process too, which has no Qt: it imports no panel module."""
    assert not _imports_of("LNSynthScene", ("qt", "ctk", "LNSynthModuleLib", "experiments"))
    assert _imports_of("LNSynthScene", ("slicer",))   # the check reads its imports (the MRML bridge imports slicer)
