"""Small real data for the segmentation suite: phantom cases, synthetic-style patches, one real nnU-Net run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from LNSynthLib.cases import Case, list_cases, load_case, save_case
from LNSynthLib.volumes.geometry import Volume

PHANTOM_SHAPE = (64, 64, 64)


@pytest.fixture(scope="session")
def phantom_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four prepared phantom cases (training) on a 1 mm grid."""
    from LNSynthLib.phantom import write_phantom_cases

    root = tmp_path_factory.mktemp("phantom_train")
    write_phantom_cases(root, 4, seed=0, shape_zyx=PHANTOM_SHAPE)
    return root


@pytest.fixture(scope="session")
def phantom_test_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two held-out phantom cases (other seeds)."""
    from LNSynthLib.phantom import write_phantom_cases

    root = tmp_path_factory.mktemp("phantom_test")
    write_phantom_cases(root, 2, seed=100, shape_zyx=PHANTOM_SHAPE)
    return root


def make_patch_cases(real_root: Path, out_root: Path, per_case: int, size: int = 24, seed: int = 0) -> Path:
    """Synthetic-layout cases: a `size`³ crop around the nodes of each real case with changed HU texture.

    They stand in for LN-DDPM output where only the layout and geometry matter (export, paste);
    the end-to-end demo test uses the real sampler.
    """
    rng = np.random.default_rng(seed)
    for folder in list_cases(real_root):
        case = load_case(folder)
        zyx = np.argwhere(case.ln.array > 0).mean(axis=0).round().astype(int)
        start = [int(np.clip(c - size // 2, 0, n - size)) for c, n in zip(zyx, case.ct.shape, strict=True)]
        box = tuple(slice(s, s + size) for s in start)
        geometry = case.ct.geometry.shifted(tuple(start))
        for k in range(per_case):
            ct = case.ct.array[box] + rng.normal(0, 10, (size,) * 3).astype(np.float32)
            meta = {"case_id": f"{folder.name}_synt_{k}", "synthetic": True, "source_case": folder.name}
            save_case(Case(meta["case_id"], Volume(ct, geometry), Volume(case.anatomy.array[box], geometry),
                           Volume(case.ln.array[box], geometry), meta), out_root)
    return out_root


@pytest.fixture(scope="session")
def synthetic_root(phantom_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_patch_cases(phantom_root, tmp_path_factory.mktemp("synthetic"), per_case=2)


@pytest.fixture(scope="session")
def nnunet_run(phantom_root: Path, phantom_test_root: Path, synthetic_root: Path,
               tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Export Real+Synt, plan, train 1 epoch of 2 iterations on the CPU, predict the test cases (one real run)."""
    from LNSynthLib.segmentation.nnunet import export as ex
    from LNSynthLib.segmentation.nnunet import runner as nr
    from LNSynthLib.segmentation.nnunet.project import NnUNetProject, TrainerSpec, model_dir

    project = NnUNetProject(tmp_path_factory.mktemp("nnunet_project"))
    dataset_dir = project.raw_dataset(901, "PhantomRealSynt")
    # Small LN-region margins keep nnU-Net's patch small (the paper's 10/5 cm are the defaults).
    settings = ex.ExportSettings(strategy="real+synt", synt_per_case=1, train_margin_mm=8, test_margin_mm=8)
    ex.export_dataset(phantom_root, dataset_dir, synthetic_root=synthetic_root, test_root=phantom_test_root,
                      settings=settings)
    # Plan + train through the CLI, as the Slicer module and scripts run it: JSON progress on stdout.
    env = dict(os.environ, LNSYNTH_PROGRESS="json")
    proc = subprocess.run([sys.executable, "-m", "LNSynthLib", "nnunet", "train", "--dataset", str(project.root),
                           "--dataset-id", "901", "--epochs", "1", "--iterations", "2", "--val-iterations", "1",
                           "--device", "cpu", "--skip-verify",  # export tests run the integrity check
                           "--patch-size", "16", "16", "16"],  # nnU-Net plans 24³ here; 16³ is cheaper
                          capture_output=True, text=True, env=env, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    trainer = TrainerSpec(epochs=1, iterations=2, val_iterations=1)
    configuration = "3d_fullres_patch16x16x16"
    checkpoint = project.training_dir(901, trainer, configuration=configuration) / "checkpoint_final.pth"
    model = model_dir(project, 901, trainer, configuration)
    predictions = nr.predict(model, dataset_dir / "imagesTs", project.root / "predictions", device="cpu")
    return {"project": project, "dataset_dir": dataset_dir, "trainer": trainer, "checkpoint": checkpoint,
            "configuration": configuration,
            "events": events,
            "model": model, "predictions": predictions,
            "splits": json.loads((project.preprocessed / dataset_dir.name / "splits_final.json").read_text(encoding="utf-8"))}
