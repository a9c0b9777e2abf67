"""One result line per command, one reader: `emit_result` / `result_path`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from LNSynthLib.jobs.results import RESULT_KINDS, emit_result, result_event, result_path
from LNSynthLib.jobs.runner import JobProcess

REPO = Path(__file__).resolve().parents[2]


def test_emit_then_read_back(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LNSYNTH_PROGRESS", "json")
    emit_result("model_dir", Path("/m/nnUNetTrainer__3d"), checkpoint="/m/fold_0/checkpoint_final.pth")
    line = capsys.readouterr().out.strip()
    event = json.loads(line)
    assert event == {"stage": "result", "kind": "model_dir", "path": "/m/nnUNetTrainer__3d",
                     "checkpoint": "/m/fold_0/checkpoint_final.pth"}
    events = [{"stage": "nnunet_train", "step": 3, "path": "/not/a/result"}, event]
    assert result_path(events, "model_dir") == Path("/m/nnUNetTrainer__3d")
    assert result_path(events) == Path("/m/nnUNetTrainer__3d")
    assert result_path(events, "checkpoint") is None and result_path([]) is None
    assert result_event(events)["checkpoint"].endswith("checkpoint_final.pth")
    with pytest.raises(ValueError, match="result kind"):
        emit_result("model", "/m")
    assert set(RESULT_KINDS) >= {"checkpoint", "cases", "dataset", "model_dir", "prediction", "report"}


def test_a_real_command_through_the_job_runner(tmp_path: Path) -> None:
    """`lnsynth phantom` in its own process: its last line is the result, read by JobProcess.result."""
    job = JobProcess(["phantom", "--out", str(tmp_path / "cases"), "--cases", "1", "--shape", "40", "48", "48",
                      "--spacing", "1.5"],
                     python=sys.executable, cwd=REPO)
    state = job.wait(timeout_s=240)
    assert state.returncode == 0, state.log_tail
    assert state.events[-1]["stage"] == "result"
    assert job.result("cases") == tmp_path / "cases" and job.result() == tmp_path / "cases"
    assert result_event(state.events)["cases"] == ["phantom_000"]
