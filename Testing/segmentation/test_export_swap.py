"""`nnunet export` builds aside and swaps in: a failed export keeps the previous dataset, no stale cases stay."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from LNSynthLib.cases import LN_FILE, list_cases
from LNSynthLib.cli.main import main
from LNSynthLib.errors import InputDataError, OutputExistsError
from LNSynthLib.segmentation.nnunet.export import ExportSettings, export_dataset

SMALL = {"train_margin_mm": 8, "test_margin_mm": 8}


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_failed_overwrite_keeps_the_previous_dataset(phantom_root, synthetic_root, tmp_path, capsys):
    project = tmp_path / "project"
    common = ["nnunet", "export", "--cases", str(phantom_root), "--out", str(project), "--dataset-id", "5",
              "--name", "Lymph", "--train-margin-mm", "8", "--test-margin-mm", "8"]
    assert main(common) == 0
    dataset = project / "nnUNet_raw" / "Dataset005_Lymph"
    before = _snapshot(dataset)
    assert json.loads(before["dataset.json"])["numTraining"] == 4
    broken = tmp_path / "synthetic"
    shutil.copytree(synthetic_root, broken)
    last = list_cases(broken)[-1] / LN_FILE          # the failure comes after most cases are written
    last.unlink()
    capsys.readouterr()
    code = main([*common, "--synthetic", str(broken), "--strategy", "real+synt", "--overwrite"])
    err = capsys.readouterr().err
    assert code == 2 and f"lnsynth: error: {last}:" in err, err
    assert _snapshot(dataset) == before                   # the previous dataset, byte for byte
    assert sorted(p.name for p in dataset.parent.iterdir() if not p.name.startswith(".")) == [dataset.name]


def test_leftover_of_a_failed_export_leaves_no_stale_case(phantom_root, tmp_path):
    dataset = tmp_path / "nnUNet_raw" / "Dataset006_Lymph"
    export_dataset(phantom_root, dataset, settings=ExportSettings(strategy="real", **SMALL))
    (dataset / "dataset.json").unlink()                   # as a failed export of other cases leaves it
    (dataset / "lnsynth_export.json").unlink()
    shutil.copy(dataset / "imagesTr" / "phantom_000_0000.nii.gz", dataset / "imagesTr" / "gone_0000.nii.gz")
    shutil.copy(dataset / "labelsTr" / "phantom_000.nii.gz", dataset / "labelsTr" / "gone.nii.gz")
    export_dataset(phantom_root, dataset, settings=ExportSettings(strategy="real", **SMALL))
    images = sorted(p.name for p in (dataset / "imagesTr").iterdir())
    assert len(images) == json.loads((dataset / "dataset.json").read_text(encoding="utf-8"))["numTraining"] == 4
    assert "gone_0000.nii.gz" not in images and not (dataset / "labelsTr" / "gone.nii.gz").exists()
    # no staging folder left (the hidden `.lnsynth-<dataset>.*` files are the export's claim on the dataset)
    assert [p.name for p in dataset.parent.iterdir() if not p.name.startswith(".lnsynth-")] == [dataset.name]


def test_a_folder_with_other_files_is_not_replaced_without_overwrite(phantom_root, tmp_path):
    dataset = tmp_path / "Dataset007_Mine"
    dataset.mkdir()
    (dataset / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="notes.txt"):
        export_dataset(phantom_root, dataset, settings=ExportSettings(strategy="real", **SMALL))
    assert [p.name for p in dataset.iterdir()] == ["notes.txt"]


def test_preprocessed_data_and_models_of_an_earlier_export_are_not_reused(phantom_root, synthetic_root, tmp_path):
    from LNSynthLib.segmentation.nnunet import runner as nr
    from LNSynthLib.segmentation.nnunet.export import stamp_state, write_stamp
    from LNSynthLib.segmentation.nnunet.project import NnUNetProject, TrainerSpec

    project = NnUNetProject(tmp_path / "project")
    dataset = project.raw_dataset(8, "Lymph")
    export_dataset(phantom_root, dataset, settings=ExportSettings(strategy="real", **SMALL))
    trainer = TrainerSpec(epochs=1, iterations=1, val_iterations=1)
    fold_dir = project.training_dir(8, trainer)
    pre = project.preprocessed / dataset.name
    for folder in (pre, fold_dir):
        folder.mkdir(parents=True)
        write_stamp(folder, dataset)
        assert stamp_state(folder, dataset) is True
    export_dataset(phantom_root, dataset, synthetic_root=synthetic_root, overwrite=True,
                   settings=ExportSettings(strategy="real+synt", synt_per_case=1, **SMALL))
    assert stamp_state(pre, dataset) is False            # plan_and_preprocess plans again
    with pytest.raises(InputDataError, match="trained on an earlier export") as err:
        nr.train(project, 8, trainer, device="cpu")
    assert err.value.path == fold_dir and "--dataset-id" in err.value.fix
