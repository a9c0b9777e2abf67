"""nnU-Net fold `all` (every training case trains, as the synthesis benchmark's 2-case regime needs) and tiled prediction."""

from __future__ import annotations

from pathlib import Path

import pytest

from LNSynthLib.errors import InputDataError


def test_trained_fold_prefers_fold_0_then_all(tmp_path: Path) -> None:
    from LNSynthLib.segmentation.nnunet.project import trained_fold

    model = tmp_path / "Dataset901_X" / "T__nnUNetPlans__3d_fullres"
    with pytest.raises(InputDataError, match="no fold holds checkpoint_final.pth"):
        trained_fold(model)
    for fold in ("all", "3"):
        (model / f"fold_{fold}").mkdir(parents=True)
        (model / f"fold_{fold}" / "checkpoint_final.pth").write_bytes(b"x")
    (model / "fold_0").mkdir()   # started, not finished: not a trained fold
    assert trained_fold(model) == "all"
    (model / "fold_0" / "checkpoint_final.pth").write_bytes(b"x")
    assert trained_fold(model) == "0"
    (model / "fold_3" / "checkpoint_best.pth").write_bytes(b"x")
    assert trained_fold(model, "checkpoint_best.pth") == "3"


def test_fold_all_trains_on_every_case_skips_self_validation_and_predicts_tiled(phantom_root, phantom_test_root,
                                                                                tmp_path) -> None:
    """Real nnU-Net: fold `all` trains a narrower network (8 base features), skips the final validation on
    its own training cases, and the prediction finds the trained fold by itself and tiles the windows when
    asked (`-step_size 1.0`)."""
    from LNSynthLib.segmentation.nnunet import export as ex
    from LNSynthLib.segmentation.nnunet import runner as nr
    from LNSynthLib.segmentation.nnunet.project import NnUNetProject, TrainerSpec, trained_fold

    project = NnUNetProject(tmp_path / "project")
    dataset_dir = project.raw_dataset(912, "FoldAll")
    ex.export_dataset(phantom_root, dataset_dir, test_root=phantom_test_root,
                      settings=ex.ExportSettings(strategy="real", train_margin_mm=8, test_margin_mm=8))
    nr.plan_and_preprocess(project, 912, verify=False)
    configuration = nr.patch_configuration(project, 912, (16, 16, 16), base_features=8)
    assert configuration == "3d_fullres_patch16x16x16_f8"
    assert nr.patch_configuration(project, 912, (16, 16, 16), base_features=8) == configuration   # idempotent
    trainer = TrainerSpec(epochs=20, iterations=1, val_iterations=1)   # 20 epochs: checkpoint and plot every 2nd
    final = nr.train(project, 912, trainer, fold="all", configuration=configuration)
    fold = final.parent
    assert fold.name == "fold_all" and final.exists()
    log = next(project.logs.glob("train_*foldall.log")).read_text(encoding="utf-8")
    # nnUNetTrainer.do_split: fold `all` trains and validates on every case, no split file is read.
    assert " all " in log.splitlines()[0] and "This split has" not in log
    assert "Final validation skipped" in log and not (fold / "validation").exists()
    assert log.count("Epoch time") == 20 and (fold / "progress.png").exists()
    assert trained_fold(fold.parent) == "all"
    from LNSynthLib.safe_checkpoints import load_checkpoint

    weights = load_checkpoint(final)["network_weights"]
    first = next(w for k, w in weights.items() if k.endswith("conv.weight"))
    assert first.shape[0] == 8   # nnU-Net built the network from the narrower configuration
    out = nr.predict(fold.parent, dataset_dir / "imagesTs", tmp_path / "pred", step_size=1.0)
    assert len(list(out.glob("*.nii.gz"))) == len(list((dataset_dir / "imagesTs").glob("*_0000.nii.gz")))
    predict_log = next(project.logs.glob("predict_*.log")).read_text(encoding="utf-8")
    assert "-f all" in predict_log and "-step_size 1.0" in predict_log
