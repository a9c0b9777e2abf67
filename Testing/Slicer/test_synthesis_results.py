"""Synthesis results: pasted in the job process, listed, and loaded one at a time (issue 21, row 5).

Real example CT on a slicer-core scene; the paste step runs as the real job process with the
argv `start_synthesis` builds; its output is compared with `paste_patch` on the full CT grid.
"""

from __future__ import annotations

import numpy as np
import pytest

from LNSynthLib.anatomy.groups import LYMPH_NODE_SEGMENT_NAME
from LNSynthLib.cases import Case, save_case
from LNSynthLib.segmentation import paste_results
from LNSynthLib.segmentation.paste import paste_patch
from LNSynthLib.volumes.geometry import Geometry, Volume
from LNSynthLib.volumes.grid import resample_onto
from LNSynthLib.volumes.io import read_volume

pytest.importorskip("slicer")

from LNSynthScene import mrml_bridge as mb  # noqa: E402
from LNSynthScene.logic import SynthesisSettings  # noqa: E402
from LNSynthScene.synthesis_results import PASTED_FOLDER, PatchResults  # noqa: E402

N_SAMPLES = 4


def _patches(ct: Volume, ln: Volume, center_zyx: np.ndarray, root, n: int = N_SAMPLES) -> list[str]:
    """`n` synthetic cases as `lnsynth sample` writes them: 1 mm patches (the model's grid, not the CT's
    3 mm one) around the painted node, each a little shifted, with a node of its own brightness."""
    center = ct.geometry.index_to_physical(center_zyx[::-1].astype(float))
    names = []
    for k in range(n):
        size = 24 + 2 * k
        # centred on the node, off the CT's voxel centres (as a patch on the model's own grid is)
        origin = tuple(center - ct.geometry.direction_matrix @ np.full(3, size / 2) + 0.37 * (k + 1))
        grid = Volume(np.zeros((size, size, size), np.float32), Geometry((1.0, 1.0, 1.0), origin, ct.geometry.direction))
        patch = resample_onto(ct, grid, "linear").array
        node = resample_onto(ln, grid, "nearest").array
        patch[node > 0] = 40.0 + 15 * k
        name = f"example_synt_{k}"
        save_case(Case(name, Volume(patch, grid.geometry), Volume(np.ones_like(node), grid.geometry),
                       Volume(node, grid.geometry), {"synthetic": True, "source_case": "example"}), root)
        names.append(name)
    return names


def _expected(ct: Volume, ln: Volume, folder) -> tuple[np.ndarray, np.ndarray]:
    """The old GUI-thread result: `paste_patch` on the full CT grid."""
    full_ct, full_ln = paste_patch(ct, read_volume(folder / "ct.nii.gz"), ln, read_volume(folder / "ln.nii.gz"))
    return full_ct.array, full_ln.array


@pytest.fixture
def synthesis_run(scene_case, tmp_path):
    """A synthesis run folder as the panel's chain leaves it before its paste step, and that step."""
    logic, ct_node, anatomy_node, ln_node, center_zyx, _ = scene_case
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"only the file's presence is checked before the job starts")
    chain = logic.start_synthesis(ct_node, anatomy_node, ln_node, SynthesisSettings(checkpoint, n_samples=N_SAMPLES))
    paste_step = chain.steps[-1]
    run = chain.run_dir
    chain.cancel()            # the sampling itself is not what is tested here
    inputs = logic.export_inputs(ct_node, anatomy_node, ln_node, run / "input")
    ct, ln = read_volume(inputs["ct"]), read_volume(inputs["ln"])
    names = _patches(ct, ln, center_zyx, run / "synthetic")
    return logic, ct_node, run, paste_step, inputs, ct, ln, names


def test_the_panels_synthesis_pastes_in_the_job_and_only_when_asked(scene_case, tmp_path):
    logic, ct_node, anatomy_node, ln_node, *_ = scene_case
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"x")
    for paste in (True, False):
        chain = logic.start_synthesis(ct_node, anatomy_node, ln_node, SynthesisSettings(checkpoint, paste_into_ct=paste))
        chain.cancel()
        commands = [step.command or [] for step in chain.steps]
        assert any(paste_results.__name__ in c for c in commands) is paste
        if paste:
            command = chain.steps[-1].command
            assert command[:3] == [logic.python, "-m", paste_results.__name__]
            assert command[command.index("--out") + 1] == str(chain.run_dir / PASTED_FOLDER)


def test_the_job_writes_exactly_what_the_full_grid_paste_gives(synthesis_run):
    """The real job process (progress lines, exit code) writes per sample the changed box and the cropped
    mask; CT + box is `paste_patch` on the full grid (bit for bit outside the box, to
    float32 rounding inside), and the mask the full pasted mask."""
    from LNSynthLib.jobs.chain import JobChain

    logic, ct_node, run, paste_step, inputs, ct, ln, names = synthesis_run
    assert paste_step.label == "Pasting the samples into the CT"
    state = JobChain([paste_step], run, python=logic.python).wait(timeout_s=300)
    assert state.succeeded, state.error
    assert any(e.get("stage") == "pasting the samples into the CT" and e.get("total") == N_SAMPLES
               for e in state.events)
    import json

    manifest = json.loads((run / PASTED_FOLDER / paste_results.MANIFEST).read_text())
    assert [e["name"] for e in manifest["results"]] == names
    assert manifest["source"]["shape_zyx"] == list(ct.shape)
    for entry in manifest["results"]:
        want_ct, want_ln = _expected(ct, ln, run / "synthetic" / entry["name"])
        box = read_volume(run / PASTED_FOLDER / entry["ct"])
        start = np.rint(ct.geometry.physical_to_index(np.asarray(box.geometry.origin))[::-1]).astype(int)
        where = tuple(slice(int(s), int(s) + n) for s, n in zip(start, box.shape, strict=True))
        got = ct.array.astype(np.float32)
        got[where] = box.array
        outside = np.ones(ct.shape, bool)
        outside[where] = False
        assert np.array_equal(got[outside], want_ct[outside])    # the box holds every changed voxel
        assert np.allclose(got, want_ct, rtol=0, atol=1e-3)      # the same values (float32 rounding of the crop)
        changed = int((~np.isclose(want_ct, ct.array, rtol=0, atol=1e-3)).sum())
        assert changed > 0 and abs(entry["changed_voxels"] - changed) <= 0.01 * changed
        assert box.array.size < ct.array.size / 20               # a box, not a CT
        mask = read_volume(run / PASTED_FOLDER / entry["ln"])
        lo = np.rint(ct.geometry.physical_to_index(np.asarray(mask.geometry.origin))[::-1]).astype(int)
        full = np.zeros(ct.shape, np.uint8)
        full[tuple(slice(int(s), int(s) + n) for s, n in zip(lo, mask.shape, strict=True))] = mask.array
        assert np.array_equal(full, want_ln)


def test_the_panel_lists_the_samples_and_keeps_one_loaded(synthesis_run, monkeypatch):
    """`results_on_demand` (the panel): the first sample is shown, the others listed; choosing one replaces
    it, so the scene holds one pasted CT whatever the number of samples; nothing is pasted in this thread."""
    from LNSynthLib.jobs.chain import JobChain

    logic, ct_node, run, paste_step, inputs, ct, ln, names = synthesis_run
    logic.results_on_demand = True
    scene = logic.scene
    before = mb.node_classes(scene)

    def no_paste_here(*args, **kwargs):
        raise AssertionError("a sample was pasted in the GUI thread")

    monkeypatch.setattr(paste_results, "paste_sample", no_paste_here)
    chain = JobChain([paste_step], run, python=logic.python,
                     on_success=lambda: logic.load_patch_results(run, ct_node, inputs["ln"]))
    state = chain.wait(timeout_s=300)
    assert state.succeeded, state.error
    results = chain.result
    assert isinstance(results, PatchResults) and results.names == names
    for k in (0, 2, 1, 3):
        shown = results.show(k)
        assert results.shown_index == k
        added = mb.node_classes(scene) - before
        # one sample at a time: its patch and its pasted CT, each with a segmentation
        assert added["vtkMRMLScalarVolumeNode"] == 2 and added["vtkMRMLSegmentationNode"] == 2
        assert _volume_names(scene) == sorted([f"example CT synthetic {k}", f"example CT + synthetic {k}"])
        pasted = mb.node_to_volume(shown.ct)
        assert pasted.geometry.isclose(ct.geometry) and pasted.array.dtype == ct.array.dtype   # the CT's own type
        want_ct, want_ln = _expected(ct, ln, run / "synthetic" / names[k])
        assert np.array_equal(pasted.array, np.rint(want_ct).astype(ct.array.dtype))
        assert np.array_equal(mb.segment_to_mask(shown.segmentation, LYMPH_NODE_SEGMENT_NAME, shown.ct).array, want_ln)
        assert results.nodes_file == run / PASTED_FOLDER / f"{names[k]}_ln.nrrd"
        display = shown.ct.GetDisplayNode()
        assert (display.GetWindow(), display.GetLevel()) == (ct_node.GetDisplayNode().GetWindow(),
                                                             ct_node.GetDisplayNode().GetLevel())
    results.clear()
    assert mb.node_classes(scene) == before                     # nothing of the results is left


def test_the_web_pages_eager_load_uses_the_jobs_boxes(synthesis_run, monkeypatch):
    """Without `results_on_demand` every sample loads (patch and pasted), from the job's boxes."""
    from LNSynthLib.jobs.chain import JobChain

    logic, ct_node, run, paste_step, inputs, ct, ln, names = synthesis_run
    assert JobChain([paste_step], run, python=logic.python).wait(timeout_s=300).succeeded
    monkeypatch.setattr(paste_results, "paste_sample", lambda *a, **k: (_ for _ in ()).throw(AssertionError("pasted")))
    loaded = logic.load_patch_results(run, ct_node, inputs["ln"])
    assert [c.case_id for c in loaded] == [n for name in names for n in (name, f"{name}_pasted")]
    want_ct, _ = _expected(ct, ln, run / "synthetic" / names[1])
    assert np.array_equal(mb.node_to_volume(loaded[3].ct).array, np.rint(want_ct).astype(ct.array.dtype))


def test_a_ct_changed_since_the_synthesis_is_refused(synthesis_run):
    from LNSynthLib.errors import InputDataError
    from LNSynthLib.jobs.chain import JobChain

    logic, ct_node, run, paste_step, inputs, ct, ln, names = synthesis_run
    assert JobChain([paste_step], run, python=logic.python).wait(timeout_s=300).succeeded
    results = PatchResults(logic.scene, run / "synthetic", ct_node, run / PASTED_FOLDER)
    ct_node.SetSpacing(2.0, 3.0, 3.0)
    with pytest.raises(InputDataError, match="no longer on the grid"):
        results.show(0)
    assert _volume_names(logic.scene) == []                     # the half-loaded sample was removed


def _volume_names(scene) -> list[str]:
    nodes = [scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode")
             for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode"))]
    return sorted(n.GetName() for n in nodes if "synthetic" in n.GetName())


def test_the_panel_lists_the_samples_and_switches_them_side_by_side(synthesis_run, core):
    """The panel's results mixin takes the patch-mode result as it takes in-CT results: the samples listed in the
    combo box, the first pasted CT shown right of the original, another one replacing it, none left after."""
    from types import SimpleNamespace

    import slicer
    from LNSynthModuleLib.panel_results import SynthesisResultsMixin

    from LNSynthLib.jobs.chain import JobChain

    logic, ct_node, run, paste_step, inputs, ct, ln, names = synthesis_run
    logic.results_on_demand = True
    assert JobChain([paste_step], run, python=logic.python).wait(timeout_s=300).succeeded
    baseline = mb.node_ids(core.scene)

    class Combo:   # the Qt properties the mixin sets, as PythonQt attributes
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
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(slicer, "mrmlScene", core.scene, raising=False)
        patch.setattr(slicer, "app", SimpleNamespace(applicationLogic=lambda: core.app_logic), raising=False)
        panel._showSynthetic(logic.load_patch_results(run, ct_node, inputs["ln"]))   # the chain's result
        assert panel.ui.synthesisResultComboBox.items == names and panel.ui.synthesisResultComboBox.enabled
        assert panel.ui.statusLabel.text.startswith(f"Synthetic sample 1 of {N_SAMPLES}: example CT + synthetic 0")
        assert _volume_names(core.scene) == ["example CT + synthetic 0", "example CT synthetic 0"]
        panel._showResult(2)   # the combo box choice (onSynthesisResultChosen, under a wait cursor)
        assert _volume_names(core.scene) == ["example CT + synthetic 2", "example CT synthetic 2"]
        assert panel.ui.synthesisResultComboBox.currentIndex == 2
        panel._dropResults(remove=True)
        assert mb.node_ids(core.scene) == baseline
