"""nnU-Net planning processes (and the workers they spawn) skip the trainer import; training keeps its patch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LIBRARY_ROOT = Path(__file__).resolve().parents[2]
PROBE = ("import sys, LNSynthLib.segmentation.nnunet.entry as e; "
         "print(e._this_program(), 'nnunetv2.training.nnUNetTrainer.nnUNetTrainer' in sys.modules)")


def _probe(program: str | None) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(LIBRARY_ROOT), os.environ.get("PYTHONPATH"))
                                                        if p)}
    env.pop("LNSYNTH_NNUNET_PROGRAM", None)
    if program is not None:
        env["LNSYNTH_NNUNET_PROGRAM"] = program
    proc = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_planning_worker_skips_trainer_import():
    assert _probe("nnUNetv2_plan_and_preprocess") == "nnUNetv2_plan_and_preprocess False"


def test_unknown_program_gets_the_trainer_patch():
    from LNSynthLib.segmentation.nnunet.entry import NO_TRAINER_PROGRAMS

    assert "nnUNetv2_train" not in NO_TRAINER_PROGRAMS and "nnUNetv2_predict" not in NO_TRAINER_PROGRAMS
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    assert getattr(nnUNetTrainer.save_checkpoint, "lnsynth_atomic", False)   # imported here without a program


def test_plan_command_sets_fingerprint_workers(tmp_path, monkeypatch):
    """`-npfp` follows `-np` (nnU-Net's default of 8 spawned workers is most of the planning time)."""
    from LNSynthLib.segmentation.nnunet import runner as nr
    from LNSynthLib.segmentation.nnunet.project import NnUNetProject

    project = NnUNetProject(tmp_path / "nnunet")
    (project.raw / "Dataset120_X" / "labelsTr").mkdir(parents=True)
    seen: list[list[str]] = []

    def fake_run(cmd, env, log_path, on_line=None):  # noqa: ANN001, ANN202 - records the command line only
        seen.append(list(cmd))
        raise RuntimeError("stop after the command line")

    monkeypatch.setattr(nr, "run_logged", fake_run)
    try:
        nr.plan_and_preprocess(project, 120, device="cpu")
    except RuntimeError:
        pass
    cmd = seen[0]
    assert cmd[cmd.index("-npfp") + 1] == cmd[cmd.index("-np") + 1] == "1"
