"""The whole demo job end to end (`lnsynth demo`), on demand: pytest -m slow."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_runs_end_to_end_and_resumes(tmp_path):
    out = tmp_path / "demo"
    env = dict(os.environ, LNSYNTH_PROGRESS="json")
    # 100 LN-DDPM iterations paint nodes quality control rejects (all 5 of 5 checked); QC has its own test below.
    cmd = [sys.executable, "-m", "LNSynthLib", "demo", "--out", str(out), "--device", "cpu",
           "--ddpm-iterations", "100", "--nnunet-epochs", "1", "--nnunet-iterations", "3",
           "--train-cases", "4", "--test-cases", "2", "--no-qc"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    stages = {e["stage"] for e in events}
    assert {"pipeline", "train", "nnunet_train", "nnunet_predict", "evaluate"} <= stages
    report = out / "report" / "report.md"
    assert f"report: {report}" in proc.stdout and report.exists()
    metrics = json.loads((out / "report" / "metrics.json").read_text(encoding="utf-8"))
    strategies = [(r["strategy"], r["method"]) for r in metrics["segmentation"]]
    assert strategies == [("Real", "-"), ("Real + Synt", "LN-DDPM")]
    assert metrics["generation"]["pairs"] == 8 and metrics["generation"]["NodeRecall_synt"] is not None
    # A second run finds every stage complete and only re-evaluates.
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    assert again.returncode == 0, again.stderr[-3000:]
    assert not any(json.loads(line)["stage"] == "nnunet_train" for line in again.stdout.splitlines()
                   if line.startswith("{"))


@pytest.mark.slow
def test_demo_nnunet_settings_segment_the_phantom_nodes(phantom_root, phantom_test_root, tmp_path):
    """The demo's short nnU-Net run (its epochs, iterations and patch) learns: about 5 min on 2 cores.

    Measured with these 4 training cases: mean DSC 0.46 and 0.81 in two runs (nnU-Net's augmentation
    is not seeded), against 0.76-0.92 with the demo's 6 cases over seeds 0-2. nnU-Net's 64³ plan
    with the earlier 3 x 10 iterations segmented nothing (DSC 0).
    """
    import numpy as np

    from LNSynthLib.metrics.segmentation import segmentation_metrics
    from LNSynthLib.pipeline import PipelineSettings
    from LNSynthLib.segmentation.nnunet import runner as nr
    from LNSynthLib.segmentation.nnunet.export import ExportSettings, export_dataset
    from LNSynthLib.segmentation.nnunet.project import NnUNetProject, TrainerSpec
    from LNSynthLib.volumes.io import read_volume

    demo = PipelineSettings.demo()
    project = NnUNetProject(tmp_path / "nnunet")
    dataset = export_dataset(phantom_root, project.raw_dataset(111, "Real"), test_root=phantom_test_root,
                             settings=ExportSettings(strategy="real"))
    nr.plan_and_preprocess(project, 111, verify=False)
    configuration = nr.patch_configuration(project, 111, demo.nnunet_patch_size)
    trainer = TrainerSpec(demo.nnunet_epochs, demo.nnunet_iterations, demo.nnunet_val_iterations)
    checkpoint = nr.train(project, 111, trainer, configuration=configuration)
    predictions = nr.predict(checkpoint.parents[1], dataset / "imagesTs", tmp_path / "pred")
    dsc = []
    for label in sorted((dataset / "labelsTs").glob("*.nii.gz")):
        gt = read_volume(label)
        dsc.append(segmentation_metrics(read_volume(predictions / label.name).array, gt.array,
                                        gt.geometry.spacing)["DSC"])
    assert np.mean(dsc) > 0.3 and min(dsc) > 0.1, dsc


def test_pipeline_bench_summary_is_mean_and_sd():
    from experiments.pipeline_bench import summarize_runs

    runs = {s: {"segmentation": [{"strategy": "Real", "method": "-", "DSC": d, "IoU": 0.1, "Recall": 0.2,
                                  "Precision": None, "ASSD": 3.0, "NodeRecall": 0.5}]}
            for s, d in enumerate([0.2, 0.4])}
    summary = summarize_runs(runs)["Real | -"]
    assert summary["DSC"] == pytest.approx((0.3, 0.1414213562), rel=1e-6)
    assert "Precision" not in summary and summary["ASSD"] == (3.0, 0.0)


def test_pipeline_bench_markdown_names_the_settings_and_each_seed():
    from experiments.pipeline_bench import render_markdown, summarize_runs

    settings = {"n_train_cases": 6, "n_test_cases": 2, "ddpm_config": "tiny",
                "ddpm_overrides": {"train.iterations": 300}, "nnunet_epochs": 10, "nnunet_iterations": 30,
                "nnunet_patch_size": [32, 32, 32], "synt_per_case": 2}
    runs = {s: {"segmentation": [{"strategy": "Real", "method": "-", "DSC": d, "NodeRecall": 0.5}],
                "stages_s": {"nnunet": 10.0}, "settings": settings} for s, d in ((0, 0.25), (1, 0.75))}
    text = render_markdown([0, 1], runs, summarize_runs(runs))
    assert "nnU-Net 10 epochs x 30 iterations, patch 32x32x32" in text and "(300 iterations)" in text
    assert "| seed | DSC Real | NodeRecall Real |" in text
    assert "| 0 | 0.2500 | 0.5000 |" in text and "| 1 | 0.7500 | 0.5000 |" in text
    assert "0.5000 ± 0.3536" in text


@pytest.mark.slow
def test_demo_with_copy_paste_and_quality_control(tmp_path):
    """Real, Real + copy-paste and Real + Synt; QC runs after Real is trained, so its NodeRecall rule is on.

    The demo's 300 LN-DDPM iterations: on 6 phantom cases QC rejected 2 of 12 samples (100 iterations: all).
    """
    out = tmp_path / "demo"
    env = dict(os.environ, LNSYNTH_PROGRESS="json")
    cmd = [sys.executable, "-m", "LNSynthLib", "demo", "--out", str(out), "--device", "cpu",
           "--nnunet-epochs", "1", "--nnunet-iterations", "3",
           "--train-cases", "4", "--test-cases", "2", "--strategies", "real+synt", "real+copypaste", "real"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "report" / "metrics.json").read_text(encoding="utf-8"))
    assert [(r["strategy"], r["method"]) for r in metrics["segmentation"]] == [
        ("Real", "-"), ("Real + copy-paste", "copy-paste"), ("Real + Synt", "LN-DDPM")]
    assert len([p for p in (out / "copy_paste").iterdir() if p.is_dir()]) == 4 * 2
    qc = json.loads((out / "synthetic" / "qc.json").read_text(encoding="utf-8"))
    assert qc["n_samples"] == 8 and qc["real_model"] and "node recall" in qc["thresholds"]["source"]["min_node_recall"]
    assert all("node_recall" in s["scores"] for s in qc["samples"].values())
    manifest = json.loads(next((out / "nnunet").rglob("Dataset102_RealSynt/lnsynth_export.json")).read_text())
    assert not {i["case_id"] for i in manifest["training"]} & {n for n, s in qc["samples"].items() if not s["passed"]}
    assert "Quality control (synthetic/qc.json)" in (out / "report" / "report.md").read_text(encoding="utf-8")
