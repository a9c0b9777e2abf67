"""`lnsynth train --run-dir` never overwrites files it did not write."""

from __future__ import annotations

import shutil
from pathlib import Path

from LNSynthLib.cli.main import main
from LNSynthLib.diffusion.train.run_folder import RUN_MARKER

from .conftest import micro_cli_sets


def test_user_files_in_the_run_dir_are_refused_untouched(phantom_cases: Path, tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "my_experiment"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("my: own config\n")
    (run_dir / "loss.csv").write_text("epoch,loss\n1,0.3\n")
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    code = main(["train", "--config", "tiny", "--cases", str(phantom_cases), "--run-dir", str(run_dir), "--device", "cpu",
                 *micro_cli_sets()])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"lnsynth: error: {run_dir}: the run folder holds config.yaml, loss.csv not written by" in err
    assert "Fix: choose a new or empty --run-dir" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


def test_a_run_folder_is_marked_and_resumes(straight_run: Path, phantom_cases: Path, tmp_path: Path) -> None:
    """The fixture's run wrote the marker, so its own config.yaml and loss.csv may be replaced on resume."""
    assert (straight_run.parent / RUN_MARKER).is_file()
    run_dir = tmp_path / "run"
    shutil.copytree(straight_run.parent, run_dir)
    (run_dir / "config.yaml").write_text("stale\n")
    assert main(["train", "--config", "tiny", "--cases", str(phantom_cases), "--run-dir", str(run_dir), "--device", "cpu",
                 *micro_cli_sets()]) == 0     # already complete: nothing to train, own files rewritten
    assert (run_dir / "config.yaml").read_text(encoding="utf-8") != "stale\n"


def test_resume_removes_temporary_files_of_a_killed_write(straight_run: Path, tmp_path: Path) -> None:
    from LNSynthLib.diffusion.train.run_folder import claim_run_dir

    run_dir = tmp_path / "run"
    shutil.copytree(straight_run.parent, run_dir)
    (run_dir / ".loss.png.k3j2.tmp.png").write_bytes(b"\x89PNG")       # SIGKILL during plot_loss
    (run_dir / ".checkpoint.pt.x1.tmp.pt").write_bytes(b"PK")
    (run_dir / ".my_notes.txt").write_text("not ours")
    claim_run_dir(run_dir)
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".")) == [".my_notes.txt"]
