"""One real nnU-Net v2 plan + train + predict on tiny phantom data (CPU), and what is built on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from LNSynthLib.jobs.results import result_path
from LNSynthLib.metrics.segmentation import segmentation_metrics
from LNSynthLib.segmentation.nnunet import runner as nr
from LNSynthLib.segmentation.nnunet.progress import parse_training_logs
from LNSynthLib.volumes.io import read_volume


def test_training_writes_final_checkpoint_and_grouped_splits(nnunet_run):
    assert nnunet_run["checkpoint"].name == "checkpoint_final.pth" and nnunet_run["checkpoint"].exists()
    splits = nnunet_run["splits"]
    assert len(splits) == 4 and all(s["val"] and not any("_synt_" in c for c in s["val"]) for s in splits)
    # The short trainer came from our module through nnU-Net's external trainer lookup.
    assert nnunet_run["model"].name.startswith("nnUNetTrainerLNSynth_1ep_2it_1val__")


def test_training_used_the_patch_configuration(nnunet_run):
    """`--patch-size` trained through nnU-Net's `inherits_from`: same network and data, other patch."""
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    plans = PlansManager(json.loads((nnunet_run["model"] / "plans.json").read_text(encoding="utf-8")))
    chosen = plans.get_configuration(nnunet_run["configuration"])
    base = plans.get_configuration("3d_fullres")
    assert chosen.patch_size == [16, 16, 16] and base.patch_size != chosen.patch_size
    assert chosen.data_identifier == base.data_identifier and chosen.network_arch_init_kwargs == \
        base.network_arch_init_kwargs
    assert nnunet_run["model"].name.endswith("__3d_fullres_patch16x16x16")
    checkpoint = __import__("torch").load(nnunet_run["checkpoint"], map_location="cpu", weights_only=False)
    assert checkpoint["init_args"]["configuration"] == nnunet_run["configuration"]


def test_patch_configuration_is_idempotent_and_checks_the_network(nnunet_run):
    import pytest

    from LNSynthLib.errors import InputDataError

    project = nnunet_run["project"]
    plans = project.preprocessed / nnunet_run["dataset_dir"].name / "nnUNetPlans.json"
    before = plans.read_bytes()
    assert nr.patch_configuration(project, 901, (16, 16, 16)) == nnunet_run["configuration"]
    assert plans.read_bytes() == before
    assert nr.patch_configuration(project, 901, None) == "3d_fullres"     # no patch: the planned one
    with pytest.raises(InputDataError, match="multiple of"):
        nr.patch_configuration(project, 901, (18, 16, 16))        # the planned net halves twice: multiples of 4
    import json

    import numpy as np

    strides = json.loads(before)["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["strides"]
    bottom = tuple(int(v) for v in np.prod(np.asarray(strides), axis=0))   # the plan's total downsampling
    with pytest.raises(InputDataError, match="one voxel at the bottom"):
        nr.patch_configuration(project, 901, bottom)              # 1x1x1 there: nnU-Net's instance norm fails
    with pytest.raises(InputDataError, match="no configuration"):
        nr.patch_configuration(project, 901, (16, 16, 16), base="2d_missing")


def test_progress_parsed_from_the_real_training_log(nnunet_run):
    records = parse_training_logs(nnunet_run["checkpoint"].parent)
    assert [r.epoch for r in records] == [0]
    r = records[0]
    assert r.train_loss is not None and np.isfinite(r.train_loss)
    assert r.val_loss is not None and len(r.pseudo_dice) == 1 and 0.0 <= r.pseudo_dice[0] <= 1.0
    assert r.epoch_time_s and r.epoch_time_s > 0
    log = next((nnunet_run["project"].logs).glob("train_*.log")).read_text(encoding="utf-8")
    assert "Epoch time:" in log
    # The same numbers reached the CLI's progress lines live, while nnU-Net was training.
    epochs = [e for e in nnunet_run["events"] if e["stage"] == "nnunet_train" and e.get("loss") is not None]
    assert len(epochs) == 1 and epochs[0]["step"] == 1 and epochs[0]["total"] == 1
    assert epochs[0]["loss"] == r.train_loss and epochs[0]["pseudo_dice"] == r.pseudo_dice[0]
    assert result_path(nnunet_run["events"], "model_dir") == nnunet_run["model"]
    assert nnunet_run["events"][-1]["stage"] == "result"


def test_predictions_keep_the_test_geometry_and_score(nnunet_run):
    labels = sorted((nnunet_run["dataset_dir"] / "labelsTs").glob("*.nii.gz"))
    assert len(labels) == 2
    for label in labels:
        pred = read_volume(nnunet_run["predictions"] / label.name)
        gt = read_volume(label)
        assert pred.shape == gt.shape and pred.geometry.isclose(gt.geometry)
        assert set(np.unique(pred.array)) <= {0, 1}
        metrics = segmentation_metrics(pred.array, gt.array, gt.geometry.spacing)
        assert 0.0 <= metrics["DSC"] <= 1.0 and metrics["nodes_total"] >= 1


def test_steps_resume_without_rerunning(nnunet_run):
    project, trainer = nnunet_run["project"], nnunet_run["trainer"]
    stamp = nnunet_run["checkpoint"].stat().st_mtime_ns
    configuration = nnunet_run["configuration"]
    assert nr.train(project, 901, trainer, configuration=configuration) == nnunet_run["checkpoint"]  # not rerun
    assert nnunet_run["checkpoint"].stat().st_mtime_ns == stamp
    before = {p.name: p.stat().st_mtime_ns for p in nnunet_run["predictions"].glob("*.nii.gz")}
    nr.predict(nnunet_run["model"], nnunet_run["dataset_dir"] / "imagesTs", nnunet_run["predictions"])
    assert {p.name: p.stat().st_mtime_ns for p in nnunet_run["predictions"].glob("*.nii.gz")} == before


def test_cli_predict_one_ct_in_its_ln_region(nnunet_run, phantom_test_root, tmp_path):
    case = sorted(phantom_test_root.iterdir())[0]
    out = tmp_path / "pred.nii.gz"
    env = dict(os.environ, LNSYNTH_PROGRESS="json")
    proc = subprocess.run([sys.executable, "-m", "LNSynthLib", "nnunet", "predict", "--model",
                           str(nnunet_run["model"]), "--ct", str(case / "ct.nii.gz"), "--region",
                           str(case / "ln.nii.gz"), "--margin-mm", "8", "--out", str(out), "--device", "cpu"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert result_path(events, "prediction") == out and events[-1]["kind"] == "prediction"
    pred, ct = read_volume(out), read_volume(case / "ct.nii.gz")
    assert pred.shape == ct.shape and pred.geometry.isclose(ct.geometry)     # full input grid back


def test_cli_reports_a_missing_model_without_traceback(tmp_path, capsys):
    from LNSynthLib.cli.main import main

    code = main(["nnunet", "predict", "--model", str(tmp_path), "--input", str(tmp_path), "--out",
                 str(tmp_path / "o"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "trained-model folder" in err and "Traceback" not in err
