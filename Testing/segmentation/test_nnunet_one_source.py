"""One painted CT is one source case: `lnsynth nnunet train` plans without a split and trains fold `all`.

This is what a web page or panel session has (one real case and its synthetic copies); before, planning
stopped with "at least two source cases are needed" whatever the fold.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from LNSynthLib.cases import list_cases


def _train(project: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, LNSYNTH_PROGRESS="quiet", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "LNSynthLib", "nnunet", "train", "--dataset", str(project),
                           "--epochs", "1", "--iterations", "1", "--val-iterations", "1", "--patch-size", "16", "16",
                           "16", "--device", "cpu", "--skip-verify", *extra],
                          capture_output=True, text=True, timeout=900, env=env)


def test_one_source_case_trains_fold_all_and_refuses_a_numbered_fold(phantom_root: Path, synthetic_root: Path,
                                                                      tmp_path: Path) -> None:
    from LNSynthLib.cli.nnunet_command import source_cases, training_fold
    from LNSynthLib.segmentation.nnunet import export as ex
    from LNSynthLib.segmentation.nnunet.project import NnUNetProject

    real = tmp_path / "real"
    source = list_cases(phantom_root)[0]
    (real / source.name).parent.mkdir(parents=True)
    os.symlink(source, real / source.name)
    synthetic = tmp_path / "synthetic"
    synthetic.mkdir()
    for folder in list_cases(synthetic_root):
        if folder.name.startswith(source.name + "_"):
            os.symlink(folder, synthetic / folder.name)
    project = NnUNetProject(tmp_path / "project")
    dataset = ex.export_dataset(real, project.raw_dataset(931, "OneSource"), synthetic_root=synthetic,
                                settings=ex.ExportSettings(strategy="real+synt", synt_per_case=2, train_margin_mm=8))
    assert source_cases(dataset) == 1 and training_fold(dataset, None) == "all"

    refused = _train(project.root, "--fold", "0")
    assert refused.returncode != 0 and "has one source case" in refused.stderr and "fold `all`" in refused.stderr
    done = _train(project.root)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "model_dir:" in done.stdout and (project.preprocessed / dataset.name / "nnUNetPlans.json").exists()
    assert not (project.preprocessed / dataset.name / "splits_final.json").exists()
    assert list(project.results.glob(f"{dataset.name}/*/fold_all/checkpoint_final.pth"))
