"""The web session's actions on a real slicer-core scene, without a browser or trame (seconds).

The browser test drives the same actions through the page; this keeps them covered where the web
extra or Chromium is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from LNSynthLib.anatomy.groups import LYMPH_NODE_SEGMENT_NAME
from LNSynthLib.errors import InputDataError
from LNSynthLib.phantom import generate_phantom
from LNSynthLib.volumes.io import write_volume

pytest.importorskip("slicer", reason="slicer-core is not installed (pip install slicer-core)")

from LNSynthScene import mrml_bridge as mb  # noqa: E402
from LNSynthScene.web.session import WebSession, new_session_folder  # noqa: E402


@pytest.fixture
def phantom_files(tmp_path: Path) -> dict[str, Path]:
    phantom = generate_phantom(seed=1, shape_zyx=(32, 48, 48))
    paths = {"ct": tmp_path / "data" / "ct.nii.gz", "totalseg": tmp_path / "data" / "totalseg.nii.gz"}
    write_volume(phantom.ct, paths["ct"])
    write_volume(phantom.totalseg, paths["totalseg"])
    return paths


def test_session_folders_are_never_shared(tmp_path: Path):
    folders = {new_session_folder(tmp_path) for _ in range(5)}
    assert len(folders) == 5 and all(f.is_dir() and f.parent == tmp_path for f in folders)


def test_session_actions_on_a_scene(tmp_path: Path, phantom_files: dict[str, Path]):
    core = mb.create_core_scene()
    session = WebSession(core.scene, tmp_path / "work", data_roots=[tmp_path / "data"])
    with pytest.raises(InputDataError, match="no CT loaded"):
        session.lymph_node_segment()
    with pytest.raises(InputDataError, match="not found"):
        session.load_ct(tmp_path / "missing.nii.gz")

    ct_node = session.load_ct(phantom_files["ct"])
    assert ct_node.GetName() == "ct" and session.painted_voxels() == 0
    with pytest.raises(InputDataError, match="no anatomy"):
        session.require_inputs()
    anatomy = session.anatomy_from_totalseg_file(phantom_files["totalseg"])
    node, segment_id = session.lymph_node_segment()
    assert session.lymph_node_segment() == (node, segment_id)  # the same node on the next click
    ct = mb.node_to_volume(ct_node)
    assert session.logic.add_sphere(node, ct_node, tuple(ct.geometry.index_to_physical(np.array([24.0, 24, 16]))),
                                    3.0) > 0
    assert session.painted_voxels() == int(mb.segment_to_mask(node, LYMPH_NODE_SEGMENT_NAME, ct).array.sum()) > 0
    assert session.require_inputs() == (ct_node, anatomy, node)

    rows = {row["name"]: row for row in session.scene_rows()}
    assert rows["ct"]["kind"] == "volume" and rows["ct"]["detail"] == "48×48×32"
    assert rows["ct lymph nodes"]["detail"] == LYMPH_NODE_SEGMENT_NAME
    assert "liver" in rows["ct anatomy"]["detail"]

    with pytest.raises(InputDataError, match="not allowed or not found"):
        from LNSynthScene.logic import SynthesisSettings

        session.start_synthesis(SynthesisSettings(tmp_path / "none.pt"))
    with pytest.raises(InputDataError, match="no nnU-Net model"):
        session.start_nnunet_predict(None, "cpu")
    core.scene.Clear(1)


def test_uploads_and_paths_through_the_session(tmp_path: Path, phantom_files: dict[str, Path]):
    """A hostile upload name writes inside the session's uploads only; a rejected upload leaves nothing."""
    core = mb.create_core_scene()
    session = WebSession(core.scene, tmp_path / "work", max_upload_bytes=2**20)
    other = WebSession(core.scene, tmp_path / "work")
    content = phantom_files["ct"].read_bytes()
    node = session.load_upload([{"name": "../../../../ct.nii.gz", "content": content}])
    assert node.GetName() == "ct" and not (tmp_path / "ct.nii.gz").exists()
    assert [p.name for p in session.upload_folder.iterdir()] == ["ct.nii.gz"]
    with pytest.raises(InputDataError, match="cannot be read|not"):
        other.load_upload([{"name": str(tmp_path / "notes.txt"), "content": b"not a volume"}])
    assert not (tmp_path / "notes.txt").exists() and not other.upload_folder.exists()
    with pytest.raises(InputDataError, match="over this server's limit"):
        session.load_upload([{"name": "big.nii.gz", "content": b"\0" * (2**20 + 1)}])
    assert [p.name for p in session.upload_folder.iterdir()] == ["ct.nii.gz"]
    # Another session's upload and the data next to the work folder are out of reach by path.
    for text in (str(session.upload_folder / "ct.nii.gz"), f"../{session.folder.name}/uploads/ct.nii.gz",
                 str(phantom_files["ct"])):
        with pytest.raises(InputDataError, match="not allowed or not found"):
            other.load_ct(text)
    core.scene.Clear(1)


def test_a_new_ct_clears_the_old_layers_and_a_regrouped_anatomy_replaces_the_first(tmp_path: Path,
                                                                                     phantom_files: dict[str, Path]):
    from LNSynthScene.web.layers import layer_rows, set_layer_opacity

    core = mb.create_core_scene()
    session = WebSession(core.scene, tmp_path / "work", data_roots=[tmp_path / "data"])
    ct_node = session.load_ct(phantom_files["ct"])
    first = session.anatomy_from_totalseg_file(phantom_files["totalseg"])
    session.set_anatomy(first)
    second = session.anatomy_from_totalseg_file(phantom_files["totalseg"])
    session.set_anatomy(second)   # grouped again: the first is hidden, not stacked under the second
    ln_node, _ = session.lymph_node_segment()
    assert session.layers == [second, ln_node] and not first.GetDisplayNode().GetVisibility()
    rows = layer_rows(session.layers, ct_node, {})
    legend = {item["name"] for item in rows[0]["legend"]}
    assert "liver" in legend and len(legend) < len(mb.segment_names(second)) + 1   # only non-empty groups
    assert all(item["color"].startswith("#") and len(item["color"]) == 7 for item in rows[0]["legend"])
    set_layer_opacity(second, 0.3)
    assert layer_rows(session.layers, ct_node, {})[0]["opacity"] == 0.3
    session.load_ct(phantom_files["ct"])   # a new CT: the old CT's overlays are hidden and leave the list
    assert session.layers == [] and not second.GetDisplayNode().GetVisibility()
    assert not ln_node.GetDisplayNode().GetVisibility()
    core.scene.Clear(1)


def test_a_node_painted_on_fat_gets_the_lymph_node_hu_warning(tmp_path: Path, phantom_files: dict[str, Path]):
    from LNSynthLib.phantom.parameters import NODE_HU_RANGE

    core = mb.create_core_scene()
    session = WebSession(core.scene, tmp_path / "work", data_roots=[tmp_path / "data"])
    ct_node = session.load_ct(phantom_files["ct"])
    ct = mb.node_to_volume(ct_node)
    node, _ = session.lymph_node_segment()
    assert session.painted() == (0, None) and session.paint_warning() == ""
    fat = np.argwhere((ct.array > -120) & (ct.array < -60))   # a fat voxel of the phantom
    center = ct.geometry.index_to_physical(fat[len(fat) // 2][::-1].astype(float))
    session.logic.add_sphere(node, ct_node, tuple(center), 1.5)
    voxels, mean = session.painted()
    assert voxels > 0 and mean < NODE_HU_RANGE[0]
    warning = session.paint_warning()
    assert f"{mean:.0f} HU" in warning and "lymph nodes are 20-60 HU" in warning and "Undo" in warning
    core.scene.Clear(1)


def test_results_carry_their_qc_verdict_and_download_as_a_nifti_pair(tmp_path: Path,
                                                                      phantom_files: dict[str, Path]):
    import io
    import json
    import zipfile

    from LNSynthLib.cases import CT_FILE, LN_FILE
    from LNSynthLib.volumes.io import read_volume

    core = mb.create_core_scene()
    session = WebSession(core.scene, tmp_path / "work", data_roots=[tmp_path / "data"])
    ct_node = session.load_ct(phantom_files["ct"])
    ct = mb.node_to_volume(ct_node)
    run = session.folder / "synthesis-1"
    ln = np.zeros(ct.shape, np.uint8)
    ln[14:18, 20:26, 20:26] = 1
    for k in range(2):   # what `lnsynth sample --qc` leaves, as loaded by the chain (patch + pasted nodes)
        folder = run / "synthetic" / f"ct_synt_{k}"
        write_volume(ct, folder / CT_FILE)
        write_volume(type(ct)(ln, ct.geometry), folder / LN_FILE)
        (folder / "case.json").write_text('{"synthetic": true, "source_case": "ct"}')
    (run / "synthetic" / "qc.json").write_text(json.dumps({"samples": {
        "ct_synt_0": {"passed": True, "reasons": []},
        "ct_synt_1": {"passed": False, "reasons": ["anatomy_hu: worst liver 80 HU off"]}}}))
    write_volume(type(ct)(ln, ct.geometry), tmp_path / "painted.nii.gz")
    loaded = session.logic.load_synthetic(run / "synthetic", ct_node, tmp_path / "painted.nii.gz")
    session._synthesis_run = run
    results = session.set_results(loaded)
    assert [r.name for r in results] == ["ct_synt_0", "ct_synt_1"]
    assert [r.qc_passed for r in results] == [True, False]
    assert results[1].label == "ct_synt_1 (rejected by quality control)" and "liver" in results[1].qc_reasons[0]
    assert results[0].ct.GetImageData().GetDimensions() == ct_node.GetImageData().GetDimensions()  # the full CT
    name, data = session.write_result(1)
    assert name == "ct_synt_1.zip"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == [f"ct_synt_1/{CT_FILE}", f"ct_synt_1/{LN_FILE}"]
        archive.extractall(tmp_path / "downloaded")
    assert read_volume(tmp_path / "downloaded" / "ct_synt_1" / CT_FILE).shape == ct.shape
    assert int(read_volume(tmp_path / "downloaded" / "ct_synt_1" / LN_FILE).array.sum()) == int(ln.sum())
    with pytest.raises(InputDataError, match="no synthetic result"):
        session.write_result(5)
    core.scene.Clear(1)


def test_the_panel_and_the_page_read_one_form_declaration_and_the_page_speaks_of_its_controls():
    import ast

    from LNSynthLib.segmentation.nnunet.constants import STANDARD_EPOCHS
    from LNSynthScene import form
    from LNSynthScene.web.messages import page_terms

    source = (Path(__file__).resolve().parents[2] / "LNSynth" / "LNSynth.py").read_text(encoding="utf-8")
    node = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == "LNSynthParameterNode")
    declared = {}
    for item in node.body:
        if isinstance(item, ast.AnnAssign) and item.value is not None:
            declared[item.target.id] = ast.unparse(item.value)
            for call in ast.walk(item.annotation):   # Choice(...) / WithinRange(*...) name the same field
                if isinstance(call, ast.Call) and getattr(call.func, "id", "") in ("Choice", "WithinRange"):
                    assert f"'{item.target.id}'" in ast.unparse(call), ast.unparse(item)
    # every default of the panel's parameter node is the form's, by name: no literal is declared twice
    assert declared == {name: f"form.default('{name}')" for name in form.FIELDS}
    epochs = form.default("nnunetEpochs")
    assert epochs < STANDARD_EPOCHS and form.value_range("nnunetEpochs") == (1, 1000)
    assert form.default("numberOfSamples") == 4 and form.default("sampler") in form.choices("sampler")
    for flag_text, words in (
            ("Fix: read the reasons in qc.json; train LN-DDPM longer, or export with --no-qc",
             "untick “Quality control” (section 5) and export again"),
            ("Without weights use `--anatomy-source coarse`", "Method “coarse” (section 2)"),
            ("prepare more real cases, or train with fold `all`", "click Train nnU-Net (section 6"),
            ("try --device cpu", "Device (top bar)"), ("lower --epochs 3", "Epochs 3 (section 6)")):
        assert words in page_terms(flag_text) and "--" not in page_terms(flag_text), page_terms(flag_text)
    admin = "ask for a higher `lnsynth serve --max-upload-mb`"
    assert page_terms(admin) == admin


def test_inct_synthesis_gives_the_full_ct_back_one_result_at_a_time(tmp_path: Path, phantom_files: dict[str, Path],
                                                                     tiny_checkpoint: Path):
    """In-CT mode (the page's default, as the panel's) as a real job on a tiny LN-DDPM: the session lists the
    results, loads one at a time (a full CT each), changes the CT only around the painted node, downloads the
    shown one, and a new CT takes the result out of the scene."""
    import io
    import zipfile

    from scipy import ndimage

    from LNSynthLib.cases import CT_FILE
    from LNSynthLib.diffusion.sample.inct_defaults import DEFAULT_MARGIN_MM
    from LNSynthLib.volumes.io import read_volume
    from LNSynthScene import form
    from LNSynthScene.logic import IN_CT, SynthesisSettings

    assert form.default("synthesisMode") == IN_CT and form.default("inctMarginMm") == DEFAULT_MARGIN_MM
    core = mb.create_core_scene()
    session = WebSession(core.scene, tmp_path / "work", data_roots=[tmp_path / "data", tiny_checkpoint.parent])
    ct_node = session.load_ct(phantom_files["ct"])
    session.anatomy_from_totalseg_file(phantom_files["totalseg"])
    node, _ = session.lymph_node_segment()
    ct = mb.node_to_volume(ct_node)
    session.logic.add_sphere(node, ct_node, tuple(ct.geometry.index_to_physical(np.array([24.0, 24, 16]))), 2.5)
    painted = mb.segment_to_mask(node, LYMPH_NODE_SEGMENT_NAME, ct).array > 0
    settings = SynthesisSettings(str(tiny_checkpoint), n_samples=2, steps=2, device="cpu", mode=IN_CT)
    chain = session.start_synthesis(settings)
    state = chain.wait(timeout_s=900)
    assert state.succeeded, state.error

    volumes = core.scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")   # the CT and the first result
    results = session.set_inct_results(chain.result)
    assert [r.name for r in results] == ["ct_inct_0", "ct_inct_1"] and results[0].ct is None
    first = session.result(0)
    out = mb.node_to_volume(first.ct)
    assert out.shape == ct.shape and out.geometry.isclose(ct.geometry) and out.array.dtype == ct.array.dtype
    changed = out.array != ct.array
    assert changed.sum() == first.changed_voxels > 0 and "voxels changed" in first.label
    distance_mm = ndimage.distance_transform_edt(~painted, sampling=ct.geometry.spacing[::-1])
    assert distance_mm[changed].max() <= DEFAULT_MARGIN_MM + 2 * max(ct.geometry.spacing)   # the rest bit for bit
    assert np.array_equal(mb.segment_to_mask(first.segmentation, LYMPH_NODE_SEGMENT_NAME, ct).array > 0, painted)
    focus = session.focus_ras()
    centre = ct.geometry.index_to_physical(np.argwhere(painted).mean(axis=0)[::-1])
    assert focus == pytest.approx((-centre[0], -centre[1], centre[2]), abs=1.0)

    second = session.result(1)   # loaded in place of the first: one result CT in the scene
    assert first.ct is None and first.segmentation is None
    assert core.scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode") == volumes
    name, data = session.write_result(1)
    assert name == "ct_inct_1.zip" and second.ct is not None
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(tmp_path / "downloaded")
    assert np.array_equal(read_volume(tmp_path / "downloaded" / "ct_inct_1" / CT_FILE).array,
                          mb.node_to_volume(second.ct).array)
    shown = second.ct
    session.load_ct(phantom_files["ct"])   # a new CT: the result leaves the scene, nothing is listed
    assert shown.GetScene() is None and session.results == [] and session.inct is None
    core.scene.Clear(1)


def test_the_page_process_never_imports_the_job_stack():
    """The page's modules (in-CT results included) load no torch, MONAI or nnU-Net: jobs run in subprocesses.

    torch's triton brings an LLVM that crashed the session next to the views' EGL rendering (issue 25).
    """
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    code = ("import sys; import LNSynthScene.web.app, LNSynthScene.web.launcher, LNSynthScene.web.serve; "
            "print(sorted(m for m in ('torch', 'monai', 'nnunetv2', 'triton') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=repo,
                          env={**__import__("os").environ, "PYTHONPATH": f"{repo / 'LNSynth'}:{repo}"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]", done.stdout


def test_the_nnunet_patch_field_reaches_the_train_command(tmp_path: Path):
    """Patch (the page's section 6, the panel's nnU-Net section; one parser): blank keeps nnU-Net's plan;
    `32 32 32` becomes `--patch-size 32 32 32` (a short CPU run)."""
    from LNSynthLib.cli.main import build_parser
    from LNSynthScene.form import patch_size
    from LNSynthScene.logic import nnunet_train_args

    assert patch_size("", "here") is None and patch_size(" 32, 32 ,32 ", "here") == (32, 32, 32)
    assert patch_size("32×32×32", "here") == (32, 32, 32)
    for bad in ("32 32", "0 32 32", "a b c", "32 32 32 32", "1024 32 32"):
        with pytest.raises(InputDataError, match=r"Patch must be three whole numbers(.|\n)*set Patch \(here\)"):
            patch_size(bad, "here")
    args = nnunet_train_args(tmp_path, 1, 2, "cpu", (32, 32, 32))
    parsed = build_parser().parse_args(args)
    assert parsed.patch_size == [32, 32, 32] and (parsed.epochs, parsed.iterations) == (1, 2)
    assert "--patch-size" not in nnunet_train_args(tmp_path, 1, 2, "cpu")


def test_a_reopened_session_comes_back_to_its_ct_anatomy_nodes_and_checkpoint(tmp_path: Path,
                                                                               phantom_files: dict[str, Path]):
    """The session notes what it works on in its folder; a session reopened on that folder (after a crash: a new
    process, an empty scene) restores it. Only a `session-*` folder of the work folder can be reopened."""
    from LNSynthScene.web.session import reopened_folder

    core = mb.create_core_scene()
    session = WebSession(core.scene, tmp_path / "work", data_roots=[tmp_path / "data"])
    ct_node = session.load_ct(phantom_files["ct"])
    anatomy = session.anatomy_from_totalseg_file(phantom_files["totalseg"])
    node, _ = session.lymph_node_segment()
    ct = mb.node_to_volume(ct_node)
    session.logic.add_sphere(node, ct_node, tuple(ct.geometry.index_to_physical(np.array([24.0, 24, 16]))), 3.0)
    session.remember_painted()
    checkpoint = session.folder / "run" / "checkpoint.pt"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"weights")
    session.set_checkpoint(checkpoint)
    painted = mb.segment_to_mask(node, LYMPH_NODE_SEGMENT_NAME, ct).array
    groups = mb.segment_names(anatomy)
    core.scene.Clear(1)   # the process dies: its scene is gone, its folder stays

    core = mb.create_core_scene()
    again = WebSession(core.scene, tmp_path / "work", data_roots=[tmp_path / "data"], folder=session.folder)
    assert again.folder == session.folder and again.reopened
    restored = again.restore()
    assert restored.startswith("the CT ct, its anatomy") and f"{int(painted.sum())} painted voxels" in restored
    ct_again = again.nodes.ct
    assert np.array_equal(mb.node_to_volume(ct_again).array, ct.array)
    assert mb.segment_names(again.nodes.anatomy) == groups
    assert np.array_equal(mb.segment_to_mask(again.nodes.lymph_nodes, LYMPH_NODE_SEGMENT_NAME, ct).array, painted)
    assert again.nodes.checkpoint == checkpoint.resolve() and again.layers == [again.nodes.anatomy,
                                                                                again.nodes.lymph_nodes]
    assert again.require_inputs() == (ct_again, again.nodes.anatomy, again.nodes.lymph_nodes)
    for outside in (tmp_path / "data", tmp_path, tmp_path / "work" / "session-missing"):
        with pytest.raises(InputDataError, match="not a session folder"):
            reopened_folder(tmp_path / "work", outside)
    core.scene.Clear(1)
