"""The data commands as a user runs them: real subprocesses (one per command), plus in-process error paths.

Each `lnsynth` process pays for importing every registered command, so the subprocess runs are
kept to one per command; the remaining exit-code checks call the same `main()` in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from LNSynthLib.cases import load_case
from LNSynthLib.cli.main import EXIT_USER_ERROR, main
from LNSynthLib.volumes.io import read_volume


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LNSYNTH_PROGRESS": "json"}
    return subprocess.run([sys.executable, "-m", "LNSynthLib", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def _events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_phantom_command_writes_prepared_cases(tmp_path, capsys, monkeypatch):
    res = _run("phantom", "--out", "cases", "--cases", "2", "--seed", "5", "--shape", "40", "48", "48",
               "--spacing", "1.5", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    event = _events(res.stdout)[-1]
    assert (event["stage"], event["kind"], event["path"]) == ("result", "cases", str(tmp_path / "cases"))
    assert event["cases"] == ["phantom_000", "phantom_001"]
    case = load_case(tmp_path / "cases" / "phantom_001")
    assert case.meta["phantom_seed"] == 6 and case.ct.geometry.spacing == (1.0, 1.0, 1.0)
    monkeypatch.chdir(tmp_path)
    assert main(["phantom", "--out", "cases", "--cases", "1"]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "phantom_000" in err and "--overwrite" in err and "Traceback" not in err


def test_prepare_command_on_real_ct(tmp_path, painted_example, example_totalseg):
    res = _run("prepare", "--ct", str(painted_example["ct"]), "--ln", str(painted_example["ln"]), "--anatomy",
               str(example_totalseg), "--out", "prep", "--case-id", "real_a", "--margin-mm", "50", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert any(e.get("stage") == "prepare" and e.get("done") for e in _events(res.stdout))
    case = load_case(tmp_path / "prep" / "real_a")
    assert case.meta["anatomy_source"] == "totalseg" and case.meta["settings"]["margin_mm"] == 50.0


def test_anatomy_command_without_weights_and_coarse(tmp_path, painted_example, capsys):
    res = _run("anatomy", "--ct", str(painted_example["ct"]), "--out", "ts.nii.gz", "--anatomy-source", "totalseg",
               "--weights-dir", str(tmp_path / "no_weights"), "--device", "cpu", cwd=tmp_path)
    assert res.returncode == 2 and "Dataset297_TotalSegmentator_total_3mm_1559subj" in res.stderr
    assert "totalseg_import_weights" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "ts.nii.gz").exists()
    out = tmp_path / "coarse.nii.gz"
    assert main(["anatomy", "--ct", str(painted_example["ct"]), "--out", str(out), "--anatomy-source", "coarse"]) == 0
    assert "coarse" in capsys.readouterr().err
    assert set(np.unique(read_volume(out).array)) <= {0, 1, 11, 13}


def test_prepare_command_reports_bad_input_without_traceback(tmp_path, painted_example, capsys):
    code = main(["prepare", "--ct", str(painted_example["ln"]), "--ln", str(painted_example["ln"]), "--out",
                 str(tmp_path / "p"), "--case-id", "bad", "--anatomy-source", "coarse"])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR
    assert str(painted_example["ln"]) in err and "Fix:" in err and "Traceback" not in err
