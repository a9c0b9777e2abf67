"""Report generation on real small data: predictions of the real nnU-Net run, phantom and patch cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from LNSynthLib.report.generation_eval import evaluate_generation
from LNSynthLib.report.report import EvaluationInputs, PredictionSet, write_report


def _strict_json(text: str) -> dict:
    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_generation_metrics_of_patch_cases(phantom_root, synthetic_root, tmp_path):
    result = evaluate_generation(phantom_root, synthetic_root, work_dir=tmp_path)
    assert result["pairs"] == 8                                # every synthetic case found its source crop
    assert 0 < result["MSE"] < 0.05 and result["PSNR"] > 13    # the patches are the real crop plus noise
    assert 0.3 < result["MS-SSIM"] < 1.0
    assert math.isnan(result["LPIPS"]) and "lpips-weights" in result["note"]
    assert "reduced" in result["note"]                         # 24³ patches: fewer MS-SSIM scales, said so
    assert result["method"] == "LN-DDPM" and result["samples"] == "all 8 samples (no quality control)"


def test_generation_row_names_its_variant_and_the_samples_it_covers(phantom_root, synthetic_root, tmp_path):
    """Table 1 says which method made the samples and that QC-rejected samples are in the figures."""
    import shutil

    from LNSynthLib.cases import list_cases

    synthetic = shutil.copytree(synthetic_root, tmp_path / "synthetic")
    names = [f.name for f in list_cases(synthetic)]
    verdicts = {name: {"passed": name != names[0]} for name in names}
    (synthetic / "qc.json").write_text(json.dumps({"samples": verdicts}), encoding="utf-8")
    result = evaluate_generation(phantom_root, synthetic, work_dir=tmp_path / "work", method="Med-DDPM")
    assert result["method"] == "Med-DDPM" and result["pairs"] == 8
    assert result["samples"] == "all 8 samples, the 1 that quality control rejected included"
    assert "Generation metrics cover all 8 samples, the 1" in result["note"]


def test_report_files_from_a_real_run(nnunet_run, phantom_root, synthetic_root, tmp_path):
    from LNSynthLib.diffusion.train.loss_plot import write_loss_csv

    run = tmp_path / "ddpm"
    run.mkdir()
    write_loss_csv([(i, 1.0 / (1 + i)) for i in range(1, 60)], run / "loss.csv")
    dataset = nnunet_run["dataset_dir"]
    sets = [PredictionSet("Real + Synt", "LN-DDPM", nnunet_run["predictions"], nnunet_run["checkpoint"].parent)]
    inputs = EvaluationInputs(tmp_path / "report", dataset / "labelsTs", sets, images_dir=dataset / "imagesTs",
                              real_root=phantom_root, synthetic_root=synthetic_root, ddpm_run=run,
                              generation={"method": "LN-DDPM", "MSE": 0.01, "PSNR": 20.0, "MS-SSIM": 0.9,
                                          "LPIPS": float("nan"), "pairs": 8})
    report, metrics_path = write_report(inputs)
    text = report.read_text(encoding="utf-8")
    assert "| Real + Synt | LN-DDPM |" in text and "NodeRecall" in text and "0.5655" in text  # ours + paper row
    metrics = _strict_json(metrics_path.read_text(encoding="utf-8"))
    row = metrics["segmentation"][0]
    assert set(row) >= {"DSC", "IoU", "Recall", "Precision", "ASSD", "NodeRecall"}
    assert metrics["generation"]["LPIPS"] is None                # NaN written as null
    assert len(metrics["nnunet_epochs"]["Real + Synt LN-DDPM"]) == 1
    import matplotlib.image as mpimg

    for name in ("real_vs_synthetic.png", "training_curves.png", "segmentations.png"):
        assert f"]({name})" in text
        image = mpimg.imread(report.parent / name)
        assert image.shape[0] > 100 and image.shape[1] > 200 and float(np.std(image[..., :3])) > 0.05


def test_evaluate_cli_scores_perfect_predictions_as_one(phantom_root, phantom_test_root, tmp_path, capsys):
    import shutil

    from LNSynthLib.cli.main import main
    from LNSynthLib.segmentation.nnunet.export import ExportSettings, export_dataset

    dataset = export_dataset(phantom_root, tmp_path / "Dataset007_T", test_root=phantom_test_root,
                             settings=ExportSettings(strategy="real"))
    perfect = tmp_path / "perfect"
    shutil.copytree(dataset / "labelsTs", perfect)
    code = main(["evaluate", "--out", str(tmp_path / "report"), "--labels", str(dataset / "labelsTs"),
                 "--images", str(dataset / "imagesTs"), "--pred", f"Real|-={perfect}", "--device", "cpu"])
    assert code == 0 and "report:" in capsys.readouterr().out
    row = _strict_json((tmp_path / "report" / "metrics.json").read_text(encoding="utf-8"))["segmentation"][0]
    assert row["DSC"] == 1.0 and row["ASSD"] == 0.0 and row["NodeRecall"] == 1.0 and row["nodes_total"] >= 2
    assert main(["evaluate", "--out", str(tmp_path / "r2"), "--labels", str(dataset / "labelsTs"),
                 "--pred", "no-folder-given"]) == 2


def test_report_counts_missed_cases_and_states_the_aggregation(phantom_root, phantom_test_root, tmp_path, capsys):
    from LNSynthLib.cli.main import main
    from LNSynthLib.metrics.segmentation import diagonal_mm
    from LNSynthLib.segmentation.nnunet.export import ExportSettings, export_dataset
    from LNSynthLib.volumes.geometry import Volume
    from LNSynthLib.volumes.io import read_volume, write_volume

    dataset = export_dataset(phantom_root, tmp_path / "Dataset008_T", test_root=phantom_test_root,
                             settings=ExportSettings(strategy="real"))
    empty, labels = tmp_path / "empty", sorted((dataset / "labelsTs").glob("*.nii.gz"))
    diagonals = []
    for label in labels:
        gt = read_volume(label)
        write_volume(Volume(np.zeros(gt.shape, np.uint8), gt.geometry), empty / label.name)
        diagonals.append(diagonal_mm(gt.shape, gt.geometry.spacing))
    code = main(["evaluate", "--out", str(tmp_path / "report"), "--labels", str(dataset / "labelsTs"),
                 "--pred", f"Real|-={dataset / 'labelsTs'}", "--pred", f"Synt|nothing={empty}",
                 "--assd-form", "pooled", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    metrics = _strict_json((tmp_path / "report" / "metrics.json").read_text(encoding="utf-8"))
    perfect, missed = metrics["segmentation"]
    assert perfect["empty_predictions"] == 0 and perfect["NodeRecall_case_mean"] == 1.0
    # Every case missed: counted (not skipped) with Precision 0 and ASSD = the image diagonal of each case.
    assert missed["empty_predictions"] == len(labels) == missed["cases"]
    assert missed["Precision"] == 0.0 and missed["ASSD"] == pytest.approx(float(np.mean(diagonals)))
    assert missed["NodeRecall"] == 0.0 and missed["NodeRecall_case_mean"] == 0.0 and missed["assd_form"] == "pooled"
    text = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "the pooled form" in text and "image diagonal" in text
    assert f"| Synt | nothing | 0.0000 | 0.0000 | 0/{missed['nodes_total']} | {len(labels)} | {len(labels)} |" in text
