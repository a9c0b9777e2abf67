"""In-CT synthesis from the panel: the argv of both modes, the user's full CT back with the node (a real job on a
tiny checkpoint), results loaded one at a time into a slicer-core scene, shown side by side in linked views, and
no node left behind when results are replaced or the scene closes."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from LNSynthLib.anatomy.groups import LYMPH_NODE_SEGMENT_NAME
from LNSynthLib.cases import CT_FILE, LN_FILE
from LNSynthLib.diffusion.sample.inct_defaults import DEFAULT_MARGIN_MM, SYNTHESIS_MODES
from LNSynthLib.volumes.geometry import Geometry, Volume
from LNSynthLib.volumes.io import read_volume, write_volume
from LNSynthLib.volumes.preprocess import TEST_MARGIN_MM, TRAIN_MARGIN_MM, crop, resample

pytest.importorskip("slicer")

from LNSynthLib.jobs.chain import JobChain, Step  # noqa: E402
from LNSynthScene import mrml_bridge as mb  # noqa: E402
from LNSynthScene.inct_job import MANIFEST, RESULTS_FOLDER  # noqa: E402
from LNSynthScene.inct_results import InCTResults  # noqa: E402
from LNSynthScene.logic import IN_CT, PATCH, SceneLogic, SynthesisSettings, _module_path_env  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _sample_step(chain) -> list[str]:
    return next(s.args for s in chain.steps if s.args[:1] == ["sample"])


def _option(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def _parse(args: list[str]):
    """The real CLI parser on the argv (it checks that --cases exists: the cancelled run's folder is made again)."""
    from LNSynthLib.cli.main import build_parser

    Path(_option(args, "--cases")).mkdir(parents=True, exist_ok=True)
    return build_parser().parse_args(args)


# ----------------------------------------------------------------------------- the argv of both modes

def test_the_synthesize_argv_of_each_mode(scene_case, tmp_path):
    """The real `start_synthesis` chains (processes started, then cancelled); the sample argv parses with the CLI."""
    logic, ct_node, anatomy_node, ln_node, *_ = scene_case
    checkpoint = tmp_path / "ln_ddpm.pt"
    checkpoint.write_bytes(b"not read: the chains are cancelled at once")
    assert (PATCH, IN_CT) == SYNTHESIS_MODES
    patch = SynthesisSettings(checkpoint, n_samples=3, steps=5, sampler="ddim", transforms=False, qc=True,
                              device="cpu")
    chains = {mode: logic.start_synthesis(ct_node, anatomy_node, ln_node,
                                          dataclasses.replace(patch, mode=mode, inct_margin_mm=6.5))
              for mode in SYNTHESIS_MODES}
    for chain in chains.values():
        chain.cancel()

    args = _sample_step(chains[PATCH])
    parsed = _parse(args)
    assert (parsed.mode, parsed.no_transforms, parsed.qc) == ("patch", True, True)
    assert "--margin-mm" not in args   # prepare, sample, then the paste into the CT (in the job)
    assert [s.label for s in chains[PATCH].steps][2:] == ["Pasting the samples into the CT"]
    assert _option(chains[PATCH].steps[0].args, "--margin-mm") == f"{TEST_MARGIN_MM:g}"

    args = _sample_step(chains[IN_CT])
    parsed = _parse(args)
    assert (parsed.mode, parsed.margin_mm, parsed.samples_per_case, parsed.steps, parsed.sampler) == (
        "in-ct", 6.5, 3, 5, "ddim")
    assert "--no-transforms" not in args and "--qc" not in args   # patch-only: `sample --mode in-ct` refuses them
    # The model's window needs real context all round the node: the case is prepared with the training margin.
    assert _option(chains[IN_CT].steps[0].args, "--margin-mm") == f"{TRAIN_MARGIN_MM:g}"
    place = chains[IN_CT].steps[2].command
    assert place[1:3] == ["-m", "LNSynthScene.inct_job"] and _option(place, "--run") == str(chains[IN_CT].run_dir)
    assert SynthesisSettings(checkpoint).mode == PATCH and SynthesisSettings(checkpoint).inct_margin_mm == DEFAULT_MARGIN_MM


def test_the_panel_passes_the_mode_and_the_margin_and_defaults_to_in_ct():
    """LNSynth.py needs Slicer's Qt: its parameter defaults and the Synthesize call are read from its source."""
    import ast

    tree = ast.parse((REPO / "LNSynth" / "LNSynth.py").read_text(encoding="utf-8"))
    defaults = {n.target.id: ast.unparse(n.value) for n in ast.walk(tree)
                if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and n.value is not None}
    from LNSynthLib.diffusion.sample.inct_defaults import DEFAULT_MARGIN_MM
    from LNSynthScene import form

    assert defaults["synthesisMode"] == "form.default('synthesisMode')" and defaults["inctMarginMm"] == (
        "form.default('inctMarginMm')")
    assert form.default("synthesisMode") == SYNTHESIS_MODES[1] == "in-ct"
    assert form.default("inctMarginMm") == DEFAULT_MARGIN_MM
    call = next(ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, "id", None) == "SynthesisSettings")
    assert "mode=p.synthesisMode" in call and "inct_margin_mm=p.inctMarginMm" in call


# ----------------------------------------------------------------------------- a run folder as the job leaves it

def _views(core):
    """Slicer's views on a slicer-core scene: the layout node and one slice logic per slice view, as the app makes them."""
    import slicer
    import vtk

    layout_logic = slicer.vtkMRMLLayoutLogic()
    layout_logic.SetMRMLScene(core.scene)
    logics = vtk.vtkCollection()
    keep = [layout_logic]
    for i in range(core.scene.GetNumberOfNodesByClass("vtkMRMLSliceNode")):
        logic = slicer.vtkMRMLSliceLogic()
        logic.SetMRMLScene(core.scene)
        logic.SetMRMLApplicationLogic(core.app_logic)
        logic.SetSliceNode(core.scene.GetNthNodeByClass(i, "vtkMRMLSliceNode"))
        logics.AddItem(logic)
        keep.append(logic)
    core.app_logic.SetSliceLogics(logics)
    return keep


@pytest.fixture
def made_run(core, tmp_path):
    """A synthesis run folder as prepare + `sample --mode in-ct` leave it, on an anisotropic, flipped CT grid; the
    panel's last step (`inct_job`) then runs as the real job step. Returns (logic, ct_node, run, ball_lps)."""
    rng = np.random.default_rng(0)
    geometry = Geometry((0.8, 0.9, 2.5), (40.0, -20.0, 10.0), (-1, 0, 0, 0, 1, 0, 0, 0, 1))
    source = Volume(rng.integers(-120, 80, (24, 60, 56)).astype(np.int16), geometry)
    centre_lps = geometry.index_to_physical(np.array([30.0, 28.0, 12.0]))   # x, y, z index
    ln = np.zeros(source.shape, np.uint8)
    zyx = np.stack(np.meshgrid(*[np.arange(n) for n in source.shape], indexing="ij"), -1)
    points = geometry.index_to_physical(zyx[..., ::-1].reshape(-1, 3)).reshape(*source.shape, 3)
    ln[np.linalg.norm(points - centre_lps, axis=-1) <= 4.0] = 1
    run = tmp_path / "work" / "synthesis-1"
    write_volume(source, run / "input" / CT_FILE)
    write_volume(Volume(ln, geometry), run / "input" / LN_FILE)
    prepared = resample(crop(source, tuple(slice(2, n - 2) for n in source.shape)), (1.0, 1.0, 1.0), "linear")
    write_volume(prepared, run / "cases" / "CT" / CT_FILE)
    pz = np.stack(np.meshgrid(*[np.arange(n) for n in prepared.shape], indexing="ij"), -1)
    ppoints = prepared.geometry.index_to_physical(pz[..., ::-1].reshape(-1, 3)).reshape(*prepared.shape, 3)
    ball = np.linalg.norm(ppoints - centre_lps, axis=-1) <= 6.0
    for k, shift in enumerate((300.0, -200.0)):   # two samples: the region brighter, then darker
        result = prepared.array.copy()
        result[ball] += shift
        folder = run / "synthetic" / f"CT_inct_{k}"
        write_volume(Volume(result, prepared.geometry), folder / CT_FILE)
        (folder / "case.json").write_text(json.dumps({"synthetic": True, "mode": "in-ct",
                                                       "region_voxels": int(ball.sum())}))
    chain = JobChain([Step("Placing the nodes into the CT", [], command=[
        __import__("sys").executable, "-m", "LNSynthScene.inct_job", "--run", str(run), "--case-id", "CT"])],
        run, env=_module_path_env())
    state = chain.wait(timeout_s=120)
    assert state.succeeded, state.error
    logic = SceneLogic(core.scene, tmp_path / "work")
    ct_node = mb.volume_to_node(source, core.scene, "CT")
    return logic, ct_node, run, centre_lps


def test_the_job_step_changes_the_users_grid_only_around_the_node(made_run):
    logic, ct_node, run, centre_lps = made_run
    manifest = json.loads((run / RESULTS_FOLDER / MANIFEST).read_text())
    assert [e["name"] for e in manifest["results"]] == ["CT_inct_0", "CT_inct_1"]
    source = mb.node_to_volume(ct_node)
    results = InCTResults(logic.scene, run, ct_node)
    for k, sign in enumerate((1, -1)):
        out = mb.node_to_volume(results.show(k).ct)
        assert out.array.dtype == source.array.dtype and out.geometry.isclose(source.geometry)
        changed = out.array != source.array
        assert changed.sum() == results.entries[k].changed_voxels > 50
        zyx = np.argwhere(changed)
        distance = np.linalg.norm(source.geometry.index_to_physical(zyx[:, ::-1]) - centre_lps, axis=-1)
        assert distance.max() <= 6.0 + 2.5   # the 6 mm ball, at most one (2.5 mm) voxel more: nowhere else
        centre = tuple(np.rint(source.geometry.physical_to_index(centre_lps)[::-1]).astype(int))
        assert sign * (int(out.array[centre]) - int(source.array[centre])) > 150
    results.clear()


def test_results_load_one_at_a_time_side_by_side_and_leave_no_node(core, made_run):
    """The panel's results mixin on a real scene with Slicer's views: the first result shown right of the original in
    linked axial views, another one replaces it, a new synthesis replaces them all, a scene close keeps no reference."""
    import slicer
    from LNSynthModuleLib.panel_results import SynthesisResultsMixin

    logic, ct_node, run, centre_lps = made_run
    keep = _views(core)
    core.scene.GetFirstNodeByClass("vtkMRMLLayoutNode").SetViewArrangement(
        slicer.vtkMRMLLayoutNode.SlicerLayoutConventionalView)
    baseline = mb.node_ids(core.scene)

    class Combo:   # the two Qt properties the mixin sets, as PythonQt attributes
        def __init__(self):
            self.items, self.currentIndex, self.enabled = [], -1, True

        def clear(self):
            self.items = []

        def addItem(self, text):
            self.items.append(text)

    class Panel(SynthesisResultsMixin):
        def __init__(self):
            self.ui = SimpleNamespace(synthesisResultComboBox=Combo(), statusLabel=SimpleNamespace(text=""))

    panel = Panel()
    app = SimpleNamespace(applicationLogic=lambda: core.app_logic)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(slicer, "mrmlScene", core.scene, raising=False)
        patch.setattr(slicer, "app", app, raising=False)
        started = time.perf_counter()
        panel._showSynthetic(logic.load_inct(run, ct_node))   # the synthesis chain's result, as the panel gets it
        gui_s = time.perf_counter() - started
        first = panel._inctResults.shown
        assert panel.ui.synthesisResultComboBox.items == ["CT_inct_0", "CT_inct_1"]
        assert panel.ui.synthesisResultComboBox.enabled and "linked" in panel.ui.statusLabel.text
        assert core.scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode") == 2   # one result loaded, not two

        layout = core.scene.GetFirstNodeByClass("vtkMRMLLayoutNode")
        assert layout.GetViewArrangement() == slicer.vtkMRMLLayoutNode.SlicerLayoutSideBySideView
        red = core.scene.GetSingletonNode("Red", "vtkMRMLSliceNode")
        yellow = core.scene.GetSingletonNode("Yellow", "vtkMRMLSliceNode")
        assert yellow.GetOrientation() == red.GetOrientation() == "Axial"
        composite = slicer.vtkMRMLSliceLogic.GetSliceCompositeNode
        assert composite(red).GetBackgroundVolumeID() == ct_node.GetID()
        assert composite(yellow).GetBackgroundVolumeID() == first.ct.GetID()
        ras = (-centre_lps[0], -centre_lps[1], centre_lps[2])
        red_logic = core.app_logic.GetSliceLogic(red)
        assert red_logic.GetSliceOffset() == pytest.approx(ras[2], abs=2.5)   # jumped to the node
        # Linked: scrolling the original scrolls the result (the slice link logic, as the user's wheel does).
        red_logic.StartSliceNodeInteraction(slicer.vtkMRMLSliceNode.SliceToRASFlag)
        red_logic.SetSliceOffset(red_logic.GetSliceOffset() + 5.0)
        red_logic.EndSliceNodeInteraction()
        assert core.app_logic.GetSliceLogic(yellow).GetSliceOffset() == pytest.approx(red_logic.GetSliceOffset())
        shown, source = first.ct.GetDisplayNode(), ct_node.GetDisplayNode()   # the same window on both sides
        assert (shown.GetWindow(), shown.GetLevel()) == (source.GetWindow(), source.GetLevel())
        assert not shown.GetAutoWindowLevel() and shown.GetColorNodeID() == source.GetColorNodeID()
        segment = mb.segment_to_mask(first.segmentation, LYMPH_NODE_SEGMENT_NAME, ct_node).array
        assert np.array_equal(segment > 0, read_volume(run / "input" / LN_FILE).array > 0)   # the painted node

        panel._showResult(1)   # another result replaces the one shown
        assert first.ct.GetScene() is None and first.segmentation.GetScene() is None
        assert core.scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode") == 2
        assert composite(yellow).GetBackgroundVolumeID() == panel._inctResults.shown.ct.GetID()

        panel._showSynthetic(logic.load_inct(run, ct_node))   # a new synthesis: the old results leave the scene
        panel._dropResults(remove=True)
        assert mb.node_ids(core.scene) == baseline

        panel._showSynthetic(logic.load_inct(run, ct_node))
        panel._dropResults(remove=False)   # the panel's StartCloseEvent handler ...
        assert panel._inctResults is None and not panel.ui.synthesisResultComboBox.items
        core.scene.Clear(0)                # ... then the close removes every node
        assert core.scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode") == 0
    del keep
    print(f"GUI-thread time of showing the first in-CT result ({ct_node.GetName()}): {gui_s * 1000:.0f} ms")



# ----------------------------------------------------------------------------- the real job

def test_a_real_inct_job_gives_the_users_full_ct_back_with_the_node(scene_case, tiny_checkpoint):
    """Synthesize in-CT on the example CT with a real tiny LN-DDPM: prepare, `sample --mode in-ct` and the panel's
    placing step run as the panel's chain; the result is the full CT on its own grid, changed only around the
    painted node, with the node's segment; the second result is listed, not loaded; nothing stays after clearing."""
    from scipy import ndimage

    logic, ct_node, anatomy_node, ln_node, _, added = scene_case
    before = mb.node_ids(logic.scene)
    settings = SynthesisSettings(tiny_checkpoint, n_samples=2, steps=3, device="cpu", mode=IN_CT)
    chain = logic.start_synthesis(ct_node, anatomy_node, ln_node, settings)
    state = chain.wait(timeout_s=900)
    assert state.succeeded, state.error
    results = chain.result
    assert isinstance(results, InCTResults) and results.names == ["example_CT_inct_0", "example_CT_inct_1"]
    assert logic.scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode") == 2   # the CT and one result

    original, out = mb.node_to_volume(ct_node), mb.node_to_volume(results.shown.ct)
    assert out.shape == original.shape == (112, 101, 122) and out.array.dtype == original.array.dtype
    assert out.geometry.isclose(original.geometry)
    painted = mb.segment_to_mask(ln_node, LYMPH_NODE_SEGMENT_NAME, ct_node).array > 0
    assert painted.sum() == added > 0
    changed = out.array != original.array
    assert changed.sum() == results.entries[0].changed_voxels > 0
    spacing_zyx = original.geometry.spacing[::-1]
    distance_mm = ndimage.distance_transform_edt(~painted, sampling=spacing_zyx)
    assert distance_mm[changed].max() <= DEFAULT_MARGIN_MM + 2 * max(spacing_zyx)   # the rest bit for bit
    segment = mb.segment_to_mask(results.shown.segmentation, LYMPH_NODE_SEGMENT_NAME, ct_node).array > 0
    assert np.array_equal(segment, painted)

    started = time.perf_counter()
    second = results.show(1)   # loaded on demand, in place of the first
    gui_s = time.perf_counter() - started
    assert logic.scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode") == 2
    assert not np.array_equal(mb.node_to_volume(second.ct).array, out.array)
    results.clear()
    assert mb.node_ids(logic.scene) == before
    print(f"GUI-thread time of loading one in-CT result on the example CT {original.shape}: {gui_s * 1000:.0f} ms")
