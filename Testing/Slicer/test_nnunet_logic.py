"""nnU-Net export from the panel's logic: this session's real + synthetic cases become a real nnU-Net dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from LNSynthLib.cases import Case, save_case
from LNSynthLib.errors import InputDataError
from LNSynthLib.volumes.geometry import Volume
from LNSynthLib.volumes.io import read_volume

pytest.importorskip("slicer")

from LNSynthScene.logic import SceneLogic  # noqa: E402


def _session_with_one_synthesis_run(work: Path, example_ct: Path) -> None:
    """What a finished Synthesize leaves in the work folder: the prepared case and two synthetic ones."""
    ct = read_volume(example_ct)
    crop = (slice(40, 72), slice(30, 62), slice(40, 72))
    geometry = ct.geometry.shifted((40, 30, 40))
    hu = ct.array[crop].astype(np.float32)
    anatomy = np.ones(hu.shape, np.uint8)
    ln = np.zeros(hu.shape, np.uint8)
    ln[14:18, 14:18, 14:18] = 1
    run = work / "synthesis-20260101-000000"
    save_case(Case("example", Volume(hu, geometry), Volume(anatomy, geometry), Volume(ln, geometry),
                   {"synthetic": False}), run / "cases")
    for k in range(2):
        save_case(Case(f"example_synt_{k}", Volume(hu + k, geometry), Volume(anatomy, geometry),
                       Volume(ln, geometry), {"synthetic": True, "source_case": "example", "sample_index": k}),
                  run / "synthetic")


def test_export_gathers_the_session_cases_into_an_nnunet_dataset(core, tmp_path, example_ct):
    work = tmp_path / "work"
    _session_with_one_synthesis_run(work, example_ct)
    logic = SceneLogic(core.scene, work)
    chain = logic.start_nnunet_export(tmp_path / "project")
    assert "--synt-per-case" in chain.steps[0].args
    state = chain.wait(timeout_s=300)
    assert state.succeeded, state.error
    datasets = list((tmp_path / "project").rglob("dataset.json"))
    assert len(datasets) == 1
    dataset = json.loads(datasets[0].read_text(encoding="utf-8"))
    assert dataset["numTraining"] == 3  # 1 real + 2 synthetic
    assert len(list((datasets[0].parent / "labelsTr").glob("*.nii.gz"))) == 3


def test_export_leaves_out_what_quality_control_rejected_in_the_session(core, tmp_path, example_ct):
    from LNSynthLib.cases import load_case
    from LNSynthLib.qc import score_synthetic

    work = tmp_path / "work"
    _session_with_one_synthesis_run(work, example_ct)
    run = work / "synthesis-20260101-000000"
    good = load_case(run / "synthetic" / "example_synt_0")
    bright = good.ct.array.copy()
    bright[good.ln.array > 0] = 300.0                                   # a node no real node looks like
    save_case(Case("example_synt_2", Volume(bright, good.ct.geometry), good.anatomy, good.ln,
                   {"synthetic": True, "source_case": "example", "sample_index": 2}), run / "synthetic")
    assert score_synthetic(run / "cases", run / "synthetic").rejected == ["example_synt_2"]   # `sample --qc`
    logic = SceneLogic(core.scene, work)
    counts = {}
    for qc in (True, False):
        project = tmp_path / f"project_qc_{qc}"
        state = logic.start_nnunet_export(project, qc=qc).wait(timeout_s=300)
        assert state.succeeded, state.error
        counts[qc] = json.loads(next(project.rglob("dataset.json")).read_text(encoding="utf-8"))["numTraining"]
    assert counts == {True: 1 + 2, False: 1 + 3}


def _synthesis_run_of(case_folder: Path, work: Path, n: int = 2) -> None:
    """What a finished Synthesize of this case's CT leaves in the work folder: its prepared case and `n`
    synthetic 32³ patches around its node (on the case's 1 mm grid, like `lnsynth sample` writes them)."""
    from LNSynthLib.cases import load_case

    case = load_case(case_folder)
    center = np.argwhere(case.ln.array > 0).mean(axis=0).astype(int)
    start = np.clip(center - 16, 0, np.asarray(case.ct.shape) - 32)
    crop = tuple(slice(int(s), int(s) + 32) for s in start)
    geometry = case.ct.geometry.shifted(tuple(int(s) for s in start))
    patch = {name: Volume(getattr(case, name).array[crop], geometry) for name in ("ct", "anatomy", "ln")}
    run = work / "synthesis-20260101-000000"
    save_case(Case(case.case_id, case.ct, case.anatomy, case.ln, {"synthetic": False}), run / "cases")
    for k in range(n):
        save_case(Case(f"{case.case_id}_synt_{k}", Volume(patch["ct"].array + k, geometry), patch["anatomy"],
                       patch["ln"], {"synthetic": True, "source_case": case.case_id, "sample_index": k}),
                  run / "synthetic")


@pytest.mark.parametrize("paste", [False, True])
def test_export_of_the_training_cases_folder_holds_this_sessions_synthetic_cases(scene_case, tmp_path, paste):
    """The panel's order: *Add current case* sets the cases folder, *Synthesize*, then *Export dataset* passes
    that folder. The dataset must hold the synthetic cases as well (it was real-only: no --synthetic)."""
    logic, ct_node, anatomy_node, ln_node, *_ = scene_case
    cases = tmp_path / "cases"
    added = logic.start_training_case(ct_node, anatomy_node, ln_node, cases)
    assert added.wait(timeout_s=300).succeeded, added.state.error
    _synthesis_run_of(cases / added.result, logic.work_root)
    chain = logic.start_nnunet_export(tmp_path / "project", cases, paste=paste)
    args = chain.steps[0].args
    assert args[args.index("--cases") + 1] == str(cases)
    assert args[args.index("--synthetic") + 1] == str(chain.run_dir / "synthetic")
    assert args[args.index("--synt-per-case") + 1] == "2"
    state = chain.wait(timeout_s=300)
    assert state.succeeded, state.error
    dataset = next((tmp_path / "project").rglob("dataset.json")).parent
    assert json.loads((dataset / "dataset.json").read_text(encoding="utf-8"))["numTraining"] == 3
    manifest = json.loads((dataset / "lnsynth_export.json").read_text(encoding="utf-8"))
    kinds = sorted((item["kind"], item["source_case"]) for item in manifest["training"])
    synthetic_kind = "pasted" if paste else "synt"
    assert kinds == sorted([("real", added.result)] + [(synthetic_kind, added.result)] * 2)
    assert len(list((dataset / "labelsTr").glob("*.nii.gz"))) == 3


def test_export_of_a_cases_folder_stays_real_only_when_the_session_has_no_synthesis(core, tmp_path, example_ct):
    """No synthesis run in the work folder: no --synthetic (the export is then the `real` strategy)."""
    work = tmp_path / "work"
    _session_with_one_synthesis_run(tmp_path / "elsewhere", example_ct)
    logic = SceneLogic(core.scene, work)
    chain = logic.start_nnunet_export(tmp_path / "project", tmp_path / "elsewhere" / "synthesis-20260101-000000" / "cases")
    assert "--synthetic" not in chain.steps[0].args
    chain.cancel()


def test_export_without_any_session_case_says_what_to_do(core, tmp_path):
    logic = SceneLogic(core.scene, tmp_path / "work")
    with pytest.raises(InputDataError, match="run Synthesize first"):
        logic.start_nnunet_export(tmp_path / "project")
    assert not list((tmp_path / "work").glob("nnunet-export-*"))


def test_train_button_runs_the_standard_trainer_at_1000_epochs_else_the_short_one(tmp_path):
    from LNSynthScene.logic import nnunet_train_args

    short = nnunet_train_args(tmp_path, 5, 30, "cpu")
    assert short[short.index("--epochs") + 1] == "5" and short[short.index("--iterations") + 1] == "30"
    standard = nnunet_train_args(tmp_path, 1000, 30, "cuda")
    assert "--epochs" not in standard and "--iterations" not in standard and "cuda" in standard


def test_a_second_export_into_the_same_project_replaces_the_dataset_only_when_asked_to(core, tmp_path, example_ct):
    """After another synthesis the session has more cases: exporting into the same project was refused with no
    way out in the panel. The panel now sees the dataset there, asks, and passes --overwrite on "Yes"."""
    from LNSynthModuleLib.panel_rules import existing_datasets, replace_question

    from LNSynthLib.cases import load_case

    work, project = tmp_path / "work", tmp_path / "project"
    _session_with_one_synthesis_run(work, example_ct)
    logic = SceneLogic(core.scene, work)
    assert existing_datasets(project) == []
    assert logic.start_nnunet_export(project, qc=False).wait(timeout_s=300).succeeded
    (dataset,) = existing_datasets(project)
    assert dataset.name in replace_question([dataset])
    extra = load_case(work / "synthesis-20260101-000000" / "synthetic" / "example_synt_1")
    save_case(Case("example_synt_2", extra.ct, extra.anatomy, extra.ln,
                   {"synthetic": True, "source_case": "example", "sample_index": 2}),
              work / "synthesis-20260101-000000" / "synthetic")   # a second Synthesize added a sample
    refused = logic.start_nnunet_export(project, qc=False).wait(timeout_s=300)
    assert not refused.succeeded and "already here" in refused.error and "--overwrite" in refused.error
    chain = logic.start_nnunet_export(project, qc=False, overwrite=True)
    assert chain.steps[0].args[-1] == "--overwrite"
    assert chain.wait(timeout_s=300).succeeded, chain.state.error
    assert json.loads((dataset / "dataset.json").read_text(encoding="utf-8"))["numTraining"] == 1 + 3
