"""One segmenter for every strategy: the real cases' plan moved to a synthetic dataset, a real share per batch,
and seeded training that repeats itself (real nnU-Net on tiny phantom data)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from LNSynthLib.segmentation.nnunet.plans import plan_hash, plan_summary, resolved_configuration
from LNSynthLib.segmentation.nnunet.trainers.real_share import case_probabilities


def test_case_probabilities_give_real_cases_their_share() -> None:
    ids = ["a", "a_synt_0", "a_synt_1", "b", "b_synt_0", "b_synt_1", "b_synt_2", "b_synt_3"]
    p = case_probabilities(ids, {"a", "b"}, 0.5)
    assert p is not None and np.isclose(p.sum(), 1.0)
    assert np.isclose(p[[0, 3]].sum(), 0.5) and np.isclose(p[0], p[3])
    assert np.allclose(p[[1, 2, 4, 5, 6, 7]], 0.5 / 6)
    assert case_probabilities(["a", "b"], {"a", "b"}, 0.5) is None            # all real: nnU-Net's own draw
    with pytest.raises(ValueError, match="strictly between"):
        case_probabilities(ids, {"a"}, 1.0)


def test_plan_hash_ignores_names_and_sees_the_network(tmp_path: Path) -> None:
    plans = {"dataset_name": "Dataset001_A", "plans_name": "nnUNetPlans",
             "foreground_intensity_properties_per_channel": {"0": {"percentile_00_5": -50, "percentile_99_5": 70}},
             "configurations": {"3d_fullres": {"data_identifier": "nnUNetPlans_3d_fullres", "patch_size": [64] * 3,
                                               "architecture": {"arch_kwargs": {"n_stages": 5,
                                                                                "features_per_stage": [32] * 5}}},
                                "small": {"inherits_from": "3d_fullres", "patch_size": [32] * 3}}}
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(plans))
    renamed = {**plans, "dataset_name": "Dataset002_B", "plans_name": "Other"}
    b.write_text(json.dumps(renamed))
    assert plan_hash(a, "small") == plan_hash(b, "small")
    assert resolved_configuration(plans, "small")["patch_size"] == [32] * 3
    assert plan_summary(a, "small")["stages"] == 5 and plan_summary(a, "small")["clip_hu"] == [-50, 70]
    plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["n_stages"] = 4
    b.write_text(json.dumps(plans))
    assert plan_hash(a, "small") != plan_hash(b, "small")
    plans["foreground_intensity_properties_per_channel"]["0"]["percentile_99_5"] = 140
    assert plan_hash(tmp_path / "missing.json", "small") is None


def _losses(log: Path) -> list[str]:
    return [line.split("train_loss")[1].strip() for line in log.read_text(encoding="utf-8").splitlines()
            if "train_loss" in line]


def test_moved_plan_real_share_and_seeded_runs_agree(phantom_root, phantom_test_root, synthetic_root,
                                                     tmp_path) -> None:
    """Real + Synt gets Real's plan (nnU-Net's own move-plans route; its 24³ patches would plan a smaller
    network); the trainer draws half its cases from the real ones; two seeded runs give the same network; a
    network pretrained on Real + Synt fine-tunes on Real (one plan, so the weights fit)."""
    import torch

    from LNSynthLib.safe_checkpoints import load_checkpoint
    from LNSynthLib.segmentation.nnunet import export as ex
    from LNSynthLib.segmentation.nnunet import runner as nr
    from LNSynthLib.segmentation.nnunet.project import NnUNetProject, TrainerSpec

    project = NnUNetProject(tmp_path / "project")
    real_dir, synt_dir = project.raw_dataset(931, "Real"), project.raw_dataset(932, "RealSynt")
    ex.export_dataset(phantom_root, real_dir, test_root=phantom_test_root,
                      settings=ex.ExportSettings(strategy="real", train_margin_mm=8, test_margin_mm=8))
    ex.export_dataset(phantom_root, synt_dir, synthetic_root=synthetic_root, test_root=phantom_test_root,
                      settings=ex.ExportSettings(strategy="real+synt", synt_per_case=2, train_margin_mm=8,
                                                 test_margin_mm=8, qc=False))
    nr.plan_and_preprocess(project, 931, verify=False)
    name = nr.transfer_plans(project, 931, 932)   # no planning of its own: nothing of it is needed
    assert not (project.preprocessed / synt_dir.name / "nnUNetPlans.json").exists()
    real = project.preprocessed / real_dir.name / "nnUNetPlans.json"
    moved = project.preprocessed / synt_dir.name / f"{name}.json"
    assert plan_hash(moved, "3d_fullres") == plan_hash(real, "3d_fullres")
    assert nr.transfer_plans(project, 931, 932) == name                     # done: skipped
    config = nr.patch_configuration(project, 932, (16, 16, 16), base_features=8, plans_name=name)
    assert config == nr.patch_configuration(project, 931, (16, 16, 16), base_features=8)
    assert plan_hash(moved, config) == plan_hash(real, config)

    trainer = TrainerSpec(epochs=2, iterations=2, val_iterations=1, real_share=0.5)
    assert trainer.name.endswith("_rs50")
    runs = []
    for attempt in range(2):
        final = nr.train(project, 932, trainer, fold="all", configuration=config, seed=7, plans_name=name)
        record = json.loads((final.parent / nr.TRAINING_RECORD).read_text(encoding="utf-8"))
        assert record["seed"] == 7 and record["plan_hash"] == plan_hash(real, config)
        log = next(project.logs.glob(f"train_{synt_dir.name}_*.log"))
        runs.append((load_checkpoint(final)["network_weights"], _losses(log)[-2:]))
        assert "Real share: 50% of the drawn cases from the 4 real of 12 training cases" in log.read_text("utf-8")
        shutil.rmtree(final.parents[1])
        log.rename(log.with_suffix(f".{attempt}"))
    (w0, l0), (w1, l1) = runs
    assert l0 == l1 and len(l0) == 2
    assert all(torch.equal(w0[k], w1[k]) for k in w0)

    # Pretrain on the synthetic dataset, fine-tune on the real one: possible because both share one plan.
    short = TrainerSpec(epochs=1, iterations=1, val_iterations=1)
    pretrained = nr.train(project, 932, short, fold="all", configuration=config, seed=7, plans_name=name)
    tuned = nr.train(project, 931, TrainerSpec(epochs=2, iterations=1, val_iterations=1), fold="all",
                     configuration=config, seed=7, pretrained=pretrained)
    log = next(project.logs.glob(f"train_{real_dir.name}_*.log")).read_text(encoding="utf-8")
    assert "Loading pretrained weights from file" in log and str(pretrained) in log
    record = json.loads((tuned.parent / nr.TRAINING_RECORD).read_text(encoding="utf-8"))
    assert record["pretrained"] == str(pretrained)
