"""When an nnU-Net program fails, the error names the cause in one line and the log it points to exists."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from LNSynthLib.segmentation.nnunet.runner import NnUNetError, run_logged


def _fail(tmp_path: Path, code: str) -> NnUNetError:
    log = tmp_path / "logs" / "step.log"
    with pytest.raises(NnUNetError) as info:
        run_logged([sys.executable, "-c", code], {"PATH": "/usr/bin:/bin"}, log)
    assert log.exists() and str(log) in str(info.value)
    return info.value


def test_exception_is_named_in_one_line_and_the_traceback_stays_in_the_log(tmp_path):
    exc = _fail(tmp_path, "print('epoch 0'); import torch_stub_missing_module_xyz")
    assert exc.problem.count("\n") == 0 and "Traceback" not in str(exc)
    assert "ModuleNotFoundError: No module named 'torch_stub_missing_module_xyz'" in exc.problem
    assert "Traceback" in (tmp_path / "logs" / "step.log").read_text(encoding="utf-8")
    exc = _fail(tmp_path, "raise RuntimeError('CUDA out of memory. Tried to allocate 2.00 GiB')")
    assert "RuntimeError: CUDA out of memory" in exc.problem and "memory" in exc.fix and "--patch-size" in exc.fix


def test_killed_process_is_reported_as_killed(tmp_path):
    exc = _fail(tmp_path, "import os, signal; print('epoch 3', flush=True); os.kill(os.getpid(), signal.SIGKILL)")
    assert re.search(r"exit code -9\): stopped by signal 9 \(epoch 3\)", exc.problem), exc.problem
    assert "killed" in exc.fix


def test_failed_prediction_through_the_cli_names_the_cause_and_keeps_its_log(tmp_path, capsys):
    """A real nnUNetv2_predict run on a model folder with broken plans: one-line cause, log next to the output."""
    from LNSynthLib.cli.main import main
    from LNSynthLib.volumes.geometry import Geometry, Volume
    from LNSynthLib.volumes.io import write_volume

    model = tmp_path / "results" / "Dataset001_Broken" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    (model / "fold_0").mkdir(parents=True)
    (model / "plans.json").write_text(json.dumps({"dataset_name": "Dataset001_Broken"}))
    (model / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "lymph_node": 1}}))
    import torch

    torch.save({"network_weights": {}}, model / "fold_0" / "checkpoint_final.pth")  # loads; the plans are broken
    ct = np.full((16, 16, 16), -1000, np.int16)
    ct[2:14, 2:14, 2:14] = 40
    write_volume(Volume(ct, Geometry((3.0, 3.0, 3.0))), tmp_path / "ct.nii.gz")   # a body 36 mm across
    out = tmp_path / "preds" / "seg.nii.gz"
    (tmp_path / "preds").mkdir()
    code = main(["nnunet", "predict", "--model", str(model), "--ct", str(tmp_path / "ct.nii.gz"), "--out", str(out),
                 "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "Fix:" in err, err
    first = err.split("lnsynth: error: ", 1)[1].split("\nFix:")[0]
    assert "\n" not in first and "nnUNetv2_predict failed (exit code" in first, err
    log = Path(first.split(": nnUNetv2_predict")[0])
    assert log.exists() and log.parent == tmp_path / "preds" and "Traceback" in log.read_text(encoding="utf-8")
    assert not out.exists() and [p.name for p in (tmp_path / "preds").iterdir()] == [log.name]
