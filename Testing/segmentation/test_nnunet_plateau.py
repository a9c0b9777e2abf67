"""Plateau stopping of the short nnU-Net trainers: the rule on known curves, and one tiny real nnU-Net run."""

from __future__ import annotations

import math

import pytest

from LNSynthLib.segmentation.nnunet.trainers.plateau import plateau_state, read_record, smooth


def test_smoothing_is_an_exponential_moving_average() -> None:
    assert smooth([1.0, 0.0, 0.0], weight=0.5) == [1.0, 0.5, 0.25]
    assert smooth([1.0, math.nan, 0.0], weight=0.5) == [1.0, 1.0, 0.5]


def test_a_falling_loss_keeps_training_and_a_flat_one_stops_after_patience() -> None:
    falling = [1.0 - 0.05 * i for i in range(10)]
    state = plateau_state(falling, patience=3, min_delta=0.005, max_epochs=50)
    assert not state["stop"] and state["reason"] == "running" and state["best_epoch"] == 9
    flat = falling[:5] + [falling[4]] * 30
    stopped = next(n for n in range(1, len(flat) + 1)
                   if plateau_state(flat[:n], patience=3, min_delta=0.005, max_epochs=50)["stop"])
    state = plateau_state(flat[:stopped], patience=3, min_delta=0.005, max_epochs=50)
    assert state["reason"] == "plateau" and state["stopped_epoch"] == stopped - 1
    # The smoothed curve keeps falling a little after the raw loss flattens: improvements below min_delta
    # do not count, so it stops `patience` epochs after the last real improvement.
    assert state["epochs"][-1]["epochs_since_improvement"] == 3
    assert stopped - 1 - state["best_epoch"] == 3 and state["best_epoch"] > 4   # smoothing lags the raw loss
    assert [e["val_loss"] for e in state["epochs"]] == flat[:stopped]


def test_the_budget_ends_training_when_the_loss_keeps_falling() -> None:
    state = plateau_state([1.0 / (i + 1) for i in range(20)], patience=5, min_delta=0.0, max_epochs=20)
    assert state["stop"] and state["reason"] == "max_epochs" and state["stopped_epoch"] == 19


def test_nan_losses_do_not_count_as_improvement() -> None:
    state = plateau_state([0.5, math.nan, math.nan, math.nan], patience=3, min_delta=0.0, max_epochs=10)
    assert state["reason"] == "plateau" and state["epochs"][1]["val_loss"] is None


def test_trainer_names_carry_the_rule() -> None:
    from LNSynthLib.segmentation.nnunet.project import TrainerSpec
    from LNSynthLib.segmentation.nnunet.trainers import lnsynth_trainers as lt

    spec = TrainerSpec(epochs=40, iterations=30, val_iterations=5, patience=8, min_delta=0.005)
    assert spec.name == "nnUNetTrainerLNSynth_40ep_30it_5val_pat8_d50"
    assert TrainerSpec(epochs=3).name == "nnUNetTrainerLNSynth_3ep_10it_2val"   # unchanged without the rule
    cls = getattr(lt, spec.name)
    assert "on_epoch_end" in vars(cls) and "on_epoch_end" not in vars(getattr(lt, TrainerSpec(epochs=3).name))
    with pytest.raises(AttributeError):
        lt.__getattr__("nnUNetTrainerLNSynth_40ep_30it_5val_pat0_d50")
    from LNSynthLib.errors import InputDataError

    with pytest.raises(InputDataError):
        TrainerSpec(epochs=None, patience=3)


@pytest.mark.slow
def test_real_nnunet_run_stops_on_the_plateau(phantom_root, phantom_test_root, tmp_path) -> None:
    """A real (tiny) nnU-Net training with an improvement threshold no loss can meet stops after patience epochs."""
    _plateau_run(phantom_root, phantom_test_root, tmp_path)


def _plateau_run(phantom_root, phantom_test_root, tmp_path) -> None:  # noqa: ANN001
    from LNSynthLib.segmentation.nnunet import export as ex
    from LNSynthLib.segmentation.nnunet import runner as nr
    from LNSynthLib.segmentation.nnunet.progress import parse_training_logs
    from LNSynthLib.segmentation.nnunet.project import NnUNetProject, TrainerSpec

    project = NnUNetProject(tmp_path / "project")
    dataset_dir = project.raw_dataset(911, "Plateau")
    ex.export_dataset(phantom_root, dataset_dir, test_root=phantom_test_root,
                      settings=ex.ExportSettings(strategy="real", train_margin_mm=8, test_margin_mm=8))
    nr.plan_and_preprocess(project, 911, verify=False)
    configuration = nr.patch_configuration(project, 911, (16, 16, 16))
    # min_delta 10: no epoch can improve on epoch 0, so the rule must stop after epoch `patience`, far
    # below the budget of 6 epochs.
    trainer = TrainerSpec(epochs=6, iterations=2, val_iterations=1, patience=1, min_delta=10.0)
    final = nr.train(project, 911, trainer, configuration=configuration)
    fold = final.parent
    record = read_record(fold)
    assert record["reason"] == "plateau" and record["stopped_epoch"] == 1 and record["epochs_run"] == 2
    assert record["rule"] == {"patience": 1, "min_delta": 10.0, "smoothing": record["rule"]["smoothing"],
                              "max_epochs": 6, "monitored": record["rule"]["monitored"]}
    epochs = parse_training_logs(fold)
    assert [e.epoch for e in epochs] == [0, 1]                       # nnU-Net really stopped there
    assert [r["val_loss"] for r in record["epochs"]] == pytest.approx([e.val_loss for e in epochs], abs=1e-3)
    assert all(r["train_loss"] is not None for r in record["epochs"])
    assert (fold / "progress.png").exists() and not (fold / "checkpoint_latest.pth").exists()
    assert nr.train(project, 911, trainer, configuration=configuration) == final   # done: not trained again
    # The model predicts through its class name, as nnU-Net looks trainers up from a checkpoint.
    out = nr.predict(fold.parent, dataset_dir / "imagesTs", tmp_path / "pred")
    assert len(list(out.glob("*.nii.gz"))) == len(list((dataset_dir / "imagesTs").glob("*_0000.nii.gz")))


def test_demo_and_run_options_pass_the_rule_to_the_pipeline(tmp_path) -> None:
    import argparse

    from LNSynthLib.cli import demo_command
    from LNSynthLib.cli.main import main

    parser = argparse.ArgumentParser()
    demo_command.register(parser.add_subparsers())
    args = parser.parse_args(["demo", "--out", str(tmp_path / "w"), "--nnunet-epochs", "30", "--nnunet-patience", "4",
                              "--nnunet-min-delta", "0.01"])
    settings = demo_command._apply(demo_command.PipelineSettings.demo(), args)
    assert (settings.nnunet_epochs, settings.nnunet_patience, settings.nnunet_min_delta) == (30, 4, 0.01)
    # nnU-Net's standard trainer has no budget to stop within: refused before any work.
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    assert main(["run", "--config", "paper", "--nnunet-patience", "3", "--out", str(tmp_path / "w2"),
                 "--cases", str(tmp_path / "a"), "--test-cases", str(tmp_path / "b")]) == 2
    assert not (tmp_path / "w2").exists()
